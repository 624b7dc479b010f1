//! Getting plugins onto the host: from elsewhere than the plugin directory,
//! OCI registries (`registry`) and the puller that keeps each configured
//! source current (`sources`); and what finds a known file's compiled code
//! without reading it again (`content_hashes`).

pub mod content_hashes;
pub mod registry;
pub mod sources;
