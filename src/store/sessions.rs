//! Signed-in browsers of `/admin`: one row per session, keyed by the SHA-256 of its random token
//! (the token itself is only in the browser's cookie), with when it began and when it was last
//! used. How long a session may be idle or last is the caller's rule, passed in.

use chrono::{DateTime, TimeDelta, Utc};
use rusqlite::OptionalExtension;

use super::{Store, StoreError, parse_timestamp, timestamp};

/// How long a session lasts: idle, and at most in all.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// A session unused this long has ended.
    pub idle: TimeDelta,
    /// A session this old has ended, however busy.
    pub longest: TimeDelta,
}

/// `last_seen` is written again only once it is this old, so that a page and its assets do not
/// each cost a write.
const TOUCH_AFTER: TimeDelta = TimeDelta::minutes(1);

/// What a session's row says at `now`.
enum Found {
    Missing,
    Ended,
    Live { stale: bool },
}

impl Store {
    /// Keeps a new session (its token's SHA-256) begun at `now`; sessions that have ended by
    /// `now` are removed at the same time.
    pub async fn open_session(
        &self,
        token_sha256: String,
        now: DateTime<Utc>,
        limits: SessionLimits,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.prepare_cached(
                "DELETE FROM admin_sessions WHERE last_seen <= ?1 OR created_at <= ?2",
            )?
            .execute((
                timestamp(now - limits.idle),
                timestamp(now - limits.longest),
            ))?;
            conn.prepare_cached(
                "INSERT INTO admin_sessions (token_sha256, created_at, last_seen)
                 VALUES (?1, ?2, ?2)",
            )?
            .execute((token_sha256, timestamp(now)))?;
            Ok(())
        })
        .await
    }

    /// Whether the session `token_sha256` is live at `now` (then its use is noted); one that has
    /// ended is removed.
    pub async fn use_session(
        &self,
        token_sha256: String,
        now: DateTime<Utc>,
        limits: SessionLimits,
    ) -> Result<bool, StoreError> {
        let key = token_sha256.clone();
        let found = self
            .read(move |conn| {
                let row: Option<(String, String)> = conn
                    .prepare_cached(
                        "SELECT created_at, last_seen FROM admin_sessions WHERE token_sha256 = ?1",
                    )?
                    .query_row([&key], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let Some((created, seen)) = row else {
                    return Ok(Found::Missing);
                };
                let (created, seen) = (parse_timestamp(&created)?, parse_timestamp(&seen)?);
                // A clock set back is no reason to end a session early, nor to keep one longer.
                if now - seen >= limits.idle || now - created >= limits.longest {
                    return Ok(Found::Ended);
                }
                Ok(Found::Live {
                    stale: now - seen >= TOUCH_AFTER,
                })
            })
            .await?;
        match found {
            Found::Missing => Ok(false),
            Found::Ended => {
                self.end_session(token_sha256).await?;
                Ok(false)
            }
            Found::Live { stale: false } => Ok(true),
            Found::Live { stale: true } => {
                self.write(move |conn| {
                    conn.prepare_cached(
                        "UPDATE admin_sessions SET last_seen = ?2
                         WHERE token_sha256 = ?1 AND last_seen < ?2",
                    )?
                    .execute((token_sha256, timestamp(now)))?;
                    Ok(())
                })
                .await?;
                Ok(true)
            }
        }
    }

    /// Ends the session `token_sha256` (signing out); nothing when there is none.
    pub async fn end_session(&self, token_sha256: String) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM admin_sessions WHERE token_sha256 = ?1")?
                .execute([token_sha256])?;
            Ok(())
        })
        .await
    }

    /// How many sessions are kept (live or not yet removed).
    pub async fn session_count(&self) -> Result<i64, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT count(*) FROM admin_sessions")?
                .query_row([], |r| r.get(0))?)
        })
        .await
    }
}
