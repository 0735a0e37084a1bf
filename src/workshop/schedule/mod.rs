//! The schedule as the editor holds it: a draft read from the configuration in force, changed by
//! the form (rows of steps, the `[schedule]` values, per-event settings), and written into the
//! schedule file's text with `toml_edit`, so that what a person wrote by hand (comments, layout,
//! the way a duration is spelt, keys the form does not show) stays as it was.

use std::collections::BTreeSet;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use toml_edit::{Array, DocumentMut, InlineTable, Item, Table, TableLike, Value};

use crate::config::{Config, EventConfig, ReminderStep, SendWindow, StepTiming};
use crate::domain::OrderState;

/// The `[schedule]` values the editor shows, in the order shown: (key, what it is in words).
pub const SCHEDULE_FIELDS: &[(&str, &str)] = &[
    ("timezone", "Time zone"),
    ("send_window", "Send window"),
    ("dormant_after", "A checkout counts as left alone after"),
    ("min_gap", "At most one email per buyer and event within"),
    ("give_up_after", "Give up on a checkout unchanged for"),
    ("stop_before_event", "No email this close to the event"),
];

/// The states a step may be for (paid buyers are never reminded).
pub const STEP_STATES: [OrderState; 3] = [
    OrderState::Started,
    OrderState::Cancelled,
    OrderState::EftPending,
];

/// Steps, events and the longest text a form may hold: far more than any schedule has.
const MAX_ROWS: usize = 200;
const MAX_TEXT: usize = 2000;

/// When a step falls due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// This long after the buyer's latest checkout change.
    After,
    /// Once the event is this close.
    BeforeEvent,
}

/// One step row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepDraft {
    /// The step's name in the file when the editor loaded it (`None`: a new row); matches the row
    /// to its `[[reminders]]` table, whatever the order.
    pub orig: Option<String>,
    /// The name.
    pub name: String,
    /// After the checkout, or before the event.
    pub timing: Timing,
    /// How long, as typed (`1h`, `3d`).
    pub wait: String,
    /// The states it is for.
    pub states: Vec<OrderState>,
    /// The template, or the variants separated by commas.
    pub template: String,
    /// Its own send window as typed; empty: the schedule's.
    pub window: String,
    /// Paused: kept, sent to nobody.
    pub paused: bool,
    /// Only for checkouts changed at or after this moment (`None`: also those already waiting).
    pub from: Option<DateTime<Utc>>,
    /// The form chose "only checkouts from now on" (and `from` is the moment it was posted).
    pub from_now: bool,
}

/// One event row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDraft {
    /// Quicket's event id.
    pub id: String,
    /// Reminders on.
    pub reminders: bool,
    /// Its page; empty: Quicket's API or `email.event_url`.
    pub url: String,
}

/// The whole form.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Draft {
    /// `[schedule]` values as typed, keyed as in [`SCHEDULE_FIELDS`].
    pub schedule: Vec<(String, String)>,
    /// The steps, in order.
    pub steps: Vec<StepDraft>,
    /// Per-event settings.
    pub events: Vec<EventDraft>,
}

/// A value the form cannot take, with the form field that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The form field (`min_gap`, `s2.wait`, `e0.url`), or empty for the schedule as a whole.
    pub field: String,
    /// What is wrong, naming the field in words.
    pub message: String,
}

impl FieldError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A button of the form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Show the plan and the dry run for the form as it is.
    Preview,
    /// Save it.
    Save,
    /// A new step at the end.
    AddStep,
    /// Remove step i.
    Remove(usize),
    /// Move step i up.
    Up(usize),
    /// Move step i down.
    Down(usize),
    /// A new event row.
    AddEvent,
}

impl Op {
    fn parse(text: &str) -> Option<Op> {
        let (name, i) = match text.split_once(':') {
            Some((name, i)) => (name, Some(i.parse::<usize>().ok()?)),
            None => (text, None),
        };
        Some(match (name, i) {
            ("preview", None) => Op::Preview,
            ("save", None) => Op::Save,
            ("add_step", None) => Op::AddStep,
            ("add_event", None) => Op::AddEvent,
            ("remove", Some(i)) => Op::Remove(i),
            ("up", Some(i)) => Op::Up(i),
            ("down", Some(i)) => Op::Down(i),
            _ => return None,
        })
    }
}

/// The form as posted: the draft, the version of the file the editor loaded, and the button.
#[derive(Debug, Clone)]
pub struct Posted {
    /// The draft.
    pub draft: Draft,
    /// The schedule file's version when the editor loaded it.
    pub version: String,
    /// The button pressed.
    pub op: Op,
}

/// A window as the form writes it: `""` the schedule's (a step) or the default (`[schedule]`),
/// `any hour`, `za-cpa`, `08:00-20:00`, or by day: `mon-fri 08:00-20:00, sat 09:00-13:00, sun never`.
pub fn window_for_form(window: &SendWindow) -> String {
    match window {
        SendWindow::Unset => String::new(),
        SendWindow::AnyHour => "any hour".into(),
        SendWindow::ByDay(entries, _) => entries
            .iter()
            .map(|(days, hours)| {
                let hours = if hours.trim().is_empty() {
                    "never"
                } else {
                    hours.as_str()
                };
                format!("{days} {hours}")
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// The form's window text as the window it means (`Unset`: empty), checked as the loader checks it.
pub fn window_of(text: &str) -> Result<SendWindow, String> {
    match window_value(text)? {
        None => Ok(SendWindow::Unset),
        Some(Value::InlineTable(table)) => SendWindow::by_day(
            table
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_str().unwrap_or_default().to_string()))
                .collect(),
        ),
        Some(v) => SendWindow::parse(v.as_str().unwrap_or_default()),
    }
}

/// The form's window text as a TOML value (`None`: unset), checked as the loader will check it.
fn window_value(text: &str) -> Result<Option<Value>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.eq_ignore_ascii_case("any hour") || text.eq_ignore_ascii_case("any") {
        return Ok(Some(Value::from("")));
    }
    let by_day = text.contains(',')
        || (text.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && !text.eq_ignore_ascii_case("za-cpa"));
    if !by_day {
        SendWindow::parse(text)?;
        return Ok(Some(Value::from(text)));
    }
    let mut entries = std::collections::BTreeMap::new();
    let mut table = InlineTable::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (days, hours) = part.split_once(char::is_whitespace).unwrap_or((part, ""));
        let hours = hours.trim();
        let hours = if hours.eq_ignore_ascii_case("never") {
            ""
        } else {
            hours
        };
        entries.insert(days.to_string(), hours.to_string());
        table.insert(days, Value::from(hours));
    }
    SendWindow::by_day(entries)?;
    Ok(Some(Value::InlineTable(table)))
}

/// What a step is, for telling whether the rows differ from the steps in force: name, timing,
/// wait, states, templates, window.
type StepKey = (
    String,
    Timing,
    Option<std::time::Duration>,
    Vec<OrderState>,
    Vec<String>,
    String,
    (bool, Option<DateTime<Utc>>),
);

/// The templates a step row names: one, or variants separated by commas.
fn templates_of(text: &str) -> Vec<String> {
    text.split(',')
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

/// A duration as a person writes it: `14d`, `12h`, `30m`, else humantime's long form.
fn short(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0 => "0s".into(),
        s if d.subsec_nanos() == 0 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if d.subsec_nanos() == 0 && s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if d.subsec_nanos() == 0 && s % 60 == 0 => format!("{}m", s / 60),
        _ => humantime::format_duration(d).to_string(),
    }
}

fn schedule_value(config: &Config, key: &str) -> String {
    let s = &config.schedule;
    let d = short;
    match key {
        "timezone" => s.timezone.to_string(),
        "send_window" => window_for_form(&s.send_window),
        "dormant_after" => d(s.dormant_after),
        "min_gap" => d(s.min_gap),
        "give_up_after" => d(s.give_up_after),
        "stop_before_event" => d(s.stop_before_event),
        _ => String::new(),
    }
}

/// The text a duration was written as in the schedule file, when it is there (so that a value
/// left alone is shown, and kept, as the person wrote it).
fn written(doc: Option<&DocumentMut>, path: &[&str]) -> Option<String> {
    let mut item = doc?.as_item();
    for key in path {
        item = item.get(key)?;
    }
    item.as_str().map(str::to_string)
}

impl Draft {
    /// The draft of the configuration in force; `file` (the schedule file's text, when there is
    /// one) gives durations as they are written there.
    pub fn of(config: &Config, file: Option<&str>) -> Draft {
        let doc = file.and_then(|t| t.parse::<DocumentMut>().ok());
        let doc = doc.as_ref();
        let schedule = SCHEDULE_FIELDS
            .iter()
            .map(|(key, _)| {
                let value = match *key {
                    "timezone" | "send_window" => schedule_value(config, key),
                    _ => written(doc, &["schedule", key])
                        .unwrap_or_else(|| schedule_value(config, key)),
                };
                (key.to_string(), value)
            })
            .collect();
        let steps = config
            .reminders
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let (timing, d) = match step.timing() {
                    StepTiming::After(d) => (Timing::After, d),
                    StepTiming::BeforeEvent(d) => (Timing::BeforeEvent, d),
                };
                let key = if timing == Timing::After {
                    "after"
                } else {
                    "before_event"
                };
                let wait = doc
                    .and_then(|doc| {
                        doc.get("reminders")?
                            .as_array_of_tables()?
                            .get(i)?
                            .get(key)?
                            .as_str()
                            .map(str::to_string)
                    })
                    .unwrap_or_else(|| short(d));
                StepDraft {
                    orig: Some(step.name.clone()),
                    name: step.name.clone(),
                    timing,
                    wait,
                    states: step.when.clone(),
                    template: step.templates().join(", "),
                    window: window_for_form(&step.send_window),
                    paused: step.paused,
                    from: step.from,
                    from_now: false,
                }
            })
            .collect();
        let events = config
            .events
            .iter()
            .map(|(id, e)| EventDraft {
                id: id.clone(),
                reminders: e.reminders,
                url: e.url.clone().unwrap_or_default(),
            })
            .collect();
        Draft {
            schedule,
            steps,
            events,
        }
    }

    /// Adds a row for each of `ids` (events known from hooks) that has none, reminders on.
    pub fn with_events(mut self, ids: impl IntoIterator<Item = String>) -> Draft {
        for id in ids {
            if !self.events.iter().any(|e| e.id == id) {
                self.events.push(EventDraft {
                    id,
                    reminders: true,
                    url: String::new(),
                });
            }
        }
        self
    }

    /// A `[schedule]` value as typed.
    pub fn value(&self, key: &str) -> &str {
        self.schedule
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    }

    /// Applies a row button; returns whether the draft changed.
    pub fn apply_op(&mut self, op: Op) -> bool {
        match op {
            Op::AddStep => {
                let n = self.steps.len() + 1;
                let mut name = format!("step-{n}");
                let mut k = n;
                while self.steps.iter().any(|s| s.name == name) {
                    k += 1;
                    name = format!("step-{k}");
                }
                self.steps.push(StepDraft {
                    orig: None,
                    name,
                    timing: Timing::After,
                    wait: "2d".into(),
                    states: vec![OrderState::Started, OrderState::Cancelled],
                    template: "abandoned".into(),
                    window: String::new(),
                    paused: false,
                    from: None,
                    from_now: false,
                });
            }
            Op::AddEvent => self.events.push(EventDraft {
                id: String::new(),
                reminders: true,
                url: String::new(),
            }),
            Op::Remove(i) if i < self.steps.len() => {
                self.steps.remove(i);
            }
            Op::Up(i) if i > 0 && i < self.steps.len() => self.steps.swap(i - 1, i),
            Op::Down(i) if i + 1 < self.steps.len() => self.steps.swap(i, i + 1),
            _ => return false,
        }
        true
    }
}

mod form;
mod write;

pub use form::{duration_problem, number_and_unit};

pub use write::summary;

#[cfg(test)]
mod tests;
