//! shopctl: back up, verify and restore the shop's data.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// The shop's data: online backups of the four databases and the secrets as of one moment,
/// their verification, and restore.
#[derive(Debug, Parser)]
#[command(name = "shopctl", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Copies the four databases (as of one moment, while the shop runs), the secrets and a
    /// manifest into a new directory.
    Backup {
        /// The shop's data dir (`DATA_DIR` of scripts/start-all.sh).
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
        /// Where the backup goes: a directory that does not exist yet.
        #[arg(long)]
        out: PathBuf,
    },
    /// Checks a backup: checksums, schema versions, integrity and foreign keys.
    Verify {
        /// The backup's directory.
        backup: PathBuf,
    },
    /// Restores a backup into a data dir (refused while a shop runs there); what was there
    /// is moved aside, never deleted.
    Restore {
        /// The backup's directory.
        #[arg(long)]
        from: PathBuf,
        /// The shop's data dir.
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("shopctl: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Backup { data_dir, out } => {
            let manifest = shopctl::backup(&data_dir, &out).map_err(|e| e.to_string())?;
            println!(
                "backup of {} as of {} in {}",
                data_dir.display(),
                manifest.taken_at,
                out.display()
            );
            for db in &manifest.databases {
                println!(
                    "  {:<12} schema {:>2}  {:>9} bytes  sha256 {}",
                    db.file, db.schema_version, db.bytes, db.sha256
                );
            }
            for secret in &manifest.secrets {
                println!("  {:<12} (secret)  sha256 {}", secret.file, secret.sha256);
            }
            Ok(())
        }
        Command::Verify { backup } => {
            let checks = shopctl::verify(&backup).map_err(|e| e.to_string())?;
            for check in &checks {
                println!("{} {}", if check.ok { "ok  " } else { "FAIL" }, check.what);
            }
            let failed = checks.iter().filter(|c| !c.ok).count();
            if failed > 0 {
                return Err(format!("{failed} of {} checks failed", checks.len()));
            }
            println!("{} verifies: {} checks", backup.display(), checks.len());
            Ok(())
        }
        Command::Restore { from, data_dir } => {
            let aside = shopctl::restore(&from, &data_dir).map_err(|e| e.to_string())?;
            println!("restored {} into {}", from.display(), data_dir.display());
            if let Some(aside) = aside {
                println!("what was there is kept in {}", aside.display());
            }
            println!(
                "start the shop: DATA_DIR={} scripts/start-all.sh",
                data_dir.display()
            );
            Ok(())
        }
    }
}
