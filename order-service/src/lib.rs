//! order-service: orders and their status lifecycle in `orders.db`, and the payment webhook
//! that marks an order PAID.
//!
//! Each new order's lines are checked against the catalog (unknown product or wrong price:
//! 422) and its stock held there under the order's global `ref` (short: 409, the order
//! cancelled `out_of_stock`). When the catalog cannot answer, the order is accepted, marked
//! unverified, its stock pending; the stock keeper (`stock.rs`) reserves it later, commits
//! the stock of paid orders, releases that of cancelled ones, and expires unpaid orders.
//! Only a payment webhook with a valid Standard Webhooks signature marks an order PAID, and
//! each webhook id is processed once.
//!
//! # Layout
//! - [`Config`]: flags and their environment variables.
//! - [`router`]: every route, no I/O; used by `main.rs` and the tests alike.
//! - `routes/orders.rs`: the order handlers (parse, one operation, output) and their DTOs.
//! - `lifecycle.rs`: the operations `place_order`, `apply_payment_webhook`,
//!   `change_status` and `stats`, each owning its transaction and events.
//! - `domain.rs`: the records (`Order`, `Stats`), the allowed transitions, and new-order
//!   validation.
//! - `store.rs`: every SQL statement, taking and returning the records of `domain.rs`.
//! - Peers: the catalog's and payment service's typed clients are in `shop_contracts`.

pub mod customers;
pub mod domain;
mod lifecycle;
mod money;
pub mod promotions;
pub mod returns;
mod routes;
pub mod stock;
mod store;

pub use routes::orders::OrderOut;

use axum::Router;
use axum::middleware;
use rusqlite_migration::Migrations;
use service_kit::auth::ApiKeys;
use service_kit::auth::{admin, customer};
use service_kit::config::{CommonArgs, WebhookArgs};
use service_kit::db::{Db, Durability};
use service_kit::http::{ServiceBuilder, Workers};
use service_kit::idempotency::{self, Idempotency};
use service_kit::migrations::MigrationFile;
use service_kit::session::SessionKeys;
use service_kit::webhook::WebhookSecret;
use shop_contracts::catalog::CatalogClient;
pub use shop_contracts::payments::PaymentClient;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

/// The service's name in logs and health answers.
pub const SERVICE: &str = "order-service";

/// order-service: orders, their lifecycle and the payment webhook.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "order-service", version, about)]
pub struct Config {
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "ORDER_PORT", default_value_t = 8003)]
    pub port: u16,

    /// SQLite file; its folder is created if missing.
    #[arg(long, env = "ORDER_DB", default_value = "data/orders.db")]
    pub db: PathBuf,

    /// Base URL of catalog-service.
    #[arg(
        long,
        env = "CATALOG_SERVICE_URL",
        default_value = "http://127.0.0.1:8002"
    )]
    pub catalog_url: String,

    /// Base URL of payment-service (read for the reconciliation in `/orders/stats`).
    #[arg(
        long,
        env = "PAYMENT_SERVICE_URL",
        default_value = "http://127.0.0.1:8004"
    )]
    pub payment_url: String,

    /// How long an unpaid order holds its stock before it is cancelled (reason `expired`)
    /// and the stock released, e.g. `30m`; `0s` never expires orders.
    #[arg(long, env = "ORDER_TTL", default_value = "30m", value_parser = humantime::parse_duration)]
    pub order_ttl: Duration,

    /// How long an unpaid order placed through the storefront key holds its stock before it
    /// is cancelled (reason `expired`), e.g. `10m`: shorter than `ORDER_TTL`, so nobody can
    /// keep a product from other shoppers for long.
    #[arg(long, env = "STOREFRONT_HOLD_TTL", default_value = "10m", value_parser = humantime::parse_duration)]
    pub storefront_hold_ttl: Duration,

    /// The most units one storefront client (an address), or one customer, may hold in
    /// unpaid orders at once; an order past it is refused (409 `hold_limit`). 0: no cap.
    #[arg(long, env = "MAX_HELD_UNITS", default_value_t = 20)]
    pub max_held_units: i64,

    /// How often the stock keeper retries what the catalog could not be told (a pending
    /// reservation, a commit, a release) and looks for expired orders, in milliseconds.
    #[arg(long, env = "STOCK_RETRY_MS", default_value_t = 1000)]
    pub stock_retry_ms: u64,

    #[command(flatten)]
    pub webhook: WebhookArgs,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The orders database.
    pub db: Db,
    /// Where order lines are checked.
    pub catalog: CatalogClient,
    /// Where captured payments are counted, for reconciliation.
    pub payments: PaymentClient,
    /// Secrets a payment webhook may be signed with.
    pub webhook_secrets: Arc<[WebhookSecret]>,
    /// Signs customers' sessions and guests' order tokens (`None`: nobody signs in).
    pub sessions: Option<SessionKeys>,
    /// Failed sign-ins per email and per client.
    pub sign_ins: Arc<customers::SignInGuard>,
    /// The most units a storefront client or customer may hold unpaid (0: no cap).
    pub max_held_units: i64,
}

impl AppState {
    /// Order `id` with its lines and history, if there is one.
    pub(crate) async fn find_order(
        &self,
        id: service_kit::domain::Id,
    ) -> Result<Option<domain::Order>, service_kit::db::StoreError> {
        self.db
            .read(move |conn| Ok(store::get_order(conn, id)?))
            .await
    }
}

/// Every migration this service applies: the files of its `migrations/` folder, in order.
pub const MIGRATIONS: &[MigrationFile] = service_kit::migration_files![
    "0001_create_orders.sql",
    "0002_webhooks_and_reasons.sql",
    "0003_create_idempotency_keys.sql",
    "0004_create_events.sql",
    "0005_order_correlation.sql",
    "0006_orders_hold_their_stock.sql",
    "0007_refunds.sql",
    "0008_customers_and_shipping.sql",
    "0009_promo_codes.sql",
    "0010_promo_limits_by_customer.sql",
    "0011_orders_by_placement_key.sql",
    "0012_returns.sql",
    "0013_customer_accounts.sql",
    "0014_storefront_holds.sql",
];

/// The schema, as [`MIGRATIONS`] builds it.
pub fn migrations() -> Migrations<'static> {
    service_kit::migrations::from_files(MIGRATIONS)
}

/// The order service's OpenAPI document: its title here, its paths from the routes of
/// [`router`].
#[derive(Debug, utoipa::OpenApi)]
#[openapi(info(
    title = "order-service",
    description = "Orders, their lifecycle, and the payment webhook."
))]
pub struct ApiDoc;

/// Every route of the service.
pub fn router(state: AppState, keys: ApiKeys) -> Router {
    use routes::customers::*;
    use routes::exports::*;
    use routes::orders::*;
    use routes::promos::*;
    let once =
        middleware::from_fn_with_state(Idempotency::new(state.db.clone()), idempotency::idempotent);
    let api = OpenApiRouter::with_openapi(<ApiDoc as utoipa::OpenApi>::openapi())
        .routes(routes!(orders_create).layer(once))
        .routes(customer(routes!(orders_list)))
        .routes(admin(routes!(orders_stats)))
        .routes(admin(routes!(orders_export)))
        .routes(routes!(orders_by_token))
        .routes(routes!(orders_quote))
        .routes(routes!(orders_get))
        .routes(admin(routes!(orders_status_update)))
        .routes(admin(routes!(orders_returns_create)))
        // The payment service's signed webhook.
        .routes(admin(routes!(orders_payment)))
        .routes(admin(routes!(promos_create, promos_list)))
        .routes(admin(routes!(promos_get, promos_withdraw)))
        .routes(routes!(customers_sign_up))
        .routes(customer(routes!(customers_me)))
        .routes(customer(routes!(customers_password)))
        .routes(admin(routes!(customers_reset_issue)))
        .routes(routes!(customers_reset_use))
        .routes(routes!(sessions_sign_in))
        .routes(routes!(sessions_refresh))
        .routes(routes!(sessions_sign_out))
        .with_state(state.clone());
    ServiceBuilder::new(SERVICE, state.db, migrations, api).build(keys)
}

/// Opens the database and serves until `shutdown` resolves.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error>> {
    config.common.apply_shop_settings()?;
    let peer_key = config.common.peer_api_key()?;
    let webhook_secrets = config.webhook.secrets()?.into();
    // Orders are money: a commit is on disk before the client hears about it.
    let db = Db::open(&config.db, &migrations(), Durability::Full)?;
    // Bound before any worker starts: a port in use stops the service before it acts.
    let listener = service_kit::http::bind(&config.common, config.port)?;
    idempotency::free_abandoned_keys(&db).await?;
    let catalog = CatalogClient::new(
        &config.catalog_url,
        peer_key.clone(),
        config.common.peer_timeout(),
    );
    let payments = PaymentClient::new(&config.payment_url, peer_key, config.common.peer_timeout());
    let state = AppState {
        db: db.clone(),
        catalog,
        payments,
        webhook_secrets,
        sessions: config.common.session_keys(),
        sign_ins: Arc::default(),
        max_held_units: config.max_held_units,
    };
    let app = router(state.clone(), config.common.key_policy()?);
    let mut workers = Workers::new();
    let every = Duration::from_millis(config.stock_retry_ms.max(1));
    let order_ttl = (!config.order_ttl.is_zero()).then_some((
        config.order_ttl,
        config.storefront_hold_ttl.min(config.order_ttl),
    ));
    workers.spawn("stock keeper", move |stop| {
        stock::keep(state, every, order_ttl, stop)
    });
    let served =
        service_kit::http::launch(SERVICE, &config.common, listener, app, workers, shutdown).await;
    db.close().await;
    served?;
    Ok(())
}
