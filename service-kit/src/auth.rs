//! The `X-API-Key` check in front of every route but the health probe.

use crate::ApiError;
use crate::config::Secret;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The header clients put their key in.
pub const API_KEY_HEADER: &str = "x-api-key";

/// The keys a service accepts. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ApiKeys(Arc<Vec<Secret>>);

impl ApiKeys {
    /// Accepts any of `keys`.
    pub fn new(keys: Vec<Secret>) -> Self {
        ApiKeys(Arc::new(keys))
    }

    /// The first key, which this service sends when it calls a peer.
    pub fn primary(&self) -> Option<&Secret> {
        self.0.first()
    }

    /// True when `candidate` equals one of the keys. Every key is compared in constant time
    /// and all are compared, so timing tells nothing about which key nearly matched.
    pub fn accepts(&self, candidate: &[u8]) -> bool {
        if candidate.is_empty() {
            return false;
        }
        self.0.iter().fold(false, |found, key| {
            let equal: bool = key.expose().as_bytes().ct_eq(candidate).into();
            found | equal
        })
    }
}

/// Middleware: answers 401 unless the request carries an accepted `X-API-Key`.
pub async fn require_api_key(
    State(keys): State<ApiKeys>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = request
        .headers()
        .get(API_KEY_HEADER)
        .map(|value| value.as_bytes());
    match presented {
        None => Err(ApiError::Unauthorized(
            "missing X-API-Key header".to_string(),
        )),
        Some(key) if keys.accepts(key) => Ok(next.run(request).await),
        Some(_) => Err(ApiError::Unauthorized("invalid API key".to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_any_configured_key_and_nothing_else() {
        let keys = ApiKeys::new(vec![Secret::new("old"), Secret::new("new")]);
        assert!(keys.accepts(b"old"));
        assert!(keys.accepts(b"new"));
        assert!(!keys.accepts(b""));
        assert!(!keys.accepts(b"ol"));
        assert!(!keys.accepts(b"oldx"));
        assert!(!keys.accepts(b"NEW"));
    }
}
