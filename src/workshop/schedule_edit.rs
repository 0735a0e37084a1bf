//! The schedule editor's work, between the page and the save core: the draft of the schedule in
//! force with the file's version, the configuration a draft would put in force (read by the very
//! loader `check` and a reload use, errors mapped back to the form's fields), and its save.

use std::path::PathBuf;
use std::sync::Arc;

use super::schedule::{Draft, FieldError, summary};
use super::{Change, FileId, SaveError, Saved, Version, Workshop};
use crate::config::{Config, ConfigError};
use crate::reminders::Settings;

/// What the editor starts from.
#[derive(Debug, Clone)]
pub struct Editing {
    /// The schedule in force, as rows.
    pub draft: Draft,
    /// The schedule file's version on disk (sent back with the save).
    pub version: Version,
    /// The schedule file; `None`: the configuration names none (saving is refused).
    pub file: Option<PathBuf>,
    /// The main configuration file; `None`: the service runs on its built-in defaults.
    pub main: Option<PathBuf>,
}

/// A draft read as the service would read it.
#[derive(Debug, Clone)]
pub struct Drafted {
    /// The configuration it would put in force.
    pub config: Config,
    /// The schedule file's new text (`None`: no schedule file to write).
    pub text: Option<String>,
}

/// An email a step may send: its template's name and its subject line (as written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailChoice {
    /// The template's name (its directory).
    pub name: String,
    /// Its subject line as written (it may hold `{{ ... }}` values).
    pub subject: String,
}

impl Workshop {
    /// The emails that exist (in the templates directory, or built in), with their subjects.
    pub async fn email_choices(&self) -> anyhow::Result<Vec<EmailChoice>> {
        let mut choices = Vec::new();
        for (name, _) in self.template_names().await? {
            let template = self.template(&name).await?;
            if !template.exists() {
                continue;
            }
            let subject = subject_in_words(
                template.parts[0]
                    .content
                    .as_deref()
                    .unwrap_or_default()
                    .trim(),
            );
            choices.push(EmailChoice {
                name: name.as_str().to_string(),
                subject,
            });
        }
        Ok(choices)
    }

    /// The configuration a restore of history entry `id` would put in force, when the entry
    /// changed the schedule file (`None`: it did not, or there is no such entry).
    pub async fn schedule_restored(&self, id: i64) -> anyhow::Result<Option<Config>> {
        let Some(change) = self.store.history_change(id).await? else {
            return Ok(None);
        };
        let Some(file) = change
            .files
            .iter()
            .find(|f| FileId::parse(&f.file) == Some(FileId::Schedule))
        else {
            return Ok(None);
        };
        let current = self.engine().settings().config.clone();
        let main_path = self.config_file().map(PathBuf::from);
        let main = match &main_path {
            Some(path) => std::fs::read_to_string(path)?,
            None => String::new(),
        };
        let mut config =
            Config::from_sources(Some(&main), main_path.as_deref(), file.previous.as_deref())?;
        config.server = current.server.clone();
        config.database = current.database.clone();
        config.email = current.email.clone();
        config.quicket = current.quicket.clone();
        Ok(Some(config))
    }

    /// The schedule in force, as the editor shows it, with the version of its file.
    pub async fn schedule_editing(&self) -> anyhow::Result<Editing> {
        let config = self.engine().settings().config.clone();
        let file = config.schedule.file.clone();
        let (text, version) = match &file {
            Some(_) => {
                let loaded = self.read(&FileId::Schedule).await?;
                (loaded.content, loaded.version)
            }
            None => (None, Version::absent()),
        };
        Ok(Editing {
            draft: Draft::of(&config, text.as_deref()),
            version,
            file,
            main: self.config_file().map(PathBuf::from),
        })
    }

    /// The configuration `draft` would put in force: written into the schedule file's text (or,
    /// with no schedule file, into the main file's text in memory: never written), then read
    /// by the loader `check` uses and its templates loaded as a reload loads them. Errors name
    /// the form's fields.
    pub async fn schedule_drafted(&self, draft: &Draft) -> Result<Drafted, Vec<FieldError>> {
        let mut errors = draft.check();
        let known = self
            .email_choices()
            .await
            .map_err(|e| vec![FieldError::general(format!("{e:#}"))])?;
        let known: Vec<&str> = known.iter().map(|c| c.name.as_str()).collect();
        errors.extend(draft.check_emails(&known));
        if !errors.is_empty() {
            return Err(errors);
        }
        let current = self.engine().settings().config.clone();
        let main_path = self.config_file().map(PathBuf::from);
        let main = match &main_path {
            Some(path) => std::fs::read_to_string(path).map_err(|e| {
                vec![FieldError::general(format!(
                    "cannot read {}: {e}",
                    path.display()
                ))]
            })?,
            None => String::new(),
        };
        let drafted = match &current.schedule.file {
            Some(_) => {
                let loaded = self
                    .read(&FileId::Schedule)
                    .await
                    .map_err(|e| vec![FieldError::general(format!("{e:#}"))])?;
                let old = loaded.content.unwrap_or_default();
                // Compared with what the file says now (not with what is in force): a value the
                // form shows is written whenever the file says otherwise, so that a save over a
                // hand edit shows, in its difference, every value it would change.
                let on_disk = Config::from_sources(Some(&main), main_path.as_deref(), Some(&old))
                    .unwrap_or_else(|_| (*current).clone());
                let text = draft
                    .write_into(&old, &main, &on_disk)
                    .map_err(|e| vec![e])?;
                let config = Config::from_sources(Some(&main), main_path.as_deref(), Some(&text))
                    .map_err(|e| vec![field_of(&e, draft)])?;
                Drafted {
                    config,
                    text: Some(text),
                }
            }
            None => {
                let text = draft.write_into(&main, "", &current).map_err(|e| vec![e])?;
                let config = Config::from_toml(Some(&text), main_path.as_deref())
                    .map_err(|e| vec![field_of(&e, draft)])?;
                Drafted { config, text: None }
            }
        };
        // The secrets and sections a reload keeps are the running ones (environment included).
        let mut config = drafted.config;
        config.server = current.server.clone();
        config.database = current.database.clone();
        config.email = current.email.clone();
        config.quicket = current.quicket.clone();
        let checked = Arc::new(config.clone());
        tokio::task::spawn_blocking(move || Settings::load(checked).map(|_| ()))
            .await
            .map_err(|e| vec![FieldError::general(e.to_string())])?
            .map_err(|e| vec![FieldError::general(format!("{e:#}"))])?;
        Ok(Drafted {
            config,
            text: drafted.text,
        })
    }

    /// Saves `draft` into the schedule file loaded at `version`: refused with the reason when it
    /// is not valid, when there is no schedule file (the main file is never written), or with
    /// the difference when the file changed on disk since.
    pub async fn save_schedule(
        &self,
        draft: &Draft,
        version: Version,
        client: String,
    ) -> Result<Saved, ScheduleSaveError> {
        let current = self.engine().settings().config.clone();
        if current.schedule.file.is_none() {
            return Err(ScheduleSaveError::Save(SaveError::NotEditable(
                "no schedule file is configured, and the main configuration is never written from here: \
                 see \"Changing the schedule\" in the README to move the schedule into a file of its own"
                    .into(),
            )));
        }
        let drafted = self
            .schedule_drafted(draft)
            .await
            .map_err(ScheduleSaveError::Fields)?;
        let text = drafted.text.unwrap_or_default();
        let line = summary(&current, &drafted.config);
        self.save(super::Save {
            changes: vec![Change {
                file: FileId::Schedule,
                loaded: version,
                content: Some(text),
            }],
            client,
            summary: line,
            validate: self.standard_validator(),
        })
        .await
        .map_err(ScheduleSaveError::Save)
    }
}

/// A subject line as an organiser reads it in a list: each `{{ value }}` as `[value]` in words
/// (`{{ event.name }}` reads `[event name]`), other template syntax left out.
fn subject_in_words(subject: &str) -> String {
    let mut out = String::new();
    let mut rest = subject;
    while let Some(open) = rest.find(['{']) {
        out.push_str(&rest[..open]);
        let tail = &rest[open..];
        let (close, value) = if tail.starts_with("{{") {
            ("}}", true)
        } else if tail.starts_with("{%") {
            ("%}", false)
        } else if tail.starts_with("{#") {
            ("#}", false)
        } else {
            out.push('{');
            rest = &tail[1..];
            continue;
        };
        let Some(end) = tail.find(close) else {
            break;
        };
        if value {
            let inner = tail[2..end].split('|').next().unwrap_or_default().trim();
            out.push('[');
            out.push_str(&inner.replace(['.', '_'], " "));
            out.push(']');
        }
        rest = &tail[end + 2..];
    }
    if !rest.contains(['{']) {
        out.push_str(rest);
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Why a schedule was not saved; nothing was written.
#[derive(Debug)]
pub enum ScheduleSaveError {
    /// Values of the form, each with its field.
    Fields(Vec<FieldError>),
    /// Refused by the save core (conflict with a diff, invalid, not editable, failed).
    Save(SaveError),
}

impl FieldError {
    /// An error about the schedule as a whole.
    pub fn general(message: impl Into<String>) -> FieldError {
        FieldError {
            field: String::new(),
            message: message.into(),
        }
    }
}

/// The form field a loader error is about (`reminders[2].after` -> `s2.wait`).
fn field_of(e: &ConfigError, draft: &Draft) -> FieldError {
    let message = e.to_string();
    let key = match e {
        ConfigError::Invalid { key, .. } => key.clone(),
        _ => message
            .split("config key ")
            .nth(1)
            .and_then(|rest| rest.split(':').next())
            .unwrap_or_default()
            .to_string(),
    };
    let field = if let Some(rest) = key.strip_prefix("schedule.") {
        rest.to_string()
    } else if let Some(rest) = key.strip_prefix("reminders") {
        let rest = rest.trim_start_matches(['[', '.']);
        let (i, f) = rest.split_once(['.', ']']).unwrap_or((rest, ""));
        let f = f.trim_start_matches(['.', ']']);
        let f = match f {
            "after" | "before_event" => "wait",
            "when" => "state",
            "variants" => "template",
            "send_window" => "window",
            other => other,
        };
        format!("s{i}.{f}")
    } else if let Some(rest) = key.strip_prefix("events.") {
        let id = rest
            .trim_start_matches('"')
            .split('"')
            .next()
            .unwrap_or_default();
        let f = rest.rsplit('.').next().unwrap_or_default();
        match draft.events.iter().position(|e| e.id == id) {
            Some(j) => format!("e{j}.{f}"),
            None => String::new(),
        }
    } else {
        String::new()
    };
    FieldError { field, message }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_subject_reads_in_words() {
        assert_eq!(
            super::subject_in_words("Your {{ event.name }} tickets{% if x %}!{% endif %}"),
            "Your [event name] tickets!"
        );
        assert_eq!(
            super::subject_in_words("{{ buyer.first_name | default('Hi') }}, still there?"),
            "[buyer first name], still there?"
        );
        assert_eq!(super::subject_in_words("Plain {braces"), "Plain {braces");
    }
}
