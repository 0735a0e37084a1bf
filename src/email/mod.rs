//! Building reminder emails with lettre, and the transports that carry them: SMTP (pooled) or the
//! outbox directory (`.eml` files, the same bytes SMTP would carry).

pub mod dkim;
mod transport;

pub use transport::{Mailer, POOL_SIZE, SendError};

/// The SMTP URL without its password, for messages.
pub use crate::config::redact_smtp_url as redact_url;

use std::time::SystemTime;

use anyhow::Context;
use lettre::Message;
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use sha2::Sha256;

use crate::config::EmailConfig;
use crate::templates::Rendered;

/// One reminder ready to be built into a message.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The buyer's address.
    pub to_email: String,
    /// The buyer's name (may be empty).
    pub to_name: String,
    /// The rendered subject and bodies.
    pub content: Rendered,
    /// Stable per buyer, event and step.
    pub message_id: String,
    /// The one-click unsubscribe URL.
    pub unsubscribe_url: String,
}

/// `List-Unsubscribe: <url>` (RFC 2369).
#[derive(Debug, Clone)]
struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.trim_matches(['<', '>']).to_string()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), format!("<{}>", self.0))
    }
}

/// `X-PM-Metadata-message-id: <our Message-ID>`: Postmark gives back its own id in its bounce and
/// complaint webhooks, not the Message-ID header, but it does give back metadata set by such a
/// header (and keeps the header out of the delivered email); other providers pass it on unread.
#[derive(Debug, Clone)]
struct PostmarkMessageId(String);

impl Header for PostmarkMessageId {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str(POSTMARK_METADATA_HEADER)
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.trim().to_string()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// A Subject that holds `=?` (an event named `=?utf-8?b?...?=`): lettre writes an ASCII word as
/// it is, and a mail program would decode such a word as an encoded word, showing text nobody
/// wrote. The whole subject is encoded instead (RFC 2047, base64 words), so it reads as written.
#[derive(Debug, Clone)]
struct TextSubject(String);

impl Header for TextSubject {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Subject")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.to_string()))
    }
    fn display(&self) -> HeaderValue {
        use base64::Engine as _;
        // Words of at most 39 bytes of text (whole characters): 64 characters encoded.
        let mut words = Vec::new();
        let mut chunk = String::new();
        for c in self.0.chars() {
            if chunk.len() + c.len_utf8() > 39 {
                words.push(std::mem::take(&mut chunk));
            }
            chunk.push(c);
        }
        if !chunk.is_empty() {
            words.push(chunk);
        }
        let encoded = words
            .iter()
            .map(|w| {
                format!(
                    "=?utf-8?b?{}?=",
                    base64::engine::general_purpose::STANDARD.encode(w)
                )
            })
            .collect::<Vec<_>>()
            .join("\r\n ");
        HeaderValue::dangerous_new_pre_encoded(Self::name(), self.0.clone(), encoded)
    }
}

/// The header that carries the Message-ID back in Postmark's webhooks, as its `Metadata` entry
/// `message-id`.
pub const POSTMARK_METADATA_HEADER: &str = "X-PM-Metadata-message-id";

/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058).
#[derive(Debug, Clone)]
struct ListUnsubscribePost;

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".into())
    }
}

/// The Message-ID of a step for a buyer and event: the same every time (keyed by `secret`, the
/// database's link secret), so a retry is recognised as the same message by mail systems; and
/// unguessable, since a bounce or complaint counts only when it names one that was sent, and
/// anyone who knows a buyer's address and the event could otherwise name it.
pub fn message_id(
    secret: &[u8],
    email_key: &str,
    event_id: &str,
    step: &str,
    from: &str,
) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(format!("message-id\n{email_key}\n{event_id}\n{step}").as_bytes());
    let digest = mac.finalize().into_bytes();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    let domain = from
        .parse::<Mailbox>()
        .ok()
        .map(|m| m.email.domain().to_string())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "quicket-followup.invalid".into());
    format!("<{hex}.reminder@{domain}>")
}

/// Deletes every `.eml` file in the outbox `dir` addressed to `email_key` (a missing directory
/// holds none). Returns how many.
pub fn forget_in_outbox(dir: &std::path::Path, email_key: &str) -> anyhow::Result<usize> {
    use anyhow::Context as _;
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read the outbox {}", dir.display()));
        }
    };
    let mut removed = 0;
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "eml") {
            continue;
        }
        let text =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        if crate::domain::email_key(&String::from_utf8_lossy(&text)).contains(email_key) {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot delete {}", path.display()))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The display name of the From address ("Tickets" in `Tickets <tickets@x>`).
pub fn organiser_name(from: &str) -> String {
    from.parse::<Mailbox>()
        .ok()
        .and_then(|m| m.name)
        .unwrap_or_default()
}

/// Builds the message. Every header value goes through lettre, which encodes it, so CR or LF in
/// a name can never start a header of its own.
pub fn build(config: &EmailConfig, out: &Outgoing, date: SystemTime) -> anyhow::Result<Message> {
    let from: Mailbox = config
        .from
        .parse()
        .with_context(|| format!("email.from {:?} is not an address", config.from))?;
    let address = out
        .to_email
        .trim()
        .parse()
        .with_context(|| format!("{:?} is not an email address", out.to_email))?;
    let name = crate::domain::clean_text(&out.to_name);
    let to = Mailbox::new((!name.is_empty()).then_some(name), address);
    let mut builder = Message::builder().from(from).to(to);
    builder = if out.content.subject.contains("=?") {
        builder.header(TextSubject(out.content.subject.clone()))
    } else {
        builder.subject(out.content.subject.clone())
    };
    let mut builder = builder
        .date(date)
        .message_id(Some(out.message_id.clone()))
        .header(ListUnsubscribe(out.unsubscribe_url.clone()))
        .header(ListUnsubscribePost)
        .header(PostmarkMessageId(out.message_id.clone()));
    if !config.reply_to.trim().is_empty() {
        let reply_to: Mailbox = config
            .reply_to
            .parse()
            .with_context(|| format!("email.reply_to {:?} is not an address", config.reply_to))?;
        builder = builder.reply_to(reply_to);
    }
    let mut message = builder
        .multipart(MultiPart::alternative_plain_html(
            out.content.text.clone(),
            out.content.html.clone(),
        ))
        .context("cannot build the email")?;
    // Signed last, over the finished headers and body.
    if let Some(signer) = dkim::signer(config)? {
        signer.sign(&mut message);
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing(name: &str) -> Outgoing {
        Outgoing {
            to_email: "lerato@mail.co.za".into(),
            to_name: name.into(),
            content: Rendered {
                subject: "Your tickets".into(),
                html: "<p>Hi</p>".into(),
                text: "Hi".into(),
            },
            message_id: message_id(
                b"secret",
                "lerato@mail.co.za",
                "456",
                "abandoned-1",
                "Tickets <t@shop.co.za>",
            ),
            unsubscribe_url: "https://x.co.za/unsubscribe/tok".into(),
        }
    }

    #[test]
    fn the_message_carries_the_contract_headers() {
        let config = EmailConfig {
            from: "Tickets <t@shop.co.za>".into(),
            reply_to: "help@shop.co.za".into(),
            ..EmailConfig::default()
        };
        let message = build(&config, &outgoing("Lerato Dlamini"), SystemTime::now()).unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(
            text.contains("List-Unsubscribe: <https://x.co.za/unsubscribe/tok>\r\n"),
            "{text}"
        );
        assert!(text.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
        assert!(text.contains("Reply-To: help@shop.co.za\r\n"));
        assert!(
            text.contains("To: \"Lerato Dlamini\" <lerato@mail.co.za>\r\n")
                || text.contains("To: Lerato Dlamini <lerato@mail.co.za>\r\n"),
            "{text}"
        );
        assert!(text.contains("multipart/alternative"));
        assert!(text.contains("Message-ID: <"));
        assert!(text.contains(".reminder@shop.co.za>"));
        let id = outgoing("x").message_id;
        assert!(
            text.contains(&format!("X-PM-Metadata-message-id: {id}\r\n")),
            "{text}"
        );
    }

    #[test]
    fn an_encoded_word_in_the_subject_is_encoded_as_text() {
        let config = EmailConfig::default();
        let mut out = outgoing("Lerato");
        let spoof = "=?utf-8?b?WW91ciByZWZ1bmQ=?=";
        out.content.subject =
            format!("Still want tickets for {spoof}? A long event name follows here");
        let message = build(&config, &out, SystemTime::now()).unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(
            !text.contains(spoof),
            "passed through as an encoded word:\n{text}"
        );
        let subject: String = text
            .split("\r\n")
            .skip_while(|l| !l.starts_with("Subject: "))
            .enumerate()
            .take_while(|(i, l)| *i == 0 || l.starts_with(' '))
            .map(|(_, l)| l.trim_start_matches("Subject: ").trim().to_string())
            .collect::<Vec<_>>()
            .join(" ");
        use base64::Engine as _;
        let decoded: String = subject
            .split(' ')
            .map(|w| {
                let b64 = w
                    .strip_prefix("=?utf-8?b?")
                    .unwrap()
                    .strip_suffix("?=")
                    .unwrap();
                String::from_utf8(
                    base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .unwrap(),
                )
                .unwrap()
            })
            .collect();
        assert_eq!(decoded, out.content.subject);
        // An ordinary subject is written as before.
        let message = build(&config, &outgoing("Lerato"), SystemTime::now()).unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(text.contains("Subject: Your tickets\r\n"), "{text}");
    }

    #[test]
    fn a_line_break_in_a_name_cannot_add_a_header() {
        let config = EmailConfig::default();
        let message = build(
            &config,
            &outgoing("Eve\r\nBcc: victim@mail.co.za"),
            SystemTime::now(),
        )
        .unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(!text.contains("\r\nBcc:"), "{text}");
    }

    #[test]
    fn the_message_id_is_stable_per_buyer_event_and_step() {
        let id = |secret: &[u8], event: &str, step: &str| {
            message_id(secret, "a@b.co.za", event, step, "T <t@x.co.za>")
        };
        let a = id(b"k", "1", "s");
        assert_eq!(a, id(b"k", "1", "s"));
        assert_ne!(a, id(b"k", "1", "t"));
        assert_ne!(a, id(b"k", "2", "s"));
        // Nobody without the secret can make it.
        assert_ne!(a, id(b"other", "1", "s"));
    }
}
