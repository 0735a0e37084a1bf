//! `GET /healthz`: whether the database answers; later also the reminder passes.

use serde_json::json;
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::Response;

use super::error::json_status;
use crate::store::Store;

/// The `/healthz` route.
pub fn route(store: Store) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::path!("healthz").and(warp::get()).then(move || {
        let store = store.clone();
        async move { health(&store).await }
    })
}

async fn health(store: &Store) -> Response {
    let version = env!("CARGO_PKG_VERSION");
    match store.health().await {
        Ok(schema) => json_status(
            &json!({
                "status": "ok",
                "version": version,
                "database": {"ok": true, "schema": schema},
            }),
            StatusCode::OK,
        ),
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
