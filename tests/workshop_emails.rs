//! The workshop's safe save, through the library as the editor uses it: a saved template is the
//! next pass's email; a broken one is refused with its line and name and nothing written; a file
//! changed by hand since it was loaded is never overwritten (the difference is shown); hand edits
//! are noticed on reload; history is kept in backups and survives forget.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use common::TestApp;
use quicket_followup::config::{Config, SendWindow};
use quicket_followup::store::history::Via;
use quicket_followup::workshop::SaveError;
use quicket_followup::workshop::emails::{Draft, TemplateName};

/// A copy of the shipped templates, to edit.
pub fn copy_of_shipped() -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let path = entry.unwrap().path();
            let target = to.join(path.file_name().unwrap());
            if path.is_dir() {
                copy(&path, &target);
            } else {
                std::fs::copy(&path, &target).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(&common::templates_dir(), dir.path());
    dir
}

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

/// The subjects of the emails in the outbox.
fn subjects(app: &TestApp) -> Vec<String> {
    let outbox = app.dir.path().join("data/outbox");
    let Ok(entries) = std::fs::read_dir(&outbox) else {
        return Vec::new();
    };
    let mut subjects: Vec<String> = entries
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .filter_map(|eml| {
            eml.lines()
                .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
        })
        .collect();
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
