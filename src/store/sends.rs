//! A claimed step's way out: the claims still to send, the last check before an email leaves, the
//! durable mark that its SMTP transaction is starting, and recording how it ended (sent, to
//! retry, refused, skipped; or interrupted, when a crash caught it mid-transaction).

use chrono::{DateTime, NaiveDateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::claims::is_suppressed;
use super::privacy::SuppressionSource;
use super::{Store, StoreError, parse_timestamp, timestamp};
use crate::domain::{OrderState, Outcome, SEND_INTERRUPTED};

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
fn finish_claim(
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
            conn.prepare_cached(
                "UPDATE reminders SET status = 'sent', sent_at = ?4, attempts = attempts + 1,
                    retry_at = NULL, reason = NULL, sent_local = ?5, send_rule = ?6,
                    send_started_at = NULL
                 WHERE email_key = ?1 AND event_id = ?2 AND step = ?3",
            )?
            .execute(params![email_key, event_id, step, at, local, rule])?;
            (Outcome::Sent, format!("{step} sent"))
        }
        ClaimResult::Retry { retry_at, error } => {
            conn.prepare_cached(
                "UPDATE reminders SET attempts = attempts + 1, retry_at = ?4, last_error = ?5,
                    send_started_at = NULL
                 WHERE email_key = ?1 AND event_id = ?2 AND step = ?3",
            )?
            .execute(params![
                email_key,
                event_id,
                step,
                timestamp(*retry_at),
                error
            ])?;
            (Outcome::Failed, format!("{step} will be retried: {error}"))
        }
        ClaimResult::Failed { error, suppress } => {
            conn.prepare_cached(
                "UPDATE reminders SET status = 'failed', attempts = attempts + 1, retry_at = NULL,
                    reason = ?4, last_error = ?4, send_started_at = NULL
                 WHERE email_key = ?1 AND event_id = ?2 AND step = ?3",
            )?
            .execute(params![email_key, event_id, step, error])?;
            if *suppress {
                conn.prepare_cached(
                    "INSERT INTO suppressions (email_key, added_at, source, reason)
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                )?
                .execute(params![
                    email_key,
                    at,
                    SuppressionSource::Bounce,
                    error
                ])?;
            }
            (Outcome::Failed, format!("{step} refused: {error}"))
        }
        ClaimResult::Skipped { reason } => {
            conn.prepare_cached(
                "UPDATE reminders SET status = 'skipped', retry_at = NULL, reason = ?4,
                    send_started_at = NULL
                 WHERE email_key = ?1 AND event_id = ?2 AND step = ?3",
            )?
            .execute(params![email_key, event_id, step, reason])?;
            (Outcome::Skipped, format!("{step} not sent: {reason}"))
        }
    };
    // A later pass plans the remaining steps; a completed buyer-event stays closed.
    conn.prepare_cached(
        "UPDATE buyer_events SET last_decision = ?3, last_reason = ?4, last_pass_at = ?5,
            next_check_at = CASE WHEN state = 'checkout_completed' THEN NULL ELSE ?6 END
         WHERE email_key = ?1 AND event_id = ?2",
    )?
    .execute(params![
        email_key,
        event_id,
        decision,
        reason,
        at,
        timestamp(next_check)
    ])?;
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

/// Claims whose time to (re)send has come: those whose SMTP transaction never began (claimed,
/// then the process stopped or died before sending) or ended in a temporary failure.
fn open_claims(conn: &Connection, now: DateTime<Utc>) -> anyhow::Result<Vec<OpenClaim>> {
    claims_where(
        conn,
        "status = 'claimed' AND send_started_at IS NULL AND (retry_at IS NULL OR retry_at <= ?1)",
        [timestamp(now)],
    )
}

/// Claims whose SMTP transaction began and never ended: at the start of a pass (one at a time,
/// across processes), only a crash, or a pass that failed mid-send, leaves them.
fn started_claims(conn: &Connection) -> anyhow::Result<Vec<OpenClaim>> {
    claims_where(
        conn,
        "status = 'claimed' AND send_started_at IS NOT NULL",
        [],
    )
}

/// Marks every claim whose SMTP transaction began and never ended as interrupted (it may or may
/// not have arrived: it is never sent again), on the step and on its buyer-event; returns them.
fn interrupt_started(conn: &Connection, now: DateTime<Utc>) -> anyhow::Result<Vec<OpenClaim>> {
    let claims = started_claims(conn)?;
    let at = timestamp(now);
    for c in &claims {
        conn.prepare_cached(
            "UPDATE reminders SET status = 'interrupted', reason = ?4, retry_at = NULL
             WHERE email_key = ?1 AND event_id = ?2 AND step = ?3 AND status = 'claimed'",
        )?
        .execute(params![c.email_key, c.event_id, c.step, SEND_INTERRUPTED])?;
        conn.prepare_cached(
            "UPDATE buyer_events SET last_decision = ?3, last_reason = ?4, last_pass_at = ?5
             WHERE email_key = ?1 AND event_id = ?2",
        )?
        .execute(params![
            c.email_key,
            c.event_id,
            Outcome::Interrupted,
            format!("{} {SEND_INTERRUPTED}", c.step),
            at
        ])?;
    }
    Ok(claims)
}

/// Marks, durably, that a claim's SMTP transaction is about to begin.
fn start_send(
    conn: &Connection,
    email_key: &str,
    event_id: &str,
    step: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let marked = conn
        .prepare_cached(
            "UPDATE reminders SET send_started_at = ?4
             WHERE email_key = ?1 AND event_id = ?2 AND step = ?3 AND status = 'claimed'",
        )?
        .execute(params![email_key, event_id, step, timestamp(now)])?;
    anyhow::ensure!(
        marked == 1,
        "the claim of {step} is no longer open (forgotten meanwhile?)"
    );
    Ok(())
}

/// The claims that meet `condition` (SQL over `reminders`, with `params`), oldest first.
fn claims_where(
    conn: &Connection,
    condition: &str,
    params: impl rusqlite::Params,
) -> anyhow::Result<Vec<OpenClaim>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT email_key, event_id, step, coalesce(reference, ''), coalesce(email, ''), message_id,
                attempts, decided_at, template
         FROM reminders WHERE {condition}
         ORDER BY decided_at"
    ))?;
    let rows = stmt
        .query_map(params, |r| {
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
fn send_check(
    conn: &Connection,
    email_key: &str,
    event_id: &str,
    reference: &str,
) -> anyhow::Result<Option<SendCheck>> {
    let row: Option<(OrderState, String)> = conn
        .prepare_cached(
            "SELECT state, changed_at FROM buyer_events WHERE email_key = ?1 AND event_id = ?2",
        )?
        .query_row(params![email_key, event_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((state, changed_at)) = row else {
        return Ok(None);
    };
    let event_date: Option<String> = conn
        .prepare_cached("SELECT event_date FROM orders WHERE reference = ?1")?
        .query_row([reference], |r| r.get(0))
        .optional()?
        .flatten();
    let sent: u32 = conn.prepare_cached("SELECT count(*) FROM reminders WHERE email_key = ?1 AND event_id = ?2 AND status = 'sent'")?
        .query_row(        params![email_key, event_id],
        |r| r.get(0),
    )?;
    Ok(Some(SendCheck {
        state,
        suppressed: is_suppressed(conn, email_key)?,
        changed_at: parse_timestamp(&changed_at)?,
        event_date: event_date.as_deref().and_then(super::parse_event_date),
        sent,
    }))
}

impl Store {
    /// Claims whose time to (re)send has come.
    pub async fn open_claims(&self, now: DateTime<Utc>) -> Result<Vec<OpenClaim>, StoreError> {
        self.read(move |conn| open_claims(conn, now)).await
    }

    /// Claims whose SMTP transaction began and never ended (what [`Store::interrupt_started`]
    /// would mark), for a dry run to report.
    pub async fn started_claims(&self) -> Result<Vec<OpenClaim>, StoreError> {
        self.read(started_claims).await
    }

    /// Marks every claim whose SMTP transaction began and never ended (a crash caught it) as
    /// interrupted, never to be sent again; returns them. Called at the start of a pass.
    pub async fn interrupt_started(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<OpenClaim>, StoreError> {
        self.write(move |conn| interrupt_started(conn, now)).await
    }

    /// Marks, durably (committed before it returns), that a claim's SMTP transaction is about to
    /// begin: from then on a crash leaves it interrupted, never sent again.
    pub async fn start_send(
        &self,
        claim: &OpenClaim,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (key, event, step) = (
            claim.email_key.clone(),
            claim.event_id.clone(),
            claim.step.clone(),
        );
        self.write(move |conn| start_send(conn, &key, &event, &step, now))
            .await
    }

    /// The buyer-event of a claim as it is right now (`None`: it no longer exists).
    pub async fn send_check(&self, claim: &OpenClaim) -> Result<Option<SendCheck>, StoreError> {
        let (key, event, reference) = (
            claim.email_key.clone(),
            claim.event_id.clone(),
            claim.reference.clone(),
        );
        self.read(move |conn| send_check(conn, &key, &event, &reference))
            .await
    }

    /// Records how a claimed step ended, on the step and on its buyer-event (looked at again
    /// from `next_check`).
    pub async fn finish_claim(
        &self,
        claim: OpenClaim,
        result: ClaimResult,
        now: DateTime<Utc>,
        next_check: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            finish_claim(
                conn,
                &claim.email_key,
                &claim.event_id,
                &claim.step,
                &result,
                now,
                next_check,
            )
        })
        .await
    }
}
