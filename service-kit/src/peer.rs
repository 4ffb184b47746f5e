//! Calls from one service to another: a blocking ureq agent with a hard timeout, run on the
//! blocking thread pool so a slow peer never stalls the async workers.

use crate::config::Secret;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;

/// A peer did not give a usable answer. Callers decide whether that fails the request or
/// lets it through (fail-open).
#[derive(Debug, Clone, thiserror::Error)]
pub enum PeerError {
    /// The connection was refused or could not be made: the request certainly never
    /// reached the peer, so it had no effect there.
    #[error("{peer} unreachable (nothing sent): {detail}")]
    NotSent {
        /// Which peer.
        peer: &'static str,
        /// What happened.
        detail: String,
    },
    /// A timeout or a broken transfer: the peer may or may not have acted on the request.
    #[error("{peer} unreachable: {detail}")]
    Unreachable {
        /// Which peer.
        peer: &'static str,
        /// What happened.
        detail: String,
    },
    /// The peer answered with a status the caller does not handle (5xx, a redirect, ...).
    #[error("{peer} answered HTTP {status}")]
    Status {
        /// Which peer.
        peer: &'static str,
        /// The status code.
        status: u16,
    },
    /// The peer answered 2xx with a body that is not what its API promises.
    #[error("{peer} answered with an unreadable body: {detail}")]
    Garbage {
        /// Which peer.
        peer: &'static str,
        /// The decode error.
        detail: String,
    },
}

/// A peer's answer: its status and raw body.
#[derive(Debug, Clone)]
pub struct PeerResponse {
    /// HTTP status code.
    pub status: u16,
    /// The body, at most [`MAX_PEER_BODY`] bytes.
    pub body: Vec<u8>,
}

impl PeerResponse {
    /// True for a 2xx answer.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The `error.code` and `error.message` of an error answer in the shop's shape, or the
    /// status as text when the body is something else.
    pub fn error(&self) -> (String, String) {
        let body: serde_json::Value = serde_json::from_slice(&self.body).unwrap_or_default();
        let text = |field: &str| body["error"][field].as_str().map(str::to_string);
        (
            text("code").unwrap_or_else(|| format!("http_{}", self.status)),
            text("message").unwrap_or_else(|| format!("answered HTTP {}", self.status)),
        )
    }
}

/// What became of a request that asks a peer to change something. Only `Refused` means
/// the peer certainly did nothing; after `Unknown` the caller must find out (ask by the
/// operation's key) before undoing anything.
///
/// `R` is the refusal: the transport's [`Refusal`], which a call's contract turns into its
/// own enum ([`Outcome::refused_as`]), so that callers match variants, not status codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<T, R = Refusal> {
    /// The peer did it and answered with this.
    Done(T),
    /// The peer did not do it: it refused (a 4xx with its reason), or the request never
    /// reached it.
    Refused(R),
    /// The peer may or may not have done it: the request went out and no usable answer came
    /// back (a timeout, a broken connection, a 5xx, an unreadable success).
    Unknown(String),
}

impl<T, R: std::fmt::Display> Outcome<T, R> {
    /// Why it was not certainly done (the refusal's or the unknown's reason); `None` when
    /// it was done.
    pub fn not_done(&self) -> Option<String> {
        match self {
            Outcome::Done(_) => None,
            Outcome::Refused(refusal) => Some(refusal.to_string()),
            Outcome::Unknown(why) => Some(why.clone()),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl<T> Outcome<T, Refusal> {
    /// The same outcome with its refusal read as the call's own refusal type.
    pub fn refused_as<R: From<Refusal>>(self) -> Outcome<T, R> {
        match self {
            Outcome::Done(value) => Outcome::Done(value),
            Outcome::Refused(refusal) => Outcome::Refused(R::from(refusal)),
            Outcome::Unknown(why) => Outcome::Unknown(why),
        }
    }
}

/// Why a peer did not act, as the wire said it. Read only by the table of a call's contract
/// (`shop_contracts`), which turns it into the call's refusal enum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The peer's HTTP status; `None` when the request never reached it.
    status: Option<u16>,
    /// The peer's `error.code` (`unavailable` when nothing was sent).
    pub code: String,
    /// The peer's `error.message`, or why nothing was sent.
    pub message: String,
}

impl Refusal {
    fn not_sent(err: &PeerError) -> Refusal {
        Refusal {
            status: None,
            code: "unavailable".to_string(),
            message: err.to_string(),
        }
    }

    /// A refusal the peer answered with `status` (4xx), `code` and `message`.
    pub fn answered(status: u16, code: &str, message: &str) -> Refusal {
        Refusal {
            status: Some(status),
            code: code.to_string(),
            message: message.to_string(),
        }
    }

    /// The peer's status, `None` when nothing was sent: for a contract's refusal table.
    pub fn status(&self) -> Option<u16> {
        self.status
    }
}

/// The size of each of a peer connection's two buffers.
const PEER_BUFFER_BYTES: usize = 16 * 1024;

/// The largest peer answer read; anything longer is treated as garbage.
pub const MAX_PEER_BODY: u64 = 4 * 1024 * 1024;

/// A client for one peer service (base URL plus the API key to present). Cheap to clone:
/// clones share one connection pool, behind one shared count (each call clones it).
#[derive(Debug, Clone)]
pub struct PeerClient {
    inner: Arc<PeerInner>,
}

#[derive(Debug)]
struct PeerInner {
    name: &'static str,
    agent: ureq::Agent,
    base_url: String,
    api_key: Secret,
}

impl PeerClient {
    /// A client for the peer called `name` at `base_url`, giving up on any call after
    /// `timeout`. Redirects are not followed: a peer that redirects is misbehaving.
    pub fn new(name: &'static str, base_url: &str, api_key: Secret, timeout: Duration) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            // Every concurrent request may be calling the same peer: keep that many
            // connections alive instead of opening a new one per call.
            .max_idle_connections(256)
            .max_idle_connections_per_host(128)
            // Each kept connection keeps its buffers: ureq's 128 KiB each way made a
            // service's idle peer connections cost tens of MiB. Peers' answers and our
            // requests are a few KiB; the input buffer grows for a longer head.
            .input_buffer_size(PEER_BUFFER_BYTES)
            .output_buffer_size(PEER_BUFFER_BYTES)
            .build()
            .into();
        let inner = PeerInner {
            name,
            agent,
            base_url: base_url.trim_end_matches('/').into(),
            api_key,
        };
        PeerClient {
            inner: Arc::new(inner),
        }
    }

    /// The peer's name, for log lines.
    pub fn name(&self) -> &'static str {
        self.inner.name
    }

    /// `GET path` and decode a 2xx JSON body; `Ok(None)` when the peer says 404.
    pub async fn get_json<T>(&self, path: String) -> Result<Option<T>, PeerError>
    where
        T: DeserializeOwned + Send + 'static,
    {
        let response = self.send("GET", path, None, Vec::new()).await?;
        match response.status {
            404 => Ok(None),
            200..=299 => self.decode(&response.body).map(Some),
            status => Err(PeerError::Status {
                peer: self.inner.name,
                status,
            }),
        }
    }

    fn encode<B: Serialize>(&self, body: &B) -> Result<Vec<u8>, PeerError> {
        serde_json::to_vec(body).map_err(|e| PeerError::Garbage {
            peer: self.inner.name,
            detail: e.to_string(),
        })
    }

    /// `POST path` with a JSON body and extra headers (an idempotency key): what became of
    /// it, with the peer's answer decoded as `T` when it acted.
    pub async fn post<B, T>(
        &self,
        path: String,
        body: &B,
        headers: Vec<(&'static str, String)>,
    ) -> Outcome<T>
    where
        B: Serialize,
        T: DeserializeOwned,
    {
        match self.encode(body) {
            Ok(bytes) => self.outcome(self.send("POST", path, Some(bytes), headers).await),
            Err(err) => Outcome::Refused(Refusal::not_sent(&err)),
        }
    }

    /// `PUT path` with a JSON body: what became of it, as for [`PeerClient::post`].
    pub async fn put<B, T>(&self, path: String, body: &B) -> Outcome<T>
    where
        B: Serialize,
        T: DeserializeOwned,
    {
        match self.encode(body) {
            Ok(bytes) => self.outcome(self.send("PUT", path, Some(bytes), Vec::new()).await),
            Err(err) => Outcome::Refused(Refusal::not_sent(&err)),
        }
    }

    /// Sorts a peer's answer to a request that changes something into the three outcomes.
    fn outcome<T: DeserializeOwned>(&self, sent: Result<PeerResponse, PeerError>) -> Outcome<T> {
        match sent {
            Err(err @ PeerError::NotSent { .. }) => Outcome::Refused(Refusal::not_sent(&err)),
            Err(err) => Outcome::Unknown(err.to_string()),
            Ok(answer) if answer.is_success() => match self.decode(&answer.body) {
                Ok(value) => Outcome::Done(value),
                // It answered success, so it acted; what it did cannot be read.
                Err(err) => Outcome::Unknown(err.to_string()),
            },
            Ok(answer) if (400..500).contains(&answer.status) => {
                let (code, message) = answer.error();
                if code == crate::error::IN_FLIGHT_CODE {
                    // Our earlier request under this key is still running there: it may
                    // yet act, so this is no refusal.
                    return Outcome::Unknown(format!("{}: {message}", self.inner.name));
                }
                Outcome::Refused(Refusal {
                    status: Some(answer.status),
                    code,
                    message,
                })
            }
            // A 5xx may come after the work was done (or from something in between).
            Ok(answer) => Outcome::Unknown(format!(
                "{} answered HTTP {}: {}",
                self.inner.name,
                answer.status,
                answer.error().1
            )),
        }
    }

    /// `POST path` with a body given as bytes (JSON or empty) and extra headers.
    pub async fn post_raw(
        &self,
        path: String,
        body: Vec<u8>,
        headers: Vec<(&'static str, String)>,
    ) -> Result<PeerResponse, PeerError> {
        self.send("POST", path, Some(body), headers).await
    }

    /// Decodes a JSON body from this peer, naming the peer in the error.
    fn decode<T: DeserializeOwned>(&self, body: &[u8]) -> Result<T, PeerError> {
        serde_json::from_slice(body).map_err(|e| PeerError::Garbage {
            peer: self.inner.name,
            detail: e.to_string(),
        })
    }

    async fn send(
        &self,
        method: &'static str,
        path: String,
        body: Option<Vec<u8>>,
        headers: Vec<(&'static str, String)>,
    ) -> Result<PeerResponse, PeerError> {
        let client = self.clone();
        let name = self.inner.name;
        crate::context::spawn_blocking(move || client.send_blocking(method, &path, body, &headers))
            .await
            .map_err(|e| PeerError::Unreachable {
                peer: name,
                detail: e.to_string(),
            })?
    }

    fn send_blocking(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&'static str, String)],
    ) -> Result<PeerResponse, PeerError> {
        let url = format!("{}{}", self.inner.base_url, path);
        let key = self.inner.api_key.expose();
        // The journey's id goes with every call (the caller's, carried here by
        // `http::spawn_blocking`), unless the caller named one.
        let journey = crate::context::correlation_id()
            .filter(|_| {
                !headers
                    .iter()
                    .any(|(name, _)| *name == crate::http::REQUEST_ID_HEADER)
            })
            .map(|id| (crate::http::REQUEST_ID_HEADER, id));
        let headers: Vec<_> = headers.iter().cloned().chain(journey).collect();
        let headers = &headers[..];
        let unreachable = |e: ureq::Error| {
            let never_connected = matches!(
                &e,
                ureq::Error::ConnectionFailed | ureq::Error::HostNotFound
            ) || matches!(&e, ureq::Error::Io(io) if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::AddrNotAvailable
            ));
            if never_connected {
                PeerError::NotSent {
                    peer: self.inner.name,
                    detail: e.to_string(),
                }
            } else {
                PeerError::Unreachable {
                    peer: self.inner.name,
                    detail: e.to_string(),
                }
            }
        };
        let result = match (method, body) {
            (method @ ("POST" | "PUT"), Some(bytes)) => {
                let request = if method == "PUT" {
                    self.inner.agent.put(&url)
                } else {
                    self.inner.agent.post(&url)
                };
                let mut request = request
                    .header("X-API-Key", key)
                    .header("Content-Type", "application/json");
                for (name, value) in headers {
                    request = request.header(*name, value);
                }
                request.send(&bytes[..])
            }
            _ => {
                let mut request = self.inner.agent.get(&url).header("X-API-Key", key);
                for (name, value) in headers {
                    request = request.header(*name, value);
                }
                request.call()
            }
        };
        let mut response = result.map_err(unreachable)?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_PEER_BODY)
            .read_to_vec()
            .map_err(unreachable)?;
        Ok(PeerResponse { status, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::http::StatusCode;
    use axum::routing::post;
    use serde_json::{Value, json};

    /// A peer on a loopback port answering each path its own way.
    async fn peer() -> PeerClient {
        let app = Router::new()
            .route("/done", post(|| async { axum::Json(json!({"id": 7})) }))
            .route("/garbage", post(|| async { "<html>" }))
            .route(
                "/refuse",
                post(|| async {
                    let body = json!({"error": {"code": "conflict", "message": "out of stock"}});
                    (StatusCode::CONFLICT, axum::Json(body))
                }),
            )
            .route("/fail", post(|| async { StatusCode::BAD_GATEWAY }))
            .route(
                "/in-flight",
                post(|| async {
                    let body = json!({"error": {"code": crate::idempotency::IN_FLIGHT_CODE, "message": "still running"}});
                    (StatusCode::CONFLICT, axum::Json(body))
                }),
            )
            .route(
                "/slow",
                post(|| async {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    "late"
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        PeerClient::new("peer", &url, Secret::new("k"), Duration::from_millis(300))
    }

    async fn outcome(peer: &PeerClient, path: &str) -> Outcome<Value> {
        peer.post(path.to_string(), &json!({}), Vec::new()).await
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn answers_sort_into_done_refused_and_unknown() {
        let peer = peer().await;
        assert_eq!(
            outcome(&peer, "/done").await,
            Outcome::Done(json!({"id": 7}))
        );
        let refused = Outcome::Refused(Refusal {
            status: Some(409),
            code: "conflict".into(),
            message: "out of stock".into(),
        });
        assert_eq!(outcome(&peer, "/refuse").await, refused);
        // 404 from the router (no such route) is a refusal too: nothing was done.
        match outcome(&peer, "/nowhere").await {
            Outcome::Refused(r) => assert_eq!(r.status(), Some(404), "{r:?}"),
            other => panic!("{other:?}"),
        }
        // A key still in flight there is not a no: that first request may yet act.
        for maybe_acted in ["/garbage", "/fail", "/slow", "/in-flight"] {
            let got = outcome(&peer, maybe_acted).await;
            assert!(matches!(got, Outcome::Unknown(_)), "{maybe_acted}: {got:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_peer_that_is_down_refuses_since_nothing_was_sent() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let peer = PeerClient::new("peer", &url, Secret::new("k"), Duration::from_millis(300));
        match outcome(&peer, "/done").await {
            Outcome::Refused(r) => {
                assert_eq!(r.status, None);
                assert_eq!(r.code, "unavailable");
            }
            other => panic!("{other:?}"),
        }
    }
}
