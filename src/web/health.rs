//! `GET /healthz`: whether the database answers, when the last reminder pass ran and what it did,
//! and how many sends wait to be retried.

use std::sync::Arc;

use serde_json::json;
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::Response;

use super::error::json_status;
use crate::config::Config;
use crate::reminders::Engine;
use crate::store::Store;

/// The `/healthz` route.
pub fn route(
    store: Store,
    config: Arc<Config>,
    engine: Arc<Engine>,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::path!("healthz").and(warp::get()).then(move || {
        let store = store.clone();
        let config = config.clone();
        let engine = engine.clone();
        async move { health(&store, &config, &engine).await }
    })
}

async fn health(store: &Store, config: &Config, engine: &Engine) -> Response {
    let version = env!("CARGO_PKG_VERSION");
    match store.health().await {
        Ok(schema) => {
            let last_pass = store.last_pass().await.ok().flatten();
            let waiting = store.failing_claims().await.unwrap_or_default();
            json_status(
                &json!({
                    "status": "ok",
                    "version": version,
                    "database": {"ok": true, "schema": schema},
                    "last_pass": last_pass,
                    "email": {
                        "transport": config.email.transport,
                        "sends_waiting_to_retry": waiting,
                    },
                    "settings": engine.reload_status(),
                }),
                StatusCode::OK,
            )
        }
        Err(e) => json_status(
            &json!({
                "status": "error",
                "version": version,
                "database": {"ok": false, "error": e.to_string()},
            }),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
    }
}
