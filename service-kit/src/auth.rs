//! The `X-API-Key` check in front of every route but the health probe, and the scope each
//! key has: the admin keys (`--api-key`, and the services' own key) may do everything, a
//! storefront key (`--storefront-key`) only what a shopper's front end needs. A route is
//! marked admin-only where it is declared ([`admin`]); that mark drives both the check
//! (403 `forbidden`) and the route's `x-scope` in the OpenAPI document.

use crate::ApiError;
use crate::config::Secret;
use crate::session::SessionKeys;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The header clients put their key in.
pub const API_KEY_HEADER: &str = "x-api-key";

type Limiter = governor::DefaultKeyedRateLimiter<usize>;

/// What a storefront request is counted under besides its key: its client's address, and
/// the customer whose session it carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ClientKey {
    Address(IpAddr),
    Customer(String),
}

type ClientLimiter = governor::DefaultKeyedRateLimiter<ClientKey>;

/// How many clients the per-client limiter tracks before it forgets the idle ones.
const MAX_TRACKED_CLIENTS: usize = 100_000;

/// A storefront request's shopper: where it came from (the connection's peer, or what a
/// trusted proxy says), and the customer whose valid session it carries, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shopper {
    /// The client's address, as the rate limits count it.
    pub client: IpAddr,
    /// The signed-in customer (`cus_...`), from a verified access token.
    pub customer: Option<String>,
}

/// Who is calling, as a handler sees it: an admin (or a service), or a shopper through the
/// storefront key. Extracted from what [`require_api_key`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// The admin key or the services' own key: everything.
    Admin,
    /// The storefront key, perhaps with a customer's session.
    Shopper(Shopper),
}

impl Access {
    /// The signed-in customer, if a shopper has a session.
    pub fn customer(&self) -> Option<&str> {
        match self {
            Access::Admin => None,
            Access::Shopper(shopper) => shopper.customer.as_deref(),
        }
    }

    /// The storefront client's address (none for the admin or a service).
    pub fn client(&self) -> Option<IpAddr> {
        match self {
            Access::Admin => None,
            Access::Shopper(shopper) => Some(shopper.client),
        }
    }

    /// Whether this is the admin (or a service).
    pub fn is_admin(&self) -> bool {
        matches!(self, Access::Admin)
    }

    /// Whom something a caller creates (an order, a one-call checkout) is filed under: the
    /// user the admin names (required); a shopper's own customer, else a new guest. A
    /// shopper naming anyone else is refused (403).
    pub fn filing_user(&self, asked: Option<&str>) -> Result<crate::domain::UserId, ApiError> {
        use crate::domain::UserId;
        match (self, asked) {
            (Access::Admin, Some(user)) => Ok(UserId::parse(user)?),
            (Access::Admin, None) => Err(ApiError::Validation(
                "user_id is required with the admin key".to_string(),
            )),
            (Access::Shopper(shopper), asked) => {
                let own = shopper
                    .customer
                    .clone()
                    .unwrap_or_else(|| crate::session::new_id(crate::session::GUEST_PREFIX));
                match asked {
                    Some(user) if user != own => Err(ApiError::Forbidden(
                        "a shopper's order is filed under their own account (or as a guest's): \
                         leave user_id out"
                            .to_string(),
                    )),
                    _ => Ok(UserId::parse(&own)?),
                }
            }
        }
    }

    /// Whether a shopper may see what belongs to user `owner`: the admin sees everything, a
    /// customer what is filed under their id.
    pub fn owns(&self, owner: &str) -> bool {
        match self {
            Access::Admin => true,
            Access::Shopper(shopper) => shopper.customer.as_deref() == Some(owner),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Access {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Access, ApiError> {
        match parts.extensions.get::<Scope>() {
            Some(Scope::Admin | Scope::Metrics) => Ok(Access::Admin),
            Some(Scope::Storefront) => parts
                .extensions
                .get::<Shopper>()
                .cloned()
                .map(Access::Shopper)
                .ok_or_else(|| ApiError::Unauthorized("no shopper on this request".to_string())),
            Some(Scope::Customer) | None => Err(ApiError::Unauthorized(
                "missing X-API-Key header".to_string(),
            )),
        }
    }
}

/// What a key may do; put on each request's extensions by [`require_api_key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything: products, stock, prices, promotions, order statuses, refunds, webhook
    /// retries, and all the storefront may do.
    Admin,
    /// Browse the catalog, manage carts, check out, pay, read orders and payments.
    Storefront,
    /// Read `GET /metrics` and nothing else: a scraper's bearer token (`--metrics-token`).
    Metrics,
    /// Not a key's scope but a route's: the storefront key with a customer's session (each
    /// customer sees only their own), or the admin key.
    Customer,
}

impl Scope {
    /// The name used in the OpenAPI document's `x-scope`.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::Storefront => "storefront",
            Scope::Metrics => "metrics",
            Scope::Customer => "customer",
        }
    }
}

/// The keys a service accepts, their scopes, and how many requests per second each may
/// send. Cheap to clone.
#[derive(Clone)]
pub struct ApiKeys {
    keys: Arc<Vec<Secret>>,
    /// The scope of the key at the same index.
    scopes: Arc<Vec<Scope>>,
    limiter: Option<Arc<Limiter>>,
    /// How many of the first keys are clients' (rate-limited); the rest are the services'
    /// own key for calls between them, never limited.
    client_keys: usize,
    /// The bearer token a Prometheus scraper sends for `GET /metrics`, if one is set.
    metrics_token: Option<Arc<Secret>>,
    /// The secrets customers' access tokens are checked with.
    sessions: Option<SessionKeys>,
    /// Storefront requests per client address and per customer.
    client_limiter: Option<Arc<ClientLimiter>>,
    /// Proxies whose `X-Forwarded-For` names the client.
    trusted_proxies: Arc<Vec<IpAddr>>,
}

/// The one route a metrics token opens.
pub const METRICS_PATH: &str = "/metrics";

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys")
            .field("keys", &self.keys.len())
            .field("rate_limited", &self.limiter.is_some())
            .finish()
    }
}

impl ApiKeys {
    /// Accepts any of `keys`, each an admin key, without a rate limit.
    pub fn new(keys: Vec<Secret>) -> Self {
        ApiKeys {
            client_keys: keys.len(),
            scopes: Arc::new(vec![Scope::Admin; keys.len()]),
            keys: Arc::new(keys),
            limiter: None,
            metrics_token: None,
            sessions: None,
            client_limiter: None,
            trusted_proxies: Arc::new(Vec::new()),
        }
    }

    /// The same keys, checking customers' access tokens with `sessions`.
    pub fn with_sessions(mut self, sessions: Option<SessionKeys>) -> Self {
        self.sessions = sessions;
        self
    }

    /// The same keys, each storefront client (address, and customer) allowed `per_second`
    /// requests a second (bursts of twice that; 0: no such limit), a client being named by
    /// `X-Forwarded-For` only on requests from `trusted_proxies`.
    pub fn with_client_limit(mut self, per_second: u32, trusted_proxies: Vec<IpAddr>) -> Self {
        self.client_limiter = std::num::NonZeroU32::new(per_second).map(|rate| {
            let burst = rate.saturating_mul(std::num::NonZeroU32::MIN.saturating_add(1));
            Arc::new(governor::RateLimiter::keyed(
                governor::Quota::per_second(rate).allow_burst(burst),
            ))
        });
        self.trusted_proxies = Arc::new(trusted_proxies);
        self
    }

    /// The shopper behind a storefront request: its client, and its session's customer
    /// (401 for a session token that is not good).
    fn shopper(&self, request: &Request) -> Result<Shopper, ApiError> {
        let client = self.client_address(request);
        let Some(authorization) = request.headers().get(axum::http::header::AUTHORIZATION) else {
            return Ok(Shopper {
                client,
                customer: None,
            });
        };
        let token = authorization
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "Authorization must be `Bearer <access token>` from POST /sessions".to_string(),
                )
            })?;
        let sessions = self.sessions.as_ref().ok_or_else(|| {
            ApiError::Unauthorized(crate::session::SessionRefused::NotConfigured.to_string())
        })?;
        let customer = sessions
            .verify(token)
            .map_err(|refused| ApiError::Unauthorized(refused.to_string()))?;
        Ok(Shopper {
            client,
            customer: Some(customer),
        })
    }

    /// The connection's peer address, or, when that peer is a trusted proxy, the last entry
    /// of the `X-Forwarded-For` it sent (the one it added itself).
    fn client_address(&self, request: &Request) -> IpAddr {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |info| info.0.ip());
        if !self.trusted_proxies.contains(&peer) {
            return peer;
        }
        request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.rsplit(',').next())
            .and_then(|last| last.trim().parse().ok())
            .unwrap_or(peer)
    }

    /// `Err` 429 when the shopper's client or customer is over their rate; their key's
    /// budget is not touched by what they are refused.
    fn admit_shopper(&self, shopper: &Shopper) -> Result<(), ApiError> {
        let Some(limiter) = &self.client_limiter else {
            return Ok(());
        };
        if limiter.len() > MAX_TRACKED_CLIENTS {
            // Forget the clients whose budget is full again, so a spray of addresses or
            // customers cannot grow the table without end.
            limiter.retain_recent();
        }
        let mut keys = vec![ClientKey::Address(shopper.client)];
        keys.extend(shopper.customer.clone().map(ClientKey::Customer));
        for key in keys {
            limiter.check_key(&key).map_err(|not_until| {
                let wait = not_until.wait_time_from(governor::clock::Clock::now(
                    &governor::clock::DefaultClock::default(),
                ));
                ApiError::RateLimited(wait.as_secs().max(1))
            })?;
        }
        Ok(())
    }

    /// The same keys, and `token` as a bearer token (`Authorization: Bearer <token>`) that
    /// opens `GET /metrics` only, as Prometheus scrapes.
    pub fn with_metrics_token(mut self, token: Option<Secret>) -> Self {
        self.metrics_token = token.map(Arc::new);
        self
    }

    /// Whether `Authorization: <header>` is the metrics token as a bearer token.
    fn is_metrics_token(&self, header: &[u8]) -> bool {
        let (Some(token), Some(presented)) = (&self.metrics_token, header.strip_prefix(b"Bearer "))
        else {
            return false;
        };
        !presented.is_empty() && bool::from(token.expose().as_bytes().ct_eq(presented))
    }

    /// The same keys, plus `storefront`: client keys (rate-limited like the others) with
    /// the [`Scope::Storefront`] scope. One that is already an admin key stays admin.
    pub fn with_storefront_keys(mut self, storefront: Vec<Secret>) -> Self {
        let mut keys = self.keys.as_ref().clone();
        let mut scopes = self.scopes.as_ref().clone();
        for key in storefront {
            if !self.accepts(key.expose().as_bytes()) {
                keys.insert(self.client_keys, key);
                scopes.insert(self.client_keys, Scope::Storefront);
                self.client_keys += 1;
            }
        }
        self.keys = Arc::new(keys);
        self.scopes = Arc::new(scopes);
        self
    }

    /// The same keys, plus `peer`: the key the services send each other, accepted and never
    /// rate-limited, so a client flooding a service cannot make it refuse another service's
    /// check (a payment's verification, a reservation). Nothing if it is already a client
    /// key (then calls between services share that key's rate).
    pub fn with_peer_key(mut self, peer: Secret) -> Self {
        if !self.accepts(peer.expose().as_bytes()) {
            let mut keys = self.keys.as_ref().clone();
            let mut scopes = self.scopes.as_ref().clone();
            keys.push(peer);
            scopes.push(Scope::Admin);
            self.keys = Arc::new(keys);
            self.scopes = Arc::new(scopes);
        }
        self
    }

    /// The same keys, each allowed `per_second` requests a second (bursts of twice that);
    /// 0 turns the limit off.
    pub fn with_rate_limit(mut self, per_second: u32) -> Self {
        self.limiter = std::num::NonZeroU32::new(per_second).map(|rate| {
            let burst = rate.saturating_mul(std::num::NonZeroU32::MIN.saturating_add(1));
            Arc::new(governor::RateLimiter::keyed(
                governor::Quota::per_second(rate).allow_burst(burst),
            ))
        });
        self
    }

    /// Which key `candidate` is, if any. Every key is compared in constant time and all are
    /// compared, so timing tells nothing about which key nearly matched.
    pub fn matching(&self, candidate: &[u8]) -> Option<usize> {
        if candidate.is_empty() {
            return None;
        }
        self.keys
            .iter()
            .enumerate()
            .fold(None, |found, (index, key)| {
                let equal: bool = key.expose().as_bytes().ct_eq(candidate).into();
                if equal { Some(index) } else { found }
            })
    }

    /// True when `candidate` is one of the keys.
    pub fn accepts(&self, candidate: &[u8]) -> bool {
        self.matching(candidate).is_some()
    }

    /// `Err` with the seconds to wait when key `index` is over its rate.
    fn admit(&self, index: usize) -> Result<(), ApiError> {
        let Some(limiter) = self.limiter.as_ref().filter(|_| index < self.client_keys) else {
            return Ok(());
        };
        limiter.check_key(&index).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            ApiError::RateLimited(wait.as_secs().max(1))
        })
    }
}

/// Middleware: answers 401 unless the request carries an accepted `X-API-Key`, and 429 with
/// `Retry-After` when that key is over its rate; else passes the key's [`Scope`] on in the
/// request's extensions.
pub async fn require_api_key(
    State(keys): State<ApiKeys>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = request
        .headers()
        .get(API_KEY_HEADER)
        .map(|value| value.as_bytes());
    let Some(presented) = presented else {
        let bearer = request
            .headers()
            .get(axum::http::header::AUTHORIZATION)
            .is_some_and(|value| keys.is_metrics_token(value.as_bytes()));
        if bearer && request.uri().path() == METRICS_PATH {
            request.extensions_mut().insert(Scope::Metrics);
            return Ok(next.run(request).await);
        }
        return Err(ApiError::Unauthorized(if bearer {
            "the metrics token opens GET /metrics only".to_string()
        } else {
            "missing X-API-Key header".to_string()
        }));
    };
    let Some(index) = keys.matching(presented) else {
        return Err(ApiError::Unauthorized("invalid API key".to_string()));
    };
    let scope = keys.scopes[index];
    if scope == Scope::Storefront {
        let shopper = keys.shopper(&request)?;
        keys.admit_shopper(&shopper)?;
        request.extensions_mut().insert(shopper);
    }
    keys.admit(index)?;
    request.extensions_mut().insert(scope);
    Ok(next.run(request).await)
}

/// Middleware behind [`require_api_key`]: 401 for a storefront request without a
/// customer's session (the admin passes).
async fn require_customer(request: Request, next: Next) -> Result<Response, ApiError> {
    match request.extensions().get::<Scope>() {
        Some(Scope::Storefront)
            if request
                .extensions()
                .get::<Shopper>()
                .is_none_or(|s| s.customer.is_none()) =>
        {
            Err(ApiError::Unauthorized(
                "sign in first: this route needs a customer's session \
                 (Authorization: Bearer <access token> from POST /sessions)"
                    .to_string(),
            ))
        }
        _ => Ok(next.run(request).await),
    }
}

/// Marks routes as a customer's: a storefront key needs a customer's session on them (else
/// 401), and the handler shows that customer only what is theirs; the admin sees all.
/// Their operations say `x-scope: customer` in the document.
pub fn customer<S>(
    (schemas, mut paths, method_router): utoipa_axum::router::UtoipaMethodRouter<S>,
) -> utoipa_axum::router::UtoipaMethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    for operation in operations(&mut paths) {
        mark(operation, Scope::Customer);
    }
    (
        schemas,
        paths,
        method_router.route_layer(axum::middleware::from_fn(require_customer)),
    )
}

/// Middleware behind [`require_api_key`]: 403 `forbidden` unless the key is an admin key
/// (or, on `GET /metrics`, the metrics token; [`require_api_key`] lets it in nowhere else).
async fn require_admin(request: Request, next: Next) -> Result<Response, ApiError> {
    match request.extensions().get::<Scope>() {
        Some(Scope::Admin | Scope::Metrics) => Ok(next.run(request).await),
        _ => Err(ApiError::Forbidden(
            "this key is a storefront key; this route needs the admin key".to_string(),
        )),
    }
}

/// The OpenAPI extension that names the scope a route needs.
pub const SCOPE_EXTENSION: &str = "x-scope";

/// Marks routes as admin-only: a storefront key gets 403 on them, and their operations say
/// `x-scope: admin` (and so in words) in the document. The one place a route's scope is
/// set; routes not wrapped are open to every key (see [`mark_storefront_routes`]).
pub fn admin<S>(
    (schemas, mut paths, method_router): utoipa_axum::router::UtoipaMethodRouter<S>,
) -> utoipa_axum::router::UtoipaMethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    for operation in operations(&mut paths) {
        mark(operation, Scope::Admin);
    }
    (
        schemas,
        paths,
        method_router.route_layer(axum::middleware::from_fn(require_admin)),
    )
}

/// Marks every key-protected operation not already marked admin as open to storefront keys.
pub fn mark_storefront_routes(paths: &mut utoipa::openapi::Paths) {
    for operation in operations(paths) {
        let marked = operation
            .extensions
            .as_ref()
            .is_some_and(|e| e.contains_key(SCOPE_EXTENSION));
        if !marked {
            mark(operation, Scope::Storefront);
        }
    }
}

fn mark(operation: &mut utoipa::openapi::path::Operation, scope: Scope) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    if scope == Scope::Admin {
        let forbidden = ResponseBuilder::new()
            .description("A storefront key: this route needs the admin key")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build();
        operation
            .responses
            .responses
            .insert("403".to_string(), forbidden.into());
    }
    if scope == Scope::Customer {
        // Either the admin key alone, or the storefront key and a customer's session.
        use utoipa::openapi::security::SecurityRequirement;
        let no_scopes: [&str; 0] = [];
        operation.security.get_or_insert_with(Vec::new).push(
            SecurityRequirement::new("api_key", no_scopes)
                .add(crate::openapi::SESSION_SCHEME, no_scopes),
        );
    }
    operation
        .extensions
        .get_or_insert_with(Default::default)
        .insert(SCOPE_EXTENSION.to_string(), scope.name().into());
    let words = match scope {
        Scope::Admin => "Scope: admin key only (a storefront key gets 403).",
        Scope::Storefront => {
            "Scope: any key, storefront or admin (a shopper sees only what is theirs)."
        }
        Scope::Customer => {
            "Scope: the admin key, or the storefront key with a customer's session \
             (Authorization: Bearer); a customer sees only their own."
        }
        Scope::Metrics => "Scope: the admin key, or the metrics token as a bearer token.",
    };
    let description = operation.description.get_or_insert_with(String::new);
    if !description.is_empty() {
        description.push_str("\n\n");
    }
    description.push_str(words);
}

fn operations(
    paths: &mut utoipa::openapi::Paths,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    paths.paths.values_mut().flat_map(|item| {
        [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .filter_map(Option::as_mut)
    })
}

// Built here rather than in `config`, so that the flags know nothing of the key policy
// and `auth` depends on `config`, not the other way round.
impl crate::config::CommonArgs {
    /// The accepted keys with the configured rate limit, or a clear error when none was given.
    pub fn key_policy(&self) -> Result<ApiKeys, crate::config::ConfigError> {
        let admin = self.api_keys()?;
        let storefront = crate::config::split_keys(self.storefront_key.as_ref());
        if storefront.iter().any(|k| admin.contains(k)) {
            return Err(crate::config::ConfigError(
                "a --storefront-key is also an --api-key: give the storefront its own key"
                    .to_string(),
            ));
        }
        Ok(ApiKeys::new(admin)
            .with_rate_limit(self.rate_limit)
            .with_sessions(self.session_keys())
            .with_client_limit(self.client_rate_limit, self.trusted_proxies.clone())
            .with_peer_key(self.peer_api_key()?)
            .with_storefront_keys(storefront)
            .with_metrics_token(
                self.metrics_token
                    .clone()
                    .filter(|token| !token.expose().trim().is_empty()),
            ))
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

#[cfg(test)]
mod scope_tests {
    use super::*;

    #[test]
    fn storefront_keys_are_rate_limited_clients_and_an_admin_key_stays_admin() {
        let keys = ApiKeys::new(vec![Secret::new("admin")])
            .with_rate_limit(5)
            .with_peer_key(Secret::new("peer"))
            .with_storefront_keys(vec![Secret::new("shop"), Secret::new("admin")]);
        let scope_of = |k: &[u8]| keys.scopes[keys.matching(k).unwrap()];
        assert_eq!(scope_of(b"admin"), Scope::Admin);
        assert_eq!(scope_of(b"shop"), Scope::Storefront);
        assert_eq!(scope_of(b"peer"), Scope::Admin, "the services' key");
        assert_eq!(keys.keys.len(), 3);
        let shop = keys.matching(b"shop").unwrap();
        assert_eq!((0..30).filter(|_| keys.admit(shop).is_ok()).count(), 10);
        let peer = keys.matching(b"peer").unwrap();
        assert!(
            (0..100).all(|_| keys.admit(peer).is_ok()),
            "peer never limited"
        );
    }
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    #[test]
    fn the_services_own_key_is_accepted_and_never_rate_limited() {
        let keys = ApiKeys::new(vec![Secret::new("client")])
            .with_rate_limit(5)
            .with_peer_key(Secret::new("peer"));
        let peer = keys.matching(b"peer").expect("the peer key is accepted");
        assert!((0..100).all(|_| keys.admit(peer).is_ok()), "never limited");
        let client = keys.matching(b"client").unwrap();
        assert_eq!((0..100).filter(|_| keys.admit(client).is_ok()).count(), 10);
        let same = ApiKeys::new(vec![Secret::new("k")]).with_peer_key(Secret::new("k"));
        assert_eq!(
            same.keys.len(),
            1,
            "a peer key that is a client key adds nothing"
        );
    }

    #[test]
    fn a_key_over_its_rate_is_told_when_to_retry_and_other_keys_are_not_affected() {
        let keys = ApiKeys::new(vec![Secret::new("a"), Secret::new("b")]).with_rate_limit(5);
        let a = keys.matching(b"a").unwrap();
        let admitted = (0..30).filter(|_| keys.admit(a).is_ok()).count();
        assert_eq!(admitted, 10, "a burst of twice the rate, then no more");
        assert!(matches!(keys.admit(a), Err(ApiError::RateLimited(s)) if s >= 1));
        assert!(keys.admit(keys.matching(b"b").unwrap()).is_ok());
        let unlimited = ApiKeys::new(vec![Secret::new("a")]).with_rate_limit(0);
        assert!((0..1000).all(|_| unlimited.admit(0).is_ok()));
    }
}
