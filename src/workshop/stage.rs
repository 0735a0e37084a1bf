//! The would-be files of a save, in a directory of their own: a copy of the templates in force
//! with the edit applied, so that a save is validated by the very code a reload runs, over exactly
//! the files the reload would read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::FileId;

/// The staged copy; removed when dropped.
pub struct Staged {
    root: PathBuf,
    templates: PathBuf,
    changes: BTreeMap<FileId, Option<String>>,
}

impl Staged {
    /// Copies the templates (the directory `from`, or the built-in ones when `None`) and applies
    /// `changes` to the copy.
    pub(super) fn new(
        from: Option<&Path>,
        changes: BTreeMap<FileId, Option<String>>,
    ) -> anyhow::Result<Staged> {
        let root = std::env::temp_dir().join(format!(
            "quicket-followup-stage-{}",
            crate::links::random_token()
        ));
        std::fs::create_dir_all(&root)
            .with_context(|| format!("cannot create {}", root.display()))?;
        let templates = root.join("templates");
        let staged = Staged {
            root,
            templates,
            changes,
        };
        match from {
            Some(dir) => copy_templates(dir, &staged.templates)?,
            None => {
                for (path, text) in crate::builtin_templates::FILES {
                    put(&staged.templates.join(path), Some(text))?;
                }
            }
        }
        for (id, content) in &staged.changes {
            if let FileId::Template { dir, file } = id {
                put(&staged.templates.join(dir).join(file), content.as_deref())?;
            }
        }
        Ok(staged)
    }

    /// The staged templates directory: what `templates.dir` would hold after the save.
    pub fn templates_dir(&self) -> &Path {
        &self.templates
    }

    /// The new content of a changed file: `Some(None)` when the save removes it, `None` when the
    /// save does not change it.
    pub fn change(&self, id: &FileId) -> Option<Option<&str>> {
        self.changes.get(id).map(|c| c.as_deref())
    }

    /// The templates (directories, not `_shared`) this save writes into.
    pub fn changed_templates(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .changes
            .iter()
            .filter_map(|(id, content)| match id {
                FileId::Template { dir, .. } if dir != crate::templates::SHARED => {
                    content.as_ref().map(|_| dir.as_str())
                }
                _ => None,
            })
            .collect();
        names.dedup();
        names
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Writes (or with `None` removes) one staged file.
fn put(path: &Path, content: Option<&str>) -> anyhow::Result<()> {
    match content {
        Some(text) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
        }
        None => match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("cannot remove {}", path.display()))
            }
            _ => Ok(()),
        },
    }
}

/// Copies a templates directory: its sub-directories' regular files, one level deep, as the
/// template loader reads them.
fn copy_templates(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?
    {
        let sub = entry?.path();
        if !sub.is_dir() {
            continue;
        }
        let Some(name) = sub.file_name() else {
            continue;
        };
        let target = to.join(name);
        std::fs::create_dir_all(&target)
            .with_context(|| format!("cannot create {}", target.display()))?;
        for file in
            std::fs::read_dir(&sub).with_context(|| format!("cannot read {}", sub.display()))?
        {
            let path = file?.path();
            if let (true, Some(file_name)) = (path.is_file(), path.file_name()) {
                std::fs::copy(&path, target.join(file_name))
                    .with_context(|| format!("cannot copy {}", path.display()))?;
            }
        }
    }
    Ok(())
}
