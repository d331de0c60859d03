//! Reading URLs as libpq does, with a fake environment.

use std::collections::HashMap;

use super::*;

#[derive(Default)]
struct FakeEnvironment {
    vars: HashMap<&'static str, String>,
    home: Option<PathBuf>,
}

impl Environment for FakeEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }

    fn home(&self) -> Option<PathBuf> {
        self.home.clone()
    }
}

fn read(url: &str) -> Result<ListenerConnection, String> {
    ListenerConnection::from_url_in(url, &FakeEnvironment::default())
}

fn files() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root.crt");
    std::fs::write(&root, "not read before connecting").unwrap();
    let root = root.display().to_string();
    (dir, root)
}

#[test]
fn without_sslmode_it_prefers_tls_as_libpq_does() {
    let connection = read("postgres://u@h/db").unwrap();
    assert_eq!(connection.mode, SslMode::Prefer);
    assert_eq!(connection.roots, RootCertificates::Unchecked);
    assert!(connection.sni);
    assert_eq!(connection.min_protocol, Some(SslVersion::TLS1_2));
}

#[test]
fn every_libpq_sslmode_is_read_and_others_are_refused() {
    let (_dir, root) = files();
    for (value, mode) in [
        ("disable", SslMode::Disable),
        ("allow", SslMode::Allow),
        ("prefer", SslMode::Prefer),
        ("require", SslMode::Require),
        ("verify-ca", SslMode::VerifyCa),
        ("verify-full", SslMode::VerifyFull),
    ] {
        let url = format!("postgres://u@h/db?sslmode={value}&sslrootcert={root}");
        assert_eq!(read(&url).unwrap().mode, mode, "{value}");
    }
    assert_eq!(
        read("postgres://u@h/db?sslmode=required").unwrap_err(),
        "invalid sslmode value: \"required\""
    );
}

#[test]
fn tls_parameters_are_taken_out_and_the_rest_goes_to_the_postgres_crate() {
    let (_dir, root) = files();
    let connection = read(&format!(
        "postgres://u:p%40ss@h:6543/db?application_name=hooks&sslmode=verify-full\
         &sslrootcert={root}&sslcert=%2Fnone%2Fclient.crt&sslkey=/none/client.key\
         &sslpassword=a%2Bb&sslsni=0&ssl_min_protocol_version=TLSv1.3&connect_timeout=5"
    ))
    .unwrap();
    assert_eq!(connection.config.get_password(), Some(&b"p@ss"[..]));
    assert_eq!(connection.config.get_ports(), &[6543]);
    assert_eq!(connection.config.get_application_name(), Some("hooks"));
    assert_eq!(
        connection.config.get_connect_timeout(),
        Some(&std::time::Duration::from_secs(5))
    );
    assert_eq!(connection.roots, RootCertificates::File(root.into()));
    // The certificate file does not exist: no client certificate.
    assert_eq!(connection.client_certificate, None);
    assert_eq!(connection.client_key, Some("/none/client.key".into()));
    assert_eq!(connection.key_password.as_deref(), Some("a+b"));
    assert!(!connection.sni);
    assert_eq!(connection.min_protocol, Some(SslVersion::TLS1_3));
}

#[test]
fn verification_without_a_root_certificate_is_refused() {
    assert_eq!(
        read("postgres://u@h/db?sslmode=verify-ca&sslrootcert=/no/such/root.crt").unwrap_err(),
        "sslmode=verify-ca needs a root certificate: set sslrootcert (or create ~/.postgresql/root.crt)"
    );
    assert!(read("postgres://u@h/db?sslmode=verify-full").is_err());
}

#[test]
fn require_checks_the_chain_when_a_root_certificate_exists() {
    let (dir, root) = files();
    let connection = read(&format!(
        "postgres://u@h/db?sslmode=require&sslrootcert={root}"
    ))
    .unwrap();
    assert_eq!(connection.roots, RootCertificates::File(root.into()));
    // libpq's default root file counts too.
    std::fs::create_dir(dir.path().join(".postgresql")).unwrap();
    std::fs::write(dir.path().join(".postgresql/root.crt"), "x").unwrap();
    std::fs::write(dir.path().join(".postgresql/postgresql.crt"), "x").unwrap();
    let env = FakeEnvironment {
        home: Some(dir.path().to_owned()),
        ..FakeEnvironment::default()
    };
    let connection =
        ListenerConnection::from_url_in("postgres://u@h/db?sslmode=require", &env).unwrap();
    assert_eq!(
        connection.roots,
        RootCertificates::File(dir.path().join(".postgresql/root.crt"))
    );
    assert_eq!(
        connection.client_certificate,
        Some(dir.path().join(".postgresql/postgresql.crt"))
    );
    assert_eq!(
        connection.client_key,
        Some(dir.path().join(".postgresql/postgresql.key"))
    );
    assert_eq!(
        connection.crl_file,
        Some(dir.path().join(".postgresql/root.crl"))
    );
}

#[test]
fn pgssl_variables_apply_when_the_url_does_not_say() {
    let (_dir, root) = files();
    let env = FakeEnvironment {
        vars: HashMap::from([
            ("PGSSLMODE", "verify-ca".to_owned()),
            ("PGSSLROOTCERT", root.clone()),
        ]),
        home: None,
    };
    let connection = ListenerConnection::from_url_in("postgres://u@h/db", &env).unwrap();
    assert_eq!(connection.mode, SslMode::VerifyCa);
    assert_eq!(connection.roots, RootCertificates::File(root.into()));
    let connection =
        ListenerConnection::from_url_in("postgres://u@h/db?sslmode=disable", &env).unwrap();
    assert_eq!(connection.mode, SslMode::Disable);
}

#[test]
fn system_roots_mean_verify_full() {
    let connection = read("postgres://u@h/db?sslrootcert=system").unwrap();
    assert_eq!(connection.mode, SslMode::VerifyFull);
    assert_eq!(connection.roots, RootCertificates::System);
    assert_eq!(
        read("postgres://u@h/db?sslrootcert=system&sslmode=require").unwrap_err(),
        "weak sslmode \"require\" may not be used with sslrootcert=system (use \"verify-full\")"
    );
}

#[test]
fn bad_values_are_refused_naming_the_parameter() {
    for (url, error) in [
        (
            "postgres://u@h/db?sslsni=yes",
            "invalid sslsni value: \"yes\"",
        ),
        (
            "postgres://u@h/db?ssl_max_protocol_version=SSLv3",
            "invalid ssl_max_protocol_version value: \"SSLv3\"",
        ),
        (
            "postgres://u@h/db?sslrootcert=%zz",
            "invalid percent-encoded token: \"%zz\"",
        ),
        (
            "postgres://u@h/db?sslcert=a%00b",
            "a file name in the database URL contains a NUL byte",
        ),
        (
            "postgres://u@h/db?gssencmode=require",
            "gssencmode=require is not supported for LISTEN (no GSSAPI encryption); use TLS",
        ),
    ] {
        assert_eq!(read(url).unwrap_err(), error, "{url}");
    }
    assert!(read("postgres://u@h/db?nosuchoption=1")
        .unwrap_err()
        .starts_with("the URL cannot be used for LISTEN: "));
}

#[test]
fn libpq_only_parameters_without_effect_on_listen_are_accepted() {
    let connection = read(
        "postgres://u@h/db?client_encoding=UTF8&sslcompression=0&gssencmode=prefer\
         &fallback_application_name=hooks",
    )
    .unwrap();
    assert_eq!(connection.config.get_application_name(), Some("hooks"));
}
