//! `/admin`, the overview: what the reminders earned (against the control group when there is
//! one), the daily chart, activity, the state of sending, the From domain's DNS, and the Resume
//! button of a paused sending.

use askama::Template;
use chrono::{DateTime, Utc};
use warp::reply::Response;

use super::{AppState, Notice, chart, local, page as render, with_notice};
use crate::config::Config;
use crate::present::rands;
use crate::store::stats::Stats;
use crate::web::ApiError;

struct StepRow {
    step: String,
    clicked: String,
    not_clicked: String,
}
struct WindowLabel {
    label: &'static str,
}
struct ActivityRow {
    label: String,
    counts: Vec<i64>,
}

#[derive(Template)]
#[template(path = "pages/admin/overview.html")]
struct OverviewPage {
    active: &'static str,
    notice: String,
    /// The circuit breaker's pause: since when and why (empty when sending).
    paused_since: String,
    paused_reason: String,
    /// Complaints above Gmail's 0.1% guide, short of pausing.
    deliverability_warning: String,
    /// The From domain's DNS readiness (refreshed daily): when, and each line.
    dns_checked: String,
    dns_findings: Vec<crate::dns::Finding>,
    recovered_revenue: String,
    recovered_purchases: i64,
    clicked_revenue: String,
    clicked_purchases: i64,
    month_revenue: String,
    month_purchases: i64,
    /// What needs the organiser, each with its link.
    todo: Vec<super::attention::Todo>,
    /// The dormant checkouts now, how many can be reminded, and why the others cannot.
    remindable: crate::reminders::remindable::Remindable,
    /// What "dormant" means here: still for this long, changed within that.
    dormant_words: String,
    attribution: String,
    chart: chart::Chart,
    experiment: super::super::experiment_view::ExperimentView,
    by_step: Vec<StepRow>,
    windows: Vec<WindowLabel>,
    activity: Vec<ActivityRow>,
    last_pass: String,
    next_pass: String,
    email_status: String,
    email_class: &'static str,
    attention: i64,
    api_status: String,
    api_class: &'static str,
    /// A refused reload, files changed by hand (see [`super::history::banners`]).
    banners: Vec<String>,
    /// The alerts that last now (but the pause, which has its own notice): what, since, details.
    alerts: Vec<(String, String, String)>,
    /// Whether anyone is told of alerts (`[notify] to`).
    organiser_told: bool,
    /// The steps in force by their names for people, each with the emails it sends (directory,
    /// name for people; linked to their editor).
    steps: Vec<(String, Vec<(String, String)>)>,
    /// The setup checklist: items done and in all, while any is not done.
    setup: Option<(usize, usize)>,
}

/// What an activity row counts, in words ("hookcheckout_started" -> "Checkouts started").
fn activity_label(key: &str) -> String {
    match key {
        "hookcheckout_started" => "Checkouts started".into(),
        "hookcheckout_cancelled" => "Checkouts cancelled".into(),
        "hookeft_pending" => "EFT payments chosen".into(),
        "hookcheckout_completed" => "Purchases completed".into(),
        "hookunreadable" => "Hooks that could not be read".into(),
        "remindersent" => "Reminders sent".into(),
        "reminderskipped" => "Reminders skipped".into(),
        "reminderfailed" => "Reminders refused by the mail server".into(),
        "reminderclaimed" => "Reminders being sent or retried".into(),
        other if other.starts_with("hook") => format!("Hooks: {}", &other[4..]),
        other => format!("Reminders: {}", other.trim_start_matches("reminder")),
    }
}

fn activity(stats: &Stats) -> Vec<ActivityRow> {
    let mut rows = Vec::new();
    let mut keys = |pick: &dyn Fn(
        &crate::store::stats::Window,
    ) -> &std::collections::BTreeMap<String, i64>,
                    prefix: &str| {
        let mut names: Vec<String> = stats
            .windows
            .iter()
            .flat_map(|w| pick(w).keys().cloned())
            .collect();
        names.sort();
        names.dedup();
        for name in names {
            rows.push(ActivityRow {
                label: format!("{prefix}{name}"),
                counts: stats
                    .windows
                    .iter()
                    .map(|w| pick(w).get(&name).copied().unwrap_or(0))
                    .collect(),
            });
        }
    };
    keys(&|w| &w.hooks, "hook");
    keys(&|w| &w.reminders, "reminder");
    for row in &mut rows {
        row.label = activity_label(&row.label).to_string();
    }
    rows
}

/// `GET /admin`: what the reminders earned, the control group, activity, and what needs attention.
pub(super) async fn page(state: AppState, q: Notice) -> Result<Response, ApiError> {
    let state = &state;
    let settings = state.engine.settings();
    let config = &settings.config;
    let now = Utc::now();
    let stats = state.store.stats(now, config.stats_rules()).await?;
    let last = state.store.last_pass().await?;
    let waiting = state.store.failing_claims().await?;
    let failed_recently = stats
        .windows
        .get(1)
        .and_then(|w| w.reminders.get("failed").copied())
        .unwrap_or(0);
    let last_error = state.store.last_send_error().await?;
    let (email_status, email_class) = email_status(state, config, last_error, waiting);
    let (api_status, api_class) = api_status(state.engine.events().status().await);
    let r = &stats.recovered;
    let money =
        |m: &crate::store::stats::Money| format!("{} ({})", m.purchases, rands(m.revenue_cents));
    let (dns_checked, dns_findings) = dns_readiness(state, now).await?;
    let pause = state.store.sending_pause().await?;
    let rates = crate::reminders::breaker::rates(&state.store, now).await?;
    let banners = super::history::banners(state).await;
    let alerts = state
        .store
        .open_alerts()
        .await?
        .into_iter()
        .filter(|a| a.condition != crate::notify::alerts::Condition::Paused.key())
        .map(|a| {
            let title = crate::notify::alerts::Condition::from_key(&a.condition)
                .map_or("Something needs attention", |c| c.title());
            let title = format!("{}{}", title[..1].to_uppercase(), &title[1..]);
            (title, local(state, &a.started_at), a.summary)
        })
        .collect();
    let week = state.store.since(now - chrono::Duration::days(7)).await?;
    let outbox = (config.email.transport == crate::config::Transport::Outbox)
        .then(|| config.email.outbox_dir.display().to_string());
    let todo = super::attention::todo(&super::attention::Inputs {
        email: (&email_status, email_class),
        outbox: outbox.as_deref(),
        dns: &dns_findings,
        attention: waiting + failed_recently,
        api: (&api_status, api_class),
        week: &week,
    });
    let remindable =
        crate::reminders::remindable::remindable(&state.engine, &state.store, now).await?;
    let still = if config.schedule.dormant_after.is_zero() {
        String::new()
    } else {
        format!(
            " untouched for {} or more,",
            crate::domain::duration_for_people(config.schedule.dormant_after)
        )
    };
    let dormant_words = format!(
        "checkouts left unpaid,{still} changed within the last {}",
        crate::domain::duration_for_people(config.schedule.give_up_after)
    );
    let steps = state
        .engine
        .settings()
        .config
        .reminders
        .iter()
        .map(|s| {
            let templates = s
                .templates()
                .into_iter()
                .map(|t| (t.to_string(), crate::present::email_name(t)))
                .collect();
            (s.display_name(), templates)
        })
        .collect();
    let checklist = super::checklist::items(state).await?;
    let done = checklist.iter().filter(|i| i.done).count();
    let setup = (done < checklist.len()).then_some((done, checklist.len()));
    // Steps by their names for people (a step no longer configured by its derived one), emails
    // by theirs.
    let step_name = |name: &str| {
        config
            .reminders
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.display_name())
            .unwrap_or_else(|| crate::config::step_display_name(name))
    };
    let mut experiment = super::super::experiment_view::view(&stats);
    for s in experiment.steps.iter_mut() {
        s.step = step_name(&s.step);
        for v in s.rows.iter_mut() {
            let name = crate::present::email_name(&v.template);
            if let Some(rest) = s
                .verdict
                .strip_prefix(&format!("{} does better", v.template))
            {
                s.verdict = format!("{name} does better{rest}");
            }
            v.template = name;
        }
    }
    render(&OverviewPage {
        setup,
        banners,
        alerts,
        organiser_told: !config.notify.to.is_empty(),
        steps,
        active: "overview",
        notice: q.notice,
        paused_since: pause
            .as_ref()
            .map(|p| local(state, &p.since))
            .unwrap_or_default(),
        paused_reason: pause.map(|p| p.reason).unwrap_or_default(),
        dns_checked,
        dns_findings,
        deliverability_warning: crate::reminders::breaker::assess(&rates)
            .warning
            .unwrap_or_default(),
        recovered_revenue: rands(r.total.revenue_cents),
        recovered_purchases: r.total.purchases,
        clicked_revenue: rands(r.clicked.revenue_cents),
        clicked_purchases: r.clicked.purchases,
        month_revenue: rands(r.last_30_days.revenue_cents),
        month_purchases: r.last_30_days.purchases,
        todo,
        remindable,
        dormant_words,
        attribution: crate::domain::duration_for_people(config.schedule.attribution_window),
        chart: chart::chart(&stats),
        experiment,
        by_step: r
            .by_step
            .iter()
            .map(|s| StepRow {
                step: step_name(&s.step),
                clicked: money(&s.clicked),
                not_clicked: money(&s.not_clicked),
            })
            .collect(),
        windows: stats
            .windows
            .iter()
            .map(|w| WindowLabel { label: w.window })
            .collect(),
        activity: activity(&stats),
        last_pass: last_pass(state, last.as_ref()),
        next_pass: next_pass(state.scheduled, config, now),
        email_status,
        email_class,
        attention: waiting + failed_recently,
        api_status,
        api_class,
    })
}

/// The last pass in words.
fn last_pass(state: &AppState, last: Option<&crate::store::reminders::PassRecord>) -> String {
    match last {
        Some(p) => format!(
            "{}: considered {}, sent {}, failed {}",
            local(state, &p.started_at),
            p.counts.considered,
            p.counts.sent,
            p.counts.failed
        ),
        None => "none yet".into(),
    }
}

/// When the next scheduled pass runs, in the configured zone.
fn next_pass(scheduled: bool, config: &Config, now: DateTime<Utc>) -> String {
    match (scheduled, crate::config::parse_cron(&config.schedule.scan)) {
        (true, Ok(cron)) => cron
            .find_next_occurrence(&now.with_timezone(&config.schedule.timezone), false)
            .map(|t| t.format("%a %-d %b %H:%M:%S").to_string())
            .unwrap_or_else(|_| "not scheduled".into()),
        _ => "passes run only with run-once here".into(),
    }
}

/// How sending goes, and the class that colours it: failing while sends wait for a retry,
/// working with the last failure, or not sending at all (the outbox).
fn email_status(
    state: &AppState,
    config: &Config,
    last_error: Option<(String, String)>,
    waiting: i64,
) -> (String, &'static str) {
    match (&last_error, waiting) {
        (Some((at, error)), n) if n > 0 => {
            (format!("failing: {error} ({})", local(state, at)), "bad")
        }
        (Some((at, error)), _) => (
            format!("working; last failure {}: {error}", local(state, at)),
            "warn",
        ),
        (None, _) if config.email.transport == crate::config::Transport::Outbox => (
            format!(
                "not sending: emails are written to {} (set email.transport = \"smtp\")",
                config.email.outbox_dir.display()
            ),
            "warn",
        ),
        (None, _) => ("working (SMTP)".into(), "ok"),
    }
}

/// How Quicket's API goes, and the class that colours it.
fn api_status(api: crate::events::ApiStatus) -> (String, &'static str) {
    use crate::events::ApiState;
    match api.state {
        ApiState::Off => (
            "off: set quicket.api_key for event pages, images and sold-out tickets".to_string(),
            "muted",
        ),
        ApiState::Waiting => ("on; no event looked up yet".to_string(), "ok"),
        ApiState::Ok => (format!("working; {} events known", api.events), "ok"),
        ApiState::Failing => (
            format!(
                "failing for {} of {} events: {} (emails use the configured URL)",
                api.failing,
                api.events,
                api.last_error.unwrap_or_default()
            ),
            "warn",
        ),
    }
}

/// The last DNS readiness verdict; one older than a day (or none) is refreshed in the background,
/// so the page never waits on DNS.
pub(super) async fn dns_readiness(
    state: &AppState,
    now: DateTime<Utc>,
) -> Result<(String, Vec<crate::dns::Finding>), ApiError> {
    static REFRESHING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let cached = state.store.dns_readiness().await?;
    let stale = cached
        .as_ref()
        .is_none_or(|(at, _)| now - *at > chrono::Duration::days(1));
    if stale && !REFRESHING.swap(true, std::sync::atomic::Ordering::SeqCst) {
        let store = state.store.clone();
        let email = state.engine.settings().config.email.clone();
        tokio::spawn(async move {
            let findings = crate::dns::readiness(&email).await;
            if let Err(e) = store.set_dns_readiness(Utc::now(), findings).await {
                tracing::warn!("cannot keep the DNS readiness verdict: {e}");
            }
            REFRESHING.store(false, std::sync::atomic::Ordering::SeqCst);
        });
    }
    Ok(match cached {
        Some((at, findings)) => (local(state, &crate::store::timestamp(at)), findings),
        None => (
            "being checked now; reload the page in a few seconds".into(),
            vec![],
        ),
    })
}

/// The circuit breaker's Resume button.
pub(super) async fn resume_sending(state: AppState) -> Result<Response, ApiError> {
    let message = match state.store.resume_sending(Utc::now()).await? {
        Some(_) => "Sending resumed: the reminders that waited go out from the next pass.",
        None => "Sending was not paused.",
    };
    Ok(with_notice("/admin", &[("notice", message)]))
}
