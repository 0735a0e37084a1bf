//! `/admin/orders` (the search) and `/admin/buyer` (one buyer-event's timeline).

use askama::Template;
use serde::Deserialize;
use warp::reply::Response;

use super::{AppState, buyer_link, local, page as render, see_other};
use crate::domain::Outcome;
use crate::experiment::CONTROL_GROUP;
use crate::present::rands;
use crate::web::ApiError;

/// The query of `/admin/orders`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct OrdersQuery {
    /// What to search for: part of a name, an address, a reference or an event.
    q: String,
    notice: String,
}

/// The query of `/admin/buyer`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct BuyerQuery {
    /// The buyer's email key.
    email: String,
    /// The event's id.
    event: String,
    notice: String,
}

struct OrderRow {
    link: String,
    name: String,
    email: String,
    amount: String,
    event: String,
    state: &'static str,
    changed: String,
    decision: String,
}

/// A pass's latest decision for people; a buyer-event of the control group reads as one, whatever
/// the pass said of its timing.
fn decision_for_people(decision: Option<Outcome>, reason: Option<&str>, held_out: bool) -> String {
    let reason = reason.unwrap_or_default();
    if held_out && !matches!(decision, Some(Outcome::Done)) {
        return format!("Not emailed: {CONTROL_GROUP}");
    }
    match decision {
        Some(Outcome::Sent) => "Emailed".into(),
        Some(Outcome::Deferred) => format!("Waiting: {reason}"),
        Some(Outcome::Skipped) => format!("Not emailed: {reason}"),
        Some(Outcome::Failed) => format!("Sending failed: {reason}"),
        Some(Outcome::Interrupted) => "Interrupted: may or may not have arrived".into(),
        Some(Outcome::Done) => format!("Nothing more to send: {reason}"),
        // Never stored: only a dry run says it.
        Some(Outcome::WouldSend) => format!("Would be emailed: {reason}"),
        None => "Not looked at yet".into(),
    }
}

fn money(cents: Option<i64>) -> String {
    cents.map(rands).unwrap_or_default()
}

#[derive(Template)]
#[template(path = "pages/admin/orders.html")]
struct OrdersPage {
    active: &'static str,
    notice: String,
    query: String,
    rows: Vec<OrderRow>,
}

/// `GET /admin/orders?q=`: the latest buyer-events, or those matching a search.
pub(super) async fn list(state: AppState, q: OrdersQuery) -> Result<Response, ApiError> {
    let state = &state;
    let query = q.q;
    let rows = state.store.search(&query).await?;
    render(&OrdersPage {
        active: "orders",
        notice: q.notice,
        rows: rows
            .into_iter()
            .map(|r| OrderRow {
                link: buyer_link(&r.email_key, &r.event_id),
                name: r.buyer_name,
                amount: money(r.amount_cents),
                email: r.email_key,
                event: format!("{} ({})", r.event_name, r.event_id),
                state: r.state.for_people(),
                changed: local(state, &r.changed_at),
                decision: decision_for_people(
                    r.last_decision,
                    r.last_reason.as_deref(),
                    r.held_out,
                ),
            })
            .collect(),
        query,
    })
}

struct EntryView {
    kind: &'static str,
    /// The kind in the organiser's words.
    tag: &'static str,
    at: String,
    title: String,
    detail: String,
    body: String,
    /// The email a sent reminder used: its name for people and its editor's address.
    email: Option<(String, String)>,
}

/// A timeline entry's kind in the organiser's words.
fn tag(kind: &str) -> &'static str {
    match kind {
        "hook" => "from Quicket",
        "reminder" => "reminder",
        "click" => "click",
        "paid" => "paid",
        "unsubscribe" => "unsubscribed",
        "bounce" => "bounce",
        "complaint" => "spam complaint",
        "decision" => "latest pass",
        _ => "event",
    }
}

/// A timeline entry's title with the step's name for people and Quicket's actions in words.
fn title_for_people(e: &crate::store::timeline::Entry, config: &crate::config::Config) -> String {
    let mut title = e.title.clone();
    if let Some(step) = &e.step {
        let name = config
            .reminders
            .iter()
            .find(|s| s.name == *step)
            .map(|s| s.display_name())
            .unwrap_or_else(|| crate::config::step_display_name(step));
        title = title
            .replace(&format!("reminder {step}"), &name)
            .replace(step.as_str(), &format!("the {name}"));
    }
    if e.kind == "hook" {
        for (action, words) in [
            ("checkout_started", "Started a checkout"),
            ("checkout_cancelled", "Cancelled the checkout"),
            ("eft_pending", "Chose to pay by EFT"),
            ("checkout_completed", "Completed the purchase"),
        ] {
            if let Some(rest) = title.strip_prefix(action) {
                title = format!("{words}{rest}");
                break;
            }
        }
    }
    title
}

#[derive(Template)]
#[template(path = "pages/admin/buyer.html")]
struct BuyerPage {
    active: &'static str,
    notice: String,
    name: String,
    email: String,
    event: String,
    event_date: String,
    amount: String,
    tickets: i64,
    state: &'static str,
    references: String,
    next_check: String,
    entries: Vec<EntryView>,
}

/// `GET /admin/buyer?email=&event=`: one buyer-event's timeline.
pub(super) async fn buyer(state: AppState, q: BuyerQuery) -> Result<Response, ApiError> {
    let state = &state;
    let (email, event) = (q.email, q.event);
    let config = state.engine.settings().config.clone();
    let Some(t) = state.store.timeline(&email, &event).await? else {
        return Ok(see_other("/admin/orders?notice=No+such+buyer+and+event"));
    };
    render(&BuyerPage {
        active: "orders",
        notice: q.notice,
        name: t.buyer_event.buyer_name.clone(),
        email: if t.email.is_empty() {
            t.buyer_event.email_key.clone()
        } else {
            t.email.clone()
        },
        event: format!("{} ({})", t.buyer_event.event_name, t.buyer_event.event_id),
        event_date: t
            .buyer_event
            .event_date
            .as_deref()
            .and_then(|d| chrono::NaiveDateTime::parse_from_str(d, "%Y-%m-%d %H:%M:%S").ok())
            .map(|d| crate::templates::format_date(Some(d)))
            .unwrap_or_default(),
        amount: money(t.buyer_event.amount_cents),
        tickets: t.buyer_event.tickets,
        state: t.buyer_event.state.for_people(),
        references: t.references.join(", "),
        next_check: t
            .buyer_event
            .next_check_at
            .as_deref()
            .map(|n| local(state, n))
            .unwrap_or_default(),
        entries: t
            .entries
            .iter()
            .map(|e| EntryView {
                kind: e.kind,
                tag: tag(e.kind),
                at: local(state, &e.at),
                title: title_for_people(e, &config),
                detail: e.detail.clone().unwrap_or_default(),
                body: e.body.clone().unwrap_or_default(),
                email: e
                    .template
                    .as_ref()
                    .map(|t| (crate::present::email_name(t), format!("/admin/emails/{t}"))),
            })
            .collect(),
    })
}
