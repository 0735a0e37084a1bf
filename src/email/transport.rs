//! Where built messages go: the outbox directory or an SMTP server, and how failures are told apart.

use std::path::PathBuf;

use anyhow::Context;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{EmailConfig, Transport, redact_smtp_url};
use crate::error_chain;

/// SMTP connections kept open: one per email a pass has in flight.
pub const POOL_SIZE: u32 = 16;

/// A failed send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Try again later: a 4xx answer, a refused connection, a timeout.
    #[error("temporary failure: {0}")]
    Transient(String),
    /// The server refused for good (5xx).
    #[error("refused: {reply}")]
    Permanent {
        /// The server's answer.
        reply: String,
        /// The answer says the mailbox does not exist: the address should be suppressed.
        no_such_mailbox: bool,
    },
}

/// Sends messages.
#[derive(Clone)]
pub enum Mailer {
    /// Writes each message as `{dir}/{message-id}.eml`.
    Outbox(PathBuf),
    /// A pooled SMTP connection.
    Smtp(AsyncSmtpTransport<Tokio1Executor>, std::time::Duration),
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mailer::Outbox(dir) => write!(f, "outbox {}", dir.display()),
            Mailer::Smtp(..) => f.write_str("smtp"),
        }
    }
}

impl Mailer {
    /// The transport the configuration asks for.
    pub fn from_config(config: &EmailConfig) -> anyhow::Result<Mailer> {
        match config.transport {
            Transport::Outbox => Ok(Mailer::Outbox(config.outbox_dir.clone())),
            Transport::Smtp => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.smtp_url)
                    .with_context(|| {
                        format!(
                            "email.smtp_url is not an SMTP URL lettre understands ({})",
                            redact_smtp_url(&config.smtp_url)
                        )
                    })?
                    .timeout(Some(config.smtp_timeout))
                    .pool_config(PoolConfig::new().max_size(POOL_SIZE))
                    .build();
                Ok(Mailer::Smtp(transport, config.smtp_timeout))
            }
        }
    }

    /// Sends one message.
    pub async fn send(&self, message: &Message) -> Result<(), SendError> {
        match self {
            Mailer::Outbox(dir) => write_eml(dir, message)
                .await
                .map_err(|e| SendError::Transient(format!("{e:#}"))),
            // lettre's own timeout covers connecting but not a server that accepts and then
            // says nothing, so the whole exchange is bounded here.
            Mailer::Smtp(transport, limit) => {
                match tokio::time::timeout(*limit, transport.send(message.clone())).await {
                    Err(_) => Err(SendError::Transient(format!(
                        "the SMTP server did not finish within {} (email.smtp_timeout)",
                        humantime::format_duration(*limit)
                    ))),
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) if e.is_permanent() => {
                        let reply = e.to_string();
                        Err(SendError::Permanent {
                            no_such_mailbox: says_no_such_mailbox(&reply, e.status()),
                            reply,
                        })
                    }
                    Ok(Err(e)) => Err(SendError::Transient(error_chain(e))),
                }
            }
        }
    }

    /// Checks that the transport can be used: the outbox is writable, the SMTP server answers.
    pub async fn test_connection(&self) -> anyhow::Result<()> {
        match self {
            Mailer::Outbox(dir) => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .with_context(|| format!("cannot create the outbox {}", dir.display()))?;
                Ok(())
            }
            Mailer::Smtp(transport, limit) => {
                let ok = tokio::time::timeout(*limit, transport.test_connection())
                    .await
                    .map_err(|_| {
                        anyhow::anyhow!("the SMTP server did not answer within {limit:?}")
                    })?
                    .map_err(|e| anyhow::anyhow!("{}", error_chain(e)))?;
                anyhow::ensure!(ok, "the SMTP server did not answer NOOP");
                Ok(())
            }
        }
    }
}

/// Whether a permanent refusal says the mailbox does not exist (RFC 3463 5.1.1 and common wordings).
fn says_no_such_mailbox(
    reply: &str,
    code: Option<lettre::transport::smtp::response::Code>,
) -> bool {
    let code = code.map(|c| c.to_string()).unwrap_or_default();
    if !matches!(code.as_str(), "550" | "551" | "553" | "") {
        return false;
    }
    let reply = reply.to_ascii_lowercase();
    [
        "5.1.1",
        "5.1.10",
        "does not exist",
        "no such user",
        "user unknown",
        "unknown user",
        "no such mailbox",
        "mailbox not found",
        "recipient not found",
        "invalid recipient",
        "address rejected",
    ]
    .iter()
    .any(|needle| reply.contains(needle))
}

/// Writes the message atomically; the file is named by the Message-ID, so a resend of the same
/// step replaces its file instead of adding a second one.
async fn write_eml(dir: &std::path::Path, message: &Message) -> anyhow::Result<()> {
    let id = message
        .headers()
        .get_raw("Message-ID")
        .unwrap_or("message")
        .trim_matches(['<', '>'])
        .replace(
            |c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'),
            "_",
        );
    tokio::fs::create_dir_all(dir)
        .await
        .with_context(|| format!("cannot create the outbox {}", dir.display()))?;
    let path = dir.join(format!("{id}.eml"));
    let partial = dir.join(format!(".{id}.eml.partial"));
    tokio::fs::write(&partial, message.formatted())
        .await
        .with_context(|| format!("cannot write {}", partial.display()))?;
    tokio::fs::rename(&partial, &path)
        .await
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_does_not_exist_is_recognised() {
        assert!(says_no_such_mailbox(
            "permanent error (550): 5.1.1 <x@y>: Recipient address rejected: User unknown",
            None
        ));
        assert!(!says_no_such_mailbox(
            "permanent error (554): message rejected as spam",
            None
        ));
    }
}
