//! The organiser's email templates: the shipped ones, escaping, `check`, `preview`, `--send-test`
//! and reloading on SIGHUP.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap, helpers included

mod common;
use common::smtp;

use std::path::Path;
use std::time::Duration;

use common::{hook, run_cli, serve, signal, templates_dir, write_config};
use quicket_followup::config::Config;
use quicket_followup::templates::{Templates, sample_context};

fn shipped() -> Templates {
    Templates::load_dir(
        &templates_dir(),
        &Config::default().reminders,
        chrono_tz::Africa::Johannesburg,
    )
    .unwrap()
}

#[test]
fn every_shipped_template_renders_both_parts_with_both_links() {
    let templates = shipped();
    for name in ["abandoned", "eft_pending", "last_chance"] {
        let mut context = sample_context();
        context.links.event = "https://t.co.za/r/EVENT-TOKEN".into();
        context.links.unsubscribe = "https://t.co.za/unsubscribe/UNSUB-TOKEN".into();
        let email = templates.render(name, &context).unwrap();
        assert!(
            !email.subject.is_empty() && email.subject.chars().count() < 60,
            "{name}: {}",
            email.subject
        );
        for (part, body) in [("html", &email.html), ("text", &email.text)] {
            // HTML escapes '/' inside attributes; compare on the token.
            assert!(
                body.contains("EVENT-TOKEN"),
                "{name} {part} lacks the event link"
            );
            assert!(
                body.contains("UNSUB-TOKEN"),
                "{name} {part} lacks the unsubscribe link"
            );
            assert!(
                body.contains("Jazz on the Lawn"),
                "{name} {part} names the event"
            );
        }
        assert!(
            email
                .text
                .contains("https://t.co.za/unsubscribe/UNSUB-TOKEN"),
            "full URL in the text part"
        );
        assert!(email.html.starts_with("<!DOCTYPE html>"));
        assert!(!email.html.contains("<script"), "no scripts");
        assert!(!email.html.contains("<link"), "no external CSS");
    }
    let eft = templates.render("eft_pending", &sample_context()).unwrap();
    assert!(
        eft.text.contains("REF00987654"),
        "the EFT email gives the reference to quote"
    );
}

#[test]
fn hostile_names_are_escaped_in_html_and_harmless_in_the_subject() {
    let templates = shipped();
    let mut context = sample_context();
    context.event.name =
        "Jazz <script>alert('x')</script> \"Live\"\r\nBcc: victim@mail.co.za".into();
    context.buyer.first_name = "<img src=x onerror=alert(1)>".into();
    let email = templates.render("abandoned", &context).unwrap();
    assert!(
        !email.subject.contains('\r') && !email.subject.contains('\n'),
        "{:?}",
        email.subject
    );
    assert!(!email.html.contains("<script>alert"), "script escaped");
    assert!(email.html.contains("&lt;script&gt;"));
    assert!(!email.html.contains("<img src=x"));
    assert!(email.html.contains("&lt;img"));
}

#[test]
fn unicode_survives_in_subject_and_bodies() {
    let templates = shipped();
    let mut context = sample_context();
    context.event.name = "Café Ñandú — Jazz 🎷".into();
    context.buyer.first_name = "Zoë".into();
    let email = templates.render("abandoned", &context).unwrap();
    assert!(email.subject.contains("Café Ñandú — Jazz 🎷"));
    assert!(email.html.contains("Café Ñandú — Jazz 🎷") && email.text.contains("Zoë"));
}

/// A copy of the shipped templates (with their shared layout) in `dir`, to edit.
fn copy_templates(dir: &Path) -> std::path::PathBuf {
    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let path = entry.unwrap().path();
            let target = to.join(path.file_name().unwrap());
            if path.is_dir() {
                copy_dir(&path, &target);
            } else {
                std::fs::copy(&path, &target).unwrap();
            }
        }
    }
    let target = dir.join("emails");
    copy_dir(&templates_dir(), &target);
    target
}

fn config_with_templates(dir: &Path, templates: &Path, extra: &str) -> std::path::PathBuf {
    // write_config points at the shipped templates; a later [templates] would be a duplicate table.
    let path = write_config(dir, extra);
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replace(
        &format!("dir = {:?}", templates_dir()),
        &format!("dir = {templates:?}"),
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_misspelt_variable_fails_check_with_its_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let templates = copy_templates(dir.path());
    std::fs::write(
        templates.join("abandoned/body.txt"),
        "Hi {{ buyer.first_name }},\n\n{{ event.nmae }}\n",
    )
    .unwrap();
    let config = config_with_templates(dir.path(), &templates, "");
    let (code, out, err) = run_cli(&["--config", config.to_str().unwrap(), "check"], &[]);
    assert_eq!(code, 1, "{out}");
    let all = format!("{out}{err}");
    assert!(all.contains("nmae"), "{all}");
    assert!(
        all.contains("abandoned/body.txt") && all.contains("line 3"),
        "{all}"
    );
    // In words, with the nearest value that exists.
    assert!(
        all.contains(
            "the email mentions `event.nmae`, which does not exist. Did you mean `event.name` \
             (the event's name)?"
        ),
        "{all}"
    );
}

#[test]
fn check_prints_the_plan_and_passes_on_a_good_setup() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let (code, out, err) = run_cli(&["--config", config.to_str().unwrap(), "check"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("abandoned-1: 1 hour after the buyer's checkout was started or cancelled"),
        "{out}"
    );
    assert!(
        out.contains("last-chance: 3 days before the event"),
        "{out}"
    );
    // The default in Africa/Johannesburg: South Africa's Consumer Protection Act, in its words.
    assert!(
        out.contains(
            "emails go out Monday to Friday 08:00-20:00 and Saturdays 09:00-13:00, never on \
             Sundays or public holidays (South Africa's Consumer Protection Act)"
        ),
        "{out}"
    );
}

#[test]
fn check_warns_about_setups_that_look_wrong() {
    let mut config = Config::default();
    config.email.transport = quicket_followup::config::Transport::Smtp;
    config.email.smtp_url = "smtp://user:secret@mail.shop.co.za:25".into();
    config.templates.dir = Some(templates_dir());
    let warnings = quicket_followup::check::warnings(&config);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("unencrypted") && w.contains("mail.shop.co.za")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("public_url")),
        "{warnings:?}"
    );
    // Encrypted, to a real public address: nothing to say.
    config.email.smtp_url = "smtps://user:secret@mail.shop.co.za:465".into();
    config.server.public_url = "https://tickets.shop.co.za".into();
    assert!(quicket_followup::check::warnings(&config).is_empty());
    // A step naming a missing template.
    config.reminders[0].template = "missing".into();
    assert!(
        quicket_followup::check::warnings(&config)
            .iter()
            .any(|w| w.contains("missing"))
    );
}

#[test]
fn preview_renders_a_step_for_sample_data_or_a_stored_order() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let config = config.to_str().unwrap();
    let (code, out, _) = run_cli(&["--config", config, "preview", "eft-1", "--text"], &[]);
    assert_eq!(code, 0);
    assert!(out.starts_with("Subject: "), "{out}");
    assert!(out.contains("REF00987654"));
    let (code, out, _) = run_cli(&["--config", config, "preview", "abandoned-1"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("<!DOCTYPE html>"));
    let (code, _, err) = run_cli(
        &[
            "--config",
            config,
            "preview",
            "abandoned-1",
            "--reference",
            "NOPE",
        ],
        &[],
    );
    assert_eq!(code, 1);
    assert!(err.contains("NOPE"), "{err}");
    let (code, _, err) = run_cli(&["--config", config, "preview", "no-such-step"], &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("abandoned-1"),
        "the error lists the steps: {err}"
    );
}

#[test]
fn check_send_test_delivers_one_email_per_step_to_a_real_smtp_server() {
    let server = smtp::SmtpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[email]\n",
        &format!(
            "[email]\ntransport = \"smtp\"\nsmtp_url = {:?}\n",
            server.url()
        ),
    );
    std::fs::write(&config, text).unwrap();
    let (code, out, err) = run_cli(
        &[
            "--config",
            config.to_str().unwrap(),
            "check",
            "--send-test",
            "organiser@shop.co.za",
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    let mail = server.received();
    assert_eq!(mail.len(), 3, "one per step");
    assert!(mail.iter().all(|m| m.to == ["organiser@shop.co.za"]));
    assert!(
        mail.iter()
            .all(|m| m.header("Subject").unwrap().starts_with("[test] "))
    );
    let ids: std::collections::BTreeSet<String> = mail
        .iter()
        .map(|m| m.header("Message-ID").unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
}

/// `serve` from a copy of the shipped templates in `dir`, with one step sent a second after a
/// checkout, passes every second and no window: an email comes out at once. Returns the copy.
fn serve_with_own_templates(dir: &Path) -> (std::path::PathBuf, common::Served) {
    let templates = copy_templates(dir);
    let config = config_with_templates(
        dir,
        &templates,
        "[schedule]\nscan = \"* * * * * *\"\nsend_window = \"\"\ndormant_after = \"1s\"\n\n\
         [[reminders]]\nname = \"quick\"\nafter = \"1s\"\nwhen = [\"checkout_started\"]\ntemplate = \"abandoned\"\n",
    );
    (
        templates,
        serve(
            &config,
            &[("QUICKET_FOLLOWUP_ADMIN_PASSWORD", ADMIN_PASSWORD)],
        ),
    )
}

/// The admin password `serve_with_own_templates` sets.
const ADMIN_PASSWORD: &str = "correct horse battery";

/// Why the latest reload was refused, as `/admin` says (`/healthz`, which is public, does not).
async fn refused_because(client: &reqwest::Client, base: &str) -> String {
    let page = client
        .get(format!("{base}/admin"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let page = page
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let start = page
        .find("The last reload was refused")
        .unwrap_or_else(|| panic!("no refused reload on /admin: {page}"));
    page[start..].split('<').next().unwrap().to_string()
}

async fn health(client: &reqwest::Client, base: &str) -> serde_json::Value {
    common::get_json(client, &format!("{base}/healthz")).await
}

/// Waits (bounded) until /healthz shows `reloads` successful reloads or a refused one.
async fn wait_for_reload(
    client: &reqwest::Client,
    base: &str,
    reloads: u64,
    refused: bool,
) -> serde_json::Value {
    for _ in 0..100 {
        let h = health(client, base).await;
        let s = &h["settings"];
        if s["reloads"] == reloads && ((s["state"] == "refused") == refused) {
            return h;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the reload did not happen");
}

/// Waits (bounded) for the outbox to hold `n` emails; returns their subjects.
async fn wait_for_emails(outbox: &Path, n: usize) -> Vec<String> {
    for _ in 0..100 {
        let mut subjects: Vec<String> = std::fs::read_dir(outbox)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                    .map(|e| {
                        let eml = std::fs::read_to_string(e.path()).unwrap();
                        smtp::Received {
                            to: vec![],
                            data: eml,
                        }
                        .header("Subject")
                        .unwrap()
                    })
                    .collect()
            })
            .unwrap_or_default();
        if subjects.len() >= n {
            subjects.sort();
            return subjects;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fewer than {n} emails in the outbox");
}

#[tokio::test]
async fn sighup_with_a_good_template_changes_the_next_email_and_with_a_broken_one_changes_nothing()
{
    let dir = tempfile::tempdir().unwrap();
    let (templates, mut served) = serve_with_own_templates(dir.path());
    let client = reqwest::Client::new();
    let outbox = dir.path().join("data/outbox");

    std::fs::write(
        templates.join("abandoned/subject.txt"),
        "New subject for {{ event.name }}",
    )
    .unwrap();
    signal(&served.child, "HUP");
    wait_for_reload(&client, &served.base, 1, false).await;
    let mut body: serde_json::Value = hook("REF-A", "checkout_started").json();
    body["email"] = "a@mail.co.za".into();
    common::post(&client, &served.webhook_url, body.to_string()).await;
    assert_eq!(
        wait_for_emails(&outbox, 1).await,
        ["New subject for Jazz on the Lawn"]
    );

    std::fs::write(
        templates.join("abandoned/subject.txt"),
        "Broken {{ event.nmae }}",
    )
    .unwrap();
    signal(&served.child, "HUP");
    let h = wait_for_reload(&client, &served.base, 1, true).await;
    assert!(h["settings"]["last_refused_at"].is_string(), "{h}");
    assert!(
        !h.to_string().contains("nmae"),
        "/healthz shows states only: {h}"
    );
    let error = refused_because(&client, &served.base).await;
    assert!(error.contains("nmae"), "{error}");
    body["reference"] = "REF-B".into();
    body["email"] = "b@mail.co.za".into();
    common::post(&client, &served.webhook_url, body.to_string()).await;
    let subjects = wait_for_emails(&outbox, 2).await;
    assert_eq!(
        subjects,
        [
            "New subject for Jazz on the Lawn",
            "New subject for Jazz on the Lawn"
        ]
    );

    signal(&served.child, "TERM");
    assert!(served.child.wait().unwrap().success());
}

/// Each way an organiser can break a template, as (file, text appended to it, what the error
/// names). Appended to copies of the shipped files, so includes, blocks and `{% if %}` are there;
/// a text starting with `=` replaces `{{ order.amount }}` instead, one starting with `-` is removed.
const BROKEN: &[(&str, &str, &str)] = &[
    (
        "abandoned/body.txt",
        "{{ '2026-12-12 18:30'|date('%Q %') }}",
        "\"%Q %\" is not a date format",
    ),
    (
        "abandoned/body.html",
        "={{ order.tickets|money }}",
        "money:",
    ),
    (
        "abandoned/body.txt",
        "{% for i in range(10**9) %}x{% endfor %}",
        "range has too many elements",
    ),
    (
        "abandoned/body.txt",
        "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",
        "ran out of fuel",
    ),
    (
        "abandoned/body.txt",
        "{{ order.refrence }}",
        "`order.refrence` is undefined",
    ),
    (
        "_shared/footer.txt",
        "{{ links.unsub }}",
        "`links.unsub` is undefined",
    ),
    ("abandoned/subject.txt", " {% if %}", "syntax error"),
    // The law: an opt-out in every part, and a subject.
    (
        "abandoned/body.txt",
        "-{% include \"_shared/footer.txt\" %}",
        "the unsubscribe link is missing: the Consumer Protection Act and POPIA require",
    ),
    (
        "abandoned/subject.txt",
        "-Your {{ event.name }} tickets are still waiting",
        "the subject is empty",
    ),
];

fn broken(text: &str, change: &str) -> String {
    if let Some(gone) = change.strip_prefix('-') {
        assert!(text.contains(gone), "{gone}");
        return text.replace(gone, "");
    }
    match change.strip_prefix('=') {
        Some(with) => {
            assert!(text.contains("{{ order.amount }}"));
            text.replace("{{ order.amount }}", with)
        }
        None => format!("{text}{change}\n"),
    }
}

#[test]
fn check_names_each_kind_of_broken_template_and_exits_1() {
    for (file, append, needle) in BROKEN {
        let dir = tempfile::tempdir().unwrap();
        let templates = copy_templates(dir.path());
        let path = templates.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, broken(&text, append)).unwrap();
        let config = config_with_templates(dir.path(), &templates, "");
        let (code, out, err) = run_cli(&["--config", config.to_str().unwrap(), "check"], &[]);
        assert_eq!(code, 1, "{append}: {out}{err}");
        let all = format!("{out}{err}");
        assert!(
            all.contains(needle) && all.contains(file),
            "{append}: {all}"
        );
    }
}

#[tokio::test]
async fn sighup_with_each_kind_of_broken_template_keeps_the_service_and_the_running_version() {
    let dir = tempfile::tempdir().unwrap();
    let (templates, mut served) = serve_with_own_templates(dir.path());
    let client = reqwest::Client::new();
    let outbox = dir.path().join("data/outbox");
    for (i, (file, append, needle)) in BROKEN.iter().enumerate() {
        let path = templates.join(file);
        let original = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, broken(&original, append)).unwrap();
        signal(&served.child, "HUP");
        let mut refused = None;
        for _ in 0..200 {
            let h = health(&client, &served.base).await;
            if h["settings"]["refused"] == i as u64 + 1 {
                refused = Some(h);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let h = refused.unwrap_or_else(|| panic!("{append}: the reload was not refused"));
        assert_eq!(h["settings"]["state"], "refused", "{h}");
        let error = refused_because(&client, &served.base).await;
        assert!(error.contains(needle), "{append}: {error}");
        assert_eq!(h["settings"]["reloads"], 0);
        let status = client
            .get(format!("{}/healthz", served.base))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "{append}");
        if i + 1 < BROKEN.len() {
            std::fs::write(&path, original).unwrap();
        }
    }
    // The last broken file is still in place: the next email uses the version loaded at start.
    let mut body: serde_json::Value = hook("REF-A", "checkout_started").json();
    body["email"] = "a@mail.co.za".into();
    common::post(&client, &served.webhook_url, body.to_string()).await;
    assert_eq!(
        wait_for_emails(&outbox, 1).await,
        ["Your Jazz on the Lawn tickets are still waiting"]
    );
    assert!(
        served.child.try_wait().unwrap().is_none(),
        "serve is still running"
    );
    signal(&served.child, "TERM");
    assert!(served.child.wait().unwrap().success());
}

#[test]
fn check_warns_about_a_misspelt_detail_in_an_emails_words_with_the_editors_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let templates = copy_templates(dir.path());
    let words = templates.join("abandoned/words.toml");
    let text = std::fs::read_to_string(&words).unwrap();
    std::fs::write(
        &words,
        text.replace("Your [event] tickets", "Your [evnt] tickets"),
    )
    .unwrap();
    let config = config_with_templates(dir.path(), &templates, "");
    let (code, out, err) = run_cli(&["--config", config.to_str().unwrap(), "check"], &[]);
    assert_eq!(code, 0, "the files send as they are: {out}{err}");
    assert!(
        out.contains("abandoned/words.toml: Subject: [evnt] is not a detail an email knows. Did you mean [event]?"),
        "{out}"
    );
}
