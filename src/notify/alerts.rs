//! The alerts: every way reminders can stop silently, judged every few minutes by `serve` (and
//! after each `run-once`), recorded in the database (one per condition until it ends, a reminder
//! a day while it lasts, a "resolved" when it ends) and told to the organiser.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

use super::webhook::Payload;
use super::{Delivery, Notice, Notifier};
use crate::config::Config;
use crate::reminders::Engine;
use crate::store::alerts::{AlertChange, Judged, Transition};
use crate::store::{Store, parse_timestamp};

/// How often `serve` judges the conditions.
pub const CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(5 * 60);
/// A condition that lasts is told again after this long.
pub const REMIND_AFTER: TimeDelta = TimeDelta::hours(24);
/// The transport counts as failing once every send has failed for this long.
pub const TRANSPORT_GRACE: TimeDelta = TimeDelta::minutes(30);
/// No hook for this long, while an event is on sale, is an alert.
pub const HOOKS_SILENT: TimeDelta = TimeDelta::days(3);
/// "Recent checkouts": a checkout this recent shows the event is being sold through Quicket.
pub const RECENT_CHECKOUTS: TimeDelta = TimeDelta::days(30);

/// What can be wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Condition {
    /// The circuit breaker paused sending.
    Paused,
    /// No pass finished for twice the scan interval, or the last one failed.
    Passes,
    /// Every send has failed for [`TRANSPORT_GRACE`].
    Transport,
    /// No hook for [`HOOKS_SILENT`] though an event with recent checkouts is still to come.
    NoHooks,
    /// A reload was refused, or the files on disk no longer pass `check`.
    Settings,
    /// The From domain's DNS readiness has a warning.
    Dns,
    /// The database's disk is fuller than `notify.disk_full_at`.
    Disk,
    /// The database cannot be written (told without being recorded: it cannot be).
    Database,
}

impl Condition {
    /// Every condition.
    pub const ALL: [Condition; 8] = [
        Condition::Paused,
        Condition::Passes,
        Condition::Transport,
        Condition::NoHooks,
        Condition::Settings,
        Condition::Dns,
        Condition::Disk,
        Condition::Database,
    ];

    /// The key recorded in the database.
    pub fn key(self) -> &'static str {
        match self {
            Condition::Paused => "paused",
            Condition::Passes => "passes",
            Condition::Transport => "transport",
            Condition::NoHooks => "no_hooks",
            Condition::Settings => "settings",
            Condition::Dns => "dns",
            Condition::Disk => "disk",
            Condition::Database => "database",
        }
    }

    /// The condition a recorded key names.
    pub fn from_key(key: &str) -> Option<Condition> {
        Condition::ALL.into_iter().find(|c| c.key() == key)
    }

    /// What is wrong, in the organiser's words (a subject line).
    pub fn title(self) -> &'static str {
        match self {
            Condition::Paused => "reminders are paused",
            Condition::Passes => "reminder passes are not running",
            Condition::Transport => "emails cannot be sent",
            Condition::NoHooks => "no checkouts from Quicket for 3 days",
            Condition::Settings => "the settings on disk have a mistake",
            Condition::Dns => "the From domain's DNS records need attention",
            Condition::Disk => "the database's disk is almost full",
            Condition::Database => "the database cannot be written",
        }
    }

    /// What it is once over.
    pub fn resolved_title(self) -> &'static str {
        match self {
            Condition::Paused => "reminders are being sent again",
            Condition::Passes => "reminder passes run again",
            Condition::Transport => "emails are being sent again",
            Condition::NoHooks => "checkouts arrive from Quicket again",
            Condition::Settings => "the settings on disk are in order again",
            Condition::Dns => "the From domain's DNS records are in order",
            Condition::Disk => "the database's disk has room again",
            Condition::Database => "the database can be written again",
        }
    }
}

/// What only `serve` knows: when it started, whether it runs passes on a schedule, the reloads
/// it refused, and the config file it re-reads.
#[derive(Debug, Clone)]
pub struct Serving {
    /// When this process started (no pass can be overdue before it has had the chance to run).
    pub started_at: DateTime<Utc>,
    /// Whether passes run on `schedule.scan` (tests drive them by hand).
    pub scheduled: bool,
    /// The main config file (`None`: built-in defaults, nothing on disk to judge).
    pub config_file: Option<PathBuf>,
}

/// Judges the conditions and tells the organiser what changed.
pub struct Watcher {
    engine: Arc<Engine>,
    store: Store,
    notifier: Notifier,
    serving: Option<Serving>,
    /// Conditions told while the database could not record them (told once per process).
    unrecorded: std::sync::Mutex<HashSet<Condition>>,
}

impl Watcher {
    /// A watcher for `serve` (`serving` set) or for one `run-once` (`None`: it judges what a
    /// pass's process can see: not reloads, nor passes being overdue).
    pub fn new(engine: Arc<Engine>, store: Store, serving: Option<Serving>) -> Watcher {
        Watcher {
            notifier: Notifier::new(engine.mailer().clone()),
            engine,
            store,
            serving,
            unrecorded: std::sync::Mutex::new(HashSet::new()),
        }
    }

    /// Judges every condition this process can see at `now`: `Some(sentence)` for those that hold.
    pub async fn judge(
        &self,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<(Condition, Option<String>)>> {
        let settings = self.engine.settings();
        let config = &settings.config;
        let tz = config.schedule.timezone;
        let local = |t: DateTime<Utc>| super::local_time(t, tz);
        let mut judged = Vec::new();

        let paused = self.store.sending_pause().await?.map(|p| {
            let since = parse_timestamp(&p.since).map(local).unwrap_or(p.since);
            format!(
                "Sending is paused by the circuit breaker since {since}: {}. Due reminders wait; nothing is dropped. \
                 Find out why (the overview lists complaints and bounces), then resume with \
                 `quicket-followup resume-sending` or the Resume button at {}/admin.",
                p.reason,
                config.public_url()
            )
        });
        judged.push((Condition::Paused, paused));

        judged.push((Condition::Passes, self.passes(config, now).await?));

        let transport = self
            .store
            .transport_failing_since()
            .await?
            .filter(|since| *since + TRANSPORT_GRACE <= now)
            .map(|since| {
                format!(
                    "No email could be sent since {}: the mail server refuses or does not answer. \
                     Reminders wait and are retried. Run `quicket-followup check` to test the connection; \
                     the overview at {}/admin shows the last error.",
                    local(since),
                    config.public_url()
                )
            });
        judged.push((Condition::Transport, transport));

        judged.push((Condition::NoHooks, self.hooks_silent(config, now).await?));

        if self.serving.is_some() {
            judged.push((Condition::Settings, self.settings_fault().await));
        }

        let dns = self.store.dns_readiness().await?.and_then(|(_, findings)| {
            let warnings: Vec<&str> = findings
                .iter()
                .filter(|f| f.warning)
                .map(|f| f.text.as_str())
                .collect();
            (!warnings.is_empty()).then(|| {
                format!(
                    "Reminders may land in spam until the From domain's DNS records are put right: {}",
                    warnings.join(" ")
                )
            })
        });
        judged.push((Condition::Dns, dns));

        let limit = f64::from(config.notify.disk_full_at) / 100.0;
        judged.push((Condition::Disk, disk_full(self.store.path(), limit)));
        Ok(judged)
    }

    /// The last pass failed, or (under a schedule) none finished for twice the scan interval.
    async fn passes(&self, config: &Config, now: DateTime<Utc>) -> anyhow::Result<Option<String>> {
        // As /healthz judges: from the latest pass that finished (a start may never finish).
        let last = self.store.last_finished_pass().await?;
        if let Some(error) = last.as_ref().and_then(|p| p.error.clone()) {
            return Ok(Some(format!(
                "The latest reminder pass failed, so reminders are not being sent: {error}. \
                 The service's log says more; `quicket-followup run-once --dry-run` shows what a pass would do."
            )));
        }
        let Some(serving) = self.serving.as_ref().filter(|s| s.scheduled) else {
            return Ok(None);
        };
        let since = last
            .as_ref()
            .and_then(|p| p.finished_at.as_deref())
            .and_then(|t| parse_timestamp(t).ok())
            .map_or(serving.started_at, |t| t.max(serving.started_at));
        let schedule = &config.schedule;
        if !crate::reminders::schedule::pass_overdue(&schedule.scan, schedule.timezone, since, now)
        {
            return Ok(None);
        }
        Ok(Some(format!(
            "No reminder pass has finished since {}, though passes should run on schedule.scan ({}). \
             Reminders are not being sent. Check that the service is running and its log.",
            super::local_time(since, schedule.timezone),
            schedule.scan
        )))
    }

    async fn hooks_silent(
        &self,
        config: &Config,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<String>> {
        let Some(last) = self.store.last_hook_at().await? else {
            return Ok(None);
        };
        if last + HOOKS_SILENT > now {
            return Ok(None);
        }
        let local_now = now.with_timezone(&config.schedule.timezone).naive_local();
        let upcoming = self
            .store
            .upcoming_with_checkouts(now - RECENT_CHECKOUTS, local_now)
            .await?;
        if upcoming == 0 {
            return Ok(None);
        }
        Ok(Some(format!(
            "Quicket has sent nothing since {}, though {upcoming} buyer(s) started checkouts in the last {} days \
             for events still to come. Quicket may have stopped posting, or the webhook URL changed: \
             check it in Quicket's settings (Integrations, Webhooks) against the URL `serve` prints at start.",
            super::local_time(last, config.schedule.timezone),
            RECENT_CHECKOUTS.num_days()
        )))
    }

    /// A refused reload, or the files on disk (as a restart would read them) failing `check`.
    async fn settings_fault(&self) -> Option<String> {
        if let Some(error) = self.engine.reload_status().last_error {
            return Some(format!(
                "New settings were refused and the running ones are kept: {error}. Fix the file, then run \
                 `quicket-followup check`."
            ));
        }
        let file = self.serving.as_ref()?.config_file.clone()?;
        let read = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let config = Config::load(Some(&file))?;
            crate::reminders::pass::Settings::load(Arc::new(config))?;
            Ok(())
        })
        .await;
        match read {
            Ok(Ok(())) | Err(_) => None,
            Ok(Err(e)) => Some(format!(
                "The settings on disk were changed and now have a mistake: {e:#}. The running settings are kept, \
                 but a restart would fail. Fix it, then run `quicket-followup check`."
            )),
        }
    }

    /// Judges, records and tells; returns what changed. When the database cannot record, what
    /// holds is told once per process (the database itself being one of them).
    pub async fn check(&self, now: DateTime<Utc>) -> anyhow::Result<Vec<AlertChange>> {
        let judged = match self.judge(now).await {
            Ok(judged) => judged,
            Err(e) => {
                self.tell_unrecorded(now, &format!("{e:#}")).await;
                return Err(e);
            }
        };
        let keyed: Vec<Judged> = judged
            .iter()
            .map(|(c, holds)| (c.key().to_string(), holds.clone()))
            .collect();
        let changes = match self.store.settle_alerts(keyed, now, REMIND_AFTER).await {
            Ok(changes) => changes,
            Err(e) => {
                self.tell_unrecorded(now, &e.to_string()).await;
                return Err(e.into());
            }
        };
        if let Ok(mut told) = self.unrecorded.lock() {
            told.clear();
        }
        let settings = self.engine.settings();
        for change in &changes {
            let notice = notice(&settings.config, change, now);
            let delivery = self
                .notifier
                .send(&settings.config.notify, &settings.config.email, &notice)
                .await;
            log(change, &delivery);
        }
        Ok(changes)
    }

    async fn tell_unrecorded(&self, now: DateTime<Utc>, error: &str) {
        let first = self
            .unrecorded
            .lock()
            .map(|mut told| told.insert(Condition::Database))
            .unwrap_or(false);
        if !first {
            return;
        }
        let settings = self.engine.settings();
        let change = AlertChange {
            condition: Condition::Database.key().into(),
            transition: Transition::Raised,
            started_at: now,
            summary: format!(
                "The database cannot be read or written ({error}), so Quicket's messages may be refused and no reminder is sent. \
                 Check the disk and the database file's permissions; `/healthz` says when it answers again."
            ),
        };
        let notice = notice(&settings.config, &change, now);
        let delivery = self
            .notifier
            .send(&settings.config.notify, &settings.config.email, &notice)
            .await;
        log(&change, &delivery);
    }

    /// One round for `serve`: the alerts, then the weekly report when it is due. Errors are logged.
    pub async fn tick(&self, now: DateTime<Utc>) {
        if let Err(e) = self.check(now).await {
            tracing::error!("the alert checks failed: {e:#}");
        }
        if let Err(e) =
            super::weekly::send_if_due(&self.engine, &self.store, &self.notifier, now).await
        {
            tracing::error!("the weekly report failed: {e:#}");
        }
    }

    /// Runs [`Watcher::tick`] every [`CHECK_EVERY`] until `stop` fires (the first right away).
    pub async fn run(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut every = tokio::time::interval(CHECK_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => self.tick(Utc::now()).await,
                _ = stop.changed() => return,
            }
        }
    }
}

fn log(change: &AlertChange, delivery: &Delivery) {
    tracing::warn!(
        condition = %change.condition,
        transition = ?change.transition,
        emailed = delivery.emailed,
        posted = delivery.posted,
        "alert: {}",
        change.summary
    );
}

/// The database's file system fuller than `limit` (a share; 1.0 is never), said in words.
fn disk_full(database: &std::path::Path, limit: f64) -> Option<String> {
    let dir = database
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let fs = rustix::fs::statvfs(dir).ok()?;
    // As df counts: blocks in use against those usable by the service (root's reserve left out).
    let used = fs.f_blocks.saturating_sub(fs.f_bfree);
    let usable = used + fs.f_bavail;
    if usable == 0 {
        return None;
    }
    let share = used as f64 / usable as f64;
    let free_mb = fs.f_bavail.saturating_mul(fs.f_frsize) / (1024 * 1024);
    (share > limit).then(|| {
        format!(
            "The disk that holds the database is {:.0}% full ({free_mb} MB left). When it is full, Quicket's messages are refused \
             and sales are lost: make room (old backups, logs) or a bigger disk.",
            share * 100.0
        )
    })
}

/// The message for one change.
pub fn notice(config: &Config, change: &AlertChange, now: DateTime<Utc>) -> Notice {
    let tz = config.schedule.timezone;
    let local = |t: DateTime<Utc>| super::local_time(t, tz);
    let condition = Condition::from_key(&change.condition);
    let title = condition.map_or("something needs attention", Condition::title);
    let overview = format!("{}/admin", config.public_url());
    let (subject, sentence, text) = match change.transition {
        Transition::Raised => (
            format!("Alert: {title}"),
            change.summary.clone(),
            format!(
                "{}\n\nSince {}.\n\nYou will get one more email when this is over, and a reminder each day while it lasts.",
                change.summary,
                local(change.started_at)
            ),
        ),
        Transition::Reminder => (
            format!("Still: {title}"),
            format!(
                "Still, since {}: {}",
                local(change.started_at),
                change.summary
            ),
            format!(
                "This has lasted since {}:\n\n{}",
                local(change.started_at),
                change.summary
            ),
        ),
        Transition::Resolved => {
            let over = condition.map_or("it is over", Condition::resolved_title);
            let sentence = format!(
                "Resolved: {over} (from {} to {}).",
                local(change.started_at),
                local(now)
            );
            (
                format!("Resolved: {over}"),
                sentence.clone(),
                format!("{sentence}\n\nWhat it was: {}", change.summary),
            )
        }
    };
    let kind = match change.transition {
        Transition::Raised => "alert.raised",
        Transition::Reminder => "alert.reminder",
        Transition::Resolved => "alert.resolved",
    };
    Notice {
        subject: format!("quicket-followup: {subject}"),
        text: format!("{text}\n\nOverview: {overview}\n"),
        html: None,
        chart_png: None,
        webhook: Some(Payload::new(
            kind,
            now,
            &sentence,
            json!({
                "condition": change.condition,
                "state": change.transition,
                "title": title,
                "since": crate::store::timestamp(change.started_at),
                "detail": change.summary,
                "overview": overview,
            }),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_condition_has_a_key_that_reads_back() {
        for c in Condition::ALL {
            assert_eq!(Condition::from_key(c.key()), Some(c));
        }
    }

    #[test]
    fn a_pass_is_overdue_after_two_missed_intervals() {
        let tz = chrono_tz::Africa::Johannesburg;
        let since: DateTime<Utc> = "2026-12-07T10:00:30Z".parse().unwrap();
        let scan = "0 * * * * *";
        assert!(!crate::reminders::schedule::pass_overdue(
            scan,
            tz,
            since,
            since + TimeDelta::minutes(2)
        ));
        assert!(crate::reminders::schedule::pass_overdue(
            scan,
            tz,
            since,
            since + TimeDelta::minutes(4)
        ));
    }

    #[test]
    fn the_disk_alert_follows_the_configured_share() {
        let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        // Any disk in use is fuller than 0%, and none is fuller than 100%.
        let told = super::disk_full(&here, 0.0).expect("over 0%");
        assert!(told.contains("% full ("), "{told}");
        assert_eq!(super::disk_full(&here, 1.0), None);
    }
}
