//! What the logs tell an operator: every refused business operation once, with its reason
//! and the request's correlation id, and with `LOG_FORMAT=json` one JSON object per line.

use serde_json::Value;
use system_tests::{Client, KEY, Service};

fn log_lines(service: &Service) -> Vec<String> {
    service.log_text().lines().map(str::to_string).collect()
}

#[test]
fn with_log_format_json_every_line_is_a_json_object_and_a_refusal_says_why_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("products.db").display().to_string();
    let mut catalog = Service::start_with_env(
        0,
        "catalog-service",
        vec!["--db".into(), db],
        dir.path().join("catalog.log"),
        &[("LOG_FORMAT", "json")],
    );
    let client = Client::new();
    let url = format!("{}/products", catalog.url());
    let product = r#"{"name":"Lamp","price":10,"stock":1,"sku":"lamp-json"}"#;
    let headers = [("X-API-Key", KEY), ("X-Request-Id", "first-lamp")];
    let (status, _) = client
        .try_call("POST", &url, Some(product), &headers)
        .unwrap();
    assert_eq!(status, 201);
    let headers = [("X-API-Key", KEY), ("X-Request-Id", "second-lamp")];
    let (status, _) = client
        .try_call("POST", &url, Some(product), &headers)
        .unwrap();
    assert_eq!(status, 409, "the SKU is taken");
    let reserve = format!("{}/reservations", catalog.url());
    let headers = [("X-API-Key", KEY), ("X-Request-Id", "too-many-lamps")];
    let too_many =
        r#"{"reference":"json-log-ref","order_id":1,"lines":[{"product_id":1,"quantity":1000}]}"#;
    let (status, _) = client
        .try_call("POST", &reserve, Some(too_many), &headers)
        .unwrap();
    assert_eq!(status, 409, "out of stock");
    assert!(catalog.stop());

    let lines = log_lines(&catalog);
    assert!(lines.len() >= 5, "{lines:?}");
    let entries: Vec<Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    for entry in &entries {
        assert!(
            entry["timestamp"].is_string() && entry["level"].is_string(),
            "{entry}"
        );
    }
    let refusals = |id: &str| -> Vec<&Value> {
        entries
            .iter()
            .filter(|e| e["message"] == "request refused" && e["span"]["request_id"] == id)
            .collect()
    };
    let taken = refusals("second-lamp");
    assert_eq!(taken.len(), 1, "logged once: {taken:?}");
    assert_eq!(taken[0]["status"], 409);
    assert_eq!(taken[0]["code"], "conflict");
    assert!(taken[0]["reason"].as_str().unwrap().contains("lamp-json"));
    let short = refusals("too-many-lamps");
    assert_eq!(short.len(), 1);
    assert!(
        short[0]["reason"]
            .as_str()
            .unwrap()
            .contains("out of stock"),
        "{}",
        short[0]
    );
    assert!(refusals("first-lamp").is_empty(), "a success is no refusal");
}

#[test]
fn text_logs_name_each_refusal_with_its_reason_and_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("products.db").display().to_string();
    let mut catalog = Service::start(
        "catalog-service",
        vec!["--db".into(), db],
        dir.path().join("catalog.log"),
    );
    let client = Client::new();
    let url = format!("{}/products/1/stock", catalog.url());
    let headers = [("X-API-Key", KEY), ("X-Request-Id", "take-too-much")];
    let (status, _) = client
        .try_call(
            "POST",
            &url,
            Some(r#"{"delta":-999999,"reason":"count"}"#),
            &headers,
        )
        .unwrap();
    assert_eq!(status, 409);
    assert!(catalog.stop());
    let refused: Vec<String> = log_lines(&catalog)
        .into_iter()
        .filter(|line| line.contains("request refused"))
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    let line = &refused[0];
    assert!(line.contains("request_id=take-too-much"), "{line}");
    assert!(line.contains("status=409 code=\"conflict\""), "{line}");
    assert!(line.contains("reason=\"product 1 has"), "{line}");
}

/// What a client sends never starts a log line of its own nor reaches the operator's
/// terminal as an escape code: every route that echoes input, with newlines, carriage
/// returns and ANSI escapes in it, through the admin and the storefront key.
#[test]
fn no_client_input_forges_a_text_log_line_or_reaches_the_terminal_as_an_escape_code() {
    let mut shop = system_tests::Shop::start();
    let client = Client::new();
    let forged = |n: u32| format!("x\n2026-01-01T00:00:00Z ERROR FORGED{n}\r\x1b[2J");
    let in_query =
        |n: u32| form_urlencoded::byte_serialize(forged(n).as_bytes()).collect::<String>();
    let json_text = |n: u32| serde_json::to_string(&forged(n)).unwrap();
    let (order, payment, catalog, cart) = (
        shop.order.url(),
        shop.payment.url(),
        shop.catalog.url(),
        shop.cart.url(),
    );
    let sent: Vec<(&str, String, Option<String>, &str)> = vec![
        (
            "GET",
            format!("{order}/orders?status={}", in_query(1)),
            None,
            KEY,
        ),
        (
            "POST",
            format!("{payment}/pay?order_id=1&amount={}", in_query(2)),
            None,
            KEY,
        ),
        (
            "POST",
            format!("{order}/orders?user_id=u1"),
            Some(format!(
                r#"{{"items":[{{"product_id":1,"quantity":1,"price":999.99}}],"promo_code":{}}}"#,
                json_text(3)
            )),
            KEY,
        ),
        (
            "PUT",
            format!("{order}/orders/1/status"),
            Some(format!(r#"{{"status":{}}}"#, json_text(4))),
            KEY,
        ),
        (
            "POST",
            format!("{cart}/cart/u1/add?product_id={}&quantity=1", in_query(5)),
            None,
            KEY,
        ),
        (
            "POST",
            format!("{catalog}/products"),
            Some(format!(
                r#"{{"name":"Lamp","price":1,"stock":1,"sku":{}}}"#,
                json_text(6)
            )),
            KEY,
        ),
        (
            "GET",
            format!("{catalog}/products?category={}", in_query(7)),
            None,
            system_tests::STOREFRONT_KEY,
        ),
        (
            "GET",
            format!("{order}/orders?created_after={}", in_query(8)),
            None,
            KEY,
        ),
    ];
    for (method, url, body, key) in &sent {
        let (status, answer) = client
            .try_call(method, url, body.as_deref(), &[("X-API-Key", key)])
            .unwrap();
        assert!(status < 500, "{method} {url}: {status} {answer}");
    }
    for service in shop.services() {
        assert!(service.stop());
    }
    let mut echoed = 0;
    for service in shop.services() {
        let text = service.log_text();
        assert!(!text.contains('\x1b'), "an escape code reached the log");
        assert!(!text.contains('\r'), "a carriage return reached the log");
        for line in text.lines() {
            assert!(!line.starts_with("2026-01-01"), "a forged line: {line}");
            if line.contains("FORGED") {
                echoed += line.matches("FORGED").count();
                assert!(
                    line.contains(r"\n2026-01-01T00:00:00Z ERROR FORGED"),
                    "quoted and escaped: {line}"
                );
            }
        }
    }
    assert!(echoed >= 3, "the refusals quoted what was sent: {echoed}");
}
