//! The workshop's safe save, through the library as the editor uses it: a saved template is the
//! next pass's email; a broken one is refused with its line and name and nothing written; a file
//! changed by hand since it was loaded is never overwritten (the difference is shown); hand edits
//! are noticed on reload; history is kept in backups and survives forget.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use common::{TestApp, no_redirects};
use quicket_followup::config::{Config, SendWindow};
use quicket_followup::store::history::Via;
use quicket_followup::workshop::SaveError;
use quicket_followup::workshop::emails::{Draft, TemplateName};

use common::copy_of_shipped_templates as copy_of_shipped;

/// Reminders go out on the first pass, at any hour, using the templates in `templates`.
fn at_once(templates: PathBuf) -> impl FnOnce(&mut Config) {
    move |c: &mut Config| {
        c.templates.dir = Some(templates);
        c.schedule.send_window = SendWindow::parse("").unwrap();
        c.schedule.dormant_after = Duration::ZERO;
        for step in &mut c.reminders {
            if step.after.is_some() {
                step.after = Some(Duration::ZERO);
            }
        }
    }
}

/// The subjects of the emails in the outbox, sorted.
fn subjects(app: &TestApp) -> Vec<String> {
    let mut subjects = common::outbox_subjects(app);
    subjects.sort();
    subjects
}

async fn abandoned_checkout(app: &TestApp, reference: &str) {
    let (status, answer) = app
        .post_hook(common::hook(reference, "checkout_started"))
        .await;
    assert_eq!(status, 200, "{answer}");
}

fn abandoned() -> TemplateName {
    TemplateName::parse("abandoned").unwrap()
}

#[tokio::test]
async fn a_saved_subject_is_the_next_emails_subject_and_is_kept_in_the_history() {
    let templates = copy_of_shipped();
    let app = TestApp::spawn_with(at_once(templates.path().to_path_buf())).await;
    let workshop = &app.service.workshop;
    let loaded = workshop.template(&abandoned()).await.unwrap();
    assert_eq!(loaded.used_by, vec!["abandoned-1".to_string()]);
    let before = loaded.parts[0].content.clone().unwrap();
    let draft = Draft {
        subject: "Your seats for {{ event.name }} are waiting".into(),
        html: loaded.parts[1].content.clone().unwrap(),
        text: loaded.parts[2].content.clone().unwrap(),
    };
    let versions = loaded.parts.clone().map(|p| p.version);
    let saved = workshop
        .save_template(&abandoned(), &draft, versions, "127.0.0.1".into())
        .await
        .unwrap();
    assert_eq!(saved.reload, Ok(()));
    assert_eq!(
        std::fs::read_to_string(templates.path().join("abandoned/subject.txt")).unwrap(),
        draft.subject
    );

    abandoned_checkout(&app, "REF-SAVED").await;
    let report = app
        .service
        .engine
        .run_pass(Utc::now(), false)
        .await
        .unwrap();
    assert_eq!(report.counts.sent, 1);
    assert_eq!(
        subjects(&app),
        vec!["Your seats for Jazz on the Lawn are waiting".to_string()]
    );

    let history = app.store().history(10).await.unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    let entry = &history[0];
    assert_eq!(entry.via, Via::Browser);
    assert_eq!(entry.client, "127.0.0.1");
    assert_eq!(entry.summary, "abandoned: subject changed");
    assert_eq!(entry.files.len(), 1, "only the part that changed");
    assert_eq!(entry.files[0].file, "templates/abandoned/subject.txt");
    assert_eq!(entry.files[0].previous.as_deref(), Some(before.as_str()));
}

#[tokio::test]
async fn a_misspelt_name_is_refused_with_its_line_and_nothing_is_written() {
    let templates = copy_of_shipped();
    let app = TestApp::spawn_with(at_once(templates.path().to_path_buf())).await;
    let workshop = &app.service.workshop;
    let loaded = workshop.template(&abandoned()).await.unwrap();
    let html_before = loaded.parts[1].content.clone().unwrap();
    let draft = Draft {
        subject: "A new subject".into(),
        html: format!("{html_before}\n<p>{{{{ buyer.frist_name }}}}</p>\n"),
        text: loaded.parts[2].content.clone().unwrap(),
    };
    let versions = loaded.parts.clone().map(|p| p.version);
    let error = workshop
        .save_template(&abandoned(), &draft, versions, "127.0.0.1".into())
        .await
        .unwrap_err();
    let SaveError::Invalid(why) = &error else {
        panic!("refused for another reason: {error}");
    };
    let line = html_before.lines().count() + 2;
    assert!(why.contains("`buyer.frist_name` is undefined"), "{why}");
    assert!(
        why.contains(&format!("abandoned/body.html, line {line}")),
        "{why}"
    );
    assert!(
        why.contains(&templates.path().display().to_string()) && !why.contains("stage"),
        "the real directory is named, not the staged copy: {why}"
    );
    assert_eq!(
        std::fs::read_to_string(templates.path().join("abandoned/body.html")).unwrap(),
        html_before
    );
    assert_ne!(
        std::fs::read_to_string(templates.path().join("abandoned/subject.txt")).unwrap(),
        "A new subject",
        "no part of a refused save is written"
    );
    assert!(app.store().history(10).await.unwrap().is_empty());
    // The service still sends with the running templates.
    abandoned_checkout(&app, "REF-REFUSED").await;
    let report = app
        .service
        .engine
        .run_pass(Utc::now(), false)
        .await
        .unwrap();
    assert_eq!(report.counts.sent, 1);
}

#[tokio::test]
async fn a_file_changed_since_it_was_loaded_is_never_overwritten_and_the_difference_is_shown() {
    let templates = copy_of_shipped();
    let app = TestApp::spawn_with(at_once(templates.path().to_path_buf())).await;
    let workshop = &app.service.workshop;
    let loaded = workshop.template(&abandoned()).await.unwrap();
    let subject = templates.path().join("abandoned/subject.txt");
    std::fs::write(&subject, "Changed by hand for {{ event.name }}\n").unwrap();
    let draft = Draft {
        subject: "Changed in the browser\n".into(),
        html: loaded.parts[1].content.clone().unwrap(),
        text: loaded.parts[2].content.clone().unwrap(),
    };
    let versions = loaded.parts.clone().map(|p| p.version);
    let error = workshop
        .save_template(&abandoned(), &draft, versions, "127.0.0.1".into())
        .await
        .unwrap_err();
    let SaveError::Conflict { file, diff } = &error else {
        panic!("refused for another reason: {error}");
    };
    assert_eq!(file, "templates/abandoned/subject.txt");
    assert!(
        diff.contains("-Changed by hand for {{ event.name }}")
            && diff.contains("+Changed in the browser"),
        "{diff}"
    );
    assert!(error.to_string().contains("changed since you opened it"));
    assert_eq!(
        std::fs::read_to_string(&subject).unwrap(),
        "Changed by hand for {{ event.name }}\n"
    );
}

#[tokio::test]
async fn a_hand_edit_after_a_browser_save_is_reloaded_and_recorded_as_changed_on_disk() {
    let templates = copy_of_shipped();
    let mut app = TestApp::spawn_with(at_once(templates.path().to_path_buf())).await;
    let loaded = app.service.workshop.template(&abandoned()).await.unwrap();
    let draft = Draft {
        subject: "Saved in the browser".into(),
        html: loaded.parts[1].content.clone().unwrap(),
        text: loaded.parts[2].content.clone().unwrap(),
    };
    let versions = loaded.parts.clone().map(|p| p.version);
    app.service
        .workshop
        .save_template(&abandoned(), &draft, versions, "127.0.0.1".into())
        .await
        .unwrap();
    // By hand, then the reload SIGHUP makes.
    std::fs::write(
        templates.path().join("abandoned/subject.txt"),
        "Edited by hand",
    )
    .unwrap();
    app.service.reload(None).await.unwrap();
    abandoned_checkout(&app, "REF-HAND").await;
    app.service
        .engine
        .run_pass(Utc::now(), false)
        .await
        .unwrap();
    assert_eq!(subjects(&app), vec!["Edited by hand".to_string()]);
    let history = app.store().history(10).await.unwrap();
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history[0].via, Via::File);
    assert_eq!(
        history[0].summary,
        "changed on disk: templates/abandoned/subject.txt"
    );
    assert_eq!(
        history[0].files[0].previous.as_deref(),
        Some("Saved in the browser")
    );
    assert_eq!(
        history[0].files[0].content.as_deref(),
        Some("Edited by hand")
    );
    // A second reload finds nothing new.
    app.service.reload(None).await.unwrap();
    assert_eq!(app.store().history(10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn the_history_is_in_a_backup_and_survives_forget() {
    let templates = copy_of_shipped();
    let app = TestApp::spawn_with(at_once(templates.path().to_path_buf())).await;
    let loaded = app.service.workshop.template(&abandoned()).await.unwrap();
    let draft = Draft {
        subject: "Kept in the history".into(),
        html: loaded.parts[1].content.clone().unwrap(),
        text: loaded.parts[2].content.clone().unwrap(),
    };
    let versions = loaded.parts.clone().map(|p| p.version);
    app.service
        .workshop
        .save_template(&abandoned(), &draft, versions, "127.0.0.1".into())
        .await
        .unwrap();
    abandoned_checkout(&app, "REF-FORGET").await;
    app.service
        .engine
        .run_pass(Utc::now(), false)
        .await
        .unwrap();
    app.store().forget("lerato@mail.co.za").await.unwrap();
    assert_eq!(app.store().history(10).await.unwrap().len(), 1);
    let backup = app.dir.path().join("backup.sqlite");
    app.store().backup(&backup).await.unwrap();
    let copy = rusqlite::Connection::open(&backup).unwrap();
    let subject: String = copy
        .query_row(
            "SELECT content FROM history_files WHERE file = 'templates/abandoned/subject.txt'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(subject, "Kept in the history");
}

// ----- through HTTP: the editor's routes, their door, and bad input ------------------------------

const PASSWORD: &str = "Kirstenbosch-Summer-2030";

fn with_password(templates: PathBuf) -> impl FnOnce(&mut Config) {
    move |c: &mut Config| {
        at_once(templates)(c);
        c.server.admin_password = PASSWORD.into();
    }
}

/// The value of the hidden field `name` in a page.
fn hidden(page: &str, name: &str) -> String {
    let start = page
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no field {name}"))
        + name.len()
        + 15;
    page[start..][..page[start..].find('"').unwrap()].to_string()
}

/// What the editor's form would post, as the page has it, with the subject replaced.
async fn editor_form(app: &TestApp, template: &str, subject: &str) -> Vec<(String, String)> {
    let page = app
        .client
        .get(format!("{}/admin/emails/{template}", app.base))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let loaded = app
        .service
        .workshop
        .template(&TemplateName::parse(template).unwrap())
        .await
        .unwrap();
    vec![
        ("subject".into(), subject.into()),
        (
            "html".into(),
            loaded.parts[1]
                .content
                .clone()
                .unwrap()
                .replace('\n', "\r\n"),
        ),
        ("text".into(), loaded.parts[2].content.clone().unwrap()),
        ("v_subject".into(), hidden(&page, "v_subject")),
        ("v_html".into(), hidden(&page, "v_html")),
        ("v_text".into(), hidden(&page, "v_text")),
        ("reference".into(), String::new()),
        ("test_email".into(), String::new()),
    ]
}

async fn post_form(
    app: &TestApp,
    path: &str,
    form: &[(String, String)],
) -> (u16, String, Option<String>) {
    let response = no_redirects()
        .post(format!("{}{path}", app.base))
        .basic_auth("admin", Some(PASSWORD))
        .header("origin", &app.base)
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string());
    (status, response.text().await.unwrap(), location)
}

#[tokio::test]
async fn the_editor_previews_unsaved_text_saves_it_and_restores_it_from_the_history() {
    let templates = copy_of_shipped();
    let app = TestApp::spawn_with(with_password(templates.path().to_path_buf())).await;
    let subject_file = templates.path().join("abandoned/subject.txt");
    let original = std::fs::read_to_string(&subject_file).unwrap();

    let response = app
        .client
        .get(format!("{}/admin/emails/abandoned", app.base))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let page = response.text().await.unwrap();
    assert!(page.contains("<textarea") && page.contains("abandoned-1"));
    assert!(page.contains("Your Jazz on the Lawn tickets are still waiting"));
    assert!(page.contains("<iframe sandbox=\"\""));

    // The live preview renders the unsaved text, and names a misspelt value with its line.
    let mut form = editor_form(&app, "abandoned", "Seats for {{ event.name }}").await;
    let preview = app
        .client
        .post(format!("{}/admin/emails/abandoned/preview", app.base))
        .basic_auth("admin", Some(PASSWORD))
        .header("origin", &app.base)
        .header("accept", "application/json")
        .form(&form)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let preview: serde_json::Value = serde_json::from_str(&preview).unwrap();
    assert_eq!(preview["subject"], "Seats for Jazz on the Lawn");
    assert_eq!(preview["subject_length"], 26);
    assert_eq!(preview["error"], "");
    assert!(
        preview["html"]
            .as_str()
            .unwrap()
            .contains("Jazz on the Lawn")
    );
    form[0].1 = "Seats for {{ event.nmae }}".into();
    let (status, page, _) = post_form(&app, "/admin/emails/abandoned/preview", &form).await;
    assert_eq!(status, 200, "the Preview button, without JavaScript");
    assert!(
        page.contains("abandoned/subject.txt, line 1") && page.contains("event.nmae"),
        "{page}"
    );
    // Save refuses it, and the file is unchanged.
    let (status, page, _) = post_form(&app, "/admin/emails/abandoned", &form).await;
    assert_eq!(status, 422);
    assert!(page.contains("Not saved") && page.contains("event.nmae"));
    assert!(
        page.contains("Seats for {{ event.nmae }}"),
        "the draft is kept"
    );
    assert_eq!(std::fs::read_to_string(&subject_file).unwrap(), original);

    // Save: the file holds the new subject, with the HTML's line ends as the file had them.
    form[0].1 = "Seats for {{ event.name }}".into();
    let (status, _, location) = post_form(&app, "/admin/emails/abandoned", &form).await;
    assert_eq!(status, 303);
    assert!(
        location
            .unwrap()
            .starts_with("/admin/emails/abandoned?notice=Saved")
    );
    assert_eq!(
        std::fs::read_to_string(&subject_file).unwrap(),
        "Seats for {{ event.name }}"
    );
    let html = std::fs::read_to_string(templates.path().join("abandoned/body.html")).unwrap();
    assert!(!html.contains('\r'));
    let history = app.store().history(10).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].files.len(), 1, "{:?}", history[0].files);

    // A second save of the page as it was loaded is a conflict now.
    form[0].1 = "Another subject".into();
    let (status, page, _) = post_form(&app, "/admin/emails/abandoned", &form).await;
    assert_eq!(status, 409);
    assert!(page.contains("changed since you opened it"), "{page}");
    assert!(
        page.contains("+Another subject"),
        "the difference is shown: {page}"
    );

    // Restore from the history: what was there before, checked and recorded.
    let page = app
        .client
        .get(format!("{}/admin/history", app.base))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("abandoned: subject changed"));
    assert!(page.contains("saved in the browser at 127.0.0.1"));
    let id = history[0].id;
    let versions = hidden(&page, "versions");
    let (status, _, location) = post_form(
        &app,
        &format!("/admin/history/{id}/restore"),
        &[("versions".to_string(), versions)],
    )
    .await;
    assert_eq!(status, 303);
    assert!(location.unwrap().contains("Restored"));
    assert_eq!(std::fs::read_to_string(&subject_file).unwrap(), original);
    abandoned_checkout(&app, "REF-RESTORED").await;
    app.service
        .engine
        .run_pass(Utc::now(), false)
        .await
        .unwrap();
    assert_eq!(
        subjects(&app),
        vec!["Your Jazz on the Lawn tickets are still waiting".to_string()]
    );
    assert_eq!(app.store().history(10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn bad_input_at_the_editor_is_refused_clearly_with_nothing_written_and_the_service_up() {
    let templates = copy_of_shipped();
    let app = TestApp::spawn_with(with_password(templates.path().to_path_buf())).await;
    let before = std::fs::read_to_string(templates.path().join("abandoned/subject.txt")).unwrap();
    let form = editor_form(&app, "abandoned", "Changed").await;
    let client = no_redirects();
    let url = format!("{}/admin/emails/abandoned", app.base);

    // 10 MB.
    let huge = vec![("subject".to_string(), "x".repeat(10 * 1024 * 1024))];
    let status = client
        .post(&url)
        .basic_auth("admin", Some(PASSWORD))
        .header("origin", &app.base)
        .form(&huge)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(413);
    assert_eq!(status, 413);

    // Names that could leave the templates directory, or are not template names.
    for name in [
        "..%2F..%2Fetc",
        "..",
        "Abandoned",
        "a.b",
        "%2E%2E",
        "render",
    ] {
        let (status, body, _) = post_form(&app, &format!("/admin/emails/{name}"), &form).await;
        assert!(
            status == 400 || status == 404 || status == 405,
            "{name}: {status} {body}"
        );
        let get = client
            .get(format!("{}/admin/emails/{name}/preview", app.base))
            .basic_auth("admin", Some(PASSWORD))
            .send()
            .await
            .unwrap();
        assert_ne!(get.status().as_u16(), 200, "{name}");
    }
    let (status, body, _) = post_form(&app, "/admin/emails/..%2Fabandoned", &form).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not a template name"), "{body}");

    // A field the form does not have.
    let mut unknown = form.clone();
    unknown.push(("path".into(), "/etc/passwd".into()));
    let (status, body, _) = post_form(&app, "/admin/emails/abandoned", &unknown).await;
    assert_eq!(status, 400);
    assert!(body.contains("unknown field `path`"), "{body}");
    // A version the page never wrote.
    let mut forged = form.clone();
    forged[3].1 = "../../x".into();
    let (status, _, _) = post_form(&app, "/admin/emails/abandoned", &forged).await;
    assert_eq!(status, 400);

    // Where the form says it comes from: nothing, another site, a cross-site fetch, and the
    // `Origin: null` a browser's form sends under `Referrer-Policy: no-referrer`, which only its
    // `Sec-Fetch-Site` can vouch for. Each is refused; without credentials it is 401.
    let base = app.base.as_str();
    for (headers, refused) in [
        (vec![], 403),
        (vec![("origin", "https://evil.example")], 403),
        (
            vec![("origin", base), ("sec-fetch-site", "cross-site")],
            403,
        ),
        (vec![("origin", "null")], 403),
        (
            vec![("origin", "null"), ("sec-fetch-site", "cross-site")],
            403,
        ),
    ] {
        let mut request = client.post(&url).basic_auth("admin", Some(PASSWORD));
        for (name, value) in &headers {
            request = request.header(*name, *value);
        }
        let status = request.form(&form).send().await.unwrap().status();
        assert_eq!(status.as_u16(), refused, "{headers:?}");
    }
    let anonymous = client.post(&url).header("origin", base).form(&form).send();
    assert_eq!(anonymous.await.unwrap().status().as_u16(), 401);

    // Nothing was written, nothing recorded, and the service answers.
    assert_eq!(
        std::fs::read_to_string(templates.path().join("abandoned/subject.txt")).unwrap(),
        before
    );
    assert!(app.store().history(10).await.unwrap().is_empty());
    let names: Vec<_> = std::fs::read_dir(templates.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| ["_shared", "abandoned", "eft_pending", "last_chance"].contains(&n.as_str())),
        "{names:?}"
    );
    let health = app
        .client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
}

#[tokio::test]
async fn a_copy_is_a_new_email_and_only_an_email_no_step_uses_can_be_deleted() {
    let templates = copy_of_shipped();
    let app = TestApp::spawn_with(with_password(templates.path().to_path_buf())).await;
    let copy = vec![("new_name".to_string(), "abandoned_short".to_string())];
    let (status, _, location) = post_form(&app, "/admin/emails/abandoned/copy", &copy).await;
    assert_eq!(status, 303);
    assert!(
        location
            .unwrap()
            .starts_with("/admin/emails/abandoned_short?notice=")
    );
    for file in ["subject.txt", "body.html", "body.txt"] {
        assert_eq!(
            std::fs::read(templates.path().join("abandoned_short").join(file)).unwrap(),
            std::fs::read(templates.path().join("abandoned").join(file)).unwrap()
        );
    }
    // Copying onto an existing name is refused.
    let (status, body, _) = post_form(&app, "/admin/emails/abandoned/copy", &copy).await;
    assert_eq!(status, 422);
    assert!(body.contains("exists already"));
    // The list shows it, used by no step.
    let list = app
        .client
        .get(format!("{}/admin/emails", app.base))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(list.contains("href=\"/admin/emails/abandoned_short\""));

    // A template a step uses cannot be deleted; the page says which step.
    let page = app
        .client
        .get(format!("{}/admin/emails/abandoned", app.base))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let versions = |page: &str| {
        ["v_subject", "v_html", "v_text"]
            .map(|f| (f.to_string(), hidden(page, f)))
            .to_vec()
    };
    let (status, body, _) =
        post_form(&app, "/admin/emails/abandoned/delete", &versions(&page)).await;
    assert_eq!(status, 422);
    assert!(body.contains("used by the step abandoned-1"), "{body}");
    assert!(templates.path().join("abandoned/subject.txt").is_file());

    let page = app
        .client
        .get(format!("{}/admin/emails/abandoned_short", app.base))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (status, _, location) = post_form(
        &app,
        "/admin/emails/abandoned_short/delete",
        &versions(&page),
    )
    .await;
    assert_eq!(status, 303, "{location:?}");
    assert!(!templates.path().join("abandoned_short").exists());
    let history = app.store().history(10).await.unwrap();
    assert_eq!(history[0].summary, "abandoned_short: deleted");
    assert_eq!(
        history[1].summary,
        "abandoned_short: new, a copy of abandoned"
    );
}

#[tokio::test]
async fn the_editors_script_and_style_are_served_by_the_binary() {
    let templates = copy_of_shipped();
    let app = TestApp::spawn_with(with_password(templates.path().to_path_buf())).await;
    for (file, kind) in [("editor.js", "text/javascript"), ("editor.css", "text/css")] {
        let response = app
            .client
            .get(format!("{}/admin/static/{file}", app.base))
            .basic_auth("admin", Some(PASSWORD))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
    }
    let missing = app
        .client
        .get(format!("{}/admin/static/..%2Fsecrets", app.base))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
}

/// `serve` as a child process started in `dir`, killed when dropped.
struct ServedIn {
    child: std::process::Child,
    base: String,
}

impl Drop for ServedIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_in(dir: &Path) -> ServedIn {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(common::binary())
        .current_dir(dir)
        .args(["--config", "quicket-followup.toml", "serve"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("serve exited before printing its address")
            .unwrap();
        if let Some(rest) = line.strip_prefix("Listening on ") {
            break rest.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    ServedIn { child, base }
}

async fn get_page(base: &str, path: &str) -> String {
    reqwest::Client::builder()
        .user_agent(common::BROWSER)
        .build()
        .unwrap()
        .get(format!("{base}{path}"))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The real binary in an empty directory, so the built-in emails are in use: the first save from
/// the browser writes the templates where the service then reads them; `check` passes on them; a
/// hand edit after the save is put in force by SIGHUP and shows up in the history.
#[tokio::test]
async fn the_first_save_with_the_built_in_emails_writes_files_that_check_passes_and_sighup_reads() {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(
        work.path().join("quicket-followup.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_password = \"{PASSWORD}\"\nwebhook_token = \"{}\"\n",
            common::TOKEN
        ),
    )
    .unwrap();
    let served = serve_in(work.path());
    let page = get_page(&served.base, "/admin/emails/abandoned").await;
    assert!(page.contains("The built-in emails are in use"), "{page}");
    assert_eq!(hidden(&page, "v_subject"), "absent");
    let built_in = |file: &str| {
        quicket_followup::builtin_templates::get(file)
            .unwrap()
            .to_string()
    };
    let form = [
        ("subject", "Seats for {{ event.name }}".to_string()),
        ("html", built_in("abandoned/body.html")),
        ("text", built_in("abandoned/body.txt")),
        ("v_subject", hidden(&page, "v_subject")),
        ("v_html", hidden(&page, "v_html")),
        ("v_text", hidden(&page, "v_text")),
        ("reference", String::new()),
        ("test_email", String::new()),
    ];
    let response = no_redirects()
        .post(format!("{}/admin/emails/abandoned", served.base))
        .basic_auth("admin", Some(PASSWORD))
        .header("origin", &served.base)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let dir = work.path().join("templates/emails");
    assert_eq!(
        std::fs::read_to_string(dir.join("abandoned/subject.txt")).unwrap(),
        "Seats for {{ event.name }}"
    );
    for (file, text) in quicket_followup::builtin_templates::FILES {
        if *file != "abandoned/subject.txt" {
            assert_eq!(
                &std::fs::read_to_string(dir.join(file)).unwrap(),
                text,
                "{file}"
            );
        }
    }
    let preview = get_page(&served.base, "/admin/emails?step=abandoned-1").await;
    assert!(preview.contains("Seats for Jazz on the Lawn"), "{preview}");

    // `check` reads the saved files and passes.
    let check = std::process::Command::new(common::binary())
        .current_dir(work.path())
        .args(["--config", "quicket-followup.toml", "check"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(out.contains("templates in templates/emails"), "{out}");

    // By hand, then SIGHUP: in force, and in the history as a change on disk.
    std::fs::write(
        dir.join("abandoned/subject.txt"),
        "Edited by hand for {{ event.name }}",
    )
    .unwrap();
    common::signal(&served.child, "HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let history = get_page(&served.base, "/admin/history").await;
        if history.contains("changed on disk: templates/abandoned/subject.txt") {
            assert!(history.contains("abandoned: subject changed"));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the hand edit was not recorded within 20 s: {history}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let preview = get_page(&served.base, "/admin/emails?step=abandoned-1").await;
    assert!(
        preview.contains("Edited by hand for Jazz on the Lawn"),
        "{preview}"
    );
    let overview = get_page(&served.base, "/admin").await;
    assert!(
        overview.contains("Files were changed by hand"),
        "{overview}"
    );
}

/// The simple mode's form as the page has it, with `changes` made.
async fn words_form(app: &TestApp, mode: &str, changes: &[(&str, &str)]) -> Vec<(String, String)> {
    let page = app
        .client
        .get(format!("{}/admin/emails/abandoned?mode={mode}", app.base))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let loaded = app.service.workshop.template(&abandoned()).await.unwrap();
    let words = loaded.saved_words().unwrap().unwrap();
    let mut form: Vec<(String, String)> = quicket_followup::templates::words::FIELDS
        .iter()
        .filter(|(k, ..)| *k != "payment")
        .map(|(k, ..)| (k.to_string(), words.get(k).to_string()))
        .collect();
    for (key, value) in changes {
        if let Some(slot) = form.iter_mut().find(|(k, _)| k == key) {
            slot.1 = value.to_string();
        } else {
            form.push((key.to_string(), value.to_string()));
        }
    }
    form.push(("details".into(), "tickets".into()));
    form.push(("mode".into(), "simple".into()));
    for v in ["v_words", "v_subject", "v_html", "v_text"] {
        form.push((v.into(), hidden(&page, v)));
    }
    form
}

/// Simple mode: the words are saved with the files made from them, and the next email says them;
/// a change made in code mode is never overwritten from simple mode, and "Back to simple" shows
/// the difference and replaces it only when asked.
#[tokio::test]
async fn words_saved_in_simple_mode_make_the_files_and_a_code_mode_change_is_not_overwritten() {
    let templates = common::copy_of_shipped_templates();
    let app = TestApp::spawn_with(with_password(templates.path().to_path_buf())).await;
    let form = words_form(
        &app,
        "",
        &[
            (
                "opening",
                "Hi [first name],\r\n\r\nYour seats for [event] are held.",
            ),
            ("button", "Finish my booking"),
        ],
    )
    .await;
    let (status, page, _) = post_form(&app, "/admin/emails/abandoned", &form).await;
    assert_eq!(status, 303, "{page}");
    let text = std::fs::read_to_string(templates.path().join("abandoned/body.txt")).unwrap();
    assert!(
        text.contains("Your seats for {{ event.name }} are held.")
            && text.contains("Finish my booking:"),
        "{text}"
    );
    let html = std::fs::read_to_string(templates.path().join("abandoned/body.html")).unwrap();
    assert!(
        html.contains("{% block button %}Finish my booking{% endblock %}"),
        "{html}"
    );
    abandoned_checkout(&app, "REF-W1").await;
    assert_eq!(
        app.service
            .engine
            .run_pass(chrono::Utc::now(), false)
            .await
            .unwrap()
            .counts
            .sent,
        1
    );

    // A misspelt detail is refused, naming the field and the detail meant; nothing written.
    let form = words_form(&app, "", &[("subject", "Seats for [evnt]")]).await;
    let (status, page, _) = post_form(&app, "/admin/emails/abandoned", &form).await;
    assert_eq!(status, 422);
    assert!(
        page.contains("Subject: [evnt] is not a detail an email knows. Did you mean [event]?"),
        "{page}"
    );

    // Code mode changes the subject by hand.
    let mut code = editor_form(&app, "abandoned", "Hand-made {{ event.name }}").await;
    code.push(("mode".into(), "code".into()));
    let (status, _, location) = post_form(&app, "/admin/emails/abandoned", &code).await;
    assert_eq!(status, 303);
    assert!(location.unwrap().contains("mode=code"));
    let (_, page, _) = get(&app, "/admin/emails/abandoned").await;
    assert!(
        page.contains("This email was changed in code mode"),
        "{page}"
    );
    // Simple mode does not overwrite it.
    let form = words_form(&app, "", &[("button", "Go")]).await;
    let (status, page, _) = post_form(&app, "/admin/emails/abandoned", &form).await;
    assert_eq!(status, 422);
    assert!(page.contains("changed in code mode"), "{page}");
    assert_eq!(
        std::fs::read_to_string(templates.path().join("abandoned/subject.txt")).unwrap(),
        "Hand-made {{ event.name }}"
    );
    // Back to simple: the difference, then the replacement when asked.
    let (_, page, _) = get(&app, "/admin/emails/abandoned?mode=back").await;
    assert!(
        page.contains("-Hand-made {{ event.name }}")
            && page.contains("+Your {{ event.name }} tickets are still waiting"),
        "{page}"
    );
    assert!(page.contains("Replace with the simple version"));
    let mut form = words_form(&app, "back", &[]).await;
    form.push(("replace".into(), "yes".into()));
    let (status, page, _) = post_form(&app, "/admin/emails/abandoned", &form).await;
    assert_eq!(status, 303, "{page}");
    assert_eq!(
        std::fs::read_to_string(templates.path().join("abandoned/subject.txt")).unwrap(),
        "Your {{ event.name }} tickets are still waiting"
    );
    let (_, page, _) = get(&app, "/admin/emails/abandoned").await;
    assert!(!page.contains("This email was changed in code mode"));
}

async fn get(app: &TestApp, path: &str) -> (u16, String, String) {
    let response = app
        .client
        .get(format!("{}{path}", app.base))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap(), String::new())
}

/// A shipped email written out before emails had words (no `words.toml`): simple mode starts from
/// the shipped words, says the files are not what they make, and replaces them only when asked.
#[tokio::test]
async fn an_email_written_before_words_existed_opens_in_simple_mode_without_being_overwritten() {
    let templates = common::copy_of_shipped_templates();
    std::fs::remove_file(templates.path().join("abandoned/words.toml")).unwrap();
    std::fs::write(
        templates.path().join("abandoned/subject.txt"),
        "Still keen? {{ event.name }}",
    )
    .unwrap();
    let app = TestApp::spawn_with(with_password(templates.path().to_path_buf())).await;
    let (status, page, _) = get(&app, "/admin/emails/abandoned").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("id=\"w-opening\"") && page.contains("This email was changed in code mode"),
        "{page}"
    );
    let form = words_form(&app, "", &[("button", "Go")]).await;
    let (status, _, _) = post_form(&app, "/admin/emails/abandoned", &form).await;
    assert_eq!(status, 422);
    assert!(!templates.path().join("abandoned/words.toml").exists());
    let mut form = words_form(&app, "back", &[]).await;
    form.push(("replace".into(), "yes".into()));
    let (status, page, _) = post_form(&app, "/admin/emails/abandoned", &form).await;
    assert_eq!(status, 303, "{page}");
    assert!(templates.path().join("abandoned/words.toml").is_file());
    assert_eq!(
        std::fs::read_to_string(templates.path().join("abandoned/subject.txt")).unwrap(),
        "Your {{ event.name }} tickets are still waiting"
    );
}
