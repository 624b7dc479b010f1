//! Node IDs as the Scope probe writes them, so a plugin's nodes merge with the
//! probe's own (`report/id.go` in Scope).

/// `<hostname>;<host>`
pub fn host(hostname: &str) -> String {
    format!("{hostname};<host>")
}

/// The node ID of the host this plugin runs on.
pub fn this_host() -> String {
    host(&crate::host::hostname())
}

/// `<full container id>;<container>`
pub fn container(container_id: &str) -> String {
    format!("{container_id};<container>")
}

/// The container ID in a container node ID (`<id>;<container>`), e.g. the
/// `node_id` of a control request.
pub fn container_id_of(node_id: &str) -> Option<&str> {
    node_id.strip_suffix(";<container>").filter(|id| !id.is_empty())
}

/// `<image name>;<container_image>`
pub fn container_image(image_name: &str) -> String {
    format!("{image_name};<container_image>")
}

/// `<hostname>;<pid>` (processes carry no tag)
pub fn process(hostname: &str, pid: u32) -> String {
    format!("{hostname};{pid}")
}

/// `<uid>;<pod>`
pub fn pod(uid: &str) -> String {
    format!("{uid};<pod>")
}

/// `<uid>;<service>`
pub fn service(uid: &str) -> String {
    format!("{uid};<service>")
}

/// `<uid>;<deployment>`
pub fn deployment(uid: &str) -> String {
    format!("{uid};<deployment>")
}

/// `<uid>;<replica_set>`
pub fn replica_set(uid: &str) -> String {
    format!("{uid};<replica_set>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_match_the_probe() {
        assert_eq!(host("node-1"), "node-1;<host>");
        assert_eq!(container("abc"), "abc;<container>");
        assert_eq!(container_image("docker.io/alpine"), "docker.io/alpine;<container_image>");
        assert_eq!(process("node-1", 42), "node-1;42");
        assert_eq!(pod("u-1"), "u-1;<pod>");
        assert_eq!(container_id_of("abc;<container>"), Some("abc"));
        assert_eq!(container_id_of(";<container>"), None);
        assert_eq!(container_id_of("node-1;<host>"), None);
    }
}
