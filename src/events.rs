//! What we know about each event beyond the hook: its page, image, venue, real start and which
//! ticket types are sold out, from Quicket's public API when `[quicket] api_key` is set.
//!
//! Lookups never hold anything up: a hook for a new event starts one in the background, a pass
//! refreshes stale events it is about to email within `quicket.timeout`, and every failure (no
//! key, 401, 404, 429, a timeout, garbage) falls back to what the configuration says.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use futures_util::StreamExt;
use serde::Serialize;

use crate::config::Config;
pub use crate::domain::{EventInfo, TicketTypeInfo};
use crate::quicket_api::{LookupError, QuicketApi};
use crate::store::Store;
use crate::store::event_info::StoredEvent;

/// Lookups in flight at once (a pass may need several events).
const LOOKUP_CONCURRENCY: usize = 4;
/// Pause after a lookup failed for a reason that may pass (timeout, 5xx, garbage).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10 * 60);
/// Pause for every event after the key was refused: it will not work until the config changes.
const RETRY_AFTER_UNAUTHORIZED: Duration = Duration::from_secs(60 * 60);
/// At most one warning per event within this span, however many emails it concerns.
const WARN_EVERY: Duration = Duration::from_secs(60 * 60);

/// The start to plan with for a hook's date and what the API said, if anything.
pub fn event_start(
    hook_date: Option<NaiveDateTime>,
    info: Option<&EventInfo>,
) -> Option<NaiveDateTime> {
    match info {
        Some(info) => info.start_for(hook_date),
        None => hook_date,
    }
}

/// Where an event's page URL came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UrlSource {
    /// `[events."ID"].url`.
    Config,
    /// Quicket's API.
    QuicketApi,
    /// The `[email].event_url` pattern.
    Pattern,
}

impl UrlSource {
    /// For people.
    pub fn describe(self, event_id: &str) -> String {
        match self {
            UrlSource::Config => format!("from [events.\"{event_id}\"].url"),
            UrlSource::QuicketApi => "from Quicket's API".into(),
            UrlSource::Pattern => "from the email.event_url pattern".into(),
        }
    }
}

/// The event's page: `[events."ID"].url`, else the API's `url`, else the `[email].event_url`
/// pattern.
pub fn event_page(
    config: &Config,
    event_id: &str,
    info: Option<&EventInfo>,
) -> (String, UrlSource) {
    if let Some(url) = config.events.get(event_id).and_then(|e| e.url.clone()) {
        return (url, UrlSource::Config);
    }
    if let Some(url) = info.and_then(|i| i.url.clone()) {
        return (url, UrlSource::QuicketApi);
    }
    (
        config.email.event_url.replace("{event_id}", event_id),
        UrlSource::Pattern,
    )
}

/// Whether a failure for `event_id` at `now` should be logged: at most once per event per
/// [`WARN_EVERY`], however many emails or passes run into it.
fn warn_due(warned: &mut HashMap<String, Instant>, event_id: &str, now: Instant) -> bool {
    let due = warned
        .get(event_id)
        .is_none_or(|at| now.saturating_duration_since(*at) >= WARN_EVERY);
    if due {
        warned.insert(event_id.to_string(), now);
    }
    due
}

/// How Quicket's API lookups stand (`/healthz` shows it as the lowercase word).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiState {
    /// No key: nothing is looked up.
    Off,
    /// A key, and no event looked up yet.
    Waiting,
    /// Every event's latest lookup succeeded (or Quicket does not know the event).
    Ok,
    /// The latest lookup of some event failed.
    Failing,
}

/// The state of the lookups, for `/healthz` and `check`.
#[derive(Debug, Clone, Serialize)]
pub struct ApiStatus {
    /// Whether a key is set.
    pub enabled: bool,
    /// How the lookups stand.
    pub state: ApiState,
    /// Events looked up.
    pub events: usize,
    /// Events whose latest lookup failed (not counting those Quicket does not know).
    pub failing: usize,
    /// Events Quicket's API answered 404 for (a "Send Test" hook's, or an event not public).
    pub unknown_to_quicket: usize,
    /// The most recent failure, if the latest lookup of some event failed.
    pub last_error: Option<String>,
    /// The most recent successful lookup (UTC, RFC 3339).
    pub last_success_at: Option<String>,
}

/// The lookups: the API client, what is cached, and the pacing of requests and warnings.
pub struct EventDirectory {
    api: Option<QuicketApi>,
    store: Store,
    refresh: chrono::TimeDelta,
    timeout: Duration,
    timezone: Tz,
    /// Events looked up or being looked up, so a hook triggers at most one lookup per event.
    known: Mutex<HashSet<String>>,
    /// When each event's latest warning was logged.
    warned: Mutex<HashMap<String, Instant>>,
    /// No request before this (after a 429 or a refused key), with the reason.
    paused: Mutex<Option<(Instant, String)>>,
}

impl EventDirectory {
    /// The directory for a configuration; without `[quicket] api_key` it looks nothing up.
    pub async fn new(config: &Config, store: Store) -> anyhow::Result<Arc<EventDirectory>> {
        let api = QuicketApi::from_config(&config.quicket)?;
        let known = if api.is_some() {
            store
                .event_infos()
                .await?
                .into_iter()
                .map(|e| e.event_id)
                .collect()
        } else {
            HashSet::new()
        };
        Ok(Arc::new(EventDirectory {
            api,
            store,
            refresh: chrono::TimeDelta::from_std(config.quicket.refresh)
                .unwrap_or(chrono::TimeDelta::hours(6)),
            timeout: config.quicket.timeout,
            timezone: config.schedule.timezone,
            known: Mutex::new(known),
            warned: Mutex::new(HashMap::new()),
            paused: Mutex::new(None),
        }))
    }

    /// Whether a key is set.
    pub fn enabled(&self) -> bool {
        self.api.is_some()
    }

    /// Called for every stored hook: the first hook of an event not yet looked up starts a lookup
    /// in the background. Never waits.
    pub fn notice(self: &Arc<Self>, event_id: &str) {
        if self.api.is_none() || event_id.is_empty() {
            return;
        }
        let new = match self.known.lock() {
            Ok(mut known) => known.insert(event_id.to_string()),
            Err(_) => false,
        };
        if new {
            let this = self.clone();
            let id = event_id.to_string();
            tokio::spawn(async move {
                let _ = this.lookup(&id, Utc::now(), true).await;
            });
        }
    }

    /// What is cached for one event (whatever its age). Without a key, nothing: the emails then
    /// follow the configuration alone, not answers kept from when a key was set.
    pub async fn cached(&self, event_id: &str) -> Option<EventInfo> {
        self.api.as_ref()?;
        self.store
            .event_info(event_id)
            .await
            .ok()
            .flatten()
            .and_then(|e| e.info)
    }

    /// Everything cached, by event (nothing without a key, as for [`EventDirectory::cached`]).
    pub async fn all_cached(&self) -> HashMap<String, EventInfo> {
        if self.api.is_none() {
            return HashMap::new();
        }
        self.store
            .event_infos()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter_map(|e| Some((e.event_id, e.info?)))
            .collect()
    }

    /// Makes sure what is cached for `event_ids` is at most `quicket.refresh` old, looking up
    /// those that are not (and whose pause after a failure is over) all at once, waiting at most
    /// `quicket.timeout`. Returns what is known afterwards. `persist = false` (a dry run) keeps
    /// the answers out of the database.
    pub async fn refresh(
        self: &Arc<Self>,
        event_ids: Vec<String>,
        now: DateTime<Utc>,
        persist: bool,
    ) -> HashMap<String, EventInfo> {
        self.refresh_inner(event_ids, now, persist, false).await
    }

    /// Like [`EventDirectory::refresh`], but also asks again about events whose latest lookup
    /// failed, pause or not: `check`, run by an operator who may just have fixed the key.
    pub async fn refresh_for_check(
        self: &Arc<Self>,
        event_ids: Vec<String>,
    ) -> HashMap<String, EventInfo> {
        self.refresh_inner(event_ids, Utc::now(), true, true).await
    }

    async fn refresh_inner(
        self: &Arc<Self>,
        event_ids: Vec<String>,
        now: DateTime<Utc>,
        persist: bool,
        retry_failed: bool,
    ) -> HashMap<String, EventInfo> {
        let stored: Vec<Option<StoredEvent>> = self
            .store
            .event_infos_of(event_ids.clone())
            .await
            .unwrap_or_default();
        let mut known: HashMap<String, EventInfo> = HashMap::new();
        let mut stale = Vec::new();
        for (id, row) in event_ids.into_iter().zip(stored) {
            let fresh = row
                .as_ref()
                .and_then(|r| r.fetched_at)
                .is_some_and(|at| now < at + self.refresh);
            let failed = row.as_ref().is_some_and(|r| r.error.is_some());
            let waiting = row
                .as_ref()
                .and_then(|r| r.retry_at)
                .is_some_and(|at| now < at)
                && !(retry_failed && failed);
            let fresh = fresh && !(retry_failed && failed);
            if let Some(info) = row.and_then(|r| r.info) {
                known.insert(id.clone(), info);
            }
            if self.api.is_some() && !fresh && !waiting {
                stale.push(id);
            }
        }
        if stale.is_empty() {
            return known;
        }
        if let Ok(mut set) = self.known.lock() {
            set.extend(stale.iter().cloned());
        }
        // Each lookup runs as its own task: one still going when the pass stops waiting finishes
        // and is recorded all the same, so the next pass does not wait for it again.
        let gate = Arc::new(tokio::sync::Semaphore::new(LOOKUP_CONCURRENCY));
        let mut lookups: futures_util::stream::FuturesUnordered<_> = stale
            .into_iter()
            .map(|id| {
                let this = self.clone();
                let gate = gate.clone();
                tokio::spawn(async move {
                    let _permit = gate.acquire_owned().await;
                    let result = this.lookup(&id, now, persist).await;
                    (id, result)
                })
            })
            .collect();
        let deadline = tokio::time::Instant::now() + self.timeout;
        while let Ok(Some(done)) = tokio::time::timeout_at(deadline, lookups.next()).await {
            if let Ok((id, Ok(info))) = done {
                known.insert(id, info);
            }
        }
        known
    }

    /// One lookup, recorded (unless `persist` is false) and warned about once an hour per event.
    async fn lookup(
        &self,
        event_id: &str,
        now: DateTime<Utc>,
        persist: bool,
    ) -> Result<EventInfo, LookupError> {
        let Some(api) = &self.api else {
            return Err(LookupError::NoKey);
        };
        let paused = self
            .paused
            .lock()
            .ok()
            .and_then(|p| p.clone())
            .filter(|(until, _)| Instant::now() < *until);
        let result = match paused {
            Some((_, reason)) => Err(LookupError::Paused(reason)),
            None => api.event(event_id, self.timezone).await,
        };
        let pause = match &result {
            Err(LookupError::RateLimited { retry_after }) => Some(*retry_after),
            Err(LookupError::Unauthorized(_)) => Some(RETRY_AFTER_UNAUTHORIZED),
            _ => None,
        };
        if let (Some(pause), Err(e)) = (pause, &result)
            && let Ok(mut p) = self.paused.lock()
        {
            *p = Some((Instant::now() + pause, e.to_string()));
        }
        if let Err(e) = &result {
            self.warn(event_id, e);
        }
        let id = event_id.to_string();
        let write = match &result {
            _ if !persist => Ok(()),
            Ok(info) => {
                let info = info.clone();
                tracing::info!(event = %event_id, "event details looked up in Quicket's API");
                self.store.record_lookup(id, info, now).await
            }
            Err(e) => {
                let wait = match e {
                    LookupError::RateLimited { retry_after } => *retry_after,
                    LookupError::Unauthorized(_) => RETRY_AFTER_UNAUTHORIZED,
                    // Quicket does not know it (yet): ask again at the next refresh.
                    LookupError::NotFound => self.refresh.to_std().unwrap_or(RETRY_AFTER_FAILURE),
                    _ => RETRY_AFTER_FAILURE,
                };
                let retry_at = now + chrono::TimeDelta::from_std(wait).unwrap_or_default();
                let error = e.to_string();
                let not_found = *e == LookupError::NotFound;
                self.store
                    .record_failed_lookup(id, error, not_found, now, retry_at)
                    .await
            }
        };
        if let Err(e) = write {
            tracing::warn!(event = %event_id, "cannot keep the event's details: {e}");
        }
        result
    }

    fn warn(&self, event_id: &str, error: &LookupError) {
        let due = match self.warned.lock() {
            Ok(mut warned) => warn_due(&mut warned, event_id, Instant::now()),
            Err(_) => true,
        };
        if due {
            tracing::warn!(
                event = %event_id,
                "cannot look the event up in Quicket's API ({error}); emails use the configured URL until it works"
            );
        }
    }

    /// The state of the lookups, from the cache.
    pub async fn status(&self) -> ApiStatus {
        let rows = self.store.event_infos().await.unwrap_or_default();
        let failing: Vec<&StoredEvent> = rows
            .iter()
            .filter(|r| r.error.is_some() && !r.not_found)
            .collect();
        let last_error = failing
            .iter()
            .max_by_key(|r| r.attempted_at)
            .and_then(|r| r.error.clone());
        let last_success_at = rows
            .iter()
            .filter_map(|r| r.fetched_at)
            .max()
            .map(crate::store::timestamp);
        let state = match (self.api.is_some(), rows.is_empty(), failing.is_empty()) {
            (false, _, _) => ApiState::Off,
            (true, true, _) => ApiState::Waiting,
            (true, false, true) => ApiState::Ok,
            (true, false, false) => ApiState::Failing,
        };
        ApiStatus {
            enabled: self.api.is_some(),
            state,
            events: rows.len(),
            failing: failing.len(),
            unknown_to_quicket: rows.iter().filter(|r| r.not_found).count(),
            last_error,
            last_success_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap()
    }

    fn info(types: &[(&str, bool, Option<&str>)]) -> EventInfo {
        EventInfo {
            ticket_types: types
                .iter()
                .map(|(name, sold_out, end)| TicketTypeInfo {
                    name: name.to_string(),
                    sold_out: *sold_out,
                    sales_end: end.map(at),
                })
                .collect(),
            ..EventInfo::default()
        }
    }

    #[test]
    fn sold_out_only_when_every_chosen_type_is() {
        let event = info(&[("General", true, None), ("VIP", false, None)]);
        let now = at("2026-12-01 10:00");
        assert!(event.sold_out_for(&["General".into()], now));
        assert!(event.sold_out_for(&["general ".into(), "GENERAL".into()], now));
        assert!(!event.sold_out_for(&["General".into(), "VIP".into()], now));
        assert!(!event.sold_out_for(&["Unknown".into()], now));
        assert!(!event.sold_out_for(&[], now));
    }

    #[test]
    fn sold_out_once_every_ticket_types_sales_ended() {
        let event = info(&[
            ("General", false, Some("2026-12-01 12:00")),
            ("VIP", false, Some("2026-12-02 12:00")),
        ]);
        assert!(!event.sold_out_for(&[], at("2026-12-02 11:59")));
        assert!(event.sold_out_for(&[], at("2026-12-02 12:00")));
        let open_ended = info(&[
            ("General", false, Some("2026-12-01 12:00")),
            ("VIP", false, None),
        ]);
        assert!(!open_ended.sold_out_for(&[], at("2026-12-05 12:00")));
        // One type past its sales end, the other sold out: nothing is on sale, whatever was chosen.
        let over = info(&[
            ("General", false, Some("2026-12-01 12:00")),
            ("VIP", true, None),
        ]);
        assert!(over.sold_out_for(&["Renamed".into()], at("2026-12-05 12:00")));
        assert!(!over.sold_out_for(&[], at("2026-12-01 11:00")));
    }

    #[test]
    fn one_warning_per_event_and_hour() {
        let mut warned = HashMap::new();
        let start = Instant::now();
        assert!(warn_due(&mut warned, "456", start));
        assert!(!warn_due(
            &mut warned,
            "456",
            start + Duration::from_secs(60)
        ));
        assert!(warn_due(
            &mut warned,
            "789",
            start + Duration::from_secs(60)
        ));
        assert!(!warn_due(
            &mut warned,
            "456",
            start + Duration::from_secs(3599)
        ));
        assert!(warn_due(
            &mut warned,
            "456",
            start + Duration::from_secs(3600)
        ));
    }

    #[test]
    fn the_hooks_date_wins_for_events_with_several_dates() {
        let mut event = EventInfo {
            starts: Some(at("2026-12-20 19:00")),
            ..EventInfo::default()
        };
        let hook = Some(at("2026-12-20 18:00"));
        assert_eq!(event.start_for(hook), Some(at("2026-12-20 19:00")));
        event.schedules = 3;
        assert_eq!(event.start_for(hook), hook);
        assert_eq!(event.start_for(None), Some(at("2026-12-20 19:00")));
    }

    #[test]
    fn the_configured_url_wins_then_the_api_then_the_pattern() {
        let mut config = Config::default();
        let event = EventInfo {
            url: Some("https://www.quicket.co.za/events/7-gala/".into()),
            ..EventInfo::default()
        };
        assert_eq!(
            event_page(&config, "7", Some(&event)),
            (
                "https://www.quicket.co.za/events/7-gala/".into(),
                UrlSource::QuicketApi
            )
        );
        assert_eq!(
            event_page(&config, "7", None),
            (
                "https://www.quicket.co.za/events/7/".into(),
                UrlSource::Pattern
            )
        );
        config.events.insert(
            "7".into(),
            crate::config::EventConfig {
                url: Some("https://example.org/gala".into()),
                reminders: true,
            },
        );
        assert_eq!(
            event_page(&config, "7", Some(&event)),
            ("https://example.org/gala".into(), UrlSource::Config)
        );
    }
}
