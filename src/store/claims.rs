//! Claiming a step before it is sent (re-checking, inside the transaction, what may have changed);
//! steps skipped or held out instead.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, StoreError, parse_timestamp, timestamp};
use crate::domain::{ADDRESS_SUPPRESSED, BUYER_PAID, OrderState};
use crate::experiment::{HELD_OUT, Share};

/// Why a claim was refused at the last moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimRefused {
    /// An order for the event was paid meanwhile.
    Paid,
    /// The address was suppressed meanwhile.
    Suppressed,
    /// The step was already decided (another pass got there first).
    AlreadyDecided,
    /// Another email went out within min_gap.
    TooSoon,
    /// The buyer-event is in the control group.
    HeldOut,
    /// Another step for the buyer-event is claimed and not yet sent (waiting for a retry).
    InFlight,
}

impl ClaimRefused {
    /// For people.
    pub fn reason(&self) -> &'static str {
        match self {
            ClaimRefused::Paid => BUYER_PAID,
            ClaimRefused::Suppressed => ADDRESS_SUPPRESSED,
            ClaimRefused::AlreadyDecided => "already decided by another pass",
            ClaimRefused::TooSoon => "another email went out within min_gap",
            ClaimRefused::HeldOut => HELD_OUT,
            ClaimRefused::InFlight => {
                "another email to this buyer about this event waits for a retry"
            }
        }
    }
}

/// A step to claim.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The buyer.
    pub email_key: String,
    /// The event.
    pub event_id: String,
    /// The step.
    pub step: String,
    /// Earlier steps skipped with it, and why.
    pub skip: Vec<(String, String)>,
    /// The order it is about.
    pub reference: String,
    /// The address it goes to.
    pub email: String,
    /// Its Message-ID.
    pub message_id: String,
    /// The pass's time.
    pub now: DateTime<Utc>,
    /// min_gap, checked again inside the claim.
    pub min_gap: chrono::TimeDelta,
    /// The template (the step's variant) the email is rendered from.
    pub template: String,
    /// `[experiment] holdout` in force, recorded with the buyer-event's group on its first step.
    pub share: Share,
}

/// Claims a step before sending it, re-checking inside the transaction what could have changed
/// since the pass read the buyer-event: paid, suppressed, already decided, another email too recent.
fn claim(conn: &Connection, c: &Claim) -> anyhow::Result<Result<(), ClaimRefused>> {
    let state: Option<OrderState> = conn
        .prepare_cached("SELECT state FROM buyer_events WHERE email_key = ?1 AND event_id = ?2")?
        .query_row(params![c.email_key, c.event_id], |r| r.get(0))
        .optional()?;
    if state.is_none_or(|s| s == OrderState::Completed) {
        return Ok(Err(ClaimRefused::Paid));
    }
    if is_suppressed(conn, &c.email_key)? {
        return Ok(Err(ClaimRefused::Suppressed));
    }
    let decided: bool = conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM reminders WHERE email_key = ?1 AND event_id = ?2 AND step = ?3)")?
        .query_row(        params![c.email_key, c.event_id, c.step],
        |r| r.get(0),
    )?;
    if decided {
        return Ok(Err(ClaimRefused::AlreadyDecided));
    }
    // One email at a time per buyer-event: a claim still waiting for its retry would otherwise go
    // out in the same pass as this one (min_gap is counted from when an email is sent).
    let in_flight: bool = conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM reminders WHERE email_key = ?1 AND event_id = ?2 AND status = 'claimed')")?
        .query_row(        params![c.email_key, c.event_id],
        |r| r.get(0),
    )?;
    if in_flight {
        return Ok(Err(ClaimRefused::InFlight));
    }
    // An interrupted send may have arrived: it counts as an email.
    let last: Option<String> = conn
        .prepare_cached(
            "SELECT max(coalesce(sent_at, decided_at)) FROM reminders
         WHERE email_key = ?1 AND event_id = ?2 AND status IN ('sent', 'claimed', 'interrupted')",
        )?
        .query_row(params![c.email_key, c.event_id], |r| r.get(0))?;
    if let Some(last) = last
        && parse_timestamp(&last)? + c.min_gap > c.now
    {
        return Ok(Err(ClaimRefused::TooSoon));
    }
    // Belt and braces: whatever the pass thought, a buyer-event recorded as held out is never sent.
    let held_out: Option<bool> = conn
        .prepare_cached("SELECT held_out FROM experiment WHERE email_key = ?1 AND event_id = ?2")?
        .query_row(params![c.email_key, c.event_id], |r| r.get(0))
        .optional()?;
    if held_out == Some(true) {
        return Ok(Err(ClaimRefused::HeldOut));
    }
    let at = timestamp(c.now);
    conn.prepare_cached("INSERT INTO reminders (email_key, event_id, step, status, reference, email, message_id, decided_at, template)
         VALUES (?1, ?2, ?3, 'claimed', ?4, ?5, ?6, ?7, ?8)")?
        .execute(        params![c.email_key, c.event_id, c.step, c.reference, c.email, c.message_id, at, c.template],
    )?;
    record_group(
        conn,
        &c.email_key,
        &c.event_id,
        false,
        c.share,
        &c.step,
        &at,
    )?;
    insert_skipped(conn, &c.email_key, &c.event_id, &c.reference, &c.skip, &at)?;
    Ok(Ok(()))
}

/// Records `skip` (steps and why) as skipped for a buyer-event; a step already decided is left
/// alone, as each step is decided once.
fn insert_skipped(
    conn: &Connection,
    email_key: &str,
    event_id: &str,
    reference: &str,
    skip: &[(String, String)],
    at: &str,
) -> anyhow::Result<()> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO reminders (email_key, event_id, step, status, reason, reference, message_id, decided_at)
         VALUES (?1, ?2, ?3, 'skipped', ?4, ?5, '', ?6) ON CONFLICT DO NOTHING",
    )?;
    for (step, reason) in skip {
        insert.execute(params![email_key, event_id, step, reason, reference, at])?;
    }
    Ok(())
}

/// Records a buyer-event's group when its first step falls due; a group once recorded stays.
fn record_group(
    conn: &Connection,
    email_key: &str,
    event_id: &str,
    held_out: bool,
    share: Share,
    step: &str,
    at: &str,
) -> anyhow::Result<()> {
    conn.prepare_cached(
        "INSERT INTO experiment (email_key, event_id, held_out, share, step, decided_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
    )?
    .execute(params![
        email_key,
        event_id,
        held_out,
        share.hundredths(),
        step,
        at
    ])?;
    Ok(())
}

/// A step that would have been sent to a held-out buyer-event.
#[derive(Debug, Clone)]
pub struct HoldOut {
    /// The buyer.
    pub email_key: String,
    /// The event.
    pub event_id: String,
    /// The order it was about.
    pub reference: String,
    /// The step that would have been sent.
    pub step: String,
    /// Steps skipped with it, and why.
    pub skip: Vec<(String, String)>,
    /// `[experiment] holdout` in force.
    pub share: Share,
}

/// Records held-out steps (`skipped`, "held out") and, on the first, the buyer-event's group.
pub(super) fn hold_out(
    conn: &Connection,
    held: &[HoldOut],
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let at = timestamp(now);
    for h in held {
        let mut skip = vec![(h.step.clone(), HELD_OUT.to_string())];
        skip.extend(h.skip.iter().cloned());
        insert_skipped(conn, &h.email_key, &h.event_id, &h.reference, &skip, &at)?;
        record_group(conn, &h.email_key, &h.event_id, true, h.share, &h.step, &at)?;
    }
    Ok(())
}

/// Due steps of one buyer-event to record as skipped without sending anything.
#[derive(Debug, Clone)]
pub struct StepSkips {
    /// The buyer.
    pub email_key: String,
    /// The event.
    pub event_id: String,
    /// The order they were about.
    pub reference: String,
    /// The steps, and why.
    pub skip: Vec<(String, String)>,
}

/// Records steps as skipped (each step stays decided once: a step already decided is left alone).
pub(super) fn skip_steps(
    conn: &Connection,
    skips: &[StepSkips],
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let at = timestamp(now);
    for s in skips {
        insert_skipped(conn, &s.email_key, &s.event_id, &s.reference, &s.skip, &at)?;
    }
    Ok(())
}

/// Whether an address is on the suppression list.
pub(super) fn is_suppressed(conn: &Connection, email_key: &str) -> anyhow::Result<bool> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM suppressions WHERE email_key = ?1)")?
        .query_row([email_key], |r| r.get(0))?)
}

impl Store {
    /// Claims a step before sending it, in one transaction that re-checks what could have
    /// changed since the pass read the buyer-event; why not, when the claim is refused.
    pub async fn claim(&self, claim: Claim) -> Result<Result<(), ClaimRefused>, StoreError> {
        self.write(move |conn| self::claim(conn, &claim)).await
    }
}
