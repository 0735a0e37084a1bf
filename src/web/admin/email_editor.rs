//! `/admin/emails/{template}`: the email editor. The subject, HTML and text parts in plain
//! textareas beside a preview of the unsaved text (re-rendered as you type by `editor.js`, or by
//! the Preview button without it), against the sample data or a stored order; Save (through the
//! workshop: validated as a reload validates, conflict-checked, atomic, kept in the history),
//! Send me a test, Discard; a copy under a new name; deleting a template no step uses.

use std::net::SocketAddr;

use askama::Template;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use warp::Filter;
use warp::http::{StatusCode, header};
use warp::reply::{Reply, Response};

use super::{AppState, page as render_page, with_notice};
use crate::templates::Words;
use crate::templates::words::{DETAILS, Details, FIELDS as WORD_FIELDS};
use crate::web::ApiError;
use crate::workshop::emails::{Draft, Template as Loaded, TemplateName};
use crate::workshop::{SaveError, Saved, Version};

/// The largest editor form: three parts of an email (a few KiB each) with room to spare. A
/// bigger body is refused with 413 before it is read.
pub(super) const MAX_EDIT: u64 = 512 * 1024;

/// Names the routes beside `/admin/emails/{template}` already use.
const RESERVED: [&str; 2] = ["render", "test"];

/// The policy of the editor page: ours, plus our own script and the email's https images in the
/// sandboxed preview (a `srcdoc` frame takes the page's policy).
const EDITOR_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data: https:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// Who is asking: the connecting address and what a proxy says (read with the trusted proxies).
#[derive(Debug, Clone)]
pub(super) struct Peer {
    addr: Option<SocketAddr>,
    forwarded_for: Option<String>,
}

/// The [`Peer`] of a request.
pub(super) fn peer() -> impl Filter<Extract = (Peer,), Error = warp::Rejection> + Clone {
    crate::connections::remote()
        .and(crate::web::forwarded_for())
        .map(|addr, forwarded_for| Peer {
            addr,
            forwarded_for,
        })
}

/// The client as the history keeps it: its address (the last proxy hop's word when the
/// connection comes from a trusted proxy).
pub(super) fn client(state: &AppState, peer: &Peer) -> String {
    let config = state.engine.settings().config.clone();
    crate::proxies::client_ip(
        peer.addr.map(|a| a.ip()),
        peer.forwarded_for.as_deref(),
        &config.server.trusted_proxies,
    )
    .to_string()
}

/// A form body of at most [`MAX_EDIT`] bytes, read as `T`: an unknown field is refused, naming it.
pub(super) fn form<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_urlencoded::from_bytes(body)
        .map_err(|e| ApiError::BadRequest(format!("the form could not be read: {e}")))
}

/// The query of the editor.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct EditorQuery {
    notice: String,
    reference: String,
    /// `code` for the code mode, `back` for the way back to simple mode; else simple mode.
    mode: String,
}

/// The editor's form (every button of it posts all of it).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct EditorForm {
    subject: String,
    html: String,
    text: String,
    v_subject: String,
    v_html: String,
    v_text: String,
    reference: String,
    test_email: String,
    /// `code` (the only value this form sends).
    mode: String,
}

/// The simple mode's form: the words (every button of it posts all of it).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct WordsForm {
    subject: String,
    preview: String,
    heading: String,
    opening: String,
    payment: String,
    button: String,
    closing: String,
    signature: String,
    reason: String,
    no_first_name: String,
    details: String,
    v_words: String,
    v_subject: String,
    v_html: String,
    v_text: String,
    reference: String,
    test_email: String,
    /// `simple` (what tells this form from the code mode's).
    mode: String,
    /// `yes`: replace a code-mode version (Back to simple).
    replace: String,
}

impl WordsForm {
    fn words(&self) -> Words {
        let mut words = Words::empty();
        words.details = match self.details.as_str() {
            "tickets" => Details::Tickets,
            "payment" => Details::Payment,
            _ => Details::None,
        };
        for (key, ..) in WORD_FIELDS {
            words.set(key, self.get(key));
        }
        words
    }

    fn get(&self, key: &str) -> &str {
        match key {
            "subject" => &self.subject,
            "preview" => &self.preview,
            "heading" => &self.heading,
            "opening" => &self.opening,
            "payment" => &self.payment,
            "button" => &self.button,
            "closing" => &self.closing,
            "signature" => &self.signature,
            "reason" => &self.reason,
            "no_first_name" => &self.no_first_name,
            _ => "",
        }
    }

    fn of(words: &Words, loaded: &Loaded) -> WordsForm {
        WordsForm {
            subject: words.subject.clone(),
            preview: words.preview.clone(),
            heading: words.heading.clone(),
            opening: words.opening.clone(),
            payment: words.payment.clone(),
            button: words.button.clone(),
            closing: words.closing.clone(),
            signature: words.signature.clone(),
            reason: words.reason.clone(),
            no_first_name: words.no_first_name.clone(),
            details: match words.details {
                Details::Tickets => "tickets",
                Details::Payment => "payment",
                Details::None => "none",
            }
            .into(),
            v_words: loaded.words.version.to_string(),
            v_subject: loaded.parts[0].version.to_string(),
            v_html: loaded.parts[1].version.to_string(),
            v_text: loaded.parts[2].version.to_string(),
            mode: "simple".into(),
            ..WordsForm::default()
        }
    }

    fn versions(&self) -> Result<crate::workshop::emails::WordsVersions, ApiError> {
        let [s, h, t] = EditorForm {
            v_subject: self.v_subject.clone(),
            v_html: self.v_html.clone(),
            v_text: self.v_text.clone(),
            ..EditorForm::default()
        }
        .versions()?;
        let w = Version::parse(&self.v_words).ok_or_else(|| {
            ApiError::BadRequest(
                "the form's file versions are not ones this page writes: open the email again"
                    .into(),
            )
        })?;
        Ok([w, s, h, t])
    }
}

/// Whether a posted form is the simple mode's (it says `mode=simple`).
fn is_simple(body: &[u8]) -> bool {
    url::form_urlencoded::parse(body).any(|(k, v)| k == "mode" && v == "simple")
}

impl EditorForm {
    /// The parts as files hold them: a browser sends a textarea's line breaks as CRLF.
    fn draft(&self) -> Draft {
        let unix = |s: &str| s.replace("\r\n", "\n");
        Draft {
            subject: unix(&self.subject),
            html: unix(&self.html),
            text: unix(&self.text),
        }
    }

    fn versions(&self) -> Result<[Version; 3], ApiError> {
        let parse = |v: &str| {
            Version::parse(v).ok_or_else(|| {
                ApiError::BadRequest(
                    "the form's file versions are not ones this page writes: open the email again"
                        .into(),
                )
            })
        };
        Ok([
            parse(&self.v_subject)?,
            parse(&self.v_html)?,
            parse(&self.v_text)?,
        ])
    }
}

/// The copy form.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct CopyForm {
    new_name: String,
}

/// The delete form.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct DeleteForm {
    v_subject: String,
    v_html: String,
    v_text: String,
}

/// One line of a diff, classed for colour.
pub(super) struct DiffLine {
    pub(super) class: &'static str,
    pub(super) text: String,
}

/// A unified diff as lines to show.
pub(super) fn diff_lines(diff: &str) -> Vec<DiffLine> {
    diff.lines()
        .map(|line| DiffLine {
            class: match line.as_bytes().first() {
                Some(b'+') if !line.starts_with("+++") => "add",
                Some(b'-') if !line.starts_with("---") => "del",
                Some(b'@') => "hunk",
                _ => "ctx",
            },
            text: line.to_string(),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "pages/admin/email_editor.html")]
struct EditorPage {
    active: &'static str,
    notice: String,
    name: String,
    used_by: Vec<String>,
    source: String,
    problem: String,
    diff: Vec<DiffLine>,
    subject_src: String,
    html_src: String,
    text_src: String,
    v_subject: String,
    v_html: String,
    v_text: String,
    reference: String,
    test_email: String,
    subject: String,
    html: String,
    text: String,
    error: String,
    subject_error: String,
    html_error: String,
    text_error: String,
    subject_length: usize,
    too_long: bool,
    samples: Vec<SampleRow>,
    has_words: bool,
}

/// One row of the list of values an email may use, with what it says for the sample buyer.
pub(super) struct SampleRow {
    name: String,
    words: String,
    sample: String,
}

/// Every value a template may name, with the sample buyer's.
fn code_samples() -> Vec<SampleRow> {
    let context = serde_json::to_value(crate::templates::sample_context()).unwrap_or_default();
    crate::templates::FIELDS
        .iter()
        .map(|(field, words)| {
            let mut value = &context;
            for key in field.split('.') {
                value = value.get(key).unwrap_or(&serde_json::Value::Null);
            }
            let sample = match value {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => String::new(),
                serde_json::Value::Array(items) => format!(
                    "{} ticket{} (each with {})",
                    items.len(),
                    if items.len() == 1 { "" } else { "s" },
                    crate::templates::TICKET_FIELDS
                        .iter()
                        .map(|(f, _)| *f)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                other => other.to_string(),
            };
            SampleRow {
                name: (*field).to_string(),
                words: (*words).to_string(),
                sample,
            }
        })
        .collect()
}

/// Every detail words may name, with the sample buyer's.
fn words_samples(no_first_name: &str) -> Vec<SampleRow> {
    let context = crate::templates::sample_context();
    DETAILS
        .iter()
        .map(|(detail, name, words, _)| SampleRow {
            name: format!("[{name}]"),
            words: (*words).to_string(),
            sample: crate::templates::words::sample_value(*detail, &context, no_first_name),
        })
        .collect()
}

/// One field of the simple mode.
pub(super) struct FieldView {
    key: &'static str,
    label: &'static str,
    one_line: bool,
    value: String,
    error: String,
    hint: &'static str,
}

#[derive(Template)]
#[template(path = "pages/admin/email_words.html")]
struct WordsPage {
    active: &'static str,
    notice: String,
    name: String,
    used_by: Vec<String>,
    source: String,
    problem: String,
    diff: Vec<DiffLine>,
    fields: Vec<FieldView>,
    details: String,
    v_words: String,
    v_subject: String,
    v_html: String,
    v_text: String,
    reference: String,
    test_email: String,
    code_changed: bool,
    back: bool,
    inserts: Vec<(String, String)>,
    samples: Vec<SampleRow>,
    subject: String,
    html: String,
    text: String,
    error: String,
    subject_error: String,
    html_error: String,
    text_error: String,
    subject_length: usize,
    too_long: bool,
}

/// What each field is for, under its label.
fn hint(key: &str) -> &'static str {
    match key {
        "subject" => "one line; about 60 characters show in most inboxes",
        "preview" => "the line an inbox shows after the subject",
        "opening" => "the greeting and first paragraphs; a blank line starts a new paragraph",
        "payment" => {
            "how to pay: your bank details, what to quote; shown after the reference and the amount"
        }
        "button" => "the text part writes it above the link",
        "closing" => "the line above the signature",
        "reason" => "in the footer, above the unsubscribe link",
        "no_first_name" => "used by [first name] when a buyer gave none",
        _ => "",
    }
}

/// The simple-mode page for `form` (the saved words when `None`).
async fn words_page(
    state: &AppState,
    name: &TemplateName,
    form: Option<&WordsForm>,
    shown: Shown,
    back: bool,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let loaded: Loaded = state
        .workshop
        .template(name)
        .await
        .map_err(|e| ApiError::Internal(format!("{e:#}")))?;
    let saved = match loaded.saved_words() {
        Some(Ok(words)) => words,
        _ => {
            return Err(ApiError::NotFound(format!(
                "{name} has no words to edit in simple mode: edit it in code mode"
            )));
        }
    };
    let owned;
    let form = match form {
        Some(f) => f,
        None => {
            owned = WordsForm::of(&saved, &loaded);
            &owned
        }
    };
    let words = form.words();
    let preview = words_preview(state, name, &words, &form.reference).await?;
    let mut diff = shown.diff;
    if back {
        let made = saved.files_anyway();
        for (i, part) in crate::workshop::emails::PARTS.iter().enumerate() {
            let now = loaded.parts[i].content.clone().unwrap_or_default();
            if now != made[i] {
                diff.extend(diff_lines(&crate::workshop::diff(
                    &now,
                    &made[i],
                    &format!("{name}/{}", part.file()),
                )));
            }
        }
    }
    let fields = WORD_FIELDS
        .iter()
        .filter(|(key, ..)| *key != "payment" || words.details == Details::Payment)
        .map(|(key, label, one_line)| FieldView {
            key,
            label,
            one_line: *one_line,
            value: form.get(key).to_string(),
            error: preview
                .fields
                .iter()
                .find(|e| e.field == *key)
                .map(|e| e.message.clone())
                .unwrap_or_default(),
            hint: hint(key),
        })
        .collect();
    let page = WordsPage {
        active: "emails",
        notice: shown.notice,
        name: name.to_string(),
        used_by: loaded.used_by.clone(),
        source: source(state),
        problem: shown.problem,
        diff,
        fields,
        details: form.details.clone(),
        v_words: form.v_words.clone(),
        v_subject: form.v_subject.clone(),
        v_html: form.v_html.clone(),
        v_text: form.v_text.clone(),
        reference: form.reference.clone(),
        test_email: form.test_email.clone(),
        code_changed: loaded.changed_in_code(),
        back,
        inserts: DETAILS
            .iter()
            .map(|(_, name, words, _)| ((*name).to_string(), (*words).to_string()))
            .collect(),
        samples: words_samples(&words.no_first_name),
        too_long: preview.subject_length > 60,
        subject_length: preview.subject_length,
        subject: preview.subject,
        html: preview.html,
        text: preview.text,
        error: preview.error,
        subject_error: preview.subject_error,
        html_error: preview.html_error,
        text_error: preview.text_error,
    };
    let mut reply = render_page(&page)?;
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(EDITOR_CSP),
    );
    Ok(reply)
}

/// The preview of a draft: the rendered parts, or the error the way `check` prints it.
#[derive(Debug, Default, serde::Serialize)]
struct Preview {
    subject: String,
    html: String,
    text: String,
    /// What stops every part (e.g. no order with that reference).
    error: String,
    /// What is wrong in each part, where it is (the other parts still render).
    subject_error: String,
    html_error: String,
    text_error: String,
    /// In simple mode: what is wrong in a field, by its key.
    fields: Vec<FieldError>,
    subject_length: usize,
}

/// A mistake in one field of the words.
#[derive(Debug, Default, Clone, serde::Serialize)]
struct FieldError {
    field: String,
    message: String,
}

fn name_of(text: &str) -> Result<TemplateName, ApiError> {
    if RESERVED.contains(&text) {
        return Err(ApiError::BadRequest(format!(
            "{text:?} is a name the emails page uses itself: choose another"
        )));
    }
    TemplateName::parse(text).map_err(ApiError::BadRequest)
}

/// Renders `draft` of template `name` for the order `reference` (empty: the sample data). When
/// the draft does not load, each part is tried on its own, so that an error in one part is shown
/// at that part while the others still render.
async fn preview_of(
    state: &AppState,
    name: &TemplateName,
    draft: &Draft,
    reference: &str,
) -> Result<Preview, ApiError> {
    let order = match reference.trim() {
        "" => None,
        reference => match state.store.order(reference).await? {
            Some(order) => Some(order),
            None => {
                return Ok(Preview {
                    error: format!("No stored order has the reference {reference:?}."),
                    ..Preview::default()
                });
            }
        },
    };
    match render_draft(state, name, draft, order.as_ref()).await {
        Ok(r) => Ok(Preview {
            subject_length: r.subject.chars().count(),
            subject: r.subject,
            html: r.html,
            text: r.text,
            ..Preview::default()
        }),
        Err(whole) => {
            let mut preview = Preview::default();
            let mut any_alone = false;
            for i in 0..3 {
                // The other parts as the simplest lawful stand-ins.
                let alone = Draft {
                    subject: if i == 0 {
                        draft.subject.clone()
                    } else {
                        "-".into()
                    },
                    html: if i == 1 {
                        draft.html.clone()
                    } else {
                        "<a href=\"{{ links.unsubscribe }}\">-</a>".into()
                    },
                    text: if i == 2 {
                        draft.text.clone()
                    } else {
                        "{{ links.unsubscribe }}".into()
                    },
                };
                match render_draft(state, name, &alone, order.as_ref()).await {
                    Ok(r) => match i {
                        0 => {
                            preview.subject_length = r.subject.chars().count();
                            preview.subject = r.subject;
                        }
                        1 => preview.html = r.html,
                        _ => preview.text = r.text,
                    },
                    Err(e) => {
                        any_alone = true;
                        let slot = match i {
                            0 => &mut preview.subject_error,
                            1 => &mut preview.html_error,
                            _ => &mut preview.text_error,
                        };
                        *slot = e;
                    }
                }
            }
            if !any_alone {
                // Each part is fine alone: what is wrong is the email as a whole.
                preview.error = whole;
            }
            Ok(preview)
        }
    }
}

/// The draft rendered for `order` (the sample data when `None`), or the error as `check` says it.
async fn render_draft(
    state: &AppState,
    name: &TemplateName,
    draft: &Draft,
    order: Option<&crate::store::OrderRecord>,
) -> Result<crate::templates::Rendered, String> {
    let (settings, step) = state
        .workshop
        .draft_settings(name, draft)
        .await
        .map_err(|e| format!("{e:#}"))?;
    let address = order
        .map(|o| o.email.clone())
        .unwrap_or_else(|| crate::templates::sample_context().buyer.email);
    crate::present::render_step(
        &state.engine,
        &settings,
        order,
        &step,
        &address,
        &state.engine.links().preview(),
    )
    .await
    .map_err(|e| format!("{e:#}"))
}

/// The preview of words: the files they make, rendered, and each field's mistake.
async fn words_preview(
    state: &AppState,
    name: &TemplateName,
    words: &Words,
    reference: &str,
) -> Result<Preview, ApiError> {
    let [subject, html, text] = words.files_anyway();
    let draft = Draft {
        subject,
        html,
        text,
    };
    let mut preview = preview_of(state, name, &draft, reference).await?;
    preview.fields = words
        .errors()
        .into_iter()
        .map(|e| FieldError {
            field: e.field.to_string(),
            message: e.message,
        })
        .collect();
    Ok(preview)
}

/// Where the templates are, in words.
pub(super) fn source(state: &AppState) -> String {
    let paths = state.workshop.paths();
    if paths.built_in {
        format!(
            "The built-in emails are in use; the first save writes them all into {}, where the service reads them from then on.",
            paths.templates.display()
        )
    } else {
        format!("The files are in {}.", paths.templates.display())
    }
}

/// What the page shows besides the parts.
#[derive(Default)]
struct Shown {
    notice: String,
    problem: String,
    diff: Vec<DiffLine>,
}

/// The editor page for `draft` (the saved parts when `None`), with a preview of it.
async fn editor_page(
    state: &AppState,
    name: &TemplateName,
    form: Option<&EditorForm>,
    shown: Shown,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let loaded: Loaded = state
        .workshop
        .template(name)
        .await
        .map_err(|e| ApiError::Internal(format!("{e:#}")))?;
    let (draft, versions, reference, test_email) = match form {
        Some(f) => (
            f.draft(),
            [f.v_subject.clone(), f.v_html.clone(), f.v_text.clone()],
            f.reference.clone(),
            f.test_email.clone(),
        ),
        None => {
            if !loaded.exists() {
                return Err(ApiError::NotFound(format!(
                    "there is no email {name}: make one as a copy of another on the emails page"
                )));
            }
            let part = |i: usize| loaded.parts[i].content.clone().unwrap_or_default();
            (
                Draft {
                    subject: part(0),
                    html: part(1),
                    text: part(2),
                },
                loaded.parts.clone().map(|p| p.version.to_string()),
                String::new(),
                String::new(),
            )
        }
    };
    let preview = preview_of(state, name, &draft, &reference).await?;
    let [v_subject, v_html, v_text] = versions;
    let page = EditorPage {
        active: "emails",
        notice: shown.notice,
        name: name.to_string(),
        used_by: loaded.used_by.clone(),
        source: source(state),
        problem: shown.problem,
        diff: shown.diff,
        subject_src: draft.subject,
        html_src: draft.html,
        text_src: draft.text,
        v_subject,
        v_html,
        v_text,
        reference,
        test_email,
        too_long: preview.subject_length > 60,
        subject_length: preview.subject_length,
        subject: preview.subject,
        html: preview.html,
        text: preview.text,
        error: preview.error,
        subject_error: preview.subject_error,
        html_error: preview.html_error,
        text_error: preview.text_error,
        samples: code_samples(),
        has_words: matches!(loaded.saved_words(), Some(Ok(_))),
    };
    let mut reply = render_page(&page)?;
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(EDITOR_CSP),
    );
    Ok(reply)
}

/// `GET /admin/emails/{template}`: simple mode when the email has words (`?mode=code`: the
/// code mode; `?mode=back`: the way back to simple mode, with the difference).
pub(super) async fn page(
    state: AppState,
    (name, q): (String, EditorQuery),
) -> Result<Response, ApiError> {
    let name = name_of(&name)?;
    let shown = Shown {
        notice: q.notice,
        ..Shown::default()
    };
    let loaded = state
        .workshop
        .template(&name)
        .await
        .map_err(|e| ApiError::Internal(format!("{e:#}")))?;
    let words = matches!(loaded.saved_words(), Some(Ok(_)));
    if words && q.mode != "code" {
        let mut form = None;
        if let Some(Ok(saved)) = loaded.saved_words() {
            let mut f = WordsForm::of(&saved, &loaded);
            f.reference = q.reference.clone();
            form = Some(f);
        }
        let back = q.mode == "back";
        return words_page(&state, &name, form.as_ref(), shown, back, StatusCode::OK).await;
    }
    let mut form = None;
    if !q.reference.is_empty() {
        // A reference in the address previews the saved parts for that order.
        let part = |i: usize| loaded.parts[i].content.clone().unwrap_or_default();
        form = Some(EditorForm {
            subject: part(0),
            html: part(1),
            text: part(2),
            v_subject: loaded.parts[0].version.to_string(),
            v_html: loaded.parts[1].version.to_string(),
            v_text: loaded.parts[2].version.to_string(),
            reference: q.reference,
            test_email: String::new(),
            mode: "code".into(),
        });
    }
    editor_page(&state, &name, form.as_ref(), shown, StatusCode::OK).await
}

/// `POST /admin/emails/{template}/preview`: the draft rendered; JSON for the page's script, the
/// whole page for the Preview button.
pub(super) async fn preview(
    state: AppState,
    (name, accept, body): (String, Option<String>, bytes::Bytes),
) -> Result<Response, ApiError> {
    let name = name_of(&name)?;
    let wants_json = accept.is_some_and(|a| a.contains("application/json"));
    if is_simple(&body) {
        let f: WordsForm = form(&body)?;
        if wants_json {
            let preview = words_preview(&state, &name, &f.words(), &f.reference).await?;
            return Ok(warp::reply::json(&preview).into_response());
        }
        return words_page(
            &state,
            &name,
            Some(&f),
            Shown::default(),
            false,
            StatusCode::OK,
        )
        .await;
    }
    let f: EditorForm = form(&body)?;
    if wants_json {
        let preview = preview_of(&state, &name, &f.draft(), &f.reference).await?;
        return Ok(warp::reply::json(&preview).into_response());
    }
    editor_page(&state, &name, Some(&f), Shown::default(), StatusCode::OK).await
}

/// `POST /admin/emails/{template}`: Save (the words in simple mode, the files in code mode).
pub(super) async fn save(
    state: AppState,
    (name, peer, body): (String, Peer, bytes::Bytes),
) -> Result<Response, ApiError> {
    let name = name_of(&name)?;
    if is_simple(&body) {
        let f: WordsForm = form(&body)?;
        let versions = f.versions()?;
        let replace = f.replace == "yes";
        let result = state
            .workshop
            .save_words(&name, &f.words(), versions, replace, client(&state, &peer))
            .await;
        return match result {
            Ok(saved) => Ok(with_notice(
                &format!("/admin/emails/{name}"),
                &[("notice", saved_notice(&saved, "Saved").as_str())],
            )),
            Err(e) => {
                let status = status_of(&e);
                let shown = refusal(&e);
                words_page(&state, &name, Some(&f), shown, replace, status).await
            }
        };
    }
    let f: EditorForm = form(&body)?;
    let versions = f.versions()?;
    let result = state
        .workshop
        .save_template(&name, &f.draft(), versions, client(&state, &peer))
        .await;
    match result {
        Ok(saved) => Ok(with_notice(
            &format!("/admin/emails/{name}"),
            &[
                ("notice", saved_notice(&saved, "Saved").as_str()),
                ("mode", "code"),
            ],
        )),
        Err(e) => refused(&state, &name, &f, e).await,
    }
}

/// What a save did, in words.
pub(super) fn saved_notice(saved: &Saved, done: &str) -> String {
    match (&saved.change, &saved.reload) {
        (None, _) => "Nothing to save: the files already say this.".into(),
        (Some(_), Ok(())) => format!("{done}. The next emails use it."),
        (Some(_), Err(e)) => format!(
            "{done} and kept in the history, but the service refused to reload, so the running version stays in force: {e}"
        ),
    }
}

/// The editor again, with the draft kept and why it was not saved.
async fn refused(
    state: &AppState,
    name: &TemplateName,
    f: &EditorForm,
    e: SaveError,
) -> Result<Response, ApiError> {
    let status = status_of(&e);
    editor_page(state, name, Some(f), refusal(&e), status).await
}

/// What the page shows of a refused save: why, and the difference when the file changed on disk.
/// A save that failed (not refused) is logged.
fn refusal(e: &SaveError) -> Shown {
    if let SaveError::Failed(why) = e {
        tracing::error!("a save from the browser failed: {why:#}");
    }
    Shown {
        problem: problem_of(e),
        diff: match e {
            SaveError::Conflict { diff, .. } => diff_lines(diff),
            _ => Vec::new(),
        },
        ..Shown::default()
    }
}

/// Why a save was refused, for the page (which says "Not saved." itself).
fn problem_of(e: &SaveError) -> String {
    let text = e.to_string();
    match text.strip_prefix("not saved: ") {
        Some(rest) => rest.to_string(),
        None => text,
    }
}

/// The status a refused save answers with.
pub(super) fn status_of(e: &SaveError) -> StatusCode {
    match e {
        SaveError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        SaveError::Conflict { .. } => StatusCode::CONFLICT,
        SaveError::NotEditable(_) => StatusCode::BAD_REQUEST,
        SaveError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// `POST /admin/emails/{template}/test`: sends the draft to the address given.
pub(super) async fn send_test(
    state: AppState,
    (name, body): (String, bytes::Bytes),
) -> Result<Response, ApiError> {
    let name = name_of(&name)?;
    let simple = is_simple(&body);
    let (f, words_form) = if simple {
        let w: WordsForm = form(&body)?;
        let [subject, html, text] = w.words().files_anyway();
        let f = EditorForm {
            subject,
            html,
            text,
            reference: w.reference.clone(),
            test_email: w.test_email.clone(),
            ..EditorForm::default()
        };
        (f, Some(w))
    } else {
        (form::<EditorForm>(&body)?, None)
    };
    let address = f.test_email.trim().to_string();
    let notice = match state.workshop.draft_settings(&name, &f.draft()).await {
        Err(e) => format!("Not sent: {e:#}"),
        Ok((settings, _)) => {
            let order = match f.reference.trim() {
                "" => None,
                reference => state.store.order(reference).await?,
            };
            let sends =
                crate::present::send_tests(&state.engine, &settings, order.as_ref(), &address)
                    .await;
            let failures = sends.failures();
            if failures.is_empty() {
                format!("Sent a test of {name} as edited here to {address}.")
            } else {
                format!("The test was not sent: {}", failures.join("; "))
            }
        }
    };
    let shown = Shown {
        notice,
        ..Shown::default()
    };
    if let Some(w) = words_form {
        return words_page(&state, &name, Some(&w), shown, false, StatusCode::OK).await;
    }
    editor_page(&state, &name, Some(&f), shown, StatusCode::OK).await
}

/// `POST /admin/emails/{template}/copy`: a new template from this one.
pub(super) async fn copy(
    state: AppState,
    (name, peer, body): (String, Peer, bytes::Bytes),
) -> Result<Response, ApiError> {
    let from = name_of(&name)?;
    let f: CopyForm = form(&body)?;
    let to = name_of(f.new_name.trim())?;
    match state
        .workshop
        .copy_template(&from, &to, client(&state, &peer))
        .await
    {
        Ok(saved) => Ok(with_notice(
            &format!("/admin/emails/{to}"),
            &[(
                "notice",
                saved_notice(&saved, &format!("{to} made as a copy of {from}")).as_str(),
            )],
        )),
        Err(e) => {
            let status = status_of(&e);
            let shown = Shown {
                problem: problem_of(&e),
                ..Shown::default()
            };
            editor_page(&state, &from, None, shown, status).await
        }
    }
}

/// `POST /admin/emails/{template}/delete`: refused while a step uses it.
pub(super) async fn delete(
    state: AppState,
    (name, peer, body): (String, Peer, bytes::Bytes),
) -> Result<Response, ApiError> {
    let name = name_of(&name)?;
    let f: DeleteForm = form(&body)?;
    let versions = EditorForm {
        v_subject: f.v_subject,
        v_html: f.v_html,
        v_text: f.v_text,
        ..EditorForm::default()
    }
    .versions()?;
    match state
        .workshop
        .delete_template(&name, versions, client(&state, &peer))
        .await
    {
        Ok(saved) => Ok(with_notice(
            "/admin/emails",
            &[(
                "notice",
                saved_notice(&saved, &format!("{name} deleted")).as_str(),
            )],
        )),
        Err(e) => {
            let status = status_of(&e);
            let shown = Shown {
                problem: problem_of(&e),
                ..Shown::default()
            };
            editor_page(&state, &name, None, shown, status).await
        }
    }
}

/// `GET /admin/static/{file}`: the editor's script and style, built into the binary.
pub(super) async fn asset(state: AppState, file: String) -> Result<Response, ApiError> {
    let _ = state;
    let (body, kind) = match file.as_str() {
        "editor.js" => (
            include_str!("../../../static/editor.js"),
            "text/javascript; charset=utf-8",
        ),
        "editor.css" => (
            include_str!("../../../static/editor.css"),
            "text/css; charset=utf-8",
        ),
        _ => return Err(ApiError::NotFound("no such file".into())),
    };
    Ok(warp::reply::with_header(body, header::CONTENT_TYPE, kind).into_response())
}

/// The editor's routes, for the route table.
pub(super) fn body() -> impl Filter<Extract = (bytes::Bytes,), Error = warp::Rejection> + Clone {
    warp::body::content_length_limit(MAX_EDIT).and(warp::body::bytes())
}
