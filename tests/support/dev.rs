//! A running `scope-wasm dev` (the real binary), read through its own
//! `/api/state` over TCP.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::binary;

/// A running `scope-wasm dev` and where its preview is.
pub struct Dev {
    child: Child,
    pub address: String,
}

impl Dev {
    /// Starts `scope-wasm dev DIR ARGS` with `env` set, on a free port.
    pub fn start(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Dev {
        let mut child = Command::new(binary())
            .arg("dev")
            .arg(dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let address = first.split("http://").nth(1).and_then(|rest| rest.split('/').next()).unwrap_or_else(|| panic!("{first}")).to_owned();
        // The rest of its output goes to stderr (a failure's story; not a bench's table).
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(|line| eprintln!("{line}")));
        Dev { child, address }
    }

    pub fn request(&self, method: &str, path: &str, body: &str) -> Value {
        let mut stream = TcpStream::connect(&self.address).unwrap();
        write!(stream, "{method} {path} HTTP/1.0\r\nhost: x\r\ncontent-length: {}\r\n\r\n{body}", body.len()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let (_, body) = answer.split_once("\r\n\r\n").unwrap();
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    pub fn state(&self) -> Value {
        self.request("GET", "/api/state", "")
    }

    /// Waits (on the loop's own state, up to a minute) until `ready` holds.
    pub fn wait_for(&self, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let state = self.state();
            if ready(&state) {
                return state;
            }
            assert!(started.elapsed() < Duration::from_secs(300), "never {what}: {state}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

