//! `/admin/schedule`: the schedule editor. The steps as rows (add, remove, reorder), the
//! `[schedule]` values and per-event settings in one form; the plan in words and "What would
//! this send?" (a dry run of the next 7 days over the stored buyer-events) for the form as it is,
//! re-rendered as you type by `schedule.js` (or by a button without it); Save through the
//! workshop. Below: the buyers due next, and the page each event's emails link to.

use std::collections::BTreeMap;

use askama::Template;
use chrono::{DateTime, TimeDelta, Utc};
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::email_editor::{DiffLine, Peer, client, diff_lines};
use super::{AppState, Notice, buyer_link, page as render, with_notice};
use crate::config::Config;
use crate::present::{self, Lookups};
use crate::reminders::forecast;
use crate::web::ApiError;
use crate::workshop::Version;
use crate::workshop::schedule::{
    Draft, FieldError, Op, SCHEDULE_FIELDS, Timing, number_and_unit, summary, window_of,
};
use crate::workshop::schedule_edit::{Editing, EmailChoice, ScheduleSaveError};

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

/// One option of a list.
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

/// A `[schedule]` value in the form: a time zone (text), a window (a choice, or hours of one's
/// own) or a duration (a number and a unit).
struct ValueRow {
    key: &'static str,
    label: &'static str,
    kind: &'static str,
    value: String,
    n: String,
    unit: &'static str,
    choices: Vec<Choice>,
    other: String,
    error: String,
    /// Set in the main configuration, which is not written from here.
    locked: bool,
}

/// A step in the form.
struct StepRow {
    i: usize,
    last: bool,
    orig: String,
    name: String,
    before_event: bool,
    n: String,
    unit: &'static str,
    started: bool,
    cancelled: bool,
    eft: bool,
    emails: Vec<Choice>,
    windows: Vec<Choice>,
    window_other: String,
    paused: bool,
    /// `all`, `now` or `since`.
    applies: &'static str,
    /// The moment of `since` (RFC 3339), and in words.
    from: String,
    since: String,
    name_error: String,
    wait_error: String,
    state_error: String,
    template_error: String,
    window_error: String,
    other_error: String,
}

/// An event row in the form.
struct EventFormRow {
    i: usize,
    id: String,
    /// Its name when known (then the id is not shown).
    name: String,
    reminders: bool,
    url: String,
    id_error: String,
    url_error: String,
}

/// One day of the dry run.
struct DayRow {
    date: String,
    counts: Vec<usize>,
    total: usize,
}

/// One email of the dry run.
pub(super) struct SendRow {
    pub(super) when: String,
    pub(super) email: String,
    pub(super) event: String,
    pub(super) step: String,
}

/// What updates as you edit: the plan in words, the errors, what saving would do, the dry run
/// and the buyers the passes look at next, all for the form as it is.
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
    /// "Saving will email N buyers within the next hour".
    consequence: String,
    /// Those emails.
    soon: Vec<SendRow>,
    /// Two steps that would send the same email to the same buyers.
    warnings: Vec<String>,
    /// The buyers the passes look at next, under the form's schedule.
    next: Vec<DueRow>,
    /// What the confirmation was shown for (the same again: the save may go ahead).
    token: String,
    /// Emails within the next hour.
    soon_count: usize,
}

#[derive(Template)]
#[template(path = "pages/admin/schedule.html")]
struct SchedulePage {
    active: &'static str,
    notice: String,
    /// Ask to confirm the save (what it will do is in `live`).
    confirm: bool,
    /// How many fields need a change.
    invalid: usize,
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
    let shown = Shown {
        notice: q.notice,
        ..Shown::default()
    };
    show(&state, &editing, &draft, live, shown).await
}

/// `POST /admin/schedule/preview`: the plan and the dry run of the form as posted (for the
/// script; nothing is saved).
pub(super) async fn preview(state: AppState, body: super::Body) -> Result<Response, ApiError> {
    let body = crate::web::read_limited(body, MAX_SCHEDULE_FORM).await?;
    let (posted, _) = read_form(&body)?;
    let draft = posted.draft;
    let fragment = LiveFragment {
        live: live(&state, &draft).await,
    };
    render(&fragment)
}

/// What a page shows beside the form: a notice, a refusal with its errors, a conflict's
/// difference, or the confirmation asked before a save.
#[derive(Default)]
struct Shown {
    notice: String,
    refusal: String,
    diff: Vec<DiffLine>,
    errors: Vec<FieldError>,
    confirm: bool,
}

/// `POST /admin/schedule`: a row button (the form comes back changed, unsaved), Preview, or Save.
/// Save first shows what it will do ("Saving will email N buyers within the next hour", the
/// warnings) and asks to confirm; the confirmation's button saves, unless what it would do has
/// changed since (then it asks again). A save that changes nothing needs no confirmation.
pub(super) async fn post(
    state: AppState,
    (body, peer): (super::Body, Peer),
) -> Result<Response, ApiError> {
    let body = crate::web::read_limited(body, MAX_SCHEDULE_FORM).await?;
    let (posted, confirmed) = read_form(&body)?;
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
        return show(&state, &editing, &draft, live, Shown::default()).await;
    }
    let version = Version::parse(&posted.version).ok_or_else(|| {
        ApiError::BadRequest(
            "the form's file version is not one this page writes: open the schedule again".into(),
        )
    })?;
    // The file as it is on disk: a save over a newer one is refused (with the difference) by
    // the save itself, before any confirmation.
    let current_file = version == editing.version;
    let editing = Editing {
        version: version.clone(),
        ..editing
    };
    let live = live(&state, &draft).await;
    // Valid, and a change: confirmed for exactly what it would do now?
    if editing.file.is_some()
        && current_file
        && let Ok(drafted) = state.workshop.schedule_drafted(&draft).await
    {
        let current = state.engine.settings().config.clone();
        let changes = summary(&current, &drafted.config) != "schedule: saved unchanged";
        if changes && confirmed != live.token {
            let shown = Shown {
                confirm: true,
                ..Shown::default()
            };
            return show(&state, &editing, &draft, live, shown).await;
        }
    }
    let who = client(&state, &peer);
    match state
        .workshop
        .save_schedule(&draft, version.clone(), who)
        .await
    {
        Ok(saved) => {
            let notice = match (&saved.change, &saved.reload) {
                (None, _) => "Nothing to save: the schedule file already says this.".to_string(),
                (Some(_), Ok(())) => format!(
                    "Saved, and in force: the next pass uses the new schedule; {}.",
                    buyers(live.soon_count, "within the next hour")
                ),
                (Some(_), Err(e)) => format!(
                    "Saved, but the service refused to reload it (the running schedule is kept): {e}"
                ),
            };
            Ok(with_notice("/admin/schedule", &[("notice", &notice)]))
        }
        Err(e) => {
            let (status, shown) = match e {
                ScheduleSaveError::Fields(errors) => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Shown {
                        refusal: not_saved(&errors),
                        errors,
                        ..Shown::default()
                    },
                ),
                ScheduleSaveError::Save(crate::workshop::SaveError::Conflict { file, diff }) => (
                    StatusCode::CONFLICT,
                    Shown {
                        refusal: crate::workshop::SaveError::Conflict {
                            file,
                            diff: String::new(),
                        }
                        .to_string(),
                        diff: diff_lines(&diff),
                        ..Shown::default()
                    },
                ),
                ScheduleSaveError::Save(crate::workshop::SaveError::Failed(e)) => {
                    return Err(ApiError::Internal(format!("{e:#}")));
                }
                ScheduleSaveError::Save(other) => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Shown {
                        refusal: other.to_string(),
                        ..Shown::default()
                    },
                ),
            };
            let page = show(&state, &editing, &draft, live, shown).await?;
            Ok(warp::reply::with_status(page, status).into_response())
        }
    }
}

/// "Not saved": the errors about the schedule as a whole, and how many fields are marked.
fn not_saved(errors: &[FieldError]) -> String {
    let general: Vec<String> = errors
        .iter()
        .filter(|e| e.field.is_empty())
        .map(|e| e.message.clone())
        .collect();
    let marked = errors.iter().filter(|e| !e.field.is_empty()).count();
    let mut text = "Not saved:".to_string();
    if marked > 0 {
        text.push_str(&format!(
            " {marked} field{} need{} a change (marked below, each with what to do)",
            if marked == 1 { "" } else { "s" },
            if marked == 1 { "s" } else { "" }
        ));
    }
    if !general.is_empty() {
        if marked > 0 {
            text.push(';');
        }
        text.push(' ');
        text.push_str(&general.join("; "));
    }
    text.push('.');
    text
}

/// "5 buyers will be emailed within the next hour", in words.
fn buyers(n: usize, when: &str) -> String {
    match n {
        0 => format!("no buyer will be emailed {when}"),
        1 => format!("1 buyer will be emailed {when}"),
        n => format!("{n} buyers will be emailed {when}"),
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

/// The form as posted, and the confirmation's token (empty: none).
fn read_form(body: &[u8]) -> Result<(crate::workshop::schedule::Posted, String), ApiError> {
    let mut pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|e| ApiError::BadRequest(format!("the form could not be read: {e}")))?;
    let confirmed = pairs
        .iter()
        .find(|(k, _)| k == "confirmed")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    pairs.retain(|(k, _)| k != "confirmed");
    let posted = Draft::from_form(&pairs, Utc::now())
        .map_err(|e| ApiError::BadRequest(format!("not saved: {}", e.message)))?;
    Ok((posted, confirmed))
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

/// The events' names by id, from what is stored (a page never waits for Quicket's API).
async fn event_names(state: &AppState) -> BTreeMap<String, String> {
    present::event_pages(&state.engine, &state.store, Lookups::CacheOnly)
        .await
        .map(|listing| listing.events.into_iter().map(|e| (e.id, e.name)).collect())
        .unwrap_or_default()
}

/// How long the consequence line looks ahead.
fn next_hour() -> TimeDelta {
    TimeDelta::hours(1)
}

/// The plan in words as the page shows it: events by name, and no cron expression.
fn plan_for_page(config: &Config, names: &BTreeMap<String, String>) -> Vec<String> {
    let scan = format!("; passes run on \"{}\"", config.schedule.scan);
    let off: Vec<String> = config
        .events
        .iter()
        .filter(|(_, e)| !e.reminders)
        .map(|(id, _)| {
            names
                .get(id)
                .cloned()
                .unwrap_or_else(|| format!("event {id}"))
        })
        .collect();
    present::plan_in_words(config)
        .into_iter()
        .filter(|line| !line.starts_with("no reminders for events "))
        .map(|line| line.replace(&scan, ""))
        .chain((!off.is_empty()).then(|| format!("reminders are off for {}", off.join(", "))))
        .collect()
}

/// Two steps (not paused) that would send the same email to buyers in the same state.
fn same_email_warnings(config: &Config, emails: &[EmailChoice]) -> Vec<String> {
    let steps: Vec<_> = config.reminders.iter().filter(|s| !s.paused).collect();
    let mut warnings = Vec::new();
    for (i, a) in steps.iter().enumerate() {
        for b in &steps[i + 1..] {
            let shared: Vec<&str> = a
                .templates()
                .into_iter()
                .filter(|t| b.templates().contains(t))
                .collect();
            let states: Vec<_> = a.when.iter().filter(|s| b.when.contains(s)).collect();
            if shared.is_empty() || states.is_empty() {
                continue;
            }
            let email = shared
                .iter()
                .map(|t| match emails.iter().find(|e| e.name == *t) {
                    Some(e) if !e.subject.is_empty() => format!("{t} (\"{}\")", e.subject),
                    _ => t.to_string(),
                })
                .collect::<Vec<_>>()
                .join(", ");
            warnings.push(format!(
                "{} and {} both send {email} to the same buyers: someone who waits long enough gets the same email twice. Choose another email for one of them (or save anyway, if that is what you want).",
                a.name, b.name
            ));
        }
    }
    warnings
}

/// A token for what a save would do: the form's schedule and the emails within the hour. The
/// confirmation carries it; a save goes ahead only when it is still the same. ("From now on" is
/// the moment of each post: it counts as the same choice.)
fn token(draft: &Draft, soon: &[&forecast::WouldSend]) -> String {
    use std::hash::{Hash, Hasher};
    let mut draft = draft.clone();
    for step in draft.steps.iter_mut().filter(|s| s.from_now) {
        step.from = None;
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    format!("{draft:?}").hash(&mut h);
    for s in soon {
        (&s.email_key, &s.event_id, &s.step).hash(&mut h);
    }
    format!("{:016x}", h.finish())
}

/// What putting `config` in force now would do within the next hour: "{doing} will email N
/// buyers within the next hour", and those emails (for a restore from the history).
pub(super) async fn within_the_hour(
    state: &AppState,
    config: &Config,
    doing: &str,
) -> Result<(String, Vec<SendRow>), ApiError> {
    let now = Utc::now();
    let report = forecast::what_would_send(&state.engine, &state.store, config, now, next_hour())
        .await
        .map_err(|e| ApiError::Internal(format!("the dry run failed: {e:#}")))?;
    let names = event_names(state).await;
    let tz = config.schedule.timezone;
    let buyers: std::collections::BTreeSet<(&str, &str)> = report
        .forecast
        .sends
        .iter()
        .map(|s| (s.email_key.as_str(), s.event_id.as_str()))
        .collect();
    let line = format!(
        "{doing} will email {} within the next hour.",
        match buyers.len() {
            0 => "no buyer".to_string(),
            1 => "1 buyer".to_string(),
            n => format!("{n} buyers"),
        }
    );
    let rows = report
        .forecast
        .sends
        .iter()
        .map(|s| SendRow {
            when: s
                .at
                .with_timezone(&tz)
                .format("%a %-d %b %H:%M")
                .to_string(),
            email: s.email.clone(),
            event: names
                .get(&s.event_id)
                .cloned()
                .unwrap_or_else(|| format!("event {}", s.event_id)),
            step: s.step.clone(),
        })
        .collect();
    Ok((line, rows))
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
        consequence: String::new(),
        soon: Vec::new(),
        warnings: Vec::new(),
        next: Vec::new(),
        token: String::new(),
        soon_count: 0,
    };
    let drafted = match state.workshop.schedule_drafted(draft).await {
        Ok(drafted) => drafted,
        Err(errors) => {
            live.errors = messages(&errors);
            return live;
        }
    };
    let config: Config = drafted.config;
    let names = event_names(state).await;
    let event = |id: &str| {
        names
            .get(id)
            .cloned()
            .unwrap_or_else(|| format!("event {id}"))
    };
    live.plan = plan_for_page(&config, &names);
    let emails = state.workshop.email_choices().await.unwrap_or_default();
    live.warnings = same_email_warnings(&config, &emails);
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
    let buyer_set: std::collections::BTreeSet<(&str, &str)> = f
        .sends
        .iter()
        .map(|s| (s.email_key.as_str(), s.event_id.as_str()))
        .collect();
    let row = |s: &forecast::WouldSend| SendRow {
        when: s
            .at
            .with_timezone(&tz)
            .format("%a %-d %b %H:%M")
            .to_string(),
        email: s.email.clone(),
        event: event(&s.event_id),
        step: s.step.clone(),
    };
    let hour_end: DateTime<Utc> = now + next_hour();
    let soon: Vec<&forecast::WouldSend> = f.sends.iter().filter(|s| s.at < hour_end).collect();
    let soon_buyers: std::collections::BTreeSet<(&str, &str)> = soon
        .iter()
        .map(|s| (s.email_key.as_str(), s.event_id.as_str()))
        .collect();
    live.soon_count = soon_buyers.len();
    live.soon = soon.iter().map(|s| row(s)).collect();
    live.token = token(draft, &soon);
    let later = f.sends.len() - soon.len();
    live.consequence = format!(
        "Saving will email {} within the next hour{}.",
        match soon_buyers.len() {
            0 => "no buyer".to_string(),
            1 => "1 buyer".to_string(),
            n => format!("{n} buyers"),
        },
        match later {
            0 => String::new(),
            n => format!(
                ", then {n} more email{} in the rest of the next 7 days (listed under \"What would this send?\")",
                if n == 1 { "" } else { "s" }
            ),
        }
    );
    live.ran = true;
    live.total = f.sends.len();
    live.summary = format!(
        "In the next 7 days the passes would send {} email{} to {} buyer{}, from {} open checkout{} followed{}{}.",
        f.sends.len(),
        if f.sends.len() == 1 { "" } else { "s" },
        buyer_set.len(),
        if buyer_set.len() == 1 { "" } else { "s" },
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
    live.first = f.sends.iter().take(FIRST_SHOWN).map(row).collect();
    live.more = f.sends.len().saturating_sub(FIRST_SHOWN);
    live.next = report
        .next
        .iter()
        .take(DUE_SHOWN)
        .map(|n| DueRow {
            when: if n.at <= now {
                "now".into()
            } else {
                n.at.with_timezone(&tz)
                    .format("%a %-d %b %H:%M")
                    .to_string()
            },
            link: buyer_link(&n.email_key, &n.event_id),
            email: n.email.clone(),
            event: event(&n.event_id),
            decision: n.why.clone(),
        })
        .collect();
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

/// The window choices: the default (or the schedule's, for a step) in words, the common ones,
/// and the window as it is when it is none of them (`other` then holds it).
fn window_choices(current: &str, for_step: bool, config: &Config) -> (Vec<Choice>, String) {
    let s = &config.schedule;
    let words = |text: &str| {
        window_of(text)
            .map(|w| {
                crate::send_rules::SendRule::new(&w, s.timezone, s.holidays.holidays(), "")
                    .describe()
            })
            .unwrap_or_default()
    };
    let first = if for_step {
        format!("The schedule's: {}", s.send_rule().describe())
    } else {
        format!("The default: {}", words(""))
    };
    let mut choices: Vec<(String, String)> = vec![
        (String::new(), first),
        (
            "za-cpa".into(),
            format!(
                "South Africa's direct-marketing hours (Consumer Protection Act): {}",
                words("za-cpa")
            ),
        ),
        ("08:00-20:00".into(), "Every day, 08:00-20:00".into()),
        ("07:00-21:00".into(), "Every day, 07:00-21:00".into()),
        (
            "any hour".into(),
            "Any hour, day or night (not for direct marketing)".into(),
        ),
    ];
    let current = current.trim();
    let known = choices.iter().any(|(v, _)| v.eq_ignore_ascii_case(current));
    let other = if known {
        String::new()
    } else {
        current.to_string()
    };
    if !known {
        choices.push((
            current.to_string(),
            format!("Your own hours: {}", {
                let w = words(current);
                if w.is_empty() { current.to_string() } else { w }
            }),
        ));
    }
    (
        choices
            .into_iter()
            .map(|(value, label)| Choice {
                selected: value.eq_ignore_ascii_case(current),
                value,
                label,
            })
            .collect(),
        other,
    )
}

/// The email choices of a step: every email there is, with its subject; the step's own when it
/// is not one of them (A/B variants, or a name that does not exist: its error says so).
fn email_choices(current: &str, emails: &[EmailChoice]) -> Vec<Choice> {
    let current = current.trim();
    let mut choices: Vec<Choice> = emails
        .iter()
        .map(|e| Choice {
            value: e.name.clone(),
            label: if e.subject.is_empty() {
                e.name.clone()
            } else {
                format!("{}: \"{}\"", e.name, e.subject)
            },
            selected: e.name == current,
        })
        .collect();
    if !current.is_empty() && !emails.iter().any(|e| e.name == current) {
        choices.insert(
            0,
            Choice {
                value: current.to_string(),
                label: if current.contains(',') {
                    format!("A/B test: {current}")
                } else {
                    format!("{current} (no such email)")
                },
                selected: true,
            },
        );
    }
    choices
}

async fn show(
    state: &AppState,
    editing: &Editing,
    draft: &Draft,
    live: Live,
    shown: Shown,
) -> Result<Response, ApiError> {
    let Shown {
        notice,
        refusal,
        diff,
        errors,
        confirm,
    } = shown;
    let mut field_errors = draft.check();
    let emails = state.workshop.email_choices().await.unwrap_or_default();
    let known: Vec<&str> = emails.iter().map(|e| e.name.as_str()).collect();
    field_errors.extend(draft.check_emails(&known));
    for e in errors {
        if !field_errors.contains(&e) {
            field_errors.push(e);
        }
    }
    let invalid = field_errors.iter().filter(|e| !e.field.is_empty()).count();
    let config = state.engine.settings().config.clone();
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
        .map(|&(key, label)| {
            let value = draft.value(key).to_string();
            let (kind, n, unit, choices, other) = match key {
                "timezone" => ("zone", String::new(), "", Vec::new(), String::new()),
                "send_window" => {
                    let (choices, other) = window_choices(&value, false, &config);
                    ("window", String::new(), "", choices, other)
                }
                _ => {
                    let (n, unit) = number_and_unit(&value);
                    ("duration", n, unit, Vec::new(), String::new())
                }
            };
            ValueRow {
                key,
                label,
                kind,
                value,
                n,
                unit,
                choices,
                other,
                error: error_for(&field_errors, key),
                locked: in_main(key),
            }
        })
        .collect();
    let n = draft.steps.len();
    let tz = config.schedule.timezone;
    let steps = draft
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (wait_n, unit) = number_and_unit(&s.wait);
            let (windows, window_other) = window_choices(&s.window, true, &config);
            let field = |f: &str| error_for(&field_errors, &format!("s{i}.{f}"));
            let known_fields = ["name", "wait", "state", "template", "window"];
            StepRow {
                i,
                last: i + 1 == n,
                orig: s.orig.clone().unwrap_or_default(),
                name: s.name.clone(),
                before_event: s.timing == Timing::BeforeEvent,
                n: wait_n,
                unit,
                started: s.states.contains(&crate::domain::OrderState::Started),
                cancelled: s.states.contains(&crate::domain::OrderState::Cancelled),
                eft: s.states.contains(&crate::domain::OrderState::EftPending),
                emails: email_choices(&s.template, &emails),
                windows,
                window_other,
                paused: s.paused,
                applies: match (s.from, s.from_now) {
                    (None, _) => "all",
                    (Some(_), true) => "now",
                    (Some(_), false) => "since",
                },
                from: s
                    .from
                    .filter(|_| !s.from_now)
                    .map(|f| f.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
                    .unwrap_or_default(),
                since: s
                    .from
                    .map(|f| {
                        f.with_timezone(&tz)
                            .format("%a %-d %b %Y %H:%M")
                            .to_string()
                    })
                    .unwrap_or_default(),
                name_error: field("name"),
                wait_error: field("wait"),
                state_error: field("state"),
                template_error: field("template"),
                window_error: field("window"),
                other_error: field_errors
                    .iter()
                    .filter(|e| {
                        e.field
                            .strip_prefix(&format!("s{i}."))
                            .is_some_and(|f| !known_fields.contains(&f))
                    })
                    .map(|e| e.message.clone())
                    .collect::<Vec<_>>()
                    .join("; "),
            }
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
            id_error: error_for(&field_errors, &format!("e{i}.id")),
            url_error: error_for(&field_errors, &format!("e{i}.url")),
        })
        .collect();
    let events = listing
        .events
        .into_iter()
        .map(|e| EventRow {
            event: e.name,
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
        confirm,
        invalid,
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
    })?;
    Ok(warp::reply::with_header(
        page,
        warp::http::header::CONTENT_SECURITY_POLICY,
        SCHEDULE_CSP,
    )
    .into_response())
}
