//! South Africa's send rules through the real engine, SQLite and an SMTP server: with the default
//! configuration (Africa/Johannesburg, so "za-cpa"), a reminder due when the Consumer Protection
//! Act forbids direct marketing waits for the next allowed moment, says why, and records the rule
//! that let it go. Hooks are stored at chosen instants and passes run at chosen instants.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap, helpers included

mod common;
use common::smtp;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Africa::Johannesburg;
use common::TestApp;
use quicket_followup::config::{Config, SendWindow};
use quicket_followup::quicket::parse_hook;
use quicket_followup::reminders::PassReport;
use serde_json::Value;
use smtp::SmtpServer;

const BUYER: &str = "lerato@mail.co.za";

/// A Johannesburg wall-clock time (`YYYY-MM-DD HH:MM`, seconds optional).
fn sa(text: &str) -> DateTime<Utc> {
    let local = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M"))
        .unwrap();
    Johannesburg
        .from_local_datetime(&local)
        .unwrap()
        .with_timezone(&Utc)
}

/// An app sending through `smtp` with the default send rules unless `adjust` changes them.
async fn app(smtp: &SmtpServer, adjust: impl FnOnce(&mut Config)) -> TestApp {
    TestApp::spawn_with(|c| {
        common::via_smtp(c, smtp);
        c.server.public_url = "https://tickets.shop.co.za".into();
        adjust(c);
    })
    .await
}

/// Stores a `checkout_started` hook as if it arrived at `at` (local time).
async fn started_at(app: &TestApp, reference: &str, at: &str) {
    started_by(app, reference, BUYER, at).await;
}

async fn pass(app: &TestApp, at: &str) -> PassReport {
    app.pass_at(sa(at)).await
}

fn lines(report: &PassReport) -> Vec<String> {
    report
        .lines
        .iter()
        .map(|l| format!("{} {}", l.decision, l.reason))
        .collect()
}

/// `export reminders` through the binary, as JSON values.
fn export_reminders(app: &TestApp) -> Vec<Value> {
    let (code, out, err) = app.cli(&["export", "reminders"]);
    assert_eq!(code, 0, "{err}");
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn due_on_a_sunday_morning_goes_out_on_monday_at_eight() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, |_| {}).await;
    // Sunday 13 December 2026: abandoned-1 falls due at 09:00.
    started_at(&app, "REF1", "2026-12-13 08:00").await;
    let sunday = pass(&app, "2026-12-13 09:00").await;
    assert_eq!(sunday.counts.sent, 0);
    assert_eq!(
        lines(&sunday),
        [
            "deferred Sunday: no direct marketing on Sundays; abandoned-1 waits until Monday 2026-12-14 08:00 SAST (next look 2026-12-14 08:00)"
        ]
    );
    // It waits for that moment, not for some later pass: the next look is Monday 08:00.
    let deferred = export_reminders(&app);
    assert_eq!(deferred[0]["status"], "deferred");
    assert_eq!(deferred[0]["next_check_at"], "2026-12-14T06:00:00.000Z");
    assert_eq!(pass(&app, "2026-12-14 07:59").await.counts.sent, 0);
    assert!(smtp.received().is_empty());

    let monday = pass(&app, "2026-12-14 08:00").await;
    assert_eq!(monday.counts.sent, 1, "{:?}", lines(&monday));
    let received = smtp.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].to, [BUYER]);
    // The proof: the local time it left and the rule that allowed it.
    let sent: Vec<Value> = export_reminders(&app)
        .into_iter()
        .filter(|r| r["status"] == "sent")
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["step"], "abandoned-1");
    assert_eq!(sent[0]["sent_at"], "2026-12-14T06:00:00.000Z");
    assert_eq!(sent[0]["sent_local"], "2026-12-14T08:00:00+02:00");
    assert_eq!(
        sent[0]["send_rule"],
        "za-cpa (Consumer Protection Act): Monday to Friday 08:00-20:00"
    );
}

#[tokio::test]
async fn due_on_a_saturday_at_two_waits_until_monday() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, |_| {}).await;
    started_at(&app, "REF1", "2026-12-12 13:00").await;
    let saturday = pass(&app, "2026-12-12 14:00").await;
    assert_eq!(saturday.counts.sent, 0);
    assert!(
        lines(&saturday)[0].starts_with(
            "deferred Saturday 14:00: direct marketing on Saturdays only 09:00-13:00; abandoned-1 waits until Monday 2026-12-14 08:00"
        ),
        "{:?}",
        lines(&saturday)
    );
    assert_eq!(pass(&app, "2026-12-13 10:00").await.counts.sent, 0);
    assert_eq!(pass(&app, "2026-12-14 08:00").await.counts.sent, 1);
    assert_eq!(smtp.received().len(), 1);
}

#[tokio::test]
async fn due_on_the_day_of_reconciliation_waits_until_the_17th() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, |_| {}).await;
    // Wednesday 16 December 2026 is a public holiday.
    started_at(&app, "REF1", "2026-12-16 09:00").await;
    let holiday = pass(&app, "2026-12-16 10:00").await;
    assert_eq!(holiday.counts.sent, 0);
    assert!(
        lines(&holiday)[0].starts_with(
            "deferred Day of Reconciliation (public holiday): no direct marketing on public holidays; abandoned-1 waits until Thursday 2026-12-17 08:00"
        ),
        "{:?}",
        lines(&holiday)
    );
    assert_eq!(pass(&app, "2026-12-17 07:59").await.counts.sent, 0);
    assert_eq!(pass(&app, "2026-12-17 08:00").await.counts.sent, 1);
    assert_eq!(smtp.received().len(), 1);
}

#[tokio::test]
async fn a_step_with_its_own_window_goes_out_on_a_sunday() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, |c| {
        c.reminders[0].send_window = SendWindow::parse("07:00-21:00").unwrap();
    })
    .await;
    started_at(&app, "REF1", "2026-12-13 05:30").await;
    let early = pass(&app, "2026-12-13 06:30").await;
    assert_eq!(early.counts.sent, 0);
    assert!(
        lines(&early)[0].contains("abandoned-1 waits until Sunday 2026-12-13 07:00"),
        "{:?}",
        lines(&early)
    );
    assert_eq!(pass(&app, "2026-12-13 07:00").await.counts.sent, 1);
    assert_eq!(smtp.received().len(), 1);
    let sent = export_reminders(&app);
    let sent = sent.iter().find(|r| r["status"] == "sent").unwrap();
    assert_eq!(sent["sent_local"], "2026-12-13T07:00:00+02:00");
    assert_eq!(
        sent["send_rule"],
        "reminders.abandoned-1.send_window = \"07:00-21:00\" (every day)"
    );
}

#[tokio::test]
async fn a_claim_left_by_a_killed_pass_is_not_sent_outside_the_window() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, |_| {}).await;
    started_at(&app, "REF1", "2026-12-12 10:00").await;
    // A pass claimed abandoned-1 on Saturday at 11:00 and was killed before sending it.
    app.claim_without_sending(
        BUYER,
        "abandoned-1",
        "REF1",
        "<m1@shop.co.za>",
        sa("2026-12-12 11:00"),
    )
    .await;
    assert_eq!(pass(&app, "2026-12-12 15:00").await.counts.sent, 0);
    assert_eq!(pass(&app, "2026-12-13 11:00").await.counts.sent, 0);
    assert!(smtp.received().is_empty());
    assert_eq!(pass(&app, "2026-12-14 08:00").await.counts.sent, 1);
    assert_eq!(smtp.received().len(), 1);
}

/// Stores a `checkout_started` hook for `email` as if it arrived at `at` (local time).
async fn started_by(app: &TestApp, reference: &str, email: &str, at: &str) {
    let raw: Vec<u8> = common::hook(reference, "checkout_started")
        .email(email)
        .event_date("2027-03-06 18:30")
        .into();
    let parsed = parse_hook(&raw);
    app.store().ingest(raw, parsed, sa(at)).await.unwrap();
}

#[tokio::test]
async fn an_email_held_up_past_the_windows_end_waits_instead_of_leaving_late() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, |_| {}).await;
    // One more due buyer than emails in flight at once, and a mail server that takes 8 s per
    // message: the last email could leave only after 20:00, so it must not.
    let buyers = quicket_followup::email::POOL_SIZE as usize + 1;
    for i in 0..buyers {
        started_by(
            &app,
            &format!("REF{i}"),
            &format!("buyer{i}@mail.co.za"),
            "2026-12-14 18:00",
        )
        .await;
    }
    smtp.delay_each_message(std::time::Duration::from_secs(8));
    let evening = pass(&app, "2026-12-14 19:59:55").await;
    assert_eq!(
        evening.counts.sent as usize,
        buyers - 1,
        "{:?}",
        lines(&evening)
    );
    assert_eq!(evening.counts.deferred, 1, "{:?}", lines(&evening));
    assert!(
        lines(&evening).contains(
            &"deferred Monday 20:00: direct marketing on weekdays only 08:00-20:00; waits for the next pass".to_string()
        ),
        "{:?}",
        lines(&evening)
    );
    assert_eq!(smtp.received().len(), buyers - 1);
    smtp.delay_each_message(std::time::Duration::ZERO);
    // Nothing was claimed for it: the next pass in the window sends it.
    assert_eq!(pass(&app, "2026-12-15 08:00").await.counts.sent, 1);
    assert_eq!(smtp.received().len(), buyers);
}

#[tokio::test]
async fn run_once_says_until_when_and_why() {
    let smtp = SmtpServer::start();
    let app = app(&smtp, |_| {}).await;
    started_at(&app, "REF1", "2026-12-13 08:00").await;
    let (code, out, err) = app.cli(&["run-once", "--now", "2026-12-13T09:00:00+02:00"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!(
            "deferred   {BUYER} event 456 (REF1): Sunday: no direct marketing on Sundays; abandoned-1 waits until Monday 2026-12-14 08:00 SAST"
        )),
        "{out}"
    );
    assert!(smtp.received().is_empty());
}

#[test]
fn check_prints_each_window_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(
        dir.path(),
        "[schedule]\nsend_window = { mon-fri = \"08:00-20:00\", sat = \"09:00-13:00\", sun = \"\" }\n\
         holidays = [\"ZA\", \"2029-05-29\"]\n\n\
         [[reminders]]\nname = \"eft-1\"\nafter = \"24h\"\nwhen = [\"eft_pending\"]\ntemplate = \"eft_pending\"\n\
         send_window = \"07:00-21:00\"\n",
    );
    let (code, out, err) = common::run_cli(&["--config", config.to_str().unwrap(), "check"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(
            "emails go out Monday to Friday 08:00-20:00, Saturday 09:00-13:00, never on Sunday; \
             never on South Africa's public holidays and 2029-05-29 (Africa/Johannesburg time); passes run"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "template eft_pending; its own send window: only between 07:00 and 21:00, every day"
        ),
        "{out}"
    );
    // The step's window is wider than the Act: check says so (the schedule's is not).
    let all = format!("{out}{err}");
    assert!(
        all.contains("reminders.eft-1.send_window allows emails when South Africa's Consumer Protection Act forbids direct marketing (e.g. Monday 07:00)"),
        "{all}"
    );
    assert!(!all.contains("schedule.send_window allows"), "{all}");
}

#[test]
fn check_warns_about_windows_wider_than_the_act_in_south_africa() {
    for (extra, warned) in [
        (
            "[schedule]\nsend_window = \"\"\n",
            Some(
                "schedule.send_window allows emails when South Africa's Consumer Protection Act forbids direct marketing (e.g. Sunday 10:00)",
            ),
        ),
        (
            "[schedule]\nsend_window = \"08:00-20:00\"\n",
            Some("(e.g. Day of Reconciliation, 2026-12-16 08:00)"),
        ),
        ("[schedule]\nsend_window = \"za-cpa\"\n", None),
        ("", None),
        // Elsewhere the Act does not apply.
        (
            "[schedule]\ntimezone = \"Europe/London\"\nsend_window = \"\"\n",
            None,
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = common::write_config(dir.path(), extra);
        let (code, out, err) =
            common::run_cli(&["--config", config.to_str().unwrap(), "check"], &[]);
        assert_eq!(code, 0, "{extra}: {out}{err}");
        let all = format!("{out}{err}");
        match warned {
            Some(text) => assert!(all.contains(text), "{extra}: {all}"),
            None => assert!(
                !all.contains("Consumer Protection Act forbids"),
                "{extra}: {all}"
            ),
        }
    }
}

#[test]
fn a_bad_window_or_holiday_is_an_error_naming_the_key() {
    for (extra, key) in [
        (
            "[schedule]\nsend_window = { mon-fri = \"8-20\" }\n",
            "schedule.send_window",
        ),
        (
            "[schedule]\nsend_window = { weekdays = \"08:00-20:00\" }\n",
            "schedule.send_window",
        ),
        (
            "[schedule]\nsend_window = { sun = \"\" }\n",
            "schedule.send_window",
        ),
        ("[schedule]\nholidays = \"XX\"\n", "schedule.holidays"),
        (
            "[schedule]\nholidays = [\"ZA\", \"2029-02-30\"]\n",
            "schedule.holidays",
        ),
        (
            "[[reminders]]\nname = \"a\"\nafter = \"1h\"\nwhen = [\"eft_pending\"]\ntemplate = \"eft_pending\"\nsend_window = \"7-21\"\n",
            "reminders",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = common::write_config(dir.path(), extra);
        let (code, _, err) = common::run_cli(&["--config", config.to_str().unwrap(), "check"], &[]);
        assert_eq!(code, 1, "{extra}");
        assert!(err.contains(key), "{extra}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
}
