//! The links in every email: signed tokens, one-click unsubscribe, the tracked event link, the
//! suppression list, retention and `forget`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap, helpers included

mod common;
#[path = "common/smtp.rs"]
mod smtp;

use chrono::{Duration, Utc};
use common::TestApp;
use quicket_followup::config::{EventConfig, SendWindow, Transport};
use quicket_followup::links::LinkTarget;
use quicket_followup::store::privacy::SuppressionSource;
use serde_json::json;
use smtp::SmtpServer;

const BUYER: &str = "lerato@mail.co.za";

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn app(smtp: Option<&SmtpServer>) -> TestApp {
    let url = smtp.map(SmtpServer::url);
    TestApp::spawn_with(move |c| {
        c.email.from = "Jazz Festival <tickets@shop.co.za>".into();
        c.schedule.send_window = SendWindow::parse("").unwrap();
        c.events.insert(
            "789".into(),
            EventConfig {
                url: Some("https://www.quicket.co.za/events/789-big-night/".into()),
                reminders: true,
            },
        );
        if let Some(url) = url {
            c.email.transport = Transport::Smtp;
            c.email.smtp_url = url;
        }
    })
    .await
}

fn target(event: &str) -> LinkTarget {
    LinkTarget {
        email_key: BUYER.into(),
        event_id: event.into(),
        step: "abandoned-1".into(),
    }
}

fn hook(reference: &str, action: &str, event_date: &str) -> String {
    json!({
        "reference": reference, "event_id": 456, "event_name": "Jazz on the Lawn", "amount": "450.00",
        "email": BUYER, "event_date": event_date, "action": action,
        "tickets": [{"attendee_name": "Lerato Dlamini", "attendee_email": BUYER, "ticket_type": "VIP", "price": "450.00"}]
    })
    .to_string()
}

async fn post(app: &TestApp, body: String) {
    assert_eq!(app.post_hook(body).await.0, 200);
}

#[tokio::test]
async fn forged_and_altered_tokens_get_404_and_change_nothing() {
    let app = app(None).await;
    let client = no_redirects();
    let genuine = app.service.engine.links().token(&target("456"));
    let (payload, mac) = genuine.split_once('.').unwrap();
    let other =
        quicket_followup::links::Links::new("not the secret", "http://x").token(&target("456"));
    let mut flipped = mac.to_string();
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'A' { 'B' } else { 'A' });
    for token in [
        other.as_str(),
        &format!("{payload}.{flipped}"),
        payload,
        "nonsense",
        "a.b",
    ] {
        for (method, path) in [
            ("GET", "unsubscribe"),
            ("POST", "unsubscribe"),
            ("GET", "r"),
        ] {
            let url = format!("{}/{path}/{token}", app.base);
            let request = if method == "GET" {
                client.get(&url)
            } else {
                client.post(&url).body("List-Unsubscribe=One-Click")
            };
            let response = request.send().await.unwrap();
            assert_eq!(response.status().as_u16(), 404, "{method} {path} {token}");
            assert!(response.text().await.unwrap().contains("isn't recognised"));
        }
    }
    assert!(app.store().suppressions().await.unwrap().is_empty());
    assert!(app.store().clicks(BUYER, "456").await.unwrap().is_empty());
}

#[tokio::test]
async fn the_unsubscribe_page_shows_the_address_and_changes_nothing() {
    let app = app(None).await;
    let url = app.service.engine.links().unsubscribe_url(&target("456"));
    for _ in 0..3 {
        let response = app.client.get(&url).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let page = response.text().await.unwrap();
        assert!(
            page.contains(BUYER) && page.contains("Jazz Festival"),
            "{page}"
        );
        assert!(page.contains("<form method=\"post\"") && page.contains("Unsubscribe</button>"));
    }
    assert!(app.store().suppressions().await.unwrap().is_empty());
}

#[tokio::test]
async fn one_click_post_unsubscribes_with_or_without_the_rfc_8058_body_and_is_idempotent() {
    let app = app(None).await;
    let url = app.service.engine.links().unsubscribe_url(&target("456"));
    let response = app
        .client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("You're unsubscribed")
    );
    assert!(
        app.store()
            .is_suppressed(" Lerato@Mail.CO.ZA")
            .await
            .unwrap()
    );
    // Again, and with no body at all (the page's button in a browser without forms data).
    for body in ["List-Unsubscribe=One-Click", ""] {
        assert_eq!(
            app.client
                .post(&url)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
            200
        );
    }
    let list = app.store().suppressions().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (
            list[0].source.as_str(),
            list[0].event_id.as_deref(),
            list[0].step.as_deref()
        ),
        ("unsubscribe", Some("456"), Some("abandoned-1"))
    );
    // The page now says so, and offers to undo; undoing takes an explicit POST.
    let page = app
        .client
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("already unsubscribed"));
    let undo = app
        .client
        .post(&url)
        .body("action=resubscribe")
        .send()
        .await
        .unwrap();
    assert!(undo.text().await.unwrap().contains("back on"));
    assert!(!app.store().is_suppressed(BUYER).await.unwrap());
}

#[tokio::test]
async fn the_event_link_records_the_click_and_redirects_to_the_event_page() {
    let app = app(None).await;
    let client = no_redirects();
    let links = app.service.engine.links();
    let response = client
        .get(links.event_url(&target("456")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 302);
    assert_eq!(
        response.headers()["location"],
        "https://www.quicket.co.za/events/456/"
    );
    let response = client
        .get(links.event_url(&target("789")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["location"],
        "https://www.quicket.co.za/events/789-big-night/"
    );
    let clicks = app.store().clicks(BUYER, "456").await.unwrap();
    assert_eq!(clicks.len(), 1);
    assert_eq!(clicks[0].0, "abandoned-1");
}

#[tokio::test]
async fn an_address_suppressed_between_claim_and_send_is_not_emailed() {
    let smtp = SmtpServer::start();
    let app = app(Some(&smtp)).await;
    post(&app, hook("REF1", "checkout_started", "2030-12-12 18:30")).await;
    let at = Utc::now() + Duration::minutes(61);
    app.claim_without_sending(BUYER, "abandoned-1", "REF1", "<x@shop.co.za>", at)
        .await;
    app.store()
        .add_suppression(
            BUYER,
            SuppressionSource::Unsubscribe,
            None,
            None,
            Utc::now(),
        )
        .await
        .unwrap();
    let report = app.service.engine.run_pass(at, false).await.unwrap();
    assert_eq!(report.counts.sent, 0);
    assert!(
        report.lines[0].reason.contains("unsubscribed"),
        "{:?}",
        report.lines
    );
    assert!(smtp.received().is_empty());
}

/// The text part of a message, quoted-printable decoded.
fn text_part(data: &str) -> String {
    let message = smtp::Received {
        to: vec![],
        data: data.to_string(),
    };
    let content_type = message.header("Content-Type").unwrap();
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .unwrap()
        .trim_matches('"');
    let start = data.find("Content-Type: text/plain").unwrap();
    let body_start = start + data[start..].find("\r\n\r\n").unwrap() + 4;
    let body_end = body_start
        + data[body_start..]
            .find(&format!("\r\n--{boundary}"))
            .unwrap();
    smtp::qp_decode(&data[body_start..body_end])
}

#[tokio::test]
async fn the_links_in_a_real_email_unsubscribe_the_buyer_and_record_a_click() {
    let smtp = SmtpServer::start();
    let app = app(Some(&smtp)).await;
    post(&app, hook("REF1", "checkout_started", "2030-12-12 18:30")).await;
    let report = app
        .service
        .engine
        .run_pass(Utc::now() + Duration::minutes(61), false)
        .await
        .unwrap();
    assert_eq!(report.counts.sent, 1);
    let mail = &smtp.received()[0];
    let text = text_part(&mail.data);
    let event_link = text
        .lines()
        .find(|l| l.contains("/r/"))
        .unwrap()
        .trim()
        .to_string();
    assert!(event_link.starts_with(&app.base), "{event_link}");
    let response = no_redirects().get(&event_link).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 302);
    assert_eq!(app.store().clicks(BUYER, "456").await.unwrap().len(), 1);

    let header = mail.header("List-Unsubscribe").unwrap();
    let one_click = header.trim_matches(['<', '>']);
    assert!(one_click.starts_with(&app.base));
    let response = app
        .client
        .post(one_click)
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(app.store().is_suppressed(BUYER).await.unwrap());
    // The text part's link leads to the same page.
    let page_link = text
        .lines()
        .find(|l| l.contains("/unsubscribe/"))
        .unwrap()
        .trim();
    assert_eq!(page_link, one_click);
}

#[tokio::test]
async fn retention_removes_personal_data_of_past_events_and_keeps_the_counts() {
    let smtp = SmtpServer::start();
    let app = app(Some(&smtp)).await;
    // An event two days from now, reminded; and one far away.
    let soon = (Utc::now() + Duration::days(2))
        .with_timezone(&chrono_tz::Africa::Johannesburg)
        .format("%Y-%m-%d %H:%M")
        .to_string();
    post(&app, hook("REF1", "checkout_started", &soon)).await;
    let mut far: serde_json::Value =
        serde_json::from_str(&hook("REF2", "checkout_started", "2030-12-12 18:30")).unwrap();
    far["event_id"] = json!(789);
    post(&app, far.to_string()).await;
    let report = app
        .service
        .engine
        .run_pass(Utc::now() + Duration::minutes(61), false)
        .await
        .unwrap();
    assert_eq!(report.counts.sent, 2);
    app.store()
        .add_suppression(
            "someone@else.co.za",
            SuppressionSource::Cli,
            None,
            None,
            Utc::now(),
        )
        .await
        .unwrap();

    // 89 days after the first event nothing goes; at 91 days its buyer is pseudonymised.
    let store = app.store();
    let tz = chrono_tz::Africa::Johannesburg;
    let ninety = std::time::Duration::from_secs(90 * 86400);
    let removed = store
        .apply_retention(Utc::now() + Duration::days(2 + 89), ninety, tz)
        .await
        .unwrap();
    assert_eq!(removed.buyer_events, 0);
    let removed = store
        .apply_retention(Utc::now() + Duration::days(2 + 91), ninety, tz)
        .await
        .unwrap();
    assert_eq!((removed.buyer_events, removed.orders), (1, 1));

    let old = store.order("REF1").await.unwrap().unwrap();
    assert_eq!((old.email.as_str(), old.buyer_name.as_str()), ("", ""));
    assert_eq!(old.tickets[0].attendee_name, "");
    assert_eq!(old.tickets[0].ticket_type, "VIP", "what was bought stays");
    assert_eq!(
        old.amount,
        Some(450.0),
        "the amount stays for the statistics"
    );
    let deliveries = store.deliveries().await.unwrap();
    assert!(
        deliveries
            .iter()
            .filter(|d| d.reference.as_deref() == Some("REF1"))
            .all(|d| d.body.is_none())
    );
    assert!(
        deliveries
            .iter()
            .filter(|d| d.reference.as_deref() == Some("REF2"))
            .all(|d| d.body.is_some())
    );
    assert_eq!(store.order_count().await.unwrap(), 2, "the counts stay");
    let new = store.order("REF2").await.unwrap().unwrap();
    assert_eq!(new.email, BUYER, "the far event is untouched");
    // The reminder stays counted, under the pseudonym, without its address.
    let rows = store
        .read(|conn| {
            Ok(conn.query_row(
                "SELECT count(*), sum(email IS NULL), sum(email_key LIKE 'anon-%') FROM reminders WHERE status = 'sent'",
                [],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(rows, (2, 1, 1));
    assert!(
        store.is_suppressed("someone@else.co.za").await.unwrap(),
        "suppressions are kept"
    );
    // Retention "0" keeps everything.
    let removed = store
        .apply_retention(
            Utc::now() + Duration::days(3650),
            std::time::Duration::ZERO,
            tz,
        )
        .await
        .unwrap();
    assert_eq!(removed.buyer_events, 0);
}

#[tokio::test]
async fn forget_removes_everything_about_an_address_but_its_suppression() {
    let app = app(None).await;
    post(&app, hook("REF1", "checkout_started", "2030-12-12 18:30")).await;
    // A body that could not be read, mentioning the address: kept raw, with the error.
    let (status, _) = app
        .post_hook("{\"reference\": \"BROKEN lerato@mail.co.za\"")
        .await;
    assert_eq!(status, 400);
    let mut other: serde_json::Value =
        serde_json::from_str(&hook("REF9", "checkout_completed", "2030-12-12 18:30")).unwrap();
    other["email"] = json!("friend@mail.co.za");
    other["tickets"][0]["attendee_email"] = json!("Lerato@mail.co.za");
    post(&app, other.to_string()).await;
    app.store()
        .add_suppression(
            BUYER,
            SuppressionSource::Unsubscribe,
            None,
            None,
            Utc::now(),
        )
        .await
        .unwrap();
    app.store()
        .record_click(BUYER.into(), "456".into(), "abandoned-1".into(), Utc::now())
        .await
        .unwrap();

    let config = app.cli_config();
    let (code, out, err) = common::run_cli(
        &[
            "--config",
            config.to_str().unwrap(),
            "forget",
            " LERATO@mail.co.za",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("forgotten: 1 orders"), "{out}");

    let store = app.store();
    assert!(store.order("REF1").await.unwrap().is_none());
    let friend = store.order("REF9").await.unwrap().unwrap();
    assert_eq!(friend.tickets[0].attendee_email, "");
    assert_eq!(friend.tickets[0].attendee_name, "");
    let leftovers = store.deliveries().await.unwrap();
    assert!(
        leftovers.iter().all(|d| !d
            .body
            .as_deref()
            .unwrap_or_default()
            .to_lowercase()
            .contains(BUYER)),
        "no raw body mentions the address any more"
    );
    assert!(store.clicks(BUYER, "456").await.unwrap().is_empty());
    assert!(
        store.is_suppressed(BUYER).await.unwrap(),
        "the suppression entry is kept"
    );
}

#[test]
fn unsubscribe_and_resubscribe_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), "");
    let config = config.to_str().unwrap();
    let run = |args: &[&str]| common::run_cli(&[&["--config", config], args].concat(), &[]);
    assert_eq!(
        run(&["unsubscribe", "Lerato@Mail.co.za "]).1.trim(),
        "unsubscribed"
    );
    assert_eq!(
        run(&["unsubscribe", "lerato@mail.co.za"]).1.trim(),
        "already unsubscribed"
    );
    assert_eq!(
        run(&["resubscribe", "LERATO@mail.co.za"]).1.trim(),
        "subscribed again"
    );
    assert_eq!(
        run(&["resubscribe", "lerato@mail.co.za"]).1.trim(),
        "was not unsubscribed"
    );
}
