//! When the weekly report is due (`notify.weekly`, in `schedule.timezone`), and sending it once:
//! the database records which week was sent, so two processes or a restart never send it twice.

use chrono::{DateTime, Datelike, TimeDelta, TimeZone, Utc};

use super::Notifier;
use super::report::Report;
use crate::config::Weekly;
use crate::reminders::Engine;
use crate::store::Store;

/// A report missed by more than this (the service was down) is skipped, not sent late.
pub const LATE_BY_AT_MOST: TimeDelta = TimeDelta::hours(24);

/// The latest moment of the weekly schedule at or before `now`, when it is less than
/// [`LATE_BY_AT_MOST`] ago.
pub fn due(weekly: Weekly, timezone: chrono_tz::Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let (day, time) = weekly.0?;
    let today = now.with_timezone(&timezone).date_naive();
    let latest = (0..8)
        .filter_map(|back| today.checked_sub_days(chrono::Days::new(back)))
        .filter(|date| date.weekday() == day)
        .filter_map(|date| {
            timezone
                .from_local_datetime(&date.and_time(time))
                .earliest()
                .map(|t| t.with_timezone(&Utc))
        })
        .find(|t| *t <= now)?;
    (now - latest < LATE_BY_AT_MOST).then_some(latest)
}

/// Sends the weekly report when it is due and no process has sent it yet. Returns whether this
/// call sent it.
pub async fn send_if_due(
    engine: &Engine,
    store: &Store,
    notifier: &Notifier,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let settings = engine.settings();
    let config = &settings.config;
    if config.notify.to.is_empty() {
        return Ok(false);
    }
    let Some(at) = due(config.notify.weekly, config.schedule.timezone, now) else {
        return Ok(false);
    };
    if !store.claim_weekly_report(at).await? {
        return Ok(false);
    }
    let report = Report::gather(store, config, at).await?;
    let delivery = notifier
        .send(&config.notify, &config.email, &report.notice()?)
        .await;
    anyhow::ensure!(
        delivery.emailed,
        "the weekly report was not sent: {}",
        delivery.errors.join("; ")
    );
    tracing::info!("the weekly report was sent to notify.to");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_on_the_day_at_the_time_in_the_zone_for_a_day() {
        let tz = chrono_tz::Africa::Johannesburg;
        let weekly = Weekly::parse("mon 08:00").unwrap();
        // Monday 7 December 2026, 08:00 in Johannesburg is 06:00 UTC.
        let at: DateTime<Utc> = "2026-12-07T06:00:00Z".parse().unwrap();
        assert_eq!(due(weekly, tz, at - TimeDelta::minutes(1)), None);
        assert_eq!(due(weekly, tz, at), Some(at));
        assert_eq!(due(weekly, tz, at + TimeDelta::hours(23)), Some(at));
        assert_eq!(due(weekly, tz, at + TimeDelta::hours(25)), None);
        assert_eq!(due(Weekly(None), tz, at), None);
    }
}
