//! One binary that runs anywhere: copied into an empty directory outside the source tree and
//! started there, it uses the templates built into it; `init` writes a configuration and the
//! templates to edit, and never overwrites them; a `templates.dir` set to nothing there is an
//! error naming it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::signal;

/// The binary under test, copied into `dir` (the same code as the release build; the test
/// profile's copy keeps `cargo test` from building a second time).
fn copy_binary(dir: &Path) -> PathBuf {
    let target = dir.join("quicket-followup");
    std::fs::copy(env!("CARGO_BIN_EXE_quicket-followup"), &target).unwrap();
    // A child forked by another test thread while the copy was open for writing holds it until
    // it execs, and until then running the copy fails with ETXTBSY ("Text file busy"): wait
    // that moment out once here, so that every later start of the copy is a real test.
    for _ in 0..200 {
        match Command::new(&target).arg("--version").output() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            _ => break,
        }
    }
    target
}

/// An empty directory outside the source tree.
fn empty_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    assert!(!dir.path().starts_with(env!("CARGO_MANIFEST_DIR")));
    dir
}

fn run(binary: &Path, cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(binary)
        .args(args)
        .current_dir(cwd)
        .env_remove("QUICKET_FOLLOWUP_CONFIG")
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_binary_started_in_an_empty_directory_records_a_hook_and_writes_a_whole_reminder() {
    let dir = empty_dir();
    let binary = copy_binary(dir.path());
    let work = dir.path().join("run");
    std::fs::create_dir(&work).unwrap();
    // QUICKET_FOLLOWUP_WEBHOOK_TOKEN is a secret from the environment, not a file; the only
    // departure from "no configuration at all" is the port (8080 may be taken on a shared machine).
    let token = "anywhere-token-0123456789";
    let mut child = Command::new(&binary)
        .current_dir(&work)
        .env_remove("QUICKET_FOLLOWUP_CONFIG")
        .env("QUICKET_FOLLOWUP_WEBHOOK_TOKEN", token)
        .args(["--config", "/dev/null"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // `--config /dev/null` is an empty file: every key at its default, so it listens on 8080.
    // If that port is taken, this machine cannot run the test as written: use port 0 instead.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next();
    let base = match first {
        Some(Ok(line)) if line.starts_with("Listening on ") => {
            line.trim_start_matches("Listening on ").trim().to_string()
        }
        _ => {
            let _ = child.wait();
            std::fs::write(
                work.join("quicket-followup.toml"),
                "[server]\nlisten = \"127.0.0.1:0\"\n",
            )
            .unwrap();
            child = Command::new(&binary)
                .current_dir(&work)
                .env_remove("QUICKET_FOLLOWUP_CONFIG")
                .env("QUICKET_FOLLOWUP_WEBHOOK_TOKEN", token)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            lines = BufReader::new(child.stdout.take().unwrap()).lines();
            let line = lines.next().unwrap().unwrap();
            line.trim_start_matches("Listening on ").trim().to_string()
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let client = reqwest::Client::new();
    let health = common::get_json(&client, &format!("{base}/healthz")).await;
    assert_eq!(health["templates"], "built-in", "{health}");
    let mut body: serde_json::Value = common::hook("REF-ANY", "checkout_started").json();
    body["email"] = "lerato@mail.co.za".into();
    let (status, answer) = common::post(
        &client,
        &format!("{base}/webhooks/quicket/{token}"),
        body.to_string(),
    )
    .await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("recorded")));
    signal(&child, "TERM");
    assert!(child.wait().unwrap().success());
    // A pass two hours later (or when the default send window next opens), from the same
    // directory, writes the reminder into ./data/outbox.
    let later =
        common::in_default_window(chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let config = if work.join("quicket-followup.toml").exists() {
        vec![]
    } else {
        vec!["--config", "/dev/null"]
    };
    let mut args = config.clone();
    args.extend(["run-once", "--now", &later]);
    let (code, out, err) = run(&binary, &work, &args);
    assert_eq!(code, 0, "{out}{err}");
    let outbox = work.join("data/outbox");
    let emails: Vec<PathBuf> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(emails.len(), 1, "{out}");
    let eml = std::fs::read_to_string(&emails[0]).unwrap();
    assert!(eml.contains("multipart/alternative"), "{eml}");
    assert!(eml.contains("List-Unsubscribe: <http"), "{eml}");
    assert!(
        eml.contains("Subject: Your Jazz on the Lawn tickets are still waiting"),
        "{eml}"
    );
    assert!(eml.contains("text/html") && eml.contains("text/plain"));
    // check says which templates are in use.
    let mut args = config;
    args.push("check");
    let (code, out, err) = run(&binary, &work, &args);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("templates: the built-in ones"), "{out}");
}

#[test]
fn init_writes_a_config_and_the_templates_that_check_passes_and_never_overwrites() {
    let dir = empty_dir();
    let binary = copy_binary(dir.path());
    let work = dir.path().join("site");
    let (code, out, err) = run(&binary, dir.path(), &["init", "site"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(work.join("quicket-followup.toml").is_file());
    assert!(work.join("templates/emails/abandoned/body.html").is_file());
    assert!(work.join("templates/emails/_shared/layout.html").is_file());
    let config = std::fs::read_to_string(work.join("quicket-followup.toml")).unwrap();
    assert!(config.contains("# max_connections = 512"), "{config}");
    // check, run there, reads that config and those templates.
    std::fs::write(
        work.join("templates/emails/abandoned/subject.txt"),
        "Still thinking about {{ event.name }}?",
    )
    .unwrap();
    let (code, out, err) = run(&binary, &work, &["check"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("config quicket-followup.toml: valid"), "{out}");
    assert!(out.contains("templates in templates/emails"), "{out}");
    let (code, out, _) = run(&binary, &work, &["preview", "abandoned-1"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("Still thinking about Jazz on the Lawn?"),
        "{out}"
    );
    // A second init refuses and changes nothing.
    let (code, out, err) = run(&binary, dir.path(), &["init", "site"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("already exists") && err.contains("never overwrites"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(work.join("templates/emails/abandoned/subject.txt")).unwrap(),
        "Still thinking about {{ event.name }}?"
    );
}

#[test]
fn a_templates_dir_that_is_set_but_missing_is_an_error_naming_it() {
    let dir = empty_dir();
    let binary = copy_binary(dir.path());
    std::fs::write(
        dir.path().join("quicket-followup.toml"),
        "[templates]\ndir = \"/nowhere/emails\"\n",
    )
    .unwrap();
    let (code, out, err) = run(&binary, dir.path(), &["check"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("templates.dir") && err.contains("/nowhere/emails"),
        "{err}"
    );
}
