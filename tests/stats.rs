//! The figures: what the reminders recovered (and what they did not), and `replay`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap, helpers included

mod common;

use chrono::Utc;
use common::{TestApp, hook};
use quicket_followup::config::{Config, ReminderStep, SendWindow};
use quicket_followup::domain::OrderState;

fn immediate(c: &mut Config) {
    c.schedule.send_window = SendWindow::parse("").unwrap();
    c.schedule.dormant_after = std::time::Duration::ZERO;
    c.reminders = vec![ReminderStep {
        name: "nudge".into(),
        after: Some(std::time::Duration::ZERO),
        before_event: None,
        when: vec![OrderState::Started, OrderState::Cancelled],
        template: "abandoned".into(),
        variants: Vec::new(),
        arms: Vec::new(),
        even_if_sold_out: false,
        send_window: SendWindow::Unset,
        paused: false,
        from: None,
        label: None,
    }];
}

#[tokio::test]
async fn recovery_counts_only_purchases_after_a_reminder_split_by_click() {
    let app = TestApp::spawn_with(immediate).await;
    // A: reminded, clicked, paid. B: reminded, paid without clicking. C: paid, never reminded.
    // D: reminded, never paid.
    for (r, email) in [
        ("A1", "a@mail.co.za"),
        ("B1", "b@mail.co.za"),
        ("D1", "d@mail.co.za"),
    ] {
        assert_eq!(
            app.post_hook(
                hook(r, "checkout_started")
                    .email(email)
                    .amount("100.00")
                    .no_tickets()
            )
            .await
            .0,
            200
        );
    }
    let report = app.pass_at(Utc::now()).await;
    assert_eq!(report.counts.sent, 3);
    let a = quicket_followup::links::LinkTarget {
        email_key: "a@mail.co.za".into(),
        event_id: "456".into(),
        step: "nudge".into(),
    };
    let client = common::no_redirects();
    assert_eq!(
        client
            .get(
                app.service
                    .engine
                    .issue_links(&a, None, Utc::now())
                    .await
                    .unwrap()
                    .event,
            )
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        302
    );
    // A pays under another reference, for more.
    app.post_hook(
        hook("A2", "checkout_completed")
            .email("A@mail.co.za")
            .amount("250.00")
            .no_tickets(),
    )
    .await;
    app.post_hook(
        hook("B1", "checkout_completed")
            .email("b@mail.co.za")
            .amount("100.00")
            .no_tickets(),
    )
    .await;
    app.post_hook(
        hook("C1", "checkout_completed")
            .email("c@mail.co.za")
            .amount("999.00")
            .no_tickets(),
    )
    .await;

    let mut rules = app.service.engine.settings().config.stats_rules();
    let stats = app.store().stats(Utc::now(), rules.clone()).await.unwrap();
    let r = &stats.recovered;
    assert_eq!(
        (r.total.purchases, r.total.revenue_cents),
        (2, 35000),
        "C is not counted: {r:?}"
    );
    assert_eq!((r.clicked.purchases, r.clicked.revenue_cents), (1, 25000));
    assert_eq!(r.by_step.len(), 1);
    assert_eq!(r.by_step[0].step, "nudge");
    assert_eq!(r.by_step[0].not_clicked.revenue_cents, 10000);
    assert_eq!(r.last_30_days.purchases, 2);
    let today = stats.daily.last().unwrap();
    assert_eq!((today.sent, today.recovered), (3, 2));
    assert_eq!(stats.daily.len(), 30);
    let w = &stats.windows[0];
    assert_eq!(w.hooks["checkout_started"], 3);
    assert_eq!(w.hooks["checkout_completed"], 3);
    assert_eq!(w.reminders["sent"], 3);

    // Outside the attribution window nothing counts.
    rules.attribution_window = std::time::Duration::ZERO;
    let stats = app.store().stats(Utc::now(), rules).await.unwrap();
    assert_eq!(stats.recovered.total.purchases, 0);
}

#[tokio::test]
async fn stats_are_available_to_scripts_as_json() {
    let app = TestApp::spawn().await;
    app.post_hook(
        hook("R1", "checkout_started")
            .email("a@mail.co.za")
            .amount("100")
            .no_tickets(),
    )
    .await;
    let (code, out, err) = app.cli(&["stats", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let stats: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stats["windows"][0]["hooks"]["checkout_started"], 1);
    assert_eq!(stats["recovered"]["total"]["purchases"], 0);
    let (code, out, _) = app.cli(&["stats"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("No control group yet"), "{out}");
    assert!(
        out.contains("attributed (any purchase after a reminder, whether or not it made the difference): 0 purchases, R0.00"),
        "{out}"
    );
}

#[tokio::test]
async fn replay_reprocesses_what_an_older_version_could_not_read_and_is_idempotent() {
    let app = TestApp::spawn().await;
    app.post_hook(
        hook("R1", "checkout_started")
            .email("a@mail.co.za")
            .amount("100")
            .no_tickets(),
    )
    .await;
    // What an older version left behind: two hooks it refused (one new, one a repeat of R1's).
    let new = hook("R2", "eft_pending")
        .email("b@mail.co.za")
        .amount("200")
        .no_tickets()
        .to_string();
    let repeat = hook("R1", "checkout_started")
        .email("a@mail.co.za")
        .amount("100")
        .no_tickets()
        .to_string();
    app.store()
        .write(move |conn| {
            for body in [new, repeat] {
                conn.execute(
                    "INSERT INTO deliveries (received_at, body, outcome, error) VALUES (?1, ?2, 'rejected', 'old parser')",
                    rusqlite::params![quicket_followup::store::timestamp(Utc::now()), body.into_bytes()],
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let first = app
        .store()
        .replay(chrono_tz::Africa::Johannesburg)
        .await
        .unwrap();
    assert_eq!((first.examined, first.recorded, first.duplicate), (2, 1, 1));
    assert_eq!(
        app.store().order("R2").await.unwrap().unwrap().status,
        OrderState::EftPending
    );
    let second = app
        .store()
        .replay(chrono_tz::Africa::Johannesburg)
        .await
        .unwrap();
    assert_eq!(second.examined, 0, "nothing left to replay");
    assert_eq!(app.store().order_count().await.unwrap(), 2);
}
