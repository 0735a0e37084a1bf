//! The control group: held-out buyer-events go through every rule, are recorded as held out
//! where their email would leave, and never receive anything, through the real SMTP server,
//! across passes, a reload and restarts; held-out buyers who pay count in the control group.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap, helpers included

mod common;
#[path = "common/smtp.rs"]
mod smtp;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use quicket_followup::config::{Config, Transport};
use quicket_followup::server::Service;
use serde_json::json;
use smtp::SmtpServer;

/// Two steps an hour and a day after the checkout, sent at any hour.
const STEPS: &str = r#"
[schedule]
send_window = ""
min_gap = "1h"

[[reminders]]
name = "first"
after = "1h"
when = ["checkout_started", "checkout_cancelled"]
template = "abandoned"

[[reminders]]
name = "second"
after = "1d"
when = ["checkout_started", "checkout_cancelled"]
template = "last_chance"
"#;

fn config_text(dir: &std::path::Path, smtp: &SmtpServer, holdout: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nwebhook_token = \"{token}\"\n\n[database]\npath = {db:?}\n\n\
         [email]\ntransport = \"smtp\"\nsmtp_url = \"{url}\"\nmax_per_minute = 100000\n\n\
         [templates]\ndir = {templates:?}\n\n[experiment]\nholdout = \"{holdout}\"\n{STEPS}",
        token = common::TOKEN,
        db = dir.join("data/followup.sqlite"),
        url = smtp.url(),
        templates = common::templates_dir(),
    )
}

fn buyer(i: usize) -> String {
    format!("buyer{i}@mail.co.za")
}

fn hook(i: usize, action: &str) -> String {
    json!({"reference": format!("R{i}"), "event_id": 456, "event_name": "Jazz", "amount": "200.00",
           "email": buyer(i), "event_date": "2030-12-12 18:30", "action": action})
    .to_string()
}

/// The groups recorded in the database: address key -> held out.
async fn groups(service: &Service) -> BTreeMap<String, bool> {
    service
        .store
        .read(|conn| {
            let mut stmt = conn.prepare("SELECT email_key, held_out FROM experiment")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<BTreeMap<String, bool>, _>>()?;
            Ok(rows)
        })
        .await
        .unwrap()
}

fn recipients(smtp: &SmtpServer) -> Vec<String> {
    smtp.received()
        .into_iter()
        .flat_map(|m| m.to)
        .map(|to| to.trim_matches(['<', '>']).to_lowercase())
        .collect()
}

async fn start(path: &std::path::Path) -> Service {
    let config = Config::load(Some(path)).unwrap();
    Service::start_with(config, false).await.unwrap()
}

async fn post(service: &Service, body: String) {
    let url = format!("http://{}/webhooks/quicket/{}", service.addr, common::TOKEN);
    let (status, answer) = common::post(&reqwest::Client::new(), &url, body).await;
    assert_eq!(status, 200, "{answer}");
}

async fn pass(service: &Service, at: DateTime<Utc>) {
    service.engine.run_pass(at, false).await.unwrap();
}

#[tokio::test]
async fn four_hundred_buyer_events_at_half_holdout_never_email_the_held_out() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start();
    let path = dir.path().join("quicket-followup.toml");
    std::fs::write(&path, config_text(dir.path(), &smtp, "50%")).unwrap();
    let mut service = start(&path).await;
    let t0 = Utc::now();
    for i in 0..400 {
        post(&service, hook(i, "checkout_started")).await;
    }

    // Before the first step is due nothing is decided, in either group.
    pass(&service, t0 + Duration::minutes(30)).await;
    assert!(groups(&service).await.is_empty());
    assert!(smtp.received().is_empty());

    // The first step: each buyer-event is emailed or held out.
    pass(&service, t0 + Duration::minutes(61)).await;
    let first = groups(&service).await;
    assert_eq!(first.len(), 400);
    let held: BTreeSet<String> = first
        .iter()
        .filter(|(_, h)| **h)
        .map(|(k, _)| k.clone())
        .collect();
    // Binomial(400, 0.5): mean 200, sd 10; 150..=250 is five sd either way.
    assert!((150..=250).contains(&held.len()), "{} held out", held.len());
    let sent = recipients(&smtp);
    assert_eq!(sent.len(), 400 - held.len());
    assert!(sent.iter().all(|to| !held.contains(to)));

    // Half of each group pays; held-out buyers who pay count in the control group.
    for i in (0..400).step_by(2) {
        post(&service, hook(i, "checkout_completed")).await;
    }

    // A reload that shrinks the share changes nothing already decided.
    std::fs::write(&path, config_text(dir.path(), &smtp, "10%")).unwrap();
    service.reload(Some(&path)).await.unwrap();
    pass(&service, t0 + Duration::minutes(90)).await;
    assert_eq!(groups(&service).await, first);

    // A restart: the same groups, and the second step still goes only to the emailed.
    service.stop().await;
    let service = start(&path).await;
    assert_eq!(
        groups(&service).await,
        first,
        "the same groups after a restart"
    );
    pass(&service, t0 + Duration::hours(25)).await;
    pass(&service, t0 + Duration::hours(26)).await;
    let sent = recipients(&smtp);
    assert!(
        sent.iter().all(|to| !held.contains(to)),
        "a held-out buyer was emailed"
    );
    let unpaid_emailed = (0..400)
        .filter(|i| i % 2 == 1 && !held.contains(&buyer(*i)))
        .count();
    assert_eq!(sent.len(), 400 - held.len() + unpaid_emailed);

    // The export says why each held-out buyer-event got nothing.
    let held_rows = service
        .store
        .read(|conn| {
            Ok(conn.query_row(
                "SELECT count(*) FROM reminders WHERE status = 'skipped' AND reason = 'held out'",
                [],
                |r| r.get::<_, i64>(0),
            )?)
        })
        .await
        .unwrap();
    let unpaid_held = held.len()
        - (0..400)
            .filter(|i| i % 2 == 0 && held.contains(&buyer(*i)))
            .count();
    assert_eq!(held_rows as usize, held.len() + unpaid_held);

    // The figures: every group member that paid counts, in its own group.
    let stats = service
        .store
        .stats(Utc::now(), service.engine.settings().config.stats_rules())
        .await
        .unwrap();
    let x = stats.experiment.expect("an experiment");
    let paid_held = (0..400)
        .filter(|i| i % 2 == 0 && held.contains(&buyer(*i)))
        .count() as u64;
    assert_eq!(x.held_out.buyer_events, held.len() as u64);
    assert_eq!(x.held_out.purchases, paid_held);
    assert_eq!(x.held_out.revenue_cents, paid_held as i64 * 20_000);
    assert_eq!(x.emailed.buyer_events, 400 - held.len() as u64);
    assert_eq!(x.emailed.purchases, 200 - paid_held);
    let lift = x.lift.expect("both groups have buyers");
    assert!(
        lift.low_cents <= lift.revenue_cents && lift.revenue_cents <= lift.high_cents,
        "{lift:?}"
    );
    service.stop().await;

    // Another process (run-once, a restart of its own) says "held out" and still sends nothing.
    let before = smtp.received().len();
    let more = start(&path).await;
    for i in 400..420 {
        post(&more, hook(i, "checkout_started")).await;
    }
    more.stop().await;
    let at = (Utc::now() + Duration::hours(2)).to_rfc3339();
    let (code, out, err) = common::run_cli(
        &["--config", path.to_str().unwrap(), "run-once", "--now", &at],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let service = start(&path).await;
    let now_groups = groups(&service).await;
    let new_held: Vec<&String> = now_groups
        .iter()
        .filter(|(k, h)| **h && !first.contains_key(*k))
        .map(|(k, _)| k)
        .collect();
    for key in &new_held {
        assert!(
            out.lines().any(|l| l.starts_with("skipped")
                && l.contains(key.as_str())
                && l.ends_with("held out")),
            "{key} not said held out:\n{out}"
        );
    }
    let new_sent = &recipients(&smtp)[before..];
    assert_eq!(new_sent.len(), 20 - new_held.len());
    assert!(new_sent.iter().all(|to| !new_held.contains(&to)));
    service.stop().await;
}

#[tokio::test]
async fn stats_json_has_the_experiment_and_the_steps() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start();
    let path = dir.path().join("quicket-followup.toml");
    std::fs::write(&path, config_text(dir.path(), &smtp, "50%")).unwrap();
    let service = start(&path).await;
    let t0 = Utc::now();
    for i in 0..40 {
        post(&service, hook(i, "checkout_started")).await;
    }
    pass(&service, t0 + Duration::minutes(61)).await;
    // Five buyers of each group pay: no difference, and far too few to tell.
    let g = groups(&service).await;
    for held in [true, false] {
        let payers: Vec<usize> = (0..40).filter(|i| g[&buyer(*i)] == held).take(5).collect();
        for i in payers {
            post(&service, hook(i, "checkout_completed")).await;
        }
    }
    service.stop().await;
    let (code, out, err) = common::run_cli(
        &[
            "--config",
            path.to_str().unwrap(),
            "stats",
            "--format",
            "json",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let stats: serde_json::Value = serde_json::from_str(&out).unwrap();
    let x = &stats["experiment"];
    let (e, h) = (
        x["emailed"]["buyer_events"].as_u64().unwrap(),
        x["held_out"]["buyer_events"].as_u64().unwrap(),
    );
    assert_eq!(e + h, 40);
    assert_eq!(
        x["emailed"]["purchases"].as_u64().unwrap() + x["held_out"]["purchases"].as_u64().unwrap(),
        10
    );
    for key in ["revenue_cents", "low_cents", "high_cents"] {
        assert!(x["lift"][key].is_i64(), "{key}: {x}");
    }
    let step = &stats["steps"][0];
    assert_eq!(step["step"], "first");
    assert_eq!(step["template"], "abandoned");
    assert_eq!(step["sent"].as_u64().unwrap(), e);
    assert!(step["purchases"].is_u64() && step["revenue_cents"].is_i64());
    // The text says in words that 40 buyers are too few.
    let (code, out, _) = common::run_cli(&["--config", path.to_str().unwrap(), "stats"], &[]);
    assert_eq!(code, 0);
    assert!(out.starts_with("Too early to tell"), "{out}");
    assert!(
        out.contains(&format!("held out: {h} buyer-events")),
        "{out}"
    );
}

#[test]
fn a_bad_holdout_is_refused_naming_the_key() {
    for bad in ["60%", "ten", "-5%"] {
        let text = format!("[experiment]\nholdout = \"{bad}\"\n");
        let e = Config::from_toml(Some(&text), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("experiment.holdout"), "{e}");
    }
    let ok = Config::from_toml(Some("[experiment]\nholdout = \"12.5%\"\n"), None).unwrap();
    assert_eq!(ok.experiment.holdout.to_string(), "12.5%");
    let _ = Transport::Smtp;
}
