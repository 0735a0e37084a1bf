//! `[email]`: the sender, the transport and the SMTP URL (read as a URL, shown redacted).

use super::*;

/// `[email]`
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    /// The From header, `Name <address>`.
    pub from: String,
    /// The Reply-To header; empty leaves it out.
    pub reply_to: String,
    /// Where emails go.
    pub transport: Transport,
    /// Directory of `.eml` files for the outbox transport.
    pub outbox_dir: PathBuf,
    /// SMTP server URL as lettre reads it.
    pub smtp_url: String,
    /// Upper bound on emails sent per minute.
    pub max_per_minute: u32,
    /// How long one SMTP exchange may take before it counts as a temporary failure.
    #[serde(with = "humantime_serde")]
    pub smtp_timeout: Duration,
    /// Event page pattern used when `[events."ID"].url` is unset; `{event_id}` is replaced.
    pub event_url: String,
    /// With `dkim_key`: sign every email with DKIM under `selector._domainkey.<From domain>`.
    pub dkim_selector: String,
    /// A PEM private key (RSA 2048+ or Ed25519) for DKIM signing; `dkim-keygen` makes one.
    pub dkim_key: PathBuf,
    /// Mailgun's HTTP webhook signing key, for `/webhooks/email-events/mailgun` (a secret).
    pub mailgun_signing_key: String,
    /// SendGrid's Event Webhook verification key (base64), for `/webhooks/email-events/sendgrid`.
    pub sendgrid_public_key: String,
    /// With `postmark_webhook_password`: the basic-auth user name Postmark's webhook must send.
    pub postmark_webhook_user: String,
    /// With `postmark_webhook_user`: the basic-auth password Postmark's webhook must send (a secret).
    pub postmark_webhook_password: String,
    /// Tests only (never read from the file): trust `http://127.0.0.1` as SNS, to stand in for it.
    #[serde(skip)]
    pub sns_trust_localhost: bool,
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self {
            from: "Tickets <tickets@localhost>".into(),
            reply_to: String::new(),
            transport: Transport::Outbox,
            outbox_dir: PathBuf::from("data/outbox"),
            smtp_url: String::new(),
            max_per_minute: 120,
            smtp_timeout: Duration::from_secs(30),
            event_url: "https://www.quicket.co.za/events/{event_id}/".into(),
            dkim_selector: String::new(),
            dkim_key: PathBuf::new(),
            mailgun_signing_key: String::new(),
            sendgrid_public_key: String::new(),
            postmark_webhook_user: String::new(),
            postmark_webhook_password: String::new(),
            sns_trust_localhost: false,
        }
    }
}

/// Where emails go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Written as `.eml` files into `outbox_dir`.
    Outbox,
    /// Sent through `smtp_url`.
    Smtp,
}

/// `email.smtp_url` read as a URL (`url::Url`): what messages and `check`'s warnings need of it.
/// No `Debug`: it holds the password.
pub struct SmtpUrl(url::Url);

impl SmtpUrl {
    /// Reads the URL; `None` when the text is not one with a host (`user:secret@host` reads as
    /// the scheme `user`, the password in its path).
    pub fn parse(text: &str) -> Option<SmtpUrl> {
        let url = url::Url::parse(text.trim()).ok()?;
        url.has_host().then_some(SmtpUrl(url))
    }

    /// The server's host name or address (an IPv6 address without its brackets).
    pub fn host(&self) -> &str {
        self.0
            .host_str()
            .unwrap_or_default()
            .trim_matches(['[', ']'])
    }

    /// Whether the server is this machine: `localhost` or a loopback address.
    pub fn is_loopback(&self) -> bool {
        let host = self.host();
        host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// Whether the URL carries a password.
    pub fn has_password(&self) -> bool {
        self.0.password().is_some()
    }

    /// Whether the connection is unencrypted: `smtp://` without `?tls=required`.
    pub fn is_plain(&self) -> bool {
        self.0.scheme() == "smtp"
            && !self
                .0
                .query_pairs()
                .any(|(key, value)| key == "tls" && value == "required")
    }

    /// The URL with its password replaced by `***`, for messages.
    pub fn redacted(&self) -> String {
        let mut url = self.0.clone();
        if url.password().is_some() {
            // Only a URL without a host refuses a password, and this one has one.
            let _ = url.set_password(Some("***"));
        }
        url.to_string()
    }
}

/// `text` (an SMTP URL) without its password, for messages; a text that is not a URL is not shown,
/// since it may hold the password anywhere.
pub fn redact_smtp_url(text: &str) -> String {
    SmtpUrl::parse(text).map_or_else(|| "not a URL".to_string(), |url| url.redacted())
}
