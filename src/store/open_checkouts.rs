//! The open checkouts as a whole, whatever their next look is: what a change of the schedule
//! needs (the forecast of what an edited schedule would send, and a look again at every open one
//! once a new schedule is in force).

use chrono::{DateTime, NaiveDateTime, Utc};
use rusqlite::params;

use super::reminders::{DueBuyerEvent, arms_column, parse_arms, parse_history, suppressed_keys};
use super::{Store, StoreError, parse_timestamp, timestamp};
use crate::domain::Candidate;
use crate::experiment::HELD_OUT;

impl Store {
    /// Every buyer-event not paid, not anonymised, changed since `changed_since`, with its history
    /// and group, at most `limit` of them (the latest changed first); and whether there were more.
    pub async fn open_buyer_events(
        &self,
        changed_since: DateTime<Utc>,
        limit: usize,
    ) -> Result<(Vec<DueBuyerEvent>, bool), StoreError> {
        self.read(move |conn| {
            let suppressed = suppressed_keys(conn)?;
            let mut stmt = conn.prepare(concat!(
                "SELECT be.email_key, be.event_id, be.state, be.changed_at, be.reference,
                        coalesce(be.next_check_at, ''), be.email, be.event_date,
                        (SELECT group_concat(r.step || char(31)
                                 || CASE WHEN r.status = 'skipped' AND r.reason = ?3 THEN 'held_out' ELSE r.status END
                                 || char(31) || r.decided_at || char(31) || coalesce(r.sent_at, ''), char(30))
                         FROM reminders r WHERE r.email_key = be.email_key AND r.event_id = be.event_id),
                        (SELECT x.held_out FROM experiment x WHERE x.email_key = be.email_key AND x.event_id = be.event_id),
                        ", arms_column!(), "
                 FROM buyer_events be
                 WHERE be.state <> 'checkout_completed' AND be.anonymised_at IS NULL AND be.changed_at >= ?1
                 ORDER BY be.changed_at DESC, be.email_key, be.event_id
                 LIMIT ?2"
            ))?;
            let mut rows = stmt.query(params![timestamp(changed_since), limit as i64 + 1, HELD_OUT])?;
            let mut open = Vec::new();
            while let Some(row) = rows.next()? {
                let email_key: String = row.get(0)?;
                let changed_at: String = row.get(3)?;
                let event_date: Option<String> = row.get(7)?;
                let history: Option<String> = row.get(8)?;
                open.push(DueBuyerEvent {
                    candidate: Candidate {
                        suppressed: suppressed.contains(&email_key),
                        email_key,
                        event_id: row.get(1)?,
                        state: row.get(2)?,
                        changed_at: parse_timestamp(&changed_at)?,
                        email: row.get(6)?,
                        event_date: event_date.as_deref().and_then(|d| {
                            NaiveDateTime::parse_from_str(d, "%Y-%m-%d %H:%M:%S").ok()
                        }),
                        history: parse_history(history.as_deref())?,
                        sold_out: false,
                        held_out: false,
                        arms: parse_arms(row.get_ref(10)?.as_str_or_null()?),
                    },
                    reference: row.get(4)?,
                    next_check_at: row.get(5)?,
                    held_out: row.get(9)?,
                });
            }
            let more = open.len() > limit;
            open.truncate(limit);
            Ok((open, more))
        })
        .await
    }

    /// Has the next pass look at every open buyer-event again: after the steps or the schedule
    /// changed, one deferred (or finished) under the old rules may be due under the new ones.
    /// Those unchanged since `changed_since` (given up on by the new rules) are left alone.
    /// Returns how many.
    pub async fn look_again_at_open(
        &self,
        now: DateTime<Utc>,
        changed_since: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        self.write(move |conn| {
            Ok(conn.execute(
                "UPDATE buyer_events SET next_check_at = ?1
                 WHERE state <> 'checkout_completed' AND anonymised_at IS NULL AND changed_at >= ?2
                   AND (next_check_at IS NULL OR next_check_at > ?1)",
                params![timestamp(now), timestamp(changed_since)],
            )?)
        })
        .await
    }
}
