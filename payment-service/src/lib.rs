//! payment-service: simulated card payments in `payments.db`, each followed by a webhook
//! that tells the order service the order is paid.
//!
//! An order is charged at most once. When the order service cannot be reached the payment
//! is still recorded (fail-open) and its webhook is left `pending`.
//!
//! # Layout
//! - [`Config`]: flags and their environment variables.
//! - [`router`]: every route, no I/O; used by `main.rs` and the tests alike.
//! - `routes/payments.rs`: the payment handlers and their DTOs.
//! - `orders.rs`: the typed order-service client, the one way a webhook is sent.
//! - `store.rs`: every SQL statement.

mod orders;
mod routes;
mod store;

use axum::Router;
use axum::routing::{get, post};
use orders::OrderClient;
use rusqlite_migration::{M, Migrations};
use service_kit::auth::ApiKeys;
use service_kit::config::CommonArgs;
use service_kit::db::{Db, Durability};
use service_kit::domain::Id;
use service_kit::money::Cents;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The service's name in logs and health answers.
pub const SERVICE: &str = "payment-service";

/// payment-service: simulated payments and the order webhook.
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

    #[command(flatten)]
    pub common: CommonArgs,
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The payments database.
    pub db: Db,
    /// The order service: read orders, deliver webhooks.
    pub orders: OrderClient,
}

impl AppState {
    /// State over an open database, calling the order service at `order_url` with `api_key`.
    pub fn new(db: Db, order_url: &str, api_key: &str, timeout: std::time::Duration) -> Self {
        let orders = OrderClient::new(
            order_url,
            service_kit::config::Secret::new(api_key),
            timeout,
        );
        AppState { db, orders }
    }
}

/// The schema, in order. Never edit an applied entry; add a new one.
pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(include_str!(
        "../migrations/0001_create_payments.sql"
    ))])
}

/// Every route of the service.
pub fn router(state: AppState, keys: ApiKeys) -> Router {
    use routes::payments;
    let api = Router::new()
        .route("/pay", post(payments::pay))
        .route("/payments", get(payments::payments_list))
        .route("/payments/{id}", get(payments::payments_get))
        .with_state(state);
    service_kit::http::assemble(service_kit::http::health_route(SERVICE), api, keys)
}

/// Tells the order service that `payment_id` paid `order_id`, and records the delivery when
/// it is acknowledged. Returns whether it was. A failure is logged and the webhook left
/// `pending`: the payment itself is already committed and stands either way.
pub async fn deliver_payment_webhook(
    state: &AppState,
    payment_id: i64,
    order_id: Id,
    amount: Cents,
) -> bool {
    if let Err(err) = state.orders.notify_paid(order_id, payment_id, amount).await {
        tracing::warn!(payment_id, %order_id, error = %err, "payment webhook not delivered; left pending");
        return false;
    }
    let recorded = state
        .db
        .write(move |tx| Ok(store::mark_webhook_delivered(tx, payment_id)?))
        .await;
    if let Err(err) = recorded {
        tracing::error!(payment_id, error = %err, "webhook delivered but not recorded as such");
        return false;
    }
    true
}

/// Opens the database and serves until `shutdown` resolves.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error>> {
    let keys = config.common.api_keys()?;
    // Payments are money: a commit is on disk before the client hears about it.
    let db = Db::open(&config.db, &migrations(), Durability::Full)?;
    let state = AppState::new(
        db,
        &config.order_url,
        keys[0].expose(),
        config.common.peer_timeout(),
    );
    let app = router(state, ApiKeys::new(keys));
    let addr = SocketAddr::new(config.common.bind, config.port);
    service_kit::http::launch(SERVICE, addr, app, shutdown).await?;
    Ok(())
}
