//! Recording one webhook delivery: the raw body first, then the order's state machine.

use anyhow::Context;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, StoreError, buyer_events, timestamp};
use crate::domain::{OrderState, email_key};
use crate::quicket::{Hook, HookAction, HookError};

/// What became of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookOutcome {
    /// Stored and applied to its order.
    Recorded,
    /// The same hook was recorded before; nothing changed.
    Duplicate,
    /// Not one of Quicket's actions; kept in the deliveries log only.
    Ignored(String),
    /// Not a hook at all; kept in the deliveries log with the reason.
    Rejected(String),
    /// Kept in the deliveries log, but applying it to its order failed (a bug; `replay` retries).
    Failed(String),
}

impl HookOutcome {
    /// The one-word name kept in the deliveries log and used in metrics.
    pub fn label(&self) -> &'static str {
        match self {
            HookOutcome::Recorded => "recorded",
            HookOutcome::Duplicate => "duplicate",
            HookOutcome::Ignored(_) => "ignored",
            HookOutcome::Rejected(_) => "rejected",
            HookOutcome::Failed(_) => "failed",
        }
    }
}

/// The result of [`Store::ingest`], known to be durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestResult {
    /// The delivery's id in the log.
    pub delivery_id: i64,
    /// What became of it.
    pub outcome: HookOutcome,
}

impl Store {
    /// Keeps a delivery's raw body and applies the parsed hook, in one transaction shared with
    /// whatever else is queued; returns once it is committed.
    pub async fn ingest(
        &self,
        body: Vec<u8>,
        parsed: Result<Hook, HookError>,
        now: DateTime<Utc>,
    ) -> Result<IngestResult, StoreError> {
        self.write(move |conn| ingest(conn, &body, &parsed, now))
            .await
    }
}

/// How a parsed body first classifies: its outcome before it touches an order, a note on fields
/// that could not be read, and the reference and action when they could be read.
struct Classified<'a> {
    outcome: HookOutcome,
    note: Option<String>,
    reference: Option<&'a str>,
    action: Option<String>,
}

impl Classified<'_> {
    /// What goes in the deliveries log's `error` column.
    fn error(&self) -> Option<String> {
        match &self.outcome {
            HookOutcome::Rejected(reason) | HookOutcome::Ignored(reason) => Some(reason.clone()),
            _ => self.note.clone(),
        }
    }
}

fn classify(parsed: &Result<Hook, HookError>) -> Classified<'_> {
    match parsed {
        Err(e) => Classified {
            outcome: HookOutcome::Rejected(e.to_string()),
            note: None,
            reference: None,
            action: None,
        },
        Ok(hook) => {
            let (outcome, action) = match &hook.action {
                HookAction::Known(state) => (HookOutcome::Recorded, state.as_str().to_string()),
                HookAction::Unknown(a) if a.is_empty() => (
                    HookOutcome::Ignored("the hook has no \"action\"".into()),
                    String::new(),
                ),
                HookAction::Unknown(a) => (
                    HookOutcome::Ignored(format!("unknown action {a:?}")),
                    a.clone(),
                ),
            };
            Classified {
                outcome,
                note: (!hook.problems.is_empty()).then(|| hook.problems.join("; ")),
                reference: Some(hook.reference.as_str()),
                action: Some(action),
            }
        }
    }
}

fn ingest(
    conn: &Connection,
    body: &[u8],
    parsed: &Result<Hook, HookError>,
    now: DateTime<Utc>,
) -> anyhow::Result<IngestResult> {
    let at = timestamp(now);
    let c = classify(parsed);
    // The raw body goes in first, so that whatever happens next it is kept. Its id is the new
    // rowid (RETURNING would cost a temporary table per hook).
    conn.prepare_cached(
        "INSERT INTO deliveries (received_at, body, outcome, error, reference, action)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        at,
        body,
        c.outcome.label(),
        c.error(),
        c.reference,
        c.action
    ])
    .context("cannot keep the delivery")?;
    let delivery_id = conn.last_insert_rowid();
    let outcome = apply_delivery(conn, parsed, c, delivery_id, &at)?;
    Ok(IngestResult {
        delivery_id,
        outcome,
    })
}

/// Applies a kept delivery to its order (when it is a hook with a known action), in a savepoint
/// so that a failure keeps the delivery and records why.
fn apply_delivery(
    conn: &Connection,
    parsed: &Result<Hook, HookError>,
    c: Classified<'_>,
    delivery_id: i64,
    at: &str,
) -> anyhow::Result<HookOutcome> {
    let (Ok(hook), HookOutcome::Recorded) = (parsed, &c.outcome) else {
        return Ok(c.outcome);
    };
    let HookAction::Known(state) = hook.action else {
        return Ok(c.outcome);
    };
    conn.prepare_cached("SAVEPOINT apply")?.execute([])?;
    let outcome = match apply(conn, hook, state, delivery_id, at) {
        Ok(outcome) => {
            conn.prepare_cached("RELEASE apply")?.execute([])?;
            outcome
        }
        Err(e) => {
            conn.execute_batch("ROLLBACK TO apply; RELEASE apply")?;
            HookOutcome::Failed(format!("{e:#}"))
        }
    };
    if outcome != HookOutcome::Recorded {
        let error = match &outcome {
            HookOutcome::Failed(reason) => Some(reason.clone()),
            _ => c.note,
        };
        conn.execute(
            "UPDATE deliveries SET outcome = ?2, error = ?3 WHERE id = ?1",
            params![delivery_id, outcome.label(), error],
        )?;
    }
    Ok(outcome)
}

/// What `replay` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReplayReport {
    /// Deliveries looked at (those not recorded before).
    pub examined: u64,
    /// Now recorded on their order.
    pub recorded: u64,
    /// Now recognised as repeats of a recorded hook.
    pub duplicate: u64,
    /// Still not usable (rejected, ignored or failed), with the reason kept.
    pub unchanged: u64,
}

/// Reprocesses every delivery that was not recorded (rejected, ignored or failed) with the
/// current parser, as if it had just arrived at its original time. Running it again changes
/// nothing more: recorded hooks are recognised by their fingerprint. Bodies are read one at a
/// time (each up to 1 MiB), never all at once.
fn replay(conn: &Connection, timezone: chrono_tz::Tz) -> anyhow::Result<ReplayReport> {
    let mut next = conn.prepare(
        "SELECT id, received_at, body FROM deliveries
         WHERE outcome IN ('rejected', 'ignored', 'failed') AND body IS NOT NULL AND id > ?1
         ORDER BY id LIMIT 1",
    )?;
    let mut report = ReplayReport::default();
    let mut after = 0_i64;
    while let Some((id, received_at, body)) = next
        .query_row([after], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })
        .optional()?
    {
        after = id;
        report.examined += 1;
        let parsed = crate::quicket::parse_hook_in(&body, timezone);
        let c = classify(&parsed);
        conn.execute(
            "UPDATE deliveries SET outcome = ?2, error = ?3, reference = ?4, action = ?5 WHERE id = ?1",
            params![id, c.outcome.label(), c.error(), c.reference, c.action],
        )?;
        match apply_delivery(conn, &parsed, c, id, &received_at)? {
            HookOutcome::Recorded => report.recorded += 1,
            HookOutcome::Duplicate => report.duplicate += 1,
            _ => report.unchanged += 1,
        }
    }
    Ok(report)
}

impl Store {
    /// Reprocesses stored deliveries that were not recorded (see `replay`), in one transaction;
    /// an `event_date` with an offset is read into `timezone`.
    pub async fn replay(&self, timezone: chrono_tz::Tz) -> Result<ReplayReport, StoreError> {
        self.write(move |conn| replay(conn, timezone)).await
    }
}

/// Moves the order along its state machine and appends the hook to its history.
fn apply(
    conn: &Connection,
    hook: &Hook,
    next: OrderState,
    delivery_id: i64,
    at: &str,
) -> anyhow::Result<HookOutcome> {
    let seen: Option<i64> = conn
        .prepare_cached("SELECT id FROM order_history WHERE reference = ?1 AND fingerprint = ?2")?
        .query_row(params![hook.reference, hook.fingerprint], |r| r.get(0))
        .optional()?;
    if seen.is_some() {
        return Ok(HookOutcome::Duplicate);
    }
    let current: Option<(OrderState, String, Option<String>)> = conn
        .prepare_cached("SELECT state, email_key, event_id FROM orders WHERE reference = ?1")?
        .query_row([&hook.reference], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let tickets = serde_json::to_string(&hook.tickets)?;
    let event_date = hook
        .event_date
        .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string());
    let amount = hook.amount.map(|c| c.0);
    let previous_key = current
        .as_ref()
        .map(|(_, key, event)| (key.clone(), event.clone()));
    // Where the order now belongs, as stored (a late hook may leave the old values in place).
    let key_of = |r: &rusqlite::Row<'_>| -> rusqlite::Result<(String, Option<String>)> {
        Ok((r.get(0)?, r.get(1)?))
    };
    let (applied, note, (key, event)) = match current.map(|(state, _, _)| state) {
        None => {
            // A new order is stored as given: its buyer-event is the hook's (no RETURNING,
            // which would cost a temporary table per hook).
            let key = email_key(&hook.email);
            conn.prepare_cached(
                "INSERT INTO orders (reference, state, state_since, changed_at, first_seen, event_id,
                    event_name, event_date, amount_cents, email, email_key, buyer_name, tickets)
                 VALUES (?1, ?2, ?3, ?3, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                hook.reference,
                next,
                at,
                hook.event_id,
                hook.event_name,
                event_date,
                amount,
                hook.email,
                key,
                hook.buyer_name,
                tickets
            ])?;
            (true, None, (key, hook.event_id.clone()))
        }
        Some(state) => {
            let moves = state.may_become(next);
            // A hook for the current state is still news (the buyer changed their tickets): its
            // details replace the old ones. A late hook for an earlier state only fills gaps.
            let overwrite = moves || state == next;
            let stored = conn
                .prepare_cached(
                "UPDATE orders SET
                    state        = CASE WHEN ?2 THEN ?3 ELSE state END,
                    state_since  = CASE WHEN ?2 THEN ?4 ELSE state_since END,
                    changed_at   = CASE WHEN ?5 THEN ?4 ELSE changed_at END,
                    event_id     = CASE WHEN ?6 IS NOT NULL AND (?5 OR event_id IS NULL) THEN ?6 ELSE event_id END,
                    event_name   = CASE WHEN ?7 <> '' AND (?5 OR event_name = '') THEN ?7 ELSE event_name END,
                    event_date   = CASE WHEN ?8 IS NOT NULL AND (?5 OR event_date IS NULL) THEN ?8 ELSE event_date END,
                    amount_cents = CASE WHEN ?9 IS NOT NULL AND (?5 OR amount_cents IS NULL) THEN ?9 ELSE amount_cents END,
                    email        = CASE WHEN ?10 <> '' AND (?5 OR email = '') THEN ?10 ELSE email END,
                    email_key    = CASE WHEN ?11 <> '' AND (?5 OR email_key = '') THEN ?11 ELSE email_key END,
                    buyer_name   = CASE WHEN ?12 <> '' AND (?5 OR buyer_name = '') THEN ?12 ELSE buyer_name END,
                    tickets      = CASE WHEN ?13 <> '[]' AND (?5 OR tickets = '[]') THEN ?13 ELSE tickets END
                 WHERE reference = ?1
                 RETURNING email_key, event_id",
                )?
                .query_row(
                params![
                    hook.reference,
                    moves,
                    next,
                    at,
                    overwrite,
                    hook.event_id,
                    hook.event_name,
                    event_date,
                    amount,
                    hook.email,
                    email_key(&hook.email),
                    hook.buyer_name,
                    tickets
                ],
                key_of,
            )?;
            let note = match (moves, state == next) {
                (true, _) => None,
                (false, true) => Some("same state again; details updated".to_string()),
                (false, false) => Some(format!("arrived after {state}; the order stays {state}")),
            };
            (moves, note, stored)
        }
    };
    // The order may have moved to another buyer-event (an address filled in later): refresh both.
    buyer_events::refresh(conn, &key, event.as_deref())?;
    if let Some((old_key, old_event)) = previous_key
        && (old_key != key || old_event != event)
    {
        buyer_events::refresh(conn, &old_key, old_event.as_deref())?;
    }
    conn.prepare_cached(
        "INSERT INTO order_history (reference, delivery_id, received_at, action, fingerprint, applied, note)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
            hook.reference,
            delivery_id,
            at,
            next,
            hook.fingerprint,
            applied,
            note
        ],
    )?;
    Ok(HookOutcome::Recorded)
}
