//! Who can still be reminded now, and why each other dormant checkout cannot: the overview's
//! count, judged by the planner's own rules over the stored buyer-events, so that the figure is
//! what it says (nobody in the control group, unsubscribed, at an address that cannot receive
//! mail, with reminders off, too late, or with no step left is counted as remindable).

use chrono::{DateTime, Utc};

use super::planner::{Rules, minus, pending_steps, plus};
use crate::domain::{Candidate, OrderState, check_deliverable};

/// Why a dormant checkout is not remindable now (the first reason that applies, in the order
/// the planner applies them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NotRemindable {
    /// Reminders are off for the event (`[events."ID"] reminders = false`).
    RemindersOff,
    /// An empty, invalid or reserved address (example.com, .test ...).
    CannotReceiveMail,
    /// Unsubscribed, bounced or complained.
    Suppressed,
    /// The event has started, or is closer than `stop_before_event`.
    TooLate,
    /// Every step for its state was sent or decided.
    NoStepLeft,
    /// In the control group: never emailed, on purpose.
    HeldOut,
}

impl NotRemindable {
    /// Every reason, in the order they are judged.
    pub const ALL: [NotRemindable; 6] = [
        NotRemindable::RemindersOff,
        NotRemindable::CannotReceiveMail,
        NotRemindable::Suppressed,
        NotRemindable::TooLate,
        NotRemindable::NoStepLeft,
        NotRemindable::HeldOut,
    ];

    /// The reason in the organiser's words.
    pub fn for_people(self) -> &'static str {
        match self {
            NotRemindable::RemindersOff => "reminders are off for their event",
            NotRemindable::CannotReceiveMail => {
                "an address that cannot receive mail (empty, invalid, or example.com, .test ...)"
            }
            NotRemindable::Suppressed => "unsubscribed, bounced or complained",
            NotRemindable::TooLate => "their event has started or is too close",
            NotRemindable::NoStepLeft => "every reminder step already sent or decided",
            NotRemindable::HeldOut => "in the control group: never emailed, on purpose",
        }
    }
}

/// The dormant checkouts now: how many can still be reminded, and why the others cannot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Remindable {
    /// Checkouts left unpaid, still for `dormant_after`, changed within `give_up_after`.
    pub dormant: usize,
    /// Of which a step can still be sent (now or later).
    pub remindable: usize,
    /// The others, by reason (only reasons that apply, in [`NotRemindable::ALL`]'s order).
    pub not: Vec<(NotRemindable, usize)>,
    /// Whether there were more open checkouts than were looked at.
    pub truncated: bool,
}

/// Whether a buyer-event is dormant now (unpaid, still long enough, not given up), and if so,
/// whether it can be reminded. Pure: `c.held_out` must already be settled.
pub fn judge(
    c: &Candidate,
    rules: &Rules,
    now: DateTime<Utc>,
) -> Option<Result<(), NotRemindable>> {
    if c.state == OrderState::Completed
        || now < plus(c.changed_at, rules.dormant_after)
        || now >= plus(c.changed_at, rules.give_up_after)
    {
        return None;
    }
    let event_start = c.event_date.map(|d| rules.event_start(d));
    let why = if rules.events.get(&c.event_id).is_some_and(|e| !e.reminders) {
        NotRemindable::RemindersOff
    } else if check_deliverable(&c.email).is_err() {
        NotRemindable::CannotReceiveMail
    } else if c.suppressed {
        NotRemindable::Suppressed
    } else if event_start.is_some_and(|start| now >= minus(start, rules.stop_before_event)) {
        NotRemindable::TooLate
    } else if pending_steps(c, rules, event_start).is_empty() {
        NotRemindable::NoStepLeft
    } else if c.held_out {
        NotRemindable::HeldOut
    } else {
        return Some(Ok(()));
    };
    Some(Err(why))
}

/// The most open checkouts looked at.
const MAX_LOOKED_AT: usize = 50_000;

/// The dormant checkouts at `now`, judged with the rules in force.
pub async fn remindable(
    engine: &super::Engine,
    store: &crate::store::Store,
    now: DateTime<Utc>,
) -> Result<Remindable, crate::store::StoreError> {
    let settings = engine.settings();
    let rules = &settings.rules;
    let since = minus(now, rules.give_up_after);
    let (open, truncated) = store.open_buyer_events(since, MAX_LOOKED_AT).await?;
    let infos = engine.events().all_cached().await;
    let mut out = Remindable {
        truncated,
        ..Remindable::default()
    };
    let mut not = std::collections::BTreeMap::new();
    for due in open {
        let held_out = engine.held_out(&settings, &due);
        let mut c = due.candidate;
        c.held_out = held_out;
        c.event_date = crate::events::event_start(c.event_date, infos.get(&c.event_id));
        match judge(&c, rules, now) {
            None => continue,
            Some(Ok(())) => out.remindable += 1,
            Some(Err(why)) => *not.entry(why).or_insert(0) += 1,
        }
        out.dormant += 1;
    }
    out.not = not.into_iter().collect();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, EventConfig};
    use crate::domain::{StepRecord, StepStatus};

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn candidate(email: &str) -> Candidate {
        Candidate {
            email_key: email.to_lowercase(),
            event_id: "1".into(),
            email: email.into(),
            state: OrderState::Started,
            changed_at: at("2026-12-01T10:00:00Z"),
            event_date: Some(
                chrono::NaiveDateTime::parse_from_str("2026-12-20 18:30", "%Y-%m-%d %H:%M")
                    .unwrap(),
            ),
            history: Vec::new(),
            suppressed: false,
            sold_out: false,
            held_out: false,
            arms: Vec::new(),
        }
    }

    #[test]
    fn each_reason_is_judged_and_the_rest_is_remindable() {
        let mut config = Config::default();
        config.events.insert(
            "2".into(),
            EventConfig {
                url: None,
                reminders: false,
            },
        );
        let rules = Rules::from_config(&config);
        let now = at("2026-12-01T12:00:00Z");
        assert_eq!(judge(&candidate("a@mail.co.za"), &rules, now), Some(Ok(())));
        // Not dormant yet, paid, or given up: not counted at all.
        assert_eq!(
            judge(
                &candidate("a@mail.co.za"),
                &rules,
                at("2026-12-01T10:10:00Z")
            ),
            None
        );
        let mut paid = candidate("a@mail.co.za");
        paid.state = OrderState::Completed;
        assert_eq!(judge(&paid, &rules, now), None);
        assert_eq!(
            judge(
                &candidate("a@mail.co.za"),
                &rules,
                at("2026-12-16T10:00:00Z")
            ),
            None
        );

        let mut off = candidate("a@mail.co.za");
        off.event_id = "2".into();
        let mut suppressed = candidate("a@mail.co.za");
        suppressed.suppressed = true;
        let mut late = candidate("a@mail.co.za");
        late.event_date = Some(
            chrono::NaiveDateTime::parse_from_str("2026-12-01 15:00", "%Y-%m-%d %H:%M").unwrap(),
        );
        let mut done = candidate("a@mail.co.za");
        for step in ["abandoned-1", "last-chance"] {
            done.history.push(StepRecord {
                step: step.into(),
                status: StepStatus::Sent,
                decided_at: at("2026-12-01T11:00:00Z"),
                sent_at: None,
            });
        }
        let mut held = candidate("a@mail.co.za");
        held.held_out = true;
        for (c, why) in [
            (off, NotRemindable::RemindersOff),
            (
                candidate("demo@example.com"),
                NotRemindable::CannotReceiveMail,
            ),
            (suppressed, NotRemindable::Suppressed),
            (late, NotRemindable::TooLate),
            (done, NotRemindable::NoStepLeft),
            (held, NotRemindable::HeldOut),
        ] {
            assert_eq!(judge(&c, &rules, now), Some(Err(why)), "{c:?}");
        }
    }
}
