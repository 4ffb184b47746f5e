//! Scoped keys: every route says in its OpenAPI document which key it needs, and each key
//! gets exactly what the document says, on all four real services.

// A test or tool: a failure to set up ends it, with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use system_tests::{Client, KEY, STOREFRONT_KEY, Shop, Shopper, wait_for_order};

/// The routes only the admin key may call, per service: the shop's policy, written out so
/// that a route changing scope is a visible change here.
fn admin_routes(service: &str) -> BTreeSet<String> {
    let routes: &[&str] = match service {
        "catalog-service" => &[
            "POST /products",
            "PUT /products/{id}",
            "DELETE /products/{id}",
            "POST /products/{id}/stock",
            "GET /products/{id}/stock/movements",
            "GET /stock/audit",
            "PUT /products/{id}/image",
            "POST /reservations",
            "GET /reservations/{reference}",
            "POST /reservations/{reference}/commit",
            "POST /reservations/{reference}/release",
            "POST /reservations/{reference}/return",
            "POST /reservations/{reference}/returns",
        ],
        "order-service" => &[
            "GET /orders/stats",
            "GET /orders/export.csv",
            "POST /customers/password-resets",
            "PUT /orders/{id}/status",
            "POST /orders/{id}/returns",
            "POST /orders/{id}/payment",
            "POST /promo-codes",
            "GET /promo-codes",
            "GET /promo-codes/{code}",
            "DELETE /promo-codes/{code}",
        ],
        "payment-service" => &[
            "GET /payments/summary",
            "GET /payments/export.csv",
            "GET /payments/by-order",
            "GET /payments/{id}/refunds",
            "POST /payments/{id}/refunds",
            "GET /webhooks/deliveries",
            "GET /webhooks/deliveries/{id}",
            "POST /webhooks/deliveries/{id}/retry",
        ],
        _ => &[],
    };
    routes
        .iter()
        .chain(&["GET /events", "GET /metrics"])
        .map(|r| r.to_string())
        .collect()
}

/// The routes a storefront key opens only with a customer's session (each showing that
/// customer their own).
fn customer_routes(service: &str) -> BTreeSet<String> {
    let routes: &[&str] = match service {
        "cart-service" => &["GET /checkouts"],
        "order-service" => &[
            "GET /orders",
            "GET /customers/me",
            "PUT /customers/me/password",
        ],
        "payment-service" => &["GET /payments"],
        _ => &[],
    };
    routes.iter().map(|r| r.to_string()).collect()
}

/// Whether an answer is the key check refusing the key (not the route refusing the request,
/// such as the webhook's 401 for a missing signature).
fn key_refused(status: u16, answer: &Value) -> bool {
    status == 403
        || (status == 401
            && answer["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("API key"))
}

/// Every key-protected operation of a document: `(METHOD, path, x-scope)`.
fn operations(doc: &Value) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    for (path, methods) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in methods.as_object().expect("methods") {
            if operation["security"].is_null() {
                continue; // the probes
            }
            let scope = operation["x-scope"].as_str().unwrap_or("none").to_string();
            found.push((method.to_uppercase(), path.clone(), scope));
        }
    }
    found
}

#[test]
fn a_storefront_key_is_refused_on_every_admin_route_and_accepted_on_every_shopper_route() {
    let mut shop = Shop::start();
    let client = Client::new();
    let customer = Shopper::customer(&client, &shop.order.url(), "walker@example.com");
    let bases: Vec<(&str, String)> = shop.services().iter().map(|s| (s.name, s.url())).collect();
    for (service, base) in &bases {
        let (status, doc) =
            client.call_with_key("GET", &format!("{base}/openapi.json"), None, None);
        assert_eq!(status, 200);
        let operations = operations(&doc);
        let documented_admin: BTreeSet<String> = operations
            .iter()
            .filter(|(_, _, scope)| scope == "admin")
            .map(|(method, path, _)| format!("{method} {path}"))
            .collect();
        assert_eq!(documented_admin, admin_routes(service), "{service}");
        let documented_customer: BTreeSet<String> = operations
            .iter()
            .filter(|(_, _, scope)| scope == "customer")
            .map(|(method, path, _)| format!("{method} {path}"))
            .collect();
        assert_eq!(documented_customer, customer_routes(service), "{service}");
        let mut shopper_routes = 0;
        for (method, path, scope) in &operations {
            assert!(
                scope == "admin" || scope == "storefront" || scope == "customer",
                "{service}: {method} {path} has no x-scope"
            );
            // Ids that name nothing: a route that lets the key in answers 4xx about the
            // request, never 401/403, and changes nothing.
            let concrete = path
                .replace("{user_id}", "scope-walker")
                .replace("{reference}", "no-such-ref")
                .replace(['{', '}'], "")
                .replace("/id", "/999999")
                .replace("/product_id", "/999999");
            let url = format!("{base}{concrete}");
            let body = (method != "GET" && method != "DELETE").then_some("{}");
            let (storefront, answer) =
                client.call_with_key(method, &url, body, Some(STOREFRONT_KEY));
            if scope == "admin" {
                assert_eq!(storefront, 403, "{service}: {method} {url}: {answer}");
                assert_eq!(answer["error"]["code"], "forbidden");
                let (signed_in, answer) = customer.call(&client, method, &url, body);
                assert_eq!(signed_in, 403, "a session opens no admin route: {answer}");
            } else if scope == "customer" {
                assert_eq!(storefront, 401, "{service}: {method} {url}: {answer}");
                let message = answer["error"]["message"].as_str().unwrap_or("");
                assert!(message.contains("sign in"), "{message}");
                let (signed_in, answer) = customer.call(&client, method, &url, body);
                assert!(
                    !key_refused(signed_in, &answer) && signed_in != 401,
                    "{service}: {method} {url} refused a customer's session: {answer}"
                );
            } else {
                shopper_routes += 1;
                assert!(
                    !key_refused(storefront, &answer),
                    "{service}: {method} {url} refused the storefront key: {answer}"
                );
            }
            let (admin, answer) = client.call_with_key(method, &url, body, Some(KEY));
            assert!(
                !key_refused(admin, &answer),
                "{service}: {method} {url} refused the admin key: {answer}"
            );
            let (wrong, answer) = client.call_with_key(method, &url, body, Some("not-a-key"));
            assert!(
                wrong == 401 && key_refused(wrong, &answer),
                "{service}: {method} {url}: a wrong key stays 401: {answer}"
            );
        }
        assert!(
            shopper_routes >= 2,
            "{service}: {shopper_routes} shopper routes"
        );
    }
}

#[test]
fn a_guest_with_the_storefront_key_buys_and_reads_their_order_by_its_token_but_cannot_refund_it() {
    let shop = Shop::start();
    let client = Client::new();
    let mut guest = Shopper::guest();
    guest.open_cart(&client, &shop.cart.url());
    let cart = shop.cart.url();
    let (status, added) = guest.call(
        &client,
        "POST",
        &format!("{cart}/cart/me/add?product_id=2&quantity=1"),
        None,
    );
    assert_eq!(status, 200, "{added}");
    let guest_user = added["cart"]["user_id"].as_str().unwrap().to_string();
    assert!(guest_user.starts_with("guest_"), "{guest_user}");
    let card =
        r#"{"card":{"number":"4242424242424242","exp_month":12,"exp_year":2031,"cvc":"123"}}"#;
    let (status, checkout) = guest.call(
        &client,
        "POST",
        &format!("{cart}/cart/me/checkout"),
        Some(card),
    );
    assert_eq!(status, 201, "{checkout}");
    let order_id = checkout["order_id"].as_i64().expect("order id");
    let order_url = format!("{}/orders/{order_id}", shop.order.url());
    // Without the order token the order is nobody's business, not even the cart token's.
    let (status, answer) = guest.call(&client, "GET", &order_url, None);
    assert_eq!(status, 404, "{answer}");
    guest.order_token = checkout["order_token"].as_str().map(String::from);
    assert!(guest.order_token.is_some(), "{checkout}");
    let (status, order) = guest.call(&client, "GET", &order_url, None);
    assert_eq!(status, 200, "{order}");
    let (status, by_token) = guest.call(
        &client,
        "GET",
        &format!("{}/orders/by-token", shop.order.url()),
        None,
    );
    assert_eq!(
        (status, &by_token["id"]),
        (200, &json!(order_id)),
        "{by_token}"
    );
    wait_for_order(
        &client,
        &shop.order.url(),
        order_id,
        Duration::from_secs(10),
        |o| o["status"] == "PAID",
    );
    let payment_id = checkout["payment_id"].as_i64().expect("payment id");
    let (status, payment) = guest.call(
        &client,
        "GET",
        &format!("{}/payments/{payment_id}", shop.payment.url()),
        None,
    );
    assert_eq!(status, 200, "{payment}");
    assert_eq!(payment["card"]["last4"], "4242");
    assert!(
        payment["card"]["exp_year"].is_null(),
        "a shopper sees brand and last four: {payment}"
    );
    let refunds = format!("{}/payments/{payment_id}/refunds", shop.payment.url());
    let (status, body) = guest.call(&client, "POST", &refunds, Some(r#"{"amount":1.00}"#));
    assert_eq!(status, 403, "{body}");
    let (status, body) = guest.call(
        &client,
        "PUT",
        &format!("{order_url}/status"),
        Some(r#"{"status":"CANCELLED"}"#),
    );
    assert_eq!(status, 403, "{body}");
    let (_, order) = client.get(&order_url);
    assert_eq!(order["status"], "PAID", "the refused calls changed nothing");
    assert_eq!(
        order["user_id"],
        guest_user.as_str(),
        "filed under the guest"
    );
    let (_, listed) = client.get(&refunds);
    assert_eq!(listed, json!([]));
}

#[test]
fn each_service_serves_swagger_ui_for_its_document_without_a_key() {
    let mut shop = Shop::start();
    let client = Client::new();
    for service in shop.services() {
        let base = service.url();
        let (status, headers, _) = client
            .try_call_full("GET", &format!("{base}/docs/"), None, &[])
            .expect("an answer");
        assert_eq!(status, 200, "{}", service.name);
        let html = headers
            .iter()
            .any(|(name, value)| name == "content-type" && value.starts_with("text/html"));
        assert!(html, "{}: {headers:?}", service.name);
        let script = ureq::get(&format!("{base}/docs/swagger-initializer.js"))
            .call()
            .expect("the UI's set-up script")
            .into_body()
            .read_to_string()
            .expect("text");
        assert!(script.contains(r#""url": "/openapi.json""#), "{script}");
        assert!(
            script.contains(r#""persistAuthorization": true"#),
            "{script}"
        );
    }
}
