//! `/v1/plugins`: a tenant's uploaded components.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::{ApiError, authenticate, json_response, read_body};
use crate::serve::Service;
use crate::serve::metrics::ReasonLabels;
use crate::serve::plugins::PluginError;

/// `POST /v1/plugins` with the component's bytes (`application/wasm`):
/// 201 when stored, 200 when the tenant had it already.
pub async fn upload(
    State(s): State<Arc<Service>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let tenant = authenticate(&s, &headers)?;
    let count = |reason: &str| {
        s.metrics()
            .uploads
            .get_or_create(&ReasonLabels {
                tenant: tenant.name.clone(),
                reason: reason.into(),
            })
            .inc();
    };
    let wasm = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.to_str().is_ok_and(|c| c.starts_with("application/wasm")));
    if !wasm {
        count("invalid");
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "upload the component's bytes with Content-Type: application/wasm",
        ));
    }
    let _uploading = s
        .plugins()
        .begin_upload(&tenant.name)
        .inspect_err(|_| count("busy"))?;
    let bytes = read_body(&s, &headers, body, tenant.max_upload_bytes)
        .await
        .inspect_err(|e| {
            count(if e.status == StatusCode::PAYLOAD_TOO_LARGE {
                "too-large"
            } else {
                "invalid"
            })
        })?;
    let (cpu, uploaded) = s
        .plugins()
        .upload(s.runner().runtime(), &tenant, bytes)
        .await;
    s.charge(&tenant, cpu);
    match uploaded {
        Ok((new, info)) => {
            count(if new { "stored" } else { "known" });
            let status = if new {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(json_response(status, &info))
        }
        Err(e) => {
            count(match e {
                PluginError::Quota(_) => "quota",
                PluginError::Busy => "busy",
                _ => "invalid",
            });
            Err(e.into())
        }
    }
}

pub async fn list(State(s): State<Arc<Service>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let tenant = authenticate(&s, &headers)?;
    Ok(json_response(
        StatusCode::OK,
        &s.plugins().list(&tenant.name),
    ))
}

pub async fn show(
    State(s): State<Arc<Service>>,
    headers: HeaderMap,
    Path(digest): Path<String>,
) -> Result<Response, ApiError> {
    let tenant = authenticate(&s, &headers)?;
    let info = s
        .plugins()
        .get(&tenant.name, &digest)
        .ok_or_else(|| ApiError::not_found(format!("no upload {digest}")))?;
    Ok(json_response(StatusCode::OK, &info))
}

pub async fn remove(
    State(s): State<Arc<Service>>,
    headers: HeaderMap,
    Path(digest): Path<String>,
) -> Result<Response, ApiError> {
    let tenant = authenticate(&s, &headers)?;
    if !s.plugins().remove(&tenant.name, &digest) {
        return Err(ApiError::not_found(format!("no upload {digest}")));
    }
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "deleted": digest }),
    ))
}
