//! catalog-service: the shop's products, prices and stock, in `products.db`, and the
//! stock reservations a checkout holds, commits or releases.
//!
//! # Layout
//! - [`Config`]: flags and their environment variables.
//! - [`router`]: every route, no I/O; used by `main.rs` and the tests alike.
//! - `routes/products.rs`: the product handlers (read and admin) and their DTOs.
//! - `routes/reservations.rs`: reserve, commit, release (thin: parse, one operation, output).
//! - `stock.rs`: the operations `reserve` and `settle_reservation`, each owning its
//!   transaction and events; the handlers and the expiry sweep call them.
//! - `inventory.rs`: admin changes: stock movements (the ledger) and product updates, where
//!   a `stock` overwrite needs `If-Match` with the product's version.
//! - `domain.rs`: the records (`Product`, `Reservation`), product field rules and the
//!   reservation lifecycle.
//! - `store.rs`: every SQL statement, taking and returning the records of `domain.rs`.
//! - `migrations/`: the schema, and the three demo products seeded on first start.
//! - [`release_expired`]: the sweep that returns stock held too long.

mod domain;
mod inventory;
mod routes;
mod stock;
mod store;

use axum::Router;
use rusqlite_migration::Migrations;
use service_kit::auth::ApiKeys;
use service_kit::auth::admin;
use service_kit::config::CommonArgs;
use service_kit::db::Undone;
use service_kit::db::{Db, Durability};
use service_kit::domain::Reference;
use service_kit::http::{ServiceBuilder, Workers};
use service_kit::migrations::MigrationFile;
use shop_contracts::catalog::SettleRefused;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

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

    /// How long a reservation holds stock before the sweep releases it (e.g. `15m`).
    #[arg(long, env = "RESERVATION_TTL", default_value = "15m", value_parser = humantime::parse_duration)]
    pub reservation_ttl: Duration,

    /// How often the sweep looks for expired reservations, in milliseconds.
    #[arg(long, env = "RESERVATION_SWEEP_MS", default_value_t = 5000)]
    pub reservation_sweep_ms: u64,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The products database.
    pub db: Db,
    /// How long a reservation holds stock.
    pub reservation_ttl: Duration,
}

/// The catalog's OpenAPI document: its title here, its paths from the routes of [`router`].
#[derive(Debug, utoipa::OpenApi)]
#[openapi(info(
    title = "catalog-service",
    description = "Products, prices, stock and reservations."
))]
pub struct ApiDoc;

/// Every migration this service applies: the files of its `migrations/` folder, in order.
pub const MIGRATIONS: &[MigrationFile] = service_kit::migration_files![
    "0001_create_products.sql",
    "0002_seed_products.sql",
    "0003_create_reservations.sql",
    "0004_create_events.sql",
    "0005_reservations_by_reference.sql",
    "0006_stock_movements.sql",
    "0007_product_details.sql",
    "0008_reserved_counter.sql",
    "0009_returns_by_line.sql",
];

/// The schema, as [`MIGRATIONS`] builds it.
pub fn migrations() -> Migrations<'static> {
    service_kit::migrations::from_files(MIGRATIONS)
}

/// Every route of the service.
pub fn router(state: AppState, keys: ApiKeys) -> Router {
    use routes::products::*;
    use routes::reservations::*;
    let api = OpenApiRouter::with_openapi(<ApiDoc as utoipa::OpenApi>::openapi())
        .routes(routes!(products_list))
        .routes(routes!(products_get))
        .routes(admin(routes!(products_create)))
        .routes(admin(routes!(products_update, products_delete)))
        .routes(routes!(image_get))
        // An image may be larger than the 64 KiB every other body is held to.
        .routes(admin(routes!(image_put).layer(
            axum::extract::DefaultBodyLimit::max(domain::MAX_IMAGE_BYTES + 1),
        )))
        .routes(admin(routes!(stock_move)))
        .routes(admin(routes!(stock_movements)))
        .routes(admin(routes!(stock_audit)))
        // Reservations are the services' business (their key is an admin key).
        .routes(admin(routes!(reservations_create)))
        .routes(admin(routes!(reservations_get)))
        .routes(admin(routes!(reservations_commit)))
        .routes(admin(routes!(reservations_release)))
        .routes(admin(routes!(reservations_return)))
        .routes(admin(routes!(reservations_return_lines)))
        .with_state(state.clone());
    ServiceBuilder::new(SERVICE, state.db, migrations, api).build(keys)
}

/// Opens the database and serves until `shutdown` resolves.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error>> {
    config.common.apply_shop_settings()?;
    let keys = config.common.key_policy()?;
    let db = Db::open(&config.db, &migrations(), Durability::Normal)?;
    // Bound before any worker starts: a port in use stops the service before it acts.
    let listener = service_kit::http::bind(&config.common, config.port)?;
    let state = AppState {
        db,
        reservation_ttl: config.reservation_ttl,
    };
    let every = Duration::from_millis(config.reservation_sweep_ms.max(1));
    let mut workers = Workers::new();
    let swept = state.clone();
    workers.spawn("reservation sweep", move |stop| {
        sweep_expired(swept, every, stop)
    });
    let db = state.db.clone();
    let app = router(state, keys);
    let served =
        service_kit::http::launch(SERVICE, &config.common, listener, app, workers, shutdown).await;
    db.close().await;
    served?;
    Ok(())
}

/// Releases every reservation held past its expiry, putting its stock back; returns how
/// many it released.
pub async fn release_expired(state: &AppState) -> Result<usize, service_kit::ApiError> {
    let now = service_kit::clock::unix_now_ms();
    let expired: Vec<Reference> = state
        .db
        .call(move |conn| Ok(store::expired_reservations(conn, now)?))
        .await?;
    let mut released = 0;
    for reference in expired {
        let reason = Some("expired before it was committed".to_string());
        let released_one = stock::settle_reservation(
            &state.db,
            reference,
            domain::ReservationStatus::Released,
            reason,
        )
        .await;
        match released_one {
            Ok(_) => released += 1,
            // Committed meanwhile (or gone): nothing to release.
            Err(Undone::Refused(SettleRefused::AlreadySettled(_) | SettleRefused::NotFound(_))) => {
            }
            Err(other) => return Err(other.into()),
        }
    }
    Ok(released)
}

async fn sweep_expired(state: AppState, every: Duration, cancel: CancellationToken) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(every) => {}
        }
        match release_expired(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(released = n, "released expired reservations"),
            Err(err) => tracing::error!(error = %err, "reservation sweep failed"),
        }
    }
}
