//! The operator's tool for the shop's data: an online backup of the four databases and the
//! secrets as of one moment, its verification, and its restore.
//!
//! Copies taken one after another, each consistent by itself, do not restore into balanced
//! books: an order paid between the copy of `payments.db` and that of `orders.db` is in one
//! and not the other. Nor do read snapshots opened one after another, however quickly: a
//! reservation written between two of them belongs to an order the other never saw. So a
//! backup holds every database's write lock at once (`BEGIN IMMEDIATE`: the services' writers
//! wait, within their 10 s busy timeout, for the milliseconds it takes), opens a read
//! transaction on each while nothing can be written anywhere, lets the writers go, and only
//! then copies each database through SQLite's backup API from inside its snapshot (in WAL
//! mode a read transaction keeps reading the moment it began, whatever is written after).

use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// The shop's databases, by file name in the data dir, and the service that owns each.
pub const DATABASES: &[(&str, &str)] = &[
    ("products.db", "catalog-service"),
    ("carts.db", "cart-service"),
    ("orders.db", "order-service"),
    ("payments.db", "payment-service"),
];

/// The secret files `scripts/start-all.sh` keeps in the data dir, copied when present.
pub const SECRETS: &[&str] = &["webhook-secret", "session-secret", "peer-key"];

/// The manifest's file name inside a backup.
pub const MANIFEST: &str = "manifest.json";

/// What a backup holds, written beside its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// This layout's version.
    pub format: u32,
    /// When the snapshot was taken (UTC, RFC 3339).
    pub taken_at: String,
    /// The shopctl that took it.
    pub shopctl_version: String,
    pub databases: Vec<DatabaseEntry>,
    pub secrets: Vec<FileEntry>,
}

/// One database of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseEntry {
    pub file: String,
    pub service: String,
    /// How many of its service's migrations it has (`PRAGMA user_version`).
    pub schema_version: i64,
    pub bytes: u64,
    pub sha256: String,
}

/// One secret file of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub file: String,
    pub sha256: String,
}

/// Why a command did nothing (or stopped), in words for the operator.
#[derive(Debug)]
pub struct Refused(pub String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

fn refused(what: impl Into<String>) -> Refused {
    Refused(what.into())
}

fn io(context: &str, path: &Path) -> impl FnOnce(std::io::Error) -> Refused {
    let at = format!("{context} {}", path.display());
    move |err| refused(format!("{at}: {err}"))
}

fn sql(context: &str, path: &Path) -> impl FnOnce(rusqlite::Error) -> Refused {
    let at = format!("{context} {}", path.display());
    move |err| refused(format!("{at}: {err}"))
}

fn sha256_of(path: &Path) -> Result<String, Refused> {
    let bytes = fs::read(path).map_err(io("cannot read", path))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Takes an online backup of the shop in `data_dir` into the new directory `out`: every
/// database as of one moment, the secrets, and a manifest. Written under `out.partial`
/// first and renamed at the end, so a backup that stopped halfway is never taken for one.
pub fn backup(data_dir: &Path, out: &Path) -> Result<Manifest, Refused> {
    if out.exists() {
        return Err(refused(format!(
            "{} exists already: give a new directory for the backup",
            out.display()
        )));
    }
    let partial = out.with_extension("partial");
    if partial.exists() {
        fs::remove_dir_all(&partial).map_err(io("cannot remove the unfinished", &partial))?;
    }
    fs::create_dir_all(&partial).map_err(io("cannot create", &partial))?;
    restrict(&partial, 0o700)?;
    let open = |path: &Path| -> Result<Connection, Refused> {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
            .map_err(sql("cannot open", path))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sql("cannot set a busy timeout on", path))?;
        Ok(conn)
    };
    let mut paths = Vec::new();
    for (file, service) in DATABASES {
        let path = data_dir.join(file);
        if !path.exists() {
            return Err(refused(format!(
                "{} is missing: is {} the shop's data dir?",
                path.display(),
                data_dir.display()
            )));
        }
        paths.push((file, service, path));
    }
    // Every writer held at once, always in this order (so two backups cannot deadlock)...
    let mut locks = Vec::new();
    for (_, _, path) in &paths {
        let lock = open(path)?;
        lock.execute_batch("BEGIN IMMEDIATE")
            .map_err(sql("cannot hold the writer of", path))?;
        locks.push(lock);
    }
    // ... a read snapshot of each taken while nothing can be written ...
    let mut sources = Vec::new();
    for (file, service, path) in paths {
        let conn = open(&path)?;
        conn.execute_batch("BEGIN DEFERRED; SELECT COUNT(*) FROM sqlite_master;")
            .map_err(sql("cannot open a read transaction on", &path))?;
        sources.push((file, service, path, conn));
    }
    let taken_at = now_rfc3339();
    // ... and the writers let go before anything is copied.
    for lock in locks {
        lock.execute_batch("ROLLBACK")
            .map_err(|err| refused(format!("cannot let a writer go: {err}")))?;
    }
    let mut databases = Vec::new();
    for (file, service, path, conn) in &sources {
        let copy = partial.join(file);
        let mut target = Connection::open(&copy).map_err(sql("cannot create", &copy))?;
        rusqlite::backup::Backup::new(conn, &mut target)
            .and_then(|b| b.step(-1).map(|_| ()))
            .map_err(sql("cannot copy", path))?;
        let schema_version: i64 = conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(sql("cannot read the schema version of", path))?;
        drop(target);
        databases.push(DatabaseEntry {
            file: file.to_string(),
            service: service.to_string(),
            schema_version,
            bytes: fs::metadata(&copy).map_err(io("cannot read", &copy))?.len(),
            sha256: sha256_of(&copy)?,
        });
    }
    for (_, _, path, conn) in sources {
        conn.execute_batch("COMMIT")
            .map_err(sql("cannot end the read transaction on", &path))?;
    }
    let mut secrets = Vec::new();
    for file in SECRETS {
        let from = data_dir.join(file);
        if from.exists() {
            let to = partial.join(file);
            fs::copy(&from, &to).map_err(io("cannot copy", &from))?;
            restrict(&to, 0o600)?;
            secrets.push(FileEntry {
                file: file.to_string(),
                sha256: sha256_of(&to)?,
            });
        }
    }
    let manifest = Manifest {
        format: 1,
        taken_at,
        shopctl_version: env!("CARGO_PKG_VERSION").to_string(),
        databases,
        secrets,
    };
    let text = serde_json::to_string_pretty(&manifest)
        .map_err(|err| refused(format!("cannot write the manifest: {err}")))?;
    let manifest_path = partial.join(MANIFEST);
    fs::write(&manifest_path, text + "\n").map_err(io("cannot write", &manifest_path))?;
    fs::rename(&partial, out).map_err(io("cannot move the finished backup to", out))?;
    Ok(manifest)
}

fn restrict(path: &Path, mode: u32) -> Result<(), Refused> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(io("cannot restrict the permissions of", path))
}

/// One check of a verification, and whether it held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub what: String,
    pub ok: bool,
}

/// Reads a backup's manifest.
pub fn manifest_of(backup: &Path) -> Result<Manifest, Refused> {
    let path = backup.join(MANIFEST);
    let text = fs::read_to_string(&path).map_err(io("cannot read", &path))?;
    serde_json::from_str(&text).map_err(|err| refused(format!("{}: {err}", path.display())))
}

/// Checks a backup: its manifest names all four databases, each file has the checksum and
/// schema version written down, passes `PRAGMA integrity_check` and has no broken foreign
/// key; each secret has its checksum.
pub fn verify(backup: &Path) -> Result<Vec<Check>, Refused> {
    let manifest = manifest_of(backup)?;
    let mut checks = Vec::new();
    let mut check = |what: String, ok: bool| checks.push(Check { what, ok });
    for (file, _) in DATABASES {
        let listed = manifest.databases.iter().any(|d| d.file == *file);
        check(format!("the manifest lists {file}"), listed);
    }
    for db in &manifest.databases {
        let path = backup.join(&db.file);
        let sum = sha256_of(&path).ok();
        check(
            format!("{} has the checksum the manifest gives", db.file),
            sum.as_deref() == Some(db.sha256.as_str()),
        );
        let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(sql("cannot open", &path))?;
        let integrity: String = conn
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap_or_else(|err| err.to_string());
        check(
            format!("{} passes integrity_check", db.file),
            integrity == "ok",
        );
        let broken: i64 = conn
            .query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |row| {
                row.get(0)
            })
            .unwrap_or(-1);
        check(
            format!("{} has no broken foreign key", db.file),
            broken == 0,
        );
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap_or(-1);
        check(
            format!(
                "{} is at schema version {} as written down",
                db.file, db.schema_version
            ),
            version == db.schema_version,
        );
    }
    for secret in &manifest.secrets {
        let sum = sha256_of(&backup.join(&secret.file)).ok();
        check(
            format!("{} has the checksum the manifest gives", secret.file),
            sum.as_deref() == Some(secret.sha256.as_str()),
        );
    }
    Ok(checks)
}

/// The services of a shop running on `data_dir`, as `scripts/start-all.sh`'s pid files
/// say: a pid file whose process is alive.
pub fn running_services(data_dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(data_dir.join("pids")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = fs::read_to_string(entry.path()).ok()?;
            let pid = pid.trim();
            let name = entry
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".pid")
                .to_string();
            // A pid file left by a shop that died may name a process that is something else
            // now: only a process of that name counts (the kernel keeps 15 bytes of it).
            let comm = fs::read_to_string(Path::new("/proc").join(pid).join("comm")).ok()?;
            let comm = comm.trim();
            let expected = if name == "dashboard" || name == "storefront" {
                "python3"
            } else {
                name.as_str()
            };
            let ours = !pid.is_empty() && !comm.is_empty() && expected.starts_with(comm);
            ours.then_some(name)
        })
        .collect()
}

/// Restores the backup `from` into `data_dir`: refused while a shop runs there, or when the
/// backup does not verify. What was there is moved aside into `data_dir/replaced-<time>/`,
/// never deleted. Returns that folder.
pub fn restore(from: &Path, data_dir: &Path) -> Result<Option<PathBuf>, Refused> {
    let running = running_services(data_dir);
    if !running.is_empty() {
        return Err(refused(format!(
            "a shop is running on {} ({}): stop it first (Ctrl-C in its terminal); nothing was changed",
            data_dir.display(),
            running.join(", ")
        )));
    }
    let failed: Vec<String> = verify(from)?
        .into_iter()
        .filter(|c| !c.ok)
        .map(|c| c.what)
        .collect();
    if !failed.is_empty() {
        return Err(refused(format!(
            "the backup does not verify ({}); nothing was changed",
            failed.join("; ")
        )));
    }
    let manifest = manifest_of(from)?;
    fs::create_dir_all(data_dir).map_err(io("cannot create", data_dir))?;
    let stamp = now_rfc3339().replace(':', "-");
    let aside = data_dir.join(format!("replaced-{stamp}"));
    let mut moved = false;
    let mut names: Vec<String> = Vec::new();
    for db in &manifest.databases {
        for suffix in ["", "-wal", "-shm"] {
            names.push(format!("{}{suffix}", db.file));
        }
    }
    names.extend(manifest.secrets.iter().map(|s| s.file.clone()));
    for name in &names {
        let current = data_dir.join(name);
        if current.exists() {
            fs::create_dir_all(&aside).map_err(io("cannot create", &aside))?;
            fs::rename(&current, aside.join(name)).map_err(io("cannot move aside", &current))?;
            moved = true;
        }
    }
    for file in manifest
        .databases
        .iter()
        .map(|d| &d.file)
        .chain(manifest.secrets.iter().map(|s| &s.file))
    {
        let to = data_dir.join(file);
        fs::copy(from.join(file), &to).map_err(io("cannot restore", &to))?;
        if manifest.secrets.iter().any(|s| &s.file == file) {
            restrict(&to, 0o600)?;
        }
    }
    Ok(moved.then_some(aside))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (file, _) in DATABASES {
            let conn = Connection::open(dir.path().join(file)).unwrap();
            conn.execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA user_version = 3;
                 CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
                 INSERT INTO t (v) VALUES ('a'), ('b');",
            )
            .unwrap();
        }
        fs::write(dir.path().join("webhook-secret"), "whsec_x\n").unwrap();
        dir
    }

    #[test]
    fn a_backup_verifies_and_a_damaged_one_does_not() {
        let shop = shop_dir();
        let out = tempfile::tempdir().unwrap();
        let backup_dir = out.path().join("b1");
        let manifest = backup(shop.path(), &backup_dir).unwrap();
        assert_eq!(manifest.databases.len(), 4);
        assert_eq!(manifest.databases[0].schema_version, 3);
        assert_eq!(manifest.secrets.len(), 1);
        assert!(verify(&backup_dir).unwrap().iter().all(|c| c.ok));
        assert!(!out.path().join("b1.partial").exists());
        // A second backup into the same place is refused.
        assert!(backup(shop.path(), &backup_dir).is_err());
        // One flipped byte is found.
        let file = backup_dir.join("orders.db");
        let mut bytes = fs::read(&file).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&file, bytes).unwrap();
        let failed: Vec<String> = verify(&backup_dir)
            .unwrap()
            .into_iter()
            .filter(|c| !c.ok)
            .map(|c| c.what)
            .collect();
        assert!(
            failed
                .iter()
                .any(|f| f.contains("orders.db has the checksum")),
            "{failed:?}"
        );
        // And it is not restored.
        let target = tempfile::tempdir().unwrap();
        let err = restore(&backup_dir, target.path()).unwrap_err().to_string();
        assert!(err.contains("does not verify"), "{err}");
        assert!(!target.path().join("orders.db").exists());
    }

    #[test]
    fn a_restore_moves_what_was_there_aside_and_is_refused_while_a_shop_runs() {
        let shop = shop_dir();
        let out = tempfile::tempdir().unwrap();
        let backup_dir = out.path().join("b");
        backup(shop.path(), &backup_dir).unwrap();
        let target = shop_dir();
        Connection::open(target.path().join("orders.db"))
            .unwrap()
            .execute("INSERT INTO t (v) VALUES ('after')", [])
            .unwrap();
        // A live pid file: this test's own process, under its own name.
        let comm = fs::read_to_string("/proc/self/comm").unwrap();
        let pid_file = target.path().join(format!("pids/{}.pid", comm.trim()));
        fs::create_dir_all(target.path().join("pids")).unwrap();
        fs::write(&pid_file, std::process::id().to_string()).unwrap();
        let err = restore(&backup_dir, target.path()).unwrap_err().to_string();
        assert!(err.contains(comm.trim()), "{err}");
        // A pid file naming a live process of another name is a stale one.
        fs::remove_file(&pid_file).unwrap();
        fs::write(
            target.path().join("pids/order-service.pid"),
            std::process::id().to_string(),
        )
        .unwrap();
        let aside = restore(&backup_dir, target.path()).unwrap().unwrap();
        let rows: i64 = Connection::open(target.path().join("orders.db"))
            .unwrap()
            .query_row("SELECT COUNT(*) FROM t", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, 2, "the backup's rows, not the later one");
        assert!(
            aside.join("orders.db").exists(),
            "the replaced file is kept"
        );
    }
}
