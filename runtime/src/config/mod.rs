//! Configuration: the file and flags (`file`), the lines of settings found
//! wrong (`lines`), what each plugin may do (`policy`, `grants`, `limits`), who
//! may deliver which plugins and how much of the host they share (`tenants`),
//! who may connect to the sockets (`socket_access`), plugins pulled from
//! registries (`sources`), and the checked result the daemon runs with (`run`).

pub mod file;
pub mod grants;
pub mod limits;
pub mod lines;
pub mod policy;
pub mod reload;
pub mod run;
pub mod socket_access;
pub mod sources;
pub mod tenants;

pub use file::{ConfigFile, LogFormat, default_admin_socket, default_cache_dir, default_config_text, default_socket_dir};
pub use run::{DEFAULT_DOCKER_SOCKET, ReloadSource, RunConfig};
