//! `/v1/runs`: start a run (waiting for it, or 202 and its `Location`),
//! look at it, stream its events, interrupt it.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{ApiError, authenticate, json_response, read_json};
use crate::serve::Service;
use crate::serve::runs::Run;

/// Most arguments of a run, and most bytes of them in all.
const MAX_ARGS: usize = 4096;
const MAX_ARG_BYTES: usize = 32 << 10;

/// `POST /v1/runs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRun {
    /// A built-in name or `sha256:<hex>` of an upload.
    plugin: String,
    #[serde(default)]
    args: Vec<String>,
    /// Answer when the run is done (200) instead of at once (202).
    #[serde(default)]
    wait: bool,
}

pub async fn create(
    State(s): State<Arc<Service>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let tenant = authenticate(&s, &headers)?;
    let new: NewRun = read_json(&s, &headers, body).await?;
    if new.args.len() > MAX_ARGS || new.args.iter().map(String::len).sum::<usize>() > MAX_ARG_BYTES
    {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_ARGS} arguments and {MAX_ARG_BYTES} bytes of them"
        )));
    }
    let run = s.start(&tenant, &new.plugin, new.args, true, None)?;
    if new.wait {
        return Ok(json_response(StatusCode::OK, &run.finished().await));
    }
    let mut response = json_response(StatusCode::ACCEPTED, &run.envelope());
    if let Ok(location) = format!("/v1/runs/{}", run.id).parse() {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

fn find(s: &Service, headers: &HeaderMap, id: &str) -> Result<Arc<Run>, ApiError> {
    let tenant = authenticate(s, headers)?;
    s.runs()
        .get(&tenant.name, id)
        .ok_or_else(|| ApiError::not_found(format!("no run {id}")))
}

pub async fn list(State(s): State<Arc<Service>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let tenant = authenticate(&s, &headers)?;
    let runs: Vec<_> = s
        .runs()
        .list(&tenant.name)
        .iter()
        .map(|r| r.envelope())
        .collect();
    Ok(json_response(StatusCode::OK, &runs))
}

pub async fn show(
    State(s): State<Arc<Service>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let run = find(&s, &headers, &id)?;
    Ok(json_response(StatusCode::OK, &run.envelope()))
}

/// Interrupts the run; it returns what it has measured so far.
pub async fn cancel(
    State(s): State<Arc<Service>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let run = find(&s, &headers, &id)?;
    run.interrupt.trigger();
    Ok(json_response(StatusCode::ACCEPTED, &run.envelope()))
}

/// The run's events as NDJSON, from the first, live until it ends.
pub async fn events(
    State(s): State<Arc<Service>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let run = find(&s, &headers, &id)?;
    let stream = futures_util::stream::unfold((run, 0usize), |(run, from)| async move {
        let lines = run.events.read_from(from).await?;
        let next = from + lines.len();
        let chunk: Bytes = lines.concat().into();
        Some((Ok::<_, std::convert::Infallible>(chunk), (run, next)))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response())
}
