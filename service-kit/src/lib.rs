//! The small library every shop service is built from.
//!
//! # Layout
//! - [`clock`]: the current time as Unix seconds, milliseconds and RFC 3339.
//! - [`context`]: the request's correlation id and span, carried to the blocking pool and the
//!   writer thread ([`context::spawn_blocking`]).
//! - [`config`]: the flags all four binaries share (bind address, API keys) and [`config::Secret`].
//! - [`error`]: [`ApiError`], the one error type, and its `{"error":{"code","message"}}` body;
//!   a 5xx leaves its cause on the response for `http`'s middleware to log once.
//! - [`export`]: CSV exports (RFC 4180) sent page by page as they are read.
//! - [`extract`]: `Json`, `Query` and `Path` extractors whose rejections use that body.
//! - [`money`]: [`money::Cents`], integer money that reads and writes JSON decimals.
//! - [`domain`]: identifiers and quantities that more than one service parses.
//! - [`db`]: the SQLite pool, its pragmas, embedded migrations and `spawn_blocking` access.
//! - [`migrations`]: a service's numbered migration files and the check that released ones
//!   are never edited.
//! - [`peer`]: a blocking HTTP client for service-to-service calls, run off the async threads;
//!   a call that changes something answers with an [`peer::Outcome`]: done, refused, unknown.
//! - [`events`]: the domain event table, `record` inside a transaction, and `GET /events`.
//! - [`metrics`]: `/metrics` in the Prometheus text format, per-route counts and latency.
//! - [`auth`]: the `X-API-Key` check, the keys' scopes (admin, storefront) and the one
//!   place a route is marked admin-only.
//! - [`openapi`]: the `X-API-Key` scheme, the `/openapi.json` route and Swagger UI at `/docs`.
//! - [`listing`]: a page of a list as an answer, with `X-Total-Count` and a `Link` to the
//!   next page.
//! - [`idempotency`]: the `Idempotency-Key` middleware and its table.
//! - [`webhook`]: Standard Webhooks signing and verification (HMAC-SHA256, rotation).
//! - [`http`]: [`http::ServiceBuilder`] (how every service is assembled: its routes declared
//!   once for router and OpenAPI, events, metrics, probes, auth, JSON 404/405, body limit,
//!   request ids, tracing), [`http::Workers`] and `launch`, logging set-up.
//! - [`session`]: customers' access tokens (HS256 JWTs), guests' order tokens and the
//!   random tokens the shop hands out, each checked locally.
//! - [`server`]: the accept loop: header and idle deadlines, the connection cap, the
//!   open-file limit, graceful shutdown.
//! - [`text_enum!`]: an enum stored and sent as text (statuses, steps), written once.
//! - `testing` (feature `testing`): helpers for router tests.

pub mod alloc;
pub mod auth;
#[cfg(test)]
mod captured_log;
pub mod clock;
pub mod config;
pub mod context;
pub mod db;
pub mod domain;
pub mod error;
pub mod events;
pub mod export;
pub mod extract;
pub mod http;
pub mod idempotency;
pub mod listing;
pub mod logfmt;
pub mod metrics;
pub mod migrations;
pub mod money;
pub mod openapi;
pub mod peer;
pub mod server;
pub mod session;
#[cfg(feature = "testing")]
pub mod testing;
mod text_enum;
pub mod webhook;

pub use error::ApiError;
