//! The control group: held-out buyer-events go through every rule, are recorded as held out
//! where their email would leave, and never receive anything, through the real SMTP server,
//! across passes, a reload and restarts; held-out buyers who pay count in the control group.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap, helpers included

mod common;
use common::smtp;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use common::Hook;
use quicket_followup::config::{Config, Transport};
use quicket_followup::server::Service;

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

/// Buyer `i`'s checkout (reference `R{i}`) for "Jazz", R200.
fn hook(i: usize, action: &str) -> Hook {
    common::hook(&format!("R{i}"), action)
        .email(&buyer(i))
        .event_name("Jazz")
        .amount("200.00")
        .no_tickets()
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

async fn post(service: &Service, body: Hook) {
    common::post_ok(
        &reqwest::Client::new(),
        &common::hook_url(service.addr),
        body,
    )
    .await;
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
                && l.contains(": held out")),
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

/// One step with two variants, nobody held out.
fn variants_config(dir: &std::path::Path, smtp: &SmtpServer) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nwebhook_token = \"{token}\"\n\n[database]\npath = {db:?}\n\n\
         [email]\ntransport = \"smtp\"\nsmtp_url = \"{url}\"\nmax_per_minute = 100000\n\n\
         [templates]\ndir = {templates:?}\n\n[schedule]\nsend_window = \"\"\ndormant_after = \"0s\"\n\n\
         [[reminders]]\nname = \"first\"\nafter = \"0s\"\nwhen = [\"checkout_started\"]\n\
         variants = [\"abandoned\", \"last_chance\"]\n",
        token = common::TOKEN,
        db = dir.join("data/followup.sqlite"),
        url = smtp.url(),
        templates = common::templates_dir(),
    )
}

#[tokio::test]
async fn variants_split_evenly_and_each_buyer_gets_only_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start();
    let path = dir.path().join("quicket-followup.toml");
    std::fs::write(&path, variants_config(dir.path(), &smtp)).unwrap();
    let service = start(&path).await;
    for i in 0..200 {
        post(&service, hook(i, "checkout_started")).await;
    }
    pass(&service, Utc::now()).await;
    let chosen: BTreeMap<String, String> = service
        .store
        .read(|conn| {
            let mut stmt =
                conn.prepare("SELECT email_key, template FROM reminders WHERE status = 'sent'")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<BTreeMap<String, String>, _>>()?;
            Ok(rows)
        })
        .await
        .unwrap();
    assert_eq!(chosen.len(), 200);
    let short = chosen.values().filter(|t| *t == "last_chance").count();
    // Binomial(200, 0.5): mean 100, sd 7.1; 65..=135 is five sd either way.
    assert!(
        (65..=135).contains(&short),
        "{short} of 200 got last_chance"
    );
    // Each buyer got the subject of its own variant, and only that email.
    let received = smtp.received();
    assert_eq!(received.len(), 200);
    for m in &received {
        let to = m.to[0].trim_matches(['<', '>']).to_lowercase();
        let subject = m.header("Subject").unwrap();
        let expected = match chosen[&to].as_str() {
            "abandoned" => "Your Jazz tickets are still waiting",
            _ => "There's still time for Jazz",
        };
        assert_eq!(subject, expected, "{to}");
    }
    // The same variant on every computation (a resend after a crash would use it too).
    for (key, template) in &chosen {
        let step = &service.engine.settings().config.reminders[0];
        assert_eq!(&service.engine.template_for(step, key, "456"), template);
    }
    // Per variant figures: sent, and purchases after it.
    for i in 0..20 {
        post(&service, hook(i, "checkout_completed")).await;
    }
    let stats = service
        .store
        .stats(Utc::now(), service.engine.settings().config.stats_rules())
        .await
        .unwrap();
    assert_eq!(stats.steps.len(), 2, "{:?}", stats.steps);
    assert_eq!(stats.steps.iter().map(|s| s.sent).sum::<u64>(), 200);
    assert_eq!(stats.steps.iter().map(|s| s.purchases).sum::<u64>(), 20);
    let last = stats
        .steps
        .iter()
        .find(|s| s.template == "last_chance")
        .unwrap();
    assert_eq!(last.sent as usize, short);
    assert!(!last.better || last.rate > 0.0);
    service.stop().await;
}

#[test]
fn a_step_with_both_template_and_variants_is_refused() {
    let text = "[[reminders]]\nname = \"a\"\nafter = \"1h\"\nwhen = [\"checkout_started\"]\ntemplate = \"abandoned\"\nvariants = [\"abandoned\", \"last_chance\"]\n";
    let e = Config::from_toml(Some(text), None).unwrap_err().to_string();
    assert!(e.contains("reminders[0].variants"), "{e}");
    let text = "[[reminders]]\nname = \"a\"\nafter = \"1h\"\nwhen = [\"checkout_started\"]\nvariants = [\"abandoned\", \"abandoned\"]\n";
    let e = Config::from_toml(Some(text), None).unwrap_err().to_string();
    assert!(e.contains("twice"), "{e}");
}

/// Steps sent as soon as a pass sees a checkout, at any hour.
fn target(email: &str) -> quicket_followup::links::LinkTarget {
    quicket_followup::links::LinkTarget {
        email_key: email.into(),
        event_id: "456".into(),
        step: "abandoned-1".into(),
    }
}

#[tokio::test]
async fn link_scanners_are_recorded_and_redirected_but_never_counted_as_clicks() {
    // The delivery rule is tried separately below: here the clicks come long after it.
    let app = common::TestApp::spawn_with(|c| {
        common::send_at_once(c);
        c.experiment.scanner_after_delivery = std::time::Duration::ZERO;
        c.experiment.scanner_links_within = std::time::Duration::from_secs(10);
    })
    .await;
    let buyers = ["head", "mimecast", "both", "person"].map(|b| format!("{b}@mail.co.za"));
    for (i, b) in buyers.iter().enumerate() {
        let body = common::hook(&format!("S{i}"), "checkout_started")
            .email(b)
            .event_name("Jazz");
        app.post_ok(body.amount("100.00").no_tickets()).await;
    }
    let report = app.pass_at(Utc::now()).await;
    assert_eq!(report.counts.sent, 4);
    let client = common::no_redirects();
    let links = |b: &str| {
        let engine = app.service.engine.clone();
        let t = target(b);
        async move { engine.issue_links(&t, None, Utc::now()).await.unwrap() }
    };
    // A HEAD request: redirected all the same.
    let l = links(&buyers[0]).await;
    let r = client.head(&l.event).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 302);
    assert!(r.headers().get("location").is_some());
    // A scanner's user agent.
    let l = links(&buyers[1]).await;
    let r = client
        .get(&l.event)
        .header("user-agent", "Mimecast URL Protect (compatible)")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 302);
    // Both links of one email within a second, by what says it is a browser.
    let l = links(&buyers[2]).await;
    assert_eq!(
        client.get(&l.event).send().await.unwrap().status().as_u16(),
        302
    );
    assert_eq!(
        client
            .get(&l.unsubscribe)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    // A person.
    let l = links(&buyers[3]).await;
    assert_eq!(
        client.get(&l.event).send().await.unwrap().status().as_u16(),
        302
    );

    let marks = app
        .store()
        .read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT email_key, link, coalesce(scanner, 'person') FROM clicks ORDER BY id",
            )?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(format!(
                        "{} {} {}",
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?
                    ))
                })?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(rows)
        })
        .await
        .unwrap();
    assert_eq!(
        marks,
        [
            "head@mail.co.za event HEAD request",
            "mimecast@mail.co.za event scanner user agent",
            "both@mail.co.za event every link of the email within seconds",
            "both@mail.co.za unsubscribe every link of the email within seconds",
            "person@mail.co.za event person",
        ],
        "every fetch recorded, the scanners marked"
    );
    // Everyone pays: only the person counts as "after clicking", and as clicked for the step.
    for (i, b) in buyers.iter().enumerate() {
        let body = common::hook(&format!("S{i}"), "checkout_completed")
            .email(b)
            .event_name("Jazz");
        app.post_ok(body.amount("100.00").no_tickets()).await;
    }
    let stats = app
        .store()
        .stats(
            Utc::now(),
            app.service.engine.settings().config.stats_rules(),
        )
        .await
        .unwrap();
    assert_eq!(stats.recovered.total.purchases, 4);
    assert_eq!(
        stats.recovered.clicked.purchases, 1,
        "only the person clicked"
    );
    assert_eq!(stats.steps[0].sent, 4);
    assert_eq!(stats.steps[0].clicked, 1);
    // The buyer's timeline says which fetch was a scanner.
    let (code, out, err) = app.cli(&["stats"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("sent 4, clicked 1"), "{out}");
}

#[tokio::test]
async fn a_click_within_seconds_of_delivery_is_a_scanner() {
    let app = common::TestApp::spawn_with(|c| {
        common::send_at_once(c);
        c.experiment.scanner_after_delivery = std::time::Duration::from_secs(20);
    })
    .await;
    let body = common::hook("D1", "checkout_started")
        .email("fast@mail.co.za")
        .event_name("Jazz");
    app.post_ok(body.amount("100.00").no_tickets()).await;
    app.pass_at(Utc::now()).await;
    let l = app
        .service
        .engine
        .issue_links(&target("fast@mail.co.za"), None, Utc::now())
        .await
        .unwrap();
    let client = common::no_redirects();
    assert_eq!(
        client.get(&l.event).send().await.unwrap().status().as_u16(),
        302
    );
    let scanner: Option<String> = app
        .store()
        .read(|conn| Ok(conn.query_row("SELECT scanner FROM clicks", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(scanner.as_deref(), Some("within seconds of delivery"));
}

/// A held-out buyer reads as the control group wherever it appears: the pass's lines (the real
/// one, `run-once`, the dry run), Orders and the timeline. Its next step waits exactly like the
/// emailed buyers' (the held-out step counts toward `min_gap`), but it is never "due", "deferred"
/// or told that "an email went out".
#[tokio::test]
async fn a_held_out_buyer_reads_as_the_control_group_everywhere() {
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let password = "Held-out-but-not-forgotten";
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nwebhook_token = \"{token}\"\nadmin_password = \"{password}\"\n\n\
         [database]\npath = {db:?}\n\n\
         [email]\ntransport = \"smtp\"\nsmtp_url = \"{url}\"\nmax_per_minute = 100000\n\n\
         [templates]\ndir = {templates:?}\n\n[experiment]\nholdout = \"50%\"\n\n\
         [schedule]\nsend_window = \"\"\nmin_gap = \"12h\"\n\n\
         [[reminders]]\nname = \"first\"\nafter = \"1h\"\nwhen = [\"checkout_started\"]\ntemplate = \"abandoned\"\n\n\
         [[reminders]]\nname = \"second\"\nafter = \"3h\"\nwhen = [\"checkout_started\"]\ntemplate = \"last_chance\"\n",
        token = common::TOKEN,
        db = dir.path().join("data/followup.sqlite"),
        url = smtp.url(),
        templates = common::templates_dir(),
    );
    let path = dir.path().join("quicket-followup.toml");
    std::fs::write(&path, text).unwrap();
    let service = start(&path).await;
    for i in 0..20 {
        post(&service, hook(i, "checkout_started")).await;
    }
    let t0 = Utc::now();
    // The first step: sent or held out.
    pass(&service, t0 + Duration::hours(2)).await;
    let held: Vec<String> = groups(&service)
        .await
        .into_iter()
        .filter(|(_, h)| *h)
        .map(|(k, _)| k)
        .collect();
    assert!(!held.is_empty(), "20 buyers at 50%: some are held out");
    let emailed = smtp.received().len();
    assert_eq!(emailed, 20 - held.len());

    // The second step is due, but within 12 h of the first: both groups wait.
    let lines_at = |report: &quicket_followup::reminders::PassReport| {
        report
            .lines
            .iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
    };
    let later = t0 + Duration::hours(4);
    let dry = service.engine.run_pass(later, true).await.unwrap();
    let dry = lines_at(&dry);
    service.stop().await;
    let (code, out, err) = common::run_cli(
        &[
            "--config",
            path.to_str().unwrap(),
            "run-once",
            "--now",
            &later.to_rfc3339(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let run_once: Vec<String> = out.lines().map(String::from).collect();
    for (what, lines) in [("dry run", &dry), ("run-once", &run_once)] {
        for key in &held {
            let line = lines
                .iter()
                .find(|l| l.contains(key.as_str()))
                .unwrap_or_else(|| panic!("{what}: no line for {key}:\n{lines:#?}"));
            assert!(
                line.starts_with("skipped")
                    && line.contains("held out: in the control group: never emailed, on purpose"),
                "{what}: {line}"
            );
            for wrong in ["went out", "is due", "deferred", "waits"] {
                assert!(!line.contains(wrong), "{what} says {wrong:?}: {line}");
            }
        }
        // Never said of an emailed buyer.
        assert!(
            lines
                .iter()
                .filter(|l| l.contains("control group"))
                .all(|l| held.iter().any(|k| l.contains(k.as_str()))),
            "{what}:\n{lines:#?}"
        );
    }
    assert_eq!(smtp.received().len(), emailed, "nothing more was sent");

    // Orders and the timeline say it in the organiser's words.
    let service = start(&path).await;
    let client = reqwest::Client::builder()
        .user_agent(common::BROWSER)
        .build()
        .unwrap();
    let get = |path: String| {
        let client = client.clone();
        let url = format!("http://{}{path}", service.addr);
        async move {
            let response = client
                .get(url)
                .basic_auth("admin", Some(password))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 200);
            response.text().await.unwrap()
        }
    };
    let orders = get("/admin/orders".into()).await;
    let key = &held[0];
    let row = orders
        .split("<tr")
        .find(|r| r.contains(key.as_str()))
        .unwrap_or_else(|| panic!("{key} not on Orders:\n{orders}"));
    assert!(
        row.contains("in the control group: never emailed, on purpose"),
        "{row}"
    );
    for wrong in ["Waiting", "is due", "went out"] {
        assert!(!row.contains(wrong), "Orders says {wrong:?}: {row}");
    }
    let timeline = get(format!("/admin/buyer?email={key}&event=456")).await;
    assert!(
        timeline.contains("in the control group: never emailed, on purpose"),
        "{timeline}"
    );
    for wrong in ["deferred", "is due", "went out", ": skipped"] {
        assert!(
            !timeline.contains(wrong),
            "the timeline says {wrong:?}:\n{timeline}"
        );
    }
    service.stop().await;
}

/// One step with two timing arms, an hour and a day after the checkout, and a control group.
fn timing_config(dir: &std::path::Path, smtp: &SmtpServer, delays: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nwebhook_token = \"{token}\"\n\n[database]\npath = {db:?}\n\n\
         [email]\ntransport = \"smtp\"\nsmtp_url = \"{url}\"\nmax_per_minute = 100000\n\n\
         [templates]\ndir = {templates:?}\n\n[experiment]\nholdout = \"20%\"\n\n\
         [schedule]\nsend_window = \"\"\nmin_gap = \"1h\"\n\n\
         [[reminders]]\nname = \"first\"\nafter = {delays}\nwhen = [\"checkout_started\", \"checkout_cancelled\"]\ntemplate = \"abandoned\"\n",
        token = common::TOKEN,
        db = dir.join("data/followup.sqlite"),
        url = smtp.url(),
        templates = common::templates_dir(),
    )
}

/// The arms recorded: address key -> (delays, arm).
async fn arms(service: &Service) -> BTreeMap<String, (String, i64)> {
    service
        .store
        .read(|conn| {
            let mut stmt = conn.prepare("SELECT email_key, arms, arm FROM timing_arms")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?
                .collect::<Result<BTreeMap<String, (String, i64)>, _>>()?;
            Ok(rows)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn timing_arms_each_get_the_step_at_their_own_delay_and_the_control_group_gets_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start();
    let path = dir.path().join("quicket-followup.toml");
    std::fs::write(&path, timing_config(dir.path(), &smtp, r#"["1h", "1d"]"#)).unwrap();
    let service = start(&path).await;
    let t0 = Utc::now();
    let n = 300;
    for i in 0..n {
        post(&service, hook(i, "checkout_started")).await;
    }

    // The earliest arm's time: every buyer-event not held out gets its arm; only the 1h arm is
    // emailed now.
    pass(&service, t0 + Duration::minutes(61)).await;
    let given = arms(&service).await;
    let held: BTreeSet<String> = groups(&service)
        .await
        .into_iter()
        .filter(|(_, h)| *h)
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        given.len() + held.len(),
        n,
        "every buyer-event has an arm or is held out"
    );
    assert!(given.keys().all(|k| !held.contains(k)));
    assert!(given.values().all(|(delays, _)| delays == "1h, 1d"));
    let early: BTreeSet<String> = given
        .iter()
        .filter(|(_, (_, arm))| *arm == 0)
        .map(|(k, _)| k.clone())
        .collect();
    // Binomial(about 240, 0.5): sd under 8; 80 either way is ten sd.
    let late_count = given.len() - early.len();
    assert!(
        early.len().abs_diff(late_count) <= 80,
        "{} against {late_count}",
        early.len()
    );
    let first_round: BTreeSet<String> = recipients(&smtp).into_iter().collect();
    assert_eq!(first_round, early, "exactly the 1h arm is emailed at +1h");

    // Half of everyone pays, in every group, before the day is out.
    for i in (0..n).step_by(2) {
        post(&service, hook(i, "checkout_completed")).await;
    }

    // A restart keeps every arm; then the 1d arm falls due: its unpaid buyers are emailed, once.
    service.stop().await;
    let service = start(&path).await;
    assert_eq!(arms(&service).await, given, "the same arms after a restart");
    pass(&service, t0 + Duration::hours(12)).await;
    assert_eq!(
        recipients(&smtp).len(),
        early.len(),
        "nothing between the arms' times"
    );
    pass(&service, t0 + Duration::hours(25)).await;
    pass(&service, t0 + Duration::hours(26)).await;
    let all = recipients(&smtp);
    let late: Vec<&String> = all.iter().skip(early.len()).collect();
    let unpaid_late: BTreeSet<String> = (0..n)
        .filter(|i| i % 2 == 1)
        .map(buyer)
        .filter(|b| given.get(b).is_some_and(|(_, arm)| *arm == 1))
        .collect();
    assert_eq!(late.len(), unpaid_late.len(), "each unpaid 1d buyer once");
    assert!(late.iter().all(|to| unpaid_late.contains(*to)));
    assert!(
        all.iter().all(|to| !held.contains(to)),
        "the control group got nothing"
    );

    // The figures: both arms, with everyone who paid in its own arm, before or after its email.
    let stats = service
        .store
        .stats(
            t0 + Duration::hours(27),
            service.engine.settings().config.stats_rules(),
        )
        .await
        .unwrap();
    let json = serde_json::to_value(&stats).unwrap();
    let timing = &json["timing"][0];
    assert_eq!(timing["step"], "first");
    assert_eq!(timing["delays"], "1h, 1d");
    assert!(
        timing["method"]
            .as_str()
            .unwrap()
            .contains("confidence sequence")
    );
    let paid = |arm: i64| {
        given
            .iter()
            .filter(|(k, (_, a))| {
                *a == arm
                    && k.trim_start_matches("buyer")
                        .trim_end_matches("@mail.co.za")
                        .parse::<usize>()
                        .unwrap()
                        % 2
                        == 0
            })
            .count() as u64
    };
    for (i, delay) in ["1h", "1d"].into_iter().enumerate() {
        let arm = &timing["arms"][i];
        assert_eq!(arm["delay"], delay);
        let size = given.values().filter(|(_, a)| *a == i as i64).count() as u64;
        assert_eq!(arm["buyer_events"], size);
        assert_eq!(arm["purchases"], paid(i as i64));
        assert_eq!(arm["revenue_cents"], paid(i as i64) * 20_000);
    }
    // Same true rate in both arms (half paid): no winner is declared.
    let rate = &timing["comparisons"][0]["rate"];
    assert!(rate.is_null() || rate["decided"] == false, "{rate}");
    let words = quicket_followup::present::stats_in_words(&stats);
    assert!(words.contains("timing experiment on first"), "{words}");
    assert!(words.contains("1d arm:"), "{words}");
    assert!(words.contains("too early to tell"), "{words}");
}

#[tokio::test]
async fn a_new_list_of_delays_is_a_new_experiment() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start();
    let path = dir.path().join("quicket-followup.toml");
    std::fs::write(&path, timing_config(dir.path(), &smtp, r#"["1h", "1d"]"#)).unwrap();
    let mut service = start(&path).await;
    let t0 = Utc::now();
    for i in 0..40 {
        post(&service, hook(i, "checkout_started")).await;
    }
    pass(&service, t0 + Duration::minutes(61)).await;
    let before = arms(&service).await;
    assert!(!before.is_empty());

    // Three arms now: buyer-events that arrive from here are drawn among them; those given an
    // arm of the old list keep it on record, under the old list.
    std::fs::write(
        &path,
        timing_config(dir.path(), &smtp, r#"["1h", "6h", "1d"]"#),
    )
    .unwrap();
    service.reload(Some(&path)).await.unwrap();
    for i in 100..140 {
        post(&service, hook(i, "checkout_started")).await;
    }
    pass(&service, t0 + Duration::minutes(122)).await;
    // Every arm recorded, under its own list: (address, delays) -> arm.
    let all = service
        .store
        .read(|conn| {
            let mut stmt = conn.prepare("SELECT email_key, arms, arm FROM timing_arms")?;
            let rows = stmt
                .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))?
                .collect::<Result<BTreeMap<(String, String), i64>, _>>()?;
            Ok(rows)
        })
        .await
        .unwrap();
    for (k, (delays, arm)) in &before {
        assert_eq!(
            all.get(&(k.clone(), delays.clone())),
            Some(arm),
            "an arm once given is kept"
        );
    }
    let new: Vec<i64> = all
        .iter()
        .filter(|((_, delays), _)| delays == "1h, 6h, 1d")
        .map(|(_, arm)| *arm)
        .collect();
    assert!(
        new.len() >= 20,
        "the buyers who arrived since are drawn among three arms"
    );
    assert!(new.iter().all(|arm| (0..3).contains(arm)));
    let stats = service
        .store
        .stats(
            t0 + Duration::hours(3),
            service.engine.settings().config.stats_rules(),
        )
        .await
        .unwrap();
    let lists: Vec<&str> = stats.timing.iter().map(|t| t.delays.as_str()).collect();
    assert_eq!(lists, ["1h, 1d", "1h, 6h, 1d"]);
}

#[test]
fn a_timing_experiment_with_one_delay_twice_or_five_arms_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start();
    for delays in [
        r#"["1h", "1h"]"#,
        r#"["1h", "2h", "3h", "4h", "5h"]"#,
        r#"["1h", "400d"]"#,
        r#"["1h", "soon"]"#,
    ] {
        let path = dir.path().join("quicket-followup.toml");
        std::fs::write(&path, timing_config(dir.path(), &smtp, delays)).unwrap();
        let e = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(
            e.contains("reminders[0].after") || e.contains("reminders.0.after"),
            "{delays}: {e}"
        );
    }
}

#[tokio::test]
async fn keep_the_winner_ends_the_experiment_through_the_schedule_file_and_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start();
    let path = dir.path().join("quicket-followup.toml");
    let password = "a long enough password";
    let main = timing_config(dir.path(), &smtp, r#"["1h", "1d"]"#);
    let (main, steps) = main.split_at(main.find("[schedule]").unwrap());
    let main = main.replace(
        "[server]\n",
        &format!("[server]\nadmin_password = \"{password}\"\n"),
    );
    std::fs::write(dir.path().join("schedule.toml"), steps).unwrap();
    std::fs::write(
        &path,
        format!("{main}\n[schedule]\nfile = \"schedule.toml\"\n"),
    )
    .unwrap();
    let config = Config::load(Some(&path)).unwrap();
    let service = Service::start_from(config, Some(path.clone()), false)
        .await
        .unwrap();
    let t0 = Utc::now();
    for i in 0..240 {
        post(&service, hook(i, "checkout_started")).await;
    }
    pass(&service, t0 + Duration::minutes(61)).await;
    // Everyone of the 1d arm buys, nobody of the 1h arm: a difference no chance makes.
    let given = arms(&service).await;
    for i in 0..240 {
        if given.get(&buyer(i)).is_some_and(|(_, arm)| *arm == 1) {
            post(&service, hook(i, "checkout_completed")).await;
        }
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = format!("http://{}", service.addr);
    let page = client
        .get(format!("{base}/admin/timing"))
        .basic_auth("admin", Some(password))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Keep the 1d arm"), "{html}");
    assert!(!html.contains("Keep the 1h arm"), "{html}");
    let keep = |delay: &'static str| {
        client
            .post(format!("{base}/admin/timing/keep"))
            .basic_auth("admin", Some(password))
            .header("sec-fetch-site", "same-origin")
            .form(&[("step", "first"), ("delays", "1h, 1d"), ("delay", delay)])
            .send()
    };
    // The loser cannot be kept: that would be choosing against the figures.
    let refused = keep("1h").await.unwrap();
    assert_eq!(refused.status(), 422);
    assert!(refused.text().await.unwrap().contains("Not kept"));
    let schedule = std::fs::read_to_string(dir.path().join("schedule.toml")).unwrap();
    assert!(schedule.contains(r#"["1h", "1d"]"#), "{schedule}");

    let kept = keep("1d").await.unwrap();
    let status = kept.status();
    let text = kept.text().await.unwrap();
    assert_eq!(
        status,
        303,
        "{}",
        &text[text.find("role=\"alert\"").unwrap_or(0)..][..600.min(text.len())]
    );
    let schedule = std::fs::read_to_string(dir.path().join("schedule.toml")).unwrap();
    assert!(schedule.contains("after = \"1d\""), "{schedule}");
    let step = &service.engine.settings().config.reminders[0];
    assert!(
        step.arms.is_empty(),
        "the running schedule has one delay now"
    );
    assert_eq!(step.after, Some(std::time::Duration::from_secs(86_400)));
    let history = service.store.history(1).await.unwrap();
    let line = &history[0].summary;
    assert!(
        line.contains("kept the 1d arm") && line.contains("bought"),
        "{line}"
    );
    let after = client
        .get(format!("{base}/admin/timing"))
        .basic_auth("admin", Some(password))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        after.contains("ended") && !after.contains("Keep the"),
        "{after}"
    );
}
