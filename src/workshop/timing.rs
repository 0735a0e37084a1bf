//! Ending a timing experiment: "keep the winner" writes the winning delay into the schedule file
//! through the save core (validated, versioned, restorable), with the experiment's final figures
//! in the history's line.

use toml_edit::{DocumentMut, Item, Value};

use super::{Change, FileId, Save, SaveError, Saved, Workshop};

impl Workshop {
    /// Makes `delay` (one of the step's arms, as written) the step's only delay: the experiment
    /// ends, and its figures stay in the history as `figures`.
    pub async fn keep_arm(
        &self,
        step: &str,
        delay: &str,
        figures: &str,
        client: String,
    ) -> Result<Saved, SaveError> {
        let config = self.engine().settings().config.clone();
        if config.schedule.file.is_none() {
            return Err(SaveError::NotEditable(
                "no schedule file is configured, and the main configuration is never written from here: \
                 change the step's delay to the one you keep by hand (see \"Changing the schedule\" in the README)"
                    .into(),
            ));
        }
        let Some(running) = config.reminders.iter().find(|s| s.name == step) else {
            return Err(SaveError::Invalid(format!(
                "there is no step {step:?} any more: the schedule changed since the page was opened"
            )));
        };
        let keep = humantime::parse_duration(delay).ok();
        if running.arms.len() < 2 || !running.arms.iter().any(|d| Some(*d) == keep) {
            return Err(SaveError::Invalid(format!(
                "{delay} is not one of the delays of {step:?} any more: the schedule changed since the page was opened"
            )));
        }
        let loaded = self
            .read(&FileId::Schedule)
            .await
            .map_err(SaveError::Failed)?;
        let text = loaded.content.unwrap_or_default();
        let mut doc: DocumentMut = text
            .parse()
            .map_err(|e| SaveError::Invalid(format!("the schedule file cannot be read: {e}")))?;
        let key = if running.after.is_some() {
            "after"
        } else {
            "before_event"
        };
        let table = doc
            .get_mut("reminders")
            .and_then(Item::as_array_of_tables_mut)
            .and_then(|steps| {
                steps
                    .iter_mut()
                    .find(|t| t.get("name").and_then(Item::as_str) == Some(step))
            })
            .ok_or_else(|| {
                SaveError::NotEditable(format!(
                    "the step {step:?} is not in the schedule file: change its delay where it is written"
                ))
            })?;
        let mut value = Value::from(delay);
        if let Some(old) = table.get(key).and_then(Item::as_value) {
            *value.decor_mut() = old.decor().clone();
        }
        table.insert(key, Item::Value(value));
        self.save(Save {
            changes: vec![Change {
                file: FileId::Schedule,
                loaded: loaded.version,
                content: Some(doc.to_string()),
            }],
            client,
            summary: format!(
                "{step}: kept the {delay} arm, ending its timing experiment ({figures})"
            ),
            validate: self.standard_validator(),
        })
        .await
    }
}
