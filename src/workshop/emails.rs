//! The email templates as the editor sees them: the three parts of a template with their
//! versions, which steps use it, a draft loaded from unsaved text (for the live preview), and the
//! saves the editor makes: the parts, a copy under a new name, a deletion.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;

use super::{Change, FileId, Loaded, Save, SaveError, Saved, Staged, Version, Workshop};
use crate::config::{Config, ReminderStep, TemplateSource};
use crate::reminders::pass::Settings;
use crate::templates::{Templates, WORDS_FILE, Words};

/// A template's three parts, in the order the editor shows them.
pub const PARTS: [Part; 3] = [Part::Subject, Part::Html, Part::Text];

/// One part of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// `subject.txt`
    Subject,
    /// `body.html`
    Html,
    /// `body.txt`
    Text,
}

impl Part {
    /// The file.
    pub fn file(self) -> &'static str {
        match self {
            Part::Subject => "subject.txt",
            Part::Html => "body.html",
            Part::Text => "body.txt",
        }
    }

    /// In the organiser's words.
    pub fn label(self) -> &'static str {
        match self {
            Part::Subject => "subject",
            Part::Html => "HTML part",
            Part::Text => "text part",
        }
    }
}

/// A template's name: a directory under `templates.dir`, `a-z 0-9 _ -` only (so it can never
/// leave the directory).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TemplateName(String);

impl TemplateName {
    /// A name, or why it cannot be one.
    pub fn parse(text: &str) -> Result<TemplateName, String> {
        if super::template_name_ok(text) {
            Ok(TemplateName(text.to_string()))
        } else {
            Err(format!(
                "{:?} is not a template name: use 1 to 64 of a-z, 0-9, _ and -, starting with a letter or digit",
                crate::domain::clean_text(&text.chars().take(80).collect::<String>())
            ))
        }
    }

    /// As written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The file of one part.
    pub fn file(&self, part: Part) -> FileId {
        FileId::Template {
            dir: self.0.clone(),
            file: part.file().into(),
        }
    }

    /// The file of its words.
    pub fn words_file(&self) -> FileId {
        FileId::Template {
            dir: self.0.clone(),
            file: WORDS_FILE.into(),
        }
    }
}

impl std::fmt::Display for TemplateName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A template as loaded for the editor.
#[derive(Debug, Clone)]
pub struct Template {
    /// Its name.
    pub name: TemplateName,
    /// The parts, in [`PARTS`] order.
    pub parts: [Loaded; 3],
    /// Its words (`words.toml`), when it has them.
    pub words: Loaded,
    /// The steps that use it (as their template or one of their variants).
    pub used_by: Vec<String>,
}

impl Template {
    /// Whether the template exists (any part on disk or built in).
    pub fn exists(&self) -> bool {
        self.parts.iter().any(|p| p.content.is_some())
    }

    /// Its words as saved: `None` without a words file, `Err` when the file cannot be read as
    /// words.
    pub fn saved_words(&self) -> Option<anyhow::Result<Words>> {
        self.words.content.as_deref().map(Words::parse)
    }

    /// Whether the parts are no longer what the saved words make (edited in code mode or by
    /// hand); `false` without words.
    pub fn changed_in_code(&self) -> bool {
        match self.saved_words() {
            Some(Ok(words)) => {
                let made = words.files_anyway();
                self.parts
                    .iter()
                    .zip(made.iter())
                    .any(|(part, made)| part.content.as_deref() != Some(made.as_str()))
            }
            Some(Err(_)) => true,
            None => false,
        }
    }
}

/// The versions a simple-mode save sends back: the words file's and the three parts'.
pub type WordsVersions = [Version; 4];

/// The text of the three parts as the editor holds them, saved or not.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    /// `subject.txt`
    pub subject: String,
    /// `body.html`
    pub html: String,
    /// `body.txt`
    pub text: String,
}

impl Draft {
    fn part(&self, part: Part) -> &str {
        match part {
            Part::Subject => &self.subject,
            Part::Html => &self.html,
            Part::Text => &self.text,
        }
    }
}

/// The steps of `config` that use template `name`.
pub fn steps_using(config: &Config, name: &str) -> Vec<String> {
    config
        .reminders
        .iter()
        .filter(|s| s.templates().contains(&name))
        .map(|s| s.name.clone())
        .collect()
}

impl Workshop {
    /// The templates there are (directories of the templates dir, or the built-in ones), each with
    /// the steps that use it; a step's template that does not exist is listed too.
    pub async fn template_names(&self) -> anyhow::Result<Vec<(TemplateName, Vec<String>)>> {
        let paths = self.paths();
        let config = self.engine.settings().config.clone();
        tokio::task::spawn_blocking(move || {
            let mut names: Vec<String> = if paths.built_in {
                crate::builtin_templates::names()
                    .into_iter()
                    .map(String::from)
                    .collect()
            } else {
                match std::fs::read_dir(&paths.templates) {
                    Ok(entries) => entries
                        .filter_map(Result::ok)
                        .filter(|e| e.path().is_dir())
                        .filter_map(|e| e.file_name().to_str().map(String::from))
                        .collect(),
                    Err(_) => Vec::new(),
                }
            };
            names.extend(
                config
                    .reminders
                    .iter()
                    .flat_map(|s| s.templates())
                    .map(String::from),
            );
            names.sort();
            names.dedup();
            Ok(names
                .into_iter()
                .filter_map(|n| TemplateName::parse(&n).ok())
                .map(|n| {
                    let used = steps_using(&config, n.as_str());
                    (n, used)
                })
                .collect())
        })
        .await
        .map_err(|e| anyhow::anyhow!("listing the templates failed: {e}"))?
    }

    /// A template's parts with their versions.
    pub async fn template(&self, name: &TemplateName) -> anyhow::Result<Template> {
        let [s, h, t] = PARTS.map(|p| name.file(p));
        let parts = [
            self.read(&s).await?,
            self.read(&h).await?,
            self.read(&t).await?,
        ];
        let mut words = self.read(&name.words_file()).await?;
        if words.content.is_none() {
            // A shipped email written out before it had words (an earlier `init`): simple mode
            // starts from the shipped words, and says the files are not what they make.
            if let Some(text) = crate::builtin_templates::get(&format!("{name}/{WORDS_FILE}")) {
                words.content = Some(text.to_string());
                words.built_in = true;
            }
        }
        Ok(Template {
            used_by: steps_using(&self.engine.settings().config, name.as_str()),
            name: name.clone(),
            parts,
            words,
        })
    }

    /// Loads unsaved parts of template `name` the way a reload loads templates (rendering them
    /// with every sample), and answers settings in which step `step` (the first step using the
    /// template, else one made for the preview) renders it. An error names the part, the line
    /// and what is wrong, the way `check` prints it.
    pub async fn draft_settings(
        &self,
        name: &TemplateName,
        draft: &Draft,
    ) -> anyhow::Result<(Settings, String)> {
        let running = self.engine.settings();
        let paths = self.paths();
        let changes: BTreeMap<FileId, Option<String>> = PARTS
            .iter()
            .map(|p| (name.file(*p), Some(draft.part(*p).to_string())))
            .collect();
        let name = name.clone();
        let config = running.config.clone();
        tokio::task::spawn_blocking(move || {
            let from = (!paths.built_in).then_some(paths.templates.as_path());
            let staged = Staged::new(from.filter(|d| d.is_dir()), changes)?;
            let mut config = (*config).clone();
            let step = match config
                .reminders
                .iter_mut()
                .find(|s| s.templates().contains(&name.as_str()))
            {
                Some(step) => step,
                None => {
                    let mut step: ReminderStep = config
                        .reminders
                        .first()
                        .cloned()
                        .context("there is no [[reminders]] step to preview a template for")?;
                    step.name = name.to_string();
                    config.reminders.push(step);
                    config
                        .reminders
                        .last_mut()
                        .context("the preview step was just added")?
                }
            };
            // The preview shows this template, whichever variant a buyer would get.
            step.template = name.to_string();
            step.variants = Vec::new();
            let step_name = step.name.clone();
            let steps = vec![step.clone()];
            let templates = Templates::load(
                &TemplateSource::Dir(staged.templates_dir().to_path_buf()),
                &steps,
                config.schedule.timezone,
            )
            .map_err(|e| anyhow::anyhow!(unstage(&format!("{e:#}"), &staged, &paths)))?;
            config.reminders = steps;
            let config = Arc::new(config);
            Ok((
                Settings {
                    rules: crate::reminders::planner::Rules::from_config(&config),
                    templates,
                    config,
                },
                step_name,
            ))
        })
        .await
        .map_err(|e| anyhow::anyhow!("the preview failed: {e}"))?
    }

    /// Saves the parts of template `name`; `versions` are those the editor loaded. A part that
    /// did not change is left alone.
    pub async fn save_template(
        &self,
        name: &TemplateName,
        draft: &Draft,
        versions: [Version; 3],
        client: String,
    ) -> Result<Saved, SaveError> {
        let current = self.template(name).await.map_err(SaveError::Failed)?;
        let mut changed = Vec::new();
        let mut changes = Vec::new();
        for (i, part) in PARTS.iter().enumerate() {
            let text = draft.part(*part);
            if current.parts[i].content.as_deref() != Some(text)
                || current.parts[i].version != versions[i]
            {
                if current.parts[i].content.as_deref() != Some(text) {
                    changed.push(part.label());
                }
                changes.push(Change {
                    file: name.file(*part),
                    loaded: versions[i].clone(),
                    content: Some(text.to_string()),
                });
            }
        }
        let summary = match changed.as_slice() {
            [] => format!("{name}: saved unchanged"),
            parts => format!("{name}: {} changed", parts.join(", ")),
        };
        self.save(Save {
            changes,
            client,
            summary,
            validate: self.standard_validator(),
        })
        .await
    }

    /// Saves template `name` from its words (simple mode): the words file and the three parts
    /// made from them. Refused when a word is wrong (naming the field), and, unless `replace`, when
    /// the parts were changed in code mode since the words were saved (so that nothing made there
    /// is overwritten from simple mode without being asked).
    pub async fn save_words(
        &self,
        name: &TemplateName,
        words: &Words,
        versions: WordsVersions,
        replace: bool,
        client: String,
    ) -> Result<Saved, SaveError> {
        let made = words
            .files()
            .map_err(|e| SaveError::Invalid(e.to_string()))?;
        let current = self.template(name).await.map_err(SaveError::Failed)?;
        if !replace && current.changed_in_code() {
            return Err(SaveError::Invalid(format!(
                "{name} was changed in code mode since its words were saved, so saving the words would overwrite that: edit it in code mode, or use Back to simple to see the difference and replace it"
            )));
        }
        let [v_words, v_subject, v_html, v_text] = versions;
        let mut changes = vec![Change {
            file: name.words_file(),
            loaded: v_words,
            content: Some(words.to_toml()),
        }];
        for ((part, text), loaded) in PARTS.iter().zip(made).zip([v_subject, v_html, v_text]) {
            changes.push(Change {
                file: name.file(*part),
                loaded,
                content: Some(text),
            });
        }
        let summary = if replace {
            format!("{name}: made from its words again (replacing the code-mode version)")
        } else {
            format!("{name}: words changed")
        };
        self.save(Save {
            changes,
            client,
            summary,
            validate: self.standard_validator(),
        })
        .await
    }

    /// A new template `to`, a copy of `from`'s parts as they are in force.
    pub async fn copy_template(
        &self,
        from: &TemplateName,
        to: &TemplateName,
        client: String,
    ) -> Result<Saved, SaveError> {
        let source = self.template(from).await.map_err(SaveError::Failed)?;
        if !source.exists() {
            return Err(SaveError::Invalid(format!(
                "there is no template {from} to copy"
            )));
        }
        let target = self.template(to).await.map_err(SaveError::Failed)?;
        if target.exists() {
            return Err(SaveError::Invalid(format!(
                "a template {to} exists already: choose another name"
            )));
        }
        let mut changes: Vec<Change> = PARTS
            .iter()
            .enumerate()
            .map(|(i, part)| Change {
                file: to.file(*part),
                loaded: target.parts[i].version.clone(),
                content: Some(source.parts[i].content.clone().unwrap_or_default()),
            })
            .collect();
        if let Some(words) = source.words.content.clone() {
            changes.push(Change {
                file: to.words_file(),
                loaded: target.words.version.clone(),
                content: Some(words),
            });
        }
        self.save(Save {
            changes,
            client,
            summary: format!("{to}: new, a copy of {from}"),
            validate: self.standard_validator(),
        })
        .await
    }

    /// Deletes template `name`: refused while a step uses it (naming the steps).
    pub async fn delete_template(
        &self,
        name: &TemplateName,
        versions: [Version; 3],
        client: String,
    ) -> Result<Saved, SaveError> {
        let current = self.template(name).await.map_err(SaveError::Failed)?;
        if !current.used_by.is_empty() {
            return Err(SaveError::Invalid(format!(
                "{name} is used by the step{} {}: give {} another template first",
                if current.used_by.len() == 1 { "" } else { "s" },
                current.used_by.join(", "),
                if current.used_by.len() == 1 {
                    "it"
                } else {
                    "them"
                },
            )));
        }
        let mut changes: Vec<Change> = PARTS
            .iter()
            .enumerate()
            .filter(|(i, _)| current.parts[*i].version != Version::absent())
            .map(|(i, part)| Change {
                file: name.file(*part),
                loaded: versions[i].clone(),
                content: None,
            })
            .collect();
        if current.words.version != Version::absent() {
            changes.push(Change {
                file: name.words_file(),
                loaded: current.words.version.clone(),
                content: None,
            });
        }
        self.save(Save {
            changes,
            client,
            summary: format!("{name}: deleted"),
            validate: self.standard_validator(),
        })
        .await
    }
}

/// An error message about staged files, naming the real templates directory instead.
pub(super) fn unstage(message: &str, staged: &Staged, paths: &super::Paths) -> String {
    let staged_dir = staged.templates_dir().display().to_string();
    message.replace(&staged_dir, &paths.templates.display().to_string())
}
