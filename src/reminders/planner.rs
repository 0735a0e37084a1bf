//! The planner: a pure function from (a buyer-event's history, the rules, now) to a decision.
//! No I/O, no clock, no randomness, so every rule is a unit test and the engine is property-testable.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::config::{Config, EventConfig, ReminderStep, StepTiming};
use crate::domain::{ADDRESS_SUPPRESSED, BUYER_PAID, OrderState, Outcome, check_deliverable};
use crate::send_rules::SendRule;

/// The rules a pass applies, taken from the configuration.
#[derive(Debug, Clone)]
pub struct Rules {
    /// The steps, in configuration order.
    pub steps: Vec<ReminderStep>,
    /// The zone event dates and the send window are read in.
    pub timezone: Tz,
    /// When emails may go out (steps without their own window).
    pub send_rule: SendRule,
    /// The steps with their own send window.
    pub step_rules: BTreeMap<String, SendRule>,
    /// A checkout must have been still this long.
    pub dormant_after: Duration,
    /// At most one email per buyer-event within this span.
    pub min_gap: Duration,
    /// Nothing once the last change is this old.
    pub give_up_after: Duration,
    /// Nothing this close to the event, nor after it.
    pub stop_before_event: Duration,
    /// Per-event overrides.
    pub events: BTreeMap<String, EventConfig>,
}

impl Rules {
    /// The rules of a configuration.
    pub fn from_config(config: &Config) -> Rules {
        let s = &config.schedule;
        Rules {
            steps: config.reminders.clone(),
            timezone: s.timezone,
            send_rule: s.send_rule(),
            step_rules: config
                .reminders
                .iter()
                .filter(|step| !step.send_window.is_unset())
                .map(|step| (step.name.clone(), s.step_send_rule(step)))
                .collect(),
            dormant_after: s.dormant_after,
            min_gap: s.min_gap,
            give_up_after: s.give_up_after,
            stop_before_event: s.stop_before_event,
            events: config.events.clone(),
        }
    }

    /// The send window in force for a step.
    pub fn window_for(&self, step: &str) -> &SendRule {
        self.step_rules.get(step).unwrap_or(&self.send_rule)
    }

    /// The event's start as an instant, reading Quicket's offset-less time in the configured zone.
    pub fn event_start(&self, local: NaiveDateTime) -> DateTime<Utc> {
        local_to_utc(self.timezone, local)
    }
}

pub use crate::domain::{Candidate, StepRecord, StepStatus};

/// The planner's answer for one buyer-event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Send this step now; the listed earlier steps, overdue at the same time, are skipped.
    Send {
        /// The step to send.
        step: String,
        /// Steps to record as skipped, with the reason.
        skip: Vec<(String, String)>,
    },
    /// Nothing now; look again at `until`.
    Defer {
        /// When to look again.
        until: DateTime<Utc>,
        /// Why not now.
        reason: String,
    },
    /// Nothing, ever (unless a new hook changes the picture).
    Skip {
        /// Why.
        reason: String,
    },
    /// Nothing left to do: paid, or every step for this state handled.
    Done {
        /// Why.
        reason: String,
    },
    /// The step would be sent now, but the buyer-event is in the control group: record it (and
    /// `skip`) as held out instead, and plan again.
    HoldOut {
        /// The step that would have been sent.
        step: String,
        /// Steps to record as skipped, with the reason.
        skip: Vec<(String, String)>,
    },
    /// Record these due steps as skipped (the tickets are sold out) and plan again.
    SkipSteps {
        /// The steps, and why.
        skip: Vec<(String, String)>,
    },
}

impl Decision {
    /// The outcome named in logs, `run-once` and the database.
    pub fn label(&self) -> Outcome {
        match self {
            Decision::Send { .. } => Outcome::Sent,
            Decision::Defer { .. } => Outcome::Deferred,
            Decision::Skip { .. } | Decision::SkipSteps { .. } | Decision::HoldOut { .. } => {
                Outcome::Skipped
            }
            Decision::Done { .. } => Outcome::Done,
        }
    }

    /// When the buyer-event should be looked at again (`None`: only after a new hook).
    pub fn next_check(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            // After a send or a skip, the next pass plans the remaining steps.
            Decision::Send { .. } | Decision::SkipSteps { .. } | Decision::HoldOut { .. } => {
                Some(now)
            }
            Decision::Defer { until, .. } => Some(*until),
            Decision::Skip { .. } | Decision::Done { .. } => None,
        }
    }
}

fn chrono_duration(d: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
}

/// Where time arithmetic saturates: far enough to mean "never", near enough that the instant can
/// still be shown in any zone (chrono's own limits cannot: a local time past them panics).
fn never() -> DateTime<Utc> {
    DateTime::<Utc>::MAX_UTC - chrono::TimeDelta::days(2)
}

fn long_ago() -> DateTime<Utc> {
    DateTime::<Utc>::MIN_UTC + chrono::TimeDelta::days(2)
}

/// `t` plus `d`, or "never" when that is past the calendar: a later time rather than a panic (the
/// configuration bounds durations, but the planner does not count on it).
pub fn plus(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t.checked_add_signed(chrono_duration(d))
        .map_or_else(never, |t| t.min(never()))
}

/// `t` minus `d`, or "long ago" when that is before the calendar.
pub fn minus(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t.checked_sub_signed(chrono_duration(d))
        .map_or_else(long_ago, |t| t.max(long_ago()))
}

/// Reads a local wall-clock time in `tz`. In an autumn overlap the earlier instant is taken; in a
/// spring gap the time is read an hour later (the clock's next valid reading).
pub fn local_to_utc(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local).earliest() {
        Some(t) => t.with_timezone(&Utc),
        None => tz
            .from_local_datetime(&(local + chrono::TimeDelta::hours(1)))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| local.and_utc()),
    }
}

fn when_text(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string()
}

/// Outside the step's send window: wait for the next moment it allows (or for the horizon, when
/// that comes first), saying why in the rule's words.
fn wait_for_window(
    rules: &Rules,
    step: &str,
    now: DateTime<Utc>,
    horizon: DateTime<Utc>,
) -> Option<Decision> {
    let tz = rules.timezone;
    let closed = rules.window_for(step).closed_at(now, tz)?;
    let why = closed.reason;
    let when = |t: DateTime<Utc>| t.with_timezone(&tz).format("%A %Y-%m-%d %H:%M %Z");
    Some(match closed.opens {
        Some(opens) if opens <= horizon => Decision::Defer {
            until: opens,
            reason: format!("{why}; {step} waits until {}", when(opens)),
        },
        Some(opens) => Decision::Defer {
            until: horizon,
            reason: format!(
                "{why}; the window opens only {}, too late for {step}",
                when(opens)
            ),
        },
        None => Decision::Defer {
            until: horizon,
            reason: format!("{why}; the send window does not open again"),
        },
    })
}

/// The reason recorded for a step not sent because the buyer's tickets are sold out.
pub const SOLD_OUT: &str = "sold out";

/// Decides what to do for one buyer-event at `now`.
pub fn plan(c: &Candidate, rules: &Rules, now: DateTime<Utc>) -> Decision {
    let event_start = c.event_date.map(|d| rules.event_start(d));
    let stop_at = event_start.map(|s| minus(s, rules.stop_before_event));
    let give_up_at = plus(c.changed_at, rules.give_up_after);
    if let Some(never) = never_now(c, rules, now, event_start, stop_at, give_up_at) {
        return never;
    }
    let pending = pending_steps(c, rules, event_start);
    if pending.is_empty() {
        return Decision::Done {
            reason: match paused_for(c, rules) {
                Some(paused) => format!("no step left for {}: {paused} is paused", c.state),
                None => format!("no step left for {}", c.state),
            },
        };
    }
    // Whatever is pending, nothing can go out once these pass.
    let horizon = stop_at.map_or(give_up_at, |stop| stop.min(give_up_at));
    let decision = match due_steps(c, rules, now, &pending, horizon) {
        Ok(due) => choose(c, rules, now, due, horizon),
        Err(wait) => wait,
    };
    match decision {
        // The control group keeps the emailed group's timing (its held-out steps count toward
        // `min_gap`, it waits for the window), but no step of it is "due" and no email "went
        // out": say what it is.
        Decision::Defer { until, .. } if c.held_out => Decision::Defer {
            until,
            reason: crate::experiment::held_out_reason(),
        },
        other => other,
    }
}

/// The paused steps that would otherwise apply to this buyer-event and are not decided, named.
fn paused_for(c: &Candidate, rules: &Rules) -> Option<String> {
    let paused: Vec<&str> = rules
        .steps
        .iter()
        .filter(|s| s.paused && s.when.contains(&c.state))
        .filter(|s| !c.history.iter().any(|r| r.step == s.name))
        .map(|s| s.name.as_str())
        .collect();
    (!paused.is_empty()).then(|| paused.join(", "))
}

/// Why nothing is sent to this buyer-event now whatever its steps: paid, reminders off for the
/// event, an address that cannot receive mail, unsubscribed, too close to the event, too old.
fn never_now(
    c: &Candidate,
    rules: &Rules,
    now: DateTime<Utc>,
    event_start: Option<DateTime<Utc>>,
    stop_at: Option<DateTime<Utc>>,
    give_up_at: DateTime<Utc>,
) -> Option<Decision> {
    let skip = |reason: String| Some(Decision::Skip { reason });
    if c.state == OrderState::Completed {
        return Some(Decision::Done {
            reason: BUYER_PAID.into(),
        });
    }
    if rules.events.get(&c.event_id).is_some_and(|e| !e.reminders) {
        return skip(format!("reminders are off for event {}", c.event_id));
    }
    if let Err(why) = check_deliverable(&c.email) {
        return skip(why.to_string());
    }
    if c.suppressed {
        return skip(ADDRESS_SUPPRESSED.into());
    }
    if let (Some(start), Some(stop)) = (event_start, stop_at)
        && now >= stop
    {
        return skip(if now >= start {
            "the event has started".into()
        } else {
            "too close to the event".into()
        });
    }
    if now >= give_up_at {
        return skip(format!(
            "gave up: the last change was more than {} ago",
            humantime::format_duration(rules.give_up_after)
        ));
    }
    None
}

/// The arm of a timing experiment's `step` the buyer-event was given, if it has one (of the
/// step's current list of delays).
pub fn arm_of(c: &Candidate, step: &ReminderStep) -> Option<usize> {
    if step.arms.is_empty() {
        return None;
    }
    let key = step.arms_key();
    c.arms
        .iter()
        .find(|a| a.step == step.name && a.arms == key)
        .map(|a| a.arm)
}

/// When `step` falls due for this buyer-event: at its arm's delay in a timing experiment, or, until
/// it has an arm, at the earliest arm's (the moment it is given one).
fn timing_for(c: &Candidate, step: &ReminderStep) -> StepTiming {
    if step.arms.is_empty() {
        return step.timing();
    }
    match arm_of(c, step) {
        Some(arm) => step.timing_of_arm(arm),
        None => step.earliest_timing(),
    }
}

/// The words for a step and, in a timing experiment, its arm ("abandoned-1, 1d arm").
pub fn step_words(c: &Candidate, step: &ReminderStep) -> String {
    match (arm_of(c, step), step.arms.is_empty()) {
        (Some(arm), false) => format!(
            "{}, {} arm",
            step.name,
            crate::domain::duration_as_written(step.arms[arm])
        ),
        _ => step.name.clone(),
    }
}

/// The steps that apply to this state and were never decided, with when each falls due.
pub(super) fn pending_steps<'r>(
    c: &Candidate,
    rules: &'r Rules,
    event_start: Option<DateTime<Utc>>,
) -> Vec<(&'r ReminderStep, DateTime<Utc>)> {
    let decided = |name: &str| c.history.iter().any(|r| r.step == name);
    let mut pending = Vec::new();
    for step in rules.steps.iter() {
        // A paused step, or one only for checkouts from a later moment, is not this one's.
        if !step.when.contains(&c.state) || decided(&step.name) || !step.applies_to(c.changed_at) {
            continue;
        }
        let due = match timing_for(c, step) {
            StepTiming::After(after) => plus(c.changed_at, after),
            StepTiming::BeforeEvent(before) => match event_start {
                Some(start) => minus(start, before),
                None => continue, // cannot be timed without the event's date
            },
        };
        pending.push((step, due));
    }
    pending
}

/// The pending steps due now, or why the buyer-event waits: the checkout is still active, no step
/// is due yet, or an email went out within `min_gap`.
fn due_steps<'r>(
    c: &Candidate,
    rules: &Rules,
    now: DateTime<Utc>,
    pending: &[(&'r ReminderStep, DateTime<Utc>)],
    horizon: DateTime<Utc>,
) -> Result<Vec<(&'r ReminderStep, DateTime<Utc>)>, Decision> {
    let still_until = plus(c.changed_at, rules.dormant_after);
    if now < still_until {
        return Err(Decision::Defer {
            until: still_until.min(horizon),
            reason: "the checkout is still active".into(),
        });
    }
    let due: Vec<(&ReminderStep, DateTime<Utc>)> = pending
        .iter()
        .filter(|(_, at)| *at <= now)
        .copied()
        .collect();
    if due.is_empty() {
        let (step, at) = pending
            .iter()
            .min_by_key(|(_, at)| *at)
            .copied()
            .unwrap_or((pending[0].0, horizon));
        return Err(Decision::Defer {
            until: at.min(horizon),
            reason: format!(
                "{} is due at {}",
                step_words(c, step),
                when_text(at, rules.timezone)
            ),
        });
    }
    let last_email = c
        .history
        .iter()
        .filter_map(|r| match r.status {
            StepStatus::Sent => Some(r.sent_at.unwrap_or(r.decided_at)),
            StepStatus::Claimed | StepStatus::HeldOut | StepStatus::Interrupted => {
                Some(r.decided_at)
            }
            StepStatus::Skipped | StepStatus::Failed => None,
        })
        .max();
    if let Some(last) = last_email {
        let gap_ends = plus(last, rules.min_gap);
        if now < gap_ends {
            return Err(Decision::Defer {
                until: gap_ends.min(horizon),
                reason: format!(
                    "an email went out at {}; at most one per {}",
                    when_text(last, rules.timezone),
                    humantime::format_duration(rules.min_gap)
                ),
            });
        }
    }
    Ok(due)
}

/// Of the steps due, the one to send (the latest due; the others are skipped with it), unless the
/// tickets are sold out, the send window is closed or the buyer-event is in the control group.
fn choose(
    c: &Candidate,
    rules: &Rules,
    now: DateTime<Utc>,
    mut due: Vec<(&ReminderStep, DateTime<Utc>)>,
    horizon: DateTime<Utc>,
) -> Decision {
    // Sold out: a step would invite the buyer back to tickets they cannot buy, unless it says
    // it is meant for that.
    due.sort_by_key(|(_, at)| *at);
    let (mut due, sold_out): (Vec<_>, Vec<_>) = due
        .into_iter()
        .partition(|(step, _)| !c.sold_out || step.even_if_sold_out);
    let sold_out = sold_out
        .into_iter()
        .map(|(step, _)| (step.name.clone(), SOLD_OUT.to_string()));
    // Several overdue at once (downtime, first start): only the latest falls due is sent; the
    // stable sort keeps the later step in the configuration last among equals.
    let Some((chosen, _)) = due.pop() else {
        return Decision::SkipSteps {
            skip: sold_out.collect(),
        };
    };
    if let Some(wait) = wait_for_window(rules, &chosen.name, now, horizon) {
        return wait;
    }
    let skip = due
        .into_iter()
        .map(|(step, _)| {
            (
                step.name.clone(),
                format!(
                    "overdue together with {}; only the latest is sent",
                    chosen.name
                ),
            )
        })
        .chain(sold_out)
        .collect();
    // The control group goes through every rule above exactly like the emailed group; only here,
    // where the email would leave, do they part.
    if c.held_out {
        return Decision::HoldOut {
            step: chosen.name.clone(),
            skip,
        };
    }
    Decision::Send {
        step: chosen.name.clone(),
        skip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use OrderState::*;

    fn at(text: &str) -> DateTime<Utc> {
        // Test times are Johannesburg wall clock (UTC+2), as an organiser reads them.
        local_to_utc(
            chrono_tz::Africa::Johannesburg,
            NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap(),
        )
    }

    fn rules() -> Rules {
        Rules::from_config(&Config::default())
    }

    /// The rules with the window set to 08:00-20:00 every day (Sundays too).
    fn every_day_rules() -> Rules {
        let mut config = Config::default();
        config.schedule.send_window = crate::config::SendWindow::parse("08:00-20:00").unwrap();
        Rules::from_config(&config)
    }

    fn candidate(state: OrderState, changed: &str) -> Candidate {
        Candidate {
            email_key: "lerato@mail.co.za".into(),
            event_id: "456".into(),
            email: "Lerato@mail.co.za".into(),
            state,
            changed_at: at(changed),
            event_date: Some(
                NaiveDateTime::parse_from_str("2026-12-20 18:30", "%Y-%m-%d %H:%M").unwrap(),
            ),
            history: Vec::new(),
            suppressed: false,
            sold_out: false,
            held_out: false,
            arms: Vec::new(),
        }
    }

    fn sent(step: &str, when: &str) -> StepRecord {
        StepRecord {
            step: step.into(),
            status: StepStatus::Sent,
            decided_at: at(when),
            sent_at: Some(at(when)),
        }
    }

    fn send(step: &str) -> Decision {
        Decision::Send {
            step: step.into(),
            skip: vec![],
        }
    }

    #[test]
    fn an_abandoned_checkout_gets_its_step_after_the_delay() {
        let c = candidate(Started, "2026-12-01 10:00");
        assert!(
            matches!(plan(&c, &rules(), at("2026-12-01 10:59")), Decision::Defer { until, .. } if until == at("2026-12-01 11:00"))
        );
        assert_eq!(
            plan(&c, &rules(), at("2026-12-01 11:00")),
            send("abandoned-1")
        );
    }

    #[test]
    fn a_paused_step_is_sent_to_nobody_until_resumed() {
        let c = candidate(Started, "2026-12-01 10:00");
        let mut r = rules();
        r.steps.truncate(1);
        r.steps[0].paused = true;
        match plan(&c, &r, at("2026-12-01 11:00")) {
            Decision::Done { reason } => {
                assert!(reason.contains("abandoned-1 is paused"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        r.steps[0].paused = false;
        assert_eq!(plan(&c, &r, at("2026-12-01 11:30")), send("abandoned-1"));
    }

    #[test]
    fn a_step_from_a_moment_on_leaves_the_checkouts_already_waiting_alone() {
        let mut r = rules();
        r.steps.truncate(1);
        r.steps[0].from = Some(at("2026-12-01 10:30"));
        let waiting = candidate(Started, "2026-12-01 10:00");
        assert!(matches!(
            plan(&waiting, &r, at("2026-12-01 11:00")),
            Decision::Done { .. }
        ));
        // A checkout changed at or after the moment gets it.
        let new = candidate(Started, "2026-12-01 10:30");
        assert_eq!(plan(&new, &r, at("2026-12-01 11:30")), send("abandoned-1"));
    }

    /// Durations past the calendar (which the configuration refuses, but a rule built otherwise
    /// may hold) mean "never", not a panic: the pass over every other buyer-event goes on.
    #[test]
    fn durations_past_the_calendar_mean_never_not_a_panic() {
        let huge = Duration::from_secs(1_000_000_000_000 * 86_400);
        let mut r = rules();
        r.give_up_after = huge;
        let c = candidate(Started, "2026-12-01 10:00");
        assert_eq!(plan(&c, &r, at("2026-12-01 11:00")), send("abandoned-1"));
        r.stop_before_event = huge;
        assert!(matches!(
            plan(&c, &r, at("2026-12-01 11:00")),
            Decision::Skip { .. }
        ));
        let mut r = rules();
        r.dormant_after = huge;
        r.min_gap = huge;
        r.steps[0].after = Some(huge);
        for d in [
            plan(&c, &r, at("2026-12-01 11:00")),
            plan(&c, &r, at("2026-12-19 11:00")),
        ] {
            if let Decision::Defer { until, .. } = d {
                // The zone's wall clock of "never" can still be written.
                let _ = until.with_timezone(&r.timezone).to_string();
            }
        }
        let mut c = candidate(Started, "2026-12-01 10:00");
        c.history.push(sent("abandoned-1", "2026-12-01 11:00"));
        let _ = plan(&c, &r, at("2026-12-02 11:00"));
    }

    #[test]
    fn a_paid_buyer_event_is_done() {
        let c = candidate(Completed, "2026-12-01 10:00");
        assert!(matches!(
            plan(&c, &rules(), at("2026-12-02 11:00")),
            Decision::Done { .. }
        ));
    }

    #[test]
    fn eft_pending_is_its_own_track() {
        let c = candidate(EftPending, "2026-12-01 10:00");
        assert!(matches!(
            plan(&c, &rules(), at("2026-12-01 12:00")),
            Decision::Defer { .. }
        ));
        assert_eq!(plan(&c, &rules(), at("2026-12-02 10:00")), send("eft-1"));
    }

    #[test]
    fn nothing_while_the_checkout_is_still_active() {
        let mut r = rules();
        r.steps[0].after = Some(Duration::from_secs(60));
        let c = candidate(Started, "2026-12-01 10:00");
        let d = plan(&c, &r, at("2026-12-01 10:10"));
        assert_eq!(
            d,
            Decision::Defer {
                until: at("2026-12-01 10:30"),
                reason: "the checkout is still active".into()
            }
        );
    }

    #[test]
    fn never_to_undeliverable_or_suppressed_addresses() {
        let mut c = candidate(Started, "2026-12-01 10:00");
        for email in ["", "demo@example.com", "nope", "x@shop.test"] {
            c.email = email.into();
            assert!(
                matches!(
                    plan(&c, &rules(), at("2026-12-01 12:00")),
                    Decision::Skip { .. }
                ),
                "{email}"
            );
        }
        let mut c = candidate(Started, "2026-12-01 10:00");
        c.suppressed = true;
        assert!(
            matches!(plan(&c, &rules(), at("2026-12-01 12:00")), Decision::Skip { reason } if reason.contains("unsubscribed"))
        );
    }

    #[test]
    fn never_close_to_or_after_the_event() {
        // 2026-12-20 is a Sunday: with the window open every day.
        let c = candidate(Started, "2026-12-20 10:00");
        // Event at 18:30 local; stop_before_event 2h: from 16:30 nothing. Both steps are overdue
        // by 16:29; the one that fell due last (abandoned-1, at 11:00) goes.
        let d = plan(&c, &every_day_rules(), at("2026-12-20 16:29"));
        assert!(
            matches!(&d, Decision::Send { step, skip } if step == "abandoned-1" && skip.len() == 1),
            "{d:?}"
        );
        assert!(
            matches!(plan(&c, &every_day_rules(), at("2026-12-20 16:30")), Decision::Skip { reason } if reason.contains("too close"))
        );
        assert!(
            matches!(plan(&c, &every_day_rules(), at("2026-12-20 19:00")), Decision::Skip { reason } if reason.contains("started"))
        );
    }

    #[test]
    fn gives_up_on_old_checkouts() {
        // 2026-11-15 is a Sunday: with the window open every day.
        let mut c = candidate(Started, "2026-11-01 10:00");
        c.event_date = None;
        assert!(
            matches!(plan(&c, &every_day_rules(), at("2026-11-15 10:00")), Decision::Skip { reason } if reason.contains("gave up"))
        );
        assert_eq!(
            plan(&c, &every_day_rules(), at("2026-11-15 09:59")),
            send("abandoned-1")
        );
    }

    #[test]
    fn reminders_off_for_an_event() {
        let mut r = rules();
        r.events.insert(
            "456".into(),
            EventConfig {
                url: None,
                reminders: false,
            },
        );
        let c = candidate(Started, "2026-12-01 10:00");
        assert!(matches!(
            plan(&c, &r, at("2026-12-01 12:00")),
            Decision::Skip { .. }
        ));
    }

    #[test]
    fn outside_the_window_a_due_reminder_waits_for_it_to_open() {
        let c = candidate(Started, "2026-12-01 19:30");
        let d = plan(&c, &rules(), at("2026-12-01 20:30"));
        assert!(
            matches!(d, Decision::Defer { until, .. } if until == at("2026-12-02 08:00")),
            "{d:?}"
        );
        assert_eq!(
            plan(&c, &rules(), at("2026-12-02 08:00")),
            send("abandoned-1")
        );
        let early = plan(&c, &rules(), at("2026-12-02 07:59"));
        assert!(matches!(early, Decision::Defer { until, .. } if until == at("2026-12-02 08:00")));
    }

    #[test]
    fn by_default_the_consumer_protection_acts_hours_apply() {
        // Due on Saturday 12 December at 14:00: waits until Monday 08:00, saying why.
        let c = candidate(Started, "2026-12-12 13:00");
        assert_eq!(
            plan(&c, &rules(), at("2026-12-12 14:00")),
            Decision::Defer {
                until: at("2026-12-14 08:00"),
                reason: "Saturday 14:00: direct marketing on Saturdays only 09:00-13:00; \
                         abandoned-1 waits until Monday 2026-12-14 08:00 SAST"
                    .into()
            }
        );
        let d = plan(&c, &rules(), at("2026-12-13 09:00"));
        assert!(
            matches!(&d, Decision::Defer { until, reason } if *until == at("2026-12-14 08:00")
                && reason.starts_with("Sunday: no direct marketing on Sundays;")),
            "{d:?}"
        );
        assert_eq!(
            plan(&c, &rules(), at("2026-12-14 08:00")),
            send("abandoned-1")
        );
        // Due on the Day of Reconciliation: the 17th.
        let c = candidate(Started, "2026-12-15 22:00");
        let d = plan(&c, &rules(), at("2026-12-16 09:00"));
        assert!(
            matches!(&d, Decision::Defer { until, reason } if *until == at("2026-12-17 08:00")
                && reason.starts_with("Day of Reconciliation (public holiday): no direct marketing on public holidays")),
            "{d:?}"
        );
    }

    #[test]
    fn a_step_with_its_own_window_goes_out_when_it_allows() {
        let mut config = Config::default();
        config.reminders[0].send_window = crate::config::SendWindow::parse("07:00-21:00").unwrap();
        let rules = Rules::from_config(&config);
        let c = candidate(Started, "2026-12-12 20:00");
        // Sunday 07:00: the step's own window, not the Act's default, decides.
        assert_eq!(
            plan(&c, &rules, at("2026-12-13 07:00")),
            send("abandoned-1")
        );
        let d = plan(&c, &rules, at("2026-12-13 06:30"));
        assert!(
            matches!(&d, Decision::Defer { until, .. } if *until == at("2026-12-13 07:00")),
            "{d:?}"
        );
        // The other steps keep the schedule's window.
        let eft = candidate(EftPending, "2026-12-12 06:00");
        let d = plan(&eft, &rules, at("2026-12-13 07:00"));
        assert!(
            matches!(d, Decision::Defer { until, .. } if until == at("2026-12-14 08:00")),
            "{d:?}"
        );
    }

    #[test]
    fn a_window_that_opens_after_the_last_moment_waits_only_until_then() {
        // Due Saturday 19 December 14:00; the event is Sunday 18:30, so stop_before_event (2h)
        // comes before Monday 08:00: wait until then, when the step is skipped.
        let c = candidate(Started, "2026-12-19 13:00");
        let d = plan(&c, &rules(), at("2026-12-19 14:00"));
        assert!(
            matches!(&d, Decision::Defer { until, reason } if *until == at("2026-12-20 16:30")
                && reason.contains("too late for abandoned-1")),
            "{d:?}"
        );
        assert!(matches!(
            plan(&c, &rules(), at("2026-12-20 16:30")),
            Decision::Skip { .. }
        ));
    }

    #[test]
    fn at_most_one_email_per_min_gap() {
        let mut c = candidate(Started, "2026-12-01 10:00");
        c.history.push(sent("abandoned-1", "2026-12-16 09:00"));
        // last-chance is due from 2026-12-17 18:30 (3 days before), but the gap is 12h anyway.
        c.changed_at = at("2026-12-16 08:00");
        let d = plan(&c, &rules(), at("2026-12-17 18:30"));
        assert_eq!(d, send("last-chance"));
        let mut c2 = c.clone();
        c2.history[0] = sent("abandoned-1", "2026-12-17 12:00");
        let d = plan(&c2, &rules(), at("2026-12-17 18:30"));
        assert!(
            matches!(d, Decision::Defer { until, .. } if until == at("2026-12-18 00:00")),
            "{d:?}"
        );
    }

    #[test]
    fn sold_out_tickets_skip_the_step_with_its_reason() {
        let mut c = candidate(Started, "2026-12-01 10:00");
        c.sold_out = true;
        let d = plan(&c, &rules(), at("2026-12-01 12:00"));
        assert_eq!(
            d,
            Decision::SkipSteps {
                skip: vec![("abandoned-1".into(), SOLD_OUT.into())]
            }
        );
        assert_eq!(d.label(), "skipped");
        // The skip is recorded and the remaining steps planned on the next pass.
        assert_eq!(
            d.next_check(at("2026-12-01 12:00")),
            Some(at("2026-12-01 12:00"))
        );
    }

    #[test]
    fn a_step_may_be_sent_even_if_sold_out() {
        let mut rules = rules();
        rules.steps[2].even_if_sold_out = true; // last-chance
        let mut c = candidate(Started, "2026-12-15 10:00");
        c.sold_out = true;
        let d = plan(&c, &rules, at("2026-12-18 10:00"));
        assert_eq!(
            d,
            Decision::Send {
                step: "last-chance".into(),
                skip: vec![("abandoned-1".into(), SOLD_OUT.into())],
            }
        );
        // Not sold out: the step goes as always.
        c.sold_out = false;
        assert!(matches!(
            plan(&c, &rules, at("2026-12-18 10:00")),
            Decision::Send { .. }
        ));
    }

    #[test]
    fn overdue_steps_together_send_only_the_latest() {
        let c = candidate(Started, "2026-12-15 10:00");
        let d = plan(&c, &rules(), at("2026-12-18 10:00"));
        assert_eq!(
            d,
            Decision::Send {
                step: "last-chance".into(),
                skip: vec![(
                    "abandoned-1".into(),
                    "overdue together with last-chance; only the latest is sent".into()
                )],
            }
        );
    }

    #[test]
    fn a_held_out_buyer_event_is_held_out_where_it_would_be_sent() {
        let mut c = candidate(Started, "2026-12-01 10:00");
        c.held_out = true;
        // Before the step is due, waits exactly like an emailed one, but never reads as "due".
        let emailed = candidate(Started, "2026-12-01 10:00");
        let early = at("2026-12-01 10:59");
        assert_eq!(
            plan(&c, &rules(), early),
            Decision::Defer {
                until: at("2026-12-01 11:00"),
                reason: "held out: in the control group: never emailed, on purpose".into()
            }
        );
        assert!(
            matches!(plan(&emailed, &rules(), early), Decision::Defer { until, reason } if until == at("2026-12-01 11:00") && reason.contains("is due at"))
        );
        let d = plan(&c, &rules(), at("2026-12-01 11:00"));
        assert_eq!(
            d,
            Decision::HoldOut {
                step: "abandoned-1".into(),
                skip: vec![]
            }
        );
        assert_eq!(d.label(), "skipped");
        // A held-out step counts as an email for min_gap: the next step waits as it would.
        c.changed_at = at("2026-12-16 08:00");
        c.history.push(StepRecord {
            step: "abandoned-1".into(),
            status: StepStatus::HeldOut,
            decided_at: at("2026-12-17 12:00"),
            sent_at: None,
        });
        let d = plan(&c, &rules(), at("2026-12-17 18:30"));
        assert!(
            matches!(&d, Decision::Defer { until, reason } if *until == at("2026-12-18 00:00")
                && !reason.contains("went out") && reason.contains("control group")),
            "{d:?}"
        );
        assert!(matches!(
            plan(&c, &rules(), at("2026-12-18 08:00")),
            Decision::HoldOut { step, .. } if step == "last-chance"
        ));
    }

    proptest::proptest! {
        /// Whatever the history, the state and the time, a held-out buyer-event is never sent
        /// anything, and an emailed one decides exactly as if there were no control group.
        #[test]
        fn a_held_out_buyer_event_is_never_sent(
            state in 0..4usize,
            changed in 0..(30 * 24 * 60i64),
            event_in in proptest::option::of(0..(40 * 24 * 60i64)),
            history in proptest::collection::vec((0..3usize, 0..5usize, 0..(30 * 24 * 60i64)), 0..4),
            now in 0..(45 * 24 * 60i64),
            sold_out in proptest::bool::ANY,
        ) {
            let base = at("2026-12-01 00:00");
            let minutes = chrono::TimeDelta::minutes;
            let states = [Started, Cancelled, EftPending, Completed];
            let statuses = [StepStatus::Claimed, StepStatus::Sent, StepStatus::Skipped, StepStatus::Failed, StepStatus::HeldOut];
            let names = ["abandoned-1", "eft-1", "last-chance"];
            let mut c = candidate(states[state], "2026-12-01 00:00");
            c.changed_at = base + minutes(changed);
            c.event_date = event_in.map(|m| (base + minutes(m)).with_timezone(&chrono_tz::Africa::Johannesburg).naive_local());
            c.sold_out = sold_out;
            c.history = history.iter().map(|(n, st, m)| StepRecord {
                step: names[*n].into(),
                status: statuses[*st],
                decided_at: base + minutes(*m),
                sent_at: None,
            }).collect();
            let now = base + minutes(now);
            let emailed = plan(&c, &rules(), now);
            c.held_out = true;
            let held = plan(&c, &rules(), now);
            proptest::prop_assert!(!matches!(held, Decision::Send { .. }), "{:?}", held);
            match emailed {
                Decision::Send { step, skip } => proptest::prop_assert_eq!(held, Decision::HoldOut { step, skip }),
                // The same wait, in the control group's words.
                Decision::Defer { until, .. } => proptest::prop_assert_eq!(held, Decision::Defer { until, reason: crate::experiment::held_out_reason() }),
                other => proptest::prop_assert_eq!(held, other),
            }
        }
    }

    #[test]
    fn each_step_only_once() {
        let mut c = candidate(Started, "2026-12-01 10:00");
        c.history.push(sent("abandoned-1", "2026-12-01 11:00"));
        let d = plan(&c, &rules(), at("2026-12-02 11:00"));
        assert!(matches!(d, Decision::Defer { reason, .. } if reason.contains("last-chance")),);
        c.history.push(StepRecord {
            step: "last-chance".into(),
            status: StepStatus::Skipped,
            decided_at: at("2026-12-01 11:00"),
            sent_at: None,
        });
        assert!(matches!(
            plan(&c, &rules(), at("2026-12-02 11:00")),
            Decision::Done { .. }
        ));
    }

    #[test]
    fn event_dates_are_read_in_the_configured_zone() {
        let mut r = rules();
        r.timezone = chrono_tz::Africa::Kampala; // UTC+3
        let c = candidate(Started, "2026-12-20 10:00");
        // 18:30 in Kampala is 15:30 UTC; stop 2h before: 13:30 UTC = 15:30 in Johannesburg.
        assert!(matches!(
            plan(&c, &r, at("2026-12-20 15:30")),
            Decision::Skip { .. }
        ));
        assert!(!matches!(
            plan(&c, &r, at("2026-12-20 15:29")),
            Decision::Skip { .. }
        ));
    }
}
