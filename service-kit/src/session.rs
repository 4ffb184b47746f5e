//! What a shopper holds besides the storefront key, checked by every service on its own:
//! a customer's signed access token (a JWT, HS256, at most 15 minutes), a guest's order
//! token (an HMAC of the order's ref), and the random tokens the shop hands out (cart,
//! refresh and reset tokens), stored only as their hash.
//!
//! The secrets are `--session-secret` (comma-separated: the first signs, every one
//! verifies, so a secret is rotated by putting the new one first, then dropping the old one
//! once the longest session has run out). No service asks another whether a token is good.

use crate::config::Secret;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The longest an access token lives.
pub const MAX_ACCESS_TTL_SECS: u64 = 15 * 60;

/// Who issues the access tokens (`iss`).
pub const ISSUER: &str = "shop";

/// A customer's id: `cus_` and 32 hex digits, the `sub` of their access token.
pub const CUSTOMER_PREFIX: &str = "cus_";

/// A guest's id (the user id of a guest's cart and order): `guest_` and 32 hex digits.
pub const GUEST_PREFIX: &str = "guest_";

/// The header a guest sends their order token in (never the path: paths are logged).
pub const ORDER_TOKEN_HEADER: &str = "x-order-token";

/// What an access token says. Only `sub` and `exp` must be there; `nbf`, when there, is
/// checked too.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    iss: String,
    #[serde(default)]
    iat: u64,
    #[serde(default)]
    nbf: u64,
    exp: u64,
}

/// Why an access token was refused; each is a 401 whose message says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionRefused {
    #[error("the session has expired: refresh it or sign in again")]
    Expired,
    #[error("the session token is not valid yet")]
    NotYetValid,
    #[error("the session token must be signed with HS256")]
    WrongAlgorithm,
    #[error("the session token's signature does not match")]
    BadSignature,
    #[error("the session token is malformed or unsigned (only HS256 tokens are accepted)")]
    Malformed,
    #[error("this shop takes no customer sessions (no --session-secret is set)")]
    NotConfigured,
}

/// The session secrets. Cheap to clone; `Debug` shows only how many there are.
#[derive(Clone)]
pub struct SessionKeys {
    secrets: Arc<Vec<Secret>>,
    signing: Arc<EncodingKey>,
    verifying: Arc<Vec<DecodingKey>>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

impl SessionKeys {
    /// The keys, the first of `secrets` signing; `None` when there is none (empty ones
    /// are left out).
    pub fn new(secrets: Vec<Secret>) -> Option<SessionKeys> {
        let secrets: Vec<Secret> = secrets
            .into_iter()
            .filter(|s| !s.expose().is_empty())
            .collect();
        let signing = EncodingKey::from_secret(secrets.first()?.expose().as_bytes()).ok()?;
        let verifying = secrets
            .iter()
            .filter_map(|s| DecodingKey::from_secret(s.expose().as_bytes()).ok())
            .collect();
        Some(SessionKeys {
            secrets: Arc::new(secrets),
            signing: Arc::new(signing),
            verifying: Arc::new(verifying),
        })
    }

    fn signing(&self) -> &Secret {
        &self.secrets[0]
    }

    /// An access token for `customer`, valid from `now` (Unix seconds) for `ttl_secs`
    /// (at most [`MAX_ACCESS_TTL_SECS`]).
    pub fn issue(&self, customer: &str, now: u64, ttl_secs: u64) -> String {
        let claims = Claims {
            sub: customer.to_string(),
            iss: ISSUER.to_string(),
            iat: now,
            nbf: now,
            exp: now + ttl_secs.min(MAX_ACCESS_TTL_SECS),
        };
        // HS256 over a struct of strings and numbers cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.signing)
            .unwrap_or_default()
    }

    /// The customer an access token names, if one of the secrets signed it with HS256 and
    /// it is within its validity.
    pub fn verify(&self, token: &str) -> Result<String, SessionRefused> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| SessionRefused::Malformed)?;
        if header.alg != Algorithm::HS256 {
            return Err(SessionRefused::WrongAlgorithm);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        for key in self.verifying.iter() {
            match jsonwebtoken::decode::<Claims>(token, key, &validation) {
                Ok(data) if is_id(&data.claims.sub, CUSTOMER_PREFIX) => return Ok(data.claims.sub),
                Ok(_) => return Err(SessionRefused::Malformed),
                Err(err) => match err.kind() {
                    ErrorKind::InvalidSignature => continue,
                    ErrorKind::ExpiredSignature => return Err(SessionRefused::Expired),
                    ErrorKind::ImmatureSignature => return Err(SessionRefused::NotYetValid),
                    ErrorKind::InvalidAlgorithm => return Err(SessionRefused::WrongAlgorithm),
                    _ => return Err(SessionRefused::Malformed),
                },
            }
        }
        Err(SessionRefused::BadSignature)
    }

    /// The token that opens the order with global reference `order_ref` to whoever holds
    /// it (a guest's receipt): the ref and an HMAC of it under the signing secret.
    pub fn order_token(&self, order_ref: &str) -> String {
        let mac = order_mac(self.signing(), order_ref).finalize().into_bytes();
        format!("{order_ref}.{}", URL_SAFE_NO_PAD.encode(mac))
    }

    /// The order ref the request's `X-Order-Token` opens, if it carries a good one.
    pub fn opened_order(&self, headers: &axum::http::HeaderMap) -> Option<String> {
        let token = headers.get(ORDER_TOKEN_HEADER)?.to_str().ok()?;
        self.order_ref_of(token.trim())
    }

    /// The order ref an order token opens, if one of the secrets made it.
    pub fn order_ref_of(&self, token: &str) -> Option<String> {
        let (order_ref, mac) = token.rsplit_once('.')?;
        let presented = URL_SAFE_NO_PAD.decode(mac).ok()?;
        self.secrets
            .iter()
            .any(|secret| {
                order_mac(secret, order_ref)
                    .verify_slice(&presented)
                    .is_ok()
            })
            .then(|| order_ref.to_string())
    }
}

/// The HMAC an order token carries for `order_ref` under `secret`.
fn order_mac(secret: &Secret, order_ref: &str) -> hmac::Hmac<Sha256> {
    let mut mac = crate::webhook::hmac_sha256(secret.expose().as_bytes());
    mac.update(b"order-token:");
    mac.update(order_ref.as_bytes());
    mac
}

/// Whether `id` is `prefix` and 32 lowercase hex digits.
pub fn is_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|hex| {
        hex.len() == 32
            && hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    })
}

/// A new id `prefix` + 32 hex digits (a UUIDv7: unique across copies and services, never
/// a row id).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::now_v7().simple())
}

/// A new unguessable token: `prefix` and 256 random bits from the operating system.
pub fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    // The OS random source failing is not something a request can recover from, and a
    // predictable token would be worse than none.
    #[allow(clippy::expect_used, reason = "no randomness means no safe token")]
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// How a token is stored: its SHA-256 in hex (a leaked table opens nothing).
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secrets: &[&str]) -> SessionKeys {
        SessionKeys::new(secrets.iter().map(|s| Secret::new(*s)).collect()).unwrap()
    }

    fn now() -> u64 {
        crate::clock::unix_now() as u64
    }

    fn customer() -> String {
        new_id(CUSTOMER_PREFIX)
    }

    fn signed(claims: &serde_json::Value, alg: Algorithm, secret: &str) -> String {
        let key = EncodingKey::from_secret(secret.as_bytes()).unwrap();
        jsonwebtoken::encode(&Header::new(alg), claims, &key).unwrap()
    }

    #[test]
    fn a_token_names_its_customer_under_any_current_secret_and_never_another() {
        let who = customer();
        let old = keys(&["old-secret"]).issue(&who, now(), 600);
        let rotated = keys(&["new-secret", "old-secret"]);
        assert_eq!(rotated.verify(&old), Ok(who.clone()));
        assert_eq!(
            keys(&["new-secret"]).verify(&old),
            Err(SessionRefused::BadSignature)
        );
        let issued = rotated.issue(&who, now(), 600);
        assert_eq!(keys(&["new-secret"]).verify(&issued), Ok(who));
    }

    #[test]
    fn expired_early_unsigned_and_other_algorithm_tokens_are_each_refused_by_name() {
        let keys = keys(&["s3cret"]);
        let who = customer();
        let t = now();
        let claims = |nbf: u64, exp: u64| serde_json::json!({"sub": who, "iss": ISSUER, "iat": nbf, "nbf": nbf, "exp": exp});
        let expired = signed(&claims(t - 1000, t - 60), Algorithm::HS256, "s3cret");
        assert_eq!(keys.verify(&expired), Err(SessionRefused::Expired));
        let early = signed(&claims(t + 600, t + 900), Algorithm::HS256, "s3cret");
        assert_eq!(keys.verify(&early), Err(SessionRefused::NotYetValid));
        let other = signed(&claims(t, t + 600), Algorithm::HS512, "s3cret");
        assert_eq!(keys.verify(&other), Err(SessionRefused::WrongAlgorithm));
        // alg "none": a header and claims, no signature.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(claims(t, t + 600).to_string())
        );
        assert_eq!(keys.verify(&none), Err(SessionRefused::Malformed));
        assert_eq!(keys.verify("not a token"), Err(SessionRefused::Malformed));
        // Re-signed claims for another subject with a guessed secret.
        let forged = signed(&claims(t, t + 600), Algorithm::HS256, "guess");
        assert_eq!(keys.verify(&forged), Err(SessionRefused::BadSignature));
        // A token of ours whose payload was edited.
        let good = keys.issue(&who, t, 600);
        let mut parts: Vec<String> = good.split('.').map(String::from).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(claims(t, t + 86_400).to_string());
        assert_eq!(
            keys.verify(&parts.join(".")),
            Err(SessionRefused::BadSignature)
        );
    }

    #[test]
    fn a_token_lives_at_most_fifteen_minutes() {
        let keys = keys(&["s3cret"]);
        let token = keys.issue(&customer(), now(), 86_400);
        let payload = token.split('.').nth(1).unwrap();
        let claims: Claims =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!(claims.exp - claims.iat, MAX_ACCESS_TTL_SECS);
    }

    #[test]
    fn an_order_token_opens_its_order_only_and_survives_a_rotation() {
        let old = keys(&["old"]);
        let token = old.order_token("0193-ref-a");
        assert_eq!(old.order_ref_of(&token).as_deref(), Some("0193-ref-a"));
        let rotated = keys(&["new", "old"]);
        assert_eq!(rotated.order_ref_of(&token).as_deref(), Some("0193-ref-a"));
        let (_, mac) = token.rsplit_once('.').unwrap();
        assert_eq!(old.order_ref_of(&format!("0193-ref-b.{mac}")), None);
        assert_eq!(keys(&["new"]).order_ref_of(&token), None);
        assert_eq!(old.order_ref_of("0193-ref-a"), None);
    }

    #[test]
    fn random_tokens_differ_and_are_stored_as_hashes() {
        let a = random_token("ct_");
        let b = random_token("ct_");
        assert_ne!(a, b);
        assert_eq!(a.len(), 3 + 43);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), token_hash(&b));
        assert!(is_id(&new_id(GUEST_PREFIX), GUEST_PREFIX));
        assert!(!is_id("cus_ada", CUSTOMER_PREFIX));
    }
}
