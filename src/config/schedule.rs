//! `[schedule]`, `[[reminders]]` and `[events."ID"]`: when reminders go out, and for which events.

use super::*;

/// `[schedule]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    /// The schedule file (only in the main configuration): `[schedule]`, `[[reminders]]` and
    /// `[events]` are read from it too. Relative: to the main file's directory. After loading,
    /// the resolved path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Cron expression with a seconds field: when reminder passes run.
    pub scan: String,
    /// The zone Quicket's offset-less `event_date` and the send window are read in.
    pub timezone: Tz,
    /// When reminders may go out, in local time: `"08:00-20:00"`, hours by day, `"za-cpa"`, or
    /// `""` for any hour. Unset: `"za-cpa"` in Africa/Johannesburg, else `"08:00-20:00"`.
    #[serde(skip_serializing_if = "SendWindow::is_unset")]
    pub send_window: SendWindow,
    /// Public holidays, which take Sunday's hours: `"ZA"` and/or dates (`"za-cpa"` implies "ZA").
    pub holidays: HolidayList,
    /// A checkout is dormant once it has been this long without a change.
    #[serde(with = "humantime_serde")]
    pub dormant_after: Duration,
    /// At most one email per buyer and event within this span.
    #[serde(with = "humantime_serde")]
    pub min_gap: Duration,
    /// Never remind about a checkout whose last change is older than this.
    #[serde(with = "humantime_serde")]
    pub give_up_after: Duration,
    /// No reminder this close to the event's start, nor after it.
    #[serde(with = "humantime_serde")]
    pub stop_before_event: Duration,
    /// A purchase completed this long after a reminder counts as recovered.
    #[serde(with = "humantime_serde")]
    pub attribution_window: Duration,
}

impl ScheduleConfig {
    /// The send window in force for steps without their own.
    pub fn send_rule(&self) -> SendRule {
        SendRule::new(
            &self.send_window,
            self.timezone,
            self.holidays.holidays(),
            "schedule.send_window",
        )
    }

    /// The send window in force for `step`: its own when it has one, else the schedule's.
    pub fn step_send_rule(&self, step: &ReminderStep) -> SendRule {
        if step.send_window.is_unset() {
            return self.send_rule();
        }
        SendRule::new(
            &step.send_window,
            self.timezone,
            self.holidays.holidays(),
            format!("reminders.{}.send_window", step.name),
        )
    }
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            file: None,
            scan: "0 * * * * *".into(),
            timezone: chrono_tz::Africa::Johannesburg,
            send_window: SendWindow::Unset,
            holidays: HolidayList::default(),
            dormant_after: minutes(30),
            min_gap: hours(12),
            give_up_after: days(14),
            stop_before_event: hours(2),
            attribution_window: days(7),
        }
    }
}

/// One `[[reminders]]` step.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "StepText", into = "StepText")]
pub struct ReminderStep {
    /// Unique name; also part of the Message-ID, so renaming a step makes it a new step.
    pub name: String,
    /// The step's name for people ("First reminder"); unset: derived from `name`
    /// (see [`ReminderStep::display_name`]).
    pub label: Option<String>,
    /// Sent this long after the buyer's latest checkout change for the event (with [`Self::arms`],
    /// the first arm's delay).
    pub after: Option<Duration>,
    /// Sent once the event is this close (with [`Self::arms`], the first arm's).
    pub before_event: Option<Duration>,
    /// A timing experiment: the delays (of `after`, or of `before_event`) written as a list of two
    /// or more; each buyer-event gets one arm by keyed hash. Empty for a step with one delay.
    pub arms: Vec<Duration>,
    /// The checkout states this step applies to.
    pub when: Vec<OrderState>,
    /// Directory name under `[templates].dir` (or give `variants`).
    pub template: String,
    /// Instead of `template`: A/B variants, each buyer-event gets one, evenly, and keeps it.
    pub variants: Vec<String>,
    /// Send this step even when Quicket's API says the buyer's tickets are sold out.
    pub even_if_sold_out: bool,
    /// The step's own send window (same forms as `[schedule]`); unset: the schedule's.
    pub send_window: SendWindow,
    /// Paused: kept, but not sent to anyone until resumed (set back to false or removed).
    pub paused: bool,
    /// Only for checkouts whose latest change is at or after this moment (RFC 3339): a step
    /// added or changed "from now on" leaves the buyers already waiting alone.
    pub from: Option<chrono::DateTime<chrono::Utc>>,
}

/// A step as written in TOML, where `after` and `before_event` may each be a list.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepText {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<Delays>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    before_event: Option<Delays>,
    when: Vec<OrderState>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    template: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    variants: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    even_if_sold_out: bool,
    #[serde(default, skip_serializing_if = "SendWindow::is_unset")]
    send_window: SendWindow,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    paused: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<StepText> for ReminderStep {
    fn from(t: StepText) -> ReminderStep {
        let first = |d: &Option<Delays>| d.as_ref().and_then(|d| d.0.first().copied());
        let arms = [&t.before_event, &t.after]
            .into_iter()
            .flatten()
            .map(|d| d.0.clone())
            .find(|list| list.len() > 1)
            .unwrap_or_default();
        ReminderStep {
            after: first(&t.after),
            before_event: first(&t.before_event),
            arms,
            name: t.name,
            label: t.label,
            when: t.when,
            template: t.template,
            variants: t.variants,
            even_if_sold_out: t.even_if_sold_out,
            send_window: t.send_window,
            paused: t.paused,
            from: t.from,
        }
    }
}

impl From<ReminderStep> for StepText {
    fn from(s: ReminderStep) -> StepText {
        let delays = |one: Option<Duration>| {
            one.map(|d| {
                if s.arms.first() == Some(&d) {
                    Delays(s.arms.clone())
                } else {
                    Delays(vec![d])
                }
            })
        };
        StepText {
            after: delays(s.after),
            before_event: delays(s.before_event),
            name: s.name,
            label: s.label,
            when: s.when,
            template: s.template,
            variants: s.variants,
            even_if_sold_out: s.even_if_sold_out,
            send_window: s.send_window,
            paused: s.paused,
            from: s.from,
        }
    }
}

fn not_a_duration(text: &str) -> String {
    format!("{text:?} is not a duration: write it like \"1h\", \"30m\" or \"2d\"")
}

/// One delay (`"1h"`) or a list of them (`["1h", "1d"]`).
struct Delays(Vec<Duration>);

impl<'de> Deserialize<'de> for Delays {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Delays, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Delays;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a duration such as \"1h\", or a list of them such as [\"1h\", \"1d\"]")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Delays, E> {
                humantime::parse_duration(v)
                    .map(|d| Delays(vec![d]))
                    .map_err(|_| E::custom(not_a_duration(v)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Delays, A::Error> {
                let mut list = Vec::new();
                while let Some(text) = seq.next_element::<String>()? {
                    list.push(
                        humantime::parse_duration(&text)
                            .map_err(|_| serde::de::Error::custom(not_a_duration(&text)))?,
                    );
                }
                Ok(Delays(list))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl Serialize for Delays {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = |d: &Duration| crate::domain::duration_as_written(*d);
        match self.0.as_slice() {
            [one] => s.serialize_str(&text(one)),
            list => s.collect_seq(list.iter().map(text)),
        }
    }
}

/// When a step becomes due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepTiming {
    /// This long after the latest checkout change.
    After(Duration),
    /// Once the event is this close.
    BeforeEvent(Duration),
}

impl ReminderStep {
    /// The templates the step may be rendered from: its variants, or its one template.
    pub fn templates(&self) -> Vec<&str> {
        if self.variants.is_empty() {
            vec![self.template.as_str()]
        } else {
            self.variants.iter().map(String::as_str).collect()
        }
    }

    /// Whether the step applies to a checkout last changed at `changed_at`: not paused, and not
    /// "from" a later moment.
    pub fn applies_to(&self, changed_at: chrono::DateTime<chrono::Utc>) -> bool {
        !self.paused && self.from.is_none_or(|from| changed_at >= from)
    }

    /// The step's name for people: its `label`, else one derived from its name: the shipped
    /// steps read "First reminder", "EFT payment reminder" and "Last-chance reminder"; "abandoned-2"
    /// reads "Second reminder"; any other name with its dashes and underscores as spaces.
    pub fn display_name(&self) -> String {
        if let Some(label) = self
            .label
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty())
        {
            return label.to_string();
        }
        step_display_name(&self.name)
    }

    /// The step's timing for timing-experiment arm `arm` (0 for a step without arms).
    pub fn timing_of_arm(&self, arm: usize) -> StepTiming {
        match (self.timing(), self.arms.get(arm)) {
            (StepTiming::After(_), Some(d)) => StepTiming::After(*d),
            (StepTiming::BeforeEvent(_), Some(d)) => StepTiming::BeforeEvent(*d),
            (timing, None) => timing,
        }
    }

    /// The step's arms as one text (`"1h, 1d"`), which names its timing experiment: another list
    /// is another experiment. Empty for a step without arms.
    pub fn arms_key(&self) -> String {
        self.arms
            .iter()
            .map(|d| crate::domain::duration_as_written(*d))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The timing of the arm that falls due first: when a buyer-event is given its arm.
    pub fn earliest_timing(&self) -> StepTiming {
        match self.timing() {
            StepTiming::After(first) => {
                StepTiming::After(self.arms.iter().copied().min().unwrap_or(first))
            }
            StepTiming::BeforeEvent(first) => {
                StepTiming::BeforeEvent(self.arms.iter().copied().max().unwrap_or(first))
            }
        }
    }

    /// The step's timing (of its first arm); validation guarantees exactly one of `after` and
    /// `before_event`.
    pub fn timing(&self) -> StepTiming {
        match (self.after, self.before_event) {
            (_, Some(before)) => StepTiming::BeforeEvent(before),
            (Some(after), None) => StepTiming::After(after),
            (None, None) => StepTiming::After(Duration::ZERO),
        }
    }
}

/// A step's name for people, derived from its configured name (see
/// [`ReminderStep::display_name`]).
pub fn step_display_name(name: &str) -> String {
    const ORDINALS: [&str; 5] = ["First", "Second", "Third", "Fourth", "Fifth"];
    let numbered = |prefix: &str| {
        name.strip_prefix(prefix)
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n >= 1)
    };
    if let Some(n) = numbered("abandoned-") {
        return match ORDINALS.get(n - 1) {
            Some(ordinal) => format!("{ordinal} reminder"),
            None => format!("Reminder {n}"),
        };
    }
    if let Some(n) = numbered("eft-") {
        return if n == 1 {
            "EFT payment reminder".into()
        } else {
            format!("EFT payment reminder {n}")
        };
    }
    if name == "last-chance" {
        return "Last-chance reminder".into();
    }
    let words = name.replace(['-', '_'], " ");
    let mut chars = words.trim().chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => name.to_string(),
    }
}

pub(super) fn default_reminders() -> Vec<ReminderStep> {
    use OrderState::{Cancelled, EftPending, Started};
    vec![
        ReminderStep {
            name: "abandoned-1".into(),
            after: Some(hours(1)),
            before_event: None,
            when: vec![Started, Cancelled],
            template: "abandoned".into(),
            variants: Vec::new(),
            arms: Vec::new(),
            even_if_sold_out: false,
            send_window: SendWindow::Unset,
            paused: false,
            from: None,
            label: None,
        },
        ReminderStep {
            name: "eft-1".into(),
            after: Some(hours(24)),
            before_event: None,
            when: vec![EftPending],
            template: "eft_pending".into(),
            variants: Vec::new(),
            arms: Vec::new(),
            even_if_sold_out: false,
            send_window: SendWindow::Unset,
            paused: false,
            from: None,
            label: None,
        },
        ReminderStep {
            name: "last-chance".into(),
            after: None,
            before_event: Some(days(3)),
            when: vec![Started, Cancelled],
            template: "last_chance".into(),
            variants: Vec::new(),
            arms: Vec::new(),
            even_if_sold_out: false,
            send_window: SendWindow::Unset,
            paused: false,
            from: None,
            label: None,
        },
    ]
}

/// `[events."ID"]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventConfig {
    /// The event's page; overrides `[email].event_url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `false` sends no reminders for this event.
    pub reminders: bool,
}

impl Default for EventConfig {
    fn default() -> Self {
        Self {
            url: None,
            reminders: true,
        }
    }
}
