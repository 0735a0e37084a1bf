//! `/admin/suppressions`: the addresses never emailed, adding one by hand, and taking one off the
//! list: only after a confirmation with a reason, which the list of removals keeps. An address
//! the buyer put there themselves (the unsubscribe link, a spam complaint) comes off only when
//! the buyer asked to be emailed again, and the form says so.

use std::collections::BTreeMap;

use askama::Template;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::email_editor::{Peer, client};
use super::{AppState, Notice, local, page as render, see_other, with_notice};
use crate::present::{self, Lookups};
use crate::store::privacy::{Removal, RemovedBy, Suppression, SuppressionSource};
use crate::web::ApiError;

/// The longest reason kept.
const MAX_REASON: usize = 500;

/// Removals listed on the page at most.
const REMOVALS_SHOWN: usize = 100;

/// The form of `/admin/suppressions` and `/admin/suppressions/remove`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct SuppressionForm {
    /// The address.
    email: String,
    /// Why it is taken off the list.
    reason: String,
    /// "yes": the buyer asked to be emailed again (required for one who unsubscribed).
    asked: String,
    /// "yes": the confirmation's button (without it, the confirmation is shown).
    confirm: String,
}

struct SuppressionRow {
    email: String,
    since: String,
    source: String,
}

struct RemovalRow {
    email: String,
    when: String,
    by: String,
    had: String,
    reason: String,
}

/// The confirmation asked before an address comes off the list.
struct Confirm {
    email: String,
    source: String,
    /// The buyer put it there themselves: the form asks whether they asked to be emailed again.
    by_buyer: bool,
    reason: String,
    reason_error: String,
    asked: bool,
    asked_error: String,
}

#[derive(Template)]
#[template(path = "pages/admin/suppressions.html")]
struct SuppressionsPage {
    active: &'static str,
    notice: String,
    confirm: Option<Confirm>,
    rows: Vec<SuppressionRow>,
    removals: Vec<RemovalRow>,
}

/// `GET /admin/suppressions`: every address that is never emailed, since when and why.
pub(super) async fn page(state: AppState, q: Notice) -> Result<Response, ApiError> {
    show(&state, q.notice, None).await
}

async fn show(
    state: &AppState,
    notice: String,
    confirm: Option<Confirm>,
) -> Result<Response, ApiError> {
    let rows = state.store.suppressions().await?;
    let names = event_names(state).await?;
    let removals = state.store.suppression_removals(REMOVALS_SHOWN).await?;
    render(&SuppressionsPage {
        active: "suppressions",
        notice,
        confirm,
        rows: rows
            .iter()
            .map(|s| SuppressionRow {
                since: local(state, &s.added_at),
                source: how(s, &names),
                email: s.email.clone(),
            })
            .collect(),
        removals: removals
            .into_iter()
            .map(|r| RemovalRow {
                when: local(state, &r.removed_at),
                by: match r.by.as_str() {
                    "admin" if r.client.is_empty() => "here".to_string(),
                    "admin" => format!("here, from {}", r.client),
                    "cli" => "on the command line".into(),
                    "buyer" => "the buyer, through the link in an email".into(),
                    other => other.to_string(),
                },
                had: format!(
                    "{} (since {})",
                    source_words(&r.source),
                    local(state, &r.added_at)
                ),
                reason: r.reason,
                email: r.email,
            })
            .collect(),
    })
}

/// The events' names by id (from what is stored: a page view never waits for Quicket's API).
async fn event_names(state: &AppState) -> Result<BTreeMap<String, String>, ApiError> {
    let listing = present::event_pages(&state.engine, &state.store, Lookups::CacheOnly).await?;
    Ok(listing.events.into_iter().map(|e| (e.id, e.name)).collect())
}

/// How an address came onto the list, in words.
fn source_words(source: &str) -> String {
    match SuppressionSource::parse(source) {
        Some(SuppressionSource::Unsubscribe) => "unsubscribed through the link in an email".into(),
        Some(SuppressionSource::Complaint) => "marked an email as spam".into(),
        Some(SuppressionSource::Bounce) => "the address bounced (it cannot receive mail)".into(),
        Some(SuppressionSource::Admin) => "added here by hand".into(),
        Some(SuppressionSource::Cli) => "added on the command line".into(),
        None => source.to_string(),
    }
}

fn how(s: &Suppression, names: &BTreeMap<String, String>) -> String {
    let words = source_words(&s.source);
    match &s.event_id {
        Some(e) => format!(
            "{words} (an email about {})",
            names
                .get(e)
                .cloned()
                .unwrap_or_else(|| format!("event {e}"))
        ),
        None => words,
    }
}

/// Whether the buyer put the address on the list themselves: then only their own request to be
/// emailed again makes it lawful to take it off.
fn put_there_by_buyer(source: &str) -> bool {
    matches!(
        SuppressionSource::parse(source),
        Some(SuppressionSource::Unsubscribe | SuppressionSource::Complaint)
    )
}

/// `POST /admin/suppressions`: an address is never emailed from now on.
pub(super) async fn add(state: AppState, f: SuppressionForm) -> Result<Response, ApiError> {
    let email = f.email.trim();
    if email.is_empty() || !email.contains('@') || email.chars().any(char::is_control) {
        return Ok(see_other(
            "/admin/suppressions?notice=Give+an+email+address.",
        ));
    }
    let now: DateTime<Utc> = Utc::now();
    state
        .store
        .add_suppression(email, SuppressionSource::Admin, None, None, now)
        .await?;
    // The address stays out of the URL (personal data never travels in one).
    Ok(with_notice(
        "/admin/suppressions",
        &[("notice", "Added: that address will not be emailed.")],
    ))
}

/// `POST /admin/suppressions/remove`: without `confirm`, the confirmation (with the reason to
/// give); with it and a valid reason, the address may be emailed again.
pub(super) async fn remove(
    state: AppState,
    (peer, f): (Peer, SuppressionForm),
) -> Result<Response, ApiError> {
    let email = f.email.trim().to_lowercase();
    let entry = state
        .store
        .suppressions()
        .await?
        .into_iter()
        .find(|s| s.email == email);
    let Some(entry) = entry else {
        return Ok(with_notice(
            "/admin/suppressions",
            &[("notice", "That address is not on the list (any more).")],
        ));
    };
    let names = event_names(&state).await?;
    let by_buyer = put_there_by_buyer(&entry.source);
    let mut confirm = Confirm {
        email: entry.email.clone(),
        source: how(&entry, &names),
        by_buyer,
        reason: f.reason.clone(),
        reason_error: String::new(),
        asked: f.asked == "yes",
        asked_error: String::new(),
    };
    if f.confirm != "yes" {
        return show(&state, String::new(), Some(confirm)).await;
    }
    let reason = f.reason.trim();
    if reason.is_empty() {
        confirm.reason_error = "Say why this address may be emailed again.".into();
    } else if reason.chars().count() > MAX_REASON {
        confirm.reason_error = format!("Keep the reason under {MAX_REASON} characters.");
    } else if reason.chars().any(char::is_control) {
        confirm.reason_error = "Write the reason on one line.".into();
    }
    if by_buyer && !confirm.asked {
        confirm.asked_error = "This buyer asked not to be emailed. Only their own request to be \
                               emailed again allows it: tick the box if they made one."
            .into();
    }
    if !confirm.reason_error.is_empty() || !confirm.asked_error.is_empty() {
        let page = show(&state, String::new(), Some(confirm)).await?;
        return Ok(
            warp::reply::with_status(page, StatusCode::UNPROCESSABLE_ENTITY).into_response(),
        );
    }
    let reason = if by_buyer {
        format!("the buyer asked to be emailed again: {reason}")
    } else {
        reason.to_string()
    };
    state
        .store
        .remove_suppression(
            &entry.email,
            Removal {
                by: RemovedBy::Admin,
                client: client(&state, &peer),
                reason,
            },
            Utc::now(),
        )
        .await?;
    Ok(with_notice(
        "/admin/suppressions",
        &[(
            "notice",
            "Taken off the list: that address may be emailed again. The reason is kept below.",
        )],
    ))
}
