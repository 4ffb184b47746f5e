//! loadgen binary: parse the command line, run, print, and exit non-zero when an invariant
//! failed.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = loadgen::Args::parse();
    // Kept to the end of main: dropping it stops the throwaway shop and removes its folder.
    let _shop = if args.against_running_shop {
        eprintln!(
            "note: loading the running shop at {}: its products, orders, payments, checkouts and \
             refunds stay there, in its stats and its storefront",
            args.order_url
        );
        None
    } else {
        match loadgen::throwaway::ThrowawayShop::start(&args.api_key) {
            Ok(shop) => {
                eprintln!(
                    "loadgen: a throwaway shop of its own in {} (removed after the run; \
                     --against-running-shop loads a running one instead)",
                    shop.dir().display()
                );
                args.cart_url = shop.url("cart");
                args.catalog_url = shop.url("catalog");
                args.order_url = shop.url("order");
                args.payment_url = shop.url("payment");
                args.pid_dir = shop.pid_dir();
                Some(shop)
            }
            Err(problem) => {
                eprintln!("loadgen: {problem}");
                return ExitCode::FAILURE;
            }
        }
    };
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
    let mut met = true;
    if let Some(thresholds) = &args.threshold {
        println!("\nthresholds:");
        for threshold in &thresholds.0 {
            let (value, holds) = threshold.judge(&report.observed());
            met &= holds;
            println!(
                "  {} {threshold} (measured {value:.2})",
                if holds { "PASS" } else { "FAIL" }
            );
        }
    }
    if !report.invariants_hold() {
        eprintln!("loadgen: an invariant failed");
        ExitCode::FAILURE
    } else if !met {
        eprintln!("loadgen: a threshold was not met");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
