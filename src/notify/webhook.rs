//! The organiser's webhook: a JSON POST signed the Standard Webhooks way (`webhook-id`,
//! `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`), which
//! Slack, Teams, Discord and n8n take through their incoming-webhook or workflow tools. The body
//! says what happened in one sentence (`text`, and `content` for Discord) plus fields (`data`).

use std::time::Duration;

use anyhow::Context;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use crate::config::NotifyConfig;

/// How long the receiver has to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The JSON posted.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Payload {
    /// What happened: `alert.raised`, `alert.reminder`, `alert.resolved`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When it was decided (RFC 3339).
    pub timestamp: String,
    /// One sentence for people (what Slack and Teams show).
    pub text: String,
    /// The same sentence (what Discord shows).
    pub content: String,
    /// The fields, for workflows.
    pub data: serde_json::Value,
}

impl Payload {
    /// A payload whose `text` and `content` are `sentence`.
    pub fn new(
        kind: &str,
        at: chrono::DateTime<chrono::Utc>,
        sentence: &str,
        data: serde_json::Value,
    ) -> Payload {
        Payload {
            kind: kind.to_string(),
            timestamp: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            text: sentence.to_string(),
            content: sentence.to_string(),
            data,
        }
    }
}

/// The signing key a secret stands for: `whsec_` and base64 is decoded (the Standard Webhooks
/// form); anything else is used as written.
fn key(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix("whsec_")
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

/// `v1,<base64 signature>` of `body` sent as message `id` at `timestamp` (Unix seconds).
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&key(secret)) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// Posts `payload` to `notify.webhook_url`, signed when `notify.webhook_secret` is set. An answer
/// other than 2xx is an error (the URL is never named: it is a secret).
pub async fn post(notify: &NotifyConfig, payload: &Payload) -> anyhow::Result<()> {
    let body = serde_json::to_vec(payload).context("cannot write the webhook's JSON")?;
    let id = format!("msg_{}", crate::links::random_token());
    // The receiver compares this with its own clock (Standard Webhooks allow 5 minutes): the
    // moment of sending, not the time the alert was decided for.
    let timestamp = chrono::Utc::now().timestamp();
    let mut request = hyper::Request::post(notify.webhook_url.trim())
        .header("content-type", "application/json")
        .header(
            "user-agent",
            concat!("quicket-followup/", env!("CARGO_PKG_VERSION")),
        )
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string());
    if !notify.webhook_secret.is_empty() {
        request = request.header(
            "webhook-signature",
            signature(&notify.webhook_secret, &id, timestamp, &body),
        );
    }
    let request = request
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .map_err(|e| anyhow::anyhow!("cannot make the webhook request: {e}"))?;
    let client = crate::http_client::https_client("the organiser's webhook")?;
    let answer = tokio::time::timeout(TIMEOUT, client.request(request))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "the organiser's webhook (notify.webhook_url) did not answer within {}s",
                TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| {
            anyhow::anyhow!(
                "the organiser's webhook (notify.webhook_url) could not be reached: {}",
                crate::error_chain(e)
            )
        })?;
    let status = answer.status();
    anyhow::ensure!(
        status.is_success(),
        "the organiser's webhook (notify.webhook_url) answered {status}"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_follows_standard_webhooks() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
