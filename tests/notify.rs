//! Telling the organiser, through real SMTP, SQLite, the real binary and a webhook stand-in that
//! verifies the signature: one alert per condition until it ends (not twice from two processes nor
//! after a restart), a "resolved" when it ends, the weekly report once, and the report's figures
//! against a database with known numbers, naming no buyer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::smtp;

use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};
use common::{TestApp, hook, week};
use hmac::{Hmac, Mac};
use quicket_followup::config::{Config, Weekly};
use quicket_followup::notify::alerts::Watcher;
use quicket_followup::notify::report::Report;
use quicket_followup::server::Service;
use serde_json::Value;
use sha2::Sha256;
use smtp::{Received, SmtpServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const OPS: &str = "ops@festival.co.za";
const PAUSE: &str =
    "complaint rate 0.50% (1 complaints for 200 emails in 7 days) is at or above 0.30%";

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn organiser(c: &mut Config, smtp: &SmtpServer) {
    common::via_smtp(c, smtp);
    c.notify.to = vec![OPS.into()];
    c.notify.weekly = Weekly(None);
    // Whatever the disk of the machine running the tests holds.
    c.notify.disk_full_at = 100;
}

/// The messages the organiser received, as (subject, raw).
fn to_ops(smtp: &SmtpServer) -> Vec<(String, Received)> {
    smtp.received()
        .into_iter()
        .filter(|m| m.to.iter().any(|t| t == OPS))
        .map(|m| (m.header("Subject").unwrap_or_default(), m))
        .collect()
}

fn subjects(smtp: &SmtpServer) -> Vec<String> {
    to_ops(smtp).into_iter().map(|(s, _)| s).collect()
}

/// A config file for the binary on `app`'s database, through `smtp`, telling `OPS`.
fn cli_config(dir: &Path, db: &Path, smtp: &SmtpServer, extra: &str) -> std::path::PathBuf {
    let path = dir.join("organiser.toml");
    std::fs::write(
        &path,
        format!(
            "[database]\npath = {db:?}\n[templates]\ndir = {:?}\n[email]\ntransport = \"smtp\"\nsmtp_url = {:?}\n\
             from = \"Jazz on the Lawn <tickets@shop.co.za>\"\n[notify]\nto = [{OPS:?}]\nweekly = \"\"\ndisk_full_at = 100\n{extra}",
            common::templates_dir(),
            smtp.url()
        ),
    )
    .unwrap();
    path
}

#[tokio::test]
async fn a_pause_is_told_once_by_serve_and_run_once_and_after_a_restart_then_resolved() {
    let smtp = SmtpServer::start();
    let app = TestApp::spawn_with(|c| organiser(c, &smtp)).await;
    let t = at("2026-12-07T19:00:00Z");
    app.store().pause_sending(t, PAUSE).await.unwrap();

    let changes = app.service.watcher.check(t).await.unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    let told = to_ops(&smtp);
    assert_eq!(told.len(), 1);
    let (subject, message) = &told[0];
    assert!(subject.contains("Alert: reminders are paused"), "{subject}");
    let body = smtp::qp_decode(&message.data);
    assert!(body.contains("complaint rate 0.50%"), "{body}");
    assert!(body.contains("resume-sending"), "{body}");
    // Not direct marketing: no unsubscribe header.
    assert!(message.header("List-Unsubscribe").is_none());

    // Checked again a few minutes later: nothing new.
    app.service
        .watcher
        .check(t + TimeDelta::minutes(5))
        .await
        .unwrap();
    // A run-once beside serve checks too, and finds it told.
    let config = cli_config(app.dir.path(), app.store().path(), &smtp, "");
    let (code, out, err) = common::run_cli(
        &[
            "--config",
            config.to_str().unwrap(),
            "run-once",
            "--now",
            "2026-12-07T19:06:00Z",
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("sending is paused"), "{out}");
    assert_eq!(subjects(&smtp).len(), 1, "{:?}", subjects(&smtp));

    // A restart: the database remembers what was told.
    let TestApp { dir, service, .. } = app;
    service.stop().await;
    let mut again = common::test_config(dir.path());
    organiser(&mut again, &smtp);
    let service = Service::start_with(again, false).await.unwrap();
    service
        .watcher
        .check(t + TimeDelta::minutes(10))
        .await
        .unwrap();
    assert_eq!(subjects(&smtp).len(), 1, "{:?}", subjects(&smtp));

    // Resumed: one "resolved".
    service
        .store
        .resume_sending(t + TimeDelta::minutes(12))
        .await
        .unwrap();
    service
        .watcher
        .check(t + TimeDelta::minutes(15))
        .await
        .unwrap();
    service
        .watcher
        .check(t + TimeDelta::minutes(20))
        .await
        .unwrap();
    let all = subjects(&smtp);
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(
        all[1].contains("Resolved: reminders are being sent again"),
        "{all:?}"
    );
    service.stop().await;
}

#[tokio::test]
async fn a_pause_that_lasts_is_told_again_after_a_day() {
    let smtp = SmtpServer::start();
    let app = TestApp::spawn_with(|c| organiser(c, &smtp)).await;
    let t = at("2026-12-07T19:00:00Z");
    app.store().pause_sending(t, PAUSE).await.unwrap();
    let watcher = &app.service.watcher;
    watcher.check(t).await.unwrap();
    watcher.check(t + TimeDelta::hours(23)).await.unwrap();
    assert_eq!(subjects(&smtp).len(), 1);
    watcher.check(t + TimeDelta::hours(24)).await.unwrap();
    watcher.check(t + TimeDelta::hours(25)).await.unwrap();
    let all = subjects(&smtp);
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all[1].contains("Still: reminders are paused"), "{all:?}");
    app.service.stop().await;
}

#[tokio::test]
async fn passes_that_fail_on_a_broken_database_give_one_alert() {
    let smtp = SmtpServer::start();
    let app = TestApp::spawn_with(|c| organiser(c, &smtp)).await;
    app.store()
        .write(|c| Ok(c.execute_batch("ALTER TABLE buyer_events RENAME TO broken")?))
        .await
        .unwrap();
    let t = at("2026-12-07T19:00:00Z");
    for minutes in [0, 1, 2] {
        let pass = app
            .service
            .engine
            .run_pass(t + TimeDelta::minutes(minutes), false)
            .await;
        assert!(pass.is_err());
        app.service
            .watcher
            .check(t + TimeDelta::minutes(minutes))
            .await
            .unwrap();
    }
    let all = subjects(&smtp);
    assert_eq!(all.len(), 1, "{all:?}");
    assert!(
        all[0].contains("Alert: reminder passes are not running"),
        "{all:?}"
    );
    let open = app.store().open_alerts().await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].condition, "passes");
    app.service.stop().await;
}

/// One request as the webhook stand-in received it.
#[derive(Debug, Clone)]
struct Posted {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Posted {
    fn header(&self, name: &str) -> String {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
}

/// A receiver like Slack's or n8n's: answers 200 to each POST and keeps it.
async fn webhook_stand_in() -> (String, Arc<Mutex<Vec<Posted>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/organiser", listener.local_addr().unwrap());
    let posted = Arc::new(Mutex::new(Vec::new()));
    let keep = posted.clone();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut data = Vec::new();
            let mut buf = [0u8; 4096];
            let (head, body_start) = loop {
                let n = socket.read(&mut buf).await.unwrap();
                assert!(n > 0, "the request ended early");
                data.extend_from_slice(&buf[..n]);
                if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                    break (String::from_utf8_lossy(&data[..i]).to_string(), i + 4);
                }
            };
            let headers: Vec<(String, String)> = head
                .lines()
                .skip(1)
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect();
            let length: usize = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .map(|(_, v)| v.parse().unwrap())
                .unwrap_or(0);
            while data.len() < body_start + length {
                let n = socket.read(&mut buf).await.unwrap();
                data.extend_from_slice(&buf[..n]);
            }
            keep.lock().unwrap().push(Posted {
                headers,
                body: data[body_start..body_start + length].to_vec(),
            });
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                .await
                .unwrap();
        }
    });
    (url, posted)
}

/// Verifies a Standard Webhooks signature as a receiver's library does.
fn verify(secret: &str, posted: &Posted) -> bool {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let signed = format!(
        "{}.{}.{}",
        posted.header("webhook-id"),
        posted.header("webhook-timestamp"),
        String::from_utf8(posted.body.clone()).unwrap()
    );
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
    mac.update(signed.as_bytes());
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    posted
        .header("webhook-signature")
        .split(' ')
        .any(|s| s == expected)
}

#[tokio::test]
async fn the_webhook_receives_signed_json_even_when_email_is_what_is_broken() {
    let (url, posted) = webhook_stand_in().await;
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(b"a secret of the organiser's own!")
    );
    // A mail server that refuses every connection: reminders and the organiser's email fail.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("smtp://{}", closed.local_addr().unwrap());
    drop(closed);
    let (hook_url, hook_secret) = (url.clone(), secret.clone());
    let app = TestApp::spawn_with(move |c| {
        c.email.transport = quicket_followup::config::Transport::Smtp;
        c.email.smtp_url = dead;
        c.email.smtp_timeout = std::time::Duration::from_secs(2);
        c.email.from = "Jazz on the Lawn <tickets@shop.co.za>".into();
        c.notify.to = vec![OPS.into()];
        c.notify.webhook_url = hook_url;
        c.notify.webhook_secret = hook_secret;
        c.notify.weekly = Weekly(None);
        c.notify.disk_full_at = 100;
        common::send_at_once(c);
    })
    .await;
    app.post_ok(hook("R-1", "checkout_started").email("buyer@mail.co.za"))
        .await;
    let t = Utc::now();
    let report = app.pass_at(t).await;
    assert_eq!(report.counts.failed, 1, "{report:?}");

    // Not yet 30 minutes: nothing.
    app.service
        .watcher
        .check(t + TimeDelta::minutes(29))
        .await
        .unwrap();
    assert!(posted.lock().unwrap().is_empty());
    let changes = app
        .service
        .watcher
        .check(t + TimeDelta::minutes(31))
        .await
        .unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    let all = posted.lock().unwrap().clone();
    assert_eq!(all.len(), 1, "{all:?}");
    let p = &all[0];
    assert!(verify(&secret, p), "the signature does not verify: {p:?}");
    assert!(!p.header("webhook-id").is_empty());
    assert!(p.header("content-type").starts_with("application/json"));
    let body: Value = serde_json::from_slice(&p.body).unwrap();
    assert_eq!(body["type"], "alert.raised", "{body}");
    assert_eq!(body["data"]["condition"], "transport", "{body}");
    assert_eq!(body["text"], body["content"]);
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .contains("No email could be sent"),
        "{body}"
    );
    // Personal data never travels to a chat tool.
    assert!(!String::from_utf8_lossy(&p.body).contains("buyer@mail.co.za"));
    // A tampered body does not verify.
    let mut forged = p.clone();
    forged.body = forged.body.replace_first();
    assert!(!verify(&secret, &forged));
    app.service.stop().await;
}

trait ReplaceFirst {
    fn replace_first(&self) -> Vec<u8>;
}
impl ReplaceFirst for Vec<u8> {
    fn replace_first(&self) -> Vec<u8> {
        let mut v = self.clone();
        v[1] ^= 1;
        v
    }
}

#[tokio::test]
async fn the_reports_figures_are_the_weeks_known_numbers_and_name_no_buyer() {
    let smtp = SmtpServer::start();
    let app = TestApp::spawn_with(|c| organiser(c, &smtp)).await;
    week::seed(app.store()).await;
    let config = app.service.engine.settings().config.clone();
    let report = Report::gather(app.store(), &config, at(week::WEEK_END))
        .await
        .unwrap();
    let f = &report.figures;
    assert_eq!(f.sent, week::SENT);
    assert_eq!(f.recovered.purchases, week::RECOVERED);
    assert_eq!(f.recovered.revenue_cents, week::RECOVERED_CENTS);
    assert_eq!(f.unsubscribes, week::UNSUBSCRIBES);
    assert_eq!(f.complaints, week::COMPLAINTS);
    assert_eq!(f.hard_bounces, week::HARD_BOUNCES);
    assert_eq!(f.soft_bounces, week::SOFT_BOUNCES);
    assert_eq!(f.hooks, week::HOOKS);
    assert_eq!(f.problem_hooks, week::PROBLEM_HOOKS);
    let x = f.experiment.as_ref().unwrap();
    assert_eq!(x.emailed.buyer_events, week::EMAILED);
    assert_eq!(x.held_out.buyer_events, week::HELD_OUT);
    assert_eq!(f.daily.len(), 8, "{:?}", f.daily);
    let tuesday = f
        .daily
        .iter()
        .find(|d| d.date.to_string() == "2026-12-01")
        .unwrap();
    assert_eq!(tuesday.sent, week::SENT);
    assert_eq!(report.alerts.len(), 1);

    let text = report.text();
    assert!(text.contains("Reminders sent: 6"), "{text}");
    assert!(text.contains("Purchases after a reminder: 2"), "{text}");
    assert!(text.contains(&quicket_followup::present::rands(week::RECOVERED_CENTS)));
    assert!(text.contains("too early to tell"), "{text}");
    assert!(text.contains("Emails cannot be sent: from"), "{text}");

    // Emailed by the command, through the real SMTP server.
    let file = cli_config(app.dir.path(), app.store().path(), &smtp, "");
    let (code, out, err) = common::run_cli(
        &[
            "--config",
            file.to_str().unwrap(),
            "report",
            "--send",
            "--now",
            week::WEEK_END,
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Reminders sent: 6"), "{out}");
    let told = to_ops(&smtp);
    assert_eq!(told.len(), 1);
    let (subject, message) = &told[0];
    assert!(subject.contains("6 reminders sent"), "{subject}");
    let raw = &message.data;
    assert!(raw.contains("multipart/alternative"), "{raw}");
    assert!(raw.contains("image/png"), "{raw}");
    assert!(raw.contains("Content-ID: <chart>"), "{raw}");
    // No buyer's address or name anywhere in it, encoded or not.
    let decoded = smtp::qp_decode(raw);
    for n in [0, 1, 2, 3, 4, 5, 7, 9, 20] {
        let address = week::buyer(n);
        assert!(!decoded.contains(&address), "{address} in the report");
        let b64 = base64::engine::general_purpose::STANDARD.encode(&address);
        assert!(!raw.contains(&b64[..12]));
    }
    assert!(!decoded.contains(week::NAME));
    assert!(!decoded.contains("mail.co.za"), "{decoded}");
    app.service.stop().await;
}

#[tokio::test]
async fn the_weekly_report_is_sent_once_at_its_time_by_whichever_process_comes_first() {
    let smtp = SmtpServer::start();
    let app = TestApp::spawn_with(|c| {
        organiser(c, &smtp);
        c.notify.weekly = Weekly::parse("mon 08:00").unwrap();
    })
    .await;
    week::seed(app.store()).await;
    let monday = at(week::WEEK_END);
    app.service
        .watcher
        .tick(monday - TimeDelta::minutes(1))
        .await;
    assert!(
        subjects(&smtp).iter().all(|s| !s.contains("Your week")),
        "{:?}",
        subjects(&smtp)
    );
    app.service.watcher.tick(monday).await;
    // Another process on the same database, a few minutes later.
    let other = Watcher::new(app.service.engine.clone(), app.store().clone(), None);
    other.tick(monday + TimeDelta::minutes(5)).await;
    app.service.watcher.tick(monday + TimeDelta::hours(2)).await;
    let reports: Vec<String> = subjects(&smtp)
        .into_iter()
        .filter(|s| s.contains("Your week"))
        .collect();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].contains("6 reminders sent"), "{reports:?}");
    app.service.stop().await;
}

#[test]
fn report_send_without_an_address_says_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), "");
    let (code, _, err) = common::run_cli(
        &["--config", config.to_str().unwrap(), "report", "--send"],
        &[],
    );
    assert_eq!(code, 1);
    assert!(err.contains("[notify] to"), "{err}");
}

#[tokio::test]
async fn the_overview_lists_the_alerts_that_last_and_drops_them_once_resolved() {
    let smtp = SmtpServer::start();
    let app = TestApp::spawn_with(|c| {
        organiser(c, &smtp);
        c.server.admin_password = "overview-alerts-password".into();
    })
    .await;
    // The verdict is from now: an older one (a day) makes the overview look the domain up again in
    // the background, which raced this test's own verdicts once the fixed date was a day old.
    let t = Utc::now();
    let dmarc = "DMARC: publish a TXT record at _dmarc.shop.co.za";
    app.store()
        .set_dns_readiness(
            t,
            vec![quicket_followup::domain::Finding {
                warning: true,
                text: dmarc.into(),
            }],
        )
        .await
        .unwrap();
    app.service.watcher.check(t).await.unwrap();
    let page = app
        .admin_get("/admin", "overview-alerts-password")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("DNS records need attention</strong>"),
        "{page}"
    );
    assert!(page.contains(dmarc), "{page}");
    assert_eq!(subjects(&smtp).len(), 1);

    app.store().set_dns_readiness(t, vec![]).await.unwrap();
    app.service
        .watcher
        .check(t + TimeDelta::minutes(5))
        .await
        .unwrap();
    let page = app
        .admin_get("/admin", "overview-alerts-password")
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains(dmarc), "{page}");
    let all = subjects(&smtp);
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all[1].contains("Resolved: the From domain"), "{all:?}");
    app.service.stop().await;
}
