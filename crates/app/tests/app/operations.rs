//! What operators rely on: `config check` shows the effective configuration
//! without a secret in it, every command's `--help` has an example, and the
//! references in docs/ name exactly the settings and metrics the code has.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use okaya_webhooks::config::Settings;

/// The binary with `args`, in an empty directory, with only `env` of the
/// `WEBHOOKS__…` variables (none of the test runner's own).
fn okaya_webhooks(args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_okaya-webhooks"));
    command.args(args).current_dir(dir.path());
    for (name, _) in std::env::vars() {
        if name.starts_with("WEBHOOKS__") {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().copied());
    command.output().expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn repository_file(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|err| panic!("{path}: {err}"))
}

const ADMIN_TOKEN: &str = "ops-admin-token-5d1e";
const SERVICE_TOKEN: &str = "ops-service-token-c07a";
const DATABASE_PASSWORD: &str = "ops-db-password-99f3";

#[test]
fn config_check_prints_the_effective_configuration_without_a_secret() {
    let encryption_key = webhooks_domain::SecretCipher::generate_key();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("webhooks.toml");
    std::fs::write(
        &file,
        format!("[auth]\nadmin_token = \"{ADMIN_TOKEN}\"\n\n[log]\nformat = \"json\"\n"),
    )
    .unwrap();
    let url = format!("postgres://webhooks:{DATABASE_PASSWORD}@db.internal:5432/webhooks");
    let env = [
        ("WEBHOOKS__AUTH__SERVICE_TOKEN", SERVICE_TOKEN),
        ("WEBHOOKS__SECRETS__ENCRYPTION_KEY", encryption_key.as_str()),
        ("WEBHOOKS__DATABASE__URL", url.as_str()),
        ("WEBHOOKS__SERVER__BIND", "0.0.0.0:9090"),
    ];
    let file = file.to_str().unwrap();
    for format in ["toml", "json"] {
        let output = okaya_webhooks(
            &["--config", file, "config", "check", "--format", format],
            &env,
        );
        let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
        assert!(output.status.success(), "{format}: {stderr}");
        for secret in [
            ADMIN_TOKEN,
            SERVICE_TOKEN,
            DATABASE_PASSWORD,
            encryption_key.as_str(),
        ] {
            assert!(
                !stdout.contains(secret),
                "{format} shows {secret}:\n{stdout}"
            );
            assert!(
                !stderr.contains(secret),
                "{format} logs {secret}:\n{stderr}"
            );
        }
        // The three layers: a default, the file, the environment.
        let shown: serde_json::Value = match format {
            "json" => serde_json::from_str(&stdout).unwrap(),
            _ => {
                assert!(stdout.contains("admin_token = \"****\""), "{stdout}");
                assert!(stdout.contains("bind = \"0.0.0.0:9090\""), "{stdout}");
                continue;
            }
        };
        assert_eq!(shown["auth"]["admin_token"], "****");
        assert_eq!(shown["auth"]["service_token"], "****");
        assert_eq!(shown["secrets"]["encryption_key"], "****");
        assert_eq!(
            shown["database"]["url"],
            "postgres://webhooks:****@db.internal:5432/webhooks"
        );
        assert_eq!(shown["server"]["bind"], "0.0.0.0:9090");
        assert_eq!(shown["log"]["format"], "json");
        assert_eq!(shown["delivery"]["timeout"], "15s");
    }
}

#[test]
fn config_check_of_a_bad_setting_prints_one_line_and_exits_2() {
    let output = okaya_webhooks(
        &["config", "check"],
        &[("WEBHOOKS__DELIVERY__TIMEOUT", "soon")],
    );
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(text(&output.stdout), "");
    assert_eq!(
        text(&output.stderr),
        "error: invalid setting delivery.timeout: \"soon\" is not a duration like 15s, 5m or 2h\n"
    );
}

#[test]
fn every_command_help_shows_an_example() {
    let commands: [&[&str]; 13] = [
        &[],
        &["serve"],
        &["migrate"],
        &["admin"],
        &["admin", "create-org"],
        &["admin", "create-group"],
        &["admin", "create-key"],
        &["admin", "revoke-key"],
        &["admin", "set-operator-endpoint"],
        &["admin", "show-operator-endpoint"],
        &["admin", "remove-operator-endpoint"],
        &["config"],
        &["config", "check"],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.push("--help");
        let output = okaya_webhooks(&args, &[]);
        let help = text(&output.stdout);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            text(&output.stderr)
        );
        let example = help
            .lines()
            .skip_while(|line| !line.starts_with("Example"))
            .nth(1)
            .unwrap_or_else(|| panic!("no example in `{}`:\n{help}", args.join(" ")));
        assert!(
            example.trim_start().starts_with("okaya-webhooks"),
            "{args:?}: {example}"
        );
    }
}

/// Runs `admin …` on the SQLite database `database`; answers its JSON, or
/// its standard error when it fails.
fn admin(database: &str, args: &[&str]) -> Result<serde_json::Value, String> {
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let env = [
        ("WEBHOOKS__DATABASE__URL", database),
        ("WEBHOOKS__SECRETS__ENCRYPTION_KEY", key),
    ];
    let output = okaya_webhooks(&[&["admin"], args].concat(), &env);
    if !output.status.success() {
        return Err(text(&output.stderr));
    }
    Ok(serde_json::from_slice(&output.stdout).unwrap())
}

#[test]
fn the_admin_subcommands_set_show_and_remove_an_operator_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("webhooks.db").display());
    let org = admin(&database, &["create-org", "--name", "Acme"]).unwrap();
    let org = org["id"].as_str().unwrap();
    let url = "https://ops.example/webhooks";

    let set = admin(
        &database,
        &[
            "set-operator-endpoint",
            "--org",
            org,
            "--url",
            url,
            "--events",
            "webhook.disabled,secret.rotated",
        ],
    )
    .unwrap();
    assert!(set["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(
        set["events"],
        serde_json::json!(["webhook.disabled", "secret.rotated"])
    );
    let shown = admin(&database, &["show-operator-endpoint", "--org", org]).unwrap();
    let mut expected = set.clone();
    expected.as_object_mut().unwrap().remove("secret");
    assert_eq!(shown, expected);

    let refused = admin(
        &database,
        &[
            "set-operator-endpoint",
            "--org",
            org,
            "--url",
            url,
            "--events",
            "user.created",
        ],
    );
    assert!(refused.unwrap_err().contains("Invalid events"));
    let removed = admin(&database, &["remove-operator-endpoint", "--org", org]).unwrap();
    assert_eq!(removed, serde_json::json!({"org": org, "removed": true}));
    let gone = admin(&database, &["show-operator-endpoint", "--org", org]);
    assert!(gone.unwrap_err().contains("Operator endpoint not found"));
}

/// `(section.key, variable)` of every row of docs/configuration.md's
/// settings tables, which sit under `### \`[section]\`` headings.
fn documented_settings() -> Vec<(String, String)> {
    let reference = repository_file("docs/configuration.md");
    let mut section = None;
    let mut rows = Vec::new();
    for line in reference.lines() {
        if let Some(heading) = line.strip_prefix("### `[") {
            section = heading.split(']').next().map(str::to_owned);
        } else if line.starts_with("## ") {
            section = None;
        } else if let (Some(section), Some(row)) = (&section, line.strip_prefix("| `")) {
            let cells: Vec<&str> = row.split('|').map(|cell| cell.trim()).collect();
            let key = cells[0].trim_end_matches('`');
            let variable = cells[1].trim_matches('`');
            rows.push((format!("{section}.{key}"), variable.to_owned()));
        }
    }
    rows
}

/// `section.key` of every setting in config/default.toml, the optional
/// ones written there as comments (`# admin_token = "…"`) included.
fn default_toml_settings() -> BTreeSet<String> {
    let defaults = repository_file("crates/app/config/default.toml");
    let mut section = String::new();
    let mut keys = BTreeSet::new();
    for line in defaults.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
            continue;
        }
        let Some((key, _)) = line.trim_start_matches('#').trim().split_once('=') else {
            continue;
        };
        let key = key.trim();
        if !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            keys.insert(format!("{section}.{key}"));
        }
    }
    keys
}

#[test]
fn the_configuration_reference_names_every_setting_and_its_variable() {
    // `Settings::effective` shows every field of the settings (through
    // their `Serialize`), so this list cannot miss one.
    let real: BTreeSet<String> = Settings::defaults()
        .unwrap()
        .effective()
        .settings()
        .map(|(name, _)| name)
        .collect();
    let documented = documented_settings();
    let documented_names: BTreeSet<String> =
        documented.iter().map(|(name, _)| name.clone()).collect();
    assert_eq!(
        documented_names, real,
        "docs/configuration.md (left) and the configuration (right) differ"
    );
    assert_eq!(
        documented.len(),
        real.len(),
        "a setting is documented twice"
    );
    assert_eq!(
        default_toml_settings(),
        real,
        "config/default.toml (left) and the configuration (right) differ"
    );
    for (name, variable) in documented {
        let expected = format!("WEBHOOKS__{}", name.replace('.', "__").to_uppercase());
        assert_eq!(variable, expected, "the variable of {name}");
    }
}

/// A metric as the code records it or the documentation lists it.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Metric {
    name: String,
    kind: String,
    labels: BTreeSet<String>,
}

fn rust_sources(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_sources(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
}

/// The string literals of `code`, each with what follows it.
fn string_literals(code: &str) -> Vec<(String, &str)> {
    let mut literals = Vec::new();
    let mut rest = code;
    while let Some(start) = rest.find('"') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('"') else { break };
        literals.push((after[..end].to_owned(), &after[end + 1..]));
        rest = &after[end + 1..];
    }
    literals
}

/// `code` up to the `)` that closes an already open `(`.
fn up_to_closing_parenthesis(code: &str) -> &str {
    let mut depth = 1;
    let mut in_string = false;
    for (at, c) in code.char_indices() {
        match c {
            '"' => in_string = !in_string,
            '(' if !in_string => depth += 1,
            ')' if !in_string => {
                depth -= 1;
                if depth == 0 {
                    return &code[..at];
                }
            }
            _ => {}
        }
    }
    code
}

/// Every `metrics::counter!`, `gauge!` and `histogram!` in `crates/*/src`:
/// its name (the first string) and label keys (each string before `=>`).
fn recorded_metrics() -> BTreeSet<Metric> {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for krate in std::fs::read_dir(&crates).unwrap() {
        let src = krate.unwrap().path().join("src");
        if src.is_dir() {
            rust_sources(&src, &mut files);
        }
    }
    let mut metrics = BTreeSet::new();
    for file in files {
        let code = std::fs::read_to_string(&file).unwrap();
        for kind in ["counter", "gauge", "histogram"] {
            let call = format!("metrics::{kind}!(");
            for (at, _) in code.match_indices(&call) {
                let arguments = up_to_closing_parenthesis(&code[at + call.len()..]);
                let literals = string_literals(arguments);
                let name = literals
                    .first()
                    .unwrap_or_else(|| panic!("{}: a metric named by a variable", file.display()))
                    .0
                    .clone();
                let labels = literals
                    .iter()
                    .filter(|(_, after)| after.trim_start().starts_with("=>"))
                    .map(|(label, _)| label.clone())
                    .collect();
                metrics.insert(Metric {
                    name,
                    kind: kind.to_owned(),
                    labels,
                });
            }
        }
    }
    metrics
}

/// The rows of docs/operations.md's metrics table:
/// `| \`name\` | type | \`label\`, … or none | meaning |`.
fn documented_metrics() -> BTreeSet<Metric> {
    repository_file("docs/operations.md")
        .lines()
        .filter_map(|line| line.strip_prefix("| `webhooks_"))
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            Metric {
                name: format!("webhooks_{}", cells[0].trim_end_matches('`')),
                kind: cells[1].to_owned(),
                labels: cells[2]
                    .split(',')
                    .map(|label| label.trim().trim_matches('`').to_owned())
                    .filter(|label| label != "none")
                    .collect(),
            }
        })
        .collect()
}

#[test]
fn the_metrics_reference_lists_every_metric_with_its_labels() {
    let recorded = recorded_metrics();
    assert!(
        recorded.len() >= 9,
        "the scan of crates/*/src found too few metrics: {recorded:?}"
    );
    assert_eq!(
        documented_metrics(),
        recorded,
        "docs/operations.md (left) and the metrics recorded in crates/ (right) differ"
    );
}
