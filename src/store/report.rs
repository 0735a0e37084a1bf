//! The weekly report's figures for a span: reminders sent, the purchases after them, the control
//! group's comparison for the buyer-events that fell due in the span, what came back from the
//! email provider, and the hooks with problems. Counts only: no buyer's address or name.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, params};
use serde::Serialize;

use super::stats::{Experiment, Money, StatsRules, experiment, recovered};
use super::{Store, StoreError, parse_timestamp, timestamp};

/// One local day of the span.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReportDay {
    /// The local date.
    pub date: NaiveDate,
    /// Reminders sent that day.
    pub sent: i64,
    /// Purchases after a reminder completed that day.
    pub recovered: i64,
}

/// The figures of `[from, to)`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReportFigures {
    /// Reminders sent.
    pub sent: i64,
    /// Purchases completed in the span within the attribution window of a reminder, and what they
    /// paid (the attributed revenue).
    pub recovered: Money,
    /// The control group against the emailed group, for buyer-events whose first step fell due in
    /// the span and purchases up to its end (`None` without a control group).
    pub experiment: Option<Experiment>,
    /// Buyers who unsubscribed (by the link or the one-click header).
    pub unsubscribes: i64,
    /// Complaints (marked as spam) the email provider reported about a reminder sent (an event
    /// that names no message sent is kept but counts nowhere).
    pub complaints: i64,
    /// Hard bounces the email provider reported.
    pub hard_bounces: i64,
    /// Soft bounces the email provider reported.
    pub soft_bounces: i64,
    /// Hooks received.
    pub hooks: i64,
    /// Hooks with a problem (refused, or a field that could not be read).
    pub problem_hooks: i64,
    /// Each local day, oldest first.
    pub daily: Vec<ReportDay>,
}

fn count(conn: &Connection, sql: &str, from: &str, to: &str) -> anyhow::Result<i64> {
    Ok(conn.query_row(sql, params![from, to], |r| r.get(0))?)
}

fn figures(
    conn: &Connection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    rules: &StatsRules,
) -> anyhow::Result<ReportFigures> {
    let window =
        chrono::TimeDelta::from_std(rules.attribution_window).unwrap_or(chrono::TimeDelta::MAX);
    let (f, t) = (timestamp(from), timestamp(to));
    let local_date = |at: DateTime<Utc>| at.with_timezone(&rules.timezone).date_naive();
    let first = local_date(from);
    let days = (local_date(to) - first).num_days().max(0) + 1;
    let mut daily: Vec<ReportDay> = (0..days)
        .filter_map(|n| first.checked_add_days(chrono::Days::new(n as u64)))
        .map(|date| ReportDay {
            date,
            sent: 0,
            recovered: 0,
        })
        .collect();
    let day_of = |daily: &mut Vec<ReportDay>, at: DateTime<Utc>| -> Option<usize> {
        let date = local_date(at);
        daily.iter().position(|d| d.date == date)
    };

    let mut sent = 0;
    let mut stmt = conn.prepare_cached(
        "SELECT sent_at FROM reminders WHERE sent_at >= ?1 AND sent_at < ?2 AND status = 'sent'",
    )?;
    for at in stmt.query_map(params![f, t], |r| r.get::<_, String>(0))? {
        sent += 1;
        if let Some(i) = day_of(&mut daily, parse_timestamp(&at?)?) {
            daily[i].sent += 1;
        }
    }
    let mut money = Money::default();
    for r in recovered(conn, window)? {
        if r.completed_at >= from && r.completed_at < to {
            money.purchases += 1;
            money.revenue_cents += r.revenue_cents;
            if let Some(i) = day_of(&mut daily, r.completed_at) {
                daily[i].recovered += 1;
            }
        }
    }
    // The comparison only for buyer-events that fell due in the span, and only with what was
    // known at its end (a report for an earlier week does not count later purchases).
    let members: Vec<_> = super::experiment::members(conn)?
        .into_iter()
        .filter(|m| m.decided_at >= from && m.decided_at < to)
        .map(|mut m| {
            m.completed_at = m.completed_at.filter(|done| *done < to);
            m
        })
        .collect();
    let kind = |k: &str| {
        count(
            conn,
            &format!(
                "SELECT count(*) FROM email_events WHERE kind = '{k}' AND matched = 1 AND received_at >= ?1 AND received_at < ?2"
            ),
            &f,
            &t,
        )
    };
    Ok(ReportFigures {
        sent,
        recovered: money,
        experiment: experiment(&members, rules.holdout, window, to),
        unsubscribes: count(
            conn,
            "SELECT count(*) FROM suppressions WHERE source = 'unsubscribe' AND added_at >= ?1 AND added_at < ?2",
            &f,
            &t,
        )?,
        complaints: kind("complaint")?,
        hard_bounces: kind("hard_bounce")?,
        soft_bounces: kind("soft_bounce")?,
        hooks: count(
            conn,
            "SELECT count(*) FROM deliveries WHERE received_at >= ?1 AND received_at < ?2",
            &f,
            &t,
        )?,
        problem_hooks: count(
            conn,
            "SELECT count(*) FROM deliveries WHERE error IS NOT NULL AND received_at >= ?1 AND received_at < ?2",
            &f,
            &t,
        )?,
        daily,
    })
}

impl Store {
    /// The weekly report's figures for `[from, to)`.
    pub async fn report_figures(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        rules: StatsRules,
    ) -> Result<ReportFigures, StoreError> {
        self.read(move |conn| figures(conn, from, to, &rules)).await
    }
}
