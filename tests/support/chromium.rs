//! A real headless Chromium (Debian's), driven over the DevTools protocol on
//! the pipe it offers (`--remote-debugging-pipe`: commands in on fd 3,
//! answers and events out on fd 4, each a JSON text ended by a NUL).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

pub struct Browser {
    child: Child,
    commands: File,
    events: BufReader<File>,
    next_id: u64,
    session: Option<String>,
    _profile: tempfile::TempDir,
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two new descriptors, owned below.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0, "pipe2");
    // SAFETY: both were just created and nothing else owns them.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

impl Browser {
    /// Starts Chromium (installed by `make test-tools`) with one page at `url`.
    pub fn open(url: &str) -> Browser {
        let (to_browser_read, to_browser_write) = pipe();
        let (from_browser_read, from_browser_write) = pipe();
        let profile = tempfile::tempdir().unwrap();
        let (inbound, outbound) = (to_browser_read.into_raw_fd(), from_browser_write.into_raw_fd());
        let mut command = Command::new("chromium");
        command
            .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe", "--window-size=1100,800"])
            .arg("--hide-scrollbars")
            .arg("--no-first-run")
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls (dup2) between fork and exec.
        unsafe {
            command.pre_exec(move || {
                if libc::dup2(inbound, 3) < 0 || libc::dup2(outbound, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("starting chromium (make test-tools installs it)");
        // SAFETY: the child has its copies; these ends are ours to close.
        unsafe {
            drop(OwnedFd::from_raw_fd(inbound));
            drop(OwnedFd::from_raw_fd(outbound));
        }
        let mut browser = Browser {
            child,
            commands: File::from(to_browser_write),
            events: BufReader::new(File::from(from_browser_read)),
            next_id: 0,
            session: None,
            _profile: profile,
        };
        let target = browser.call("Target.createTarget", json!({ "url": url }));
        let target_id = target["targetId"].as_str().unwrap().to_owned();
        let attached = browser.call("Target.attachToTarget", json!({ "targetId": target_id, "flatten": true }));
        browser.session = Some(attached["sessionId"].as_str().unwrap().to_owned());
        browser.call("Page.enable", json!({}));
        browser
    }

    /// Sends a command (to the page once attached) and waits for its answer,
    /// accepting any JavaScript dialog (a control's confirmation) meanwhile.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = &self.session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.commands.write_all(&bytes).unwrap();
        loop {
            let mut raw = Vec::new();
            let read = self.events.read_until(0, &mut raw).expect("reading from chromium");
            assert!(read > 0, "chromium closed its pipe");
            raw.pop();
            let answer: Value = serde_json::from_slice(&raw).unwrap();
            if answer["method"] == "Page.javascriptDialogOpening" {
                let session = answer["sessionId"].clone();
                self.next_id += 1;
                let accept = json!({ "id": self.next_id, "method": "Page.handleJavaScriptDialog", "params": { "accept": true }, "sessionId": session });
                let mut bytes = serde_json::to_vec(&accept).unwrap();
                bytes.push(0);
                self.commands.write_all(&bytes).unwrap();
                continue;
            }
            if answer["id"] == id {
                assert!(answer.get("error").is_none(), "{method}: {answer}");
                return answer["result"].clone();
            }
        }
    }

    /// Evaluates `expression` in the page; its value (promises awaited).
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self.call("Runtime.evaluate", json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }));
        assert!(result.get("exceptionDetails").is_none(), "{expression}: {result}");
        result["result"]["value"].clone()
    }

    /// A PNG of the page's region where `selector`'s element is drawn: (width, height, RGBA pixels).
    pub fn screenshot_of(&mut self, selector: &str) -> (u32, u32, Vec<u8>) {
        let rect = self.eval(&format!(
            "(() => {{ const r = document.querySelector({}).getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; }})()",
            Value::from(selector)
        ));
        let [x, y, width, height] = [0, 1, 2, 3].map(|i| rect[i].as_f64().unwrap());
        let shot = self.call(
            "Page.captureScreenshot",
            json!({ "format": "png", "clip": { "x": x, "y": y, "width": width, "height": height, "scale": 1 } }),
        );
        use base64::Engine as _;
        let png = base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().unwrap()).unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(png)).read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        pixels.truncate(info.buffer_size());
        let rgba = match info.color_type {
            png::ColorType::Rgba => pixels,
            png::ColorType::Rgb => pixels.chunks(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect(),
            other => panic!("unexpected PNG colour type {other:?}"),
        };
        (info.width, info.height, rgba)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
