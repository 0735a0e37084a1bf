//! What `/admin` reads beyond the statistics: searching buyer-events, one buyer-event's timeline,
//! the problems list and the next emails due.

use rusqlite::{Connection, params};
use serde::Serialize;

use super::{Store, StoreError};
use crate::domain::{OrderState, Outcome, StepStatus};
use crate::experiment::{CONTROL_GROUP, HELD_OUT};

/// A buyer-event found by a search.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BuyerEventRow {
    /// The buyer's address key (or a pseudonym after retention).
    pub email_key: String,
    /// The event.
    pub event_id: String,
    /// The event's name.
    pub event_name: String,
    /// The buyer-event's state.
    pub state: OrderState,
    /// The latest checkout change.
    pub changed_at: String,
    /// The latest decision of a pass, and why.
    pub last_decision: Option<Outcome>,
    /// Why.
    pub last_reason: Option<String>,
    /// When a pass looks at it again.
    pub next_check_at: Option<String>,
    /// The buyer's name, from the order.
    pub buyer_name: String,
    /// The order's amount in cents.
    pub amount_cents: Option<i64>,
    /// The event's local start.
    pub event_date: Option<String>,
    /// How many tickets the order holds.
    pub tickets: i64,
    /// In the control group (never emailed, on purpose), as recorded when its first step fell due.
    pub held_out: bool,
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BuyerEventRow> {
    Ok(BuyerEventRow {
        email_key: r.get(0)?,
        event_id: r.get(1)?,
        event_name: r.get(2)?,
        state: r.get(3)?,
        changed_at: r.get(4)?,
        last_decision: r.get(5)?,
        last_reason: r.get(6)?,
        next_check_at: r.get(7)?,
        buyer_name: r.get(8)?,
        amount_cents: r.get(9)?,
        event_date: r.get(10)?,
        tickets: r.get(11)?,
        held_out: r.get(12)?,
    })
}

const COLUMNS: &str = "be.email_key, be.event_id, o.event_name, be.state, be.changed_at, \
    be.last_decision, be.last_reason, be.next_check_at, o.buyer_name, o.amount_cents, \
    o.event_date, json_array_length(o.tickets), \
    coalesce((SELECT x.held_out FROM experiment x \
              WHERE x.email_key = be.email_key AND x.event_id = be.event_id), 0)";

/// One thing that happened to a buyer-event.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Entry {
    /// When (UTC, RFC 3339).
    pub at: String,
    /// hook, reminder, decision, click, unsubscribe, bounce, complaint, paid.
    pub kind: &'static str,
    /// One line.
    pub title: String,
    /// More, when there is more.
    pub detail: Option<String>,
    /// The raw body of a hook.
    pub body: Option<String>,
    /// The reminder step concerned (a reminder, a click).
    pub step: Option<String>,
    /// The email (template) a sent reminder used.
    pub template: Option<String>,
}

/// A buyer-event's whole story.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Timeline {
    /// The buyer-event.
    pub buyer_event: BuyerEventRow,
    /// The buyer's address as Quicket sent it (empty after retention).
    pub email: String,
    /// The references of its orders.
    pub references: Vec<String>,
    /// Everything, oldest first.
    pub entries: Vec<Entry>,
}

/// A delivery that could not be used.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    /// Its id.
    pub id: i64,
    /// When it arrived.
    pub received_at: String,
    /// rejected, ignored or failed, or recorded (or duplicate) with a note.
    pub outcome: String,
    /// Why.
    pub error: Option<String>,
    /// The start of the raw body (at most [`super::problems::BODY_SHOWN`] bytes).
    pub body: Option<String>,
    /// The whole body's size in bytes (`None` once retention removed it).
    pub size: Option<i64>,
}

/// A raw body for reading, exactly as received (invalid UTF-8 replaced): re-formatting it would
/// change what Quicket sent (key order, `300.00` becoming `300.0`) and mislead an investigation.
pub fn readable_body(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

fn search(conn: &Connection, query: &str) -> anyhow::Result<Vec<BuyerEventRow>> {
    let q = query.trim();
    let like = format!("%{}%", q.to_lowercase().replace(['%', '_'], ""));
    let mut stmt = conn.prepare(&format!(
        "SELECT DISTINCT {COLUMNS} FROM buyer_events be JOIN orders o ON o.reference = be.reference
         WHERE ?1 = '' OR be.email_key LIKE ?2 OR be.event_id = ?1 OR lower(o.event_name) LIKE ?2
            OR lower(o.buyer_name) LIKE ?2
            OR EXISTS (SELECT 1 FROM orders x WHERE x.email_key = be.email_key
                         AND x.event_id = be.event_id AND x.reference = ?1)
         ORDER BY be.changed_at DESC LIMIT 100"
    ))?;
    let rows = stmt
        .query_map(params![q, like], row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

fn timeline(conn: &Connection, key: &str, event: &str) -> anyhow::Result<Option<Timeline>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS}, o.email FROM buyer_events be JOIN orders o ON o.reference = be.reference
         WHERE be.email_key = ?1 AND be.event_id = ?2"
    ))?;
    let mut rows = stmt.query(params![key, event])?;
    let Some(first) = rows.next()? else {
        return Ok(None);
    };
    let buyer_event = row(first)?;
    let email: String = first.get(13)?;
    drop(rows);
    let mut entries = Vec::new();
    let references = hook_entries(conn, key, event, &mut entries)?;
    reminder_entries(conn, key, event, &mut entries)?;
    click_entries(conn, key, event, &mut entries)?;
    suppression_entries(conn, key, &mut entries)?;
    provider_entries(conn, key, event, &mut entries)?;
    state_entries(conn, key, event, &buyer_event, &mut entries)?;
    entries.sort_by(|a, b| a.at.cmp(&b.at));
    Ok(Some(Timeline {
        buyer_event,
        email,
        references,
        entries,
    }))
}

/// Each hook of the buyer's orders for the event, as received; returns the orders' references.
fn hook_entries(
    conn: &Connection,
    key: &str,
    event: &str,
    entries: &mut Vec<Entry>,
) -> anyhow::Result<Vec<String>> {
    let mut references = Vec::new();
    let mut stmt = conn.prepare(
        "SELECT o.reference, h.received_at, h.action, h.applied, h.note, d.body
         FROM orders o JOIN order_history h ON h.reference = o.reference
         LEFT JOIN deliveries d ON d.id = h.delivery_id
         WHERE o.email_key = ?1 AND o.event_id = ?2 ORDER BY h.id",
    )?;
    let hooks = stmt.query_map(params![key, event], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, bool>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, Option<Vec<u8>>>(5)?,
        ))
    })?;
    for hook in hooks {
        let (reference, at, action, applied, note, body) = hook?;
        if !references.contains(&reference) {
            references.push(reference.clone());
        }
        entries.push(Entry {
            at,
            kind: "hook",
            title: format!("{action} ({reference})"),
            detail: note.or_else(|| (!applied).then(|| "no change".to_string())),
            body: body.map(|b| readable_body(&b)),
            step: None,
            template: None,
        });
    }
    Ok(references)
}

/// Each step decided, and what became of it.
fn reminder_entries(
    conn: &Connection,
    key: &str,
    event: &str,
    entries: &mut Vec<Entry>,
) -> anyhow::Result<()> {
    let mut stmt = conn.prepare(
        "SELECT coalesce(sent_at, decided_at), step, status, coalesce(reason, last_error), attempts,
                template
         FROM reminders WHERE email_key = ?1 AND event_id = ?2",
    )?;
    for r in stmt.query_map(params![key, event], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, StepStatus>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, Option<String>>(5)?,
        ))
    })? {
        let (at, step, status, reason, attempts, template) = r?;
        if status == StepStatus::Skipped && reason.as_deref() == Some(HELD_OUT) {
            entries.push(Entry {
                at,
                kind: "reminder",
                title: format!("reminder {step}: not sent"),
                detail: Some(CONTROL_GROUP.into()),
                body: None,
                step: Some(step.clone()),
                template: None,
            });
            continue;
        }
        let status = match status {
            StepStatus::Claimed if attempts > 0 => "waiting to be retried",
            StepStatus::Claimed => "being sent",
            // The reason says it: "interrupted: may or may not have arrived".
            StepStatus::Interrupted => "interrupted",
            StepStatus::Sent | StepStatus::Skipped | StepStatus::Failed | StepStatus::HeldOut => {
                status.as_str()
            }
        };
        entries.push(Entry {
            at,
            kind: "reminder",
            title: format!("reminder {step}: {status}"),
            detail: reason,
            body: None,
            template: template.filter(|_| status == "sent"),
            step: Some(step),
        });
    }
    Ok(())
}

/// Each fetch of a link in the emails (scanners' marked as such).
fn click_entries(
    conn: &Connection,
    key: &str,
    event: &str,
    entries: &mut Vec<Entry>,
) -> anyhow::Result<()> {
    let mut stmt = conn.prepare(
        "SELECT clicked_at, step, link, scanner FROM clicks WHERE email_key = ?1 AND event_id = ?2",
    )?;
    for c in stmt.query_map(params![key, event], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Option<String>>(3)?,
        ))
    })? {
        let (at, step, link, scanner) = c?;
        let title = if link == "unsubscribe" {
            format!("opened the unsubscribe page of {step}")
        } else {
            format!("followed the link in {step}")
        };
        entries.push(Entry {
            at,
            kind: "click",
            title,
            detail: scanner.map(|why| format!("a link scanner, not a person ({why}): not counted")),
            body: None,
            step: Some(step),
            template: None,
        });
    }
    Ok(())
}

/// The address's suppression, if any.
fn suppression_entries(
    conn: &Connection,
    key: &str,
    entries: &mut Vec<Entry>,
) -> anyhow::Result<()> {
    let mut stmt = conn.prepare(
        "SELECT added_at, source, event_id, step FROM suppressions WHERE email_key = ?1",
    )?;
    for s in stmt.query_map([key], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, Option<String>>(3)?,
        ))
    })? {
        let (at, source, from_event, step) = s?;
        let from = match (from_event, step) {
            (Some(e), Some(s)) => format!(" from {s} for event {e}"),
            _ => String::new(),
        };
        entries.push(Entry {
            at,
            kind: "unsubscribe",
            title: format!("suppressed ({source}){from}"),
            detail: None,
            body: None,
            step: None,
            template: None,
        });
    }
    Ok(())
}

/// Bounces and complaints the email provider reported.
fn provider_entries(
    conn: &Connection,
    key: &str,
    event: &str,
    entries: &mut Vec<Entry>,
) -> anyhow::Result<()> {
    for e in super::email_events::for_timeline(conn, key, event)? {
        entries.push(Entry {
            at: e.at,
            kind: if e.title.contains("complaint") {
                "complaint"
            } else {
                "bounce"
            },
            title: format!("{} (reported by {})", e.title, e.provider),
            detail: e.detail,
            body: None,
            step: None,
            template: None,
        });
    }
    Ok(())
}

/// When it was paid, or else the latest pass's decision.
fn state_entries(
    conn: &Connection,
    key: &str,
    event: &str,
    buyer_event: &BuyerEventRow,
    entries: &mut Vec<Entry>,
) -> anyhow::Result<()> {
    let completed: Option<String> = conn.query_row(
        "SELECT completed_at FROM buyer_events WHERE email_key = ?1 AND event_id = ?2",
        params![key, event],
        |r| r.get(0),
    )?;
    if let Some(at) = completed {
        entries.push(Entry {
            at,
            kind: "paid",
            title: "paid".into(),
            detail: None,
            body: None,
            step: None,
            template: None,
        });
    }
    // Once paid, the "paid" entry says it all; the pass's older decision would only confuse.
    let paid = buyer_event.state == OrderState::Completed;
    if let (false, Some(decision), Some(at)) = (
        paid,
        &buyer_event.last_decision,
        conn.query_row(
            "SELECT last_pass_at FROM buyer_events WHERE email_key = ?1 AND event_id = ?2",
            params![key, event],
            |r| r.get::<_, Option<String>>(0),
        )?,
    ) && *decision != Outcome::Sent
    {
        if buyer_event.held_out {
            // Whatever the pass said of its timing, nothing is ever sent to the control group.
            entries.push(Entry {
                at,
                kind: "decision",
                title: "latest pass: not emailed".into(),
                detail: Some(format!(
                    "{CONTROL_GROUP}: its purchases show what the reminders add"
                )),
                body: None,
                step: None,
                template: None,
            });
            return Ok(());
        }
        entries.push(Entry {
            at,
            kind: "decision",
            title: format!("latest pass: {decision}"),
            detail: buyer_event.last_reason.clone(),
            body: None,
            step: None,
            template: None,
        });
    }
    Ok(())
}

impl Store {
    /// Buyer-events matching an address (part of it), a reference, an event id or an event name.
    pub async fn search(&self, query: &str) -> Result<Vec<BuyerEventRow>, StoreError> {
        let query = query.to_string();
        self.read(move |conn| search(conn, &query)).await
    }

    /// One buyer-event's timeline.
    pub async fn timeline(
        &self,
        email_key: &str,
        event_id: &str,
    ) -> Result<Option<Timeline>, StoreError> {
        let (key, event) = (email_key.to_string(), event_id.to_string());
        self.read(move |conn| timeline(conn, &key, &event)).await
    }

    /// Deliveries that could not be used, or were used with a field unreadable or cut to its cap,
    /// newest first; only the start of each body is read.
    pub async fn problems(&self, limit: usize) -> Result<Vec<Problem>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT id, received_at, outcome, error, substr(body, 1, ?2), length(body)
                 FROM deliveries INDEXED BY deliveries_with_problems
                 WHERE error IS NOT NULL ORDER BY id DESC LIMIT ?1",
            )?;
            let shown = super::problems::BODY_SHOWN as i64;
            let rows = stmt
                .query_map(rusqlite::params![limit as i64, shown], |r| {
                    Ok(Problem {
                        id: r.get(0)?,
                        received_at: r.get(1)?,
                        outcome: r.get(2)?,
                        error: r.get(3)?,
                        body: r.get::<_, Option<Vec<u8>>>(4)?.map(|b| readable_body(&b)),
                        size: r.get(5)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// The buyer-events a pass will look at next, soonest first.
    pub async fn next_due(&self, limit: usize) -> Result<Vec<BuyerEventRow>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM buyer_events be JOIN orders o ON o.reference = be.reference
                 WHERE be.next_check_at IS NOT NULL ORDER BY be.next_check_at LIMIT ?1"
            ))?;
            let rows = stmt
                .query_map([limit as i64], row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// When the latest reminder send failed, and why (for the overview's SMTP status).
    pub async fn last_send_error(&self) -> Result<Option<(String, String)>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT coalesce(retry_at, decided_at), last_error FROM reminders
                 WHERE last_error IS NOT NULL ORDER BY decided_at DESC LIMIT 1",
            )?;
            let mut rows = stmt.query([])?;
            Ok(match rows.next()? {
                Some(r) => Some((r.get(0)?, r.get(1)?)),
                None => None,
            })
        })
        .await
    }
}
