//! A real OCI registry for tests and benchmarks: Debian's `docker-registry`
//! (the CNCF distribution server) on a loopback port, its storage in a temp
//! dir; and `scope-wasm push` into it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A registry of our own, its storage in a temp dir; killed when dropped.
pub struct Registry {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let registry = ["/usr/bin/docker-registry", "docker-registry"].into_iter().find(|p| Path::new(p).exists()).unwrap_or("docker-registry");
        let child = Command::new(registry)
            .args(["serve", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("registry.log")).unwrap())
            .spawn()
            .expect("docker-registry (Debian's package; `make test` installs it)");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(60), "the registry never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        Registry { child: Some(child), port, dir }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn image(&self, name: &str) -> String {
        format!("{}/plugins/{name}", self.host())
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The stored bytes of the blob with `digest` (the registry's filesystem layout).
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir.path().join(format!("data/docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Pushes `file` as `reference` (optionally signed); the manifest digest it printed.
pub fn push(file: &Path, reference: &str, sign: Option<&Path>) -> String {
    let mut args = vec!["push", file.to_str().unwrap(), reference, "--insecure"];
    if let Some(key) = sign {
        args.extend(["--sign", key.to_str().unwrap()]);
    }
    let out = Command::new(super::binary()).args(&args).output().unwrap();
    assert!(out.status.success(), "scope-wasm {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let out = String::from_utf8(out.stdout).unwrap();
    out.lines().find_map(|l| l.strip_prefix("digest: ")).expect("push prints the digest").to_owned()
}

