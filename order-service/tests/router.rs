//! Router tests for order-service: auth, validation against a fake catalog, fail-open, and
//! the payment webhook.

use axum::Router;
use axum::http::StatusCode;
use order_service::{AppState, migrations, router};
use serde_json::{Value, json};
use service_kit::catalog::CatalogClient;
use service_kit::config::Secret;
use service_kit::db::{Db, Durability};
use service_kit::testing::{Call, FakeCatalog, send, test_keys, unreachable_url};
use std::time::Duration;

const GUIDE_ORDER: &str = r#"[{"product_id":1,"quantity":1,"price":999.99}]"#;

fn app(catalog_url: &str) -> (tempfile::TempDir, Router) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        &dir.path().join("orders.db"),
        &migrations(),
        Durability::Full,
    )
    .unwrap();
    let catalog = CatalogClient::new(catalog_url, Secret::new("k"), Duration::from_millis(300));
    (dir, router(AppState { db, catalog }, test_keys()))
}

async fn order_count(app: &Router) -> usize {
    let (_, orders) = send(app, Call::new("GET", "/orders?limit=200")).await;
    orders.as_array().unwrap().len()
}

async fn place(app: &Router, user: &str, body: &str) -> (StatusCode, Value) {
    send(
        app,
        Call::new("POST", &format!("/orders?user_id={user}")).json(body),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn every_order_route_refuses_a_missing_or_wrong_key_and_changes_nothing() {
    let catalog = FakeCatalog::start().await;
    let (_dir, app) = app(&catalog.url);
    let (_, order) = place(&app, "u1", GUIDE_ORDER).await;
    let id = order["id"].as_i64().unwrap();
    let routes = [
        ("POST", "/orders?user_id=u1".to_string()),
        ("GET", "/orders".to_string()),
        ("GET", format!("/orders/{id}")),
        ("POST", format!("/orders/{id}/payment")),
    ];
    for (method, uri) in &routes {
        for key in [None, Some(""), Some("nope")] {
            let call = Call::new(method, uri).key(key).json(GUIDE_ORDER);
            let (status, body) = send(&app, call).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri} {key:?}");
            assert_eq!(body["error"]["code"], "unauthorized");
        }
    }
    assert_eq!(order_count(&app).await, 1);
    let (_, order) = send(&app, Call::new("GET", &format!("/orders/{id}"))).await;
    assert_eq!(order["status"], "PENDING");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_guide_order_is_created_pending_with_its_total() {
    let catalog = FakeCatalog::start().await;
    let (_dir, app) = app(&catalog.url);
    let (status, order) = place(&app, "user1", GUIDE_ORDER).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(order["status"], "PENDING");
    assert_eq!(order["total"], json!(999.99));
    assert_eq!(order["user_id"], "user1");
    assert_eq!(order["catalog_verified"], true);
    assert_eq!(order["items"][0]["product_id"], 1);
    assert!(order["created_at"].is_string() && order["updated_at"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_orders_are_refused_and_create_nothing() {
    let catalog = FakeCatalog::start().await;
    let (_dir, app) = app(&catalog.url);
    let cases = [
        (
            r#"[{"product_id":1,"quantity":1,"price":5.00}]"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"[{"product_id":9,"quantity":1,"price":5.00}]"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"[{"product_id":1,"quantity":0,"price":999.99}]"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"[{"product_id":1,"quantity":1,"price":-999.99}]"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"[{"product_id":1,"quantity":1,"price":999.991}]"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"[{"product_id":1,"quantity":1}]"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"[{"product_id":"1","quantity":1,"price":999.99}]"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("[]", StatusCode::UNPROCESSABLE_ENTITY),
        ("[{", StatusCode::BAD_REQUEST),
        ("", StatusCode::BAD_REQUEST),
    ];
    for (body, want) in cases {
        let (status, answer) = place(&app, "u1", body).await;
        assert_eq!(status, want, "{body}");
        assert!(answer["error"]["code"].is_string(), "{body}");
    }
    let (status, _) = send(&app, Call::new("POST", "/orders").json(GUIDE_ORDER)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "missing user_id");
    let (status, _) = send(&app, Call::new("POST", "/orders?user_id=u1")).await;
    assert_eq!(
        status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "no JSON content type"
    );
    let huge = format!(
        "[{}]",
        vec![GUIDE_ORDER.trim_matches(['[', ']']); 2000].join(",")
    );
    let (status, _) = place(&app, "u1", &huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(order_count(&app).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_price_that_differs_from_the_catalog_names_the_right_price() {
    let catalog = FakeCatalog::start().await;
    let (_dir, app) = app(&catalog.url);
    let (status, body) = place(
        &app,
        "u1",
        r#"[{"product_id":2,"quantity":1,"price":1.00}]"#,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("29.99"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_catalog_down_an_order_is_accepted_unverified() {
    let (_dir, app) = app(&unreachable_url());
    let (status, order) = place(
        &app,
        "u1",
        r#"[{"product_id":5,"quantity":2,"price":10.50}]"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(order["catalog_verified"], false);
    assert_eq!(order["total"], json!(21.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_webhook_marks_an_order_paid_once_and_a_repeat_is_a_no_op() {
    let catalog = FakeCatalog::start().await;
    let (_dir, app) = app(&catalog.url);
    let (_, order) = place(&app, "u1", GUIDE_ORDER).await;
    let uri = format!("/orders/{}/payment", order["id"]);
    let (status, paid) = send(
        &app,
        Call::new("POST", &uri).json(r#"{"payment_id":7,"amount":999.99}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(paid["status"], "PAID");
    assert_eq!(paid["payment_id"], 7);
    let (status, again) = send(&app, Call::new("POST", &uri)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["status"], "PAID");
    assert_eq!(again["payment_id"], 7);
    let history: Vec<&str> = again["status_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["PENDING", "PAID"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_with_the_wrong_amount_or_for_no_order_changes_nothing() {
    let catalog = FakeCatalog::start().await;
    let (_dir, app) = app(&catalog.url);
    let (_, order) = place(&app, "u1", GUIDE_ORDER).await;
    let id = order["id"].as_i64().unwrap();
    let uri = format!("/orders/{id}/payment");
    let (status, _) = send(&app, Call::new("POST", &uri).json(r#"{"amount":1.00}"#)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = send(&app, Call::new("POST", &uri).json("{nope")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = send(&app, Call::new("POST", "/orders/999/payment")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, order) = send(&app, Call::new("GET", &format!("/orders/{id}"))).await;
    assert_eq!(order["status"], "PENDING");
}

#[tokio::test(flavor = "multi_thread")]
async fn orders_are_listed_by_user_and_status() {
    let catalog = FakeCatalog::start().await;
    let (_dir, app) = app(&catalog.url);
    let (_, first) = place(&app, "alice", GUIDE_ORDER).await;
    place(&app, "alice", GUIDE_ORDER).await;
    place(&app, "bob", GUIDE_ORDER).await;
    send(
        &app,
        Call::new("POST", &format!("/orders/{}/payment", first["id"])),
    )
    .await;
    let ids = |v: Value| -> Vec<i64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_i64().unwrap())
            .collect()
    };
    let (_, alice) = send(&app, Call::new("GET", "/orders?user_id=alice")).await;
    assert_eq!(ids(alice), [2, 1]);
    let (_, paid) = send(&app, Call::new("GET", "/orders?status=PAID")).await;
    assert_eq!(ids(paid), [1]);
    let (_, pending_alice) = send(
        &app,
        Call::new("GET", "/orders?user_id=alice&status=pending"),
    )
    .await;
    assert_eq!(ids(pending_alice), [2]);
    let (status, _) = send(&app, Call::new("GET", "/orders?status=LOST")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = send(&app, Call::new("GET", "/orders/abc")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = send(&app, Call::new("GET", "/orders/42")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
