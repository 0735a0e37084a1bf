//! The reminder engine: the settings in force (swapped whole on reload), the transport, the links,
//! and the guard that keeps passes from overlapping, in this process and across processes.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use futures_util::FutureExt;

use super::deliver::RateLimiter;
use super::planner::Rules;
use super::report::{LineSink, PassReport};
use crate::config::{Config, ReminderStep};
use crate::email::Mailer;
use crate::events::{EventDirectory, EventInfo};
use crate::experiment::Assigner;
use crate::links::{LinkTarget, LinkUrls, Links};
use crate::store::{OrderRecord, Store, StoreError};
use crate::templates::{EmailContext, ReminderContext, Templates};

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

/// The reminder engine: rules, templates, transport and links, and the guard that keeps passes
/// from overlapping.
pub struct Engine {
    pub(super) store: Store,
    pub(super) events: Arc<EventDirectory>,
    settings: ArcSwap<Settings>,
    pub(super) mailer: Mailer,
    pub(super) links: Links,
    pub(super) assigner: Assigner,
    /// Keys the Message-IDs (the link secret): unguessable, as email events must name one.
    pub(super) message_key: Vec<u8>,
    lock_path: PathBuf,
    running: tokio::sync::Mutex<()>,
    pub(super) stopping: AtomicBool,
    pub(super) stop_signal: tokio::sync::Notify,
    pub(super) limiter: std::sync::Mutex<RateLimiter>,
    reloads: std::sync::Mutex<ReloadStatus>,
    /// When the running pass started (real time): a pass's `now` plus the time since is the
    /// moment an email actually leaves, checked against the send window once more.
    pub(super) pass_started: std::sync::Mutex<std::time::Instant>,
    /// The clocks at the last scheduled pass, to notice a system clock that jumped.
    clock: std::sync::Mutex<super::clock::ClockWatch>,
}

/// What `/healthz` says about reloads, so that an operator can see a SIGHUP took.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReloadStatus {
    /// Successful reloads since start.
    pub reloads: u32,
    /// When the settings in force were loaded.
    pub loaded_at: String,
    /// Why the latest reload was refused, if it was: the file, the line and the key, never a
    /// value. For `/admin` and the log only: `/healthz` is public, and never shows it.
    #[serde(skip)]
    pub last_error: Option<String>,
    /// Refused reloads since start.
    pub refused: u32,
    /// When the latest refused reload was (UTC, RFC 3339), while it is the latest reload.
    pub last_refused_at: Option<String>,
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
            settings: ArcSwap::from_pointee(settings),
            mailer,
            links,
            assigner,
            message_key: secret.as_bytes().to_vec(),
            lock_path: PathBuf::from(lock_path),
            running: tokio::sync::Mutex::new(()),
            stopping: AtomicBool::new(false),
            pass_started: std::sync::Mutex::new(std::time::Instant::now()),
            clock: std::sync::Mutex::new(super::clock::ClockWatch::default()),
            reloads: std::sync::Mutex::new(ReloadStatus {
                reloads: 0,
                loaded_at: crate::store::timestamp(Utc::now()),
                last_error: None,
                refused: 0,
                last_refused_at: None,
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
                    status.last_refused_at = None;
                }
                Some(e) => {
                    status.refused += 1;
                    status.last_error = Some(e);
                    status.last_refused_at = Some(crate::store::timestamp(Utc::now()));
                }
            }
        }
    }

    /// Notes the wall clock at a scheduled pass; logs (and keeps, for `/healthz`) a jump of
    /// more than a scan interval since the last one. At the first, compares with the start of
    /// the last pass recorded: a clock now behind it went back while the service was down.
    pub async fn notice_clock(&self, wall: DateTime<Utc>) {
        let schedule = &self.settings().config.schedule;
        let interval = super::clock::scan_interval(&schedule.scan, schedule.timezone, wall);
        let first = self.clock_observed_never();
        let mut jump = self
            .clock
            .lock()
            .ok()
            .and_then(|mut w| w.observe(std::time::Instant::now(), wall, interval));
        if first
            && jump.is_none()
            && let Ok(Some(last)) = self.store.last_pass().await
            && let Ok(started) = crate::store::parse_timestamp(&last.started_at)
            && started - wall > interval
        {
            let found = super::clock::ClockJump {
                noticed_at: crate::store::timestamp(wall),
                by_seconds: (wall - started).num_seconds(),
            };
            if let Ok(mut w) = self.clock.lock() {
                w.record(found.clone());
            }
            jump = Some(found);
        }
        if let Some(jump) = jump {
            tracing::warn!(
                by_seconds = jump.by_seconds,
                "the system clock jumped since the last pass ({} by {}); passes decide for the clock's time",
                if jump.by_seconds > 0 {
                    "forward"
                } else {
                    "back"
                },
                humantime::format_duration(std::time::Duration::from_secs(
                    jump.by_seconds.unsigned_abs()
                ))
            );
        }
    }

    fn clock_observed_never(&self) -> bool {
        self.clock
            .lock()
            .map(|w| w.never_observed())
            .unwrap_or(false)
    }

    /// The latest clock jump noticed since start, if any.
    pub fn clock_jump(&self) -> Option<super::clock::ClockJump> {
        self.clock.lock().ok().and_then(|w| w.jump.clone())
    }

    /// The reload status.
    pub fn reload_status(&self) -> ReloadStatus {
        self.reloads.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The settings in force.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.load_full()
    }

    /// Puts new settings in force from the next pass on.
    pub fn replace_settings(&self, settings: Settings) {
        self.settings.store(Arc::new(settings));
    }

    /// The link builder (and the old format's verifier, for the routes that check tokens).
    pub fn links(&self) -> &Links {
        &self.links
    }

    /// Decides the control group and the variants (keyed by the link secret).
    pub fn assigner(&self) -> &Assigner {
        &self.assigner
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
            let (id, reopened) = self.store.start_pass(now).await?;
            if reopened > 0 {
                tracing::warn!(
                    buyer_events = reopened,
                    pass_time = %crate::store::timestamp(now),
                    "a pass at a later time had decided about these buyer-events; this pass, at an earlier time, decides afresh"
                );
            }
            Some(id)
        };
        let mut report = PassReport::with_sink(sink);
        let settings = self.settings();
        let started = std::time::Instant::now();
        match self.pass_started.lock() {
            Ok(mut at) => *at = started,
            Err(poisoned) => *poisoned.into_inner() = started,
        }
        // A panic ends this pass, not the service, and is recorded like any failure.
        let result =
            match std::panic::AssertUnwindSafe(self.pass(&settings, now, dry_run, &mut report))
                .catch_unwind()
                .await
            {
                Ok(result) => result,
                Err(panic) => Err(anyhow::anyhow!(
                    "the pass stopped on a bug: {}",
                    super::decide::panic_text(panic.as_ref())
                )),
            };
        if !dry_run {
            metrics::histogram!(crate::metrics::PASS_DURATION)
                .record(started.elapsed().as_secs_f64());
            metrics::gauge!(crate::metrics::LAST_PASS).set(Utc::now().timestamp() as f64);
            if result.is_err() {
                metrics::counter!(crate::metrics::FAILED_PASSES).increment(1);
            }
        }
        if let Some(id) = pass_id {
            let error = result.as_ref().err().map(|e| format!("{e:#}"));
            self.store
                .finish_pass(id, report.counts.clone(), error)
                .await?;
        }
        // Unlocked explicitly, not by closing: a child process forked meanwhile by another thread
        // (a test running the CLI) holds a copy of the descriptor until it execs, and the lock
        // would outlive this pass, refusing the next one as Busy.
        let _ = lock.unlock();
        result?;
        Ok(report)
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
        EmailContext::for_order(
            order,
            email,
            s.event_page(&event_id, info),
            info,
            ReminderContext {
                name: target.step.clone(),
                number,
            },
            links,
            crate::email::organiser_name(&s.config.email.from),
        )
    }
}
