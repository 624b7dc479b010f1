//! The preview page of `scope-wasm dev`, on a local TCP port: the page
//! itself, `GET /api/state` (the loop's state with the latest report) and
//! `POST /api/control` (clicks a control for real, then reports anew).

use std::collections::BTreeMap;
use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::json;

use super::{Current, Shared, keep};

const PAGE: &str = include_str!("preview.html");

pub async fn serve(listener: tokio::net::TcpListener, state: Shared, current: Current) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let (state, current) = (state.clone(), current.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, state.clone(), current.clone()));
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

#[derive(Deserialize)]
struct Click {
    node: String,
    control: String,
    #[serde(default)]
    args: BTreeMap<String, String>,
}

async fn handle(req: Request<Incoming>, state: Shared, current: Current) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(match (req.method(), req.uri().path()) {
        (&Method::GET, "/") => respond(StatusCode::OK, "text/html; charset=utf-8", PAGE.into()),
        (&Method::GET, "/api/state") => {
            let body = serde_json::to_vec(&*state.lock().unwrap()).unwrap_or_default();
            respond(StatusCode::OK, "application/json", body.into())
        }
        (&Method::POST, "/api/control") => {
            let body = match Limited::new(req.into_body(), 64 << 10).collect().await {
                Ok(body) => body.to_bytes(),
                Err(err) => return Ok(error(StatusCode::BAD_REQUEST, format!("reading the click: {err}"))),
            };
            let click: Click = match serde_json::from_slice(&body) {
                Ok(click) => click,
                Err(err) => return Ok(error(StatusCode::BAD_REQUEST, format!("a click is {{node, control, args}}: {err}"))),
            };
            let mut current = current.lock().await;
            let Some(session) = current.as_mut() else {
                return Ok(error(StatusCode::SERVICE_UNAVAILABLE, "no build is loaded yet".into()));
            };
            let answer = session.control(&click.control, &click.node, &click.args).await;
            println!(
                "[dev] control {} on {}: {}",
                click.control,
                click.node,
                answer.as_ref().map_or_else(|e| format!("refused: {e}"), |_| "done".into())
            );
            // The control changed the plugin's state: show it at once.
            let report = session.report().await;
            keep(&state, report, None);
            let body = match answer {
                Ok(answer) => json!({ "answer": answer }),
                Err(message) => json!({ "error": message }),
            };
            respond(StatusCode::OK, "application/json", body.to_string().into())
        }
        _ => error(StatusCode::NOT_FOUND, format!("no page {}", req.uri().path())),
    })
}

fn respond(status: StatusCode, content_type: &str, body: Bytes) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("cache-control", "no-store")
        .body(Full::new(body))
        .expect("a valid response")
}

fn error(status: StatusCode, message: String) -> Response<Full<Bytes>> {
    respond(status, "application/json", json!({ "error": message }).to_string().into())
}
