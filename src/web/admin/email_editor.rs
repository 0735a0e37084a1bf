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
    subject_length: usize,
    too_long: bool,
}

/// The preview of a draft: the rendered parts, or the error the way `check` prints it.
#[derive(Debug, Default, serde::Serialize)]
struct Preview {
    subject: String,
    html: String,
    text: String,
    error: String,
    subject_length: usize,
}

fn name_of(text: &str) -> Result<TemplateName, ApiError> {
    if RESERVED.contains(&text) {
        return Err(ApiError::BadRequest(format!(
            "{text:?} is a name the emails page uses itself: choose another"
        )));
    }
    TemplateName::parse(text).map_err(ApiError::BadRequest)
}

/// Renders `draft` of template `name` for the order `reference` (empty: the sample data).
async fn preview_of(
    state: &AppState,
    name: &TemplateName,
    draft: &Draft,
    reference: &str,
) -> Result<Preview, ApiError> {
    let (settings, step) = match state.workshop.draft_settings(name, draft).await {
        Ok(loaded) => loaded,
        Err(e) => {
            return Ok(Preview {
                error: format!("{e:#}"),
                ..Preview::default()
            });
        }
    };
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
    let address = order
        .as_ref()
        .map(|o| o.email.clone())
        .unwrap_or_else(|| crate::templates::sample_context().buyer.email);
    let rendered = crate::present::render_step(
        &state.engine,
        &settings,
        order.as_ref(),
        &step,
        &address,
        &state.engine.links().preview(),
    )
    .await;
    Ok(match rendered {
        Ok(r) => Preview {
            subject_length: r.subject.chars().count(),
            subject: r.subject,
            html: r.html,
            text: r.text,
            error: String::new(),
        },
        Err(e) => Preview {
            error: format!("{e:#}"),
            ..Preview::default()
        },
    })
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
        used_by: loaded.used_by,
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
    };
    let mut reply = render_page(&page)?;
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(EDITOR_CSP),
    );
    Ok(reply)
}

/// `GET /admin/emails/{template}`
pub(super) async fn page(
    state: AppState,
    (name, q): (String, EditorQuery),
) -> Result<Response, ApiError> {
    let name = name_of(&name)?;
    let shown = Shown {
        notice: q.notice,
        ..Shown::default()
    };
    let mut form = None;
    if !q.reference.is_empty() {
        // A reference in the address previews the saved parts for that order.
        let loaded = state
            .workshop
            .template(&name)
            .await
            .map_err(|e| ApiError::Internal(format!("{e:#}")))?;
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
    let f: EditorForm = form(&body)?;
    let wants_json = accept.is_some_and(|a| a.contains("application/json"));
    if wants_json {
        let preview = preview_of(&state, &name, &f.draft(), &f.reference).await?;
        return Ok(warp::reply::json(&preview).into_response());
    }
    editor_page(&state, &name, Some(&f), Shown::default(), StatusCode::OK).await
}

/// `POST /admin/emails/{template}`: Save.
pub(super) async fn save(
    state: AppState,
    (name, peer, body): (String, Peer, bytes::Bytes),
) -> Result<Response, ApiError> {
    let name = name_of(&name)?;
    let f: EditorForm = form(&body)?;
    let versions = f.versions()?;
    let result = state
        .workshop
        .save_template(&name, &f.draft(), versions, client(&state, &peer))
        .await;
    match result {
        Ok(saved) => Ok(with_notice(
            &format!("/admin/emails/{name}"),
            &[("notice", saved_notice(&saved, "Saved").as_str())],
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
    let shown = Shown {
        problem: e.to_string(),
        diff: match &e {
            SaveError::Conflict { diff, .. } => diff_lines(diff),
            _ => Vec::new(),
        },
        ..Shown::default()
    };
    if let SaveError::Failed(why) = &e {
        tracing::error!("a save from the browser failed: {why:#}");
    }
    editor_page(state, name, Some(f), shown, status).await
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
    let f: EditorForm = form(&body)?;
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
                problem: e.to_string(),
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
                problem: e.to_string(),
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
