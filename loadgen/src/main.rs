//! loadgen binary: parse the command line, run, print, and exit non-zero when an invariant
//! failed.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = loadgen::Args::parse();
    let report = match loadgen::run(&args) {
        Ok(report) => report,
        Err(problem) => {
            eprintln!("loadgen: {problem}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", loadgen::render(&report));
    if let Some(path) = &args.json {
        let written = serde_json::to_string_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|text| std::fs::write(path, text).map_err(|e| e.to_string()));
        if let Err(problem) = written {
            eprintln!("loadgen: cannot write {}: {problem}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if report.invariants_hold() {
        ExitCode::SUCCESS
    } else {
        eprintln!("loadgen: an invariant failed");
        ExitCode::FAILURE
    }
}
