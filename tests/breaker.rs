//! The circuit breaker, through real HTTP, SQLite and SMTP: 200 reminders sent and one complaint
//! pause all sending (nothing dropped, `/healthz` says why, `/metrics` has the rates); Resume
//! restarts it and the reminders that waited go out once each.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::smtp;

use chrono::Utc;
use common::{TOKEN, TestApp, hook};
use quicket_followup::config::SendWindow;
use quicket_followup::domain::OrderState;
use serde_json::Value;
use smtp::SmtpServer;

const COMPLAINT: &str = include_str!("samples/email_events/postmark_spam_complaint.json");
const PASSWORD: &str = "breaker-test-password";

/// Reminders due as soon as a checkout arrives, so that passes run at the wall clock's now.
async fn app(smtp: &SmtpServer) -> TestApp {
    TestApp::spawn_with(|c| {
        common::via_smtp(c, smtp);
        c.email.max_per_minute = 1_000_000;
        c.server.admin_password = PASSWORD.into();
        c.schedule.send_window = SendWindow::parse("").unwrap();
        c.schedule.dormant_after = std::time::Duration::ZERO;
        c.reminders = vec![common::step("now", 0, &[OrderState::Started], "abandoned")];
    })
    .await
}

/// Posts a Postmark spam complaint about `buyer`, naming the reminder sent to them when `named`
/// (else naming none); returns the answer.
async fn complain(app: &TestApp, smtp: &SmtpServer, buyer: &str, named: bool) -> Value {
    let mut complaint: Value =
        serde_json::from_str(&COMPLAINT.replace("john@example.com", buyer)).unwrap();
    if named {
        let sent = smtp
            .received()
            .into_iter()
            .find(|m| m.to.iter().any(|t| t == buyer))
            .unwrap();
        complaint["Metadata"] =
            serde_json::json!({"message-id": sent.header("Message-ID").unwrap()});
    }
    let url = format!("{}/webhooks/email-events/postmark/{TOKEN}", app.base);
    let answer = app
        .client
        .post(url)
        .body(complaint.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    serde_json::from_str(&answer.text().await.unwrap()).unwrap()
}

async fn checkouts(app: &TestApp, range: std::ops::Range<usize>) {
    for n in range {
        let buyer = format!("buyer{n}@mail.co.za");
        let checkout = hook(&format!("R-{n}"), "checkout_started").email(&buyer);
        app.post_ok(checkout.amount(450).no_tickets()).await;
    }
}

#[tokio::test]
async fn two_hundred_sends_and_one_complaint_pause_sending_until_resumed() {
    let smtp = SmtpServer::start();
    let app = app(&smtp).await;
    checkouts(&app, 0..200).await;
    assert_eq!(app.pass_at(Utc::now()).await.counts.sent, 200);
    assert_eq!(app.get_json("/healthz").await["sending"]["state"], "active");

    // Complaints naming no email sent (anyone holding the URL can post them) count for nothing.
    for n in 0..20 {
        let answer = complain(&app, &smtp, &format!("buyer{n}@mail.co.za"), false).await;
        assert_eq!(answer["unmatched"], 1, "{answer}");
    }
    checkouts(&app, 300..302).await;
    let report = app.pass_at(Utc::now()).await;
    assert_eq!((report.counts.sent, report.paused.clone()), (2, None));
    // One naming the reminder sent to buyer7 pauses (1 in 202 is 0.50%).
    let answer = complain(&app, &smtp, "buyer7@mail.co.za", true).await;
    assert_eq!(answer["unmatched"], 0, "{answer}");

    checkouts(&app, 200..205).await;
    let report = app.pass_at(Utc::now()).await;
    assert_eq!(report.counts.sent, 0);
    assert!(
        report
            .paused
            .as_deref()
            .unwrap()
            .contains("complaint rate 0.50%"),
        "{report:?}"
    );
    assert_eq!(smtp.received().len(), 202);
    // Paused is not broken: the passes still run and /healthz answers 200, saying why.
    let answer = app
        .client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let body: Value = serde_json::from_str(&answer.text().await.unwrap()).unwrap();
    assert_eq!(body["sending"]["state"], "paused", "{body}");
    assert!(
        body["sending"]["reason"]
            .as_str()
            .unwrap()
            .contains("complaint")
    );
    let metrics = app.get_text("/metrics").await;
    assert!(
        metrics.contains("quicket_followup_complaint_rate 0.00495"),
        "{metrics}"
    );
    assert!(
        metrics.contains("quicket_followup_sending_paused 1"),
        "{metrics}"
    );
    // The overview shows the banner with its Resume button.
    let overview = app
        .admin_get("/admin", PASSWORD)
        .await
        .text()
        .await
        .unwrap();
    assert!(overview.contains("Sending is paused"), "{overview}");
    assert!(overview.contains("action=\"/admin/sending/resume\""));
    // Still paused on the next pass; nothing was given up.
    assert_eq!(app.pass_at(Utc::now()).await.counts.sent, 0);

    let resumed = app
        .client
        .post(format!("{}/admin/sending/resume", app.base))
        .basic_auth("admin", Some(PASSWORD))
        .header("sec-fetch-site", "same-origin")
        .form(&[("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert!(resumed.status().is_success() || resumed.status().is_redirection());
    assert_eq!(app.get_json("/healthz").await["sending"]["state"], "active");
    let report = app.pass_at(Utc::now()).await;
    assert_eq!(report.counts.sent, 5, "{report:?}");
    assert_eq!(app.pass_at(Utc::now()).await.counts.sent, 0);
    let mut to: Vec<String> = smtp.received()[202..]
        .iter()
        .flat_map(|r| r.to.clone())
        .collect();
    to.sort();
    assert_eq!(
        to,
        (200..205)
            .map(|n| format!("buyer{n}@mail.co.za"))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn resume_sending_works_from_the_shell() {
    let smtp = SmtpServer::start();
    let app = app(&smtp).await;
    app.store()
        .pause_sending(Utc::now(), "hard-bounce rate 6.00% (test)")
        .await
        .unwrap();
    checkouts(&app, 0..2).await;
    assert_eq!(app.pass_at(Utc::now()).await.counts.sent, 0);
    let (code, out, err) = app.cli(&["resume-sending"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("hard-bounce rate 6.00%"), "{out}");
    assert_eq!(app.pass_at(Utc::now()).await.counts.sent, 2);
    let (code, out, _) = app.cli(&["resume-sending"]);
    assert_eq!(code, 0);
    assert!(out.contains("not paused"), "{out}");
}

#[tokio::test]
async fn fewer_than_two_hundred_sends_never_pause() {
    let smtp = SmtpServer::start();
    let app = app(&smtp).await;
    checkouts(&app, 0..3).await;
    assert_eq!(app.pass_at(Utc::now()).await.counts.sent, 3);
    complain(&app, &smtp, "buyer1@mail.co.za", true).await;
    checkouts(&app, 3..4).await;
    let report = app.pass_at(Utc::now()).await;
    assert_eq!((report.counts.sent, report.paused.clone()), (1, None));
}
