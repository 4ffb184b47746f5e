//! Router tests for payment-service: auth, validation, and a payment taken while the order
//! service is down (fail-open, never charged twice).

use axum::Router;
use axum::http::StatusCode;
use payment_service::{AppState, migrations, router};
use service_kit::db::{Db, Durability};
use service_kit::testing::{
    Call, send, send_raw, test_keys, test_webhook_secrets, unreachable_url,
};

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
    assert!(
        payment["webhook_delivery_id"]
            .as_str()
            .unwrap()
            .starts_with("msg_")
    );
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

#[tokio::test(flavor = "multi_thread")]
async fn the_test_cards_succeed_or_decline_as_in_stripe_test_mode() {
    let (_dir, app) = app();
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
    let (_dir, app) = app();
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
    let (dir, app) = app();
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
    let (_dir, app) = app();
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
    let (_dir, app) = app();
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
