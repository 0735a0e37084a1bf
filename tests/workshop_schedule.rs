//! The schedule workshop: the schedule file beside the main configuration, "What would this
//! send?" against what the passes then really send, and the editor at /admin/schedule.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap, helpers included

mod common;

use chrono::{DateTime, Duration, Utc};
use common::TestApp;
use quicket_followup::config::{ReminderStep, SendWindow};
use quicket_followup::domain::OrderState;
use quicket_followup::reminders::forecast::{self, CronPasses, Passes};
use serde_json::json;

fn hook(reference: &str, action: &str, email: &str, event_date: &str) -> String {
    json!({
        "reference": reference, "event_id": 456, "event_name": "Jazz on the Lawn",
        "amount": "450.00", "email": email, "event_date": event_date, "action": action,
        "tickets": [{"id": 1, "attendee_name": "Lerato Dlamini", "attendee_email": email,
                     "ticket_type": "VIP", "price": "450.00", "barcode": 0}]
    })
    .to_string()
}

fn local(t: DateTime<Utc>) -> String {
    t.with_timezone(&chrono_tz::Africa::Johannesburg)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

#[tokio::test]
async fn what_would_this_send_matches_what_the_passes_at_those_times_then_send() {
    let app = TestApp::spawn_with(|c| {
        c.schedule.scan = "0 0 * * * *".into(); // a pass every hour: 168 in the week
        c.experiment.holdout = quicket_followup::experiment::Share::parse("20%").unwrap();
        c.reminders.push(ReminderStep {
            name: "abandoned-2".into(),
            after: Some(std::time::Duration::from_secs(26 * 3600)),
            before_event: None,
            when: vec![OrderState::Started, OrderState::Cancelled],
            template: "abandoned".into(),
            variants: Vec::new(),
            arms: Vec::new(),
            even_if_sold_out: false,
            send_window: SendWindow::parse("07:00-21:00").unwrap(),
            paused: false,
            from: None,
            label: None,
        });
    })
    .await;
    let now = Utc::now();
    // Buyers in every state, events from two days to far ahead (so that last-chance falls due
    // in the week for some), a paid one and an unsendable address.
    let actions = [
        "checkout_started",
        "checkout_cancelled",
        "eft_pending",
        "checkout_started",
        "checkout_completed",
    ];
    for i in 0..30 {
        let action = actions[i % actions.len()];
        let event = local(now + Duration::hours(40 + 9 * i as i64));
        let email = if i == 7 {
            "someone@example.com".to_string()
        } else {
            format!("buyer{i}@mail.co.za")
        };
        let (status, answer) = app
            .post_hook(hook(&format!("R{i}"), action, &email, &event))
            .await;
        assert_eq!(status, 200, "{answer}");
    }
    let config = app.service.engine.settings().config.clone();
    let from = Utc::now();
    let report = forecast::what_would_send(
        &app.service.engine,
        app.store(),
        &config,
        from,
        forecast::week(),
    )
    .await
    .unwrap();
    assert_eq!(
        report.followed, 24,
        "the 6 paid buyer-events are not followed"
    );
    assert!(
        report.forecast.sends.len() >= 20,
        "a week of the default steps sends plenty: {:?}",
        report.forecast.sends
    );

    // The real passes at the same moments, sending (into the outbox).
    let passes = CronPasses::new(&config.schedule.scan, config.schedule.timezone).unwrap();
    let mut sent = Vec::new();
    let mut at = passes.next(from, false);
    let mut n = 0;
    while let Some(t) = at.filter(|t| *t < report.until) {
        let pass = app.service.engine.run_pass(t, false).await.unwrap();
        for line in pass.lines.iter().filter(|l| l.decision == "sent") {
            sent.push((t, line.step.clone().unwrap(), line.email.clone()));
        }
        n += 1;
        at = passes.next(t, false);
    }
    assert_eq!(n, report.forecast.passes);
    let forecast: Vec<(DateTime<Utc>, String, String)> = report
        .forecast
        .sends
        .iter()
        .map(|s| (s.at, s.step.clone(), s.email.clone()))
        .collect();
    let mut sent_sorted = sent.clone();
    sent_sorted.sort();
    let mut forecast_sorted = forecast.clone();
    forecast_sorted.sort();
    assert_eq!(forecast_sorted, sent_sorted);
    // And per day and step, as the page shows them.
    let days = report.days();
    assert_eq!(
        days.iter().map(|d| d.total).sum::<usize>(),
        sent.len(),
        "{days:?}"
    );
    let steps = report.forecast.per_step(&report.rules);
    for (i, step) in report.rules.steps.iter().enumerate() {
        assert_eq!(
            steps[i],
            sent.iter().filter(|(_, s, _)| *s == step.name).count(),
            "{}",
            step.name
        );
    }
    assert!(report.forecast.held_out > 0, "20% held out: some fall due");
}

// ----- the editor at /admin/schedule ----------------------------------------------------------

const PASSWORD: &str = "correct horse battery staple";

/// The hand-written schedule file the editor tests start from.
const SCHEDULE: &str = "# Our schedule, written by hand.\n[schedule]\nmin_gap = \"12h\"   # one a day is plenty\n\
    send_window = \"\"\n\n# The first nudge.\n[[reminders]]\nname = \"abandoned-1\"\nafter = \"1h\"  # soon after\n\
    when = [\"checkout_started\", \"checkout_cancelled\"]\ntemplate = \"abandoned\"\n";

/// A split layout in a temp dir: the main file (database, templates, password) and the schedule
/// file beside it; a service started from it, as `serve --config` does.
struct Workshop {
    app: TestApp,
    main: std::path::PathBuf,
    schedule: std::path::PathBuf,
}

async fn workshop() -> Workshop {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("quicket-followup.toml");
    let schedule = dir.path().join("schedule.toml");
    std::fs::write(
        &main,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nwebhook_token = \"{}\"\nadmin_password = \"{PASSWORD}\"\n\
             [database]\npath = {:?}\n[email]\noutbox_dir = {:?}\n[templates]\ndir = {:?}\n\
             [schedule]\nfile = \"schedule.toml\"\n",
            common::TOKEN,
            dir.path().join("data/followup.sqlite"),
            dir.path().join("data/outbox"),
            common::templates_dir(),
        ),
    )
    .unwrap();
    std::fs::write(&schedule, SCHEDULE).unwrap();
    let config = quicket_followup::config::Config::load(Some(&main)).unwrap();
    let service = quicket_followup::server::Service::start_from(config, Some(main.clone()), false)
        .await
        .unwrap();
    let base = format!("http://{}", service.addr);
    let app = TestApp {
        dir,
        service,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        base,
    };
    Workshop {
        app,
        main,
        schedule,
    }
}

impl Workshop {
    async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .app
            .client
            .get(format!("{}{path}", self.app.base))
            .basic_auth("admin", Some(PASSWORD))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn post(&self, path: &str, form: &[(String, String)]) -> (u16, String, String) {
        let r = self
            .app
            .client
            .post(format!("{}{path}", self.app.base))
            .basic_auth("admin", Some(PASSWORD))
            .header("origin", self.app.base.clone())
            .form(form)
            .send()
            .await
            .unwrap();
        let location = r
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_string())
            .unwrap_or_default();
        (r.status().as_u16(), location, r.text().await.unwrap())
    }

    /// The editor's form as the page shows it now, as name-value pairs a browser would post.
    async fn form(&self) -> Vec<(String, String)> {
        let (status, html) = self.get("/admin/schedule").await;
        assert_eq!(status, 200, "{html}");
        form_of(&html)
    }
}

/// The fields of the page's `<form id="schedule">`: text and hidden inputs, checked boxes, and
/// selected options (the little a browser would send; enough for the page this test reads).
fn form_of(html: &str) -> Vec<(String, String)> {
    let start = html.find("<form id=\"schedule\"").unwrap();
    let end = start + html[start..].find("</form>").unwrap();
    let form = &html[start..end];
    let attr = |tag: &str, name: &str| -> Option<String> {
        let key = format!(" {name}=\"");
        let at = tag.find(&key)? + key.len();
        let value = &tag[at..at + tag[at..].find('"')?];
        Some(
            value
                .replace("&quot;", "\"")
                .replace("&#x22;", "\"")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&#x27;", "'")
                .replace("&#39;", "'")
                .replace("&amp;", "&"),
        )
    };
    let mut pairs = Vec::new();
    let mut rest = form;
    while let Some(at) = rest.find('<') {
        rest = &rest[at..];
        let Some(close) = rest.find('>') else { break };
        let tag = &rest[..=close];
        if tag.starts_with("<input") {
            let kind = attr(tag, "type").unwrap_or_default();
            let checked = tag.contains(" checked");
            if let Some(name) = attr(tag, "name")
                && (kind != "checkbox" || checked)
            {
                pairs.push((name, attr(tag, "value").unwrap_or_default()));
            }
        } else if tag.starts_with("<select") {
            let name = attr(tag, "name").unwrap();
            let end = rest.find("</select>").unwrap();
            let options = &rest[..end];
            let selected = options
                .split("<option")
                .find(|o| o.contains(" selected"))
                .and_then(|o| attr(o, "value"))
                .unwrap();
            pairs.push((name, selected));
        }
        rest = &rest[close + 1..];
    }
    pairs
}

fn set(form: &mut Vec<(String, String)>, name: &str, value: &str) {
    match form.iter_mut().find(|(n, _)| n == name) {
        Some(pair) => pair.1 = value.to_string(),
        None => form.push((name.to_string(), value.to_string())),
    }
}

fn with_op(mut form: Vec<(String, String)>, op: &str) -> Vec<(String, String)> {
    form.push(("op".into(), op.into()));
    form
}

fn run_once(main: &std::path::Path, at: DateTime<Utc>) -> String {
    let (code, out, err) = common::run_cli(
        &[
            "--config",
            main.to_str().unwrap(),
            "run-once",
            "--dry-run",
            "--now",
            &at.to_rfc3339(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    out
}

#[tokio::test]
async fn a_step_added_in_the_browser_is_saved_keeping_the_comments_and_run_once_shows_it() {
    let w = workshop().await;
    let (status, answer) = w
        .app
        .post_hook(hook(
            "R1",
            "checkout_started",
            "lerato@mail.co.za",
            "2030-12-12 18:30",
        ))
        .await;
    assert_eq!(status, 200, "{answer}");
    // Add a row (a button: the form comes back with it, nothing saved yet).
    let (status, _, html) = w
        .post("/admin/schedule", &with_op(w.form().await, "add_step"))
        .await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(std::fs::read_to_string(&w.schedule).unwrap(), SCHEDULE);
    let mut form = form_of(&html);
    set(&mut form, "s1.name", "abandoned-2");
    set(&mut form, "s1.wait.n", "3");
    set(&mut form, "s1.wait.unit", "hours");
    // The plan and the dry run for the unsaved form.
    let (status, _, live) = w
        .post("/admin/schedule/preview", &with_op(form.clone(), "preview"))
        .await;
    assert_eq!(status, 200, "{live}");
    assert!(live.contains("abandoned-2: 3 hours after"), "{live}");
    assert!(
        live.contains("What would this send?") && live.contains("lerato@mail.co.za"),
        "{live}"
    );
    // Save: first what it will do, to confirm; nothing written yet.
    let (status, _, html) = w.post("/admin/schedule", &with_op(form, "save")).await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("id=\"confirm-save\"") && html.contains("Saving will email"),
        "{html}"
    );
    assert_eq!(std::fs::read_to_string(&w.schedule).unwrap(), SCHEDULE);
    // The confirmation's button saves.
    let form = form_of(&html);
    assert!(form.iter().any(|(n, _)| n == "confirmed"), "{form:?}");
    let (status, location, body) = w.post("/admin/schedule", &with_op(form, "save")).await;
    assert_eq!(status, 303, "{body}");
    assert!(location.contains("notice=Saved"), "{location}");
    let saved = std::fs::read_to_string(&w.schedule).unwrap();
    for kept in [
        "# Our schedule, written by hand.",
        "# one a day is plenty",
        "# The first nudge.",
        "# soon after",
    ] {
        assert!(saved.contains(kept), "{kept} lost:\n{saved}");
    }
    assert!(
        saved.contains("name = \"abandoned-2\"") && saved.contains("after = \"3h\""),
        "{saved}"
    );
    // In force at once (the save is a reload) ...
    assert_eq!(
        w.app.service.engine.settings().config.step_names(),
        ["abandoned-1", "abandoned-2"]
    );
    // ... the saved files pass check, and run-once --dry-run shows the new step.
    let (code, out, err) = common::run_cli(&["--config", w.main.to_str().unwrap(), "check"], &[]);
    assert!(
        out.contains("schedule ") && out.contains("schedule.toml: valid"),
        "{out}{err}"
    );
    assert!(!err.contains("error"), "{out}{err}");
    let _ = code;
    let out = run_once(&w.main, Utc::now() + Duration::hours(4));
    assert!(
        out.lines()
            .any(|l| l.contains("would send") && l.contains("abandoned-2")),
        "{out}"
    );
    // The history has it, with what changed.
    let history = w.app.store().history(10).await.unwrap();
    assert!(
        history
            .iter()
            .any(|c| c.summary == "schedule: step abandoned-2 added"),
        "{:?}",
        history.iter().map(|c| &c.summary).collect::<Vec<_>>()
    );
    // Restoring the schedule from before says first what it will do, like a save.
    let id = history
        .iter()
        .find(|c| c.summary == "schedule: step abandoned-2 added")
        .unwrap()
        .id;
    let (status, page) = w.get("/admin/history").await;
    assert_eq!(status, 200);
    let entry = &page[page.find(&format!("id=\"change-{id}\"")).unwrap()..];
    let key = "name=\"versions\" value=\"";
    let at = entry.find(key).unwrap() + key.len();
    let versions = entry[at..at + entry[at..].find('"').unwrap()].to_string();
    let saved_now = std::fs::read_to_string(&w.schedule).unwrap();
    let restore = format!("/admin/history/{id}/restore");
    let (status, _, html) = w
        .post(&restore, &[("versions".into(), versions.clone())])
        .await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("id=\"confirm-restore\"") && html.contains("Restoring will email"),
        "{html}"
    );
    assert_eq!(std::fs::read_to_string(&w.schedule).unwrap(), saved_now);
    let (status, _, body) = w
        .post(
            &restore,
            &[
                ("versions".into(), versions),
                ("confirmed".into(), "yes".into()),
            ],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    assert_eq!(std::fs::read_to_string(&w.schedule).unwrap(), SCHEDULE);
}

#[tokio::test]
async fn a_save_after_the_file_was_edited_by_hand_is_refused_with_the_difference() {
    let w = workshop().await;
    let mut form = w.form().await;
    set(&mut form, "min_gap.n", "6");
    set(&mut form, "min_gap.unit", "hours");
    let by_hand = SCHEDULE.replace("after = \"1h\"", "after = \"2h\"");
    std::fs::write(&w.schedule, &by_hand).unwrap();
    let (status, _, html) = w.post("/admin/schedule", &with_op(form, "save")).await;
    assert_eq!(status, 409, "{html}");
    assert!(html.contains("was changed since you opened it"), "{html}");
    let html = html.replace("&#34;", "\"").replace("&quot;", "\"");
    // The difference: the hand edit the save would undo, and the edit itself.
    assert!(
        html.contains("-after = \"2h\"") && html.contains("+after = \"1h\""),
        "the diff: {html}"
    );
    assert!(html.contains("+min_gap = \"6h\""), "the diff: {html}");
    assert_eq!(std::fs::read_to_string(&w.schedule).unwrap(), by_hand);
}

#[tokio::test]
async fn bad_input_is_refused_clearly_and_nothing_is_written() {
    let w = workshop().await;
    let form = w.form().await;
    let unchanged = || assert_eq!(std::fs::read_to_string(&w.schedule).unwrap(), SCHEDULE);
    // A bad duration, a state no step can be for, an unknown field: each named.
    // A delay that is not a number, negative, absurd, or with a line break: the error beside
    // the field, which is marked; never a parser's "(expected number at 0)".
    for wait in [
        "soonish",
        "-3",
        "99999999999999999999",
        "400",
        "1\r\n2",
        "1e9",
    ] {
        let mut bad = form.clone();
        set(&mut bad, "s0.wait.n", wait);
        set(&mut bad, "s0.wait.unit", "days");
        let (status, _, html) = w.post("/admin/schedule", &with_op(bad, "save")).await;
        assert_eq!(status, 422, "{wait:?}");
        assert!(
            html.contains("id=\"s0-wait-error\">step 1 (abandoned-1), delay: ")
                && html.contains("aria-invalid=\"true\" aria-describedby=\"s0-wait-error\""),
            "{wait:?}: {html}"
        );
        assert!(!html.contains("expected number"), "{html}");
        unchanged();
    }
    let mut bad = form.clone();
    set(&mut bad, "min_gap.n", "12 parsecs");
    let (status, _, html) = w.post("/admin/schedule", &with_op(bad, "save")).await;
    assert_eq!(status, 422);
    assert!(
        html.contains("id=\"f-min_gap-error\">At most one email per buyer and event within"),
        "{html}"
    );
    unchanged();
    // A unit the form does not offer.
    let mut bad = form.clone();
    set(&mut bad, "s0.wait.unit", "fortnights");
    let (status, _, body) = w.post("/admin/schedule", &with_op(bad, "save")).await;
    assert_eq!(status, 400);
    assert!(body.contains("fortnights"), "{body}");
    unchanged();
    let mut bad = form.clone();
    bad.push(("s0.state".into(), "checkout_paid".into()));
    let (status, _, body) = w.post("/admin/schedule", &with_op(bad, "save")).await;
    assert_eq!(status, 400);
    assert!(
        body.contains("checkout_paid") && body.contains("step 1"),
        "{body}"
    );
    unchanged();
    let mut bad = form.clone();
    bad.push(("server.admin_password".into(), "x".into()));
    let (status, _, body) = w.post("/admin/schedule", &with_op(bad, "save")).await;
    assert_eq!(status, 400);
    assert!(
        body.contains("unknown field server.admin_password"),
        "{body}"
    );
    unchanged();
    // A template that does not exist: refused by the same check a reload runs.
    let mut bad = form.clone();
    set(&mut bad, "s0.template", "no_such_email");
    let (status, _, html) = w.post("/admin/schedule", &with_op(bad, "save")).await;
    assert_eq!(status, 422);
    assert!(
        html.contains("id=\"s0-template-error\">step 1 (abandoned-1): there is no email called")
            && html.contains("no_such_email"),
        "{html}"
    );
    assert!(!html.contains("os error"), "{html}");
    unchanged();
    // A window of one's own with a line break, and a nonsense one: beside the field.
    for other in ["08:00-20:00\r\nsun 00:00-23:59", "whenever"] {
        let mut bad = form.clone();
        set(&mut bad, "s0.window.other", other);
        let (status, _, html) = w.post("/admin/schedule", &with_op(bad, "save")).await;
        assert_eq!(status, 422, "{other:?}");
        assert!(html.contains("id=\"s0-window-error\""), "{other:?}: {html}");
        unchanged();
    }
    // 10 MB: refused before it is read.
    let huge = "x".repeat(10 * 1024 * 1024);
    let r = w
        .app
        .client
        .post(format!("{}/admin/schedule", w.app.base))
        .basic_auth("admin", Some(PASSWORD))
        .header("origin", w.app.base.clone())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("min_gap={huge}"))
        .send()
        .await;
    if let Ok(r) = r {
        assert_eq!(r.status().as_u16(), 413);
    }
    unchanged();
    // Without an Origin (nor Sec-Fetch-Site): another site's form, refused.
    let r = w
        .app
        .client
        .post(format!("{}/admin/schedule", w.app.base))
        .basic_auth("admin", Some(PASSWORD))
        .form(&with_op(form.clone(), "save"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    unchanged();
    // And the service is still up.
    let (status, _) = w.get("/admin/schedule").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn without_a_schedule_file_the_editor_says_how_to_get_one_and_never_writes_the_main_file() {
    let app = TestApp::spawn_with(|c| c.server.admin_password = PASSWORD.into()).await;
    let client = reqwest::Client::new();
    let html = client
        .get(format!("{}/admin/schedule", app.base))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("file of its own") && html.contains("[schedule] file"),
        "{html}"
    );
    let form = form_of(&html);
    let r = client
        .post(format!("{}/admin/schedule", app.base))
        .basic_auth("admin", Some(PASSWORD))
        .header("origin", app.base.clone())
        .form(&with_op(form, "save"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let body = r.text().await.unwrap();
    assert!(body.contains("no schedule file is configured"), "{body}");
}

#[tokio::test]
async fn a_hook_whose_event_id_is_not_a_number_cannot_block_a_save() {
    let w = workshop().await;
    for (reference, event_id) in [("T1", json!("{{7*7}}")), ("T2", json!(1.5))] {
        let mut body: serde_json::Value = serde_json::from_str(&hook(
            reference,
            "checkout_started",
            "a@mail.co.za",
            "2030-12-12 18:30",
        ))
        .unwrap();
        body["event_id"] = event_id;
        let (status, answer) = w.app.post_hook(body.to_string()).await;
        assert_eq!(status, 200, "kept (Quicket sends a hook once): {answer}");
        let order = w.app.store().order(reference).await.unwrap().unwrap();
        assert_eq!(order.event_id, None, "{reference}: not an event id");
    }
    // What an older version kept, unchecked, is left out of the editor's rows.
    w.app
        .store()
        .write(|c| {
            c.execute(
                "UPDATE orders SET event_id = '{{7*7}}' WHERE reference = 'T1'",
                [],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let form = w.form().await;
    assert!(
        !form.iter().any(|(_, v)| v.contains("{{")),
        "no row for a stored id that is not one: {form:?}"
    );
    let (status, _, body) = w.post("/admin/schedule", &with_op(form, "save")).await;
    assert_eq!(status, 303, "{body}");
}

#[tokio::test]
async fn a_step_name_or_event_page_with_a_line_break_or_quote_is_refused() {
    let w = workshop().await;
    let form = w.form().await;
    for name in ["first\nsecond", "say \"hi\"", "tab\there"] {
        let mut bad = form.clone();
        set(&mut bad, "s0.name", name);
        let (status, _, html) = w.post("/admin/schedule", &with_op(bad, "save")).await;
        assert_eq!(status, 422, "{name:?}: {html}");
        assert!(html.contains("step 1: a step&#39;s name"), "{html}");
        assert_eq!(std::fs::read_to_string(&w.schedule).unwrap(), SCHEDULE);
    }
    let mut bad = with_op(form.clone(), "add_event");
    let (status, _, html) = w.post("/admin/schedule", &bad).await;
    assert_eq!(status, 200, "{html}");
    bad = form_of(&html);
    let row = bad
        .iter()
        .filter_map(|(n, _)| n.strip_suffix(".id").and_then(|n| n.strip_prefix('e')))
        .max()
        .unwrap()
        .to_string();
    set(&mut bad, &format!("e{row}.id"), "123");
    for url in [
        "https://www.quicket.co.za/events/1\n/",
        "https://x.co.za/\r\nSet-Cookie: a=b",
        "www.quicket.co.za/x",
    ] {
        set(&mut bad, &format!("e{row}.url"), url);
        let (status, _, html) = w
            .post("/admin/schedule", &with_op(bad.clone(), "save"))
            .await;
        assert_eq!(status, 422, "{url:?}: {html}");
        assert!(html.contains("event 123: the page"), "{html}");
        assert_eq!(std::fs::read_to_string(&w.schedule).unwrap(), SCHEDULE);
    }
    for id in ["{{7*7}}", "1.5"] {
        set(&mut bad, &format!("e{row}.id"), id);
        set(&mut bad, &format!("e{row}.url"), "");
        let (status, _, html) = w
            .post("/admin/schedule", &with_op(bad.clone(), "save"))
            .await;
        assert_eq!(status, 422, "{id:?}: {html}");
        assert!(html.contains("is not a Quicket event id"), "{html}");
    }
}
