//! The operator's pages over HTTP: auth, key content, hostile names escaped, and the forms.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap, helpers included

mod common;

use chrono::Utc;
use common::TestApp;
use quicket_followup::config::{Config, SendWindow};
use serde_json::json;

const PASSWORD: &str = "correct horse battery staple";

fn setup(c: &mut Config) {
    c.server.admin_password = PASSWORD.into();
    c.schedule.send_window = SendWindow::parse("").unwrap();
    c.schedule.dormant_after = std::time::Duration::ZERO;
    c.reminders.truncate(1);
    c.reminders[0].after = Some(std::time::Duration::ZERO);
}

async fn get(app: &TestApp, path: &str) -> (u16, String) {
    let response = app
        .client
        .get(format!("{}{path}", app.base))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn hostile_hook(reference: &str, action: &str) -> String {
    json!({"reference": reference, "event_id": 456, "event_name": "Jazz <script>alert('x')</script>",
           "amount": "450.00", "email": "lerato@mail.co.za", "event_date": "2030-12-12 18:30", "action": action,
           "tickets": [{"attendee_name": "<img src=x onerror=alert(1)>", "attendee_email": "lerato@mail.co.za",
                        "ticket_type": "VIP", "price": "450.00"}]}).to_string()
}

#[tokio::test]
async fn admin_is_off_without_a_password() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(format!("{}/admin", app.base))
        .basic_auth("admin", Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
}

#[tokio::test]
async fn admin_refuses_no_and_wrong_credentials() {
    let app = TestApp::spawn_with(setup).await;
    for path in ["/admin", "/admin/orders", "/admin/problems"] {
        let none = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(none.status().as_u16(), 401, "{path}");
        assert!(
            none.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
        let wrong = app
            .client
            .get(format!("{}{path}", app.base))
            .basic_auth("admin", Some("guess"))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status().as_u16(), 401, "{path}");
        let other_user = app
            .client
            .get(format!("{}{path}", app.base))
            .basic_auth("root", Some(PASSWORD))
            .send()
            .await
            .unwrap();
        assert_eq!(other_user.status().as_u16(), 401, "{path}");
    }
    let post = app
        .client
        .post(format!("{}/admin/replay", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status().as_u16(), 401);
}

#[tokio::test]
async fn the_pages_show_the_story_and_escape_hostile_names() {
    let app = TestApp::spawn_with(setup).await;
    app.post_hook(hostile_hook("REF1", "checkout_started"))
        .await;
    app.post_hook("{not json").await;
    let report = app
        .service
        .engine
        .run_pass(Utc::now(), false)
        .await
        .unwrap();
    assert_eq!(report.counts.sent, 1);
    app.post_hook(hostile_hook("REF1", "checkout_completed"))
        .await;

    let (status, overview) = get(&app, "/admin").await;
    assert_eq!(status, 200);
    assert!(
        overview.contains("Recovered revenue") && overview.contains("R450.00"),
        "the purchase after the reminder is recovered"
    );
    assert!(overview.contains("<svg"));

    let (_, orders) = get(&app, "/admin/orders?q=REF1").await;
    assert!(orders.contains("lerato@mail.co.za"));
    assert!(!orders.contains("<script>alert"), "escaped");
    assert!(
        orders.contains("&lt;script&gt;")
            || orders.contains("&#60;script&#62;")
            || orders.contains("&lt;script")
    );

    let (status, timeline) = get(&app, "/admin/buyer?email=lerato%40mail.co.za&event=456").await;
    assert_eq!(status, 200);
    for needle in [
        "checkout_started (REF1)",
        "reminder abandoned-1: sent",
        "paid",
        "Raw body",
    ] {
        assert!(timeline.contains(needle), "timeline lacks {needle:?}");
    }
    assert!(
        !timeline.contains("<img src=x"),
        "raw bodies are escaped too"
    );

    let (_, problems) = get(&app, "/admin/problems").await;
    assert!(problems.contains("not valid JSON"));
    let (_, schedule) = get(&app, "/admin/schedule").await;
    assert!(schedule.contains("abandoned-1:"));
    let (status, emails) = get(&app, "/admin/emails?step=abandoned-1&reference=REF1").await;
    assert_eq!(status, 200);
    assert!(emails.contains("<iframe sandbox"));
    let (status, frame) = get(&app, "/admin/emails/render?step=abandoned-1&reference=REF1").await;
    assert_eq!(status, 200);
    assert!(frame.contains("<!DOCTYPE html>") && !frame.contains("<script>alert"));
}

#[tokio::test]
async fn suppressions_can_be_added_and_removed_from_the_page_but_not_from_another_site() {
    let app = TestApp::spawn_with(setup).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = format!("{}/admin/suppressions", app.base);
    let cross = client
        .post(&url)
        .basic_auth("admin", Some(PASSWORD))
        .header("origin", "https://evil.example")
        .form(&[("email", "a@mail.co.za")])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status().as_u16(), 403);
    assert!(!app.store().is_suppressed("a@mail.co.za").await.unwrap());
    let ours = client
        .post(&url)
        .basic_auth("admin", Some(PASSWORD))
        .header("origin", app.base.clone())
        .form(&[("email", "A@mail.co.za ")])
        .send()
        .await
        .unwrap();
    assert_eq!(ours.status().as_u16(), 303);
    assert!(app.store().is_suppressed("a@mail.co.za").await.unwrap());
    let (_, page) = get(&app, "/admin/suppressions").await;
    assert!(page.contains("a@mail.co.za") && page.contains("admin"));
    let remove = client
        .post(format!("{url}/remove"))
        .basic_auth("admin", Some(PASSWORD))
        .form(&[("email", "a@mail.co.za")])
        .send()
        .await
        .unwrap();
    assert_eq!(remove.status().as_u16(), 303);
    assert!(!app.store().is_suppressed("a@mail.co.za").await.unwrap());
}

#[tokio::test]
async fn replay_from_the_problems_page() {
    let app = TestApp::spawn_with(setup).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .post(format!("{}/admin/replay", app.base))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    assert!(
        response.headers()["location"]
            .to_str()
            .unwrap()
            .contains("Replayed+0+deliveries")
    );
}
