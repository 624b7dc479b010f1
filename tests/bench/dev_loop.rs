//! Benchmark (not a test): the plugin author's edit-to-preview time under
//! `scope-wasm dev`, for a new Rust and a new Python project (`scope-wasm
//! new`): from saving a change to the preview's state holding the report
//! of the new build, beside the same build run alone after the same edit.
//!
//! `make bench` runs it (3 edits per language); `make test` once, Rust only.

#[path = "../support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::binary;
use support::dev::Dev;

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// The source file a project's label text is in, per language.
fn source(lang: &str) -> &'static str {
    if lang == "python" { "app.py" } else { "src/lib.rs" }
}

/// Renames the `Polls` row to `label` in the project's source: a real edit
/// the author would make, which changes the report.
fn edit(project: &Path, lang: &str, label: &str) {
    let path = project.join(source(lang));
    let text = std::fs::read_to_string(&path).unwrap();
    // The template's label: `..._polls", "Polls"`.
    let key = "_polls\", \"";
    let start = text.find(key).unwrap() + key.len();
    let end = start + text[start..].find('"').unwrap();
    std::fs::write(&path, format!("{}{label}{}", &text[..start], &text[end..])).unwrap();
}

fn label_of(state: &serde_json::Value, snake: &str) -> Option<String> {
    state["report"]["Host"]["metadata_templates"][format!("{snake}_polls")]["label"].as_str().map(str::to_owned)
}

struct Figures {
    build_alone: f64,
    build: f64,
    load: f64,
    dev: f64,
    seen: f64,
}

fn measure(lang: &str, edits: usize, env: &[(&str, String)]) -> Figures {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("bench-{lang}");
    let snake = name.replace('-', "_");
    let project = dir.path().join(&name);
    let made = Command::new(binary()).args(["new", &name, "--lang", lang, "--dir"]).arg(&project).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));

    // The reference: the project's own build after an edit, alone.
    let mut build_alone = Vec::new();
    for round in 0..=edits {
        edit(&project, lang, &format!("Alone {round}"));
        let started = Instant::now();
        let built = Command::new("make").arg("build").current_dir(&project).envs(env.iter().map(|(k, v)| (k, v))).output().unwrap();
        assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
        // The first build fills caches: not counted.
        if round > 0 {
            build_alone.push(started.elapsed().as_secs_f64() * 1e3);
        }
    }

    let dev = Dev::start(&project, &[], env);
    dev.wait_for("loaded the first build", |s| s["generation"].as_u64() >= Some(1) && label_of(s, &snake).is_some());
    let (mut build, mut load, mut edit_to_preview, mut seen) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 1..=edits {
        let label = format!("Edited {round}");
        let before = dev.state()["generation"].as_u64().unwrap();
        let started = Instant::now();
        edit(&project, lang, &label);
        let state = dev.wait_for("showed the edit", |s| s["generation"].as_u64() > Some(before) && label_of(s, &snake).as_deref() == Some(&label));
        seen.push(started.elapsed().as_secs_f64() * 1e3);
        build.push(state["build"]["took_ms"].as_f64().unwrap());
        load.push(state["load_ms"].as_f64().unwrap());
        edit_to_preview.push(state["edit_to_preview_ms"].as_f64().unwrap());
        std::thread::sleep(Duration::from_millis(300));
    }
    Figures { build_alone: median(build_alone), build: median(build), load: median(load), dev: median(edit_to_preview), seen: median(seen) }
}

fn main() {
    let smoke = support::bench_smoke();
    let edits = support::bench_count(3, 1);
    let bin_dir = Path::new(binary()).parent().unwrap().to_owned();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/scaffold-test");
    let env = [("PATH", path), ("CARGO_TARGET_DIR", target.display().to_string())];
    let langs: &[&str] = if smoke { &["rust"] } else { &["rust", "python"] };

    println!("## The author's loop: edit to preview with `scope-wasm dev` ({edits} edits per language, median)\n");
    println!(
        "A project made by `scope-wasm new` gets one real edit at a time (a row's label in its source); the time runs from \
         the save to the preview's state showing the new build's report. The reference is the same project's `make build` \
         after the same edit, run alone. This build of `scope-wasm` compiles plugins (Cranelift, in its compile child) \
         at its own optimisation level.\n"
    );
    println!("| language | `make build` alone | build under dev | compile and start | edit to preview (dev's clock) | edit to preview (seen by a client) | ratio to the build alone |");
    println!("|---|---|---|---|---|---|---|");
    for lang in langs {
        let f = measure(lang, edits, &env);
        println!(
            "| {lang} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {:.2} |",
            f.build_alone,
            f.build,
            f.load,
            f.dev,
            f.seen,
            f.seen / f.build_alone
        );
    }
    println!();
}
