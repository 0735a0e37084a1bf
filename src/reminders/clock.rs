//! Noticing a system clock that jumped between two scheduled passes: the wall clock moved by more
//! (or less) than the time that really passed, by more than a scan interval. Passes decide for
//! the wall clock's now, so a jump forward may skip what was due later (undone by the next pass
//! at the right time) and a jump back repeats decisions; either way the operator should know.

use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

/// A jump noticed, for `/healthz` and the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClockJump {
    /// When it was noticed (UTC, RFC 3339, by the clock after the jump).
    pub noticed_at: String,
    /// How far the wall clock moved beyond the time that passed: positive forward, negative back.
    pub by_seconds: i64,
}

/// The wall clock and the monotonic clock at the last scheduled pass.
#[derive(Debug, Default)]
pub struct ClockWatch {
    last: Option<(Instant, DateTime<Utc>)>,
    /// The latest jump noticed since start.
    pub jump: Option<ClockJump>,
}

impl ClockWatch {
    /// Notes a pass at `wall` (the wall clock) and `mono` (the monotonic clock); returns the jump
    /// when the wall clock moved by more than `interval` beyond the time that really passed.
    pub fn observe(
        &mut self,
        mono: Instant,
        wall: DateTime<Utc>,
        interval: TimeDelta,
    ) -> Option<ClockJump> {
        let previous = self.last.replace((mono, wall));
        let (then_mono, then_wall) = previous?;
        let real = TimeDelta::from_std(mono.saturating_duration_since(then_mono)).ok()?;
        let drift = (wall - then_wall) - real;
        if drift.abs() <= interval {
            return None;
        }
        let jump = ClockJump {
            noticed_at: crate::store::timestamp(wall),
            by_seconds: drift.num_seconds(),
        };
        self.jump = Some(jump.clone());
        Some(jump)
    }

    /// Whether no pass was observed yet.
    pub fn never_observed(&self) -> bool {
        self.last.is_none()
    }

    /// Notes a jump found otherwise (the clock behind the last pass recorded at the start).
    pub fn record(&mut self, jump: ClockJump) {
        self.jump = Some(jump);
    }
}

/// The time between two consecutive runs of `scan` after `from` (a minute when it cannot say).
pub fn scan_interval(scan: &str, timezone: chrono_tz::Tz, from: DateTime<Utc>) -> TimeDelta {
    let minute = TimeDelta::minutes(1);
    let Ok(cron) = crate::config::parse_cron(scan) else {
        return minute;
    };
    let from = from.with_timezone(&timezone);
    let Ok(first) = cron.find_next_occurrence(&from, false) else {
        return minute;
    };
    let Ok(second) = cron.find_next_occurrence(&first, false) else {
        return minute;
    };
    second.signed_duration_since(first)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_wall_clock_that_moves_with_real_time_is_no_jump_and_one_that_leaps_is() {
        let mut watch = ClockWatch::default();
        let mono = Instant::now();
        let wall = DateTime::parse_from_rfc3339("2026-12-07T19:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let minute = TimeDelta::minutes(1);
        assert_eq!(watch.observe(mono, wall, minute), None);
        let mono = mono + Duration::from_secs(60);
        let wall = wall + TimeDelta::seconds(61);
        assert_eq!(watch.observe(mono, wall, minute), None);
        // A minute of real time, and the wall clock went a day ahead.
        let mono = mono + Duration::from_secs(60);
        let wall = wall + TimeDelta::days(1) + minute;
        let jump = watch.observe(mono, wall, minute).unwrap();
        assert_eq!(jump.by_seconds, 86_400);
        // And back again.
        let mono = mono + Duration::from_secs(60);
        let wall = wall - TimeDelta::days(1) + minute;
        assert_eq!(
            watch.observe(mono, wall, minute).unwrap().by_seconds,
            -86_400
        );
        assert_eq!(watch.jump.as_ref().unwrap().by_seconds, -86_400);
    }

    #[test]
    fn the_interval_is_the_schedules() {
        let from = Utc::now();
        let tz = chrono_tz::Africa::Johannesburg;
        assert_eq!(
            scan_interval("0 * * * * *", tz, from),
            TimeDelta::minutes(1)
        );
        assert_eq!(
            scan_interval("0 */15 * * * *", tz, from),
            TimeDelta::minutes(15)
        );
    }
}
