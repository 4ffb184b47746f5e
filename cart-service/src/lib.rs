//! cart-service: shoppers' carts in `carts.db`, each line checked against the catalog.
//!
//! Adding to a cart is fail-open: when the catalog cannot answer, the line is added anyway
//! and marked unverified, because no money is at stake yet. An unknown product is refused.
//!
//! # Layout
//! - [`Config`]: flags and their environment variables.
//! - [`router`]: every route, no I/O; used by `main.rs` and the tests alike.
//! - `routes/cart.rs`: the cart handlers.
//! - `domain.rs`: cart lines and the cart view with its checked totals.
//! - `store.rs`: every SQL statement.

mod domain;
mod routes;
mod store;

pub use domain::{CartLine, CartOut};

use axum::Router;
use axum::routing::{delete, get, post, put};
use rusqlite_migration::{M, Migrations};
use service_kit::auth::ApiKeys;
use service_kit::catalog::CatalogClient;
use service_kit::config::CommonArgs;
use service_kit::db::{Db, Durability};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The service's name in logs and health answers.
pub const SERVICE: &str = "cart-service";

/// cart-service: carts, validated against the catalog.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "cart-service", version, about)]
pub struct Config {
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "CART_PORT", default_value_t = 8001)]
    pub port: u16,

    /// SQLite file; its folder is created if missing.
    #[arg(long, env = "CART_DB", default_value = "data/carts.db")]
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
    /// The carts database.
    pub db: Db,
    /// Where products are checked.
    pub catalog: CatalogClient,
}

/// The schema, in order. Never edit an applied entry; add a new one.
pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(include_str!(
        "../migrations/0001_create_cart_items.sql"
    ))])
}

/// Every route of the service.
pub fn router(state: AppState, keys: ApiKeys) -> Router {
    use routes::cart;
    let api = Router::new()
        .route("/cart/{user_id}", get(cart::cart_get))
        .route("/cart/{user_id}/add", post(cart::cart_add))
        .route("/cart/{user_id}/clear", delete(cart::cart_clear))
        .route(
            "/cart/{user_id}/items/{product_id}",
            put(cart::items_update).delete(cart::items_remove),
        )
        .with_state(state);
    service_kit::http::assemble(service_kit::http::health_route(SERVICE), api, keys)
}

/// Opens the database and serves until `shutdown` resolves.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error>> {
    let keys = config.common.api_keys()?;
    let db = Db::open(&config.db, &migrations(), Durability::Normal)?;
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
