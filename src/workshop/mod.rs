//! The organiser's workshop: the editable files (email templates, the schedule file) read with a
//! version, and saved safely: validated by the same code `check` and a reload run, refused on a
//! conflict with what is on disk (with the difference), written atomically, kept in the history,
//! then put in force by a reload. The web pages use it; it uses config, templates, reminders and
//! the store.

pub mod emails;
pub mod files;
mod notice;
pub mod reload;
mod restore;
pub mod schedule;
pub mod schedule_edit;
mod stage;
mod timing;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

pub use files::Version;
pub use notice::notice_hand_edits;
pub use reload::{ReloadRequest, Reloader};
pub use stage::Staged;

use crate::config::{Config, ReminderStep, TemplateSource};
use crate::reminders::Engine;
use crate::reminders::pass::Settings;
use crate::store::Store;
use crate::store::history::{FileChange, NewChange, Via};

/// Where the history's file names for templates start.
const TEMPLATES_PREFIX: &str = "templates/";
/// The history's name of the schedule file.
const SCHEDULE_LABEL: &str = "schedule.toml";

/// An editable file, as the history names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileId {
    /// A file of an email template, or of `_shared`: `templates/{dir}/{file}`.
    Template {
        /// The template's directory (a [`template_name_ok`] name, or `_shared`).
        dir: String,
        /// The file in it (`subject.txt`, `body.html`, `body.txt`, or a shared piece).
        file: String,
    },
    /// The schedule file (`[schedule] file`).
    Schedule,
}

impl FileId {
    /// A file of template `dir`; `None` when either name could leave the templates directory.
    pub fn template(dir: &str, file: &str) -> Option<FileId> {
        let dir_ok = template_name_ok(dir) || dir == crate::templates::SHARED;
        (dir_ok && file_name_ok(file)).then(|| FileId::Template {
            dir: dir.into(),
            file: file.into(),
        })
    }

    /// The name the history keeps.
    pub fn label(&self) -> String {
        match self {
            FileId::Template { dir, file } => format!("{TEMPLATES_PREFIX}{dir}/{file}"),
            FileId::Schedule => SCHEDULE_LABEL.into(),
        }
    }

    /// The file a history name stands for.
    pub fn parse(label: &str) -> Option<FileId> {
        if label == SCHEDULE_LABEL {
            return Some(FileId::Schedule);
        }
        let (dir, file) = label.strip_prefix(TEMPLATES_PREFIX)?.split_once('/')?;
        FileId::template(dir, file)
    }
}

/// Whether `name` may be a template's directory: 1 to 64 of `a-z 0-9 _ -`, starting with a letter
/// or digit (so never `..`, `_shared` or a hidden name).
pub fn template_name_ok(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Whether `name` may be a file in a template's directory: no path separator, not hidden.
fn file_name_ok(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// Where the editable files live under the configuration in force.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The templates directory: the one in force, or (built-in templates in force) the one the
    /// first save writes, where a reload will find it.
    pub templates: PathBuf,
    /// Whether the built-in templates are in force (no templates directory yet).
    pub built_in: bool,
    /// The schedule file, when the configuration names one.
    pub schedule: Option<PathBuf>,
}

impl Paths {
    /// The paths of a configuration (`config_file`: the main config file it was read from).
    pub fn of(config: &Config, config_file: Option<&Path>) -> Paths {
        let (templates, built_in) = match config.templates.source() {
            Ok(TemplateSource::Dir(dir)) => (dir, false),
            Ok(TemplateSource::BuiltIn) => {
                (PathBuf::from(crate::config::DEFAULT_TEMPLATES_DIR), true)
            }
            // A missing templates.dir: the first save creates it.
            Err(_) => (
                config
                    .templates
                    .dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_TEMPLATES_DIR)),
                false,
            ),
        };
        Paths {
            templates,
            built_in,
            schedule: schedule_file(config, config_file),
        }
    }

    /// The file on disk.
    pub fn path(&self, id: &FileId) -> Option<PathBuf> {
        match id {
            FileId::Template { dir, file } => Some(self.templates.join(dir).join(file)),
            FileId::Schedule => self.schedule.clone(),
        }
    }
}

/// The schedule file the configuration names (`[schedule] file`, resolved against the main
/// config file's directory when the configuration was loaded).
fn schedule_file(config: &Config, _config_file: Option<&Path>) -> Option<PathBuf> {
    config.schedule.file.clone()
}

/// An editable file as loaded for the editor.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// What is in force: the file's content, or (built-in templates in force) the built-in text.
    pub content: Option<String>,
    /// The version of the file on disk, to send back with the save.
    pub version: Version,
    /// Whether `content` is the built-in text (no file on disk yet).
    pub built_in: bool,
}

/// One file a save changes.
#[derive(Debug, Clone)]
pub struct Change {
    /// Which file.
    pub file: FileId,
    /// The version the editor loaded.
    pub loaded: Version,
    /// The new content; `None` removes the file.
    pub content: Option<String>,
}

/// Checks the would-be files; an error is the reason the save is refused.
pub type Validator = Box<dyn FnOnce(&Staged) -> anyhow::Result<()> + Send>;

/// A save.
pub struct Save {
    /// The files it changes.
    pub changes: Vec<Change>,
    /// Who saves: the browser's address.
    pub client: String,
    /// One line for the history.
    pub summary: String,
    /// What must pass before anything is written; [`Workshop::standard_validator`] is what a
    /// reload checks.
    pub validate: Validator,
}

/// What a save did.
#[derive(Debug, Clone)]
pub struct Saved {
    /// The history entry (`None`: nothing differed from the files on disk, nothing was written).
    pub change: Option<i64>,
    /// How the reload went: `Err` with the reason when the service refused the new files (they
    /// are written and recorded; the running version stays in force until a reload takes).
    pub reload: Result<(), String>,
}

/// Why a save was refused; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// The new files fail the checks a reload runs.
    #[error("not saved: {0}")]
    Invalid(String),
    /// The file changed on disk since the editor loaded it.
    #[error(
        "not saved: {file} was changed since you opened it (by hand, or in another window); the difference between the file and your edit is shown, reload the page to start from the file"
    )]
    Conflict {
        /// The file, as the history names it.
        file: String,
        /// A unified diff from the file on disk to the edit.
        diff: String,
    },
    /// The file cannot be edited here (e.g. no schedule file is configured).
    #[error("not saved: {0}")]
    NotEditable(String),
    /// Reading, writing or recording failed.
    #[error("not saved: {0:#}")]
    Failed(anyhow::Error),
}

/// The workshop: one per service.
pub struct Workshop {
    store: Store,
    engine: Arc<Engine>,
    reloader: Reloader,
    config_file: Option<PathBuf>,
    /// One save at a time: the conflict check, the writes and the reload belong together.
    saving: tokio::sync::Mutex<()>,
}

impl Workshop {
    /// A workshop over the service's store and engine; `config_file` is the main config file the
    /// service reads (none: the running configuration is kept on reload).
    pub fn new(
        store: Store,
        engine: Arc<Engine>,
        reloader: Reloader,
        config_file: Option<PathBuf>,
    ) -> Workshop {
        Workshop {
            store,
            engine,
            reloader,
            config_file,
            saving: tokio::sync::Mutex::new(()),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The main config file, if any.
    pub fn config_file(&self) -> Option<&Path> {
        self.config_file.as_deref()
    }

    /// Where the editable files are under the configuration in force.
    pub fn paths(&self) -> Paths {
        Paths::of(&self.engine.settings().config, self.config_file.as_deref())
    }

    /// The configuration a reload would read now: the config file again, or (no file) the one in
    /// force.
    pub fn candidate_config(&self) -> anyhow::Result<Config> {
        candidate_config(&self.engine.settings().config, self.config_file.as_deref())
    }

    /// Reads an editable file with its version.
    pub async fn read(&self, id: &FileId) -> anyhow::Result<Loaded> {
        let paths = self.paths();
        let id = id.clone();
        blocking(move || read_loaded(&paths, &id)).await
    }

    /// What a reload validates: the configuration a reload would read, with the staged templates,
    /// loaded as the engine loads its settings; and each template the save writes that no step
    /// uses yet, rendered with the sample data the same way.
    pub fn standard_validator(&self) -> Validator {
        let running = self.engine.settings().config.clone();
        let file = self.config_file.clone();
        Box::new(move |staged: &Staged| {
            let config = match staged.change(&FileId::Schedule) {
                Some(text) => config_with_schedule(&running, file.as_deref(), text)?,
                None => candidate_config(&running, file.as_deref())?,
            };
            validate_settings(config, staged)
        })
    }

    /// Saves: checks each file's version against the disk (a conflict is refused with the
    /// difference), validates the would-be files, writes them atomically, records the history,
    /// and reloads the service.
    pub async fn save(&self, save: Save) -> Result<Saved, SaveError> {
        let _one_at_a_time = self.saving.lock().await;
        let paths = self.paths();
        let Save {
            changes,
            client,
            summary,
            validate,
        } = save;
        let prepared = {
            let paths = paths.clone();
            blocking_save(move || prepare(&paths, changes, validate)).await?
        };
        if prepared.files.is_empty() {
            return Ok(Saved {
                change: None,
                reload: Ok(()),
            });
        }
        let files = prepared.files.clone();
        blocking_save(move || write_all(&paths, &prepared)).await?;
        let change = self
            .store
            .record_change(NewChange {
                at: chrono::Utc::now(),
                via: Via::Browser,
                client,
                summary,
                files,
            })
            .await
            .map_err(|e| SaveError::Failed(e.into()))?;
        let reload = self.reloader.reload().await;
        if let Err(e) = &reload {
            tracing::warn!("saved from the browser, but the reload was refused: {e}");
        }
        Ok(Saved {
            change: Some(change),
            reload,
        })
    }
}

/// The configuration a reload would read: `file` again, or (no file) `running`.
pub fn candidate_config(running: &Config, file: Option<&Path>) -> anyhow::Result<Config> {
    match file {
        Some(file) => Ok(Config::load(Some(file))?),
        None => Ok(running.clone()),
    }
}

/// The configuration a reload would read if the schedule file held `text` (`None`: removed):
/// the main file read again with that text in place of the schedule file, by the loader `check`
/// and a reload use.
pub fn config_with_schedule(
    running: &Config,
    file: Option<&Path>,
    text: Option<&str>,
) -> anyhow::Result<Config> {
    let Some(file) = file else {
        let _ = running;
        anyhow::bail!(
            "the service runs without a configuration file, so there is no schedule file to save into"
        );
    };
    let Some(text) = text else {
        anyhow::bail!(
            "the schedule file cannot be removed while the configuration names it (schedule.file)"
        );
    };
    let main =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    Ok(Config::from_sources(Some(&main), Some(file), Some(text))?)
}

/// Validates `config` with the staged templates the way a reload does ([`Settings::load`]), and
/// each template the save writes that no step uses (rendered with the sample data).
pub fn validate_settings(mut config: Config, staged: &Staged) -> anyhow::Result<()> {
    config.templates.dir = Some(staged.templates_dir().to_path_buf());
    let timezone = config.schedule.timezone;
    let config = Arc::new(config);
    Settings::load(config.clone())?;
    let used: Vec<&str> = config
        .reminders
        .iter()
        .flat_map(|s| s.templates())
        .collect();
    for name in staged.changed_templates() {
        if used.contains(&name) {
            continue;
        }
        let mut step: ReminderStep = config
            .reminders
            .first()
            .cloned()
            .context("the configuration has no [[reminders]] step to render a template for")?;
        step.template = name.to_string();
        step.variants = Vec::new();
        crate::templates::Templates::load(
            &TemplateSource::Dir(staged.templates_dir().to_path_buf()),
            &[step],
            timezone,
        )?;
    }
    Ok(())
}

/// The built-in text of a template file, if it is one.
fn built_in_text(id: &FileId) -> Option<&'static str> {
    match id {
        FileId::Template { dir, file } => crate::builtin_templates::get(&format!("{dir}/{file}")),
        FileId::Schedule => None,
    }
}

fn read_loaded(paths: &Paths, id: &FileId) -> anyhow::Result<Loaded> {
    let path = paths
        .path(id)
        .with_context(|| format!("{} is not configured", id.label()))?;
    let on_disk = files::read(&path)?;
    let version = Version::of(on_disk.as_deref().map(str::as_bytes));
    let fallback = if paths.built_in && on_disk.is_none() {
        built_in_text(id)
    } else {
        None
    };
    Ok(Loaded {
        built_in: fallback.is_some(),
        content: on_disk.or(fallback.map(str::to_string)),
        version,
    })
}

/// A save checked and ready to write.
struct Prepared {
    files: Vec<FileChange>,
    /// The built-in files to write first (built-in templates in force: the first save writes
    /// them all, so that the directory the reload reads is whole).
    materialize: Vec<(PathBuf, &'static str)>,
}

fn prepare(
    paths: &Paths,
    changes: Vec<Change>,
    validate: Validator,
) -> Result<Prepared, SaveError> {
    let mut files = Vec::new();
    let mut staged_changes = BTreeMap::new();
    for change in changes {
        let label = change.file.label();
        let path = paths
            .path(&change.file)
            .ok_or_else(|| SaveError::NotEditable(format!("{label} is not configured")))?;
        let on_disk = files::read(&path).map_err(SaveError::Failed)?;
        let version = Version::of(on_disk.as_deref().map(str::as_bytes));
        if version != change.loaded {
            return Err(SaveError::Conflict {
                diff: diff(
                    on_disk.as_deref().unwrap_or_default(),
                    change.content.as_deref().unwrap_or_default(),
                    &label,
                ),
                file: label,
            });
        }
        // What is in force before the save: the file, or the built-in text it replaces.
        let previous = match (&on_disk, paths.built_in) {
            (None, true) => built_in_text(&change.file).map(str::to_string),
            _ => on_disk,
        };
        if previous != change.content {
            files.push(FileChange {
                file: label,
                previous,
                content: change.content.clone(),
            });
            staged_changes.insert(change.file, change.content);
        }
    }
    if files.is_empty() {
        return Ok(Prepared {
            files,
            materialize: Vec::new(),
        });
    }
    let from = (!paths.built_in).then_some(paths.templates.as_path());
    let from = from.filter(|dir| dir.is_dir());
    let staged = Staged::new(from, staged_changes).map_err(SaveError::Failed)?;
    validate(&staged)
        .map_err(|e| SaveError::Invalid(emails::unstage(&format!("{e:#}"), &staged, paths)))?;
    let materialize = if paths.built_in {
        crate::builtin_templates::FILES
            .iter()
            .map(|(path, text)| (paths.templates.join(path), *text))
            .collect()
    } else {
        Vec::new()
    };
    Ok(Prepared { files, materialize })
}

fn write_all(paths: &Paths, prepared: &Prepared) -> Result<(), SaveError> {
    for (path, text) in &prepared.materialize {
        if !path.exists() {
            files::write_atomically(path, text).map_err(SaveError::Failed)?;
        }
    }
    for change in &prepared.files {
        let id = FileId::parse(&change.file)
            .ok_or_else(|| SaveError::NotEditable(change.file.clone()))?;
        let path = paths
            .path(&id)
            .ok_or_else(|| SaveError::NotEditable(format!("{} is not configured", change.file)))?;
        match &change.content {
            Some(text) => files::write_atomically(&path, text),
            None => files::remove(&path),
        }
        .map_err(SaveError::Failed)?;
    }
    // A template whose every file is gone leaves no empty directory behind.
    for change in &prepared.files {
        if let (None, Some(FileId::Template { dir, .. })) =
            (&change.content, FileId::parse(&change.file))
        {
            let _ = std::fs::remove_dir(paths.templates.join(dir));
        }
    }
    Ok(())
}

/// A unified diff from `before` to `after`, headed with `name`.
pub fn diff(before: &str, after: &str, name: &str) -> String {
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(&format!("{name} (on disk)"), &format!("{name} (your edit)"))
        .to_string()
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| anyhow::anyhow!("the workshop failed: {e}"))?
}

async fn blocking_save<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, SaveError> + Send + 'static,
) -> Result<T, SaveError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| SaveError::Failed(anyhow::anyhow!("the save failed: {e}")))?
}
