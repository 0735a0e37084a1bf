//! Alerts to the organiser as recorded (one row per spell of a condition), settled in one
//! transaction so that two processes or a restart never tell the same thing twice; and the facts
//! the alert checks read that no other part keeps (the transport's failing spell, events on sale).

use chrono::{DateTime, TimeDelta, Utc};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Store, StoreError, parse_timestamp, timestamp};

/// What changed about one condition, for the organiser to be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    /// It began.
    Raised,
    /// It still lasts, a day (or more) after the organiser was last told.
    Reminder,
    /// It ended.
    Resolved,
}

/// One condition's change, decided and recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertChange {
    /// The condition's key.
    pub condition: String,
    /// What happened to it.
    pub transition: Transition,
    /// When the spell began.
    pub started_at: DateTime<Utc>,
    /// The sentence to tell (for a resolved one: the sentence told while it lasted).
    pub summary: String,
}

/// One spell of a condition as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertRecord {
    /// The condition's key.
    pub condition: String,
    /// When it began.
    pub started_at: String,
    /// When it ended (`None` while it lasts).
    pub resolved_at: Option<String>,
    /// The latest sentence told.
    pub summary: String,
}

/// A condition as judged now: `Some(sentence)` while it holds.
pub type Judged = (String, Option<String>);

/// The meta key of the weekly report last sent.
const WEEKLY_KEY: &str = "weekly_report_sent_for";

impl Store {
    /// Records what the checks judged at `now` and returns what the organiser must be told: a
    /// condition that holds and has no open spell begins one (raised); an open spell last told
    /// `remind_after` ago or more is told again (reminder); an open spell whose condition no longer
    /// holds ends (resolved). Conditions not in `judged` are left as they are. One transaction:
    /// whichever process commits first tells, the other finds it done.
    pub async fn settle_alerts(
        &self,
        judged: Vec<Judged>,
        now: DateTime<Utc>,
        remind_after: TimeDelta,
    ) -> Result<Vec<AlertChange>, StoreError> {
        self.write(move |conn| {
            let mut changes = Vec::new();
            for (condition, holds) in judged {
                let open: Option<(i64, String, String, String)> = conn
                    .query_row(
                        "SELECT id, started_at, told_at, summary FROM alerts
                         WHERE condition = ?1 AND resolved_at IS NULL",
                        [&condition],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )
                    .optional()?;
                match (open, holds) {
                    (None, None) => {}
                    (None, Some(summary)) => {
                        conn.execute(
                            "INSERT INTO alerts (condition, started_at, told_at, summary)
                             VALUES (?1, ?2, ?2, ?3)",
                            params![condition, timestamp(now), summary],
                        )?;
                        changes.push(AlertChange {
                            condition,
                            transition: Transition::Raised,
                            started_at: now,
                            summary,
                        });
                    }
                    (Some((id, started, told, _)), Some(summary)) => {
                        if parse_timestamp(&told)? + remind_after <= now {
                            conn.execute(
                                "UPDATE alerts SET told_at = ?2, summary = ?3,
                                    reminders = reminders + 1 WHERE id = ?1",
                                params![id, timestamp(now), summary],
                            )?;
                            changes.push(AlertChange {
                                condition,
                                transition: Transition::Reminder,
                                started_at: parse_timestamp(&started)?,
                                summary,
                            });
                        }
                    }
                    (Some((id, started, _, summary)), None) => {
                        conn.execute(
                            "UPDATE alerts SET resolved_at = ?2 WHERE id = ?1",
                            params![id, timestamp(now.max(parse_timestamp(&started)?))],
                        )?;
                        changes.push(AlertChange {
                            condition,
                            transition: Transition::Resolved,
                            started_at: parse_timestamp(&started)?,
                            summary,
                        });
                    }
                }
            }
            Ok(changes)
        })
        .await
    }

    /// The spells that last now, oldest first.
    pub async fn open_alerts(&self) -> Result<Vec<AlertRecord>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT condition, started_at, resolved_at, summary FROM alerts
                 WHERE resolved_at IS NULL ORDER BY started_at",
            )?;
            let rows = stmt.query_map([], record)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// The spells that lasted at any moment in `[from, to)`, oldest first.
    pub async fn alerts_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT condition, started_at, resolved_at, summary FROM alerts
                 WHERE started_at < ?2 AND (resolved_at IS NULL OR resolved_at >= ?1)
                 ORDER BY started_at",
            )?;
            let rows = stmt.query_map(params![timestamp(from), timestamp(to)], record)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Since when every send has been failing: the oldest claim that failed and waits to be
    /// retried, when no email has been sent since it was made (`None`: the transport works, or
    /// the failures are one recipient's).
    pub async fn transport_failing_since(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.read(|conn| {
            let oldest: Option<String> = conn.query_row(
                "SELECT min(decided_at) FROM reminders WHERE status = 'claimed' AND attempts > 0",
                [],
                |r| r.get(0),
            )?;
            let Some(oldest) = oldest else {
                return Ok(None);
            };
            let sent_since: bool = conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM reminders WHERE sent_at >= ?1)",
                [&oldest],
                |r| r.get(0),
            )?;
            Ok(if sent_since {
                None
            } else {
                Some(parse_timestamp(&oldest)?)
            })
        })
        .await
    }

    /// Buyer-events whose checkout changed after `since` and whose event starts after `local_now`
    /// (the event's local wall-clock time, as stored): events still on sale that hooks were coming for.
    pub async fn upcoming_with_checkouts(
        &self,
        since: DateTime<Utc>,
        local_now: chrono::NaiveDateTime,
    ) -> Result<i64, StoreError> {
        self.read(move |conn| {
            Ok(conn.query_row(
                "SELECT count(*) FROM buyer_events WHERE changed_at > ?1 AND event_date > ?2",
                params![
                    timestamp(since),
                    local_now.format("%Y-%m-%d %H:%M:%S").to_string()
                ],
                |r| r.get(0),
            )?)
        })
        .await
    }

    /// Claims the weekly report due at `due` (a moment of the weekly schedule): true for the first
    /// process to ask, false once it was claimed (here or by another process).
    pub async fn claim_weekly_report(&self, due: DateTime<Utc>) -> Result<bool, StoreError> {
        self.write(move |conn| {
            let last: Option<String> = conn
                .query_row("SELECT value FROM meta WHERE key = ?1", [WEEKLY_KEY], |r| {
                    r.get(0)
                })
                .optional()?;
            if last
                .and_then(|t| parse_timestamp(&t).ok())
                .is_some_and(|last| last >= due)
            {
                return Ok(false);
            }
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![WEEKLY_KEY, timestamp(due)],
            )?;
            Ok(true)
        })
        .await
    }
}

fn record(r: &rusqlite::Row<'_>) -> rusqlite::Result<AlertRecord> {
    Ok(AlertRecord {
        condition: r.get(0)?,
        started_at: r.get(1)?,
        resolved_at: r.get(2)?,
        summary: r.get(3)?,
    })
}
