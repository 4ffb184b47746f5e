//! Router assembly, serving with graceful shutdown, and logging set-up: the parts of a
//! service's life that are the same for all four.

use crate::ApiError;
use crate::auth::{ApiKeys, require_api_key};
use crate::context::with_correlation_id;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The header that carries a journey's correlation id, between clients and services alike.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Logs, once and inside the request's span (so with its correlation id), the cause of a
/// 5xx that [`ApiError`] left on the response (see [`crate::error::ErrorCause`]; the
/// client's body never carries an internal error's detail), and the reason of a business
/// refusal (402, 409, 422; see [`crate::error::Refusal`]).
async fn log_error_cause(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if let Some(refusal) = response.extensions().get::<crate::error::Refusal>() {
        tracing::info!(
            status = response.status().as_u16(),
            code = refusal.code,
            reason = %refusal.reason,
            "request refused"
        );
    }
    if let Some(cause) = response.extensions().get::<crate::error::ErrorCause>() {
        if response.status() == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(cause = %cause.0, "request failed with an internal error");
        } else {
            tracing::warn!(cause = %cause.0, "request failed: dependency unavailable");
        }
    }
    response
}

/// The policy of the API's own answers: JSON and images, never a page, never framed.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";
/// The policy of Swagger UI at `/docs`: its own scripts and styles only (its page sets a
/// few styles inline), pictures from itself or `data:`, and calls to this service.
pub const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; connect-src 'self'; font-src 'self'; frame-ancestors 'none'; \
    base-uri 'none'; form-action 'none'";

/// Headers every answer carries: `X-Content-Type-Options: nosniff` (a JSON refusal quoting
/// `<script>` is never read as a page), a `Content-Security-Policy` (the docs' own, or one
/// that allows nothing), and `Cache-Control: no-store` unless the route chose its own
/// (answers carry customers' data and stock that changes; none is for a shared cache).
async fn secure_headers(request: Request, next: Next) -> Response {
    use axum::http::{HeaderValue, header};
    let docs = request.uri().path().starts_with("/docs");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let policy = if docs { DOCS_CSP } else { API_CSP };
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(policy),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// A client's `X-Request-Id` is kept only when it is short and plain; otherwise a new one is
/// generated, so logs and event rows never carry arbitrary bytes.
async fn drop_unusable_request_id(mut request: Request, next: Next) -> Response {
    let usable = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .is_none_or(|value| {
            let bytes = value.as_bytes();
            !bytes.is_empty()
                && bytes.len() <= 128
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        });
    if !usable {
        request.headers_mut().remove(REQUEST_ID_HEADER);
    }
    next.run(request).await
}

/// Makes the request's id the task's correlation id for everything the handler does.
async fn scope_correlation_id(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    with_correlation_id(id, next.run(request)).await
}

/// The largest request body any route accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How long in-flight requests get to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The body of a plain `GET /health`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`, or `unhealthy` when the last write could not reach the disk.
    #[schema(value_type = String)]
    pub status: &'static str,
    /// Which service answered.
    #[schema(value_type = String)]
    pub service: &'static str,
    /// Why it is unhealthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The body of `GET /ready`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    #[schema(value_type = String)]
    pub status: &'static str,
    /// Which service answered.
    #[schema(value_type = String)]
    pub service: &'static str,
    /// `ok`, or why the database cannot be used.
    pub database: String,
    /// Migrations this binary has that the database lacks (0 when ready).
    pub pending_migrations: Option<i32>,
}

impl Readiness {
    /// 200 when ready, else 503.
    pub fn status_code(&self) -> StatusCode {
        if self.status == "ready" {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

/// The service's schema, as each service crate's `migrations()` builds it.
pub type MigrationsFn = fn() -> rusqlite_migration::Migrations<'static>;

/// Whether the service can do its work: the database answers and every migration is applied.
pub async fn readiness(
    service: &'static str,
    db: &crate::db::Db,
    migrations: MigrationsFn,
) -> Readiness {
    let pending = db
        .call_with(move |conn| {
            migrations()
                .pending_migrations(conn)
                .map_err(|e| ApiError::Unavailable(format!("cannot read the schema version: {e}")))
        })
        .await;
    let (database, pending_migrations) = match pending {
        Ok(0) => ("ok".to_string(), Some(0)),
        Ok(n) => (format!("{n} migration(s) not applied"), Some(n)),
        Err(err) => (err.to_string(), None),
    };
    Readiness {
        status: if database == "ok" {
            "ready"
        } else {
            "not_ready"
        },
        service,
        database,
        pending_migrations,
    }
}

/// What the probes need to answer.
#[derive(Debug, Clone)]
pub struct Probe {
    service: &'static str,
    db: crate::db::Db,
    migrations: MigrationsFn,
}

/// Liveness: 200 while the service can write its database; 503 with the reason after a
/// write failed for lack of storage, until the disk takes writes again. No key needed.
#[utoipa::path(
    get,
    path = "/health",
    tag = "probes",
    responses(
        (status = 200, description = "Alive and able to write", body = Health),
        (status = 503, description = "Writes fail for lack of storage", body = Health),
    )
)]
pub async fn health(State(probe): State<Probe>) -> (StatusCode, axum::Json<Health>) {
    let problem = probe.db.check_storage().await;
    let status = if problem.is_some() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let health = Health {
        status: if problem.is_some() { "unhealthy" } else { "ok" },
        service: probe.service,
        problem,
    };
    (status, axum::Json(health))
}

/// Readiness: 200 when the database answers and every migration is applied, else 503. No
/// key needed.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "probes",
    responses(
        (status = 200, description = "Ready to serve", body = Readiness),
        (status = 503, description = "The database cannot be used yet", body = Readiness),
    )
)]
pub async fn ready(State(probe): State<Probe>) -> (StatusCode, axum::Json<Readiness>) {
    let ready = readiness(probe.service, &probe.db, probe.migrations).await;
    (ready.status_code(), axum::Json(ready))
}

/// `GET /health` and `GET /ready`, both answering without a key.
pub fn probes(service: &'static str, db: crate::db::Db, migrations: MigrationsFn) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .with_state(Probe {
            service,
            db,
            migrations,
        })
}

/// How every service is put together: its own key-protected routes, declared once for the
/// router and the OpenAPI document (`utoipa_axum::routes!`), plus `GET /events` and
/// `GET /metrics` (behind the key), `/health` and `/ready` (open, replaceable with the
/// service's own) and `GET /openapi.json` describing all of them; assembled as
/// [`assemble`] does.
#[derive(Debug)]
pub struct ServiceBuilder {
    service: &'static str,
    db: crate::db::Db,
    migrations: MigrationsFn,
    api: OpenApiRouter,
    probes: Option<OpenApiRouter>,
    metrics: crate::metrics::MetricsBuilder,
}

impl ServiceBuilder {
    /// A service named `service` over `db`, serving `api` (whose document carries the
    /// service's title and description).
    pub fn new(
        service: &'static str,
        db: crate::db::Db,
        migrations: MigrationsFn,
        api: OpenApiRouter,
    ) -> Self {
        ServiceBuilder {
            service,
            db,
            migrations,
            api,
            probes: None,
            metrics: crate::metrics::MetricsBuilder::new(service),
        }
    }

    /// The metrics being registered, to add the service's gauges.
    pub fn metrics(&mut self) -> &mut crate::metrics::MetricsBuilder {
        &mut self.metrics
    }

    /// Serves the service's own `/health` and `/ready` instead of the standard ones.
    pub fn probes(mut self, probes: OpenApiRouter) -> Self {
        self.probes = Some(probes);
        self
    }

    /// The finished router, every API route demanding one of `keys`.
    pub fn build(self, keys: ApiKeys) -> Router {
        let metrics = self.metrics.finish();
        let api = self
            .api
            .merge(crate::events::routes(self.db.clone()))
            .merge(metrics.route());
        let probes = self
            .probes
            .unwrap_or_else(|| probes(self.service, self.db, self.migrations));
        let (api, mut document) = api.split_for_parts();
        crate::auth::mark_storefront_routes(&mut document.paths);
        let (public, probe_document) = probes.split_for_parts();
        document.merge(probe_document);
        utoipa::Modify::modify(&crate::openapi::ApiKeyScheme, &mut document);
        assemble(public, api, keys, &metrics)
            .merge(crate::openapi::route(document))
            .layer(middleware::from_fn(secure_headers))
    }
}

/// Puts a service together: `public` routes (health) answer anyone; every `api` route
/// demands an API key; unknown routes and wrong methods get JSON errors; bodies are capped;
/// every request gets an `X-Request-Id` (the client's, or a new one), returned in the answer
/// and carried on to peers; and every request is logged with its id, method, path, status
/// and latency (never headers, so never a key), and counted in `metrics`.
pub fn assemble(
    public: Router,
    api: Router,
    keys: ApiKeys,
    metrics: &crate::metrics::Metrics,
) -> Router {
    let api = api.route_layer(middleware::from_fn_with_state(keys, require_api_key));
    let routes = metrics.layer(public.merge(api));
    routes
        .fallback(|| async { ApiError::NotFound("no such route".to_string()) })
        .method_not_allowed_fallback(|| async {
            (
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                axum::Json(crate::error::ErrorBody {
                    error: crate::error::ErrorDetail {
                        code: "method_not_allowed",
                        message: "method not allowed on this route".to_string(),
                    },
                }),
            )
        })
        .layer(middleware::from_fn(log_error_cause))
        .layer(middleware::from_fn(scope_correlation_id))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    let id = request
                        .headers()
                        .get(REQUEST_ID_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!(
                        "request",
                        request_id = %id,
                        method = %request.method(),
                        path = %request.uri().path(),
                    )
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(middleware::from_fn(drop_unusable_request_id))
}

/// Logs to stderr, at `info` unless `RUST_LOG` says otherwise: text, or with
/// `LOG_FORMAT=json` one JSON object per line (its time, level, message, fields, and the
/// request's span: `request_id`, `method`, `path`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let json = json_logs();
    // A second init (tests) is harmless; ignore it.
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder
            .fmt_fields(crate::logfmt::EscapedFields)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
}

/// Whether `LOG_FORMAT=json` asks for one JSON object per line.
fn json_logs() -> bool {
    std::env::var("LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json"))
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// The CORS policy for browsers at `origins` (the dashboard). It sits outside the API-key
/// check, so a preflight `OPTIONS` (which carries no key) is answered, while every real
/// request still needs the key.
pub fn cors_layer(origins: &[String]) -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderName, HeaderValue, Method};
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim()).ok())
        .collect();
    tower_http::cors::CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([
            HeaderName::from_static("x-api-key"),
            HeaderName::from_static("content-type"),
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static(REQUEST_ID_HEADER),
            // What a storefront page sends besides the key: a customer's session, a
            // guest's cart and order tokens.
            axum::http::header::AUTHORIZATION,
            HeaderName::from_static("x-cart-token"),
            HeaderName::from_static(crate::session::ORDER_TOKEN_HEADER),
        ])
        .expose_headers([
            HeaderName::from_static(REQUEST_ID_HEADER),
            HeaderName::from_static("idempotent-replayed"),
            HeaderName::from_static("retry-after"),
            HeaderName::from_static(crate::listing::TOTAL_COUNT_HEADER),
            HeaderName::from_static("link"),
            HeaderName::from_static("etag"),
        ])
        .max_age(Duration::from_secs(600))
}

/// The background loops a service runs beside its server (the catalog's expiry sweep, the
/// cart's checkout recovery, payment's webhook worker), stopped the same way in every
/// service by [`launch`]: when shutdown begins they are told to stop and each finishes the
/// pass under way, the server drains its requests, then every worker is awaited.
#[derive(Debug, Default)]
pub struct Workers {
    stop: tokio_util::sync::CancellationToken,
    running: Vec<(&'static str, tokio::task::JoinHandle<()>)>,
}

impl Workers {
    /// No workers yet.
    pub fn new() -> Self {
        Workers::default()
    }

    /// Starts the worker `name`, giving it the token that tells it to stop.
    pub fn spawn<F, Fut>(&mut self, name: &'static str, work: F)
    where
        F: FnOnce(tokio_util::sync::CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handle = tokio::spawn(work(self.stop.clone()));
        self.running.push((name, handle));
    }

    /// Waits for every worker to end, in the order they were started.
    async fn join(self) {
        self.stop.cancel();
        for (name, handle) in self.running {
            if let Err(err) = handle.await {
                tracing::error!(worker = name, error = %err, "worker ended abnormally");
            }
        }
    }
}

/// Binds the configured address and `port` (0 for any free port): the listener a service
/// then [`launch`]es on. Binding first is what lets a caller (a test, a supervisor) own the
/// socket and know its address before anything is served.
pub fn bind(common: &crate::config::CommonArgs, port: u16) -> std::io::Result<TcpListener> {
    let addr = SocketAddr::new(common.bind, port);
    crate::server::listen(addr)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

/// Serves `router` on `listener`: prints `<service> listening on http://<addr>` on stdout
/// (the line scripts and tests read to learn a port-0 address), and serves with the
/// configured CORS origins and connection limits until `shutdown` resolves; then the
/// `workers` are told to stop, in-flight requests get [`SHUTDOWN_GRACE`] to finish, and the
/// workers are awaited. Raises the open-file limit first.
pub async fn launch(
    service: &'static str,
    common: &crate::config::CommonArgs,
    listener: TcpListener,
    router: Router,
    workers: Workers,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stop = workers.stop.clone();
    let shutdown = async move {
        shutdown.await;
        stop.cancel();
    };
    let served = serve_until(service, common, listener, router, shutdown).await;
    workers.join().await;
    served
}

async fn serve_until(
    service: &'static str,
    common: &crate::config::CommonArgs,
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let fd_limit = crate::server::raise_fd_limit();
    let limits = common.connection_limits().within_fd_limit(fd_limit);
    tracing::info!(
        open_file_limit = fd_limit,
        max_connections = limits.max_connections,
        header_timeout_ms = common.header_timeout_ms,
        idle_timeout_ms = common.idle_timeout_ms,
        "connection limits"
    );
    // A request body must keep arriving too: a client that sends its head and then trickles
    // (or withholds) the body is cut after the same time a head is given.
    let router = router
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            limits.header_timeout,
        ))
        .layer(cors_layer(&common.cors_origins));
    let local = listener.local_addr()?;
    tracing::info!(%local, "{service} listening");
    // The one line on stdout, once the port is bound: what scripts and tests wait for. With
    // LOG_FORMAT=json it is a JSON object too, so a file that takes both streams stays JSON.
    if json_logs() {
        let ready = serde_json::json!({
            "message": "listening", "service": service, "url": format!("http://{local}"),
        });
        println!("{ready}");
    } else {
        println!("{service} listening on http://{local}");
    }
    crate::server::serve(listener, router, limits, SHUTDOWN_GRACE, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::captured_log::Captured;
    use crate::context::{correlation_id, spawn_blocking};
    use axum::routing::get;
    use rusqlite_migration::{M, Migrations};
    use tower::ServiceExt;

    #[tokio::test(flavor = "multi_thread")]
    async fn blocking_work_keeps_the_request_span_and_id_and_an_internal_error_is_logged_once() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();

        let api = Router::new()
            .route(
                "/blocking",
                get(|| async {
                    spawn_blocking(|| {
                        tracing::info!("logged from the blocking pool");
                        correlation_id().unwrap_or_default()
                    })
                    .await
                    .unwrap()
                }),
            )
            .route(
                "/boom",
                get(|| async { ApiError::internal("the cause nobody may see") }),
            );
        let keys = ApiKeys::new(vec![crate::config::Secret::new("k")]);
        let metrics = crate::metrics::MetricsBuilder::new("test").finish();
        let app = assemble(Router::new(), api, keys, &metrics);
        let call = |path: &str| {
            Request::builder()
                .uri(path)
                .header("X-API-Key", "k")
                .header(REQUEST_ID_HEADER, "journey-42")
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let body = |response: Response| async move {
            let bytes = axum::body::to_bytes(response.into_body(), 4096)
                .await
                .unwrap();
            String::from_utf8(bytes.to_vec()).unwrap()
        };

        let seen = body(app.clone().oneshot(call("/blocking")).await.unwrap()).await;
        assert_eq!(
            seen, "journey-42",
            "the correlation id reached the blocking thread"
        );
        let failed = app.oneshot(call("/boom")).await.unwrap();
        assert_eq!(failed.status(), 500);
        let failed = body(failed).await;
        assert!(!failed.contains("nobody may see"), "{failed}");
        assert!(failed.contains("internal error"), "{failed}");

        let log = captured.text();
        let line = log
            .lines()
            .find(|l| l.contains("logged from the blocking pool"))
            .unwrap_or_else(|| panic!("no blocking line in {log}"));
        assert!(
            line.contains("journey-42"),
            "the request span is on it: {line}"
        );
        assert_eq!(log.matches("the cause nobody may see").count(), 1, "{log}");
        let cause = log.lines().find(|l| l.contains("nobody may see")).unwrap();
        assert!(
            cause.contains("ERROR") && cause.contains("journey-42"),
            "{cause}"
        );
    }

    fn one() -> Migrations<'static> {
        Migrations::new(vec![M::up("CREATE TABLE a(x);")])
    }

    fn two() -> Migrations<'static> {
        Migrations::new(vec![
            M::up("CREATE TABLE a(x);"),
            M::up("CREATE TABLE b(y);"),
        ])
    }

    #[tokio::test]
    async fn ready_only_when_every_migration_is_applied() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::Db::open(
            &dir.path().join("r.db"),
            &one(),
            crate::db::Durability::Normal,
        )
        .unwrap();
        let ready = readiness("test", &db, one).await;
        assert_eq!((ready.status, ready.pending_migrations), ("ready", Some(0)));
        let behind = readiness("test", &db, two).await;
        assert_eq!(
            (behind.status, behind.pending_migrations),
            ("not_ready", Some(1))
        );
    }
}
