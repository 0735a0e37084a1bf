//! `GET /healthz` (database, the last reminder pass and whether one is overdue, sends waiting to
//! be retried, reloads, Quicket's API) and `GET /metrics` (Prometheus text).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::error::json_status;
use super::state::{AppState, with_state};
use crate::store::{Store, parse_timestamp};

/// How long `/healthz` answers from what it last read from the database, so that a flood of
/// health checks costs one round of reads a second.
const CACHE_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// What `/healthz` reads from the database, kept for [`CACHE_FOR`].
#[derive(Clone)]
struct DbFacts {
    schema: Result<i64, &'static str>,
    /// The write probe: whether a write can be committed right now.
    writable: Result<(), &'static str>,
    last_pass: Option<crate::store::reminders::PassRecord>,
    last_finished: Option<crate::store::reminders::PassRecord>,
    waiting: i64,
    problems: crate::store::problems::ProblemCounts,
}

/// The last [`DbFacts`] and when they were read.
#[derive(Clone, Default)]
pub struct HealthCache(Arc<tokio::sync::Mutex<Option<(std::time::Instant, DbFacts)>>>);

/// `GET /healthz` and `GET /metrics`.
pub fn routes(
    state: &AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone + use<> {
    let health = warp::path!("healthz")
        .and(warp::get())
        .and(with_state(state))
        .then(|state: AppState| async move { health(&state).await });
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(with_state(state))
        .then(|state: AppState| async move { metrics(&state).await });
    health.or(metrics).unify()
}

/// The database's facts, read at most once per [`CACHE_FOR`] (callers in the same second wait for
/// one read and share it).
async fn db_facts(state: &AppState) -> DbFacts {
    let mut cached = state.health.0.lock().await;
    if let Some((at, facts)) = cached.as_ref()
        && at.elapsed() < CACHE_FOR
    {
        return facts.clone();
    }
    let schema = state.store.health().await.map_err(|e| unavailable(&e));
    let writable = state.store.probe_write().await.map_err(|e| unwritable(&e));
    let facts = DbFacts {
        writable,
        last_pass: state.store.last_pass().await.ok().flatten(),
        last_finished: state.store.last_finished_pass().await.ok().flatten(),
        waiting: state.store.failing_claims().await.unwrap_or_default(),
        problems: state.store.problem_counts().await.unwrap_or_default(),
        schema,
    };
    *cached = Some((std::time::Instant::now(), facts.clone()));
    facts
}

async fn health(state: &AppState) -> Response {
    let version = env!("CARGO_PKG_VERSION");
    let facts = db_facts(state).await;
    let schema = match facts.schema {
        Ok(schema) => schema,
        Err(e) => {
            return json_status(
                &json!({
                    "status": "error",
                    "version": version,
                    "database": {"ok": false, "error": e},
                }),
                StatusCode::SERVICE_UNAVAILABLE,
            );
        }
    };
    if let Err(e) = facts.writable {
        // Hooks are refused while this lasts: Quicket's messages are being lost.
        return json_status(
            &json!({
                "status": "error",
                "version": version,
                "database": {"ok": false, "schema": schema, "writable": false, "error": e},
            }),
            StatusCode::SERVICE_UNAVAILABLE,
        );
    }
    let settings = state.engine.settings();
    let (last_pass, waiting) = (facts.last_pass, facts.waiting);
    let now = Utc::now();
    // Measured from the last pass that finished: one that started and never ends (stuck, or
    // killed) does not count as reminders going out.
    let finished_at = facts
        .last_finished
        .as_ref()
        .and_then(|p| p.finished_at.as_deref())
        .and_then(|t| parse_timestamp(t).ok());
    let since = finished_at.map_or(state.started_at, |t| t.max(state.started_at));
    let last_failed = facts
        .last_finished
        .as_ref()
        .is_some_and(|p| p.error.is_some());
    let schedule = &settings.config.schedule;
    // Public (the proxy passes it): states and times only. Why a reload was refused is on /admin
    // and in the log (it names a file, a line and a key).
    let reload = state.engine.reload_status();
    // The lookups' state and counts; why the latest failed is on /admin.
    let mut api = state.engine.events().status().await;
    api.last_error = None;
    let overdue = state.scheduled
        && crate::reminders::schedule::pass_overdue(&schedule.scan, schedule.timezone, since, now);
    let failing = overdue || last_failed;
    let body = json!({
        "status": if failing { "failing" } else { "ok" },
        "version": version,
        "database": {"ok": true, "schema": schema, "writable": true},
        "last_pass": last_pass.as_ref().map(public_pass),
        "passes": {
            "scheduled": state.scheduled,
            "overdue": overdue,
            "last_failed": last_failed,
            "last_finished_at": finished_at.map(crate::store::timestamp),
        },
        // A system clock that jumped (by more than a scan interval) between two passes.
        "clock": match state.engine.clock_jump() {
            Some(jump) => json!({"jumped": true, "noticed_at": jump.noticed_at, "by_seconds": jump.by_seconds}),
            None => json!({"jumped": false}),
        },
        "email": {"sends_waiting_to_retry": waiting},
        "sending": sending(&state.store, now).await,
        "settings": {
            "state": if reload.last_error.is_some() { "refused" } else { "in_force" },
            "reloads": reload.reloads,
            "loaded_at": reload.loaded_at,
            "refused": reload.refused,
            "last_refused_at": reload.last_refused_at,
        },
        // Which templates are in use: "built-in", or "directory" (which one is on /admin).
        "templates": match settings.templates.source() {
            crate::config::TemplateSource::BuiltIn => "built-in",
            crate::config::TemplateSource::Dir(_) => "directory",
        },
        // Hooks kept with a field unreadable (an event date: no reminder can be held back before
        // that event) or cut to a cap: listed on /admin/problems.
        "problems": facts.problems,
        // Lookups failing never makes the service unhealthy: emails fall back to the config.
        "quicket_api": api,
    });
    let status = if failing {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    json_status(&body, status)
}

/// A pass as `/healthz` shows it: its times, counts and state (`unfinished`, `finished` or
/// `failed`), never the error's text (the log has it, and the organiser's alerts).
fn public_pass(pass: &crate::store::reminders::PassRecord) -> serde_json::Value {
    let state = match (&pass.finished_at, &pass.error) {
        (_, Some(_)) => "failed",
        (Some(_), None) => "finished",
        (None, None) => "unfinished",
    };
    let mut value = serde_json::to_value(pass).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.remove("error");
        map.insert("state".into(), state.into());
    }
    value
}

/// What /healthz says of a database that does not answer (the detail, which may name the file,
/// goes to the log).
fn unavailable(e: &crate::store::StoreError) -> &'static str {
    tracing::warn!("/healthz: the database does not answer: {e}");
    "the database does not answer; the service's log says why"
}

/// What /healthz says of a database that cannot be written (the detail goes to the log).
fn unwritable(e: &crate::store::StoreError) -> &'static str {
    tracing::error!("/healthz: the database cannot be written: {e}");
    "the database cannot be written (read-only, full or locked); hooks are refused until it can; the service's log says why"
}

/// The circuit breaker's state: `active` or `paused` (with why and since when), and the rates.
async fn sending(store: &Store, now: DateTime<Utc>) -> serde_json::Value {
    let pause = store.sending_pause().await.ok().flatten();
    let rates = crate::reminders::breaker::rates(store, now)
        .await
        .unwrap_or_default();
    let assessment = crate::reminders::breaker::assess(&rates);
    json!({
        "state": if pause.is_some() { "paused" } else { "active" },
        "since": pause.as_ref().map(|p| p.since.clone()),
        "reason": pause.map(|p| p.reason),
        "warning": assessment.warning,
        "last_7_days": {
            "sent": rates.sent,
            "hard_bounces": rates.hard_bounces,
            "soft_bounces": rates.soft_bounces,
            "complaints": rates.complaints,
            "complaint_rate": rates.complaint_rate(),
            "hard_bounce_rate": rates.hard_bounce_rate(),
        },
    })
}

async fn metrics(state: &AppState) -> Response {
    let handle = crate::metrics::handle();
    let now = Utc::now();
    // Shown from the start, at 0, so that an alert on it has a series to watch.
    metrics::counter!(crate::metrics::FAILED_PASSES).increment(0);
    if let Ok(rates) = crate::reminders::breaker::rates(&state.store, now).await {
        metrics::gauge!(crate::metrics::COMPLAINT_RATE).set(rates.complaint_rate());
        metrics::gauge!(crate::metrics::HARD_BOUNCE_RATE).set(rates.hard_bounce_rate());
    }
    if let Ok(pause) = state.store.sending_pause().await {
        metrics::gauge!(crate::metrics::SENDING_PAUSED).set(if pause.is_some() {
            1.0
        } else {
            0.0
        });
    }
    if let Ok(due) = state.store.due_count(now).await {
        metrics::gauge!(crate::metrics::DUE).set(due as f64);
    }
    if let Ok(p) = state.store.problem_counts().await {
        for (kind, n) in [
            ("event_date", p.unreadable_event_dates),
            ("amount", p.unknown_amounts),
            ("caps", p.over_caps),
            ("any", p.deliveries),
        ] {
            metrics::gauge!(crate::metrics::PROBLEMS, "kind" => kind).set(n as f64);
        }
    }
    warp::reply::with_header(
        handle.render(),
        warp::http::header::CONTENT_TYPE,
        "text/plain; version=0.0.4; charset=utf-8",
    )
    .into_response()
}
