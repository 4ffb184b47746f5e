//! `Idempotency-Key` for POST routes that must not run twice (IETF httpapi draft).
//!
//! Same key and same request: the first answer is replayed byte for byte, with
//! `Idempotent-Replayed: true`, and the handler does not run again. Same key, other request:
//! 422. While the first request is still running: 409. A key longer than 255 characters:
//! 400. Keys are scoped by API key and kept for [`KEY_TTL`]. Without the header nothing
//! changes. A 5xx answer is not kept, so the client may retry.

use crate::ApiError;
use crate::auth::API_KEY_HEADER;
use crate::db::Db;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::Mac;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// The request header.
pub const KEY_HEADER: &str = "idempotency-key";
/// The header set on a replayed answer.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 255;
/// How long a key and its answer are kept.
pub const KEY_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// A request still `in_flight` after this long is taken to have died with its process;
/// the next request with its key runs it again.
pub const IN_FLIGHT_LEASE: Duration = Duration::from_secs(60);

/// State for [`idempotent`]: the service's database.
#[derive(Debug, Clone)]
pub struct Idempotency {
    db: Db,
}

impl Idempotency {
    /// Keeps keys in `db`, which must have the table of `idempotency.sql` (a service copies
    /// it into its `migrations/` folder, see [`crate::migrations`]).
    pub fn new(db: Db) -> Self {
        Idempotency { db }
    }
}

/// At start-up, before serving: a request still `in_flight` was cut off when this service's
/// process died (one process owns a database), so its key is freed at once instead of after
/// [`IN_FLIGHT_LEASE`]: the client's retry runs again. Returns how many were freed.
pub async fn free_abandoned_keys(db: &Db) -> Result<usize, ApiError> {
    let freed = db
        .write(|tx| {
            Ok(tx
                .prepare_cached("DELETE FROM idempotency_keys WHERE state = 'in_flight'")?
                .execute([])?)
        })
        .await?;
    if freed > 0 {
        tracing::warn!(
            freed,
            "freed the idempotency keys of requests cut off by the last stop"
        );
    }
    Ok(freed)
}

/// The `code` of the 409 that answers a request whose key is still being processed (kept
/// with the error's other codes).
pub use crate::error::IN_FLIGHT_CODE;

/// The request's `Idempotency-Key` as the client who sent it owns it: a hash of their API
/// key's scope and the key, the same for every retry of theirs and never the same for
/// another client's equal key. A handler stores it with what it creates, in the same
/// transaction, so a retry after a crash (which frees the key) finds what the first
/// attempt made. `None` without a usable key.
pub fn owned_key(headers: &axum::http::HeaderMap) -> Option<String> {
    let key = headers.get(KEY_HEADER)?.to_str().ok()?.trim();
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return None;
    }
    let api_key = headers
        .get(API_KEY_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    let scope = Sha256::digest([b"idempotency-scope:".as_slice(), api_key].concat());
    Some(hex(&Sha256::digest(
        [scope.as_slice(), b"\n", key.as_bytes()].concat(),
    )))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the stored record says to do with a request.
#[derive(Debug)]
enum Decision {
    Run,
    Replay {
        status: u16,
        content_type: Option<String>,
        body: Vec<u8>,
    },
    InFlight,
    Mismatch,
}

fn decide(
    conn: &Connection,
    scope: &str,
    key: &str,
    fingerprint: &str,
    now: i64,
) -> rusqlite::Result<Decision> {
    let ttl = crate::clock::millis(KEY_TTL);
    conn.prepare_cached("DELETE FROM idempotency_keys WHERE created_at_ms < ?1")?
        .execute(params![now.saturating_sub(ttl)])?;
    let existing = conn
        .prepare_cached(
            "SELECT fingerprint, state, status, content_type, body, created_at_ms
             FROM idempotency_keys WHERE scope = ?1 AND key = ?2",
        )?
        .query_row(params![scope, key], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Option<u16>>(2)?,
                row.get::<_, Option<String>>(3)?,
                row.get::<_, Option<Vec<u8>>>(4)?,
                row.get::<_, i64>(5)?,
            ))
        })
        .optional()?;
    let Some((stored_fingerprint, state, status, content_type, body, created)) = existing else {
        conn.prepare_cached(
            "INSERT INTO idempotency_keys (scope, key, fingerprint, state, created_at_ms)
             VALUES (?1, ?2, ?3, 'in_flight', ?4)",
        )?
        .execute(params![scope, key, fingerprint, now])?;
        return Ok(Decision::Run);
    };
    if stored_fingerprint != fingerprint {
        return Ok(Decision::Mismatch);
    }
    match (state.as_str(), status) {
        ("done", Some(status)) => Ok(Decision::Replay {
            status,
            content_type,
            body: body.unwrap_or_default(),
        }),
        _ if now.saturating_sub(created) < crate::clock::millis(IN_FLIGHT_LEASE) => {
            Ok(Decision::InFlight)
        }
        _ => {
            conn.prepare_cached(
                "UPDATE idempotency_keys SET created_at_ms = ?3 WHERE scope = ?1 AND key = ?2",
            )?
            .execute(params![scope, key, now])?;
            Ok(Decision::Run)
        }
    }
}

fn finish(
    conn: &Connection,
    scope: &str,
    key: &str,
    response: Option<(u16, Option<&str>, &[u8])>,
) -> rusqlite::Result<()> {
    match response {
        Some((status, content_type, body)) => conn
            .prepare_cached(
                "UPDATE idempotency_keys SET state = 'done', status = ?3, content_type = ?4, body = ?5
                 WHERE scope = ?1 AND key = ?2",
            )?
            .execute(params![scope, key, status, content_type, body])?,
        None => conn
            .prepare_cached("DELETE FROM idempotency_keys WHERE scope = ?1 AND key = ?2")?
            .execute(params![scope, key])?,
    };
    Ok(())
}

/// Middleware for one route; see the module documentation. Runs after the API-key check.
pub async fn idempotent(
    State(state): State<Idempotency>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(raw_key) = request.headers().get(KEY_HEADER) else {
        return Ok(next.run(request).await);
    };
    let key = checked_key(raw_key)?;
    let api_key = request
        .headers()
        .get(API_KEY_HEADER)
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default();
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, crate::http::MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge("request body too large".into()))?;
    let scope = hex(&Sha256::digest(
        [b"idempotency-scope:".as_slice(), &api_key].concat(),
    ));
    let fingerprint = fingerprint(&api_key, &parts, &body);
    let decision = {
        let (scope, key) = (scope.clone(), key.clone());
        let now = crate::clock::unix_now_ms();
        state
            .db
            .write(move |tx| Ok(decide(tx, &scope, &key, &fingerprint, now)?))
            .await?
    };
    match decision {
        Decision::Mismatch => Err(ApiError::Validation(
            "Idempotency-Key was already used for a different request".into(),
        )),
        Decision::InFlight => Err(ApiError::InFlight(
            "a request with this Idempotency-Key is still being processed; ask again later".into(),
        )),
        Decision::Replay {
            status,
            content_type,
            body,
        } => Ok(replayed(status, content_type, body)),
        Decision::Run => {
            let request = Request::from_parts(parts, Body::from(body));
            Ok(run_and_record(state.db.clone(), (scope, key), request, next).await)
        }
    }
}

/// The key as sent: visible ASCII, 1 to [`MAX_KEY_LEN`] characters once trimmed.
fn checked_key(raw: &HeaderValue) -> Result<String, ApiError> {
    let key = raw
        .to_str()
        .map_err(|_| ApiError::BadRequest("Idempotency-Key must be visible ASCII".into()))?
        .trim()
        .to_string();
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(ApiError::BadRequest(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_LEN} characters"
        )));
    }
    Ok(key)
}

/// What makes two requests the same: method, URI and body, keyed by the caller's API key.
fn fingerprint(api_key: &[u8], parts: &axum::http::request::Parts, body: &[u8]) -> String {
    let mut mac = crate::webhook::hmac_sha256(api_key);
    mac.update(parts.method.as_str().as_bytes());
    mac.update(b"\n");
    mac.update(parts.uri.to_string().as_bytes());
    mac.update(b"\n");
    mac.update(body);
    hex(&mac.finalize().into_bytes())
}

/// The stored answer, as it was first given, marked as a replay.
fn replayed(status: u16, content_type: Option<String>, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    if let Some(value) = content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
        .headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}

/// Runs the request and records its answer under `(scope, key)` (a 5xx frees the key).
/// Spawned, so the request finishes and its answer is stored even if the client hangs up:
/// otherwise a retry would find the key in flight for a minute.
async fn run_and_record(
    db: crate::db::Db,
    (scope, key): (String, String),
    request: Request,
    next: Next,
) -> Response {
    let correlation = crate::context::correlation_id();
    let handle = tokio::spawn(async move {
        let response = crate::context::with_correlation_id(correlation, next.run(request)).await;
        let (parts, body) = response.into_parts();
        let bytes: Bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap_or_default();
        let keep = !parts.status.is_server_error();
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let stored = bytes.clone();
        let status = parts.status.as_u16();
        let recorded = db
            .write(move |tx| {
                let kept = keep.then_some((status, content_type.as_deref(), &stored[..]));
                Ok(finish(tx, &scope, &key, kept)?)
            })
            .await;
        if let Err(err) = recorded {
            tracing::error!(error = %err, "could not record an idempotent answer");
        }
        Response::from_parts(parts, Body::from(bytes))
    });
    handle
        .await
        .unwrap_or_else(|e| ApiError::internal(e).into_response())
}
