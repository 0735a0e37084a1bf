//! `backup FILE`: a consistent copy of the live database with `VACUUM INTO`, safe while `serve`
//! writes. The copy is built afresh from the live rows, so it holds nothing deleted before it was
//! taken (no free pages, no old versions: what `forget` removed is not in it).

use std::path::{Path, PathBuf};

use anyhow::Context;
use rusqlite::Connection;

use super::{Store, StoreError};

/// What a backup wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// The file written.
    pub path: PathBuf,
    /// Its size in pages.
    pub pages: i64,
}

impl Store {
    /// Copies the database to `target` (replacing it atomically), then checks the copy's
    /// integrity. The copy is made inside one read transaction, so it is one consistent moment
    /// of the database: every write committed before it started is in it, and nothing deleted.
    pub async fn backup(&self, target: &Path) -> Result<BackupReport, StoreError> {
        let target = target.to_path_buf();
        self.read(move |conn| backup(conn, &target)).await
    }
}

fn backup(source: &Connection, target: &Path) -> anyhow::Result<BackupReport> {
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    }
    let mut partial = target.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let _ = std::fs::remove_file(&partial);
    let result = (|| -> anyhow::Result<i64> {
        let name = partial
            .to_str()
            .with_context(|| format!("{} is not a UTF-8 path", partial.display()))?;
        // One read transaction: the copy is a single moment of the database.
        source
            .execute("VACUUM INTO ?1", [name])
            .with_context(|| format!("cannot write {}", partial.display()))?;
        let copy = Connection::open(&partial)
            .with_context(|| format!("cannot open {}", partial.display()))?;
        // A backup is a single file: no WAL next to it.
        copy.execute_batch("PRAGMA journal_mode = DELETE")?;
        let check: String = copy.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        anyhow::ensure!(
            check == "ok",
            "the copy failed its integrity check: {check}"
        );
        let pages: i64 = copy.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        Ok(pages)
    })();
    match result {
        Ok(pages) => {
            std::fs::rename(&partial, target)
                .with_context(|| format!("cannot write {}", target.display()))?;
            Ok(BackupReport {
                path: target.to_path_buf(),
                pages,
            })
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}
