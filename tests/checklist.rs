//! The setup checklist at `/admin/setup`: each item says where it stands and what to do; the
//! overview says how many are done, and links there, until all are. "Connect Quicket" turns
//! green once a hook arrives; no password or SMTP secret is shown.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap, helpers included

mod common;

use common::TestApp;

const PASSWORD: &str = "Clifton-4th-beach-sunset";

async fn page(app: &TestApp, path: &str) -> String {
    let response = app.admin_get(path, PASSWORD).await;
    assert_eq!(response.status().as_u16(), 200, "{path}");
    response.text().await.unwrap()
}

#[tokio::test]
async fn the_checklist_says_what_is_left_and_quicket_turns_green_when_a_hook_arrives() {
    let app = TestApp::spawn_with(|c| {
        c.server.admin_password = PASSWORD.into();
    })
    .await;
    let setup = page(&app, "/admin/setup").await;
    for needle in [
        "Who sends",
        "How email leaves",
        "Where buyers&#39; links point",
        "Whether the domain is ready",
        "Connect Quicket",
        "The reminders",
        "nothing reaches buyers yet",
        "No message from Quicket yet",
        "/webhooks/quicket/",
        "abandoned-1",
    ] {
        assert!(setup.contains(needle), "{needle}: {setup}");
    }
    assert!(!setup.contains(PASSWORD));
    assert!(setup.contains("settings.toml"), "{setup}");
    assert!(
        setup.contains("1 of 6 done"),
        "a sender at localhost: only the reminders are ready: {setup}"
    );
    let overview = page(&app, "/admin").await;
    assert!(overview.contains("href=\"/admin/setup\""), "{overview}");
    assert!(overview.contains("of 6 done"), "{overview}");

    app.post_ok(common::SAMPLE_STARTED).await;
    let setup = page(&app, "/admin/setup").await;
    assert!(
        setup.contains("Quicket&#39;s last message arrived"),
        "{setup}"
    );
    assert!(!setup.contains("No message from Quicket yet"), "{setup}");
}

#[tokio::test]
async fn the_smtp_item_names_the_server_and_never_its_password() {
    let app = TestApp::spawn_with(|c| {
        c.server.admin_password = PASSWORD.into();
        c.email.transport = quicket_followup::config::Transport::Smtp;
        c.email.smtp_url = "smtp://jazz%40nights.co.za:s3cret-smtp-pw@127.0.0.1:2525".into();
        c.email.from = "Jazz Nights <tickets@jazznights.co.za>".into();
    })
    .await;
    let setup = page(&app, "/admin/setup").await;
    assert!(setup.contains("127.0.0.1:2525"), "{setup}");
    assert!(!setup.contains("s3cret"), "{setup}");
    assert!(!setup.contains("jazz%40nights"), "{setup}");
    assert!(
        setup.contains("Buyers see emails from Jazz Nights"),
        "{setup}"
    );
}
