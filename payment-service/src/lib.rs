//! payment-service: simulated card payments in `payments.db`, and durable, signed webhooks
//! that tell the order service an order is paid.
//!
//! A captured payment and its webhook delivery are written in one transaction; the webhook
//! is tried at once and then retried by a background worker with exponential backoff until
//! the order service answers 2xx (at-least-once delivery; the order service processes each
//! webhook id once). An order is charged at most once. Money is captured only for an order
//! the order service confirmed payable in exactly the amount: when it cannot be asked the
//! payment is only `authorized` (202), and the authorization settler captures it once the
//! order service confirms, or voids it with the reason.
//!
//! # Layout
//! - [`Config`]: flags and their environment variables.
//! - [`router`]: every route, no I/O; used by `main.rs` and the tests alike.
//! - `routes/`: payments, webhook deliveries, health with the delivery backlog (thin:
//!   parse, one operation, output).
//! - `charges.rs`: the operations `take_payment` (order check, card, payment, event and
//!   webhook delivery in one transaction) and `settle_authorized` (the settler).
//! - `domain.rs`: the records (`Payment`, `Delivery`) the store reads and writes.
//! - `cards.rs`: card validation and the test cards' outcomes.
//! - `refunds.rs`: the operation `refund` (full or partial, with its webhook), and
//!   `give_back_refused_capture`, the outbox's refusal hook (a capture the order service
//!   refuses for good is refunded in full, in the transaction that records the refusal).
//! - `outbox.rs`: the delivery attempts (sent through `shop_contracts::orders::OrderClient`),
//!   the retry schedule and the worker; it only reports a refusal, through its hook.
//! - `store.rs`: every SQL statement, taking and returning the records of `domain.rs`.

mod cards;
mod charges;
mod domain;
pub mod outbox;
mod refunds;
mod routes;
mod store;

use axum::Router;
use axum::middleware;
use outbox::{Outbox, RetrySchedule};
use rusqlite_migration::Migrations;
use service_kit::auth::ApiKeys;
use service_kit::auth::admin;
use service_kit::config::{CommonArgs, Secret, WebhookArgs};
use service_kit::db::{Db, Durability};
use service_kit::http::{ServiceBuilder, Workers};
use service_kit::idempotency::{self, Idempotency};
use service_kit::metrics::BusinessCounters;
use service_kit::migrations::MigrationFile;
use service_kit::webhook::WebhookSecret;
use shop_contracts::orders::OrderClient;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

/// The service's name in logs and health answers.
pub const SERVICE: &str = "payment-service";

/// payment-service: simulated payments and durable, signed order webhooks.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "payment-service", version, about)]
pub struct Config {
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "PAYMENT_PORT", default_value_t = 8004)]
    pub port: u16,

    /// SQLite file; its folder is created if missing.
    #[arg(long, env = "PAYMENT_DB", default_value = "data/payments.db")]
    pub db: PathBuf,

    /// Base URL of order-service.
    #[arg(
        long,
        env = "ORDER_SERVICE_URL",
        default_value = "http://127.0.0.1:8003"
    )]
    pub order_url: String,

    /// Waits between webhook attempts, comma-separated (e.g. `10s,1m,1h`). When the attempt
    /// after the last wait fails too, the delivery is `failed` until retried by hand.
    #[arg(long, env = "WEBHOOK_RETRY_SCHEDULE", default_value = outbox::DEFAULT_SCHEDULE)]
    pub webhook_retry_schedule: RetrySchedule,

    /// How often the webhook worker looks for due deliveries, in milliseconds.
    #[arg(long, env = "WEBHOOK_POLL_MS", default_value_t = 500)]
    pub webhook_poll_ms: u64,

    /// How often the authorization settler asks the order service about payments that
    /// were only authorized (captured once it confirms, voided if it refuses), in ms.
    #[arg(long, env = "CAPTURE_RETRY_MS", default_value_t = 1000)]
    pub capture_retry_ms: u64,

    #[command(flatten)]
    pub webhook: WebhookArgs,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The payments database.
    pub db: Db,
    /// The order service: orders are read before charging.
    orders: OrderClient,
    /// Webhook delivery.
    outbox: Outbox,
    /// Payments by outcome and decline code, refunds, webhook deliveries by result.
    pub counters: BusinessCounters,
    /// Checks customers' sessions and guests' order tokens.
    pub sessions: Option<service_kit::session::SessionKeys>,
}

/// The business counters of the payment service.
fn business_counters() -> BusinessCounters {
    let mut payments = vec![
        vec![("outcome", "captured"), ("decline_code", "")],
        vec![("outcome", "authorized"), ("decline_code", "")],
    ];
    for decline in shop_contracts::payments::Decline::ALL {
        payments.push(vec![
            ("outcome", "failed"),
            ("decline_code", decline.code()),
        ]);
    }
    let deliveries: Vec<Vec<(&str, &str)>> = ["delivered", "retrying", "failed", "refused"]
        .iter()
        .map(|result| vec![("result", *result)])
        .collect();
    BusinessCounters::new(&[
        (
            "payments",
            "Payments taken, by outcome (captured, authorized, failed) and decline code",
        ),
        ("refunds", "Refunds made"),
        (
            "webhook_deliveries",
            "Webhook delivery attempts, by result (delivered, retrying, failed, refused)",
        ),
    ])
    .known("payments", &payments)
    .known("refunds", &[vec![]])
    .known("webhook_deliveries", &deliveries)
}

impl AppState {
    /// State over an open database, calling the order service at `order_url` with
    /// `api_key` and signing webhooks with `secrets`.
    pub fn new(
        db: Db,
        order_url: &str,
        api_key: &str,
        secrets: Vec<WebhookSecret>,
        schedule: RetrySchedule,
        timeout: Duration,
    ) -> Self {
        let orders = OrderClient::new(order_url, Secret::new(api_key), timeout);
        let counters = business_counters();
        // A capture the order service refuses for good is refunded in full.
        let give_back = refunds::give_back_refused_capture;
        let outbox = Outbox::new(
            db.clone(),
            orders.clone(),
            secrets,
            schedule,
            timeout,
            give_back,
        )
        .counting(counters.clone());
        AppState {
            db,
            orders,
            outbox,
            counters,
            sessions: None,
        }
    }

    /// The same state, checking sessions and order tokens with `sessions`.
    pub fn with_sessions(mut self, sessions: Option<service_kit::session::SessionKeys>) -> Self {
        self.sessions = sessions;
        self
    }

    /// The webhook worker for this state, to spawn beside the server.
    pub fn worker(
        &self,
        poll: Duration,
        cancel: CancellationToken,
    ) -> impl Future<Output = ()> + use<> {
        self.outbox.clone().run_worker(poll, cancel)
    }
}

/// Every migration this service applies: the files of its `migrations/` folder, in order.
pub const MIGRATIONS: &[MigrationFile] = service_kit::migration_files![
    "0001_create_payments.sql",
    "0002_create_idempotency_keys.sql",
    "0003_create_events.sql",
    "0004_delivery_correlation.sql",
    "0005_verified_captures.sql",
    "0006_refunds.sql",
    "0007_payments_by_customer.sql",
];

/// The schema, as [`MIGRATIONS`] builds it.
pub fn migrations() -> Migrations<'static> {
    service_kit::migrations::from_files(MIGRATIONS)
}

/// The payment service's OpenAPI document: its title here, its paths from the routes of
/// [`router`].
#[derive(Debug, utoipa::OpenApi)]
#[openapi(info(
    title = "payment-service",
    description = "Simulated card payments and their webhooks."
))]
pub struct ApiDoc;

/// Every route of the service.
pub fn router(state: AppState, keys: ApiKeys) -> Router {
    use routes::deliveries::*;
    use routes::exports::*;
    use routes::health;
    use routes::payments::*;
    let once =
        middleware::from_fn_with_state(Idempotency::new(state.db.clone()), idempotency::idempotent);
    let api = OpenApiRouter::with_openapi(<ApiDoc as utoipa::OpenApi>::openapi())
        .routes(routes!(pay).layer(once.clone()))
        .routes(service_kit::auth::customer(routes!(payments_list)))
        .routes(admin(routes!(payments_summary)))
        .routes(admin(routes!(payments_export)))
        .routes(admin(routes!(payments_by_order)))
        .routes(routes!(payments_get))
        .routes(admin(routes!(refunds_create).layer(once.clone())))
        .routes(admin(routes!(refunds_list)))
        .routes(admin(routes!(deliveries_list)))
        .routes(admin(routes!(deliveries_get)))
        .routes(admin(routes!(deliveries_retry)))
        .with_state(state.clone());
    let probes = OpenApiRouter::new()
        .routes(utoipa_axum::routes!(health::health))
        .routes(utoipa_axum::routes!(health::ready))
        .with_state(state.clone());
    let mut service =
        ServiceBuilder::new(SERVICE, state.db.clone(), migrations, api).probes(probes);
    health::backlog_gauges(service.metrics(), state.db);
    service.metrics().counters(&state.counters);
    service.build(keys)
}

/// Opens the database, starts the webhook worker and serves until `shutdown` resolves;
/// then stops accepting, lets requests and the worker's current attempts finish, and returns.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error>> {
    config.common.apply_shop_settings()?;
    let peer_key = config.common.peer_api_key()?;
    let secrets = config.webhook.secrets()?;
    // Payments are money: a commit is on disk before the client hears about it.
    let db = Db::open(&config.db, &migrations(), Durability::Full)?;
    // Bound before any worker starts: a port in use stops the service before it acts.
    let listener = service_kit::http::bind(&config.common, config.port)?;
    idempotency::free_abandoned_keys(&db).await?;
    let state = AppState::new(
        db,
        &config.order_url,
        peer_key.expose(),
        secrets,
        config.webhook_retry_schedule,
        config.common.peer_timeout(),
    )
    .with_sessions(config.common.session_keys());
    let poll = Duration::from_millis(config.webhook_poll_ms.max(1));
    let mut workers = Workers::new();
    workers.spawn("webhook worker", |stop| state.worker(poll, stop));
    let every = Duration::from_millis(config.capture_retry_ms.max(1));
    let settler = state.clone();
    workers.spawn("authorization settler", move |stop| {
        charges::settle_worker(settler, every, stop)
    });
    let db = state.db.clone();
    let app = router(state, config.common.key_policy()?);
    let served =
        service_kit::http::launch(SERVICE, &config.common, listener, app, workers, shutdown).await;
    db.close().await;
    served?;
    Ok(())
}
