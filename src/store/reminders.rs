//! The reminder engine's statements: which buyer-events are due, claiming a step before it is
//! sent, recording every decision, and the passes themselves.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDateTime, Utc};
use rusqlite::{Connection, params};
use serde::Serialize;

use super::{OptionalRow, Store, StoreError, parse_timestamp, timestamp};
use crate::domain::OrderState;
use crate::domain::{Candidate, StepRecord, StepStatus};
use crate::experiment::{HELD_OUT, Share};

/// A due buyer-event with what the planner needs, and the order a reminder would be about.
#[derive(Debug, Clone)]
pub struct DueBuyerEvent {
    /// What the planner reads.
    pub candidate: Candidate,
    /// The order a reminder would be about.
    pub reference: String,
    /// The stored next_check_at (for paging).
    pub next_check_at: String,
    /// The group recorded when its first step fell due (`Some(true)`: held out); `None` before.
    pub held_out: Option<bool>,
}

/// The suppression list, read once per pass (it is short; a lookup per buyer-event is not).
pub fn suppressed_keys(conn: &Connection) -> anyhow::Result<HashSet<String>> {
    let mut stmt = conn.prepare("SELECT email_key FROM suppressions")?;
    let keys = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<HashSet<String>, _>>()?;
    Ok(keys)
}

/// Pages through the buyer-events due at `now` (from the partial index on next_check_at).
pub fn load_due(
    conn: &Connection,
    suppressed: &HashSet<String>,
    now: DateTime<Utc>,
    after: Option<&(String, String, String)>,
    limit: usize,
) -> anyhow::Result<Vec<DueBuyerEvent>> {
    let (after_at, after_key, after_event) = match after {
        Some((a, k, e)) => (a.as_str(), k.as_str(), e.as_str()),
        None => ("", "", ""),
    };
    // Everything but the history comes from the covering index buyer_events_due.
    let mut stmt = conn.prepare_cached(
        "SELECT be.email_key, be.event_id, be.state, be.changed_at, be.reference, be.next_check_at,
                be.email, be.event_date,
                (SELECT group_concat(r.step || char(31)
                                     || CASE WHEN r.status = 'skipped' AND r.reason = ?6 THEN 'held_out' ELSE r.status END
                                     || char(31) || r.decided_at || char(31) || coalesce(r.sent_at, ''), char(30))
                 FROM reminders r WHERE r.email_key = be.email_key AND r.event_id = be.event_id),
                (SELECT x.held_out FROM experiment x WHERE x.email_key = be.email_key AND x.event_id = be.event_id)
         FROM buyer_events be INDEXED BY buyer_events_due
         WHERE be.next_check_at IS NOT NULL AND be.next_check_at <= ?1
           AND (be.next_check_at, be.email_key, be.event_id) > (?2, ?3, ?4)
         ORDER BY be.next_check_at, be.email_key, be.event_id
         LIMIT ?5",
    )?;
    let mut rows = stmt.query(params![
        timestamp(now),
        after_at,
        after_key,
        after_event,
        limit as i64,
        HELD_OUT
    ])?;
    let mut due = Vec::new();
    while let Some(row) = rows.next()? {
        let email_key: String = row.get(0)?;
        let changed_at: String = row.get(3)?;
        let event_date: Option<String> = row.get(7)?;
        let history: Option<String> = row.get(8)?;
        due.push(DueBuyerEvent {
            candidate: Candidate {
                email_key: email_key.clone(),
                event_id: row.get(1)?,
                state: row.get(2)?,
                changed_at: parse_timestamp(&changed_at)?,
                email: row.get(6)?,
                event_date: event_date
                    .as_deref()
                    .and_then(|d| NaiveDateTime::parse_from_str(d, "%Y-%m-%d %H:%M:%S").ok()),
                history: parse_history(history.as_deref())?,
                suppressed: suppressed.contains(&email_key),
                sold_out: false,
                held_out: false,
            },
            reference: row.get(4)?,
            next_check_at: row.get(5)?,
            held_out: row.get(9)?,
        });
    }
    Ok(due)
}

pub(super) fn parse_history(text: Option<&str>) -> anyhow::Result<Vec<StepRecord>> {
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return Ok(Vec::new());
    };
    text.split('\u{1e}')
        .map(|record| {
            let mut f = record.split('\u{1f}');
            let (step, status, decided, sent) = (f.next(), f.next(), f.next(), f.next());
            let step = step.unwrap_or_default().to_string();
            let status = status
                .and_then(StepStatus::parse)
                .ok_or_else(|| anyhow::anyhow!("stored reminder {step:?} has an unknown status"))?;
            Ok(StepRecord {
                step,
                status,
                decided_at: parse_timestamp(decided.unwrap_or_default())?,
                sent_at: sent
                    .filter(|s| !s.is_empty())
                    .map(parse_timestamp)
                    .transpose()?,
            })
        })
        .collect()
}

/// A decision to keep on the buyer-event (what `export reminders` and `/admin` show).
#[derive(Debug, Clone)]
pub struct DecisionRecord {
    /// The buyer.
    pub email_key: String,
    /// The event.
    pub event_id: String,
    /// sent, deferred, skipped, failed, done.
    pub decision: &'static str,
    /// Why.
    pub reason: String,
    /// When to look again.
    pub next_check_at: Option<DateTime<Utc>>,
}

/// Records decisions that send nothing; a buyer-event that changed since it was read (a new hook
/// reset its next check) keeps the newer next check.
pub fn record_decisions(
    conn: &Connection,
    decisions: &[DecisionRecord],
    pass_at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let mut stmt = conn.prepare_cached(
        "UPDATE buyer_events SET last_decision = ?3, last_reason = ?4, last_pass_at = ?5,
            next_check_at = CASE WHEN next_check_at IS NOT NULL AND next_check_at <= ?5 THEN ?6 ELSE next_check_at END
         WHERE email_key = ?1 AND event_id = ?2",
    )?;
    let at = timestamp(pass_at);
    for d in decisions {
        stmt.execute(params![
            d.email_key,
            d.event_id,
            d.decision,
            d.reason,
            at,
            d.next_check_at.map(timestamp)
        ])?;
    }
    Ok(())
}

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
            ClaimRefused::Paid => "the buyer paid",
            ClaimRefused::Suppressed => "the address is unsubscribed",
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
pub fn claim(conn: &Connection, c: &Claim) -> anyhow::Result<Result<(), ClaimRefused>> {
    let state: Option<OrderState> = conn
        .query_row(
            "SELECT state FROM buyer_events WHERE email_key = ?1 AND event_id = ?2",
            params![c.email_key, c.event_id],
            |r| r.get(0),
        )
        .optional_row()?;
    if state.is_none_or(|s| s == OrderState::Completed) {
        return Ok(Err(ClaimRefused::Paid));
    }
    if is_suppressed(conn, &c.email_key)? {
        return Ok(Err(ClaimRefused::Suppressed));
    }
    let decided: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM reminders WHERE email_key = ?1 AND event_id = ?2 AND step = ?3)",
        params![c.email_key, c.event_id, c.step],
        |r| r.get(0),
    )?;
    if decided {
        return Ok(Err(ClaimRefused::AlreadyDecided));
    }
    // One email at a time per buyer-event: a claim still waiting for its retry would otherwise go
    // out in the same pass as this one (min_gap is counted from when an email is sent).
    let in_flight: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM reminders WHERE email_key = ?1 AND event_id = ?2 AND status = 'claimed')",
        params![c.email_key, c.event_id],
        |r| r.get(0),
    )?;
    if in_flight {
        return Ok(Err(ClaimRefused::InFlight));
    }
    let last: Option<String> = conn.query_row(
        "SELECT max(coalesce(sent_at, decided_at)) FROM reminders
         WHERE email_key = ?1 AND event_id = ?2 AND status IN ('sent', 'claimed')",
        params![c.email_key, c.event_id],
        |r| r.get(0),
    )?;
    if let Some(last) = last
        && parse_timestamp(&last)? + c.min_gap > c.now
    {
        return Ok(Err(ClaimRefused::TooSoon));
    }
    // Belt and braces: whatever the pass thought, a buyer-event recorded as held out is never sent.
    let held_out: Option<bool> = conn
        .query_row(
            "SELECT held_out FROM experiment WHERE email_key = ?1 AND event_id = ?2",
            params![c.email_key, c.event_id],
            |r| r.get(0),
        )
        .optional_row()?;
    if held_out == Some(true) {
        return Ok(Err(ClaimRefused::HeldOut));
    }
    let at = timestamp(c.now);
    conn.execute(
        "INSERT INTO reminders (email_key, event_id, step, status, reference, email, message_id, decided_at, template)
         VALUES (?1, ?2, ?3, 'claimed', ?4, ?5, ?6, ?7, ?8)",
        params![c.email_key, c.event_id, c.step, c.reference, c.email, c.message_id, at, c.template],
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
pub fn hold_out(conn: &Connection, held: &[HoldOut], now: DateTime<Utc>) -> anyhow::Result<()> {
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
pub fn skip_steps(
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
pub fn is_suppressed(conn: &Connection, email_key: &str) -> anyhow::Result<bool> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM suppressions WHERE email_key = ?1)",
        [email_key],
        |r| r.get(0),
    )?)
}

/// How a claimed step ended (or did not yet).
#[derive(Debug, Clone)]
pub enum ClaimResult {
    /// Sent, with the proof of when and under which rule.
    Sent {
        /// The local time it left, RFC 3339 with the zone's offset.
        local: String,
        /// The send-window rule that allowed it.
        rule: String,
    },
    /// A temporary failure: try again at `retry_at`.
    Retry {
        /// When.
        retry_at: DateTime<Utc>,
        /// The failure.
        error: String,
    },
    /// Failed for good.
    Failed {
        /// The server's reply.
        error: String,
        /// Also suppress the address (the mailbox does not exist).
        suppress: bool,
    },
    /// Not sent after all, and never will be.
    Skipped {
        /// Why.
        reason: String,
    },
}

/// Records how a claimed step ended, on the step and on its buyer-event.
pub fn finish_claim(
    conn: &Connection,
    email_key: &str,
    event_id: &str,
    step: &str,
    result: &ClaimResult,
    now: DateTime<Utc>,
    next_check: DateTime<Utc>,
) -> anyhow::Result<()> {
    let at = timestamp(now);
    let (decision, reason) = match result {
        ClaimResult::Sent { local, rule } => {
            conn.execute(
                "UPDATE reminders SET status = 'sent', sent_at = ?4, attempts = attempts + 1,
                    retry_at = NULL, reason = NULL, sent_local = ?5, send_rule = ?6
                 WHERE email_key = ?1 AND event_id = ?2 AND step = ?3",
                params![email_key, event_id, step, at, local, rule],
            )?;
            ("sent", format!("{step} sent"))
        }
        ClaimResult::Retry { retry_at, error } => {
            conn.execute(
                "UPDATE reminders SET attempts = attempts + 1, retry_at = ?4, last_error = ?5
                 WHERE email_key = ?1 AND event_id = ?2 AND step = ?3",
                params![email_key, event_id, step, timestamp(*retry_at), error],
            )?;
            ("failed", format!("{step} will be retried: {error}"))
        }
        ClaimResult::Failed { error, suppress } => {
            conn.execute(
                "UPDATE reminders SET status = 'failed', attempts = attempts + 1, retry_at = NULL,
                    reason = ?4, last_error = ?4
                 WHERE email_key = ?1 AND event_id = ?2 AND step = ?3",
                params![email_key, event_id, step, error],
            )?;
            if *suppress {
                conn.execute(
                    "INSERT INTO suppressions (email_key, added_at, source, reason)
                     VALUES (?1, ?2, 'bounce', ?3) ON CONFLICT DO NOTHING",
                    params![email_key, at, error],
                )?;
            }
            ("failed", format!("{step} refused: {error}"))
        }
        ClaimResult::Skipped { reason } => {
            conn.execute(
                "UPDATE reminders SET status = 'skipped', retry_at = NULL, reason = ?4
                 WHERE email_key = ?1 AND event_id = ?2 AND step = ?3",
                params![email_key, event_id, step, reason],
            )?;
            ("skipped", format!("{step} not sent: {reason}"))
        }
    };
    // A later pass plans the remaining steps; a completed buyer-event stays closed.
    conn.execute(
        "UPDATE buyer_events SET last_decision = ?3, last_reason = ?4, last_pass_at = ?5,
            next_check_at = CASE WHEN state = 'checkout_completed' THEN NULL ELSE ?6 END
         WHERE email_key = ?1 AND event_id = ?2",
        params![
            email_key,
            event_id,
            decision,
            reason,
            at,
            timestamp(next_check)
        ],
    )?;
    Ok(())
}

/// A claimed step still to send: left by a crash, or waiting after a temporary failure.
#[derive(Debug, Clone)]
pub struct OpenClaim {
    /// The buyer.
    pub email_key: String,
    /// The event.
    pub event_id: String,
    /// The step.
    pub step: String,
    /// The order it is about.
    pub reference: String,
    /// The address.
    pub email: String,
    /// Its Message-ID (the same on every attempt).
    pub message_id: String,
    /// Attempts so far.
    pub attempts: u32,
    /// When it was claimed.
    pub decided_at: DateTime<Utc>,
    /// The template (variant) chosen when it was claimed; `None` for a claim older than schema 10.
    pub template: Option<String>,
}

/// Claims whose time to (re)send has come.
pub fn open_claims(conn: &Connection, now: DateTime<Utc>) -> anyhow::Result<Vec<OpenClaim>> {
    let mut stmt = conn.prepare_cached(
        "SELECT email_key, event_id, step, coalesce(reference, ''), coalesce(email, ''), message_id,
                attempts, decided_at, template
         FROM reminders WHERE status = 'claimed' AND (retry_at IS NULL OR retry_at <= ?1)
         ORDER BY decided_at",
    )?;
    let rows = stmt
        .query_map([timestamp(now)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, u32>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, Option<String>>(8)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(
            |(email_key, event_id, step, reference, email, message_id, attempts, at, template)| {
                Ok(OpenClaim {
                    email_key,
                    event_id,
                    step,
                    reference,
                    email,
                    message_id,
                    attempts,
                    decided_at: parse_timestamp(&at)?,
                    template,
                })
            },
        )
        .collect()
}

/// A buyer-event as it is right now: the last check before an email leaves.
#[derive(Debug, Clone)]
pub struct SendCheck {
    /// Its state (paid or not).
    pub state: OrderState,
    /// Whether the address is suppressed.
    pub suppressed: bool,
    /// The latest checkout change.
    pub changed_at: DateTime<Utc>,
    /// The event's local start, from the order the email is about.
    pub event_date: Option<NaiveDateTime>,
    /// Emails already sent to this buyer about this event.
    pub sent: u32,
}

/// Reads a buyer-event's [`SendCheck`]; `None` when it no longer exists (forgotten).
pub fn send_check(
    conn: &Connection,
    email_key: &str,
    event_id: &str,
    reference: &str,
) -> anyhow::Result<Option<SendCheck>> {
    let row: Option<(OrderState, String)> = conn
        .query_row(
            "SELECT state, changed_at FROM buyer_events WHERE email_key = ?1 AND event_id = ?2",
            params![email_key, event_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional_row()?;
    let Some((state, changed_at)) = row else {
        return Ok(None);
    };
    let event_date: Option<String> = conn
        .query_row(
            "SELECT event_date FROM orders WHERE reference = ?1",
            [reference],
            |r| r.get(0),
        )
        .optional_row()?
        .flatten();
    let sent: u32 = conn.query_row(
        "SELECT count(*) FROM reminders WHERE email_key = ?1 AND event_id = ?2 AND status = 'sent'",
        params![email_key, event_id],
        |r| r.get(0),
    )?;
    Ok(Some(SendCheck {
        state,
        suppressed: is_suppressed(conn, email_key)?,
        changed_at: parse_timestamp(&changed_at)?,
        event_date: event_date
            .as_deref()
            .and_then(|d| NaiveDateTime::parse_from_str(d, "%Y-%m-%d %H:%M:%S").ok()),
        sent,
    }))
}

/// Counts of one pass.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PassCounts {
    /// Buyer-events looked at.
    pub considered: u64,
    /// Emails sent.
    pub sent: u64,
    /// Buyer-events that wait.
    pub deferred: u64,
    /// Buyer-events skipped or done.
    pub skipped: u64,
    /// Sends that failed (temporarily or for good).
    pub failed: u64,
}

impl PassCounts {
    /// Adds another's counts to these.
    pub fn absorb(&mut self, other: &PassCounts) {
        self.considered += other.considered;
        self.sent += other.sent;
        self.deferred += other.deferred;
        self.skipped += other.skipped;
        self.failed += other.failed;
    }
}

/// A pass as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct PassRecord {
    /// Its id.
    pub id: i64,
    /// When it started (wall clock).
    pub started_at: String,
    /// When it finished; `null` while running or if it was killed.
    pub finished_at: Option<String>,
    /// The time it decided for.
    pub pass_time: String,
    /// What it did.
    #[serde(flatten)]
    pub counts: PassCounts,
    /// Why it stopped early, if it did.
    pub error: Option<String>,
}

impl Store {
    /// Records the start of a pass.
    pub async fn start_pass(&self, pass_time: DateTime<Utc>) -> Result<i64, StoreError> {
        self.write(move |conn| {
            Ok(conn.query_row(
                "INSERT INTO passes (started_at, pass_time) VALUES (?1, ?2) RETURNING id",
                params![timestamp(Utc::now()), timestamp(pass_time)],
                |r| r.get(0),
            )?)
        })
        .await
    }

    /// Records the end of a pass.
    pub async fn finish_pass(
        &self,
        id: i64,
        counts: PassCounts,
        error: Option<String>,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.execute(
                "UPDATE passes SET finished_at = ?2, considered = ?3, sent = ?4, deferred = ?5,
                    skipped = ?6, failed = ?7, error = ?8 WHERE id = ?1",
                params![
                    id,
                    timestamp(Utc::now()),
                    counts.considered as i64,
                    counts.sent as i64,
                    counts.deferred as i64,
                    counts.skipped as i64,
                    counts.failed as i64,
                    error
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// The latest pass, if any.
    pub async fn last_pass(&self) -> Result<Option<PassRecord>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT id, started_at, finished_at, pass_time, considered, sent, deferred,
                            skipped, failed, error
                     FROM passes ORDER BY id DESC LIMIT 1",
                    [],
                    |r| {
                        Ok(PassRecord {
                            id: r.get(0)?,
                            started_at: r.get(1)?,
                            finished_at: r.get(2)?,
                            pass_time: r.get(3)?,
                            counts: PassCounts {
                                considered: r.get::<_, i64>(4)? as u64,
                                sent: r.get::<_, i64>(5)? as u64,
                                deferred: r.get::<_, i64>(6)? as u64,
                                skipped: r.get::<_, i64>(7)? as u64,
                                failed: r.get::<_, i64>(8)? as u64,
                            },
                            error: r.get(9)?,
                        })
                    },
                )
                .optional_row()?)
        })
        .await
    }

    /// Buyer-events a pass would look at now.
    pub async fn due_count(&self, now: DateTime<Utc>) -> Result<i64, StoreError> {
        self.read(move |conn| {
            Ok(conn.query_row(
                "SELECT count(*) FROM buyer_events WHERE next_check_at IS NOT NULL AND next_check_at <= ?1",
                [timestamp(now)],
                |r| r.get(0),
            )?)
        })
        .await
    }

    /// Claimed steps that failed temporarily and wait to be retried: the "needs attention" count.
    pub async fn failing_claims(&self) -> Result<i64, StoreError> {
        self.read(|conn| {
            Ok(conn.query_row(
                "SELECT count(*) FROM reminders WHERE status = 'claimed' AND attempts > 0",
                [],
                |r| r.get(0),
            )?)
        })
        .await
    }
}

/// One reminder decision as exported.
#[derive(Debug, Clone, Serialize)]
pub struct ReminderRecord {
    /// The buyer's address.
    pub email: String,
    /// The event.
    pub event_id: String,
    /// The step (`null` for a buyer-event's latest decision that concerned no single step).
    pub step: Option<String>,
    /// sent, claimed, skipped, failed, deferred, done.
    pub status: String,
    /// Why.
    pub reason: Option<String>,
    /// The order it was about.
    pub reference: Option<String>,
    /// When it was decided (pass time).
    pub decided_at: Option<String>,
    /// When it was sent.
    pub sent_at: Option<String>,
    /// When it was sent, in local time (`schedule.timezone`), RFC 3339 with the offset.
    pub sent_local: Option<String>,
    /// The send-window rule that allowed it, e.g. `za-cpa (Consumer Protection Act): Monday to
    /// Friday 08:00-20:00`.
    pub send_rule: Option<String>,
    /// Send attempts.
    pub attempts: i64,
    /// The Message-ID.
    pub message_id: Option<String>,
    /// When a deferred buyer-event is looked at again.
    pub next_check_at: Option<String>,
}

/// Every step decided, then every buyer-event's latest decision that is not a step (deferred,
/// skipped, done), so that `export reminders` shows why each buyer was or wasn't emailed.
pub fn for_each_reminder(
    conn: &Connection,
    mut each: impl FnMut(ReminderRecord) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut stmt = conn.prepare(
        "SELECT coalesce(r.email, r.email_key), r.event_id, r.step, r.status, r.reason, r.reference,
                r.decided_at, r.sent_at, r.attempts, nullif(r.message_id, ''), r.retry_at,
                r.sent_local, r.send_rule
         FROM reminders r ORDER BY r.decided_at, r.email_key, r.event_id, r.step",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        each(ReminderRecord {
            email: r.get(0)?,
            event_id: r.get(1)?,
            step: r.get(2)?,
            status: r.get(3)?,
            reason: r.get(4)?,
            reference: r.get(5)?,
            decided_at: r.get(6)?,
            sent_at: r.get(7)?,
            sent_local: r.get(11)?,
            send_rule: r.get(12)?,
            attempts: r.get(8)?,
            message_id: r.get(9)?,
            next_check_at: r.get(10)?,
        })?;
    }
    let mut stmt = conn.prepare(
        "SELECT o.email, be.event_id, be.last_decision, be.last_reason, be.reference, be.last_pass_at,
                be.next_check_at
         FROM buyer_events be JOIN orders o ON o.reference = be.reference
         WHERE be.last_decision IN ('deferred', 'skipped', 'done')
         ORDER BY be.last_pass_at, be.email_key, be.event_id",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        each(ReminderRecord {
            email: r.get(0)?,
            event_id: r.get(1)?,
            step: None,
            status: r.get(2)?,
            reason: r.get(3)?,
            reference: r.get(4)?,
            decided_at: r.get(5)?,
            sent_at: None,
            sent_local: None,
            send_rule: None,
            attempts: 0,
            message_id: None,
            next_check_at: r.get(6)?,
        })?;
    }
    Ok(())
}
