//! The deployment files: the Kubernetes manifest against the API schemas
//! (offline), the config it carries and the bundled one with `config check`,
//! and the systemd unit with `systemd-analyze verify`.

mod support;

#[test]
fn deployment_files_validate() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::process::Command::new(root.join("deploy/validate.sh")).arg(support::binary()).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("passed for resource daemonset/scope-wasm"), "{text}");
    assert!(text.contains("deployment files valid"), "{text}");
}
