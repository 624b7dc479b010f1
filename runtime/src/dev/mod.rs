//! `scope-wasm dev DIR`: the plugin author's loop. Watches a plugin project,
//! rebuilds it with its own build rule on every change, reloads it, reports
//! once a second as a probe would poll, and shows the result in the terminal
//! and on a preview page drawn like Scope's node-details panel.
//!
//! The plugin runs as under `scope-wasm test`: against the project's
//! `test/fixture.toml` when it has one (its clock moving with real time), or
//! against this host with `--host`.

mod preview;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use notify::{RecursiveMode, Watcher};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::host::fixture::{Fixture, FixtureData};
use crate::testing::{Options, Session};

pub struct DevOptions {
    pub dir: PathBuf,
    /// Runs in `dir` and leaves `plugin` built.
    pub build: String,
    /// The built plugin, relative to `dir`.
    pub plugin: PathBuf,
    pub id: Option<String>,
    /// The fixture, relative to `dir`; the host itself when `None` or missing.
    pub fixture: Option<PathBuf>,
    pub listen: String,
    pub interval: Duration,
    /// How the capabilities are reached (`--host`), the config's grants.
    pub run: Options,
}

/// What the preview page and `/api/state` show: the one record of the loop's state.
#[derive(Default, Serialize, Clone)]
pub struct DevState {
    pub plugin: String,
    pub label: String,
    pub description: String,
    /// Bumped on every load of a new build, so the page redraws from scratch.
    pub generation: u64,
    pub build: BuildState,
    /// The probe's JSON of the latest good report.
    pub report: Option<Value>,
    /// Why the latest report (or load) failed, if it did.
    pub error: Option<String>,
    pub reports: u64,
    /// How long the last edit took to show: change seen to first report, in ms.
    pub edit_to_preview_ms: Option<u64>,
    /// Of which compiling and starting the new build, in ms.
    pub load_ms: Option<u64>,
    pub fixture: Option<String>,
}

#[derive(Default, Serialize, Clone)]
pub struct BuildState {
    pub ok: bool,
    pub running: bool,
    pub took_ms: u64,
    /// The build's last lines of output when it failed.
    pub log: String,
}

type Shared = Arc<Mutex<DevState>>;
type Current = Arc<tokio::sync::Mutex<Option<Session>>>;

/// Runs until interrupted.
pub async fn run(options: DevOptions) -> Result<()> {
    let dir = options.dir.canonicalize().with_context(|| format!("project {}", options.dir.display()))?;
    let id = options.id.clone().or_else(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()));
    let state: Shared = Arc::default();
    let current: Current = Arc::default();

    let listener = tokio::net::TcpListener::bind(&options.listen).await.with_context(|| format!("listening on {}", options.listen))?;
    let address = listener.local_addr()?;
    tokio::spawn(preview::serve(listener, state.clone(), current.clone()));
    println!("[dev] {}: preview on http://{address}/ (watching for changes; Ctrl-C stops)", dir.display());

    let (changes, mut changed) = mpsc::channel::<()>(64);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access() && e.paths.iter().any(|p| is_source(p))) {
            let _ = changes.try_send(());
        }
    })
    .context("starting the file watcher")?;
    watcher.watch(&dir, RecursiveMode::Recursive).with_context(|| format!("watching {}", dir.display()))?;

    let mut edited = Some(Instant::now());
    let mut ticks = tokio::time::interval(options.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if let Some(since) = edited.take() {
            rebuild(&dir, id.as_deref(), &options, &state, &current, since).await;
            ticks.reset();
        }
        tokio::select! {
            _ = ticks.tick() => {
                if let Some(session) = current.lock().await.as_mut() {
                    session.fixture.advance_ms(options.interval.as_millis() as u64);
                    let outcome = session.report().await;
                    keep(&state, outcome, None);
                }
            }
            Some(()) = changed.recv() => {
                // Editors write a file in several steps: wait for them to finish.
                let since = Instant::now();
                tokio::time::sleep(Duration::from_millis(150)).await;
                while changed.try_recv().is_ok() {}
                edited = Some(since);
            }
        }
    }
}

/// Whether a change at `path` is to the project's sources (not its build output).
fn is_source(path: &Path) -> bool {
    let skipped = path.components().any(|c| {
        let part = c.as_os_str().to_string_lossy();
        matches!(part.as_ref(), "target" | ".git" | "node_modules" | "__pycache__")
    });
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    !skipped && !name.starts_with(".#") && !name.ends_with('~') && !name.ends_with(".swp")
}

/// Builds, and on success loads the new build in place of the old one
/// (which keeps serving while the build runs, and when it fails).
async fn rebuild(dir: &Path, id: Option<&str>, options: &DevOptions, state: &Shared, current: &Current, since: Instant) {
    state.lock().unwrap().build.running = true;
    let started = Instant::now();
    let output = tokio::process::Command::new("sh").arg("-c").arg(&options.build).current_dir(dir).output().await;
    let took_ms = started.elapsed().as_millis() as u64;
    let failure = match output {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!("`{}` failed ({}):\n{}", options.build, out.status, last_lines(&out.stdout, &out.stderr))),
        Err(err) => Some(format!("running `{}`: {err}", options.build)),
    };
    {
        let mut state = state.lock().unwrap();
        state.build = BuildState { ok: failure.is_none(), running: false, took_ms, log: failure.clone().unwrap_or_default() };
    }
    if let Some(failure) = failure {
        println!("[dev] build failed after {took_ms} ms; the previous build stays loaded\n{failure}");
        return;
    }
    let fixture_path = options.fixture.as_ref().map(|f| dir.join(f)).filter(|f| f.is_file());
    let fixture = match &fixture_path {
        Some(path) => FixtureData::read(path).map(Fixture::replay),
        // This host: a recording fixture passes the real answers through.
        None => Ok(Fixture::record()),
    };
    let loaded_at = Instant::now();
    let session = match fixture {
        Ok(fixture) => Session::start(&dir.join(&options.plugin), id, Arc::new(fixture), None, &options.run).await,
        Err(err) => Err(err),
    };
    let mut session = match session {
        Ok(session) => session,
        Err(err) => {
            let message = format!("{err:#}");
            println!("[dev] built in {took_ms} ms, but it does not load: {message}");
            state.lock().unwrap().error = Some(message);
            return;
        }
    };
    let load_ms = loaded_at.elapsed().as_millis() as u64;
    let first = session.report().await;
    let total_ms = since.elapsed().as_millis() as u64;
    let info = session.handle.info.clone();
    {
        let mut state = state.lock().unwrap();
        state.plugin = session.handle.id.to_string();
        state.label = info.label;
        state.description = info.description;
        state.generation += 1;
        state.reports = 0;
        state.report = None;
        state.fixture = fixture_path.as_ref().map(|p| p.display().to_string());
        state.load_ms = Some(load_ms);
    }
    keep(state, first, Some(total_ms));
    *current.lock().await = Some(session);
    let against = fixture_path.map_or_else(|| "this host".to_owned(), |p| p.display().to_string());
    println!("[dev] built in {took_ms} ms, loaded in {load_ms} ms against {against}: edit to preview {total_ms} ms");
}

/// Keeps a report's outcome, printing it when it differs from the last.
fn keep(state: &Shared, outcome: Result<Value, String>, edit_to_preview_ms: Option<u64>) {
    let mut state = state.lock().unwrap();
    if edit_to_preview_ms.is_some() {
        state.edit_to_preview_ms = edit_to_preview_ms;
    }
    match outcome {
        Ok(report) => {
            if state.error.take().is_some() || state.reports == 0 {
                println!("[dev] report: {}", summary(&report));
            }
            state.report = Some(report);
            state.reports += 1;
        }
        Err(error) => {
            if state.error.as_ref() != Some(&error) {
                println!("[dev] report failed: {error}");
            }
            state.error = Some(error);
        }
    }
}

/// `2 nodes in Host, 1 in Container`.
fn summary(report: &Value) -> String {
    let counts: BTreeMap<&str, usize> = report
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(key, topology)| Some((key.as_str(), topology.get("nodes")?.as_object()?.len())))
        .collect();
    if counts.is_empty() {
        return "no nodes".into();
    }
    counts.iter().map(|(topology, n)| format!("{n} node{} in {topology}", if *n == 1 { "" } else { "s" })).collect::<Vec<_>>().join(", ")
}

fn last_lines(stdout: &[u8], stderr: &[u8]) -> String {
    let text = format!("{}{}", String::from_utf8_lossy(stdout), String::from_utf8_lossy(stderr));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
