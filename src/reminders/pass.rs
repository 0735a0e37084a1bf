//! A reminder pass: the imperative shell around the planner. Read due buyer-events by index, ask
//! the planner, record what is not sent, claim in a transaction what is, and hand each claim to
//! the delivery. The only place that decides what is sent.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;

use super::decide::{Skips, Sorted, sort, would_send};
use super::engine::Engine;
// Where callers found it before the engine had its own file.
pub use super::engine::Settings;
use super::report::{PassLine, PassReport, line};
use crate::domain::{Outcome, SEND_INTERRUPTED};
use crate::email;
use crate::store::reminders::{Claim, DueBuyerEvent, OpenClaim, PassCounts};

/// Buyer-events read per page.
const PAGE: usize = 2000;
/// Emails in flight at once within a pass (each SMTP exchange waits ~40 ms on the network, as
/// lettre leaves Nagle's algorithm on; in parallel that costs nothing).
const SEND_CONCURRENCY: usize = crate::email::POOL_SIZE as usize;

/// One email a pass has to send.
pub(super) enum Job {
    /// A step claimed earlier (a crash, or a temporary failure) to send again.
    Resend(OpenClaim),
    /// A step the planner says is due: claim it, then send it.
    Send(Box<DueBuyerEvent>, String, Skips),
}

impl Engine {
    /// The pass itself, on one snapshot of the settings: claims left over first, then every due
    /// buyer-event, a page at a time.
    pub(super) async fn pass(
        &self,
        s: &Settings,
        now: DateTime<Utc>,
        dry_run: bool,
        report: &mut PassReport,
    ) -> anyhow::Result<()> {
        // First what a crash left mid-send, whatever else this pass does (even paused).
        self.interrupted_sends(now, dry_run, report).await?;
        // The circuit breaker: while sending is paused nothing is claimed, so nothing is lost.
        if let Some(reason) = super::breaker::paused(&self.store, now, dry_run).await? {
            report.paused = Some(reason);
            return Ok(());
        }
        if self.resend_open_claims(s, now, dry_run, report).await? {
            report.interrupted = true;
            return Ok(());
        }
        let suppressed = Arc::new(self.store.suppressed_keys().await?);
        let mut infos = self.events.all_cached().await;
        // Events refreshed by this pass already (a dry run keeps no answer in the database).
        let mut refreshed = HashSet::new();
        let mut after: Option<(String, String, String)> = None;
        let with_arms = s.rules.steps.iter().any(|step| !step.arms.is_empty());
        loop {
            let page = self
                .store
                .due_page(suppressed.clone(), now, after.clone(), PAGE, with_arms)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some((
                last.next_check_at.clone(),
                last.candidate.email_key.clone(),
                last.candidate.event_id.clone(),
            ));
            let full = page.len() == PAGE;
            let mut decided = self.decide(s, page, &infos, now, report);
            self.check_sold_out(s, &mut decided, &mut infos, &mut refreshed, now, dry_run)
                .await?;
            let sorted = sort(s, decided, now, report);
            if self.act(s, sorted, now, dry_run, report).await? {
                report.interrupted = true;
                return Ok(());
            }
            if !full {
                break;
            }
        }
        Ok(())
    }

    /// Claims whose SMTP transaction began and never ended (the process died mid-send, or a pass
    /// failed with sends in flight): they may or may not have arrived, so they are marked
    /// interrupted, never to be sent again, and said in the report. (A dry run only says so.)
    async fn interrupted_sends(
        &self,
        now: DateTime<Utc>,
        dry_run: bool,
        report: &mut PassReport,
    ) -> anyhow::Result<()> {
        let claims = if dry_run {
            self.store.started_claims().await?
        } else {
            self.store.interrupt_started(now).await?
        };
        for claim in claims {
            report.counts.interrupted += 1;
            if !dry_run {
                metrics::counter!(crate::metrics::REMINDERS, "step" => claim.step.clone(), "outcome" => "interrupted")
                    .increment(1);
                tracing::warn!(
                    reference = %claim.reference,
                    step = %claim.step,
                    "a reminder's sending was interrupted (the process stopped mid-send): it may or may not have arrived, and is not sent again"
                );
            }
            report.push(line(
                Outcome::Interrupted,
                &claim.email,
                &claim.event_id,
                &claim.reference,
                Some(&claim.step),
                format!("{SEND_INTERRUPTED}; not sent again"),
            ));
        }
        Ok(())
    }

    /// Claims left by a crash before their sending began, and sends waiting after a temporary
    /// failure, go first; but, like
    /// any reminder, only inside the send window. Returns whether the service began stopping.
    async fn resend_open_claims(
        &self,
        s: &Settings,
        now: DateTime<Utc>,
        dry_run: bool,
        report: &mut PassReport,
    ) -> anyhow::Result<bool> {
        let tz = s.rules.timezone;
        let claims: Vec<OpenClaim> = self
            .store
            .open_claims(now)
            .await?
            .into_iter()
            .filter(|claim| s.rules.window_for(&claim.step).allows(now, tz))
            .collect();
        if !dry_run {
            let jobs = claims.into_iter().map(Job::Resend).collect();
            return self.run_jobs(s, jobs, now, report).await;
        }
        for claim in claims {
            report.push(line(
                Outcome::WouldSend,
                &claim.email,
                &claim.event_id,
                &claim.reference,
                Some(&claim.step),
                "claimed earlier and not yet sent".into(),
            ));
        }
        Ok(false)
    }

    /// Records what sends nothing, then claims and sends the rest (a dry run only says what it
    /// would send). Returns whether the service began stopping.
    async fn act(
        &self,
        s: &Settings,
        sorted: Sorted,
        now: DateTime<Utc>,
        dry_run: bool,
        report: &mut PassReport,
    ) -> anyhow::Result<bool> {
        let Sorted { quiet, sends, arms } = sorted;
        if dry_run {
            for (due, step, skip) in sends {
                report.push(would_send(due, &step, &skip));
            }
            return Ok(false);
        }
        if !arms.is_empty() {
            // Before the sends: an arm's email never goes out without its arm on record.
            self.store.record_arms(arms, now).await?;
        }
        if !quiet.decisions.is_empty() {
            self.store.record_quiet(quiet, now).await?;
        }
        let jobs = sends
            .into_iter()
            .map(|(due, step, skip)| Job::Send(Box::new(due), step, skip))
            .collect();
        self.run_jobs(s, jobs, now, report).await
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
            Job::Send(due, step, skip) => match self.claim(s, *due, step, skip, now).await? {
                Ok(claim) => claim,
                Err(refused) => return Ok(Some(refused)),
            },
        };
        self.deliver(s, claim, now).await.map(Some)
    }

    /// Claims a due step in one transaction (which also checks, once more, that nothing was sent
    /// to the buyer meanwhile); the line saying why when the claim is refused.
    async fn claim(
        &self,
        s: &Settings,
        due: DueBuyerEvent,
        step: String,
        skip: Skips,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Result<OpenClaim, (PassLine, PassCounts)>> {
        let c = due.candidate;
        let message_id = email::message_id(
            &self.message_key,
            &c.email_key,
            &c.event_id,
            &step,
            &s.config.email.from,
        );
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
            min_gap: chrono::TimeDelta::from_std(s.rules.min_gap).unwrap_or(chrono::TimeDelta::MAX),
            template: template.clone(),
            share: s.config.experiment.holdout,
        };
        let claimed = self.store.claim(claim).await?;
        if let Err(refused) = claimed {
            let counts = PassCounts {
                skipped: 1,
                ..PassCounts::default()
            };
            let reason = refused.reason().into();
            let skipped = line(
                Outcome::Skipped,
                &c.email,
                &c.event_id,
                &due.reference,
                Some(&step),
                reason,
            );
            return Ok(Err((skipped, counts)));
        }
        Ok(Ok(OpenClaim {
            email_key: c.email_key,
            event_id: c.event_id,
            step,
            reference: due.reference,
            email: c.email,
            message_id,
            attempts: 0,
            decided_at: now,
            template: Some(template),
        }))
    }
}
