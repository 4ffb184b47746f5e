//! The flags every binary shares, and [`Secret`], a string that never prints itself.

use clap::Args;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// A secret value (API key, webhook secret). `Debug` and `Display` print `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for comparing or sending; never for logging.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

/// Flags shared by all four services, flattened into each one's config.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Address to listen on. Loopback by default: the demo key is not meant for a network.
    #[arg(long, env = "BIND_ADDR", default_value = "127.0.0.1")]
    pub bind: IpAddr,

    /// API key(s) clients must send in `X-API-Key`. A comma-separated list accepts several,
    /// so a key can be rotated without downtime. Required: there is no built-in key.
    #[arg(long = "api-key", env = "API_KEY", hide_env_values = true)]
    pub api_key: Option<Secret>,

    /// Storefront key(s): accepted like `--api-key` but only on the routes a shop's front end
    /// needs (browse the catalog, carts, checkout, pay, read orders and payments); admin
    /// routes answer 403. Comma-separated for several.
    #[arg(
        long = "storefront-key",
        env = "STOREFRONT_KEY",
        hide_env_values = true
    )]
    pub storefront_key: Option<Secret>,

    /// A bearer token (`Authorization: Bearer <token>`) that opens `GET /metrics` and
    /// nothing else, for a Prometheus scraper; the admin key opens it too.
    #[arg(long = "metrics-token", env = "METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<Secret>,

    /// The key the services send each other in `X-API-Key`. Set (the same on all four, as
    /// scripts/start-all.sh does), it is accepted too and never rate-limited, so a client
    /// flooding a service cannot make it refuse another service's check. Defaults to the
    /// first of `--api-key` (then calls between services share that key's rate limit).
    #[arg(long = "peer-api-key", env = "PEER_API_KEY", hide_env_values = true)]
    pub peer_api_key: Option<Secret>,

    /// Timeout for each call to another service, in milliseconds.
    #[arg(long, env = "PEER_TIMEOUT_MS", default_value_t = 1000)]
    pub peer_timeout_ms: u64,

    /// Browser origins allowed to call this service (CORS), comma-separated. The default is
    /// the dashboard as scripts/start-all.sh serves it.
    #[arg(
        long = "cors-origin",
        env = "CORS_ORIGINS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8080,http://localhost:8080"
    )]
    pub cors_origins: Vec<String>,

    /// Requests per second each API key may make (bursts of twice that); 429 with
    /// `Retry-After` beyond it. 0 turns the limit off (benchmarks do). Services calling each
    /// other use their key too, so this is a guard against runaway clients, not a quota.
    #[arg(long, env = "RATE_LIMIT", default_value_t = 2000)]
    pub rate_limit: u32,

    /// Requests per second one storefront client may make (bursts of twice that), counted
    /// per client address and per signed-in customer besides the key's own limit, so one
    /// flooding browser slows only itself. 0 turns it off.
    #[arg(long, env = "CLIENT_RATE_LIMIT", default_value_t = 50)]
    pub client_rate_limit: u32,

    /// Proxies (comma-separated addresses) whose `X-Forwarded-For` names the client: for a
    /// request from one of them, the client is the last address that header lists (the one
    /// the proxy added). From anyone else the header is ignored and the client is the
    /// connection's peer address.
    #[arg(long = "trusted-proxy", env = "TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpAddr>,

    /// The shop's currency, an ISO 4217 code (the same on all four): every amount is in it,
    /// and orders, payments, refunds, stats and exports say so beside their amounts.
    #[arg(long = "currency", env = "SHOP_CURRENCY", default_value = crate::money::DEFAULT_CURRENCY)]
    pub currency: String,

    /// Secret(s) customer sessions and guests' order tokens are signed with,
    /// comma-separated: the first signs, all are accepted, so a secret is rotated by putting
    /// a new one first and dropping the old one after the longest session (15 minutes).
    /// The same on all four services. Unset: no customer can sign in.
    #[arg(
        long = "session-secret",
        env = "SESSION_SECRET",
        hide_env_values = true
    )]
    pub session_secret: Option<Secret>,

    /// A request's head (request line and headers) must arrive within this many
    /// milliseconds of the connection opening, or of a keep-alive request's first byte;
    /// else the connection is closed.
    #[arg(long, env = "HEADER_TIMEOUT_MS", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub header_timeout_ms: u64,

    /// A keep-alive connection with no request for this many milliseconds is closed. Longer
    /// than the services' own clients keep idle connections (15 s), so a peer never sends
    /// on a connection this side is closing.
    #[arg(long, env = "IDLE_TIMEOUT_MS", default_value_t = 60_000,
          value_parser = clap::value_parser!(u64).range(1..=86_400_000))]
    pub idle_timeout_ms: u64,

    /// Open connections allowed at once (lowered to the open-file limit less a reserve);
    /// past it, the connection that has waited longest without a request in flight is
    /// closed to make room, so a flood of idle clients cannot lock others out.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,
}

/// The default cap on open connections. A half-open connection costs a service about
/// 18 KiB (an idle keep-alive one about 10 KiB; `scripts/bench.sh connections`), so 6,000
/// of them stay about 105 MiB above idle: under the 128 MiB a service is meant to use.
pub const DEFAULT_MAX_CONNECTIONS: u64 = 6000;

/// The shared webhook secret(s), flattened into payment-service (signs) and order-service
/// (verifies).
#[derive(Debug, Clone, Args)]
pub struct WebhookArgs {
    /// Secret(s) for signing payment webhooks, `whsec_<base64>` or plain text. A
    /// comma-separated list rotates: all are used to sign, any is accepted. Required.
    #[arg(
        long = "webhook-secret",
        env = "WEBHOOK_SECRET",
        hide_env_values = true
    )]
    pub webhook_secret: Option<Secret>,
}

impl WebhookArgs {
    /// The secrets, or a clear error when none (or an unusable one) was given.
    pub fn secrets(&self) -> Result<Vec<crate::webhook::WebhookSecret>, ConfigError> {
        let raw = self.webhook_secret.as_ref().ok_or_else(|| {
            ConfigError(
                "no webhook secret configured: pass --webhook-secret SECRET or set \
                 WEBHOOK_SECRET (scripts/start-all.sh generates one)"
                    .to_string(),
            )
        })?;
        crate::webhook::parse_secrets(raw.expose())
            .map_err(|e| ConfigError(format!("--webhook-secret: {e}")))
    }
}

/// The keys of a comma-separated list, trimmed, empty ones dropped.
pub(crate) fn split_keys(raw: Option<&Secret>) -> Vec<Secret> {
    raw.map(|raw| {
        raw.expose()
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(Secret::new)
            .collect()
    })
    .unwrap_or_default()
}

/// The configuration is unusable; the message says how to fix it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub(crate) String);

impl CommonArgs {
    /// The accepted API keys, or a clear error when none was given.
    pub fn api_keys(&self) -> Result<Vec<Secret>, ConfigError> {
        let keys = split_keys(self.api_key.as_ref());
        if keys.is_empty() {
            return Err(ConfigError(
                "no API key configured: pass --api-key KEY or set API_KEY \
                 (scripts/start-all.sh uses the demo key secret-key-123)"
                    .to_string(),
            ));
        }
        Ok(keys)
    }

    /// The key sent to peers: `--peer-api-key`, else the first accepted key.
    pub fn peer_api_key(&self) -> Result<Secret, ConfigError> {
        match self.peer_api_key.as_ref().map(|k| k.expose().trim()) {
            Some("") => Err(ConfigError(
                "--peer-api-key is empty: leave it unset to use the first --api-key".to_string(),
            )),
            Some(key) => Ok(Secret::new(key)),
            None => Ok(self.api_keys()?.swap_remove(0)),
        }
    }

    /// Sets what the whole process shares from these flags (the shop's currency); an
    /// unusable value is an error at start.
    pub fn apply_shop_settings(&self) -> Result<(), ConfigError> {
        crate::money::set_shop_currency(&self.currency).map_err(ConfigError)
    }

    /// The session secrets, if any are set.
    pub fn session_keys(&self) -> Option<crate::session::SessionKeys> {
        crate::session::SessionKeys::new(split_keys(self.session_secret.as_ref()))
    }

    /// The peer-call timeout.
    pub fn peer_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.peer_timeout_ms)
    }

    /// The connection limits as configured (before the open-file limit is applied).
    pub fn connection_limits(&self) -> crate::server::ConnectionLimits {
        crate::server::ConnectionLimits {
            header_timeout: std::time::Duration::from_millis(self.header_timeout_ms),
            idle_timeout: std::time::Duration::from_millis(self.idle_timeout_ms),
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(key: Option<&str>) -> CommonArgs {
        CommonArgs {
            bind: "127.0.0.1".parse().unwrap(),
            api_key: key.map(Secret::new),
            storefront_key: None,
            metrics_token: None,
            peer_api_key: None,
            peer_timeout_ms: 1000,
            cors_origins: Vec::new(),
            rate_limit: 0,
            client_rate_limit: 0,
            trusted_proxies: Vec::new(),
            session_secret: None,
            currency: crate::money::DEFAULT_CURRENCY.to_string(),
            header_timeout_ms: 5000,
            idle_timeout_ms: 60_000,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }

    #[test]
    fn a_missing_or_blank_key_is_refused_with_advice() {
        for key in [None, Some(""), Some(" , ,")] {
            let err = args(key).api_keys().unwrap_err().to_string();
            assert!(err.contains("--api-key"), "{err}");
        }
    }

    #[test]
    fn a_comma_separated_list_gives_several_keys() {
        let keys = args(Some("old-key, new-key")).api_keys().unwrap();
        let keys: Vec<&str> = keys.iter().map(Secret::expose).collect();
        assert_eq!(keys, ["old-key", "new-key"]);
    }

    #[test]
    fn storefront_keys_are_accepted_beside_the_admin_keys_but_never_as_one_of_them() {
        let mut config = args(Some("admin-key"));
        config.storefront_key = Some(Secret::new("shop-a, shop-b"));
        let keys = config.key_policy().unwrap();
        assert!(keys.accepts(b"shop-a") && keys.accepts(b"shop-b") && keys.accepts(b"admin-key"));
        config.storefront_key = Some(Secret::new("shop-a,admin-key"));
        let err = config.key_policy().unwrap_err().to_string();
        assert!(err.contains("--storefront-key"), "{err}");
    }

    #[test]
    fn peers_get_the_peer_key_when_set_else_the_first_accepted_key() {
        let mut config = args(Some("old-key,new-key"));
        assert_eq!(config.peer_api_key().unwrap().expose(), "old-key");
        config.peer_api_key = Some(Secret::new("service-key"));
        assert_eq!(config.peer_api_key().unwrap().expose(), "service-key");
        config.peer_api_key = Some(Secret::new(" "));
        assert!(
            config
                .peer_api_key()
                .unwrap_err()
                .to_string()
                .contains("--peer-api-key")
        );
        assert!(args(None).peer_api_key().is_err());
    }

    #[test]
    fn secrets_never_print_themselves() {
        let secret = Secret::new("secret-key-123");
        assert!(!format!("{secret:?}").contains("secret-key-123"));
        assert!(!format!("{:?}", args(Some("secret-key-123"))).contains("secret-key-123"));
    }
}
