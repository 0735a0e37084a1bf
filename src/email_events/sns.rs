//! Amazon SNS, which carries SES's bounces and complaints: the message envelope, its signature
//! (checked against the signing certificate fetched from an `https://sns.<region>.amazonaws.com`
//! URL and cached), and confirming a subscription by GETting its `SubscribeURL`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use rustls_pki_types::CertificateDer;

use crate::error_chain;
use rustls_pki_types::pem::PemObject;
use serde::Deserialize;

use super::ParseError;
use super::signature::{self, SignatureError};

/// Largest certificate or confirmation answer read.
const MAX_ANSWER: usize = 64 * 1024;
/// Certificates kept (SNS uses one per region, changed every few years).
const MAX_CACHED: usize = 16;

/// The kinds of SNS message an HTTP endpoint receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum MessageType {
    /// A published message: here an SES bounce or complaint.
    Notification,
    /// Sent once when the subscription is made; confirmed by GETting `SubscribeURL`.
    SubscriptionConfirmation,
    /// Sent when the subscription is removed.
    UnsubscribeConfirmation,
}

/// An SNS message as posted to an HTTP endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Envelope {
    /// What kind of message.
    #[serde(rename = "Type")]
    pub kind: MessageType,
    /// SNS's id of the message.
    pub message_id: String,
    /// The topic.
    pub topic_arn: String,
    /// The subject, on notifications that have one.
    #[serde(default)]
    pub subject: Option<String>,
    /// The payload: for SES, a JSON document as a string.
    pub message: String,
    /// When SNS sent it.
    pub timestamp: String,
    /// The confirmation token.
    #[serde(default)]
    pub token: Option<String>,
    /// The URL that confirms the subscription.
    #[serde(default, rename = "SubscribeURL")]
    pub subscribe_url: Option<String>,
    /// 1 (SHA1withRSA) or 2 (SHA256withRSA).
    pub signature_version: String,
    /// Base64.
    pub signature: String,
    /// Where the signing certificate is.
    #[serde(rename = "SigningCertURL")]
    pub signing_cert_url: String,
}

impl Envelope {
    /// Reads an SNS message.
    pub fn parse(body: &[u8]) -> Result<Envelope, ParseError> {
        serde_json::from_slice(body)
            .map_err(|e| ParseError(format!("the body is not an SNS message: {e}")))
    }

    /// The text SNS signs: the listed fields as `Name\nvalue\n`, in byte order of the names.
    pub fn string_to_sign(&self) -> String {
        let mut fields: Vec<(&str, &str)> =
            vec![("Message", &self.message), ("MessageId", &self.message_id)];
        match self.kind {
            MessageType::Notification => {
                if let Some(subject) = &self.subject {
                    fields.push(("Subject", subject));
                }
            }
            _ => {
                fields.push(("SubscribeURL", self.subscribe_url.as_deref().unwrap_or("")));
            }
        }
        fields.push(("Timestamp", &self.timestamp));
        if self.kind != MessageType::Notification {
            fields.push(("Token", self.token.as_deref().unwrap_or("")));
        }
        fields.push(("TopicArn", &self.topic_arn));
        let kind = match self.kind {
            MessageType::Notification => "Notification",
            MessageType::SubscriptionConfirmation => "SubscriptionConfirmation",
            MessageType::UnsubscribeConfirmation => "UnsubscribeConfirmation",
        };
        fields.push(("Type", kind));
        fields
            .into_iter()
            .map(|(name, value)| format!("{name}\n{value}\n"))
            .collect()
    }
}

/// Why an SNS message could not be checked or confirmed.
#[derive(Debug, thiserror::Error)]
pub enum SnsError {
    /// Not from SNS: refused (401), nothing kept.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The certificate or the confirmation URL could not be reached: SNS should try again (503).
    #[error("{0}")]
    Unavailable(String),
}

/// Fetches and caches SNS signing certificates, and confirms subscriptions.
pub struct Sns {
    http: crate::http_client::HttpsClient,
    certificates: Mutex<HashMap<String, Vec<u8>>>,
    allow_local: bool,
    timeout: Duration,
}

impl Sns {
    /// A client. `allow_local` also trusts `http://127.0.0.1` URLs: for tests, which stand in for
    /// SNS locally (it cannot be set from the config file).
    pub fn new(allow_local: bool, timeout: Duration) -> anyhow::Result<Sns> {
        Ok(Sns {
            http: crate::http_client::https_client("Amazon SNS")?,
            certificates: Mutex::new(HashMap::new()),
            allow_local,
            timeout,
        })
    }

    /// Whether a URL is one SNS would give: https on exactly `sns.<region>.amazonaws.com` (or
    /// `sns.cn-<...>.amazonaws.com.cn` in China), with no port (or, for tests, http on
    /// 127.0.0.1). Anything looser lets in other amazonaws.com hosts that anyone can fill, such
    /// as an S3 bucket named `sns` (`sns.s3.amazonaws.com`).
    pub fn trusted(&self, text: &str) -> Result<url::Url, SignatureError> {
        let refuse = |why: &str| SignatureError::Missing(format!("{text:?} {why}"));
        let url = url::Url::parse(text).map_err(|_| refuse("is not a URL"))?;
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let region = host.strip_prefix("sns.").and_then(|rest| {
            rest.strip_suffix(".amazonaws.com")
                .filter(|r| !r.starts_with("cn-"))
                .or_else(|| {
                    rest.strip_suffix(".amazonaws.com.cn")
                        .filter(|r| r.starts_with("cn-"))
                })
        });
        let amazon = url.scheme() == "https"
            && region.is_some_and(is_region)
            && url.port().is_none()
            && url.username().is_empty()
            && url.password().is_none();
        let local = self.allow_local && url.scheme() == "http" && host == "127.0.0.1";
        if amazon || local {
            Ok(url)
        } else {
            Err(refuse("is not an https://sns.<region>.amazonaws.com URL"))
        }
    }

    /// Checks the message's signature against its signing certificate.
    pub async fn verify(&self, envelope: &Envelope) -> Result<(), SnsError> {
        let url = self.trusted(&envelope.signing_cert_url)?;
        if !url.path().ends_with(".pem") {
            return Err(SignatureError::Missing("SigningCertURL is not a .pem file".into()).into());
        }
        let cached = self
            .certificates
            .lock()
            .ok()
            .and_then(|c| c.get(url.as_str()).cloned());
        let der = match cached {
            Some(der) => der,
            None => {
                let pem = self.get(&url).await?;
                let der = CertificateDer::from_pem_slice(&pem)
                    .map_err(|e| {
                        SignatureError::BadKey(format!(
                            "the SNS signing certificate is not a PEM certificate: {e}"
                        ))
                    })?
                    .to_vec();
                if let Ok(mut cache) = self.certificates.lock() {
                    if cache.len() >= MAX_CACHED {
                        cache.clear();
                    }
                    cache.insert(url.to_string(), der.clone());
                }
                der
            }
        };
        signature::sns(
            &der,
            &envelope.signature_version,
            &envelope.string_to_sign(),
            &envelope.signature,
        )?;
        Ok(())
    }

    /// Confirms a (verified) subscription by GETting its `SubscribeURL`.
    pub async fn confirm(&self, envelope: &Envelope) -> Result<(), SnsError> {
        let url = envelope
            .subscribe_url
            .as_deref()
            .ok_or_else(|| SignatureError::Missing("no SubscribeURL".into()))?;
        let url = self.trusted(url)?;
        self.get(&url).await?;
        Ok(())
    }

    async fn get(&self, url: &url::Url) -> Result<Vec<u8>, SnsError> {
        let request = hyper::Request::get(url.as_str())
            .header(
                "user-agent",
                concat!("quicket-followup/", env!("CARGO_PKG_VERSION")),
            )
            .body(http_body_util::Empty::new())
            .map_err(|e| SnsError::Unavailable(e.to_string()))?;
        let host = url.host_str().unwrap_or_default().to_string();
        let fetch = async {
            let answer = self.http.request(request).await.map_err(|e| {
                SnsError::Unavailable(format!("cannot reach {host}: {}", error_chain(e)))
            })?;
            let status = answer.status();
            if !status.is_success() {
                return Err(SnsError::Unavailable(format!("{host} answered {status}")));
            }
            use http_body_util::BodyExt;
            let body = http_body_util::Limited::new(answer.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| {
                    SnsError::Unavailable(format!("{host}'s answer could not be read: {e}"))
                })?
                .to_bytes();
            Ok(body.to_vec())
        };
        tokio::time::timeout(self.timeout, fetch)
            .await
            .unwrap_or_else(|_| {
                Err(SnsError::Unavailable(format!(
                    "{host} did not answer within {}s",
                    self.timeout.as_secs()
                )))
            })
    }
}

/// Whether `text` is an AWS region name: lowercase words joined by '-', the last a number
/// (`us-east-1`, `af-south-1`, `us-gov-west-1`, `cn-northwest-1`), the first two letters.
fn is_region(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return false;
    };
    parts.len() >= 3
        && first.len() == 2
        && first.bytes().all(|b| b.is_ascii_lowercase())
        && !last.is_empty()
        && last.bytes().all(|b| b.is_ascii_digit())
        && parts[1..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(kind: &str) -> Envelope {
        let body = format!(
            r#"{{"Type":"{kind}","MessageId":"m","Token":"t","TopicArn":"arn","Message":"hi","SubscribeURL":"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription","Timestamp":"2012-04-26T20:45:04.751Z","SignatureVersion":"1","Signature":"c2ln","SigningCertURL":"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"}}"#
        );
        Envelope::parse(body.as_bytes()).unwrap()
    }

    #[test]
    fn the_string_to_sign_follows_the_documented_order() {
        assert_eq!(
            envelope("Notification").string_to_sign(),
            "Message\nhi\nMessageId\nm\nTimestamp\n2012-04-26T20:45:04.751Z\nTopicArn\narn\nType\nNotification\n"
        );
        assert_eq!(
            envelope("SubscriptionConfirmation").string_to_sign(),
            "Message\nhi\nMessageId\nm\nSubscribeURL\nhttps://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription\nTimestamp\n2012-04-26T20:45:04.751Z\nToken\nt\nTopicArn\narn\nType\nSubscriptionConfirmation\n"
        );
    }

    #[test]
    fn only_amazon_urls_are_trusted() {
        let sns = Sns::new(false, Duration::from_secs(1)).unwrap();
        for good in [
            "https://sns.eu-west-1.amazonaws.com/x.pem",
            "https://sns.af-south-1.amazonaws.com/x.pem",
            "https://SNS.us-gov-west-1.amazonaws.com/x.pem",
            "https://sns.cn-north-1.amazonaws.com.cn/x.pem",
        ] {
            assert!(sns.trusted(good).is_ok(), "{good}");
        }
        for bad in [
            // Other amazonaws.com hosts that anyone can fill: an S3 bucket named "sns" ...
            "https://sns.s3.amazonaws.com/x.pem",
            "https://sns.s3-eu-west-1.amazonaws.com/x.pem",
            "https://sns.s3.eu-west-1.amazonaws.com/x.pem",
            "https://sns.evil.execute-api.eu-west-1.amazonaws.com/x.pem",
            "https://sns.eu-west-1.elb.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com.cn/x.pem",
            "https://sns.cn-north-1.amazonaws.com/x.pem",
            "https://sns..amazonaws.com/x.pem",
            "https://sns.amazonaws.com/x.pem",
            "https://user:pw@sns.eu-west-1.amazonaws.com/x.pem",
            "http://sns.eu-west-1.amazonaws.com/x.pem",
            "https://sns.eu-west-1.amazonaws.com.evil.example/x.pem",
            "https://evilamazonaws.com/x.pem",
            "https://s3.amazonaws.com/x.pem",
            "https://sns.eu-west-1.amazonaws.com:8443/x.pem",
            "http://127.0.0.1:1/x.pem",
            "not a url",
        ] {
            assert!(sns.trusted(bad).is_err(), "{bad}");
        }
        let local = Sns::new(true, Duration::from_secs(1)).unwrap();
        assert!(local.trusted("http://127.0.0.1:1/x.pem").is_ok());
        assert!(local.trusted("http://10.0.0.1/x.pem").is_err());
    }
}
