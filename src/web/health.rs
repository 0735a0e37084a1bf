//! `GET /healthz` (database, the last reminder pass and whether one is overdue, sends waiting to
//! be retried, reloads, Quicket's API) and `GET /metrics` (Prometheus text).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::error::json_status;
use crate::config::parse_cron;
use crate::reminders::Engine;
use crate::store::{Store, parse_timestamp};

/// What the health and metrics routes need.
#[derive(Clone)]
pub struct HealthState {
    /// The store.
    pub store: Store,
    /// The engine (settings in force, reload status).
    pub engine: Arc<Engine>,
    /// Whether passes run on a schedule here (only then can one be overdue).
    pub scheduled: bool,
    /// When this process started serving.
    pub started_at: DateTime<Utc>,
}

/// `GET /healthz` and `GET /metrics`.
pub fn routes(
    state: HealthState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let with_state = warp::any().map(move || state.clone());
    let health = warp::path!("healthz")
        .and(warp::get())
        .and(with_state.clone())
        .then(|state: HealthState| async move { health(&state).await });
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(with_state)
        .then(|state: HealthState| async move { metrics(&state).await });
    health.or(metrics).unify()
}

/// Whether the pass that should have followed `since` is more than two scan intervals late.
pub fn pass_overdue(
    scan: &str,
    timezone: chrono_tz::Tz,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    let Ok(cron) = parse_cron(scan) else {
        return false;
    };
    let mut t = since.with_timezone(&timezone);
    // The next run after `since`, then two more intervals of grace.
    for _ in 0..3 {
        match cron.find_next_occurrence(&t, false) {
            Ok(next) => t = next,
            Err(_) => return false,
        }
    }
    now > t.with_timezone(&Utc)
}

async fn health(state: &HealthState) -> Response {
    let version = env!("CARGO_PKG_VERSION");
    let schema = match state.store.health().await {
        Ok(schema) => schema,
        Err(e) => {
            return json_status(
                &json!({
                    "status": "error",
                    "version": version,
                    "database": {"ok": false, "error": e.to_string()},
                }),
                StatusCode::SERVICE_UNAVAILABLE,
            );
        }
    };
    let settings = state.engine.settings();
    let last_pass = state.store.last_pass().await.ok().flatten();
    let waiting = state.store.failing_claims().await.unwrap_or_default();
    let now = Utc::now();
    let since = last_pass
        .as_ref()
        .and_then(|p| parse_timestamp(&p.started_at).ok())
        .map_or(state.started_at, |t| t.max(state.started_at));
    let schedule = &settings.config.schedule;
    let overdue = state.scheduled && pass_overdue(&schedule.scan, schedule.timezone, since, now);
    let body = json!({
        "status": if overdue { "overdue" } else { "ok" },
        "version": version,
        "database": {"ok": true, "schema": schema},
        "last_pass": last_pass,
        "passes": {"scheduled": state.scheduled, "scan": schedule.scan, "overdue": overdue},
        "email": {
            "transport": settings.config.email.transport,
            "sends_waiting_to_retry": waiting,
        },
        "settings": state.engine.reload_status(),
        // Lookups failing never makes the service unhealthy: emails fall back to the config.
        "quicket_api": state.engine.events().status().await,
    });
    let status = if overdue {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    json_status(&body, status)
}

async fn metrics(state: &HealthState) -> Response {
    let handle = crate::metrics::handle();
    let now = Utc::now();
    if let Ok(due) = state.store.due_count(now).await {
        metrics::gauge!(crate::metrics::DUE).set(due as f64);
    }
    warp::reply::with_header(
        handle.render(),
        warp::http::header::CONTENT_TYPE,
        "text/plain; version=0.0.4; charset=utf-8",
    )
    .into_response()
}
