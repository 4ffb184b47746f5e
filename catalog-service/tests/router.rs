//! Router tests: the auth and validation matrix of catalog-service, through `oneshot`.

use axum::Router;
use axum::http::StatusCode;
use catalog_service::{AppState, migrations, router};
use service_kit::auth::ApiKeys;
use service_kit::config::Secret;
use service_kit::db::{Db, Durability};
use service_kit::testing::{Call, send, test_keys};

fn app_with_keys(keys: ApiKeys) -> (tempfile::TempDir, Router) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        &dir.path().join("products.db"),
        &migrations(),
        Durability::Normal,
    )
    .unwrap();
    (dir, router(AppState { db }, keys))
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
