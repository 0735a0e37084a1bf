//! The cache of what Quicket's API said about each event (`event_info`, schema 5).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{Store, StoreError, parse_timestamp, timestamp};
use crate::domain::EventInfo;

/// One event's row: the latest good answer (if any) and how the latest lookup went.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// Quicket's event id.
    pub event_id: String,
    /// What the latest successful lookup said.
    pub info: Option<EventInfo>,
    /// When `info` was looked up.
    pub fetched_at: Option<DateTime<Utc>>,
    /// The latest lookup.
    pub attempted_at: DateTime<Utc>,
    /// Why the latest lookup failed (`None`: it succeeded).
    pub error: Option<String>,
    /// The latest lookup's answer was 404: Quicket does not know the event (a test hook's, or
    /// one not public), which is no fault of the service's.
    pub not_found: bool,
    /// No lookup before this.
    pub retry_at: Option<DateTime<Utc>>,
}

/// How an event's latest lookup went, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LookupStatus {
    /// It answered.
    Ok,
    /// It failed (timeout, 401, 429, 5xx, garbage).
    Failed,
    /// Quicket answered 404.
    NotFound,
}

impl LookupStatus {
    fn as_str(self) -> &'static str {
        match self {
            LookupStatus::Ok => "ok",
            LookupStatus::Failed => "failed",
            LookupStatus::NotFound => "not_found",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [
            LookupStatus::Ok,
            LookupStatus::Failed,
            LookupStatus::NotFound,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

crate::domain::stored_as_text!(LookupStatus, "lookup status");

const COLUMNS: &str = "event_id, info, fetched_at, attempted_at, error, retry_at, status";

type RawRow = (String, Option<String>, [Option<String>; 4], LookupStatus);

fn from_row(row: &Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        [row.get(2)?, Some(row.get(3)?), row.get(4)?, row.get(5)?],
        row.get(6)?,
    ))
}

fn decode(
    (event_id, info, [fetched, attempted, error, retry], status): RawRow,
) -> anyhow::Result<StoredEvent> {
    let time = |t: Option<String>| t.as_deref().map(parse_timestamp).transpose();
    Ok(StoredEvent {
        // A row written by a newer version that this one cannot read is as good as no answer.
        info: info.and_then(|json| serde_json::from_str(&json).ok()),
        fetched_at: time(fetched)?,
        attempted_at: time(attempted)?.unwrap_or_default(),
        error,
        not_found: status == LookupStatus::NotFound,
        retry_at: time(retry)?,
        event_id,
    })
}

/// One event's row.
fn get(conn: &Connection, event_id: &str) -> anyhow::Result<Option<StoredEvent>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM event_info WHERE event_id = ?1"
    ))?
    .query_row([event_id], from_row)
    .optional()?
    .map(decode)
    .transpose()
}

/// Every row (one per event looked up: a few hundred at most for an organiser).
fn all(conn: &Connection) -> anyhow::Result<Vec<StoredEvent>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM event_info ORDER BY event_id"
    ))?;
    let rows = stmt
        .query_map([], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().map(decode).collect()
}

/// Keeps a successful lookup.
fn record_success(
    conn: &Connection,
    event_id: &str,
    info: &EventInfo,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let at = timestamp(now);
    conn.execute(
        "INSERT INTO event_info (event_id, info, fetched_at, attempted_at, status, error, retry_at)
         VALUES (?1, ?2, ?3, ?3, ?4, NULL, NULL)
         ON CONFLICT (event_id) DO UPDATE SET info = excluded.info, fetched_at = excluded.fetched_at,
             attempted_at = excluded.attempted_at, status = ?4, error = NULL, retry_at = NULL",
        params![
            event_id,
            serde_json::to_string(info)?,
            at,
            LookupStatus::Ok
        ],
    )?;
    Ok(())
}

/// Notes a failed lookup (`not_found`: the API answered 404); the last good answer, if any, is
/// kept.
fn record_failure(
    conn: &Connection,
    event_id: &str,
    error: &str,
    not_found: bool,
    now: DateTime<Utc>,
    retry_at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let status = if not_found {
        LookupStatus::NotFound
    } else {
        LookupStatus::Failed
    };
    conn.execute(
        "INSERT INTO event_info (event_id, attempted_at, status, error, retry_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (event_id) DO UPDATE SET attempted_at = excluded.attempted_at,
             status = excluded.status, error = excluded.error, retry_at = excluded.retry_at",
        params![event_id, timestamp(now), status, error, timestamp(retry_at)],
    )?;
    Ok(())
}

/// An event hooks have named, for `check`.
#[derive(Debug, Clone)]
pub struct KnownEvent {
    /// Quicket's event id.
    pub event_id: String,
    /// The name the latest hook gave.
    pub name: String,
    /// The latest local start a hook gave ('YYYY-MM-DD HH:MM:SS').
    pub event_date: Option<String>,
    /// Orders stored for it.
    pub orders: i64,
}

/// Every event named by a stored order, latest event date first.
fn known_events(conn: &Connection) -> anyhow::Result<Vec<KnownEvent>> {
    let mut stmt = conn.prepare(
        "SELECT event_id, max(event_name), max(event_date), count(*) FROM orders
         WHERE event_id IS NOT NULL GROUP BY event_id
         ORDER BY max(event_date) DESC, event_id",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok(KnownEvent {
                event_id: r.get(0)?,
                name: r.get(1)?,
                event_date: r.get(2)?,
                orders: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The ticket type names of an order, as Quicket sent them.
fn ticket_types(conn: &Connection, reference: &str) -> anyhow::Result<Vec<String>> {
    let tickets: Option<String> = conn
        .prepare_cached("SELECT tickets FROM orders WHERE reference = ?1")?
        .query_row([reference], |r| r.get(0))
        .optional()?;
    let Some(tickets) = tickets else {
        return Ok(Vec::new());
    };
    /// Only the type of a stored ticket (the rest is skipped unread).
    #[derive(serde::Deserialize)]
    struct TypeOnly {
        #[serde(rename = "type", default)]
        ticket_type: String,
    }
    let list: Vec<TypeOnly> = serde_json::from_str(&tickets).unwrap_or_default();
    Ok(list
        .into_iter()
        .map(|t| t.ticket_type)
        .filter(|t| !t.trim().is_empty())
        .collect())
}

impl Store {
    /// One event's cached row.
    pub async fn event_info(&self, event_id: &str) -> Result<Option<StoredEvent>, StoreError> {
        let id = event_id.to_string();
        self.read(move |conn| get(conn, &id)).await
    }

    /// The cached rows of `event_ids`, in their order (`None` for an event never looked up).
    pub async fn event_infos_of(
        &self,
        event_ids: Vec<String>,
    ) -> Result<Vec<Option<StoredEvent>>, StoreError> {
        self.read(move |conn| event_ids.iter().map(|id| get(conn, id)).collect())
            .await
    }

    /// Every event's cached row.
    pub async fn event_infos(&self) -> Result<Vec<StoredEvent>, StoreError> {
        self.read(all).await
    }

    /// Keeps a successful lookup of `event_id`.
    pub async fn record_lookup(
        &self,
        event_id: String,
        info: EventInfo,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(move |conn| record_success(conn, &event_id, &info, now))
            .await
    }

    /// Notes a failed lookup of `event_id` (`not_found`: the API answered 404), to be tried
    /// again from `retry_at`; the last good answer, if any, is kept.
    pub async fn record_failed_lookup(
        &self,
        event_id: String,
        error: String,
        not_found: bool,
        now: DateTime<Utc>,
        retry_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(move |conn| record_failure(conn, &event_id, &error, not_found, now, retry_at))
            .await
    }

    /// Every event named by a stored order, latest event date first.
    pub async fn known_events(&self) -> Result<Vec<KnownEvent>, StoreError> {
        self.read(known_events).await
    }

    /// The ticket type names each of `references` chose, in their order (none for an order
    /// that is not stored).
    pub async fn chosen_ticket_types(
        &self,
        references: Vec<String>,
    ) -> Result<Vec<Vec<String>>, StoreError> {
        self.read(move |conn| references.iter().map(|r| ticket_types(conn, r)).collect())
            .await
    }
}
