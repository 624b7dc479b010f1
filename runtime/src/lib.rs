//! scope-wasm: one daemon that runs Weave Scope probe plugins as sandboxed
//! WebAssembly components, each served on its own UNIX socket.
//!
//! Plugin files: `watcher` and `plugin_dir` (what is in the directory) →
//! `supervisor` (load, swap, remove) → `engine` and `compile_cache` (compiled code).
//!
//! Request path: `server` (HTTP on the socket) → `refresh` (the latest report,
//! kept fresh in the background) → `worker` (one call at a time per plugin) → `instance` (wasmtime store, deadline) → guest → `scope_json` (the
//! only writer of what the probe reads).

pub mod admin;
pub mod bindings;
pub mod check;
pub mod compile_cache;
pub mod config;
pub mod daemon;
pub mod daemon_stats;
pub mod dev;
pub mod engine;
pub mod error;
pub mod guest_log;
pub mod guest_runtime;
pub mod health;
pub mod heap;
pub mod host;
pub mod instance;
pub mod limits;
pub mod load;
pub mod loader;
pub mod plugin_dir;
pub mod plugin_id;
pub mod quota;
pub mod refresh;
pub mod scaffold;
pub mod scope_json;
pub mod self_plugin;
pub mod server;
pub mod sockets;
pub mod state;
pub mod stats;
pub mod supervisor;
pub mod testing;
pub mod watcher;
pub mod worker;

pub use daemon::run;
pub use limits::Limits;
pub use config::policy::{Overrides, PluginPolicy, Policy};
pub use config::RunConfig;
