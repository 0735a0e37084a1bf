//! Loading and validating the configuration: defaults, the file, and errors that name the key.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap, helpers included

use std::path::Path;
use std::time::Duration;

use quicket_followup::config::{Config, StepTiming, Transport};
use quicket_followup::domain::OrderState;

fn load(text: &str) -> Result<Config, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, text).unwrap();
    Config::load(Some(&path)).map_err(|e| e.to_string())
}

fn assert_error_names(text: &str, key: &str) {
    let error = load(text).expect_err(text);
    assert!(error.contains(key), "error {error:?} should name {key:?}");
}

#[test]
fn with_no_file_the_built_in_defaults_apply() {
    let config = Config::load(None).unwrap();
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.database.path, Path::new("data/followup.sqlite"));
    assert_eq!(config.email.transport, Transport::Outbox);
    assert_eq!(config.schedule.timezone, chrono_tz::Africa::Johannesburg);
    // Unset in Africa/Johannesburg: the Consumer Protection Act's hours and public holidays.
    assert!(config.schedule.send_window.is_unset());
    assert!(config.schedule.send_rule().is_za_cpa());
    assert_eq!(config.schedule.dormant_after, Duration::from_secs(30 * 60));
    let names: Vec<&str> = config.reminders.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["abandoned-1", "eft-1", "last-chance"]);
    assert_eq!(
        config.reminders[2].timing(),
        StepTiming::BeforeEvent(Duration::from_secs(3 * 86400))
    );
}

#[test]
fn the_example_file_is_valid_and_states_the_defaults() {
    let text = include_str!("../quicket-followup.example.toml");
    let example = load(text).unwrap();
    let defaults = Config::default();
    assert_eq!(
        serde_json::to_value(&example).unwrap(),
        serde_json::to_value(&defaults).unwrap(),
        "quicket-followup.example.toml must show the built-in defaults"
    );
}

#[test]
fn a_file_overrides_only_what_it_names() {
    let config = load(
        "[server]\nlisten = \"0.0.0.0:9000\"\n[schedule]\nmin_gap = \"1h 30m\"\nsend_window = \"\"\n\
         [events.\"123\"]\nreminders = false\n",
    )
    .unwrap();
    assert_eq!(config.server.listen.to_string(), "0.0.0.0:9000");
    // With public_url unset, links use the listen address (0.0.0.0 shown as 127.0.0.1).
    assert_eq!(config.public_url(), "http://127.0.0.1:9000");
    assert_eq!(config.schedule.min_gap, Duration::from_secs(5400));
    assert!(config.schedule.send_rule().is_any_hour());
    assert!(!config.events["123"].reminders);
    assert_eq!(config.reminders.len(), 3);
}

#[test]
fn reminders_in_the_file_replace_the_default_steps() {
    let config = load(
        "[[reminders]]\nname = \"quick\"\nafter = \"10m\"\nwhen = [\"checkout_cancelled\"]\ntemplate = \"abandoned\"\n",
    )
    .unwrap();
    assert_eq!(config.reminders.len(), 1);
    assert_eq!(config.reminders[0].when, [OrderState::Cancelled]);
    assert_eq!(
        config.reminders[0].timing(),
        StepTiming::After(Duration::from_secs(600))
    );
}

#[test]
fn an_unknown_key_is_an_error_that_names_it() {
    assert_error_names("[server]\nlisen = \"x\"\n", "server.lisen");
    assert_error_names("[shedule]\nscan = \"x\"\n", "shedule");
    assert_error_names(
        "[[reminders]]\nname = \"a\"\nafter = \"1h\"\nwhen = [\"eft_pending\"]\ntemplate = \"t\"\ncolour = 1\n",
        "colour",
    );
}

#[test]
fn a_bad_duration_is_an_error_that_names_the_key() {
    assert_error_names("[schedule]\nmin_gap = \"12 parsecs\"\n", "schedule.min_gap");
    assert_error_names(
        "[database]\nretention = \"forever\"\n",
        "database.retention",
    );
}

#[test]
fn a_bad_zone_is_an_error_that_names_the_key() {
    assert_error_names(
        "[schedule]\ntimezone = \"Mars/Olympus\"\n",
        "schedule.timezone",
    );
}

#[test]
fn a_bad_cron_expression_is_an_error_that_names_the_key() {
    assert_error_names("[schedule]\nscan = \"* * * * *\"\n", "schedule.scan");
    assert_error_names("[schedule]\nscan = \"0 61 * * * *\"\n", "schedule.scan");
    assert!(load("[schedule]\nscan = \"*/15 * * * * *\"\n").is_ok());
}

#[test]
fn other_bad_values_name_their_key() {
    assert_error_names(
        "[schedule]\nsend_window = \"25:00-20:00\"\n",
        "schedule.send_window",
    );
    assert_error_names(
        "[server]\npublic_url = \"example.org\"\n",
        "server.public_url",
    );
    assert_error_names(
        "[server]\nwebhook_token = \"short\"\n",
        "server.webhook_token",
    );
    assert_error_names("[email]\ntransport = \"smtp\"\n", "email.smtp_url");
    assert_error_names("[email]\ntransport = \"pigeon\"\n", "email.transport");
    assert_error_names("[email]\nevent_url = \"https://x/\"\n", "email.event_url");
    assert_error_names(
        "[email]\npostmark_webhook_user = \"postmark\"\n",
        "email.postmark_webhook_password",
    );
    assert_error_names("[events.\"1\"]\nurl = \"ftp://x\"\n", "events.\"1\".url");
    let step =
        |body: &str| format!("[[reminders]]\nname = \"s\"\ntemplate = \"abandoned\"\n{body}");
    assert_error_names(&step("when = [\"eft_pending\"]\n"), "reminders[0].after");
    assert_error_names(
        &step("after = \"1h\"\nbefore_event = \"1d\"\nwhen = [\"eft_pending\"]\n"),
        "reminders[0].after",
    );
    assert_error_names(&step("after = \"1h\"\nwhen = []\n"), "reminders[0].when");
    assert_error_names(
        &step("after = \"1h\"\nwhen = [\"checkout_completed\"]\n"),
        "reminders[0].when",
    );
    assert_error_names(
        &step("after = \"1h\"\nwhen = [\"checkout_done\"]\n"),
        "reminders.0.when",
    );
    assert_error_names(
        &format!(
            "{}{}",
            step("after = \"1h\"\nwhen = [\"eft_pending\"]\n"),
            step("after = \"2h\"\nwhen = [\"eft_pending\"]\n")
        ),
        "reminders[1].name",
    );
}

#[test]
fn a_syntax_error_points_at_the_line() {
    let error = load("[server]\nlisten = = 1\n").unwrap_err();
    assert!(error.contains("line 2"), "{error}");
}

#[test]
fn a_missing_file_named_explicitly_is_an_error() {
    let error = Config::load(Some(Path::new("/nonexistent/q.toml"))).unwrap_err();
    assert!(error.to_string().contains("/nonexistent/q.toml"));
}

#[test]
fn the_quicket_section_and_its_mistakes() {
    let config = load(
        "[quicket]\napi_key = \"k\"\nbase_url = \"http://127.0.0.1:9\"\nrefresh = \"1h\"\n\n[[reminders]]\nname = \"a\"\nafter = \"1h\"\nwhen = [\"checkout_started\"]\ntemplate = \"abandoned\"\neven_if_sold_out = true\n",
    )
    .unwrap();
    assert_eq!(config.quicket.api_key, "k");
    assert_eq!(config.quicket.base(), "http://127.0.0.1:9");
    assert_eq!(config.quicket.refresh, Duration::from_secs(3600));
    assert!(config.reminders[0].even_if_sold_out);
    let defaults = Config::load(None).unwrap();
    assert_eq!(defaults.quicket.base(), "https://api.quicket.co.za");
    let api = load("[quicket]\napi_url = \"https://api.quicket.co.za/api/\"\n").unwrap();
    assert_eq!(api.quicket.base(), "https://api.quicket.co.za");
    assert_eq!(defaults.quicket.refresh, Duration::from_secs(6 * 3600));
    assert!(defaults.quicket.api_key.is_empty());
    assert!(!defaults.reminders[0].even_if_sold_out);

    assert_error_names("[quicket]\napi_url = \"ftp://x\"\n", "quicket.api_url");
    assert_error_names("[quicket]\ntimeout = \"0s\"\n", "quicket.timeout");
    assert_error_names("[quicket]\nrefresh = \"10s\"\n", "quicket.refresh");
    assert_error_names("[quicket]\nrefresh = \"soon\"\n", "quicket.refresh");
    assert_error_names("[quicket]\napikey = \"k\"\n", "quicket.apikey");
}

#[test]
fn a_short_admin_password_is_refused_with_how_to_make_one() {
    let error = load("[server]\nadmin_password = \"hunter2hunt\"\n").unwrap_err();
    assert!(
        error.contains("server.admin_password") && error.contains("openssl rand -base64 18"),
        "{error}"
    );
    let config = load("[server]\nadmin_password = \"twelve chars\"\n").unwrap();
    assert_eq!(config.server.admin_password, "twelve chars");
}

#[test]
fn trusted_proxies_take_blocks_and_addresses_and_name_a_bad_one() {
    let config = load("[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"192.168.1.7\"]\n").unwrap();
    let names: Vec<String> = config
        .server
        .trusted_proxies
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(names, ["10.0.0.0/8", "192.168.1.7/32"]);
    let defaults = Config::load(None).unwrap();
    assert!(defaults.server.trusted_proxies[0].contains("127.0.0.9".parse().unwrap()));
    assert!(defaults.server.trusted_proxies[1].contains("::1".parse().unwrap()));
    assert_error_names(
        "[server]\ntrusted_proxies = [\"10.0.0.0/40\"]\n",
        "server.trusted_proxies",
    );
}

#[test]
fn secrets_never_show_in_the_debug_form() {
    let mut config = Config::default();
    config.server.admin_password = "correct horse battery".into();
    config.server.webhook_token = "hook-secret-0123456789".into();
    config.email.smtp_url = "smtps://user:mail-secret@smtp.x.co.za:465".into();
    config.quicket.api_key = "api-secret".into();
    config.email.postmark_webhook_password = "postmark-secret".into();
    let shown = format!("{config:?} {:?} {:#?}", config.server, config.email);
    for secret in [
        "correct horse",
        "hook-secret",
        "mail-secret",
        "api-secret",
        "postmark-secret",
    ] {
        assert!(!shown.contains(secret), "{secret} shown in {shown}");
    }
    assert!(
        shown.contains("[redacted]") && shown.contains("listen"),
        "{shown}"
    );
}

#[test]
fn an_smtp_url_is_read_with_its_password_hidden() {
    use quicket_followup::config::{SmtpUrl, redact_smtp_url};
    assert_eq!(
        redact_smtp_url("smtps://user:secret@host:465"),
        "smtps://user:***@host:465"
    );
    assert_eq!(redact_smtp_url("smtp://host:25"), "smtp://host:25");
    assert_eq!(
        redact_smtp_url("user:secret@host"),
        "not a URL",
        "what is not a URL may hold the password anywhere"
    );
    let plain = SmtpUrl::parse(" smtp://user:secret@mail.shop.co.za:25 ").unwrap();
    assert!(plain.is_plain() && plain.has_password() && !plain.is_loopback());
    assert_eq!(plain.host(), "mail.shop.co.za");
    let starttls = SmtpUrl::parse("smtp://user:secret@mail.shop.co.za:587?tls=required").unwrap();
    assert!(!starttls.is_plain());
    assert!(
        !SmtpUrl::parse("smtps://user:secret@mail.shop.co.za")
            .unwrap()
            .is_plain()
    );
    for local in [
        "smtp://u:p@127.0.0.1:25",
        "smtp://u:p@[::1]:25",
        "smtp://u:p@LOCALHOST",
    ] {
        assert!(SmtpUrl::parse(local).unwrap().is_loopback(), "{local}");
    }
    assert_eq!(SmtpUrl::parse("smtp://u:p@[::1]:25").unwrap().host(), "::1");
    assert!(!SmtpUrl::parse("smtp://host:25").unwrap().has_password());
}

/// An SMTP URL with its password, on a line whose quote is never closed.
const BROKEN_SMTP_LINE: &str = "smtp_url = \"smtp://mailer:Hunter2-Secret@smtp.mail.co.za:587\n";

#[test]
fn a_syntax_error_names_the_file_line_and_key_and_never_shows_the_line() {
    let text = format!("[server]\nlisten = \"127.0.0.1:0\"\n\n[email]\n{BROKEN_SMTP_LINE}");
    let error = load(&text).unwrap_err();
    assert!(!error.contains("Hunter2"), "{error}");
    assert!(!error.contains("mailer"), "{error}");
    assert!(error.contains("c.toml"), "{error}");
    assert!(error.contains("line 5"), "{error}");
    assert!(error.contains("email.smtp_url"), "{error}");
    // A value of the wrong kind for a secret: named by its key and kind, never shown.
    let error = load("[email]\nsmtp_url = 123456789\n").unwrap_err();
    assert!(error.contains("email.smtp_url"), "{error}");
    assert!(!error.contains("123456789"), "{error}");
    let error = load("[server]\nadmin_password = [\"Hunter2-Secret\"]\n").unwrap_err();
    assert!(error.contains("server.admin_password"), "{error}");
    assert!(!error.contains("Hunter2"), "{error}");
}

/// SIGHUP with a broken line holding the SMTP password: the reload is refused, `/healthz` (which
/// is public) says so with states and times only, and the log names the file, line and key but
/// never shows the line.
#[tokio::test]
async fn a_refused_reload_never_publishes_the_line_that_broke_it() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quicket-followup.toml");
    let good = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[database]\npath = {:?}\n\n[email]\noutbox_dir = {:?}\n",
        dir.path().join("data/db.sqlite"),
        dir.path().join("data/outbox"),
    );
    std::fs::write(&path, &good).unwrap();
    let log = dir.path().join("serve.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_quicket-followup"))
        .arg("--config")
        .arg(&path)
        .arg("serve")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().expect("serve exited").unwrap();
        if let Some(rest) = line.strip_prefix("Listening on ") {
            break rest.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    std::fs::write(&path, format!("{good}{BROKEN_SMTP_LINE}")).unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let client = reqwest::Client::new();
    let mut health = serde_json::Value::Null;
    for _ in 0..200 {
        let text = client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        health = serde_json::from_str(&text).unwrap();
        if health["settings"]["refused"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(health["settings"]["refused"], 1, "{health}");
    assert_eq!(health["settings"]["state"], "refused", "{health}");
    assert!(
        health["settings"]["last_refused_at"].is_string(),
        "{health}"
    );
    let body = health.to_string();
    for secret in ["Hunter2", "mailer", "smtp_url", "toml"] {
        assert!(!body.contains(secret), "/healthz shows {secret:?}: {body}");
    }
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert!(child.wait().unwrap().success());
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("refused"), "{log}");
    assert!(
        !log.contains("Hunter2"),
        "the log shows the password: {log}"
    );
    assert!(
        log.contains("quicket-followup.toml") && log.contains("line 9"),
        "{log}"
    );
    assert!(log.contains("email.smtp_url"), "{log}");
}

#[test]
fn a_duration_past_its_limit_is_refused_naming_the_key_and_the_limit() {
    for (text, key) in [
        (
            "[schedule]\ngive_up_after = \"1000000000000d\"\n",
            "schedule.give_up_after",
        ),
        (
            "[schedule]\nstop_before_event = \"400d\"\n",
            "schedule.stop_before_event",
        ),
        ("[schedule]\nmin_gap = \"100years\"\n", "schedule.min_gap"),
    ] {
        let error = load(text).unwrap_err();
        assert!(error.contains(key) && error.contains("366d"), "{error}");
    }
    let step = "[[reminders]]\nname = \"s\"\ntemplate = \"abandoned\"\nwhen = [\"eft_pending\"]\n";
    let error = load(&format!("{step}after = \"1000000000000d\"\n")).unwrap_err();
    assert!(
        error.contains("reminders[0].after") && error.contains("366d"),
        "{error}"
    );
    assert!(load("[schedule]\ngive_up_after = \"366d\"\n").is_ok());
}

/// The schedule editor saves through the same loader: a schedule file it would write with a
/// duration past its limit is refused the same way, naming the key, the limit and the file.
#[test]
fn the_schedule_editors_text_is_bounded_by_the_same_check() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("c.toml");
    let text = "[schedule]\nfile = \"schedule.toml\"\n";
    std::fs::write(&main, text).unwrap();
    std::fs::write(dir.path().join("schedule.toml"), "").unwrap();
    let error = Config::from_sources(
        Some(text),
        Some(&main),
        Some("[schedule]\ngive_up_after = \"1000000000000d\"\n"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("schedule.give_up_after") && error.contains("366d"),
        "{error}"
    );
    assert!(error.contains("schedule.toml"), "{error}");
}
