//! `/admin/timing`: the timing experiments (steps whose delay is a list), each arm's figures, the
//! verdict between arms in words ("too early to tell" until the confidence sequence decides), and
//! "Keep the winner", which ends the experiment through the save core.

use askama::Template;
use serde::Deserialize;
use warp::reply::Response;

use super::email_editor::{Peer, client, saved_notice, status_of};
use super::{AppState, Notice, page as render, with_notice};
use crate::present::rands;
use crate::store::timing::TimingExperiment;
use crate::web::ApiError;

struct ArmRow {
    delay: String,
    buyers: u64,
    bought: u64,
    rate: String,
    revenue: String,
    vs_control: String,
}

struct ExperimentView {
    step: String,
    /// The step as the organiser names it ("First reminder").
    title: String,
    delays: String,
    running: bool,
    arms: Vec<ArmRow>,
    verdicts: Vec<String>,
    pace: String,
    /// The arm that beats every other, once the intervals say so.
    winner: Option<String>,
}

#[derive(Template)]
#[template(path = "pages/admin/timing.html")]
struct TimingPage {
    active: &'static str,
    notice: String,
    problem: String,
    method: &'static str,
    experiments: Vec<ExperimentView>,
}

fn view(t: &TimingExperiment, running: bool, title: String) -> ExperimentView {
    let winner = t
        .arms
        .iter()
        .map(|a| a.delay.as_str())
        .find(|arm| {
            let mine: Vec<_> = t
                .comparisons
                .iter()
                .filter(|c| c.first == *arm || c.second == *arm)
                .collect();
            !mine.is_empty()
                && mine
                    .iter()
                    .all(|c| crate::present::favoured(c) == Some(*arm))
        })
        .map(str::to_string);
    ExperimentView {
        step: t.step.clone(),
        title,
        delays: t.delays.clone(),
        running,
        arms: t
            .arms
            .iter()
            .map(|a| ArmRow {
                delay: a.delay.clone(),
                buyers: a.buyer_events,
                bought: a.purchases,
                rate: format!("{:.1}%", a.rate * 100.0),
                revenue: rands(a.revenue_cents),
                vs_control: match a.rate_vs_control {
                    Some(d) if d.decided => format!(
                        "{:+.1} points (between {:+.1} and {:+.1})",
                        d.estimate * 100.0,
                        d.low * 100.0,
                        d.high * 100.0
                    ),
                    Some(_) => "too early to tell".into(),
                    None => "no control group to compare with yet".into(),
                },
            })
            .collect(),
        verdicts: t
            .comparisons
            .iter()
            .map(|c| {
                format!(
                    "{} against {}: {}",
                    c.first,
                    c.second,
                    crate::present::verdict(c)
                )
            })
            .collect(),
        pace: crate::present::pace(t).unwrap_or_default(),
        winner,
    }
}

/// The step's display name, or its name when it is no longer in the schedule.
fn title(config: &crate::config::Config, step: &str) -> String {
    config
        .reminders
        .iter()
        .find(|s| s.name == step)
        .map_or_else(|| step.to_string(), |s| s.display_name())
}

async fn timing_page(
    state: &AppState,
    notice: String,
    problem: String,
    status: warp::http::StatusCode,
) -> Result<Response, ApiError> {
    let config = state.engine.settings().config.clone();
    let stats = state
        .store
        .stats(chrono::Utc::now(), config.stats_rules())
        .await?;
    let running = |t: &TimingExperiment| {
        config
            .reminders
            .iter()
            .any(|s| s.name == t.step && s.arms.len() > 1 && s.arms_key() == t.delays)
    };
    let page = TimingPage {
        active: "schedule",
        notice,
        problem,
        method: crate::confseq::METHOD,
        experiments: stats
            .timing
            .iter()
            .map(|t| view(t, running(t), title(&config, &t.step)))
            .collect(),
    };
    let mut response = render(&page)?;
    *response.status_mut() = status;
    Ok(response)
}

/// `GET /admin/timing`
pub(super) async fn page(state: AppState, q: Notice) -> Result<Response, ApiError> {
    timing_page(&state, q.notice, String::new(), warp::http::StatusCode::OK).await
}

/// The "Keep the winner" form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KeepForm {
    step: String,
    delays: String,
    delay: String,
}

/// `POST /admin/timing/keep`: only the arm the intervals name as the winner can be kept here.
pub(super) async fn keep(
    state: AppState,
    (peer, f): (Peer, KeepForm),
) -> Result<Response, ApiError> {
    let config = state.engine.settings().config.clone();
    let stats = state
        .store
        .stats(chrono::Utc::now(), config.stats_rules())
        .await?;
    let Some(t) = stats
        .timing
        .iter()
        .find(|t| t.step == f.step && t.delays == f.delays)
    else {
        return timing_page(
            &state,
            String::new(),
            "That experiment is not running any more: the page was older than the schedule.".into(),
            warp::http::StatusCode::CONFLICT,
        )
        .await;
    };
    let v = view(t, true, String::new());
    if v.winner.as_deref() != Some(f.delay.as_str()) {
        return timing_page(
            &state,
            String::new(),
            format!(
                "Not kept: the figures do not show that the {} arm does better yet. Keeping an arm now would be choosing by chance; the experiment goes on.",
                f.delay
            ),
            warp::http::StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let figures = t
        .arms
        .iter()
        .map(|a| {
            format!(
                "{}: {} buyers, {} bought, {}",
                a.delay,
                a.buyer_events,
                a.purchases,
                rands(a.revenue_cents)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    match state
        .workshop
        .keep_arm(&f.step, &f.delay, &figures, client(&state, &peer))
        .await
    {
        Ok(saved) => Ok(with_notice(
            "/admin/timing",
            &[(
                "notice",
                saved_notice(&saved, &format!("Kept the {} arm of {}", f.delay, f.step)).as_str(),
            )],
        )),
        Err(e) => {
            let status = status_of(&e);
            timing_page(&state, String::new(), e.to_string(), status).await
        }
    }
}
