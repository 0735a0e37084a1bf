//! The page each known event's emails link to and where it came from: one listing for `check`
//! (which looks the events up in Quicket's API first, testing the key) and `/admin/schedule`
//! (from the cache only: a page view never waits for the API).

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::config::Config;
use crate::events::EventInfo;
use crate::reminders::Engine;
use crate::store::event_info::{KnownEvent, StoredEvent};
use crate::store::{Store, StoreError};

/// Events listed at most (the latest event dates first).
pub const EVENTS_SHOWN: usize = 50;

/// Whether the listing asks Quicket's API before it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookups {
    /// Look every listed event up first (`check`; nothing is asked without a key).
    Refresh,
    /// Only what was kept from earlier lookups.
    CacheOnly,
}

/// One event's page as `check` and `/admin` show it.
#[derive(Debug, Clone)]
pub struct EventPage {
    /// The page the emails link to.
    pub url: String,
    /// Where it came from, in words.
    pub source: String,
    /// What Quicket's API said (when, image, sold-out types) or why it did not; may be empty, else
    /// starts with the separator (", " "; " or " (") that follows the source in a sentence.
    pub details: String,
}

/// One listed event.
#[derive(Debug, Clone)]
pub struct ListedEvent {
    /// Quicket's event id.
    pub id: String,
    /// The name the latest hook gave.
    pub name: String,
    /// Its page.
    pub page: EventPage,
}

/// The known events, the latest event dates first, at most [`EVENTS_SHOWN`].
#[derive(Debug, Clone)]
pub struct EventListing {
    /// The events listed.
    pub events: Vec<ListedEvent>,
    /// How many events hooks have named in all.
    pub total: usize,
}

impl EventListing {
    /// How many known events are not listed.
    pub fn older(&self) -> usize {
        self.total.saturating_sub(self.events.len())
    }
}

/// Lists the known events with the page their emails link to.
pub async fn event_pages(
    engine: &Engine,
    store: &Store,
    lookups: Lookups,
) -> Result<EventListing, StoreError> {
    let mut known = store.known_events().await?;
    let total = known.len();
    known.truncate(EVENTS_SHOWN);
    let directory = engine.events();
    let looked_up = if lookups == Lookups::Refresh && directory.enabled() {
        let ids = known.iter().map(|e| e.event_id.clone()).collect();
        directory.refresh_for_check(ids).await
    } else {
        HashMap::new()
    };
    let stored: HashMap<String, StoredEvent> = store
        .event_infos()
        .await?
        .into_iter()
        .map(|e| (e.event_id.clone(), e))
        .collect();
    let settings = engine.settings();
    let events = known
        .into_iter()
        .map(|event| {
            let row = stored.get(&event.event_id);
            let info = looked_up
                .get(&event.event_id)
                .or_else(|| row.and_then(|r| r.info.as_ref()));
            let page = describe_event(&settings.config, &event, info, row, directory.enabled());
            ListedEvent {
                id: event.event_id,
                name: event.name,
                page,
            }
        })
        .collect();
    Ok(EventListing { events, total })
}

/// Describes the page `event`'s emails link to and what Quicket's API said about it.
pub fn describe_event(
    config: &Config,
    event: &KnownEvent,
    info: Option<&EventInfo>,
    row: Option<&StoredEvent>,
    api_enabled: bool,
) -> EventPage {
    let id = &event.event_id;
    // Without a key nothing from the API is used, whatever was kept from before.
    let (info, row) = if api_enabled {
        (info, row)
    } else {
        (None, None)
    };
    let (url, source) = crate::events::event_page(config, id, info);
    let details = match (info, row) {
        (Some(info), Some(row)) => looked_up(config, info, row),
        (None, Some(row)) => row
            .error
            .as_ref()
            .map(|error| format!(" ({error})"))
            .unwrap_or_default(),
        (_, None) if api_enabled => " (not looked up yet)".into(),
        _ => String::new(),
    };
    EventPage {
        url,
        source: source.describe(id),
        details,
    }
}

/// What the API said about an event it was asked about: when, the image, sold-out types.
fn looked_up(config: &Config, info: &EventInfo, row: &StoredEvent) -> String {
    let mut details = String::new();
    if let Some(at) = row.fetched_at {
        let local = at
            .with_timezone(&config.schedule.timezone)
            .format("%Y-%m-%d %H:%M");
        let _ = write!(details, ", looked up {local}");
    }
    if let Some(image) = &info.image_url {
        let _ = write!(details, "; image {image}");
    }
    let sold_out: Vec<&str> = info
        .ticket_types
        .iter()
        .filter(|t| t.sold_out)
        .map(|t| t.name.as_str())
        .collect();
    if !sold_out.is_empty() {
        let _ = write!(details, "; sold out: {}", sold_out.join(", "));
    }
    if let Some(error) = &row.error {
        let _ = write!(details, " (the latest lookup failed: {error})");
    }
    details
}
