//! Bounces and complaints as email providers report them: each provider's wire format (Postmark,
//! Mailgun, SendGrid, Amazon SES through SNS) becomes a list of [`EmailEvent`]s; everything else a
//! provider reports (deliveries, opens, clicks) is counted as ignored. Pure: no I/O, no clock.

pub mod signature;
pub mod sns;

use serde_json::{Map, Value};

/// The providers whose webhooks `POST /webhooks/email-events/{provider}/{token}` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Postmark's bounce and spam-complaint webhooks (no signature; the token is the secret).
    Postmark,
    /// Mailgun's webhooks, HMAC-signed with the domain's signing key.
    Mailgun,
    /// SendGrid's Event Webhook, signed with ECDSA P-256.
    Sendgrid,
    /// Amazon SES notifications delivered by SNS, signed by SNS's certificate.
    Ses,
}

impl Provider {
    /// Reads the path part.
    pub fn parse(text: &str) -> Option<Provider> {
        match text {
            "postmark" => Some(Provider::Postmark),
            "mailgun" => Some(Provider::Mailgun),
            "sendgrid" => Some(Provider::Sendgrid),
            "ses" => Some(Provider::Ses),
            _ => None,
        }
    }

    /// The name used in the path, the database and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Postmark => "postmark",
            Provider::Mailgun => "mailgun",
            Provider::Sendgrid => "sendgrid",
            Provider::Ses => "ses",
        }
    }
}

/// What the provider says happened to an email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The address cannot receive mail: suppressed.
    HardBounce,
    /// A temporary failure (mailbox full, greylisted): counted, nothing else.
    SoftBounce,
    /// The buyer marked the email as spam: suppressed.
    Complaint,
}

impl EventKind {
    /// The name kept in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::HardBounce => "hard_bounce",
            EventKind::SoftBounce => "soft_bounce",
            EventKind::Complaint => "complaint",
        }
    }

    /// Reads a stored name back.
    pub fn parse(text: &str) -> Option<EventKind> {
        match text {
            "hard_bounce" => Some(EventKind::HardBounce),
            "soft_bounce" => Some(EventKind::SoftBounce),
            "complaint" => Some(EventKind::Complaint),
            _ => None,
        }
    }

    /// For people: "hard bounce", "soft bounce", "complaint".
    pub fn label(self) -> &'static str {
        match self {
            EventKind::HardBounce => "hard bounce",
            EventKind::SoftBounce => "soft bounce",
            EventKind::Complaint => "complaint",
        }
    }

    /// Whether the address goes on the suppression list.
    pub fn suppresses(self) -> bool {
        matches!(self, EventKind::HardBounce | EventKind::Complaint)
    }
}

/// One bounce or complaint about one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailEvent {
    /// What happened.
    pub kind: EventKind,
    /// The address it happened to, as the provider wrote it.
    pub email: String,
    /// Our `Message-ID` (without the angle brackets) when the provider gives it back.
    pub message_id: Option<String>,
    /// The provider's own words (the SMTP answer, the bounce type).
    pub detail: String,
    /// The provider's id for the event, when it has one (makes a resent event recognisable).
    pub provider_id: Option<String>,
}

/// What a body held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// The bounces and complaints.
    pub events: Vec<EmailEvent>,
    /// Other events (deliveries, opens ...), which are kept raw but change nothing.
    pub ignored: usize,
}

/// Why a body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

fn json(body: &[u8]) -> Result<Value, ParseError> {
    serde_json::from_slice(body).map_err(|e| ParseError(format!("the body is not JSON: {e}")))
}

fn text(object: &Map<String, Value>, key: &str) -> String {
    match object.get(key) {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn path<'a>(value: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().try_fold(value, |v, k| v.get(k))
}

/// A Message-ID as we stored it, from any of `<id>`, `id` or ` <id> `.
pub fn normalise_message_id(text: &str) -> Option<String> {
    let id = text
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    (!id.is_empty()).then(|| id.to_string())
}

/// Reads a provider's body (already authenticated).
pub fn parse(provider: Provider, body: &[u8]) -> Result<Parsed, ParseError> {
    match provider {
        Provider::Postmark => postmark(&json(body)?),
        Provider::Mailgun => mailgun(&json(body)?),
        Provider::Sendgrid => sendgrid(&json(body)?),
        Provider::Ses => Err(ParseError(
            "SES bodies are SNS messages: read them with sns::Envelope".into(),
        )),
    }
}

/// Postmark: one JSON object per request, a `Bounce` or a `SpamComplaint` record.
fn postmark(value: &Value) -> Result<Parsed, ParseError> {
    let object = value
        .as_object()
        .ok_or_else(|| ParseError("a Postmark webhook body is a JSON object".into()))?;
    let record = text(object, "RecordType");
    let kind_name = text(object, "Type");
    let kind = match (record.as_str(), kind_name.as_str()) {
        (_, "SpamComplaint") | ("SpamComplaint", _) => Some(EventKind::Complaint),
        (_, "HardBounce" | "BadEmailAddress" | "ManuallyDeactivated") => {
            Some(EventKind::HardBounce)
        }
        (_, "SoftBounce" | "Transient" | "DnsError" | "Blocked" | "Undeliverable") => {
            Some(EventKind::SoftBounce)
        }
        _ => None,
    };
    let email = text(object, "Email");
    let (Some(kind), false) = (kind, email.is_empty()) else {
        return Ok(Parsed {
            events: vec![],
            ignored: 1,
        });
    };
    let detail = [text(object, "Name"), text(object, "Details")]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(": ");
    // Postmark's MessageID is its own id, not our Message-ID header; ours comes back as the
    // metadata that the header X-PM-Metadata-message-id set when the email was sent.
    let message_id = object
        .get("Metadata")
        .and_then(Value::as_object)
        .and_then(|m| {
            m.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("message-id"))
                .and_then(|(_, v)| v.as_str())
        })
        .and_then(normalise_message_id);
    Ok(Parsed {
        events: vec![EmailEvent {
            kind,
            email,
            message_id,
            detail: if detail.is_empty() { kind_name } else { detail },
            provider_id: Some(text(object, "ID")).filter(|s| !s.is_empty()),
        }],
        ignored: 0,
    })
}

/// Mailgun: `{"signature": {...}, "event-data": {...}}`, one event per request.
fn mailgun(value: &Value) -> Result<Parsed, ParseError> {
    let data = value
        .get("event-data")
        .and_then(Value::as_object)
        .ok_or_else(|| ParseError("a Mailgun webhook body has an \"event-data\" object".into()))?;
    let event = text(data, "event");
    let severity = text(data, "severity");
    let kind = match (event.as_str(), severity.as_str()) {
        ("failed", "permanent") => Some(EventKind::HardBounce),
        ("failed", _) => Some(EventKind::SoftBounce),
        ("complained", _) => Some(EventKind::Complaint),
        _ => None,
    };
    let email = text(data, "recipient");
    let (Some(kind), false) = (kind, email.is_empty()) else {
        return Ok(Parsed {
            events: vec![],
            ignored: 1,
        });
    };
    let status = data.get("delivery-status").and_then(Value::as_object);
    let detail = status
        .map(|s| {
            let code = text(s, "code");
            let words = [text(s, "description"), text(s, "message")]
                .into_iter()
                .find(|s| !s.is_empty())
                .unwrap_or_default();
            format!("{code} {words}").trim().to_string()
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("{event} {severity}").trim().to_string());
    let message_id = path(
        &Value::Object(data.clone()),
        &["message", "headers", "message-id"],
    )
    .and_then(Value::as_str)
    .and_then(normalise_message_id);
    Ok(Parsed {
        events: vec![EmailEvent {
            kind,
            email,
            message_id,
            detail,
            provider_id: Some(text(data, "id")).filter(|s| !s.is_empty()),
        }],
        ignored: 0,
    })
}

/// SendGrid: a JSON array of events.
fn sendgrid(value: &Value) -> Result<Parsed, ParseError> {
    let list = value
        .as_array()
        .ok_or_else(|| ParseError("a SendGrid Event Webhook body is a JSON array".into()))?;
    let mut parsed = Parsed::default();
    for item in list {
        let Some(object) = item.as_object() else {
            parsed.ignored += 1;
            continue;
        };
        let event = text(object, "event");
        let kind = match (event.as_str(), text(object, "type").as_str()) {
            ("bounce", "blocked") | ("deferred", _) => Some(EventKind::SoftBounce),
            ("bounce", _) => Some(EventKind::HardBounce),
            ("spamreport", _) => Some(EventKind::Complaint),
            _ => None,
        };
        let email = text(object, "email");
        let (Some(kind), false) = (kind, email.is_empty()) else {
            parsed.ignored += 1;
            continue;
        };
        let detail = [
            text(object, "status"),
            text(object, "reason"),
            text(object, "response"),
        ]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
        parsed.events.push(EmailEvent {
            kind,
            email,
            message_id: normalise_message_id(&text(object, "smtp-id")),
            detail: if detail.is_empty() { event } else { detail },
            provider_id: Some(text(object, "sg_event_id")).filter(|s| !s.is_empty()),
        });
    }
    Ok(parsed)
}

/// Amazon SES: the `Message` of an SNS notification, a JSON object with `notificationType` (or
/// `eventType` for event publishing) `Bounce` or `Complaint`.
pub fn ses(message: &str) -> Result<Parsed, ParseError> {
    let value: Value = serde_json::from_str(message)
        .map_err(|e| ParseError(format!("the SNS Message is not an SES notification: {e}")))?;
    let object = value
        .as_object()
        .ok_or_else(|| ParseError("the SNS Message is not a JSON object".into()))?;
    let kind = [text(object, "notificationType"), text(object, "eventType")]
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or_default();
    let message_id = path(&value, &["mail", "commonHeaders", "messageId"])
        .and_then(Value::as_str)
        .and_then(normalise_message_id);
    let mut parsed = Parsed::default();
    let (list, kind, detail) = match kind.as_str() {
        "Bounce" => {
            let bounce = value.get("bounce");
            let bounce_type = bounce
                .and_then(|b| b.get("bounceType"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let sub = bounce
                .and_then(|b| b.get("bounceSubType"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let kind = if bounce_type == "Permanent" {
                EventKind::HardBounce
            } else {
                EventKind::SoftBounce
            };
            (
                bounce.and_then(|b| b.get("bouncedRecipients")),
                kind,
                format!("{bounce_type} {sub}").trim().to_string(),
            )
        }
        "Complaint" => {
            let complaint = value.get("complaint");
            let feedback = complaint
                .and_then(|c| c.get("complaintFeedbackType"))
                .and_then(Value::as_str)
                .unwrap_or("complaint")
                .to_string();
            (
                complaint.and_then(|c| c.get("complainedRecipients")),
                EventKind::Complaint,
                feedback,
            )
        }
        _ => {
            parsed.ignored += 1;
            return Ok(parsed);
        }
    };
    let feedback_id = path(&value, &[&kind_key(kind), "feedbackId"])
        .and_then(Value::as_str)
        .map(str::to_string);
    for recipient in list.and_then(Value::as_array).into_iter().flatten() {
        let Some(r) = recipient.as_object() else {
            continue;
        };
        let email = text(r, "emailAddress");
        if email.is_empty() {
            continue;
        }
        let diagnostic = text(r, "diagnosticCode");
        parsed.events.push(EmailEvent {
            kind,
            email,
            message_id: message_id.clone(),
            detail: if diagnostic.is_empty() {
                detail.clone()
            } else {
                format!("{detail}: {diagnostic}")
            },
            provider_id: feedback_id.clone(),
        });
    }
    if parsed.events.is_empty() {
        parsed.ignored += 1;
    }
    Ok(parsed)
}

fn kind_key(kind: EventKind) -> String {
    match kind {
        EventKind::Complaint => "complaint".into(),
        _ => "bounce".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_round_trip() {
        for p in [
            Provider::Postmark,
            Provider::Mailgun,
            Provider::Sendgrid,
            Provider::Ses,
        ] {
            assert_eq!(Provider::parse(p.as_str()), Some(p));
        }
        assert_eq!(Provider::parse("sparkpost"), None);
    }

    #[test]
    fn message_ids_lose_their_brackets() {
        assert_eq!(normalise_message_id(" <a.b@c> ").as_deref(), Some("a.b@c"));
        assert_eq!(normalise_message_id("a.b@c").as_deref(), Some("a.b@c"));
        assert_eq!(normalise_message_id("<>"), None);
    }

    #[test]
    fn postmark_kinds() {
        let body =
            |t: &str| format!(r#"{{"RecordType":"Bounce","Type":"{t}","Email":"a@b.co.za"}}"#);
        let kind = |t: &str| {
            parse(Provider::Postmark, body(t).as_bytes())
                .unwrap()
                .events
        };
        assert_eq!(kind("HardBounce")[0].kind, EventKind::HardBounce);
        assert_eq!(kind("SoftBounce")[0].kind, EventKind::SoftBounce);
        assert!(kind("AutoResponder").is_empty());
        let complaint =
            r#"{"RecordType":"SpamComplaint","Type":"SpamComplaint","Email":"a@b.co.za"}"#;
        let parsed = parse(Provider::Postmark, complaint.as_bytes()).unwrap();
        assert_eq!(parsed.events[0].kind, EventKind::Complaint);
        assert_eq!(parsed.events[0].message_id, None);
        let named = r#"{"RecordType":"Bounce","Type":"HardBounce","Email":"a@b.co.za",
            "MessageID":"883953f4","Metadata":{"Message-ID":"<abc.reminder@shop.co.za>"}}"#;
        let parsed = parse(Provider::Postmark, named.as_bytes()).unwrap();
        assert_eq!(
            parsed.events[0].message_id.as_deref(),
            Some("abc.reminder@shop.co.za")
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for p in [Provider::Postmark, Provider::Mailgun, Provider::Sendgrid] {
            for body in ["", "nul", "[1,2", "\"x\"", "{\"event-data\": 3}"] {
                let _ = parse(p, body.as_bytes());
            }
            assert!(parse(p, b"{").is_err());
        }
        assert!(ses("{").is_err());
        assert_eq!(ses("{}").unwrap().ignored, 1);
        let odd = r#"{"notificationType":"Bounce","bounce":{"bouncedRecipients":[1,{"x":2}]}}"#;
        assert!(ses(odd).unwrap().events.is_empty());
    }
}
