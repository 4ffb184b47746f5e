//! One SQLite file per service: a pooled connection set with the pragmas set once per
//! connection, migrations applied at start-up, and every call run in `spawn_blocking`.

use crate::ApiError;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, Transaction, TransactionBehavior};
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
    /// The pool could not open its first connection.
    #[error("cannot open connection pool for {path}: {source}")]
    Pool {
        /// The file.
        path: String,
        /// The cause.
        source: r2d2::Error,
    },
}

/// A pool of connections to one SQLite file. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Db {
    pool: r2d2::Pool<SqliteConnectionManager>,
    /// Writers take turns here before `BEGIN IMMEDIATE`. SQLite lets one writer in at a
    /// time anyway, and a writer that finds the lock taken sleeps in growing steps (up to
    /// 100 ms) before trying again; queueing in-process instead keeps a burst of writes from
    /// turning into a burst of sleeps.
    write_turn: std::sync::Arc<std::sync::Mutex<()>>,
    /// Why the last write could not reach the disk, until a write succeeds again: what
    /// `/health` reports.
    storage_problem: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    /// The database file; `check_storage` writes a scratch file beside it.
    path: std::sync::Arc<std::path::PathBuf>,
}

/// Connections wait this long for a writer's lock before giving up with SQLITE_BUSY.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

fn apply_pragmas(conn: &Connection, durability: Durability) -> rusqlite::Result<()> {
    let synchronous = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.busy_timeout(BUSY_TIMEOUT)?;
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
        // SQLite says only "unable to open database file" when the file cannot be written;
        // the operating system says why.
        let sqlite_err = |source| match std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
        {
            Err(io) => OpenError::NotWritable {
                path: shown.clone(),
                source: io,
            },
            Ok(_) => OpenError::Sqlite {
                path: shown.clone(),
                source,
            },
        };
        let mut conn = Connection::open(path).map_err(sqlite_err)?;
        apply_pragmas(&conn, durability).map_err(sqlite_err)?;
        crate::migrations::apply(&mut conn, migrations).map_err(|source| OpenError::Migrate {
            path: shown.clone(),
            source,
        })?;
        drop(conn);

        let manager = SqliteConnectionManager::file(path)
            .with_init(move |conn| apply_pragmas(conn, durability));
        let pool = r2d2::Pool::builder()
            .max_size(16)
            // Under a burst, requests queue for a connection rather than fail.
            .connection_timeout(Duration::from_secs(30))
            .build(manager)
            .map_err(|source| OpenError::Pool {
                path: shown,
                source,
            })?;
        Ok(Db {
            pool,
            write_turn: Default::default(),
            storage_problem: Default::default(),
            path: std::sync::Arc::new(path.to_path_buf()),
        })
    }

    /// Runs `f` with a pooled connection on the blocking thread pool.
    pub async fn call<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut Connection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        crate::http::spawn_blocking(move || {
            let mut conn = pool.get()?;
            f(&mut conn)
        })
        .await
        .map_err(ApiError::internal)?
    }

    /// Runs `f` inside a `BEGIN IMMEDIATE` transaction, committing when it returns `Ok`.
    /// Taking the write lock up front makes concurrent writers queue on `busy_timeout`
    /// instead of failing half-way with SQLITE_BUSY.
    pub async fn write<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&Transaction) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let turn = self.write_turn.clone();
        let outcome = self
            .call(move |conn| {
                // A poisoned lock only means another writer panicked; the database is intact.
                let _turn = turn
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let value = f(&tx)?;
                tx.commit()?;
                Ok(value)
            })
            .await;
        let mut problem = self
            .storage_problem
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &outcome {
            Err(ApiError::Storage(why)) => *problem = Some(why.clone()),
            Ok(_) => *problem = None,
            Err(_) => {}
        }
        outcome
    }

    /// Why the last write could not reach the disk, if it could not (cleared by the next
    /// write that does).
    pub fn storage_problem(&self) -> Option<String> {
        self.storage_problem
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
        let scratch = self.path.with_extension("storage-check");
        let writable = tokio::task::spawn_blocking(move || disk_takes_writes(&scratch))
            .await
            .is_ok_and(|outcome| outcome.is_ok());
        let mut problem = self
            .storage_problem
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if writable {
            *problem = None;
        }
        problem.clone()
    }
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
        let result: Result<(), ApiError> = db
            .write(|tx| {
                tx.execute("INSERT INTO t(v) VALUES (1)", [])?;
                Err(ApiError::Conflict("stop".into()))
            })
            .await;
        assert!(result.is_err());
        let count: i64 = db
            .call(|conn| Ok(conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(count, 0);
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
        *db.storage_problem.lock().unwrap() = problem();
        let unwritable = Db {
            path: std::sync::Arc::new(dir.path().join("gone/t.db")),
            ..db.clone()
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
        assert!(matches!(refused, Err(ApiError::Storage(_))), "{refused:?}");
        assert!(db.storage_problem().is_some(), "reported to /health");
        assert_eq!(db.check_storage().await, None, "the disk takes writes");
    }
}
