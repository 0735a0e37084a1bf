//! The settings file: `settings.toml` in the state directory (beside the database) holds the
//! organiser's choices (who sends, how email leaves, where links point, who is told). `check` and
//! `serve` read it after the main file; a key in both is refused naming both files; a hand edit
//! and SIGHUP keep working (a bad edit refused, the running settings kept).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap, helpers included

mod common;

use std::path::Path;
use std::time::Duration;

/// A main config whose state directory is `dir/state`, and that directory.
fn main_config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let path = dir.join("quicket-followup.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n\n[database]\npath = {:?}\n\n[email]\noutbox_dir = {:?}\n\n{extra}",
            state.join("followup.sqlite"),
            state.join("outbox"),
        ),
    )
    .unwrap();
    path
}

const SETTINGS: &str = "[server]\npublic_url = \"https://tickets.jazznights.test\"\n\n[email]\nfrom = \"Jazz Nights <tickets@jazznights.test>\"\n";

#[test]
fn check_reads_the_settings_file_and_refuses_a_key_set_in_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = main_config(dir.path(), "");
    let settings = dir.path().join("state/settings.toml");
    std::fs::write(&settings, SETTINGS).unwrap();
    let args = ["--config", config.to_str().unwrap(), "check"];
    let (code, out, err) = common::run_cli(&args, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("settings.toml: valid"), "{out}");

    // The same key in the main file: refused, naming both files.
    let config = main_config(dir.path(), "");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[email]\n",
        "[email]\nfrom = \"Other <other@jazznights.test>\"\n",
    );
    std::fs::write(&config, text).unwrap();
    let (code, out, err) = common::run_cli(&args, &[]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("email.from"), "{err}");
    assert!(
        err.contains(config.to_str().unwrap()) && err.contains(settings.to_str().unwrap()),
        "{err}"
    );

    // A key that belongs to the host's file: refused, saying where it goes.
    main_config(dir.path(), "");
    std::fs::write(&settings, "[database]\nretention = \"0\"\n").unwrap();
    let (code, _, err) = common::run_cli(&args, &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("database") && err.contains("main configuration"),
        "{err}"
    );

    // Set in the environment too: refused, naming the variable.
    std::fs::write(
        &settings,
        "[email]\ntransport = \"smtp\"\nsmtp_url = \"smtp://127.0.0.1:2525\"\n",
    )
    .unwrap();
    let (code, _, err) = common::run_cli(
        &args,
        &[("QUICKET_FOLLOWUP_SMTP_URL", "smtp://127.0.0.1:2526")],
    );
    assert_eq!(code, 1);
    assert!(err.contains("QUICKET_FOLLOWUP_SMTP_URL"), "{err}");
}

async fn reload_state(base: &str, reloads: u64, refused: bool) {
    let client = reqwest::Client::new();
    for _ in 0..100 {
        let h = common::get_json(&client, &format!("{base}/healthz")).await;
        let s = &h["settings"];
        if s["reloads"] == reloads && ((s["state"] == "refused") == refused) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the reload did not happen");
}

#[tokio::test]
async fn serve_uses_the_settings_file_and_a_bad_hand_edit_is_refused_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let config = main_config(dir.path(), "");
    let settings = dir.path().join("state/settings.toml");
    std::fs::write(&settings, SETTINGS).unwrap();
    let served = common::serve(&config, &[]);
    // The webhook address names the public URL from the settings file.
    let page = reqwest::get(&served.webhook_url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("https://tickets.jazznights.test/webhooks/quicket/"),
        "{page}"
    );
    let front = reqwest::get(format!("{}/", served.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(front.contains("Jazz Nights"), "{front}");

    // A hand edit that breaks the file: refused on SIGHUP, the service keeps running.
    std::fs::write(&settings, "[email]\nfrom = 5\n").unwrap();
    common::signal(&served.child, "HUP");
    reload_state(&served.base, 0, true).await;
    let page = reqwest::get(&served.webhook_url).await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    // Mended: the next SIGHUP is a reload like any other.
    std::fs::write(&settings, SETTINGS).unwrap();
    common::signal(&served.child, "HUP");
    reload_state(&served.base, 1, false).await;
    common::signal(&served.child, "TERM");
}
