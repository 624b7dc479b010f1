//! `scope-guest-build`: the two steps of building a scope-wasm guest in C or Go
//! that would otherwise need the `wit-bindgen` and `wasm-tools` CLIs.
//!
//! ```text
//! scope-guest-build bindings --lang c|go --out DIR [--wit DIR]
//! scope-guest-build component CORE.wasm -o PLUGIN.wasm [--wit DIR] [--embed]
//! scope-guest-build attach-source RUNTIME.wasm SOURCE_DIR -o PLUGIN.wasm
//! ```
//!
//! `bindings` generates the language's bindings for the `plugin` world of
//! `wit/`. `component` turns a core module built with WASI preview 1 into a
//! component: it embeds the world's type information if asked (Go's toolchain
//! does not), and adapts preview 1 to WASI 0.2 with the reactor adapter that
//! wasmtime ships (the one that lets Go pause its clock inside `cabi_realloc`).
//! `attach-source` makes a plugin of a shared language runtime (the Python
//! one) and a plugin's own files: the files, as a zip archive, go in the
//! runtime's `scope-plugin-source` custom section, which the daemon hands the
//! guest (`host.plugin-source`) and leaves out of what it compiles.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wit_bindgen_core::wit_parser::{Resolve, WorldId};
use wit_bindgen_core::{Files, WorldGenerator};
use wit_component::{ComponentEncoder, StringEncoding};

const WORLD: &str = "plugin";

#[derive(Parser)]
#[command(version, about = "Builds scope-wasm guests in C and Go")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generates bindings for the `plugin` world.
    Bindings {
        #[arg(long, value_enum)]
        lang: Lang,
        /// Where the generated files go (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// The WIT package.
        #[arg(long, default_value = "wit")]
        wit: PathBuf,
        /// Go only: bindings for a library module of this path (`imports/`,
        /// `exports/`) instead of a standalone `wit_component` module.
        #[arg(long)]
        pkg_name: Option<String>,
    },
    /// Makes a component of a core wasm module (WASI preview 1, reactor).
    Component {
        core: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
        /// Embeds the `plugin` world's type information first.
        #[arg(long)]
        embed: bool,
        /// The adapter allocates its state with memory.grow instead of the
        /// module's `cabi_realloc` (for modules whose allocator cannot run yet).
        #[arg(long)]
        realloc_via_memory_grow: bool,
        #[arg(long, default_value = "wit")]
        wit: PathBuf,
    },
    /// Appends a plugin's own files to a shared language runtime component.
    AttachSource {
        runtime: PathBuf,
        /// The plugin's files (every file under it but hidden ones, `target`,
        /// `node_modules` and `__pycache__`), kept with their paths relative to it.
        source: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Lang {
    C,
    Go,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Bindings { lang, out, wit, pkg_name } => bindings(lang, &out, &wit, pkg_name),
        Command::Component { core, output, embed, wit, realloc_via_memory_grow } => {
            component(&core, &output, embed.then_some(wit.as_path()), realloc_via_memory_grow)
        }
        Command::AttachSource { runtime, source, output } => attach_source(&runtime, &source, &output),
    }
}

/// The custom section the daemon reads a plugin's own files from (`runtime/src/load/loader.rs`).
const PLUGIN_SOURCE_SECTION: &str = "scope-plugin-source";

fn attach_source(runtime: &Path, source: &Path, output: &Path) -> Result<()> {
    let mut component = std::fs::read(runtime).with_context(|| format!("reading {}", runtime.display()))?;
    if !component.starts_with(b"\0asm") || component.starts_with(b"\0asm\x01\0\0\0") {
        bail!("{} is not a component", runtime.display());
    }
    let archive = zip_directory(source)?;
    use wasm_encoder::ComponentSection;
    wasm_encoder::CustomSection { name: PLUGIN_SOURCE_SECTION.into(), data: archive.into() }
        .append_to_component(&mut component);
    let partial = output.with_extension("wasm.partial");
    std::fs::write(&partial, &component).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, output).with_context(|| format!("writing {}", output.display()))
}

/// The files under `dir`, stored (not compressed: the runtime reads them with
/// no zlib, and they are small), in a fixed order so a build is reproducible.
fn zip_directory(dir: &Path) -> Result<Vec<u8>> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with('.') || matches!(name, "target" | "__pycache__" | "node_modules") {
                continue;
            }
            if path.is_dir() {
                walk(&path, found)?;
            } else {
                found.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, &mut files)?;
    files.sort();
    let mut archive = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default());
    for file in files {
        let name = file.strip_prefix(dir)?.to_str().with_context(|| format!("{} is not UTF-8", file.display()))?;
        archive.start_file(name, options)?;
        let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        std::io::Write::write_all(&mut archive, &bytes)?;
    }
    Ok(archive.finish()?.into_inner())
}

fn load_world(wit: &Path) -> Result<(Resolve, WorldId)> {
    let mut resolve = Resolve::default();
    let (package, _) = resolve.push_path(wit).with_context(|| format!("reading WIT from {}", wit.display()))?;
    let world = resolve.select_world(&[package], Some(WORLD))?;
    Ok((resolve, world))
}

fn bindings(lang: Lang, out: &Path, wit: &Path, pkg_name: Option<String>) -> Result<()> {
    let (mut resolve, world) = load_world(wit)?;
    let mut generator: Box<dyn WorldGenerator> = match lang {
        Lang::C => wit_bindgen_c::Opts::default().build(),
        Lang::Go => wit_bindgen_go::Opts { pkg_name, ..Default::default() }.build(),
    };
    let mut files = Files::default();
    generator.generate(&mut resolve, world, &mut files)?;
    for (name, contents) in files.iter() {
        let path = out.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn component(core: &Path, output: &Path, embed_from: Option<&Path>, realloc_via_memory_grow: bool) -> Result<()> {
    let mut module = std::fs::read(core).with_context(|| format!("reading {}", core.display()))?;
    if !module.starts_with(b"\0asm\x01\0\0\0") {
        bail!("{} is not a core wasm module", core.display());
    }
    if let Some(wit) = embed_from {
        let (resolve, world) = load_world(wit)?;
        wit_component::embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8, false)?;
    }
    let component = ComponentEncoder::default()
        .module(&module)?
        .adapter(WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER)?
        .realloc_via_memory_grow(realloc_via_memory_grow)
        .validate(true)
        .encode()
        .with_context(|| format!("making a component of {}", core.display()))?;
    std::fs::write(output, component).with_context(|| format!("writing {}", output.display()))?;
    Ok(())
}
