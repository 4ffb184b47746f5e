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
    assert!(line.contains("reason=product 1 has"), "{line}");
}
