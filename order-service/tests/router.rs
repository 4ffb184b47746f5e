//! Router tests for order-service: auth, validation against a fake catalog, fail-open, and
//! the payment webhook.

// A test or tool: a failure to set up ends it, with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::http::StatusCode;
use order_service::{AppState, PaymentClient, migrations, router};
use serde_json::{Value, json};
use service_kit::auth::ApiKeys;
use service_kit::config::Secret;
use service_kit::db::{Db, Durability};
use service_kit::idempotency;
use service_kit::testing::{
    Call, FakeCatalog, TEST_KEY, refused_naming, send, send_raw, test_keys, test_webhook_secrets,
    unreachable_url,
};
use service_kit::webhook::{
    ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookSecret, signature_header, unix_now,
};
use shop_contracts::catalog::CatalogClient;
use std::time::Duration;

const GUIDE_ORDER: &str = r#"[{"product_id":1,"quantity":1,"price":999.99}]"#;

fn app_with_keys(catalog_url: &str, keys: ApiKeys) -> (tempfile::TempDir, Router) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        &dir.path().join("orders.db"),
        &migrations(),
        Durability::Full,
    )
    .unwrap();
    let timeout = Duration::from_millis(300);
    let state = AppState {
        db,
        catalog: CatalogClient::new(catalog_url, Secret::new("k"), timeout),
        payments: PaymentClient::new(&unreachable_url(), Secret::new("k"), timeout),
        webhook_secrets: test_webhook_secrets().into(),
        sessions: service_kit::session::SessionKeys::new(vec![Secret::new(
            "router-session-secret",
        )]),
        sign_ins: Default::default(),
        max_held_units: 20,
    };
    (dir, router(state, keys))
}

fn app(catalog_url: &str) -> (tempfile::TempDir, Router) {
    app_with_keys(catalog_url, test_keys())
}

/// A `payment.succeeded` webhook body for the order.
fn notice(order_id: i64, amount: &str) -> String {
    format!(
        r#"{{"type":"payment.succeeded","data":{{"payment_id":7,"order_id":{order_id},"amount":{amount}}}}}"#
    )
}

/// Sends `body` to the order's webhook, signed with `secrets` as message `id` at `timestamp`.
async fn webhook(
    app: &Router,
    order_id: i64,
    id: &str,
    timestamp: i64,
    body: &str,
    secrets: &[WebhookSecret],
) -> (StatusCode, Value) {
    let signature = signature_header(secrets, id, timestamp, body.as_bytes());
    let uri = format!("/orders/{order_id}/payment");
    let call = Call::new("POST", &uri)
        .json(body)
        .header(ID_HEADER, id)
        .header(TIMESTAMP_HEADER, timestamp.to_string())
        .header(SIGNATURE_HEADER, signature);
    send(app, call).await
}

/// The payment notice payment-service sends for a guide order, signed with the test secret.
async fn pay_by_webhook(app: &Router, order_id: i64, id: &str) -> (StatusCode, Value) {
    let body = notice(order_id, "999.99");
    webhook(
        app,
        order_id,
        id,
        unix_now(),
        &body,
        &test_webhook_secrets(),
    )
    .await
}

/// The statuses an order went through, oldest first.
fn history(order: &Value) -> Vec<&str> {
    order["status_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect()
}

async fn status_of(app: &Router, order_id: i64) -> Value {
    let (_, order) = send(app, Call::new("GET", &format!("/orders/{order_id}"))).await;
    order["status"].clone()
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
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the admin key must name the user"
    );
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
async fn a_signed_webhook_marks_an_order_paid_and_the_same_id_again_is_a_no_op() {
    let catalog = FakeCatalog::start().await;
    let (_dir, app) = app(&catalog.url);
    let (_, order) = place(&app, "u1", GUIDE_ORDER).await;
    let id = order["id"].as_i64().unwrap();
    let secrets = test_webhook_secrets();
    let body = notice(id, "999.99");
    for _ in 0..2 {
        let (status, paid) = webhook(&app, id, "msg_one", unix_now(), &body, &secrets).await;
        assert_eq!(status, StatusCode::OK, "{paid}");
        assert_eq!(paid["status"], "PAID");
        assert_eq!(paid["payment_id"], 7);
    }
    // Another message for an order already paid changes nothing either.
    let (status, again) = webhook(&app, id, "msg_two", unix_now(), &body, &secrets).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(history(&again), ["PENDING", "PAID"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_without_a_valid_fresh_signature_is_401_and_changes_nothing() {
    let catalog = FakeCatalog::start().await;
    let (_dir, app) = app(&catalog.url);
    let (_, order) = place(&app, "u1", GUIDE_ORDER).await;
    let id = order["id"].as_i64().unwrap();
    let uri = format!("/orders/{id}/payment");
    let body = notice(id, "999.99");
    let now = unix_now();
    let good = signature_header(&test_webhook_secrets(), "msg_x", now, body.as_bytes());
    let signed = |id: &str, ts: String, sig: String| {
        Call::new("POST", &uri)
            .json(&body)
            .header(ID_HEADER, id.to_string())
            .header(TIMESTAMP_HEADER, ts)
            .header(SIGNATURE_HEADER, sig)
    };
    let cases = [
        (
            "api key only, as before signatures",
            Call::new("POST", &uri).json(&body),
        ),
        (
            "no webhook-id",
            Call::new("POST", &uri)
                .json(&body)
                .header(TIMESTAMP_HEADER, now.to_string())
                .header(SIGNATURE_HEADER, good.clone()),
        ),
        (
            "no timestamp",
            Call::new("POST", &uri)
                .json(&body)
                .header(ID_HEADER, "msg_x")
                .header(SIGNATURE_HEADER, good.clone()),
        ),
        (
            "no signature",
            Call::new("POST", &uri)
                .json(&body)
                .header(ID_HEADER, "msg_x")
                .header(TIMESTAMP_HEADER, now.to_string()),
        ),
        (
            "empty v1 signature",
            signed("msg_x", now.to_string(), "v1,".into()),
        ),
        (
            "another message's id",
            signed("msg_y", now.to_string(), good.clone()),
        ),
        (
            "timestamp off by a second",
            signed("msg_x", (now + 1).to_string(), good.clone()),
        ),
    ];
    for (what, call) in cases {
        let (status, body) = send(&app, call).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(body["error"]["code"], "unauthorized", "{what}");
    }
    let secrets = test_webhook_secrets();
    for (what, ts) in [("stale", now - 301), ("future", now + 301)] {
        let (status, _) = webhook(&app, id, "msg_t", ts, &body, &secrets).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what} timestamp");
    }
    let other: Vec<WebhookSecret> = vec!["whsec_b3RoZXItc2VjcmV0".parse().unwrap()];
    let (status, _) = webhook(&app, id, "msg_o", now, &body, &other).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "wrong secret");
    // One byte of the body changed after signing.
    let tampered = body.replace("999.99", "999.98");
    let call = Call::new("POST", &uri)
        .json(&tampered)
        .header(ID_HEADER, "msg_x")
        .header(TIMESTAMP_HEADER, now.to_string())
        .header(SIGNATURE_HEADER, good.clone());
    let (status, _) = send(&app, call).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "tampered body");
    assert_eq!(status_of(&app, id).await, "PENDING");
    // The untouched message still goes through: nothing above used it up.
    let (status, _) = send(&app, signed("msg_x", now.to_string(), good)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(status_of(&app, id).await, "PAID");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_webhook_with_the_wrong_amount_or_order_changes_nothing() {
    let catalog = FakeCatalog::start().await;
    let (_dir, app) = app(&catalog.url);
    let (_, order) = place(&app, "u1", GUIDE_ORDER).await;
    let id = order["id"].as_i64().unwrap();
    let secrets = test_webhook_secrets();
    let (status, _) = webhook(&app, id, "m1", unix_now(), &notice(id, "1.00"), &secrets).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = webhook(
        &app,
        id,
        "m2",
        unix_now(),
        &notice(id + 1, "999.99"),
        &secrets,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = webhook(&app, id, "m3", unix_now(), "{nope", &secrets).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = webhook(&app, 999, "m4", unix_now(), &notice(999, "1.00"), &secrets).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(status_of(&app, id).await, "PENDING");
    // A refused message was not remembered: the corrected one with the same id is processed.
    let (status, _) = webhook(&app, id, "m1", unix_now(), &notice(id, "999.99"), &secrets).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(status_of(&app, id).await, "PAID");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lifecycle_allows_only_the_shop_transitions() {
    let catalog = FakeCatalog::start().await;
    let (_dir, app) = app(&catalog.url);
    let (_, order) = place(&app, "u1", GUIDE_ORDER).await;
    let id = order["id"].as_i64().unwrap();
    let uri = format!("/orders/{id}/status");
    let put = |status: &'static str| Call::new("PUT", &uri).json(status);
    let (status, _) = send(&app, put(r#"{"status":"SHIPPED"}"#)).await;
    assert_eq!(status, StatusCode::CONFLICT, "PENDING cannot ship");
    let (status, body) = send(&app, put(r#"{"status":"PAID"}"#)).await;
    assert_eq!(status, StatusCode::CONFLICT, "only a signed webhook pays");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("webhook")
    );
    let (status, _) = send(&app, put(r#"{"status":"LOST"}"#)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(status_of(&app, id).await, "PENDING");

    pay_by_webhook(&app, id, "m1").await;
    let (status, _) = send(&app, put(r#"{"status":"CANCELLED","from":"PENDING"}"#)).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "only from PENDING, as asked: a paid order is not cancelled"
    );
    let (status, _) = send(&app, put(r#"{"status":"CANCELLED","from":"LOST"}"#)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(status_of(&app, id).await, "PAID");
    let (status, _) = send(&app, put(r#"{"status":"DELIVERED"}"#)).await;
    assert_eq!(status, StatusCode::CONFLICT, "PAID cannot skip SHIPPED");
    let (status, shipped) = send(&app, put(r#"{"status":"shipped"}"#)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shipped["status"], "SHIPPED");
    let (_, delivered) = send(&app, put(r#"{"status":"DELIVERED"}"#)).await;
    assert_eq!(delivered["status"], "DELIVERED");
    assert_eq!(
        history(&delivered),
        ["PENDING", "PAID", "SHIPPED", "DELIVERED"]
    );
    // A late webhook never moves it backwards.
    let (status, late) = pay_by_webhook(&app, id, "m9").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(late["status"], "DELIVERED");
    let (status, _) = send(
        &app,
        Call::new("PUT", "/orders/999/status").json(r#"{"status":"SHIPPED"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_order_keeps_its_reason_and_refuses_payment() {
    let catalog = FakeCatalog::start().await;
    let (_dir, app) = app(&catalog.url);
    let (_, order) = place(&app, "u1", GUIDE_ORDER).await;
    let id = order["id"].as_i64().unwrap();
    let (status, cancelled) = send(
        &app,
        Call::new("PUT", &format!("/orders/{id}/status"))
            .json(r#"{"status":"CANCELLED","reason":"changed my mind"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cancelled["status_history"][1]["reason"], "changed my mind");
    let (status, _) = pay_by_webhook(&app, id, "m1").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(status_of(&app, id).await, "CANCELLED");
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_count_orders_by_status_and_sum_paid_revenue() {
    let catalog = FakeCatalog::start().await;
    let (_dir, app) = app(&catalog.url);
    for _ in 0..3 {
        place(&app, "u1", GUIDE_ORDER).await;
    }
    place(
        &app,
        "u2",
        r#"[{"product_id":2,"quantity":2,"price":29.99}]"#,
    )
    .await;
    webhook(
        &app,
        1,
        "m1",
        unix_now(),
        &notice(1, "999.99"),
        &test_webhook_secrets(),
    )
    .await;
    webhook(
        &app,
        4,
        "m4",
        unix_now(),
        &notice(4, "59.98"),
        &test_webhook_secrets(),
    )
    .await;
    send(
        &app,
        Call::new("PUT", "/orders/2/status").json(r#"{"status":"CANCELLED"}"#),
    )
    .await;
    let (status, stats) = send(&app, Call::new("GET", "/orders/stats")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats["orders_by_status"]["PENDING"], 1);
    assert_eq!(stats["orders_by_status"]["PAID"], 2);
    assert_eq!(stats["orders_by_status"]["CANCELLED"], 1);
    assert_eq!(stats["orders_by_status"]["SHIPPED"], 0);
    assert_eq!(stats["order_count"], 4);
    assert_eq!(stats["revenue"], json!(1059.97));
    assert_eq!(
        stats["reconciliation"]["status"], "unavailable",
        "payments are unreachable here"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_whose_request_was_cut_off_by_a_crash_is_freed_by_its_lease_or_at_start_up() {
    let catalog = FakeCatalog::start().await;
    let (dir, app) = app(&catalog.url);
    let call = || {
        Call::new("POST", "/orders?user_id=u1")
            .json(GUIDE_ORDER)
            .header("Idempotency-Key", "k-crash")
    };
    let (status, first) = send(&app, call()).await;
    assert_eq!(status, StatusCode::CREATED);
    // The same file, as the next process would open it.
    let db = Db::open(
        &dir.path().join("orders.db"),
        &migrations(),
        Durability::Full,
    )
    .unwrap();
    // As a crash leaves it: the key taken, no answer stored, `started_ms_ago` ago.
    let cut_off = |started_ms_ago: i64| {
        let db = db.clone();
        async move {
            let started = service_kit::clock::unix_now_ms() - started_ms_ago;
            db.write(move |tx| {
                Ok(tx.execute(
                    "UPDATE idempotency_keys SET state = 'in_flight', status = NULL, body = NULL,
                         created_at_ms = ?1",
                    [started],
                )?)
            })
            .await
            .unwrap()
        }
    };
    cut_off(0).await;
    let (status, answer) = send(&app, call()).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a request with the key may still be running"
    );
    assert_eq!(
        answer["error"]["code"], "request_in_flight",
        "not a no: the first request may yet succeed"
    );
    let lease = service_kit::clock::millis(idempotency::IN_FLIGHT_LEASE);
    cut_off(lease + 1_000).await;
    let (status, headers, again) = send_raw(&app, call()).await;
    assert_eq!(status, StatusCode::CREATED, "past the lease the retry runs");
    assert!(headers.get("idempotent-replayed").is_none());
    let again: Value = serde_json::from_slice(&again).unwrap();
    assert_eq!(
        (again["id"].clone(), again["ref"].clone()),
        (first["id"].clone(), first["ref"].clone()),
        "the retry finds the order placed under its key, never places a second"
    );
    cut_off(0).await;
    assert_eq!(idempotency::free_abandoned_keys(&db).await.unwrap(), 1);
    let (status, headers, _) = send_raw(&app, call()).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "freed at start-up, the retry runs at once"
    );
    assert!(headers.get("idempotent-replayed").is_none());
    assert_eq!(
        order_count(&app).await,
        1,
        "one order for one key, through every retry"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idempotency_key_replays_the_first_order_byte_for_byte() {
    let catalog = FakeCatalog::start().await;
    let keys = ApiKeys::new(vec![Secret::new(TEST_KEY), Secret::new("other-key")]);
    let (_dir, app) = app_with_keys(&catalog.url, keys);
    let call = |body: &'static str, key: &'static str| {
        Call::new("POST", "/orders?user_id=u1")
            .json(body)
            .header("Idempotency-Key", key)
    };
    let (first_status, first_headers, first) = send_raw(&app, call(GUIDE_ORDER, "k-1")).await;
    assert_eq!(first_status, StatusCode::CREATED);
    assert!(first_headers.get("idempotent-replayed").is_none());
    let (status, headers, replay) = send_raw(&app, call(GUIDE_ORDER, "k-1")).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(replay, first, "byte for byte");
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(order_count(&app).await, 1);

    let other = r#"[{"product_id":2,"quantity":1,"price":29.99}]"#;
    let (status, body) = send(&app, call(other, "k-1")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let long = "k".repeat(256);
    let (status, _) = send(
        &app,
        Call::new("POST", "/orders?user_id=u1")
            .json(GUIDE_ORDER)
            .header("Idempotency-Key", long),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Keys are scoped by API key: another client's k-1 is its own.
    let (status, _) = send(&app, call(GUIDE_ORDER, "k-1").key(Some("other-key"))).await;
    assert_eq!(status, StatusCode::CREATED);
    // Without a key the old behaviour stays: every request runs.
    place(&app, "u1", GUIDE_ORDER).await;
    assert_eq!(order_count(&app).await, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn orders_are_listed_by_user_and_status() {
    let catalog = FakeCatalog::start().await;
    let (_dir, app) = app(&catalog.url);
    let (_, first) = place(&app, "alice", GUIDE_ORDER).await;
    place(&app, "alice", GUIDE_ORDER).await;
    place(&app, "bob", GUIDE_ORDER).await;
    let first_id = first["id"].as_i64().unwrap();
    let body = notice(first_id, "999.99");
    webhook(
        &app,
        first_id,
        "m",
        unix_now(),
        &body,
        &test_webhook_secrets(),
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

#[test]
fn every_migration_is_a_numbered_file_of_the_folder_and_no_released_one_was_edited() {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let checked = service_kit::migrations::check_history(&folder, order_service::MIGRATIONS);
    assert_eq!(checked, Ok(()));
}

#[test]
fn orders_placed_before_refs_keep_their_rows_lines_history_and_webhooks() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = rusqlite::Connection::open(dir.path().join("orders.db")).unwrap();
    let before = service_kit::migrations::from_files(&order_service::MIGRATIONS[..5]);
    service_kit::migrations::apply(&mut conn, &before).unwrap();
    conn.execute_batch(
        "INSERT INTO orders (user_id, total_cents, status, catalog_verified, payment_id)
             VALUES ('u1', 99999, 'PAID', 1, 4);
         INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price_cents)
             VALUES (1, 1, 1, 1, 99999);
         INSERT INTO order_status_history (order_id, status) VALUES (1, 'PENDING');
         INSERT INTO order_status_history (order_id, status) VALUES (1, 'PAID');
         INSERT INTO processed_webhooks (webhook_id, order_id, payment_id) VALUES ('m1', 1, 4);",
    )
    .unwrap();
    service_kit::migrations::apply(&mut conn, &order_service::migrations()).unwrap();
    let row: (String, String, String, i64, i64) = conn
        .query_row(
            "SELECT ref, status, stock, refunded_cents, payment_id FROM orders WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!(row, ("1".into(), "PAID".into(), "untracked".into(), 0, 4));
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        count("SELECT COUNT(*) FROM order_items WHERE order_id = 1"),
        1
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM order_status_history WHERE order_id = 1"),
        2
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM processed_webhooks WHERE order_id = 1"),
        1
    );
    assert_eq!(count("SELECT COUNT(*) FROM pragma_foreign_key_check"), 0);
    // New orders number on from the old ones.
    conn.execute(
        "INSERT INTO orders (user_id, total_cents, status, catalog_verified, ref)
             VALUES ('u2', 100, 'PENDING', 1, 'r2')",
        [],
    )
    .unwrap();
    assert_eq!(conn.last_insert_rowid(), 2);
}

const ADA: &str = r#"{
    "items": [{"product_id":1,"quantity":1,"price":999.99},{"product_id":2,"quantity":2,"price":29.99}],
    "customer": {"email":"Ada@Example.COM","name":"Ada Lovelace"},
    "shipping_address": {"name":"Ada Lovelace","lines":["12 St James's Square"],
                         "city":"London","postal_code":"sw1y 4jh","country":"gb"}
}"#;

#[tokio::test(flavor = "multi_thread")]
async fn an_order_object_keeps_its_customer_address_and_product_names_and_is_found_by_email() {
    let catalog = FakeCatalog::start().await;
    let (_dir, app) = app(&catalog.url);
    let (status, order) = place(&app, "ada", ADA).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(
        order["customer"],
        json!({"email":"Ada@example.com","name":"Ada Lovelace"})
    );
    assert_eq!(order["shipping_address"]["country"], "GB");
    assert_eq!(order["shipping_address"]["postal_code"], "SW1Y 4JH");
    assert_eq!(order["total"], json!(1059.97));
    let names: Vec<&str> = order["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Laptop", "Wireless Mouse"]);
    let (_, again) = send(&app, Call::new("GET", &format!("/orders/{}", order["id"]))).await;
    assert_eq!(again["customer"], order["customer"]);
    assert_eq!(again["shipping_address"], order["shipping_address"]);
    // The seed's bare array still places an order, without either.
    let (status, bare) = place(&app, "bob", GUIDE_ORDER).await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(bare["customer"].is_null() && bare["shipping_address"].is_null());
    let (_, found) = send(&app, Call::new("GET", "/orders?email=ada@EXAMPLE.com")).await;
    let ids: Vec<&Value> = found.as_array().unwrap().iter().map(|o| &o["id"]).collect();
    assert_eq!(ids, [&order["id"]]);
    let (status, _) = send(&app, Call::new("GET", "/orders?email=not-an-address")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, events) = send(&app, Call::new("GET", "/events?type=order.created")).await;
    let created = &events.as_array().unwrap()[0]["payload"];
    assert_eq!(created["customer"]["email"], "Ada@example.com");
    assert_eq!(created["shipping_address"]["city"], "London");
    assert_eq!(created["lines"][0]["name"], "Laptop");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_customer_or_address_field_is_a_422_naming_it_and_places_nothing() {
    let catalog = FakeCatalog::start().await;
    let (_dir, app) = app(&catalog.url);
    let good: Value = serde_json::from_str(ADA).unwrap();
    let cases: [(&str, Value, &str); 6] = [
        ("/customer/email", json!("ada@nowhere"), "customer.email"),
        ("/customer/name", json!(""), "customer.name"),
        (
            "/shipping_address/country",
            json!("XX"),
            "shipping_address.country",
        ),
        (
            "/shipping_address/lines",
            json!([]),
            "shipping_address.lines",
        ),
        (
            "/shipping_address/postal_code",
            json!("<script>"),
            "shipping_address.postal_code",
        ),
        (
            "/shipping_address/city",
            json!("   "),
            "shipping_address.city",
        ),
    ];
    for (pointer, value, field) in cases {
        let mut body = good.clone();
        *body.pointer_mut(pointer).unwrap() = value;
        let (status, answer) = place(&app, "ada", &body.to_string()).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{pointer}: {answer}"
        );
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(field), "{pointer}: {message}");
        assert!(
            !message.contains("nowhere") && !message.contains("XX"),
            "{message}"
        );
    }
    for body in [
        r#"{"items":"x"}"#,
        r#"{"customer":{"email":"a@b.co"}}"#,
        "7",
    ] {
        let (status, answer) = place(&app, "ada", body).await;
        assert!(status.is_client_error(), "{body}: {status} {answer}");
    }
    assert_eq!(order_count(&app).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn shipping_takes_a_carrier_and_tracking_number_shown_on_the_order_and_in_its_events() {
    let catalog = FakeCatalog::start().await;
    let (_dir, app) = app(&catalog.url);
    let (_, order) = place(&app, "ada", ADA).await;
    let id = order["id"].as_i64().unwrap();
    let body = notice(id, "1059.97");
    let secrets = test_webhook_secrets();
    let (status, _) = webhook(&app, id, "m-ship", unix_now(), &body, &secrets).await;
    assert_eq!(status, StatusCode::OK);
    let uri = format!("/orders/{id}/status");
    for (half, missing) in [
        (r#"{"status":"SHIPPED","carrier":"DHL"}"#, "tracking_number"),
        (
            r#"{"status":"SHIPPED","tracking_number":"JD01"}"#,
            "carrier",
        ),
        (
            r#"{"status":"SHIPPED","carrier":" ","tracking_number":"JD01"}"#,
            "carrier",
        ),
        (
            r#"{"status":"CANCELLED","carrier":"DHL","tracking_number":"JD01"}"#,
            "SHIPPED",
        ),
    ] {
        let (status, answer) = send(&app, Call::new("PUT", &uri).json(half)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{half}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains(missing)
        );
    }
    assert_eq!(
        status_of(&app, id).await,
        "PAID",
        "the refused changes did nothing"
    );
    let ship = r#"{"status":"SHIPPED","carrier":"DHL","tracking_number":"JD014600006281230704"}"#;
    let (status, shipped) = send(&app, Call::new("PUT", &uri).json(ship)).await;
    assert_eq!(status, StatusCode::OK, "{shipped}");
    assert_eq!(
        shipped["shipment"],
        json!({"carrier":"DHL","tracking_number":"JD014600006281230704"})
    );
    let (_, events) = send(&app, Call::new("GET", "/events?type=order.shipped")).await;
    assert_eq!(events[0]["payload"]["order_id"], id);
    assert_eq!(
        events[0]["payload"]["tracking_number"],
        "JD014600006281230704"
    );
    let (_, delivered) = send(
        &app,
        Call::new("PUT", &uri).json(r#"{"status":"DELIVERED"}"#),
    )
    .await;
    assert_eq!(
        delivered["shipment"]["carrier"], "DHL",
        "kept after delivery"
    );
}

async fn create_promo(app: &Router, body: &str) -> (StatusCode, Value) {
    send(app, Call::new("POST", "/promo-codes").json(body)).await
}

async fn place_with_code(app: &Router, user: &str, code: &str) -> (StatusCode, Value) {
    let body = format!(
        r#"{{"items":[{{"product_id":2,"quantity":2,"price":29.99}}],"promo_code":"{code}"}}"#
    );
    place(app, user, &body).await
}

async fn place_with_code_for(
    app: &Router,
    user: &str,
    code: &str,
    email: &str,
) -> (StatusCode, Value) {
    let body = format!(
        r#"{{"items":[{{"product_id":2,"quantity":2,"price":29.99}}],"promo_code":"{code}","customer":{{"email":"{email}"}}}}"#
    );
    place(app, user, &body).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_per_customer_limit_counts_the_customer_not_how_the_email_is_spelled() {
    let catalog = FakeCatalog::start().await;
    let (_dir, app) = app(&catalog.url);
    let (status, answer) = create_promo(
        &app,
        r#"{"code":"ONEEACH","percent_off":10,"max_per_customer":1}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let (status, first) = place_with_code_for(&app, "vic", "ONEEACH", "vic@example.com").await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let before = order_count(&app).await;
    // The same user id under other emails, the same mailbox spelled otherwise, and no email.
    for (user, email) in [
        ("vic", "victoria@example.com"),
        ("vic", "other@example.org"),
        ("vic2", "VIC@Example.com"),
        ("vic3", "vic+again@example.com"),
        ("vic4", " vic@example.com"),
    ] {
        let (status, answer) = place_with_code_for(&app, user, "ONEEACH", email).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{user} {email}: {answer}"
        );
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains("one customer"), "{message}");
        assert!(
            !message.contains('@'),
            "the email is never repeated: {message}"
        );
    }
    let (status, answer) = place_with_code(&app, "vic", "ONEEACH").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("customer's email")
    );
    assert_eq!(order_count(&app).await, before, "no order was placed");
    let (_, code) = send(&app, Call::new("GET", "/promo-codes/ONEEACH")).await;
    assert_eq!(code["redeemed"], 1, "{code}");
    // Another customer is another customer.
    let (status, _) = place_with_code_for(&app, "ann", "ONEEACH", "ann@example.com").await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_promo_code_takes_its_discount_off_and_shows_subtotal_discount_and_total() {
    let catalog = FakeCatalog::start().await;
    let (_dir, app) = app(&catalog.url);
    let (status, promo) = create_promo(&app, r#"{"code":"welcome10","percent_off":10}"#).await;
    assert_eq!(status, StatusCode::CREATED, "{promo}");
    assert_eq!(promo["code"], "WELCOME10");
    let (status, order) = place_with_code(&app, "ann", "Welcome10").await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["subtotal"], json!(59.98));
    assert_eq!(
        order["discount"],
        json!(5.99),
        "10% of 59.98, rounded down to the cent"
    );
    assert_eq!(order["total"], json!(53.99));
    assert_eq!(order["promo_code"], "WELCOME10");
    let (_, events) = send(&app, Call::new("GET", "/events?type=order.created")).await;
    assert_eq!(events[0]["payload"]["discount"], json!(5.99));
    // The payment webhook must carry what is paid: the discounted total.
    let id = order["id"].as_i64().unwrap();
    let secrets = test_webhook_secrets();
    let (status, _) = webhook(&app, id, "m-a", unix_now(), &notice(id, "59.98"), &secrets).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the subtotal is not what is owed"
    );
    let (status, _) = webhook(&app, id, "m-b", unix_now(), &notice(id, "53.99"), &secrets).await;
    assert_eq!(status, StatusCode::OK);
    let (_, fixed) =
        create_promo(&app, r#"{"code":"FIVE","amount_off":5.00,"min_total":50}"#).await;
    assert_eq!(fixed["amount_off"], json!(5.0));
    let (_, order) = place_with_code(&app, "bob", "five").await;
    assert_eq!(order["total"], json!(54.98));
    let (_, listed) = send(&app, Call::new("GET", "/promo-codes")).await;
    let redeemed: Vec<(&str, i64)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["code"].as_str().unwrap(), p["redeemed"].as_i64().unwrap()))
        .collect();
    assert_eq!(redeemed.len(), 2);
    assert!(redeemed.contains(&("WELCOME10", 1)) && redeemed.contains(&("FIVE", 1)));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_code_that_does_not_apply_is_a_422_saying_why_and_places_nothing() {
    let catalog = FakeCatalog::start().await;
    let (_dir, app) = app(&catalog.url);
    for body in [
        r#"{"code":"OLD","percent_off":10,"ends_at":"2020-01-01T00:00:00Z"}"#,
        r#"{"code":"LATER","percent_off":10,"starts_at":"2999-01-01T00:00:00Z"}"#,
        r#"{"code":"BIG","percent_off":10,"min_total":100}"#,
        r#"{"code":"ONCE","percent_off":10,"max_redemptions":1}"#,
        r#"{"code":"MINE","percent_off":10,"max_per_customer":1}"#,
        r#"{"code":"GONE","percent_off":10}"#,
    ] {
        let (status, answer) = create_promo(&app, body).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }
    let (status, _) = create_promo(&app, r#"{"code":"gone","amount_off":1}"#).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "codes are unique, whatever their case"
    );
    let (status, _) = send(&app, Call::new("DELETE", "/promo-codes/gone")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        place_with_code(&app, "x", "ONCE").await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        place_with_code_for(&app, "amy", "MINE", "amy@example.com")
            .await
            .0,
        StatusCode::CREATED
    );
    let before = order_count(&app).await;
    for (code, user, why) in [
        ("NOPE", "u", "unknown"),
        ("OLD", "u", "expired"),
        ("LATER", "u", "not valid yet"),
        ("BIG", "u", "at least 100.00"),
        ("ONCE", "u", "used up"),
        ("MINE", "amy", "customer's email"),
        ("GONE", "u", "withdrawn"),
        ("no spaces", "u", "promo_code"),
    ] {
        let (status, answer) = place_with_code(&app, user, code).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{code}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(why), "{code}: {message}");
    }
    assert_eq!(order_count(&app).await, before, "no order was placed");
    let (_, once) = send(&app, Call::new("GET", "/promo-codes/once")).await;
    assert_eq!(once["redeemed"], 1, "refusals redeem nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_orders_racing_for_a_code_limited_to_ten_redeem_it_exactly_ten_times() {
    let catalog = FakeCatalog::start().await;
    let (_dir, app) = app(&catalog.url);
    create_promo(
        &app,
        r#"{"code":"TEN","percent_off":10,"max_redemptions":10}"#,
    )
    .await;
    let racers: Vec<_> = (0..50)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move { place_with_code(&app, &format!("racer{i}"), "TEN").await })
        })
        .collect();
    let mut placed = Vec::new();
    for racer in racers {
        let (status, answer) = racer.await.unwrap();
        match status {
            StatusCode::CREATED => placed.push(answer["id"].as_i64().unwrap()),
            StatusCode::UNPROCESSABLE_ENTITY => {
                assert!(
                    answer["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("used up")
                )
            }
            other => panic!("{other}: {answer}"),
        }
    }
    assert_eq!(placed.len(), 10);
    let (_, code) = send(&app, Call::new("GET", "/promo-codes/TEN")).await;
    assert_eq!(code["redeemed"], 10);
    // A cancelled order gives its redemption back: one more order may use the code.
    let uri = format!("/orders/{}/status", placed[0]);
    let cancel = Call::new("PUT", &uri).json(r#"{"status":"CANCELLED"}"#);
    assert_eq!(send(&app, cancel).await.0, StatusCode::OK);
    let (_, code) = send(&app, Call::new("GET", "/promo-codes/TEN")).await;
    assert_eq!(code["redeemed"], 9);
    assert_eq!(
        place_with_code(&app, "late", "TEN").await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        place_with_code(&app, "later", "TEN").await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn orders_are_found_by_id_ref_user_email_name_and_time_with_their_total() {
    let catalog = FakeCatalog::start().await;
    let (_dir, app) = app(&catalog.url);
    let (_, ada) = place(&app, "ada", ADA).await;
    for user in ["bob", "cy", "dee"] {
        place(&app, user, GUIDE_ORDER).await;
    }
    let ids = |body: &[u8]| -> Vec<i64> {
        serde_json::from_slice::<Value>(body)
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_i64().unwrap())
            .collect()
    };
    let ada_id = ada["id"].as_i64().unwrap();
    let reference = ada["ref"].as_str().unwrap().to_string();
    for q in [
        ada_id.to_string(),
        reference,
        "ada".into(),
        "ADA@example.com".into(),
        "lovelace".into(),
    ] {
        let uri = format!("/orders?q={q}");
        let (status, headers, body) = send_raw(&app, Call::new("GET", &uri)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ids(&body), [ada_id], "{q}");
        assert_eq!(headers["x-total-count"], "1");
    }
    let (_, headers, body) = send_raw(&app, Call::new("GET", "/orders?limit=3")).await;
    assert_eq!(ids(&body).len(), 3);
    assert_eq!(headers["x-total-count"], "4");
    assert_eq!(headers["link"], "</orders?limit=3&offset=3>; rel=\"next\"");
    let (_, _, body) = send_raw(
        &app,
        Call::new(
            "GET",
            "/orders?created_after=2000-01-01T00:00:00Z&created_before=2999-01-01T00:00:00%2B02:00",
        ),
    )
    .await;
    assert_eq!(ids(&body).len(), 4);
    let (_, headers, body) = send_raw(
        &app,
        Call::new("GET", "/orders?created_after=2999-01-01T00:00:00Z"),
    )
    .await;
    assert!(ids(&body).is_empty());
    assert_eq!(headers["x-total-count"], "0");
    assert!(headers.get("link").is_none());
    let (status, _) = send(&app, Call::new("GET", "/orders?created_before=yesterday")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, _, body) = send_raw(&app, Call::new("GET", "/orders?q=%25")).await;
    assert!(ids(&body).is_empty(), "% is a character, not a wildcard");
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_show_revenue_per_day_the_average_order_and_the_top_products() {
    let catalog = FakeCatalog::start().await;
    let (_dir, app) = app(&catalog.url);
    let secrets = test_webhook_secrets();
    for (user, body, amount) in [("a", ADA, "1059.97"), ("b", GUIDE_ORDER, "999.99")] {
        let (_, order) = place(&app, user, body).await;
        let id = order["id"].as_i64().unwrap();
        let (status, _) = webhook(
            &app,
            id,
            &format!("m-{user}"),
            unix_now(),
            &notice(id, amount),
            &secrets,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    place(&app, "c", GUIDE_ORDER).await; // unpaid: not in the books
    let (_, stats) = send(&app, Call::new("GET", "/orders/stats")).await;
    assert_eq!(stats["average_order_value"], json!(1029.98), "{stats}");
    let days = stats["revenue_by_day"].as_array().unwrap();
    assert_eq!(days.len(), 1, "{stats}");
    assert_eq!(days[0]["orders"], 2);
    assert_eq!(days[0]["revenue"], json!(2059.96));
    let top: Vec<(&str, i64)> = stats["top_products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["units"].as_i64().unwrap()))
        .collect();
    assert_eq!(top, [("Laptop", 2), ("Wireless Mouse", 2)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_misspelled_field_in_a_body_or_query_is_a_422_naming_it_and_changes_nothing() {
    let catalog = FakeCatalog::start().await;
    let (_dir, app) = app(&catalog.url);
    let (_, order) = place(&app, "u1", GUIDE_ORDER).await;
    let id = order["id"].as_i64().unwrap();
    pay_by_webhook(&app, id, "m1").await;
    // `form` for `from`: without the guard it asked for, this would cancel and refund a paid
    // order.
    let uri = format!("/orders/{id}/status");
    let cancel = Call::new("PUT", &uri).json(r#"{"status":"CANCELLED","form":"PENDING"}"#);
    refused_naming(&app, cancel, "form").await;
    assert_eq!(status_of(&app, id).await, "PAID");
    for (body, field) in [
        (
            r#"{"items":[{"product_id":1,"quantity":1,"price":999.99}],"promocode":"X"}"#,
            "promocode",
        ),
        (
            r#"{"items":[{"product_id":1,"quantity":1,"price":999.99}],"shipping_adress":{}}"#,
            "shipping_adress",
        ),
        (
            r#"[{"product_id":1,"quantity":1,"price":999.99,"discount":5}]"#,
            "discount",
        ),
        (
            r#"{"items":[{"product_id":1,"quantity":1,"price":999.99}],"customer":{"email":"a@example.com","nmae":"A"}}"#,
            "nmae",
        ),
    ] {
        let place = Call::new("POST", "/orders?user_id=u1").json(body);
        refused_naming(&app, place, field).await;
    }
    refused_naming(&app, Call::new("GET", "/orders?user=u1"), "user").await;
    assert_eq!(order_count(&app).await, 1, "no order was placed");
}
