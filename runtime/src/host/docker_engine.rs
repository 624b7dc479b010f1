//! A small read-only client for the Docker Engine API over its UNIX socket:
//! GET only, API version negotiated once, every request bounded in time (the
//! calling plugin's remaining budget) and in size.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::StatusCode;
use hyper_util::client::legacy::Client;
use hyperlocal::{UnixClientExt, UnixConnector};
use serde::Deserialize;
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::ops::guest_log::escape_controls;

/// The newest API version whose answers we parse; older engines are asked in
/// their own version (the fields we read exist since 1.25).
const NEWEST_API: (u32, u32) = (1, 43);
const OLDEST_API: (u32, u32) = (1, 25);

/// Largest answer read from the engine (thousands of containers fit).
pub const MAX_RESPONSE_BYTES: usize = 16 << 20;

/// Longest request path sent to the engine.
const MAX_PATH: usize = 4096;

#[derive(Debug, Clone, PartialEq)]
pub enum EngineError {
    Unavailable(String),
    Timeout,
    NotFound(String),
    Failed(String),
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineError::Unavailable(why) => write!(f, "Docker Engine unavailable: {why}"),
            EngineError::Timeout => f.write_str("Docker Engine did not answer in time"),
            EngineError::NotFound(what) => write!(f, "not found: {what}"),
            EngineError::Failed(why) => write!(f, "Docker Engine error: {why}"),
        }
    }
}

pub struct DockerEngine {
    socket: PathBuf,
    client: Client<UnixConnector, Empty<Bytes>>,
    /// `v1.41` etc., once the engine has told us its version.
    api_version: OnceCell<String>,
}

#[derive(Deserialize)]
struct VersionAnswer {
    #[serde(rename = "ApiVersion")]
    api_version: String,
}

fn parse_version(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

impl DockerEngine {
    pub fn new(socket: &Path) -> Self {
        Self { socket: socket.to_owned(), client: Client::unix(), api_version: OnceCell::new() }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// GETs `path_and_query` (e.g. `/containers/json?all=1`) in the negotiated
    /// API version and returns the body of a 2xx answer.
    pub async fn get(&self, path_and_query: &str, deadline: Instant) -> Result<Bytes, EngineError> {
        let version = self.api_version(deadline).await?;
        self.raw_get(&format!("/{version}{path_and_query}"), deadline).await
    }

    /// The version prefix to use: the engine's own, capped at what we parse.
    /// A failed negotiation is not remembered, so a restarted engine is found.
    async fn api_version(&self, deadline: Instant) -> Result<&str, EngineError> {
        let version = self
            .api_version
            .get_or_try_init(|| async {
                let body = self.raw_get("/version", deadline).await?;
                let answer: VersionAnswer = serde_json::from_slice(&body)
                    .map_err(|err| EngineError::Failed(format!("unreadable /version answer: {err}")))?;
                let theirs = parse_version(&answer.api_version).ok_or_else(|| {
                    EngineError::Failed(format!("unreadable API version `{}`", escape_controls(&answer.api_version, 64)))
                })?;
                if theirs < OLDEST_API {
                    return Err(EngineError::Failed(format!("engine API {} is older than 1.25", answer.api_version)));
                }
                let (major, minor) = theirs.min(NEWEST_API);
                Ok(format!("v{major}.{minor}"))
            })
            .await?;
        Ok(version)
    }

    async fn raw_get(&self, path_and_query: &str, deadline: Instant) -> Result<Bytes, EngineError> {
        // hyperlocal panics on a path it cannot parse: check it first.
        if path_and_query.len() > MAX_PATH || path_and_query.parse::<hyper::http::uri::PathAndQuery>().is_err() {
            return Err(EngineError::Failed(format!("not a valid request path: `{}`", escape_controls(path_and_query, 200))));
        }
        let uri: hyper::Uri = hyperlocal::Uri::new(&self.socket, path_and_query).into();
        let request = async {
            let response = self.client.get(uri).await.map_err(|err| self.unavailable(err))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|err| EngineError::Failed(format!("reading the answer: {err} (limit {MAX_RESPONSE_BYTES} bytes)")))?
                .to_bytes();
            match status {
                s if s.is_success() => Ok(body),
                StatusCode::NOT_FOUND => Err(EngineError::NotFound(engine_message(&body))),
                s => Err(EngineError::Failed(format!("{s}: {}", engine_message(&body)))),
            }
        };
        tokio::time::timeout_at(deadline, request).await.unwrap_or(Err(EngineError::Timeout))
    }

    /// The socket named once: `/x/docker.sock does not exist`, or
    /// `/x/docker.sock: connection refused` (the client's error, whose own text
    /// names no path).
    fn unavailable(&self, err: impl std::fmt::Display) -> EngineError {
        let socket = self.socket.display();
        if !self.socket.exists() {
            return EngineError::Unavailable(format!("{socket} does not exist (is the Docker Engine running? see --docker-socket)"));
        }
        EngineError::Unavailable(format!("{socket}: {err}"))
    }
}

/// The engine's `{"message": ...}`, or the body as text.
fn engine_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Message {
        message: String,
    }
    serde_json::from_slice::<Message>(body)
        .map(|m| m.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn versions_compare_numerically() {
        assert!(parse_version("1.9").unwrap() < parse_version("1.41").unwrap());
        assert_eq!(parse_version("1.41").unwrap().min(NEWEST_API), (1, 41));
        assert_eq!(parse_version("1.51").unwrap().min(NEWEST_API), NEWEST_API);
        assert!(parse_version("x").is_none());
    }

    #[tokio::test]
    async fn unparsable_paths_are_errors_not_panics() {
        let engine = DockerEngine::new(Path::new("/nonexistent/docker.sock"));
        let deadline = Instant::now() + Duration::from_millis(100);
        for path in ["/version?<", "/a b", &format!("/{}", "a".repeat(70_000))] {
            assert!(matches!(engine.raw_get(path, deadline).await, Err(EngineError::Failed(_))), "{path}");
        }
    }

    #[tokio::test]
    async fn a_missing_engine_is_unavailable_at_once() {
        let engine = DockerEngine::new(Path::new("/nonexistent/docker.sock"));
        let started = Instant::now();
        let err = engine.get("/containers/json", Instant::now() + Duration::from_millis(300)).await.unwrap_err();
        assert!(matches!(&err, EngineError::Unavailable(why) if why.contains("does not exist")), "{err:?}");
        assert_eq!(err.to_string().matches("/nonexistent/docker.sock").count(), 1, "the path once: {err}");
        assert!(started.elapsed() < Duration::from_millis(100));
    }

    #[tokio::test]
    async fn a_silent_engine_times_out_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.sock");
        // Accepts connections, never answers.
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let _hold = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                open.push(stream);
            }
        });
        let engine = DockerEngine::new(&path);
        let started = Instant::now();
        let err = engine.get("/containers/json", Instant::now() + Duration::from_millis(150)).await.unwrap_err();
        assert_eq!(err, EngineError::Timeout);
        assert!(started.elapsed() < Duration::from_millis(250), "{:?}", started.elapsed());
    }
}
