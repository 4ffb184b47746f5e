//! cart-service: shoppers' carts in `carts.db`, each line checked against the catalog, and
//! the checkout that turns a cart into a paid order.
//!
//! Adding to a cart is fail-open: when the catalog cannot answer, the line is added anyway
//! and marked unverified, because no money is at stake yet. An unknown product is refused.
//! A checkout is never fail-open: it completes only with a reservation and a payment.
//!
//! # Layout
//! - [`Config`]: flags and their environment variables.
//! - [`router`]: every route, no I/O; used by `main.rs` and the tests alike.
//! - `routes/`: the cart and checkout handlers (thin: parse, one operation, output).
//! - `carts.rs`: the cart operations (view, add with its fail-open catalog check, change,
//!   remove, clear), each owning its transaction.
//! - `checkout.rs`: the checkout as a state machine (one function per step and per undo,
//!   each step's outcome done, refused or unknown), and the recovery of interrupted ones.
//!   The peers are reached through `shop_contracts`' typed clients, whose refusals are the
//!   contracts' enums.
//! - `domain.rs`: the records: cart lines and the cart view with its checked totals, a
//!   checkout with its steps and step log.
//! - `store.rs`: every SQL statement, over the records of `domain.rs`.

mod carts;
mod checkout;
mod domain;
mod routes;
mod store;

pub use checkout::recover;

pub use domain::{CartLine, CartOut};

use axum::Router;
use axum::middleware;
use rusqlite_migration::Migrations;
use service_kit::auth::ApiKeys;
use service_kit::config::CommonArgs;
use service_kit::config::Secret;
use service_kit::db::{Db, Durability};
use service_kit::http::{ServiceBuilder, Workers};
use service_kit::idempotency::{self, Idempotency};
use service_kit::metrics::BusinessCounters;
use service_kit::migrations::MigrationFile;
use shop_contracts::catalog::CatalogClient;
use shop_contracts::orders::OrderClient;
use shop_contracts::payments::PaymentClient;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};

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

    /// Base URL of order-service (checkout places orders there).
    #[arg(
        long,
        env = "ORDER_SERVICE_URL",
        default_value = "http://127.0.0.1:8003"
    )]
    pub order_url: String,

    /// Base URL of payment-service (checkout pays there).
    #[arg(
        long,
        env = "PAYMENT_SERVICE_URL",
        default_value = "http://127.0.0.1:8004"
    )]
    pub payment_url: String,

    /// Timeout of each call a checkout makes, in milliseconds. Longer than the peer timeout
    /// of a cart add: a checkout never fails open, so it waits for a busy service rather than
    /// give up (a payment includes the first attempt of its webhook).
    #[arg(long, env = "CHECKOUT_TIMEOUT_MS", default_value_t = 10_000)]
    pub checkout_timeout_ms: u64,

    /// How often interrupted checkouts are looked for, in milliseconds.
    #[arg(long, env = "CHECKOUT_RECOVERY_MS", default_value_t = 2000)]
    pub checkout_recovery_ms: u64,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The carts database.
    pub db: Db,
    /// Where a cart add checks its product (short timeout: adds fail open).
    catalog: CatalogClient,
    /// The catalog as a checkout uses it: validation and stock (long timeout).
    stock: CatalogClient,
    /// Where checkouts place orders.
    orders: OrderClient,
    /// Where checkouts pay.
    payments: PaymentClient,
    /// How long a checkout waits for a payment that was only authorized (the payment
    /// service could not verify the order yet) to be captured: one call's timeout.
    capture_wait: Duration,
    /// Checkouts by outcome and failed step.
    pub counters: BusinessCounters,
    /// Checks customers' sessions and makes the order tokens a checkout answers with.
    pub sessions: Option<service_kit::session::SessionKeys>,
}

/// Where the peers are.
#[derive(Debug, Clone)]
pub struct PeerUrls {
    pub catalog: String,
    pub order: String,
    pub payment: String,
}

/// How long peers get to answer.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// A cart add's catalog check.
    pub peer: Duration,
    /// Each call of a checkout.
    pub checkout: Duration,
}

/// Every checkout outcome the counter can count, to show at 0 from the start.
fn known_checkout_outcomes() -> Vec<Vec<(&'static str, &'static str)>> {
    let mut known = vec![
        vec![("outcome", "completed"), ("failed_step", "")],
        vec![("outcome", "finishing"), ("failed_step", "")],
    ];
    for step in domain::Step::ALL
        .iter()
        .filter(|s| **s != domain::Step::Done)
    {
        for outcome in ["failed", "unsettled"] {
            known.push(vec![("outcome", outcome), ("failed_step", step.as_str())]);
        }
    }
    known
}

impl AppState {
    /// State over an open database, calling the peers at `urls` with `api_key`.
    pub fn new(db: Db, urls: &PeerUrls, api_key: &str, timeouts: Timeouts) -> Self {
        let key = Secret::new(api_key);
        AppState {
            db,
            catalog: CatalogClient::new(&urls.catalog, key.clone(), timeouts.peer),
            stock: CatalogClient::new(&urls.catalog, key.clone(), timeouts.checkout),
            orders: OrderClient::new(&urls.order, key.clone(), timeouts.checkout),
            payments: PaymentClient::new(&urls.payment, key, timeouts.checkout),
            capture_wait: timeouts.checkout,
            counters: BusinessCounters::new(&[(
                "checkouts",
                "Checkouts run, by outcome (completed, finishing, failed, unsettled) and the \
                 step that failed",
            )])
            .known("checkouts", &known_checkout_outcomes()),
            sessions: None,
        }
    }

    /// The same state, checking sessions and making order tokens with `sessions`.
    pub fn with_sessions(mut self, sessions: Option<service_kit::session::SessionKeys>) -> Self {
        self.sessions = sessions;
        self
    }
}

/// How much longer than one call's timeout a running checkout may go unsaved before it is
/// taken to be interrupted. A live checkout saves after every step, and a step is one call.
pub const CHECKOUT_STALE_MARGIN: Duration = Duration::from_secs(5);

/// The cart service's OpenAPI document: its title here, its paths from the routes of
/// [`router`].
#[derive(Debug, utoipa::OpenApi)]
#[openapi(info(
    title = "cart-service",
    description = "Carts checked against the catalog, and checkout."
))]
pub struct ApiDoc;

/// Every migration this service applies: the files of its `migrations/` folder, in order.
pub const MIGRATIONS: &[MigrationFile] = service_kit::migration_files![
    "0001_create_cart_items.sql",
    "0002_create_checkouts.sql",
    "0003_create_idempotency_keys.sql",
    "0004_create_events.sql",
    "0005_checkout_reference.sql",
    "0006_checkout_order_reference.sql",
    "0007_direct_checkouts_and_skus.sql",
    "0008_guest_carts.sql",
];

/// The schema, as [`MIGRATIONS`] builds it.
pub fn migrations() -> Migrations<'static> {
    service_kit::migrations::from_files(MIGRATIONS)
}

/// Every route of the service.
pub fn router(state: AppState, keys: ApiKeys) -> Router {
    use routes::cart::*;
    use routes::checkouts::*;
    let once =
        middleware::from_fn_with_state(Idempotency::new(state.db.clone()), idempotency::idempotent);
    let api = OpenApiRouter::with_openapi(<ApiDoc as utoipa::OpenApi>::openapi())
        .routes(utoipa_axum::routes!(cart_checkout).layer(once.clone()))
        .routes(utoipa_axum::routes!(checkout_process).layer(once))
        .routes(service_kit::auth::customer(utoipa_axum::routes!(
            checkouts_list
        )))
        .routes(utoipa_axum::routes!(checkouts_get))
        .routes(utoipa_axum::routes!(carts_open))
        .routes(utoipa_axum::routes!(cart_get))
        .routes(utoipa_axum::routes!(cart_add))
        .routes(utoipa_axum::routes!(cart_clear))
        .routes(utoipa_axum::routes!(items_update, items_remove))
        .with_state(state.clone());
    let mut service = ServiceBuilder::new(SERVICE, state.db.clone(), migrations, api);
    service.metrics().counters(&state.counters);
    service.build(keys)
}

/// Opens the database and serves until `shutdown` resolves.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error>> {
    config.common.apply_shop_settings()?;
    let peer_key = config.common.peer_api_key()?;
    // NORMAL in WAL mode: a commit survives the process dying (the checkout crash test kills
    // it with SIGKILL); only a power cut could lose the last steps, and each step's call is
    // idempotent, so settling the checkout again is safe. Orders and payments use FULL.
    let db = Db::open(&config.db, &migrations(), Durability::Normal)?;
    // Bound before any worker starts: a port in use stops the service before it acts.
    let listener = service_kit::http::bind(&config.common, config.port)?;
    idempotency::free_abandoned_keys(&db).await?;
    let urls = PeerUrls {
        catalog: config.catalog_url.clone(),
        order: config.order_url.clone(),
        payment: config.payment_url.clone(),
    };
    let timeouts = Timeouts {
        peer: config.common.peer_timeout(),
        checkout: Duration::from_millis(config.checkout_timeout_ms),
    };
    let state = AppState::new(db, &urls, peer_key.expose(), timeouts)
        .with_sessions(config.common.session_keys());
    let every = Duration::from_millis(config.checkout_recovery_ms.max(1));
    let mut workers = Workers::new();
    let recovering = state.clone();
    workers.spawn("checkout recovery", move |stop| {
        recover_interrupted(recovering, every, timeouts.checkout, stop)
    });
    let db = state.db.clone();
    let app = router(state, config.common.key_policy()?);
    let served =
        service_kit::http::launch(SERVICE, &config.common, listener, app, workers, shutdown).await;
    db.close().await;
    served?;
    Ok(())
}

/// At start-up settles every checkout a crash left running, then keeps settling those that
/// stay unsaved for longer than a checkout call may take plus [`CHECKOUT_STALE_MARGIN`]
/// (a peer that stopped answering mid-way).
async fn recover_interrupted(
    state: AppState,
    every: Duration,
    call_timeout: Duration,
    cancel: CancellationToken,
) {
    let stale_after =
        service_kit::clock::millis(call_timeout.saturating_add(CHECKOUT_STALE_MARGIN));
    let mut stale_before = service_kit::clock::unix_now_ms();
    loop {
        match recover(&state, stale_before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(settled = n, "settled interrupted checkouts"),
            Err(err) => tracing::error!(error = %err, "checkout recovery failed"),
        }
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(every) => {}
        }
        stale_before = service_kit::clock::unix_now_ms().saturating_sub(stale_after);
    }
}
