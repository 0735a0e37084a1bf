//! `/admin`: the operator's pages (askama, server-rendered, no scripts), behind HTTP basic auth
//! (user `admin`, `server.admin_password`; off when that is empty).

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use subtle::ConstantTimeEq;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::{StatusCode, header};
use warp::reply::{Reply, Response};

use super::ApiError;
use super::throttle::{self, LoginThrottle};
use crate::check::{describe_event, plan_in_words, rands, render_step};
use crate::reminders::Engine;
use crate::store::Store;
use crate::store::privacy::SuppressionSource;
use crate::store::stats::Stats;

/// What the admin pages need.
#[derive(Clone)]
pub struct AdminState {
    /// The store.
    pub store: Store,
    /// The engine (settings in force, links, transport).
    pub engine: Arc<Engine>,
    /// The password; empty turns /admin off.
    pub password: String,
    /// Whether passes run on a schedule here.
    pub scheduled: bool,
    /// Failed logins per client (shared by every route; set by [`routes`]).
    pub throttle: Arc<LoginThrottle>,
}

/// Why an admin request was refused (mapped to a status in [`super::recover`]).
#[derive(Debug)]
pub enum AdminRefused {
    /// No password configured: /admin does not exist.
    Off,
    /// Missing or wrong credentials.
    Unauthorized,
    /// A form posted from another site (or from somewhere the browser would not say).
    CrossSite,
    /// Too many failed logins from this client: try again after this many seconds.
    Throttled(u64),
}

impl warp::reject::Reject for AdminRefused {}

fn authorized(password: &str, header: Option<&str>) -> bool {
    let Some(encoded) = header.and_then(|h| h.strip_prefix("Basic ")) else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let expected = format!("admin:{password}");
    bool::from(decoded.as_slice().ct_eq(expected.as_bytes()))
}

/// The request headers the guard looks at.
struct Door {
    method: warp::http::Method,
    peer: Option<std::net::SocketAddr>,
    forwarded_for: Option<String>,
    authorization: Option<String>,
    host: Option<String>,
    origin: Option<String>,
    fetch_site: Option<String>,
}

/// The `host[:port]` of an origin or URL (`https://x.co.za:8443/path` -> `x.co.za:8443`).
fn authority(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    rest.split(['/', '?', '#']).next().filter(|a| !a.is_empty())
}

/// Whether a POST comes from our own pages. The browser sends basic credentials along with a form
/// posted from any site, so the request must say where it comes from: `Sec-Fetch-Site:
/// same-origin`, or an `Origin` naming this host or `server.public_url`. A request that says
/// neither is refused (old browsers send `Origin` on every POST too).
fn same_origin(door: &Door, public_url: &str) -> bool {
    if let Some(site) = &door.fetch_site
        && !site.eq_ignore_ascii_case("same-origin")
    {
        return false;
    }
    match door.origin.as_deref() {
        Some(origin) => authority(origin).is_some_and(|theirs| {
            door.host
                .as_deref()
                .is_some_and(|host| theirs.eq_ignore_ascii_case(host))
                || authority(public_url).is_some_and(|ours| theirs.eq_ignore_ascii_case(ours))
        }),
        None => door.fetch_site.is_some(),
    }
}

/// Basic auth with login throttling per client, and for POSTs a same-origin check.
fn check_door(state: &AdminState, door: &Door) -> Result<(), AdminRefused> {
    if state.password.is_empty() {
        return Err(AdminRefused::Off);
    }
    let config = state.engine.settings().config.clone();
    let client = crate::proxies::client_ip(
        door.peer.map(|p| p.ip()),
        door.forwarded_for.as_deref(),
        &config.server.trusted_proxies,
    );
    let now = std::time::Instant::now();
    if let Some(wait) = state.throttle.blocked(client, now) {
        // Rounded up, so a client that waits as told is let in.
        return Err(AdminRefused::Throttled(wait.as_secs() + 1));
    }
    if !authorized(&state.password, door.authorization.as_deref()) {
        // A browser's first request carries no credentials; only a wrong password is a failure.
        if door.authorization.is_some() {
            let refused = state.throttle.failed(client, now);
            tracing::warn!(%client, "a failed /admin login");
            if refused {
                tracing::warn!(
                    %client,
                    "{} failed /admin logins within {} minutes: this client is refused for a while",
                    throttle::MAX_FAILURES,
                    throttle::WINDOW.as_secs() / 60
                );
            }
        }
        return Err(AdminRefused::Unauthorized);
    }
    if door.method == warp::http::Method::POST && !same_origin(door, &config.public_url()) {
        tracing::warn!(%client, "an /admin form posted from another site was refused");
        return Err(AdminRefused::CrossSite);
    }
    Ok(())
}

/// The guard in front of every `/admin` route; runs once per request.
fn guard(state: AdminState) -> BoxedFilter<(AdminState,)> {
    let door = warp::method()
        // The connection layer's address (warp's own addr::remote() is set only by warp::serve).
        .and(crate::connections::remote())
        .and(warp::header::optional::<String>("x-forwarded-for"))
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::header::optional::<String>("host"))
        .and(warp::header::optional::<String>("origin"))
        .and(warp::header::optional::<String>("sec-fetch-site"))
        .map(
            |method, peer, forwarded_for, authorization, host, origin, fetch_site| Door {
                method,
                peer,
                forwarded_for,
                authorization,
                host,
                origin,
                fetch_site,
            },
        );
    warp::path("admin")
        .and(door)
        .and_then(move |door: Door| {
            let state = state.clone();
            async move {
                check_door(&state, &door).map_err(warp::reject::custom)?;
                Ok::<_, warp::Rejection>(state)
            }
        })
        .boxed()
}

/// The response for a refused admin request.
pub fn refused(why: &AdminRefused) -> Response {
    match why {
        AdminRefused::Off => super::json_status(
            &serde_json::json!({"status": "error", "error": "/admin is off: set server.admin_password to turn it on"}),
            StatusCode::NOT_FOUND,
        ),
        AdminRefused::Unauthorized => warp::reply::with_header(
            warp::reply::with_status(
                "Sign in as admin with server.admin_password.\n",
                StatusCode::UNAUTHORIZED,
            ),
            header::WWW_AUTHENTICATE,
            "Basic realm=\"quicket-followup\", charset=\"UTF-8\"",
        )
        .into_response(),
        AdminRefused::CrossSite => warp::reply::with_status(
            "This form was posted from another site.\n",
            StatusCode::FORBIDDEN,
        )
        .into_response(),
        AdminRefused::Throttled(seconds) => warp::reply::with_header(
            warp::reply::with_status(
                format!("Too many failed sign-ins from here: try again in {seconds} seconds.\n"),
                StatusCode::TOO_MANY_REQUESTS,
            ),
            header::RETRY_AFTER,
            seconds.to_string(),
        )
        .into_response(),
    }
}

fn page(page: &impl Template) -> Result<Response, ApiError> {
    let body = page
        .render()
        .map_err(|e| ApiError::Internal(format!("page could not be rendered: {e}")))?;
    Ok(
        warp::reply::with_header(warp::reply::html(body), header::CACHE_CONTROL, "no-store")
            .into_response(),
    )
}

fn see_other(location: &str) -> Response {
    warp::reply::with_header(StatusCode::SEE_OTHER, header::LOCATION, location).into_response()
}

fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(Reply::into_response)
}

type Query = HashMap<String, String>;

/// The page an `/admin` request asks for, once past the guard.
enum Page {
    Overview(Query),
    Orders(Query),
    Buyer(Query),
    Emails(Query),
    Render(Query),
    SendTest(Query),
    Schedule,
    Suppressions(Query),
    Suppress(Query),
    Unsuppress(Query),
    Problems(Query),
    ProblemBody(i64),
    Replay,
    ResumeSending,
}

/// Every `/admin` route.
pub fn routes(mut state: AdminState) -> BoxedFilter<(Response,)> {
    // One throttle for all the routes, whoever built the state.
    state.throttle = Arc::new(LoginThrottle::default());
    let form = || warp::body::content_length_limit(16 * 1024).and(warp::body::form::<Query>());
    let query = || warp::query::<Query>();
    let get = |route: BoxedFilter<()>, page: fn(Query) -> Page| {
        route.and(warp::get()).and(query()).map(page).boxed()
    };
    let post = |route: BoxedFilter<()>, page: fn(Query) -> Page| {
        route.and(warp::post()).and(form()).map(page).boxed()
    };
    let pages = get(warp::path::end().boxed(), Page::Overview)
        .or(get(warp::path!("orders").boxed(), Page::Orders))
        .unify()
        .or(get(warp::path!("buyer").boxed(), Page::Buyer))
        .unify()
        .or(get(warp::path!("emails").boxed(), Page::Emails))
        .unify()
        .or(get(warp::path!("emails" / "render").boxed(), Page::Render))
        .unify()
        .or(post(warp::path!("emails" / "test").boxed(), Page::SendTest))
        .unify()
        .or(warp::path!("schedule")
            .and(warp::get())
            .map(|| Page::Schedule))
        .unify()
        .or(get(warp::path!("suppressions").boxed(), Page::Suppressions))
        .unify()
        .or(post(warp::path!("suppressions").boxed(), Page::Suppress))
        .unify()
        .or(post(
            warp::path!("suppressions" / "remove").boxed(),
            Page::Unsuppress,
        ))
        .unify()
        .or(get(warp::path!("problems").boxed(), Page::Problems))
        .unify()
        .or(warp::path!("problems" / i64 / "body")
            .and(warp::get())
            .map(Page::ProblemBody))
        .unify()
        .or(warp::path!("replay").and(warp::post()).map(|| Page::Replay))
        .unify()
        .or(warp::path!("sending" / "resume")
            .and(warp::post())
            .map(|| Page::ResumeSending))
        .unify();
    guard(state)
        .and(pages)
        .then(|s: AdminState, page: Page| async move { respond(show(&s, page).await) })
        .boxed()
}

async fn show(s: &AdminState, page: Page) -> Result<Response, ApiError> {
    match page {
        Page::Overview(q) => overview(s, &q).await,
        Page::Orders(q) => orders(s, &q).await,
        Page::Buyer(q) => buyer(s, &q).await,
        Page::Emails(q) => emails(s, &q).await,
        Page::Render(q) => render(s, &q).await,
        Page::SendTest(f) => send_test(s, &f).await,
        Page::Schedule => schedule(s).await,
        Page::Suppressions(q) => suppressions(s, &q).await,
        Page::Suppress(f) => change_suppression(s, &f, true).await,
        Page::Unsuppress(f) => change_suppression(s, &f, false).await,
        Page::Problems(q) => problems(s, &q).await,
        Page::ProblemBody(id) => problem_body(s, id).await,
        Page::Replay => replay(s).await,
        Page::ResumeSending => resume_sending(s).await,
    }
}

/// A time for people, in the configured zone.
fn local(state: &AdminState, at: &str) -> String {
    let tz = state.engine.settings().config.schedule.timezone;
    crate::store::parse_timestamp(at)
        .map(|t| {
            t.with_timezone(&tz)
                .format("%a %-d %b %Y %H:%M")
                .to_string()
        })
        .unwrap_or_else(|_| at.to_string())
}

fn notice(q: &Query) -> String {
    q.get("notice").cloned().unwrap_or_default()
}

fn buyer_link(email_key: &str, event_id: &str) -> String {
    let query = serde_urlencoded::to_string([("email", email_key), ("event", event_id)])
        .unwrap_or_default();
    format!("/admin/buyer?{query}")
}

// ----- overview ---------------------------------------------------------------------------

struct ChartBar {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    title: String,
}
struct ChartDot {
    x: f64,
    y: f64,
    title: String,
}
struct ChartLabel {
    x: f64,
    anchor: &'static str,
    text: String,
}
struct Chart {
    width: u32,
    height: u32,
    base: f64,
    max: i64,
    bars: Vec<ChartBar>,
    dots: Vec<ChartDot>,
    labels: Vec<ChartLabel>,
}

fn chart(stats: &Stats) -> Chart {
    let (width, height, left, base) = (640u32, 180u32, 30.0, 160.0);
    let max = stats
        .daily
        .iter()
        .map(|d| d.sent.max(d.recovered))
        .max()
        .unwrap_or(0)
        .max(1);
    let step = (f64::from(width) - left) / stats.daily.len().max(1) as f64;
    let scale = |n: i64| (base - 10.0) * n as f64 / max as f64;
    // One decimal is plenty for an SVG this size and keeps the page small.
    let r = |v: f64| (v * 10.0).round() / 10.0;
    let mut chart = Chart {
        width,
        height,
        base,
        max,
        bars: Vec::new(),
        dots: Vec::new(),
        labels: Vec::new(),
    };
    for (i, day) in stats.daily.iter().enumerate() {
        let x = left + i as f64 * step;
        let h = scale(day.sent);
        chart.bars.push(ChartBar {
            x: r(x + step * 0.15),
            y: r(base - h),
            w: r(step * 0.7),
            h: r(h),
            title: format!("{}: {} sent", day.date, day.sent),
        });
        if day.recovered > 0 {
            chart.dots.push(ChartDot {
                x: r(x + step / 2.0),
                y: r(base - scale(day.recovered)),
                title: format!("{}: {} recovered", day.date, day.recovered),
            });
        }
        let last = i + 1 == stats.daily.len();
        // Weekly labels, and today's; a weekly one too close to today's would overlap it.
        if last || (i % 7 == 0 && stats.daily.len() - i > 4) {
            let text = chrono::NaiveDate::parse_from_str(&day.date, "%Y-%m-%d")
                .map(|d| d.format("%-d %b").to_string())
                .unwrap_or_else(|_| day.date.clone());
            // Today's label ends at the right edge instead of running past it.
            let (x, anchor) = if last {
                (f64::from(width), "end")
            } else {
                (r(x + step / 2.0), "middle")
            };
            chart.labels.push(ChartLabel { x, anchor, text });
        }
    }
    chart
}

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
    dormant_now: i64,
    attribution: String,
    chart: Chart,
    experiment: super::experiment_view::ExperimentView,
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

async fn overview(state: &AdminState, q: &Query) -> Result<Response, ApiError> {
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
    let next_pass = match (
        state.scheduled,
        crate::config::parse_cron(&config.schedule.scan),
    ) {
        (true, Ok(cron)) => cron
            .find_next_occurrence(&now.with_timezone(&config.schedule.timezone), false)
            .map(|t| t.format("%a %-d %b %H:%M:%S").to_string())
            .unwrap_or_else(|_| "not scheduled".into()),
        _ => "passes run only with run-once here".into(),
    };
    let (email_status, email_class) = match (&last_error, waiting) {
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
    };
    let api = state.engine.events().status().await;
    let (api_status, api_class) = match api.state {
        "off" => (
            "off: set quicket.api_key for event pages, images and sold-out tickets".to_string(),
            "muted",
        ),
        "waiting" => ("on; no event looked up yet".to_string(), "ok"),
        "ok" => (format!("working; {} events known", api.events), "ok"),
        _ => (
            format!(
                "failing for {} of {} events: {} (emails use the configured URL)",
                api.failing,
                api.events,
                api.last_error.unwrap_or_default()
            ),
            "warn",
        ),
    };
    let r = &stats.recovered;
    let money =
        |m: &crate::store::stats::Money| format!("{} ({})", m.purchases, rands(m.revenue_cents));
    let (dns_checked, dns_findings) = dns_readiness(state, now).await?;
    let pause = state.store.sending_pause().await?;
    let rates = crate::reminders::breaker::rates(&state.store, now).await?;
    page(&OverviewPage {
        active: "overview",
        notice: notice(q),
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
        dormant_now: stats.dormant_now,
        attribution: crate::domain::duration_for_people(config.schedule.attribution_window),
        chart: chart(&stats),
        experiment: super::experiment_view::view(&stats),
        by_step: r
            .by_step
            .iter()
            .map(|s| StepRow {
                step: s.step.clone(),
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
        last_pass: match &last {
            Some(p) => format!(
                "{}: considered {}, sent {}, failed {}",
                local(state, &p.started_at),
                p.counts.considered,
                p.counts.sent,
                p.counts.failed
            ),
            None => "none yet".into(),
        },
        next_pass,
        email_status,
        email_class,
        attention: waiting + failed_recently,
        api_status,
        api_class,
    })
}

// ----- orders and the timeline ----------------------------------------------------------

struct OrderRow {
    link: String,
    name: String,
    email: String,
    amount: String,
    event: String,
    state: &'static str,
    changed: String,
    decision: String,
}

/// A stored state name for people ("checkout_completed" -> "Paid").
fn state_for_people(state: &str) -> &'static str {
    crate::domain::OrderState::from_action(state).map_or("Unknown", |s| s.for_people())
}

/// A pass's latest decision for people.
fn decision_for_people(decision: Option<&str>, reason: Option<&str>) -> String {
    let reason = reason.unwrap_or_default();
    match decision {
        Some("sent") => "Emailed".into(),
        Some("deferred") => format!("Waiting: {reason}"),
        Some("skipped") => format!("Not emailed: {reason}"),
        Some("failed") => format!("Sending failed: {reason}"),
        Some("done") => format!("Nothing more to send: {reason}"),
        Some(other) => format!("{other}: {reason}"),
        None => "Not looked at yet".into(),
    }
}

fn money(cents: Option<i64>) -> String {
    cents.map(rands).unwrap_or_default()
}

#[derive(Template)]
#[template(path = "pages/admin/orders.html")]
struct OrdersPage {
    active: &'static str,
    notice: String,
    query: String,
    rows: Vec<OrderRow>,
}

async fn orders(state: &AdminState, q: &Query) -> Result<Response, ApiError> {
    let query = q.get("q").cloned().unwrap_or_default();
    let rows = state.store.search(&query).await?;
    page(&OrdersPage {
        active: "orders",
        notice: notice(q),
        rows: rows
            .into_iter()
            .map(|r| OrderRow {
                link: buyer_link(&r.email_key, &r.event_id),
                name: r.buyer_name,
                amount: money(r.amount_cents),
                email: r.email_key,
                event: format!("{} ({})", r.event_name, r.event_id),
                state: state_for_people(&r.state),
                changed: local(state, &r.changed_at),
                decision: decision_for_people(r.last_decision.as_deref(), r.last_reason.as_deref()),
            })
            .collect(),
        query,
    })
}

struct EntryView {
    kind: &'static str,
    at: String,
    title: String,
    detail: String,
    body: String,
}

#[derive(Template)]
#[template(path = "pages/admin/buyer.html")]
struct BuyerPage {
    active: &'static str,
    notice: String,
    name: String,
    email: String,
    event: String,
    event_date: String,
    amount: String,
    tickets: i64,
    state: &'static str,
    references: String,
    next_check: String,
    entries: Vec<EntryView>,
}

async fn buyer(state: &AdminState, q: &Query) -> Result<Response, ApiError> {
    let (email, event) = (
        q.get("email").cloned().unwrap_or_default(),
        q.get("event").cloned().unwrap_or_default(),
    );
    let Some(t) = state.store.timeline(&email, &event).await? else {
        return Ok(see_other("/admin/orders?notice=No+such+buyer+and+event"));
    };
    page(&BuyerPage {
        active: "orders",
        notice: notice(q),
        name: t.buyer_event.buyer_name.clone(),
        email: if t.email.is_empty() {
            t.buyer_event.email_key.clone()
        } else {
            t.email.clone()
        },
        event: format!("{} ({})", t.buyer_event.event_name, t.buyer_event.event_id),
        event_date: t
            .buyer_event
            .event_date
            .as_deref()
            .and_then(|d| chrono::NaiveDateTime::parse_from_str(d, "%Y-%m-%d %H:%M:%S").ok())
            .map(|d| crate::templates::format_date(Some(d)))
            .unwrap_or_default(),
        amount: money(t.buyer_event.amount_cents),
        tickets: t.buyer_event.tickets,
        state: state_for_people(&t.buyer_event.state),
        references: t.references.join(", "),
        next_check: t
            .buyer_event
            .next_check_at
            .as_deref()
            .map(|n| local(state, n))
            .unwrap_or_default(),
        entries: t
            .entries
            .iter()
            .map(|e| EntryView {
                kind: e.kind,
                at: local(state, &e.at),
                title: e.title.clone(),
                detail: e.detail.clone().unwrap_or_default(),
                body: e.body.clone().unwrap_or_default(),
            })
            .collect(),
    })
}

// ----- emails ----------------------------------------------------------------------------

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
}

async fn rendered(
    state: &AdminState,
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
    Ok(render_step(
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

async fn emails(state: &AdminState, q: &Query) -> Result<Response, ApiError> {
    let settings = state.engine.settings();
    let steps: Vec<String> = settings.config.step_names();
    let step = q
        .get("step")
        .cloned()
        .or_else(|| steps.first().cloned())
        .unwrap_or_default();
    let reference = q
        .get("reference")
        .cloned()
        .unwrap_or_default()
        .trim()
        .to_string();
    let (subject, error) = match rendered(state, &step, &reference).await? {
        Ok(r) => (r.subject, String::new()),
        Err(e) => (String::new(), e),
    };
    let frame = format!(
        "/admin/emails/render?{}",
        serde_urlencoded::to_string([("step", step.as_str()), ("reference", reference.as_str())])
            .unwrap_or_default()
    );
    page(&EmailsPage {
        active: "emails",
        notice: notice(q),
        steps,
        step,
        reference,
        subject,
        frame,
        error,
        source: match state.engine.settings().templates.source() {
            crate::config::TemplateSource::BuiltIn => format!(
                "The built-in templates are in use (templates.dir is unset and there is no {}): run `quicket-followup init` to write them out for editing.",
                crate::config::DEFAULT_TEMPLATES_DIR
            ),
            crate::config::TemplateSource::Dir(dir) => {
                format!("The templates in {} are in use.", dir.display())
            }
        },
    })
}

async fn render(state: &AdminState, q: &Query) -> Result<Response, ApiError> {
    let step = q.get("step").cloned().unwrap_or_default();
    let reference = q.get("reference").cloned().unwrap_or_default();
    match rendered(state, &step, reference.trim()).await? {
        Ok(r) => {
            // The email's own HTML, shown in a sandboxed frame of our emails page: no scripts, no
            // forms, framed only by our own pages, sandboxed even when opened on its own.
            let mut reply = warp::reply::html(r.html).into_response();
            let headers = reply.headers_mut();
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                header::HeaderValue::from_static(super::headers::PREVIEW_CSP),
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

async fn send_test(state: &AdminState, f: &Query) -> Result<Response, ApiError> {
    let address = f.get("email").cloned().unwrap_or_default();
    let reference = f.get("reference").cloned().unwrap_or_default();
    let order = if reference.trim().is_empty() {
        None
    } else {
        state.store.order(reference.trim()).await?
    };
    let settings = state.engine.settings();
    let mut report = crate::check::CheckReport::default();
    crate::check::send_tests(
        &state.engine,
        &settings,
        order.as_ref(),
        address.trim(),
        &mut report,
    )
    .await;
    let message = if report.errors.is_empty() {
        format!(
            "Sent {} test emails to {}.",
            report.ok.len(),
            address.trim()
        )
    } else {
        format!("Test emails failed: {}", report.errors.join("; "))
    };
    let query = serde_urlencoded::to_string([
        ("notice", message.as_str()),
        ("reference", reference.as_str()),
    ])
    .unwrap_or_default();
    Ok(see_other(&format!("/admin/emails?{query}")))
}

// ----- schedule, suppressions, problems ----------------------------------------------------

struct DueRow {
    when: String,
    link: String,
    email: String,
    event: String,
    decision: String,
}

#[derive(Template)]
#[template(path = "pages/admin/schedule.html")]
struct SchedulePage {
    active: &'static str,
    notice: String,
    plan: Vec<String>,
    due: Vec<DueRow>,
    events: Vec<EventRow>,
}

/// An event on the schedule page: the page its emails link to, and where that came from.
struct EventRow {
    event: String,
    url: String,
    source: String,
    details: String,
}

/// Events listed on the schedule page at most (the latest event dates first).
const EVENTS_SHOWN: usize = 50;

async fn schedule(state: &AdminState) -> Result<Response, ApiError> {
    let settings = state.engine.settings();
    let due = state.store.next_due(50).await?;
    // From the cache only: a page view never waits for Quicket's API.
    let (known, stored) = state
        .store
        .read(|conn| {
            let mut known = crate::store::event_info::known_events(conn)?;
            known.truncate(EVENTS_SHOWN);
            Ok((known, crate::store::event_info::all(conn)?))
        })
        .await?;
    let enabled = state.engine.events().enabled();
    let events = known
        .iter()
        .map(|event| {
            let row = stored.iter().find(|r| r.event_id == event.event_id);
            let info = row.and_then(|r| r.info.as_ref());
            let page = describe_event(&settings.config, event, info, row, enabled);
            EventRow {
                event: format!("{} ({})", event.name, event.event_id),
                url: page.url,
                source: page.source,
                details: page.details.trim_start_matches([',', ';', ' ']).to_string(),
            }
        })
        .collect();
    page(&SchedulePage {
        active: "schedule",
        notice: String::new(),
        events,
        plan: plan_in_words(&settings.config),
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
    })
}

struct SuppressionRow {
    email: String,
    since: String,
    source: String,
}

#[derive(Template)]
#[template(path = "pages/admin/suppressions.html")]
struct SuppressionsPage {
    active: &'static str,
    notice: String,
    rows: Vec<SuppressionRow>,
}

async fn suppressions(state: &AdminState, q: &Query) -> Result<Response, ApiError> {
    let rows = state.store.suppressions().await?;
    page(&SuppressionsPage {
        active: "suppressions",
        notice: notice(q),
        rows: rows
            .into_iter()
            .map(|s| SuppressionRow {
                since: local(state, &s.added_at),
                source: match (s.event_id, s.step) {
                    (Some(e), Some(step)) => format!("{} ({step}, event {e})", s.source),
                    _ => s.source,
                },
                email: s.email,
            })
            .collect(),
    })
}

async fn change_suppression(
    state: &AdminState,
    f: &Query,
    add: bool,
) -> Result<Response, ApiError> {
    let email = f.get("email").cloned().unwrap_or_default();
    let email = email.trim();
    if email.is_empty() || !email.contains('@') {
        return Ok(see_other(
            "/admin/suppressions?notice=Give+an+email+address.",
        ));
    }
    let now: DateTime<Utc> = Utc::now();
    let message = if add {
        state
            .store
            .add_suppression(email, SuppressionSource::Admin, None, None, now)
            .await?;
        format!("{email} will not be emailed.")
    } else {
        state.store.remove_suppression(email, now).await?;
        format!("{email} can be emailed again.")
    };
    let query = serde_urlencoded::to_string([("notice", message.as_str())]).unwrap_or_default();
    Ok(see_other(&format!("/admin/suppressions?{query}")))
}

struct ProblemRow {
    id: i64,
    at: String,
    outcome: String,
    error: String,
    body: String,
    /// "" when the whole body is shown, else e.g. "the first 4 KiB of 1,048,576 bytes".
    cut: String,
}

#[derive(Template)]
#[template(path = "pages/admin/problems.html")]
struct ProblemsPage {
    active: &'static str,
    notice: String,
    rows: Vec<ProblemRow>,
}

async fn problems(state: &AdminState, q: &Query) -> Result<Response, ApiError> {
    let rows = state.store.problems(200).await?;
    page(&ProblemsPage {
        active: "problems",
        notice: notice(q),
        rows: rows
            .into_iter()
            .map(|p| {
                let shown = crate::store::problems::BODY_SHOWN;
                let cut = match p.size {
                    Some(size) if size > shown as i64 => format!(
                        "the first {} KiB of {} bytes",
                        shown / 1024,
                        crate::domain::thousands(size)
                    ),
                    _ => String::new(),
                };
                ProblemRow {
                    id: p.id,
                    at: local(state, &p.received_at),
                    outcome: match p.outcome.as_str() {
                        "recorded" | "duplicate" => format!("{} with problems", p.outcome),
                        _ => p.outcome,
                    },
                    error: p.error.unwrap_or_default(),
                    body: p.body.unwrap_or_else(|| "(removed by retention)".into()),
                    cut,
                }
            })
            .collect(),
    })
}

/// A delivery's whole raw body, as a download (never shown as a page: it is what a stranger sent).
async fn problem_body(state: &AdminState, id: i64) -> Result<Response, ApiError> {
    let body = state
        .store
        .delivery_body(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("delivery {id} has no body (any more)")))?;
    let mut response = warp::reply::Response::new(body.into());
    let headers = response.headers_mut();
    let value = |v: &str| {
        warp::http::HeaderValue::from_str(v)
            .unwrap_or_else(|_| warp::http::HeaderValue::from_static("attachment"))
    };
    headers.insert(header::CONTENT_TYPE, value("application/octet-stream"));
    headers.insert(
        header::CONTENT_DISPOSITION,
        value(&format!("attachment; filename=\"delivery-{id}.json\"")),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, value("nosniff"));
    headers.insert(header::CACHE_CONTROL, value("no-store"));
    Ok(response)
}

/// The last DNS readiness verdict; one older than a day (or none) is refreshed in the background,
/// so the page never waits on DNS.
async fn dns_readiness(
    state: &AdminState,
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
async fn resume_sending(state: &AdminState) -> Result<Response, ApiError> {
    let message = match state.store.resume_sending(Utc::now()).await? {
        Some(_) => "Sending resumed: the reminders that waited go out from the next pass.",
        None => "Sending was not paused.",
    };
    let query = serde_urlencoded::to_string([("notice", message)]).unwrap_or_default();
    Ok(see_other(&format!("/admin?{query}")))
}

async fn replay(state: &AdminState) -> Result<Response, ApiError> {
    let timezone = state.engine.settings().config.schedule.timezone;
    let r = state.store.replay(timezone).await?;
    let message = format!(
        "Replayed {} deliveries: {} recorded, {} repeats, {} still not usable.",
        r.examined, r.recorded, r.duplicate, r.unchanged
    );
    let query = serde_urlencoded::to_string([("notice", message.as_str())]).unwrap_or_default();
    Ok(see_other(&format!("/admin/problems?{query}")))
}
