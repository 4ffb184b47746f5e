//! order-service: orders and their status lifecycle in `orders.db`, and the payment webhook
//! that marks an order PAID.
//!
//! Each new order's lines are checked against the catalog (unknown product or wrong price:
//! 422). When the catalog cannot answer, the order is accepted and marked unverified.
//!
//! # Layout
//! - [`Config`]: flags and their environment variables.
//! - [`router`]: every route, no I/O; used by `main.rs` and the tests alike.
//! - `routes/orders.rs`: the order handlers and their DTOs.
//! - `domain.rs`: statuses, the allowed transitions, and new-order validation.
//! - `store.rs`: every SQL statement.

pub mod domain;
mod routes;
mod store;

pub use routes::orders::OrderOut;

use axum::Router;
use axum::routing::{get, post};
use rusqlite_migration::{M, Migrations};
use service_kit::auth::ApiKeys;
use service_kit::catalog::CatalogClient;
use service_kit::config::CommonArgs;
use service_kit::db::{Db, Durability};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

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
}

/// The schema, in order. Never edit an applied entry; add a new one.
pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(include_str!(
        "../migrations/0001_create_orders.sql"
    ))])
}

/// Every route of the service.
pub fn router(state: AppState, keys: ApiKeys) -> Router {
    use routes::orders;
    let api = Router::new()
        .route(
            "/orders",
            post(orders::orders_create).get(orders::orders_list),
        )
        .route("/orders/{id}", get(orders::orders_get))
        .route("/orders/{id}/payment", post(orders::orders_payment))
        .with_state(state);
    service_kit::http::assemble(service_kit::http::health_route(SERVICE), api, keys)
}

/// Opens the database and serves until `shutdown` resolves.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error>> {
    let keys = config.common.api_keys()?;
    // Orders are money: a commit is on disk before the client hears about it.
    let db = Db::open(&config.db, &migrations(), Durability::Full)?;
    let catalog = CatalogClient::new(
        &config.catalog_url,
        keys[0].clone(),
        config.common.peer_timeout(),
    );
    let app = router(AppState { db, catalog }, ApiKeys::new(keys));
    let addr = SocketAddr::new(config.common.bind, config.port);
    service_kit::http::launch(SERVICE, addr, app, shutdown).await?;
    Ok(())
}
