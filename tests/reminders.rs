//! The reminder engine's rules, one test each, through real HTTP, a real SQLite file and a real
//! SMTP server. Time is driven by running passes at chosen instants, never by sleeping.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap, helpers included

mod common;
use common::smtp;

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Africa::Johannesburg;
use common::{TestApp, hook, step};
use quicket_followup::config::{Config, EventConfig, SendWindow};
use quicket_followup::domain::OrderState;
use quicket_followup::reminders::PassReport;
use quicket_followup::store::privacy::SuppressionSource;
use serde_json::json;
use smtp::SmtpServer;

const BUYER: &str = "lerato@mail.co.za";

/// An app sending through `smtp`, any hour, with the default steps unless `adjust` changes them.
async fn app(smtp: &SmtpServer, adjust: impl FnOnce(&mut Config)) -> TestApp {
    TestApp::spawn_with(|c| {
        common::via_smtp(c, smtp);
        c.server.public_url = "https://tickets.shop.co.za".into();
        c.schedule.send_window = SendWindow::parse("").unwrap();
        adjust(c);
    })
    .await
}

fn later(minutes: i64) -> DateTime<Utc> {
    Utc::now() + Duration::minutes(minutes)
}

/// The local wall-clock text of an instant, as Quicket writes event dates.
fn local(t: DateTime<Utc>) -> String {
    t.with_timezone(&Johannesburg)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

fn decisions(report: &PassReport) -> Vec<String> {
    report
        .lines
        .iter()
        .map(|l| format!("{} {}", l.decision, l.reason))
        .collect()
}

#[tokio::test]
async fn a_dormant_checkout_gets_its_reminder_once_the_step_is_due() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, |_| {}).await;
    app.post_ok(hook("REF1", "checkout_started").email(" Lerato@Mail.co.za "))
        .await;

    let early = app.pass_at(later(10)).await;
    assert_eq!(early.counts.deferred, 1, "{:?}", decisions(&early));
    assert!(smtp.received().is_empty());

    let due = app.pass_at(later(61)).await;
    assert_eq!(due.counts.sent, 1, "{:?}", decisions(&due));
    let mail = smtp.received();
    assert_eq!(mail.len(), 1);
    let m = &mail[0];
    assert_eq!(m.to, ["Lerato@Mail.co.za"]);
    assert_eq!(
        m.header("Subject").unwrap(),
        "Your Jazz on the Lawn tickets are still waiting"
    );
    assert_eq!(
        m.header("From").unwrap(),
        "\"Jazz on the Lawn\" <tickets@shop.co.za>"
    );
    let unsubscribe = m.header("List-Unsubscribe").unwrap();
    assert!(
        unsubscribe.starts_with("<https://tickets.shop.co.za/unsubscribe/"),
        "{unsubscribe}"
    );
    assert_eq!(
        m.header("List-Unsubscribe-Post").unwrap(),
        "List-Unsubscribe=One-Click"
    );
    assert!(
        m.header("Message-ID")
            .unwrap()
            .ends_with(".reminder@shop.co.za>")
    );
    assert!(m.header("Date").is_some());
    assert!(
        m.header("Content-Type")
            .unwrap()
            .starts_with("multipart/alternative")
    );
    assert!(
        m.data.contains("Content-Type: text/plain") && m.data.contains("Content-Type: text/html")
    );
}

#[tokio::test]
async fn a_buyer_who_paid_under_any_reference_gets_nothing() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, |_| {}).await;
    app.post_ok(hook("REF1", "checkout_started")).await;
    app.post_ok(hook("REF2", "checkout_completed").email("LERATO@mail.co.za"))
        .await;
    let report = app.pass_at(later(120)).await;
    assert_eq!(report.counts.sent, 0, "{:?}", decisions(&report));
    assert!(smtp.received().is_empty());
}

#[tokio::test]
async fn paying_after_a_reminder_stops_the_next_ones() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, |c| {
        c.schedule.min_gap = std::time::Duration::from_secs(60);
        c.reminders = vec![
            step("first", 60, &[OrderState::Started], "abandoned"),
            step("second", 180, &[OrderState::Started], "abandoned"),
        ];
    })
    .await;
    app.post_ok(hook("REF1", "checkout_started")).await;
    assert_eq!(app.pass_at(later(61)).await.counts.sent, 1);
    app.post_ok(hook("REF1", "checkout_completed")).await;
    let report = app.pass_at(later(300)).await;
    assert_eq!(report.counts.sent, 0, "{:?}", decisions(&report));
    assert_eq!(smtp.received().len(), 1);
}

#[tokio::test]
async fn two_checkouts_for_one_event_get_one_email_per_step() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, |_| {}).await;
    app.post_ok(hook("REF1", "checkout_started")).await;
    app.post_ok(hook("REF2", "checkout_cancelled")).await;
    assert_eq!(app.pass_at(later(90)).await.counts.sent, 1);
    assert_eq!(app.pass_at(later(95)).await.counts.sent, 0);
    assert_eq!(app.pass_at(later(60 * 14)).await.counts.sent, 0);
    assert_eq!(smtp.received().len(), 1);
}

#[tokio::test]
async fn eft_pending_gets_the_payment_reminder_and_never_the_abandoned_one() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, |_| {}).await;
    app.post_ok(hook("REF7", "eft_pending")).await;
    assert_eq!(app.pass_at(later(120)).await.counts.sent, 0);
    assert_eq!(app.pass_at(later(24 * 60 + 1)).await.counts.sent, 1);
    let mail = smtp.received();
    assert_eq!(mail.len(), 1);
    assert!(
        mail[0].header("Subject").unwrap().contains("EFT"),
        "{:?}",
        mail[0].header("Subject")
    );
    assert!(
        mail[0].data.contains("REF7"),
        "the reference to quote is in the email"
    );
}

#[tokio::test]
async fn never_to_empty_invalid_or_reserved_addresses() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, |_| {}).await;
    for (i, email) in [
        "",
        "not-an-address",
        "demo@example.com",
        "x@shop.test",
        "x@localhost",
    ]
    .iter()
    .enumerate()
    {
        app.post_ok(hook(&format!("R{i}"), "checkout_started").email(email))
            .await;
    }
    // Quicket's own "Send Test" sample is harmless.
    app.post_ok(common::SAMPLE_STARTED.to_string()).await;
    let report = app.pass_at(later(120)).await;
    assert_eq!(report.counts.sent, 0, "{:?}", decisions(&report));
    assert!(smtp.received().is_empty());
    assert!(
        decisions(&report)
            .iter()
            .any(|d| d.contains("reserved domain"))
    );
    assert!(
        decisions(&report)
            .iter()
            .any(|d| d.contains("not a valid email address"))
    );
}

#[tokio::test]
async fn never_to_a_suppressed_address() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, |_| {}).await;
    app.post_ok(hook("REF1", "checkout_started")).await;
    app.store()
        .add_suppression(
            " LERATO@mail.co.za",
            SuppressionSource::Cli,
            None,
            None,
            Utc::now(),
        )
        .await
        .unwrap();
    let report = app.pass_at(later(120)).await;
    assert_eq!(report.counts.sent, 0);
    assert!(decisions(&report)[0].contains("unsubscribed"));
}

#[tokio::test]
async fn never_this_close_to_the_event_nor_after_it() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, |_| {}).await;
    // The event starts 2h50 from now; the step falls due in 1h, inside the last 2 hours.
    app.post_ok(hook("REF1", "checkout_started").event_date(&local(later(170))))
        .await;
    let report = app.pass_at(later(61)).await;
    assert_eq!(report.counts.sent, 0, "{:?}", decisions(&report));
    assert!(decisions(&report)[0].contains("too close to the event"));
    assert!(smtp.received().is_empty());
}

#[tokio::test]
async fn never_once_the_last_change_is_older_than_give_up_after() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, |_| {}).await;
    app.post_ok(hook("REF1", "checkout_started")).await;
    let report = app.pass_at(later(15 * 24 * 60)).await;
    assert_eq!(report.counts.sent, 0);
    assert!(decisions(&report)[0].contains("gave up"));
}

#[tokio::test]
async fn never_for_an_event_with_reminders_off() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, |c| {
        c.events.insert(
            "456".into(),
            EventConfig {
                url: None,
                reminders: false,
            },
        );
    })
    .await;
    app.post_ok(hook("REF1", "checkout_started")).await;
    let report = app.pass_at(later(120)).await;
    assert_eq!(report.counts.sent, 0);
    assert!(decisions(&report)[0].contains("reminders are off"));
}

#[tokio::test]
async fn outside_the_send_window_a_due_reminder_waits_for_it_to_open() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, |c| {
        c.schedule.send_window = SendWindow::parse("08:00-20:00").unwrap()
    })
    .await;
    app.post_ok(hook("REF1", "checkout_started")).await;
    // The first 21:00 in Johannesburg at least two hours from now, and the 08:00 after it.
    let mut evening = Utc::now() + Duration::hours(2);
    loop {
        let l = evening.with_timezone(&Johannesburg);
        if l.format("%H").to_string() == "21" {
            break;
        }
        evening += Duration::minutes(30);
    }
    let date = evening.with_timezone(&Johannesburg).date_naive();
    let morning = Johannesburg
        .from_local_datetime(&date.succ_opt().unwrap().and_hms_opt(8, 0, 0).unwrap())
        .unwrap()
        .with_timezone(&Utc);
    let night = app.pass_at(evening).await;
    assert_eq!(night.counts.sent, 0);
    assert!(decisions(&night)[0].contains("outside the send window"));
    assert_eq!(
        app.pass_at(morning - Duration::minutes(1))
            .await
            .counts
            .sent,
        0
    );
    assert_eq!(app.pass_at(morning).await.counts.sent, 1);
}

#[tokio::test]
async fn at_most_one_email_per_buyer_and_event_within_min_gap() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, |c| {
        c.reminders = vec![
            step("first", 60, &[OrderState::Started], "abandoned"),
            step("second", 120, &[OrderState::Started], "abandoned"),
        ];
    })
    .await;
    app.post_ok(hook("REF1", "checkout_started")).await;
    assert_eq!(app.pass_at(later(61)).await.counts.sent, 1);
    // The second step falls due at +2h, but the buyer had an email at +1h: it waits 12h.
    assert_eq!(app.pass_at(later(125)).await.counts.sent, 0);
    assert_eq!(app.pass_at(later(60 + 12 * 60)).await.counts.sent, 0);
    assert_eq!(app.pass_at(later(61 + 12 * 60)).await.counts.sent, 1);
    assert_eq!(smtp.received().len(), 2);
}

#[tokio::test]
async fn steps_overdue_together_send_only_the_latest_and_skip_the_rest() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, |c| {
        c.reminders = vec![
            step("first", 60, &[OrderState::Started], "abandoned"),
            step("second", 180, &[OrderState::Started], "last_chance"),
        ];
    })
    .await;
    app.post_ok(hook("REF1", "checkout_started")).await;
    let report = app.pass_at(later(240)).await;
    assert_eq!(report.counts.sent, 1);
    let mail = smtp.received();
    assert!(
        mail[0]
            .header("Subject")
            .unwrap()
            .starts_with("There's still time")
    );
    let (_, out, _) = export_reminders(&app);
    let skipped: Vec<&serde_json::Value> =
        out.iter().filter(|r| r["status"] == "skipped").collect();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["step"], "first");
    assert!(
        skipped[0]["reason"]
            .as_str()
            .unwrap()
            .contains("only the latest is sent")
    );
    // And the skipped step never goes later.
    assert_eq!(app.pass_at(later(24 * 60)).await.counts.sent, 0);
}

fn export_reminders(app: &TestApp) -> (i32, Vec<serde_json::Value>, String) {
    let db = app.store().path().to_str().unwrap().to_string();
    let config = app.dir.path().join("export.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\npath = {db:?}\n[templates]\ndir = {:?}\n",
            common::templates_dir()
        ),
    )
    .unwrap();
    let (code, out, err) = common::run_cli(
        &["--config", config.to_str().unwrap(), "export", "reminders"],
        &[],
    );
    let rows = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (code, rows, err)
}

#[tokio::test]
async fn a_pass_run_twice_never_sends_a_step_twice() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, |_| {}).await;
    app.post_ok(hook("REF1", "checkout_started")).await;
    let at = later(90);
    assert_eq!(app.pass_at(at).await.counts.sent, 1);
    assert_eq!(app.pass_at(at).await.counts.sent, 0);
    assert_eq!(smtp.received().len(), 1);
}

#[tokio::test]
async fn two_passes_at_once_send_each_step_once() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, |_| {}).await;
    for i in 0..5 {
        app.post_ok(
            hook(&format!("REF{i}"), "checkout_started").email(&format!("b{i}@mail.co.za")),
        )
        .await;
    }
    let at = later(90);
    let engine = app.service.engine.clone();
    let (a, b) = tokio::join!(engine.run_pass(at, false), engine.run_pass(at, false));
    let sent: u64 = [a, b]
        .into_iter()
        .filter_map(Result::ok)
        .map(|r| r.counts.sent)
        .sum();
    assert_eq!(sent, 5);
    assert_eq!(smtp.received().len(), 5);
}

#[tokio::test]
async fn a_temporary_smtp_failure_is_retried_and_then_sent() {
    let smtp = SmtpServer::start();
    smtp.fail_next_transaction(451, "4.3.0 Try again later");
    let app = app(&smtp, |_| {}).await;
    app.post_ok(hook("REF1", "checkout_started")).await;
    let first = app.pass_at(later(61)).await;
    assert_eq!(
        (first.counts.sent, first.counts.failed),
        (0, 1),
        "{:?}",
        decisions(&first)
    );
    assert!(decisions(&first)[0].contains("will retry"));
    let health: serde_json::Value = app.get_json("/healthz").await;
    assert_eq!(health["email"]["sends_waiting_to_retry"], 1);
    assert_eq!(health["last_pass"]["failed"], 1);
    let retry = app.pass_at(later(61 + 3)).await;
    assert_eq!(retry.counts.sent, 1, "{:?}", decisions(&retry));
    let mail = smtp.received();
    assert_eq!(mail.len(), 1);
}

#[tokio::test]
async fn a_dead_smtp_server_loses_nothing_across_a_restart() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("smtp://{}", dead.local_addr().unwrap());
    drop(dead);
    let smtp = SmtpServer::start();
    let mut config = None;
    let app = app(&smtp, |c| {
        c.email.smtp_url = dead_url;
        config = Some(c.clone());
    })
    .await;
    app.post_ok(hook("REF1", "checkout_started")).await;
    let first = app.pass_at(later(61)).await;
    assert_eq!(first.counts.failed, 1, "{:?}", decisions(&first));
    let TestApp { dir, service, .. } = app;
    service.stop().await;

    // Restarted with a server that answers: the claimed step goes out, once.
    let mut config = config.unwrap();
    config.email.smtp_url = smtp.url();
    let service = quicket_followup::server::Service::start_with(config, false)
        .await
        .unwrap();
    let report = service.engine.run_pass(later(70), false).await.unwrap();
    assert_eq!(report.counts.sent, 1, "{:?}", decisions(&report));
    let again = service.engine.run_pass(later(80), false).await.unwrap();
    assert_eq!(again.counts.sent, 0);
    assert_eq!(smtp.received().len(), 1);
    service.stop().await;
    drop(dir);
}

#[tokio::test]
async fn a_permanent_refusal_is_failed_and_a_missing_mailbox_is_suppressed() {
    let smtp = SmtpServer::start();
    smtp.refuse_recipient(
        BUYER,
        550,
        "5.1.1 <lerato@mail.co.za>: Recipient address rejected: User unknown",
    );
    let app = app(&smtp, |_| {}).await;
    app.post_ok(hook("REF1", "checkout_started")).await;
    let report = app.pass_at(later(61)).await;
    assert_eq!(report.counts.failed, 1);
    assert!(
        decisions(&report)[0].contains("User unknown"),
        "{:?}",
        decisions(&report)
    );
    assert!(decisions(&report)[0].contains("suppressed"));
    // Not retried, and the next checkout by the same address is not emailed either.
    assert_eq!(app.pass_at(later(120)).await.counts.failed, 0);
    let mut other: serde_json::Value = hook("REF2", "checkout_started").json();
    other["event_id"] = json!(789);
    app.post_ok(other.to_string()).await;
    let later_report = app.pass_at(later(200)).await;
    assert_eq!(
        later_report.counts.sent,
        0,
        "{:?}",
        decisions(&later_report)
    );
    assert!(smtp.received().is_empty());
}

#[tokio::test]
async fn a_claim_left_by_a_killed_pass_is_sent_on_the_next_pass_with_the_same_message_id() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, |_| {}).await;
    app.post_ok(hook("REF1", "checkout_started")).await;
    // What a pass killed between claiming and sending leaves behind.
    let at = later(61);
    let message_id = quicket_followup::email::message_id(
        b"any secret",
        BUYER,
        "456",
        "abandoned-1",
        "Jazz on the Lawn <tickets@shop.co.za>",
    );
    app.claim_without_sending(BUYER, "abandoned-1", "REF1", &message_id, at)
        .await;
    let report = app.pass_at(later(65)).await;
    assert_eq!(report.counts.sent, 1, "{:?}", decisions(&report));
    let mail = smtp.received();
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].header("Message-ID").unwrap(), message_id);
    assert_eq!(app.pass_at(later(70)).await.counts.sent, 0);
}

/// A claim whose SMTP transaction had begun when the process died may have arrived: the next
/// pass marks it interrupted and never sends it; a claim whose transaction never began is sent.
#[tokio::test]
async fn a_send_that_had_started_is_marked_interrupted_and_one_that_never_started_is_sent() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, |_| {}).await;
    let other = "thandi@mail.co.za";
    app.post_ok(hook("REF1", "checkout_started")).await;
    app.post_ok(hook("REF2", "checkout_started").email(other))
        .await;
    let at = later(61);
    for (email, reference) in [(BUYER, "REF1"), (other, "REF2")] {
        let id = quicket_followup::email::message_id(
            b"k",
            email,
            "456",
            "abandoned-1",
            "x <t@shop.co.za>",
        );
        app.claim_without_sending(email, "abandoned-1", reference, &id, at)
            .await;
    }
    // BUYER's transaction began (what a kill mid-send leaves); the other's never did.
    let claims = app.store().open_claims(at).await.unwrap();
    let started = claims.iter().find(|c| c.email == BUYER).unwrap();
    app.store().start_send(started, at).await.unwrap();

    let report = app.pass_at(later(65)).await;
    assert_eq!(
        (report.counts.sent, report.counts.interrupted),
        (1, 1),
        "{:?}",
        decisions(&report)
    );
    assert!(
        decisions(&report)
            .iter()
            .any(|d| d.starts_with("interrupted") && d.contains("may or may not have arrived")),
        "{:?}",
        decisions(&report)
    );
    let mail = smtp.received();
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].to, [other.to_string()]);
    let timeline = app.store().timeline(BUYER, "456").await.unwrap().unwrap();
    assert!(
        timeline
            .entries
            .iter()
            .any(|e| e.title == "reminder abandoned-1: interrupted"),
        "{:?}",
        timeline.entries
    );
    // Interrupted is decided for good: no later pass sends it.
    let report = app.pass_at(later(70)).await;
    assert_eq!((report.counts.sent, report.counts.interrupted), (0, 0));
    assert_eq!(smtp.received().len(), 1);
}

#[tokio::test]
async fn a_pass_is_refused_while_another_process_runs_one() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, |_| {}).await;
    let mut lock_path = app.store().path().as_os_str().to_owned();
    lock_path.push(".pass-lock");
    let lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap();
    lock.lock().unwrap();
    let busy = app.service.engine.run_pass(later(61), false).await;
    assert!(matches!(
        busy,
        Err(quicket_followup::reminders::PassError::Busy)
    ));
    drop(lock);
    assert!(app.service.engine.run_pass(later(61), false).await.is_ok());
}

#[tokio::test]
async fn line_breaks_and_html_in_names_stay_harmless_in_the_email() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, |_| {}).await;
    let mut body: serde_json::Value = hook("REF1", "checkout_started").json();
    body["tickets"][0]["attendee_name"] = json!("<b>Lerato</b>\r\nBcc: victim@mail.co.za");
    body["event_name"] = json!("Jazz\r\nBcc: victim@mail.co.za");
    app.post_ok(body.to_string()).await;
    assert_eq!(app.pass_at(later(61)).await.counts.sent, 1);
    let mail = smtp.received();
    assert_eq!(mail[0].to, [BUYER]);
    assert!(mail[0].header("Bcc").is_none());
    let head = mail[0].data.split("\r\n\r\n").next().unwrap();
    assert!(!head.contains("\r\nBcc:"), "{head}");
    assert!(!mail[0].data.contains("<b>Lerato</b>") || mail[0].data.contains("&lt;b&gt;Lerato"));
}

#[tokio::test]
async fn the_outbox_transport_writes_a_parseable_eml_with_both_parts_and_the_headers() {
    let app = TestApp::spawn_with(|c| {
        c.schedule.send_window = SendWindow::parse("").unwrap();
        c.server.public_url = "https://tickets.shop.co.za".into();
    })
    .await;
    app.post_ok(hook("REF1", "checkout_started")).await;
    assert_eq!(app.pass_at(later(61)).await.counts.sent, 1);
    let outbox = app.dir.path().join("data/outbox");
    let files: Vec<_> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().unwrap(), "eml");
    let eml = std::fs::read_to_string(&files[0]).unwrap();
    let message = smtp::Received {
        to: vec![],
        data: eml.clone(),
    };
    assert_eq!(
        message.header("To").unwrap(),
        "\"Lerato Dlamini\" <lerato@mail.co.za>"
    );
    assert!(
        message
            .header("List-Unsubscribe")
            .unwrap()
            .starts_with("<https://tickets.shop.co.za/unsubscribe/")
    );
    assert_eq!(
        message.header("List-Unsubscribe-Post").unwrap(),
        "List-Unsubscribe=One-Click"
    );
    assert!(message.header("Message-ID").is_some() && message.header("Date").is_some());
    let boundary = message
        .header("Content-Type")
        .unwrap()
        .split("boundary=")
        .nth(1)
        .unwrap()
        .trim_matches('"')
        .to_string();
    let parts: Vec<&str> = eml.split(&format!("--{boundary}")).collect();
    assert_eq!(parts.len(), 4, "preamble, text, html, closing");
    assert!(parts[1].contains("Content-Type: text/plain; charset=utf-8"));
    assert!(parts[2].contains("Content-Type: text/html; charset=utf-8"));
    assert!(parts[3].starts_with("--"));
}

#[tokio::test]
async fn run_once_dry_run_prints_the_plan_and_sends_and_records_nothing() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, |_| {}).await;
    app.post_ok(hook("REF1", "checkout_started")).await;
    app.post_ok(hook("REF2", "checkout_started").email("x@example.com"))
        .await;
    let config = app.dir.path().join("cli.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\npath = {:?}\n[templates]\ndir = {:?}\n[email]\ntransport = \"smtp\"\nsmtp_url = {:?}\n[schedule]\nsend_window = \"\"\n",
            app.store().path(),
            common::templates_dir(),
            smtp.url()
        ),
    )
    .unwrap();
    let now = later(61).to_rfc3339();
    let config = config.to_str().unwrap();
    let (code, out, err) = common::run_cli(
        &["--config", config, "run-once", "--now", &now, "--dry-run"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("would send") && l.contains(BUYER) && l.contains("abandoned-1")),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.starts_with("skipped")
            && l.contains("x@example.com")
            && l.contains("reserved")),
        "{out}"
    );
    assert!(
        out.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("dry run: pass at"),
        "{out}"
    );
    assert!(smtp.received().is_empty());
    let (_, rows, _) = export_reminders(&app);
    assert!(rows.is_empty(), "a dry run records nothing: {rows:?}");
    assert!(app.store().last_pass().await.unwrap().is_none());

    // The same pass for real sends, and says so.
    let (code, out, _) = common::run_cli(&["--config", config, "run-once", "--now", &now], &[]);
    assert_eq!(code, 0);
    assert!(
        out.lines()
            .any(|l| l.starts_with("sent") && l.contains(BUYER)),
        "{out}"
    );
    assert!(out.contains("considered 2, sent 1"), "{out}");
    assert_eq!(smtp.received().len(), 1);

    let (code, _, err) =
        common::run_cli(&["--config", config, "run-once", "--now", "tomorrow"], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("--now") && err.contains("RFC 3339"), "{err}");
}

/// A pass at a time ahead (`run-once --now` looking ahead, or a clock that jumped forward and
/// came back) decides only for that time and later: the pass at the right time decides afresh,
/// and the reminder goes out.
#[tokio::test]
async fn a_skip_or_deferral_decided_for_a_later_time_binds_no_earlier_pass() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, |_| {}).await;
    app.post_ok(hook("REF1", "checkout_started").email(BUYER))
        .await;
    // Far ahead: the event (in 2030) has started; nothing is sent, the buyer-event is skipped.
    let ahead = Utc.with_ymd_and_hms(2100, 1, 1, 0, 0, 0).unwrap();
    let report = app.pass_at(ahead).await;
    assert_eq!(report.counts.skipped, 1, "{:?}", decisions(&report));
    assert!(
        decisions(&report)[0].contains("the event has started"),
        "{:?}",
        decisions(&report)
    );
    // Ahead by less: the checkout is still active, so the pass defers it to a later time.
    let report = app.pass_at(later(20)).await;
    assert_eq!(report.counts.deferred, 1, "{:?}", decisions(&report));
    // The pass at the right time sends the reminder.
    let report = app.pass_at(later(61)).await;
    assert_eq!(report.counts.sent, 1, "{:?}", decisions(&report));
    assert_eq!(smtp.received().len(), 1);
    // Sent stays sent: a pass at an earlier time again does not send it twice.
    let report = app.pass_at(later(30)).await;
    assert_eq!(report.counts.sent, 0, "{:?}", decisions(&report));
    assert_eq!(smtp.received().len(), 1);
}
