//! Fetches of an email's links (its event link and its unsubscribe page), each recorded with
//! whether it looks like a link scanner's (see [`crate::scanner`]). A click counts once, for a
//! reminder that was sent, and only when a person made it.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, parse_timestamp, timestamp};
use crate::scanner::{self, Link, Reason, Request, Timing};

/// A fetch to record.
#[derive(Debug, Clone)]
pub struct Fetch {
    /// The buyer.
    pub email_key: String,
    /// The event.
    pub event_id: String,
    /// The step whose email held the link.
    pub step: String,
    /// Which link.
    pub link: Link,
    /// What the request said about itself.
    pub request: Request,
    /// When.
    pub at: DateTime<Utc>,
    /// The scanner rules' timing.
    pub timing: Timing,
}

/// What became of a fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetched {
    /// A person's first click on the event link of a sent reminder: counted.
    Counted,
    /// A person followed the event link again: not counted again (nor kept).
    Repeat,
    /// A person opened the unsubscribe page (kept, to recognise scanners; never a click).
    Page,
    /// A link scanner: kept, marked, never counted.
    Scanner(Reason),
    /// No sent reminder is stored for the link (a test email, or forgotten): not kept.
    NoReminder,
}

impl Store {
    /// Records a fetch of one of an email's links. When it shows that another link of the same
    /// email was fetched within seconds, every fetch of that burst is marked as a scanner's (so
    /// a click counted a moment ago stops counting).
    pub async fn record_fetch(&self, f: Fetch) -> Result<Fetched, StoreError> {
        self.write(move |conn| {
            // An email a crash interrupted mid-send may have arrived: a fetch of its link says
            // it did.
            let sent_at: Option<Option<String>> = conn
                .prepare_cached(
                    "SELECT sent_at FROM reminders
                     WHERE email_key = ?1 AND event_id = ?2 AND step = ?3
                       AND status IN ('sent', 'interrupted')",
                )?
                .query_row(params![f.email_key, f.event_id, f.step], |r| r.get(0))
                .optional()?;
            let Some(sent_at) = sent_at else {
                return Ok(Fetched::NoReminder);
            };
            let sent_at = sent_at.as_deref().map(parse_timestamp).transpose()?;
            let together = f.timing.together;
            let (from, to) = (timestamp(f.at - together), timestamp(f.at + together));
            let others = conn
                .prepare_cached(
                    "SELECT link, clicked_at FROM clicks
                     WHERE email_key = ?1 AND event_id = ?2 AND step = ?3
                       AND clicked_at BETWEEN ?4 AND ?5",
                )?
                .query_map(params![f.email_key, f.event_id, f.step, from, to], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })?
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .filter_map(|(link, at)| Some((Link::parse(&link)?, parse_timestamp(&at).ok()?)))
                .collect::<Vec<_>>();
            let reason = scanner::classify(f.timing, &f.request, f.link, f.at, sent_at, &others);
            let outcome = match (f.link, reason) {
                (_, Some(reason)) => Fetched::Scanner(reason),
                (Link::Unsubscribe, None) => Fetched::Page,
                (Link::Event, None) => {
                    let counted: bool = conn
                        .prepare_cached(
                            "SELECT EXISTS (SELECT 1 FROM clicks
                             WHERE email_key = ?1 AND event_id = ?2 AND step = ?3
                               AND link = 'event' AND scanner IS NULL)",
                        )?
                        .query_row(params![f.email_key, f.event_id, f.step], |r| r.get(0))?;
                    if counted {
                        return Ok(Fetched::Repeat);
                    }
                    Fetched::Counted
                }
            };
            conn.prepare_cached(
                "INSERT INTO clicks (email_key, event_id, step, clicked_at, link, scanner)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                f.email_key,
                f.event_id,
                f.step,
                timestamp(f.at),
                f.link.as_str(),
                reason.map(Reason::as_str)
            ])?;
            if scanner::together(f.timing, f.link, f.at, &others) {
                conn.prepare_cached(
                    "UPDATE clicks SET scanner = ?6
                     WHERE email_key = ?1 AND event_id = ?2 AND step = ?3
                       AND clicked_at BETWEEN ?4 AND ?5 AND scanner IS NULL",
                )?
                .execute(params![
                    f.email_key,
                    f.event_id,
                    f.step,
                    from,
                    to,
                    Reason::AllLinks.as_str()
                ])?;
            }
            Ok(outcome)
        })
        .await
    }
}
