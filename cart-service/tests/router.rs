//! Router tests for cart-service: auth, validation, and fail-open against a fake catalog.

// A test or tool: a failure to set up ends it, with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::http::StatusCode;
use cart_service::{AppState, PeerUrls, Timeouts, migrations, router};
use service_kit::db::{Db, Durability};
use service_kit::testing::{
    Call, CatalogMode, FakeCatalog, refused_naming, send, test_keys, unreachable_url,
};
use std::time::{Duration, Instant};

fn app(catalog_url: &str) -> (tempfile::TempDir, Router) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        &dir.path().join("carts.db"),
        &migrations(),
        Durability::Normal,
    )
    .unwrap();
    let urls = PeerUrls {
        catalog: catalog_url.to_string(),
        order: unreachable_url(),
        payment: unreachable_url(),
    };
    let timeout = Duration::from_millis(300);
    let timeouts = Timeouts {
        peer: timeout,
        checkout: timeout,
    };
    let state = AppState::new(db, &urls, "k", timeouts);
    (dir, router(state, test_keys()))
}

/// How many checkouts the cart database holds (one-call checkouts are filed under new
/// guest ids, so none can be listed by a user id known beforehand).
fn checkouts_recorded(dir: &tempfile::TempDir) -> i64 {
    rusqlite::Connection::open(dir.path().join("carts.db"))
        .unwrap()
        .query_row("SELECT COUNT(*) FROM checkouts", [], |row| row.get(0))
        .unwrap()
}

async fn cart_lines(app: &Router, user: &str) -> Vec<(i64, i64, bool)> {
    let (status, cart) = send(app, Call::new("GET", &format!("/cart/{user}"))).await;
    assert_eq!(status, StatusCode::OK);
    cart["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["product_id"].as_i64().unwrap(),
                l["quantity"].as_i64().unwrap(),
                l["verified"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_cart_route_refuses_a_missing_or_wrong_key_and_changes_nothing() {
    let catalog = FakeCatalog::start().await;
    let (_dir, app) = app(&catalog.url);
    let routes = [
        ("GET", "/cart/u1"),
        ("POST", "/cart/u1/add?product_id=1&quantity=1"),
        ("DELETE", "/cart/u1/clear"),
        ("PUT", "/cart/u1/items/1?quantity=2"),
        ("DELETE", "/cart/u1/items/1"),
    ];
    for (method, uri) in routes {
        for key in [None, Some(""), Some("nope")] {
            let (status, body) = send(&app, Call::new(method, uri).key(key)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri} {key:?}");
            assert_eq!(body["error"]["code"], "unauthorized");
        }
    }
    assert!(cart_lines(&app, "u1").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_user_has_an_empty_cart() {
    let catalog = FakeCatalog::start().await;
    let (_dir, app) = app(&catalog.url);
    let (status, cart) = send(&app, Call::new("GET", "/cart/nobody")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cart["items"], serde_json::json!([]));
    assert_eq!(cart["total"], serde_json::json!(0.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn adding_takes_the_catalog_name_and_price_and_adding_again_sums() {
    let catalog = FakeCatalog::start().await;
    let (_dir, app) = app(&catalog.url);
    let (status, body) = send(
        &app,
        Call::new("POST", "/cart/u1/add?product_id=1&quantity=2"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["item"]["name"], "Laptop");
    assert_eq!(body["item"]["unit_price"], serde_json::json!(999.99));
    assert_eq!(body["item"]["verified"], true);
    let (_, body) = send(
        &app,
        Call::new("POST", "/cart/u1/add?product_id=1&quantity=1"),
    )
    .await;
    assert_eq!(body["item"]["quantity"], 3);
    assert_eq!(body["cart"]["total"], serde_json::json!(2999.97));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_product_is_404_and_changes_nothing() {
    let catalog = FakeCatalog::start().await;
    let (_dir, app) = app(&catalog.url);
    let (status, body) = send(
        &app,
        Call::new("POST", "/cart/u1/add?product_id=77&quantity=1"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    assert!(cart_lines(&app, "u1").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_quantities_and_ids_are_refused_and_change_nothing() {
    let catalog = FakeCatalog::start().await;
    let (_dir, app) = app(&catalog.url);
    let cases = [
        (
            "/cart/u1/add?product_id=1&quantity=0",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/cart/u1/add?product_id=1&quantity=-2",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/cart/u1/add?product_id=1&quantity=1001",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/cart/u1/add?product_id=1&quantity=1e3",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/cart/u1/add?product_id=x&quantity=1",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/cart/u1/add?product_id=0&quantity=1",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("/cart/u1/add?quantity=1", StatusCode::BAD_REQUEST),
        (
            "/cart/u%20x/add?product_id=1",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/cart/u1/add?product_id=1&quantity=99999999999999999999",
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (uri, want) in cases {
        let (status, body) = send(&app, Call::new("POST", uri)).await;
        assert_eq!(status, want, "{uri}");
        assert!(body["error"]["message"].is_string(), "{uri}");
    }
    assert!(cart_lines(&app, "u1").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_line_never_holds_more_than_the_maximum() {
    let catalog = FakeCatalog::start().await;
    let (_dir, app) = app(&catalog.url);
    let (status, _) = send(
        &app,
        Call::new("POST", "/cart/u1/add?product_id=2&quantity=1000"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(
        &app,
        Call::new("POST", "/cart/u1/add?product_id=2&quantity=1"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(cart_lines(&app, "u1").await, [(2, 1000, true)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_catalog_that_is_down_failing_garbled_slow_or_redirecting_lets_the_add_through_unverified()
 {
    let catalog = FakeCatalog::start().await;
    for (mode, user) in [
        (CatalogMode::Failing, "failing"),
        (CatalogMode::Garbage, "garbage"),
        (CatalogMode::Slow, "slow"),
        (CatalogMode::Redirect, "redirected"),
    ] {
        catalog.set_mode(mode);
        let (_dir, app) = app(&catalog.url);
        let started = Instant::now();
        let (status, body) = send(
            &app,
            Call::new("POST", &format!("/cart/{user}/add?product_id=1&quantity=1")),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{mode:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{mode:?} took {:?}",
            started.elapsed()
        );
        assert_eq!(body["item"]["verified"], false, "{mode:?}");
        assert_eq!(body["item"]["unit_price"], serde_json::Value::Null);
        assert_eq!(body["cart"]["unverified_items"], 1);
        assert_eq!(cart_lines(&app, user).await, [(1, 1, false)], "{mode:?}");
    }
    let (_dir, app) = app(&unreachable_url());
    let (status, body) = send(&app, Call::new("POST", "/cart/u/add?product_id=42")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["item"]["verified"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unverified_line_is_verified_by_the_next_add_once_the_catalog_is_back() {
    let catalog = FakeCatalog::start().await;
    let (_dir, app) = app(&catalog.url);
    catalog.set_mode(CatalogMode::Failing);
    send(
        &app,
        Call::new("POST", "/cart/u1/add?product_id=1&quantity=1"),
    )
    .await;
    catalog.set_mode(CatalogMode::Healthy);
    let (_, body) = send(
        &app,
        Call::new("POST", "/cart/u1/add?product_id=1&quantity=1"),
    )
    .await;
    assert_eq!(body["item"]["verified"], true);
    assert_eq!(body["item"]["name"], "Laptop");
    assert_eq!(cart_lines(&app, "u1").await, [(1, 2, true)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn lines_can_be_changed_removed_and_cleared() {
    let catalog = FakeCatalog::start().await;
    let (_dir, app) = app(&catalog.url);
    send(
        &app,
        Call::new("POST", "/cart/u1/add?product_id=1&quantity=1"),
    )
    .await;
    send(
        &app,
        Call::new("POST", "/cart/u1/add?product_id=2&quantity=1"),
    )
    .await;
    let (status, _) = send(&app, Call::new("PUT", "/cart/u1/items/2?quantity=4")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(&app, Call::new("PUT", "/cart/u1/items/2?quantity=0")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = send(&app, Call::new("PUT", "/cart/u1/items/9?quantity=1")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(cart_lines(&app, "u1").await, [(1, 1, true), (2, 4, true)]);
    let (status, _) = send(&app, Call::new("DELETE", "/cart/u1/items/1")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cart_lines(&app, "u1").await, [(2, 4, true)]);
    let (status, body) = send(&app, Call::new("DELETE", "/cart/u1/clear")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["items"], serde_json::json!([]));
    assert!(cart_lines(&app, "u1").await.is_empty());
}

#[test]
fn every_migration_is_a_numbered_file_of_the_folder_and_no_released_one_was_edited() {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let checked = service_kit::migrations::check_history(&folder, cart_service::MIGRATIONS);
    assert_eq!(checked, Ok(()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cart_holds_as_many_lines_as_an_order_and_refuses_one_more() {
    let catalog = FakeCatalog::start().await;
    // Unverified adds take any product id: the catalog is failing, so no lookup refuses.
    catalog.set_mode(CatalogMode::Failing);
    let (_dir, app) = app(&catalog.url);
    for product in 1..=100 {
        let uri = format!("/cart/u1/add?product_id={product}&quantity=1");
        let (status, body) = send(&app, Call::new("POST", &uri)).await;
        assert_eq!(status, StatusCode::OK, "{product}: {body}");
    }
    let (status, body) = send(
        &app,
        Call::new("POST", "/cart/u1/add?product_id=101&quantity=1"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("100 lines")
    );
    assert_eq!(cart_lines(&app, "u1").await.len(), 100, "nothing added");
    // More units of a line already there still fit.
    let (status, _) = send(
        &app,
        Call::new("POST", "/cart/u1/add?product_id=7&quantity=2"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

/// Seed 001's body, as its README writes it, with the card's expiry given.
fn seed_body(expiry: &str) -> String {
    format!(
        r#"{{
  "payment_method": {{"type": "credit_card", "card_number": "4111111111111111",
                      "card_expiry": "{expiry}", "card_cvv": "123"}},
  "customer_email": "customer@example.com",
  "shipping_address": {{"street": "Rua das Flores", "number": "123", "city": "São Paulo",
                        "state": "SP", "zip_code": "01234-567"}},
  "items": [{{"product_id": "prod_001", "quantity": 2, "price": 99.90}},
            {{"product_id": "prod_002", "quantity": 1, "price": 149.90}}]
}}"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_one_call_checkout_with_bad_input_is_refused_before_anything_is_recorded() {
    let catalog = FakeCatalog::start().await;
    let (dir, app) = app(&catalog.url);
    let good = seed_body("12/30");
    let cases = [
        (good.replace("12/30", "12/25"), "expired"),
        (good.replace("12/30", "1230"), "card_expiry"),
        (
            good.replace("4111111111111111", "4111111111111112"),
            "card number",
        ),
        (
            good.replace("credit_card", "voucher"),
            "payment_method.type",
        ),
        (
            good.replace("customer@example.com", "customer@"),
            "customer.email",
        ),
        (
            good.replace("01234-567", "01234;567"),
            "shipping_address.postal_code",
        ),
        (good.replace("prod_001", "prod 001"), "product_id"),
        (
            good.replace("\"quantity\": 2", "\"quantity\": 0"),
            "quantity",
        ),
        (good.replace("99.90", "-1"), "price"),
        (r#"{"items":[]}"#.to_string(), "items"),
        ("not json".to_string(), "body must be"),
    ];
    for (body, said) in cases {
        let (status, answer) = send(&app, Call::new("POST", "/checkout/process").json(&body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{said}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(said), "{said}: {message}");
        assert!(
            !message.contains("4111"),
            "the card number is never echoed: {message}"
        );
    }
    assert_eq!(checkouts_recorded(&dir), 0, "nothing was recorded");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_misspelled_field_in_a_body_or_query_is_a_422_naming_it_and_changes_nothing() {
    let catalog = FakeCatalog::start().await;
    let (dir, app) = app(&catalog.url);
    let good = seed_body("12/30");
    let bodies = [
        (
            "/cart/u1/checkout",
            r#"{"promocode":"WELCOME10"}"#.to_string(),
            "promocode",
        ),
        (
            "/cart/u1/checkout",
            r#"{"shipping_adress":{"lines":["1 Main St"],"city":"X","postal_code":"1"}}"#
                .to_string(),
            "shipping_adress",
        ),
        (
            "/cart/u1/checkout",
            r#"{"card":{"number":"4242424242424242","exp_month":12,"exp_year":2030,"cvv":"123"}}"#
                .to_string(),
            "cvv",
        ),
        (
            "/checkout/process",
            good.replace("\"zip_code\"", "\"zipcode\""),
            "zipcode",
        ),
        (
            "/checkout/process",
            good.replace("\"customer_email\"", "\"customer_mail\""),
            "customer_mail",
        ),
    ];
    for (uri, body, field) in bodies {
        refused_naming(&app, Call::new("POST", uri).json(&body), field).await;
    }
    refused_naming(
        &app,
        Call::new("POST", "/cart/u1/add?product_id=1&quantity=1&qty=2"),
        "unknown field `qty`",
    )
    .await;
    refused_naming(
        &app,
        Call::new("PUT", "/cart/u1/items/1?quantity=2&quantiy=3"),
        "unknown field `quantiy`",
    )
    .await;
    refused_naming(
        &app,
        Call::new("GET", "/checkouts?user_id=u1&limt=5"),
        "limt",
    )
    .await;
    assert!(cart_lines(&app, "u1").await.is_empty(), "nothing was added");
    let (_, checkouts) = send(&app, Call::new("GET", "/checkouts?user_id=u1")).await;
    assert_eq!(checkouts, serde_json::json!([]), "no checkout was recorded");
    assert_eq!(checkouts_recorded(&dir), 0, "no checkout was recorded");
}
