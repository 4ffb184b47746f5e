//! Money moves back: refunds through the real services, and a capture that meets a
//! cancelled order (the cancel and the payment racing) given back by itself, with the books
//! balanced afterwards.

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

#[test]
fn a_refund_after_delivery_with_the_goods_back_returns_the_units_to_stock() {
    let shop = Shop::start_with(&[("order-service", &["--stock-retry-ms", "100"])]);
    let client = Client::new();
    let placed = place(&client, &shop, "dot");
    let id = &placed["id"];
    let pay = format!("{}/pay?order_id={id}&amount=29.99", shop.payment.url());
    let (status, payment) = client.post(&pay);
    assert_eq!(status, 200, "{payment}");
    wait_for(&client, &shop, id, |o| o["stock"] == "committed");
    let status_url = format!("{}/orders/{id}/status", shop.order.url());
    for next in ["SHIPPED", "DELIVERED"] {
        let body = format!(r#"{{"status":"{next}"}}"#);
        assert_eq!(client.call("PUT", &status_url, Some(&body)).0, 200);
    }
    assert_eq!(stock_of(&client, &shop, 2), 199);
    let refunds = format!("{}/payments/{}/refunds", shop.payment.url(), payment["id"]);
    let (status, refund) = client.post_json(&refunds, r#"{"reason":"returned","restock":true}"#);
    assert_eq!(status, 201, "{refund}");
    let done = wait_for(&client, &shop, id, |o| o["stock"] == "released");
    assert_eq!(done["status"], "REFUNDED");
    assert_eq!(
        stock_of(&client, &shop, 2),
        200,
        "the unit is on sale again"
    );
    let (_, audit) = client.get(&format!("{}/stock/audit", shop.catalog.url()));
    let mouse = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["product_id"] == 2)
        .unwrap()
        .clone();
    assert_eq!(
        (mouse["sold"].as_i64(), mouse["returned"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(mouse["balanced"], true, "{mouse}");
    wait_for_the_outbox(&client, &shop);
    assert_eq!(stats(&client, &shop)["reconciliation"]["status"], "matched");
}
