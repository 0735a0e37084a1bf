//! The workshop's history: every change to an editable file with its content before and after,
//! who made it (a browser's address, or "on disk"), when, and a one-line summary. No buyer data is
//! in it, so `forget` and retention never touch it; `backup` copies it with every other table.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, StoreError, parse_timestamp, timestamp};

/// How a change reached the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Saved from the browser (the editor, or a restore).
    Browser,
    /// Made by hand on disk, noticed by a reload.
    File,
}

impl Via {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Browser => "browser",
            Via::File => "file",
        }
    }

    fn parse(text: &str) -> Via {
        match text {
            "browser" => Via::Browser,
            _ => Via::File,
        }
    }
}

/// One file of a change: its content before and after (`None`: there was no such file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// The file as the history names it, e.g. `templates/abandoned/subject.txt`.
    pub file: String,
    /// The content before the change.
    pub previous: Option<String>,
    /// The content after the change.
    pub content: Option<String>,
}

/// A change to record.
#[derive(Debug, Clone)]
pub struct NewChange {
    /// When it was made (or noticed).
    pub at: DateTime<Utc>,
    /// From the browser or on disk.
    pub via: Via,
    /// The browser's address; empty for a change on disk.
    pub client: String,
    /// One line saying what changed.
    pub summary: String,
    /// The files.
    pub files: Vec<FileChange>,
}

/// A recorded change.
#[derive(Debug, Clone)]
pub struct Change {
    /// Its number (grows with time).
    pub id: i64,
    /// When it was made (or noticed).
    pub at: DateTime<Utc>,
    /// From the browser or on disk.
    pub via: Via,
    /// The browser's address; empty for a change on disk.
    pub client: String,
    /// One line saying what changed.
    pub summary: String,
    /// The files, by name.
    pub files: Vec<FileChange>,
}

/// The longest summary kept (a summary is one line).
const MAX_SUMMARY: usize = 200;

impl Store {
    /// Records a change and remembers each file's new content as the last known one.
    pub async fn record_change(&self, change: NewChange) -> Result<i64, StoreError> {
        self.write(move |conn| insert_change(conn, &change)).await
    }

    /// Compares the editable files as they are now (`observed`: name and content, `None` when
    /// absent) with the content last known of each. A file never seen before is only remembered;
    /// the files that differ are recorded as one change made on disk, summarised by `summary`
    /// and their names.
    /// Known files whose name starts with one of `roots` and that are not in `observed` count as
    /// deleted. Answers the change recorded, if any.
    pub async fn notice_files(
        &self,
        at: DateTime<Utc>,
        observed: Vec<(String, Option<String>)>,
        roots: Vec<String>,
        summary: String,
    ) -> Result<Option<i64>, StoreError> {
        self.write(move |conn| {
            let mut known = conn.prepare_cached("SELECT file, content FROM history_seen")?;
            let known: Vec<(String, Option<String>)> = known
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let mut files = Vec::new();
            let mut first_seen = Vec::new();
            for (file, content) in &observed {
                match known.iter().find(|(k, _)| k == file) {
                    None => first_seen.push((file.clone(), content.clone())),
                    Some((_, before)) if before != content => files.push(FileChange {
                        file: file.clone(),
                        previous: before.clone(),
                        content: content.clone(),
                    }),
                    Some(_) => {}
                }
            }
            for (file, before) in &known {
                let in_scope = roots.iter().any(|r| file.starts_with(r.as_str()));
                if in_scope && before.is_some() && !observed.iter().any(|(o, _)| o == file) {
                    files.push(FileChange {
                        file: file.clone(),
                        previous: before.clone(),
                        content: None,
                    });
                }
            }
            for (file, content) in first_seen {
                remember(conn, &file, content.as_deref(), at)?;
            }
            if files.is_empty() {
                return Ok(None);
            }
            let names: Vec<&str> = files.iter().map(|f| f.file.as_str()).collect();
            let change = NewChange {
                at,
                via: Via::File,
                client: String::new(),
                summary: format!("{summary}: {}", names.join(", ")),
                files,
            };
            insert_change(conn, &change).map(Some)
        })
        .await
    }

    /// The latest changes, newest first.
    pub async fn history(&self, limit: usize) -> Result<Vec<Change>, StoreError> {
        self.read(move |conn| {
            let mut ids =
                conn.prepare_cached("SELECT id FROM history ORDER BY id DESC LIMIT ?1")?;
            let ids: Vec<i64> = ids
                .query_map([limit as i64], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let mut changes = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(change) = load_change(conn, id)? {
                    changes.push(change);
                }
            }
            Ok(changes)
        })
        .await
    }

    /// One change.
    pub async fn history_change(&self, id: i64) -> Result<Option<Change>, StoreError> {
        self.read(move |conn| load_change(conn, id)).await
    }
}

fn insert_change(conn: &Connection, change: &NewChange) -> anyhow::Result<i64> {
    let mut summary = crate::domain::clean_text(&change.summary);
    if summary.chars().count() > MAX_SUMMARY {
        summary = summary.chars().take(MAX_SUMMARY - 1).collect::<String>() + "…";
    }
    let id: i64 = conn.query_row(
        "INSERT INTO history (at, via, client, summary) VALUES (?1, ?2, ?3, ?4) RETURNING id",
        params![
            timestamp(change.at),
            change.via.as_str(),
            change.client,
            summary
        ],
        |r| r.get(0),
    )?;
    for file in &change.files {
        conn.prepare_cached(
            "INSERT INTO history_files (change, file, previous, content) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![id, file.file, file.previous, file.content])?;
        remember(conn, &file.file, file.content.as_deref(), change.at)?;
    }
    Ok(id)
}

fn remember(
    conn: &Connection,
    file: &str,
    content: Option<&str>,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    conn.prepare_cached(
        "INSERT INTO history_seen (file, content, seen_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (file) DO UPDATE SET content = excluded.content, seen_at = excluded.seen_at",
    )?
    .execute(params![file, content, timestamp(at)])?;
    Ok(())
}

fn load_change(conn: &Connection, id: i64) -> anyhow::Result<Option<Change>> {
    let head = conn
        .prepare_cached("SELECT at, via, client, summary FROM history WHERE id = ?1")?
        .query_row([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .optional()?;
    let Some((at, via, client, summary)) = head else {
        return Ok(None);
    };
    let mut files = conn.prepare_cached(
        "SELECT file, previous, content FROM history_files WHERE change = ?1 ORDER BY file",
    )?;
    let files: Vec<FileChange> = files
        .query_map([id], |r| {
            Ok(FileChange {
                file: r.get(0)?,
                previous: r.get(1)?,
                content: r.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(Some(Change {
        id,
        at: parse_timestamp(&at)?,
        via: Via::parse(&via),
        client,
        summary,
        files,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn changes_are_kept_and_hand_edits_noticed_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.sqlite")).unwrap();
        let now = Utc::now();
        let file = "templates/abandoned/subject.txt".to_string();
        // First sight: remembered, nothing recorded.
        let seen = store
            .notice_files(
                now,
                vec![(file.clone(), Some("Hi".into()))],
                vec!["templates/".into()],
                "changed on disk".into(),
            )
            .await
            .unwrap();
        assert_eq!(seen, None);
        let id = store
            .record_change(NewChange {
                at: now,
                via: Via::Browser,
                client: "127.0.0.1".into(),
                summary: "subject\nchanged".into(),
                files: vec![FileChange {
                    file: file.clone(),
                    previous: Some("Hi".into()),
                    content: Some("Hello".into()),
                }],
            })
            .await
            .unwrap();
        // The saved content is the known one: no hand edit.
        let observed = vec![(file.clone(), Some("Hello".into()))];
        let roots = vec!["templates/".to_string()];
        let none = store
            .notice_files(now, observed, roots.clone(), "x".into())
            .await
            .unwrap();
        assert_eq!(none, None);
        // Changed by hand, and another file deleted by hand: one change on disk, once.
        let hand = vec![(file.clone(), Some("Hey".into()))];
        let noticed = store
            .notice_files(now, hand.clone(), roots.clone(), "changed on disk".into())
            .await
            .unwrap()
            .unwrap();
        assert!(noticed > id);
        let again = store
            .notice_files(now, hand, roots, "changed on disk".into())
            .await
            .unwrap();
        assert_eq!(again, None);
        let history = store.history(10).await.unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[0].via, Via::File);
        assert_eq!(history[0].files[0].previous.as_deref(), Some("Hello"));
        assert_eq!(history[0].files[0].content.as_deref(), Some("Hey"));
        assert_eq!(history[1].summary, "subject changed", "one line");
        assert_eq!(history[1].client, "127.0.0.1");
        let one = store.history_change(id).await.unwrap().unwrap();
        assert_eq!(one.files[0].content.as_deref(), Some("Hello"));
        assert!(store.history_change(9999).await.unwrap().is_none());
        store.close().await;
    }
}
