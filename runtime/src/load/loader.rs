//! Turning a plugin file's bytes into something ready to instantiate.

mod shape;

use std::path::Path;

use anyhow::{Context, Result, bail};
use wasmtime::component::{Component, Linker};

use crate::bindings::PluginPre;
use crate::load::compile_cache::{content_hash, content_hashes};
use crate::load::content_hashes::{FileIdentity, KnownContent, KnownSource};
use crate::plugin_id::PluginId;
use crate::run::state::PluginState;

pub use shape::{Shape, ShapeLimits};

/// Largest plugin file read. Components that embed a language runtime
/// (Python, JavaScript) weigh 10-20 MB; a bigger file is refused unread.
pub const MAX_PLUGIN_FILE_BYTES: u64 = 128 << 20;

/// The custom section that carries a plugin's own source (its app) beside a
/// language runtime shared by many plugins (`guest-sdk/build.sh
/// python-shared`). Custom sections do not change compiled code, so every
/// plugin on the same runtime compiles to one artifact, mapped once.
pub const PLUGIN_SOURCE_SECTION: &str = "scope-plugin-source";

/// Largest plugin source section: the app and its modules, not a runtime.
pub const MAX_PLUGIN_SOURCE_BYTES: usize = 8 << 20;

/// A plugin file's bytes, read once: what is hashed is what is compiled.
#[derive(Clone)]
pub struct PluginSource {
    pub id: PluginId,
    /// The bytes compiled: the file without its plugin source section. A
    /// `Vec` kept as read: turning it into an `Arc<[u8]>` would copy it, and
    /// a second 20 MB buffer for a moment is memory glibc tends to keep.
    pub bytes: std::sync::Arc<Vec<u8>>,
    /// SHA-256 of the whole file, hex: the plugin's identity (policies name it).
    pub hash: String,
    /// SHA-256 of `bytes`: what the compiled code is cached and shared by
    /// (`hash` when the file carries no plugin source).
    pub code_hash: String,
    /// The plugin source section's contents, handed to the guest by `host.plugin-source`.
    pub plugin_source: Option<std::sync::Arc<[u8]>>,
    /// Where those contents are in the file.
    pub source_range: Option<std::ops::Range<usize>>,
}

impl PluginSource {
    pub fn new(id: PluginId, mut bytes: Vec<u8>) -> Result<Self> {
        let Some((section, contents)) = plugin_source_section(&bytes) else {
            let hash = content_hash(&bytes);
            let (code_hash, bytes) = (hash.clone(), std::sync::Arc::new(bytes));
            return Ok(Self { id, bytes, hash, code_hash, plugin_source: None, source_range: None });
        };
        if contents.len() > MAX_PLUGIN_SOURCE_BYTES {
            bail!(
                "plugin {id}: its source section ({PLUGIN_SOURCE_SECTION}) is {} KiB, more than the {} MiB a plugin's \
                 own source may be",
                contents.len() >> 10,
                MAX_PLUGIN_SOURCE_BYTES >> 20
            );
        }
        let plugin_source: std::sync::Arc<[u8]> = bytes[contents.clone()].into();
        // Usually the last section (appended by the build): cut off, not
        // copied, and the code hashed once for both hashes.
        let (code_hash, hash) = if section.end == bytes.len() {
            let hashes = content_hashes(&bytes[..section.start], &bytes[section.start..]);
            bytes.truncate(section.start);
            hashes
        } else {
            let hash = content_hash(&bytes);
            bytes.drain(section);
            (content_hash(&bytes), hash)
        };
        let (plugin_source, source_range) = (Some(plugin_source), Some(contents));
        Ok(Self { id, bytes: std::sync::Arc::new(bytes), hash, code_hash, plugin_source, source_range })
    }

    /// What a restart needs to find this file's code without reading it all.
    pub fn known_content(&self) -> KnownContent {
        let source = self.source_range.as_ref().map(|range| KnownSource {
            code_hash: self.code_hash.clone(),
            contents: range.start as u64..range.end as u64,
        });
        KnownContent { hash: self.hash.clone(), source }
    }

    /// The plugin source section of the file at `path` (whose identity was
    /// `identity` when `known` was learnt), read alone; `None` if the file
    /// changed since or cannot be read.
    pub fn read_known_source(path: &Path, identity: &FileIdentity, known: &KnownSource) -> Option<std::sync::Arc<[u8]>> {
        use std::os::unix::fs::FileExt;
        let file = std::fs::File::open(path).ok()?;
        let len = usize::try_from(known.contents.end.checked_sub(known.contents.start)?).ok()?;
        if len > MAX_PLUGIN_SOURCE_BYTES {
            return None;
        }
        let mut contents = vec![0; len];
        file.read_exact_at(&mut contents, known.contents.start).ok()?;
        // Read from the file that was hashed: its identity is unchanged after the read.
        let unchanged = file.metadata().ok().is_some_and(|meta| FileIdentity::of(&meta) == *identity);
        unchanged.then(|| contents.into())
    }

    pub fn read(id: PluginId, path: &Path) -> Result<Self> {
        use std::io::Read;
        let file = std::fs::File::open(path).with_context(|| format!("plugin {id}: reading {}", path.display()))?;
        // Sized once from the file's length, not grown by doubling through a big file.
        let expected = file.metadata().map_or(0, |meta| meta.len().min(MAX_PLUGIN_FILE_BYTES + 1));
        let mut bytes = Vec::with_capacity(expected as usize + 1);
        file.take(MAX_PLUGIN_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("plugin {id}: reading {}", path.display()))?;
        if bytes.len() as u64 > MAX_PLUGIN_FILE_BYTES {
            bail!("plugin {id}: {} is larger than {} MiB", path.display(), MAX_PLUGIN_FILE_BYTES >> 20);
        }
        Self::new(id, bytes)
    }
}

/// Where a component's top-level plugin source section is: the whole section
/// (header included) and its contents. Nested modules and components are
/// skipped unread; a file wasmparser cannot walk has none (the compiler names
/// what is wrong with it).
fn plugin_source_section(bytes: &[u8]) -> Option<(std::ops::Range<usize>, std::ops::Range<usize>)> {
    use wasmparser::{Chunk, Parser, Payload};
    let mut parser = Parser::new(0);
    let mut offset = 0;
    loop {
        let Ok(Chunk::Parsed { consumed, payload }) = parser.parse(&bytes[offset..], true) else {
            return None;
        };
        let start = offset;
        offset += consumed;
        match payload {
            Payload::ModuleSection { unchecked_range, .. } | Payload::ComponentSection { unchecked_range, .. } => {
                offset = unchecked_range.end;
                if offset > bytes.len() {
                    return None;
                }
            }
            Payload::CustomSection(section) if section.name() == PLUGIN_SOURCE_SECTION => {
                return Some((start..offset, section.data_offset()..section.data_offset() + section.data().len()));
            }
            Payload::End(_) => return None,
            _ => {}
        }
    }
}

/// A plugin compiled and linked against the host, instantiated on demand.
pub struct CompiledPlugin {
    pub id: PluginId,
    pub component: Component,
    pub pre: PluginPre<PluginState>,
    /// The plugin's own source, for a plugin on a shared language runtime.
    pub plugin_source: Option<std::sync::Arc<[u8]>>,
}

/// Checks a compiled component against the host's world; `plugin_source`
/// is the file's source section, if it has one.
pub fn link(
    linker: &Linker<PluginState>,
    id: PluginId,
    component: Component,
    plugin_source: Option<std::sync::Arc<[u8]>>,
) -> Result<CompiledPlugin> {
    let instance_pre = linker
        .instantiate_pre(&component)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("plugin {id}: it imports something the host does not provide"))?;
    let pre = PluginPre::new(instance_pre).map_err(anyhow::Error::from).with_context(|| {
        format!("plugin {id}: not a Scope plugin (it must export `scope:plugin/handler@0.1.0`)")
    })?;
    Ok(CompiledPlugin { id, component, pre, plugin_source })
}

/// Tells a garbage file and a core module apart from a component before
/// wasmtime's parser gives a less helpful message.
pub fn check_component_header(bytes: &[u8]) -> Result<()> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        bail!("not a WebAssembly file (no `\\0asm` header)");
    }
    // Bytes 4..8: version and layer. Core modules are version 1, layer 0.
    if bytes[4..8] == [1, 0, 0, 0] {
        bail!(
            "a core WebAssembly module, not a component: build for `wasm32-wasip2` \
             or wrap it with `wasm-tools component new`"
        );
    }
    Ok(())
}

/// Refuses a file whose structure would cost the compiler out of all
/// proportion (see `shape`), naming what is wrong and the limit.
pub fn check_shape(bytes: &[u8], limits: &ShapeLimits) -> Result<Shape> {
    shape::check(bytes, limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A component (`(component)` is 8 bytes of header) with a custom section appended.
    fn with_custom_section(name: &str, data: &[u8]) -> Vec<u8> {
        let mut bytes = wat::parse_str("(component)").unwrap();
        let mut contents = vec![name.len() as u8];
        contents.extend(name.as_bytes());
        contents.extend(data);
        bytes.push(0);
        let mut n = contents.len();
        while n >= 0x80 {
            bytes.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        bytes.push(n as u8);
        bytes.extend(contents);
        bytes
    }

    #[test]
    fn the_plugin_source_section_is_handed_over_and_left_out_of_the_code() {
        let id = PluginId::parse("p").unwrap();
        let bare = wat::parse_str("(component)").unwrap();
        let one = PluginSource::new(id.clone(), with_custom_section(PLUGIN_SOURCE_SECTION, b"app one")).unwrap();
        let two = PluginSource::new(id.clone(), with_custom_section(PLUGIN_SOURCE_SECTION, b"app two")).unwrap();
        assert_eq!(one.plugin_source.as_deref(), Some(&b"app one"[..]));
        assert_eq!(*one.bytes, bare);
        assert_ne!(one.hash, two.hash, "the files differ");
        assert_eq!(one.code_hash, two.code_hash, "their code does not");
        assert_eq!(one.code_hash, content_hash(&bare));

        // Any other custom section is code like the rest.
        let other = PluginSource::new(id.clone(), with_custom_section("name-of-mine", b"x")).unwrap();
        assert!(other.plugin_source.is_none());
        assert_eq!(other.code_hash, other.hash);

        let huge = vec![b'x'; MAX_PLUGIN_SOURCE_BYTES + 1];
        let err = PluginSource::new(id, with_custom_section(PLUGIN_SOURCE_SECTION, &huge)).err().unwrap().to_string();
        assert!(err.contains("plugin p: its source section (scope-plugin-source) is 8192 KiB"), "{err}");
    }

    #[test]
    fn garbage_and_core_modules_are_named_as_such() {
        let err = check_component_header(b"hello world").unwrap_err();
        assert!(err.to_string().contains("not a WebAssembly file"));
        let err = check_component_header(b"\0asm\x01\0\0\0").unwrap_err();
        assert!(err.to_string().contains("core WebAssembly module"));
        check_component_header(b"\0asm\x0d\0\x01\0").unwrap();
    }
}
