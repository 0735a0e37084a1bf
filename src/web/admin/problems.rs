//! `/admin/problems`: the deliveries that could not be used (their body shown in part, the whole
//! as a download), and replaying them all.

use askama::Template;
use warp::http::header;
use warp::reply::Response;

use super::{AppState, Notice, local, page as render, with_notice};
use crate::web::ApiError;

struct ProblemRow {
    id: i64,
    at: String,
    outcome: String,
    error: String,
    body: String,
    /// "" when the whole body is shown, else e.g. "the first 4 KiB of 1,048,576 bytes".
    cut: String,
}

#[derive(Template)]
#[template(path = "pages/admin/problems.html")]
struct ProblemsPage {
    active: &'static str,
    notice: String,
    rows: Vec<ProblemRow>,
}

/// `GET /admin/problems`: deliveries that could not be used, or only in part.
pub(super) async fn page(state: AppState, q: Notice) -> Result<Response, ApiError> {
    let state = &state;
    let rows = state.store.problems(200).await?;
    render(&ProblemsPage {
        active: "problems",
        notice: q.notice,
        rows: rows
            .into_iter()
            .map(|p| {
                let shown = crate::store::problems::BODY_SHOWN;
                let cut = match p.size {
                    Some(size) if size > shown as i64 => format!(
                        "the first {} KiB of {} bytes",
                        shown / 1024,
                        crate::domain::thousands(size)
                    ),
                    _ => String::new(),
                };
                ProblemRow {
                    id: p.id,
                    at: local(state, &p.received_at),
                    outcome: match p.outcome.as_str() {
                        "recorded" | "duplicate" => format!("{} with problems", p.outcome),
                        _ => p.outcome,
                    },
                    error: p.error.unwrap_or_default(),
                    body: p.body.unwrap_or_else(|| "(removed by retention)".into()),
                    cut,
                }
            })
            .collect(),
    })
}

/// A delivery's whole raw body, as a download (never shown as a page: it is what a stranger sent).
pub(super) async fn body(state: AppState, id: i64) -> Result<Response, ApiError> {
    let body = state
        .store
        .delivery_body(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("delivery {id} has no body (any more)")))?;
    let mut response = warp::reply::Response::new(body.into());
    let headers = response.headers_mut();
    let value = |v: &str| {
        warp::http::HeaderValue::from_str(v)
            .unwrap_or_else(|_| warp::http::HeaderValue::from_static("attachment"))
    };
    headers.insert(header::CONTENT_TYPE, value("application/octet-stream"));
    headers.insert(
        header::CONTENT_DISPOSITION,
        value(&format!("attachment; filename=\"delivery-{id}.json\"")),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, value("nosniff"));
    headers.insert(header::CACHE_CONTROL, value("no-store"));
    Ok(response)
}

/// `POST /admin/replay`: reads every kept delivery again (after a fix that reads more of them).
pub(super) async fn replay(state: AppState) -> Result<Response, ApiError> {
    let timezone = state.engine.settings().config.schedule.timezone;
    let r = state.store.replay(timezone).await?;
    let message = format!(
        "Replayed {} deliveries: {} recorded, {} repeats, {} still not usable.",
        r.examined, r.recorded, r.duplicate, r.unchanged
    );
    Ok(with_notice(
        "/admin/problems",
        &[("notice", message.as_str())],
    ))
}
