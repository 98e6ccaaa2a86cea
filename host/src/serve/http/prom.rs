//! What Prometheus reads: `/probe` (blackbox_exporter's way), `/metrics`,
//! and `/v1/targets` (HTTP service discovery of the schedules' targets).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
use serde_json::json;

use super::{ApiError, authenticate, json_response};
use crate::serve::Service;
use crate::serve::config::check_target;
use crate::serve::probe::{ProbeResult, render};

/// What blackbox_exporter keeps back from Prometheus's scrape timeout to
/// answer in time.
const TIMEOUT_OFFSET: Duration = Duration::from_millis(500);

pub async fn metrics(State(s): State<Arc<Service>>) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], s.metrics().render()).into_response()
}

/// `GET /probe?module=M&target=T`: runs the module's plugin against T.
pub async fn probe(
    State(s): State<Arc<Service>>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let tenant = authenticate(&s, &headers)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let param = |name: &str| {
        query
            .get(name)
            .ok_or_else(|| ApiError::bad_request(format!("{name} parameter is missing")))
    };
    let (module_name, target) = (param("module")?, param("target")?);
    let config = s.config();
    let module = config
        .modules
        .get(module_name)
        .ok_or_else(|| ApiError::bad_request(format!("unknown module {module_name:?}")))?;
    if module.tenant != tenant.name {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("module {module_name:?} belongs to another tenant"),
        ));
    }
    check_target(target).map_err(ApiError::bad_request)?;
    let wall =
        scrape_timeout(&headers).map(|t| t.saturating_sub(TIMEOUT_OFFSET).max(TIMEOUT_OFFSET));
    let mut args = module.args.clone();
    args.push(target.clone());
    let started = Instant::now();
    let run = s.start(&tenant, &module.plugin, args, false, wall)?;
    let envelope = run.finished().await;
    let text = render(&ProbeResult {
        target,
        success: envelope.exit == Some(0),
        duration: started.elapsed(),
        result: &envelope.result,
        timings: run.events.timings(),
    });
    if query.get("debug").is_some_and(|d| d == "true") {
        let debug = format!(
            "Run:\n{}\n\nMetrics that would have been returned:\n{text}",
            serde_json::to_string_pretty(&envelope).unwrap_or_default()
        );
        return Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], debug).into_response());
    }
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response())
}

/// Prometheus's scrape timeout, which it sends with every scrape.
fn scrape_timeout(headers: &HeaderMap) -> Option<Duration> {
    let seconds: f64 = headers
        .get("x-prometheus-scrape-timeout-seconds")?
        .to_str()
        .ok()?
        .parse()
        .ok()?;
    Duration::try_from_secs_f64(seconds).ok()
}

/// `GET /v1/targets`: the caller's schedules as Prometheus HTTP SD target
/// groups. `__meta_icmp_host_agent` is this service as the caller reached
/// it, so a central Prometheus can point `__address__` back at it.
pub async fn targets(
    State(s): State<Arc<Service>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let tenant = authenticate(&s, &headers)?;
    let config = s.config();
    let agent = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map_or_else(|| config.listen.to_string(), str::to_owned);
    let groups: Vec<_> = config
        .schedules
        .iter()
        .filter(|sch| {
            config
                .modules
                .get(&sch.module)
                .is_some_and(|m| m.tenant == tenant.name)
        })
        .map(|sch| {
            json!({
                "targets": sch.targets,
                "labels": {
                    "module": sch.module,
                    "__param_module": sch.module,
                    "__meta_icmp_host_agent": agent,
                    "__meta_icmp_host_every": humantime::format_duration(sch.every).to_string(),
                },
            })
        })
        .collect();
    Ok(json_response(StatusCode::OK, &groups))
}
