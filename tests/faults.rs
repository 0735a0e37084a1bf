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
async fn sigkill_in_a_sending_pass_of_serve_sends_none_twice_and_loses_none_that_never_started() {
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
    let db = dir.path().join("data/followup.sqlite");
    let interrupted = || -> BTreeSet<String> {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let mut stmt = conn
            .prepare("SELECT email FROM reminders WHERE status = 'interrupted'")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let mut per_buyer: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for _ in 0..600 {
        per_buyer.clear();
        for m in server.received() {
            per_buyer
                .entry(m.to[0].clone())
                .or_default()
                .push(m.header("Message-ID").unwrap());
        }
        let missing = buyers.iter().filter(|b| !per_buyer.contains_key(*b));
        if missing.clone().count() == 0 || missing.clone().all(|b| interrupted().contains(b)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    signal(&again.child, "TERM");
    again.child.wait().unwrap();
    // Nobody got two emails: a send the kill caught mid-transaction is marked interrupted, not
    // sent again.
    assert!(
        per_buyer.values().all(|ids| ids.len() == 1),
        "a buyer got two emails: {per_buyer:?}"
    );
    // Every step went out, but those the kill interrupted mid-transaction (which may or may not
    // have arrived, here at the mail server or not).
    let interrupted = interrupted();
    let lost: Vec<&String> = buyers
        .iter()
        .filter(|b| !per_buyer.contains_key(*b) && !interrupted.contains(*b))
        .collect();
    assert!(lost.is_empty(), "never sent: {lost:?} ({per_buyer:?})");
    assert!(interrupted.len() <= quicket_followup::email::POOL_SIZE as usize);
}

/// Makes files read-only for the service even when the tests run as root (for whom a file's mode
/// stops nothing): `chattr +i` (immutable; also stops writes through descriptors already open).
/// Undone when dropped, so that the temp dir can be removed.
struct Immutable(Vec<PathBuf>);

impl Immutable {
    fn make(files: &[PathBuf]) -> Option<Immutable> {
        let mut done = Immutable(Vec::new());
        for file in files {
            let ok = Command::new("chattr")
                .arg("+i")
                .arg(file)
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return None;
            }
            done.0.push(file.clone());
        }
        Some(done)
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        for file in &self.0 {
            let _ = Command::new("chattr").arg("-i").arg(file).status();
        }
    }
}

/// Whether this process can open `file` for writing.
fn can_write(file: &Path) -> bool {
    std::fs::OpenOptions::new().write(true).open(file).is_ok()
}

/// Makes `file` read-only: its mode, and where that stops nothing (root), the immutable flag.
fn read_only(file: &Path) -> Option<Option<Immutable>> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o444)).unwrap();
    if !can_write(file) {
        return Some(None);
    }
    let immutable = Immutable::make(&[file.to_path_buf()])?;
    (!can_write(file)).then_some(Some(immutable))
}

fn writable_again(file: &Path, immutable: Option<Immutable>) {
    use std::os::unix::fs::PermissionsExt;
    drop(immutable);
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
}

#[tokio::test]
async fn a_read_only_database_stops_serve_at_start_with_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::test_config(dir.path());
    let db = config.database.path.clone();
    quicket_followup::store::Store::open(&db)
        .unwrap()
        .close()
        .await;
    let Some(guard) = read_only(&db) else {
        eprintln!("skipped: neither the file's mode nor chattr +i makes a file read-only here");
        return;
    };
    let error = match quicket_followup::server::Service::start_with(config.clone(), false).await {
        Ok(_) => panic!("serve started on a read-only database"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        error.contains(&db.display().to_string()) && error.contains("cannot be written"),
        "{error}"
    );
    writable_again(&db, guard);
    let service = quicket_followup::server::Service::start_with(config, false)
        .await
        .expect("starts once the file is writable");
    service.stop().await;
}

#[tokio::test]
async fn a_store_opened_on_a_read_only_file_writes_again_once_the_file_is_writable() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("followup.sqlite");
    quicket_followup::store::Store::open(&db)
        .unwrap()
        .close()
        .await;
    let Some(guard) = read_only(&db) else {
        eprintln!("skipped: neither the file's mode nor chattr +i makes a file read-only here");
        return;
    };
    // The commands that only read (export, stats) still open it.
    let store = quicket_followup::store::Store::open(&db).unwrap();
    assert!(store.probe_write().await.is_err(), "the file is read-only");
    writable_again(&db, guard);
    store
        .probe_write()
        .await
        .expect("writes resume without opening the store again");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_made_read_only_while_serving_fails_healthz_and_recovers_without_a_restart() {
    let app = TestApp::spawn().await;
    assert_eq!(app.post_hook(hook("RO1", "checkout_started")).await.0, 200);
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    let db = app.store().path().to_path_buf();
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    let Some(guard) = Immutable::make(&[db.clone(), wal]) else {
        eprintln!(
            "skipped: chattr +i is not possible here (needs CAP_LINUX_IMMUTABLE and ext2/3/4-like file system)"
        );
        return;
    };
    let (status, body) = app.post_hook(hook("RO2", "checkout_started")).await;
    assert_eq!(status, 503, "{body}");
    let health = healthz_until(&app, 503).await;
    assert_eq!(health["database"]["writable"], false, "{health}");
    let text = health.to_string();
    assert!(
        !text.contains(&db.display().to_string()) && !text.contains("followup.sqlite"),
        "/healthz is public: no path: {text}"
    );
    drop(guard);
    let (status, body) = app.post_hook(hook("RO3", "checkout_started")).await;
    assert_eq!(
        status, 200,
        "hooks are accepted again without a restart: {body}"
    );
    let health = healthz_until(&app, 200).await;
    assert_eq!(health["database"]["writable"], true, "{health}");
    assert!(app.store().order("RO3").await.unwrap().is_some());
    assert!(app.store().order("RO2").await.unwrap().is_none());
}

/// `/healthz` once it answers `status` (it answers from a cache for up to a second).
async fn healthz_until(app: &TestApp, status: u16) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let response = app.get("/healthz").await;
        let got = response.status().as_u16();
        let body: serde_json::Value =
            serde_json::from_str(&response.text().await.unwrap()).unwrap();
        if got == status {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/healthz still answers {got}, not {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Writes a config for `run-once` against `app`'s database, sending through `smtp` with one step
/// an hour after the checkout, at any hour, as fast as the server takes them.
fn run_once_config(app: &TestApp, smtp: &SmtpServer) -> PathBuf {
    let path = app.dir.path().join("run-once.toml");
    let text = format!(
        "[database]\npath = {:?}\n\n[email]\ntransport = \"smtp\"\nsmtp_url = {:?}\n\
         from = \"Jazz on the Lawn <tickets@shop.co.za>\"\nmax_per_minute = 100000\n\n\
         [templates]\ndir = {:?}\n\n[schedule]\nsend_window = \"\"\n\n\
         [[reminders]]\nname = \"quick\"\nafter = \"1h\"\nwhen = [\"checkout_started\"]\ntemplate = \"abandoned\"\n",
        app.store().path(),
        smtp.url(),
        common::templates_dir(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// The steps of event 456 by status: (address, step) -> (status, reason).
async fn steps(app: &TestApp) -> BTreeMap<String, (String, Option<String>)> {
    app.store()
        .read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT email, status, reason FROM reminders WHERE event_id = '456' AND step = 'quick'",
            )?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?
                .collect::<Result<BTreeMap<_, _>, _>>()?;
            Ok(rows)
        })
        .await
        .unwrap()
}

/// kill -9 while sends are in flight: 16 SMTP transactions have begun (the server has each message
/// and has not answered) when `run-once` is killed. Each may have arrived, so the next run sends
/// none of them again and marks them interrupted (timeline and report); every step that never
/// started is sent, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_sends_in_flight_sends_no_step_twice_and_marks_them_interrupted() {
    let smtp = SmtpServer::start();
    let app = TestApp::spawn().await;
    let buyers: Vec<String> = (0..40).map(|i| format!("k{i}@mail.co.za")).collect();
    for (i, email) in buyers.iter().enumerate() {
        app.post_ok(hook(&format!("K{i}"), "checkout_started").email(email))
            .await;
    }
    let config = run_once_config(&app, &smtp);
    let now = (Utc::now() + chrono::Duration::hours(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let run_once = |now: &str| {
        Command::new(common::binary())
            .args([
                "--config",
                config.to_str().unwrap(),
                "run-once",
                "--now",
                now,
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };

    // Five are answered; then every message arrives and waits for an answer that never comes.
    let in_flight = quicket_followup::email::POOL_SIZE as usize;
    smtp.stall_after(5);
    let mut child = run_once(&now);
    let server = smtp.clone();
    let stalled = tokio::task::spawn_blocking(move || {
        server.wait_for_stalled(in_flight, Duration::from_secs(120))
    })
    .await
    .unwrap();
    assert!(stalled, "{in_flight} sends never were in flight at once");
    signal(&child, "KILL");
    child.wait().unwrap();
    smtp.release();
    let arrived: BTreeSet<String> = smtp.received().iter().map(|m| m.to[0].clone()).collect();
    assert_eq!(arrived.len(), 5 + in_flight);

    let output = run_once(&now).wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // No Message-ID twice, and everyone got their one email (or may have: the interrupted).
    let mut ids: BTreeMap<String, usize> = BTreeMap::new();
    for m in smtp.received() {
        *ids.entry(m.header("Message-ID").unwrap()).or_default() += 1;
    }
    let twice: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent twice: {twice:?}");
    let to: BTreeSet<String> = smtp.received().iter().map(|m| m.to[0].clone()).collect();
    assert_eq!(to, buyers.iter().cloned().collect::<BTreeSet<_>>());

    // The sends the kill caught are marked, in the database, the report and the timeline.
    let steps = steps(&app).await;
    let interrupted: Vec<&String> = steps
        .iter()
        .filter(|(_, (status, _))| status == "interrupted")
        .map(|(email, _)| email)
        .collect();
    assert_eq!(interrupted.len(), in_flight, "{steps:?}");
    assert!(interrupted.iter().all(|e| arrived.contains(*e)));
    assert!(
        steps.values().all(|(status, reason)| status == "sent"
            || reason.as_deref() == Some("interrupted: may or may not have arrived")),
        "{steps:?}"
    );
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("interrupted"))
        .collect();
    assert_eq!(lines.len(), in_flight, "{stdout}");
    assert!(lines[0].contains("may or may not have arrived"), "{stdout}");
    assert!(
        stdout.contains(&format!("sent {}, ", buyers.len() - arrived.len()))
            && stdout.contains(&format!("interrupted {in_flight} ")),
        "{stdout}"
    );
    let timeline = app
        .store()
        .timeline(interrupted[0], "456")
        .await
        .unwrap()
        .unwrap();
    let entry = timeline
        .entries
        .iter()
        .find(|e| e.title == "reminder quick: interrupted")
        .unwrap_or_else(|| panic!("{:?}", timeline.entries));
    assert_eq!(
        entry.detail.as_deref(),
        Some("interrupted: may or may not have arrived")
    );

    // Such an email may have arrived: a click on its link says it did, and counts.
    let mail = smtp
        .received()
        .into_iter()
        .find(|m| &m.to[0] == interrupted[0])
        .unwrap();
    let text = smtp::qp_decode(&mail.data);
    let token: String = text[text.find("/r/").unwrap() + 3..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let answer = common::no_redirects()
        .get(format!("{}/r/{token}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 302);
    let key = interrupted[0].clone();
    let clicks: i64 = app
        .store()
        .read(move |conn| {
            Ok(conn.query_row(
                "SELECT count(*) FROM clicks WHERE email_key = ?1",
                [key],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(clicks, 1);

    // And later passes leave it so.
    let output = run_once(&now).wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("sent 0,") && !stdout.contains("interrupted"),
        "{stdout}"
    );
    assert_eq!(smtp.received().len(), buyers.len());
}
