//! What operators read: each plugin's state (`health`) and counters (`stats`),
//! the daemon's own (`daemon_stats`), the admin endpoint (`admin`), the
//! daemon's own Scope plugin (`self_plugin`) and guest output in the log
//! (`guest_log`).

pub mod admin;
pub mod daemon_stats;
pub mod guest_log;
pub mod health;
pub mod self_plugin;
pub mod stats;
