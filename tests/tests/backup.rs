//! `shopctl`: backups taken while shoppers check out restore into shops whose books balance.

// A test or tool: a failure to set up ends it, with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use system_tests::{Client, Shop, bin_dir};

fn shopctl(args: &[&str]) -> (bool, String) {
    let output = Command::new(bin_dir().join("shopctl"))
        .args(args)
        .output()
        .expect("run shopctl (cargo build --workspace --bins first)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Checks out one unit of `product` for user `n` through the cart, with a card.
fn checkout(client: &Client, cart: &str, product: i64, n: usize) -> u16 {
    let user = format!("load-{n}");
    let (status, _) = client.post(&format!("{cart}/cart/{user}/add?product_id={product}"));
    if status != 200 {
        return status;
    }
    let card =
        r#"{"card":{"number":"4242424242424242","exp_month":12,"exp_year":2031,"cvc":"123"}}"#;
    client
        .post_json(&format!("{cart}/cart/{user}/checkout"), card)
        .0
}

/// Waits until the restored shop's books settle: stats reconcile with the payments, every
/// audit row balances, and the catalog sold what the paid orders hold.
fn books_balance(shop: &Shop, product: i64) -> Value {
    let client = Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, stats) = client.get(&format!("{}/orders/stats", shop.order.url()));
        let (_, audit) = client.get(&format!("{}/stock/audit", shop.catalog.url()));
        let row = audit
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["product_id"] == product))
            .cloned()
            .unwrap_or(Value::Null);
        let paid = stats["paid_units"][product.to_string()]
            .as_i64()
            .unwrap_or(0);
        let settled = stats["reconciliation"]["status"] == "matched"
            && audit
                .as_array()
                .is_some_and(|rows| rows.iter().all(|r| r["balanced"] == true))
            && row["sold"].as_i64() == Some(paid)
            && row["reserved"] == 0;
        if settled {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "the restored books do not balance: stats {stats}, audit row {row}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn backups_taken_while_shoppers_check_out_restore_into_shops_whose_books_balance() {
    let shop = Shop::start_with(&[("order-service", &["--stock-retry-ms", "100"])]);
    let client = Client::new();
    let (status, product) = client.post_json(
        &format!("{}/products", shop.catalog.url()),
        r#"{"name":"Backup mug","price":7.50,"stock":100000}"#,
    );
    assert_eq!(status, 201, "{product}");
    let product = product["id"].as_i64().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let shoppers: Vec<_> = (0..4)
        .map(|worker| {
            let (stop, done, cart) = (stop.clone(), done.clone(), shop.cart.url());
            std::thread::spawn(move || {
                let client = Client::new();
                let mut n = worker;
                while !stop.load(Ordering::Relaxed) {
                    if checkout(&client, &cart, product, n) == 201 {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    n += 4;
                }
            })
        })
        .collect();
    let backups = tempfile::tempdir().unwrap();
    let data = shop.dir.path().display().to_string();
    let mut taken = Vec::new();
    for round in 0..3 {
        std::thread::sleep(Duration::from_millis(700));
        let out = backups.path().join(format!("backup-{round}"));
        let (ok, text) = shopctl(&[
            "backup",
            "--data-dir",
            &data,
            "--out",
            &out.display().to_string(),
        ]);
        assert!(ok, "{text}");
        taken.push(out);
    }
    stop.store(true, Ordering::Relaxed);
    for shopper in shoppers {
        shopper.join().unwrap();
    }
    assert!(done.load(Ordering::Relaxed) >= 10, "the load ran: {done:?}");

    for backup in &taken {
        let backup = backup.display().to_string();
        let (ok, text) = shopctl(&["verify", &backup]);
        assert!(ok && text.contains("verifies"), "{text}");
        let target = tempfile::tempdir().unwrap();
        let (ok, text) = shopctl(&[
            "restore",
            "--from",
            &backup,
            "--data-dir",
            &target.path().display().to_string(),
        ]);
        assert!(ok, "{text}");
        let restored = Shop::start_in(target, &[("order-service", &["--stock-retry-ms", "100"])]);
        let stats = books_balance(&restored, product);
        assert!(stats["paid_order_count"].as_i64().unwrap() >= 1, "{stats}");
    }
}

#[test]
fn a_damaged_backup_is_refused_by_verify_and_restore() {
    let shop = Shop::start();
    let backups = tempfile::tempdir().unwrap();
    let out = backups.path().join("b");
    let out_text = out.display().to_string();
    let (ok, text) = shopctl(&[
        "backup",
        "--data-dir",
        &shop.dir.path().display().to_string(),
        "--out",
        &out_text,
    ]);
    assert!(ok, "{text}");
    let (ok, text) = shopctl(&[
        "backup",
        "--data-dir",
        &shop.dir.path().display().to_string(),
        "--out",
        &out_text,
    ]);
    assert!(!ok && text.contains("exists already"), "{text}");
    let file = out.join("payments.db");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&file, bytes).unwrap();
    let (ok, text) = shopctl(&["verify", &out_text]);
    assert!(!ok && text.contains("FAIL payments.db"), "{text}");
    let target = tempfile::tempdir().unwrap();
    let (ok, text) = shopctl(&[
        "restore",
        "--from",
        &out_text,
        "--data-dir",
        &target.path().display().to_string(),
    ]);
    assert!(!ok && text.contains("does not verify"), "{text}");
    assert!(
        !target.path().join("orders.db").exists(),
        "nothing was restored"
    );
}
