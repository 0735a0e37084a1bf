//! The SQLite store: the only source of truth. One writer thread owns the write connection and
//! commits whatever is queued as one transaction (group commit: many hooks, one fsync); readers use
//! a small pool of their own connections. Every SQL statement of the service lives under this module,
//! behind async methods on [`Store`] that each run one transaction or one read.

pub mod alerts;
mod backup;
mod buyer_events;
mod claims;
pub mod clicks;
pub mod email_events;
mod erase;
pub mod event_info;
pub mod experiment;
pub mod history;
mod hooks;
pub mod link_tokens;
mod open_checkouts;
mod orders;
pub mod privacy;
pub mod problems;
pub mod readiness;
pub mod reminders;
pub mod report;
pub mod sending;
mod sends;
pub mod sessions;
mod setup;
pub mod stats;
pub mod timeline;
pub mod timing;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use rusqlite_migration::{M, Migrations};
use tokio::sync::{mpsc, oneshot};

pub use backup::BackupReport;
pub use hooks::{HookOutcome, IngestResult, ReplayReport};
pub use orders::{DeliveryRecord, OrderRecord, TicketRecord};

/// The migrations, in order; the schema version is their count.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_init.sql"),
    include_str!("../../migrations/0002_reminders.sql"),
    include_str!("../../migrations/0003_links.sql"),
    include_str!("../../migrations/0004_due_index.sql"),
    include_str!("../../migrations/0005_event_info.sql"),
    include_str!("../../migrations/0006_link_tokens.sql"),
    include_str!("../../migrations/0007_send_proof.sql"),
    include_str!("../../migrations/0008_delivery_problems.sql"),
    include_str!("../../migrations/0009_email_events.sql"),
    include_str!("../../migrations/0010_experiment.sql"),
    include_str!("../../migrations/0011_history.sql"),
    include_str!("../../migrations/0012_matched_email_events.sql"),
    include_str!("../../migrations/0013_send_started.sql"),
    include_str!("../../migrations/0014_alerts.sql"),
    include_str!("../../migrations/0015_suppression_removals.sql"),
    include_str!("../../migrations/0016_admin_sessions.sql"),
    include_str!("../../migrations/0017_timing_arms.sql"),
];

/// How long a connection waits for another process's lock (a CLI command beside `serve`).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Most jobs folded into one transaction.
const MAX_BATCH: usize = 1024;
/// Jobs that may wait for the writer before senders are made to wait too.
const QUEUE_DEPTH: usize = 8192;
/// Reads running at once (each on its own connection and blocking thread); more wait their turn,
/// so a flood of page views or health checks never opens an unbounded number of connections.
pub const READERS: usize = 8;

/// Errors a caller of the store must tell apart.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The transaction could not be committed (disk full, I/O error, locked): nothing was stored.
    #[error("the database could not store this: {0}")]
    Unavailable(String),
    /// The store has been shut down.
    #[error("the database is shutting down")]
    Closed,
    /// The work itself failed; it was rolled back, others in the same transaction were not affected.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl StoreError {
    /// Classifies a failed piece of work: the database being full, read-only, locked or failing
    /// I/O is "try again later", anything else is a failure of the work itself.
    fn from_work(e: anyhow::Error) -> StoreError {
        use rusqlite::ErrorCode::*;
        let transient = e.chain().any(|cause| {
            matches!(
                cause.downcast_ref::<rusqlite::Error>(),
                Some(rusqlite::Error::SqliteFailure(f, _))
                    if matches!(f.code, DiskFull | SystemIoFailure | DatabaseBusy | DatabaseLocked | ReadOnly | CannotOpen)
            )
        });
        if transient {
            StoreError::Unavailable(format!("{e:#}"))
        } else {
            StoreError::Failed(e)
        }
    }
}

type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;
/// A unit of work for the writer; given no connection, it only prepares its (failed) answer.
type Job = Box<dyn FnOnce(Option<&Connection>) -> Reply + Send>;

/// Handle to the database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    readers: Mutex<Vec<Connection>>,
    /// One permit per read running: at most [`READERS`] connections are ever open for reading.
    reading: tokio::sync::Semaphore,
    /// Reading connections opened since the store was opened.
    opened: std::sync::atomic::AtomicUsize,
}

impl Store {
    /// Opens (creating when missing) the database file, applies migrations and starts the writer.
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| {
                format!("cannot create the database directory {}", dir.display())
            })?;
        }
        let mut conn = open_connection(path)?;
        migrate(&mut conn, path)?;
        let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
        let writer_path = path.to_path_buf();
        let writer = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(conn, &writer_path, receiver))
            .context("cannot start the database writer thread")?;
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                sender: Mutex::new(Some(sender)),
                writer: Mutex::new(Some(writer)),
                readers: Mutex::new(Vec::new()),
                reading: tokio::sync::Semaphore::new(READERS),
                opened: std::sync::atomic::AtomicUsize::new(0),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `work` in the writer's next transaction and answers once that transaction is durable.
    /// `work` runs inside a savepoint: if it fails, only its own changes are rolled back. The
    /// service changes the database through the typed methods only; this stays public for the
    /// integration tests, which arrange what an older version left behind.
    pub async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> anyhow::Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T, StoreError>>();
        let job: Job = Box::new(move |conn: Option<&Connection>| {
            let result = match conn {
                Some(conn) => in_savepoint(conn, work),
                None => Err(anyhow::anyhow!("not run: no transaction could be started")),
            };
            Box::new(move |commit: Result<(), String>| {
                let answer = match commit {
                    Ok(()) => result.map_err(StoreError::from_work),
                    Err(reason) => Err(StoreError::Unavailable(reason)),
                };
                let _ = tx.send(answer);
            })
        });
        let sender = self
            .inner
            .sender
            .lock()
            .map_err(|_| StoreError::Closed)?
            .clone()
            .ok_or(StoreError::Closed)?;
        sender.send(job).await.map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs a read on a pooled connection off the async runtime. The service reads through the
    /// typed methods; this stays public for the integration tests, which look into tables.
    pub async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> anyhow::Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        let permit = self
            .inner
            .reading
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        let result = tokio::task::spawn_blocking(move || {
            let conn = match inner.readers.lock().ok().and_then(|mut pool| pool.pop()) {
                Some(conn) => conn,
                None => {
                    let conn = open_connection(&inner.path)
                        .map_err(|e| StoreError::Unavailable(format!("{e:#}")))?;
                    inner
                        .opened
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    conn
                }
            };
            let result = work(&conn);
            // Every permit's connection is kept, so the pool never opens more than READERS.
            if let Ok(mut pool) = inner.readers.lock() {
                pool.push(conn);
            }
            result.map_err(StoreError::Failed)
        })
        .await
        .map_err(|e| StoreError::Failed(anyhow::anyhow!("a database read panicked: {e}")));
        drop(permit);
        result?
    }

    /// Reading connections opened so far: never more than [`READERS`] while no read panics.
    pub fn reader_connections_opened(&self) -> usize {
        self.inner.opened.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops accepting writes, lets the writer commit what is queued, and waits for it.
    pub async fn close(&self) {
        let sender = self.inner.sender.lock().ok().and_then(|mut s| s.take());
        drop(sender);
        let handle = self.inner.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }

    /// A value from the `meta` table, creating it with `make` on first use (inside the writer, so
    /// two processes starting at once agree on one value).
    pub async fn meta_or_insert(
        &self,
        key: &'static str,
        make: impl FnOnce() -> String + Send + 'static,
    ) -> Result<String, StoreError> {
        self.write(move |conn| {
            let existing: Option<String> = conn
                .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()?;
            if let Some(value) = existing {
                return Ok(value);
            }
            let value = make();
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                (key, &value),
            )?;
            Ok(value)
        })
        .await
    }

    /// Moves every committed change into the database file and empties the write-ahead log, so
    /// that no earlier version of a deleted row stays in `-wal` (after `forget` and retention).
    /// Waits for readers of older snapshots, a few times the busy timeout at most.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        let path = self.inner.path.clone();
        tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
            let conn =
                open_connection(&path).map_err(|e| StoreError::Unavailable(format!("{e:#}")))?;
            for _ in 0..4 {
                let busy: i64 = conn
                    .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                if busy == 0 {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(StoreError::Unavailable(
                "the write-ahead log could not be emptied while another program kept reading \
                 the database; run the command again"
                    .into(),
            ))
        })
        .await
        .map_err(|e| StoreError::Failed(anyhow::anyhow!("the checkpoint panicked: {e}")))?
    }

    /// Whether the database can be written: a tiny write (the time, in `meta`) committed through
    /// the writer like any other. Fails when the file, its directory or its `-wal` is read-only,
    /// the disk is full or another program holds the lock.
    pub async fn probe_write(&self) -> Result<(), StoreError> {
        let now = timestamp(Utc::now());
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO meta (key, value) VALUES ('write_probe', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?
            .execute([now])?;
            Ok(())
        })
        .await
    }

    /// Whether the database answers a trivial query, and its schema version.
    pub async fn health(&self) -> Result<i64, StoreError> {
        self.read(|conn| {
            let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            Ok(version)
        })
        .await
    }
}

/// A time as stored: UTC, RFC 3339 with milliseconds, so that text order is time order.
pub fn timestamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Reads a stored event date (`YYYY-MM-DD HH:MM:SS`, local wall-clock time); `None` when it is
/// not one. The same as `NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")`, with the
/// format read once instead of once per row (a pass reads one per due buyer-event).
pub fn parse_event_date(text: &str) -> Option<chrono::NaiveDateTime> {
    use chrono::format::{Item, Parsed, StrftimeItems};
    static FORMAT: std::sync::LazyLock<Vec<Item<'static>>> = std::sync::LazyLock::new(|| {
        StrftimeItems::new(EVENT_DATE_FORMAT)
            .parse()
            .unwrap_or_default()
    });
    let mut parsed = Parsed::new();
    chrono::format::parse(&mut parsed, text, FORMAT.iter()).ok()?;
    parsed.to_naive_datetime_with_offset(0).ok()
}

/// How `orders.event_date` and `buyer_events.event_date` are stored.
pub const EVENT_DATE_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// Reads a stored time back.
pub fn parse_timestamp(text: &str) -> anyhow::Result<DateTime<Utc>> {
    Ok(DateTime::parse_from_rfc3339(text)
        .with_context(|| format!("stored time {text:?} is not RFC 3339"))?
        .with_timezone(&Utc))
}

fn open_connection(path: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open the database {}", path.display()))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(64);
    // WAL lets readers and CLI commands work beside the writer; FULL makes every commit we
    // acknowledge survive a power cut.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .with_context(|| format!("cannot use the database {}", path.display()))?;
    if !mode.eq_ignore_ascii_case("wal") {
        anyhow::bail!(
            "the database {} cannot use WAL journaling (got {mode}); put it on a local disk",
            path.display()
        );
    }
    // secure_delete: what forget and retention delete is overwritten in the file, not just
    // unlinked (every connection may delete, so every connection has it).
    conn.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;",
    )?;
    Ok(conn)
}

fn migrate(conn: &mut Connection, path: &Path) -> anyhow::Result<()> {
    let known = MIGRATIONS.len() as i64;
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > known {
        anyhow::bail!(
            "the database {} has schema version {current}, newer than this quicket-followup knows \
             ({known}); run the newer version that wrote it, or restore a backup made for this one",
            path.display()
        );
    }
    let migrations = Migrations::new(MIGRATIONS.iter().map(|sql| M::up(sql)).collect());
    migrations
        .to_latest(conn)
        .with_context(|| format!("cannot migrate the database {}", path.display()))?;
    Ok(())
}

fn in_savepoint<T>(
    conn: &Connection,
    work: impl FnOnce(&Connection) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    conn.prepare_cached("SAVEPOINT job")?.execute([])?;
    // A bug in one job must not take the writer thread, and every later write, down with it.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(conn)))
        .unwrap_or_else(|_| Err(anyhow::anyhow!("a database write panicked")));
    match outcome {
        Ok(value) => {
            conn.prepare_cached("RELEASE job")?.execute([])?;
            Ok(value)
        }
        Err(e) => {
            conn.execute_batch("ROLLBACK TO job; RELEASE job")?;
            Err(e)
        }
    }
}

/// Gathers queued jobs into one transaction, commits, then answers each job.
fn writer_loop(mut conn: Connection, path: &Path, mut receiver: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = receiver.blocking_recv() {
        reopen_if_read_only(&mut conn, path);
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (commit, replies) = run_batch(&conn, batch.drain(..));
        for reply in replies {
            reply(commit.clone());
        }
    }
}

/// SQLite opens a file it may not write read-only, and such a connection stays read-only after
/// the file becomes writable again: open it afresh, so that writes resume without a restart.
fn reopen_if_read_only(conn: &mut Connection, path: &Path) {
    if !conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
        return;
    }
    match open_connection(path) {
        Ok(fresh) if !fresh.is_readonly(rusqlite::MAIN_DB).unwrap_or(true) => {
            tracing::info!("the database {} can be written again", path.display());
            *conn = fresh;
        }
        Ok(_) => {}
        Err(e) => tracing::debug!("the database could not be opened again: {e:#}"),
    }
}

fn run_batch(
    conn: &Connection,
    jobs: impl Iterator<Item = Job>,
) -> (Result<(), String>, Vec<Reply>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        return (Err(e.to_string()), jobs.map(|job| job(None)).collect());
    }
    let replies: Vec<Reply> = jobs.map(|job| job(Some(conn))).collect();
    match conn.execute_batch("COMMIT") {
        Ok(()) => (Ok(()), replies),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            (Err(e.to_string()), replies)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_dates_read_as_parse_from_str_reads_them() {
        for text in [
            "2030-06-01 19:00:00",
            "2027-02-18 17:15:00",
            "2030-6-1 19:00:00",
            " 2030-06-01 19:00:00",
            "2030-06-01T19:00:00",
            "2030-06-01 19:00",
            "2030-02-30 19:00:00",
            "2030-06-01 19:00:00 extra",
            "",
        ] {
            assert_eq!(
                parse_event_date(text),
                chrono::NaiveDateTime::parse_from_str(text, EVENT_DATE_FORMAT).ok(),
                "{text:?}"
            );
        }
        assert!(parse_event_date("2030-06-01 19:00:00").is_some());
    }
}
