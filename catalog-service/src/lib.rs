//! catalog-service: the shop's products, prices and stock, in `products.db`.
//!
//! # Layout
//! - [`Config`]: flags and their environment variables.
//! - [`router`]: every route, no I/O; used by `main.rs` and the tests alike.
//! - `routes/products.rs`: the product handlers and their DTOs.
//! - `store.rs`: every SQL statement.
//! - `migrations/`: the schema, and the three demo products seeded on first start.

mod routes;
mod store;

use axum::Router;
use axum::routing::get;
use rusqlite_migration::{M, Migrations};
use service_kit::auth::ApiKeys;
use service_kit::config::CommonArgs;
use service_kit::db::{Db, Durability};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The service's name in logs and health answers.
pub const SERVICE: &str = "catalog-service";

/// catalog-service: products, prices and stock.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "catalog-service", version, about)]
pub struct Config {
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "CATALOG_PORT", default_value_t = 8002)]
    pub port: u16,

    /// SQLite file; its folder is created if missing.
    #[arg(long, env = "CATALOG_DB", default_value = "data/products.db")]
    pub db: PathBuf,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The products database.
    pub db: Db,
}

/// The schema, in order. Never edit an applied entry; add a new one.
pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../migrations/0001_create_products.sql")),
        M::up(include_str!("../migrations/0002_seed_products.sql")),
    ])
}

/// Every route of the service.
pub fn router(state: AppState, keys: ApiKeys) -> Router {
    let api = Router::new()
        .route("/products", get(routes::products::products_list))
        .route("/products/{id}", get(routes::products::products_get))
        .with_state(state);
    service_kit::http::assemble(service_kit::http::health_route(SERVICE), api, keys)
}

/// Opens the database and serves until `shutdown` resolves.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error>> {
    let keys = ApiKeys::new(config.common.api_keys()?);
    let db = Db::open(&config.db, &migrations(), Durability::Normal)?;
    let app = router(AppState { db }, keys);
    let addr = SocketAddr::new(config.common.bind, config.port);
    service_kit::http::launch(SERVICE, addr, app, shutdown).await?;
    Ok(())
}
