//! How the listener reads its URL: the PostgreSQL URL of `database.url`,
//! read the way libpq (which opens the pool's connections) reads it, so that
//! the `LISTEN` connection uses TLS exactly when and as the pool does.
//!
//! The `postgres` crate knows most of libpq's URL parameters but not its TLS
//! ones (`sslrootcert`, `sslcert`, `sslkey`, …) and only three `sslmode`s.
//! So the TLS parameters are taken out of the URL here, with the `PGSSL…`
//! variables and `~/.postgresql/` files libpq falls back to, and become the
//! settings [`super::tls`] connects with; the rest of the URL goes to the
//! `postgres` crate unchanged.

use std::path::{Path, PathBuf};

use openssl::ssl::SslVersion;

/// libpq's `sslmode`, all six of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<Self, String> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => return Err(format!("invalid sslmode value: \"{other}\"")),
        })
    }

    fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }
}

/// Where the trusted root certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RootCertificates {
    /// A PEM file: `sslrootcert`, or `~/.postgresql/root.crt` when it exists.
    File(PathBuf),
    /// `sslrootcert=system`: OpenSSL's default trust store (libpq 16+).
    System,
    /// None: the server's certificate is not checked (libpq does the same
    /// for `require` and weaker when there is no root file).
    Unchecked,
}

/// Everything the listener needs to connect, read from the URL once.
#[derive(Debug, Clone)]
pub(crate) struct ListenerConnection {
    /// The URL without the parameters handled here, for the `postgres` crate.
    pub(super) config: postgres::Config,
    pub(super) mode: SslMode,
    pub(super) roots: RootCertificates,
    /// CRL file and directory, used only when the server is verified.
    pub(super) crl_file: Option<PathBuf>,
    pub(super) crl_dir: Option<PathBuf>,
    /// The client certificate (chain) and its key, when a certificate file exists.
    pub(super) client_certificate: Option<PathBuf>,
    pub(super) client_key: Option<PathBuf>,
    pub(super) key_password: Option<String>,
    pub(super) sni: bool,
    pub(super) min_protocol: Option<SslVersion>,
    pub(super) max_protocol: Option<SslVersion>,
}

/// What the environment contributes, as libpq reads it: the `PGSSL…`
/// variables and the home folder (for `~/.postgresql/…`).
pub(crate) trait Environment {
    fn var(&self, name: &str) -> Option<String>;
    fn home(&self) -> Option<PathBuf>;
}

/// The process's own environment.
pub(crate) struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|value| !value.is_empty())
    }

    fn home(&self) -> Option<PathBuf> {
        self.var("HOME").map(PathBuf::from)
    }
}

/// The URL parameters taken here, with the variable libpq falls back to.
const TLS_PARAMETERS: &[(&str, Option<&str>)] = &[
    ("sslmode", Some("PGSSLMODE")),
    ("sslrootcert", Some("PGSSLROOTCERT")),
    ("sslcert", Some("PGSSLCERT")),
    ("sslkey", Some("PGSSLKEY")),
    ("sslpassword", None),
    ("sslcrl", Some("PGSSLCRL")),
    ("sslcrldir", Some("PGSSLCRLDIR")),
    ("sslsni", Some("PGSSLSNI")),
    ("ssl_min_protocol_version", Some("PGSSLMINPROTOCOLVERSION")),
    ("ssl_max_protocol_version", Some("PGSSLMAXPROTOCOLVERSION")),
    // Obsolete (libpq ignores it since OpenSSL dropped compression).
    ("sslcompression", None),
    // GSSAPI encryption, which the `postgres` crate cannot do: refused when
    // required, otherwise the connection goes on without it, as libpq's does
    // when no Kerberos credentials are at hand.
    ("gssencmode", Some("PGGSSENCMODE")),
    // libpq-only parameters with no effect on a connection that only listens.
    ("client_encoding", None),
    ("fallback_application_name", None),
];

/// libpq's default lowest TLS version.
const DEFAULT_MIN_PROTOCOL: SslVersion = SslVersion::TLS1_2;

impl ListenerConnection {
    /// Reads `url` (a `postgres://` or `postgresql://` URL) and this
    /// process's environment. Errors name the parameter at fault.
    pub(crate) fn from_url(url: &str) -> Result<Self, String> {
        Self::from_url_in(url, &ProcessEnvironment)
    }

    pub(crate) fn from_url_in(url: &str, env: &dyn Environment) -> Result<Self, String> {
        let (config_url, parameters) = take_tls_parameters(url, env)?;
        let config = postgres_config(&config_url, &parameters)?;
        let (mode, roots) = mode_and_roots(&parameters)?;
        let crl_file = parameters.path("sslcrl")?;
        let crl_dir = parameters.path("sslcrldir")?;
        let crl_file = match (&crl_file, &crl_dir) {
            (None, None) => parameters.home_file("root.crl"),
            _ => crl_file,
        };
        // A certificate file that does not exist means no client
        // certificate (libpq ignores it too); its key must then exist.
        let client_certificate = parameters
            .path_or_home_file("sslcert", "postgresql.crt")?
            .filter(|file| file.exists());
        let client_key = parameters.path_or_home_file("sslkey", "postgresql.key")?;
        let sni = match parameters.get("sslsni").as_deref() {
            None | Some("1") => true,
            Some("0") => false,
            Some(other) => return Err(format!("invalid sslsni value: \"{other}\"")),
        };
        let min_protocol = match parameters.get("ssl_min_protocol_version") {
            Some(value) => Some(protocol_version(&value, "ssl_min_protocol_version")?),
            None => Some(DEFAULT_MIN_PROTOCOL),
        };
        let max_protocol = parameters
            .get("ssl_max_protocol_version")
            .map(|value| protocol_version(&value, "ssl_max_protocol_version"))
            .transpose()?;
        Ok(ListenerConnection {
            config,
            mode,
            roots,
            crl_file,
            crl_dir,
            client_certificate,
            client_key,
            key_password: parameters.get("sslpassword"),
            sni,
            min_protocol,
            max_protocol,
        })
    }
}

/// Splits the URL's query: the TLS parameters (decoded) come out, the rest
/// stays in the URL for the `postgres` crate.
fn take_tls_parameters<'a>(
    url: &str,
    env: &'a dyn Environment,
) -> Result<(String, TlsParameters<'a>), String> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut kept = Vec::new();
    let mut taken = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').ok_or_else(|| {
            format!("missing \"=\" after \"{pair}\" in the URL's query parameters")
        })?;
        match TLS_PARAMETERS.iter().find(|(name, _)| *name == key) {
            Some((name, _)) => taken.push((*name, percent_decode(value)?)),
            None => kept.push(pair),
        }
    }
    let mut config_url = base.to_owned();
    if !kept.is_empty() {
        config_url.push('?');
        config_url.push_str(&kept.join("&"));
    }
    Ok((config_url, TlsParameters { taken, env }))
}

/// The TLS parameters taken from the URL, and the environment behind them.
struct TlsParameters<'a> {
    taken: Vec<(&'static str, String)>,
    env: &'a dyn Environment,
}

impl TlsParameters<'_> {
    /// As libpq: the URL's last occurrence wins, else the parameter's
    /// variable; an empty value counts as unset.
    fn get(&self, name: &str) -> Option<String> {
        let from_url = self
            .taken
            .iter()
            .rev()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.clone());
        let variable = TLS_PARAMETERS
            .iter()
            .find(|(key, _)| *key == name)
            .and_then(|(_, variable)| *variable);
        from_url
            .or_else(|| variable.and_then(|variable| self.env.var(variable)))
            .filter(|value| !value.is_empty())
    }

    /// A file of `~/.postgresql/`, where libpq looks when no parameter names one.
    fn home_file(&self, name: &str) -> Option<PathBuf> {
        self.env
            .home()
            .map(|home| home.join(".postgresql").join(name))
    }

    /// The file the parameter names.
    fn path(&self, name: &str) -> Result<Option<PathBuf>, String> {
        self.get(name).map(|file| path(&file)).transpose()
    }

    /// The file the parameter names, or else `~/.postgresql/<home_name>`.
    fn path_or_home_file(&self, name: &str, home_name: &str) -> Result<Option<PathBuf>, String> {
        match self.path(name)? {
            Some(file) => Ok(Some(file)),
            None => Ok(self.home_file(home_name)),
        }
    }
}

/// The `postgres` crate's settings: the URL without the TLS parameters, and
/// the two libpq-only parameters that matter to it.
fn postgres_config(
    config_url: &str,
    parameters: &TlsParameters,
) -> Result<postgres::Config, String> {
    let mut config: postgres::Config = config_url
        .parse()
        .map_err(|error| format!("the URL cannot be used for LISTEN: {error}"))?;
    if config.get_application_name().is_none() {
        if let Some(name) = parameters.get("fallback_application_name") {
            config.application_name(&name);
        }
    }
    if parameters.get("gssencmode").as_deref() == Some("require") {
        return Err(
            "gssencmode=require is not supported for LISTEN (no GSSAPI encryption); use TLS".into(),
        );
    }
    Ok(config)
}

/// The `sslmode` and the roots it trusts, refusing the combinations libpq
/// refuses.
fn mode_and_roots(parameters: &TlsParameters) -> Result<(SslMode, RootCertificates), String> {
    let root_setting = parameters.get("sslrootcert");
    let mode = match parameters.get("sslmode") {
        Some(value) => SslMode::parse(&value)?,
        // libpq 16: trusting the system's roots implies checking the name.
        None if root_setting.as_deref() == Some("system") => SslMode::VerifyFull,
        None => SslMode::Prefer,
    };
    let roots = match root_setting {
        Some(system) if system == "system" => {
            if mode != SslMode::VerifyFull {
                return Err(format!(
                    "weak sslmode \"{}\" may not be used with sslrootcert=system (use \"verify-full\")",
                    mode.name()
                ));
            }
            RootCertificates::System
        }
        Some(file) => existing(path(&file)?),
        None => parameters
            .home_file("root.crt")
            .map_or(RootCertificates::Unchecked, existing),
    };
    if mode.verifies() && roots == RootCertificates::Unchecked {
        return Err(format!(
            "sslmode={} needs a root certificate: set sslrootcert (or create ~/.postgresql/root.crt)",
            mode.name()
        ));
    }
    Ok((mode, roots))
}

fn existing(file: PathBuf) -> RootCertificates {
    if file.exists() {
        RootCertificates::File(file)
    } else {
        RootCertificates::Unchecked
    }
}

/// A file name from the URL. OpenSSL takes C strings and UTF-8 paths.
fn path(value: &str) -> Result<PathBuf, String> {
    if value.contains('\0') {
        return Err("a file name in the database URL contains a NUL byte".into());
    }
    Ok(Path::new(value).to_path_buf())
}

fn protocol_version(value: &str, parameter: &str) -> Result<SslVersion, String> {
    Ok(match value {
        "TLSv1" => SslVersion::TLS1,
        "TLSv1.1" => SslVersion::TLS1_1,
        "TLSv1.2" => SslVersion::TLS1_2,
        "TLSv1.3" => SslVersion::TLS1_3,
        other => return Err(format!("invalid {parameter} value: \"{other}\"")),
    })
}

/// libpq's URL decoding: `%XX` escapes only (`+` stays a plus).
fn percent_decode(value: &str) -> Result<String, String> {
    let bytes = value.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = bytes
                .get(index + 1..index + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| format!("invalid percent-encoded token: \"{value}\""))?;
            decoded.push(hex);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).map_err(|_| format!("invalid percent-encoded token: \"{value}\""))
}

#[cfg(test)]
mod tests;
