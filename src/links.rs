//! Signed tokens for the links put into emails (unsubscribe, tracked event link). A token names a
//! buyer, an event and a step, and carries an HMAC-SHA256 under a secret kept in the database, so
//! nobody can unsubscribe or click for someone else, and an altered token is simply unknown.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Key of the signing secret in the `meta` table.
pub const SECRET_KEY: &str = "link_secret";
/// Bytes of the MAC kept in a token (128 bits).
const MAC_LEN: usize = 16;

/// What a link token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkTarget {
    /// The buyer's address key (trimmed, lower-cased).
    pub email_key: String,
    /// Quicket's event id.
    pub event_id: String,
    /// The reminder step the email was.
    pub step: String,
}

/// Signs and checks link tokens, and builds the URLs that carry them.
#[derive(Clone)]
pub struct Links {
    secret: Vec<u8>,
    public_url: String,
}

impl Links {
    /// Links under `public_url`, signed with `secret`.
    pub fn new(secret: &str, public_url: &str) -> Links {
        Links {
            secret: secret.as_bytes().to_vec(),
            public_url: public_url.trim_end_matches('/').to_string(),
        }
    }

    fn mac(&self, payload: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length; this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(payload);
        mac.finalize().into_bytes()[..MAC_LEN].to_vec()
    }

    /// The token for a target.
    pub fn token(&self, target: &LinkTarget) -> String {
        let payload = format!("{}\n{}\n{}", target.email_key, target.event_id, target.step);
        let mac = self.mac(payload.as_bytes());
        format!("{}.{}", B64.encode(payload), B64.encode(mac))
    }

    /// The target of a genuine token; `None` for anything forged, altered or malformed.
    pub fn verify(&self, token: &str) -> Option<LinkTarget> {
        let (payload, mac) = token.split_once('.')?;
        let payload = B64.decode(payload).ok()?;
        let mac = B64.decode(mac).ok()?;
        if mac.len() != MAC_LEN {
            return None;
        }
        let mut check = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret).ok()?;
        check.update(&payload);
        // Constant-time comparison of the (truncated) MAC.
        check.verify_truncated_left(&mac).ok()?;
        let payload = String::from_utf8(payload).ok()?;
        let mut parts = payload.splitn(3, '\n');
        Some(LinkTarget {
            email_key: parts.next()?.to_string(),
            event_id: parts.next()?.to_string(),
            step: parts.next()?.to_string(),
        })
    }

    /// `{public_url}/unsubscribe/{token}`
    pub fn unsubscribe_url(&self, target: &LinkTarget) -> String {
        format!("{}/unsubscribe/{}", self.public_url, self.token(target))
    }

    /// `{public_url}/r/{token}`: the tracked link to the event's page.
    pub fn event_url(&self, target: &LinkTarget) -> String {
        format!("{}/r/{}", self.public_url, self.token(target))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> LinkTarget {
        LinkTarget {
            email_key: "lerato@mail.co.za".into(),
            event_id: "456".into(),
            step: "abandoned-1".into(),
        }
    }

    #[test]
    fn a_token_verifies_and_names_its_target() {
        let links = Links::new("secret", "https://x.co.za/");
        let token = links.token(&target());
        assert_eq!(links.verify(&token), Some(target()));
        assert!(
            links
                .unsubscribe_url(&target())
                .starts_with("https://x.co.za/unsubscribe/")
        );
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        );
    }

    #[test]
    fn forged_and_altered_tokens_are_refused() {
        let links = Links::new("secret", "https://x.co.za");
        let token = links.token(&target());
        let other = Links::new("other secret", "https://x.co.za");
        assert_eq!(other.verify(&token), None);
        let (payload, mac) = token.split_once('.').unwrap();
        let mut forged = target();
        forged.email_key = "someone@else.co.za".into();
        let forged_payload = links.token(&forged);
        let forged_payload = forged_payload.split_once('.').unwrap().0;
        assert_eq!(links.verify(&format!("{forged_payload}.{mac}")), None);
        assert_eq!(
            links.verify(&format!("{payload}.{}", &mac[..mac.len() - 2])),
            None
        );
        assert_eq!(links.verify(&format!("{payload}.")), None);
        assert_eq!(links.verify(payload), None);
        assert_eq!(links.verify(""), None);
        assert_eq!(links.verify("a.b.c"), None);
    }
}
