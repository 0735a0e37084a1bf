//! `forget`, retention and `backup` leave nothing behind: after them, not one file in the data
//! directory (the database, its `-wal` and `-shm`, the backup) holds the address in any case or
//! JSON-escaped, or the name; another buyer's data is intact.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap, helpers included

mod common;
use common::smtp;

use std::path::Path;

use chrono::{Duration, Utc};
use common::TestApp;
use quicket_followup::config::{SendWindow, Transport};
use serde_json::json;
use smtp::SmtpServer;

const LERATO: &str = "lerato@mail.co.za";
const THANDI: &str = "thandi@mail.co.za";

/// Lerato's checkout for event 456 on `date`; her name is on her own ticket.
fn lerato(reference: &str, date: &str) -> String {
    common::hook(reference, "checkout_started")
        .email("Lerato@Mail.co.za")
        .event_date(date)
        .to_string()
}

/// Thandi's order for the same event, with a ticket for Lerato on it (her name copied there).
fn thandi(reference: &str, date: &str) -> String {
    json!({
        "reference": reference, "event_id": 456, "event_name": "Jazz on the Lawn", "amount": "900.00",
        "email": THANDI, "event_date": date, "action": "checkout_started",
        "tickets": [{"attendee_name": "Lerato Dlamini", "attendee_email": "LERATO@mail.co.za",
                     "ticket_type": "VIP", "price": "450.00"},
                    {"attendee_name": "Thandi Nkosi", "attendee_email": THANDI,
                     "ticket_type": "VIP", "price": "450.00"}]
    })
    .to_string()
}

/// Hooks about Lerato that no order holds: one refused (no reference; the address JSON-escaped,
/// the name in capitals) and one ignored (an unknown action).
const REFUSED: &str =
    r#"{"email":"lerato\u0040mail.co.za","name":"LERATO DLAMINI","event_id":456}"#;
const IGNORED: &str = r#"{"reference":"REF-X","action":"ticket_scanned","email":"Lerato\/x@MAIL.co.za","attendee":"lerato@mail.co.za"}"#;

/// Every form of Lerato that must be gone, lower-cased (the files are searched case-folded).
const GONE: &[&str] = &[
    "lerato@mail.co.za",
    "lerato\\u0040mail.co.za",
    "lerato dlamini",
    "lerato\\/x@mail",
];

/// Every file under `dir` (recursively), as lower-cased bytes.
fn files_folded(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_folded(&path));
        } else {
            let bytes = std::fs::read(&path).unwrap().to_ascii_lowercase();
            out.push((path.display().to_string(), bytes));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Asserts that no file under `dir` holds Lerato and that some file holds Thandi.
fn assert_only_thandi_left(dir: &Path, when: &str) {
    let files = files_folded(dir);
    assert!(!files.is_empty());
    for (path, bytes) in &files {
        for needle in GONE {
            assert!(
                !contains(bytes, needle),
                "{when}: {path} still holds {needle:?}"
            );
        }
    }
    for needle in ["thandi@mail.co.za", "thandi nkosi"] {
        assert!(
            files.iter().any(|(_, bytes)| contains(bytes, needle)),
            "{when}: the other buyer's {needle:?} is gone too"
        );
    }
}

#[test]
fn forget_while_serve_runs_leaves_the_address_and_name_in_no_file_nor_in_a_later_backup() {
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("quicket-followup.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n\n[database]\npath = {:?}\n\n\
             [email]\ntransport = \"smtp\"\nsmtp_url = {:?}\nfrom = \"Jazz <tickets@shop.co.za>\"\n\n\
             [templates]\ndir = {:?}\n\n\
             [schedule]\nscan = \"0 0 0 1 1 *\"\nsend_window = \"\"\n",
            data.join("followup.sqlite"),
            smtp.url(),
            common::templates_dir()
        ),
    )
    .unwrap();
    let mut served = common::serve(&config, &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = common::no_redirects();
    runtime.block_on(async {
        for body in [
            lerato("REF1", "2030-12-12 18:30"),
            thandi("REF2", "2030-12-12 18:30"),
        ] {
            let (status, _) = common::post(&client, &served.webhook_url, body).await;
            assert_eq!(status, 200);
        }
        assert_eq!(
            common::post(&client, &served.webhook_url, REFUSED).await.0,
            400
        );
        assert_eq!(
            common::post(&client, &served.webhook_url, IGNORED).await.0,
            200
        );
    });
    // Both are emailed (a pass beside serve), and Lerato follows the link in hers.
    let cfg = config.to_str().unwrap();
    let now = (Utc::now() + Duration::minutes(61)).to_rfc3339();
    let (code, out, err) = common::run_cli(&["--config", cfg, "run-once", "--now", &now], &[]);
    assert_eq!(code, 0, "{out}{err}");
    let mails = smtp.received();
    assert_eq!(mails.len(), 2, "{out}");
    let hers = mails
        .iter()
        .find(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(LERATO)))
        .unwrap();
    let text = smtp::qp_decode(&hers.data);
    let link = text
        .split_whitespace()
        .find(|w| w.contains("/r/"))
        .unwrap()
        .trim_matches(|c: char| c == '"' || c == '<' || c == '>');
    let path = &link[link.find("/r/").unwrap()..];
    runtime.block_on(async {
        let response = client
            .get(format!("{}{path}", served.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 302);
    });

    let (code, out, err) = common::run_cli(&["--config", cfg, "forget", "LERATO@mail.co.za"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("forgotten: 1 orders"), "{out}");
    assert_only_thandi_left(&data, "after forget, serve running");

    // A backup taken now holds nothing of her either (no free pages, no old versions).
    let backup = dir.path().join("backups/after.sqlite");
    let (code, _, err) =
        common::run_cli(&["--config", cfg, "backup", backup.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{err}");
    assert_only_thandi_left(backup.parent().unwrap(), "the backup");

    // serve is still up and the other buyer's order is whole.
    let (code, out, _) = common::run_cli(&["--config", cfg, "export", "orders"], &[]);
    assert_eq!(code, 0);
    assert!(
        out.contains("REF2") && out.contains(THANDI) && !out.contains("REF1"),
        "{out}"
    );
    let health = runtime.block_on(async {
        client
            .get(format!("{}/healthz", served.base))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(health, 200);
    common::signal(&served.child, "TERM");
    served.child.wait().unwrap();
}

#[tokio::test]
async fn retention_after_the_event_leaves_the_address_and_name_in_no_file() {
    let smtp = SmtpServer::start();
    let url = smtp.url();
    let app = TestApp::spawn_with(move |c| {
        c.email.from = "Jazz <tickets@shop.co.za>".into();
        c.schedule.send_window = SendWindow::parse("").unwrap();
        c.email.transport = Transport::Smtp;
        c.email.smtp_url = url;
    })
    .await;
    let soon = (Utc::now() + Duration::days(2))
        .with_timezone(&chrono_tz::Africa::Johannesburg)
        .format("%Y-%m-%d %H:%M")
        .to_string();
    assert_eq!(app.post_hook(lerato("REF1", &soon)).await.0, 200);
    assert_eq!(app.post_hook(REFUSED).await.0, 400);
    assert_eq!(app.post_hook(IGNORED).await.0, 200);
    // Thandi's order is for a later event: retention leaves it alone.
    let mut later: serde_json::Value =
        serde_json::from_str(&thandi("REF2", "2030-12-12 18:30")).unwrap();
    later["event_id"] = json!(789);
    later["tickets"][0]["attendee_name"] = json!("Someone Else");
    later["tickets"][0]["attendee_email"] = json!("someone@else.co.za");
    assert_eq!(app.post_hook(later.to_string()).await.0, 200);
    let report = app.pass_at(Utc::now() + Duration::minutes(61)).await;
    assert_eq!(report.counts.sent, 2);
    let target = quicket_followup::links::LinkTarget {
        email_key: LERATO.into(),
        event_id: "456".into(),
        step: "abandoned-1".into(),
    };
    let links = app
        .service
        .engine
        .issue_links(&target, None, Utc::now())
        .await
        .unwrap();
    let client = common::no_redirects();
    assert_eq!(
        client
            .get(&links.event)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        302
    );
    assert_eq!(app.store().clicks(LERATO, "456").await.unwrap().len(), 1);

    let removed = app
        .store()
        .apply_retention(
            Utc::now() + Duration::days(2 + 91),
            std::time::Duration::from_secs(90 * 86400),
            chrono_tz::Africa::Johannesburg,
        )
        .await
        .unwrap();
    assert_eq!(removed.buyer_events, 1);
    assert_only_thandi_left(&app.dir.path().join("data"), "after retention");
    // Her links do nothing now; the click is still counted (under a pseudonym).
    assert_eq!(
        client
            .get(&links.event)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    let clicks: i64 = app
        .store()
        .read(|c| Ok(c.query_row("SELECT count(*) FROM clicks", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(clicks, 1);
}

#[tokio::test]
async fn healthz_shows_no_file_path_and_no_setting() {
    let app = TestApp::spawn().await;
    let dir = app.dir.path().display().to_string();
    app.service.engine.record_reload(Some(format!(
        "cannot read config file {dir}/etc/quicket-followup.toml: No such file or directory"
    )));
    let body = app.get_text("/healthz").await;
    for secret in [
        dir.as_str(),
        common::TOKEN,
        "0 * * * * *",
        "outbox",
        "followup.sqlite",
    ] {
        assert!(!body.contains(secret), "/healthz shows {secret:?}: {body}");
    }
    // States and times only: the refusal shows, its reason is on /admin and in the log.
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["settings"]["state"], "refused", "{body}");
    assert!(!body.contains("quicket-followup.toml"), "{body}");
}
