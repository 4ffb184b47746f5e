//! Router tests: the auth and validation matrix of catalog-service, through `oneshot`.

// A test or tool: a failure to set up ends it, with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::http::StatusCode;
use catalog_service::{AppState, migrations, release_expired, router};
use serde_json::{Value, json};
use service_kit::auth::ApiKeys;
use service_kit::config::Secret;
use service_kit::db::{Db, Durability};
use service_kit::testing::{Call, refused_naming, send, send_raw, test_keys};
use std::time::Duration;

fn state_with_ttl(dir: &tempfile::TempDir, ttl: Duration) -> AppState {
    let db = Db::open(
        &dir.path().join("products.db"),
        &migrations(),
        Durability::Normal,
    )
    .unwrap();
    AppState {
        db,
        reservation_ttl: ttl,
    }
}

fn app_with_keys(keys: ApiKeys) -> (tempfile::TempDir, Router) {
    let dir = tempfile::tempdir().unwrap();
    let state = state_with_ttl(&dir, Duration::from_secs(900));
    (dir, router(state, keys))
}

fn app() -> (tempfile::TempDir, Router) {
    app_with_keys(test_keys())
}

#[tokio::test]
async fn health_answers_without_a_key() {
    let (_dir, app) = app();
    let (status, body) = send(&app, Call::new("GET", "/health").key(None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn every_route_refuses_a_missing_empty_or_wrong_key() {
    let (_dir, app) = app();
    for uri in ["/products", "/products/1"] {
        for key in [None, Some(""), Some("wrong"), Some("test-key ")] {
            let (status, body) = send(&app, Call::new("GET", uri).key(key)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri} with {key:?}");
            assert_eq!(body["error"]["code"], "unauthorized");
        }
    }
}

#[tokio::test]
async fn any_of_several_rotated_keys_is_accepted() {
    let keys = ApiKeys::new(vec![Secret::new("old"), Secret::new("new")]);
    let (_dir, app) = app_with_keys(keys);
    for key in ["old", "new"] {
        let (status, _) = send(&app, Call::new("GET", "/products").key(Some(key))).await;
        assert_eq!(status, StatusCode::OK);
    }
}

#[tokio::test]
async fn a_new_catalog_holds_the_three_demo_products() {
    let (_dir, app) = app();
    let (status, body) = send(&app, Call::new("GET", "/products")).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<i64> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2, 3]);
    assert!(
        body.as_array()
            .unwrap()
            .iter()
            .all(|p| p["stock"].as_i64().unwrap() > 0)
    );
    let (_, laptop) = send(&app, Call::new("GET", "/products/1")).await;
    assert_eq!(laptop["price"], serde_json::json!(999.99));
}

#[tokio::test]
async fn bad_product_ids_get_json_errors() {
    let (_dir, app) = app();
    for (uri, want, code) in [
        ("/products/999", StatusCode::NOT_FOUND, "not_found"),
        ("/products/abc", StatusCode::BAD_REQUEST, "bad_request"),
        (
            "/products/0",
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "/products/-4",
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "/products/99999999999999999999",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        ("/products?limit=x", StatusCode::BAD_REQUEST, "bad_request"),
    ] {
        let (status, body) = send(&app, Call::new("GET", uri)).await;
        assert_eq!(status, want, "{uri}");
        assert_eq!(body["error"]["code"], code, "{uri}");
    }
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_json() {
    let (_dir, app) = app();
    let (status, body) = send(&app, Call::new("GET", "/nowhere")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    let (status, body) = send(&app, Call::new("DELETE", "/products")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["error"]["code"], "method_not_allowed");
}

#[tokio::test]
async fn lists_are_paginated() {
    let (_dir, app) = app();
    let (_, body) = send(&app, Call::new("GET", "/products?limit=2&offset=1")).await;
    let ids: Vec<i64> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [2, 3]);
}

async fn stock_of(app: &Router, product: i64) -> i64 {
    let (_, p) = send(app, Call::new("GET", &format!("/products/{product}"))).await;
    p["stock"].as_i64().unwrap()
}

async fn reserve(app: &Router, order_id: i64, lines: Value) -> (StatusCode, Value) {
    let body = json!({"order_id": order_id, "lines": lines}).to_string();
    send(app, Call::new("POST", "/reservations").json(&body)).await
}

#[tokio::test]
async fn a_reservation_takes_every_line_or_none() {
    let (_dir, app) = app();
    let (status, r) = reserve(
        &app,
        1,
        json!([{"product_id":1,"quantity":10},{"product_id":2,"quantity":5}]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    assert_eq!(r["status"], "reserved");
    assert_eq!(
        (stock_of(&app, 1).await, stock_of(&app, 2).await),
        (40, 195)
    );

    let same_lines = json!([{"product_id":2,"quantity":5},{"product_id":1,"quantity":10}]);
    let (status, again) = reserve(&app, 1, same_lines).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the same order's reservation is found, not taken twice"
    );
    assert_eq!(again["lines"], r["lines"]);
    assert_eq!(stock_of(&app, 1).await, 40);
    // The same order id with other lines is never given the reservation it does not match.
    let (status, body) = reserve(&app, 1, json!([{"product_id":1,"quantity":10}])).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("other lines")
    );
    assert_eq!(
        (stock_of(&app, 1).await, stock_of(&app, 2).await),
        (40, 195),
        "nothing taken or given back"
    );

    let (status, body) = reserve(
        &app,
        2,
        json!([{"product_id":1,"quantity":5},{"product_id":3,"quantity":101}]),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("out of stock")
    );
    assert_eq!(stock_of(&app, 1).await, 40, "the first line was put back");
    let (status, _) = send(&app, Call::new("GET", "/reservations/2")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, _) = reserve(&app, 3, json!([{"product_id":99,"quantity":1}])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    for bad in [
        json!([]),
        json!([{"product_id":1,"quantity":0}]),
        json!([{"product_id":1,"quantity":-1}]),
    ] {
        let (status, _) = reserve(&app, 4, bad.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    let (_, failed) = send(&app, Call::new("GET", "/events?type=stock.failed")).await;
    assert_eq!(failed.as_array().unwrap().len(), 3, "{failed}");
}

#[tokio::test]
async fn commit_and_release_happen_once_and_never_both() {
    let (_dir, app) = app();
    reserve(&app, 1, json!([{"product_id":1,"quantity":3}])).await;
    reserve(&app, 2, json!([{"product_id":1,"quantity":4}])).await;
    assert_eq!(stock_of(&app, 1).await, 43);

    let (status, c) = send(&app, Call::new("POST", "/reservations/1/commit")).await;
    assert_eq!(
        (status, c["status"].clone()),
        (StatusCode::OK, json!("committed"))
    );
    let (status, _) = send(&app, Call::new("POST", "/reservations/1/commit")).await;
    assert_eq!(status, StatusCode::OK, "committing twice is a no-op");
    let (status, _) = send(&app, Call::new("POST", "/reservations/1/release")).await;
    assert_eq!(status, StatusCode::CONFLICT, "sold stock is not put back");
    assert_eq!(stock_of(&app, 1).await, 43);

    let (status, r) = send(
        &app,
        Call::new("POST", "/reservations/2/release").json(r#"{"reason":"card declined"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(r["reason"], "card declined");
    assert_eq!(
        stock_of(&app, 1).await,
        47,
        "released stock is back on sale"
    );
    let (status, _) = send(&app, Call::new("POST", "/reservations/2/release")).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "releasing twice puts nothing back twice"
    );
    assert_eq!(stock_of(&app, 1).await, 47);
    let (status, _) = send(&app, Call::new("POST", "/reservations/2/commit")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = send(&app, Call::new("POST", "/reservations/9/commit")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, feed) = send(&app, Call::new("GET", "/events")).await;
    let kinds: Vec<&str> = feed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "stock.reserved",
            "stock.reserved",
            "stock.committed",
            "stock.released"
        ]
    );
}

#[tokio::test]
async fn the_stock_audit_balances_through_sales_returns_and_movements_and_spots_a_blind_write() {
    let dir = tempfile::tempdir().unwrap();
    let state = state_with_ttl(&dir, Duration::from_secs(900));
    let app = router(state.clone(), test_keys());
    let audit = |app: Router| async move {
        let (status, rows) = send(&app, Call::new("GET", "/stock/audit")).await;
        assert_eq!(status, StatusCode::OK);
        rows.as_array().unwrap().clone()
    };
    assert!(
        audit(app.clone())
            .await
            .iter()
            .all(|r| r["balanced"] == true),
        "the demo products open their ledger"
    );

    let body = r#"{"name":"Audit Lamp","price":5,"stock":10}"#;
    let (_, lamp) = send(&app, Call::new("POST", "/products").json(body)).await;
    let id = lamp["id"].as_i64().unwrap();
    let line = json!([{"product_id": id, "quantity": 3}]);
    reserve(&app, 1, line).await;
    send(&app, Call::new("POST", "/reservations/1/commit")).await;
    reserve(&app, 2, json!([{"product_id": id, "quantity": 2}])).await;
    send(&app, Call::new("POST", "/reservations/1/return")).await;
    let delivery = r#"{"delta":5,"reason":"delivery"}"#;
    send(
        &app,
        Call::new("POST", &format!("/products/{id}/stock")).json(delivery),
    )
    .await;
    let rows = audit(app.clone()).await;
    let row = rows.iter().find(|r| r["product_id"] == id).unwrap();
    let figures: Vec<i64> = [
        "available",
        "reserved",
        "on_hand",
        "moved",
        "sold",
        "returned",
        "expected_on_hand",
    ]
    .iter()
    .map(|k| row[k].as_i64().unwrap())
    .collect();
    assert_eq!(figures, [13, 2, 15, 15, 3, 3, 15], "{row}");
    assert_eq!(row["balanced"], true);

    // Units that appear without a movement (a blind write) are caught.
    state
        .db
        .write(move |tx| {
            Ok(tx.execute("UPDATE products SET stock = stock + 4 WHERE id = ?1", [id])?)
        })
        .await
        .unwrap();
    let rows = audit(app.clone()).await;
    let unbalanced: Vec<i64> = rows
        .iter()
        .filter(|r| r["balanced"] == false)
        .map(|r| r["product_id"].as_i64().unwrap())
        .collect();
    assert_eq!(unbalanced, [id]);
}

#[tokio::test]
async fn sold_units_are_returned_once_and_only_when_sold() {
    let (_dir, app) = app();
    reserve(&app, 1, json!([{"product_id":1,"quantity":3}])).await;
    reserve(&app, 2, json!([{"product_id":1,"quantity":2}])).await;
    let (status, _) = send(&app, Call::new("POST", "/reservations/2/return")).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "never sold: release it instead"
    );
    send(&app, Call::new("POST", "/reservations/1/commit")).await;
    assert_eq!(stock_of(&app, 1).await, 45);
    let call = Call::new("POST", "/reservations/1/return").json(r#"{"reason":"order cancelled"}"#);
    let (status, returned) = send(&app, call).await;
    assert_eq!(status, StatusCode::OK, "{returned}");
    assert_eq!(returned["status"], "released");
    assert_eq!(returned["reason"], "order cancelled");
    assert_eq!(
        stock_of(&app, 1).await,
        48,
        "the 3 sold units are on sale again"
    );
    let (status, _) = send(&app, Call::new("POST", "/reservations/1/return")).await;
    assert_eq!(status, StatusCode::OK, "returning again is a no-op");
    assert_eq!(stock_of(&app, 1).await, 48);
    let (status, _) = send(&app, Call::new("POST", "/reservations/9/return")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, returned) = send(&app, Call::new("GET", "/events?type=stock.returned")).await;
    assert_eq!(returned.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn units_come_back_by_line_once_never_more_than_were_sold_and_the_audit_counts_them() {
    let (_dir, app) = app();
    reserve(
        &app,
        1,
        json!([{"product_id":1,"quantity":3},{"product_id":2,"quantity":1}]),
    )
    .await;
    let audit_row = |app: Router, product: i64| async move {
        let (_, rows) = send(&app, Call::new("GET", "/stock/audit")).await;
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["product_id"] == product)
            .cloned()
            .unwrap()
    };
    let back = |return_ref: &str, product: i64, quantity: i64| {
        format!(
            r#"{{"return_ref":"{return_ref}","lines":[{{"product_id":{product},"quantity":{quantity}}}],"reason":"came back"}}"#
        )
    };
    let returns = |body: String| async {
        let call =
            Call::new("POST", "/reservations/1/returns").json(Box::leak(body.into_boxed_str()));
        send(&app, call).await
    };
    let (status, answer) = returns(back("ret-1", 1, 1)).await;
    assert_eq!(status, StatusCode::CONFLICT, "nothing sold yet: {answer}");
    send(&app, Call::new("POST", "/reservations/1/commit")).await;
    assert_eq!(stock_of(&app, 1).await, 47);
    let (status, reservation) = returns(back("ret-1", 1, 1)).await;
    assert_eq!(status, StatusCode::OK, "{reservation}");
    assert_eq!(
        reservation["status"], "committed",
        "the other units are still sold"
    );
    assert_eq!(reservation["lines"][0]["returned"], 1);
    assert_eq!(
        stock_of(&app, 1).await,
        48,
        "exactly the unit that came back"
    );
    let (status, _) = returns(back("ret-1", 1, 1)).await;
    assert_eq!(status, StatusCode::OK, "the same return again");
    assert_eq!(stock_of(&app, 1).await, 48, "changes nothing");
    let (status, answer) = returns(back("ret-1", 1, 2)).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "its ref with other lines: {answer}"
    );
    let (status, answer) = returns(back("ret-2", 1, 3)).await;
    assert_eq!(status, StatusCode::CONFLICT, "3 sold, 1 back: {answer}");
    let (status, answer) = returns(back("ret-2", 3, 1)).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "not sold here: {answer}"
    );
    let unknown = r#"{"return_ref":"ret-3","lines":[{"product_id":1,"quantity":1}],"reason":"x","restock":true}"#;
    let (status, _) = send(
        &app,
        Call::new("POST", "/reservations/1/returns").json(unknown),
    )
    .await;
    assert!(
        status.is_client_error() && status != StatusCode::OK,
        "an unknown field: {status}"
    );
    assert_eq!(stock_of(&app, 1).await, 48, "refusals put nothing back");
    let row = audit_row(app.clone(), 1).await;
    assert_eq!(
        (row["sold"].clone(), row["returned"].clone()),
        (json!(3), json!(1)),
        "{row}"
    );
    assert_eq!(row["balanced"], true, "{row}");
    // The order cancelled afterwards: only the two units still out come back.
    let (status, whole) = send(&app, Call::new("POST", "/reservations/1/return")).await;
    assert_eq!(status, StatusCode::OK, "{whole}");
    assert_eq!(whole["lines"][0]["returned"], 3);
    assert_eq!(
        stock_of(&app, 1).await,
        50,
        "all 50 again, the returned unit not twice"
    );
    let row = audit_row(app.clone(), 1).await;
    assert_eq!(
        (row["returned"].clone(), row["balanced"].clone()),
        (json!(3), json!(true)),
        "{row}"
    );
    let (status, _) = returns(back("ret-4", 1, 1)).await;
    assert_eq!(status, StatusCode::CONFLICT, "all back already");
}

#[tokio::test]
async fn the_sweep_releases_reservations_held_too_long() {
    let dir = tempfile::tempdir().unwrap();
    let state = state_with_ttl(&dir, Duration::ZERO);
    let app = router(state.clone(), test_keys());
    reserve(&app, 1, json!([{"product_id":2,"quantity":7}])).await;
    reserve(&app, 2, json!([{"product_id":2,"quantity":1}])).await;
    send(&app, Call::new("POST", "/reservations/2/commit")).await;
    assert_eq!(stock_of(&app, 2).await, 192);
    assert_eq!(
        release_expired(&state).await.unwrap(),
        1,
        "the committed one is left alone"
    );
    assert_eq!(stock_of(&app, 2).await, 199);
    let (_, r) = send(&app, Call::new("GET", "/reservations/1")).await;
    assert_eq!(r["status"], "released");
    assert_eq!(release_expired(&state).await.unwrap(), 0);
}

#[tokio::test]
async fn a_products_reserved_count_follows_every_reservation_as_the_lines_say() {
    let dir = tempfile::tempdir().unwrap();
    let state = state_with_ttl(&dir, Duration::ZERO);
    let app = router(state.clone(), test_keys());
    // What the product shows against what the reservation lines add up to (the audit's sum).
    let counts = |app: Router| async move {
        let (_, product) = send(&app, Call::new("GET", "/products/2")).await;
        let (_, rows) = send(&app, Call::new("GET", "/stock/audit")).await;
        let row = rows
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["product_id"] == 2)
            .cloned();
        (
            product["reserved"].as_i64().unwrap(),
            row.unwrap()["reserved"].as_i64().unwrap(),
        )
    };
    for (order, quantity) in [(1, 7), (2, 1), (3, 4), (4, 2)] {
        reserve(
            &app,
            order,
            json!([{"product_id":2,"quantity":quantity},{"product_id":1,"quantity":1}]),
        )
        .await;
    }
    assert_eq!(counts(app.clone()).await, (14, 14));
    send(&app, Call::new("POST", "/reservations/2/commit")).await;
    assert_eq!(
        counts(app.clone()).await,
        (13, 13),
        "a sale is no longer held"
    );
    send(&app, Call::new("POST", "/reservations/3/release")).await;
    assert_eq!(
        counts(app.clone()).await,
        (9, 9),
        "a release frees its units"
    );
    send(&app, Call::new("POST", "/reservations/3/release")).await;
    assert_eq!(
        counts(app.clone()).await,
        (9, 9),
        "a second release frees nothing"
    );
    assert_eq!(release_expired(&state).await.unwrap(), 2);
    assert_eq!(counts(app.clone()).await, (0, 0), "expired ones are freed");
    assert_eq!(stock_of(&app, 2).await, 199, "only the sale is gone");
}

#[tokio::test]
async fn a_reference_keys_one_reservation_and_one_held_until_settled_outlives_the_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let state = state_with_ttl(&dir, Duration::ZERO);
    let app = router(state.clone(), test_keys());
    let reference = service_kit::domain::new_reference();
    let held = |order_id: i64, quantity: i64| {
        json!({"reference": reference, "order_id": order_id, "expires": false,
               "lines": [{"product_id": 2, "quantity": quantity}]})
        .to_string()
    };
    let (status, r) = send(&app, Call::new("POST", "/reservations").json(&held(7, 3))).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    assert_eq!(r["reference"], json!(reference));
    assert_eq!(r["order_id"], 7);
    assert_eq!(r["expires_at"], Value::Null, "held until settled");
    // Order 7 of another orders.db (a restored backup) has its own reference: its own stock.
    let (status, other) = reserve(&app, 7, json!([{"product_id":2,"quantity":3}])).await;
    assert_eq!(status, StatusCode::CREATED, "{other}");
    assert_eq!(other["reference"], "7");
    assert_eq!(stock_of(&app, 2).await, 194);
    // The same reference for another order, or other lines: never the reservation reused.
    for body in [held(8, 3), held(7, 4)] {
        let (status, _) = send(&app, Call::new("POST", "/reservations").json(&body)).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
    }
    let (status, _) = send(&app, Call::new("POST", "/reservations").json(&held(7, 3))).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "asked again: found, not taken twice"
    );
    assert_eq!(stock_of(&app, 2).await, 194);

    assert_eq!(
        release_expired(&state).await.unwrap(),
        1,
        "only the one with a timer"
    );
    let (_, r) = send(
        &app,
        Call::new("GET", &format!("/reservations/{reference}")),
    )
    .await;
    assert_eq!(r["status"], "reserved");
    let path = format!("/reservations/{reference}/commit");
    let (status, r) = send(&app, Call::new("POST", &path)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(r["status"], "committed");
    assert_eq!(stock_of(&app, 2).await, 197);
    for bad in ["a%2Fb", "%00", "x%27%20OR%201"] {
        let (status, _) = send(&app, Call::new("GET", &format!("/reservations/{bad}"))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
}

#[tokio::test]
async fn stock_moves_by_deltas_in_a_ledger_and_is_overwritten_only_with_the_version_read() {
    let (_dir, app) = app();
    let (_, read) = send(&app, Call::new("GET", "/products/2")).await;
    let version = read["version"].as_i64().unwrap();
    assert_eq!(
        (read["stock"].as_i64(), read["reserved"].as_i64()),
        (Some(200), Some(0))
    );
    // A checkout takes 5 units after the admin read the product.
    reserve(&app, 1, json!([{"product_id":2,"quantity":5}])).await;
    let (_, now) = send(&app, Call::new("GET", "/products/2")).await;
    assert_eq!(
        (
            now["available"].as_i64(),
            now["reserved"].as_i64(),
            now["on_hand"].as_i64()
        ),
        (Some(195), Some(5), Some(200))
    );
    assert!(
        now["version"].as_i64().unwrap() > version,
        "every change bumps the version"
    );

    // The admin's form, saved with what it read, cannot put the 5 units back on sale.
    fn put(body: &str, if_match: Option<i64>) -> Call<'_> {
        let call = Call::new("PUT", "/products/2").json(body);
        match if_match {
            Some(v) => call.header("If-Match", format!("\"{v}\"")),
            None => call,
        }
    }
    let (status, body) = send(&app, put(r#"{"stock":200}"#, None)).await;
    assert_eq!(status, StatusCode::PRECONDITION_REQUIRED, "{body}");
    assert_eq!(body["error"]["code"], "precondition_required");
    let (status, body) = send(&app, put(r#"{"stock":200}"#, Some(version))).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{body}");
    let (status, _) = send(&app, put(r#"{"price":1.00}"#, Some(version))).await;
    assert_eq!(
        status,
        StatusCode::PRECONDITION_FAILED,
        "any stale change is refused"
    );
    let (status, _) = send(
        &app,
        put(r#"{"stock":200}"#, None).header("If-Match", "soon"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, unchanged) = send(&app, Call::new("GET", "/products/2")).await;
    assert_eq!(unchanged["stock"], 195, "nothing changed");

    // A delivery of 10: a movement, whatever happened meanwhile.
    let (status, moved) = send(
        &app,
        Call::new("POST", "/products/2/stock").json(r#"{"delta":10,"reason":"delivery"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{moved}");
    assert_eq!(
        (moved["delta"].as_i64(), moved["stock_after"].as_i64()),
        (Some(10), Some(205))
    );
    let (status, body) = send(
        &app,
        Call::new("POST", "/products/2/stock").json(r#"{"delta":-206,"reason":"damaged"}"#),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "reserved units are not taken: {body}"
    );
    for bad in [
        r#"{"delta":0,"reason":"nothing"}"#,
        r#"{"delta":5}"#,
        r#"{"delta":5,"reason":""}"#,
        r#"{"delta":5000000,"reason":"too many"}"#,
        r#"{"delta":"five","reason":"x"}"#,
    ] {
        let (status, _) = send(&app, Call::new("POST", "/products/2/stock").json(bad)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    // With the version just read, an overwrite is honoured and recorded as a movement.
    let (_, fresh) = send(&app, Call::new("GET", "/products/2")).await;
    let fresh_version = fresh["version"].as_i64();
    let (status, set) = send(&app, put(r#"{"stock":150}"#, fresh_version)).await;
    assert_eq!(status, StatusCode::OK, "{set}");
    assert_eq!(
        (set["stock"].as_i64(), set["reserved"].as_i64()),
        (Some(150), Some(5))
    );
    let (_, ledger) = send(&app, Call::new("GET", "/products/2/stock/movements")).await;
    let deltas: Vec<i64> = ledger
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["delta"].as_i64().unwrap())
        .collect();
    assert_eq!(
        deltas,
        [-55, 10, 200],
        "newest first, from the opening stock"
    );
    let (_, events) = send(&app, Call::new("GET", "/events?type=stock.moved")).await;
    assert_eq!(events.as_array().unwrap().len(), 2);
    let (status, _) = send(&app, Call::new("GET", "/products/99/stock/movements")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_concurrent_reservations_for_fifty_units_sell_exactly_fifty() {
    let (_dir, app) = app();
    let take = r#"{"delta":-50,"reason":"count correction"}"#;
    let (status, _) = send(&app, Call::new("POST", "/products/3/stock").json(take)).await;
    assert_eq!(status, StatusCode::CREATED);
    let mut tasks = tokio::task::JoinSet::new();
    for order in 1..=200 {
        let app = app.clone();
        tasks.spawn(async move {
            reserve(&app, order, json!([{"product_id":3,"quantity":1}]))
                .await
                .0
        });
    }
    let mut created = 0;
    while let Some(status) = tasks.join_next().await {
        match status.unwrap() {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created, 50);
    assert_eq!(stock_of(&app, 3).await, 0);
}

#[tokio::test]
async fn admins_add_edit_and_delete_products_with_validation() {
    let (_dir, app) = app();
    let (status, lamp) = send(
        &app,
        Call::new("POST", "/products").json(r#"{"name":"Desk Lamp","price":24.50,"stock":12}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{lamp}");
    assert_eq!(lamp["price"], json!(24.5));
    let id = lamp["id"].as_i64().unwrap();
    for bad in [
        r#"{"name":"","price":1,"stock":1}"#,
        r#"{"name":"X","price":0,"stock":1}"#,
        r#"{"name":"X","price":1.005,"stock":1}"#,
        r#"{"name":"X","price":1,"stock":-1}"#,
        r#"{"name":"X","price":1}"#,
    ] {
        let (status, _) = send(&app, Call::new("POST", "/products").json(bad)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    let (status, edited) = send(
        &app,
        Call::new("PUT", &format!("/products/{id}"))
            .json(r#"{"price":19.99,"stock":30}"#)
            .header("If-Match", format!("\"{}\"", lamp["version"])),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(
        (
            edited["price"].clone(),
            edited["stock"].clone(),
            edited["name"].clone()
        ),
        (json!(19.99), json!(30), json!("Desk Lamp"))
    );
    let (status, _) = send(
        &app,
        Call::new("PUT", &format!("/products/{id}")).json(r#"{"stock":-3}"#),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = send(&app, Call::new("DELETE", &format!("/products/{id}"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(&app, Call::new("GET", &format!("/products/{id}"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "hidden from the catalog");
    let (_, list) = send(&app, Call::new("GET", "/products")).await;
    assert_eq!(list.as_array().unwrap().len(), 3);
    let (status, _) = reserve(&app, 1, json!([{"product_id": id, "quantity": 1}])).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a deleted product cannot be reserved"
    );
    let (status, _) = send(&app, Call::new("DELETE", &format!("/products/{id}"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for (method, uri) in [
        ("POST", "/products"),
        ("PUT", "/products/1"),
        ("DELETE", "/products/1"),
        ("POST", "/reservations"),
        ("GET", "/events"),
    ] {
        let (status, _) = send(&app, Call::new(method, uri).key(None).json("{}")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}");
    }
}

#[tokio::test]
async fn a_request_id_is_returned_and_carried_onto_events() {
    let (_dir, app) = app();
    let body = json!({"order_id": 5, "lines": [{"product_id": 1, "quantity": 1}]}).to_string();
    let call = Call::new("POST", "/reservations")
        .json(&body)
        .header("x-request-id", "journey-42");
    let (status, headers, _) = send_raw(&app, call).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(headers["x-request-id"], "journey-42");
    let (_, events) = send(&app, Call::new("GET", "/events?correlation_id=journey-42")).await;
    assert_eq!(events[0]["type"], "stock.reserved");
    assert_eq!(events[0]["payload"]["order_id"], 5);
    // Without one, a fresh id is made; an unusable one is replaced.
    let (_, headers, _) = send_raw(&app, Call::new("GET", "/products")).await;
    assert!(headers["x-request-id"].len() >= 32);
    let (_, headers, _) = send_raw(
        &app,
        Call::new("GET", "/products").header("x-request-id", "a b<c>"),
    )
    .await;
    assert_ne!(headers["x-request-id"], "a b<c>");
}

#[tokio::test]
async fn a_key_over_its_rate_gets_429_with_retry_after() {
    let (_dir, app) = app_with_keys(test_keys().with_rate_limit(2));
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let (status, headers, body) = send_raw(&app, Call::new("GET", "/products")).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert!(
                headers["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap()
                    >= 1
            );
            let body: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["error"]["code"], "rate_limited");
        }
        statuses.push(status);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        4,
        "{statuses:?}"
    );
    let (status, _) = send(&app, Call::new("GET", "/health").key(None)).await;
    assert_eq!(status, StatusCode::OK, "probes are not limited");
}

#[tokio::test]
async fn the_openapi_document_is_served_without_a_key_and_names_the_key_scheme() {
    let (_dir, app) = app();
    let (status, doc) = send(&app, Call::new("GET", "/openapi.json").key(None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["name"],
        "X-API-Key"
    );
    for path in [
        "/products",
        "/products/{id}",
        "/reservations",
        "/reservations/{reference}/release",
        "/events",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    assert_eq!(
        doc["paths"]["/products/{id}"]["get"]["responses"]["404"]["content"]["application/json"]["schema"]
            ["$ref"],
        "#/components/schemas/ErrorBody"
    );
}

#[test]
fn every_migration_is_a_numbered_file_of_the_folder_and_no_released_one_was_edited() {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let checked = service_kit::migrations::check_history(&folder, catalog_service::MIGRATIONS);
    assert_eq!(checked, Ok(()));
}

#[test]
fn reservations_made_before_references_keep_their_key_lines_and_stock_opens_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = rusqlite::Connection::open(dir.path().join("products.db")).unwrap();
    let before = service_kit::migrations::from_files(&catalog_service::MIGRATIONS[..4]);
    service_kit::migrations::apply(&mut conn, &before).unwrap();
    // Order 7 holds 3 laptops, order 8 bought 2: the seeded 50 are now 45 on sale.
    conn.execute_batch(
        "UPDATE products SET stock = 45 WHERE id = 1;
         INSERT INTO reservations (order_id, status, expires_at_ms) VALUES (7, 'reserved', 0);
         INSERT INTO reservation_lines (order_id, product_id, quantity) VALUES (7, 1, 3);
         INSERT INTO reservations (order_id, status, expires_at_ms) VALUES (8, 'committed', 0);
         INSERT INTO reservation_lines (order_id, product_id, quantity) VALUES (8, 1, 2);",
    )
    .unwrap();
    service_kit::migrations::apply(&mut conn, &catalog_service::migrations()).unwrap();
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        count("SELECT COUNT(*) FROM reservations WHERE reference = '7' AND order_id = 7"),
        1
    );
    assert_eq!(
        count("SELECT SUM(quantity) FROM reservation_lines WHERE reference = '8'"),
        2
    );
    assert_eq!(count("SELECT COUNT(*) FROM pragma_foreign_key_check"), 0);
    // The ledger opens with what product 1 holds (on sale, reserved or sold): 50.
    assert_eq!(
        count(
            "SELECT delta FROM stock_movements WHERE product_id = 1 AND reason = 'opening stock'"
        ),
        50
    );
    assert_eq!(count("SELECT version FROM products WHERE id = 1"), 1);
    // Order 7's open reservation is counted on the product; order 8's committed one is not.
    assert_eq!(count("SELECT reserved FROM products WHERE id = 1"), 3);
}

/// Adds a product from a JSON body; returns it.
async fn add_product(app: &Router, body: &str) -> Value {
    let (status, product) = send(app, Call::new("POST", "/products").json(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}: {product}");
    product
}

#[tokio::test]
async fn products_are_found_by_words_category_price_and_stock_with_their_total() {
    let (_dir, app) = app();
    add_product(&app, r#"{"name":"Desk Lamp","price":39.90,"stock":4,"category":"Lighting","sku":"lamp-1","description":"A warm 100% LED"}"#).await;
    add_product(
        &app,
        r#"{"name":"Floor lamp","price":89.00,"stock":0,"category":"lighting"}"#,
    )
    .await;
    add_product(
        &app,
        r#"{"name":"Kettle","price":25.00,"stock":9,"category":"Kitchen"}"#,
    )
    .await;
    let names = |body: &Value| -> Vec<String> {
        body.as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    let get = |uri: &'static str| {
        let app = app.clone();
        async move { send_raw(&app, Call::new("GET", uri)).await }
    };
    let (status, headers, body) = get("/products?q=LAMP&sort=-price").await;
    assert_eq!(status, StatusCode::OK);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(names(&body), ["Floor lamp", "Desk Lamp"]);
    assert_eq!(headers["x-total-count"], "2");
    let (_, _, body) = get("/products?category=LIGHTING&in_stock=true").await;
    assert_eq!(
        names(&serde_json::from_slice(&body).unwrap()),
        ["Desk Lamp"]
    );
    let (_, _, body) = get("/products?min_price=25&max_price=39.90&sort=price").await;
    assert_eq!(
        names(&serde_json::from_slice(&body).unwrap()),
        ["Kettle", "Wireless Mouse", "Desk Lamp"],
        "the seeded mouse costs 29.99"
    );
    let (_, _, body) = get("/products?q=100%25").await;
    assert_eq!(
        names(&serde_json::from_slice(&body).unwrap()),
        ["Desk Lamp"],
        "% is a character, not a wildcard"
    );
    let (_, _, body) = get("/products?sku=lamp-1").await;
    assert_eq!(
        names(&serde_json::from_slice(&body).unwrap()),
        ["Desk Lamp"]
    );
    // Six products (three seeded), two a page: a total, and a Link while more are left.
    let (_, headers, body) = get("/products?limit=2&offset=2").await;
    assert_eq!(headers["x-total-count"], "6");
    assert_eq!(
        headers["link"],
        "</products?limit=2&offset=4>; rel=\"next\""
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&body)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (_, headers, _) = get("/products?limit=2&offset=4").await;
    assert!(headers.get("link").is_none(), "the last page has no next");
    // Several products by id in one call: those that exist, by id; 999 is not sold.
    let (_, headers, body) = get("/products?ids=3,1,999").await;
    let ids: Vec<i64> = serde_json::from_slice::<Value>(&body)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [1, 3]);
    assert_eq!(headers["x-total-count"], "2");
    let too_many = format!("/products?ids={}", vec!["1"; 201].join(","));
    let (status, _, _) = send_raw(&app, Call::new("GET", &too_many)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "at most 200 ids");
    for bad in [
        "/products?sort=cheapest",
        "/products?min_price=abc",
        "/products?in_stock=maybe",
        "/products?ids=1,abc",
        "/products?ids=0",
        "/products?ids=",
    ] {
        let (status, _, _) = get(bad).await;
        assert!(status.is_client_error(), "{bad}: {status}");
    }
}

#[tokio::test]
async fn a_sku_names_one_product_only() {
    let (_dir, app) = app();
    let first = add_product(&app, r#"{"name":"A","price":1,"stock":1,"sku":"prod_001"}"#).await;
    assert_eq!(first["sku"], "prod_001");
    let (status, body) = send(
        &app,
        Call::new("POST", "/products").json(r#"{"name":"B","price":1,"stock":1,"sku":"prod_001"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let second = add_product(&app, r#"{"name":"B","price":1,"stock":1,"sku":"prod_002"}"#).await;
    let uri = format!("/products/{}", second["id"]);
    let (status, _) = send(&app, Call::new("PUT", &uri).json(r#"{"sku":"prod_001"}"#)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, kept) = send(
        &app,
        Call::new("PUT", &uri).json(r#"{"sku":"prod_002","category":"Misc"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "its own sku again is fine");
    assert_eq!(kept["category"], "Misc");
    let (_, cleared) = send(&app, Call::new("PUT", &uri).json(r#"{"sku":""}"#)).await;
    assert!(cleared["sku"].is_null());
    let (status, _) = send(
        &app,
        Call::new("POST", "/products")
            .json(r#"{"name":"C","price":1,"stock":1,"sku":"has space"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// The smallest PNG: a 1x1 transparent pixel.
const PIXEL_PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

#[tokio::test]
async fn an_image_is_stored_and_served_by_its_bytes_and_anything_else_is_refused() {
    let (_dir, app) = app();
    let (status, product) = send(
        &app,
        Call::new("PUT", "/products/1/image").bytes("image/png", PIXEL_PNG.to_vec()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{product}");
    assert_eq!(product["image_url"], "/products/1/image");
    let (status, headers, bytes) = send_raw(&app, Call::new("GET", "/products/1/image")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(bytes, PIXEL_PNG);
    // What the client calls it does not matter; what the bytes are does.
    let refused: [(&str, Vec<u8>); 4] = [
        ("image/png", b"<svg onload=alert(1)></svg>".to_vec()),
        ("image/jpeg", b"GIF89a....".to_vec()),
        ("image/webp", Vec::new()),
        ("text/plain", b"hello".to_vec()),
    ];
    for (content_type, body) in refused {
        let call = Call::new("PUT", "/products/2/image").bytes(content_type, body);
        let (status, answer) = send(&app, call).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{content_type}: {answer}"
        );
    }
    let (status, _) = send(&app, Call::new("GET", "/products/2/image")).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "nothing was stored for product 2"
    );
    let mut huge = PIXEL_PNG.to_vec();
    huge.resize(1024 * 1024 + 10, 0);
    let (status, _) = send(
        &app,
        Call::new("PUT", "/products/2/image").bytes("image/png", huge),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _) = send(
        &app,
        Call::new("PUT", "/products/999/image").bytes("image/png", PIXEL_PNG.to_vec()),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A decompression bomb: 60000×60000 pixels declared in a few bytes of header.
    let mut bomb = PIXEL_PNG.to_vec();
    bomb[16..24].copy_from_slice(&[0, 0, 0xEA, 0x60, 0, 0, 0xEA, 0x60]);
    let (status, answer) = send(
        &app,
        Call::new("PUT", "/products/2/image").bytes("image/png", bomb),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(answer.to_string().contains("60000×60000"), "{answer}");
    // A JPEG (an APP0 segment, then a 2×1 start of frame) replaces the PNG.
    let jpeg = [
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, b'J', b'F', 0xFF, 0xC0, 0, 11, 8, 0, 1, 0, 2, 3,
    ]
    .to_vec();
    let (status, _) = send(
        &app,
        Call::new("PUT", "/products/1/image").bytes("image/jpeg", jpeg.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, headers, bytes) = send_raw(&app, Call::new("GET", "/products/1/image")).await;
    assert_eq!(
        (headers["content-type"].to_str().unwrap(), bytes),
        ("image/jpeg", jpeg)
    );
}

#[tokio::test]
async fn a_misspelled_field_in_a_body_or_query_is_a_422_naming_it_and_changes_nothing() {
    let (_dir, app) = app();
    let (_, before) = send(&app, Call::new("GET", "/products")).await;
    let product = r#"{"name":"Lamp","price":10,"stock":3,"colour":"red"}"#;
    refused_naming(&app, Call::new("POST", "/products").json(product), "colour").await;
    let change = Call::new("PUT", "/products/1").json(r#"{"prize":1}"#);
    refused_naming(&app, change, "prize").await;
    let reserve =
        r#"{"order_id":1,"reference":"r-1","lines":[{"product_id":1,"quantity":1,"qty":5}]}"#;
    refused_naming(
        &app,
        Call::new("POST", "/reservations").json(reserve),
        "qty",
    )
    .await;
    refused_naming(&app, Call::new("GET", "/products?serach=lamp"), "serach").await;
    let (_, after) = send(&app, Call::new("GET", "/products")).await;
    assert_eq!(before, after, "nothing was created, changed or reserved");
}
