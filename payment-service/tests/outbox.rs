//! The webhook outbox against a fake order service on port 0 that tests switch between
//! answering 200, 500 and not answering in time: the backoff schedule, the `failed` state,
//! the manual retry, and the signatures on every attempt.

// A test or tool: a failure to set up ends it, with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use payment_service::{AppState, migrations, router};
use serde_json::Value;
use service_kit::db::{Db, Durability};
use service_kit::testing::{Call, send, test_keys, test_webhook_secrets};
use service_kit::webhook::{self, ReceivedHeaders};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const OK: u8 = 0;
const FAIL: u8 = 1;
const HANG: u8 = 2;
const REFUSE: u8 = 3;
const LOCKED_OUT: u8 = 4;

/// What the fake order service saw: one entry per webhook that reached it.
#[derive(Default)]
struct Receiver {
    mode: AtomicU8,
    seen: Mutex<Vec<(String, bool)>>,
}

async fn fake_order(Path(id): Path<i64>) -> impl IntoResponse {
    let reference = format!("0190a1b2-c3d4-7e5f-8a9b-{id:012}");
    axum::Json(serde_json::json!({
        "id": id, "ref": reference, "total": 999.99, "status": "PENDING", "stock": "held",
    }))
}

async fn fake_webhook(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let received = ReceivedHeaders {
        id: header(webhook::ID_HEADER),
        timestamp: header(webhook::TIMESTAMP_HEADER),
        signature: header(webhook::SIGNATURE_HEADER),
    };
    let verified = webhook::verify(
        &test_webhook_secrets(),
        received,
        body.as_bytes(),
        webhook::unix_now(),
    )
    .is_ok();
    let id = received.id.unwrap_or_default().to_string();
    receiver.seen.lock().unwrap().push((id, verified));
    match receiver.mode.load(Ordering::SeqCst) {
        FAIL => StatusCode::INTERNAL_SERVER_ERROR,
        HANG => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            StatusCode::OK
        }
        // The order was cancelled: the capture is refused, refunds are taken note of.
        REFUSE if body.contains("payment.succeeded") => StatusCode::CONFLICT,
        LOCKED_OUT => StatusCode::UNAUTHORIZED,
        _ => StatusCode::OK,
    }
}

struct Harness {
    app: Router,
    receiver: Arc<Receiver>,
    cancel: CancellationToken,
    worker: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

async fn harness(schedule: &str) -> Harness {
    let receiver = Arc::new(Receiver::default());
    let fake = Router::new()
        .route("/orders/{id}", axum::routing::get(fake_order))
        .route("/orders/{id}/payment", axum::routing::post(fake_webhook))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, fake).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        &dir.path().join("payments.db"),
        &migrations(),
        Durability::Full,
    )
    .unwrap();
    let state = AppState::new(
        db,
        &url,
        "k",
        test_webhook_secrets(),
        schedule.parse().unwrap(),
        Duration::from_millis(300),
    );
    let cancel = CancellationToken::new();
    let worker = tokio::spawn(state.worker(Duration::from_millis(10), cancel.clone()));
    Harness {
        app: router(state, test_keys()),
        receiver,
        cancel,
        worker,
        _dir: dir,
    }
}

async fn delivery(app: &Router, id: &str) -> Value {
    send(app, Call::new("GET", &format!("/webhooks/deliveries/{id}")))
        .await
        .1
}

async fn wait_for_status(app: &Router, id: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let d = delivery(app, id).await;
        if d["status"] == want {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "delivery never became {want}: {d}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Seconds since midnight of an `...THH:MM:SS.sssZ` timestamp.
fn seconds_of_day(at: &Value) -> f64 {
    let time = at
        .as_str()
        .unwrap()
        .split('T')
        .nth(1)
        .unwrap()
        .trim_end_matches('Z');
    let parts: Vec<f64> = time.split(':').map(|p| p.parse().unwrap()).collect();
    parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_follow_the_schedule_then_fail_then_a_manual_retry_delivers() {
    let h = harness("200ms,400ms").await;
    h.receiver.mode.store(FAIL, Ordering::SeqCst);
    let (status, payment) = send(&h.app, Call::new("POST", "/pay?order_id=1&amount=999.99")).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the payment stands while the webhook fails"
    );
    assert_eq!(payment["webhook_status"], "pending");
    let id = payment["webhook_delivery_id"].as_str().unwrap().to_string();

    // Three attempts (the first and one after each wait), then `failed`.
    let failed = wait_for_status(&h.app, &id, "failed").await;
    let attempts = failed["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3, "{failed}");
    assert!(attempts.iter().all(|a| a["status_code"] == 500));
    let at: Vec<f64> = attempts
        .iter()
        .map(|a| seconds_of_day(&a["attempted_at"]))
        .collect();
    // Waits are the schedule's, less at most 20% jitter.
    assert!(at[1] - at[0] >= 0.16, "first wait {:.3}s", at[1] - at[0]);
    assert!(at[2] - at[1] >= 0.32, "second wait {:.3}s", at[2] - at[1]);
    assert!(failed["last_error"].as_str().unwrap().contains("500"));
    let (_, health) = send(&h.app, Call::new("GET", "/health").key(None)).await;
    assert_eq!(health["webhook_backlog"]["failed"], 1);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        delivery(&h.app, &id).await["attempts"]
            .as_array()
            .unwrap()
            .len(),
        3,
        "failed stays failed"
    );

    // A manual retry while the receiver does not answer in time: a new round begins.
    h.receiver.mode.store(HANG, Ordering::SeqCst);
    let (status, retried) = send(
        &h.app,
        Call::new("POST", &format!("/webhooks/deliveries/{id}/retry")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(retried["status"], "pending");
    assert_eq!(retried["attempts_in_round"], 1);
    let last = retried["attempts"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["status_code"], Value::Null);
    assert!(
        last["error"].is_string(),
        "a timeout is recorded as an error: {last}"
    );

    // The receiver recovers; the worker's next attempt delivers.
    h.receiver.mode.store(OK, Ordering::SeqCst);
    let delivered = wait_for_status(&h.app, &id, "delivered").await;
    let attempts = delivered["attempts"].as_array().unwrap();
    assert_eq!(
        attempts.last().unwrap()["status_code"],
        200,
        "successes are kept too"
    );
    assert!(delivered["delivered_at"].is_string());
    let (_, payment) = send(
        &h.app,
        Call::new("GET", &format!("/payments/{}", payment["id"])),
    )
    .await;
    assert_eq!(payment["webhook_status"], "delivered");

    // Every attempt carried the same webhook id and a valid signature.
    let seen = h.receiver.seen.lock().unwrap().clone();
    assert!(seen.len() >= 5, "{seen:?}");
    assert!(
        seen.iter()
            .all(|(seen_id, verified)| seen_id == &id && *verified),
        "{seen:?}"
    );

    let (status, _) = send(
        &h.app,
        Call::new("POST", &format!("/webhooks/deliveries/{id}/retry")),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a delivered webhook is not sent again"
    );
    h.cancel.cancel();
    h.worker.await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_receiver_gets_the_webhook_on_the_first_attempt() {
    let h = harness("1h").await;
    let (_, payment) = send(&h.app, Call::new("POST", "/pay?order_id=2&amount=999.99")).await;
    assert_eq!(payment["webhook_status"], "delivered");
    let d = delivery(&h.app, payment["webhook_delivery_id"].as_str().unwrap()).await;
    assert_eq!(d["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(h.receiver.seen.lock().unwrap().len(), 1);
    let (_, health) = send(&h.app, Call::new("GET", "/health").key(None)).await;
    assert_eq!(health["webhook_backlog"]["pending"], 0);
    assert_eq!(health["webhook_backlog"]["oldest_pending_age_seconds"], 0);
    h.cancel.cancel();
    h.worker.await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_capture_the_order_service_refuses_for_good_is_not_retried_and_is_refunded() {
    let h = harness("200ms,400ms").await;
    h.receiver.mode.store(REFUSE, Ordering::SeqCst);
    let (status, payment) = send(&h.app, Call::new("POST", "/pay?order_id=1&amount=999.99")).await;
    assert_eq!(status, StatusCode::OK, "{payment}");
    let id = payment["webhook_delivery_id"].as_str().unwrap().to_string();
    let failed = delivery(&h.app, &id).await;
    assert_eq!(
        failed["status"], "failed",
        "a 409 is an answer, not an outage: {failed}"
    );
    assert_eq!(failed["attempts"].as_array().unwrap().len(), 1);

    // The money goes back, and the order service is told by its own webhook.
    let refunds = format!("/payments/{}/refunds", payment["id"]);
    let (_, listed) = send(&h.app, Call::new("GET", &refunds)).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["amount"], serde_json::json!(999.99));
    assert!(
        listed[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("order_refused")
    );
    let (_, deliveries) = send(&h.app, Call::new("GET", "/webhooks/deliveries?order_id=1")).await;
    let refund_notice = deliveries
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] != serde_json::json!(id))
        .expect("a refund notice")
        .clone();
    let notice_id = refund_notice["id"].as_str().unwrap();
    wait_for_status(&h.app, notice_id, "delivered").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        delivery(&h.app, &id).await["attempts"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "the refused capture is never sent again by itself"
    );
    let (_, summary) = send(&h.app, Call::new("GET", "/payments/summary")).await;
    assert_eq!(summary["refunded_total"], summary["captured_total"]);
    h.cancel.cancel();
    h.worker.await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_refused_as_unauthorized_keeps_its_schedule_refunds_nothing_and_delivers_once_the_secrets_agree()
 {
    let h = harness("200ms,400ms,5s").await;
    h.receiver.mode.store(LOCKED_OUT, Ordering::SeqCst);
    let (status, payment) = send(&h.app, Call::new("POST", "/pay?order_id=1&amount=999.99")).await;
    assert_eq!(status, StatusCode::OK, "{payment}");
    let id = payment["webhook_delivery_id"].as_str().unwrap().to_string();
    // A wrong secret is something an operator fixes: the delivery is retried, not given up.
    let deadline = Instant::now() + Duration::from_secs(10);
    let seen = loop {
        let seen = delivery(&h.app, &id).await;
        if seen["attempts"].as_array().is_some_and(|a| a.len() >= 3) || Instant::now() > deadline {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(seen["status"], "pending", "{seen}");
    assert_eq!(seen["attempts"].as_array().unwrap().len(), 3, "{seen}");
    assert!(
        seen["last_error"]
            .as_str()
            .unwrap()
            .contains("check the webhook secret"),
        "{seen}"
    );
    let refunds = format!("/payments/{}/refunds", payment["id"]);
    let (_, listed) = send(&h.app, Call::new("GET", &refunds)).await;
    assert_eq!(
        listed.as_array().unwrap().len(),
        0,
        "a wrong secret is not the order's no"
    );
    // Once the operator fixes it, the schedule delivers by itself.
    h.receiver.mode.store(OK, Ordering::SeqCst);
    wait_for_status(&h.app, &id, "delivered").await;
    h.cancel.cancel();
    h.worker.await.unwrap();
}
