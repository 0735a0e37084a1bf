//! Signed-in browsers: a session is a random token in a cookie (HttpOnly, SameSite=Strict, Path
//! `/admin`, Secure when `server.public_url` is https); the database keeps only its SHA-256. It
//! ends after [`IDLE`] without use, [`LONGEST`] after signing in, on signing out, or when the
//! password is set again. The cookie carries nothing but the token: no password, no user.

use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};

use crate::store::sessions::SessionLimits;
use crate::store::{Store, StoreError};

/// The cookie's name.
pub const COOKIE: &str = "qf_session";

/// A session unused this long has ended: a working day away from the desk.
pub const IDLE: TimeDelta = TimeDelta::hours(8);

/// A session this old has ended, however busy: sign in again each week.
pub const LONGEST: TimeDelta = TimeDelta::days(7);

/// The limits as the store takes them.
pub const LIMITS: SessionLimits = SessionLimits {
    idle: IDLE,
    longest: LONGEST,
};

fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A new session begun at `now`: its token, for the cookie.
pub async fn begin(store: &Store, now: DateTime<Utc>) -> Result<String, StoreError> {
    let token = crate::links::random_token();
    store.open_session(token_hash(&token), now, LIMITS).await?;
    Ok(token)
}

/// Whether `token` is a live session at `now` (its use is noted; an ended one is removed).
pub async fn live(store: &Store, token: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
    // Tokens are 32 letters and digits: anything else was never one of ours.
    if token.len() != 32 || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Ok(false);
    }
    store.use_session(token_hash(token), now, LIMITS).await
}

/// Ends the session `token` (signing out).
pub async fn end(store: &Store, token: &str) -> Result<(), StoreError> {
    store.end_session(token_hash(token)).await
}

/// The `Set-Cookie` value that hands `token` to the browser.
pub fn cookie(token: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={token}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={}{}",
        LONGEST.num_seconds(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that makes the browser forget its session.
pub fn cleared(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

/// Whether cookies must be `Secure`: the service is reached over https.
pub fn secure(public_url: &str) -> bool {
    public_url
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_over_https() {
        let c = cookie("abc", true);
        for part in [
            "qf_session=abc",
            "HttpOnly",
            "SameSite=Strict",
            "Path=/admin",
            "Secure",
        ] {
            assert!(c.contains(part), "{c}");
        }
        assert!(!cookie("abc", false).contains("Secure"));
        assert!(cleared(false).contains("Max-Age=0"));
        assert!(secure("HTTPS://tickets.example.co.za"));
        assert!(!secure("http://127.0.0.1:8080"));
    }
}
