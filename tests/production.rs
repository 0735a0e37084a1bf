//! Running in production: backup while hooks arrive (and restoring it), SIGTERM during a pass,
//! /metrics and the overdue check of /healthz.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap, helpers included

mod common;
use common::smtp;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use common::{hook, run_cli, serve, signal, write_config};

fn count_rows(db: &std::path::Path, sql: &str) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_hooks_arrive_is_whole_and_holds_every_acknowledged_hook() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let mut served = serve(&config, &[]);
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(Mutex::new(false));
    let mut workers = Vec::new();
    for w in 0..8 {
        let (url, acknowledged, stop) = (
            served.webhook_url.clone(),
            acknowledged.clone(),
            stop.clone(),
        );
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for i in 0.. {
                if *stop.lock().unwrap() {
                    break;
                }
                let reference = format!("B{w}-{i:05}");
                let response = client
                    .post(&url)
                    .body(hook(&reference, "checkout_started"))
                    .send()
                    .await
                    .unwrap();
                if response.status().as_u16() == 200 {
                    acknowledged.lock().unwrap().insert(reference);
                }
            }
        }));
    }
    let db = dir.path().join("data/followup.sqlite");
    while count_rows(&db, "SELECT count(*) FROM orders") < 200 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before: BTreeSet<String> = acknowledged.lock().unwrap().clone();
    let copy = dir.path().join("backups/copy.sqlite");
    let (code, out, err) = run_cli(
        &[
            "--config",
            config.to_str().unwrap(),
            "backup",
            copy.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("integrity ok"), "{out}");
    *stop.lock().unwrap() = true;
    for w in workers {
        w.await.unwrap();
    }
    assert!(!std::fs::exists(dir.path().join("backups/copy.sqlite.partial")).unwrap());
    let conn = rusqlite::Connection::open(&copy).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let mut stmt = conn.prepare("SELECT reference FROM orders").unwrap();
    let in_copy: BTreeSet<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let missing: Vec<&String> = before.difference(&in_copy).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged hooks missing from the backup",
        missing.len()
    );
    drop(stmt);
    drop(conn);

    // Restore: stop the service, put the copy in place of the database, start again.
    signal(&served.child, "TERM");
    assert!(served.child.wait().unwrap().success());
    std::fs::copy(&copy, &db).unwrap();
    for suffix in ["-wal", "-shm"] {
        let mut side = db.as_os_str().to_owned();
        side.push(suffix);
        let _ = std::fs::remove_file(side);
    }
    let mut restored = serve(&config, &[]);
    let client = reqwest::Client::new();
    let health = client
        .get(format!("{}/healthz", restored.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    signal(&restored.child, "TERM");
    restored.child.wait().unwrap();
    assert_eq!(
        count_rows(&db, "SELECT count(*) FROM orders"),
        in_copy.len() as i64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_pass_stops_cleanly_without_a_lost_or_doubled_email() {
    let server = smtp::SmtpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let extra = "[schedule]\nscan = \"* * * * * *\"\nsend_window = \"\"\ndormant_after = \"1s\"\n\n\
         [[reminders]]\nname = \"quick\"\nafter = \"1s\"\nwhen = [\"checkout_started\"]\ntemplate = \"abandoned\"\n";
    let config = write_config(dir.path(), extra);
    // Send through the test's SMTP server, slowly: 5 at once, then one every 2 seconds.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[email]\n",
        &format!(
            "[email]\ntransport = \"smtp\"\nsmtp_url = {:?}\nmax_per_minute = 30\n",
            server.url()
        ),
    );
    std::fs::write(&config, text).unwrap();
    let buyers: Vec<String> = (0..8).map(|i| format!("buyer{i}@mail.co.za")).collect();

    let mut served = serve(&config, &[]);
    let client = reqwest::Client::new();
    for (i, email) in buyers.iter().enumerate() {
        let mut body: serde_json::Value = hook(&format!("T{i}"), "checkout_started").json();
        body["email"] = email.clone().into();
        assert_eq!(
            common::post(&client, &served.webhook_url, body.to_string())
                .await
                .0,
            200
        );
    }
    // Stop while the pass is still working through them.
    for _ in 0..200 {
        if !server.received().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let first = server.received().len();
    assert!(
        first > 0 && first < buyers.len(),
        "the pass is mid-way ({first} sent)"
    );
    let stopping = std::time::Instant::now();
    signal(&served.child, "TERM");
    assert!(served.child.wait().unwrap().success(), "exit 0 on SIGTERM");
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "a stop does not wait for the rate limit"
    );

    // Started again, the remaining reminders go; nobody gets two.
    let mut again = serve(&config, &[]);
    for _ in 0..400 {
        if server.received().len() >= buyers.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    signal(&again.child, "TERM");
    again.child.wait().unwrap();
    let mut per_buyer: BTreeMap<String, usize> = BTreeMap::new();
    for message in server.received() {
        *per_buyer.entry(message.to[0].clone()).or_default() += 1;
    }
    assert_eq!(
        per_buyer.len(),
        buyers.len(),
        "every reminder went out: {per_buyer:?}"
    );
    assert!(
        per_buyer.values().all(|n| *n == 1),
        "nobody got two: {per_buyer:?}"
    );
}

fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.starts_with(name)
                && labels
                    .iter()
                    .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

#[tokio::test]
async fn metrics_is_prometheus_text_and_moves_when_hooks_arrive() {
    let app = common::TestApp::spawn().await;
    let url = format!("{}/metrics", app.base);
    let scrape = || async {
        let response = app.client.get(&url).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        response.text().await.unwrap()
    };
    let before = scrape().await;
    for i in 0..3 {
        app.post_hook(hook(&format!("M{i}"), "eft_pending")).await;
    }
    app.post_hook("not json").await;
    let after = scrape().await;
    // Every sample line is `name{labels} value` with a number; comments are HELP/TYPE.
    for line in after.lines().filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix("# ") {
            assert!(
                comment.starts_with("HELP ") || comment.starts_with("TYPE "),
                "{line}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
    }
    let labels = [("action", "eft_pending"), ("outcome", "recorded")];
    let moved = metric(&after, "quicket_followup_hooks_total", &labels)
        - metric(&before, "quicket_followup_hooks_total", &labels);
    assert_eq!(moved, 3.0, "{after}");
    let rejected = [("action", "none"), ("outcome", "rejected")];
    assert!(metric(&after, "quicket_followup_hooks_total", &rejected) >= 1.0);
    assert!(after.contains("quicket_followup_reminders_due"));
}

#[test]
fn healthz_calls_a_pass_overdue_after_two_missed_intervals() {
    use quicket_followup::web::pass_overdue;
    let tz = chrono_tz::Africa::Johannesburg;
    let last = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
    let every_minute = "0 * * * * *";
    assert!(!pass_overdue(
        every_minute,
        tz,
        last,
        last + chrono::Duration::seconds(150)
    ));
    assert!(!pass_overdue(
        every_minute,
        tz,
        last,
        last + chrono::Duration::seconds(180)
    ));
    assert!(pass_overdue(
        every_minute,
        tz,
        last,
        last + chrono::Duration::seconds(181)
    ));
    let hourly = "0 0 * * * *";
    assert!(!pass_overdue(
        hourly,
        tz,
        last,
        last + chrono::Duration::minutes(150)
    ));
    assert!(pass_overdue(
        hourly,
        tz,
        last,
        last + chrono::Duration::minutes(181)
    ));
}

#[tokio::test]
async fn healthz_reports_a_scheduled_pass_and_is_not_overdue_while_passes_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::test_config(dir.path());
    config.schedule.scan = "* * * * * *".into();
    let service = quicket_followup::server::Service::start_with(config, true)
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://{}/healthz", service.addr);
    let mut body = serde_json::Value::Null;
    // Until a pass has finished (on a loaded machine one may have started and not finished yet).
    for _ in 0..200 {
        body = serde_json::from_str(&client.get(&url).send().await.unwrap().text().await.unwrap())
            .unwrap();
        if !body["last_pass"]["finished_at"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!body["last_pass"]["finished_at"].is_null(), "{body}");
    assert_eq!(body["passes"]["scheduled"], true);
    assert_eq!(body["passes"]["overdue"], false);
    assert_eq!(body["status"], "ok");
    service.stop().await;
}

/// A pass that fails is recorded as failed: `/healthz` says `failing` with 503 (its state, not
/// the error's text), `/metrics` counts it, and the next pass that finishes clears it.
#[tokio::test]
async fn a_failed_pass_makes_healthz_failing_and_is_counted_until_a_pass_finishes() {
    let app = common::TestApp::spawn().await;
    // A buyer-event the pass cannot read (a change time that is not a time).
    app.store()
        .write(|c| {
            c.execute(
                "INSERT INTO buyer_events (email_key, event_id, state, changed_at, reference, next_check_at)
                 VALUES ('x@mail.co.za', '456', 'checkout_started', 'not a time', 'REF-X', '2000-01-01T00:00:00.000Z')",
                [],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let failed = app.service.engine.run_pass(Utc::now(), false).await;
    assert!(failed.is_err(), "{failed:?}");
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(body["status"], "failing", "{body}");
    assert_eq!(body["passes"]["last_failed"], true, "{body}");
    assert_eq!(body["last_pass"]["state"], "failed", "{body}");
    assert!(
        body["last_pass"].get("error").is_none(),
        "no error text on the public page: {body}"
    );
    let metrics = app.get_text("/metrics").await;
    assert!(
        metric(&metrics, "quicket_followup_failed_passes_total", &[]) >= 1.0,
        "{metrics}"
    );
    app.store()
        .write(|c| {
            c.execute("DELETE FROM buyer_events WHERE reference = 'REF-X'", [])?;
            Ok(())
        })
        .await
        .unwrap();
    app.pass_at(Utc::now()).await;
    // /healthz reads the database at most once a second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let response = app.get("/healthz").await;
    let status = response.status();
    let body: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(
        (status.as_u16(), &body["status"]),
        (200, &"ok".into()),
        "{body}"
    );
    assert_eq!(body["last_pass"]["state"], "finished", "{body}");
}

/// Passes that start and never finish (stuck, or ended by a bug each time) leave `/healthz`
/// `failing` once none has finished within two scan intervals, however recently one started.
#[tokio::test]
async fn healthz_is_failing_when_passes_start_but_none_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::test_config(dir.path());
    config.schedule.scan = "* * * * * *".into();
    let db = config.database.path.clone();
    let service = quicket_followup::server::Service::start_with(config, true)
        .await
        .unwrap();
    // Every scheduled pass now finds another holding the lock, as if one were stuck.
    let mut lock_path = db.as_os_str().to_owned();
    lock_path.push(".pass-lock");
    let lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap();
    lock.lock().unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://{}/healthz", service.addr);
    let mut seen = (0, serde_json::Value::Null);
    for _ in 0..100 {
        // A pass started just now and not finished, as a pass that panics leaves it.
        service
            .store
            .write(|c| {
                c.execute(
                    "INSERT INTO passes (started_at, pass_time) VALUES (?1, ?1)",
                    [quicket_followup::store::timestamp(Utc::now())],
                )?;
                Ok(())
            })
            .await
            .unwrap();
        let response = client.get(&url).send().await.unwrap();
        let status = response.status().as_u16();
        seen = (
            status,
            serde_json::from_str(&response.text().await.unwrap()).unwrap(),
        );
        if status == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = seen;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "failing", "{body}");
    assert_eq!(body["passes"]["overdue"], true, "{body}");
    assert_eq!(body["last_pass"]["state"], "unfinished", "{body}");
    lock.unlock().unwrap();
    service.stop().await;
}
