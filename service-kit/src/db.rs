//! One SQLite file per service: migrations applied at start-up, one writer thread that
//! commits waiting writes together (group commit), and a pool of read-only connections whose
//! calls run in `spawn_blocking`.
//!
//! Group commit: every write is a closure sent to the writer thread. The thread takes every
//! write waiting, runs each in its own SAVEPOINT inside one `BEGIN IMMEDIATE` transaction (a
//! write that fails rolls back alone and gets its own error), commits once (one fsync for
//! the batch under `synchronous=FULL`), and only then answers each caller. An answered write
//! is therefore on disk exactly as it would be had it committed alone, and a write's events,
//! idempotency row or outbox row, written by its closure, commit with it. Why not a crate:
//! `tokio-rusqlite` runs closures on a connection's own thread but commits each alone; the
//! batching around the savepoints is the part that matters and is what is written here.

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;
use rusqlite_migration::Migrations;
use std::path::Path;
use std::time::Duration;

/// How hard a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=NORMAL`: in WAL mode a power cut may lose the last commits, never
    /// corrupt the file. Enough for products and carts.
    Normal,
    /// `synchronous=FULL`: a commit is on disk before it is acknowledged. For orders and
    /// payments, where an answered write must survive anything.
    Full,
}

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The parent folder could not be created.
    #[error("cannot create folder {path}: {source}")]
    Folder {
        /// The folder.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// SQLite refused the file or a pragma.
    #[error("cannot open database {path}: {source}")]
    Sqlite {
        /// The file.
        path: String,
        /// The cause.
        source: rusqlite::Error,
    },
    /// The file or its folder cannot be written (a read-only mount, say).
    #[error("cannot write database {path}: {source}")]
    NotWritable {
        /// The file.
        path: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A migration failed; nothing of it was applied.
    #[error("cannot migrate database {path}: {source}")]
    Migrate {
        /// The file.
        path: String,
        /// The cause.
        source: rusqlite_migration::Error,
    },
    /// The writer thread could not be started.
    #[error("cannot start the writer of database {path}: {source}")]
    Writer {
        /// The file.
        path: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The pool could not open its first connection.
    #[error("cannot open connection pool for {path}: {source}")]
    Pool {
        /// The file.
        path: String,
        /// The cause.
        source: r2d2::Error,
    },
}

/// Why the database did not do what was asked: never a business refusal (those are the
/// operations' own types, which carry this one for the rest).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The disk does not take writes (full, read-only, failing): an outage of storage, not
    /// a bug; the client may retry once it is fixed.
    #[error("cannot write the database: {0}")]
    Storage(String),
    /// No connection was free in time, the writer has stopped, or the database was busy.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else SQLite reported, or a write that panicked: a bug.
    #[error("database error: {0}")]
    Failed(String),
}

impl StoreError {
    /// A row this very transaction wrote or read is gone: only a bug or a broken file does
    /// that (`what vanished`).
    pub fn vanished(what: &str) -> Self {
        StoreError::Failed(format!("{what} vanished"))
    }
}

impl From<&rusqlite::Error> for StoreError {
    fn from(err: &rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match err.sqlite_error_code() {
            Some(
                ErrorCode::DiskFull
                | ErrorCode::ReadOnly
                | ErrorCode::CannotOpen
                | ErrorCode::SystemIoFailure,
            ) => StoreError::Storage(err.to_string()),
            Some(ErrorCode::DatabaseBusy) => {
                StoreError::Unavailable(format!("database busy: {err}"))
            }
            _ => StoreError::Failed(crate::logfmt::cause_chain(err)),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        StoreError::from(&err)
    }
}

impl From<r2d2::Error> for StoreError {
    fn from(err: r2d2::Error) -> Self {
        StoreError::Unavailable(format!("no database connection: {err}"))
    }
}

/// Why an operation's write was undone: the operation refused, for its own reason `R`, or
/// the database failed. A write closure returns `Err(Undone::Refused(..))` to roll back
/// what it wrote and say why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undone<R> {
    /// The operation's own refusal.
    Refused(R),
    /// The database's failure.
    Store(StoreError),
}

impl<R> From<StoreError> for Undone<R> {
    fn from(err: StoreError) -> Self {
        Undone::Store(err)
    }
}

impl<R> From<rusqlite::Error> for Undone<R> {
    fn from(err: rusqlite::Error) -> Self {
        Undone::Store(StoreError::from(err))
    }
}

impl<R: Send + 'static> StoreFailure for Undone<R> {
    fn storage_problem(&self) -> Option<String> {
        match self {
            Undone::Store(err) => err.storage_problem(),
            Undone::Refused(_) => None,
        }
    }
}

/// An error a database closure may end with: it can carry a [`StoreError`], and says when
/// it is a storage outage (which `/health` then reports until a write succeeds).
pub trait StoreFailure: From<StoreError> + Send + 'static {
    /// The storage outage this error reports, if it is one.
    fn storage_problem(&self) -> Option<String>;
}

impl StoreFailure for StoreError {
    fn storage_problem(&self) -> Option<String> {
        match self {
            StoreError::Storage(why) => Some(format!("cannot write the database: {why}")),
            _ => None,
        }
    }
}

/// One SQLite file: its writer thread and its pool of readers. Cheap to clone: one shared
/// count, as every request clones its service's state.
#[derive(Debug, Clone)]
pub struct Db {
    inner: std::sync::Arc<DbInner>,
}

#[derive(Debug)]
struct DbInner {
    /// Read-only connections (`query_only`), for [`Db::call`].
    pool: r2d2::Pool<SqliteConnectionManager>,
    /// The writer thread's queue, for [`Db::write`].
    writes: tokio::sync::mpsc::Sender<WriteJob>,
    /// Why the last write could not reach the disk, until a write succeeds again: what
    /// `/health` reports.
    storage_problem: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    /// The database file; `check_storage` writes a scratch file beside it.
    path: std::path::PathBuf,
}

/// A write on its way to the writer thread: run on the writer's connection inside a
/// savepoint, it says whether its work is to be kept and hands back its answer, which the
/// writer gives once the batch's commit has succeeded or failed.
/// Given the error instead of a connection, it does not run and answers with the error.
type WriteJob = Box<dyn FnOnce(Result<&Connection, &rusqlite::Error>) -> (bool, Answer) + Send>;
/// Answers a write's caller, given how its batch's commit went.
type Answer = Box<dyn FnOnce(Result<(), &rusqlite::Error>) + Send>;

/// Read-only connections per database: more than two cores keep busy, as reads by key run
/// on the request's own thread.
const READERS: u32 = 8;
/// The most writes one commit takes; the rest wait for the next.
const MAX_BATCH: usize = 256;
/// Writes waiting beyond this make their callers wait to send (back-pressure).
const QUEUE: usize = 4096;

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 128;

/// Connections wait this long for a writer's lock before giving up with SQLITE_BUSY.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

fn apply_pragmas(conn: &Connection, durability: Durability) -> rusqlite::Result<()> {
    let synchronous = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // A writer runs every statement of its service (inserts, events, idempotency keys,
    // the savepoints): more than rusqlite's 16 cached ones, which evicted one another and
    // were parsed again and again.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

impl Db {
    /// Opens (creating if needed) the file at `path` and its parent folder, applies the
    /// pending `migrations` in one transaction, and builds the pool.
    pub fn open(
        path: &Path,
        migrations: &Migrations<'static>,
        durability: Durability,
    ) -> Result<Db, OpenError> {
        let shown = path.display().to_string();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| OpenError::Folder {
                path: parent.display().to_string(),
                source,
            })?;
        }
        // The operating system is asked first whether the file can be written, as it says
        // why; SQLite says only "unable to open database file", and may even open such a
        // file, and begin a transaction on it, when its log is there from before. A file
        // that cannot be written is refused now rather than served with every write refused.
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .map_err(|source| OpenError::NotWritable {
                path: shown.clone(),
                source,
            })?;
        let sqlite_err = |source| OpenError::Sqlite {
            path: shown.clone(),
            source,
        };
        // The connection that migrates is the writer's.
        let mut writer = Connection::open(path).map_err(sqlite_err)?;
        apply_pragmas(&writer, durability).map_err(sqlite_err)?;
        crate::migrations::apply(&mut writer, migrations).map_err(|source| OpenError::Migrate {
            path: shown.clone(),
            source,
        })?;
        let (writes, queue) = tokio::sync::mpsc::channel(QUEUE);
        let name = path
            .file_name()
            .map_or_else(|| shown.clone(), |n| n.to_string_lossy().into());
        std::thread::Builder::new()
            .name(format!("writer {name}"))
            .spawn(move || run_writer(writer, queue))
            .map_err(|source| OpenError::Writer {
                path: shown.clone(),
                source,
            })?;

        let manager = SqliteConnectionManager::file(path).with_init(move |conn| {
            apply_pragmas(conn, durability)?;
            // Readers only: every write goes through the writer thread.
            conn.pragma_update(None, "query_only", "ON")?;
            // Each connection keeps its own page cache: 1 MiB each keeps a service's
            // readers within READERS MiB however large its file grows.
            conn.pragma_update(None, "cache_size", -1024)
        });
        let pool = r2d2::Pool::builder()
            .max_size(READERS)
            // Under a burst, requests queue for a connection rather than fail.
            .connection_timeout(Duration::from_secs(30))
            .build(manager)
            .map_err(|source| OpenError::Pool {
                path: shown,
                source,
            })?;
        let inner = DbInner {
            pool,
            writes,
            storage_problem: Default::default(),
            path: path.to_path_buf(),
        };
        Ok(Db {
            inner: std::sync::Arc::new(inner),
        })
    }

    /// Runs `f` with a pooled read-only connection on the blocking thread pool; `f` may end
    /// with an error of its own type (one that can carry a [`StoreError`]).
    pub async fn call_with<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let pool = self.inner.pool.clone();
        crate::context::spawn_blocking(move || {
            let mut conn = pool.get().map_err(StoreError::from)?;
            f(&mut conn)
        })
        .await
        .map_err(|err| StoreError::Failed(format!("a database read panicked: {err}")))?
    }

    /// Runs a short read (a row or two by key) on the calling thread when a connection is
    /// free at once, and as [`Db::call`] otherwise. Such a read takes a few microseconds
    /// from SQLite's cache; handing it to the blocking pool and back costs more than that,
    /// in two thread switches. Lists and scans use [`Db::call`].
    pub async fn read_with<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        match self.inner.pool.try_get() {
            Some(mut conn) => f(&mut conn),
            None => self.call_with(f).await,
        }
    }

    /// Runs `f` on the writer thread inside its own savepoint of the next batch, and answers
    /// once that batch is committed: `Ok` only when `f` returned `Ok` and the commit is on
    /// disk. `f` returning `Err` undoes what it wrote and nothing else.
    pub async fn write_with<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: StoreFailure,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        // The write runs on the writer thread, inside the caller's span and with its
        // correlation id, so its log lines and the events it records belong to the request.
        let carried = crate::context::Carried::here();
        let job: WriteJob = Box::new(move |conn| {
            let outcome = match conn {
                Ok(conn) => carried.run(|| f(conn)),
                Err(err) => Err(E::from(StoreError::from(err))),
            };
            let keep = outcome.is_ok();
            let answer: Answer = Box::new(move |committed| {
                let _ = answer.send(match (outcome, committed) {
                    (Ok(value), Ok(())) => Ok(value),
                    (Ok(_), Err(err)) => Err(E::from(StoreError::from(err))),
                    (Err(refused), _) => Err(refused),
                });
            });
            (keep, answer)
        });
        let outcome = match self.inner.writes.send(job).await {
            // The writer drops a job's answer unsent only when the job panicked.
            Ok(()) => answered.await.unwrap_or_else(|_| {
                Err(E::from(StoreError::Failed(
                    "a database write panicked".into(),
                )))
            }),
            Err(_) => Err(E::from(StoreError::Unavailable(
                "the database writer has stopped".into(),
            ))),
        };
        let mut problem = self
            .inner
            .storage_problem
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &outcome {
            Ok(_) => *problem = None,
            Err(err) => {
                if let Some(why) = err.storage_problem() {
                    *problem = Some(why);
                }
            }
        }
        outcome
    }

    /// [`Db::call_with`] for a read that can only fail as the database does.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.call_with(f).await
    }

    /// [`Db::read_with`] for a read that can only fail as the database does.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.read_with(f).await
    }

    /// [`Db::write_with`] for a write that can only fail as the database does (a refusal
    /// decided before anything is written can be its `Ok` value).
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.write_with(f).await
    }

    /// Folds the write-ahead log into the database file (`wal_checkpoint(TRUNCATE)`), so a
    /// stopped service leaves all of its data in its one file, whose copy is then a whole
    /// backup. For after the server and its workers have stopped: the writer thread, idle
    /// by then, is not waited for, and the process may end before it closes its connection.
    pub async fn close(&self) {
        let path = self.inner.path.clone();
        let folded = tokio::task::spawn_blocking(move || {
            let conn = Connection::open(&path)?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        })
        .await;
        if let Ok(Err(err)) = folded {
            tracing::warn!(error = %err, "the write-ahead log was not folded into the database at exit");
        }
    }

    /// Why the last write could not reach the disk, if it could not (cleared by the next
    /// write that does).
    pub fn storage_problem(&self) -> Option<String> {
        self.inner
            .storage_problem
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// [`Db::storage_problem`], but when there is one, first looks whether the disk takes
    /// writes again (a scratch file beside the database, written, synced and removed) and
    /// clears it if so. `/health` calls this: a load balancer that stops sending traffic to
    /// an unhealthy service would otherwise never send the write that clears it.
    pub async fn check_storage(&self) -> Option<String> {
        self.storage_problem()?;
        let scratch = self.inner.path.with_extension("storage-check");
        let writable = tokio::task::spawn_blocking(move || disk_takes_writes(&scratch))
            .await
            .is_ok_and(|outcome| outcome.is_ok());
        let mut problem = self
            .inner
            .storage_problem
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if writable {
            *problem = None;
        }
        problem.clone()
    }
}

/// The writer thread: batches whatever writes are waiting until every sender is gone.
fn run_writer(conn: Connection, mut queue: tokio::sync::mpsc::Receiver<WriteJob>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.blocking_recv_many(&mut batch, MAX_BATCH) > 0 {
        commit_batch(&conn, batch.drain(..));
    }
}

/// Runs `jobs` in one transaction, each in a savepoint, commits, then answers them all.
/// Should SQLite roll the whole transaction back under a job (it does on a full disk or an
/// I/O error), the jobs before it lose their work too: they are answered with that error,
/// and the jobs after it start a new transaction.
fn commit_batch(conn: &Connection, jobs: impl Iterator<Item = WriteJob>) {
    let mut pending: Vec<Answer> = Vec::new();
    for job in jobs {
        let begun = if conn.is_autocommit() {
            statements(conn, &["BEGIN IMMEDIATE", "SAVEPOINT write"])
        } else {
            statements(conn, &["SAVEPOINT write"])
        };
        if let Err(err) = begun {
            let (_, answer) = job(Err(&err));
            answer(Err(&err));
            abandon(conn, &mut pending, &err);
            continue;
        }
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(Ok(conn))));
        let Ok((keep, answer)) = ran else {
            // The panic dropped the job's answer, which tells its caller; its work is undone.
            if statements(conn, UNDO_WRITE).is_err() {
                abandon(conn, &mut pending, &rolled_back());
            }
            continue;
        };
        let closed = match keep {
            true => statements(conn, &["RELEASE write"]),
            false => statements(conn, UNDO_WRITE),
        };
        match closed {
            Ok(()) if !conn.is_autocommit() => pending.push(answer),
            // SQLite rolled the whole transaction back under this job.
            closed => {
                let err = closed.err().unwrap_or_else(rolled_back);
                answer(Err(&err));
                abandon(conn, &mut pending, &err);
            }
        }
    }
    if conn.is_autocommit() {
        return;
    }
    let committed = statements(conn, &["COMMIT"]);
    if committed.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    for answer in pending {
        answer(committed.as_ref().map(|_| ()));
    }
}

/// Undoes one write of a batch, leaving the others.
const UNDO_WRITE: &[&str] = &["ROLLBACK TO write", "RELEASE write"];

/// Runs each of `sql` in turn from the connection's statement cache: the writer runs these
/// for every write, and need not parse them every time.
fn statements(conn: &Connection, sql: &[&str]) -> rusqlite::Result<()> {
    for statement in sql {
        conn.prepare_cached(statement)?.execute([])?;
    }
    Ok(())
}

/// The batch so far is lost: each of its writes is answered with `err`.
fn abandon(conn: &Connection, pending: &mut Vec<Answer>, err: &rusqlite::Error) {
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    for answer in pending.drain(..) {
        answer(Err(err));
    }
}

/// What a write that SQLite rolled back without an error of its own is told.
fn rolled_back() -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
        Some("the transaction was rolled back".into()),
    )
}

/// The size of the scratch write: a few SQLite pages, so a disk with room for it has room
/// for a commit.
const STORAGE_CHECK_BYTES: usize = 64 * 1024;

fn disk_takes_writes(scratch: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let outcome = std::fs::File::create(scratch).and_then(|mut file| {
        file.write_all(&[0u8; STORAGE_CHECK_BYTES])?;
        file.sync_all()
    });
    let _ = std::fs::remove_file(scratch);
    outcome
}

/// A list query's filter parameters followed by a page's limit and offset (`window`, from
/// [`crate::domain::Page::window`]): the parameters of the query that reads one page, when
/// the query that counts the whole list takes the filters alone.
pub fn with_page<'a>(
    filters: &[&'a dyn rusqlite::ToSql],
    window: &'a (u32, u32),
) -> Vec<&'a dyn rusqlite::ToSql> {
    let mut all = filters.to_vec();
    all.push(&window.0);
    all.push(&window.1);
    all
}

/// `%text%` for `LIKE ?1 ESCAPE '\'`: rows containing `text`, its `%`, `_` and `\` taken
/// literally rather than as wildcards.
pub fn contains_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite_migration::M;

    fn migrations() -> Migrations<'static> {
        Migrations::new(vec![M::up(
            "CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER NOT NULL);",
        )])
    }

    /// Every value in table `t`, in order.
    async fn values(db: &Db) -> Vec<i64> {
        db.call(|conn| {
            let mut rows = conn.prepare("SELECT v FROM t ORDER BY v")?;
            let values = rows
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(values)
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn opens_a_new_file_in_a_new_folder_with_wal_and_durable_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/shop.db");
        let db = Db::open(&path, &migrations(), Durability::Full).unwrap();
        let (journal, sync, fk): (String, i64, i64) = db
            .call(|conn| {
                let journal = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
                let sync = conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
                let fk = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
                Ok((journal, sync, fk))
            })
            .await
            .unwrap();
        assert_eq!(journal, "wal");
        assert_eq!(sync, 2, "FULL is 2");
        assert_eq!(fk, 1);
    }

    #[tokio::test]
    async fn a_failed_write_commits_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db"), &migrations(), Durability::Normal).unwrap();
        let result: Result<(), StoreError> = db
            .write(|tx| {
                tx.execute("INSERT INTO t(v) VALUES (1)", [])?;
                Err(StoreError::Failed("stop".into()))
            })
            .await;
        assert!(result.is_err());
        let count: i64 = db
            .call(|conn| Ok(conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(count, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writes_share_commits_and_a_failing_one_rolls_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db"), &migrations(), Durability::Full).unwrap();
        let writes: Vec<_> = (0..300)
            .map(|v: i64| {
                let db = db.clone();
                tokio::spawn(async move {
                    db.write(move |tx| {
                        tx.execute("INSERT INTO t(v) VALUES (?1)", [v])?;
                        match v % 3 {
                            0 => Err(StoreError::Failed(format!("refused {v}"))),
                            _ => Ok(tx.last_insert_rowid()),
                        }
                    })
                    .await
                })
            })
            .collect();
        for (v, write) in writes.into_iter().enumerate() {
            match write.await.unwrap() {
                Err(StoreError::Failed(why)) => assert_eq!(why, format!("refused {v}")),
                Ok(row) => assert!(row > 0),
                other => panic!("{v}: {other:?}"),
            }
        }
        let kept = values(&db).await;
        let expected: Vec<i64> = (0..300).filter(|v| v % 3 != 0).collect();
        assert_eq!(kept, expected, "every kept write and no refused one");
    }

    #[tokio::test]
    async fn a_write_that_panics_is_an_internal_error_and_the_next_write_commits() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db"), &migrations(), Durability::Normal).unwrap();
        let panicked: Result<(), StoreError> = db
            .write(|tx| {
                tx.execute("INSERT INTO t(v) VALUES (1)", [])?;
                panic!("a bug in a write");
            })
            .await;
        assert!(
            matches!(panicked, Err(StoreError::Failed(_))),
            "{panicked:?}"
        );
        db.write(|tx| Ok(tx.execute("INSERT INTO t(v) VALUES (2)", [])?))
            .await
            .unwrap();
        assert_eq!(values(&db).await, [2], "the panicking write left nothing");
    }

    #[tokio::test]
    async fn closing_folds_the_log_into_the_database_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let db = Db::open(&path, &migrations(), Durability::Full).unwrap();
        db.write(|tx| Ok(tx.execute("INSERT INTO t(v) VALUES (7)", [])?))
            .await
            .unwrap();
        let log = dir.path().join("t.db-wal");
        assert!(
            std::fs::metadata(&log).unwrap().len() > 0,
            "the write is in the log"
        );
        db.close().await;
        assert_eq!(
            std::fs::metadata(&log).map_or(0, |m| m.len()),
            0,
            "log emptied"
        );
        // The file alone, copied elsewhere, has the write.
        let copy = dir.path().join("copy.db");
        std::fs::copy(&path, &copy).unwrap();
        let v: i64 = Connection::open(&copy)
            .unwrap()
            .query_row("SELECT v FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 7);
    }

    #[tokio::test]
    async fn a_write_runs_with_the_callers_correlation_id_on_the_writer_thread() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db"), &migrations(), Durability::Normal).unwrap();
        let caller = std::thread::current().id();
        let seen = crate::context::with_correlation_id(
            Some("journey-7".to_string()),
            db.write(|_| {
                Ok((
                    crate::context::correlation_id(),
                    std::thread::current().id(),
                ))
            }),
        )
        .await
        .unwrap();
        assert_eq!(seen.0.as_deref(), Some("journey-7"));
        assert_ne!(seen.1, caller, "it ran on the writer thread");
        let without: Result<_, StoreError> =
            db.write(|_| Ok(crate::context::correlation_id())).await;
        assert_eq!(
            without.unwrap(),
            None,
            "nothing leaks from the write before"
        );
    }

    #[tokio::test]
    async fn reads_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db"), &migrations(), Durability::Normal).unwrap();
        let written = db
            .call(|conn| Ok(conn.execute("INSERT INTO t(v) VALUES (1)", [])?))
            .await;
        assert!(written.is_err(), "{written:?}");
    }

    #[tokio::test]
    async fn reopening_applies_no_migration_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        drop(Db::open(&path, &migrations(), Durability::Normal).unwrap());
        let db = Db::open(&path, &migrations(), Durability::Normal).unwrap();
        let version: i64 = db
            .call(|conn| Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(version, 1);
    }

    #[tokio::test]
    async fn a_storage_problem_clears_once_the_disk_takes_writes_again() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db"), &migrations(), Durability::Normal).unwrap();
        assert_eq!(db.check_storage().await, None);

        let problem = || Some("cannot write the database: disk full".to_string());
        *db.inner.storage_problem.lock().unwrap() = problem();
        let unwritable = Db {
            inner: std::sync::Arc::new(DbInner {
                pool: db.inner.pool.clone(),
                writes: db.inner.writes.clone(),
                storage_problem: db.inner.storage_problem.clone(),
                path: dir.path().join("gone/t.db"),
            }),
        };
        assert_eq!(
            unwritable.check_storage().await,
            problem(),
            "no folder: still failing"
        );
        assert_eq!(
            db.check_storage().await,
            None,
            "the disk takes writes: cleared"
        );
        assert_eq!(db.storage_problem(), None);
        assert!(
            !dir.path().join("t.storage-check").exists(),
            "scratch file removed"
        );
    }

    #[tokio::test]
    async fn a_database_that_refuses_writes_is_a_storage_outage_until_the_disk_takes_them() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db"), &migrations(), Durability::Normal).unwrap();
        // query_only makes SQLite answer SQLITE_READONLY, as a read-only file does.
        let refused = db
            .write(|tx| {
                tx.pragma_update(None, "query_only", "ON")?;
                let outcome = tx.execute("INSERT INTO t(v) VALUES (1)", []);
                tx.pragma_update(None, "query_only", "OFF")?;
                outcome?;
                Ok(())
            })
            .await;
        assert!(
            matches!(refused, Err(StoreError::Storage(_))),
            "{refused:?}"
        );
        assert!(db.storage_problem().is_some(), "reported to /health");
        assert_eq!(db.check_storage().await, None, "the disk takes writes");
    }
}
