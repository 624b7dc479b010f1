//! Turning a plugin file's bytes into something ready to instantiate.

mod shape;

use std::path::Path;

use anyhow::{Context, Result, bail};
use wasmtime::component::{Component, Linker};

use crate::bindings::PluginPre;
use crate::compile_cache::content_hash;
use crate::plugin_id::PluginId;
use crate::state::PluginState;

pub use shape::{Shape, ShapeLimits};

/// Largest plugin file read. Components that embed a language runtime
/// (Python, JavaScript) weigh 10-20 MB; a bigger file is refused unread.
pub const MAX_PLUGIN_FILE_BYTES: u64 = 128 << 20;

/// A plugin file's bytes, read once: what is hashed is what is compiled.
#[derive(Clone)]
pub struct PluginSource {
    pub id: PluginId,
    /// A `Vec` kept as read: turning it into an `Arc<[u8]>` would copy it, and
    /// a second 20 MB buffer for a moment is memory glibc tends to keep.
    pub bytes: std::sync::Arc<Vec<u8>>,
    /// SHA-256 of `bytes`, hex.
    pub hash: String,
}

impl PluginSource {
    pub fn new(id: PluginId, bytes: Vec<u8>) -> Self {
        let hash = content_hash(&bytes);
        Self { id, bytes: std::sync::Arc::new(bytes), hash }
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
        Ok(Self::new(id, bytes))
    }
}

/// A plugin compiled and linked against the host, instantiated on demand.
pub struct CompiledPlugin {
    pub id: PluginId,
    pub component: Component,
    pub pre: PluginPre<PluginState>,
}

/// Checks a compiled component against the host's world.
pub fn link(linker: &Linker<PluginState>, id: PluginId, component: Component) -> Result<CompiledPlugin> {
    let instance_pre = linker
        .instantiate_pre(&component)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("plugin {id}: it imports something the host does not provide"))?;
    let pre = PluginPre::new(instance_pre).map_err(anyhow::Error::from).with_context(|| {
        format!("plugin {id}: not a Scope plugin (it must export `scope:plugin/handler@0.1.0`)")
    })?;
    Ok(CompiledPlugin { id, component, pre })
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

    #[test]
    fn garbage_and_core_modules_are_named_as_such() {
        let err = check_component_header(b"hello world").unwrap_err();
        assert!(err.to_string().contains("not a WebAssembly file"));
        let err = check_component_header(b"\0asm\x01\0\0\0").unwrap_err();
        assert!(err.to_string().contains("core WebAssembly module"));
        check_component_header(b"\0asm\x0d\0\x01\0").unwrap();
    }
}
