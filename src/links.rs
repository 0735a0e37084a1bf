//! The tokens in the links put into emails. A token is 128 random bits (base64url): it names
//! nothing by itself; the store says which buyer-event, step and route it is for (see
//! `store::link_tokens`), so nothing personal can be read from a URL, and the event link (which
//! buyers forward) cannot unsubscribe. Links sent by earlier versions carry a signed token of
//! the old format (`base64(address\nevent\nstep).base64(HMAC)`): those are still verified here,
//! never issued.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Key of the old format's signing secret in the `meta` table.
pub const SECRET_KEY: &str = "link_secret";
/// Bytes of the MAC kept in an old-format token (128 bits).
const MAC_LEN: usize = 16;
/// Random bytes in a token (128 bits).
const TOKEN_BYTES: usize = 16;
/// Characters of a token: base64url of [`TOKEN_BYTES`] without padding.
const TOKEN_CHARS: usize = 22;

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

/// The one route a token works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `GET /r/{token}`: the tracked link to the event's page.
    Event,
    /// `GET` and `POST /unsubscribe/{token}`.
    Unsubscribe,
}

impl Purpose {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Event => "event",
            Purpose::Unsubscribe => "unsubscribe",
        }
    }
}

/// The two links of one email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkUrls {
    /// `{public_url}/r/{token}`
    pub event: String,
    /// `{public_url}/unsubscribe/{token}`
    pub unsubscribe: String,
}

/// 32 random characters from `[A-Za-z0-9]` (about 190 bits): secrets kept in the database (the
/// webhook token, the link secret) and pseudonyms.
pub fn random_token() -> String {
    use rand::Rng as _;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// A fresh token: 128 random bits, base64url.
pub fn new_token() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    B64.encode(bytes)
}

/// Whether `token` has the shape of a token this version issues (no lookup needed otherwise).
pub fn is_token(token: &str) -> bool {
    token.len() == TOKEN_CHARS
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Builds the URLs that carry tokens, and verifies old-format tokens.
#[derive(Clone)]
pub struct Links {
    secret: Vec<u8>,
    public_url: String,
}

impl Links {
    /// Links under `public_url`; `secret` verifies the old format.
    pub fn new(secret: &str, public_url: &str) -> Links {
        Links {
            secret: secret.as_bytes().to_vec(),
            public_url: public_url.trim_end_matches('/').to_string(),
        }
    }

    /// The URL of a token for its route.
    pub fn url(&self, purpose: Purpose, token: &str) -> String {
        match purpose {
            Purpose::Event => format!("{}/r/{token}", self.public_url),
            Purpose::Unsubscribe => format!("{}/unsubscribe/{token}", self.public_url),
        }
    }

    /// Both URLs of an email.
    pub fn urls(&self, event: &str, unsubscribe: &str) -> LinkUrls {
        LinkUrls {
            event: self.url(Purpose::Event, event),
            unsubscribe: self.url(Purpose::Unsubscribe, unsubscribe),
        }
    }

    /// Links that lead nowhere, for previews and `check` (which must not issue real ones).
    pub fn preview(&self) -> LinkUrls {
        self.urls("preview-link-no-token", "preview-link-no-token")
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length; this cannot fail.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"))
    }

    /// The target of a genuine old-format token; `None` for anything forged, altered, malformed
    /// or not in the old format. Whether it still works is the store's to say.
    pub fn verify_legacy(&self, token: &str) -> Option<LinkTarget> {
        let (payload, mac) = token.split_once('.')?;
        let payload = B64.decode(payload).ok()?;
        let mac = B64.decode(mac).ok()?;
        if mac.len() != MAC_LEN {
            return None;
        }
        let mut check = self.mac();
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

    /// An old-format token, as the previous version made them.
    fn legacy_token(links: &Links, target: &LinkTarget) -> String {
        let payload = format!("{}\n{}\n{}", target.email_key, target.event_id, target.step);
        let mut mac = links.mac();
        mac.update(payload.as_bytes());
        let mac = &mac.finalize().into_bytes()[..MAC_LEN];
        format!("{}.{}", B64.encode(payload), B64.encode(mac))
    }

    #[test]
    fn new_tokens_are_random_url_safe_and_recognised() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(is_token(&a) && is_token(&b), "{a} {b}");
        assert_eq!(B64.decode(&a).unwrap().len(), 16);
        assert!(!is_token("nonsense") && !is_token("a.b") && !is_token(&format!("{a}.")));
        let links = Links::new("secret", "https://x.co.za/");
        assert_eq!(
            links.url(Purpose::Event, &a),
            format!("https://x.co.za/r/{a}")
        );
        assert_eq!(
            links.url(Purpose::Unsubscribe, &a),
            format!("https://x.co.za/unsubscribe/{a}")
        );
    }

    #[test]
    fn an_old_token_verifies_and_forged_and_altered_ones_do_not() {
        let links = Links::new("secret", "https://x.co.za");
        let token = legacy_token(&links, &target());
        assert_eq!(links.verify_legacy(&token), Some(target()));
        let other = Links::new("other secret", "https://x.co.za");
        assert_eq!(other.verify_legacy(&token), None);
        let (payload, mac) = token.split_once('.').unwrap();
        let mut forged = target();
        forged.email_key = "someone@else.co.za".into();
        let forged_payload = legacy_token(&links, &forged);
        let forged_payload = forged_payload.split_once('.').unwrap().0;
        assert_eq!(
            links.verify_legacy(&format!("{forged_payload}.{mac}")),
            None
        );
        assert_eq!(
            links.verify_legacy(&format!("{payload}.{}", &mac[..mac.len() - 2])),
            None
        );
        assert_eq!(links.verify_legacy(&format!("{payload}.")), None);
        assert_eq!(links.verify_legacy(payload), None);
        assert_eq!(links.verify_legacy(""), None);
        assert_eq!(links.verify_legacy("a.b.c"), None);
        assert_eq!(links.verify_legacy(&new_token()), None);
    }
}
