//! The schedule as the editor holds it: a draft read from the configuration in force, changed by
//! the form (rows of steps, the `[schedule]` values, per-event settings), and written into the
//! schedule file's text with `toml_edit`, so that what a person wrote by hand (comments, layout,
//! the way a duration is spelt, keys the form does not show) stays as it was.

use std::collections::BTreeSet;
use std::str::FromStr;

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

fn duration_ok(text: &str) -> Result<(), String> {
    humantime::parse_duration(text.trim())
        .map(|_| ())
        .map_err(|e| {
            format!(
                "{:?} is not a duration ({e}): write e.g. 30m, 12h, \"1h 30m\" or 3d",
                text.trim()
            )
        })
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

    /// Reads the posted form (`application/x-www-form-urlencoded` pairs). Fields are
    /// `timezone` ... `stop_before_event`, `s{i}.orig|name|timing|wait|template|window` and one
    /// `s{i}.state` per checked state, `e{i}.id|url` and `e{i}.reminders` when checked; `version`
    /// and `op`. Anything else is refused, naming it.
    pub fn from_form(pairs: &[(String, String)]) -> Result<Posted, FieldError> {
        let mut draft = Draft {
            schedule: SCHEDULE_FIELDS
                .iter()
                .map(|(k, _)| (k.to_string(), String::new()))
                .collect(),
            ..Draft::default()
        };
        let mut version = String::new();
        let mut op = Op::Preview;
        let mut steps: std::collections::BTreeMap<usize, StepDraft> = Default::default();
        let mut events: std::collections::BTreeMap<usize, EventDraft> = Default::default();
        for (name, value) in pairs {
            if value.len() > MAX_TEXT {
                return Err(FieldError::new(
                    name,
                    format!("{name} is longer than {MAX_TEXT} characters"),
                ));
            }
            let row = |prefix: char| -> Option<(usize, &str)> {
                let rest = name.strip_prefix(prefix)?;
                let (i, field) = rest.split_once('.')?;
                let i = i.parse::<usize>().ok().filter(|i| *i < MAX_ROWS)?;
                Some((i, field))
            };
            if name == "version" {
                version = value.clone();
            } else if name == "op" {
                op = Op::parse(value)
                    .ok_or_else(|| FieldError::new("op", format!("unknown button {value:?}")))?;
            } else if let Some(slot) = draft.schedule.iter_mut().find(|(k, _)| k == name) {
                slot.1 = value.clone();
            } else if let Some((i, field)) = row('s') {
                let step = steps.entry(i).or_insert_with(|| StepDraft {
                    orig: None,
                    name: String::new(),
                    timing: Timing::After,
                    wait: String::new(),
                    states: Vec::new(),
                    template: String::new(),
                    window: String::new(),
                });
                match field {
                    "orig" => step.orig = Some(value.clone()).filter(|v| !v.is_empty()),
                    "name" => step.name = value.trim().to_string(),
                    "timing" => {
                        step.timing = match value.as_str() {
                            "after" => Timing::After,
                            "before_event" => Timing::BeforeEvent,
                            other => {
                                return Err(FieldError::new(
                                    name,
                                    format!(
                                        "step {}: {other:?} is neither after nor before_event",
                                        i + 1
                                    ),
                                ));
                            }
                        }
                    }
                    "wait" => step.wait = value.clone(),
                    "state" => match OrderState::from_action(value) {
                        Some(state) if STEP_STATES.contains(&state) => {
                            if !step.states.contains(&state) {
                                step.states.push(state);
                            }
                        }
                        _ => {
                            return Err(FieldError::new(
                                name,
                                format!(
                                    "step {}: {value:?} is not a state a step can be for (checkout_started, checkout_cancelled, eft_pending)",
                                    i + 1
                                ),
                            ));
                        }
                    },
                    "template" => step.template = value.clone(),
                    "window" => step.window = value.clone(),
                    _ => return Err(FieldError::new(name, format!("unknown field {name}"))),
                }
            } else if let Some((i, field)) = row('e') {
                let event = events.entry(i).or_insert_with(|| EventDraft {
                    id: String::new(),
                    reminders: false,
                    url: String::new(),
                });
                match field {
                    "id" => event.id = value.trim().to_string(),
                    "reminders" => event.reminders = true,
                    "url" => event.url = value.trim().to_string(),
                    _ => return Err(FieldError::new(name, format!("unknown field {name}"))),
                }
            } else {
                return Err(FieldError::new(name, format!("unknown field {name}")));
            }
        }
        draft.steps = steps.into_values().collect();
        // Keep the states in their usual order, whatever order the browser sent them in.
        for step in &mut draft.steps {
            step.states.sort();
        }
        draft.events = events
            .into_values()
            .filter(|e| !e.id.is_empty() || !e.url.is_empty())
            .collect();
        Ok(Posted { draft, version, op })
    }

    /// Checks each value on its own, naming its field.
    pub fn check(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for (key, label) in SCHEDULE_FIELDS {
            let value = self.value(key).trim();
            let result = match *key {
                "timezone" => chrono_tz::Tz::from_str(value).map(|_| ()).map_err(|_| {
                    format!("{value:?} is not a time zone: write e.g. Africa/Johannesburg")
                }),
                "send_window" => window_value(value).map(|_| ()),
                _ => duration_ok(value),
            };
            if let Err(e) = result {
                errors.push(FieldError::new(*key, format!("{label}: {e}")));
            }
        }
        let mut names = BTreeSet::new();
        for (i, step) in self.steps.iter().enumerate() {
            let n = i + 1;
            let field = |f: &str| format!("s{i}.{f}");
            if step.name.is_empty() {
                errors.push(FieldError::new(
                    field("name"),
                    format!("step {n}: give it a name"),
                ));
            } else if !names.insert(step.name.as_str()) {
                errors.push(FieldError::new(
                    field("name"),
                    format!(
                        "step {n}: the name {:?} is used twice; names must be unique",
                        step.name
                    ),
                ));
            }
            if let Err(e) = duration_ok(&step.wait) {
                errors.push(FieldError::new(
                    field("wait"),
                    format!("step {n} ({}), wait: {e}", step.name),
                ));
            }
            if step.states.is_empty() {
                errors.push(FieldError::new(
                    field("state"),
                    format!("step {n} ({}): tick at least one state", step.name),
                ));
            }
            let templates = templates_of(&step.template);
            if templates.is_empty() {
                errors.push(FieldError::new(
                    field("template"),
                    format!("step {n} ({}): name its email template", step.name),
                ));
            }
            for t in &templates {
                if !super::template_name_ok(t) {
                    errors.push(FieldError::new(
                        field("template"),
                        format!(
                            "step {n} ({}): {t:?} is not a template name (a-z, 0-9, - and _)",
                            step.name
                        ),
                    ));
                }
            }
            if let Err(e) = window_value(&step.window) {
                errors.push(FieldError::new(
                    field("window"),
                    format!("step {n} ({}), send window: {e}", step.name),
                ));
            }
        }
        let mut ids = BTreeSet::new();
        for (i, event) in self.events.iter().enumerate() {
            if event.id.is_empty()
                || !event
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                errors.push(FieldError::new(
                    format!("e{i}.id"),
                    format!("event {}: {:?} is not a Quicket event id", i + 1, event.id),
                ));
            } else if !ids.insert(event.id.as_str()) {
                errors.push(FieldError::new(
                    format!("e{i}.id"),
                    format!("event {} is listed twice", event.id),
                ));
            }
            let web = event.url.starts_with("http://") || event.url.starts_with("https://");
            if !event.url.is_empty() && !web {
                errors.push(FieldError::new(
                    format!("e{i}.url"),
                    format!("event {}: the page must start with https://", event.id),
                ));
            }
        }
        errors
    }

    /// Writes the draft into the schedule file's `text`, changing only what differs from
    /// `current` (the configuration in force); `main` is the main file's text, whose
    /// `[schedule]` keys are left where they are (never written into the schedule file).
    pub fn write_into(
        &self,
        text: &str,
        main: &str,
        current: &Config,
    ) -> Result<String, FieldError> {
        let mut doc = text.parse::<DocumentMut>().map_err(|e| {
            FieldError::new(
                "",
                format!("the schedule file is not valid TOML, fix it by hand first: {e}"),
            )
        })?;
        let main = main.parse::<DocumentMut>().unwrap_or_default();
        let in_main = |key: &str| main.get("schedule").and_then(|s| s.get(key)).is_some();

        // [schedule]: a value is written when it differs from the one in force.
        for (key, _) in SCHEDULE_FIELDS {
            let typed = self.value(key).trim();
            if in_main(key) {
                if typed != schedule_value(current, key) && !same_duration(key, typed, current) {
                    return Err(FieldError::new(
                        *key,
                        format!(
                            "{key} is set in the main configuration file, which the service may not write: change it there"
                        ),
                    ));
                }
                continue;
            }
            if typed == schedule_value(current, key) || same_duration(key, typed, current) {
                continue;
            }
            let value = match *key {
                "send_window" => window_value(typed).map_err(|e| FieldError::new(*key, e))?,
                _ => Some(Value::from(typed)),
            };
            let schedule = table(&mut doc, "schedule")?;
            match value {
                Some(value) => set(schedule, key, value),
                None => {
                    schedule.remove(key);
                }
            }
        }

        // [[reminders]]: the rows, each built on its own table when it had one.
        let steps_in_force = steps_of(current);
        let drafted = self.steps_for_compare();
        if drafted != steps_in_force {
            if main.contains_key("reminders") {
                return Err(FieldError::new(
                    "",
                    "the steps are set in the main configuration file, which the service may not write: move its [[reminders]] into the schedule file",
                ));
            }
            let old: Vec<Table> = doc
                .get("reminders")
                .and_then(Item::as_array_of_tables)
                .map(|a| a.iter().cloned().collect())
                .unwrap_or_default();
            // Tables print in the order of their positions: give every step the first one, so
            // that they print in the rows' order (equal positions keep the array's order).
            let first = old.iter().filter_map(Table::position).min();
            let mut array = toml_edit::ArrayOfTables::new();
            for step in &self.steps {
                let before = step.orig.as_ref().and_then(|orig| {
                    let i = current.reminders.iter().position(|s| &s.name == orig)?;
                    Some((i, &current.reminders[i]))
                });
                let mut table = before
                    .and_then(|(i, s)| {
                        old.get(i)
                            .filter(|t| t.get("name").and_then(Item::as_str) == Some(&s.name))
                            .cloned()
                    })
                    .unwrap_or_default();
                step.write(&mut table, before.map(|(_, s)| s))?;
                table.set_position(first);
                array.push(table);
            }
            doc.insert("reminders", Item::ArrayOfTables(array));
        }

        // [events."ID"]
        for event in &self.events {
            let current_event = current.events.get(&event.id).cloned().unwrap_or_default();
            let url = Some(event.url.clone()).filter(|u| !u.is_empty());
            if current_event.reminders == event.reminders && current_event.url == url {
                continue;
            }
            if main.get("events").and_then(|e| e.get(&event.id)).is_some() {
                return Err(FieldError::new(
                    "",
                    format!(
                        "event {} is set in the main configuration file, which the service may not write: change it there",
                        event.id
                    ),
                ));
            }
            let events = table(&mut doc, "events")?;
            events.set_implicit(true);
            let entry = events.entry(&event.id).or_insert(toml_edit::table());
            let Some(entry) = entry.as_table_like_mut() else {
                return Err(FieldError::new(
                    "",
                    format!("events.{} in the schedule file is not a table", event.id),
                ));
            };
            if current_event.reminders != event.reminders || entry.get("reminders").is_some() {
                set(entry, "reminders", Value::from(event.reminders));
            }
            match url {
                Some(url) => set(entry, "url", Value::from(url)),
                None => {
                    entry.remove("url");
                }
            }
        }
        Ok(doc.to_string())
    }

    fn steps_for_compare(&self) -> Vec<StepKey> {
        self.steps
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    s.timing,
                    humantime::parse_duration(s.wait.trim()).ok(),
                    s.states.clone(),
                    templates_of(&s.template),
                    window_value(&s.window)
                        .ok()
                        .flatten()
                        .map(|v| v.to_string().trim().to_string())
                        .unwrap_or_default(),
                )
            })
            .collect()
    }
}

fn steps_of(config: &Config) -> Vec<StepKey> {
    Draft::of(config, None).steps_for_compare()
}

fn same_duration(key: &str, typed: &str, current: &Config) -> bool {
    let s = &current.schedule;
    let now = match key {
        "dormant_after" => s.dormant_after,
        "min_gap" => s.min_gap,
        "give_up_after" => s.give_up_after,
        "stop_before_event" => s.stop_before_event,
        "timezone" => return chrono_tz::Tz::from_str(typed.trim()).ok() == Some(s.timezone),
        _ => return false,
    };
    humantime::parse_duration(typed).ok() == Some(now)
}

/// The table `key` of the document, made when missing.
fn table<'a>(doc: &'a mut DocumentMut, key: &str) -> Result<&'a mut Table, FieldError> {
    doc.entry(key)
        .or_insert(toml_edit::table())
        .as_table_mut()
        .ok_or_else(|| {
            FieldError::new(
                "",
                format!("{key} in the schedule file is not a [{key}] table; fix it by hand first"),
            )
        })
}

/// Sets `key` to `value`, keeping the old value's comment and spacing when there was one.
fn set(table: &mut dyn TableLike, key: &str, mut value: Value) {
    if let Some(old) = table.get(key).and_then(Item::as_value) {
        if old.to_string().trim() == value.to_string().trim() {
            return;
        }
        *value.decor_mut() = old.decor().clone();
    }
    table.insert(key, Item::Value(value));
}

impl StepDraft {
    /// Writes the row into its table, changing only what differs from `before` (the step in
    /// force that the row started from).
    fn write(&self, table: &mut Table, before: Option<&ReminderStep>) -> Result<(), FieldError> {
        set(table, "name", Value::from(self.name.as_str()));
        let (key, other) = match self.timing {
            Timing::After => ("after", "before_event"),
            Timing::BeforeEvent => ("before_event", "after"),
        };
        let wait = humantime::parse_duration(self.wait.trim()).ok();
        let same_wait = before.is_some_and(|b| match (b.timing(), self.timing) {
            (StepTiming::After(d), Timing::After)
            | (StepTiming::BeforeEvent(d), Timing::BeforeEvent) => Some(d) == wait,
            _ => false,
        });
        if !(same_wait && table.contains_key(key)) {
            set(table, key, Value::from(self.wait.trim()));
        }
        table.remove(other);
        if before.map(|b| &b.when) != Some(&self.states) || !table.contains_key("when") {
            let mut states = Array::new();
            for s in &self.states {
                states.push(s.as_str());
            }
            set(table, "when", Value::Array(states));
        }
        let templates = templates_of(&self.template);
        let same_templates = before.is_some_and(|b| {
            b.templates() == templates.iter().map(String::as_str).collect::<Vec<_>>()
        });
        if !same_templates || !(table.contains_key("template") || table.contains_key("variants")) {
            if templates.len() == 1 {
                set(table, "template", Value::from(templates[0].as_str()));
                table.remove("variants");
            } else {
                let mut variants = Array::new();
                for t in &templates {
                    variants.push(t.as_str());
                }
                set(table, "variants", Value::Array(variants));
                table.remove("template");
            }
        }
        let window = window_value(&self.window).map_err(|e| FieldError::new("", e))?;
        let same_window =
            before.is_some_and(|b| window_for_form(&b.send_window) == self.window.trim());
        if !same_window {
            match window {
                Some(w) => set(table, "send_window", w),
                None => {
                    table.remove("send_window");
                }
            }
        }
        Ok(())
    }
}

/// One line for the history: what the draft changes against the configuration in force.
pub fn summary(current: &Config, next: &Config) -> String {
    let mut parts = Vec::new();
    let names = |c: &Config| {
        c.reminders
            .iter()
            .map(|s| s.name.clone())
            .collect::<Vec<_>>()
    };
    let (was, now) = (names(current), names(next));
    for name in now.iter().filter(|n| !was.contains(n)) {
        parts.push(format!("step {name} added"));
    }
    for name in was.iter().filter(|n| !now.contains(n)) {
        parts.push(format!("step {name} removed"));
    }
    for step in &next.reminders {
        if let Some(old) = current.reminders.iter().find(|s| s.name == step.name)
            && serde_json::to_value(old).ok() != serde_json::to_value(step).ok()
        {
            parts.push(format!("step {} changed", step.name));
        }
    }
    let kept: Vec<&String> = now.iter().filter(|n| was.contains(n)).collect();
    let kept_before: Vec<&String> = was.iter().filter(|n| now.contains(n)).collect();
    if kept != kept_before {
        parts.push("steps reordered".into());
    }
    let (a, b) = (
        serde_json::to_value(&current.schedule).unwrap_or_default(),
        serde_json::to_value(&next.schedule).unwrap_or_default(),
    );
    if let (Some(a), Some(b)) = (a.as_object(), b.as_object()) {
        for (key, value) in b {
            if key != "file" && a.get(key) != Some(value) {
                let show = |v: Option<&serde_json::Value>| {
                    v.map(|v| v.to_string().trim_matches('"').to_string())
                        .unwrap_or_else(|| "unset".into())
                };
                parts.push(format!(
                    "{key} {} -> {}",
                    show(a.get(key)),
                    show(Some(value))
                ));
            }
        }
    }
    let events: BTreeSet<&String> = current.events.keys().chain(next.events.keys()).collect();
    for id in events {
        let get = |c: &Config| {
            serde_json::to_value(
                c.events
                    .get(id)
                    .cloned()
                    .unwrap_or_else(EventConfig::default),
            )
            .ok()
        };
        if get(current) != get(next) {
            parts.push(format!("event {id} changed"));
        }
    }
    if parts.is_empty() {
        "schedule: saved unchanged".into()
    } else {
        format!("schedule: {}", parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIN: &str = "[schedule]\nfile = \"schedule.toml\"\n";
    const FILE: &str = "# Our schedule, by hand.\n[schedule]\nmin_gap = \"12h\"   # one a day is plenty\n\
        dormant_after = \"1h 30m\"\n\n# The first nudge.\n[[reminders]]\nname = \"first\"\nafter = \"1h\"  # soon\n\
        when = [\"checkout_started\", \"checkout_cancelled\"]\ntemplate = \"abandoned\"\neven_if_sold_out = true\n\n\
        [[reminders]]\nname = \"eft\"\nafter = \"1d\"\nwhen = [\"eft_pending\"]\ntemplate = \"eft_pending\"\n";

    fn load(schedule: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("main.toml");
        Config::from_sources(Some(MAIN), Some(&main), Some(schedule)).unwrap()
    }

    fn pairs(draft: &Draft) -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = draft.schedule.clone();
        for (i, s) in draft.steps.iter().enumerate() {
            let mut f = |k: &str, v: &str| p.push((format!("s{i}.{k}"), v.to_string()));
            f("orig", s.orig.as_deref().unwrap_or(""));
            f("name", &s.name);
            f(
                "timing",
                if s.timing == Timing::After {
                    "after"
                } else {
                    "before_event"
                },
            );
            f("wait", &s.wait);
            for st in &s.states {
                f("state", st.as_str());
            }
            f("template", &s.template);
            f("window", &s.window);
        }
        p.push(("version".into(), "v".into()));
        p.push(("op".into(), "save".into()));
        p
    }

    #[test]
    fn an_unchanged_form_writes_the_file_back_byte_for_byte() {
        let config = load(FILE);
        let draft = Draft::of(&config, Some(FILE));
        let posted = Draft::from_form(&pairs(&draft)).unwrap();
        assert_eq!(posted.draft, draft);
        assert_eq!(posted.draft.write_into(FILE, MAIN, &config).unwrap(), FILE);
    }

    #[test]
    fn an_added_step_and_a_changed_value_keep_the_comments_and_what_the_form_does_not_show() {
        let config = load(FILE);
        let mut draft = Draft::of(&config, Some(FILE));
        assert!(draft.apply_op(Op::AddStep));
        let new = draft.steps.last_mut().unwrap();
        new.name = "second".into();
        new.wait = "2d".into();
        new.window = "mon-fri 08:00-17:00, sat never".into();
        draft
            .schedule
            .iter_mut()
            .find(|(k, _)| k == "min_gap")
            .unwrap()
            .1 = "6h".into();
        assert!(draft.check().is_empty(), "{:?}", draft.check());
        let text = draft.write_into(FILE, MAIN, &config).unwrap();
        for kept in [
            "# Our schedule, by hand.",
            "# one a day is plenty",
            "# The first nudge.",
            "# soon",
            "even_if_sold_out = true",
            "\"1h 30m\"",
        ] {
            assert!(text.contains(kept), "{kept} lost:\n{text}");
        }
        assert!(
            text.contains("min_gap = \"6h\"   # one a day is plenty"),
            "{text}"
        );
        let saved = load(&text);
        assert_eq!(saved.step_names(), ["first", "eft", "second"]);
        assert_eq!(
            saved.schedule.min_gap,
            std::time::Duration::from_secs(6 * 3600)
        );
        assert!(saved.reminders[0].even_if_sold_out);
        assert!(!saved.reminders[2].send_window.is_unset());
        assert_eq!(
            window_for_form(&saved.reminders[2].send_window),
            "mon-fri 08:00-17:00, sat never"
        );
        assert_eq!(
            summary(&config, &saved),
            "schedule: step second added; min_gap 12h -> 6h"
        );
    }

    #[test]
    fn reordered_and_removed_steps_are_written_in_the_rows_order() {
        let config = load(FILE);
        let mut draft = Draft::of(&config, Some(FILE));
        draft.apply_op(Op::AddStep);
        draft.apply_op(Op::Up(2));
        draft.apply_op(Op::Up(1));
        let text = draft.write_into(FILE, MAIN, &config).unwrap();
        assert_eq!(load(&text).step_names(), ["step-3", "first", "eft"]);
        assert!(text.contains("# soon"), "{text}");
        draft.apply_op(Op::Remove(1));
        let text = draft.write_into(FILE, MAIN, &config).unwrap();
        assert_eq!(load(&text).step_names(), ["step-3", "eft"]);
        // A file without steps (the built-in ones in force) gets them all, once changed.
        let config = load("");
        let mut draft = Draft::of(&config, Some(""));
        draft.steps[0].wait = "2h".into();
        let text = draft.write_into("", MAIN, &config).unwrap();
        assert_eq!(load(&text).step_names(), Config::default().step_names());
        assert_eq!(
            load(&text).reminders[0].after,
            Some(std::time::Duration::from_secs(7200))
        );
    }

    #[test]
    fn bad_values_are_refused_naming_their_field() {
        let config = load(FILE);
        let mut draft = Draft::of(&config, Some(FILE));
        draft.steps[1].wait = "soon".into();
        draft.steps[0].states.clear();
        draft
            .schedule
            .iter_mut()
            .find(|(k, _)| k == "timezone")
            .unwrap()
            .1 = "Mars/Olympus".into();
        draft.steps[0].window = "mon-fri 25:00-26:00".into();
        let errors = draft.check();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["timezone", "s0.state", "s0.window", "s1.wait"],
            "{errors:?}"
        );
        assert!(
            errors[3].message.contains("step 2 (eft), wait")
                && errors[3].message.contains("\"soon\""),
            "{errors:?}"
        );
        // A state no step can be for, an unknown field, a bad button: refused at the form.
        let mut p = pairs(&Draft::of(&config, Some(FILE)));
        p.push(("s0.state".into(), "checkout_completed".into()));
        let e = Draft::from_form(&p).unwrap_err();
        assert_eq!(e.field, "s0.state");
        let mut p = pairs(&Draft::of(&config, Some(FILE)));
        p.push(("s0.colour".into(), "red".into()));
        assert_eq!(Draft::from_form(&p).unwrap_err().field, "s0.colour");
        let mut p = pairs(&Draft::of(&config, Some(FILE)));
        p.push(("server.listen".into(), "0.0.0.0:1".into()));
        assert!(
            Draft::from_form(&p)
                .unwrap_err()
                .message
                .contains("unknown field server.listen")
        );
    }

    #[test]
    fn a_value_set_in_the_main_file_is_not_written_into_the_schedule_file() {
        let main = "[schedule]\nfile = \"schedule.toml\"\nmin_gap = \"8h\"\n";
        let dir = tempfile::tempdir().unwrap();
        let config =
            Config::from_sources(Some(main), Some(&dir.path().join("m.toml")), Some("")).unwrap();
        let mut draft = Draft::of(&config, Some(""));
        assert_eq!(draft.write_into("", main, &config).unwrap(), "");
        draft
            .schedule
            .iter_mut()
            .find(|(k, _)| k == "min_gap")
            .unwrap()
            .1 = "2h".into();
        let e = draft.write_into("", main, &config).unwrap_err();
        assert!(
            e.field == "min_gap" && e.message.contains("main configuration"),
            "{e:?}"
        );
    }

    #[test]
    fn event_settings_are_written_per_event() {
        let config = load(FILE);
        let mut draft = Draft::of(&config, Some(FILE)).with_events(["77".to_string()]);
        draft.events[0].reminders = false;
        draft.events[0].url = "https://www.quicket.co.za/events/77-jazz/".into();
        let text = draft.write_into(FILE, MAIN, &config).unwrap();
        assert!(
            text.contains("[events.77]") || text.contains("[events.\"77\"]"),
            "{text}"
        );
        let saved = load(&text);
        assert!(!saved.events["77"].reminders);
        assert_eq!(
            saved.events["77"].url.as_deref(),
            Some("https://www.quicket.co.za/events/77-jazz/")
        );
    }
}
