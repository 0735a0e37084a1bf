//! Reading the editor's posted form into a draft, and checking each value on its own.

use super::*;

impl Draft {
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
