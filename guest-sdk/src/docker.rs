//! The `docker` capability: read-only queries to the host's Docker Engine.
//!
//! Only when the operator grants `docker` to the plugin; otherwise every call
//! returns [`DockerError::Denied`]. A grant scoped by labels shows only the
//! matching containers.

use crate::bindings::scope::plugin::docker as wit;

pub use crate::errors::DockerError;
pub use wit::{ContainerDetails, ContainerSummary, Image, Mount, Network};

/// Running containers (`all = false`) or all of them.
pub fn containers(all: bool) -> Result<Vec<ContainerSummary>, DockerError> {
    wit::list_containers(all).map_err(Into::into)
}

/// One container by ID, ID prefix or name.
pub fn inspect(id: &str) -> Result<ContainerDetails, DockerError> {
    wit::inspect_container(id).map_err(Into::into)
}

pub fn images() -> Result<Vec<Image>, DockerError> {
    wit::list_images().map_err(Into::into)
}

/// A raw GET of an allow-listed read-only Engine API path, e.g. `/info`.
pub fn get(path: &str) -> Result<String, DockerError> {
    wit::get(path).map_err(Into::into)
}
