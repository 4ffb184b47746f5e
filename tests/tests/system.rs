//! The shop end to end: four real processes, real SQLite files, real HTTP between them.

// A test or tool: a failure to set up ends it, with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use system_tests::{Client, KEY, Shop, WEBHOOK_SECRET, bin_dir};

const GUIDE_ORDER: &str = r#"[{"product_id":1,"quantity":1,"price":999.99}]"#;

fn place_guide_order(client: &Client, shop: &Shop, user: &str) -> i64 {
    let (status, order) = client.post_json(
        &format!("{}/orders?user_id={user}", shop.order.url()),
        GUIDE_ORDER,
    );
    assert_eq!(status, 201, "{order}");
    order["id"].as_i64().expect("order id")
}

fn statuses(history: &Value) -> Vec<String> {
    history
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h["status"].as_str().expect("status").to_string())
        .collect()
}

#[test]
fn the_guide_journey_works_across_all_four_services() {
    let shop = Shop::start();
    let client = Client::new();

    let (status, products) = client.get(&format!("{}/products", shop.catalog.url()));
    assert_eq!(status, 200);
    assert_eq!(products.as_array().expect("list").len(), 3);

    let (status, added) = client.post(&format!(
        "{}/cart/user1/add?product_id=1&quantity=2",
        shop.cart.url()
    ));
    assert_eq!(status, 200, "{added}");
    assert_eq!(added["item"]["verified"], true);
    assert_eq!(added["item"]["name"], "Laptop");
    assert_eq!(added["cart"]["total"], json!(1999.98));

    let order_id = place_guide_order(&client, &shop, "user1");
    let (status, payment) = client.post(&format!(
        "{}/pay?order_id={order_id}&amount=999.99",
        shop.payment.url()
    ));
    assert_eq!(status, 200, "{payment}");
    assert_eq!(payment["webhook_status"], "delivered");
    assert_eq!(payment["order_verified"], true);

    let (_, order) = client.get(&format!("{}/orders/{order_id}", shop.order.url()));
    assert_eq!(order["status"], "PAID");
    assert_eq!(order["payment_id"], payment["id"]);
    assert_eq!(statuses(&order["status_history"]), ["PENDING", "PAID"]);

    let (status, again) = client.post(&format!(
        "{}/pay?order_id={order_id}&amount=999.99",
        shop.payment.url()
    ));
    assert_eq!(status, 409, "{again}");
    let (_, payments) = client.get(&format!(
        "{}/payments?order_id={order_id}",
        shop.payment.url()
    ));
    assert_eq!(payments.as_array().expect("list").len(), 1);
}

/// Every `$ref` in `value`, however deep.
fn collect_refs(value: &Value, refs: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("$ref", Value::String(reference)) => refs.push(reference.clone()),
                    _ => collect_refs(inner, refs),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, refs)),
        _ => {}
    }
}

#[test]
fn each_service_documents_its_routes_in_openapi_and_every_documented_route_needs_the_key() {
    let mut shop = Shop::start();
    let client = Client::new();
    let expected: [(&str, &[&str]); 4] = [
        (
            "cart-service",
            &[
                "/cart/{user_id}",
                "/cart/{user_id}/add",
                "/cart/{user_id}/items/{product_id}",
                "/cart/{user_id}/clear",
                "/cart/{user_id}/checkout",
                "/checkouts",
                "/checkouts/{id}",
                "/events",
            ],
        ),
        (
            "catalog-service",
            &[
                "/products",
                "/products/{id}",
                "/reservations",
                "/reservations/{reference}",
                "/events",
            ],
        ),
        (
            "order-service",
            &[
                "/orders",
                "/orders/{id}",
                "/orders/{id}/status",
                "/orders/{id}/payment",
                "/orders/stats",
                "/events",
            ],
        ),
        (
            "payment-service",
            &[
                "/pay",
                "/payments",
                "/payments/{id}",
                "/payments/summary",
                "/webhooks/deliveries",
                "/webhooks/deliveries/{id}/retry",
                "/events",
            ],
        ),
    ];
    let shared = ["/health", "/ready", "/metrics", "/events"];
    let bases: Vec<(&str, String)> = shop.services().iter().map(|s| (s.name, s.url())).collect();
    for (name, paths) in expected {
        let base = &bases.iter().find(|(n, _)| *n == name).expect(name).1;
        let (status, doc) =
            client.call_with_key("GET", &format!("{base}/openapi.json"), None, None);
        assert_eq!(status, 200, "{name}: the document needs no key");
        assert_eq!(doc["info"]["title"], name);
        assert_eq!(
            doc["components"]["securitySchemes"]["api_key"]["name"],
            "X-API-Key"
        );
        for path in paths.iter().chain(&shared) {
            assert!(doc["paths"][path].is_object(), "{name}: {path} missing");
        }
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        for reference in refs {
            let schema = reference
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{name}: unexpected $ref {reference}"));
            assert!(
                doc["components"]["schemas"][schema].is_object(),
                "{name}: $ref to a schema the document lacks: {reference}"
            );
        }
        let mut operations = 0;
        for (path, methods) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in methods.as_object().expect("methods") {
                operations += 1;
                // Swagger UI groups operations by resource: each has exactly one tag.
                let tags = operation["tags"].as_array().map_or(0, Vec::len);
                assert_eq!(tags, 1, "{name}: {method} {path} has no resource tag");
                if ["/health", "/ready"].contains(&path.as_str()) {
                    assert!(operation["security"].is_null(), "{name}: {path} is open");
                    let url = format!("{base}{path}");
                    let (status, body) = client.call_with_key("GET", &url, None, None);
                    assert_eq!(status, 200, "{name}: {url}: {body}");
                    continue;
                }
                let security = if path == "/metrics" {
                    json!([{"api_key": []}, {"metrics_token": []}])
                } else if operation["x-scope"] == "customer" {
                    // The admin key alone, or the storefront key with a customer's session.
                    json!([{"api_key": []}, {"api_key": [], "session": []}])
                } else {
                    json!([{"api_key": []}])
                };
                assert_eq!(operation["security"], security, "{name}: {method} {path}");
                assert_eq!(
                    operation["responses"]["401"]["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{name}: {method} {path}"
                );
                // Every documented route, called as the document says but without the key.
                let concrete = path
                    .replace("{user_id}", "u1")
                    .replace("{id}", "1")
                    .replace("{order_id}", "1")
                    .replace("{product_id}", "1");
                let url = format!("{base}{concrete}");
                let method = method.to_uppercase();
                let (status, body) = client.call_with_key(&method, &url, None, None);
                assert_eq!(status, 401, "{name}: {method} {url}: {body}");
            }
        }
        assert!(operations >= paths.len(), "{name}: {operations} operations");
    }
}

#[test]
fn every_route_of_every_service_is_401_without_a_key_and_health_is_open() {
    let mut shop = Shop::start();
    let client = Client::new();
    let order_id = place_guide_order(&client, &shop, "u1");
    let routes = [
        ("GET", format!("{}/products", shop.catalog.url())),
        ("GET", format!("{}/products/1", shop.catalog.url())),
        ("GET", format!("{}/cart/u1", shop.cart.url())),
        (
            "POST",
            format!("{}/cart/u1/add?product_id=1", shop.cart.url()),
        ),
        ("DELETE", format!("{}/cart/u1/clear", shop.cart.url())),
        (
            "PUT",
            format!("{}/cart/u1/items/1?quantity=2", shop.cart.url()),
        ),
        ("DELETE", format!("{}/cart/u1/items/1", shop.cart.url())),
        ("POST", format!("{}/orders?user_id=u1", shop.order.url())),
        ("GET", format!("{}/orders", shop.order.url())),
        ("GET", format!("{}/orders/{order_id}", shop.order.url())),
        (
            "POST",
            format!("{}/orders/{order_id}/payment", shop.order.url()),
        ),
        (
            "POST",
            format!(
                "{}/pay?order_id={order_id}&amount=999.99",
                shop.payment.url()
            ),
        ),
        ("GET", format!("{}/payments", shop.payment.url())),
        ("GET", format!("{}/payments/1", shop.payment.url())),
    ];
    for (method, url) in &routes {
        for key in [None, Some(""), Some("wrong-key")] {
            let (status, body) = client.call_with_key(method, url, Some(GUIDE_ORDER), key);
            assert_eq!(status, 401, "{method} {url} with {key:?}: {body}");
            assert_eq!(body["error"]["code"], "unauthorized");
        }
    }
    for service in shop.services() {
        let (status, body) =
            client.call_with_key("GET", &format!("{}/health", service.url()), None, None);
        assert_eq!(status, 200, "{}", service.name);
        assert_eq!(body["status"], "ok");
        let (status, body) =
            client.call_with_key("GET", &format!("{}/ready", service.url()), None, None);
        assert_eq!(status, 200, "{} ready: {body}", service.name);
        assert_eq!(body["status"], "ready");
        assert_eq!(body["pending_migrations"], 0);
        if service.name == "payment-service" {
            assert!(body["webhook_backlog"]["pending"].is_i64(), "{body}");
            assert!(body["webhook_backlog"]["failed"].is_i64(), "{body}");
        }
    }
    // Nothing the refused requests asked for happened.
    let (_, order) = client.get(&format!("{}/orders/{order_id}", shop.order.url()));
    assert_eq!(order["status"], "PENDING");
    let (_, orders) = client.get(&format!("{}/orders", shop.order.url()));
    assert_eq!(orders.as_array().expect("list").len(), 1);
    let (_, cart) = client.get(&format!("{}/cart/u1", shop.cart.url()));
    assert_eq!(cart["items"], json!([]));
    let (_, payments) = client.get(&format!("{}/payments", shop.payment.url()));
    assert_eq!(payments, json!([]));
    let (_, products) = client.get(&format!("{}/products", shop.catalog.url()));
    assert_eq!(
        products.as_array().expect("list").len(),
        3,
        "no product added or deleted"
    );
    let (_, checkouts) = client.get(&format!("{}/checkouts?user_id=u1", shop.cart.url()));
    assert_eq!(checkouts, json!([]));
}

#[test]
fn an_unknown_product_is_refused_everywhere() {
    let shop = Shop::start();
    let client = Client::new();
    let (status, _) = client.get(&format!("{}/products/404", shop.catalog.url()));
    assert_eq!(status, 404);
    let (status, body) = client.post(&format!(
        "{}/cart/u1/add?product_id=404&quantity=1",
        shop.cart.url()
    ));
    assert_eq!(status, 404, "{body}");
    let (_, cart) = client.get(&format!("{}/cart/u1", shop.cart.url()));
    assert_eq!(cart["items"], json!([]));
    let (status, _) = client.post_json(
        &format!("{}/orders?user_id=u1", shop.order.url()),
        r#"[{"product_id":404,"quantity":1,"price":1.00}]"#,
    );
    assert_eq!(status, 422);
}

#[test]
fn with_the_catalog_stopped_carts_and_orders_fail_open_and_say_so() {
    let mut shop = Shop::start();
    let client = Client::new();
    assert!(shop.catalog.stop(), "catalog exits 0 on SIGTERM");

    let (status, added) = client.post(&format!(
        "{}/cart/u1/add?product_id=2&quantity=1",
        shop.cart.url()
    ));
    assert_eq!(status, 200, "{added}");
    assert_eq!(added["item"]["verified"], false);
    assert_eq!(added["cart"]["unverified_items"], 1);
    assert!(
        shop.cart.log_text().contains("catalog unavailable"),
        "the fail-open add is logged as a warning"
    );

    let order_id = place_guide_order(&client, &shop, "u1");
    let (_, order) = client.get(&format!("{}/orders/{order_id}", shop.order.url()));
    assert_eq!(order["catalog_verified"], false);

    // Back up: the same line is verified on the next add, from the database's point of view too.
    shop.catalog.restart();
    let (_, added) = client.post(&format!(
        "{}/cart/u1/add?product_id=2&quantity=1",
        shop.cart.url()
    ));
    assert_eq!(added["item"]["verified"], true);
    assert_eq!(added["item"]["quantity"], 2);
    let (_, cart) = client.get(&format!("{}/cart/u1", shop.cart.url()));
    assert_eq!(cart["items"][0]["verified"], true);
    assert_eq!(cart["items"][0]["name"], "Wireless Mouse");
}

/// Polls the order until it is PAID (or ten seconds pass) and returns it.
fn wait_until_paid(client: &Client, shop: &Shop, order_id: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, order) = client.get(&format!("{}/orders/{order_id}", shop.order.url()));
        if order["status"] == "PAID" || Instant::now() > deadline {
            return order;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_client_flooding_the_order_service_cannot_stop_a_payments_verification() {
    // The services call each other with their own key (PEER_API_KEY), never rate-limited.
    let shop = Shop::start_with(&[("order-service", &["--rate-limit", "20"])]);
    let client = Client::new();
    let order_id = place_guide_order(&client, &shop, "calm");
    let flood =
        system_tests::Flood::start(&client, format!("{}/orders/{order_id}", shop.order.url()));
    std::thread::sleep(Duration::from_millis(300));
    let url = format!(
        "{}/pay?order_id={order_id}&amount=999.99",
        shop.payment.url()
    );
    let (status, payment) = client.post(&url);
    assert!(flood.stop() > 0, "the client was rate-limited");
    assert_eq!(status, 200, "verified and captured all the same: {payment}");
    assert_eq!(payment["status"], "captured");
}

/// Polls payment `id` until it is no longer `authorized` (ten seconds at most).
fn wait_until_settled(client: &Client, shop: &Shop, id: &Value) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, payment) = client.get(&format!("{}/payments/{id}", shop.payment.url()));
        if payment["status"] != "authorized" || Instant::now() > deadline {
            return payment;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn with_the_order_service_stopped_nothing_is_captured_and_the_right_payment_is_once_it_is_back() {
    let mut shop = Shop::start_with(&[("payment-service", &["--capture-retry-ms", "100"])]);
    let client = Client::new();
    let order_id = place_guide_order(&client, &shop, "u1");
    let other_order = place_guide_order(&client, &shop, "u2");
    assert!(shop.order.stop());

    let pay = |order: i64, amount: &str| {
        let url = format!(
            "{}/pay?order_id={order}&amount={amount}",
            shop.payment.url()
        );
        let (status, payment) = client.post(&url);
        assert_eq!(
            status, 202,
            "could not verify, so only authorized: {payment}"
        );
        assert_eq!(payment["status"], "authorized");
        assert_eq!(payment["order_verified"], false);
        assert_eq!(payment["webhook_delivery_id"], Value::Null);
        payment
    };
    let right = pay(order_id, "999.99");
    let twice = pay(order_id, "999.99");
    let too_little = pay(other_order, "0.01");
    let no_such_order = pay(999_999, "5000.00");
    let (_, summary) = client.get(&format!("{}/payments/summary", shop.payment.url()));
    assert_eq!(summary["captured_count"], 0, "no money moves blind");

    // Nobody retries by hand: the settler verifies once the order service is back.
    shop.order.restart();
    let order = wait_until_paid(&client, &shop, order_id);
    assert_eq!(order["status"], "PAID", "{order}");
    assert_eq!(
        order["payment_id"], right["id"],
        "the first right one is captured"
    );
    assert_eq!(
        statuses(&order["status_history"]),
        ["PENDING", "PAID"],
        "exactly one PAID transition"
    );
    let captured = wait_until_settled(&client, &shop, &right["id"]);
    assert_eq!(captured["status"], "captured");
    assert_eq!(captured["order_verified"], true);
    assert_eq!(captured["order_ref"], order["ref"]);
    for (payment, reason) in [
        (&twice, "already paid"),
        (&too_little, "does not match order total"),
        (&no_such_order, "not found"),
    ] {
        let voided = wait_until_settled(&client, &shop, &payment["id"]);
        assert_eq!(voided["status"], "voided", "{voided}");
        let why = voided["void_reason"].as_str().unwrap_or_default();
        assert!(why.contains(reason), "{why}");
    }
    let (_, other) = client.get(&format!("{}/orders/{other_order}", shop.order.url()));
    assert_eq!(other["status"], "PENDING", "a voided payment pays nothing");
    let (_, summary) = client.get(&format!("{}/payments/summary", shop.payment.url()));
    assert_eq!(summary["captured_count"], 1);
    assert_eq!(summary["captured_total"], 999.99);
    let delivery_url = format!(
        "{}/webhooks/deliveries/{}",
        shop.payment.url(),
        captured["webhook_delivery_id"]
            .as_str()
            .expect("delivery id")
    );
    let (_, delivery) = client.get(&delivery_url);
    assert_eq!(delivery["status"], "delivered", "{delivery}");
}

#[test]
fn an_authorized_payment_survives_sigkill_of_the_payment_service_and_is_captured_after_restart() {
    let mut shop = Shop::start_with(&[("payment-service", &["--capture-retry-ms", "100"])]);
    let client = Client::new();
    let order_id = place_guide_order(&client, &shop, "crash");
    assert!(shop.order.stop());
    let (status, payment) = client.post(&format!(
        "{}/pay?order_id={order_id}&amount=999.99",
        shop.payment.url()
    ));
    assert_eq!(status, 202, "{payment}");
    shop.payment.kill();
    shop.order.restart();
    std::thread::sleep(Duration::from_millis(500));
    let (_, order) = client.get(&format!("{}/orders/{order_id}", shop.order.url()));
    assert_eq!(
        order["status"], "PENDING",
        "nothing is captured while payment-service is down"
    );

    shop.payment.restart();
    let order = wait_until_paid(&client, &shop, order_id);
    assert_eq!(order["status"], "PAID", "{order}");
    assert_eq!(statuses(&order["status_history"]), ["PENDING", "PAID"]);
    let again = wait_until_settled(&client, &shop, &payment["id"]);
    assert_eq!(
        again["status"], "captured",
        "the answered authorization survived SIGKILL and was captured"
    );
}

#[test]
fn an_order_service_answering_429_is_one_that_could_not_be_asked_never_a_go_ahead() {
    // A key flooding the order service makes it answer 429 to a payment service that calls
    // with that same key: that is no verification.
    let mut shop = Shop::start_with(&[
        // Two a second: the flood takes every token as it comes, so the payment service's
        // check cannot slip in between (at 20 a second, on a busy machine, it once did).
        ("order-service", &["--rate-limit", "2"]),
        // This payment service calls with the flooding client's key, so it shares its rate.
        (
            "payment-service",
            &[
                "--capture-retry-ms",
                "100",
                "--peer-api-key",
                system_tests::KEY,
            ],
        ),
    ]);
    let client = Client::new();
    let order_id = place_guide_order(&client, &shop, "flood");
    let flood =
        system_tests::Flood::start(&client, format!("{}/orders/{order_id}", shop.order.url()));
    let flooded = Instant::now() + Duration::from_secs(10);
    while client
        .get(&format!("{}/orders/{order_id}", shop.order.url()))
        .0
        != 429
    {
        assert!(
            Instant::now() < flooded,
            "the flood never used up the key's rate"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = format!("{}/pay?order_id={order_id}&amount=0.01", shop.payment.url());
    let (status, payment) = client.post(&url);
    flood.stop();
    assert_eq!(status, 202, "a 429 is not a yes: {payment}");
    assert_eq!(payment["status"], "authorized");
    let voided = wait_until_settled(&client, &shop, &payment["id"]);
    assert_eq!(
        voided["status"], "voided",
        "the wrong amount is refused once asked: {voided}"
    );
    // The flood may have used up this key's rate for a moment more: ask until answered.
    let deadline = Instant::now() + Duration::from_secs(10);
    let order = loop {
        let (status, order) = client.get(&format!("{}/orders/{order_id}", shop.order.url()));
        if status != 429 || Instant::now() > deadline {
            break order;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(order["status"], "PENDING", "{order}");
    assert!(shop.order.stop());
}

#[test]
fn only_a_signed_webhook_marks_an_order_paid() {
    let shop = Shop::start();
    let client = Client::new();
    let order_id = place_guide_order(&client, &shop, "u1");
    let (status, body) = client.post_json(
        &format!("{}/orders/{order_id}/payment", shop.order.url()),
        &format!(r#"{{"type":"payment.succeeded","data":{{"payment_id":1,"order_id":{order_id},"amount":999.99}}}}"#),
    );
    assert_eq!(status, 401, "the API key alone is not enough: {body}");
    let (status, _) = client.call(
        "PUT",
        &format!("{}/orders/{order_id}/status", shop.order.url()),
        Some(r#"{"status":"PAID"}"#),
    );
    assert_eq!(status, 409);
    let (_, order) = client.get(&format!("{}/orders/{order_id}", shop.order.url()));
    assert_eq!(order["status"], "PENDING");
}

#[test]
fn no_card_number_or_cvc_reaches_a_database_its_wal_or_a_log() {
    let mut shop = Shop::start();
    let client = Client::new();
    let numbers = ["4242424242424242", "4000000000000002", "4000000000009995"];
    for number in numbers {
        let order_id = place_guide_order(&client, &shop, "cards");
        let (status, _) = client.post_json(
            &format!(
                "{}/pay?order_id={order_id}&amount=999.99",
                shop.payment.url()
            ),
            &format!(
                r#"{{"card":{{"number":"{number}","exp_month":12,"exp_year":2031,"cvc":"123"}}}}"#
            ),
        );
        assert!(status == 200 || status == 402, "{number}: {status}");
    }
    // Stopped, so the logs are complete; the WAL is read before SQLite folds it back.
    let wal = std::fs::read(shop.dir.path().join("payments.db-wal")).unwrap_or_default();
    for service in shop.services() {
        service.stop();
    }
    let mut files: Vec<(String, Vec<u8>)> = vec![("payments.db-wal (live)".into(), wal)];
    for entry in std::fs::read_dir(shop.dir.path()).expect("temp dir") {
        let path = entry.expect("entry").path();
        files.push((
            path.display().to_string(),
            std::fs::read(&path).expect("readable"),
        ));
    }
    assert!(files.iter().any(|(name, _)| name.ends_with("payments.db")));
    for (name, bytes) in &files {
        let text = String::from_utf8_lossy(bytes);
        for secret in numbers.iter().chain(&["\"cvc\"", "cvc="]) {
            assert!(!text.contains(secret), "{secret} found in {name}");
        }
    }
}

#[test]
fn stats_reconcile_paid_orders_with_captured_payments() {
    let shop = Shop::start();
    let client = Client::new();
    for user in ["a", "b"] {
        let order_id = place_guide_order(&client, &shop, user);
        let (status, _) = client.post(&format!(
            "{}/pay?order_id={order_id}&amount=999.99",
            shop.payment.url()
        ));
        assert_eq!(status, 200);
    }
    place_guide_order(&client, &shop, "c");
    let (status, stats) = client.get(&format!("{}/orders/stats", shop.order.url()));
    assert_eq!(status, 200);
    assert_eq!(stats["orders_by_status"]["PAID"], 2);
    assert_eq!(stats["orders_by_status"]["PENDING"], 1);
    assert_eq!(stats["revenue"], json!(1999.98));
    assert_eq!(
        stats["reconciliation"]["captured_payments_total"],
        json!(1999.98)
    );
    assert_eq!(stats["reconciliation"]["status"], "matched");
}

#[test]
fn data_survives_a_restart_of_all_four() {
    let mut shop = Shop::start();
    let client = Client::new();
    client.post(&format!(
        "{}/cart/keep/add?product_id=3&quantity=4",
        shop.cart.url()
    ));
    let paid = place_guide_order(&client, &shop, "keep");
    let pending = place_guide_order(&client, &shop, "keep");
    let (status, payment) = client.post(&format!(
        "{}/pay?order_id={paid}&amount=999.99",
        shop.payment.url()
    ));
    assert_eq!(status, 200);

    for service in shop.services() {
        assert!(service.stop(), "{} exits 0 on SIGTERM", service.name);
    }
    for service in shop.services() {
        service.restart();
    }

    let (_, cart) = client.get(&format!("{}/cart/keep", shop.cart.url()));
    assert_eq!(cart["items"][0]["product_id"], 3);
    assert_eq!(cart["items"][0]["quantity"], 4);
    let (_, order) = client.get(&format!("{}/orders/{paid}", shop.order.url()));
    assert_eq!(order["status"], "PAID");
    let (_, order) = client.get(&format!("{}/orders/{pending}", shop.order.url()));
    assert_eq!(order["status"], "PENDING");
    let (_, again) = client.get(&format!(
        "{}/payments/{}",
        shop.payment.url(),
        payment["id"]
    ));
    assert_eq!(again["order_id"], paid);
    assert_eq!(again["webhook_status"], "delivered");
    let (_, products) = client.get(&format!("{}/products", shop.catalog.url()));
    assert_eq!(
        products.as_array().expect("list").len(),
        3,
        "seeded once only"
    );
}

#[test]
fn concurrent_payments_for_one_order_charge_it_once() {
    let shop = Shop::start();
    let client = Client::new();
    let order_id = place_guide_order(&client, &shop, "racer");
    let url = format!(
        "{}/pay?order_id={order_id}&amount=999.99",
        shop.payment.url()
    );
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..10)
            .map(|_| scope.spawn(|| client.post(&url).0))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 409),
        "{statuses:?}"
    );
    let (_, payments) = client.get(&format!(
        "{}/payments?order_id={order_id}",
        shop.payment.url()
    ));
    assert_eq!(payments.as_array().expect("list").len(), 1);
}

#[test]
fn requests_are_logged_with_id_method_path_status_and_latency_but_no_key_or_secret() {
    let mut shop = Shop::start();
    let client = Client::new();
    client.post(&format!("{}/cart/u1/add?product_id=1", shop.cart.url()));
    let order_id = place_guide_order(&client, &shop, "u1");
    client.post(&format!(
        "{}/pay?order_id={order_id}&amount=999.99",
        shop.payment.url()
    ));
    client.call_with_key(
        "GET",
        &format!("{}/products", shop.catalog.url()),
        None,
        Some("not-the-key-xyz"),
    );
    let (status, _) = client
        .try_call(
            "GET",
            &format!("{}/products/2", shop.catalog.url()),
            None,
            &[("X-API-Key", KEY), ("X-Request-Id", "log-line-check-7")],
        )
        .expect("answered");
    assert_eq!(status, 200);
    // One structured line per request: its id, method, path, status and latency.
    let catalog_log = shop.catalog.log_text();
    let line = catalog_log
        .lines()
        .find(|l| l.contains("request_id=log-line-check-7") && l.contains("status="))
        .unwrap_or_else(|| panic!("no line for the request:\n{catalog_log}"));
    for field in ["method=GET", "path=/products/2", "status=200", "latency="] {
        assert!(line.contains(field), "{field} missing: {line}");
    }
    for service in shop.services() {
        let log = service.log_text();
        assert!(!log.is_empty(), "{} logged something", service.name);
        assert!(!log.contains(KEY), "{} logged the API key", service.name);
        assert!(
            !log.contains(WEBHOOK_SECRET.trim_start_matches("whsec_")),
            "{} logged the webhook secret",
            service.name
        );
        assert!(
            !log.contains("not-the-key-xyz"),
            "{} logged a presented key",
            service.name
        );
    }
}

#[test]
fn a_service_started_without_a_key_refuses_to_start_and_says_why() {
    let dir = tempfile::tempdir().expect("temp dir");
    for name in [
        "catalog-service",
        "cart-service",
        "order-service",
        "payment-service",
    ] {
        let output = std::process::Command::new(bin_dir().join(name))
            .args(["--port", "0", "--db"])
            .arg(dir.path().join(format!("{name}.db")))
            .env_remove("API_KEY")
            .output()
            .expect("run binary");
        assert!(!output.status.success(), "{name} started without a key");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("no API key configured"), "{name}: {stderr}");
        assert!(
            output.stdout.is_empty(),
            "{name} must not have started listening"
        );
    }
}

#[test]
fn browsers_from_the_dashboard_get_cors_preflights_answered_but_still_need_the_key() {
    let mut shop = Shop::start();
    let client = Client::new();
    let dashboard = "http://127.0.0.1:8080";
    for service in shop.services() {
        let url = format!("{}/products", service.url());
        let preflight = [
            ("Origin", dashboard),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "x-api-key"),
        ];
        let (status, headers, _) = client
            .try_call_full("OPTIONS", &url, None, &preflight)
            .expect("answer");
        assert!(
            status < 300,
            "{}: preflight without a key answered {status}",
            service.name
        );
        let allowed = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            allowed("access-control-allow-origin").as_deref(),
            Some(dashboard),
            "{}",
            service.name
        );
        assert!(
            allowed("access-control-allow-headers")
                .unwrap_or_default()
                .contains("x-api-key")
        );

        let (status, headers, _) = client
            .try_call_full(
                "GET",
                &format!("{}/events", service.url()),
                None,
                &[("Origin", dashboard)],
            )
            .expect("answer");
        assert_eq!(
            status, 401,
            "{}: a real request without a key",
            service.name
        );
        assert!(
            headers
                .iter()
                .any(|(k, _)| k == "access-control-allow-origin"),
            "the browser may read the 401"
        );

        let stranger = [
            ("Origin", "http://evil.example"),
            ("Access-Control-Request-Method", "GET"),
        ];
        let (_, headers, _) = client
            .try_call_full("OPTIONS", &url, None, &stranger)
            .expect("answer");
        assert!(
            !headers
                .iter()
                .any(|(k, _)| k == "access-control-allow-origin"),
            "{}: other origins are not allowed",
            service.name
        );
    }
}

#[test]
fn metrics_count_requests_per_route_and_show_the_webhook_backlog() {
    let mut shop = Shop::start();
    let client = Client::new();
    let order_id = place_guide_order(&client, &shop, "m1");
    client.get(&format!("{}/orders/{order_id}", shop.order.url()));
    client.post(&format!(
        "{}/pay?order_id={order_id}&amount=999.99",
        shop.payment.url()
    ));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let scrape = |url: String| {
        let mut response = agent
            .get(&url)
            .header("X-API-Key", KEY)
            .call()
            .expect("scrape");
        assert_eq!(response.status().as_u16(), 200);
        response.body_mut().read_to_string().expect("text")
    };
    let orders = scrape(format!("{}/metrics", shop.order.url()));
    assert!(
        orders.contains(r#"http_requests_total{service="order-service",route="/orders/{id}",method="GET",status="200"} 2"#),
        "{orders}"
    );
    assert!(
        orders.contains("http_request_duration_seconds_bucket{"),
        "{orders}"
    );
    let payments = scrape(format!("{}/metrics", shop.payment.url()));
    assert!(
        payments.contains(r#"webhook_backlog_pending{service="payment-service"} 0"#),
        "{payments}"
    );
    assert!(
        payments.contains(r#"route="/pay",method="POST",status="200"} 1"#),
        "{payments}"
    );
    for service in shop.services() {
        assert!(
            scrape(format!("{}/metrics", service.url())).ends_with("# EOF\n"),
            "{}",
            service.name
        );
    }
}
