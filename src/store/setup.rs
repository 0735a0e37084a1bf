//! Finishing setup in the browser: the one-time setup link (kept only as a hash, with when it
//! expires) and the admin password it sets (kept only as an Argon2id hash).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension};

use super::{Store, StoreError, parse_timestamp, timestamp};

const LINK_KEY: &str = "setup_link_sha256";
const LINK_EXPIRES_KEY: &str = "setup_link_expires";
const PASSWORD_KEY: &str = "admin_password_hash";

fn meta(conn: &Connection, key: &str) -> anyhow::Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

fn set_meta(conn: &Connection, key: &str, value: &str) -> anyhow::Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute((key, value))?;
    Ok(())
}

/// Whether the link stored is `token_sha256` and has not expired at `now`.
fn link_valid(conn: &Connection, token_sha256: &str, now: DateTime<Utc>) -> anyhow::Result<bool> {
    let (Some(stored), Some(expires)) = (meta(conn, LINK_KEY)?, meta(conn, LINK_EXPIRES_KEY)?)
    else {
        return Ok(false);
    };
    let same = subtle::ConstantTimeEq::ct_eq(stored.as_bytes(), token_sha256.as_bytes());
    Ok(bool::from(same) && now < parse_timestamp(&expires)?)
}

impl Store {
    /// Keeps a new setup link (its token's SHA-256), valid until `expires`; any earlier one
    /// stops working.
    pub async fn issue_setup_link(
        &self,
        token_sha256: String,
        expires: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            set_meta(conn, LINK_KEY, &token_sha256)?;
            set_meta(conn, LINK_EXPIRES_KEY, &timestamp(expires))
        })
        .await
    }

    /// Whether `token_sha256` is the setup link in force at `now`.
    pub async fn setup_link_valid(
        &self,
        token_sha256: String,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.read(move |conn| link_valid(conn, &token_sha256, now))
            .await
    }

    /// Sets the admin password's hash through the setup link `token_sha256`, and ends the link
    /// and every session, in one transaction. False (and nothing changed) when the link is not in force at `now`.
    pub async fn finish_setup(
        &self,
        token_sha256: String,
        password_hash: String,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.write(move |conn| {
            if !link_valid(conn, &token_sha256, now)? {
                return Ok(false);
            }
            set_meta(conn, PASSWORD_KEY, &password_hash)?;
            conn.prepare_cached("DELETE FROM meta WHERE key IN (?1, ?2)")?
                .execute((LINK_KEY, LINK_EXPIRES_KEY))?;
            // A new password ends every signed-in browser (a reset through `setup-link` locks
            // out whoever knew the old one).
            conn.prepare_cached("DELETE FROM admin_sessions")?
                .execute([])?;
            Ok(true)
        })
        .await
    }

    /// The admin password's hash (PHC string) set through the setup link, if one was.
    pub async fn admin_password_hash(&self) -> Result<Option<String>, StoreError> {
        self.read(|conn| meta(conn, PASSWORD_KEY)).await
    }
}
