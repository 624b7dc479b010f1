//! A test script: the plugin, its fixture, and the steps to run against them
//! with what each must give. TOML (`[[step]]` tables) or JSON (`"step": [...]`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::host::fixture::is_json;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// The plugin file, relative to the script (the command line may name it instead).
    pub plugin: Option<PathBuf>,
    /// The plugin ID to run it as [default: the file name's stem].
    pub id: Option<String>,
    /// The fixture file, relative to the script; none is a host with nothing on it.
    pub fixture: Option<PathBuf>,
    /// Exactly these capabilities granted [default: every one the plugin imports].
    pub grants: Option<Vec<String>>,
    /// The probe ID in the rendered report, as a probe would pass it.
    #[serde(default = "default_probe_id")]
    pub probe_id: String,
    #[serde(rename = "step", alias = "steps", default)]
    pub steps: Vec<Step>,
}

fn default_probe_id() -> String {
    "scope-wasm-test".into()
}

/// One step: change the fixture and/or move its clock, then report or click
/// a control (or neither), then check what came back.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Shown in the output instead of the step's number.
    pub name: Option<String>,
    /// Laid over the fixture: tables merged, other values replaced.
    pub fixture: Option<serde_json::Value>,
    /// Fixture values taken away, by dotted path (`docker`, `procfs.files.stat`):
    /// a host without Docker, a file that is gone.
    #[serde(default)]
    pub remove: Vec<String>,
    /// Moves the fixture's clock forward.
    pub advance_ms: Option<u64>,
    /// `GET /report`.
    #[serde(default)]
    pub report: bool,
    /// `POST /control` with this control's ID, on `node`, with `args`.
    pub control: Option<String>,
    pub node: Option<String>,
    #[serde(default)]
    pub args: BTreeMap<String, String>,
    /// What the answer's JSON must contain: inline, or a file relative to the
    /// script that `--update` (re)writes with the whole answer.
    pub expect: Option<Expectation>,
    /// The step must fail, with a message that contains this.
    pub error: Option<String>,
    /// Direct checks of nodes in the report (of a control: its shortcut report).
    #[serde(rename = "assert", default)]
    pub asserts: Vec<Assertion>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Expectation {
    File(PathBuf),
    Inline(serde_json::Value),
}

/// A check of one node, found by its ID in any topology: a metric's latest
/// value in a range, a control active or not, a `latest` value.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assertion {
    pub node: String,
    pub metric: Option<String>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub equals: Option<f64>,
    pub control: Option<String>,
    pub active: Option<bool>,
    pub latest: Option<String>,
    pub value: Option<String>,
    /// The node must be absent (`false`) or present (`true`, the default).
    pub present: Option<bool>,
}

/// What a step does once the fixture is changed.
pub enum Action<'a> {
    None,
    Report,
    Control { control: &'a str, node: &'a str },
}

impl Step {
    pub fn action(&self) -> Result<Action<'_>> {
        match (self.report, &self.control) {
            (true, Some(_)) => bail!("a step either reports or clicks a control, not both"),
            (true, None) => Ok(Action::Report),
            (false, Some(control)) => {
                let node = self.node.as_deref().with_context(|| format!("control {control:?} needs the `node` it is clicked on"))?;
                Ok(Action::Control { control, node })
            }
            (false, None) => {
                if self.expect.is_some() || self.error.is_some() || !self.asserts.is_empty() {
                    bail!("a step with expectations must `report = true` or click a `control`");
                }
                Ok(Action::None)
            }
        }
    }

    /// How the output names the step.
    pub fn title(&self, number: usize) -> String {
        let what = match (&self.name, self.report, &self.control) {
            (Some(name), _, _) => name.clone(),
            (None, true, _) => "report".into(),
            (None, false, Some(control)) => format!("control {control} on {}", self.node.as_deref().unwrap_or("?")),
            (None, false, None) => {
                let mut parts = Vec::new();
                if self.fixture.is_some() || !self.remove.is_empty() {
                    parts.push("change the fixture".to_owned());
                }
                if let Some(ms) = self.advance_ms {
                    parts.push(format!("advance {ms} ms"));
                }
                parts.join(", ")
            }
        };
        format!("step {number}: {what}")
    }
}

impl Script {
    /// Reads a script; errors name the file and the key.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading test script {}", path.display()))?;
        let script: Script = if is_json(path) {
            serde_json::from_str(&text).map_err(|err| anyhow::anyhow!("{err}"))
        } else {
            toml::from_str(&text).map_err(|err| anyhow::anyhow!("{}", one_line(&err.to_string())))
        }
        .with_context(|| format!("test script {}", path.display()))?;
        for (at, step) in script.steps.iter().enumerate() {
            step.action().with_context(|| format!("test script {}: step {}", path.display(), at + 1))?;
        }
        if script.steps.is_empty() {
            bail!("test script {}: no steps (add [[step]] tables)", path.display());
        }
        Ok(script)
    }
}

fn one_line(text: &str) -> String {
    text.split('\n').map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}
