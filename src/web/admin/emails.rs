//! `/admin/emails`: each step rendered for a stored order or the sample data (the email's HTML in
//! a sandboxed frame), and test sends.

use askama::Template;
use serde::Deserialize;
use warp::http::header;
use warp::reply::{Reply, Response};

use super::{AppState, page as render_page, with_notice};
use crate::present;
use crate::web::ApiError;

/// The query of `/admin/emails`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct EmailsQuery {
    /// The step to show (the first one when absent).
    step: Option<String>,
    /// A stored order's reference; empty shows the sample data.
    reference: String,
    notice: String,
}

/// The query of `/admin/emails/render`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RenderQuery {
    step: String,
    reference: String,
}

/// The form of `/admin/emails/test`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct SendTestForm {
    /// Where the test emails go.
    email: String,
    /// A stored order's reference; empty uses the sample data.
    reference: String,
}

#[derive(Template)]
#[template(path = "pages/admin/emails.html")]
struct EmailsPage {
    active: &'static str,
    notice: String,
    steps: Vec<String>,
    step: String,
    reference: String,
    subject: String,
    frame: String,
    error: String,
    /// Which templates are in use: the built-in ones or a directory.
    source: String,
    /// Every template, with the steps that use it.
    templates: Vec<(String, String)>,
}

async fn rendered(
    state: &AppState,
    step: &str,
    reference: &str,
) -> Result<Result<crate::templates::Rendered, String>, ApiError> {
    let settings = state.engine.settings();
    let order = if reference.is_empty() {
        None
    } else {
        match state.store.order(reference).await? {
            Some(order) => Some(order),
            None => {
                return Ok(Err(format!(
                    "No stored order has the reference {reference:?}."
                )));
            }
        }
    };
    let address = order
        .as_ref()
        .map(|o| o.email.clone())
        .unwrap_or_else(|| crate::templates::sample_context().buyer.email);
    Ok(present::render_step(
        &state.engine,
        &settings,
        order.as_ref(),
        step,
        &address,
        &state.engine.links().preview(),
    )
    .await
    .map_err(|e| format!("{e:#}")))
}

/// `GET /admin/emails?step=&reference=`: a step as a buyer would receive it.
pub(super) async fn page(state: AppState, q: EmailsQuery) -> Result<Response, ApiError> {
    let state = &state;
    let settings = state.engine.settings();
    let steps: Vec<String> = settings.config.step_names();
    let step = q
        .step
        .or_else(|| steps.first().cloned())
        .unwrap_or_default();
    let reference = q.reference.trim().to_string();
    let (subject, error) = match rendered(state, &step, &reference).await? {
        Ok(r) => (r.subject, String::new()),
        Err(e) => (String::new(), e),
    };
    let frame = format!(
        "/admin/emails/render?{}",
        serde_urlencoded::to_string([("step", step.as_str()), ("reference", reference.as_str())])
            .unwrap_or_default()
    );
    render_page(&EmailsPage {
        active: "emails",
        notice: q.notice,
        steps,
        step,
        reference,
        subject,
        frame,
        error,
        source: super::email_editor::source(state),
        templates: state
            .workshop
            .template_names()
            .await
            .map_err(|e| ApiError::Internal(format!("{e:#}")))?
            .into_iter()
            .map(|(name, used)| (name.to_string(), used.join(", ")))
            .collect(),
    })
}

/// `GET /admin/emails/render?step=&reference=`: the email's own HTML, for the page's frame.
pub(super) async fn render(state: AppState, q: RenderQuery) -> Result<Response, ApiError> {
    match rendered(&state, &q.step, q.reference.trim()).await? {
        Ok(r) => {
            // The email's own HTML, shown in a sandboxed frame of our emails page: no scripts, no
            // forms, framed only by our own pages, sandboxed even when opened on its own.
            let mut reply = warp::reply::html(r.html).into_response();
            let headers = reply.headers_mut();
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                header::HeaderValue::from_static(crate::web::headers::PREVIEW_CSP),
            );
            headers.insert(
                header::X_FRAME_OPTIONS,
                header::HeaderValue::from_static("SAMEORIGIN"),
            );
            Ok(reply)
        }
        Err(e) => Err(ApiError::BadRequest(e)),
    }
}

/// `POST /admin/emails/test`: sends every step to the address in the form.
pub(super) async fn send_test(state: AppState, f: SendTestForm) -> Result<Response, ApiError> {
    let state = &state;
    let (address, reference) = (f.email, f.reference);
    let order = if reference.trim().is_empty() {
        None
    } else {
        state.store.order(reference.trim()).await?
    };
    let settings = state.engine.settings();
    let sends = present::send_tests(&state.engine, &settings, order.as_ref(), address.trim()).await;
    let failures = sends.failures();
    let message = if failures.is_empty() {
        format!(
            "Sent {} test emails to {}.",
            sends.sent().len(),
            address.trim()
        )
    } else {
        format!("Test emails failed: {}", failures.join("; "))
    };
    Ok(with_notice(
        "/admin/emails",
        &[
            ("notice", message.as_str()),
            ("reference", reference.as_str()),
        ],
    ))
}
