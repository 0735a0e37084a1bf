//! Bounces and complaints from the email provider: the raw requests, the events they held (each
//! tied to the reminder it names, when it names one that was sent), and the rates the circuit
//! breaker reads (of matched events only: anyone holding the webhook URL can post the others).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Store, StoreError, timestamp};
use crate::domain::email_key;
use crate::email_events::{EmailEvent, EventKind, Provider};

/// What became of a provider's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Read; its bounces and complaints (maybe none) are stored.
    Recorded,
    /// Read, but it held nothing we act on (a delivery, an open).
    Ignored,
    /// Not readable as the provider's format; kept with the reason.
    Rejected,
    /// An SNS subscription confirmation, confirmed.
    Confirmed,
    /// An SNS subscription confirmation that could not be confirmed (yet).
    Unconfirmed,
}

impl DeliveryOutcome {
    fn as_str(self) -> &'static str {
        match self {
            DeliveryOutcome::Recorded => "recorded",
            DeliveryOutcome::Ignored => "ignored",
            DeliveryOutcome::Rejected => "rejected",
            DeliveryOutcome::Confirmed => "confirmed",
            DeliveryOutcome::Unconfirmed => "unconfirmed",
        }
    }
}

/// One event as stored, with the reminder it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// What happened.
    pub kind: EventKind,
    /// The address, as the provider wrote it.
    pub email: String,
    /// The reminder it names (its Message-ID is one sent to this address): `None` when it names
    /// none, and then it changes nothing.
    pub reminder: Option<SentReminder>,
    /// False when the same event had been reported before.
    pub new: bool,
}

/// A reminder that went (or may have gone) to an address, as an email event names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentReminder {
    /// Its event.
    pub event_id: String,
    /// Its step.
    pub step: String,
}

/// Emails sent and what came back (events naming a reminder sent), over a span.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Rates {
    /// Reminders sent.
    pub sent: u64,
    /// Hard bounces reported.
    pub hard_bounces: u64,
    /// Soft bounces reported.
    pub soft_bounces: u64,
    /// Complaints reported.
    pub complaints: u64,
}

impl Rates {
    /// Complaints per email sent (0 when nothing was sent).
    pub fn complaint_rate(&self) -> f64 {
        ratio(self.complaints, self.sent)
    }
    /// Hard bounces per email sent.
    pub fn hard_bounce_rate(&self) -> f64 {
        ratio(self.hard_bounces, self.sent)
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

impl Store {
    /// Keeps a provider's request and the events it held, in one transaction; returns the
    /// delivery's id and each event with the reminder it was tied to.
    pub async fn record_email_delivery(
        &self,
        provider: Provider,
        body: Vec<u8>,
        outcome: DeliveryOutcome,
        error: Option<String>,
        events: Vec<EmailEvent>,
        now: DateTime<Utc>,
    ) -> Result<(i64, Vec<StoredEvent>), StoreError> {
        self.write(move |conn| record(conn, provider, &body, outcome, error, &events, now))
            .await
    }

    /// Changes a kept request's outcome (an SNS confirmation, once tried).
    pub async fn set_email_delivery_outcome(
        &self,
        id: i64,
        outcome: DeliveryOutcome,
        error: Option<String>,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.execute(
                "UPDATE email_deliveries SET outcome = ?2, error = ?3 WHERE id = ?1",
                params![id, outcome.as_str(), error],
            )?;
            Ok(())
        })
        .await
    }

    /// Reminders sent, and bounces and complaints naming one of them received since `since`.
    pub async fn email_rates(&self, since: DateTime<Utc>) -> Result<Rates, StoreError> {
        self.read(move |conn| rates(conn, since)).await
    }
}

/// See [`Store::email_rates`]; for callers already holding a connection.
pub(super) fn rates(conn: &Connection, since: DateTime<Utc>) -> anyhow::Result<Rates> {
    let since = timestamp(since);
    let sent: i64 = conn.query_row(
        "SELECT count(*) FROM reminders WHERE sent_at IS NOT NULL AND sent_at >= ?1",
        [&since],
        |r| r.get(0),
    )?;
    let mut rates = Rates {
        sent: sent as u64,
        ..Rates::default()
    };
    let mut stmt = conn.prepare_cached(
        "SELECT kind, count(*) FROM email_events WHERE received_at >= ?1 AND matched = 1
         GROUP BY kind",
    )?;
    for row in stmt.query_map([&since], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })? {
        let (kind, n) = row?;
        let n = n as u64;
        match EventKind::parse(&kind) {
            Some(EventKind::HardBounce) => rates.hard_bounces = n,
            Some(EventKind::SoftBounce) => rates.soft_bounces = n,
            Some(EventKind::Complaint) => rates.complaints = n,
            None => {}
        }
    }
    Ok(rates)
}

fn record(
    conn: &Connection,
    provider: Provider,
    body: &[u8],
    outcome: DeliveryOutcome,
    error: Option<String>,
    events: &[EmailEvent],
    now: DateTime<Utc>,
) -> anyhow::Result<(i64, Vec<StoredEvent>)> {
    let at = timestamp(now);
    let delivery_id: i64 = conn
        .prepare_cached(
            "INSERT INTO email_deliveries (received_at, provider, body, outcome, error)
             VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
        )?
        .query_row(
            params![at, provider.as_str(), body, outcome.as_str(), error],
            |r| r.get(0),
        )?;
    let body_digest = hex(&Sha256::digest(body));
    let mut stored = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let key = email_key(&event.email);
        let reminder = match event.message_id.as_deref() {
            Some(id) => reminder_named(conn, &key, id)?,
            None => None,
        };
        // The provider's id says "the same event" best; without one, the same body is. The
        // Message-ID is part of it, so that an event naming no reminder, posted first under a
        // real event's id, cannot stand in for it.
        let identity = match &event.provider_id {
            Some(id) => id.clone(),
            None => format!("{body_digest}/{i}"),
        };
        let fingerprint = hex(&Sha256::digest(
            format!(
                "{}\n{}\n{key}\n{}\n{identity}",
                provider.as_str(),
                event.kind.as_str(),
                event.message_id.as_deref().unwrap_or_default(),
            )
            .as_bytes(),
        ));
        let (event_id, step) = match &reminder {
            Some(r) => (Some(r.event_id.clone()), Some(r.step.clone())),
            None => (None, None),
        };
        let added = conn
            .prepare_cached(
                "INSERT INTO email_events (delivery_id, received_at, provider, kind, email_key,
                     message_id, event_id, step, detail, fingerprint, matched)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                delivery_id,
                at,
                provider.as_str(),
                event.kind.as_str(),
                key,
                event.message_id,
                event_id,
                step,
                event.detail,
                fingerprint,
                reminder.is_some(),
            ])?;
        stored.push(StoredEvent {
            kind: event.kind,
            email: event.email.clone(),
            reminder,
            new: added > 0,
        });
    }
    Ok((delivery_id, stored))
}

/// The reminder a Message-ID names, when it is one that went, or may have gone, to this address
/// (sent, interrupted mid-send, or tried and waiting for a retry). Nothing else ties an event to
/// us: an address alone, or a Message-ID of another address's email, is what a stranger can post.
fn reminder_named(
    conn: &Connection,
    key: &str,
    message_id: &str,
) -> anyhow::Result<Option<SentReminder>> {
    Ok(conn
        .prepare_cached(
            "SELECT event_id, step FROM reminders
             WHERE message_id = ?1 AND email_key = ?2
               AND (status IN ('sent', 'interrupted') OR (status = 'claimed' AND attempts > 0))",
        )?
        .query_row(params![format!("<{message_id}>"), key], |r| {
            Ok(SentReminder {
                event_id: r.get(0)?,
                step: r.get(1)?,
            })
        })
        .optional()?)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A bounce or complaint as a buyer's timeline shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEvent {
    /// When it was received.
    pub at: String,
    /// Who reported it.
    pub provider: String,
    /// "hard bounce of abandoned-1".
    pub title: String,
    /// The provider's words.
    pub detail: Option<String>,
}

/// What an event naming no reminder sent to the address says on the timeline, before the
/// provider's words.
pub const UNMATCHED_NOTE: &str = "changed nothing: it names no reminder sent to this address";

/// The bounces and complaints of a buyer-event (and those naming no reminder sent to the address,
/// marked as such), oldest first.
pub(super) fn for_timeline(
    conn: &Connection,
    key: &str,
    event: &str,
) -> anyhow::Result<Vec<TimelineEvent>> {
    let mut stmt = conn.prepare_cached(
        "SELECT received_at, provider, kind, detail, step, matched FROM email_events
         WHERE email_key = ?1 AND (event_id = ?2 OR matched = 0) ORDER BY id",
    )?;
    let rows = stmt
        .query_map(params![key, event], |r| {
            let kind: String = r.get(2)?;
            let detail: Option<String> = r.get(3)?;
            let step: Option<String> = r.get(4)?;
            let matched: bool = r.get(5)?;
            let label = EventKind::parse(&kind)
                .map(EventKind::label)
                .unwrap_or("event");
            let (title, detail) = match (matched, step) {
                (true, Some(step)) => (format!("{label} of {step}"), detail),
                (true, None) => (label.to_string(), detail),
                (false, _) => (
                    format!("unmatched {label}"),
                    Some(match detail.filter(|d| !d.is_empty()) {
                        Some(d) => format!("{UNMATCHED_NOTE}; {d}"),
                        None => UNMATCHED_NOTE.to_string(),
                    }),
                ),
            };
            Ok(TimelineEvent {
                at: r.get(0)?,
                provider: r.get(1)?,
                title,
                detail,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// `forget`: removes one address's bounces and complaints and any provider's raw body naming it.
pub(super) fn forget(conn: &Connection, key: &str) -> anyhow::Result<u64> {
    conn.execute("DELETE FROM email_events WHERE email_key = ?1", [key])?;
    Ok(conn.execute(
        "UPDATE email_deliveries SET body = NULL
         WHERE body IS NOT NULL AND instr(lower(CAST(body AS TEXT)), ?1) > 0",
        [key],
    )? as u64)
}

/// Retention: providers' raw bodies (they name buyers) older than `cutoff` are dropped; the
/// events stay, counted, for the rates.
pub(super) fn expire(conn: &Connection, cutoff: DateTime<Utc>) -> anyhow::Result<u64> {
    Ok(conn.execute(
        "UPDATE email_deliveries SET body = NULL WHERE body IS NOT NULL AND received_at < ?1",
        [timestamp(cutoff)],
    )? as u64)
}
