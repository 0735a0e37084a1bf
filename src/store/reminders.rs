//! The reminder engine's statements: which buyer-events are due, claiming a step before it is
//! sent, recording every decision, and the passes themselves.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::claims::{hold_out, skip_steps};
use super::{Store, StoreError, parse_timestamp, timestamp};
use crate::domain::{ArmRecord, Candidate, Outcome, StepRecord, StepStatus};
use crate::experiment::HELD_OUT;

pub use super::claims::{Claim, ClaimRefused, HoldOut, StepSkips};
pub use super::sends::{ClaimResult, OpenClaim, SendCheck};

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
pub(super) fn suppressed_keys(conn: &Connection) -> anyhow::Result<HashSet<String>> {
    let mut stmt = conn.prepare("SELECT email_key FROM suppressions")?;
    let keys = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<HashSet<String>, _>>()?;
    Ok(keys)
}

/// A buyer-event's timing-experiment arms as one column (`step US arms US arm`, records separated
/// by RS; see [`parse_arms`]), for a query over `buyer_events be`.
macro_rules! arms_column {
    () => {
        "(SELECT group_concat(a.step || char(31) || a.arms || char(31) || a.arm, char(30))
          FROM timing_arms a WHERE a.email_key = be.email_key AND a.event_id = be.event_id)"
    };
}
pub(super) use arms_column;

/// The due read (see [`load_due`]), with `$extra` columns after the ten every pass reads.
macro_rules! due_read {
    ($extra:expr) => {
        concat!(
            "SELECT be.email_key, be.event_id, be.state, be.changed_at, be.reference, be.next_check_at,
                be.email, be.event_date,
                (SELECT group_concat(r.step || char(31)
                                     || CASE WHEN r.status = 'skipped' AND r.reason = ?6 THEN 'held_out' ELSE r.status END
                                     || char(31) || r.decided_at || char(31) || coalesce(r.sent_at, ''), char(30))
                 FROM reminders r WHERE r.email_key = be.email_key AND r.event_id = be.event_id),
                (SELECT x.held_out FROM experiment x WHERE x.email_key = be.email_key AND x.event_id = be.event_id)",
            $extra,
            "
         FROM buyer_events be INDEXED BY buyer_events_due
         WHERE be.next_check_at IS NOT NULL AND be.next_check_at <= ?1
           AND (be.next_check_at, be.email_key, be.event_id) > (?2, ?3, ?4)
         ORDER BY be.next_check_at, be.email_key, be.event_id
         LIMIT ?5"
        )
    };
}

/// The due read.
const DUE: &str = due_read!("");

/// The due read with each buyer-event's timing-experiment arms (column 10).
const DUE_WITH_ARMS: &str = due_read!(concat!(",\n                ", arms_column!()));

/// Pages through the buyer-events due at `now` (from the partial index on next_check_at).
fn load_due(
    conn: &Connection,
    suppressed: &HashSet<String>,
    now: DateTime<Utc>,
    after: Option<&(String, String, String)>,
    limit: usize,
    with_arms: bool,
) -> anyhow::Result<Vec<DueBuyerEvent>> {
    let (after_at, after_key, after_event) = match after {
        Some((a, k, e)) => (a.as_str(), k.as_str(), e.as_str()),
        None => ("", "", ""),
    };
    // Everything but the history comes from the covering index buyer_events_due.
    // The arms column only when the schedule has a timing experiment: the due read is the pass's
    // largest cost, and a lookup per row costs about as much as the rest of the row.
    let sql = if with_arms { DUE_WITH_ARMS } else { DUE };
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params![
        timestamp(now),
        after_at,
        after_key,
        after_event,
        limit as i64,
        HELD_OUT
    ])?;
    let mut due = Vec::with_capacity(limit.min(4096));
    while let Some(row) = rows.next()? {
        // Texts only parsed are read in place, not copied first.
        let email_key: String = row.get(0)?;
        let suppressed = suppressed.contains(&email_key);
        due.push(DueBuyerEvent {
            candidate: Candidate {
                email_key,
                event_id: row.get(1)?,
                state: row.get(2)?,
                changed_at: parse_timestamp(row.get_ref(3)?.as_str()?)?,
                email: row.get(6)?,
                event_date: row
                    .get_ref(7)?
                    .as_str_or_null()?
                    .and_then(super::parse_event_date),
                history: parse_history(row.get_ref(8)?.as_str_or_null()?)?,
                suppressed,
                sold_out: false,
                held_out: false,
                arms: if with_arms {
                    parse_arms(row.get_ref(10)?.as_str_or_null()?)
                } else {
                    Vec::new()
                },
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
    pub decision: Outcome,
    /// Why.
    pub reason: String,
    /// When to look again.
    pub next_check_at: Option<DateTime<Utc>>,
}

/// What a page of a pass decided that sends nothing, recorded in one transaction.
#[derive(Debug, Default)]
pub struct QuietDecisions {
    /// The decisions, kept on their buyer-events.
    pub decisions: Vec<DecisionRecord>,
    /// Steps skipped without an email (sold out).
    pub step_skips: Vec<StepSkips>,
    /// Steps the control group would have been sent.
    pub held: Vec<HoldOut>,
}

/// A timing-experiment arm given by a pass, to store.
#[derive(Debug, Clone)]
pub struct NewArm {
    /// The buyer-event's address key.
    pub email_key: String,
    /// Its event.
    pub event_id: String,
    /// The step.
    pub step: String,
    /// The step's delays as text.
    pub arms: String,
    /// Which of them.
    pub arm: usize,
}

/// The arms column of the due read: `step US arms US arm`, records separated by RS.
pub(super) fn parse_arms(text: Option<&str>) -> Vec<ArmRecord> {
    let Some(text) = text else {
        return Vec::new();
    };
    text.split('\u{1e}')
        .filter_map(|record| {
            let mut parts = record.split('\u{1f}');
            let (step, arms, arm) = (parts.next()?, parts.next()?, parts.next()?);
            Some(ArmRecord {
                step: step.to_string(),
                arms: arms.to_string(),
                arm: arm.parse().ok()?,
                new: false,
            })
        })
        .collect()
}

/// Records decisions that send nothing; a buyer-event that changed since it was read (a new hook
/// reset its next check) keeps the newer next check.
fn record_decisions(
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
    /// Sends a crash interrupted once their SMTP transaction had begun (found by this pass):
    /// they may or may not have arrived, and are not sent again.
    pub interrupted: u64,
}

impl PassCounts {
    /// Adds another's counts to these.
    pub fn absorb(&mut self, other: &PassCounts) {
        self.considered += other.considered;
        self.sent += other.sent;
        self.deferred += other.deferred;
        self.skipped += other.skipped;
        self.failed += other.failed;
        self.interrupted += other.interrupted;
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
    /// The suppression list (a pass reads it once: it is short, a lookup per buyer-event is not).
    pub async fn suppressed_keys(&self) -> Result<HashSet<String>, StoreError> {
        self.read(suppressed_keys).await
    }

    /// A page of at most `limit` buyer-events due at `now`, in index order from just after
    /// `after` (the `(next_check_at, email_key, event_id)` of the previous page's last).
    pub async fn due_page(
        &self,
        suppressed: Arc<HashSet<String>>,
        now: DateTime<Utc>,
        after: Option<(String, String, String)>,
        limit: usize,
        with_arms: bool,
    ) -> Result<Vec<DueBuyerEvent>, StoreError> {
        self.read(move |conn| load_due(conn, &suppressed, now, after.as_ref(), limit, with_arms))
            .await
    }

    /// Stores the timing-experiment arms a pass gave (an arm once given is never changed).
    pub async fn record_arms(
        &self,
        arms: Vec<NewArm>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            let mut stmt = conn.prepare_cached(
                "INSERT OR IGNORE INTO timing_arms (email_key, event_id, step, arms, arm, assigned_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            let at = timestamp(now);
            for a in &arms {
                stmt.execute(params![a.email_key, a.event_id, a.step, a.arms, a.arm as i64, at])?;
            }
            Ok(())
        })
        .await
    }

    /// Records a page's decisions that send nothing, in one transaction.
    pub async fn record_quiet(
        &self,
        quiet: QuietDecisions,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            skip_steps(conn, &quiet.step_skips, now)?;
            hold_out(conn, &quiet.held, now)?;
            record_decisions(conn, &quiet.decisions, now)
        })
        .await
    }

    /// Hands every reminder decided (then each buyer-event's latest other decision) to `each`,
    /// streaming in one read; returns `state` as `each` left it.
    pub async fn each_reminder<S: Send + 'static>(
        &self,
        mut state: S,
        mut each: impl FnMut(&mut S, ReminderRecord) -> anyhow::Result<()> + Send + 'static,
    ) -> Result<S, StoreError> {
        self.read(move |conn| {
            for_each_reminder(conn, |r| each(&mut state, r))?;
            Ok(state)
        })
        .await
    }

    /// Records the start of a pass, after undoing what passes at later times decided without
    /// sending (see [`undo_later_decisions`]); returns its id and how many buyer-events were
    /// opened again.
    pub async fn start_pass(&self, pass_time: DateTime<Utc>) -> Result<(i64, usize), StoreError> {
        self.write(move |conn| {
            let reopened = undo_later_decisions(conn, pass_time)?;
            let id = conn.query_row(
                "INSERT INTO passes (started_at, pass_time) VALUES (?1, ?2) RETURNING id",
                params![timestamp(Utc::now()), timestamp(pass_time)],
                |r| r.get(0),
            )?;
            Ok((id, reopened))
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
                    skipped = ?6, failed = ?7, error = ?8, interrupted = ?9 WHERE id = ?1",
                params![
                    id,
                    timestamp(Utc::now()),
                    counts.considered as i64,
                    counts.sent as i64,
                    counts.deferred as i64,
                    counts.skipped as i64,
                    counts.failed as i64,
                    error,
                    counts.interrupted as i64,
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// The latest pass, if any.
    pub async fn last_pass(&self) -> Result<Option<PassRecord>, StoreError> {
        self.read(|conn| last_pass_where(conn, "1")).await
    }

    /// The latest pass that finished (successfully or not), if any: whether reminders go out is
    /// measured from its end, not from a start that may never finish.
    pub async fn last_finished_pass(&self) -> Result<Option<PassRecord>, StoreError> {
        self.read(|conn| last_pass_where(conn, "finished_at IS NOT NULL"))
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
    /// sent, claimed, skipped, failed, interrupted, deferred, done.
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
fn for_each_reminder(
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

/// The latest pass matching `filter` (a constant SQL condition).
fn last_pass_where(conn: &Connection, filter: &str) -> anyhow::Result<Option<PassRecord>> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT id, started_at, finished_at, pass_time, considered, sent, deferred,
                        skipped, failed, error, interrupted
                 FROM passes WHERE {filter} ORDER BY id DESC LIMIT 1"
            ),
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
                        interrupted: r.get::<_, i64>(10)? as u64,
                    },
                    error: r.get(9)?,
                })
            },
        )
        .optional()?)
}

/// The `meta` key holding the latest time a pass decided for.
const LATEST_PASS_TIME: &str = "latest_pass_time";

/// A skip or a deferral decided by a pass at time T binds only passes at T or later: a pass at
/// an earlier time (`run-once --now` looked ahead, or the clock jumped forward and came back)
/// decides afresh. Opens again every buyer-event a later pass decided (sends stay sent: the
/// planner sees them in the history), and forgets the steps it skipped without sending. Costs
/// one `meta` read unless some pass ever decided for a later time.
fn undo_later_decisions(conn: &Connection, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let at = timestamp(now);
    let latest: Option<String> = match conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [LATEST_PASS_TIME],
            |r| r.get(0),
        )
        .optional()?
    {
        Some(latest) => Some(latest),
        // Before the key existed: the passes recorded say (read once).
        None => conn.query_row("SELECT max(pass_time) FROM passes", [], |r| r.get(0))?,
    };
    let mut reopened = 0;
    if latest.as_deref().is_some_and(|l| l > at.as_str()) {
        // Steps skipped without an email by a later pass (sold out, held out); skips that came
        // with a send (same buyer-event, same time) stay with it.
        conn.execute(
            "DELETE FROM reminders AS r WHERE r.status = 'skipped' AND r.decided_at > ?1
               AND NOT EXISTS (SELECT 1 FROM reminders o
                               WHERE o.email_key = r.email_key AND o.event_id = r.event_id
                                 AND o.decided_at = r.decided_at AND o.status <> 'skipped')",
            [&at],
        )?;
        conn.execute(
            "DELETE FROM experiment WHERE held_out = 1 AND decided_at > ?1",
            [&at],
        )?;
        reopened = conn.execute(
            "UPDATE buyer_events SET next_check_at = ?1
             WHERE last_pass_at > ?1 AND state <> 'checkout_completed' AND anonymised_at IS NULL",
            [&at],
        )?;
    }
    // Undone, or none later: nothing later than this pass's time is left to undo.
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![LATEST_PASS_TIME, at],
    )?;
    Ok(reopened)
}
