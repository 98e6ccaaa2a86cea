/*!
The HTTP API. Every route but `/healthz` and `/metrics` needs
`Authorization: Bearer <token>` (401 without a known one). Errors are one
JSON line, `{"error": "…"}`, with the status saying which: 400 bad input,
401 no or unknown token, 403 not this tenant's to do, 404 not found
(including another tenant's run or upload), 408 body too slow, 413 body
too large, 415 wrong content type, 429 too many runs (with
`Retry-After`), 503 stopping.
*/

mod plugins;
mod prom;
mod runs;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use serde_json::json;

use super::config::Tenant;
use super::plugins::PluginError;
use super::runs::Refused;
use super::{Service, StartError, auth};

/// Largest JSON body (`POST /v1/runs`).
pub const MAX_JSON_BYTES: usize = 64 << 10;

/// An error answer: a status and one line of text.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `status`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.message.replace('\n', " ") }).to_string();
        body.push('\n');
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(s) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        response
    }
}

impl From<PluginError> for ApiError {
    fn from(e: PluginError) -> ApiError {
        let status = match e {
            PluginError::NotAllowed(_) | PluginError::Quota(_) => StatusCode::FORBIDDEN,
            PluginError::NotFound(_) => StatusCode::NOT_FOUND,
            PluginError::Invalid(_) => StatusCode::BAD_REQUEST,
            PluginError::Busy => StatusCode::TOO_MANY_REQUESTS,
        };
        ApiError {
            retry_after: (status == StatusCode::TOO_MANY_REQUESTS).then_some(1),
            ..ApiError::new(status, e.to_string())
        }
    }
}

impl From<StartError> for ApiError {
    fn from(e: StartError) -> ApiError {
        match e {
            StartError::Plugin(p) => p.into(),
            StartError::Refused(r @ Refused::Busy(_)) => ApiError {
                retry_after: Some(1),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, r.to_string())
            },
            StartError::Refused(r @ Refused::Closing) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, r.to_string())
            }
        }
    }
}

/// The tenant a request's token belongs to; the anonymous tenant (if one
/// is configured) for a request without one.
pub fn authenticate(service: &Service, headers: &HeaderMap) -> Result<Arc<Tenant>, ApiError> {
    let config = service.config();
    let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, m);
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return config
            .tenants
            .iter()
            .find(|t| t.token.is_none())
            .cloned()
            .ok_or_else(|| unauthorized("missing Authorization: Bearer <token>"));
    };
    let token = auth::bearer(value.as_bytes())
        .ok_or_else(|| unauthorized("the Authorization header must be: Bearer <token>"))?;
    let tokened: Vec<&Arc<Tenant>> = config
        .tenants
        .iter()
        .filter(|t| t.token.is_some())
        .collect();
    auth::find(token, tokened.iter().filter_map(|t| t.token.as_ref()))
        .map(|i| Arc::clone(tokened[i]))
        .ok_or_else(|| unauthorized("unknown token"))
}

/// Reads a body of at most `limit` bytes within the configuration's
/// `body_timeout`.
pub async fn read_body(
    service: &Service,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let timeout = service.config().body_timeout;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let read = async {
        let mut stream = body.into_data_stream();
        let mut out = Vec::with_capacity(declared.map_or(0, |n| n as usize));
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
            if out.len() + chunk.len() > limit {
                return Err(too_large());
            }
            out.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(out))
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the body did not arrive within {}",
                    humantime::format_duration(timeout)
                ),
            ))
        })
}

/// A JSON body, with unknown fields refused.
pub async fn read_json<T: serde::de::DeserializeOwned>(
    service: &Service,
    headers: &HeaderMap,
    body: Body,
) -> Result<T, ApiError> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE)
        && !ct.to_str().is_ok_and(|c| c.starts_with("application/json"))
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be JSON (Content-Type: application/json)",
        ));
    }
    let bytes = read_body(service, headers, body, MAX_JSON_BYTES).await?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("bad JSON: {e}")))
}

/// A JSON answer.
pub fn json_response(status: StatusCode, value: &impl serde::Serialize) -> Response {
    let mut body = serde_json::to_vec(value).unwrap_or_default();
    body.push(b'\n');
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this route",
    )
}

/// Every route.
pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(prom::metrics))
        .route("/probe", get(prom::probe))
        .route("/v1/targets", get(prom::targets))
        .route("/v1/runs", get(runs::list).post(runs::create))
        .route("/v1/runs/{id}", get(runs::show).delete(runs::cancel))
        .route("/v1/runs/{id}/events", get(runs::events))
        .route("/v1/plugins", get(plugins::list).post(plugins::upload))
        .route(
            "/v1/plugins/{digest}",
            get(plugins::show).delete(plugins::remove),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(service)
}
