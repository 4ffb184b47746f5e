//! Router tests for payment-service against a fake order service on port 0: auth,
//! validation, verified captures, and a payment taken while the order service is down
//! (only authorized, nothing captured).

// A test or tool: a failure to set up ends it, with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use payment_service::{AppState, migrations, router};
use service_kit::db::{Db, Durability};
use service_kit::testing::{
    Call, refused_naming, send, send_raw, test_keys, test_webhook_secrets, unreachable_url,
};
use std::time::Duration;

/// A fake order service: every order is PENDING and holds its stock; order 5 costs 1.00,
/// orders 9 and 10 cost 999.99, every other one 10.00. Its webhook endpoint answers too
/// late, so deliveries stay pending.
async fn fake_orders() -> String {
    async fn order(Path(id): Path<i64>) -> axum::Json<serde_json::Value> {
        let total = match id {
            5 => 1.0,
            9 | 10 => 999.99,
            _ => 10.0,
        };
        axum::Json(serde_json::json!({
            "id": id, "ref": format!("order-ref-{id}"), "total": total,
            "status": "PENDING", "stock": "held",
        }))
    }
    async fn webhook() -> StatusCode {
        tokio::time::sleep(Duration::from_secs(2)).await;
        StatusCode::OK
    }
    let fake = Router::new()
        .route("/orders/{id}", axum::routing::get(order))
        .route("/orders/{id}/payment", axum::routing::post(webhook));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, fake).await.unwrap() });
    url
}

async fn app() -> (tempfile::TempDir, Router) {
    app_with(&fake_orders().await)
}

fn app_with(order_url: &str) -> (tempfile::TempDir, Router) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        &dir.path().join("payments.db"),
        &migrations(),
        Durability::Full,
    )
    .unwrap();
    let state = AppState::new(
        db,
        order_url,
        "k",
        test_webhook_secrets(),
        "1h".parse().unwrap(),
        std::time::Duration::from_millis(300),
    );
    (dir, router(state, test_keys()))
}

const GOOD_CARD: &str = "4242424242424242";

fn card_body(number: &str, exp_year: u32, cvc: &str) -> String {
    format!(
        r#"{{"card":{{"number":"{number}","exp_month":12,"exp_year":{exp_year},"cvc":"{cvc}"}}}}"#
    )
}

async fn payment_count(app: &Router) -> usize {
    let (_, payments) = send(app, Call::new("GET", "/payments")).await;
    payments.as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_payment_route_refuses_a_missing_or_wrong_key_and_charges_nothing() {
    let (_dir, app) = app().await;
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
    let (_dir, app) = app().await;
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
async fn a_verified_order_is_captured_once_in_its_exact_total() {
    let (_dir, app) = app().await;
    let (status, body) = send(&app, Call::new("POST", "/pay?order_id=3&amount=9.99")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, payment) = send(&app, Call::new("POST", "/pay?order_id=3&amount=10.00")).await;
    assert_eq!(status, StatusCode::OK, "{payment}");
    assert_eq!(payment["status"], "captured");
    assert_eq!(payment["order_verified"], true);
    assert_eq!(payment["order_ref"], "order-ref-3");
    assert_eq!(payment["ref"].as_str().unwrap().len(), 36);
    assert!(
        payment["webhook_delivery_id"]
            .as_str()
            .unwrap()
            .starts_with("msg_")
    );
    let (status, body) = send(&app, Call::new("POST", "/pay?order_id=3&amount=10.00")).await;
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
    let (status, _) = send(&app, Call::new("GET", "/payments/99")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_order_service_down_a_payment_is_only_authorized_and_nothing_is_captured() {
    let (_dir, app) = app_with(&unreachable_url());
    for amount in ["999.99", "0.01"] {
        let uri = format!("/pay?order_id=3&amount={amount}");
        let (status, payment) = send(&app, Call::new("POST", &uri)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{payment}");
        assert_eq!(payment["status"], "authorized");
        assert_eq!(payment["order_verified"], false);
        assert_eq!(payment["order_ref"], serde_json::Value::Null);
        assert_eq!(payment["webhook_delivery_id"], serde_json::Value::Null);
    }
    let (_, summary) = send(&app, Call::new("GET", "/payments/summary")).await;
    assert_eq!(summary["captured_count"], 0, "no money moved blind");
    let (_, for_order) = send(&app, Call::new("GET", "/payments?order_id=3")).await;
    assert_eq!(for_order.as_array().unwrap().len(), 2);
    let (_, events) = send(&app, Call::new("GET", "/events?type=payment.authorized")).await;
    assert_eq!(events.as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_test_cards_succeed_or_decline_as_in_stripe_test_mode() {
    let (_dir, app) = app().await;
    let cases = [
        (1, "4000000000000002", "card_declined"),
        (2, "4000000000009995", "insufficient_funds"),
        (3, "4000000000000069", "expired_card"),
        (4, "4000000000000127", "incorrect_cvc"),
    ];
    for (order, number, code) in cases {
        let uri = format!("/pay?order_id={order}&amount=10.00");
        let (status, body) = send(
            &app,
            Call::new("POST", &uri).json(&card_body(number, 2030, "123")),
        )
        .await;
        assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{number}");
        assert_eq!(body["error"]["code"], code, "{number}");
        let (_, recorded) = send(
            &app,
            Call::new("GET", &format!("/payments?order_id={order}")),
        )
        .await;
        assert_eq!(recorded[0]["status"], "failed", "{number}");
        assert_eq!(recorded[0]["failure_code"], code);
        assert_eq!(
            recorded[0]["webhook_status"],
            serde_json::Value::Null,
            "no webhook for a decline"
        );
    }
    // A declined order can still be paid with a good card.
    let (status, paid) = send(
        &app,
        Call::new("POST", "/pay?order_id=1&amount=10.00").json(&card_body(GOOD_CARD, 2030, "123")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{paid}");
    assert_eq!(paid["status"], "captured");
    assert_eq!(paid["card"]["brand"], "visa");
    assert_eq!(paid["card"]["last4"], "4242");
    assert_eq!(paid["card"]["exp_year"], 2030);
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_cards_are_422_and_record_nothing() {
    let (_dir, app) = app().await;
    for body in [
        card_body("4242424242424241", 2030, "123"),
        card_body(GOOD_CARD, 2020, "123"),
        card_body(GOOD_CARD, 2030, "12"),
        r#"{"card":{"number":4242424242424242}}"#.to_string(),
        "not json".to_string(),
    ] {
        let (status, answer) = send(
            &app,
            Call::new("POST", "/pay?order_id=1&amount=10.00").json(&body),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            !message.contains("4242424242424242"),
            "the number is never echoed: {message}"
        );
    }
    assert_eq!(payment_count(&app).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_card_number_or_cvc_reaches_the_database_or_its_wal() {
    let (dir, app) = app().await;
    for (order, number) in [
        (1, GOOD_CARD),
        (2, "4000000000000002"),
        (3, "5555555555554444"),
    ] {
        let uri = format!("/pay?order_id={order}&amount=10.00");
        send(
            &app,
            Call::new("POST", &uri)
                .json(&card_body(number, 2031, "123"))
                .header("Idempotency-Key", format!("k{order}")),
        )
        .await;
    }
    let mut checked = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for secret in [GOOD_CARD, "4000000000000002", "5555555555554444", "\"cvc\""] {
            assert!(
                !text.contains(secret),
                "{secret} found in {}",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(checked >= 2, "the database and its WAL were read");
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_concurrent_payments_with_one_idempotency_key_charge_once() {
    let (_dir, app) = app().await;
    let body = card_body(GOOD_CARD, 2030, "123");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (app, body) = (app.clone(), body.clone());
        tasks.spawn(async move {
            let call = Call::new("POST", "/pay?order_id=9&amount=999.99")
                .json(&body)
                .header("Idempotency-Key", "pay-9");
            send_raw(&app, call).await
        });
    }
    let mut answers = Vec::new();
    while let Some(done) = tasks.join_next().await {
        answers.push(done.unwrap());
    }
    let ok: Vec<_> = answers
        .iter()
        .filter(|(s, _, _)| *s == StatusCode::OK)
        .collect();
    assert!(!ok.is_empty());
    assert!(
        answers
            .iter()
            .all(|(s, _, _)| *s == StatusCode::OK || *s == StatusCode::CONFLICT),
        "only the answer itself or 'still in flight'"
    );
    assert!(
        ok.iter().all(|(_, _, body)| body == &ok[0].2),
        "every 200 is the same answer"
    );
    assert_eq!(payment_count(&app).await, 1, "one payment row");
    // Once finished, the key replays the first answer.
    let call = Call::new("POST", "/pay?order_id=9&amount=999.99")
        .json(&body)
        .header("Idempotency-Key", "pay-9");
    let (status, headers, replay) = send_raw(&app, call).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(replay, ok[0].2);
    // The same key with another request is refused.
    let call =
        Call::new("POST", "/pay?order_id=10&amount=999.99").header("Idempotency-Key", "pay-9");
    assert_eq!(send(&app, call).await.0, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test(flavor = "multi_thread")]
async fn deliveries_are_listed_filtered_and_unknown_ones_are_404() {
    let (_dir, app) = app().await;
    let (_, payment) = send(&app, Call::new("POST", "/pay?order_id=5&amount=1.00")).await;
    let id = payment["webhook_delivery_id"].as_str().unwrap().to_string();
    let (status, one) = send(
        &app,
        Call::new("GET", &format!("/webhooks/deliveries/{id}")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["status"], "pending");
    assert_eq!(
        one["attempts"].as_array().unwrap().len(),
        1,
        "the immediate attempt is kept"
    );
    assert!(one["attempts"][0]["error"].is_string());
    assert!(one["next_attempt_at"].is_string());
    let (_, pending) = send(
        &app,
        Call::new("GET", "/webhooks/deliveries?status=pending&order_id=5"),
    )
    .await;
    assert_eq!(pending.as_array().unwrap().len(), 1);
    let (_, none) = send(
        &app,
        Call::new("GET", "/webhooks/deliveries?status=delivered"),
    )
    .await;
    assert_eq!(none.as_array().unwrap().len(), 0);
    let (status, _) = send(&app, Call::new("GET", "/webhooks/deliveries?status=lost")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = send(&app, Call::new("GET", "/webhooks/deliveries/msg_nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(
        &app,
        Call::new("POST", "/webhooks/deliveries/msg_nope/retry"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, health) = send(&app, Call::new("GET", "/health").key(None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["webhook_backlog"]["pending"], 1);
}

#[test]
fn every_migration_is_a_numbered_file_of_the_folder_and_no_released_one_was_edited() {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let checked = service_kit::migrations::check_history(&folder, payment_service::MIGRATIONS);
    assert_eq!(checked, Ok(()));
}

#[test]
fn payments_made_before_references_keep_their_rows_deliveries_and_one_capture_rule() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = rusqlite::Connection::open(dir.path().join("payments.db")).unwrap();
    let before = service_kit::migrations::from_files(&payment_service::MIGRATIONS[..4]);
    service_kit::migrations::apply(&mut conn, &before).unwrap();
    conn.execute_batch(
        "INSERT INTO payments (order_id, amount_cents, status, order_verified)
             VALUES (7, 1000, 'captured', 1);
         INSERT INTO webhook_deliveries (id, payment_id, order_id, payload, status,
             next_attempt_at_ms, created_at_ms)
             VALUES ('msg_old', 1, 7, '{}', 'pending', 0, 0);",
    )
    .unwrap();
    service_kit::migrations::apply(&mut conn, &payment_service::migrations()).unwrap();
    let (reference, status, order_ref): (String, String, Option<String>) = conn
        .query_row(
            "SELECT ref, status, order_ref FROM payments WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (reference.as_str(), status.as_str(), order_ref),
        ("1", "captured", None)
    );
    let broken: i64 = conn
        .query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(broken, 0, "the delivery still points at its payment");
    // One capture per order still holds among the payments made before references...
    let second = conn.execute(
        "INSERT INTO payments (ref, order_id, amount_cents, status, order_verified)
             VALUES ('x', 7, 1000, 'captured', 1)",
        [],
    );
    assert!(second.is_err());
    // ...and per order reference after.
    let insert = |reference: &str| {
        conn.execute(
            "INSERT INTO payments (ref, order_id, order_ref, amount_cents, status, order_verified)
                 VALUES (?1, 8, 'order-8', 1000, 'captured', 1)",
            [reference],
        )
    };
    assert!(insert("y").is_ok());
    assert!(insert("z").is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_payment_is_refunded_in_parts_never_beyond_what_is_left() {
    let (_dir, app) = app().await;
    let (status, payment) = send(&app, Call::new("POST", "/pay?order_id=3&amount=10.00")).await;
    assert_eq!(status, StatusCode::OK, "{payment}");
    let refunds = format!("/payments/{}/refunds", payment["id"]);
    let (status, first) = send(
        &app,
        Call::new("POST", &refunds).json(r#"{"amount":4.00,"reason":"one item broken"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["amount"], serde_json::json!(4.0));
    assert_eq!(first["reason"], "one item broken");
    assert_eq!(
        first["restock"], false,
        "the goods stay sold unless said otherwise"
    );
    assert_eq!(first["ref"].as_str().unwrap().len(), 36);
    for (body, want) in [
        (r#"{"amount":6.01}"#, StatusCode::UNPROCESSABLE_ENTITY),
        (r#"{"amount":0}"#, StatusCode::UNPROCESSABLE_ENTITY),
        (r#"{"amount":-1}"#, StatusCode::UNPROCESSABLE_ENTITY),
        (r#"{"amount":"lots"}"#, StatusCode::UNPROCESSABLE_ENTITY),
        (
            r#"{"amount":1.00,"extra":true}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (status, answer) = send(&app, Call::new("POST", &refunds).json(body)).await;
        assert_eq!(status, want, "{body}: {answer}");
    }
    let (_, now) = send(
        &app,
        Call::new("GET", &format!("/payments/{}", payment["id"])),
    )
    .await;
    assert_eq!(
        now["refunded"],
        serde_json::json!(4.0),
        "refused asks changed nothing"
    );
    // A refund puts no goods back on sale: that is a return's, by line.
    let (status, refused) = send(
        &app,
        Call::new("POST", &refunds).json(r#"{"restock":true}"#),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(refused.to_string().contains("/returns"), "{refused}");
    // No amount: all that is left.
    let (status, rest) = send(
        &app,
        Call::new("POST", &refunds).json(r#"{"reason":"goodwill"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{rest}");
    assert_eq!(rest["amount"], serde_json::json!(6.0));
    assert_eq!(rest["restock"], false);
    let (status, _) = send(&app, Call::new("POST", &refunds)).await;
    assert_eq!(status, StatusCode::CONFLICT, "refunded in full already");
    let (_, listed) = send(&app, Call::new("GET", &refunds)).await;
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let (_, summary) = send(&app, Call::new("GET", "/payments/summary")).await;
    assert_eq!(summary["captured_total"], serde_json::json!(10.0));
    assert_eq!(summary["refunded_total"], serde_json::json!(10.0));
    let (_, events) = send(&app, Call::new("GET", "/events?type=payment.refunded")).await;
    assert_eq!(events.as_array().unwrap().len(), 2);
    let (_, deliveries) = send(&app, Call::new("GET", "/webhooks/deliveries?order_id=3")).await;
    assert_eq!(
        deliveries.as_array().unwrap().len(),
        3,
        "the capture and each refund"
    );
    for (uri, want) in [
        ("/payments/99/refunds", StatusCode::NOT_FOUND),
        ("/payments/0/refunds", StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        assert_eq!(send(&app, Call::new("POST", uri)).await.0, want, "{uri}");
        assert_eq!(send(&app, Call::new("GET", uri)).await.0, want, "{uri}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn only_a_captured_payment_can_be_refunded() {
    let (_dir, app) = app_with(&unreachable_url());
    let (status, authorized) = send(&app, Call::new("POST", "/pay?order_id=3&amount=10.00")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let uri = format!("/payments/{}/refunds", authorized["id"]);
    let (status, body) = send(&app, Call::new("POST", &uri)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (_, listed) = send(&app, Call::new("GET", &uri)).await;
    assert_eq!(listed.as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_misspelled_field_in_a_body_or_query_is_a_422_naming_it_and_charges_nothing() {
    let (_dir, app) = app().await;
    let card =
        r#"{"card":{"number":"4242424242424242","exp_month":12,"exp_year":2030,"cvv":"123"}}"#;
    let pay = Call::new("POST", "/pay?order_id=1&amount=999.99").json(card);
    let message = refused_naming(&app, pay, "cvv").await;
    assert!(!message.contains("4242"), "{message}");
    let pay = Call::new("POST", "/pay?order_id=1&amount=999.99&currency=usd");
    refused_naming(&app, pay, "currency").await;
    refused_naming(&app, Call::new("GET", "/payments?order=1"), "order").await;
    assert_eq!(payment_count(&app).await, 0);
}
