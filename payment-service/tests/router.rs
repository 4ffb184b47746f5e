//! Router tests for payment-service: auth, validation, and a payment taken while the order
//! service is down (fail-open, never charged twice).

use axum::Router;
use axum::http::StatusCode;
use payment_service::{AppState, migrations, router};
use service_kit::db::{Db, Durability};
use service_kit::testing::{Call, send, test_keys, unreachable_url};

fn app() -> (tempfile::TempDir, Router) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        &dir.path().join("payments.db"),
        &migrations(),
        Durability::Full,
    )
    .unwrap();
    let state = AppState::new(
        db,
        &unreachable_url(),
        "k",
        std::time::Duration::from_millis(300),
    );
    (dir, router(state, test_keys()))
}

async fn payment_count(app: &Router) -> usize {
    let (_, payments) = send(app, Call::new("GET", "/payments")).await;
    payments.as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_payment_route_refuses_a_missing_or_wrong_key_and_charges_nothing() {
    let (_dir, app) = app();
    for (method, uri) in [
        ("POST", "/pay?order_id=1&amount=999.99"),
        ("GET", "/payments"),
        ("GET", "/payments/1"),
    ] {
        for key in [None, Some(""), Some("nope")] {
            let (status, body) = send(&app, Call::new(method, uri).key(key)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri} {key:?}");
            assert_eq!(body["error"]["code"], "unauthorized");
        }
    }
    assert_eq!(payment_count(&app).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_payments_are_refused_and_charge_nothing() {
    let (_dir, app) = app();
    for (uri, want) in [
        (
            "/pay?order_id=1&amount=abc",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/pay?order_id=1&amount=1.001",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("/pay?order_id=1&amount=0", StatusCode::UNPROCESSABLE_ENTITY),
        (
            "/pay?order_id=1&amount=-5",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/pay?order_id=1&amount=1e9",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("/pay?order_id=0&amount=5", StatusCode::UNPROCESSABLE_ENTITY),
        ("/pay?order_id=x&amount=5", StatusCode::BAD_REQUEST),
        ("/pay?amount=5", StatusCode::BAD_REQUEST),
        ("/pay?order_id=1", StatusCode::BAD_REQUEST),
    ] {
        let (status, body) = send(&app, Call::new("POST", uri)).await;
        assert_eq!(status, want, "{uri}");
        assert!(body["error"]["message"].is_string(), "{uri}");
    }
    assert_eq!(payment_count(&app).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_order_service_down_a_payment_is_recorded_pending_and_never_taken_twice() {
    let (_dir, app) = app();
    let (status, payment) = send(&app, Call::new("POST", "/pay?order_id=3&amount=999.99")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(payment["status"], "captured");
    assert_eq!(payment["amount"], serde_json::json!(999.99));
    assert_eq!(payment["order_verified"], false);
    assert_eq!(payment["webhook_status"], "pending");
    let (status, body) = send(&app, Call::new("POST", "/pay?order_id=3&amount=999.99")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "conflict");
    assert_eq!(payment_count(&app).await, 1);
    let (status, one) = send(
        &app,
        Call::new("GET", &format!("/payments/{}", payment["id"])),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["order_id"], 3);
    let (_, for_order) = send(&app, Call::new("GET", "/payments?order_id=3")).await;
    assert_eq!(for_order.as_array().unwrap().len(), 1);
    let (status, _) = send(&app, Call::new("GET", "/payments/99")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
