#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The deployment files in `deploy/` are what systemd and the program accept: the unit files pass
//! `systemd-analyze verify`, and the production config example is read without complaint.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the unit files say the binary is installed.
const INSTALLED_BINARY: &str = "/usr/local/bin/quicket-followup";

/// The unit files, verified together (the timer needs its service next to it).
const UNITS: [&str; 3] = [
    "quicket-followup.service",
    "quicket-followup-backup.service",
    "quicket-followup-backup.timer",
];

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_quicket-followup")
}

/// A line of `systemd-analyze verify` output that only says the service's user or group does not
/// exist on this machine (it is created when the service is installed, not in CI).
fn is_about_the_missing_user(line: &str) -> bool {
    let line = line.to_lowercase();
    line.contains("quicket-followup")
        && (line.contains("user") || line.contains("group"))
        && [
            "resolve",
            "unknown",
            "not found",
            "no such",
            "does not exist",
        ]
        .iter()
        .any(|says| line.contains(says))
}

#[test]
fn the_unit_files_pass_systemd_analyze_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: systemd-analyze is not installed (apt-get install systemd)");
        return;
    }

    // verify checks that every ExecStart= program exists and is executable, so the copies point
    // at the binary cargo built instead of the installed one (/bin/sh, /bin/kill and
    // /usr/bin/find stay as they are).
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for name in UNITS {
        let text = std::fs::read_to_string(deploy_dir().join(name))
            .unwrap_or_else(|e| panic!("deploy/{name}: {e}"));
        assert!(
            name.ends_with(".timer") || text.contains(INSTALLED_BINARY),
            "deploy/{name} does not run {INSTALLED_BINARY}"
        );
        let path = dir.path().join(name);
        std::fs::write(&path, text.replace(INSTALLED_BINARY, binary())).unwrap();
        paths.push(path);
    }

    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg("--man=no")
        .args(&paths)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let (ignored, complaints): (Vec<&str>, Vec<&str>) = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .partition(|line| is_about_the_missing_user(line));
    for line in &ignored {
        eprintln!("ignored (the user is created at install): {line}");
    }
    // An unknown key is only a warning (exit status 0), so any line of output is a failure.
    assert!(
        complaints.is_empty(),
        "systemd-analyze verify complained about deploy/:\n{}",
        complaints.join("\n")
    );
    assert!(
        output.status.success() || !ignored.is_empty(),
        "systemd-analyze verify failed ({}) without saying why",
        output.status
    );
}

#[test]
fn the_production_config_example_is_accepted() {
    // The example's absolute paths, moved into a temp dir; the templates are the shipped ones
    // (the package copies templates/emails to /var/lib/quicket-followup/templates/emails), the
    // schedule file deploy/schedule.toml (the package copies it to /var/lib/quicket-followup).
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/emails");
    let text = std::fs::read_to_string(deploy_dir().join("quicket-followup.toml")).unwrap();
    assert!(text.contains("/var/lib/quicket-followup/followup.sqlite"));
    assert!(text.contains("/var/lib/quicket-followup/templates/emails"));
    assert!(text.contains("file = \"/var/lib/quicket-followup/schedule.toml\""));
    let text = text
        .replace(
            "/var/lib/quicket-followup/templates/emails",
            templates.to_str().unwrap(),
        )
        .replace("/var/lib/quicket-followup", state.to_str().unwrap());
    std::fs::create_dir_all(&state).unwrap();
    // Renamed here, so that preview below shows the step comes from the schedule file.
    let schedule = std::fs::read_to_string(deploy_dir().join("schedule.toml")).unwrap();
    assert!(schedule.contains("name = \"eft-1\""));
    std::fs::write(
        state.join("schedule.toml"),
        schedule.replace("name = \"eft-1\"", "name = \"eft-from-the-schedule-file\""),
    )
    .unwrap();
    let config = dir.path().join("quicket-followup.toml");
    std::fs::write(&config, text).unwrap();

    // The SMTP URL comes from secrets.env in production; nothing is sent by these commands.
    let run = |args: &[&str]| {
        let output = Command::new(binary())
            .arg("--config")
            .arg(&config)
            .args(args)
            .current_dir(dir.path())
            .env_remove("QUICKET_FOLLOWUP_CONFIG")
            .env_remove("QUICKET_FOLLOWUP_WEBHOOK_TOKEN")
            .env_remove("QUICKET_FOLLOWUP_ADMIN_PASSWORD")
            .env("QUICKET_FOLLOWUP_SMTP_URL", "smtp://127.0.0.1:25")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "quicket-followup {} with deploy/quicket-followup.toml failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    // Reads and validates the whole file and opens (creates) the database where it says.
    run(&["export", "orders"]);
    assert!(state.join("followup.sqlite").exists());
    // Renders the first step's template from the templates directory it names; the steps are
    // the schedule file's.
    let email = run(&["preview", "abandoned-1", "--text"]);
    assert!(!email.trim().is_empty());
    let email = run(&["preview", "eft-from-the-schedule-file", "--text"]);
    assert!(!email.trim().is_empty());
}
