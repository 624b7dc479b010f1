//! The Scope plugin protocol over one plugin's UNIX socket: HTTP/1.1 with
//! keep-alive, `GET /report` and `POST /control`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::bindings::ControlRequest;
use crate::run::error::CallError;
use crate::run::worker::PluginHandle;
use crate::serve::scope_json;

/// A client that has not sent its request headers by then is dropped (slowloris).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Open connections per socket. The probe uses one or two; past this, new
/// connections are closed at once so a flood cannot exhaust the daemon.
const MAX_CONNECTIONS: usize = 256;

/// The plugin a socket serves. A new version is swapped in here: connections
/// stay open and each request goes to the version current when it arrives.
pub type CurrentPlugin = watch::Receiver<Arc<PluginHandle>>;

/// Accepts connections until the task is aborted; aborting it also ends every
/// connection it serves.
pub async fn serve(listener: UnixListener, current: CurrentPlugin) {
    // A swap never changes the ID, and holding only the ID lets an old version go.
    let id = current.borrow().id.clone();
    let mut connections = JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                tracing::warn!(plugin = %id, error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Reap finished connections so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
        if connections.len() >= MAX_CONNECTIONS {
            tracing::warn!(plugin = %id, "{MAX_CONNECTIONS} connections open; closing a new one");
            continue;
        }
        let current = current.clone();
        connections.spawn(async move {
            let service = service_fn(move |req| handle(req, current.borrow().clone()));
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(err) = conn.await {
                tracing::debug!(error = %err, "connection ended with an error");
            }
        });
    }
}

async fn handle(req: Request<Incoming>, plugin: Arc<PluginHandle>) -> Result<Response<Full<Bytes>>, Infallible> {
    // The budget starts when the request arrives: queueing counts against it.
    let deadline = plugin.deadline();
    let response = match (req.method(), req.uri().path()) {
        (&Method::GET, "/report") => report(&plugin, probe_id(req.uri().query()), deadline).await,
        (&Method::POST, "/control") => control(req, &plugin, deadline).await,
        (_, "/report") => method_not_allowed(&plugin, "GET"),
        (_, "/control") => method_not_allowed(&plugin, "POST"),
        (_, path) => error_response(StatusCode::NOT_FOUND, format!("plugin {}: no such path {path:?}", plugin.id)),
    };
    Ok(response)
}

async fn report(plugin: &PluginHandle, probe_id: Option<String>, deadline: Instant) -> Response<Full<Bytes>> {
    if let Some(refusal) = bad_probe_id(plugin, probe_id.as_deref()) {
        return refusal;
    }
    let good = match plugin.cache.latest(&plugin.id, plugin.limits.call_budget, probe_id.as_deref(), deadline).await {
        Ok(good) => good,
        Err(err) => return call_error(err),
    };
    match good.body(probe_id.as_deref()) {
        Ok(body) => body_response(StatusCode::OK, body),
        Err(detail) => invalid_output(plugin, detail),
    }
}

/// The probe's control request (`common/xfer/controls.go`).
#[derive(Deserialize)]
struct ControlBody {
    #[serde(rename = "AppID", default)]
    app_id: String,
    #[serde(rename = "NodeID")]
    node_id: String,
    #[serde(rename = "Control")]
    control: String,
    #[serde(rename = "ControlArgs", default)]
    control_args: Option<BTreeMap<String, String>>,
}

/// A `probe_id` too long to copy into every node is refused before any work.
fn bad_probe_id(plugin: &PluginHandle, probe_id: Option<&str>) -> Option<Response<Full<Bytes>>> {
    let err = scope_json::check_probe_id(probe_id?).err()?;
    Some(error_response(StatusCode::BAD_REQUEST, format!("plugin {}: {err}", plugin.id)))
}

async fn control(req: Request<Incoming>, plugin: &PluginHandle, deadline: Instant) -> Response<Full<Bytes>> {
    let probe_id = probe_id(req.uri().query());
    if let Some(refusal) = bad_probe_id(plugin, probe_id.as_deref()) {
        return refusal;
    }
    let limit = plugin.limits.max_control_body_bytes;
    let body = match tokio::time::timeout_at(deadline, Limited::new(req.into_body(), limit).collect()).await {
        Ok(Ok(body)) => body.to_bytes(),
        Ok(Err(err)) => {
            let status = if err.is::<http_body_util::LengthLimitError>() {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            };
            return error_response(status, format!("plugin {}: reading control body: {err} (limit {limit} bytes)", plugin.id));
        }
        Err(_) => return error_response(StatusCode::REQUEST_TIMEOUT, format!("plugin {}: control body not received in time", plugin.id)),
    };
    let body: ControlBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(err) => return error_response(StatusCode::BAD_REQUEST, format!("plugin {}: bad control request JSON: {err}", plugin.id)),
    };
    let node_id = body.node_id.clone();
    let request = ControlRequest {
        app_id: body.app_id,
        node_id: body.node_id,
        control: body.control,
        args: body.control_args.unwrap_or_default().into_iter().collect(),
    };
    match plugin.control(request, probe_id, deadline).await {
        // The worker has marked the report out of date and is making the next.
        Ok(Ok(body)) => body_response(StatusCode::OK, body.into()),
        // The probe shows a control's `error` to the user: answer 200 with it.
        Ok(Err(err)) => {
            let message = scope_json::control_refusal_message(&plugin.id, &err, &node_id, |c| plugin.cache.declares_control(c));
            json_response(StatusCode::OK, &json!({ "error": message }))
        }
        Err(err) => call_error(err),
    }
}

/// The `probe_id` parameter of a request's query string, percent-decoded.
pub fn probe_id(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(key, _)| key == "probe_id")
        .map(|(_, value)| value.into_owned())
}

fn invalid_output(plugin: &PluginHandle, detail: String) -> Response<Full<Bytes>> {
    call_error(CallError::InvalidOutput { plugin: plugin.id.clone(), detail })
}

fn call_error(err: CallError) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    error_response(status, err.to_string())
}

fn method_not_allowed(plugin: &PluginHandle, allow: &'static str) -> Response<Full<Bytes>> {
    let mut response =
        error_response(StatusCode::METHOD_NOT_ALLOWED, format!("plugin {}: method not allowed, use {allow}", plugin.id));
    response.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
    response
}

/// An error with a JSON `error` body. The message is also the HTTP reason
/// phrase, because that is what the probe shows as the plugin's status
/// (`plugin returned non-200 status code: 504 plugin x: deadline exceeded ...`).
fn error_response(status: StatusCode, message: String) -> Response<Full<Bytes>> {
    let mut response = json_response(status, &json!({ "error": message }));
    let phrase: String = message.chars().map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' }).take(200).collect();
    if let Ok(reason) = hyper::ext::ReasonPhrase::try_from(phrase.into_bytes()) {
        response.extensions_mut().insert(reason);
    }
    response
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    body_response(status, Bytes::from(body.to_string()))
}

fn body_response(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
