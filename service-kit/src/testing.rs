//! Helpers for router tests: send one request through a `Router` with `oneshot` and read
//! the answer as JSON. Compiled only with the `testing` feature.

// Test helpers: a failure to set up is the test failing, with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// The key router tests configure.
pub const TEST_KEY: &str = "test-key";

/// Accepts [`TEST_KEY`] only.
pub fn test_keys() -> crate::auth::ApiKeys {
    crate::auth::ApiKeys::new(vec![crate::config::Secret::new(TEST_KEY)])
}

/// One request for [`send`].
#[derive(Debug, Clone)]
pub struct Call<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Path and query.
    pub uri: &'a str,
    /// `X-API-Key` to send, if any.
    pub key: Option<&'a str>,
    /// JSON body to send, if any.
    pub json: Option<&'a str>,
    /// Extra headers.
    pub headers: Vec<(&'a str, String)>,
    /// A body that is not JSON, with its content type.
    pub bytes: Option<(&'a str, Vec<u8>)>,
}

impl<'a> Call<'a> {
    /// A request with the test key and no body.
    pub fn new(method: &'a str, uri: &'a str) -> Self {
        Call {
            method,
            uri,
            key: Some(TEST_KEY),
            json: None,
            headers: Vec::new(),
            bytes: None,
        }
    }

    /// The same request with a body of `content_type` (an image, say).
    pub fn bytes(mut self, content_type: &'a str, bytes: Vec<u8>) -> Self {
        self.bytes = Some((content_type, bytes));
        self
    }

    /// The same request with one more header.
    pub fn header(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The same request with another key (or none).
    pub fn key(mut self, key: Option<&'a str>) -> Self {
        self.key = key;
        self
    }

    /// The same request with a JSON body.
    pub fn json(mut self, body: &'a str) -> Self {
        self.json = Some(body);
        self
    }
}

/// Sends `call` through `app`; returns the status and the body parsed as JSON (`Null` when
/// the body is empty or not JSON).
pub async fn send(app: &Router, call: Call<'_>) -> (StatusCode, serde_json::Value) {
    let (status, _, body) = send_raw(app, call).await;
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    (status, json)
}

/// Sends `call` and demands a 422 whose message names `field` (a field the route does not
/// know, or one that breaks a rule); returns the message.
pub async fn refused_naming(app: &Router, call: Call<'_>, field: &str) -> String {
    let (status, answer) = send(app, call).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{field}: {answer}"
    );
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(field), "{field}: {message}");
    message.to_string()
}

/// Sends `call` through `app`; returns the status, the headers and the raw body.
pub async fn send_raw(
    app: &Router,
    call: Call<'_>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let mut builder = Request::builder().method(call.method).uri(call.uri);
    if let Some(key) = call.key {
        builder = builder.header("x-api-key", key);
    }
    for (name, value) in &call.headers {
        builder = builder.header(*name, value);
    }
    let body = match (call.json, call.bytes) {
        (Some(json), _) => {
            builder = builder.header("content-type", "application/json");
            Body::from(json.to_string())
        }
        (None, Some((content_type, bytes))) => {
            builder = builder.header("content-type", content_type);
            Body::from(bytes)
        }
        (None, None) => Body::empty(),
    };
    let request = builder.body(body).expect("valid test request");
    let response = app
        .clone()
        .oneshot(request)
        .await
        .expect("router is infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body readable")
        .to_bytes();
    (status, headers, bytes.to_vec())
}

/// The webhook secret router and system tests sign and verify with.
pub const TEST_WEBHOOK_SECRET: &str = "whsec_c3lzdGVtLXRlc3Qtd2ViaG9vay1zZWNyZXQ=";

/// [`TEST_WEBHOOK_SECRET`], parsed.
pub fn test_webhook_secrets() -> Vec<crate::webhook::WebhookSecret> {
    crate::webhook::parse_secrets(TEST_WEBHOOK_SECRET).expect("valid test secret")
}

/// How a [`FakeCatalog`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum CatalogMode {
    /// Answers like the real catalog.
    Healthy = 0,
    /// Answers 500 to everything.
    Failing = 1,
    /// Answers 200 with a body that is not a product.
    Garbage = 2,
    /// Waits five seconds before answering.
    Slow = 3,
    /// Answers 302, pointing at itself.
    Redirect = 4,
}

/// A stand-in catalog-service on a port-0 loopback socket, switchable between modes. It
/// knows products 1 (Laptop, 999.99) and 2 (Wireless Mouse, 29.99).
#[derive(Debug, Clone)]
pub struct FakeCatalog {
    /// Base URL to give the service under test.
    pub url: String,
    mode: std::sync::Arc<std::sync::atomic::AtomicU8>,
}

impl FakeCatalog {
    /// Starts the fake on the current runtime. It answers `GET /products/{id}` and
    /// `GET /products?ids=` (a list of the known ones among those asked for).
    pub async fn start() -> FakeCatalog {
        use axum::extract::{Path, Query, State};
        use axum::response::{IntoResponse, Response};
        use std::sync::atomic::{AtomicU8, Ordering};
        type Mode = State<std::sync::Arc<AtomicU8>>;

        /// The answer of a mode that is not healthy, after its delay for a slow one.
        async fn misbehave(mode: &AtomicU8, location: String) -> Option<Response> {
            match mode.load(Ordering::SeqCst) {
                1 => Some(StatusCode::INTERNAL_SERVER_ERROR.into_response()),
                2 => Some("<html>not json</html>".into_response()),
                3 => {
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                    None
                }
                4 => Some(
                    (
                        StatusCode::FOUND,
                        [(axum::http::header::LOCATION, location)],
                    )
                        .into_response(),
                ),
                _ => None,
            }
        }
        fn known(id: i64) -> Option<serde_json::Value> {
            let (name, price) = match id {
                1 => ("Laptop", 999.99),
                2 => ("Wireless Mouse", 29.99),
                _ => return None,
            };
            Some(serde_json::json!({"id": id, "name": name, "price": price, "stock": 10}))
        }
        async fn product(State(mode): Mode, Path(id): Path<i64>) -> Response {
            if let Some(answer) = misbehave(&mode, format!("/products/{id}")).await {
                return answer;
            }
            match known(id) {
                Some(product) => axum::Json(product).into_response(),
                None => StatusCode::NOT_FOUND.into_response(),
            }
        }
        async fn products(
            State(mode): Mode,
            Query(query): Query<std::collections::HashMap<String, String>>,
        ) -> Response {
            let ids = query.get("ids").cloned().unwrap_or_default();
            if let Some(answer) = misbehave(&mode, format!("/products?ids={ids}")).await {
                return answer;
            }
            let listed: Vec<serde_json::Value> = ids
                .split(',')
                .filter_map(|id| id.parse().ok().and_then(known))
                .collect();
            axum::Json(listed).into_response()
        }

        let mode = std::sync::Arc::new(AtomicU8::new(CatalogMode::Healthy as u8));
        let app = Router::new()
            .route("/products/{id}", axum::routing::get(product))
            .route("/products", axum::routing::get(products))
            .with_state(mode.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeCatalog { url, mode }
    }

    /// Switches how it answers from now on.
    pub fn set_mode(&self, mode: CatalogMode) {
        self.mode
            .store(mode as u8, std::sync::atomic::Ordering::SeqCst);
    }
}

/// How SQLite would run `sql` with `params` on `conn`: the steps of `EXPLAIN QUERY PLAN`
/// (`SEARCH t USING INDEX ...`, `SCAN t`, ...), for tests that hold a hot statement to its
/// index.
pub fn query_plan(
    conn: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Vec<String> {
    conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .expect("a statement to explain")
        .query_map(params, |row| row.get(3))
        .expect("its plan")
        .collect::<Result<_, _>>()
        .expect("each step")
}

/// A loopback URL where nothing listens: a peer that is down.
pub fn unreachable_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let url = format!("http://{}", listener.local_addr().expect("local addr"));
    drop(listener);
    url
}
