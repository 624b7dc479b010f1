//! `scope-wasm test`: runs one plugin file offline, against a fixture (what
//! the host capabilities answer) and a script of steps, checking what the
//! probe would get at each; or, with `--record`, against the real host,
//! keeping every answer it got as a fixture to replay.
//!
//! The plugin runs as the daemon runs it (compile, instance, limits, the
//! report checks and rendering) but reports only when a step asks, so its
//! state moves exactly as the script says.

pub mod expect;
pub mod script;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

use crate::bindings::ControlRequest;
use crate::config::grants::Grants;
use crate::config::policy::Policy;
use crate::host::fixture::{Fixture, FixtureData, is_json};
use crate::host::{self, HostServices};
use crate::load::compile_cache::CompileCache;
use crate::load::loader::PluginSource;
use crate::plugin_id::PluginId;
use crate::run::engine::Runtime;
use crate::run::worker::PluginHandle;
use crate::serve::refresh::GoodReport;
use script::{Action, Expectation, Script, Step};

/// What the command was asked to do beyond running the script.
#[derive(Default)]
pub struct Options {
    /// The plugin file, over the script's `plugin`.
    pub plugin: Option<PathBuf>,
    /// Rewrite every expectation file with what the step got.
    pub update: bool,
    /// Run against the real host and write what it answered to this fixture file.
    pub record: Option<PathBuf>,
    /// The host's real name and Docker socket, for `--record`.
    pub hostname: Option<String>,
    pub docker_socket: PathBuf,
    /// The operator's config: the plugin's grants, limits and settings come from it when given.
    pub policy: Option<Policy>,
    /// The compile cache the daemon uses: a plugin tested again unchanged loads at once.
    pub cache_dir: Option<PathBuf>,
}

/// A script's run: what to print, and how many steps failed.
pub struct Outcome {
    pub text: String,
    pub failed: usize,
}

/// Runs one script; errors are problems with the files, not failed steps.
pub async fn run(script_path: Option<&Path>, options: &Options) -> Result<Outcome> {
    let (script, base) = match script_path {
        Some(path) => (Script::read(path)?, path.parent().map(Path::to_path_buf).unwrap_or_default()),
        None if options.record.is_some() => (one_report(), PathBuf::new()),
        None => bail!("name a test script (or --record a fixture with the plugin alone)"),
    };
    let plugin_path = match (&options.plugin, &script.plugin) {
        (Some(path), _) => path.clone(),
        (None, Some(path)) => base.join(path),
        (None, None) => bail!("no plugin file: name it on the command line or as `plugin` in the script"),
    };
    let fixture = Arc::new(match &options.record {
        Some(_) => Fixture::record(),
        None => match &script.fixture {
            Some(path) => Fixture::replay(FixtureData::read(&base.join(path))?),
            None => Fixture::replay(FixtureData::default()),
        },
    });
    let mut session = Session::start(&plugin_path, script.id.as_deref(), fixture.clone(), script.grants.as_deref(), options).await?;
    session.probe_id = script.probe_id.clone();
    let id = session.handle.id.clone();

    let mut out = String::new();
    let shown = script_path.map_or_else(|| "one report".to_owned(), |p| p.display().to_string());
    writeln!(out, "{id} ({}) against {shown}", plugin_path.display())?;
    let mut failed = 0;
    for (at, step) in script.steps.iter().enumerate() {
        let title = step.title(at + 1);
        let problems = match session.step(step, &base, options).await {
            Ok(problems) => problems,
            Err(err) => vec![format!("{err:#}")],
        };
        if problems.is_empty() {
            writeln!(out, "  ok      {title}")?;
        } else {
            failed += 1;
            writeln!(out, "  FAILED  {title}")?;
            for problem in problems {
                writeln!(out, "          {problem}")?;
            }
        }
    }
    if let Some(path) = &options.record {
        std::fs::write(path, fixture.data().to_text(is_json(path))?).with_context(|| format!("writing {}", path.display()))?;
        writeln!(out, "recorded what the host answered into {}", path.display())?;
    }
    let steps = script.steps.len();
    if failed == 0 {
        writeln!(out, "passed: {steps} steps")?;
    } else {
        writeln!(out, "FAILED: {failed} of {steps} steps")?;
    }
    Ok(Outcome { text: out, failed })
}

/// The script of `--record` without one: a single report.
fn one_report() -> Script {
    Script {
        plugin: None,
        id: None,
        fixture: None,
        grants: None,
        probe_id: "scope-wasm-test".into(),
        steps: vec![Step { report: true, ..Default::default() }],
    }
}

/// A plugin loaded for a test run (or `scope-wasm dev`): reporting and
/// answering controls only when asked.
pub struct Session {
    pub handle: Arc<PluginHandle>,
    pub fixture: Arc<Fixture>,
    probe_id: String,
    /// For a control the plugin refuses: whether the report declares it.
    last_report: Option<Arc<GoodReport>>,
}

impl Session {
    /// Compiles and starts the plugin in `plugin_path` as `id` (or as its file
    /// name says) with `fixture` behind its capabilities, granted `grants`
    /// (or what the config gives it, or everything it imports).
    pub async fn start(plugin_path: &Path, id: Option<&str>, fixture: Arc<Fixture>, grants: Option<&[String]>, options: &Options) -> Result<Session> {
        let id = match id {
            Some(id) => PluginId::parse(id)?,
            None => PluginId::from_wasm_path(plugin_path).or_else(|_| PluginId::parse("plugin"))?,
        };
        let source = PluginSource::read(id.clone(), plugin_path)?;
        let mut policy = options.policy.as_ref().map_or_else(|| Policy::default().for_plugin(&id), |p| p.for_plugin(&id));
        let cache = options.cache_dir.as_deref().and_then(|dir| CompileCache::open(dir).ok());
        let (compiled, _) = Runtime::new(cache)
            .compile(&source, policy.limits.max_wasm_stack)
            .await
            .with_context(|| plugin_path.display().to_string())?;
        if let Some(names) = grants {
            policy.grants = Grants::from_names(names).context("the script's `grants`")?;
        } else if options.policy.is_none() {
            // Nothing real to protect: grant what the plugin asks for.
            let engine = compiled.pre.engine();
            let imports: Vec<String> = compiled
                .component
                .component_type()
                .imports(engine)
                .filter_map(|(name, _)| host::capability_of_import(name).map(str::to_owned))
                .collect();
            policy.grants = Grants::from_names(&imports).context("granting what the plugin imports")?;
        }
        let hostname: Arc<str> = options.hostname.clone().unwrap_or_else(crate::daemon::system_hostname).into();
        let services = Arc::new(HostServices::for_test(fixture.clone(), hostname, &options.docker_socket));
        let handle = PluginHandle::start_on_demand(&compiled, services, policy).await.map_err(|err| anyhow!("{err}"))?;
        Ok(Session { handle, fixture, probe_id: "scope-wasm-test".into(), last_report: None })
    }

    /// Carries out a step; what is wrong with its outcome, one line each.
    async fn step(&mut self, step: &Step, base: &Path, options: &Options) -> Result<Vec<String>> {
        if self.fixture.replaying() {
            let mut data = self.fixture.data();
            if let Some(patch) = &step.fixture {
                data = data.patched(patch)?;
            }
            for path in &step.remove {
                data = data.without(path)?;
            }
            self.fixture.set_data(data);
        }
        if let Some(ms) = step.advance_ms {
            self.fixture.advance_ms(ms);
        }
        let answer = match step.action()? {
            Action::None => return Ok(Vec::new()),
            Action::Report => self.report().await,
            Action::Control { control, node } => self.control(control, node, &step.args).await,
        };
        let mut problems = Vec::new();
        let answer = match (answer, &step.error) {
            (Err(message), Some(want)) if message.contains(want.as_str()) => return Ok(Vec::new()),
            (Err(message), Some(want)) => return Ok(vec![format!("failed with {message:?}, expected an error containing {want:?}")]),
            (Err(message), None) => return Ok(vec![message]),
            (Ok(_), Some(want)) => return Ok(vec![format!("succeeded, expected an error containing {want:?}")]),
            (Ok(answer), None) => answer,
        };
        match &step.expect {
            None => {}
            Some(Expectation::Inline(want)) => problems.extend(expect::subset(want, &answer)),
            Some(Expectation::File(file)) => {
                let path = base.join(file);
                if options.update {
                    let text = serde_json::to_string_pretty(&answer)? + "\n";
                    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
                    }
                    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
                } else {
                    match std::fs::read_to_string(&path) {
                        Ok(text) => {
                            let want: Value = serde_json::from_str(&text).with_context(|| format!("expectation {}", path.display()))?;
                            problems.extend(expect::subset(&want, &answer).into_iter().map(|p| format!("{}: {p}", file.display())));
                        }
                        Err(err) if err.kind() == std::io::ErrorKind::NotFound => problems.push(format!(
                            "expectation {} does not exist; `--update` records this step's answer there",
                            path.display()
                        )),
                        Err(err) => return Err(anyhow!("reading {}: {err}", path.display())),
                    }
                }
            }
        }
        // A control's assertions are about its shortcut report.
        let report = answer.get("shortcutReport").unwrap_or(&answer);
        for assertion in &step.asserts {
            problems.extend(expect::check(assertion, report));
        }
        Ok(problems)
    }

    /// The probe's JSON for `GET /report`, or the error it would get.
    pub async fn report(&mut self) -> Result<Value, String> {
        let good = self.handle.report(self.handle.deadline()).await.map_err(|err| err.to_string())?;
        let body = good.body(Some(&self.probe_id)).map_err(|detail| format!("invalid report: {detail}"))?;
        self.last_report = Some(good);
        serde_json::from_slice(&body).map_err(|err| format!("re-reading the report: {err}"))
    }

    /// The JSON answer of `POST /control`, or the error the user would see.
    pub async fn control(&mut self, control: &str, node: &str, args: &std::collections::BTreeMap<String, String>) -> Result<Value, String> {
        let request = ControlRequest {
            app_id: "scope-wasm-test".into(),
            node_id: node.to_owned(),
            control: control.to_owned(),
            args: args.clone().into_iter().collect(),
        };
        let answer = self.handle.control(request, Some(self.probe_id.clone()), self.handle.deadline()).await;
        match answer.map_err(|err| err.to_string())? {
            Ok(body) => serde_json::from_slice(&body).map_err(|err| format!("re-reading the control's answer: {err}")),
            Err(refusal) => Err(crate::serve::scope_json::control_refusal_message(&self.handle.id, &refusal, node, |c| {
                self.last_report.as_ref().is_some_and(|r| r.declares_control(c))
            })),
        }
    }
}
