//! Python plugins on the shared Python runtime (`guest-sdk/build.sh
//! python-shared`): each file is the one runtime component with the plugin's
//! own files in its `scope-plugin-source` section. Through the real daemon:
//! plugins from different apps are compiled once between them and each
//! answers as its own app says; an app that cannot load fails alone, with the
//! cause and the place in its files named.

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use support::{Client, Daemon, report_path};

const HOST_NODE: &str = "test-host;<host>";

/// A plugin file of the shared runtime and `files` (name, contents).
fn plugin_of(files: &[(&str, &str)], out: &Path) -> PathBuf {
    let source = tempfile::tempdir().unwrap();
    for (name, contents) in files {
        let path = source.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
    support::attach_to_shared_python_runtime(source.path(), out);
    out.to_owned()
}

/// An app whose host node says `word`, from a module of its own beside app.py
/// and a standard library module imported at run time.
fn app(word: &str) -> String {
    format!(
        r#"import textwrap
import scope_plugin as scope
from scope_plugin import ids
from words import shout

class Words(scope.Plugin):
    def describe(self):
        return scope.plugin_info("Words {word}", "says a word")

    def report(self):
        node = scope.node(ids.this_host(), latest={{"word": textwrap.dedent(shout("{word}"))}})
        return scope.report(scope.topology(scope.TopologyKind.HOST, nodes=[node]))

Handler = scope.export(Words)
"#
    )
}

const WORDS: &str = "def shout(word):\n    return word.upper() + '!'\n";

async fn metric(daemon: &Daemon, name: &str) -> f64 {
    let metrics = daemon.admin_get("/metrics").await;
    let line = metrics.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("no {name} in:\n{metrics}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn plugins_from_different_apps_share_one_compile_and_answer_as_their_own_app() {
    let dir = tempfile::tempdir().unwrap();
    let words = ["alpha", "beta", "gamma"];
    let files: Vec<(String, PathBuf)> = words
        .iter()
        .map(|word| {
            let name = format!("words-{word}.wasm");
            let file = plugin_of(&[("app.py", &app(word)), ("words.py", WORDS)], &dir.path().join(&name));
            (name, file)
        })
        .collect();
    let files: Vec<(&str, PathBuf)> = files.iter().map(|(name, file)| (name.as_str(), file.clone())).collect();
    let mut daemon = Daemon::start(&files, &["--refresh-ms", "60000"]);
    for word in words {
        let mut client = Client::connect(&daemon.socket(&format!("words-{word}")).await).await;
        let reply = client.get(&report_path("p")).await;
        assert_eq!(reply.status, 200, "{word}: {}", reply.json);
        let said = &reply.json["Host"]["nodes"][HOST_NODE]["latest"]["word"]["value"];
        assert_eq!(said, &Value::from(format!("{}!", word.to_uppercase())), "{}", reply.json);
        let plugins = reply.json["Plugins"].to_string();
        assert!(plugins.contains(&format!("Words {word}")), "{plugins}");
    }
    // Three files, three hashes, one compile: the runtime's.
    assert_eq!(metric(&daemon, "scope_wasm_compiles_total").await, 1.0, "{}", daemon.log());

    // A restart finds that one compile in the cache for all three; the next
    // finds each file by its identity, reading its source section alone.
    for _ in 0..2 {
        daemon.restart();
        for word in words {
            let mut client = Client::connect(&daemon.socket(&format!("words-{word}")).await).await;
            let reply = client.get(&report_path("p")).await;
            let said = &reply.json["Host"]["nodes"][HOST_NODE]["latest"]["word"]["value"];
            assert_eq!(said, &Value::from(format!("{}!", word.to_uppercase())), "{}", reply.json);
        }
        assert_eq!(metric(&daemon, "scope_wasm_compiles_total").await, 0.0, "{}", daemon.log());
    }
    // What let the last restart skip reading them: each file's code hash and
    // the place of its section, remembered by the file's identity.
    let memo = std::fs::read_to_string(daemon.cache_dir.join("content-hashes")).unwrap();
    assert_eq!(memo.lines().filter(|line| line.split(' ').count() == 9).count(), 3, "{memo}");
}

#[tokio::test]
async fn an_app_that_cannot_load_fails_alone_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let broken = [
        ("syntax", vec![("app.py", "import scope_plugin as scope\n\ndef broken(:\n    pass\n")], "SyntaxError"),
        ("missing", vec![("app.py", "import no_such_module_anywhere\n")], "No module named 'no_such_module_anywhere' (app.py, line 1)"),
        ("empty", vec![("README", "no app here\n")], "the plugin's files have no app.py"),
        ("nohandler", vec![("app.py", "x = 1\n")], "app.py defines no `Handler`"),
    ];
    let mut files: Vec<(String, PathBuf)> = broken
        .iter()
        .map(|(name, app_files, _)| {
            let name = format!("{name}.wasm");
            (name.clone(), plugin_of(app_files, &dir.path().join(&name)))
        })
        .collect();
    files.push(("good.wasm".into(), plugin_of(&[("app.py", &app("fine")), ("words.py", WORDS)], &dir.path().join("good.wasm"))));
    let files: Vec<(&str, PathBuf)> = files.iter().map(|(name, file)| (name.as_str(), file.clone())).collect();
    let daemon = Daemon::start(&files, &["--refresh-ms", "60000"]);
    let mut client = Client::connect(&daemon.socket("good").await).await;
    assert_eq!(client.get(&report_path("p")).await.status, 200);
    for (id, _, cause) in &broken {
        daemon.wait_for_log_of(id, &format!("plugin {id}: ")).await;
        let started = std::time::Instant::now();
        let detail = loop {
            let status: Value = serde_json::from_str(&daemon.admin_get("/status").await).unwrap();
            let entry = status.as_array().unwrap().iter().find(|p| p["id"] == *id).cloned().unwrap_or_default();
            if entry["state"] == "failed" && !entry["detail"].as_str().unwrap_or("").is_empty() {
                break entry["detail"].as_str().unwrap().to_owned();
            }
            assert!(started.elapsed().as_secs() < 60, "{id} never failed; {}", daemon.account_of(id).await);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert!(detail.contains(&format!("plugin {id}")), "{id}: {detail}");
        assert!(detail.contains("the plugin's Python files did not load"), "{id}: {detail}");
        assert!(detail.contains(cause), "{id}: wanted {cause:?} in: {detail}");
    }
    // The good one went on serving throughout.
    assert_eq!(client.get(&report_path("p")).await.status, 200);
}
