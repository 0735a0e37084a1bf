//! The overview's figures against a database whose true figures are known: who can still be
//! reminded (each reason for not being remindable present at least once), and what needs the
//! organiser this week, each with its link.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap, helpers included

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{TestApp, hook};
use quicket_followup::config::{EventConfig, SendWindow};
use quicket_followup::experiment::Share;
use quicket_followup::store::privacy::SuppressionSource;

const PASSWORD: &str = "Overview-tells-the-truth";

/// The text of the element with `id`, tags removed, spaces squeezed.
fn section(page: &str, id: &str) -> String {
    let start = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}:\n{page}"));
    let rest = &page[start..];
    let rest = &rest[rest.find('>').unwrap() + 1..];
    let end = rest
        .find("</div>\n\n")
        .or_else(|| rest.find("</section>"))
        .unwrap_or(rest.len());
    let mut text = String::new();
    let mut in_tag = false;
    for c in rest[..end].chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test]
async fn remindable_now_counts_only_who_can_be_reminded_with_each_exclusion_shown() {
    let app = TestApp::spawn_with(|c| {
        c.server.admin_password = PASSWORD.into();
        c.experiment.holdout = Share::parse("50%").unwrap();
        c.schedule.send_window = SendWindow::parse("").unwrap();
        c.schedule.dormant_after = Duration::ZERO;
        for step in &mut c.reminders {
            if step.after.is_some() {
                step.after = Some(Duration::ZERO);
            }
        }
        c.events.insert(
            "999".into(),
            EventConfig {
                url: None,
                reminders: false,
            },
        );
    })
    .await;
    // Sixteen ordinary abandoned checkouts: after the first step, each is emailed (and can get
    // the last-chance step later) or held out.
    for i in 0..16 {
        app.post_ok(
            hook(&format!("N{i}"), "checkout_started")
                .email(&format!("n{i}@mail.co.za"))
                .json()
                .to_string(),
        )
        .await;
    }
    let soon = (Utc::now() + chrono::Duration::hours(1))
        .with_timezone(&chrono_tz::Africa::Johannesburg)
        .format("%Y-%m-%d %H:%M")
        .to_string();
    for h in [
        hook("S1", "checkout_started").email("gone@mail.co.za"),
        hook("D1", "checkout_started").email("demo@example.com"),
        hook("O1", "checkout_started")
            .email("off@mail.co.za")
            .event_id(999),
        hook("L1", "checkout_started")
            .email("late@mail.co.za")
            .event_id(777)
            .event_date(&soon),
        hook("E1", "eft_pending").email("eft@mail.co.za"),
        hook("P1", "checkout_started").email("paid@mail.co.za"),
        hook("P1", "checkout_completed").email("paid@mail.co.za"),
    ] {
        app.post_ok(h.json().to_string()).await;
    }
    // A body Quicket would never send: kept, and listed under Problems.
    assert_eq!(
        app.post_hook("{\"action\": \"checkout_started\"}").await.0,
        400
    );
    app.store()
        .add_suppression(
            "gone@mail.co.za",
            SuppressionSource::Unsubscribe,
            None,
            None,
            Utc::now(),
        )
        .await
        .unwrap();
    app.pass_at(Utc::now()).await;
    let held: usize = app
        .store()
        .read(|conn| {
            Ok(conn.query_row(
                "SELECT count(*) FROM experiment WHERE held_out = 1 AND email_key LIKE 'n%'",
                [],
                |r| r.get::<_, i64>(0),
            )?)
        })
        .await
        .unwrap() as usize;
    assert!(
        (1..16).contains(&held),
        "both groups have ordinary buyers: {held} held out"
    );

    let response = app.admin_get("/admin", PASSWORD).await;
    assert_eq!(response.status().as_u16(), 200);
    let page = response.text().await.unwrap();
    let card = section(&page, "remindable");
    // 16 ordinary + suppressed + reserved + off + too late + no step left; the paid one is not
    // dormant at all.
    let expected = format!(
        "Can be reminded now or later {} of 21 checkouts left unpaid",
        16 - held
    );
    assert!(card.starts_with(&expected), "{card}\nexpected: {expected}");
    for line in [
        "1 reminders are off for their event".to_string(),
        "1 an address that cannot receive mail".into(),
        "1 unsubscribed, bounced or complained".into(),
        "1 their event has started or is too close".into(),
        "1 every reminder step already sent or decided".into(),
        format!("{held} in the control group: never emailed, on purpose"),
    ] {
        assert!(card.contains(&line), "{line:?} missing:\n{card}");
    }

    // What needs the organiser comes first, each with its link.
    let todo = section(&page, "todo");
    assert!(page.find("id=\"todo\"").unwrap() < page.find("What the reminders added").unwrap());
    for (what, link) in [
        ("Not sending: reminders are written as files to", "#health"),
        (
            "1 message from Quicket this week could not be used as sent.",
            "/admin/problems",
        ),
        (
            "1 address is no longer emailed since this week: 1 unsubscribed through the link in an email.",
            "/admin/suppressions",
        ),
    ] {
        assert!(todo.contains(what), "{what:?} missing:\n{todo}");
        let at = page.find(what).unwrap();
        let li_end = page[at..].find("</li>").unwrap();
        assert!(
            page[at..at + li_end].contains(&format!("href=\"{link}\"")),
            "{what:?} has no link to {link}"
        );
    }
    for jargon in ["Buyer-events", "buyer-events", "variants:", "one template"] {
        assert!(!page.contains(jargon), "the overview says {jargon:?}");
    }
}
