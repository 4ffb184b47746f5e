//! loadgen leaves real books alone: by default it loads a throwaway shop of its own, and a
//! running shop only when told to, saying first what it will leave there.

// A test or tool: a failure to set up ends it, with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use system_tests::{Client, KEY, Shop, bin_dir};

fn loadgen(args: &[&str]) -> (bool, String) {
    let output = Command::new(bin_dir().join("loadgen"))
        .args([
            "--users",
            "2",
            "--duration",
            "1s",
            "--settle",
            "20s",
            "--api-key",
            KEY,
        ])
        .args(args)
        .output()
        .expect("run loadgen (cargo build --workspace --bins first)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn by_default_loadgen_runs_on_a_throwaway_shop_that_is_gone_after_and_touches_no_other() {
    // A shop at the URLs loadgen would use if it were told to: it must stay untouched.
    let shop = Shop::start();
    let client = Client::new();
    let urls = [
        ("--cart-url", shop.cart.url()),
        ("--catalog-url", shop.catalog.url()),
        ("--order-url", shop.order.url()),
        ("--payment-url", shop.payment.url()),
    ];
    let flags: Vec<&str> = urls.iter().flat_map(|(f, u)| [*f, u.as_str()]).collect();
    let (ok, text) = loadgen(&flags);
    assert!(ok, "{text}");
    let dir = text
        .split("a throwaway shop of its own in ")
        .nth(1)
        .and_then(|rest| rest.split(" (removed").next())
        .expect("it says where its shop is");
    assert!(!std::path::Path::new(dir).exists(), "{dir} was removed");
    assert!(
        text.contains("PASS captured payments net of refunds"),
        "{text}"
    );
    let (_, stats) = client.get(&format!("{}/orders/stats", shop.order.url()));
    assert_eq!(
        stats["order_count"], 0,
        "the other shop was left alone: {stats}"
    );
    let (_, products) = client.get(&format!("{}/products?q=loadgen", shop.catalog.url()));
    assert_eq!(products.as_array().unwrap().len(), 0, "{products}");

    // Told to, it loads that shop, and says first what it leaves there.
    let mut against = flags.clone();
    against.push("--against-running-shop");
    let (ok, text) = loadgen(&against);
    assert!(ok, "{text}");
    assert!(text.contains("stay there"), "{text}");
    let (_, stats) = client.get(&format!("{}/orders/stats", shop.order.url()));
    assert!(stats["order_count"].as_i64().unwrap() > 0, "{stats}");
}
