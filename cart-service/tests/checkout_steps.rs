//! Every outcome of every checkout step, against one small fake standing in for the
//! catalog, order and payment services (a loopback server on port 0). Each test scripts how
//! the fake answers one route — refuse with a status, fail with a 5xx, or act and then stay
//! silent past the checkout's timeout (an unknown outcome) — and checks what the checkout
//! answered, what it recorded, and which calls it made to undo or settle.

// A test or tool: a failure to set up ends it, with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use cart_service::{AppState, PeerUrls, Timeouts, migrations, recover, router};
use serde_json::{Value, json};
use service_kit::db::{Db, Durability};
use service_kit::testing::{Call, send, test_keys, unreachable_url};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The checkout's timeout for each call in these tests; a silent peer waits longer.
const TIMEOUT: Duration = Duration::from_millis(400);
const ORDER_ID: i64 = 7;
/// The order's global reference, the key its stock is held under.
const ORDER_REF: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
const PAYMENT_ID: i64 = 3;

/// How the fake answers one route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    /// Like the real service.
    Normal,
    /// Refuses with this status and error code, doing nothing.
    Refuse(u16, &'static str),
    /// Does the work, then stays silent past the checkout's timeout.
    ActThenHang,
}

#[derive(Debug, Default)]
struct Script {
    replies: HashMap<&'static str, Reply>,
    /// Every call, by route name, in order.
    calls: Vec<&'static str>,
    order_status: &'static str,
    /// The payment is captured but its webhook does not reach the order (a secret being
    /// rotated): the order stays PENDING.
    webhook_held: bool,
}

#[derive(Debug, Clone, Default)]
struct Fake(Arc<Mutex<Script>>);

impl Fake {
    fn set(&self, route: &'static str, reply: Reply) {
        self.0.lock().unwrap().replies.insert(route, reply);
    }

    fn calls(&self) -> Vec<&'static str> {
        self.0.lock().unwrap().calls.clone()
    }

    fn called(&self, route: &str) -> usize {
        self.calls().iter().filter(|c| **c == route).count()
    }

    fn order_status(&self) -> &'static str {
        self.0.lock().unwrap().order_status
    }

    /// Records the call and answers it as scripted: `act` does the work and gives the body.
    async fn answer(
        &self,
        route: &'static str,
        act: impl FnOnce(&mut Script) -> Value,
    ) -> Response {
        let reply = {
            let mut script = self.0.lock().unwrap();
            script.calls.push(route);
            script.replies.get(route).copied().unwrap_or(Reply::Normal)
        };
        if let Reply::Refuse(status, code) = reply {
            let status = StatusCode::from_u16(status).unwrap();
            let body =
                json!({"error": {"code": code, "message": format!("the fake refuses {route}")}});
            return (status, axum::Json(body)).into_response();
        }
        let body = act(&mut self.0.lock().unwrap());
        if reply == Reply::ActThenHang {
            tokio::time::sleep(TIMEOUT * 3).await;
        }
        (StatusCode::OK, axum::Json(body)).into_response()
    }

    async fn start(&self) -> String {
        async fn product(State(fake): State<Fake>, Path(id): Path<i64>) -> Response {
            if id != 1 {
                return StatusCode::NOT_FOUND.into_response();
            }
            let body = json!({"id": 1, "name": "Laptop", "price": 999.99, "stock": 10});
            fake.answer("product", |_| body).await
        }
        /// `GET /products?ids=`: the laptop when asked for, as a list.
        async fn products(
            State(fake): State<Fake>,
            Query(query): Query<std::collections::HashMap<String, String>>,
        ) -> Response {
            let ids = query.get("ids").cloned().unwrap_or_default();
            let body = match ids.split(',').any(|id| id == "1") {
                true => json!([{"id": 1, "name": "Laptop", "price": 999.99, "stock": 10}]),
                false => json!([]),
            };
            fake.answer("product", |_| body).await
        }
        async fn order_create(State(fake): State<Fake>) -> Response {
            fake.answer("order_create", |s| {
                s.order_status = "PENDING";
                json!({"id": ORDER_ID, "ref": ORDER_REF, "total": 999.99, "status": "PENDING", "stock": "held"})
            })
            .await
        }
        async fn order_get(State(fake): State<Fake>) -> Response {
            fake.answer(
                "order_get",
                |s| json!({"id": ORDER_ID, "ref": ORDER_REF, "total": 999.99, "status": s.order_status, "stock": "held"}),
            )
            .await
        }
        async fn order_cancel(State(fake): State<Fake>) -> Response {
            if fake.order_status() == "PAID" {
                fake.0.lock().unwrap().calls.push("order_cancel");
                let body = json!({"error": {"code": "not_in_status", "message": "order is PAID"}});
                return (StatusCode::CONFLICT, axum::Json(body)).into_response();
            }
            fake.answer("order_cancel", |s| {
                s.order_status = "CANCELLED";
                json!({"id": ORDER_ID, "ref": ORDER_REF, "total": 999.99, "status": "CANCELLED", "stock": "released"})
            })
            .await
        }
        async fn reservation(route: &'static str, fake: Fake, status: &'static str) -> Response {
            fake.answer(
                route,
                |_| json!({"reference": ORDER_REF, "order_id": ORDER_ID, "status": status}),
            )
            .await
        }
        async fn pay(State(fake): State<Fake>) -> Response {
            fake.answer("pay", |s| {
                if !s.webhook_held {
                    s.order_status = "PAID";
                }
                json!({"id": PAYMENT_ID, "status": "captured"})
            })
            .await
        }
        async fn payments(State(fake): State<Fake>) -> Response {
            fake.answer(
                "payments",
                |_| json!([{"id": PAYMENT_ID, "status": "captured"}]),
            )
            .await
        }
        let app = Router::new()
            .route("/products/{id}", get(product))
            .route("/products", get(products))
            .route("/orders", post(order_create))
            .route("/orders/{id}", get(order_get))
            .route("/orders/{id}/status", put(order_cancel))
            .route(
                "/reservations",
                post(|State(f): State<Fake>| reservation("reserve", f, "reserved")),
            )
            .route(
                "/reservations/{id}/commit",
                post(|State(f): State<Fake>| reservation("commit", f, "committed")),
            )
            .route(
                "/reservations/{id}/release",
                post(|State(f): State<Fake>| reservation("release", f, "released")),
            )
            .route("/pay", post(pay))
            .route("/payments", get(payments))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }
}

/// The cart service under test, its peers all played by `fake` (or down, where given).
struct Shop {
    _dir: tempfile::TempDir,
    state: AppState,
    app: Router,
    fake: Fake,
}

async fn shop_with(urls: impl FnOnce(String) -> PeerUrls) -> Shop {
    let fake = Fake::default();
    let url = fake.start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        &dir.path().join("carts.db"),
        &migrations(),
        Durability::Normal,
    )
    .unwrap();
    let timeouts = Timeouts {
        peer: TIMEOUT,
        checkout: TIMEOUT,
    };
    let state = AppState::new(db, &urls(url), "k", timeouts);
    let app = router(state.clone(), test_keys());
    let (status, _) = send(
        &app,
        Call::new("POST", "/cart/u1/add?product_id=1&quantity=1"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    Shop {
        _dir: dir,
        state,
        app,
        fake,
    }
}

async fn shop() -> Shop {
    shop_with(|url| PeerUrls {
        catalog: url.clone(),
        order: url.clone(),
        payment: url,
    })
    .await
}

impl Shop {
    async fn checkout(&self) -> (StatusCode, Value) {
        send(&self.app, Call::new("POST", "/cart/u1/checkout")).await
    }

    /// The user's latest checkout as the API shows it.
    async fn record(&self) -> Value {
        let (status, list) = send(&self.app, Call::new("GET", "/checkouts?user_id=u1")).await;
        assert_eq!(status, StatusCode::OK);
        list[0].clone()
    }

    /// `(step, state)` of every entry of the latest checkout's log.
    async fn log(&self) -> Vec<(String, String)> {
        let record = self.record().await;
        record["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let text = |v: &Value| v.as_str().unwrap().to_string();
                (text(&e["step"]), text(&e["state"]))
            })
            .collect()
    }

    async fn cart_units(&self) -> i64 {
        let (_, cart) = send(&self.app, Call::new("GET", "/cart/u1")).await;
        cart["item_count"].as_i64().unwrap()
    }

    /// Runs the recovery loop once over every running checkout.
    async fn recover(&self) -> usize {
        recover(&self.state, i64::MAX).await.unwrap()
    }
}

/// The error message of an answer.
fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

fn entry(step: &str, state: &str) -> (String, String) {
    (step.to_string(), state.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_step_done_completes_the_checkout_and_clears_the_cart() {
    let shop = shop().await;
    let (status, body) = shop.checkout().await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "completed");
    assert_eq!(body["order_id"], ORDER_ID);
    assert_eq!(body["payment_id"], PAYMENT_ID);
    let calls = shop.fake.calls();
    let wanted = [
        "product",
        "product",
        "order_create",
        "reserve",
        "pay",
        "order_get",
        "commit",
    ];
    assert_eq!(calls, wanted, "cart add, then each step once");
    assert_eq!(shop.cart_units().await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_captured_payment_whose_order_is_not_paid_yet_is_a_202_never_completed() {
    let shop = shop().await;
    shop.fake.0.lock().unwrap().webhook_held = true;
    let (status, body) = shop.checkout().await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "running", "{body}");
    assert_eq!(
        shop.fake.called("commit"),
        0,
        "nothing committed for an unpaid order"
    );
    assert_eq!(
        shop.cart_units().await,
        1,
        "the cart is kept until the order is paid"
    );
    // Still unpaid at the next recovery pass: still finishing.
    assert_eq!(shop.recover().await, 1);
    assert_eq!(shop.fake.called("commit"), 0);
    // The webhook arrives (the secrets agree again): recovery completes the checkout.
    shop.fake.0.lock().unwrap().order_status = "PAID";
    assert_eq!(shop.recover().await, 1);
    assert_eq!(shop.fake.called("commit"), 1);
    assert_eq!(shop.cart_units().await, 0);
    assert_eq!(
        shop.fake.called("order_cancel"),
        0,
        "a paid order is never undone"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_refused_by_a_failing_catalog_is_a_503_and_nothing_is_placed() {
    let shop = shop().await;
    shop.fake.set("product", Reply::Refuse(500, "internal"));
    let (status, body) = shop.checkout().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let record = shop.record().await;
    assert_eq!(record["status"], "failed");
    assert_eq!(record["failed_step"], "validate");
    assert_eq!(record["failure_code"], "unavailable");
    assert_eq!(shop.fake.called("order_create"), 0);
    assert_eq!(shop.cart_units().await, 1, "the cart is untouched");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_refused_fails_at_the_order_step_with_its_meaning_and_nothing_to_undo() {
    let shop = shop().await;
    shop.fake
        .set("order_create", Reply::Refuse(422, "validation_failed"));
    let (status, body) = shop.checkout().await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(message(&body).contains("failed at step order"));
    assert_eq!(shop.record().await["failed_step"], "order");
    assert_eq!(shop.fake.called("reserve"), 0);
    assert_eq!(shop.fake.called("order_cancel"), 0, "no order to cancel");
    assert_eq!(shop.cart_units().await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_service_that_is_down_fails_the_order_step_since_nothing_was_sent() {
    let shop = shop_with(|url| PeerUrls {
        catalog: url.clone(),
        order: unreachable_url(),
        payment: url,
    })
    .await;
    let (status, body) = shop.checkout().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let record = shop.record().await;
    assert_eq!(
        record["status"], "failed",
        "refused before sending: nothing to settle"
    );
    assert_eq!(record["failed_step"], "order");
    assert_eq!(shop.fake.called("reserve"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_step_with_an_unknown_outcome_stays_running_until_recovery_finds_and_cancels_it() {
    let shop = shop().await;
    shop.fake.set("order_create", Reply::ActThenHang);
    let (status, body) = shop.checkout().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(message(&body).contains("unsettled at step order"));
    let record = shop.record().await;
    assert_eq!(record["status"], "running");
    assert_eq!(
        record["order_id"],
        Value::Null,
        "the order's id never came back"
    );
    assert!(shop.log().await.contains(&entry("order", "unsettled")));
    assert_eq!(shop.fake.called("reserve"), 0);

    // The order service answers again: the same key finds the order, which is cancelled.
    shop.fake.set("order_create", Reply::Normal);
    assert_eq!(shop.recover().await, 1);
    let record = shop.record().await;
    assert_eq!(record["status"], "failed");
    assert_eq!(record["order_id"], ORDER_ID);
    assert_eq!(shop.fake.order_status(), "CANCELLED");
    assert_eq!(shop.fake.called("pay"), 0);
    assert_eq!(shop.cart_units().await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_step_still_unknown_at_recovery_stays_running() {
    let shop = shop().await;
    shop.fake
        .set("order_create", Reply::Refuse(503, "unavailable"));
    let (status, _) = shop.checkout().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(shop.recover().await, 0, "still no answer: nothing settled");
    assert_eq!(shop.record().await["status"], "running");
    assert_eq!(shop.fake.called("order_cancel"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn out_of_stock_at_reserve_cancels_the_order_and_answers_409() {
    let shop = shop().await;
    shop.fake.set("reserve", Reply::Refuse(409, "out_of_stock"));
    let (status, body) = shop.checkout().await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let record = shop.record().await;
    assert_eq!(record["failed_step"], "reserve");
    assert_eq!(record["failure_code"], "conflict");
    assert_eq!(shop.fake.order_status(), "CANCELLED");
    assert_eq!(shop.fake.called("pay"), 0);
    let log = shop.log().await;
    assert!(log.contains(&entry("order", "undone")), "{log:?}");
    assert!(log.contains(&entry("reserve", "failed")), "{log:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reserve_with_an_unknown_outcome_is_released_and_the_order_cancelled() {
    let shop = shop().await;
    shop.fake.set("reserve", Reply::ActThenHang);
    let (status, body) = shop.checkout().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(shop.record().await["status"], "failed");
    assert_eq!(
        shop.fake.called("release"),
        1,
        "the reservation may exist: released"
    );
    assert_eq!(shop.fake.order_status(), "CANCELLED");
    assert_eq!(shop.fake.called("pay"), 0);
    assert!(shop.log().await.contains(&entry("reserve", "undone")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_release_that_fails_is_logged_as_left_to_expiry_and_the_checkout_still_fails() {
    let shop = shop().await;
    shop.fake.set("reserve", Reply::Refuse(409, "out_of_stock"));
    shop.fake.set("release", Reply::Refuse(500, "internal"));
    let (status, _) = shop.checkout().await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(shop.record().await["status"], "failed");
    assert!(shop.log().await.contains(&entry("reserve", "undo_failed")));
    let detail = shop.record().await["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["state"] == "undo_failed")
        .unwrap()["detail"]
        .clone();
    assert!(
        detail.as_str().unwrap().contains("released at expiry"),
        "{detail}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declined_card_undoes_the_order_and_the_reservation_with_the_decline_code() {
    let shop = shop().await;
    shop.fake
        .set("pay", Reply::Refuse(402, "insufficient_funds"));
    let (status, body) = shop.checkout().await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{body}");
    assert_eq!(body["error"]["code"], "insufficient_funds");
    let record = shop.record().await;
    assert_eq!(record["failed_step"], "pay");
    assert_eq!(record["failure_code"], "insufficient_funds");
    assert_eq!(shop.fake.order_status(), "CANCELLED");
    assert_eq!(shop.fake.called("release"), 1);
    assert_eq!(shop.fake.called("commit"), 0);
    assert_eq!(shop.cart_units().await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_decline_code_is_a_plain_card_declined() {
    let shop = shop().await;
    shop.fake.set("pay", Reply::Refuse(402, "something_new"));
    let (status, body) = shop.checkout().await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(body["error"]["code"], "card_declined");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pay_step_that_captured_before_timing_out_goes_forward_since_the_order_is_paid() {
    let shop = shop().await;
    shop.fake.set("pay", Reply::ActThenHang);
    let (status, body) = shop.checkout().await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "completed");
    assert_eq!(
        body["payment_id"], PAYMENT_ID,
        "found by asking the payment service"
    );
    assert_eq!(shop.fake.order_status(), "PAID");
    assert_eq!(
        shop.fake.called("release"),
        0,
        "paid stock is never released"
    );
    assert_eq!(shop.fake.called("commit"), 1);
    assert_eq!(shop.cart_units().await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pay_step_with_an_unknown_outcome_and_no_cancel_possible_stays_unsettled_until_recovery()
{
    let shop = shop().await;
    shop.fake.set("pay", Reply::Refuse(502, "bad_gateway"));
    shop.fake
        .set("order_cancel", Reply::Refuse(503, "unavailable"));
    let (status, body) = shop.checkout().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(message(&body).contains("unsettled at step pay"));
    let record = shop.record().await;
    assert_eq!(record["status"], "running");
    assert_eq!(
        shop.fake.called("release"),
        0,
        "nothing released while money may be taken"
    );
    assert!(shop.log().await.contains(&entry("pay", "unsettled")));

    shop.fake.set("order_cancel", Reply::Normal);
    assert_eq!(shop.recover().await, 1);
    assert_eq!(shop.record().await["status"], "failed");
    assert_eq!(shop.fake.order_status(), "CANCELLED");
    assert_eq!(shop.fake.called("release"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_commit_the_catalog_does_not_take_is_a_202_finished_by_recovery() {
    for reply in [Reply::Refuse(503, "unavailable"), Reply::ActThenHang] {
        let shop = shop().await;
        shop.fake.set("commit", reply);
        let (status, body) = shop.checkout().await;
        assert_eq!(status, StatusCode::ACCEPTED, "{reply:?}: {body}");
        assert_eq!(body["status"], "running");
        assert!(shop.log().await.contains(&entry("commit", "pending")));
        assert_eq!(shop.cart_units().await, 1, "cleared only once committed");

        shop.fake.set("commit", Reply::Normal);
        assert_eq!(shop.recover().await, 1);
        assert_eq!(shop.record().await["status"], "completed");
        assert_eq!(shop.fake.called("release"), 0);
        assert_eq!(shop.fake.order_status(), "PAID");
        assert_eq!(shop.cart_units().await, 0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_answering_429_did_nothing_so_the_step_fails_and_the_earlier_ones_are_undone() {
    for (route, step) in [
        ("order_create", "order"),
        ("reserve", "reserve"),
        ("pay", "pay"),
    ] {
        let shop = shop().await;
        shop.fake.set(route, Reply::Refuse(429, "rate_limited"));
        let (status, body) = shop.checkout().await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{route}: {body}");
        let record = shop.record().await;
        assert_eq!(
            record["status"], "failed",
            "{route}: a 429 is a refusal, not a maybe"
        );
        assert_eq!(record["failed_step"], step);
        assert_eq!(record["failure_code"], "unavailable");
        assert_eq!(shop.fake.called("commit"), 0, "{route}");
        assert_ne!(shop.fake.order_status(), "PAID", "{route}: nothing charged");
        if step != "order" {
            assert_eq!(shop.fake.order_status(), "CANCELLED", "{route}");
            assert_eq!(shop.fake.called("release"), 1, "{route}");
        }
        assert_eq!(shop.cart_units().await, 1, "{route}: the cart is kept");
    }
}
