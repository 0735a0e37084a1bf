//! The control group's figures: each buyer-event of the experiment with its group, when its
//! first step fell due and whether (and when, for how much) it bought; and each step and variant
//! sent with its people's clicks and purchases. The statistics are computed in [`crate::lift`].

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::parse_timestamp;

/// A buyer-event of the experiment (assigned while the holdout share was above 0 %).
#[derive(Debug, Clone)]
pub struct Member {
    /// In the control group.
    pub held_out: bool,
    /// When its first step was sent or would have been.
    pub decided_at: DateTime<Utc>,
    /// When it was paid, if it was.
    pub completed_at: Option<DateTime<Utc>>,
    /// What its paid orders came to, in cents.
    pub revenue_cents: i64,
}

/// Every buyer-event of the experiment.
pub(super) fn members(conn: &Connection) -> anyhow::Result<Vec<Member>> {
    let mut stmt = conn.prepare(
        "SELECT x.held_out, x.decided_at, be.completed_at,
                (SELECT coalesce(sum(o.amount_cents), 0) FROM orders o
                  WHERE o.email_key = x.email_key AND o.event_id = x.event_id
                    AND o.state = 'checkout_completed')
         FROM experiment x
         JOIN buyer_events be ON be.email_key = x.email_key AND be.event_id = x.event_id
         WHERE x.share > 0",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, bool>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(held_out, decided, completed, revenue_cents)| {
            Ok(Member {
                held_out,
                decided_at: parse_timestamp(&decided)?,
                completed_at: completed.as_deref().map(parse_timestamp).transpose()?,
                revenue_cents,
            })
        })
        .collect()
}

/// One step sent to one buyer-event, with what followed.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The step.
    pub step: String,
    /// The template (variant) it used; `None` before schema 10.
    pub template: Option<String>,
    /// When it was sent.
    pub sent_at: DateTime<Utc>,
    /// Whether a person (not a link scanner) followed its event link.
    pub clicked: bool,
    /// When the buyer-event was paid, if it was.
    pub completed_at: Option<DateTime<Utc>>,
    /// What its paid orders came to, in cents.
    pub revenue_cents: i64,
}

/// Every step sent.
pub(super) fn sent(conn: &Connection) -> anyhow::Result<Vec<Sent>> {
    let mut stmt = conn.prepare(
        "SELECT r.step, r.template, r.sent_at,
                EXISTS (SELECT 1 FROM clicks c
                         WHERE c.email_key = r.email_key AND c.event_id = r.event_id AND c.step = r.step
                           AND c.link = 'event' AND c.scanner IS NULL),
                be.completed_at,
                (SELECT coalesce(sum(o.amount_cents), 0) FROM orders o
                  WHERE o.email_key = r.email_key AND o.event_id = r.event_id
                    AND o.state = 'checkout_completed')
         FROM reminders r
         LEFT JOIN buyer_events be ON be.email_key = r.email_key AND be.event_id = r.event_id
         WHERE r.status = 'sent' AND r.sent_at IS NOT NULL",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(
            |(step, template, sent_at, clicked, completed, revenue_cents)| {
                Ok(Sent {
                    step,
                    template,
                    sent_at: parse_timestamp(&sent_at)?,
                    clicked,
                    completed_at: completed.as_deref().map(parse_timestamp).transpose()?,
                    revenue_cents,
                })
            },
        )
        .collect()
}
