//! No service spells out a status another service owns: it compares through the enums of
//! this crate. A literal such as `"PAID"` in cart-service's or payment-service's source
//! fails this test, with the file and line.

// A test or tool: a failure to set up ends it, with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use shop_contracts::{OrderStatus, PaymentStatus, ReservationStatus};
use std::path::{Path, PathBuf};

const SERVICES: [&str; 4] = [
    "catalog-service",
    "cart-service",
    "order-service",
    "payment-service",
];

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn no_service_spells_out_a_status_that_another_service_owns() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let owned: Vec<(&str, Vec<&str>)> = vec![
        (
            "order-service",
            OrderStatus::ALL.iter().map(|s| s.as_str()).collect(),
        ),
        (
            "payment-service",
            PaymentStatus::ALL.iter().map(|s| s.as_str()).collect(),
        ),
        (
            "catalog-service",
            ReservationStatus::ALL.iter().map(|s| s.as_str()).collect(),
        ),
    ];
    // Words a service uses for statuses of its own: a checkout also ends "failed".
    let own: [(&str, &[&str]); 1] = [("cart-service", &["failed"])];
    let mut offences = Vec::new();
    for service in SERVICES {
        let mut files = Vec::new();
        rust_files(&workspace.join(service).join("src"), &mut files);
        assert!(!files.is_empty(), "no source found for {service}");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for (owner, names) in owned.iter().filter(|(owner, _)| *owner != service) {
                let mine = own
                    .iter()
                    .find(|(s, _)| *s == service)
                    .map_or(&[][..], |(_, words)| *words);
                for name in names.iter().filter(|n| !mine.contains(n)) {
                    let quoted = format!("\"{name}\"");
                    for (n, line) in text.lines().enumerate() {
                        if line.contains(&quoted) {
                            offences.push(format!(
                                "{}:{}: {quoted} belongs to {owner}; use shop_contracts",
                                file.display(),
                                n + 1
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(offences.is_empty(), "{}", offences.join("\n"));
}
