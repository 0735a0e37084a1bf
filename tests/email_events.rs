//! Bounces and complaints from the email provider, through real HTTP, SQLite and SMTP: each
//! provider's documented payload (tests/samples/email_events/), signed with test keys as the
//! provider signs it. A hard bounce or a complaint naming a reminder sent suppresses the address
//! and stops the next step; a soft bounce does not; one naming no reminder sent to the address
//! (which anyone holding the URL can post) changes nothing; a wrong signature is 401.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::smtp;

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{Duration, Utc};
use common::{TOKEN, TestApp};
use hmac::{Hmac, Mac};
use quicket_followup::config::SendWindow;
use quicket_followup::domain::OrderState;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};
use sha2::Sha256;
use smtp::SmtpServer;
use warp::Filter;

const BUYER: &str = "lerato@mail.co.za";
const MAILGUN_KEY: &str = "key-test-0123456789abcdef";

const POSTMARK_BOUNCE: &str = include_str!("samples/email_events/postmark_bounce.json");
const POSTMARK_SOFT: &str = include_str!("samples/email_events/postmark_soft_bounce.json");
const POSTMARK_COMPLAINT: &str = include_str!("samples/email_events/postmark_spam_complaint.json");
const MAILGUN_PERMANENT: &str = include_str!("samples/email_events/mailgun_failed_permanent.json");
const MAILGUN_TEMPORARY: &str = include_str!("samples/email_events/mailgun_failed_temporary.json");
const MAILGUN_COMPLAINED: &str = include_str!("samples/email_events/mailgun_complained.json");
const SENDGRID_EVENTS: &str = include_str!("samples/email_events/sendgrid_events.json");
const SES_BOUNCE: &str = include_str!("samples/email_events/ses_bounce.json");
const SES_COMPLAINT: &str = include_str!("samples/email_events/ses_complaint.json");
const SNS_CONFIRMATION: &str =
    include_str!("samples/email_events/sns_subscription_confirmation.json");
const SNS_NOTIFICATION: &str = include_str!("samples/email_events/sns_notification.json");
const SNS_CERT: &str = include_str!("samples/email_events/test_keys/sns_signing_cert.pem");
const SNS_KEY: &[u8] = include_bytes!("samples/email_events/test_keys/sns_signing_key.pk8");

/// A SendGrid-style key pair: the private half signs, the public half goes in the config.
struct SendgridKeys {
    pair: EcdsaKeyPair,
    public_base64: String,
}

fn sendgrid_keys() -> SendgridKeys {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    // A P-256 SubjectPublicKeyInfo, as SendGrid shows its verification key: prefix, then the point.
    let mut spki = vec![
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    spki.extend_from_slice(pair.public_key().as_ref());
    SendgridKeys {
        pair,
        public_base64: STANDARD.encode(spki),
    }
}

/// An app that sends through `smtp` with two steps an hour and a day after the checkout.
async fn app(smtp: &SmtpServer, sendgrid: &SendgridKeys) -> TestApp {
    let public = sendgrid.public_base64.clone();
    TestApp::spawn_with(move |c| {
        common::via_smtp(c, smtp);
        c.email.mailgun_signing_key = MAILGUN_KEY.into();
        c.email.sendgrid_public_key = public;
        c.email.sns_trust_localhost = true;
        c.schedule.send_window = SendWindow::parse("").unwrap();
        let when = [OrderState::Started, OrderState::Cancelled];
        c.reminders = vec![
            common::step("first", 60, &when, "abandoned"),
            common::step("second", 24 * 60, &when, "abandoned"),
        ];
    })
    .await
}

/// Posts a started checkout and runs the pass that sends the first step; returns its Message-ID
/// without the angle brackets.
async fn first_reminder_sent(app: &TestApp, smtp: &SmtpServer) -> String {
    app.post_ok(common::hook("R-1", "checkout_started")).await;
    let report = app.pass_at(Utc::now() + Duration::minutes(61)).await;
    assert_eq!(report.counts.sent, 1, "{report:?}");
    let received = smtp.received();
    assert_eq!(received.len(), 1);
    let id = received[0].header("Message-ID").unwrap();
    id.trim().trim_matches(['<', '>']).to_string()
}

/// Runs the pass at which the second step would be due; returns how many emails went out.
async fn second_step_sends(app: &TestApp) -> u64 {
    app.pass_at(Utc::now() + Duration::hours(25))
        .await
        .counts
        .sent
}

fn url(app: &TestApp, provider: &str) -> String {
    format!("{}/webhooks/email-events/{provider}/{TOKEN}", app.base)
}

async fn post(
    app: &TestApp,
    provider: &str,
    headers: &[(&str, String)],
    body: String,
) -> (u16, Value) {
    let mut request = app
        .client
        .post(url(app, provider))
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.body(body).send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn kept_requests(app: &TestApp) -> i64 {
    app.store()
        .read(|conn| Ok(conn.query_row("SELECT count(*) FROM email_deliveries", [], |r| r.get(0))?))
        .await
        .unwrap()
}

async fn source_of(app: &TestApp, email: &str) -> Option<String> {
    app.store()
        .suppressions()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.email == email)
        .map(|s| match (s.event_id, s.step) {
            (Some(e), Some(step)) => format!("{} {e} {step}", s.source),
            _ => s.source,
        })
}

async fn timeline_titles(app: &TestApp) -> Vec<String> {
    app.store()
        .timeline(BUYER, "456")
        .await
        .unwrap()
        .unwrap()
        .entries
        .into_iter()
        .map(|e| e.title)
        .collect()
}

fn with_address(sample: &str, from: &str) -> String {
    sample.replace(from, BUYER)
}

/// A Postmark sample about `BUYER`, naming `message_id` as the metadata our header sets.
fn postmark(sample: &str, from: &str, message_id: Option<&str>) -> String {
    let mut value: Value = serde_json::from_str(&with_address(sample, from)).unwrap();
    if let Some(id) = message_id {
        value["Metadata"] = json!({"message-id": format!("<{id}>")});
    }
    value.to_string()
}

fn mailgun_signed(sample: &str, from: &str, message_id: Option<&str>, key: &str) -> String {
    let mut value: Value = serde_json::from_str(&with_address(sample, from)).unwrap();
    if let Some(id) = message_id {
        value["event-data"]["message"]["headers"]["message-id"] = json!(id);
    }
    let (timestamp, token) = (
        "1764576000",
        "b6d6f1a2c3e4f5061728394a5b6c7d8e9f0a1b2c3d4e5f6a7b",
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("{timestamp}{token}").as_bytes());
    let signature: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    value["signature"] = json!({"timestamp": timestamp, "token": token, "signature": signature});
    value.to_string()
}

fn sendgrid_headers(keys: &SendgridKeys, body: &str) -> Vec<(&'static str, String)> {
    let timestamp = "1764576000";
    let rng = ring::rand::SystemRandom::new();
    let signed = [timestamp.as_bytes(), body.as_bytes()].concat();
    let signature = keys.pair.sign(&rng, &signed).unwrap();
    vec![
        (
            "X-Twilio-Email-Event-Webhook-Signature",
            STANDARD.encode(signature.as_ref()),
        ),
        ("X-Twilio-Email-Event-Webhook-Timestamp", timestamp.into()),
    ]
}

#[tokio::test]
async fn a_postmark_hard_bounce_suppresses_the_address_and_stops_the_next_step() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, &sendgrid_keys()).await;
    let message_id = first_reminder_sent(&app, &smtp).await;
    // Postmark gives back its own id, and ours as the metadata set by this header.
    assert_eq!(
        smtp.received()[0]
            .header("X-PM-Metadata-message-id")
            .as_deref(),
        Some(format!("<{message_id}>").as_str())
    );
    let body = postmark(POSTMARK_BOUNCE, "john@example.com", Some(&message_id));
    let (status, answer) = post(&app, "postmark", &[], body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "recorded");
    assert_eq!(
        (answer["hard_bounces"].clone(), answer["unmatched"].clone()),
        (json!(1), json!(0))
    );
    assert_eq!(
        source_of(&app, BUYER).await.as_deref(),
        Some("bounce 456 first")
    );
    assert!(
        timeline_titles(&app)
            .await
            .contains(&"hard bounce of first (reported by postmark)".to_string())
    );
    assert_eq!(second_step_sends(&app).await, 0);
    assert_eq!(smtp.received().len(), 1);
}

#[tokio::test]
async fn a_postmark_spam_complaint_suppresses_with_source_complaint() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, &sendgrid_keys()).await;
    let message_id = first_reminder_sent(&app, &smtp).await;
    let body = postmark(POSTMARK_COMPLAINT, "john@example.com", Some(&message_id));
    let (status, answer) = post(&app, "postmark", &[], body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        source_of(&app, BUYER).await.as_deref(),
        Some("complaint 456 first")
    );
    assert_eq!(second_step_sends(&app).await, 0);
    let rates = app
        .store()
        .email_rates(Utc::now() - Duration::days(7))
        .await
        .unwrap();
    assert_eq!((rates.sent, rates.complaints), (1, 1));
}

#[tokio::test]
async fn a_soft_bounce_is_counted_and_suppresses_nothing() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, &sendgrid_keys()).await;
    let message_id = first_reminder_sent(&app, &smtp).await;
    let body = postmark(POSTMARK_SOFT, "john@example.com", Some(&message_id));
    let (status, answer) = post(&app, "postmark", &[], body.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["soft_bounces"], 1);
    // The same report again (a provider's retry) is kept but counted once.
    assert_eq!(post(&app, "postmark", &[], body).await.0, 200);
    let mailgun = mailgun_signed(
        MAILGUN_TEMPORARY,
        "alice@example.com",
        Some(&message_id),
        MAILGUN_KEY,
    );
    assert_eq!(post(&app, "mailgun", &[], mailgun).await.0, 200);
    assert_eq!(source_of(&app, BUYER).await, None);
    let rates = app
        .store()
        .email_rates(Utc::now() - Duration::days(7))
        .await
        .unwrap();
    assert_eq!((rates.soft_bounces, rates.hard_bounces), (2, 0));
    assert_eq!(kept_requests(&app).await, 3);
    assert_eq!(second_step_sends(&app).await, 1);
}

#[tokio::test]
async fn a_signed_mailgun_failure_is_tied_to_its_reminder_by_message_id() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, &sendgrid_keys()).await;
    let message_id = first_reminder_sent(&app, &smtp).await;
    let body = mailgun_signed(
        MAILGUN_PERMANENT,
        "alice@example.com",
        Some(&message_id),
        MAILGUN_KEY,
    );
    let (status, answer) = post(&app, "mailgun", &[], body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        source_of(&app, BUYER).await.as_deref(),
        Some("bounce 456 first")
    );
    let stored: Option<String> = app
        .store()
        .read(|conn| Ok(conn.query_row("SELECT message_id FROM email_events", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(stored.as_deref(), Some(message_id.as_str()));
    assert_eq!(second_step_sends(&app).await, 0);
}

#[tokio::test]
async fn a_wrong_mailgun_signature_is_401_and_changes_nothing() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, &sendgrid_keys()).await;
    first_reminder_sent(&app, &smtp).await;
    for body in [
        mailgun_signed(MAILGUN_COMPLAINED, "alice@example.com", None, "another-key"),
        // The sample as published carries a signature made with Mailgun's own key.
        with_address(MAILGUN_COMPLAINED, "alice@example.com"),
        "{\"event-data\": {}}".to_string(),
        "garbage".to_string(),
    ] {
        let (status, answer) = post(&app, "mailgun", &[], body).await;
        assert_eq!(status, 401, "{answer}");
    }
    assert_eq!(source_of(&app, BUYER).await, None);
    assert_eq!(kept_requests(&app).await, 0);
    assert_eq!(second_step_sends(&app).await, 1);
    // And the right key works on the same payload, naming the second reminder.
    let second = smtp.received()[1].header("Message-ID").unwrap();
    let second = second.trim_matches(['<', '>']);
    let good = mailgun_signed(
        MAILGUN_COMPLAINED,
        "alice@example.com",
        Some(second),
        MAILGUN_KEY,
    );
    assert_eq!(post(&app, "mailgun", &[], good).await.0, 200);
    assert_eq!(
        source_of(&app, BUYER).await.as_deref(),
        Some("complaint 456 second")
    );
}

#[tokio::test]
async fn sendgrid_events_are_verified_with_ecdsa_and_the_bounce_and_spam_report_suppress() {
    let smtp = SmtpServer::start();
    let keys = sendgrid_keys();
    let app = app(&smtp, &keys).await;
    let message_id = first_reminder_sent(&app, &smtp).await;
    let body = with_address(SENDGRID_EVENTS, "example@test.com")
        .replace("14c5d75ce93.dfd.64b469@ismtpd-555", &message_id);
    let mut forged = sendgrid_headers(&keys, &body);
    forged[1].1 = "1764576001".into();
    let (status, _) = post(&app, "sendgrid", &forged, body.clone()).await;
    assert_eq!(status, 401);
    let (status, _) = post(&app, "sendgrid", &[], body.clone()).await;
    assert_eq!(status, 401);
    assert_eq!(kept_requests(&app).await, 0);
    assert_eq!(source_of(&app, BUYER).await, None);

    let headers = sendgrid_headers(&keys, &body);
    let (status, answer) = post(&app, "sendgrid", &headers, body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (
            answer["hard_bounces"].clone(),
            answer["complaints"].clone(),
            answer["ignored"].clone()
        ),
        (json!(1), json!(1), json!(2))
    );
    assert!(source_of(&app, BUYER).await.is_some());
    assert_eq!(second_step_sends(&app).await, 0);
}

/// A local stand-in for SNS: serves the signing certificate and records confirmation GETs.
struct SnsStandIn {
    base: String,
    confirmations: Arc<Mutex<Vec<String>>>,
    key: RsaKeyPair,
}

impl SnsStandIn {
    async fn start() -> SnsStandIn {
        let confirmations = Arc::new(Mutex::new(Vec::new()));
        let seen = confirmations.clone();
        let cert = warp::path!("SimpleNotificationService-test.pem").map(|| SNS_CERT);
        let confirm = warp::path!("confirm")
            .and(warp::query::raw())
            .map(move |q: String| {
                seen.lock().unwrap().push(q);
                "<ConfirmSubscriptionResponse/>"
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(warp::serve(cert.or(confirm)).incoming(listener).run());
        SnsStandIn {
            base,
            confirmations,
            key: RsaKeyPair::from_pkcs8(SNS_KEY).unwrap(),
        }
    }

    /// Signs an SNS message as SNS does (SignatureVersion 2, SHA256withRSA), from the documented
    /// field order, and points it at this stand-in's certificate.
    fn sign(&self, mut message: Value) -> String {
        message["SignatureVersion"] = json!("2");
        message["SigningCertURL"] =
            json!(format!("{}/SimpleNotificationService-test.pem", self.base));
        let names: &[&str] = if message["Type"] == "Notification" {
            &[
                "Message",
                "MessageId",
                "Subject",
                "Timestamp",
                "TopicArn",
                "Type",
            ]
        } else {
            &[
                "Message",
                "MessageId",
                "SubscribeURL",
                "Timestamp",
                "Token",
                "TopicArn",
                "Type",
            ]
        };
        let mut text = String::new();
        for name in names {
            if let Some(value) = message[*name].as_str() {
                text.push_str(&format!("{name}\n{value}\n"));
            }
        }
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                text.as_bytes(),
                &mut signature,
            )
            .unwrap();
        message["Signature"] = json!(STANDARD.encode(signature));
        message.to_string()
    }
}

fn ses_notification(ses_message: &str, from: &str, message_id: &str) -> Value {
    let mut inner: Value = serde_json::from_str(&with_address(ses_message, from)).unwrap();
    inner["mail"]["commonHeaders"]["messageId"] = json!(format!("<{message_id}>"));
    let mut outer: Value = serde_json::from_str(SNS_NOTIFICATION).unwrap();
    outer["Message"] = json!(inner.to_string());
    outer
}

#[tokio::test]
async fn an_sns_subscription_is_confirmed_at_its_subscribe_url() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, &sendgrid_keys()).await;
    let sns = SnsStandIn::start().await;
    let mut message: Value = serde_json::from_str(SNS_CONFIRMATION).unwrap();
    message["SubscribeURL"] = json!(format!(
        "{}/confirm?Action=ConfirmSubscription&Token=abc",
        sns.base
    ));
    let (status, answer) = post(&app, "ses", &[], sns.sign(message.clone())).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "confirmed");
    assert_eq!(
        sns.confirmations.lock().unwrap().clone(),
        vec!["Action=ConfirmSubscription&Token=abc".to_string()]
    );
    // A confirmation whose signature does not match is not followed.
    message["Token"] = json!("forged");
    let mut forged: Value = serde_json::from_str(&sns.sign(message.clone())).unwrap();
    forged["SubscribeURL"] = json!(format!("{}/confirm?Action=Forged", sns.base));
    assert_eq!(post(&app, "ses", &[], forged.to_string()).await.0, 401);
    assert_eq!(sns.confirmations.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn ses_bounces_and_complaints_through_sns_are_verified_and_suppress() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, &sendgrid_keys()).await;
    let message_id = first_reminder_sent(&app, &smtp).await;
    let sns = SnsStandIn::start().await;

    // Tampered after signing: refused.
    let signed = sns.sign(ses_notification(
        SES_BOUNCE,
        "jane@example.com",
        &message_id,
    ));
    let mut tampered: Value = serde_json::from_str(&signed).unwrap();
    tampered["Message"] = json!(
        tampered["Message"]
            .as_str()
            .unwrap()
            .replace(BUYER, "someone@mail.co.za")
    );
    assert_eq!(post(&app, "ses", &[], tampered.to_string()).await.0, 401);
    // A certificate from anywhere but SNS: refused.
    let mut elsewhere: Value = serde_json::from_str(&signed).unwrap();
    elsewhere["SigningCertURL"] =
        json!("https://certs.evil.example/SimpleNotificationService-x.pem");
    assert_eq!(post(&app, "ses", &[], elsewhere.to_string()).await.0, 401);
    assert_eq!(kept_requests(&app).await, 0);

    let (status, answer) = post(&app, "ses", &[], signed).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["hard_bounces"], 1);
    assert_eq!(
        source_of(&app, BUYER).await.as_deref(),
        Some("bounce 456 first")
    );

    app.store()
        .remove_suppression(
            BUYER,
            quicket_followup::store::privacy::Removal {
                by: quicket_followup::store::privacy::RemovedBy::Cli,
                client: String::new(),
                reason: "test".into(),
            },
            Utc::now(),
        )
        .await
        .unwrap();
    let complaint = sns.sign(ses_notification(
        SES_COMPLAINT,
        "richard@example.com",
        &message_id,
    ));
    let (status, answer) = post(&app, "ses", &[], complaint).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        source_of(&app, BUYER).await.as_deref(),
        Some("complaint 456 first")
    );
    assert_eq!(second_step_sends(&app).await, 0);
}

#[tokio::test]
async fn garbage_at_the_email_events_route_gets_a_clear_answer_and_the_service_stays_up() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, &sendgrid_keys()).await;
    let wrong_token = format!(
        "{}/webhooks/email-events/postmark/wrong-token-0123456789",
        app.base
    );
    let answer = app
        .client
        .post(wrong_token)
        .body(POSTMARK_BOUNCE)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 401);
    let (status, answer) = post(&app, "sparkpost", &[], POSTMARK_BOUNCE.into()).await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("postmark, mailgun"),
        "{answer}"
    );
    for body in ["", "not json", "[1, 2]", "{\"Type\": 3}", "\u{0}\u{ffff}"] {
        let (status, _) = post(&app, "postmark", &[], body.into()).await;
        assert!(status == 200 || status == 400, "{status} for {body:?}");
        let (status, _) = post(&app, "ses", &[], body.into()).await;
        assert_eq!(status, 400, "{body:?}");
        let (status, _) = post(&app, "sendgrid", &[], body.into()).await;
        assert_eq!(status, 401, "{body:?}");
    }
    let big = "x".repeat(2 * 1024 * 1024);
    let (status, _) = post(&app, "postmark", &[], big).await;
    assert_eq!(status, 413);
    let health = app.get("/healthz").await;
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(app.store().suppressions().await.unwrap().len(), 0);
}

#[tokio::test]
async fn forget_removes_the_bounces_and_the_raw_bodies_naming_the_address() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, &sendgrid_keys()).await;
    let message_id = first_reminder_sent(&app, &smtp).await;
    let body = postmark(POSTMARK_BOUNCE, "john@example.com", Some(&message_id));
    assert_eq!(post(&app, "postmark", &[], body).await.0, 200);
    assert!(app.store().is_suppressed(BUYER).await.unwrap());
    app.store().forget(BUYER).await.unwrap();
    let (events, bodies): (i64, i64) = app
        .store()
        .read(|conn| {
            Ok(conn.query_row(
                "SELECT (SELECT count(*) FROM email_events),
                        (SELECT count(*) FROM email_deliveries WHERE body IS NOT NULL)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)
        })
        .await
        .unwrap();
    assert_eq!((events, bodies), (0, 0));
    // The suppression stays: that is what keeps a bounced address from being emailed again.
    assert!(app.store().is_suppressed(BUYER).await.unwrap());
}

/// Anyone holding the URL (it is Quicket's, and Postmark signs nothing) can post a bounce or a
/// complaint about any address. One that names no reminder sent to that address is kept and
/// listed, and changes nothing: nobody suppressed, nothing counted toward pausing.
#[tokio::test]
async fn bounces_and_complaints_naming_no_email_sent_to_the_address_change_nothing() {
    let smtp = SmtpServer::start();
    let keys = sendgrid_keys();
    let app = app(&smtp, &keys).await;
    let message_id = first_reminder_sent(&app, &smtp).await;
    let sns = SnsStandIn::start().await;
    let not_ours = "0123456789abcdef.reminder@elsewhere.co.za";
    // Our own Message-ID, but reported for another address (that got no email from us).
    let other = "thandi@mail.co.za";
    let mut forged = vec![
        (
            "postmark",
            vec![],
            postmark(POSTMARK_BOUNCE, "john@example.com", None),
        ),
        (
            "postmark",
            vec![],
            postmark(POSTMARK_COMPLAINT, "john@example.com", Some(not_ours)),
        ),
        (
            "postmark",
            vec![],
            postmark(POSTMARK_COMPLAINT, "john@example.com", Some(&message_id))
                .replace(BUYER, other),
        ),
        (
            "mailgun",
            vec![],
            mailgun_signed(MAILGUN_PERMANENT, "alice@example.com", None, MAILGUN_KEY),
        ),
        (
            "mailgun",
            vec![],
            mailgun_signed(
                MAILGUN_COMPLAINED,
                "alice@example.com",
                Some(not_ours),
                MAILGUN_KEY,
            ),
        ),
    ];
    // The Message-ID a stranger can work out from the address, the event and the step (the
    // unkeyed hash earlier versions used): not ours.
    let guessed: String = <Sha256 as sha2::Digest>::digest(format!("{BUYER}\n456\nfirst"))[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let guessed = format!("{guessed}.reminder@shop.co.za");
    forged.push((
        "postmark",
        vec![],
        postmark(POSTMARK_COMPLAINT, "john@example.com", Some(&guessed)),
    ));
    // SendGrid's sample as published: its smtp-id is not one of ours.
    let sendgrid = with_address(SENDGRID_EVENTS, "example@test.com");
    forged.push(("sendgrid", sendgrid_headers(&keys, &sendgrid), sendgrid));
    forged.push((
        "ses",
        vec![],
        sns.sign(ses_notification(
            SES_COMPLAINT,
            "richard@example.com",
            not_ours,
        )),
    ));
    for (provider, headers, body) in forged {
        let (status, answer) = post(&app, provider, &headers, body).await;
        assert_eq!(status, 200, "{provider}: {answer}");
        assert_eq!(answer["suppressed"], 0, "{provider}: {answer}");
        assert!(
            answer["unmatched"].as_u64().unwrap() >= 1,
            "{provider}: {answer}"
        );
    }
    // Kept, every one of them, and listed on the buyer's timeline as unmatched.
    assert_eq!(kept_requests(&app).await, 8);
    let timeline = app.store().timeline(BUYER, "456").await.unwrap().unwrap();
    let unmatched: Vec<_> = timeline
        .entries
        .iter()
        .filter(|e| e.title.starts_with("unmatched"))
        .collect();
    assert_eq!(unmatched.len(), 8, "{:?}", timeline.entries);
    assert!(
        unmatched.iter().all(|e| e
            .detail
            .as_deref()
            .unwrap_or_default()
            .starts_with("changed nothing")),
        "{unmatched:?}"
    );
    assert!(
        unmatched
            .iter()
            .any(|e| e.title == "unmatched hard bounce (reported by postmark)"),
        "{unmatched:?}"
    );
    // Nothing changed: nobody suppressed, nothing counted, the next step goes out.
    assert!(app.store().suppressions().await.unwrap().is_empty());
    let rates = app
        .store()
        .email_rates(Utc::now() - Duration::days(7))
        .await
        .unwrap();
    assert_eq!(
        (rates.sent, rates.hard_bounces, rates.complaints),
        (1, 0, 0)
    );
    assert_eq!(second_step_sends(&app).await, 1);
    // The same report naming the reminder sent to BUYER does count.
    let real = postmark(POSTMARK_COMPLAINT, "john@example.com", Some(&message_id));
    let (status, answer) = post(&app, "postmark", &[], real).await;
    assert_eq!(
        (status, answer["suppressed"].clone()),
        (200, json!(1)),
        "{answer}"
    );
}

/// Postmark's basic-auth credentials, when configured, are a second check beside the token.
#[tokio::test]
async fn postmark_basic_auth_credentials_when_set_are_required() {
    let smtp = SmtpServer::start();
    let app = TestApp::spawn_with(|c| {
        common::via_smtp(c, &smtp);
        c.email.postmark_webhook_user = "postmark".into();
        c.email.postmark_webhook_password = "a-long-random-password-0123".into();
        c.schedule.send_window = SendWindow::parse("").unwrap();
        let when = [OrderState::Started, OrderState::Cancelled];
        c.reminders = vec![common::step("first", 60, &when, "abandoned")];
    })
    .await;
    let message_id = first_reminder_sent(&app, &smtp).await;
    let body = postmark(POSTMARK_BOUNCE, "john@example.com", Some(&message_id));
    let basic = |user: &str, password: &str| {
        vec![(
            "Authorization",
            format!("Basic {}", STANDARD.encode(format!("{user}:{password}"))),
        )]
    };
    for headers in [
        vec![],
        basic("postmark", "wrong"),
        basic("someone", "a-long-random-password-0123"),
        basic("postmark", "a-long-random-password-0123x"),
        vec![(
            "Authorization",
            "Bearer a-long-random-password-0123".to_string(),
        )],
    ] {
        let (status, answer) = post(&app, "postmark", &headers, body.clone()).await;
        assert_eq!(status, 401, "{headers:?}: {answer}");
    }
    assert_eq!(kept_requests(&app).await, 0);
    assert!(!app.store().is_suppressed(BUYER).await.unwrap());
    let headers = basic("postmark", "a-long-random-password-0123");
    let (status, answer) = post(&app, "postmark", &headers, body).await;
    assert_eq!(
        (status, answer["suppressed"].clone()),
        (200, json!(1)),
        "{answer}"
    );
}

#[tokio::test]
async fn mailgun_or_sendgrid_without_a_key_configured_answers_503_naming_the_missing_key() {
    let app = TestApp::spawn().await;
    for (provider, body, key) in [
        (
            "mailgun",
            r#"{"signature":{},"event-data":{}}"#,
            "email.mailgun_signing_key",
        ),
        ("sendgrid", "[]", "email.sendgrid_public_key"),
    ] {
        let response = app
            .client
            .post(url(&app, provider))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 503, "{provider}");
        let answer: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.contains(key) && error.contains("is not set") && !error.contains("database"),
            "{provider}: {error}"
        );
    }
}
