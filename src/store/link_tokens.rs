//! The link tokens put into emails: issued (one per buyer-event, step and purpose, so a retried
//! send carries the same links), resolved for one route, and the check that keeps links in the
//! old signed format working only while their reminder is stored and not too old.

use chrono::{DateTime, TimeDelta, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, StoreError, parse_timestamp, timestamp};
use crate::links::{LinkTarget, Purpose};

/// An event link works this long after the event's start (or after sending, with no date).
pub const EVENT_LINK_LIFE: TimeDelta = TimeDelta::days(30);
/// An unsubscribe link works at least this long after it was sent (mailbox providers expect
/// unsubscribe links in old emails to keep working), and at least as long as the event link.
pub const UNSUBSCRIBE_LINK_LIFE: TimeDelta = TimeDelta::days(60);
/// A link in the old signed format works this long after its reminder was sent.
pub const LEGACY_LINK_LIFE: TimeDelta = TimeDelta::days(90);

/// The two tokens of one email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedTokens {
    /// For `GET /r/{token}`.
    pub event: String,
    /// For `/unsubscribe/{token}`.
    pub unsubscribe: String,
}

impl Store {
    /// The tokens of an email about `target` sent at `now`, made on first use. `event_start` sets
    /// how long they work (see [`EVENT_LINK_LIFE`], [`UNSUBSCRIBE_LINK_LIFE`]); issuing again
    /// never shortens that.
    pub async fn issue_link_tokens(
        &self,
        target: LinkTarget,
        event_start: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<IssuedTokens, StoreError> {
        let event_expiry = event_start.unwrap_or(now) + EVENT_LINK_LIFE;
        let unsubscribe_expiry = event_expiry.max(now + UNSUBSCRIBE_LINK_LIFE);
        self.write(move |conn| {
            Ok(IssuedTokens {
                event: issue(conn, &target, Purpose::Event, event_expiry, now)?,
                unsubscribe: issue(conn, &target, Purpose::Unsubscribe, unsubscribe_expiry, now)?,
            })
        })
        .await
    }

    /// What a token names, when it was made for `purpose` and still works at `now`.
    pub async fn resolve_link_token(
        &self,
        token: &str,
        purpose: Purpose,
        now: DateTime<Utc>,
    ) -> Result<Option<LinkTarget>, StoreError> {
        let token = token.to_string();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT email_key, event_id, step FROM link_tokens
                     WHERE token = ?1 AND purpose = ?2 AND expires_at > ?3",
                )?
                .query_row(params![token, purpose.as_str(), timestamp(now)], |r| {
                    Ok(LinkTarget {
                        email_key: r.get(0)?,
                        event_id: r.get(1)?,
                        step: r.get(2)?,
                    })
                })
                .optional()?)
        })
        .await
    }

    /// Whether a genuine old-format token still works: its reminder was sent less than
    /// [`LEGACY_LINK_LIFE`] ago and is still stored under the address (forget deletes it,
    /// retention renames it, so either ends the link).
    pub async fn legacy_link_works(
        &self,
        target: LinkTarget,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.read(move |conn| {
            let sent: Option<Option<String>> = conn
                .prepare_cached(
                    "SELECT sent_at FROM reminders
                     WHERE email_key = ?1 AND event_id = ?2 AND step = ?3 AND status = 'sent'",
                )?
                .query_row(
                    params![target.email_key, target.event_id, target.step],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(Some(sent)) = sent else {
                return Ok(false);
            };
            Ok(now < parse_timestamp(&sent)? + LEGACY_LINK_LIFE)
        })
        .await
    }
}

fn issue(
    conn: &Connection,
    target: &LinkTarget,
    purpose: Purpose,
    expires: DateTime<Utc>,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    let existing: Option<(String, String)> = conn
        .prepare_cached(
            "SELECT token, expires_at FROM link_tokens
             WHERE email_key = ?1 AND event_id = ?2 AND step = ?3 AND purpose = ?4",
        )?
        .query_row(
            params![
                target.email_key,
                target.event_id,
                target.step,
                purpose.as_str()
            ],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let expires = timestamp(expires);
    if let Some((token, old)) = existing {
        if expires > old {
            conn.prepare_cached("UPDATE link_tokens SET expires_at = ?2 WHERE token = ?1")?
                .execute(params![token, expires])?;
        }
        return Ok(token);
    }
    let token = crate::links::new_token();
    conn.prepare_cached(
        "INSERT INTO link_tokens (token, purpose, email_key, event_id, step, issued_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        token,
        purpose.as_str(),
        target.email_key,
        target.event_id,
        target.step,
        timestamp(now),
        expires
    ])?;
    Ok(token)
}
