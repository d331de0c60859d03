//! The seed document's own example calls (JavaScript with Node's fetch,
//! Python with `requests`, cURL), taken from `docs/seed/webhooks-api.txt`
//! and run verbatim against the binary, with only the host, the API key and
//! the example webhook id replaced. The demo group of a fresh database is
//! the seed's 123456.

use std::process::Command;

use serde_json::{json, Value};
use webhooks_adapters_diesel::TestDatabase;

use crate::support::RunningBinary;

const SEED: &str = include_str!("../../../../docs/seed/webhooks-api.txt");
const SEED_HOST: &str = "https://api.okaya.me";
const SEED_WEBHOOK_ID: &str = "we_abcdefghijklmnopqrstuvwxyz";

/// One call's examples in the three languages.
struct Examples {
    javascript: String,
    python: String,
    curl: String,
}

/// The four "Example Call" blocks, in the seed's order: GET, POST, PUT, DELETE.
fn seed_examples() -> Vec<Examples> {
    SEED.split("Example Call\n- JavaScript\n- Python\n- cURL\n")
        .skip(1)
        .map(|section| {
            let code = section.split("Example Response").next().unwrap();
            let python_at = code.find("import requests").unwrap();
            let curl_at = code.find("curl --location").unwrap();
            Examples {
                javascript: code[..python_at].trim().to_owned(),
                python: code[python_at..curl_at].trim().to_owned(),
                curl: code[curl_at..].trim().to_owned(),
            }
        })
        .collect()
}

fn localize(code: &str, address: &str, key: &str, webhook_id: &str) -> String {
    code.replace(SEED_HOST, address)
        .replace("YOUR_API_KEY", key)
        .replace(SEED_WEBHOOK_ID, webhook_id)
}

fn run(program: &str, args: &[&str], stdin_code: Option<&str>) -> Value {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("{program} is needed for this test: {err}"));
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(stdin_code.unwrap_or("").as_bytes())
        .unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{program} failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| panic!("{program} printed {stdout}"))
}

/// Node: the snippet is an `await` expression; print what it resolves to.
fn run_javascript(code: &str) -> Value {
    let module = format!("const result = {code}\nconsole.log(JSON.stringify(result));\n");
    run("node", &["--input-type=module", "-"], Some(&module))
}

/// Python: run the snippet and print the value of its last expression.
fn run_python(code: &str) -> Value {
    let wrapper = r#"
import ast, json, sys
tree = ast.parse(sys.stdin.read())
*body, last = tree.body
scope = {}
exec(compile(ast.Module(body=body, type_ignores=[]), "example", "exec"), scope)
print(json.dumps(eval(compile(ast.Expression(last.value), "example", "eval"), scope)))
"#;
    run("python3", &["-c", wrapper], Some(code))
}

fn run_curl(code: &str) -> Value {
    run("bash", &["-s"], Some(code))
}

/// What the seed shows for a webhook, with our id (and no secret).
fn seed_webhook(id: &str, url: &str, description: &str) -> Value {
    json!({
        "id": id,
        "description": description,
        "object": "webhook_endpoint",
        "status": "enabled",
        "url": url,
        "enabledEvents": ["user.created", "user.session.result"],
    })
}

fn run_every_example(binary: &RunningBinary) {
    let key = binary.demo_key.as_deref().expect("the demo key is printed");
    let examples = seed_examples();
    assert_eq!(examples.len(), 4, "GET, POST, PUT and DELETE");
    type Runner = fn(&str) -> Value;
    type Pick = fn(&Examples) -> &str;
    let languages: [(&str, Runner, Pick); 3] = [
        ("javascript", run_javascript, |e| &e.javascript),
        ("python", run_python, |e| &e.python),
        ("curl", run_curl, |e| &e.curl),
    ];
    for (language, runner, pick) in languages {
        let code = |n: usize, id: &str| localize(pick(&examples[n]), &binary.address, key, id);

        let created = runner(&code(1, SEED_WEBHOOK_ID));
        let id = created["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{language}: {created}"));
        assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
        let mut without_secret = created.clone();
        without_secret.as_object_mut().unwrap().remove("secret");
        let original = seed_webhook(
            id,
            "https://integration.example/webhook",
            "Webhook Description",
        );
        assert_eq!(without_secret, original, "{language} POST");

        let listed = runner(&code(0, id));
        assert_eq!(listed, json!([original]), "{language} GET");

        let updated = runner(&code(2, id));
        let expected = seed_webhook(
            id,
            "https://integration.example/newWebhook",
            "New Webhook Description",
        );
        assert_eq!(updated, expected, "{language} PUT");

        let deleted = runner(&code(3, id));
        assert_eq!(
            deleted,
            json!({ "message": "success" }),
            "{language} DELETE"
        );
        assert_eq!(
            runner(&code(0, id)),
            json!([]),
            "{language} GET after DELETE"
        );
    }
}

#[tokio::test]
async fn the_seed_examples_work_as_written_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let binary = RunningBinary::start(dir.path(), &[], &[]);
    assert!(
        dir.path().join("data/webhooks.db").exists(),
        "the default SQLite file"
    );
    tokio::task::spawn_blocking(move || run_every_example(&binary))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_seed_examples_work_as_written_on_postgres() {
    let database = TestDatabase::postgres().await;
    let dir = tempfile::tempdir().unwrap();
    let url = database.url().to_owned();
    let key = webhooks_domain::SecretCipher::generate_key();
    let env = [
        ("WEBHOOKS__DATABASE__URL", url.as_str()),
        ("WEBHOOKS__SECRETS__ENCRYPTION_KEY", key.as_str()),
    ];
    let binary = RunningBinary::start(dir.path(), &env, &["serve"]);
    tokio::task::spawn_blocking(move || run_every_example(&binary))
        .await
        .unwrap();
    drop(database);
}
