//! `/admin/schedule`: the reminder plan in words, the buyers due next, and the page each event's
//! emails link to.

use askama::Template;
use warp::reply::Response;

use super::{AdminState, NoQuery, buyer_link, local, page as render};
use crate::check::{describe_event, plan_in_words};
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

/// Events listed on the schedule page at most (the latest event dates first).
const EVENTS_SHOWN: usize = 50;

/// `GET /admin/schedule`: the plan in words, the next buyers due, and each event's page.
pub(super) async fn page(state: AdminState, _: NoQuery) -> Result<Response, ApiError> {
    let state = &state;
    let settings = state.engine.settings();
    let due = state.store.next_due(50).await?;
    // From the cache only: a page view never waits for Quicket's API.
    let (known, stored) = state
        .store
        .read(|conn| {
            let mut known = crate::store::event_info::known_events(conn)?;
            known.truncate(EVENTS_SHOWN);
            Ok((known, crate::store::event_info::all(conn)?))
        })
        .await?;
    let enabled = state.engine.events().enabled();
    let events = known
        .iter()
        .map(|event| {
            let row = stored.iter().find(|r| r.event_id == event.event_id);
            let info = row.and_then(|r| r.info.as_ref());
            let page = describe_event(&settings.config, event, info, row, enabled);
            EventRow {
                event: format!("{} ({})", event.name, event.event_id),
                url: page.url,
                source: page.source,
                details: page.details.trim_start_matches([',', ';', ' ']).to_string(),
            }
        })
        .collect();
    render(&SchedulePage {
        active: "schedule",
        notice: String::new(),
        events,
        plan: plan_in_words(&settings.config),
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
