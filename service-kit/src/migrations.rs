//! A service's schema history: the numbered SQL files in its own `migrations/` folder,
//! embedded in the binary and applied in order (tracked by `PRAGMA user_version`), and the
//! check that keeps that history honest.
//!
//! Every migration a service runs is a file in its folder, the shared tables too (the kit's
//! `service-kit/src/events.sql` and `idempotency.sql` are the text a service copies in as
//! its next file). A database counts migrations by position, so a file applied by an
//! earlier release must never change: `migrations/released.sha256` (the format of
//! `sha256sum`) records each released file's checksum, and [`check_history`], run by each
//! service's tests, fails when one is edited, removed or renumbered.

use rusqlite_migration::{M, Migrations};
use sha2::{Digest, Sha256};
use std::path::Path;

/// One migration: its file name in the service's `migrations/` folder and its SQL, as
/// `include_str!` embeds it.
pub type MigrationFile = (&'static str, &'static str);

/// The name of the file that records the checksums of released migrations.
pub const RELEASED: &str = "released.sha256";

/// The [`MigrationFile`]s of the calling crate's `migrations/` folder, each named once:
/// `migration_files!["0001_create_orders.sql", "0002_webhooks_and_reasons.sql"]` embeds
/// each file with its name, so the name and the text cannot disagree.
#[macro_export]
macro_rules! migration_files {
    ($($name:literal),+ $(,)?) => {
        &[$((
            $name,
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/", $name)),
        )),+]
    };
}

/// The migrations to apply, in the order listed.
pub fn from_files(files: &'static [MigrationFile]) -> Migrations<'static> {
    // Each migration runs with foreign keys off (see [`apply`]) and is refused, rolled back,
    // if it leaves a reference dangling.
    Migrations::new(
        files
            .iter()
            .map(|(_, sql)| M::up(sql).foreign_key_check())
            .collect(),
    )
}

/// Applies the pending `migrations` to `conn`, with foreign keys off while they run and on
/// again after: SQLite's way of rebuilding a table other tables point at (a drop and
/// rename would otherwise count every child row as a violation). Each migration checks the
/// foreign keys itself before it commits.
pub fn apply(
    conn: &mut rusqlite::Connection,
    migrations: &Migrations<'static>,
) -> Result<(), rusqlite_migration::Error> {
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let applied = migrations.to_latest(conn);
    conn.pragma_update(None, "foreign_keys", "ON")?;
    applied
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks `files` against the folder `dir`: every `.sql` file there is listed, in order,
/// numbered `0001_` onwards without gaps, with the text the binary embeds; and every file
/// named in `dir/released.sha256` still has its recorded checksum. Returns every problem
/// found, each saying what to do.
pub fn check_history(dir: &Path, files: &[MigrationFile]) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| vec![format!("cannot read {}: {e}", dir.display())])?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".sql"))
        .collect();
    on_disk.sort();
    let listed: Vec<&str> = files.iter().map(|(name, _)| *name).collect();
    if on_disk != listed {
        problems.push(format!(
            "the folder holds {on_disk:?} but the service applies {listed:?}: list every file, in order"
        ));
    }
    for (position, (name, sql)) in files.iter().enumerate() {
        let expected = format!("{:04}_", position + 1);
        if !name.starts_with(&expected) {
            problems.push(format!(
                "{name} is migration {}: name it {expected}...",
                position + 1
            ));
        }
        match std::fs::read_to_string(dir.join(name)) {
            Ok(text) if text == *sql => {}
            Ok(_) => problems.push(format!("{name}: the embedded text is not the file's")),
            Err(e) => problems.push(format!("{name}: {e}")),
        }
    }
    let released = std::fs::read_to_string(dir.join(RELEASED)).unwrap_or_default();
    for line in released.lines().filter(|l| !l.trim().is_empty()) {
        let Some((sum, name)) = line.split_once("  ") else {
            problems.push(format!("{RELEASED}: unreadable line {line:?}"));
            continue;
        };
        match files.iter().find(|(listed, _)| *listed == name) {
            None => problems.push(format!(
                "{name} was released and is no longer applied: a released migration stays"
            )),
            Some((_, sql)) if sha256_hex(sql) != sum => problems.push(format!(
                "{name} was released and has been edited: databases that applied it will \
                 never see the change; restore it and add a new numbered file instead"
            )),
            Some(_) => {}
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(files: &[(&str, &str)], released: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, sql) in files {
            std::fs::write(dir.path().join(name), sql).unwrap();
        }
        let sums: String = released
            .iter()
            .map(|(name, sql)| format!("{}  {name}\n", sha256_hex(sql)))
            .collect();
        std::fs::write(dir.path().join(RELEASED), sums).unwrap();
        dir
    }

    const ONE: MigrationFile = ("0001_a.sql", "CREATE TABLE a(x);");
    const TWO: MigrationFile = ("0002_b.sql", "CREATE TABLE b(y);");

    #[test]
    fn a_folder_that_matches_its_released_checksums_passes() {
        let dir = folder(&[ONE, TWO], &[ONE]);
        assert_eq!(check_history(dir.path(), &[ONE, TWO]), Ok(()));
    }

    #[test]
    fn an_edited_released_migration_fails_and_says_what_to_do() {
        let edited = ("0001_a.sql", "CREATE TABLE a(x, extra);");
        let dir = folder(&[edited], &[ONE]);
        let problems = check_history(dir.path(), &[edited]).unwrap_err();
        assert!(problems[0].contains("has been edited"), "{problems:?}");
    }

    #[test]
    fn gaps_unlisted_files_and_removed_releases_fail() {
        let gap = ("0003_c.sql", "CREATE TABLE c(z);");
        let dir = folder(&[ONE, gap], &[ONE]);
        let problems = check_history(dir.path(), &[ONE, gap]).unwrap_err();
        assert!(
            problems.iter().any(|p| p.contains("name it 0002_")),
            "{problems:?}"
        );

        let dir = folder(&[ONE, TWO], &[ONE, TWO]);
        let problems = check_history(dir.path(), &[ONE]).unwrap_err();
        assert!(
            problems.iter().any(|p| p.contains("list every file")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("no longer applied")),
            "{problems:?}"
        );
    }
}
