//! Telling the organiser: where (`[notify]`: their addresses, and optionally a signed webhook) and
//! how (the reminders' own transport, but none of direct marketing's rules: no send window, no
//! suppression list, no unsubscribe footer, and sent even while reminders are paused). The alert
//! checks are in [`alerts`], the weekly report's timing in [`weekly`].

pub mod alerts;
pub mod chart;
pub mod report;
pub mod webhook;
pub mod weekly;

use std::time::SystemTime;

use anyhow::Context;
use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};

use crate::config::{EmailConfig, NotifyConfig};
use crate::email::Mailer;

/// The Content-ID the HTML of a message refers to its chart by (`<img src="cid:chart">`).
pub const CHART_CID: &str = "chart";

pub use report::local_time;

/// One message to the organiser.
#[derive(Debug, Clone)]
pub struct Notice {
    /// The email's subject.
    pub subject: String,
    /// The plain-text body (the whole message for an alert).
    pub text: String,
    /// An HTML body, sent beside the text (multipart/alternative).
    pub html: Option<String>,
    /// A PNG the HTML shows inline as `cid:chart`.
    pub chart_png: Option<Vec<u8>>,
    /// The webhook's JSON, when this notice also goes by webhook.
    pub webhook: Option<webhook::Payload>,
}

/// What happened when telling the organiser: each way that failed, with why.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Emailed to `notify.to` (false when no address is set, or the send failed).
    pub emailed: bool,
    /// Posted to the webhook (false when none is set, or the POST failed).
    pub posted: bool,
    /// What failed.
    pub errors: Vec<String>,
}

/// Sends notices to the organiser through the reminders' transport and the webhook.
#[derive(Clone, Debug)]
pub struct Notifier {
    mailer: Mailer,
}

impl Notifier {
    /// A notifier over `mailer` (the engine's, so that SMTP connections are shared).
    pub fn new(mailer: Mailer) -> Notifier {
        Notifier { mailer }
    }

    /// Sends `notice` to every address of `notify.to` (one message) and, when it has a payload,
    /// to the webhook. Neither failure stops the other; both are reported.
    pub async fn send(
        &self,
        notify: &NotifyConfig,
        email: &EmailConfig,
        notice: &Notice,
    ) -> Delivery {
        let mut delivery = Delivery::default();
        if !notify.to.is_empty() {
            let sent = match build(email, &notify.to, notice, SystemTime::now()) {
                Ok(message) => self
                    .mailer
                    .send(&message)
                    .await
                    .map_err(|e| format!("the email to the organiser was not sent: {e}")),
                Err(e) => Err(format!(
                    "the email to the organiser could not be made: {e:#}"
                )),
            };
            match sent {
                Ok(()) => delivery.emailed = true,
                Err(e) => delivery.errors.push(e),
            }
        }
        if let Some(payload) = &notice.webhook
            && !notify.webhook_url.trim().is_empty()
        {
            match webhook::post(notify, payload).await {
                Ok(()) => delivery.posted = true,
                Err(e) => delivery.errors.push(format!("{e:#}")),
            }
        }
        for e in &delivery.errors {
            tracing::error!("telling the organiser: {e}");
        }
        delivery
    }
}

/// Builds the message to the organiser's addresses: From the reminders' sender, a Message-ID of
/// its own, the text (and HTML with its chart when there is one), DKIM-signed like a reminder.
pub fn build(
    config: &EmailConfig,
    to: &[String],
    notice: &Notice,
    date: SystemTime,
) -> anyhow::Result<Message> {
    let from: Mailbox = config
        .from
        .parse()
        .with_context(|| format!("email.from {:?} is not an address", config.from))?;
    let domain = from.email.domain().to_string();
    let mut builder = Message::builder()
        .from(from)
        .subject(notice.subject.clone())
        .date(date)
        .message_id(Some(format!(
            "<{}.organiser@{domain}>",
            crate::links::random_token()
        )));
    for address in to {
        let mailbox: Mailbox = address
            .trim()
            .parse()
            .with_context(|| format!("notify.to {address:?} is not an address"))?;
        builder = builder.to(mailbox);
    }
    let text = SinglePart::plain(notice.text.clone());
    let message = match &notice.html {
        None => builder.singlepart(text),
        Some(html) => {
            let html = SinglePart::html(html.clone());
            let rich = match &notice.chart_png {
                None => MultiPart::alternative().singlepart(text).singlepart(html),
                Some(png) => MultiPart::alternative().singlepart(text).multipart(
                    MultiPart::related().singlepart(html).singlepart(
                        Attachment::new_inline(CHART_CID.to_string())
                            .body(png.clone(), ContentType::parse("image/png")?),
                    ),
                ),
            };
            builder.multipart(rich)
        }
    };
    let mut message = message.context("cannot build the email to the organiser")?;
    if let Some(signer) = crate::email::dkim::signer(config)? {
        signer.sign(&mut message);
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_organiser_message_has_no_unsubscribe_and_goes_to_every_address() {
        let config = EmailConfig {
            from: "Tickets <t@shop.co.za>".into(),
            ..EmailConfig::default()
        };
        let notice = Notice {
            subject: "Reminders are paused".into(),
            text: "Sending is paused.".into(),
            html: Some("<p>Sending is paused.</p><img src=\"cid:chart\">".into()),
            chart_png: Some(vec![0x89, b'P', b'N', b'G']),
            webhook: None,
        };
        let to = vec!["ops@shop.co.za".to_string(), "boss@shop.co.za".to_string()];
        let message = build(&config, &to, &notice, SystemTime::now()).unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(!text.contains("List-Unsubscribe"), "{text}");
        assert!(text.contains("ops@shop.co.za") && text.contains("boss@shop.co.za"));
        assert!(text.contains("multipart/related"));
        assert!(text.contains("Content-ID: <chart>"), "{text}");
        assert!(text.contains(".organiser@shop.co.za>"));
    }
}
