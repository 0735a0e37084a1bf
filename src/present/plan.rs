//! The reminder plan in words, as `check` prints it and `/admin/schedule` shows it.

use std::fmt::Write as _;

use crate::config::{Config, ReminderStep, ScheduleConfig, StepTiming};
use crate::domain::{OrderState, duration_for_people};

/// Order states in words, joined by "or" ("started or cancelled").
pub fn states_in_words(states: &[OrderState]) -> String {
    let words: Vec<&str> = states
        .iter()
        .map(|s| match s {
            OrderState::Started => "started",
            OrderState::Cancelled => "cancelled",
            OrderState::EftPending => "waiting for an EFT payment",
            OrderState::Completed => "paid",
        })
        .collect();
    words.join(" or ")
}

/// The reminder plan in words: a line per step, then the rules every step keeps.
pub fn plan_in_words(config: &Config) -> Vec<String> {
    let s = &config.schedule;
    let d = duration_for_people;
    let mut lines: Vec<String> = config
        .reminders
        .iter()
        .map(|step| step_in_words(s, step))
        .collect();
    let rule = s.send_rule();
    let zone = if rule.is_any_hour() {
        String::new()
    } else {
        format!(" ({} time)", s.timezone)
    };
    let default = if s.send_window.is_unset() {
        format!(
            ", the default in {} (set schedule.send_window to change it)",
            s.timezone
        )
    } else {
        String::new()
    };
    lines.push(format!(
        "emails go out {}{zone}{default}; passes run on \"{}\"",
        rule.describe(),
        s.scan
    ));
    lines.push(format!(
        "nothing until a checkout has been still for {}; at most one email per buyer and event per {}",
        d(s.dormant_after),
        d(s.min_gap)
    ));
    lines.push(format!(
        "never about a checkout untouched for {}, nor within {} of the event or after it",
        d(s.give_up_after),
        d(s.stop_before_event)
    ));
    let off: Vec<&str> = config
        .events
        .iter()
        .filter(|(_, e)| !e.reminders)
        .map(|(id, _)| id.as_str())
        .collect();
    if !off.is_empty() {
        lines.push(format!("no reminders for events {}", off.join(", ")));
    }
    lines
}

/// One step in words: when it is sent, with which template, in which window.
fn step_in_words(s: &ScheduleConfig, step: &ReminderStep) -> String {
    let d = duration_for_people;
    let when = states_in_words(&step.when);
    let mut line = format!("{}: ", step.name);
    match step.timing() {
        StepTiming::After(after) => {
            let _ = write!(
                line,
                "{} after the buyer's checkout was {when} and left alone",
                d(after)
            );
        }
        StepTiming::BeforeEvent(before) => {
            let _ = write!(
                line,
                "{} before the event, to buyers whose checkout is {when}",
                d(before)
            );
        }
    }
    if step.variants.is_empty() {
        let _ = write!(line, "; template {}", step.template);
    } else {
        let _ = write!(
            line,
            "; A/B variants {}, one each, evenly",
            step.variants.join(", ")
        );
    }
    if !step.send_window.is_unset() {
        let _ = write!(
            line,
            "; its own send window: {}",
            s.step_send_rule(step).describe()
        );
    }
    if let Some(from) = step.from {
        let _ = write!(
            line,
            "; only for checkouts from {} on",
            from.with_timezone(&s.timezone).format("%a %-d %b %Y %H:%M")
        );
    }
    if step.paused {
        line.push_str("; PAUSED: sent to nobody until resumed");
    }
    line
}
