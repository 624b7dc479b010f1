//! The private Docker Engine that `make test` starts (tests/docker/dockerd.sh),
//! driven with the docker CLI and queried over its socket like the daemon does.

use std::path::PathBuf;
use std::process::Command;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::Value;

pub const IMAGE: &str = "scope-test/busybox:latest";

pub struct Engine {
    pub socket: PathBuf,
}

impl Engine {
    /// The engine `make test` started; a clear failure if there is none.
    pub fn from_env() -> Engine {
        let socket = std::env::var_os("SCOPE_WASM_TEST_DOCKER").map(PathBuf::from).unwrap_or_else(|| {
            panic!("SCOPE_WASM_TEST_DOCKER is not set: run `make test`, which starts a private dockerd")
        });
        assert!(socket.exists(), "no Docker Engine at {}: run `make test`", socket.display());
        Engine { socket }
    }

    /// Runs the docker CLI against this engine; its trimmed stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(args)
            .output()
            .expect("running the docker CLI");
        assert!(output.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }

    /// The engine's own answer to a GET, for comparison.
    pub async fn get_json(&self, path: &str) -> Value {
        let stream = tokio::net::UnixStream::connect(&self.socket).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(conn);
        let request = Request::get(path).header("host", "docker").body(Empty::<Bytes>::new()).unwrap();
        let response = sender.send_request(request).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&body).unwrap()
    }
}

/// Containers made for one test, removed when it ends.
pub struct Containers<'a> {
    engine: &'a Engine,
    ids: Vec<String>,
}

impl<'a> Containers<'a> {
    pub fn new(engine: &'a Engine) -> Self {
        Self { engine, ids: Vec::new() }
    }

    /// `docker create` (or `run -d` when `start`) of a busybox `sleep`, with
    /// `-l`/`-v` options as given; its full ID.
    pub fn make(&mut self, start: bool, options: &[&str]) -> String {
        let mut args = vec![if start { "run" } else { "create" }];
        if start {
            args.push("-d");
        }
        args.extend_from_slice(options);
        args.extend_from_slice(&[IMAGE, "sleep", "600"]);
        let id = self.engine.cli(&args);
        self.ids.push(id.clone());
        id
    }

    pub fn pid(&self, id: &str) -> u32 {
        self.engine.cli(&["inspect", "--format", "{{.State.Pid}}", id]).parse().unwrap()
    }
}

impl Drop for Containers<'_> {
    fn drop(&mut self) {
        if !self.ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(self.ids.iter().map(String::as_str));
            let _ = Command::new("docker")
                .arg("-H")
                .arg(format!("unix://{}", self.engine.socket.display()))
                .args(&args)
                .output();
        }
    }
}
