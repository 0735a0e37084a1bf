//! DKIM signing: `dkim-keygen` makes a key (0600) and prints the record; every email the test
//! SMTP server receives verifies against that record with an independent verifier (Python's
//! dkimpy, installed by .ci/run), for RSA and Ed25519; a changed body does not. A weak or
//! unreadable key is an error at start and in `check`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::smtp;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use chrono::{Duration, Utc};
use common::TestApp;
use quicket_followup::config::SendWindow;
use smtp::SmtpServer;

const VERIFY: &str = r#"
import sys, dkim
message = open(sys.argv[1], 'rb').read()
name, record = sys.argv[2], sys.argv[3].encode()
def dns(qname, timeout=5):
    return record if qname.decode().rstrip('.') == name else None
ok = dkim.verify(message, dnsfunc=dns)
print('pass' if ok else 'fail')
sys.exit(0 if ok else 1)
"#;

/// A Python that has dkimpy (and PyNaCl for Ed25519), or None (then the test skips, except in CI).
fn python() -> Option<String> {
    for candidate in ["python3", "/usr/bin/python3"] {
        let ok = Command::new(candidate)
            .args(["-c", "import dkim, nacl"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(candidate.to_string());
        }
    }
    assert!(
        std::env::var("CI").is_err(),
        "dkimpy is missing: .ci/run installs it (python3-dkim / pip install dkimpy pynacl)"
    );
    eprintln!("SKIPPED: no python3 with dkimpy and pynacl here");
    None
}

/// Runs `dkim-keygen`; returns the TXT record it printed.
fn keygen(path: &Path, ed25519: bool) -> String {
    let file = path.to_str().unwrap();
    let mut args = vec!["dkim-keygen", file];
    if ed25519 {
        args.push("--ed25519");
    }
    let (code, out, err) = common::run_cli(&args, &[]);
    assert_eq!(code, 0, "{err}");
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let record = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("TXT "))
        .map(|r| r.trim().trim_matches('"').to_string())
        .unwrap_or_else(|| panic!("no TXT line in {out}"));
    assert!(
        out.contains("qf._domainkey.") || out.contains("._domainkey."),
        "{out}"
    );
    record
}

async fn signed_email(key: &Path) -> String {
    let smtp = SmtpServer::start();
    let key = key.to_path_buf();
    let app = TestApp::spawn_with(|c| {
        common::via_smtp(c, &smtp);
        c.email.dkim_selector = "qf".into();
        c.email.dkim_key = key;
        c.schedule.send_window = SendWindow::parse("").unwrap();
    })
    .await;
    app.post_ok(common::hook("R-1", "checkout_started")).await;
    let report = app.pass_at(Utc::now() + Duration::minutes(61)).await;
    assert_eq!(report.counts.sent, 1, "{report:?}");
    let data = smtp.received()[0].data.clone();
    assert!(data.contains("DKIM-Signature: v=1;"), "{data}");
    assert!(data.contains("d=shop.co.za"), "{data}");
    assert!(data.contains("c=relaxed/relaxed"), "{data}");
    data
}

fn verify(python: &str, dir: &Path, message: &str, record: &str) -> bool {
    let file = dir.join("message.eml");
    std::fs::write(&file, message).unwrap();
    let out = Command::new(python)
        .args(["-c", VERIFY])
        .arg(&file)
        .arg("qf._domainkey.shop.co.za")
        .arg(record)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("pass") || text.contains("fail"),
        "the verifier did not run: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.status.success()
}

async fn signs_and_verifies(ed25519: bool) {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("dkim.pem");
    let record = keygen(&key, ed25519);
    assert!(
        record.starts_with(if ed25519 {
            "v=DKIM1; k=ed25519; p="
        } else {
            "v=DKIM1; k=rsa; p="
        }),
        "{record}"
    );
    let message = signed_email(&key).await;
    assert!(verify(&python, dir.path(), &message, &record), "{message}");
    // One word of the body changed: the body hash no longer matches.
    let (head, body) = message.split_once("\r\n\r\n").unwrap();
    let changed = format!("{head}\r\n\r\n{}", body.replacen("Jazz", "Jizz", 1));
    assert_ne!(changed, message);
    assert!(!verify(&python, dir.path(), &changed, &record));
    // And the record of another key does not verify it either.
    let other = keygen(&dir.path().join("other.pem"), ed25519);
    assert!(!verify(&python, dir.path(), &message, &other));
}

#[tokio::test]
async fn rsa_signatures_verify_with_an_independent_verifier() {
    signs_and_verifies(false).await;
}

#[tokio::test]
async fn ed25519_signatures_verify_with_an_independent_verifier() {
    signs_and_verifies(true).await;
}

#[test]
fn dkim_keygen_never_overwrites_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("dkim.pem");
    std::fs::write(&key, "mine").unwrap();
    let (code, _, err) = common::run_cli(&["dkim-keygen", key.to_str().unwrap(), "--ed25519"], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("must not exist"), "{err}");
    assert_eq!(std::fs::read_to_string(&key).unwrap(), "mine");
}

#[test]
fn a_weak_or_unreadable_key_is_an_error_in_check_and_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let weak = dir.path().join("weak.pem");
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).unwrap();
    let pem =
        rsa::pkcs1::EncodeRsaPrivateKey::to_pkcs1_pem(&key, rsa::pkcs8::LineEnding::LF).unwrap();
    std::fs::write(&weak, pem.as_bytes()).unwrap();
    let missing = dir.path().join("missing.pem");
    for (path, words) in [(&weak, "too weak"), (&missing, "cannot be read")] {
        let config = dir.path().join("quicket-followup.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\n[database]\npath = {:?}\n[email]\ndkim_selector = \"qf\"\ndkim_key = {path:?}\n[templates]\ndir = {:?}\n",
                dir.path().join("data/followup.sqlite"),
                common::templates_dir()
            ),
        )
        .unwrap();
        let cfg = config.to_str().unwrap();
        let (code, out, err) = common::run_cli(&["--config", cfg, "check"], &[]);
        assert_eq!(code, 1, "{out}{err}");
        assert!(format!("{out}{err}").contains(words), "{out}{err}");
        assert!(
            format!("{out}{err}").contains("email.dkim_key"),
            "{out}{err}"
        );
        let (code, _, err) = common::run_cli(&["--config", cfg, "serve"], &[]);
        assert_eq!(code, 1);
        assert!(err.contains(words), "{err}");
    }
}
