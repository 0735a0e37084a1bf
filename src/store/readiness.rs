//! The last DNS readiness verdict (`check`, or the daily refresh for `/admin`), kept in `meta`.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, parse_timestamp, timestamp};
use crate::domain::Finding;

const KEY: &str = "dns_readiness";

impl Store {
    /// When the From domain's DNS was last judged, and what was found.
    pub async fn dns_readiness(&self) -> Result<Option<(DateTime<Utc>, Vec<Finding>)>, StoreError> {
        self.read(|conn| {
            let value: Option<String> = conn
                .query_row("SELECT value FROM meta WHERE key = ?1", [KEY], |r| r.get(0))
                .optional()?;
            Ok(value
                .and_then(|v| serde_json::from_str::<(String, Vec<Finding>)>(&v).ok())
                .and_then(|(at, findings)| Some((parse_timestamp(&at).ok()?, findings))))
        })
        .await
    }

    /// Keeps a verdict.
    pub async fn set_dns_readiness(
        &self,
        now: DateTime<Utc>,
        findings: Vec<Finding>,
    ) -> Result<(), StoreError> {
        let value = serde_json::to_string(&(timestamp(now), findings))
            .map_err(|e| StoreError::Failed(e.into()))?;
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![KEY, value],
            )?;
            Ok(())
        })
        .await
    }
}
