//! Restoring from the history: putting back what each file of a change held before it. A restore
//! is a save like any other: checked against the files on disk, validated again, kept.

use super::{Change, FileId, Save, SaveError, Saved, Version, Workshop};

impl Workshop {
    /// The versions on disk now of the files of history entry `id` (in the entry's file order),
    /// to send back with a restore.
    pub async fn versions_of(&self, files: &[String]) -> Vec<Version> {
        let mut versions = Vec::with_capacity(files.len());
        for file in files {
            let version = match FileId::parse(file) {
                Some(id) => self
                    .read(&id)
                    .await
                    .map(|l| l.version)
                    .unwrap_or_else(|_| Version::absent()),
                None => Version::absent(),
            };
            versions.push(version);
        }
        versions
    }

    /// Puts back what the files of history entry `id` held before it; `versions` are the files'
    /// versions the page showed (a file changed since is a conflict, as for any save).
    pub async fn restore(
        &self,
        id: i64,
        versions: Vec<Version>,
        client: String,
    ) -> Result<Saved, SaveError> {
        let change = self
            .store
            .history_change(id)
            .await
            .map_err(|e| SaveError::Failed(e.into()))?
            .ok_or_else(|| {
                SaveError::NotEditable(format!("there is no change #{id} in the history"))
            })?;
        if versions.len() != change.files.len() {
            return Err(SaveError::NotEditable(
                "the page was made for another version of the history: open it again".into(),
            ));
        }
        let mut changes = Vec::new();
        for (file, loaded) in change.files.iter().zip(versions) {
            let id = FileId::parse(&file.file).ok_or_else(|| {
                SaveError::NotEditable(format!("{} is not a file this service edits", file.file))
            })?;
            changes.push(Change {
                file: id,
                loaded,
                content: file.previous.clone(),
            });
        }
        self.save(Save {
            changes,
            client,
            summary: format!("restored what was there before #{id} ({})", change.summary),
            validate: self.standard_validator(),
        })
        .await
    }
}
