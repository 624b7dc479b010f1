//! `scope-wasm new`: a plugin project that builds as is.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};

use crate::plugin_id::PluginId;

/// The languages a project can be created in, one per SDK in `guest-sdk/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
    C,
    Go,
}

impl Lang {
    fn display_name(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::Python => "Python",
            Lang::Js => "JavaScript",
            Lang::C => "C",
            Lang::Go => "Go",
        }
    }

    /// As `guest-sdk/build.sh` names it.
    fn build_name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
            Lang::C => "c",
            Lang::Go => "go",
        }
    }
}

/// The Rust guest SDK of the source tree this binary was built from.
pub fn bundled_sdk() -> PathBuf {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk");
    sdk.canonicalize().unwrap_or(sdk)
}

pub fn build_hint(_lang: Lang) -> &'static str {
    "make test    # builds target/plugin.wasm and runs its test script with `scope-wasm test`"
}

/// Writes the project into `dir`, which must not exist yet or be empty.
pub fn create(name: &str, lang: Lang, dir: &Path, sdk: &Path) -> Result<()> {
    PluginId::parse(name)?;
    ensure!(
        !dir.exists() || fs::read_dir(dir)?.next().is_none(),
        "{} exists and is not empty",
        dir.display()
    );
    ensure!(sdk.join("Cargo.toml").is_file(), "no guest SDK at {} (use --sdk PATH)", sdk.display());
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // Found from the project by a relative path, so the project and the SDK's
    // clone can move together (or the path be set: see the README).
    let sdk = relative_path(&dir.canonicalize()?, &sdk.canonicalize()?);
    match lang {
        Lang::Rust => rust(name, dir, &sdk),
        other => sdk_project(name, other, dir, &sdk),
    }?;
    write_test(dir, name)
}

/// `to` as seen from `from` (both absolute): `../../work/scope-wasm/guest-sdk`.
pub fn relative_path(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<_> = from.components().collect();
    let to: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut path: PathBuf = std::iter::repeat_n("..", from.len() - common).collect();
    path.extend(&to[common..]);
    if path.as_os_str().is_empty() { PathBuf::from(".") } else { path }
}

fn write(dir: &Path, file: &str, text: &str) -> Result<()> {
    let path = dir.join(file);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

/// The Makefile: the language's `build` rule (it leaves target/plugin.wasm),
/// then `check` and `test`, the same in every language.
fn write_makefile(dir: &Path, name: &str, build_rule: &str) -> Result<()> {
    let text = format!(
        "# Build the plugin into target/plugin.wasm, named {name}.wasm when deployed.\n\
         # scope-wasm comes from PATH, or: make test SCOPE_WASM=/path/to/scope-wasm\n\
         SCOPE_WASM ?= scope-wasm\n\n\
         {build_rule}\n\
         target/{name}.wasm: build\n\
         \tcp target/plugin.wasm target/{name}.wasm\n\n\
         check: target/{name}.wasm scope-wasm-found\n\
         \t$(SCOPE_WASM) check target/{name}.wasm\n\n\
         # Offline, against test/fixture.toml: see test/{name}.test.toml.\n\
         test: target/{name}.wasm scope-wasm-found\n\
         \t$(SCOPE_WASM) test target/{name}.wasm test/{name}.test.toml\n\n\
         scope-wasm-found:\n\
         \t@command -v $(SCOPE_WASM) >/dev/null || {{ echo \"$(SCOPE_WASM) not found: put scope-wasm on PATH, or make SCOPE_WASM=/path/to/scope-wasm\" >&2; exit 1; }}\n\n\
         .PHONY: build check test scope-wasm-found target/{name}.wasm\n"
    );
    write(dir, "Makefile", &text)
}

/// The fixture and the test script every new project starts with.
fn write_test(dir: &Path, name: &str) -> Result<()> {
    let snake = name.replace('-', "_");
    write(
        dir,
        "test/fixture.toml",
        "# What the host answers the plugin under `scope-wasm test` (see docs/plugin-authors.md):\n\
         # hostname, time_ms, settings, [procfs.files], [[docker.containers]], [traffic],\n\
         # [[http_traffic.processes]]. A section left out is a host without it.\n\
         hostname = \"test-host\"\n",
    )?;
    write(
        dir,
        &format!("test/{name}.test.toml"),
        &format!(
            r#"# `make test` runs this against test/fixture.toml; `scope-wasm test --update ...`
# rewrites the files named by `expect` with what the plugin answers now.
fixture = "fixture.toml"

[[step]]
report = true
assert = [
  {{ node = "test-host;<host>", latest = "{snake}_polls", value = "1" }},
  {{ node = "test-host;<host>", control = "reset" }},
]

[[step]]
advance_ms = 1000
report = true
assert = [{{ node = "test-host;<host>", latest = "{snake}_polls", value = "2" }}]

[[step]]
control = "reset"
node = "test-host;<host>"
assert = [{{ node = "test-host;<host>", latest = "{snake}_polls", value = "0" }}]

[[step]]
control = "no-such-control"
node = "test-host;<host>"
error = "no-such-control"
"#
        ),
    )
}

fn write_readme(dir: &Path, name: &str, lang: &str, more: &str) -> Result<()> {
    let text = format!(
        "# {name}\n\nA Weave Scope plugin for scope-wasm, in {lang}.\n\n\
         ```sh\nmake test                      # build, then run test/{name}.test.toml offline\n\
         make check                     # build, then run it once on this host\n\
         scope-wasm dev .               # rebuild on every change, preview on http://127.0.0.1:7070\n\
         cp target/plugin.wasm /var/lib/scope-wasm/plugins/{name}.wasm   # deploy: the daemon picks it up\n```\n\n\
         The plugin ID is the file name: keep `{name}.wasm`.\n\n\
         `scope-wasm` is found on PATH; elsewhere, `make test SCOPE_WASM=/path/to/scope-wasm`.{more}\n"
    );
    write(dir, "README.md", &text)
}

fn rust(name: &str, dir: &Path, sdk: &Path) -> Result<()> {
    let crate_file = name.replace('-', "_");
    let label = name.replace('-', " ");
    write(
        dir,
        "Cargo.toml",
        &format!(
            r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
scope-plugin = {{ path = "{sdk}" }}

# Plugins are shipped as files: small and fast.
[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
strip = true

# A project of its own, even inside another workspace.
[workspace]
"#,
            sdk = sdk.display()
        ),
    )?;
    write(dir, ".cargo/config.toml", "[build]\ntarget = \"wasm32-wasip2\"\n")?;
    write(dir, ".gitignore", "/target\n")?;
    let build = format!(
        "CARGO_TARGET_DIR ?= target\n\
         export CARGO_TARGET_DIR\n\n\
         build:\n\
         \t@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2\n\
         \tcargo build --release\n\
         \tmkdir -p target\n\
         \tcp $(CARGO_TARGET_DIR)/wasm32-wasip2/release/{crate_file}.wasm target/plugin.wasm\n"
    );
    write_makefile(dir, name, &build)?;
    write(
        dir,
        "src/lib.rs",
        &format!(
            r#"//! {name}: a Weave Scope plugin for scope-wasm.

use scope_plugin::*;

#[derive(Default)]
struct Plugin_ {{
    polls: u64,
}}

impl Plugin_ {{
    fn render(&self) -> Report {{
        let node = Node::new(ids::this_host())
            .latest("{crate_file}_polls", self.polls.to_string())
            .active_control("reset");
        let host = Topology::new(TopologyKind::Host)
            .node(node)
            .metadata_template(MetadataTemplate::new("{crate_file}_polls", "Polls").data_type(MetadataDataType::Number))
            .control(Control::new("reset", "Reset the count", "fa-undo"));
        Report::new().with(host)
    }}
}}

impl Plugin for Plugin_ {{
    fn describe(&self) -> PluginInfo {{
        PluginInfo::new("{label}", "What {name} shows")
    }}

    fn report(&mut self) -> Result<Report, String> {{
        self.polls += 1;
        Ok(self.render())
    }}

    fn control(&mut self, request: ControlRequest) -> Result<ControlResponse, ControlError> {{
        match request.control.as_str() {{
            "reset" => {{
                self.polls = 0;
                Ok(ControlResponse::with_report(self.render()))
            }}
            _ => Err(ControlError::UnknownControl(request.control)),
        }}
    }}
}}

export_plugin!(Plugin_);
"#
        ),
    )?;
    write_readme(
        dir,
        name,
        Lang::Rust.display_name(),
        &format!(
            "\nThe SDK, `scope-plugin`, is a path dependency in Cargo.toml ({}, relative to this \
             project); moved elsewhere, point that path (or a `git = ...` source) at the scope-wasm repository's guest-sdk.",
            sdk.display()
        ),
    )?;
    Ok(())
}

/// A project in a language that `guest-sdk/build.sh` builds: its Makefile
/// calls that script (which installs the language's pinned toolchain once).
fn sdk_project(name: &str, lang: Lang, dir: &Path, sdk: &Path) -> Result<()> {
    let snake = name.replace('-', "_");
    let label = name.replace('-', " ");
    let build = lang.build_name();
    write(dir, ".gitignore", if lang == Lang::Js { "/target\n/node_modules\n" } else { "/target\n" })?;
    // Python builds two ways (docs/plugin-authors.md): the app snapshotted
    // into a component of its own, or attached to the shared Python runtime.
    let (choice, build) = match lang {
        Lang::Python => (
            "# `python`: the app snapshotted into a component of its own; `python-shared`: its files\n\
             # attached to the shared Python runtime (one compile for every such plugin).\n\
             PYTHON_BUILD ?= python\n",
            "$(PYTHON_BUILD)",
        ),
        _ => ("", build),
    };
    let build_rule = format!(
        "# The scope-wasm repository's guest-sdk, relative to this project.\n\
         SCOPE_WASM_SDK ?= {}\n{choice}\nbuild:\n\t$(SCOPE_WASM_SDK)/build.sh {build} . target/plugin.wasm\n",
        sdk.display()
    );
    write_makefile(dir, name, &build_rule)?;
    let (file, source) = match lang {
        Lang::Python => ("app.py", python_template(name, &snake, &label)),
        Lang::Js => {
            // The SDK as an npm dependency, by a relative path; the build
            // installs it and puts its module beside app.js.
            let package = serde_json::json!({
                "name": name,
                "private": true,
                "type": "module",
                "dependencies": { "scope-plugin": format!("file:{}", sdk.join("js").display()) },
            });
            write(dir, "package.json", &(serde_json::to_string_pretty(&package)? + "\n"))?;
            ("app.js", js_template(name, &snake, &label))
        }
        Lang::C => ("plugin.c", c_template(name, &snake, &label)),
        Lang::Go => {
            go_module(name, dir, sdk)?;
            ("plugin.go", go_template(name, &snake, &label))
        }
        Lang::Rust => unreachable!("Rust projects are Cargo projects"),
    };
    write(dir, file, &source)?;
    write_readme(
        dir,
        name,
        lang.display_name(),
        &format!(
            "\nThe SDK is the scope-wasm repository's guest-sdk, found at {} relative to this project; \
             moved elsewhere, `make test SCOPE_WASM_SDK=/path/to/scope-wasm/guest-sdk`.{}",
            sdk.display(),
            if lang == Lang::Go {
                " The Go packages are the module `scope-wasm/guest-sdk/go`, which go.mod finds by a `replace` \
                 to the same place: moved elsewhere, point that too (`go mod edit -replace ...`, see go.mod)."
            } else {
                ""
            }
        ),
    )
}

fn python_template(name: &str, snake: &str, label: &str) -> String {
    format!(
        r#""""{name}: a Weave Scope plugin for scope-wasm."""

import scope_plugin as scope
from scope_plugin import MetadataDataType, TopologyKind, ids


class Plugin(scope.Plugin):
    def __init__(self):
        self.polls = 0

    def describe(self):
        return scope.plugin_info("{label}", "What {name} shows")

    def render(self):
        node = scope.node(ids.this_host(), latest={{"{snake}_polls": str(self.polls)}}, active_controls=["reset"])
        return scope.report(
            scope.topology(
                TopologyKind.HOST,
                nodes=[node],
                controls=[scope.control("reset", "Reset the count", "fa-undo")],
                metadata_templates=[scope.metadata_template("{snake}_polls", "Polls", data_type=MetadataDataType.NUMBER)],
            )
        )

    def report(self):
        self.polls += 1
        return self.render()

    def control(self, request):
        if request.control != "reset":
            raise scope.UnknownControl(request.control)
        self.polls = 0
        return scope.shortcut(self.render())


Handler = scope.export(Plugin)
"#
    )
}

fn js_template(name: &str, snake: &str, label: &str) -> String {
    format!(
        r#"// {name}: a Weave Scope plugin for scope-wasm.
import {{
  exportPlugin, report, topology, node, control, metadataTemplate, shortcut, ids, unknownControl,
}} from './scope-plugin.js';

let polls = 0;

function render() {{
  const host = node(ids.thisHost(), {{ latest: {{ {snake}_polls: String(polls) }}, activeControls: ['reset'] }});
  return report(topology('host', {{
    nodes: [host],
    controls: [control('reset', 'Reset the count', 'fa-undo')],
    metadataTemplates: [metadataTemplate('{snake}_polls', 'Polls', {{ dataType: 'number' }})],
  }}));
}}

export const handler = exportPlugin({{
  describe: () => ({{ label: '{label}', description: 'What {name} shows' }}),
  report() {{
    polls += 1;
    return render();
  }},
  control(request) {{
    if (request.control !== 'reset') throw unknownControl(request.control);
    polls = 0;
    return shortcut(render());
  }},
}});
"#
    )
}

fn c_template(name: &str, snake: &str, label: &str) -> String {
    format!(
        r#"/* {name}: a Weave Scope plugin for scope-wasm. */
#include <stdio.h>
#include <stdlib.h>

#include "scope_plugin.h"

static unsigned long long polls;

void plugin_describe(scope_plugin_info_t *info) {{
    scope_info(info, "{label}", "What {name} shows");
}}

static void render(scope_report_t *report) {{
    char *host = scope_this_host();
    char text[24];
    snprintf(text, sizeof text, "%llu", polls);
    scope_topology_t *topology = scope_report_topology(report, SCOPE_PLUGIN_TYPES_TOPOLOGY_KIND_HOST);
    scope_node_t *node = scope_topology_node(topology, host);
    scope_node_latest(node, "{snake}_polls", text);
    scope_node_active_control(node, "reset");
    scope_topology_control(topology, "reset", "Reset the count", "fa-undo", 0, NULL);
    scope_topology_metadata_template(topology, "{snake}_polls", "Polls", 0)->data_type =
        SCOPE_PLUGIN_TYPES_METADATA_DATA_TYPE_NUMBER;
    free(host);
}}

bool plugin_report(scope_report_t *report, scope_string_t *error) {{
    (void)error;
    polls++;
    render(report);
    return true;
}}

bool plugin_control(const scope_control_request_t *request, scope_control_response_t *response,
                    scope_control_error_t *error) {{
    if (!scope_string_eq(&request->control, "reset")) {{
        scope_control_fail(error, SCOPE_UNKNOWN_CONTROL, "%.*s", (int)request->control.len, request->control.ptr);
        return false;
    }}
    polls = 0;
    render(scope_response_shortcut(response));
    return true;
}}
"#
    )
}

/// The project's go.mod: the SDK's module by a relative `replace`, and the
/// SDK's go.sum (the same dependencies), so the first build needs nothing more.
fn go_module(name: &str, dir: &Path, sdk: &Path) -> Result<()> {
    let go_sdk = sdk.join("go");
    let go_mod = format!(
        "module {name}\n\ngo 1.25\n\nrequire {GO_SDK_MODULE} v0.0.0\n\n\
         // The scope-wasm repository's guest-sdk/go, relative to this project; moved elsewhere:\n\
         // go mod edit -replace {GO_SDK_MODULE}=/path/to/scope-wasm/guest-sdk/go\n\
         replace {GO_SDK_MODULE} => {}\n",
        go_sdk.display()
    );
    write(dir, "go.mod", &go_mod)?;
    let sum = dir.join(&go_sdk).join("go.sum");
    let sum = fs::read_to_string(&sum).with_context(|| format!("reading the Go SDK's {}", sum.display()))?;
    write(dir, "go.sum", &sum)
}

/// The Go SDK's module path (guest-sdk/go/go.mod).
const GO_SDK_MODULE: &str = "scope-wasm/guest-sdk/go";

fn go_template(name: &str, snake: &str, label: &str) -> String {
    format!(
        r#"// {name}: a Weave Scope plugin for scope-wasm.
package main

import (
	"strconv"

	"scope-wasm/guest-sdk/go/scope"
	types "scope-wasm/guest-sdk/go/imports/scope_plugin_types"

	// The component's exports: they call the plugin given to scope.Export.
	_ "scope-wasm/guest-sdk/go/exports/wit_exports"
)

type plugin struct {{
	polls uint64
}}

func (p *plugin) Describe() types.PluginInfo {{
	return types.PluginInfo{{Label: "{label}", Description: "What {name} shows"}}
}}

func (p *plugin) render() types.Report {{
	node := types.Node{{
		Id:             scope.ThisHost(),
		Latest:         []types.LatestEntry{{scope.Latest("{snake}_polls", strconv.FormatUint(p.polls, 10))}},
		ActiveControls: []string{{"reset"}},
	}}
	return scope.NewReport(types.Topology{{
		Kind:              types.TopologyKind_Host,
		Nodes:             []types.Node{{node}},
		Controls:          []types.Control{{{{Id: "reset", Human: "Reset the count", Icon: "fa-undo"}}}},
		MetadataTemplates: []types.MetadataTemplate{{{{Id: "{snake}_polls", Label: "Polls", DataType: types.MetadataDataType_Number}}}},
	}})
}}

func (p *plugin) Report() (types.Report, error) {{
	p.polls++
	return p.render(), nil
}}

func (p *plugin) Control(request types.ControlRequest) (types.ControlResponse, error) {{
	if request.Control != "reset" {{
		return types.ControlResponse{{}}, scope.UnknownControl(request.Control)
	}}
	p.polls = 0
	return scope.Shortcut(p.render()), nil
}}

func init() {{ scope.Export(&plugin{{}}) }}

func main() {{}}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::relative_path;
    use std::path::{Path, PathBuf};

    #[test]
    fn the_sdk_is_found_relative_to_the_project() {
        let rel = |from: &str, to: &str| relative_path(Path::new(from), Path::new(to));
        assert_eq!(rel("/tmp/x/demo", "/work/scope-wasm/guest-sdk"), PathBuf::from("../../../work/scope-wasm/guest-sdk"));
        assert_eq!(rel("/work/scope-wasm/plugins/demo", "/work/scope-wasm/guest-sdk"), PathBuf::from("../../guest-sdk"));
        assert_eq!(rel("/work/scope-wasm", "/work/scope-wasm/guest-sdk"), PathBuf::from("guest-sdk"));
        assert_eq!(rel("/a", "/a"), PathBuf::from("."));
    }
}
