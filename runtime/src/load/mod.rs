//! Getting plugins onto the host: what is in the plugin directory
//! (`plugin_dir`, followed by `watcher`) or comes from an OCI registry
//! (`registry`, kept current by `sources`), turned into compiled code
//! (`loader`, cached on disk by `compile_cache`, found again without reading
//! a known file by `content_hashes`); `supervisor` keeps the served plugins
//! in line with all of it.

pub mod compile_cache;
pub mod content_hashes;
pub mod loader;
pub mod plugin_dir;
pub mod registry;
pub mod sources;
pub mod supervisor;
pub mod watcher;
