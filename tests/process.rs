//! The real binary as a child process: start-up, the printed URL, CLI errors, export, graceful
//! stop on SIGTERM, and no acknowledged hook lost to SIGKILL.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap, helpers included

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{hook, run_cli, serve, signal, write_config};
use quicket_followup::store::Store;

fn token_of(url: &str) -> String {
    url.rsplit('/').next().unwrap().to_string()
}

#[tokio::test]
async fn a_generated_token_is_printed_and_stays_the_same_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let mut first = serve(&config, &[]);
    let token = token_of(&first.webhook_url);
    assert!(token.len() >= 32 && token.chars().all(|c| c.is_ascii_alphanumeric()));
    let client = reqwest::Client::new();
    let (status, _) = common::post(&client, &first.webhook_url, common::SAMPLE_STARTED).await;
    assert_eq!(status, 200);
    signal(&first.child, "TERM");
    assert!(first.child.wait().unwrap().success());

    let mut second = serve(&config, &[]);
    assert_eq!(token_of(&second.webhook_url), token);
    signal(&second.child, "TERM");
    second.child.wait().unwrap();

    // A token from the environment wins over the stored one.
    let chosen = "env-token-abcdefghijklmnop";
    let mut third = serve(&config, &[("QUICKET_FOLLOWUP_WEBHOOK_TOKEN", chosen)]);
    assert_eq!(token_of(&third.webhook_url), chosen);
    let old = format!("{}/webhooks/quicket/{token}", third.base);
    assert_eq!(common::post(&client, &old, "{}").await.0, 401);
    signal(&third.child, "TERM");
    third.child.wait().unwrap();
}

#[test]
fn a_config_error_exits_1_with_one_line_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "[schedule]\nscan = \"every minute\"\n");
    let (code, stdout, stderr) = run_cli(&["--config", config.to_str().unwrap(), "serve"], &[]);
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains("schedule.scan"),
        "{stderr}"
    );
}

#[test]
fn the_config_file_can_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "[schedule]\nshedule = 1\n");
    let (code, _, stderr) = run_cli(
        &["export", "orders"],
        &[("QUICKET_FOLLOWUP_CONFIG", config.to_str().unwrap())],
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("schedule.shedule"), "{stderr}");
}

#[tokio::test]
async fn a_database_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let db = dir.path().join("data/followup.sqlite");
    let store = Store::open(&db).unwrap();
    store.close().await;
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("PRAGMA user_version = 99").unwrap();
    drop(conn);
    let (code, _, stderr) = run_cli(
        &["--config", config.to_str().unwrap(), "export", "orders"],
        &[],
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("schema version 99") && stderr.contains("newer"),
        "{stderr}"
    );
    // Nothing was changed: the version is still the newer one.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 99);
}

#[tokio::test]
async fn export_writes_json_lines_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let mut served = serve(&config, &[]);
    let client = reqwest::Client::new();
    for body in [
        common::SAMPLE_STARTED,
        common::SAMPLE_EFT_STRINGS,
        "not json",
    ] {
        common::post(&client, &served.webhook_url, body).await;
    }
    signal(&served.child, "TERM");
    served.child.wait().unwrap();
    let config = config.to_str().unwrap();

    let (code, stdout, _) = run_cli(&["--config", config, "export", "orders"], &[]);
    assert_eq!(code, 0);
    let orders: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(orders.len(), 2);
    assert_eq!(orders[0]["reference"], "REF00123456");
    assert_eq!(orders[0]["status"], "checkout_started");
    assert_eq!(orders[1]["event_id"], "456");
    assert_eq!(orders[1]["amount"], 450.0);
    assert_eq!(orders[1]["event_date"], "2026-12-12 18:30");

    let (code, stdout, _) = run_cli(
        &[
            "--config",
            config,
            "export",
            "deliveries",
            "--format",
            "json",
        ],
        &[],
    );
    assert_eq!(code, 0);
    let deliveries: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(deliveries.len(), 3);
    assert_eq!(deliveries[2]["outcome"], "rejected");
    assert_eq!(deliveries[2]["body"], "not json");
    assert!(
        deliveries[0]["received_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    let (code, stdout, _) = run_cli(
        &["--config", config, "export", "orders", "--format", "csv"],
        &[],
    );
    assert_eq!(code, 0);
    let mut reader = csv::Reader::from_reader(stdout.as_bytes());
    let headers = reader.headers().unwrap().clone();
    for field in [
        "reference",
        "event_id",
        "event_name",
        "event_date",
        "email",
        "amount",
        "status",
    ] {
        assert!(headers.iter().any(|h| h == field), "csv lacks {field}");
    }
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(&rows[1][5], "450.00");
}

/// Posts unique hooks from many tasks until told to stop; returns the references answered 200.
fn flood(url: String, stop: Arc<Mutex<bool>>) -> tokio::task::JoinHandle<BTreeSet<String>> {
    tokio::spawn(async move {
        let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
        let client = reqwest::Client::builder()
            .user_agent(common::BROWSER)
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let mut workers = Vec::new();
        let run = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        for worker in 0..16 {
            let (client, url, stop, acknowledged) = (
                client.clone(),
                url.clone(),
                stop.clone(),
                acknowledged.clone(),
            );
            workers.push(tokio::spawn(async move {
                for i in 0.. {
                    if *stop.lock().unwrap() {
                        break;
                    }
                    let reference = format!("K{run}-{worker:02}-{i:06}");
                    let sent = client
                        .post(&url)
                        .body(hook(&reference, "checkout_started"))
                        .send()
                        .await;
                    match sent {
                        Ok(response) if response.status().as_u16() == 200 => {
                            acknowledged.lock().unwrap().insert(reference);
                        }
                        Ok(_) => {}
                        Err(_) => break, // the server is gone
                    }
                }
            }));
        }
        for worker in workers {
            worker.await.unwrap();
        }
        Arc::try_unwrap(acknowledged).unwrap().into_inner().unwrap()
    })
}

async fn stored_references(db: &std::path::Path) -> BTreeSet<String> {
    let store = Store::open(db).unwrap();
    let references = store
        .read(|conn| {
            let mut stmt = conn.prepare("SELECT reference FROM orders")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<Result<BTreeSet<_>, _>>()?)
        })
        .await
        .unwrap();
    store.close().await;
    references
}

fn count_orders(db: &std::path::Path) -> i64 {
    rusqlite::Connection::open(db)
        .and_then(|conn| conn.query_row("SELECT count(*) FROM orders", [], |r| r.get(0)))
        .unwrap_or(0)
}

/// Waits (bounded) until the server has stored `more` hooks beyond `before`, mid-flood.
async fn wait_for_orders(db: &std::path::Path, before: i64, more: i64) {
    for _ in 0..400 {
        if count_orders(db) >= before + more {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the server stored too few hooks while flooded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledged_hook_is_lost_when_the_process_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let db = dir.path().join("data/followup.sqlite");
    for round in 0..2 {
        let before = count_orders(&db);
        let mut served = serve(&config, &[]);
        let stop = Arc::new(Mutex::new(false));
        let flooding = flood(served.webhook_url.clone(), stop.clone());
        wait_for_orders(&db, before, 300).await;
        signal(&served.child, "KILL");
        served.child.wait().unwrap();
        *stop.lock().unwrap() = true;
        let acknowledged = flooding.await.unwrap();
        assert!(!acknowledged.is_empty(), "round {round}");
        let stored = stored_references(&db).await;
        let lost: Vec<&String> = acknowledged.difference(&stored).collect();
        assert!(
            lost.is_empty(),
            "{} acknowledged hooks lost, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly_and_keeps_every_acknowledged_hook() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let db = dir.path().join("data/followup.sqlite");
    let mut served = serve(&config, &[]);
    let stop = Arc::new(Mutex::new(false));
    let flooding = flood(served.webhook_url.clone(), stop.clone());
    wait_for_orders(&db, 0, 300).await;
    signal(&served.child, "TERM");
    let status = served.child.wait().unwrap();
    *stop.lock().unwrap() = true;
    assert!(status.success(), "exit status {status:?}");
    let acknowledged = flooding.await.unwrap();
    let stored = stored_references(&db).await;
    assert!(acknowledged.is_subset(&stored));
}

#[tokio::test]
async fn serve_sends_a_due_reminder_into_the_outbox_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[schedule]\nscan = \"* * * * * *\"\nsend_window = \"\"\ndormant_after = \"1s\"\n\n\
         [[reminders]]\nname = \"quick\"\nafter = \"1s\"\nwhen = [\"checkout_started\"]\ntemplate = \"abandoned\"\n",
    );
    let mut served = serve(&config, &[]);
    let client = reqwest::Client::new();
    let (status, _) = common::post(
        &client,
        &served.webhook_url,
        hook("REF-E2E", "checkout_started"),
    )
    .await;
    assert_eq!(status, 200);
    // The scheduler runs a pass every second; wait (bounded) for it to write the email.
    let outbox = dir.path().join("data/outbox");
    let mut emails = Vec::new();
    for _ in 0..100 {
        emails = std::fs::read_dir(&outbox)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        if !emails.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    signal(&served.child, "TERM");
    assert!(served.child.wait().unwrap().success());
    assert_eq!(emails.len(), 1, "the scheduled pass wrote the reminder");
    let eml = std::fs::read_to_string(&emails[0]).unwrap();
    assert!(
        eml.contains("To: \"Lerato Dlamini\" <lerato@mail.co.za>"),
        "{eml}"
    );
}

#[test]
fn a_bad_command_line_exits_1_with_one_line() {
    for args in [
        &["bogus"][..],
        &["export", "nothing"],
        &["run-once", "--later"],
    ] {
        let (code, stdout, stderr) = run_cli(args, &[]);
        assert_eq!(code, 1, "{args:?}");
        assert!(stdout.is_empty());
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
    }
    let (code, stdout, _) = run_cli(&["--help"], &[]);
    assert_eq!(code, 0);
    assert!(stdout.contains("run-once"));
}
