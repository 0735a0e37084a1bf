//! `/admin/schedule`: the schedule editor. The steps as rows (add, remove, reorder), the
//! `[schedule]` values and per-event settings in one form; the plan in words and "What would
//! this send?" (a dry run of the next 7 days over the stored buyer-events) for the form as it is,
//! re-rendered as you type by `schedule.js` (or by a button without it); Save through the
//! workshop. Below: the buyers due next, and the page each event's emails link to.

use askama::Template;
use chrono::Utc;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::email_editor::{DiffLine, Peer, client, diff_lines};
use super::{AppState, Notice, buyer_link, local, page as render, with_notice};
use crate::config::Config;
use crate::present::{self, Lookups};
use crate::reminders::forecast;
use crate::web::ApiError;
use crate::workshop::Version;
use crate::workshop::schedule::{Draft, FieldError, Op, SCHEDULE_FIELDS, Timing};
use crate::workshop::schedule_edit::{Editing, ScheduleSaveError};

/// The largest schedule form: hundreds of steps and events fit in far less. A bigger body is
/// refused with 413 before it is read.
pub(super) const MAX_SCHEDULE_FORM: usize = 64 * 1024;

/// The policy of the editor page: ours, plus our own script (served at
/// `/admin/static/schedule.js`); everything else as on every page.
const SCHEDULE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// Buyers listed by name under "What would this send?".
const FIRST_SHOWN: usize = 50;

/// Buyers listed as due next at most.
const DUE_SHOWN: usize = 50;

/// The script of the page, served by the binary.
pub(super) const SCRIPT: &str = include_str!("../../../static/schedule.js");

struct DueRow {
    when: String,
    link: String,
    email: String,
    event: String,
    decision: String,
}

/// An event on the page: the page its emails link to, and where that came from.
struct EventRow {
    event: String,
    url: String,
    source: String,
    details: String,
}

/// A `[schedule]` value in the form.
struct ValueRow {
    key: &'static str,
    label: &'static str,
    value: String,
    error: String,
    /// Set in the main configuration, which is not written from here.
    locked: bool,
}

/// A step row in the form.
struct StepRow {
    i: usize,
    last: bool,
    orig: String,
    name: String,
    before_event: bool,
    wait: String,
    started: bool,
    cancelled: bool,
    eft: bool,
    template: String,
    window: String,
    error: String,
}

/// An event row in the form.
struct EventFormRow {
    i: usize,
    id: String,
    name: String,
    reminders: bool,
    url: String,
    error: String,
}

/// One day of the dry run.
struct DayRow {
    date: String,
    counts: Vec<usize>,
    total: usize,
}

/// One email of the dry run.
struct SendRow {
    when: String,
    email: String,
    event: String,
    step: String,
}

/// What updates as you edit: the plan in words, the errors, the dry run.
pub(super) struct Live {
    errors: Vec<String>,
    plan: Vec<String>,
    /// Whether a dry run was made (not when the form has errors).
    ran: bool,
    summary: String,
    steps: Vec<String>,
    days: Vec<DayRow>,
    totals: Vec<usize>,
    total: usize,
    first: Vec<SendRow>,
    more: usize,
}

#[derive(Template)]
#[template(path = "pages/admin/schedule.html")]
struct SchedulePage {
    active: &'static str,
    notice: String,
    /// Why the last save was refused, or how to get a schedule file.
    refusal: String,
    /// The difference between the file on disk and the edit, after a conflict.
    diff: Vec<DiffLine>,
    file: String,
    editable: bool,
    version: String,
    values: Vec<ValueRow>,
    steps: Vec<StepRow>,
    event_rows: Vec<EventFormRow>,
    live: Live,
    due: Vec<DueRow>,
    events: Vec<EventRow>,
}

#[derive(Template)]
#[template(path = "pages/admin/schedule_live.html")]
struct LiveFragment {
    live: Live,
}

/// `GET /admin/schedule`.
pub(super) async fn page(state: AppState, q: Notice) -> Result<Response, ApiError> {
    let editing = state
        .workshop
        .schedule_editing()
        .await
        .map_err(|e| ApiError::Internal(format!("{e:#}")))?;
    let draft = with_known_events(&state, editing.draft.clone()).await?;
    let live = live(&state, &draft).await;
    show(
        &state,
        &editing,
        &draft,
        live,
        q.notice,
        String::new(),
        Vec::new(),
    )
    .await
}

/// `POST /admin/schedule/preview`: the plan and the dry run of the form as posted (for the
/// script; nothing is saved).
pub(super) async fn preview(state: AppState, body: super::Body) -> Result<Response, ApiError> {
    let body = crate::web::read_limited(body, MAX_SCHEDULE_FORM).await?;
    let posted = read_form(&body)?;
    let draft = posted.draft;
    let fragment = LiveFragment {
        live: live(&state, &draft).await,
    };
    render(&fragment)
}

/// `POST /admin/schedule`: a row button (the form comes back changed, unsaved), Preview, or Save.
pub(super) async fn post(
    state: AppState,
    (body, peer): (super::Body, Peer),
) -> Result<Response, ApiError> {
    let body = crate::web::read_limited(body, MAX_SCHEDULE_FORM).await?;
    let posted = read_form(&body)?;
    let editing = state
        .workshop
        .schedule_editing()
        .await
        .map_err(|e| ApiError::Internal(format!("{e:#}")))?;
    let mut draft = posted.draft;
    if posted.op != Op::Save {
        draft.apply_op(posted.op);
        let live = live(&state, &draft).await;
        let editing = Editing {
            version: Version::parse(&posted.version).unwrap_or(editing.version.clone()),
            ..editing
        };
        return show(
            &state,
            &editing,
            &draft,
            live,
            String::new(),
            String::new(),
            Vec::new(),
        )
        .await;
    }
    let version = Version::parse(&posted.version).ok_or_else(|| {
        ApiError::BadRequest(
            "the form's file version is not one this page writes: open the schedule again".into(),
        )
    })?;
    let who = client(&state, &peer);
    match state
        .workshop
        .save_schedule(&draft, version.clone(), who)
        .await
    {
        Ok(saved) => {
            let notice = match (&saved.change, &saved.reload) {
                (None, _) => "Nothing to save: the schedule file already says this.".to_string(),
                (Some(_), Ok(())) => {
                    "Saved, and in force: the next pass uses the new schedule.".to_string()
                }
                (Some(_), Err(e)) => format!(
                    "Saved, but the service refused to reload it (the running schedule is kept): {e}"
                ),
            };
            Ok(with_notice("/admin/schedule", &[("notice", &notice)]))
        }
        Err(e) => {
            let (status, refusal, diff) = match e {
                ScheduleSaveError::Fields(errors) => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("Not saved: {}", messages(&errors).join("; ")),
                    Vec::new(),
                ),
                ScheduleSaveError::Save(crate::workshop::SaveError::Conflict { file, diff }) => (
                    StatusCode::CONFLICT,
                    crate::workshop::SaveError::Conflict {
                        file,
                        diff: String::new(),
                    }
                    .to_string(),
                    diff_lines(&diff),
                ),
                ScheduleSaveError::Save(crate::workshop::SaveError::Failed(e)) => {
                    return Err(ApiError::Internal(format!("{e:#}")));
                }
                ScheduleSaveError::Save(other) => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    other.to_string(),
                    Vec::new(),
                ),
            };
            let live = live(&state, &draft).await;
            let editing = Editing { version, ..editing };
            let page = show(&state, &editing, &draft, live, String::new(), refusal, diff).await?;
            Ok(warp::reply::with_status(page, status).into_response())
        }
    }
}

/// `GET /admin/static/schedule.js`.
pub(super) async fn script(_: AppState, _: super::NoQuery) -> Result<Response, ApiError> {
    Ok(warp::reply::with_header(
        warp::reply::with_header(SCRIPT, "content-type", "text/javascript; charset=utf-8"),
        "cache-control",
        "no-cache",
    )
    .into_response())
}

fn read_form(body: &[u8]) -> Result<crate::workshop::schedule::Posted, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|e| ApiError::BadRequest(format!("the form could not be read: {e}")))?;
    Draft::from_form(&pairs).map_err(|e| ApiError::BadRequest(format!("not saved: {}", e.message)))
}

fn messages(errors: &[FieldError]) -> Vec<String> {
    errors.iter().map(|e| e.message.clone()).collect()
}

/// The draft with a row for each event known from hooks (so that reminders can be turned off
/// for one without typing its id).
async fn with_known_events(state: &AppState, draft: Draft) -> Result<Draft, ApiError> {
    let listing = present::event_pages(&state.engine, &state.store, Lookups::CacheOnly).await?;
    // A stored id that is not one (kept by an older version) gets no row: it could only block saves.
    Ok(draft.with_events(
        listing
            .events
            .into_iter()
            .map(|e| e.id)
            .filter(|id| crate::domain::EventId::parse(id).is_some()),
    ))
}

/// The plan in words and the dry run for `draft` (its errors instead, when it has some).
async fn live(state: &AppState, draft: &Draft) -> Live {
    let mut live = Live {
        errors: Vec::new(),
        plan: Vec::new(),
        ran: false,
        summary: String::new(),
        steps: Vec::new(),
        days: Vec::new(),
        totals: Vec::new(),
        total: 0,
        first: Vec::new(),
        more: 0,
    };
    let config: Config = match state.workshop.schedule_drafted(draft).await {
        Ok(drafted) => drafted.config,
        Err(errors) => {
            live.errors = messages(&errors);
            return live;
        }
    };
    live.plan = present::plan_in_words(&config);
    let now = Utc::now();
    let report = match forecast::what_would_send(
        &state.engine,
        &state.store,
        &config,
        now,
        forecast::week(),
    )
    .await
    {
        Ok(report) => report,
        Err(e) => {
            live.errors.push(format!("the dry run failed: {e:#}"));
            return live;
        }
    };
    let tz = config.schedule.timezone;
    let f = &report.forecast;
    let buyers: std::collections::BTreeSet<(&str, &str)> = f
        .sends
        .iter()
        .map(|s| (s.email_key.as_str(), s.event_id.as_str()))
        .collect();
    live.ran = true;
    live.total = f.sends.len();
    live.summary = format!(
        "In the next 7 days the passes (\"{}\") would send {} email{} to {} buyer-event{}, from {} open checkout{} followed{}{}.",
        config.schedule.scan,
        f.sends.len(),
        if f.sends.len() == 1 { "" } else { "s" },
        buyers.len(),
        if buyers.len() == 1 { "" } else { "s" },
        report.followed,
        if report.followed == 1 { "" } else { "s" },
        if f.held_out > 0 {
            format!(
                "; {} step{} would fall due in the control group and not be sent",
                f.held_out,
                if f.held_out == 1 { "" } else { "s" }
            )
        } else {
            String::new()
        },
        if report.truncated {
            format!(
                " (only the {} latest changed; older ones were left out)",
                forecast::MAX_FOLLOWED
            )
        } else {
            String::new()
        },
    );
    live.steps = report.rules.steps.iter().map(|s| s.name.clone()).collect();
    live.totals = f.per_step(&report.rules);
    live.days = report
        .days()
        .into_iter()
        .map(|d| DayRow {
            date: d.date.format("%a %-d %b").to_string(),
            counts: d.per_step,
            total: d.total,
        })
        .collect();
    live.first = f
        .sends
        .iter()
        .take(FIRST_SHOWN)
        .map(|s| SendRow {
            when: s
                .at
                .with_timezone(&tz)
                .format("%a %-d %b %H:%M")
                .to_string(),
            email: s.email.clone(),
            event: s.event_id.clone(),
            step: s.step.clone(),
        })
        .collect();
    live.more = f.sends.len().saturating_sub(FIRST_SHOWN);
    live
}

fn error_for(errors: &[FieldError], field: &str) -> String {
    errors
        .iter()
        .filter(|e| e.field == field || (field.ends_with('.') && e.field.starts_with(field)))
        .map(|e| e.message.clone())
        .collect::<Vec<_>>()
        .join("; ")
}

#[allow(clippy::too_many_arguments)]
async fn show(
    state: &AppState,
    editing: &Editing,
    draft: &Draft,
    live: Live,
    notice: String,
    refusal: String,
    diff: Vec<DiffLine>,
) -> Result<Response, ApiError> {
    let field_errors = draft.check();
    let main_text = editing
        .main
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    let main_doc = main_text
        .parse::<toml_edit::DocumentMut>()
        .unwrap_or_default();
    let in_main = |key: &str| main_doc.get("schedule").and_then(|s| s.get(key)).is_some();
    let (file, editable, refusal) = match &editing.file {
        Some(path) => (path.display().to_string(), true, refusal),
        None => {
            let main = editing
                .main
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "built-in defaults (no configuration file)".into());
            let how = format!(
                "The schedule is read from {main}, which this page never writes. To edit it here, give it a file of its own \
                 in the service's state directory: add [schedule] file = \"/var/lib/quicket-followup/schedule.toml\" \
                 to the main configuration, move [schedule] (all but file), [[reminders]] and [events] into that file \
                 (writable by the service), run `quicket-followup check` and restart the service \
                 (the README's \"Changing the schedule\" has the steps). You can still try changes below and see what they would send."
            );
            let refusal = if refusal.is_empty() {
                how
            } else {
                format!("{refusal} {how}")
            };
            (String::new(), false, refusal)
        }
    };
    let values = SCHEDULE_FIELDS
        .iter()
        .map(|&(key, label)| ValueRow {
            key,
            label,
            value: draft.value(key).to_string(),
            error: error_for(&field_errors, key),
            locked: in_main(key),
        })
        .collect();
    let n = draft.steps.len();
    let steps = draft
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| StepRow {
            i,
            last: i + 1 == n,
            orig: s.orig.clone().unwrap_or_default(),
            name: s.name.clone(),
            before_event: s.timing == Timing::BeforeEvent,
            wait: s.wait.clone(),
            started: s.states.contains(&crate::domain::OrderState::Started),
            cancelled: s.states.contains(&crate::domain::OrderState::Cancelled),
            eft: s.states.contains(&crate::domain::OrderState::EftPending),
            template: s.template.clone(),
            window: s.window.clone(),
            error: error_for(&field_errors, &format!("s{i}.")),
        })
        .collect();
    // From the cache only: a page view never waits for Quicket's API.
    let listing = present::event_pages(&state.engine, &state.store, Lookups::CacheOnly).await?;
    let event_rows = draft
        .events
        .iter()
        .enumerate()
        .map(|(i, e)| EventFormRow {
            i,
            id: e.id.clone(),
            name: listing
                .events
                .iter()
                .find(|k| k.id == e.id)
                .map(|k| k.name.clone())
                .unwrap_or_default(),
            reminders: e.reminders,
            url: e.url.clone(),
            error: error_for(&field_errors, &format!("e{i}.")),
        })
        .collect();
    let due = state.store.next_due(DUE_SHOWN).await?;
    let events = listing
        .events
        .into_iter()
        .map(|e| EventRow {
            event: format!("{} ({})", e.name, e.id),
            url: e.page.url,
            source: e.page.source,
            details: e
                .page
                .details
                .trim_start_matches([',', ';', ' '])
                .to_string(),
        })
        .collect();
    let page = render(&SchedulePage {
        active: "schedule",
        notice,
        refusal,
        diff,
        file,
        editable,
        version: editing.version.as_str().to_string(),
        values,
        steps,
        event_rows,
        live,
        events,
        due: due
            .into_iter()
            .map(|r| DueRow {
                when: r
                    .next_check_at
                    .as_deref()
                    .map(|n| local(state, n))
                    .unwrap_or_default(),
                link: buyer_link(&r.email_key, &r.event_id),
                email: r.email_key,
                event: format!("{} ({})", r.event_name, r.event_id),
                decision: r
                    .last_reason
                    .unwrap_or_else(|| "new: not looked at yet".into()),
            })
            .collect(),
    })?;
    Ok(warp::reply::with_header(
        page,
        warp::http::header::CONTENT_SECURITY_POLICY,
        SCHEDULE_CSP,
    )
    .into_response())
}
