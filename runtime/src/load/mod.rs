//! Getting plugins onto the host from elsewhere than the plugin directory:
//! OCI registries (`registry`) and the puller that keeps each configured
//! source current (`sources`).

pub mod registry;
pub mod sources;
