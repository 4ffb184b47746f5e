//! Money moves back: refunds through the real services, and a capture that meets a
//! cancelled order (the cancel and the payment racing) given back by itself, with the books
//! balanced afterwards.

// A test or tool: a failure to set up ends it, with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use system_tests::{Client, Shop};

const MOUSE: &str = r#"[{"product_id":2,"quantity":1,"price":29.99}]"#;

fn place(client: &Client, shop: &Shop, user: &str) -> Value {
    let url = format!("{}/orders?user_id={user}", shop.order.url());
    let (status, order) = client.post_json(&url, MOUSE);
    assert_eq!(status, 201, "{order}");
    order
}

fn order(client: &Client, shop: &Shop, id: &Value) -> Value {
    client.get(&format!("{}/orders/{id}", shop.order.url())).1
}

/// Polls until no webhook delivery is pending any more (20 s at most).
fn wait_for_the_outbox(client: &Client, shop: &Shop) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let url = format!("{}/webhooks/deliveries?status=pending", shop.payment.url());
        let (_, pending) = client.get(&url);
        if pending.as_array().is_some_and(Vec::is_empty) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "deliveries still pending: {pending}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stats(client: &Client, shop: &Shop) -> Value {
    client.get(&format!("{}/orders/stats", shop.order.url())).1
}

#[test]
fn a_refund_in_part_then_in_full_makes_the_order_refunded_and_the_books_balance() {
    let shop = Shop::start();
    let client = Client::new();
    let placed = place(&client, &shop, "ria");
    let id = &placed["id"];
    let pay = format!("{}/pay?order_id={id}&amount=29.99", shop.payment.url());
    let (status, payment) = client.post(&pay);
    assert_eq!(status, 200, "{payment}");
    let refunds = format!("{}/payments/{}/refunds", shop.payment.url(), payment["id"]);

    let (status, part) = client.post_json(&refunds, r#"{"amount":9.99,"reason":"scratched"}"#);
    assert_eq!(status, 201, "{part}");
    wait_for_the_outbox(&client, &shop);
    let now = order(&client, &shop, id);
    assert_eq!(
        (now["status"].as_str(), now["refunded"].as_f64()),
        (Some("PAID"), Some(9.99))
    );
    let books = stats(&client, &shop);
    assert_eq!(books["revenue"], 20.0, "{books}");
    assert_eq!(books["reconciliation"]["status"], "matched", "{books}");

    let (status, too_much) = client.post_json(&refunds, r#"{"amount":20.01}"#);
    assert_eq!(status, 422, "{too_much}");
    let (status, rest) = client.post(&refunds);
    assert_eq!(status, 201, "{rest}");
    assert_eq!(rest["amount"], 20.0);
    wait_for_the_outbox(&client, &shop);
    let now = order(&client, &shop, id);
    assert_eq!(now["status"], "REFUNDED", "{now}");
    assert_eq!(now["refunded"], 29.99);
    let history: Vec<&str> = now["status_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["PENDING", "PAID", "REFUNDED"]);
    let books = stats(&client, &shop);
    assert_eq!(books["orders_by_status"]["REFUNDED"], 1);
    assert_eq!(books["revenue"], 0.0);
    assert_eq!(books["reconciliation"]["status"], "matched", "{books}");
    let (status, _) = client.post(&refunds);
    assert_eq!(status, 409, "nothing left to refund");
    let (status, _) = client.call(
        "PUT",
        &format!("{}/orders/{id}/status", shop.order.url()),
        Some(r#"{"status":"REFUNDED"}"#),
    );
    assert_eq!(
        status, 409,
        "REFUNDED is reached only through the payment service"
    );
}

#[test]
fn a_hundred_cancels_racing_their_payments_never_leave_money_on_a_cancelled_order() {
    let shop = Shop::start();
    let client = Client::new();
    let rounds = 100;
    let mut orders = Vec::new();
    for round in 0..rounds {
        let placed = place(&client, &shop, &format!("race{round}"));
        let id = placed["id"].as_i64().unwrap();
        let start = Arc::new(Barrier::new(2));
        let canceller = {
            let (client, start) = (client.clone(), start.clone());
            let url = format!("{}/orders/{id}/status", shop.order.url());
            // At once, or up to 36 ms later: both orders of events happen.
            let delay = Duration::from_millis((round % 10) * 4);
            std::thread::spawn(move || {
                start.wait();
                std::thread::sleep(delay);
                client
                    .call("PUT", &url, Some(r#"{"status":"CANCELLED"}"#))
                    .0
            })
        };
        start.wait();
        let (paid, _) = client.post(&format!(
            "{}/pay?order_id={id}&amount=29.99",
            shop.payment.url()
        ));
        let cancelled = canceller.join().unwrap();
        assert!([200, 409].contains(&paid), "pay answered {paid}");
        assert!(
            [200, 409].contains(&cancelled),
            "cancel answered {cancelled}"
        );
        orders.push(id);
    }
    wait_for_the_outbox(&client, &shop);

    let (mut paid, mut cancelled, mut given_back) = (0, 0, 0);
    for id in &orders {
        let now = order(&client, &shop, &Value::from(*id));
        let (_, payments) = client.get(&format!("{}/payments?order_id={id}", shop.payment.url()));
        let captured: Vec<&Value> = payments
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["status"] == "captured")
            .collect();
        assert!(captured.len() <= 1, "order {id} charged twice: {payments}");
        match now["status"].as_str().unwrap() {
            "PAID" => {
                paid += 1;
                assert_eq!(captured.len(), 1, "{now}");
                assert_eq!(captured[0]["refunded"], 0.0);
            }
            "CANCELLED" => {
                cancelled += 1;
                if let Some(payment) = captured.first() {
                    given_back += 1;
                    assert_eq!(
                        payment["refunded"], payment["amount"],
                        "order {id}: {payment}"
                    );
                    assert_eq!(now["refunded"], now["total"], "the order knows: {now}");
                }
            }
            other => panic!("order {id} ended {other}"),
        }
    }
    assert_eq!(paid + cancelled, rounds);
    let books = stats(&client, &shop);
    assert_eq!(books["reconciliation"]["status"], "matched", "{books}");
    assert_eq!(books["paid_order_count"], paid);
    println!("{paid} paid, {cancelled} cancelled, {given_back} of them refunded by themselves");
}

/// Polls order `id` until `done` holds (15 s at most).
fn wait_for(client: &Client, shop: &Shop, id: &Value, done: impl Fn(&Value) -> bool) -> Value {
    let timeout = Duration::from_secs(15);
    system_tests::wait_for_order(client, &shop.order.url(), id, timeout, done)
}

fn stock_of(client: &Client, shop: &Shop, product: i64) -> i64 {
    let (_, p) = client.get(&format!("{}/products/{product}", shop.catalog.url()));
    p["stock"].as_i64().expect("stock")
}

#[test]
fn cancelling_a_paid_order_refunds_it_in_full_and_returns_its_units_even_if_payments_was_away() {
    let mut shop = Shop::start_with(&[("order-service", &["--stock-retry-ms", "100"])]);
    let client = Client::new();
    let (order_url, payment_url) = (shop.order.url(), shop.payment.url());
    let status_url = |id: &Value| format!("{order_url}/orders/{id}/status");
    let pay = |id: &Value| {
        let url = format!("{payment_url}/pay?order_id={id}&amount=29.99");
        let (status, payment) = client.post(&url);
        assert_eq!(status, 200, "{payment}");
        payment
    };

    let first = place(&client, &shop, "ann");
    let payment = pay(&first["id"]);
    wait_for(&client, &shop, &first["id"], |o| o["stock"] == "committed");
    assert_eq!(stock_of(&client, &shop, 2), 199);
    // A checkout's undo cancels only while PENDING: a paid order is not refunded that way.
    let (status, _) = client.call(
        "PUT",
        &status_url(&first["id"]),
        Some(r#"{"status":"CANCELLED","from":"PENDING"}"#),
    );
    assert_eq!(status, 409);
    let (status, cancelled) = client.call(
        "PUT",
        &status_url(&first["id"]),
        Some(r#"{"status":"CANCELLED","reason":"changed my mind"}"#),
    );
    assert_eq!(status, 200, "{cancelled}");
    let done = wait_for(&client, &shop, &first["id"], |o| {
        o["refunded"] == 29.99 && o["stock"] == "released"
    });
    assert_eq!(done["status"], "CANCELLED");
    assert_eq!(
        stock_of(&client, &shop, 2),
        200,
        "its unit is on sale again"
    );
    let refunds = format!("{}/payments/{}/refunds", shop.payment.url(), payment["id"]);
    let (_, listed) = client.get(&refunds);
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "refunded once: {listed}"
    );
    assert_eq!(listed[0]["reason"], "order_cancelled");
    let (status, _) = client.call(
        "PUT",
        &status_url(&first["id"]),
        Some(r#"{"status":"CANCELLED"}"#),
    );
    assert_eq!(status, 409, "cancelled already");

    // With the payment service away, the cancel stands and the refund follows it back.
    let second = place(&client, &shop, "bea");
    pay(&second["id"]);
    wait_for(&client, &shop, &second["id"], |o| o["stock"] == "committed");
    assert!(shop.payment.stop());
    let (status, cancelled) = client.call(
        "PUT",
        &status_url(&second["id"]),
        Some(r#"{"status":"CANCELLED"}"#),
    );
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["refunded"], 0.0, "not refunded yet");
    std::thread::sleep(Duration::from_millis(500));
    shop.payment.restart();
    let done = wait_for(&client, &shop, &second["id"], |o| o["refunded"] == 29.99);
    assert_eq!(done["stock"], "released");

    // A shipped order is not cancelled (nor refunded that way).
    let third = place(&client, &shop, "cal");
    pay(&third["id"]);
    wait_for(&client, &shop, &third["id"], |o| o["status"] == "PAID");
    let (status, _) = client.call(
        "PUT",
        &status_url(&third["id"]),
        Some(r#"{"status":"SHIPPED"}"#),
    );
    assert_eq!(status, 200);
    let (status, _) = client.call(
        "PUT",
        &status_url(&third["id"]),
        Some(r#"{"status":"CANCELLED"}"#),
    );
    assert_eq!(status, 409);

    wait_for_the_outbox(&client, &shop);
    let books = stats(&client, &shop);
    assert_eq!(books["reconciliation"]["status"], "matched", "{books}");
    assert_eq!(
        books["revenue"], 29.99,
        "only the shipped order's money stays"
    );
}

/// A product of its own: `stock` units at 25.00.
fn vase(client: &Client, shop: &Shop, sku: &str, stock: i64) -> i64 {
    let body = format!(r#"{{"name":"Vase","price":25.00,"stock":{stock},"sku":"{sku}"}}"#);
    let (status, product) = client.post_json(&format!("{}/products", shop.catalog.url()), &body);
    assert_eq!(status, 201, "{product}");
    product["id"].as_i64().unwrap()
}

/// Places and pays an order of `quantity` vases; waits until its units are sold.
fn paid_order(client: &Client, shop: &Shop, user: &str, vase: i64, quantity: i64) -> (Value, i64) {
    let url = format!("{}/orders?user_id={user}", shop.order.url());
    let body = format!(r#"[{{"product_id":{vase},"quantity":{quantity},"price":25.00}}]"#);
    let (status, order) = client.post_json(&url, &body);
    assert_eq!(status, 201, "{order}");
    let total = order["total"].to_string();
    let pay = format!(
        "{}/pay?order_id={}&amount={total}",
        shop.payment.url(),
        order["id"]
    );
    let (status, payment) = client.post(&pay);
    assert_eq!(status, 200, "{payment}");
    let order = wait_for(client, shop, &order["id"], |o| o["stock"] == "committed");
    (order, payment["id"].as_i64().unwrap())
}

/// The JSON lines of a return of `quantity` units of `product` in `condition`.
fn one_line(product: i64, quantity: i64, condition: &str) -> String {
    format!(r#"[{{"product_id":{product},"quantity":{quantity},"condition":"{condition}"}}]"#)
}

/// `POST /orders/{id}/returns` of `quantity` units of `product` in `condition`.
fn return_one(
    client: &Client,
    shop: &Shop,
    id: &Value,
    (product, quantity, condition): (i64, i64, &str),
) -> (u16, Value) {
    let url = format!("{}/orders/{id}/returns", shop.order.url());
    let lines = one_line(product, quantity, condition);
    client.post_json(
        &url,
        &format!(r#"{{"lines":{lines},"reason":"came back"}}"#),
    )
}

fn audit_of(client: &Client, shop: &Shop, product: i64) -> Value {
    let (_, audit) = client.get(&format!("{}/stock/audit", shop.catalog.url()));
    audit
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["product_id"] == product)
        .cloned()
        .unwrap()
}

/// The attack: a 5.00 refund "with the goods back" of a 50.00 order put all its units back
/// on sale while it stayed PAID, so the one unit in stock sold twice. Now a refund moves
/// money only, and a return puts back exactly the units that came back in sellable
/// condition, refunds their share, and the books and the audit agree.
#[test]
fn a_partial_refund_puts_nothing_back_and_a_return_restocks_exactly_the_sellable_units_it_names() {
    let shop = Shop::start_with(&[("order-service", &["--stock-retry-ms", "100"])]);
    let client = Client::new();
    let vase = vase(&client, &shop, "vase-returns", 2);
    let (order, payment) = paid_order(&client, &shop, "ann", vase, 2);
    let id = &order["id"];
    assert_eq!(stock_of(&client, &shop, vase), 0);
    let refunds = format!("{}/payments/{payment}/refunds", shop.payment.url());
    let (status, refused) = client.post_json(&refunds, r#"{"amount":5.00,"restock":true}"#);
    assert_eq!(status, 422, "a refund names no units: {refused}");
    let (status, refund) = client.post_json(&refunds, r#"{"amount":5.00,"reason":"scratch"}"#);
    assert_eq!(status, 201, "{refund}");
    wait_for(&client, &shop, id, |o| o["refunded"] == 5.0);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        stock_of(&client, &shop, vase),
        0,
        "a refund puts nothing back on sale"
    );

    // One vase comes back sellable: one unit on sale, its 25.00 refunded.
    let (status, returned) = return_one(&client, &shop, id, (vase, 1, "sellable"));
    assert_eq!(status, 201, "{returned}");
    assert_eq!(returned["status"], "PAID", "the rest is still sold");
    assert_eq!(returned["items"][0]["returned"], 1);
    // The return answers once its refund was asked; on a slow machine the payment service's
    // answer (which waits for its webhook back to the order service) can outlast the peer
    // timeout, and then the keeper asks again under the same key: settled either way.
    let settled = wait_for(&client, &shop, id, |o| {
        o["returns"][0]["refund_state"] == "done" && o["returns"][0]["restock_state"] == "done"
    });
    let first = &settled["returns"][0];
    assert_eq!(first["refund"].as_f64(), Some(25.0), "{first}");
    assert!(first["refund_id"].is_i64(), "{first}");
    assert_eq!(
        stock_of(&client, &shop, vase),
        1,
        "exactly the unit that came back"
    );
    // It sells once: a second shopper gets it, a third does not.
    let (second, _) = paid_order(&client, &shop, "bob", vase, 1);
    assert_eq!(second["status"], "PAID");
    let url = format!("{}/orders?user_id=cy", shop.order.url());
    let (status, short) = client.post_json(
        &url,
        &format!(r#"[{{"product_id":{vase},"quantity":1,"price":25.00}}]"#),
    );
    assert_eq!(status, 409, "nothing left to sell: {short}");

    // The other comes back damaged: refunded (what is left: 20.00), not restocked.
    let (status, returned) = return_one(&client, &shop, id, (vase, 1, "damaged"));
    assert_eq!(status, 201, "{returned}");
    let last = &returned["returns"][1];
    assert_eq!(
        last["refund"].as_f64(),
        Some(20.0),
        "never more than is left: {last}"
    );
    assert_eq!(last["restock_state"], "none");
    assert_eq!(
        stock_of(&client, &shop, vase),
        0,
        "a damaged unit is not sold again"
    );
    let done = wait_for(&client, &shop, id, |o| o["status"] == "REFUNDED");
    assert_eq!(done["refunded"].as_f64(), Some(50.0));
    let (status, answer) = return_one(&client, &shop, id, (vase, 1, "sellable"));
    assert_eq!(status, 409, "both units are back already: {answer}");

    let row = audit_of(&client, &shop, vase);
    assert_eq!(
        (row["sold"].as_i64(), row["returned"].as_i64()),
        (Some(3), Some(1)),
        "{row}"
    );
    assert_eq!(row["balanced"], true, "{row}");
    let (_, events) = client.get(&format!("{}/events?type=order.returned", shop.order.url()));
    assert_eq!(events.as_array().unwrap().len(), 2, "{events}");
    wait_for_the_outbox(&client, &shop);
    assert_eq!(stats(&client, &shop)["reconciliation"]["status"], "matched");
}

/// 100 returns of one unit each race for an order of 5: exactly 5 are recorded, 5 units go
/// back on sale, and what they refund adds up to the order's total, never a cent more.
#[test]
fn a_hundred_racing_returns_of_one_unit_take_back_exactly_what_was_bought() {
    let shop = Shop::start_with(&[("order-service", &["--stock-retry-ms", "100"])]);
    let client = Client::new();
    let vase = vase(&client, &shop, "vase-race", 5);
    let (order, payment) = paid_order(&client, &shop, "dee", vase, 5);
    let barrier = Arc::new(Barrier::new(100));
    let line = one_line(vase, 1, "sellable");
    let racers: Vec<_> = (0..100)
        .map(|_| {
            let (client, barrier, line) = (client.clone(), barrier.clone(), line.clone());
            let url = format!("{}/orders/{}/returns", shop.order.url(), order["id"]);
            std::thread::spawn(move || {
                barrier.wait();
                client
                    .post_json(&url, &format!(r#"{{"lines":{line},"reason":"race"}}"#))
                    .0
            })
        })
        .collect();
    let statuses: Vec<u16> = racers.into_iter().map(|r| r.join().unwrap()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        5,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    assert_eq!(stock_of(&client, &shop, vase), 5);
    let done = wait_for(&client, &shop, &order["id"], |o| o["status"] == "REFUNDED");
    assert_eq!(done["refunded"], done["total"]);
    let refunds = format!("{}/payments/{payment}/refunds", shop.payment.url());
    let (_, listed) = client.get(&refunds);
    let sum: f64 = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["amount"].as_f64().unwrap())
        .sum();
    assert_eq!(listed.as_array().unwrap().len(), 5, "{listed}");
    assert!((sum - 125.0).abs() < 1e-9, "{listed}");
    assert_eq!(audit_of(&client, &shop, vase)["balanced"], true);
}

/// A return recorded while the payment service and then the catalog are away: each half
/// stays pending, and the stock keeper settles it once its peer is back: refunded once,
/// restocked once.
#[test]
fn a_return_made_while_its_peers_are_away_is_refunded_and_restocked_once_they_are_back() {
    let mut shop = Shop::start_with(&[("order-service", &["--stock-retry-ms", "100"])]);
    let client = Client::new();
    let vase = vase(&client, &shop, "vase-away", 3);
    let (order, payment) = paid_order(&client, &shop, "eve", vase, 3);
    let id = &order["id"];
    assert!(shop.payment.stop());
    let (status, returned) = return_one(&client, &shop, id, (vase, 2, "sellable"));
    assert_eq!(status, 201, "{returned}");
    assert_eq!(returned["returns"][0]["refund_state"], "pending");
    assert_eq!(returned["returns"][0]["restock_state"], "done");
    assert!(shop.catalog.stop());
    let (status, returned) = return_one(&client, &shop, id, (vase, 1, "sellable"));
    assert_eq!(status, 201, "{returned}");
    assert_eq!(returned["returns"][1]["restock_state"], "pending");
    shop.payment.restart();
    shop.catalog.restart();
    let done = wait_for(&client, &shop, id, |o| {
        o["returns"].as_array().is_some_and(|r| {
            r.iter()
                .all(|r| r["refund_state"] == "done" && r["restock_state"] == "done")
        }) && o["status"] == "REFUNDED"
    });
    assert_eq!(done["refunded"].as_f64(), Some(75.0));
    assert_eq!(stock_of(&client, &shop, vase), 3, "every unit back once");
    let refunds = format!("{}/payments/{payment}/refunds", shop.payment.url());
    assert_eq!(client.get(&refunds).1.as_array().unwrap().len(), 2);
    assert_eq!(audit_of(&client, &shop, vase)["balanced"], true);
}
