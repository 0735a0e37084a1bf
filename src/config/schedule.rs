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
#[serde(deny_unknown_fields)]
pub struct ReminderStep {
    /// Unique name; also part of the Message-ID, so renaming a step makes it a new step.
    pub name: String,
    /// Sent this long after the buyer's latest checkout change for the event.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub after: Option<Duration>,
    /// Sent once the event is this close.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub before_event: Option<Duration>,
    /// The checkout states this step applies to.
    pub when: Vec<OrderState>,
    /// Directory name under `[templates].dir` (or give `variants`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub template: String,
    /// Instead of `template`: A/B variants, each buyer-event gets one, evenly, and keeps it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<String>,
    /// Send this step even when Quicket's API says the buyer's tickets are sold out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub even_if_sold_out: bool,
    /// The step's own send window (same forms as `[schedule]`); unset: the schedule's.
    #[serde(default, skip_serializing_if = "SendWindow::is_unset")]
    pub send_window: SendWindow,
    /// Paused: kept, but not sent to anyone until resumed (set back to false or removed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// Only for checkouts whose latest change is at or after this moment (RFC 3339): a step
    /// added or changed "from now on" leaves the buyers already waiting alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<chrono::DateTime<chrono::Utc>>,
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

    /// The step's timing; validation guarantees exactly one of `after` and `before_event`.
    pub fn timing(&self) -> StepTiming {
        match (self.after, self.before_event) {
            (_, Some(before)) => StepTiming::BeforeEvent(before),
            (Some(after), None) => StepTiming::After(after),
            (None, None) => StepTiming::After(Duration::ZERO),
        }
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
            even_if_sold_out: false,
            send_window: SendWindow::Unset,
            paused: false,
            from: None,
        },
        ReminderStep {
            name: "eft-1".into(),
            after: Some(hours(24)),
            before_event: None,
            when: vec![EftPending],
            template: "eft_pending".into(),
            variants: Vec::new(),
            even_if_sold_out: false,
            send_window: SendWindow::Unset,
            paused: false,
            from: None,
        },
        ReminderStep {
            name: "last-chance".into(),
            after: None,
            before_event: Some(days(3)),
            when: vec![Started, Cancelled],
            template: "last_chance".into(),
            variants: Vec::new(),
            even_if_sold_out: false,
            send_window: SendWindow::Unset,
            paused: false,
            from: None,
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
