//! The circuit breaker, through real HTTP, SQLite and SMTP: 200 reminders sent and one complaint
//! pause all sending (nothing dropped, `/healthz` says why, `/metrics` has the rates); Resume
//! restarts it and the reminders that waited go out once each.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/smtp.rs"]
mod smtp;

use chrono::Utc;
use common::{TOKEN, TestApp};
use quicket_followup::config::{ReminderStep, SendWindow, Transport};
use quicket_followup::domain::OrderState;
use serde_json::{Value, json};
use smtp::SmtpServer;

const COMPLAINT: &str = include_str!("samples/email_events/postmark_spam_complaint.json");
const PASSWORD: &str = "breaker-test-password";

/// Reminders due as soon as a checkout arrives, so that passes run at the wall clock's now.
async fn app(smtp: &SmtpServer) -> TestApp {
    let url = smtp.url();
    TestApp::spawn_with(move |c| {
        c.email.transport = Transport::Smtp;
        c.email.smtp_url = url;
        c.email.from = "Jazz on the Lawn <tickets@shop.co.za>".into();
        c.email.max_per_minute = 1_000_000;
        c.server.admin_password = PASSWORD.into();
        c.schedule.send_window = SendWindow::parse("").unwrap();
        c.schedule.dormant_after = std::time::Duration::ZERO;
        c.reminders = vec![ReminderStep {
            name: "now".into(),
            after: Some(std::time::Duration::ZERO),
            before_event: None,
            when: vec![OrderState::Started],
            template: "abandoned".into(),
            variants: Vec::new(),
            even_if_sold_out: false,
            send_window: SendWindow::Unset,
        }];
    })
    .await
}

fn checkout(n: usize) -> String {
    json!({
        "reference": format!("R-{n}"), "event_id": 456, "event_name": "Jazz on the Lawn",
        "amount": 450, "email": format!("buyer{n}@mail.co.za"), "event_date": "2030-12-12 18:30",
        "action": "checkout_started", "tickets": []
    })
    .to_string()
}

async fn checkouts(app: &TestApp, range: std::ops::Range<usize>) {
    for n in range {
        let (status, answer) = app.post_hook(checkout(n)).await;
        assert_eq!(status, 200, "{answer}");
    }
}

async fn pass(app: &TestApp) -> quicket_followup::reminders::PassReport {
    app.service
        .engine
        .run_pass(Utc::now(), false)
        .await
        .unwrap()
}

async fn health(app: &TestApp) -> Value {
    let answer = app
        .client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    serde_json::from_str(&answer.text().await.unwrap()).unwrap()
}

#[tokio::test]
async fn two_hundred_sends_and_one_complaint_pause_sending_until_resumed() {
    let smtp = SmtpServer::start();
    let app = app(&smtp).await;
    checkouts(&app, 0..200).await;
    assert_eq!(pass(&app).await.counts.sent, 200);
    assert_eq!(health(&app).await["sending"]["state"], "active");

    let complaint = COMPLAINT.replace("john@example.com", "buyer7@mail.co.za");
    let url = format!("{}/webhooks/email-events/postmark/{TOKEN}", app.base);
    let answer = app.client.post(url).body(complaint).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 200);

    checkouts(&app, 200..205).await;
    let report = pass(&app).await;
    assert_eq!(report.counts.sent, 0);
    assert!(
        report
            .paused
            .as_deref()
            .unwrap()
            .contains("complaint rate 0.50%"),
        "{report:?}"
    );
    assert_eq!(smtp.received().len(), 200);
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
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("quicket_followup_complaint_rate 0.005"),
        "{metrics}"
    );
    assert!(
        metrics.contains("quicket_followup_sending_paused 1"),
        "{metrics}"
    );
    // The overview shows the banner with its Resume button.
    let overview = app
        .client
        .get(format!("{}/admin", app.base))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(overview.contains("Sending is paused"), "{overview}");
    assert!(overview.contains("action=\"/admin/sending/resume\""));
    // Still paused on the next pass; nothing was given up.
    assert_eq!(pass(&app).await.counts.sent, 0);

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
    assert_eq!(health(&app).await["sending"]["state"], "active");
    let report = pass(&app).await;
    assert_eq!(report.counts.sent, 5, "{report:?}");
    assert_eq!(pass(&app).await.counts.sent, 0);
    let mut to: Vec<String> = smtp.received()[200..]
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
    assert_eq!(pass(&app).await.counts.sent, 0);
    let config = app.cli_config();
    let (code, out, err) = common::run_cli(
        &["--config", config.to_str().unwrap(), "resume-sending"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("hard-bounce rate 6.00%"), "{out}");
    assert_eq!(pass(&app).await.counts.sent, 2);
    let (code, out, _) = common::run_cli(
        &["--config", config.to_str().unwrap(), "resume-sending"],
        &[],
    );
    assert_eq!(code, 0);
    assert!(out.contains("not paused"), "{out}");
}

#[tokio::test]
async fn fewer_than_two_hundred_sends_never_pause() {
    let smtp = SmtpServer::start();
    let app = app(&smtp).await;
    checkouts(&app, 0..3).await;
    assert_eq!(pass(&app).await.counts.sent, 3);
    let complaint = COMPLAINT.replace("john@example.com", "buyer1@mail.co.za");
    let url = format!("{}/webhooks/email-events/postmark/{TOKEN}", app.base);
    app.client.post(url).body(complaint).send().await.unwrap();
    checkouts(&app, 3..4).await;
    let report = pass(&app).await;
    assert_eq!((report.counts.sent, report.paused.clone()), (1, None));
}
