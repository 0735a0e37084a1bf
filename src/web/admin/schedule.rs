//! `/admin/schedule`: the reminder plan in words, the buyers due next, and the page each event's
//! emails link to.

use askama::Template;
use warp::reply::Response;

use super::{AppState, NoQuery, buyer_link, local, page as render};
use crate::present::{self, Lookups};
use crate::web::ApiError;

struct DueRow {
    when: String,
    link: String,
    email: String,
    event: String,
    decision: String,
}

#[derive(Template)]
#[template(path = "pages/admin/schedule.html")]
struct SchedulePage {
    active: &'static str,
    notice: String,
    plan: Vec<String>,
    due: Vec<DueRow>,
    events: Vec<EventRow>,
}

/// An event on the schedule page: the page its emails link to, and where that came from.
struct EventRow {
    event: String,
    url: String,
    source: String,
    details: String,
}

/// Buyers listed as due next at most.
const DUE_SHOWN: usize = 50;

/// `GET /admin/schedule`: the plan in words, the next buyers due, and each event's page.
pub(super) async fn page(state: AppState, _: NoQuery) -> Result<Response, ApiError> {
    let state = &state;
    let settings = state.engine.settings();
    let due = state.store.next_due(DUE_SHOWN).await?;
    // From the cache only: a page view never waits for Quicket's API.
    let listing = present::event_pages(&state.engine, &state.store, Lookups::CacheOnly).await?;
    let events = listing
        .events
        .into_iter()
        .map(|e| EventRow {
            event: format!("{} ({})", e.name, e.id),
            url: e.page.url,
            source: e.page.source,
            details: e
                .page
                .details
                .trim_start_matches([',', ';', ' '])
                .to_string(),
        })
        .collect();
    render(&SchedulePage {
        active: "schedule",
        notice: String::new(),
        events,
        plan: present::plan_in_words(&settings.config),
        due: due
            .into_iter()
            .map(|r| DueRow {
                when: r
                    .next_check_at
                    .as_deref()
                    .map(|n| local(state, n))
                    .unwrap_or_default(),
                link: buyer_link(&r.email_key, &r.event_id),
                email: r.email_key,
                event: format!("{} ({})", r.event_name, r.event_id),
                decision: r
                    .last_reason
                    .unwrap_or_else(|| "new: not looked at yet".into()),
            })
            .collect(),
    })
}
