//! An order holds its own stock: the seed's `POST /orders` + `/pay` journey, with the real
//! services, under a race, with the catalog down, cancelled, expired, and with orders.db
//! restored from a backup.

// A test or tool: a failure to set up ends it, with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::sync::{Arc, Barrier};
use std::time::Duration;
use system_tests::{Client, Shop};

fn set_stock(client: &Client, shop: &Shop, product: i64, stock: i64) {
    system_tests::set_stock(client, &shop.catalog.url(), product, stock);
}

fn stock(client: &Client, shop: &Shop, product: i64) -> i64 {
    let (_, p) = client.get(&format!("{}/products/{product}", shop.catalog.url()));
    p["stock"].as_i64().expect("stock")
}

/// `POST /orders?user_id=` with `lines` as the seed writes them (product, quantity, price).
fn place(client: &Client, shop: &Shop, user: &str, lines: &str) -> (u16, Value) {
    let url = format!("{}/orders?user_id={user}", shop.order.url());
    client.post_json(&url, lines)
}

fn order(client: &Client, shop: &Shop, id: i64) -> Value {
    let (status, body) = client.get(&format!("{}/orders/{id}", shop.order.url()));
    assert_eq!(status, 200, "{body}");
    body
}

fn reservation(client: &Client, shop: &Shop, reference: &str) -> (u16, Value) {
    client.get(&format!("{}/reservations/{reference}", shop.catalog.url()))
}

fn pay(client: &Client, shop: &Shop, order_id: i64, amount: &str) -> (u16, Value) {
    let url = format!(
        "{}/pay?order_id={order_id}&amount={amount}",
        shop.payment.url()
    );
    client.post(&url)
}

/// Polls order `id` until `done` holds for it (10 s at most).
fn wait_for(client: &Client, shop: &Shop, id: i64, done: impl Fn(&Value) -> bool) -> Value {
    let timeout = Duration::from_secs(10);
    system_tests::wait_for_order(client, &shop.order.url(), id, timeout, done)
}

const LAPTOP: &str = r#"[{"product_id":1,"quantity":1,"price":999.99}]"#;

#[test]
fn twenty_buyers_of_five_units_through_orders_and_pay_leave_exactly_five_paid_and_no_stock() {
    let shop = Shop::start();
    let client = Client::new();
    set_stock(&client, &shop, 1, 5);
    let start = Arc::new(Barrier::new(20));
    let buyers: Vec<_> = (0..20)
        .map(|n| {
            let (client, start) = (client.clone(), start.clone());
            let (order_url, payment_url) = (shop.order.url(), shop.payment.url());
            std::thread::spawn(move || {
                start.wait();
                let url = format!("{order_url}/orders?user_id=buyer{n}");
                let (status, placed) = client.post_json(&url, LAPTOP);
                if status != 201 {
                    return (status, placed);
                }
                let id = placed["id"].as_i64().expect("id");
                let url = format!("{payment_url}/pay?order_id={id}&amount=999.99");
                let (status, paid) = client.post(&url);
                assert_eq!(
                    status, 200,
                    "a placed order holds its unit and can be paid: {paid}"
                );
                (201, placed)
            })
        })
        .collect();
    let answers: Vec<(u16, Value)> = buyers.into_iter().map(|b| b.join().unwrap()).collect();
    let placed: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, b)| b)
        .collect();
    let refused: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 409)
        .map(|(_, b)| b)
        .collect();
    assert_eq!((placed.len(), refused.len()), (5, 15), "{answers:?}");
    for body in refused {
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("out of stock: product 1"), "{message}");
    }
    assert_eq!(
        stock(&client, &shop, 1),
        0,
        "five units, five sold, none twice"
    );
    for body in placed {
        let id = body["id"].as_i64().unwrap();
        let paid = wait_for(&client, &shop, id, |o| o["stock"] == "committed");
        assert_eq!(paid["status"], "PAID");
        let reference = paid["ref"].as_str().expect("ref");
        let (status, held) = reservation(&client, &shop, reference);
        assert_eq!(status, 200);
        assert_eq!(held["status"], "committed");
        assert_eq!(
            held["expires_at"],
            Value::Null,
            "an order's stock has no timer"
        );
    }
    let (_, cancelled) = client.get(&format!("{}/orders?status=CANCELLED", shop.order.url()));
    let cancelled = cancelled.as_array().expect("list");
    assert_eq!(
        cancelled.len(),
        15,
        "each refused order is kept, cancelled with its reason"
    );
    for o in cancelled {
        let reason = o["status_history"][1]["reason"]
            .as_str()
            .unwrap_or_default();
        assert!(reason.starts_with("out_of_stock: "), "{o}");
        assert_eq!(o["stock"], "released");
    }
    // Twenty reservations made, five committed and fifteen refused at once: the count of
    // held units kept on the product agrees with its reservation lines (none held now).
    let (_, product) = client.get(&format!("{}/products/1", shop.catalog.url()));
    assert_eq!(
        (product["reserved"].as_i64(), product["on_hand"].as_i64()),
        (Some(0), Some(0))
    );
    let (_, audit) = client.get(&format!("{}/stock/audit", shop.catalog.url()));
    let row = audit
        .as_array()
        .expect("audit")
        .iter()
        .find(|r| r["product_id"] == 1)
        .cloned();
    let row = row.expect("product 1 audited");
    assert_eq!(
        (row["reserved"].as_i64(), row["sold"].as_i64()),
        (Some(0), Some(5)),
        "{row}"
    );
    assert_eq!(row["balanced"], true, "{row}");
}

#[test]
fn an_order_asking_for_more_than_is_left_of_any_line_takes_none_of_them() {
    let shop = Shop::start();
    let client = Client::new();
    set_stock(&client, &shop, 3, 1);
    let lines = r#"[{"product_id":2,"quantity":4,"price":29.99},
                    {"product_id":3,"quantity":2,"price":89.99}]"#;
    let (status, body) = place(&client, &shop, "ann", lines);
    assert_eq!(status, 409, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("product 3 has 1 left, 2 asked"),
        "{message}"
    );
    assert_eq!(
        (stock(&client, &shop, 2), stock(&client, &shop, 3)),
        (200, 1)
    );

    let (status, body) = place(
        &client,
        &shop,
        "ann",
        r#"[{"product_id":3,"quantity":1,"price":89.99}]"#,
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["stock"], "held");
    assert_eq!(stock(&client, &shop, 3), 0);
    // Cancelling a PENDING order puts its units back at once.
    let id = body["id"].as_i64().unwrap();
    let url = format!("{}/orders/{id}/status", shop.order.url());
    let (status, cancelled) = client.call("PUT", &url, Some(r#"{"status":"CANCELLED"}"#));
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["stock"], "released");
    assert_eq!(stock(&client, &shop, 3), 1);
    let (_, r) = reservation(&client, &shop, cancelled["ref"].as_str().unwrap());
    assert_eq!(r["status"], "released");
}

#[test]
fn an_order_placed_while_the_catalog_is_down_takes_its_stock_once_the_catalog_is_back() {
    let mut shop = Shop::start_with(&[("order-service", &["--stock-retry-ms", "100"])]);
    let client = Client::new();
    set_stock(&client, &shop, 1, 1);
    shop.catalog.stop();
    let (status, first) = place(&client, &shop, "bo", LAPTOP);
    assert_eq!(
        status, 201,
        "fail-open: the shop keeps taking orders: {first}"
    );
    assert_eq!(first["stock"], "pending");
    assert_eq!(first["catalog_verified"], false);
    let (status, second) = place(&client, &shop, "cy", LAPTOP);
    assert_eq!(status, 201, "{second}");
    let first_id = first["id"].as_i64().unwrap();
    let (status, refused) = pay(&client, &shop, first_id, "999.99");
    assert_eq!(
        status, 409,
        "no money for units that may not be there: {refused}"
    );

    shop.catalog.restart();
    // One unit, two pending orders: whichever the keeper reaches first holds it (no order
    // of arrival is promised), the other is cancelled out_of_stock.
    let second_id = second["id"].as_i64().unwrap();
    let settled: Vec<Value> = [first_id, second_id]
        .into_iter()
        .map(|id| wait_for(&client, &shop, id, |o| o["stock"] != "pending"))
        .collect();
    let (held, short): (Vec<&Value>, Vec<&Value>) =
        settled.iter().partition(|o| o["stock"] == "held");
    assert_eq!((held.len(), short.len()), (1, 1), "{settled:?}");
    assert_eq!(
        short[0]["status"], "CANCELLED",
        "only one unit: {}",
        short[0]
    );
    let reason = short[0]["status_history"][1]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("out_of_stock: out of stock: product 1"),
        "{reason}"
    );
    assert_eq!(stock(&client, &shop, 1), 0);

    let holder = held[0]["id"].as_i64().unwrap();
    let (status, paid) = pay(&client, &shop, holder, "999.99");
    assert_eq!(status, 200, "{paid}");
    let holder = wait_for(&client, &shop, holder, |o| o["stock"] == "committed");
    assert_eq!(holder["status"], "PAID");
}

#[test]
fn an_unpaid_order_expires_and_its_stock_returns_but_a_paid_one_outlives_the_catalogs_timer() {
    let shop = Shop::start_with(&[
        (
            "catalog-service",
            &["--reservation-ttl", "1s", "--reservation-sweep-ms", "100"],
        ),
        (
            "order-service",
            &["--order-ttl", "2s", "--stock-retry-ms", "100"],
        ),
    ]);
    let client = Client::new();
    let (status, unpaid) = place(&client, &shop, "dee", LAPTOP);
    assert_eq!(status, 201, "{unpaid}");
    let (status, paid) = place(&client, &shop, "eve", LAPTOP);
    assert_eq!(status, 201, "{paid}");
    assert_eq!(stock(&client, &shop, 1), 48);
    let paid_id = paid["id"].as_i64().unwrap();
    // Held past the catalog's 1 s timer before it is paid: the unit is still the order's.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        stock(&client, &shop, 1),
        48,
        "the catalog's timer releases no order's stock"
    );
    let (status, body) = pay(&client, &shop, paid_id, "999.99");
    assert_eq!(status, 200, "{body}");

    let unpaid_id = unpaid["id"].as_i64().unwrap();
    let expired = wait_for(&client, &shop, unpaid_id, |o| o["stock"] == "released");
    assert_eq!(expired["status"], "CANCELLED");
    assert_eq!(expired["status_history"][1]["reason"], "expired");
    let paid = wait_for(&client, &shop, paid_id, |o| o["stock"] == "committed");
    assert_eq!(paid["status"], "PAID");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        order(&client, &shop, paid_id)["status"],
        "PAID",
        "paid orders never expire"
    );
    assert_eq!(
        stock(&client, &shop, 1),
        49,
        "the expired unit is back, the paid one sold"
    );
}

#[test]
fn an_orders_db_restored_from_a_backup_never_reuses_an_earlier_orders_stock_or_payment() {
    let mut shop = Shop::start();
    let client = Client::new();
    let db = shop.dir.path().join("orders.db");
    let backup = shop.dir.path().join("orders.db.backup");
    shop.order.stop();
    std::fs::copy(&db, &backup).expect("backup");
    shop.order.restart();

    let two = r#"[{"product_id":2,"quantity":2,"price":29.99}]"#;
    let (status, before) = place(&client, &shop, "fay", two);
    assert_eq!((status, before["id"].as_i64()), (201, Some(1)), "{before}");
    let (status, body) = client.call(
        "PUT",
        &format!("{}/orders/1/status", shop.order.url()),
        Some(r#"{"status":"CANCELLED"}"#),
    );
    assert_eq!(status, 200, "{body}");
    let (status, paid_before) = place(&client, &shop, "fay", two);
    assert_eq!(
        (status, paid_before["id"].as_i64()),
        (201, Some(2)),
        "{paid_before}"
    );
    assert_eq!(pay(&client, &shop, 2, "59.98").0, 200);
    assert_eq!(stock(&client, &shop, 2), 198);

    shop.order.stop();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    std::fs::copy(&backup, &db).expect("restore");
    shop.order.restart();
    // Order 1 again, same lines: under its own new ref it holds its own units, never the
    // released (or any other) reservation of the order 1 that came before the restore.
    let (status, after) = place(&client, &shop, "gus", two);
    assert_eq!((status, after["id"].as_i64()), (201, Some(1)), "{after}");
    assert_ne!(after["ref"], before["ref"]);
    assert_eq!(after["stock"], "held");
    assert_eq!(stock(&client, &shop, 2), 196);
    let (_, old) = reservation(&client, &shop, before["ref"].as_str().unwrap());
    assert_eq!(old["status"], "released");
    // Order 2 again: the payment service keys captures by the order's ref, so it is not
    // "already paid" by the payment of the order 2 that came before the restore.
    let (status, again) = place(&client, &shop, "hal", two);
    assert_eq!((status, again["id"].as_i64()), (201, Some(2)), "{again}");
    let (status, payment) = pay(&client, &shop, 2, "59.98");
    assert_eq!(status, 200, "{payment}");
    assert_eq!(payment["order_ref"], again["ref"]);
    let paid = wait_for(&client, &shop, 2, |o| o["status"] == "PAID");
    assert_eq!(paid["payment_id"], payment["id"]);
}

#[test]
fn an_admin_saving_the_stock_it_read_during_a_burst_never_puts_sold_units_back_on_sale() {
    let shop = Shop::start();
    let client = Client::new();
    set_stock(&client, &shop, 3, 10);
    let keyboard = r#"[{"product_id":3,"quantity":1,"price":89.99}]"#;
    let start = Arc::new(Barrier::new(31));
    let buyers: Vec<_> = (0..30)
        .map(|n| {
            let (client, start) = (client.clone(), start.clone());
            let (order_url, payment_url) = (shop.order.url(), shop.payment.url());
            std::thread::spawn(move || {
                start.wait();
                let url = format!("{order_url}/orders?user_id=burst{n}");
                let (status, placed) = client.post_json(&url, keyboard);
                if status == 201 {
                    let id = placed["id"].as_i64().expect("id");
                    let url = format!("{payment_url}/pay?order_id={id}&amount=89.99");
                    assert_eq!(client.post(&url).0, 200);
                }
                status
            })
        })
        .collect();
    // The admin's form: read the product, then save the stock it shows, again and again.
    let product_url = format!("{}/products/3", shop.catalog.url());
    start.wait();
    let mut answers = Vec::new();
    for _ in 0..20 {
        let (_, read) = client.get(&product_url);
        std::thread::sleep(Duration::from_millis(5));
        let version = format!("\"{}\"", read["version"]);
        let body = format!(r#"{{"stock":{}}}"#, read["stock"]);
        let headers = [
            ("X-API-Key", system_tests::KEY),
            ("If-Match", version.as_str()),
        ];
        let (status, _) = client
            .try_call("PUT", &product_url, Some(&body), &headers)
            .unwrap();
        answers.push(status);
    }
    let placed: Vec<u16> = buyers.into_iter().map(|b| b.join().unwrap()).collect();
    assert!(
        answers.iter().all(|s| *s == 200 || *s == 412),
        "{answers:?}"
    );
    assert_eq!(
        placed.iter().filter(|s| **s == 201).count(),
        10,
        "{placed:?}"
    );
    let (_, product) = client.get(&product_url);
    assert_eq!(product["stock"], 0, "{product}");
    let (_, paid) = client.get(&format!("{}/orders?status=PAID", shop.order.url()));
    assert_eq!(paid.as_array().unwrap().len(), 10, "ten units, ten sold");
    let (_, audit) = client.get(&format!("{}/stock/audit", shop.catalog.url()));
    let keyboard = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["product_id"] == 3)
        .unwrap()
        .clone();
    assert_eq!(
        keyboard["balanced"], true,
        "the ledger balances: {keyboard}"
    );
    assert_eq!(keyboard["sold"], 10);
    println!("admin saves during the burst: {answers:?}");
}
