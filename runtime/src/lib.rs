//! scope-wasm: one daemon that runs Weave Scope probe plugins as sandboxed
//! WebAssembly components, each served on its own UNIX socket.
//!
//! The folders are the stages a plugin goes through:
//! - `load`: from the plugin directory (`watcher`, `plugin_dir`) or a registry
//!   source to compiled code (`loader`, `compile_cache`); `supervisor` loads,
//!   swaps and removes plugins as their files change.
//! - `run`: a plugin's instance (`instance`, `state`) and the one task that calls
//!   it (`worker`), on the guest threads (`guest_runtime`), inside its limits
//!   (`limits`, `quota`, `engine`'s epoch clock).
//! - `serve`: HTTP on each plugin's socket (`server`, `sockets`), the latest
//!   report kept fresh in the background (`refresh`), and `scope_json`, the only
//!   writer of what the probe reads.
//! - `host`: the capabilities a guest may be granted, each on its own view of
//!   the store.
//! - `ops`: what operators read: health, counters, the admin endpoint, the
//!   daemon's own Scope plugin, guest logs.
//! - `config`: the config file, policies, grants and tenants.
//! - `cli`, `dev`, `testing`: the `check`, `new`, `dev` and `test` commands.

pub mod bindings;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod dev;
pub mod host;
pub mod load;
pub mod ops;
pub mod plugin_id;
pub mod run;
pub mod serve;
pub mod testing;

pub use daemon::run;
pub use config::limits::Limits;
pub use config::policy::{Overrides, PluginPolicy, Policy};
pub use config::RunConfig;
