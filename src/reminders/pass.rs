//! A reminder pass: the imperative shell around the planner. Read due buyer-events by index, ask
//! the planner, claim in a transaction, send, record. The only place that sends.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use rand::Rng;

use super::planner::{Decision, Rules, StepStatus, plan};
use crate::config::{Config, ReminderStep};
use crate::domain::{OrderState, check_deliverable};
use crate::email::{self, Mailer, Outgoing, SendError};
use crate::events::{EventDirectory, EventInfo};
use crate::experiment::{Assigner, HELD_OUT};
use crate::links::{LinkTarget, LinkUrls, Links};
use crate::store::event_info;
use crate::store::reminders::{
    self as sql, Claim, ClaimResult, DecisionRecord, OpenClaim, PassCounts,
};
use crate::store::{OrderRecord, Store, StoreError};
use crate::templates::{self, EmailContext, Templates};

/// Buyer-events read per page.
const PAGE: usize = 2000;
/// Emails in flight at once within a pass (each SMTP exchange waits ~40 ms on the network, as
/// lettre leaves Nagle's algorithm on; in parallel that costs nothing).
const SEND_CONCURRENCY: usize = crate::email::POOL_SIZE as usize;

/// One email a pass has to send.
enum Job {
    /// A step claimed earlier (a crash, or a temporary failure) to send again.
    Resend(OpenClaim),
    /// A step the planner says is due: claim it, then send it.
    Send(Box<sql::DueBuyerEvent>, String, Vec<(String, String)>),
}
/// First delay after a temporary failure; doubles per attempt up to [`MAX_RETRY_DELAY`].
const FIRST_RETRY_DELAY: Duration = Duration::from_secs(60);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);

/// Why a pass did not run.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    /// Another pass (this process's scheduler, or a `run-once` beside `serve`) is running.
    #[error("another reminder pass is running; try again when it has finished")]
    Busy,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// One line of a pass's report: a buyer-event considered, or a claim resent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassLine {
    /// sent, deferred, skipped, done, failed (and "would send" in a dry run).
    pub decision: String,
    /// The buyer.
    pub email: String,
    /// The event.
    pub event_id: String,
    /// The order.
    pub reference: String,
    /// The step concerned, if any.
    pub step: Option<String>,
    /// Why.
    pub reason: String,
}

impl fmt::Display for PassLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<10} {} event {} ({})",
            self.decision, self.email, self.event_id, self.reference
        )?;
        if let Some(step) = &self.step {
            write!(f, " {step}")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// Where a pass's lines go as they are decided.
pub type LineSink = Box<dyn FnMut(&PassLine) + Send>;

/// What a pass did.
#[derive(Default)]
pub struct PassReport {
    /// One line per buyer-event considered or claim resent (empty when the lines went to a sink).
    pub lines: Vec<PassLine>,
    /// The totals.
    pub counts: PassCounts,
    /// Set when the pass stopped early because the service is stopping.
    pub interrupted: bool,
    /// Why sending is paused (the circuit breaker), when it is: the pass sent nothing.
    pub paused: Option<String>,
    sink: Option<LineSink>,
}

impl std::fmt::Debug for PassReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassReport")
            .field("lines", &self.lines)
            .field("counts", &self.counts)
            .field("interrupted", &self.interrupted)
            .field("paused", &self.paused)
            .finish()
    }
}

/// The reminder engine: rules, templates, transport and links, and the guard that keeps passes
/// from overlapping.
pub struct Engine {
    store: Store,
    events: Arc<EventDirectory>,
    settings: std::sync::RwLock<Arc<Settings>>,
    mailer: Mailer,
    links: Links,
    assigner: Assigner,
    lock_path: PathBuf,
    running: tokio::sync::Mutex<()>,
    stopping: AtomicBool,
    stop_signal: tokio::sync::Notify,
    limiter: std::sync::Mutex<RateLimiter>,
    reloads: std::sync::Mutex<ReloadStatus>,
    /// When the running pass started (real time): a pass's `now` plus the time since is the
    /// moment an email actually leaves, checked against the send window once more.
    pass_started: std::sync::Mutex<std::time::Instant>,
}

/// What `/healthz` says about reloads, so that an operator can see a SIGHUP took.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReloadStatus {
    /// Successful reloads since start.
    pub reloads: u32,
    /// When the settings in force were loaded.
    pub loaded_at: String,
    /// Why the latest reload was refused, if it was.
    pub last_error: Option<String>,
    /// Refused reloads since start.
    pub refused: u32,
}

/// What a reload may change: the steps, schedule, per-event settings and templates. A pass works
/// on one snapshot from start to end.
pub struct Settings {
    /// The configuration the snapshot was made from.
    pub config: Arc<Config>,
    /// The planner's rules.
    pub rules: Rules,
    /// The loaded templates.
    pub templates: Templates,
}

impl Settings {
    /// The event's page: `[events."ID"].url` when set, else what Quicket's API said, else the
    /// `[email].event_url` pattern.
    pub fn event_page(&self, event_id: &str, info: Option<&EventInfo>) -> String {
        crate::events::event_page(&self.config, event_id, info).0
    }

    /// Loads the templates a configuration's steps name (rendering each with sample data).
    pub fn load(config: Arc<Config>) -> anyhow::Result<Settings> {
        let templates = Templates::load(
            &config.templates.source()?,
            &config.reminders,
            config.schedule.timezone,
        )?;
        Ok(Settings {
            rules: Rules::from_config(&config),
            templates,
            config,
        })
    }
}

impl Engine {
    /// Loads the templates, the transport and the link secret.
    pub async fn new(config: Arc<Config>, store: Store) -> anyhow::Result<Engine> {
        let settings = Settings::load(config.clone())?;
        let mailer = Mailer::from_config(&config.email)?;
        // A DKIM key that cannot be read or is too weak stops the start (and fails `check`).
        crate::email::dkim::signer(&config.email)?;
        let secret = store
            .meta_or_insert(crate::links::SECRET_KEY, crate::links::random_token)
            .await?;
        let links = Links::new(&secret, &config.public_url());
        let assigner = Assigner::new(&secret);
        let events = EventDirectory::new(&config, store.clone()).await?;
        let mut lock_path = store.path().as_os_str().to_owned();
        lock_path.push(".pass-lock");
        Ok(Engine {
            limiter: std::sync::Mutex::new(RateLimiter::new(config.email.max_per_minute)),
            stop_signal: tokio::sync::Notify::new(),
            store,
            events,
            settings: std::sync::RwLock::new(Arc::new(settings)),
            mailer,
            links,
            assigner,
            lock_path: PathBuf::from(lock_path),
            running: tokio::sync::Mutex::new(()),
            stopping: AtomicBool::new(false),
            pass_started: std::sync::Mutex::new(std::time::Instant::now()),
            reloads: std::sync::Mutex::new(ReloadStatus {
                reloads: 0,
                loaded_at: crate::store::timestamp(Utc::now()),
                last_error: None,
                refused: 0,
            }),
        })
    }

    /// Removes personal data of buyer-events whose event is more than `[database] retention` past
    /// (see [`Store::apply_retention`]); logs what it did.
    pub async fn apply_retention(&self, now: DateTime<Utc>) {
        let settings = self.settings();
        let config = &settings.config;
        match self
            .store
            .apply_retention(now, config.database.retention, config.schedule.timezone)
            .await
        {
            Ok(removed) if removed.buyer_events > 0 => tracing::info!(
                buyer_events = removed.buyer_events,
                orders = removed.orders,
                "retention: personal data of past events removed"
            ),
            Ok(_) => {}
            Err(e) => tracing::error!("retention failed: {e}"),
        }
    }

    /// Notes the outcome of a reload (`None`: it succeeded).
    pub fn record_reload(&self, error: Option<String>) {
        if let Ok(mut status) = self.reloads.lock() {
            match error {
                None => {
                    status.reloads += 1;
                    status.loaded_at = crate::store::timestamp(Utc::now());
                    status.last_error = None;
                }
                Some(e) => {
                    status.refused += 1;
                    status.last_error = Some(e);
                }
            }
        }
    }

    /// The reload status.
    pub fn reload_status(&self) -> ReloadStatus {
        self.reloads.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The settings in force.
    pub fn settings(&self) -> Arc<Settings> {
        match self.settings.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts new settings in force from the next pass on.
    pub fn replace_settings(&self, settings: Settings) {
        let settings = Arc::new(settings);
        match self.settings.write() {
            Ok(mut s) => *s = settings,
            Err(poisoned) => *poisoned.into_inner() = settings,
        }
    }

    /// The link builder (and the old format's verifier, for the routes that check tokens).
    pub fn links(&self) -> &Links {
        &self.links
    }

    /// Decides the control group and the variants (keyed by the link secret).
    pub fn assigner(&self) -> &Assigner {
        &self.assigner
    }

    /// Whether a buyer-event is in the control group: as recorded when its first step fell due;
    /// else emailed if anything was ever sent or claimed for it (before the control group was
    /// turned on); else as the keyed hash says for the share in force.
    fn held_out(&self, s: &Settings, due: &sql::DueBuyerEvent) -> bool {
        if let Some(recorded) = due.held_out {
            return recorded;
        }
        let c = &due.candidate;
        let emailed = c.history.iter().any(|r| {
            matches!(
                r.status,
                StepStatus::Sent | StepStatus::Claimed | StepStatus::Failed
            )
        });
        !emailed
            && self
                .assigner
                .held_out(&c.email_key, &c.event_id, s.config.experiment.holdout)
    }

    /// The template a step is rendered from for a buyer-event: its one template, or the variant
    /// the keyed hash gives the buyer-event (evenly across the variants, and the same every time).
    pub fn template_for(&self, step: &ReminderStep, email_key: &str, event_id: &str) -> String {
        let templates = step.templates();
        let i = self
            .assigner
            .variant(email_key, event_id, &step.name, templates.len());
        templates.get(i).copied().unwrap_or_default().to_string()
    }

    /// What is known about events beyond the hooks (Quicket's API).
    pub fn events(&self) -> &Arc<EventDirectory> {
        &self.events
    }

    /// The transport.
    pub fn mailer(&self) -> &Mailer {
        &self.mailer
    }

    /// Asks a running pass to stop after the email in flight, and waits for it.
    pub async fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.stop_signal.notify_waiters();
        let _wait = self.running.lock().await;
    }

    /// Waits for the rate limit (`max_per_minute`) to allow one more email; `false` when the
    /// service is stopping, in which case nothing more is claimed or sent.
    async fn may_send(&self) -> bool {
        if self.stopping.load(Ordering::SeqCst) {
            return false;
        }
        let wait = match self.limiter.lock() {
            Ok(mut limiter) => limiter.reserve(),
            Err(poisoned) => poisoned.into_inner().reserve(),
        };
        if !wait.is_zero() {
            let stopped = self.stop_signal.notified();
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stopped => {}
            }
        }
        !self.stopping.load(Ordering::SeqCst)
    }

    /// Runs one pass deciding for `now`. `dry_run` sends nothing and records nothing.
    pub async fn run_pass(
        &self,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<PassReport, PassError> {
        self.run_pass_into(now, dry_run, None).await
    }

    /// Like [`Engine::run_pass`], handing each line to `sink` as it is decided instead of keeping
    /// it, so a pass over many buyers holds no more than one page of them (`serve`, `run-once`).
    pub async fn run_pass_into(
        &self,
        now: DateTime<Utc>,
        dry_run: bool,
        sink: Option<LineSink>,
    ) -> Result<PassReport, PassError> {
        let _running = self.running.try_lock().map_err(|_| PassError::Busy)?;
        // Across processes too: the OS releases the lock if the holder dies.
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock_path)
            .with_context(|| format!("cannot open {}", self.lock_path.display()))?;
        if lock.try_lock().is_err() {
            return Err(PassError::Busy);
        }
        let pass_id = if dry_run {
            None
        } else {
            Some(self.store.start_pass(now).await?)
        };
        let mut report = PassReport {
            sink,
            ..PassReport::default()
        };
        let settings = self.settings();
        let started = std::time::Instant::now();
        match self.pass_started.lock() {
            Ok(mut at) => *at = started,
            Err(poisoned) => *poisoned.into_inner() = started,
        }
        let result = self.pass(&settings, now, dry_run, &mut report).await;
        if !dry_run {
            metrics::histogram!(crate::metrics::PASS_DURATION)
                .record(started.elapsed().as_secs_f64());
            metrics::gauge!(crate::metrics::LAST_PASS).set(Utc::now().timestamp() as f64);
        }
        if let Some(id) = pass_id {
            let error = result.as_ref().err().map(|e| format!("{e:#}"));
            self.store
                .finish_pass(id, report.counts.clone(), error)
                .await?;
        }
        drop(lock);
        result?;
        Ok(report)
    }

    async fn pass(
        &self,
        s: &Settings,
        now: DateTime<Utc>,
        dry_run: bool,
        report: &mut PassReport,
    ) -> anyhow::Result<()> {
        // The circuit breaker: while sending is paused nothing is claimed, so nothing is lost.
        if let Some(reason) = super::breaker::paused(&self.store, now, dry_run).await? {
            report.paused = Some(reason);
            return Ok(());
        }
        // Claims left by a crash, and sends waiting after a temporary failure, go first; but, like
        // any reminder, only inside the send window.
        let tz = s.rules.timezone;
        let claims: Vec<OpenClaim> = self
            .store
            .read(move |conn| sql::open_claims(conn, now))
            .await?
            .into_iter()
            .filter(|claim| s.rules.window_for(&claim.step).allows(now, tz))
            .collect();
        if dry_run {
            for claim in claims {
                report.push(line(
                    "would send",
                    &claim.email,
                    &claim.event_id,
                    &claim.reference,
                    Some(&claim.step),
                    "claimed earlier and not yet sent".into(),
                ));
            }
        } else if self
            .run_jobs(
                s,
                claims.into_iter().map(Job::Resend).collect(),
                now,
                report,
            )
            .await?
        {
            report.interrupted = true;
            return Ok(());
        }

        let suppressed = Arc::new(self.store.read(sql::suppressed_keys).await?);
        let mut infos = self.events.all_cached().await;
        // Events refreshed by this pass already (a dry run keeps no answer in the database).
        let mut refreshed = std::collections::HashSet::new();
        let mut after: Option<(String, String, String)> = None;
        loop {
            let from = after.clone();
            let page = self
                .store
                .read({
                    let suppressed = suppressed.clone();
                    move |conn| sql::load_due(conn, &suppressed, now, from.as_ref(), PAGE)
                })
                .await?;
            let Some(last) = page.last() else { break };
            after = Some((
                last.next_check_at.clone(),
                last.candidate.email_key.clone(),
                last.candidate.event_id.clone(),
            ));
            let full = page.len() == PAGE;
            let mut decided = Vec::with_capacity(page.len());
            for mut due in page {
                report.counts.considered += 1;
                due.candidate.held_out = self.held_out(s, &due);
                let info = infos.get(&due.candidate.event_id);
                due.candidate.event_date =
                    crate::events::event_start(due.candidate.event_date, info);
                let decision = plan(&due.candidate, &s.rules, now);
                decided.push((due, decision));
            }
            self.check_sold_out(s, &mut decided, &mut infos, &mut refreshed, now, dry_run)
                .await?;
            let mut quiet = Vec::new();
            let mut step_skips = Vec::new();
            let mut held = Vec::new();
            let mut sends = Vec::new();
            for (due, decision) in decided {
                let c = &due.candidate;
                match decision {
                    Decision::Send { step, skip } => sends.push((due, step, skip)),
                    Decision::HoldOut { step, skip } => {
                        report.counts.skipped += 1;
                        report.push(line(
                            "skipped",
                            &c.email,
                            &c.event_id,
                            &due.reference,
                            Some(&step),
                            HELD_OUT.into(),
                        ));
                        quiet.push(DecisionRecord {
                            email_key: c.email_key.clone(),
                            event_id: c.event_id.clone(),
                            decision: "skipped",
                            reason: format!("{step}: {HELD_OUT}"),
                            next_check_at: Some(now),
                        });
                        held.push(sql::HoldOut {
                            email_key: c.email_key.clone(),
                            event_id: c.event_id.clone(),
                            reference: due.reference.clone(),
                            step,
                            skip,
                            share: s.config.experiment.holdout,
                        });
                    }
                    other => {
                        let reason = match &other {
                            Decision::Defer { reason, until } => format!(
                                "{reason} (next look {})",
                                until
                                    .with_timezone(&s.rules.timezone)
                                    .format("%Y-%m-%d %H:%M")
                            ),
                            Decision::Skip { reason } | Decision::Done { reason } => reason.clone(),
                            Decision::SkipSteps { skip } => skip
                                .iter()
                                .map(|(step, why)| format!("{step}: {why}"))
                                .collect::<Vec<_>>()
                                .join("; "),
                            Decision::Send { .. } | Decision::HoldOut { .. } => String::new(),
                        };
                        match other {
                            Decision::Defer { .. } => report.counts.deferred += 1,
                            _ => report.counts.skipped += 1,
                        }
                        let step = match &other {
                            Decision::SkipSteps { skip } if skip.len() == 1 => {
                                Some(skip[0].0.as_str())
                            }
                            _ => None,
                        };
                        report.push(line(
                            other.label(),
                            &c.email,
                            &c.event_id,
                            &due.reference,
                            step,
                            reason.clone(),
                        ));
                        if let Decision::SkipSteps { skip } = &other {
                            step_skips.push(sql::StepSkips {
                                email_key: c.email_key.clone(),
                                event_id: c.event_id.clone(),
                                reference: due.reference.clone(),
                                skip: skip.clone(),
                            });
                        }
                        quiet.push(DecisionRecord {
                            email_key: c.email_key.clone(),
                            event_id: c.event_id.clone(),
                            decision: other.label(),
                            reason,
                            next_check_at: other.next_check(now),
                        });
                    }
                }
            }
            if !dry_run && !quiet.is_empty() {
                self.store
                    .write(move |conn| {
                        sql::skip_steps(conn, &step_skips, now)?;
                        sql::hold_out(conn, &held, now)?;
                        sql::record_decisions(conn, &quiet, now)
                    })
                    .await?;
            }
            if dry_run {
                for (due, step, skip) in sends {
                    let c = due.candidate;
                    let mut reason = "due".to_string();
                    if !skip.is_empty() {
                        let names: Vec<&str> = skip.iter().map(|(s, _)| s.as_str()).collect();
                        reason = format!("due; would skip {}", names.join(", "));
                    }
                    report.push(line(
                        "would send",
                        &c.email,
                        &c.event_id,
                        &due.reference,
                        Some(&step),
                        reason,
                    ));
                }
            } else {
                let jobs = sends
                    .into_iter()
                    .map(|(due, step, skip)| Job::Send(Box::new(due), step, skip))
                    .collect();
                if self.run_jobs(s, jobs, now, report).await? {
                    report.interrupted = true;
                    return Ok(());
                }
            }
            if !full {
                break;
            }
        }
        Ok(())
    }

    /// Before emailing, refreshes what Quicket's API says about the events concerned (waiting at
    /// most `quicket.timeout`), and plans again those whose event date it changes or whose
    /// buyers' tickets turn out to be sold out.
    async fn check_sold_out(
        &self,
        s: &Settings,
        decided: &mut [(sql::DueBuyerEvent, Decision)],
        infos: &mut HashMap<String, EventInfo>,
        refreshed: &mut std::collections::HashSet<String>,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> anyhow::Result<()> {
        if !self.events.enabled() {
            return Ok(());
        }
        // The control group is checked like the emailed group, so that both skip alike.
        let would_send =
            |d: &Decision| matches!(d, Decision::Send { .. } | Decision::HoldOut { .. });
        let sending = || decided.iter().filter(|(_, d)| would_send(d));
        if sending().next().is_none() {
            return Ok(());
        }
        let mut events: Vec<String> = sending()
            .map(|(due, _)| due.candidate.event_id.clone())
            .filter(|id| !refreshed.contains(id))
            .collect();
        events.sort();
        events.dedup();
        if !events.is_empty() {
            refreshed.extend(events.iter().cloned());
            infos.extend(self.events.refresh(events, now, !dry_run).await);
        }
        let local_now = now.with_timezone(&s.rules.timezone).naive_local();
        // The buyer's choice matters only when something of the event is still on sale.
        let to_check: Vec<(usize, String)> = decided
            .iter()
            .enumerate()
            .filter(|(_, (due, d))| {
                would_send(d)
                    && infos.get(&due.candidate.event_id).is_some_and(|info| {
                        info.may_be_sold_out() && !info.nothing_on_sale(local_now)
                    })
            })
            .map(|(i, (due, _))| (i, due.reference.clone()))
            .collect();
        let chosen = self
            .store
            .read(move |conn| {
                to_check
                    .into_iter()
                    .map(|(i, reference)| Ok((i, event_info::ticket_types(conn, &reference)?)))
                    .collect::<anyhow::Result<Vec<_>>>()
            })
            .await?;
        let mut chosen = chosen.into_iter().peekable();
        for (i, (due, decision)) in decided.iter_mut().enumerate() {
            if !would_send(decision) {
                continue;
            }
            let Some(info) = infos.get(&due.candidate.event_id) else {
                continue;
            };
            // The event's details may be new since the first plan.
            let date = info.start_for(due.candidate.event_date);
            let mut changed = date != due.candidate.event_date;
            due.candidate.event_date = date;
            if info.nothing_on_sale(local_now) {
                due.candidate.sold_out = true;
                changed = true;
            } else if chosen.peek().is_some_and(|(at, _)| *at == i)
                && let Some((_, types)) = chosen.next()
            {
                due.candidate.sold_out = info.sold_out_for(&types, local_now);
                changed |= due.candidate.sold_out;
            }
            if changed {
                *decision = plan(&due.candidate, &s.rules, now);
            }
        }
        Ok(())
    }

    /// Sends several steps at once (the SMTP pool has room for that; one at a time, each email
    /// would wait on the network). Returns whether the service began stopping meanwhile.
    async fn run_jobs(
        &self,
        s: &Settings,
        jobs: Vec<Job>,
        now: DateTime<Utc>,
        report: &mut PassReport,
    ) -> anyhow::Result<bool> {
        let mut results =
            futures_util::stream::iter(jobs.into_iter().map(|job| self.run_job(s, job, now)))
                .buffer_unordered(SEND_CONCURRENCY);
        let mut interrupted = false;
        while let Some(result) = results.next().await {
            match result? {
                Some((line, counts)) => {
                    report.counts.absorb(&counts);
                    report.push(line);
                }
                None => interrupted = true,
            }
        }
        Ok(interrupted)
    }

    /// One step: wait for the rate limit, claim it (a new one), deliver it. `None` when stopping:
    /// the rate limit is waited for before claiming, so a stop leaves nothing claimed and unsent.
    async fn run_job(
        &self,
        s: &Settings,
        job: Job,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<(PassLine, PassCounts)>> {
        if !self.may_send().await {
            return Ok(None);
        }
        // The rate limit may have kept this email past the window's end: not then.
        if let Some(deferred) = self.outside_window_now(s, &job, now) {
            return Ok(Some(deferred));
        }
        let claim = match job {
            Job::Resend(claim) => claim,
            Job::Send(due, step, skip) => {
                let c = due.candidate;
                let message_id =
                    email::message_id(&c.email_key, &c.event_id, &step, &s.config.email.from);
                let template = s
                    .config
                    .reminders
                    .iter()
                    .find(|r| r.name == step)
                    .map(|r| self.template_for(r, &c.email_key, &c.event_id))
                    .unwrap_or_default();
                let claim = Claim {
                    email_key: c.email_key.clone(),
                    event_id: c.event_id.clone(),
                    step: step.clone(),
                    skip,
                    reference: due.reference.clone(),
                    email: c.email.clone(),
                    message_id: message_id.clone(),
                    now,
                    min_gap: chrono::TimeDelta::from_std(s.rules.min_gap)
                        .unwrap_or(chrono::TimeDelta::MAX),
                    template: template.clone(),
                    share: s.config.experiment.holdout,
                };
                let claimed = self
                    .store
                    .write(move |conn| sql::claim(conn, &claim))
                    .await?;
                if let Err(refused) = claimed {
                    let counts = PassCounts {
                        skipped: 1,
                        ..PassCounts::default()
                    };
                    let reason = refused.reason().into();
                    let skipped = line(
                        "skipped",
                        &c.email,
                        &c.event_id,
                        &due.reference,
                        Some(&step),
                        reason,
                    );
                    return Ok(Some((skipped, counts)));
                }
                OpenClaim {
                    email_key: c.email_key,
                    event_id: c.event_id,
                    step,
                    reference: due.reference,
                    email: c.email,
                    message_id,
                    attempts: 0,
                    decided_at: now,
                    template: Some(template),
                }
            }
        };
        self.deliver(s, claim, now).await.map(Some)
    }

    /// The moment this pass's email would actually leave: `now` plus the time the pass has run.
    fn leaving_at(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let started = match self.pass_started.lock() {
            Ok(at) => *at,
            Err(poisoned) => *poisoned.into_inner(),
        };
        now.checked_add_signed(chrono::TimeDelta::from_std(started.elapsed()).unwrap_or_default())
            .unwrap_or(now)
    }

    /// A line saying the job waits, when its step's window no longer allows it at the moment
    /// it would leave. Nothing is claimed (a claim already made stays for the next pass).
    fn outside_window_now(
        &self,
        s: &Settings,
        job: &Job,
        now: DateTime<Utc>,
    ) -> Option<(PassLine, PassCounts)> {
        let (email, event_id, reference, step) = match job {
            Job::Resend(c) => (&c.email, &c.event_id, &c.reference, &c.step),
            Job::Send(due, step, _) => (
                &due.candidate.email,
                &due.candidate.event_id,
                &due.reference,
                step,
            ),
        };
        let tz = s.rules.timezone;
        let window = s.rules.window_for(step);
        let at = self.leaving_at(now);
        if window.allows(at, tz) {
            return None;
        }
        let counts = PassCounts {
            deferred: 1,
            ..PassCounts::default()
        };
        let reason = format!("{}; waits for the next pass", window.closed_reason(at, tz));
        Some((
            line("deferred", email, event_id, reference, Some(step), reason),
            counts,
        ))
    }

    /// Sends a claimed step (checking once more that it should go), and records how it ended.
    async fn deliver(
        &self,
        s: &Settings,
        claim: OpenClaim,
        now: DateTime<Utc>,
    ) -> anyhow::Result<(PassLine, PassCounts)> {
        let mut counts = PassCounts::default();
        let (key, event, reference) = (
            claim.email_key.clone(),
            claim.event_id.clone(),
            claim.reference.clone(),
        );
        let check = self
            .store
            .read(move |conn| sql::send_check(conn, &key, &event, &reference))
            .await?;
        let result = match self.attempt(s, &claim, check, now).await {
            Ok(result) => result,
            Err(e) => ClaimResult::Retry {
                retry_at: now + retry_delay(claim.attempts + 1),
                error: format!("{e:#}"),
            },
        };
        let (outcome, smtp_error) = match &result {
            ClaimResult::Sent { .. } => ("sent", None),
            ClaimResult::Retry { .. } => ("retry", Some("transient")),
            ClaimResult::Failed { .. } => ("failed", Some("permanent")),
            ClaimResult::Skipped { .. } => ("skipped", None),
        };
        metrics::counter!(crate::metrics::REMINDERS, "step" => claim.step.clone(), "outcome" => outcome)
            .increment(1);
        if let Some(kind) = smtp_error {
            metrics::counter!(crate::metrics::SMTP_ERRORS, "kind" => kind).increment(1);
        }
        let (label, reason) = match &result {
            ClaimResult::Sent { .. } => {
                counts.sent += 1;
                tracing::info!(reference = %claim.reference, step = %claim.step, "reminder sent");
                ("sent", "sent".to_string())
            }
            ClaimResult::Retry { retry_at, error } => {
                counts.failed += 1;
                tracing::warn!(reference = %claim.reference, step = %claim.step, "reminder not sent, will retry: {error}");
                (
                    "failed",
                    format!(
                        "{error}; will retry at {}",
                        retry_at
                            .with_timezone(&s.rules.timezone)
                            .format("%Y-%m-%d %H:%M")
                    ),
                )
            }
            ClaimResult::Failed { error, suppress } => {
                counts.failed += 1;
                tracing::warn!(reference = %claim.reference, step = %claim.step, "reminder refused by the mail server: {error}");
                let also = if *suppress {
                    "; the address is now suppressed"
                } else {
                    ""
                };
                ("failed", format!("{error}{also}"))
            }
            ClaimResult::Skipped { reason } => {
                counts.skipped += 1;
                ("skipped", reason.clone())
            }
        };
        let done = line(
            label,
            &claim.email,
            &claim.event_id,
            &claim.reference,
            Some(&claim.step),
            reason,
        );
        let next_check = match &result {
            ClaimResult::Retry { retry_at, .. } => *retry_at,
            ClaimResult::Sent { .. } => {
                now + chrono::TimeDelta::from_std(s.rules.min_gap.max(Duration::from_secs(1)))
                    .unwrap_or(chrono::TimeDelta::MAX)
            }
            _ => now + chrono::TimeDelta::seconds(1),
        };
        self.store
            .write(move |conn| {
                sql::finish_claim(
                    conn,
                    &claim.email_key,
                    &claim.event_id,
                    &claim.step,
                    &result,
                    now,
                    next_check,
                )
            })
            .await?;
        Ok((done, counts))
    }

    /// Decides whether a claimed step still goes, and sends it.
    async fn attempt(
        &self,
        s: &Settings,
        claim: &OpenClaim,
        check: Option<sql::SendCheck>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<ClaimResult> {
        let skipped = |reason: &str| {
            Ok(ClaimResult::Skipped {
                reason: reason.to_string(),
            })
        };
        let Some(check) = check else {
            return skipped("the buyer-event no longer exists");
        };
        if check.state == OrderState::Completed {
            return skipped("the buyer paid");
        }
        if check.suppressed {
            return skipped("the address is unsubscribed");
        }
        if let Err(why) = check_deliverable(&claim.email) {
            return skipped(why);
        }
        let Some(step) = s.config.reminders.iter().find(|s| s.name == claim.step) else {
            return skipped("the step is no longer configured");
        };
        if now
            >= check.changed_at
                + chrono::TimeDelta::from_std(s.rules.give_up_after).unwrap_or_default()
        {
            return skipped("gave up: the last change is too old to send it any more");
        }
        let info = self.events.cached(&claim.event_id).await;
        // A send that kept failing is abandoned once it could no longer be sent on time.
        if let Some(date) = crate::events::event_start(check.event_date, info.as_ref()) {
            let stop = s.rules.event_start(date)
                - chrono::TimeDelta::from_std(s.rules.stop_before_event).unwrap_or_default();
            if now >= stop {
                return skipped("too close to the event to send it any more");
            }
        }
        let order = self
            .store
            .order(&claim.reference)
            .await?
            .with_context(|| format!("order {} is missing", claim.reference))?;
        let target = LinkTarget {
            email_key: claim.email_key.clone(),
            event_id: claim.event_id.clone(),
            step: claim.step.clone(),
        };
        let start = crate::events::event_start(check.event_date, info.as_ref())
            .map(|date| s.rules.event_start(date));
        let links = self.issue_links(&target, start, now).await?;
        let context = self.context(
            s,
            &order,
            &target,
            &links,
            &claim.email,
            check.sent + 1,
            info.as_ref(),
        );
        // A claim keeps the variant it was given; one from before variants takes the step's.
        let template = claim
            .template
            .clone()
            .filter(|t| !t.is_empty() && s.templates.has(t))
            .unwrap_or_else(|| self.template_for(step, &claim.email_key, &claim.event_id));
        let content = s
            .templates
            .render(&template, &context)
            .with_context(|| format!("template {template:?} failed"))?;
        let outgoing = Outgoing {
            to_email: claim.email.clone(),
            to_name: order.buyer_name.clone(),
            content,
            message_id: claim.message_id.clone(),
            unsubscribe_url: links.unsubscribe.clone(),
        };
        let message = email::build(
            &s.config.email,
            &outgoing,
            SystemTime::from(now.max(claim.decided_at)),
        )?;
        let tz = s.rules.timezone;
        Ok(match self.mailer.send(&message).await {
            Ok(()) => ClaimResult::Sent {
                local: now
                    .with_timezone(&tz)
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
                rule: s.rules.window_for(&claim.step).allowed_by(now, tz),
            },
            Err(SendError::Transient(error)) => ClaimResult::Retry {
                retry_at: now + retry_delay(claim.attempts + 1),
                error,
            },
            Err(SendError::Permanent {
                reply,
                no_such_mailbox,
            }) => ClaimResult::Failed {
                error: reply,
                suppress: no_such_mailbox,
            },
        })
    }

    /// The links of an email about `target` sent at `now`: real tokens, made on first use (the
    /// same ones when the step is sent again after a failure). `event_start` sets how long they
    /// work.
    pub async fn issue_links(
        &self,
        target: &LinkTarget,
        event_start: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<LinkUrls, StoreError> {
        let tokens = self
            .store
            .issue_link_tokens(target.clone(), event_start, now)
            .await?;
        Ok(self.links.urls(&tokens.event, &tokens.unsubscribe))
    }

    /// The values a template sees for an order, with the email's links.
    #[allow(clippy::too_many_arguments)]
    pub fn context(
        &self,
        s: &Settings,
        order: &OrderRecord,
        target: &LinkTarget,
        links: &LinkUrls,
        email: &str,
        number: u32,
        info: Option<&EventInfo>,
    ) -> EmailContext {
        let event_id = order.event_id.clone().unwrap_or_default();
        let event_url = s.event_page(&event_id, info);
        let hook_date = order.event_date.as_deref().and_then(|d| {
            chrono::NaiveDateTime::parse_from_str(d, "%Y-%m-%d %H:%M")
                .or_else(|_| chrono::NaiveDateTime::parse_from_str(d, "%Y-%m-%d %H:%M:%S"))
                .ok()
        });
        let event_date = crate::events::event_start(hook_date, info);
        let cents =
            |rands: Option<f64>| rands.map(|r| crate::domain::Cents((r * 100.0).round() as i64));
        EmailContext {
            buyer: templates::BuyerContext {
                email: email.to_string(),
                name: order.buyer_name.clone(),
                first_name: templates::first_name(&order.buyer_name),
            },
            event: templates::EventContext {
                id: event_id,
                name: order.event_name.clone(),
                date: templates::format_date(event_date),
                url: event_url,
                image_url: info.and_then(|i| i.image_url.clone()).unwrap_or_default(),
                venue: info.and_then(|i| i.venue.clone()).unwrap_or_default(),
            },
            order: templates::OrderContext {
                reference: order.reference.clone(),
                status: order.status.as_str().into(),
                amount: templates::format_money(cents(order.amount)),
                tickets: order
                    .tickets
                    .iter()
                    .map(|t| templates::TicketContext {
                        ticket_type: t.ticket_type.clone(),
                        price: templates::format_money(cents(t.price)),
                        attendee_name: t.attendee_name.clone(),
                    })
                    .collect(),
            },
            reminder: templates::ReminderContext {
                name: target.step.clone(),
                number,
            },
            links: templates::LinksContext {
                event: links.event.clone(),
                unsubscribe: links.unsubscribe.clone(),
            },
            organiser: templates::OrganiserContext {
                name: email::organiser_name(&s.config.email.from),
            },
        }
    }
}

impl PassReport {
    fn push(&mut self, line: PassLine) {
        match &mut self.sink {
            Some(sink) => sink(&line),
            None => self.lines.push(line),
        }
    }
}

fn line(
    decision: &str,
    email: &str,
    event_id: &str,
    reference: &str,
    step: Option<&str>,
    reason: String,
) -> PassLine {
    PassLine {
        decision: decision.into(),
        email: email.into(),
        event_id: event_id.into(),
        reference: reference.into(),
        step: step.map(str::to_string),
        reason,
    }
}

/// A growing, jittered delay: 1 min, 2, 4 ... up to an hour, each ±20 %.
fn retry_delay(attempt: u32) -> chrono::TimeDelta {
    let base = FIRST_RETRY_DELAY
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(16)))
        .min(MAX_RETRY_DELAY);
    let jitter = rand::rng().random_range(0.8..1.2);
    chrono::TimeDelta::from_std(base.mul_f64(jitter)).unwrap_or(chrono::TimeDelta::hours(1))
}

/// At most `per_minute` sends a minute, in bursts of at most ten seconds' worth (so that a
/// provider's per-minute limit is never hit by one burst at the start of a minute).
struct RateLimiter {
    per_minute: u32,
    capacity: f64,
    tokens: f64,
    last: tokio::time::Instant,
}

impl RateLimiter {
    fn new(per_minute: u32) -> Self {
        let per_minute = per_minute.max(1);
        let capacity = f64::from(per_minute.div_ceil(6));
        RateLimiter {
            per_minute,
            capacity,
            tokens: capacity,
            last: tokio::time::Instant::now(),
        }
    }

    /// Takes one send from the budget; returns how long to wait before using it.
    fn reserve(&mut self) -> Duration {
        let rate = f64::from(self.per_minute) / 60.0;
        let now = tokio::time::Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * rate).min(self.capacity);
        self.last = now;
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_rate_limit_allows_ten_seconds_of_burst_then_paces() {
        let mut limiter = RateLimiter::new(60);
        for _ in 0..10 {
            assert_eq!(limiter.reserve(), Duration::ZERO);
        }
        let wait = limiter.reserve();
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(limiter.reserve(), Duration::ZERO, "the budget refills");
    }
}
