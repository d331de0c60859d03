//! How the listener connects, with the settings read from the URL
//! ([`super::url`]): an OpenSSL connector (the same library libpq uses,
//! hence the same verification), and libpq's fallbacks from one kind of
//! connection to another (`allow`, `prefer`).

use openssl::pkey::PKey;
use openssl::ssl::{SslConnector, SslConnectorBuilder, SslFiletype, SslMethod, SslVerifyMode};
use openssl::x509::store::{X509Lookup, X509StoreBuilder};
use openssl::x509::verify::X509VerifyFlags;
use postgres_openssl::MakeTlsConnector;

use super::url::{ListenerConnection, RootCertificates, SslMode};

/// One way of connecting, as libpq tries them in turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    /// No TLS.
    Plain,
    /// TLS if the server offers it, else plain (the crate's `prefer`).
    TlsIfOffered,
    /// TLS or nothing.
    Tls,
}

impl ListenerConnection {
    /// Opens the connection, trying what libpq would try in the same order:
    /// `allow` plain first and then TLS, `prefer` TLS first and then plain.
    /// The error names every attempt that failed.
    pub(crate) fn connect(&self) -> Result<postgres::Client, String> {
        let attempts: &[Attempt] = match self.mode {
            SslMode::Disable => &[Attempt::Plain],
            SslMode::Allow => &[Attempt::Plain, Attempt::Tls],
            SslMode::Prefer => &[Attempt::TlsIfOffered, Attempt::Plain],
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => &[Attempt::Tls],
        };
        let mut errors = Vec::new();
        for attempt in attempts {
            match self.connect_once(*attempt) {
                Ok(client) => return Ok(client),
                Err(error) => errors.push(error),
            }
        }
        Err(errors.join("; then: "))
    }

    fn connect_once(&self, attempt: Attempt) -> Result<postgres::Client, String> {
        let mut config = self.config.clone();
        config.ssl_mode(match attempt {
            Attempt::Plain => postgres::config::SslMode::Disable,
            Attempt::TlsIfOffered => postgres::config::SslMode::Prefer,
            Attempt::Tls => postgres::config::SslMode::Require,
        });
        if attempt == Attempt::Plain {
            return config
                .connect(postgres::NoTls)
                .map_err(|error| error.to_string());
        }
        // Files are read at every connection, as libpq does, so renewed
        // certificates are picked up when the listener reconnects.
        let connector = self.tls_connector()?;
        config.connect(connector).map_err(|error| error.to_string())
    }

    fn tls_connector(&self) -> Result<MakeTlsConnector, String> {
        let mut builder =
            SslConnector::builder(SslMethod::tls_client()).map_err(openssl("cannot set up TLS"))?;
        builder
            .set_min_proto_version(self.min_protocol)
            .map_err(openssl("ssl_min_protocol_version"))?;
        builder
            .set_max_proto_version(self.max_protocol)
            .map_err(openssl("ssl_max_protocol_version"))?;
        self.trust_roots(&mut builder)?;
        if let Some(certificate) = &self.client_certificate {
            self.present_client_certificate(&mut builder, certificate)?;
        }
        let mut connector = MakeTlsConnector::new(builder.build());
        let check_name = self.mode == SslMode::VerifyFull;
        let sni = self.sni;
        connector.set_callback(move |connection, _host| {
            connection.set_verify_hostname(check_name);
            connection.set_use_server_name_indication(sni);
            Ok(())
        });
        Ok(connector)
    }

    /// Decides which server certificates the connector accepts.
    fn trust_roots(&self, builder: &mut SslConnectorBuilder) -> Result<(), String> {
        match &self.roots {
            RootCertificates::Unchecked => builder.set_verify(SslVerifyMode::NONE),
            // The builder starts with the system's roots.
            RootCertificates::System => builder.set_verify(SslVerifyMode::PEER),
            RootCertificates::File(file) => {
                // Only the named roots are trusted, not the system's.
                let mut store = X509StoreBuilder::new().map_err(openssl("cannot set up TLS"))?;
                store
                    .add_lookup(X509Lookup::file())
                    .and_then(|lookup| lookup.load_cert_file(file, SslFiletype::PEM))
                    .map_err(openssl(&format!(
                        "could not read root certificate file \"{}\"",
                        file.display()
                    )))?;
                if self.load_revocation_lists(&mut store) {
                    store
                        .set_flags(X509VerifyFlags::CRL_CHECK | X509VerifyFlags::CRL_CHECK_ALL)
                        .map_err(openssl("cannot set up TLS"))?;
                }
                builder.set_cert_store(store.build());
                builder.set_verify(SslVerifyMode::PEER);
            }
        }
        Ok(())
    }

    /// Loads the client certificate (chain) and its key, which must match.
    fn present_client_certificate(
        &self,
        builder: &mut SslConnectorBuilder,
        certificate: &std::path::Path,
    ) -> Result<(), String> {
        builder
            .set_certificate_chain_file(certificate)
            .map_err(openssl(&format!(
                "could not load certificate file \"{}\"",
                certificate.display()
            )))?;
        let key_file = self
            .client_key
            .as_ref()
            .ok_or_else(|| "certificate present, but no private key file (sslkey)".to_owned())?;
        let key = std::fs::read(key_file).map_err(|error| {
            format!(
                "certificate present, but not private key file \"{}\": {error}",
                key_file.display()
            )
        })?;
        // Never OpenSSL's terminal prompt: an encrypted key without
        // `sslpassword` fails, as in libpq.
        let password = self.key_password.as_deref().unwrap_or("").as_bytes();
        let key = PKey::private_key_from_pem_passphrase(&key, password)
            .or_else(|_| PKey::private_key_from_der(&key))
            .map_err(openssl(&format!(
                "could not load private key file \"{}\"",
                key_file.display()
            )))?;
        builder
            .set_private_key(&key)
            .and_then(|()| builder.check_private_key())
            .map_err(openssl(&format!(
                "private key file \"{}\" does not match the certificate",
                key_file.display()
            )))
    }

    /// Adds the CRLs of `sslcrl`/`sslcrldir` (or `~/.postgresql/root.crl`)
    /// to `store`; answers whether any were found. Like libpq, missing CRLs
    /// are no error: revocation is then simply not checked.
    fn load_revocation_lists(&self, store: &mut X509StoreBuilder) -> bool {
        let mut found = false;
        if let Some(file) = self.crl_file.as_ref().filter(|file| file.exists()) {
            found |= store
                .add_lookup(X509Lookup::file())
                .and_then(|lookup| lookup.load_crl_file(file, SslFiletype::PEM))
                .is_ok();
        }
        if let Some(dir) = self.crl_dir.as_ref().and_then(|dir| dir.to_str()) {
            found |= store
                .add_lookup(X509Lookup::hash_dir())
                .and_then(|lookup| lookup.add_dir(dir, SslFiletype::PEM))
                .is_ok();
        }
        found
    }
}

/// Turns an OpenSSL error into text that says what was being done.
fn openssl(what: &str) -> impl FnOnce(openssl::error::ErrorStack) -> String + '_ {
    move |error| format!("{what}: {error}")
}
