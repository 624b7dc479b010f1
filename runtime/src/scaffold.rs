//! `scope-wasm new`: a plugin project that builds as is.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};

use crate::plugin_id::PluginId;

/// The languages a project can be created in. (Rust today; the other SDKs
/// add theirs here.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
}

/// The Rust guest SDK of the source tree this binary was built from.
pub fn bundled_sdk() -> PathBuf {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk");
    sdk.canonicalize().unwrap_or(sdk)
}

pub fn build_hint(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "make check   # builds target/plugin.wasm and runs `scope-wasm check` on it",
    }
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
    match lang {
        Lang::Rust => rust(name, dir, sdk),
    }
}

fn write(dir: &Path, file: &str, text: &str) -> Result<()> {
    let path = dir.join(file);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
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
    write(
        dir,
        "Makefile",
        &format!(
            "# Build the plugin into target/plugin.wasm, named {name}.wasm when deployed.\n\
             CARGO_TARGET_DIR ?= target\n\
             export CARGO_TARGET_DIR\n\n\
             build:\n\
             \t@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2\n\
             \tcargo build --release\n\
             \tmkdir -p target\n\
             \tcp $(CARGO_TARGET_DIR)/wasm32-wasip2/release/{crate_file}.wasm target/plugin.wasm\n\n\
             check: build\n\
             \tcp target/plugin.wasm target/{name}.wasm\n\
             \tscope-wasm check target/{name}.wasm\n\n\
             .PHONY: build check\n"
        ),
    )?;
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

impl Plugin for Plugin_ {{
    fn describe(&self) -> PluginInfo {{
        PluginInfo::new("{label}", "What {name} shows")
    }}

    fn report(&mut self) -> Result<Report, String> {{
        self.polls += 1;
        let node = Node::new(ids::this_host())
            .latest("{crate_file}_polls", self.polls.to_string())
            .active_control("reset");
        let host = Topology::new(TopologyKind::Host)
            .node(node)
            .metadata_template(MetadataTemplate::new("{crate_file}_polls", "Polls").data_type(MetadataDataType::Number))
            .control(Control::new("reset", "Reset the count", "fa-undo"));
        Ok(Report::new().with(host))
    }}

    fn control(&mut self, request: ControlRequest) -> Result<ControlResponse, ControlError> {{
        match request.control.as_str() {{
            "reset" => {{
                self.polls = 0;
                self.report().map(ControlResponse::with_report).map_err(ControlError::Failed)
            }}
            _ => Err(ControlError::UnknownControl(request.control)),
        }}
    }}
}}

export_plugin!(Plugin_);
"#
        ),
    )?;
    write(
        dir,
        "README.md",
        &format!(
            "# {name}\n\nA Weave Scope plugin for scope-wasm.\n\n\
             ```sh\nmake check                     # build, then run it once with `scope-wasm check`\n\
             cp target/plugin.wasm /var/lib/scope-wasm/plugins/{name}.wasm   # deploy: the daemon picks it up\n```\n\n\
             The plugin ID is the file name: keep `{name}.wasm`.\n"
        ),
    )?;
    Ok(())
}
