//! `backup FILE`: a consistent copy of the live database with SQLite's online backup API, safe
//! while `serve` writes.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rusqlite::Connection;
use rusqlite::backup::{Backup, StepResult};

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
    /// integrity. The copy is taken in one step inside one read transaction, so it is one
    /// consistent moment of the database: every write committed before it started is in it.
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
        let mut copy = Connection::open(&partial)
            .with_context(|| format!("cannot create {}", partial.display()))?;
        {
            let backup = Backup::new(source, &mut copy)?;
            // All pages in one step: the copy is a single snapshot, never a mix of two moments.
            loop {
                match backup.step(-1)? {
                    StepResult::Done => break,
                    // Another connection holds a lock for a moment; try again.
                    StepResult::Busy | StepResult::Locked | StepResult::More => {
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                    _ => std::thread::sleep(std::time::Duration::from_millis(50)),
                }
            }
        }
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
