//! Whether sending is paused by the circuit breaker, kept in `meta` so that a restart keeps it.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Store, StoreError, parse_timestamp, timestamp};

const PAUSED: &str = "sending_paused";
const RESUMED: &str = "sending_resumed_at";

/// A pause in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pause {
    /// Since when (UTC, RFC 3339).
    pub since: String,
    /// Why.
    pub reason: String,
}

impl Store {
    /// The pause in force, if any.
    pub async fn sending_pause(&self) -> Result<Option<Pause>, StoreError> {
        self.read(|conn| {
            let value: Option<String> = conn
                .query_row("SELECT value FROM meta WHERE key = ?1", [PAUSED], |r| {
                    r.get(0)
                })
                .optional()?;
            Ok(value
                .and_then(|v| serde_json::from_str::<serde_json::Value>(&v).ok())
                .map(|v| Pause {
                    since: v["since"].as_str().unwrap_or_default().to_string(),
                    reason: v["reason"].as_str().unwrap_or_default().to_string(),
                }))
        })
        .await
    }

    /// Pauses sending (a pause already in force is kept as it was).
    pub async fn pause_sending(&self, now: DateTime<Utc>, reason: &str) -> Result<(), StoreError> {
        let value = serde_json::json!({"since": timestamp(now), "reason": reason}).to_string();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                params![PAUSED, value],
            )?;
            Ok(())
        })
        .await
    }

    /// Resumes sending; the rates are measured afresh from `now`. Returns the pause lifted.
    pub async fn resume_sending(&self, now: DateTime<Utc>) -> Result<Option<Pause>, StoreError> {
        let was = self.sending_pause().await?;
        self.write(move |conn| {
            conn.execute("DELETE FROM meta WHERE key = ?1", [PAUSED])?;
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![RESUMED, timestamp(now)],
            )?;
            Ok(())
        })
        .await?;
        Ok(was)
    }

    /// When sending was last resumed.
    pub async fn sending_resumed_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.read(|conn| {
            let value: Option<String> = conn
                .query_row("SELECT value FROM meta WHERE key = ?1", [RESUMED], |r| {
                    r.get(0)
                })
                .optional()?;
            Ok(value.and_then(|v| parse_timestamp(&v).ok()))
        })
        .await
    }
}
