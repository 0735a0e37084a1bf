//! "What would this send?": the planner run forward in time over the stored buyer-events, as the
//! passes at each scan moment would run it, taking what a pass would send as sent. The planner is
//! pure, so this is too: nothing is sent, claimed or written. Buyer-events are independent of one
//! another (every rule is per buyer and event), so each is followed on its own, from pass to pass.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;

use super::planner::{Decision, Rules, plan};
use crate::domain::{Candidate, StepRecord, StepStatus};

/// Decisions followed for one buyer-event at most (a guard: a handful is the most a schedule gives).
const MAX_DECISIONS: usize = 1000;

/// A buyer-event to follow, with the order a reminder would be about.
#[derive(Debug, Clone)]
pub struct Start {
    /// What the planner reads, as stored now (`held_out` already settled).
    pub candidate: Candidate,
    /// The order.
    pub reference: String,
}

/// One email the passes would send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WouldSend {
    /// The pass that would send it.
    pub at: DateTime<Utc>,
    /// The step.
    pub step: String,
    /// The buyer's address.
    pub email: String,
    /// The buyer's key (for the template variant).
    pub email_key: String,
    /// The event.
    pub event_id: String,
    /// The order.
    pub reference: String,
}

/// What the passes between `from` and `until` would do.
#[derive(Debug, Clone, Default)]
pub struct Forecast {
    /// Every email, in the order the passes would send them.
    pub sends: Vec<WouldSend>,
    /// Steps that would fall due for buyer-events in the control group (never emailed).
    pub held_out: usize,
    /// The passes that would run.
    pub passes: usize,
}

/// One day of the forecast: emails per step, in the steps' order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Day {
    /// The local date.
    pub date: NaiveDate,
    /// Emails per step (index: the step's place in the rules).
    pub per_step: Vec<usize>,
    /// All emails of the day.
    pub total: usize,
}

impl Forecast {
    /// Emails per local day (every day from `from` to `until`, empty ones too) and step.
    pub fn days(
        &self,
        rules: &Rules,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        tz: Tz,
    ) -> Vec<Day> {
        let first = from.with_timezone(&tz).date_naive();
        let last = until.with_timezone(&tz).date_naive();
        let mut days: BTreeMap<NaiveDate, Vec<usize>> = first
            .iter_days()
            .take_while(|d| *d <= last)
            .map(|d| (d, vec![0; rules.steps.len()]))
            .collect();
        for send in &self.sends {
            let date = send.at.with_timezone(&tz).date_naive();
            let Some(i) = rules.steps.iter().position(|s| s.name == send.step) else {
                continue;
            };
            if let Some(counts) = days.get_mut(&date) {
                counts[i] += 1;
            }
        }
        days.into_iter()
            .map(|(date, per_step)| Day {
                date,
                total: per_step.iter().sum(),
                per_step,
            })
            .collect()
    }

    /// Emails per step over the whole span, in the steps' order.
    pub fn per_step(&self, rules: &Rules) -> Vec<usize> {
        rules
            .steps
            .iter()
            .map(|step| self.sends.iter().filter(|s| s.step == step.name).count())
            .collect()
    }
}

/// The moments passes run at: the next one after `t` (`inclusive`: or at it).
pub trait Passes {
    /// The next pass at or after (`inclusive`) or strictly after `t`; `None`: no more.
    fn next(&self, t: DateTime<Utc>, inclusive: bool) -> Option<DateTime<Utc>>;
}

/// Passes on a cron expression read in a zone, as the scheduler runs them.
pub struct CronPasses {
    cron: croner::Cron,
    tz: Tz,
}

impl CronPasses {
    /// The passes of `[schedule] scan` in `tz` (an error for a bad expression, naming it).
    pub fn new(scan: &str, tz: Tz) -> Result<Self, String> {
        Ok(Self {
            cron: crate::config::parse_cron(scan)?,
            tz,
        })
    }
}

impl Passes for CronPasses {
    fn next(&self, t: DateTime<Utc>, inclusive: bool) -> Option<DateTime<Utc>> {
        // croner keeps the fraction of a second it is given; passes run on whole seconds, so
        // look from the next whole second (at it, when `t` was past the one before).
        let whole = t.with_nanosecond(0)?;
        let (from, inclusive) = if whole < t {
            (whole + TimeDelta::seconds(1), true)
        } else {
            (whole, inclusive)
        };
        self.cron
            .find_next_occurrence(&from.with_timezone(&self.tz), inclusive)
            .ok()
            .map(|n| n.with_timezone(&Utc))
    }
}

/// Follows every buyer-event through the passes after `from` and before `until`.
pub fn forecast(
    starts: &[Start],
    rules: &Rules,
    passes: &dyn Passes,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Forecast {
    let first = passes.next(from, false);
    let mut out = Forecast {
        passes: count_passes(passes, first, until),
        ..Forecast::default()
    };
    for start in starts {
        follow(start, rules, passes, first, until, &mut out);
    }
    out.sends
        .sort_by(|a, b| (a.at, &a.email_key, &a.event_id).cmp(&(b.at, &b.email_key, &b.event_id)));
    out
}

fn count_passes(passes: &dyn Passes, first: Option<DateTime<Utc>>, until: DateTime<Utc>) -> usize {
    let mut n = 0;
    let mut at = first;
    while let Some(t) = at.filter(|t| *t < until) {
        n += 1;
        at = passes.next(t, false);
    }
    n
}

fn follow(
    start: &Start,
    rules: &Rules,
    passes: &dyn Passes,
    first: Option<DateTime<Utc>>,
    until: DateTime<Utc>,
    out: &mut Forecast,
) {
    let mut c = start.candidate.clone();
    let mut at = first;
    for _ in 0..MAX_DECISIONS {
        let Some(now) = at.filter(|t| *t < until) else {
            return;
        };
        let record = |step: &str, status| StepRecord {
            step: step.to_string(),
            status,
            decided_at: now,
            sent_at: (status == StepStatus::Sent).then_some(now),
        };
        let decision = plan(&c, rules, now);
        let look_again = decision.next_check(now);
        match decision {
            Decision::Send { step, skip } => {
                out.sends.push(WouldSend {
                    at: now,
                    step: step.clone(),
                    email: c.email.clone(),
                    email_key: c.email_key.clone(),
                    event_id: c.event_id.clone(),
                    reference: start.reference.clone(),
                });
                c.history.push(record(&step, StepStatus::Sent));
                c.history
                    .extend(skip.iter().map(|(s, _)| record(s, StepStatus::Skipped)));
            }
            Decision::HoldOut { step, skip } => {
                out.held_out += 1;
                c.history.push(record(&step, StepStatus::HeldOut));
                c.history
                    .extend(skip.iter().map(|(s, _)| record(s, StepStatus::Skipped)));
            }
            Decision::SkipSteps { skip } => {
                c.history
                    .extend(skip.iter().map(|(s, _)| record(s, StepStatus::Skipped)));
            }
            Decision::Defer { .. } | Decision::Skip { .. } | Decision::Done { .. } => {}
        }
        // As the stored next_check_at: a pass looks again once it has come.
        at = match look_again {
            None => None,
            Some(t) if t <= now => passes.next(now, false),
            Some(t) => passes.next(t, true),
        };
    }
}

/// The span a forecast covers by default: a week.
pub fn week() -> TimeDelta {
    TimeDelta::days(7)
}

/// Buyer-events followed at most (the latest changed first); the page says when there were more.
pub const MAX_FOLLOWED: usize = 20_000;

/// A forecast with what it was made from.
#[derive(Debug, Clone)]
pub struct Report {
    /// What the passes would send.
    pub forecast: Forecast,
    /// The rules it was made with (the edited schedule).
    pub rules: Rules,
    /// Its span.
    pub from: DateTime<Utc>,
    /// Its end.
    pub until: DateTime<Utc>,
    /// Buyer-events followed.
    pub followed: usize,
    /// Whether there were more than [`MAX_FOLLOWED`] (the oldest were left out).
    pub truncated: bool,
    /// What the first pass would decide for each buyer-event it will look at, soonest first.
    pub next: Vec<NextLook>,
}

/// A buyer-event the passes will look at, when, and what the planner says of it at `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextLook {
    /// When a pass looks at it (at `from` itself, when due now).
    pub at: DateTime<Utc>,
    /// The buyer's address.
    pub email: String,
    /// The buyer's key.
    pub email_key: String,
    /// The event.
    pub event_id: String,
    /// What the planner says now: the step it would send, or why it waits.
    pub why: String,
}

/// The buyer-events the planner will look at again, with when and why, soonest first.
fn next_looks(starts: &[Start], rules: &Rules, now: DateTime<Utc>) -> Vec<NextLook> {
    let mut next: Vec<NextLook> = starts
        .iter()
        .filter_map(|start| {
            let c = &start.candidate;
            let decision = plan(c, rules, now);
            let at = decision.next_check(now)?;
            let why = match decision {
                Decision::Send { step, .. } => format!("{step} is due now"),
                Decision::HoldOut { .. } => {
                    "in the control group: never emailed, on purpose".to_string()
                }
                Decision::SkipSteps { skip } => skip
                    .iter()
                    .map(|(step, why)| format!("{step}: {why}"))
                    .collect::<Vec<_>>()
                    .join("; "),
                Decision::Defer { reason, .. }
                | Decision::Skip { reason }
                | Decision::Done { reason } => reason,
            };
            Some(NextLook {
                at,
                email: c.email.clone(),
                email_key: c.email_key.clone(),
                event_id: c.event_id.clone(),
                why,
            })
        })
        .collect();
    next.sort_by(|a, b| (a.at, &a.email_key, &a.event_id).cmp(&(b.at, &b.email_key, &b.event_id)));
    next
}

impl Report {
    /// Emails per local day and step.
    pub fn days(&self) -> Vec<Day> {
        self.forecast
            .days(&self.rules, self.from, self.until, self.rules.timezone)
    }
}

/// What the passes from `from` for `span` would send with `config`'s schedule (an edited one,
/// not yet in force) over the buyer-events stored now, the control group and the event dates
/// known as the running service has them. Sends nothing, writes nothing.
pub async fn what_would_send(
    engine: &super::Engine,
    store: &crate::store::Store,
    config: &crate::config::Config,
    from: DateTime<Utc>,
    span: TimeDelta,
) -> anyhow::Result<Report> {
    let rules = Rules::from_config(config);
    let passes = CronPasses::new(&config.schedule.scan, config.schedule.timezone)
        .map_err(|e| anyhow::anyhow!("schedule.scan: {e}"))?;
    let give_up = TimeDelta::from_std(config.schedule.give_up_after).unwrap_or(TimeDelta::MAX);
    let since = from
        .checked_sub_signed(give_up)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let (open, truncated) = store.open_buyer_events(since, MAX_FOLLOWED).await?;
    let infos = engine.events().all_cached().await;
    let settings = engine.settings();
    let starts: Vec<Start> = open
        .into_iter()
        .map(|due| {
            let held_out = engine.held_out(&settings, &due);
            let mut candidate = due.candidate;
            candidate.held_out = held_out;
            candidate.event_date =
                crate::events::event_start(candidate.event_date, infos.get(&candidate.event_id));
            Start {
                candidate,
                reference: due.reference,
            }
        })
        .collect();
    let until = from + span;
    Ok(Report {
        forecast: forecast(&starts, &rules, &passes, from, until),
        next: next_looks(&starts, &rules, from),
        followed: starts.len(),
        rules,
        from,
        until,
        truncated,
    })
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::domain::OrderState;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn start(email: &str, state: OrderState, changed: &str) -> Start {
        Start {
            candidate: Candidate {
                email_key: email.to_lowercase(),
                event_id: "1".into(),
                email: email.into(),
                state,
                changed_at: at(changed),
                event_date: None,
                history: Vec::new(),
                suppressed: false,
                sold_out: false,
                held_out: false,
                arms: Vec::new(),
            },
            reference: format!("ref-{email}"),
        }
    }

    #[test]
    fn the_default_steps_go_out_when_the_passes_would_send_them() {
        let mut config = Config::default();
        config.schedule.send_window = crate::send_rules::SendWindow::parse("").unwrap();
        config.schedule.scan = "0 0 * * * *".into();
        let rules = Rules::from_config(&config);
        let passes = CronPasses::new(&config.schedule.scan, config.schedule.timezone).unwrap();
        let from = at("2026-12-01T10:10:00Z");
        let until = from + week();
        let starts = [
            start("a@buyer.co.za", OrderState::Started, "2026-12-01T10:00:00Z"),
            start(
                "b@buyer.co.za",
                OrderState::EftPending,
                "2026-12-01T09:00:00Z",
            ),
            start(
                "c@buyer.co.za",
                OrderState::Completed,
                "2026-12-01T09:00:00Z",
            ),
        ];
        let f = forecast(&starts, &rules, &passes, from, until);
        assert_eq!(f.passes, 24 * 7);
        let sent: Vec<(String, String)> = f
            .sends
            .iter()
            .map(|s| (s.at.to_rfc3339(), s.step.clone()))
            .collect();
        assert_eq!(
            sent,
            [
                // 1h after 10:00 is 11:00, the pass on the hour.
                (
                    "2026-12-01T11:00:00+00:00".to_string(),
                    "abandoned-1".to_string()
                ),
                ("2026-12-02T09:00:00+00:00".to_string(), "eft-1".to_string()),
            ]
        );
        let days = f.days(&rules, from, until, config.schedule.timezone);
        assert_eq!(days.len(), 8);
        assert_eq!(days[0].per_step, [1, 0, 0]);
        assert_eq!(days[1].per_step, [0, 1, 0]);
        assert_eq!(f.per_step(&rules), [1, 1, 0]);
    }

    #[test]
    fn min_gap_and_the_window_are_kept_and_the_control_group_is_counted_apart() {
        let mut config = Config::default(); // za-cpa: Sunday never
        config.schedule.scan = "0 */15 * * * *".into();
        let rules = Rules::from_config(&config);
        let passes = CronPasses::new(&config.schedule.scan, config.schedule.timezone).unwrap();
        // Saturday 2026-12-05 12:00 local; the event on Wednesday 09:00 local.
        // Saturday 2026-12-05 11:40 local (UTC+2); the event on Wednesday 09:00 local.
        let mut a = start("a@buyer.co.za", OrderState::Started, "2026-12-05T09:40:00Z");
        a.candidate.event_date = Some(
            chrono::NaiveDate::from_ymd_opt(2026, 12, 9)
                .unwrap()
                .and_hms_opt(9, 0, 0)
                .unwrap(),
        );
        let mut held = a.clone();
        held.candidate.email_key = "h@buyer.co.za".into();
        held.candidate.email = "h@buyer.co.za".into();
        held.candidate.held_out = true;
        let from = at("2026-12-05T10:00:00Z");
        let f = forecast(&[a, held], &rules, &passes, from, from + week());
        let sends: Vec<_> = f
            .sends
            .iter()
            .map(|s| (s.at.to_rfc3339(), s.step.as_str()))
            .collect();
        assert_eq!(
            sends,
            [
                // Due 12:40 on Saturday: the pass at 12:45, inside Saturday's 09:00-13:00.
                ("2026-12-05T10:45:00+00:00".to_string(), "abandoned-1"),
                // Due Sunday 09:00 (3 days before the event): never on a Sunday, so Monday 08:00.
                ("2026-12-07T06:00:00+00:00".to_string(), "last-chance"),
            ]
        );
        // The control group goes through the same rules, and is only counted.
        assert_eq!(f.held_out, 2);
    }
}
