//! Serving the probe: the socket directory (`sockets`), HTTP on each plugin's
//! socket (`server`), each plugin's latest report kept fresh in the
//! background (`refresh`), and `scope_json`, which checks reports and writes
//! the probe's JSON.

pub mod refresh;
pub mod scope_json;
pub mod server;
pub mod sockets;
