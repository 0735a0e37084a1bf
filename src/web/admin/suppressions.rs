//! `/admin/suppressions`: the addresses never emailed, and adding or removing one by hand.

use askama::Template;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use warp::reply::Response;

use super::{AppState, Notice, local, page as render, see_other, with_notice};
use crate::store::privacy::SuppressionSource;
use crate::web::ApiError;

/// The form of `/admin/suppressions` and `/admin/suppressions/remove`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct SuppressionForm {
    /// The address.
    email: String,
}

struct SuppressionRow {
    email: String,
    since: String,
    source: String,
}

#[derive(Template)]
#[template(path = "pages/admin/suppressions.html")]
struct SuppressionsPage {
    active: &'static str,
    notice: String,
    rows: Vec<SuppressionRow>,
}

/// `GET /admin/suppressions`: every address that is never emailed, since when and why.
pub(super) async fn page(state: AppState, q: Notice) -> Result<Response, ApiError> {
    let state = &state;
    let rows = state.store.suppressions().await?;
    render(&SuppressionsPage {
        active: "suppressions",
        notice: q.notice,
        rows: rows
            .into_iter()
            .map(|s| SuppressionRow {
                since: local(state, &s.added_at),
                source: match (s.event_id, s.step) {
                    (Some(e), Some(step)) => format!("{} ({step}, event {e})", s.source),
                    _ => s.source,
                },
                email: s.email,
            })
            .collect(),
    })
}

/// `POST /admin/suppressions`: an address is never emailed from now on.
pub(super) async fn add(state: AppState, f: SuppressionForm) -> Result<Response, ApiError> {
    change_suppression(&state, &f, true).await
}

/// `POST /admin/suppressions/remove`: an address may be emailed again.
pub(super) async fn remove(state: AppState, f: SuppressionForm) -> Result<Response, ApiError> {
    change_suppression(&state, &f, false).await
}

async fn change_suppression(
    state: &AppState,
    f: &SuppressionForm,
    add: bool,
) -> Result<Response, ApiError> {
    let email = f.email.trim();
    if email.is_empty() || !email.contains('@') {
        return Ok(see_other(
            "/admin/suppressions?notice=Give+an+email+address.",
        ));
    }
    let now: DateTime<Utc> = Utc::now();
    let message = if add {
        state
            .store
            .add_suppression(email, SuppressionSource::Admin, None, None, now)
            .await?;
        format!("{email} will not be emailed.")
    } else {
        state.store.remove_suppression(email, now).await?;
        format!("{email} can be emailed again.")
    };
    Ok(with_notice(
        "/admin/suppressions",
        &[("notice", message.as_str())],
    ))
}
