//! HTTP plumbing shared by every route: the one state, the one place errors become statuses,
//! the security headers; the pages: `/healthz`, the links in emails, `/admin`.

mod admin;
mod credentials;
mod doors;
mod error;
mod experiment_view;
mod headers;
mod health;
mod links;
mod session;
mod state;
mod throttle;

pub use crate::reminders::schedule::pass_overdue;
pub use admin::routes as admin_routes;
pub use admin::setup::{new_link as new_setup_link, routes as setup_routes};
pub use credentials::{AdminCredentials, MIN_PASSWORD_CHARS, hash_password};
pub use doors::routes as door_routes;
pub use error::{AdminRefused, ApiError, json_status, recover};
pub use headers::{forwarded_for, security_headers};
pub use health::{HealthCache, routes as health_routes};
pub use links::routes as link_routes;
pub use session::{COOKIE as SESSION_COOKIE, IDLE as SESSION_IDLE, live as session_live};
pub use state::{AppState, EmailProviders, with_state};
pub use throttle::LoginThrottle;

use askama::Template;
use bytes::Buf;
use futures_util::{Stream, StreamExt};
use warp::Reply;
use warp::http::{StatusCode, header};
use warp::reply::Response;

/// How long the body had to arrive, when reading it failed because it did not in time.
fn body_timeout(e: &warp::Error) -> Option<std::time::Duration> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(e) = cause {
        if let Some(timeout) = e.downcast_ref::<crate::connections::BodyTimeout>() {
            return Some(timeout.0);
        }
        cause = e.source();
    }
    None
}

/// Reads a body of at most `limit` bytes, also when it is sent without a Content-Length.
pub async fn read_limited<S, B>(body: S, limit: usize) -> Result<Vec<u8>, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut body = std::pin::pin!(body);
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|e| match body_timeout(&e) {
            Some(after) => ApiError::RequestTimeout(after),
            None => ApiError::BadRequest(format!("the body could not be read: {e}")),
        })?;
        if out.len() + chunk.remaining() > limit {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            out.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(out)
}

/// One of our HTML pages with a status, never cached; a render failure is an internal error.
fn html(page: &impl Template, status: StatusCode) -> Result<Response, ApiError> {
    let body = page
        .render()
        .map_err(|e| ApiError::Internal(format!("page could not be rendered: {e}")))?;
    let reply =
        warp::reply::with_header(warp::reply::html(body), header::CACHE_CONTROL, "no-store");
    Ok(warp::reply::with_status(reply, status).into_response())
}
