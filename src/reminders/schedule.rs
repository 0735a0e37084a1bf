//! When passes run: tokio-cron-scheduler fires on `schedule.scan`; the scheduler holds no state of
//! its own, the database decides what is due. Overlapping runs are refused by the engine's guard.

use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};
use tokio_cron_scheduler::{Job, JobScheduler};

use super::{Engine, PassError};

/// A running schedule.
pub struct Schedule {
    scheduler: JobScheduler,
}

impl Schedule {
    /// Starts running passes on `cron` (six fields, seconds first) in `timezone`.
    pub async fn start(
        engine: Arc<Engine>,
        cron: &str,
        timezone: chrono_tz::Tz,
    ) -> anyhow::Result<Schedule> {
        let retention_engine = engine.clone();
        let scheduler = JobScheduler::new()
            .await
            .context("cannot start the reminder scheduler")?;
        let job = Job::new_async_tz(cron, timezone, move |_id, _scheduler| {
            let engine = engine.clone();
            Box::pin(async move { run(&engine).await })
        })
        .with_context(|| format!("schedule.scan {cron:?} cannot be scheduled"))?;
        scheduler
            .add(job)
            .await
            .context("cannot schedule the reminder pass")?;
        // Retention runs daily at 03:17 local time, when little else is going on.
        let retention = Job::new_async_tz("0 17 3 * * *", timezone, move |_id, _scheduler| {
            let engine = retention_engine.clone();
            Box::pin(async move { engine.apply_retention(Utc::now()).await })
        })
        .context("cannot schedule the retention job")?;
        scheduler
            .add(retention)
            .await
            .context("cannot schedule the retention job")?;
        scheduler
            .start()
            .await
            .context("cannot start the reminder scheduler")?;
        Ok(Schedule { scheduler })
    }

    /// Stops firing new passes (a pass in flight is waited for by [`Engine::stop`]).
    pub async fn stop(mut self) {
        if let Err(e) = self.scheduler.shutdown().await {
            tracing::warn!("stopping the reminder scheduler: {e}");
        }
    }
}

async fn run(engine: &Engine) {
    let now = Utc::now();
    engine.notice_clock(now).await;
    // The lines are not kept: the database records every decision, the log the totals.
    match engine
        .run_pass_into(now, false, Some(Box::new(|_| {})))
        .await
    {
        Ok(report) => {
            let c = &report.counts;
            if c.considered > 0 || c.sent > 0 || c.failed > 0 || c.interrupted > 0 {
                tracing::info!(
                    considered = c.considered,
                    sent = c.sent,
                    deferred = c.deferred,
                    skipped = c.skipped,
                    failed = c.failed,
                    interrupted = c.interrupted,
                    "reminder pass"
                );
            }
        }
        Err(PassError::Busy) => {
            tracing::debug!("a reminder pass is still running; skipped this tick")
        }
        Err(e) => tracing::error!("reminder pass failed: {e:#}"),
    }
}

/// Whether the pass that should have followed `since` is more than two scan intervals late.
pub fn pass_overdue(
    scan: &str,
    timezone: chrono_tz::Tz,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    let Ok(cron) = crate::config::parse_cron(scan) else {
        return false;
    };
    let mut t = since.with_timezone(&timezone);
    // The next run after `since`, then two more intervals of grace.
    for _ in 0..3 {
        match cron.find_next_occurrence(&t, false) {
            Ok(next) => t = next,
            Err(_) => return false,
        }
    }
    now > t.with_timezone(&Utc)
}
