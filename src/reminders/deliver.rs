//! Delivering a claimed step: the rate limit, a last check that it should still go, rendering,
//! sending, and recording how it ended (sent, retried later with a growing delay, refused,
//! skipped).

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use chrono::{DateTime, Utc};
use lettre::Message;
use rand::Rng;

use super::engine::{Engine, Settings};
use super::pass::Job;
use super::report::{PassLine, line};
use crate::config::ReminderStep;
use crate::domain::{
    ADDRESS_SUPPRESSED, BUYER_PAID, EventInfo, OrderState, Outcome, check_deliverable,
};
use crate::email::{self, Outgoing, SendError};
use crate::links::{LinkTarget, LinkUrls};
use crate::store::StoreError;
use crate::store::reminders::{ClaimResult, OpenClaim, PassCounts, SendCheck};

/// First delay after a temporary failure; doubles per attempt up to [`MAX_RETRY_DELAY`].
const FIRST_RETRY_DELAY: Duration = Duration::from_secs(60);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);

impl Engine {
    /// Waits for the rate limit (`max_per_minute`) to allow one more email; `false` when the
    /// service is stopping, in which case nothing more is claimed or sent.
    pub(super) async fn may_send(&self) -> bool {
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
    pub(super) fn outside_window_now(
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
            line(
                Outcome::Deferred,
                email,
                event_id,
                reference,
                Some(step),
                reason,
            ),
            counts,
        ))
    }

    /// Sends a claimed step (checking once more that it should go), and records how it ended.
    pub(super) async fn deliver(
        &self,
        s: &Settings,
        claim: OpenClaim,
        now: DateTime<Utc>,
    ) -> anyhow::Result<(PassLine, PassCounts)> {
        let check = self.store.send_check(&claim).await?;
        let result = match self.attempt(s, &claim, check, now).await {
            Ok(result) => result,
            Err(e) => ClaimResult::Retry {
                retry_at: now + retry_delay(claim.attempts + 1),
                error: format!("{e:#}"),
            },
        };
        count(&claim, &result);
        let done = describe(s, &claim, &result);
        let next_check = match &result {
            ClaimResult::Retry { retry_at, .. } => *retry_at,
            ClaimResult::Sent { .. } => {
                let gap = chrono::TimeDelta::from_std(s.rules.min_gap.max(Duration::from_secs(1)))
                    .unwrap_or(chrono::TimeDelta::MAX);
                now.checked_add_signed(gap)
                    .unwrap_or(DateTime::<Utc>::MAX_UTC)
            }
            _ => now + chrono::TimeDelta::seconds(1),
        };
        self.store
            .finish_claim(claim, result, now, next_check)
            .await?;
        Ok(done)
    }

    /// Decides whether a claimed step still goes, and sends it.
    async fn attempt(
        &self,
        s: &Settings,
        claim: &OpenClaim,
        check: Option<SendCheck>,
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
        if let Some(reason) = not_wanted(claim, &check) {
            return skipped(reason);
        }
        let Some(step) = s.config.reminders.iter().find(|s| s.name == claim.step) else {
            return skipped("the step is no longer configured");
        };
        let info = self.events.cached(&claim.event_id).await;
        if let Some(reason) = too_late(s, &check, info.as_ref(), now) {
            return skipped(reason);
        }
        let message = self
            .compose(s, claim, step, &check, info.as_ref(), now)
            .await?;
        // Durably, before the transaction begins: a crash from here on leaves the claim
        // interrupted (never sent again), not open (sent again by the next pass).
        self.store.start_send(claim, now).await?;
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

    /// The email of a claimed step: its links (made on first use), the template's rendering, the
    /// message with its stable Message-ID.
    async fn compose(
        &self,
        s: &Settings,
        claim: &OpenClaim,
        step: &ReminderStep,
        check: &SendCheck,
        info: Option<&EventInfo>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Message> {
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
        let start = crate::events::event_start(check.event_date, info)
            .map(|date| s.rules.event_start(date));
        let links = self.issue_links(&target, start, now).await?;
        let context = self.context(
            s,
            &order,
            &target,
            &links,
            &claim.email,
            check.sent + 1,
            info,
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
        email::build(
            &s.config.email,
            &outgoing,
            SystemTime::from(now.max(claim.decided_at)),
        )
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
}

/// Why a claimed step must not go to the buyer any more (paid or unsubscribed meanwhile, or an
/// address that cannot receive it), or `None`.
fn not_wanted(claim: &OpenClaim, check: &SendCheck) -> Option<&'static str> {
    if check.state == OrderState::Completed {
        return Some(BUYER_PAID);
    }
    if check.suppressed {
        return Some(ADDRESS_SUPPRESSED);
    }
    check_deliverable(&claim.email).err()
}

/// Why a claimed step is too late to send (the checkout too old, the event too close), or `None`.
fn too_late(
    s: &Settings,
    check: &SendCheck,
    info: Option<&EventInfo>,
    now: DateTime<Utc>,
) -> Option<&'static str> {
    let give_up =
        chrono::TimeDelta::from_std(s.rules.give_up_after).unwrap_or(chrono::TimeDelta::MAX);
    if check
        .changed_at
        .checked_add_signed(give_up)
        .is_some_and(|give_up_at| now >= give_up_at)
    {
        return Some("gave up: the last change is too old to send it any more");
    }
    // A send that kept failing is abandoned once it could no longer be sent on time.
    if let Some(date) = crate::events::event_start(check.event_date, info) {
        let before = chrono::TimeDelta::from_std(s.rules.stop_before_event)
            .unwrap_or(chrono::TimeDelta::MAX);
        let stop = s.rules.event_start(date).checked_sub_signed(before);
        if stop.is_none_or(|stop| now >= stop) {
            return Some("too close to the event to send it any more");
        }
    }
    None
}

/// Counts the outcome on `/metrics`.
fn count(claim: &OpenClaim, result: &ClaimResult) {
    let (outcome, smtp_error) = match result {
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
}

/// The report's line and totals for how a delivery ended (logged as it is said).
fn describe(s: &Settings, claim: &OpenClaim, result: &ClaimResult) -> (PassLine, PassCounts) {
    let mut counts = PassCounts::default();
    let (label, reason) = match result {
        ClaimResult::Sent { .. } => {
            counts.sent += 1;
            tracing::info!(reference = %claim.reference, step = %claim.step, "reminder sent");
            (Outcome::Sent, "sent".to_string())
        }
        ClaimResult::Retry { retry_at, error } => {
            counts.failed += 1;
            tracing::warn!(reference = %claim.reference, step = %claim.step, "reminder not sent, will retry: {error}");
            let at = retry_at.with_timezone(&s.rules.timezone);
            let reason = format!("{error}; will retry at {}", at.format("%Y-%m-%d %H:%M"));
            (Outcome::Failed, reason)
        }
        ClaimResult::Failed { error, suppress } => {
            counts.failed += 1;
            tracing::warn!(reference = %claim.reference, step = %claim.step, "reminder refused by the mail server: {error}");
            let also = if *suppress {
                "; the address is now suppressed"
            } else {
                ""
            };
            (Outcome::Failed, format!("{error}{also}"))
        }
        ClaimResult::Skipped { reason } => {
            counts.skipped += 1;
            (Outcome::Skipped, reason.clone())
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
    (done, counts)
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
pub(super) struct RateLimiter {
    per_minute: u32,
    capacity: f64,
    tokens: f64,
    last: tokio::time::Instant,
}

impl RateLimiter {
    pub(super) fn new(per_minute: u32) -> Self {
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
    pub(super) fn reserve(&mut self) -> Duration {
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
