//! Reading the editor's posted form into a draft, and checking each value on its own.

use super::*;

impl Draft {
    /// Reads the posted form (`application/x-www-form-urlencoded` pairs). Fields are
    /// `timezone` ... `stop_before_event`, `s{i}.orig|name|timing|wait|template|window` and one
    /// `s{i}.state` per checked state, `e{i}.id|url` and `e{i}.reminders` when checked; `version`
    /// and `op`. Anything else is refused, naming it.
    ///
    /// A duration may also come as a number and a unit (`min_gap.n` and `min_gap.unit`,
    /// `s{i}.wait.n` and `s{i}.wait.unit`: minutes, hours or days); a window as a choice and
    /// hours of one's own (`send_window` and `send_window.other`, `s{i}.window` and
    /// `s{i}.window.other`: the latter wins when given). `s{i}.paused` when ticked;
    /// `s{i}.applies`: `all` (also buyers already waiting), `now` (only checkouts from `now` on)
    /// or `since` (keeps `s{i}.from`, the moment it was set). `e{i}.reminders`: `on` or `off`.
    pub fn from_form(pairs: &[(String, String)], now: DateTime<Utc>) -> Result<Posted, FieldError> {
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
        // Numbers and units, windows' own hours, and the "applies to" choices, put together below.
        let mut parts: std::collections::BTreeMap<String, (String, &'static str)> =
            Default::default();
        let mut others: std::collections::BTreeMap<String, String> = Default::default();
        let mut applies: std::collections::BTreeMap<usize, String> = Default::default();
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
            } else if let Some(key) = name.strip_suffix(".n").filter(|k| is_duration_key(k)) {
                parts
                    .entry(key.to_string())
                    .or_insert((String::new(), "h"))
                    .0 = value.clone();
            } else if let Some(key) = name.strip_suffix(".unit").filter(|k| is_duration_key(k)) {
                parts
                    .entry(key.to_string())
                    .or_insert((String::new(), "h"))
                    .1 = unit(name, value)?;
            } else if name == "send_window.other" {
                others.insert("send_window".into(), value.clone());
            } else if let Some((i, field)) = row('s') {
                let step = steps.entry(i).or_insert_with(|| StepDraft {
                    orig: None,
                    name: String::new(),
                    timing: Timing::After,
                    wait: String::new(),
                    states: Vec::new(),
                    template: String::new(),
                    window: String::new(),
                    paused: false,
                    from: None,
                    from_now: false,
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
                    "wait.n" => {
                        parts
                            .entry(format!("s{i}.wait"))
                            .or_insert((String::new(), "h"))
                            .0 = value.clone();
                    }
                    "wait.unit" => {
                        parts
                            .entry(format!("s{i}.wait"))
                            .or_insert((String::new(), "h"))
                            .1 = unit(name, value)?;
                    }
                    "window.other" => {
                        others.insert(format!("s{i}.window"), value.clone());
                    }
                    "paused" => step.paused = true,
                    "applies" => match value.as_str() {
                        "all" | "now" | "since" => {
                            applies.insert(i, value.clone());
                        }
                        other => {
                            return Err(FieldError::new(
                                name,
                                format!(
                                    "step {}: {other:?} is not a choice of whom it is for",
                                    i + 1
                                ),
                            ));
                        }
                    },
                    "from" => {
                        step.from = if value.trim().is_empty() {
                            None
                        } else {
                            Some(
                                DateTime::parse_from_rfc3339(value.trim())
                                    .map_err(|_| {
                                        FieldError::new(
                                            name,
                                            format!(
                                                "step {}: {value:?} is not a moment (RFC 3339)",
                                                i + 1
                                            ),
                                        )
                                    })?
                                    .with_timezone(&Utc),
                            )
                        };
                    }
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
                    "reminders" => event.reminders = value != "off",
                    "url" => event.url = value.trim().to_string(),
                    _ => return Err(FieldError::new(name, format!("unknown field {name}"))),
                }
            } else {
                return Err(FieldError::new(name, format!("unknown field {name}")));
            }
        }
        // A number and a unit make the duration as the file writes it ("3" days: "3d").
        for (field, (n, suffix)) in parts {
            let text = if n.trim().is_empty() {
                String::new()
            } else {
                format!("{}{suffix}", n.trim())
            };
            if let Some(slot) = draft.schedule.iter_mut().find(|(k, _)| *k == field) {
                slot.1 = text;
            } else if let Some(i) = field
                .strip_prefix('s')
                .and_then(|f| f.strip_suffix(".wait"))
                .and_then(|i| i.parse::<usize>().ok())
                && let Some(step) = steps.get_mut(&i)
            {
                step.wait = text;
            }
        }
        // Hours of one's own win over the choice.
        for (field, text) in others.into_iter().filter(|(_, t)| !t.trim().is_empty()) {
            if let Some(slot) = draft.schedule.iter_mut().find(|(k, _)| *k == field) {
                slot.1 = text;
            } else if let Some(i) = field
                .strip_prefix('s')
                .and_then(|f| f.strip_suffix(".window"))
                .and_then(|i| i.parse::<usize>().ok())
                && let Some(step) = steps.get_mut(&i)
            {
                step.window = text;
            }
        }
        for (i, choice) in applies {
            if let Some(step) = steps.get_mut(&i) {
                match choice.as_str() {
                    "all" => step.from = None,
                    "now" => {
                        step.from = Some(now);
                        step.from_now = true;
                    }
                    _ => {}
                }
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

    /// Checks that every step names emails that exist (`known`), beside its field; a name that
    /// is not even a name is left to [`Draft::check`].
    pub fn check_emails(&self, known: &[&str]) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            for t in templates_of(&step.template) {
                if crate::workshop::template_name_ok(&t) && !known.contains(&t.as_str()) {
                    errors.push(FieldError::new(
                        format!("s{i}.template"),
                        format!(
                            "step {} ({}): there is no email called {t:?}: choose one from the list (or make it under Emails first)",
                            i + 1,
                            step.name
                        ),
                    ));
                }
            }
        }
        errors
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
                _ => duration_problem(value).map_or(Ok(()), Err),
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
            } else if let Some(problem) = crate::domain::step_name_problem(&step.name) {
                errors.push(FieldError::new(
                    field("name"),
                    format!("step {n}: {problem}"),
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
            if let Some(e) = duration_problem(&step.wait) {
                errors.push(FieldError::new(
                    field("wait"),
                    format!("step {n} ({}), delay: {e}", step.name),
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
                if !crate::workshop::template_name_ok(t) {
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
            if crate::domain::EventId::parse(&event.id).is_none() {
                errors.push(FieldError::new(
                    format!("e{i}.id"),
                    format!(
                        "event {}: {:?} is not a Quicket event id (a whole number)",
                        i + 1,
                        event.id
                    ),
                ));
            } else if !ids.insert(event.id.as_str()) {
                errors.push(FieldError::new(
                    format!("e{i}.id"),
                    format!("event {} is listed twice", event.id),
                ));
            }
            if !event.url.is_empty()
                && let Err(e) = crate::domain::web_page_url(&event.url)
            {
                errors.push(FieldError::new(
                    format!("e{i}.url"),
                    format!("event {}: the page: {e}", event.id),
                ));
            }
        }
        errors
    }
}

/// The `[schedule]` keys that are durations.
fn is_duration_key(key: &str) -> bool {
    matches!(
        key,
        "dormant_after" | "min_gap" | "give_up_after" | "stop_before_event"
    ) || key
        .strip_prefix('s')
        .and_then(|k| k.strip_suffix(".wait"))
        .is_some_and(|i| i.parse::<usize>().is_ok())
}

/// A unit of the form, as the duration's suffix.
fn unit(name: &str, value: &str) -> Result<&'static str, FieldError> {
    match value {
        "minutes" | "m" => Ok("m"),
        "hours" | "h" => Ok("h"),
        "days" | "d" => Ok("d"),
        other => Err(FieldError::new(
            name,
            format!("{other:?} is not a unit: minutes, hours or days"),
        )),
    }
}

/// The longest delay or span the form takes (as the configuration's own limit).
const LONGEST: std::time::Duration = std::time::Duration::from_secs(365 * 86_400);

/// What is wrong with a duration as typed, in words (`None`: nothing); at most a year.
pub fn duration_problem(text: &str) -> Option<String> {
    let text = text.trim();
    if text.is_empty() {
        return Some("give a number".into());
    }
    if text.chars().any(char::is_control) {
        return Some("give a whole number, on one line (e.g. 3 days)".into());
    }
    if text.starts_with('-') {
        return Some("cannot be negative: give 0 or more".into());
    }
    match humantime::parse_duration(text) {
        Ok(d) if d > LONGEST => Some("at most 365 days".into()),
        Ok(_) => None,
        Err(_) => {
            let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
            if digits.len() > 6 && text[digits.len()..].chars().all(char::is_alphabetic) {
                Some("at most 365 days".into())
            } else {
                Some("give a whole number of minutes, hours or days (e.g. 3 days)".into())
            }
        }
    }
}

/// A duration as the form shows it: a number and a unit (minutes, hours, days), the largest
/// unit that says it exactly. Text that is not a duration is split as the form put it together.
pub fn number_and_unit(text: &str) -> (String, &'static str) {
    let text = text.trim();
    match humantime::parse_duration(text) {
        Ok(d) => {
            let secs = d.as_secs();
            if secs == 0 {
                ("0".into(), "hours")
            } else if secs % 86_400 == 0 {
                ((secs / 86_400).to_string(), "days")
            } else if secs % 3_600 == 0 {
                ((secs / 3_600).to_string(), "hours")
            } else {
                (secs.div_ceil(60).to_string(), "minutes")
            }
        }
        Err(_) => match text.char_indices().last() {
            Some((i, 'd')) => (text[..i].to_string(), "days"),
            Some((i, 'h')) => (text[..i].to_string(), "hours"),
            Some((i, 'm')) => (text[..i].to_string(), "minutes"),
            _ => (text.to_string(), "hours"),
        },
    }
}
