//! The webhook receiver through real HTTP and a real SQLite file.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap, helpers included

mod common;

use common::{SAMPLE_COMPLETED, SAMPLE_EFT_STRINGS, SAMPLE_STARTED, TestApp, hook};
use quicket_followup::domain::OrderState;
use serde_json::json;

#[tokio::test]
async fn every_action_is_recorded_and_moves_the_order() {
    let app = TestApp::spawn().await;
    for (action, state) in [
        ("checkout_started", OrderState::Started),
        ("checkout_cancelled", OrderState::Cancelled),
        ("eft_pending", OrderState::EftPending),
        ("checkout_completed", OrderState::Completed),
    ] {
        let (status, body) = app.post_hook(hook("REF1", action)).await;
        assert_eq!(
            (status, body),
            (200, json!({"status": "recorded"})),
            "{action}"
        );
        let order = app.store().order("REF1").await.unwrap().unwrap();
        assert_eq!(order.status, state);
    }
    let history = app.store().order_history("REF1").await.unwrap();
    assert_eq!(
        history,
        vec![
            ("checkout_started".to_string(), true),
            ("checkout_cancelled".to_string(), true),
            ("eft_pending".to_string(), true),
            ("checkout_completed".to_string(), true),
        ]
    );
}

#[tokio::test]
async fn the_documented_samples_are_recorded_with_their_details() {
    let app = TestApp::spawn().await;
    assert_eq!(app.post_hook(SAMPLE_STARTED).await.0, 200);
    assert_eq!(app.post_hook(SAMPLE_COMPLETED).await.0, 200);
    let order = app.store().order("REF00123456").await.unwrap().unwrap();
    assert_eq!(order.status, OrderState::Completed);
    assert_eq!(order.event_id.as_deref(), Some("123"));
    assert_eq!(order.event_name, "My Big Event");
    assert_eq!(order.event_date.as_deref(), Some("2015-02-18 17:15"));
    assert_eq!(order.amount, Some(300.0));
    assert_eq!(order.email, "demo@example.com");
    assert_eq!(order.buyer_name, "Thandi Mokoena");
    assert_eq!(order.tickets.len(), 2);
    assert_eq!(order.tickets[1].attendee_name, "Pieter van Wyk");
}

#[tokio::test]
async fn numbers_sent_as_strings_are_read_as_numbers() {
    let app = TestApp::spawn().await;
    let (status, body) = app.post_hook(SAMPLE_EFT_STRINGS).await;
    assert_eq!((status, body), (200, json!({"status": "recorded"})));
    let order = app.store().order("REF00987654").await.unwrap().unwrap();
    assert_eq!(order.status, OrderState::EftPending);
    assert_eq!(order.event_id.as_deref(), Some("456"));
    assert_eq!(order.amount, Some(450.0));
    assert_eq!(order.tickets[0].price, Some(450.0));
}

#[tokio::test]
async fn a_paid_order_never_reopens_when_late_hooks_arrive() {
    let app = TestApp::spawn().await;
    app.post_hook(hook("REF2", "checkout_completed")).await;
    for late in ["checkout_started", "checkout_cancelled", "eft_pending"] {
        let (status, body) = app.post_hook(hook("REF2", late)).await;
        assert_eq!(
            (status, body),
            (200, json!({"status": "recorded"})),
            "{late}"
        );
        let order = app.store().order("REF2").await.unwrap().unwrap();
        assert_eq!(order.status, OrderState::Completed, "after a late {late}");
    }
    let history = app.store().order_history("REF2").await.unwrap();
    assert_eq!(history.len(), 4, "every hook is kept in the timeline");
    assert!(history[1..].iter().all(|(_, applied)| !applied));
}

#[tokio::test]
async fn a_late_started_does_not_rewind_a_cancelled_or_eft_checkout() {
    let app = TestApp::spawn().await;
    app.post_hook(hook("REF3", "eft_pending")).await;
    app.post_hook(hook("REF3", "checkout_started")).await;
    let order = app.store().order("REF3").await.unwrap().unwrap();
    assert_eq!(order.status, OrderState::EftPending);
    // An EFT that never arrives may still be cancelled, and then paid after all.
    app.post_hook(hook("REF3", "checkout_cancelled")).await;
    let order = app.store().order("REF3").await.unwrap().unwrap();
    assert_eq!(order.status, OrderState::Cancelled);
    app.post_hook(hook("REF3", "checkout_completed")).await;
    let order = app.store().order("REF3").await.unwrap().unwrap();
    assert_eq!(order.status, OrderState::Completed);
}

#[tokio::test]
async fn a_repeated_hook_is_a_duplicate_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let first = hook("REF4", "checkout_started").to_string();
    assert_eq!(
        app.post_hook(first.clone()).await.1,
        json!({"status": "recorded"})
    );
    let before = app.store().order("REF4").await.unwrap().unwrap();
    // The same message again, and once more with its keys in another order and other spacing.
    let value: serde_json::Value = serde_json::from_str(&first).unwrap();
    let reordered = serde_json::to_string_pretty(&value).unwrap();
    for body in [first, reordered] {
        let (status, answer) = app.post_hook(body).await;
        assert_eq!((status, answer), (200, json!({"status": "duplicate"})));
    }
    let after = app.store().order("REF4").await.unwrap().unwrap();
    assert_eq!(before, after);
    assert_eq!(app.store().order_history("REF4").await.unwrap().len(), 1);
    let outcomes: Vec<String> = app
        .store()
        .deliveries()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.outcome)
        .collect();
    assert_eq!(outcomes, ["recorded", "duplicate", "duplicate"]);
}

#[tokio::test]
async fn a_changed_hook_for_the_same_state_updates_the_details() {
    let app = TestApp::spawn().await;
    app.post_hook(hook("REF5", "checkout_started")).await;
    let mut changed: serde_json::Value = hook("REF5", "checkout_started").json();
    changed["amount"] = json!("900.00");
    let (status, body) = app.post_hook(changed.to_string()).await;
    assert_eq!((status, body), (200, json!({"status": "recorded"})));
    let order = app.store().order("REF5").await.unwrap().unwrap();
    assert_eq!(order.amount, Some(900.0));
    assert_eq!(order.status, OrderState::Started);
}

/// Posts a bad body and checks the answer and that the raw body was kept with the reason.
async fn assert_refused_and_kept(app: &TestApp, body: &[u8], status: u16, reason: &str) {
    let (got, answer) = app.post_hook(body.to_vec()).await;
    assert_eq!(got, status, "{answer}");
    let error = answer["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(reason),
        "answer {answer} should say {reason:?}"
    );
    let last = app.store().deliveries().await.unwrap().pop().unwrap();
    let raw = app.store().delivery_body(last.id).await.unwrap();
    assert_eq!(
        raw.as_deref(),
        Some(body),
        "the raw body is kept byte for byte"
    );
    assert!(last.error.unwrap_or_default().contains(reason));
}

#[tokio::test]
async fn malformed_json_is_refused_with_400_and_kept() {
    let app = TestApp::spawn().await;
    assert_refused_and_kept(&app, b"{\"reference\": \"REF", 400, "not valid JSON").await;
    assert_refused_and_kept(&app, b"", 400, "not valid JSON").await;
    assert_refused_and_kept(&app, b"\xff\xfe garbage", 400, "not valid JSON").await;
}

#[tokio::test]
async fn json_that_is_not_an_object_is_refused_with_400_and_kept() {
    let app = TestApp::spawn().await;
    assert_refused_and_kept(&app, b"[1, 2, 3]", 400, "not an object").await;
    assert_refused_and_kept(&app, b"\"REF1\"", 400, "not an object").await;
    assert_refused_and_kept(&app, b"null", 400, "not an object").await;
}

#[tokio::test]
async fn a_hook_without_a_reference_is_refused_with_400_and_kept() {
    let app = TestApp::spawn().await;
    assert_refused_and_kept(&app, br#"{"action":"checkout_started"}"#, 400, "reference").await;
    assert_refused_and_kept(
        &app,
        br#"{"reference":"","action":"checkout_started"}"#,
        400,
        "reference",
    )
    .await;
    assert_refused_and_kept(&app, br#"{"reference":{"id":1}}"#, 400, "reference").await;
    assert_eq!(app.store().order_count().await.unwrap(), 0);
}

#[tokio::test]
async fn an_unknown_action_is_kept_and_answered_ignored() {
    let app = TestApp::spawn().await;
    let (status, body) = app.post_hook(hook("REF6", "refund_issued")).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ignored");
    let last = app.store().deliveries().await.unwrap().pop().unwrap();
    assert_eq!(last.outcome, "ignored");
    assert_eq!(last.action.as_deref(), Some("refund_issued"));
    assert!(app.store().order("REF6").await.unwrap().is_none());
}

#[tokio::test]
async fn a_wrong_token_is_refused_with_401_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    for token in [
        "wrong",
        "test-token-0123456789abcdeX",
        "test-token-0123456789abcdef0",
    ] {
        let url = format!("{}/webhooks/quicket/{token}", app.base);
        let (status, _) = common::post(&app.client, &url, hook("REF7", "checkout_started")).await;
        assert_eq!(status, 401, "{token}");
    }
    assert!(app.store().deliveries().await.unwrap().is_empty());
    assert_eq!(app.store().order_count().await.unwrap(), 0);
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_refused_with_413_and_not_kept() {
    let app = TestApp::spawn().await;
    app.post_hook(hook("REF8", "checkout_started")).await;
    let padding = "x".repeat(1024 * 1024);
    let huge = format!(r#"{{"reference":"REF9","action":"checkout_started","pad":"{padding}"}}"#);
    let (status, _) = app.post_hook(huge).await;
    assert_eq!(status, 413);
    // Exactly at the limit is still accepted.
    let base = r#"{"reference":"REF10","action":"checkout_started","pad":""}"#;
    let fill = "y".repeat(1024 * 1024 - base.len());
    let at_limit = base.replace(r#""pad":"""#, &format!(r#""pad":"{fill}""#));
    assert_eq!(at_limit.len(), 1024 * 1024);
    assert_eq!(app.post_hook(at_limit).await.0, 200);
    let deliveries = app.store().deliveries().await.unwrap();
    assert_eq!(deliveries.len(), 2, "the oversized body is not kept");
    assert!(app.store().order("REF8").await.unwrap().is_some());
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_refused_without_a_content_length() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn().await;
    let mut stream = tokio::net::TcpStream::connect(app.service.addr)
        .await
        .unwrap();
    let head = format!(
        "POST /webhooks/quicket/{} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        common::TOKEN
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 64 * 1024];
    for _ in 0..20 {
        let size = format!("{:x}\r\n", chunk.len());
        if stream.write_all(size.as_bytes()).await.is_err()
            || stream.write_all(&chunk).await.is_err()
            || stream.write_all(b"\r\n").await.is_err()
        {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(app.store().deliveries().await.unwrap().is_empty());
}

#[tokio::test]
async fn html_and_line_breaks_in_names_are_stored_as_harmless_text() {
    let app = TestApp::spawn().await;
    let body = json!({
        "reference": "REF11", "event_id": 1, "action": "checkout_started",
        "event_name": "Jazz\r\nBcc: everyone@victim.test",
        "email": " Lerato@Mail.co.za\r\n",
        "tickets": [{"attendee_name": "<script>alert(1)</script>\nLerato", "attendee_email": "lerato@mail.co.za",
                     "ticket_type": "VIP", "price": "abc"}]
    });
    let (status, _) = app.post_hook(body.to_string()).await;
    assert_eq!(status, 200);
    let order = app.store().order("REF11").await.unwrap().unwrap();
    assert_eq!(order.event_name, "Jazz Bcc: everyone@victim.test");
    assert_eq!(order.email, "Lerato@Mail.co.za");
    assert_eq!(order.buyer_name, "<script>alert(1)</script> Lerato");
    assert_eq!(
        order.tickets[0].price, None,
        "an unreadable price is unknown, not zero"
    );
    let last = app.store().deliveries().await.unwrap().pop().unwrap();
    assert!(
        last.error.unwrap().contains("tickets[0].price"),
        "the unreadable field is noted"
    );
}

#[tokio::test]
async fn an_empty_email_and_missing_fields_are_accepted() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .post_hook(r#"{"reference":"REF12","action":"checkout_started","email":""}"#)
        .await;
    assert_eq!((status, body), (200, json!({"status": "recorded"})));
    let order = app.store().order("REF12").await.unwrap().unwrap();
    assert_eq!(order.email, "");
    assert_eq!(order.event_id, None);
    // A later hook fills in what the first one lacked.
    app.post_hook(hook("REF12", "eft_pending")).await;
    let order = app.store().order("REF12").await.unwrap().unwrap();
    assert_eq!(order.email, "lerato@mail.co.za");
    assert_eq!(order.event_id.as_deref(), Some("456"));
}

#[tokio::test]
async fn five_hundred_concurrent_posts_are_all_stored() {
    let app = TestApp::spawn().await;
    let url = app.hook_url();
    let mut tasks = Vec::new();
    for i in 0..500 {
        let client = app.client.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            common::post(&client, &url, hook(&format!("C{i:04}"), "checkout_started")).await
        }));
    }
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!((status, body), (200, json!({"status": "recorded"})));
    }
    assert_eq!(app.store().order_count().await.unwrap(), 500);
    assert_eq!(app.store().deliveries().await.unwrap().len(), 500);
}

#[tokio::test]
async fn healthz_reports_the_database() {
    let app = TestApp::spawn().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(body["database"]["ok"], true);
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = TestApp::spawn().await;
    let response = app.client.delete(app.hook_url()).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 405);
    let response = app.get("/nothing").await;
    assert_eq!(response.status().as_u16(), 404);
}

/// A GET, its status, its Content-Type and its body.
async fn page(app: &TestApp, url: &str) -> (u16, String, String) {
    let response = app.client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, kind, response.text().await.unwrap())
}

#[tokio::test]
async fn the_front_page_says_what_this_is_and_whether_it_is_set_up() {
    let app = TestApp::spawn().await;
    let (status, kind, body) = page(&app, &format!("{}/", app.base)).await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/html"), "{kind}");
    assert!(body.contains("Quicket follow-up"), "{body}");
    assert!(body.contains("not set up yet"), "{body}");
    assert!(
        !body.contains("href=\"/admin\""),
        "no sign-in while it is off: {body}"
    );
    assert!(
        !body.contains(common::TOKEN),
        "the webhook token is private: {body}"
    );

    let app =
        TestApp::spawn_with(|c| c.server.admin_password = "a-long-admin-password".into()).await;
    let (status, _, body) = page(&app, &format!("{}/", app.base)).await;
    assert_eq!(status, 200);
    assert!(body.contains("set up and running"), "{body}");
    assert!(body.contains("href=\"/admin\""), "{body}");
    assert!(!body.contains(common::TOKEN), "{body}");
    assert!(!body.contains("a-long-admin-password"), "{body}");
}

#[tokio::test]
async fn the_webhook_address_opened_in_a_browser_explains_itself() {
    let app = TestApp::spawn().await;
    let (status, kind, body) = page(&app, &app.hook_url()).await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/html"), "{kind}");
    assert!(body.contains("Your Quicket webhook address"), "{body}");
    assert!(body.contains(&app.hook_url()), "the address itself: {body}");
    assert!(
        body.contains("Settings → Integrations → Webhooks"),
        "{body}"
    );
    assert!(
        body.contains("No message from Quicket has arrived yet"),
        "{body}"
    );

    // Quicket's POST is unchanged, and the page then tells when the last one came.
    app.post_ok(hook("REF1", "checkout_started")).await;
    let (_, _, body) = page(&app, &app.hook_url()).await;
    assert!(body.contains("Last message from Quicket"), "{body}");
    assert!(body.contains("just now"), "{body}");
    assert!(!body.contains("REF1"), "nothing about the order: {body}");
}

#[tokio::test]
async fn a_wrong_webhook_token_opened_in_a_browser_shows_nothing() {
    let app = TestApp::spawn().await;
    for wrong in [
        "nope",
        &common::TOKEN[..common::TOKEN.len() - 1],
        "<script>",
    ] {
        let url = format!("{}/webhooks/quicket/{}", app.base, wrong);
        let (status, kind, body) = page(&app, &url).await;
        assert_eq!(status, 404, "{wrong}");
        assert!(!kind.starts_with("text/html"), "{wrong}: {kind}");
        assert!(!body.contains("Quicket"), "{wrong}: {body}");
        assert!(!body.contains(common::TOKEN), "{wrong}: {body}");
    }
    // The service is still up and the right address still works.
    app.post_ok(hook("REF2", "checkout_started")).await;
}

#[tokio::test]
async fn stopping_answers_in_flight_requests_and_keeps_them() {
    let app = TestApp::spawn().await;
    let url = app.hook_url();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let client = app.client.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            common::post(&client, &url, hook(&format!("S{i:03}"), "checkout_started")).await
        }));
    }
    let mut recorded = 0;
    for task in tasks {
        if task.await.unwrap().0 == 200 {
            recorded += 1;
        }
    }
    let path = app.service.store.path().to_path_buf();
    app.service.stop().await;
    let store = quicket_followup::store::Store::open(&path).unwrap();
    assert_eq!(store.order_count().await.unwrap(), recorded);
    store.close().await;
}
