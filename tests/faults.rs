//! Faults injected into real parts: an SMTP server that hangs, a database locked by another
//! process, a full disk, and SIGKILL in the middle of a sending pass.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap, helpers included

mod common;
use common::smtp;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use chrono::Utc;
use common::{TestApp, hook, serve, signal, write_config};
use quicket_followup::config::{SendWindow, Transport};
use smtp::SmtpServer;

#[tokio::test]
async fn an_smtp_server_that_hangs_times_out_and_the_pass_moves_on() {
    let smtp = SmtpServer::start();
    smtp.hang();
    let url = smtp.url();
    let app = TestApp::spawn_with(move |c| {
        c.email.transport = Transport::Smtp;
        c.email.smtp_url = url;
        c.email.smtp_timeout = Duration::from_secs(1);
        c.schedule.send_window = SendWindow::parse("").unwrap();
    })
    .await;
    for i in 0..3 {
        let body = hook(&format!("H{i}"), "checkout_started").email(&format!("b{i}@mail.co.za"));
        assert_eq!(app.post_hook(body).await.0, 200);
    }
    let at = Utc::now() + chrono::Duration::minutes(61);
    // Bounded: a pass that waited forever on the server would fail here rather than hang CI.
    let report = tokio::time::timeout(
        Duration::from_secs(30),
        app.service.engine.run_pass(at, false),
    )
    .await
    .expect("the pass gave up on the hanging server")
    .unwrap();
    assert_eq!(
        (report.counts.sent, report.counts.failed),
        (0, 3),
        "{:?}",
        report.lines
    );
    assert!(
        report.lines.iter().all(|l| l.reason.contains("will retry")),
        "{:?}",
        report.lines
    );

    // The server answers again: the retries go out, once each.
    smtp.answer();
    let later = app.pass_at(at + chrono::Duration::minutes(5)).await;
    assert_eq!(later.counts.sent, 3, "{:?}", later.lines);
    assert_eq!(smtp.received().len(), 3);
}

#[tokio::test]
async fn a_database_locked_by_another_process_answers_503_and_recovers() {
    let app = TestApp::spawn().await;
    assert_eq!(app.post_hook(hook("L1", "checkout_started")).await.0, 200);
    // Another program takes the write lock and keeps it.
    let locker = rusqlite::Connection::open(app.store().path()).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let (status, body) = app.post_hook(hook("L2", "checkout_started")).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("try again later"),
        "{body}"
    );
    locker.execute_batch("ROLLBACK").unwrap();
    drop(locker);
    assert_eq!(app.post_hook(hook("L3", "checkout_started")).await.0, 200);
    assert!(app.store().order("L1").await.unwrap().is_some());
    assert!(
        app.store().order("L2").await.unwrap().is_none(),
        "the refused hook is not half-stored"
    );
    assert!(app.store().order("L3").await.unwrap().is_some());
}

/// A small tmpfs mounted for one test, unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> Option<SmallDisk> {
        let point = dir.join("disk");
        std::fs::create_dir_all(&point).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&point)
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk(point))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_keeps_what_was_acknowledged_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(dir.path(), "3m") else {
        eprintln!("skipped: cannot mount a small tmpfs here (needs root)");
        return;
    };
    let config = write_config(dir.path(), "");
    let db = disk.0.join("followup.sqlite");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!("path = {:?}", dir.path().join("data/followup.sqlite")),
        &format!("path = {db:?}"),
    );
    std::fs::write(&config, text).unwrap();
    let mut served = serve(&config, &[]);
    let client = reqwest::Client::new();
    // Fill the disk, then post until the service says it cannot store.
    let filler = disk.0.join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=64k", "count=1000"])
        .arg(format!("of={}", filler.display()))
        .stderr(std::process::Stdio::null())
        .status();
    let mut acknowledged = BTreeSet::new();
    let mut refused = 0;
    for i in 0..3000 {
        let reference = format!("F{i:05}");
        let (status, _) = common::post(
            &client,
            &served.webhook_url,
            hook(&reference, "checkout_started"),
        )
        .await;
        match status {
            200 => {
                acknowledged.insert(reference);
            }
            503 => {
                refused += 1;
                if refused >= 5 {
                    break;
                }
            }
            other => panic!("answered {other} on a full disk; 503 expected"),
        }
    }
    assert!(
        refused >= 5,
        "the disk never filled ({} acknowledged)",
        acknowledged.len()
    );
    // Space comes back: the service stores again without a restart.
    std::fs::remove_file(&filler).unwrap();
    let (status, _) = common::post(
        &client,
        &served.webhook_url,
        hook("F-after", "checkout_started"),
    )
    .await;
    assert_eq!(status, 200, "the service recovers when space returns");
    acknowledged.insert("F-after".into());
    signal(&served.child, "TERM");
    assert!(served.child.wait().unwrap().success());
    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok", "nothing half-written");
    let mut stmt = conn.prepare("SELECT reference FROM orders").unwrap();
    let stored: BTreeSet<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let lost: Vec<&String> = acknowledged.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "acknowledged hooks lost on a full disk: {lost:?}"
    );
    drop(stmt);
    drop(conn);
    drop(disk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_a_sending_pass_loses_no_reminder_and_sends_none_twice() {
    let server = SmtpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[schedule]\nscan = \"* * * * * *\"\nsend_window = \"\"\ndormant_after = \"1s\"\n\n\
         [[reminders]]\nname = \"quick\"\nafter = \"1s\"\nwhen = [\"checkout_started\"]\ntemplate = \"abandoned\"\n",
    );
    // 10 at once, then one a second: the pass is still sending when it is killed.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[email]\n",
        &format!(
            "[email]\ntransport = \"smtp\"\nsmtp_url = {:?}\nmax_per_minute = 60\n",
            server.url()
        ),
    );
    std::fs::write(&config, text).unwrap();
    let buyers: Vec<String> = (0..16).map(|i| format!("k{i}@mail.co.za")).collect();
    let mut served = serve(&config, &[]);
    let client = reqwest::Client::new();
    for (i, email) in buyers.iter().enumerate() {
        let body = hook(&format!("K{i}"), "checkout_started").email(email);
        assert_eq!(
            common::post(&client, &served.webhook_url, body).await.0,
            200
        );
    }
    for _ in 0..400 {
        if server.received().len() >= 11 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(server.received().len() < buyers.len(), "killed mid-pass");
    signal(&served.child, "KILL");
    served.child.wait().unwrap();

    let mut again = serve(&config, &[]);
    let mut per_buyer: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for _ in 0..600 {
        per_buyer.clear();
        for m in server.received() {
            per_buyer
                .entry(m.to[0].clone())
                .or_default()
                .insert(m.header("Message-ID").unwrap());
        }
        if per_buyer.len() == buyers.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    signal(&again.child, "TERM");
    again.child.wait().unwrap();
    assert_eq!(
        per_buyer.len(),
        buyers.len(),
        "every reminder went out: {per_buyer:?}"
    );
    // A message the kill caught between the SMTP answer and the database may go again, but as
    // the same message (one Message-ID), which mail systems de-duplicate.
    assert!(
        per_buyer.values().all(|ids| ids.len() == 1),
        "a buyer got two different emails: {per_buyer:?}"
    );
}
