//! What a stranger with the webhook URL can send: a huge hook is kept within the caps and listed as
//! a problem, amounts are never guessed, an unreadable event date is counted; /admin/problems shows
//! the start of a body and offers the whole as a download.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{Duration, Utc};
use common::TestApp;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

async fn app() -> TestApp {
    TestApp::spawn_with(|c| {
        c.server.admin_password = PASSWORD.into();
        c.schedule.send_window = Default::default();
    })
    .await
}

async fn admin_get(app: &TestApp, path: &str) -> (u16, String, Option<String>) {
    let response = app.admin_get(path, PASSWORD).await;
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    (status, response.text().await.unwrap(), kind)
}

async fn order(
    app: &TestApp,
    reference: &str,
) -> (Option<i64>, Option<String>, String, String, String) {
    let reference = reference.to_string();
    app.store()
        .read(move |c| {
            Ok(c.query_row(
                "SELECT amount_cents, event_date, event_name, buyer_name, tickets FROM orders WHERE reference = ?1",
                [reference],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )?)
        })
        .await
        .unwrap()
}

fn future_date() -> String {
    (Utc::now() + Duration::days(30))
        .format("%Y-%m-%d 18:30")
        .to_string()
}

#[tokio::test]
async fn a_hook_with_ten_thousand_tickets_and_a_huge_name_is_kept_within_the_caps() {
    let app = app().await;
    let huge = "Ann ".repeat(12_500); // 50,000 characters
    let mut tickets: Vec<Value> = (0..10_000)
        .map(|_| json!({"ticket_type": "General", "price": "150.00"}))
        .collect();
    tickets[0] = json!({"ticket_type": "VIP", "attendee_name": huge,
                        "attendee_email": "buyer@mail.co.za", "price": "150.00"});
    let body = json!({"reference": "REF-HUGE", "action": "checkout_started", "event_id": 456,
        "event_name": huge, "event_date": future_date(), "email": "buyer@mail.co.za",
        "amount": "1500000.00", "tickets": tickets})
    .to_string();
    assert!(
        body.len() < 1024 * 1024,
        "under the 1 MiB limit: {}",
        body.len()
    );
    let (status, answer) = app.post_hook(body.clone()).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("recorded")),
        "{answer}"
    );
    let (_, _, event_name, buyer_name, tickets) = order(&app, "REF-HUGE").await;
    let tickets: Vec<Value> = serde_json::from_str(&tickets).unwrap();
    assert_eq!(tickets.len(), 100);
    // Cut to 200 characters (and the space the cut left at the end trimmed).
    assert!(
        (195..=200).contains(&event_name.chars().count()),
        "{}",
        event_name.len()
    );
    assert!(buyer_name.chars().count() <= 200);
    // Listed as a problem, with the start of the body and the whole one as a download.
    let (status, page, _) = admin_get(&app, "/admin/problems").await;
    assert_eq!(status, 200);
    assert!(page.contains("recorded with problems"), "{page}");
    assert!(page.contains("10000 tickets; only the first 100 are kept"));
    assert!(page.contains("event_name: longer than 200 characters"));
    assert!(page.contains("the first 4 KiB of"));
    assert!(
        page.len() < 64 * 1024,
        "the page shows 4 KiB of the body, not all: {}",
        page.len()
    );
    let id = app
        .store()
        .read(|c| Ok(c.query_row("SELECT max(id) FROM deliveries", [], |r| r.get::<_, i64>(0))?))
        .await
        .unwrap();
    let (status, whole, kind) = admin_get(&app, &format!("/admin/problems/{id}/body")).await;
    assert_eq!(status, 200);
    assert_eq!(kind.as_deref(), Some("application/octet-stream"));
    assert_eq!(whole, body, "the download is the whole body as received");
    // The reminder stays small.
    let report = app
        .pass_at(common::in_default_window(Utc::now() + Duration::hours(2)))
        .await;
    assert_eq!(report.counts.sent, 1, "{report:?}");
    let outbox = app.dir.path().join("data/outbox");
    let eml = std::fs::read_dir(&outbox)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let size = std::fs::metadata(&eml).unwrap().len();
    assert!(size < 400 * 1024, "the email is {size} bytes");
    app.service.stop().await;
}

#[tokio::test]
async fn amounts_are_read_as_written_and_an_ambiguous_one_is_unknown_and_listed() {
    let app = app().await;
    let table: &[(&str, Value, Option<i64>)] = &[
        ("REF-A1", json!("R350,00"), Some(35_000)),
        ("REF-A2", json!("R 1 250,50"), Some(125_050)),
        ("REF-A3", json!("1,250.00"), Some(125_000)),
        ("REF-A4", json!("350.00"), Some(35_000)),
        ("REF-A5", json!(350), Some(35_000)),
        ("REF-A6", json!("350,00"), Some(35_000)),
        ("REF-A7", json!("1,5"), None),
        ("REF-A8", json!("a lot"), None),
    ];
    for (reference, amount, _) in table {
        let body = json!({"reference": reference, "action": "checkout_started", "event_id": 456,
            "event_date": future_date(), "email": "b@mail.co.za", "amount": amount});
        let (status, _) = app.post_hook(body.to_string()).await;
        assert_eq!(status, 200);
    }
    for (reference, amount, stored) in table {
        assert_eq!(order(&app, reference).await.0, *stored, "{amount}");
    }
    let (_, page, _) = admin_get(&app, "/admin/problems").await;
    assert!(
        page.contains("could be read as more than one amount"),
        "{page}"
    );
    assert!(page.contains("is not an amount"), "{page}");
    let health: Value = app.get_json("/healthz").await;
    assert_eq!(health["problems"]["unknown_amounts"], 2, "{health}");
    app.service.stop().await;
}

#[tokio::test]
async fn an_unreadable_event_date_is_a_problem_counted_in_healthz_and_metrics() {
    let app = app().await;
    let body = json!({"reference": "REF-D1", "action": "checkout_started", "event_id": 456,
        "event_date": "next Friday at 8", "email": "b@mail.co.za"});
    assert_eq!(app.post_hook(body.to_string()).await.0, 200);
    let body = json!({"reference": "REF-D2", "action": "checkout_started", "event_id": 456,
        "event_date": "2030-12-12T16:30:00Z", "email": "c@mail.co.za"});
    assert_eq!(app.post_hook(body.to_string()).await.0, 200);
    assert_eq!(order(&app, "REF-D1").await.1, None);
    // An offset is turned into the configured zone's clock.
    assert_eq!(
        order(&app, "REF-D2").await.1.as_deref(),
        Some("2030-12-12 18:30:00")
    );
    let (_, page, _) = admin_get(&app, "/admin/problems").await;
    assert!(
        page.contains("event_date: ")
            && page.contains("next Friday at 8")
            && page.contains("is not a date"),
        "{page}"
    );
    let health: Value = app.get_json("/healthz").await;
    assert_eq!(health["problems"]["unreadable_event_dates"], 1, "{health}");
    let metrics = app.get_text("/metrics").await;
    assert!(
        metrics.lines().any(|l| l
            .starts_with("quicket_followup_hooks_with_problems{kind=\"event_date\"}")
            && !l.ends_with(" 0")),
        "{metrics}"
    );
    app.service.stop().await;
}

#[tokio::test]
async fn replay_reads_one_body_at_a_time_and_still_records_what_it_can() {
    let app = app().await;
    // Refused at first (no reference), kept; a later parser would not change that, so replay
    // leaves them as they are, reading them one by one.
    for i in 0..20 {
        let body = json!({"action": "checkout_started", "padding": "x".repeat(100_000), "i": i});
        assert_eq!(app.post_hook(body.to_string()).await.0, 400);
    }
    let report = app
        .store()
        .replay(chrono_tz::Africa::Johannesburg)
        .await
        .unwrap();
    assert_eq!(report.examined, 20);
    assert_eq!(report.unchanged, 20);
    app.service.stop().await;
}
