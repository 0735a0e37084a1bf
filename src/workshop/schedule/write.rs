//! Writing a draft into the schedule file's text with `toml_edit`, changing only what differs,
//! and the one-line summary of a change for the history.

use super::*;

impl Draft {
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
                    (s.paused, s.from),
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
        if self.paused {
            set(table, "paused", Value::from(true));
        } else {
            table.remove("paused");
        }
        match self.from {
            Some(from)
                if before.and_then(|b| b.from) != Some(from) || !table.contains_key("from") =>
            {
                set(
                    table,
                    "from",
                    Value::from(from.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
                );
            }
            Some(_) => {}
            None => {
                table.remove("from");
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
            let mut unpaused = step.clone();
            unpaused.paused = old.paused;
            if serde_json::to_value(old).ok() == serde_json::to_value(&unpaused).ok() {
                let what = if step.paused { "paused" } else { "resumed" };
                parts.push(format!("step {} {what}", step.name));
            } else {
                parts.push(format!("step {} changed", step.name));
            }
        }
    }
    // A new list of delays is a new timing experiment: the history says so, and which ended.
    for step in &next.reminders {
        let before = current.reminders.iter().find(|s| s.name == step.name);
        let (old, new) = (
            before.map(|s| s.arms_key()).unwrap_or_default(),
            step.arms_key(),
        );
        if old != new {
            if !new.is_empty() {
                parts.push(format!(
                    "step {}: a new timing experiment ({new})",
                    step.name
                ));
            } else {
                parts.push(format!(
                    "step {}: its timing experiment ({old}) ended",
                    step.name
                ));
            }
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
