//! The accept loop, written out so that no client can hold a service hostage: HTTP/1.1
//! connections whose request head must arrive within a deadline, idle keep-alive
//! connections closed after another, a cap on open connections that sheds the connection
//! that has waited longest without a request in flight, and graceful shutdown.
//!
//! `axum::serve` has none of these knobs (hyper's own header timeout also runs on idle
//! keep-alive connections, so the two deadlines could not differ), which is why this loop
//! drives hyper's HTTP/1 connections itself.
//!
//! Each connection is in one of three phases, kept in atomics the connection's task, its
//! socket wrapper and the accept loop all read:
//! - *awaiting a head*: accepted, or bytes of a new request arrived; the head must be
//!   complete within `header_timeout`;
//! - *busy*: a request is being served; no deadline (a checkout may take seconds), and never
//!   shed;
//! - *idle*: between keep-alive requests; closed after `idle_timeout` without a new byte.

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;
use tower::Service;

/// File descriptors kept back from the connection cap for what a service opens itself: its
/// SQLite files (a database, WAL and shared-memory file per pooled connection), connections
/// to its peers, and the few connections accepted past the cap (see [`BUSY_OVERFLOW`]).
pub const FD_RESERVE: u64 = 256;

/// Connections accepted past the cap while every open one is serving a request and none
/// can be shed, so a health probe still gets in; beyond this a new connection is closed at
/// once. A quarter of [`FD_RESERVE`], so the rest stays for the service's own files.
pub const BUSY_OVERFLOW: usize = (FD_RESERVE / 4) as usize;

/// How a service treats its clients' connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// A request head (request line and headers) must arrive within this time, counted from
    /// the accept or from the first byte of a keep-alive request.
    pub header_timeout: Duration,
    /// A keep-alive connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// At most this many open connections; past it the one that has waited longest without
    /// a request in flight is closed to make room.
    pub max_connections: usize,
}

impl ConnectionLimits {
    /// Limits as configured, with `max_connections` lowered when the process may not open
    /// that many files (keeping [`FD_RESERVE`] back).
    pub fn within_fd_limit(self, fd_limit: u64) -> ConnectionLimits {
        let room = usize::try_from(fd_limit.saturating_sub(FD_RESERVE)).unwrap_or(usize::MAX);
        ConnectionLimits {
            max_connections: self.max_connections.min(room).max(1),
            ..self
        }
    }
}

/// Raises the soft limit on open files to the hard limit and returns the limit in force.
/// Linux starts most processes at 1,024, which a few hundred idle clients and a database
/// exhaust; the hard limit is what the administrator allows.
pub fn raise_fd_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(err) => {
            let (soft, _) = rlimit::Resource::NOFILE.get().unwrap_or((1024, 1024));
            tracing::warn!(error = %err, soft, "cannot raise the open-file limit");
            soft
        }
    }
}

const AWAITING_HEAD: u8 = 0;
const BUSY: u8 = 1;
const IDLE: u8 = 2;

/// One open connection, as its task, its socket and the accept loop see it.
#[derive(Debug)]
struct Connection {
    phase: AtomicU8,
    /// When the current phase began, in milliseconds since the server started.
    since_ms: AtomicU64,
    /// Told when the accept loop sheds this connection.
    shed: Notify,
}

impl Connection {
    fn new(clock: &Clock) -> Connection {
        Connection {
            phase: AtomicU8::new(AWAITING_HEAD),
            since_ms: AtomicU64::new(clock.now_ms()),
            shed: Notify::new(),
        }
    }

    fn enter(&self, phase: u8, clock: &Clock) {
        self.since_ms.store(clock.now_ms(), Ordering::Relaxed);
        self.phase.store(phase, Ordering::Release);
    }

    /// When this connection is to be closed if nothing happens before; `None` while busy.
    fn deadline(&self, clock: &Clock, limits: &ConnectionLimits) -> Option<Instant> {
        let allowed = match self.phase.load(Ordering::Acquire) {
            AWAITING_HEAD => limits.header_timeout,
            IDLE => limits.idle_timeout,
            _ => return None,
        };
        let since = Duration::from_millis(self.since_ms.load(Ordering::Relaxed));
        Some(clock.start + since + allowed)
    }
}

/// Milliseconds since the server started, so a phase's start fits in an atomic.
#[derive(Debug, Clone, Copy)]
struct Clock {
    start: Instant,
}

impl Clock {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// Marks its connection busy while a request is served, idle again when dropped (also when
/// the request's future is dropped unfinished).
struct InFlight {
    connection: Arc<Connection>,
    clock: Clock,
}

impl InFlight {
    fn begin(connection: Arc<Connection>, clock: Clock) -> InFlight {
        connection.enter(BUSY, &clock);
        InFlight { connection, clock }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.connection.enter(IDLE, &self.clock);
    }
}

/// The client's socket, noticing the first byte of a keep-alive request so that its head,
/// from then on, has `header_timeout` to arrive.
struct WatchedStream {
    stream: TcpStream,
    connection: Arc<Connection>,
    clock: Clock,
}

impl AsyncRead for WatchedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before && self.connection.phase.load(Ordering::Acquire) == IDLE {
            self.connection.enter(AWAITING_HEAD, &self.clock);
        }
        polled
    }
}

impl AsyncWrite for WatchedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// The open connections, by id, for the accept loop to count and shed.
#[derive(Debug, Default)]
struct Registry {
    open: Mutex<HashMap<u64, Arc<Connection>>>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Connection>>> {
        // A panic while holding this lock leaves a plain map behind; keep using it.
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a connection; when that puts the count over `max`, sheds the one that has
    /// waited longest for a request head, else the longest idle one. When every other one
    /// is busy it admits up to `overflow` past `max` and refuses the newcomer beyond that.
    /// Returns how many are open and what was done.
    fn admit(
        &self,
        id: u64,
        connection: Arc<Connection>,
        max: usize,
        overflow: usize,
    ) -> (usize, Admission) {
        let mut open = self.lock();
        open.insert(id, connection);
        if open.len() <= max {
            return (open.len(), Admission::Within);
        }
        // Half-open and slow-header connections go first, then idle keep-alive ones; a
        // connection serving a request is never shed.
        let victim = open
            .iter()
            .filter(|(other, _)| **other != id)
            .filter_map(|(other, c)| {
                let rank = match c.phase.load(Ordering::Acquire) {
                    AWAITING_HEAD => 0,
                    IDLE => 1,
                    _ => return None,
                };
                Some(((rank, c.since_ms.load(Ordering::Relaxed)), *other))
            })
            .min()
            .map(|(_, other)| other);
        match victim.and_then(|other| open.remove(&other)) {
            Some(shed) => {
                shed.shed.notify_one();
                (open.len(), Admission::Shed)
            }
            None if open.len() > max.saturating_add(overflow) => {
                open.remove(&id);
                (open.len(), Admission::Refused)
            }
            None => (open.len(), Admission::Within),
        }
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }
}

/// What admitting a new connection did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admission {
    /// Room for it (at most [`BUSY_OVERFLOW`] past the cap while every other one is busy).
    Within,
    /// Room made by closing the longest-waiting connection not serving a request.
    Shed,
    /// No room: every connection is serving a request; the newcomer is closed.
    Refused,
}

/// Says, at most every few seconds, that the cap is being hit: one line per burst rather
/// than one per shed connection.
#[derive(Debug, Default)]
struct CapLog {
    last: Option<Instant>,
    shed_since: u64,
    refused_since: u64,
}

impl CapLog {
    const EVERY: Duration = Duration::from_secs(5);

    fn note(&mut self, admission: Admission, max: usize, open: usize) {
        match admission {
            Admission::Within => return,
            Admission::Shed => self.shed_since += 1,
            Admission::Refused => self.refused_since += 1,
        }
        if self.last.is_none_or(|last| last.elapsed() >= Self::EVERY) {
            tracing::warn!(
                max_connections = max,
                open,
                shed = self.shed_since,
                refused = self.refused_since,
                "connection cap reached: closing the connections that waited longest without \
                 a request in flight, or new ones while every connection is serving a request \
                 (raise --max-connections if this is real traffic)"
            );
            self.last = Some(Instant::now());
            self.shed_since = 0;
            self.refused_since = 0;
        }
    }
}

/// Serves `router` on `listener` under `limits` until `shutdown` resolves; then stops
/// accepting, lets requests in flight finish (idle connections close at once), and returns
/// when they have or after `grace`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    grace: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let clock = Clock {
        start: Instant::now(),
    };
    let registry = Arc::new(Registry::default());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    // The deadlines above replace hyper's header timeout, which would also cut idle
    // keep-alive connections at the header deadline.
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true);
    let mut cap_log = CapLog::default();
    let mut next_id = 0u64;
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    accept_failed(&err).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small JSON answers: send them now rather than wait for more to coalesce.
        let _ = stream.set_nodelay(true);
        next_id += 1;
        let id = next_id;
        let connection = Arc::new(Connection::new(&clock));
        let max = limits.max_connections;
        let (open, admission) = registry.admit(id, connection.clone(), max, BUSY_OVERFLOW);
        cap_log.note(admission, max, open);
        if admission == Admission::Refused {
            continue; // dropping the stream closes it
        }
        let served = graceful.watch(http.serve_connection(
            TokioIo::new(WatchedStream {
                stream,
                connection: connection.clone(),
                clock,
            }),
            counted_service(router.clone(), connection.clone(), clock, peer),
        ));
        let registry = registry.clone();
        tokio::spawn(async move {
            tokio::select! {
                result = served => {
                    if let Err(err) = result {
                        tracing::debug!(error = %err, "connection ended with an error");
                    }
                }
                () = expired(&connection, clock, limits) => {
                    tracing::debug!("connection closed: no complete request head or no request in time");
                }
                () = connection.shed.notified() => {}
            }
            registry.remove(id);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => Ok(()),
        () = tokio::time::sleep(grace) => {
            tracing::warn!("requests still in flight after the grace period; exiting anyway");
            Ok(())
        }
    }
}

/// The router as one connection's service: each request marks the connection busy while
/// it is served (so shedding never takes it, and its idle deadline starts after), with its
/// client's `peer` address in its extensions.
fn counted_service(
    router: Router,
    connection: Arc<Connection>,
    clock: Clock,
    peer: std::net::SocketAddr,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<axum::response::Response, std::convert::Infallible>> + Send,
> + Clone {
    hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let in_flight = InFlight::begin(connection.clone(), clock);
        let mut router = router.clone();
        async move {
            let mut request = request.map(Body::new);
            // The client's address, for the per-client rate limits (`auth`).
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            let response = router.call(request).await;
            drop(in_flight);
            response
        }
    })
}

/// Connections the kernel queues before the accept loop takes them. Tokio's default of 1,024
/// overflows when a few thousand clients connect at once, and a dropped SYN costs its
/// client a one-second retransmission; the kernel caps this at `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds `addr` for [`serve`], with address reuse (a restart need not wait out TIME_WAIT)
/// and a backlog of [`LISTEN_BACKLOG`].
pub fn listen(addr: std::net::SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Resolves when `connection` has passed its deadline; while it is busy, looks again later.
async fn expired(connection: &Connection, clock: Clock, limits: ConnectionLimits) {
    loop {
        let now = Instant::now();
        match connection.deadline(&clock, &limits) {
            Some(deadline) if deadline <= now => return,
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            // A busy connection becomes idle with a fresh deadline, always later than this.
            None => tokio::time::sleep(limits.header_timeout.min(limits.idle_timeout)).await,
        }
    }
}

/// An accept that failed. Out of file descriptors (EMFILE/ENFILE) is the one worth a line:
/// waiting a moment lets connections close instead of spinning on the same error.
async fn accept_failed(err: &io::Error) {
    match err.raw_os_error() {
        Some(code) if code == 24 || code == 23 => {
            tracing::warn!(error = %err, "cannot accept: out of file descriptors");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        _ => tracing::debug!(error = %err, "accept failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            header_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
        }
    }

    #[test]
    fn the_cap_stays_below_the_file_limit_with_a_reserve() {
        assert_eq!(limits().within_fd_limit(1024).max_connections, 1024 - 256);
        assert_eq!(limits().within_fd_limit(1 << 20).max_connections, 10_000);
        assert_eq!(limits().within_fd_limit(10).max_connections, 1);
    }

    #[test]
    fn shedding_takes_the_longest_waiting_head_then_the_longest_idle_never_a_busy_one() {
        let clock = Clock {
            start: Instant::now(),
        };
        let registry = Registry::default();
        let at = |phase: u8, since: u64| {
            let c = Arc::new(Connection::new(&clock));
            c.phase.store(phase, Ordering::Relaxed);
            c.since_ms.store(since, Ordering::Relaxed);
            c
        };
        let shed = |registry: &Registry, id| !registry.lock().contains_key(&id);
        assert_eq!(registry.admit(1, at(BUSY, 0), 3, 1), (1, Admission::Within));
        assert_eq!(registry.admit(2, at(IDLE, 1), 3, 1), (2, Admission::Within));
        assert_eq!(
            registry.admit(3, at(AWAITING_HEAD, 5), 3, 1),
            (3, Admission::Within)
        );
        // The newcomer is never the one shed: it has not had its chance yet.
        assert_eq!(
            registry.admit(4, at(AWAITING_HEAD, 3), 3, 1),
            (3, Admission::Shed)
        );
        assert!(shed(&registry, 3), "a waiting head goes before an idle one");
        assert_eq!(
            registry.admit(5, at(AWAITING_HEAD, 9), 3, 1),
            (3, Admission::Shed)
        );
        assert!(shed(&registry, 4), "the longest-waiting head goes first");
        registry
            .lock()
            .get(&5)
            .unwrap()
            .phase
            .store(BUSY, Ordering::Relaxed);
        assert_eq!(
            registry.admit(6, at(AWAITING_HEAD, 10), 3, 1),
            (3, Admission::Shed)
        );
        assert!(
            shed(&registry, 2),
            "with no head waiting, the idle one goes"
        );
        registry
            .lock()
            .get(&6)
            .unwrap()
            .phase
            .store(BUSY, Ordering::Relaxed);
        assert_eq!(
            registry.admit(7, at(AWAITING_HEAD, 11), 3, 1),
            (4, Admission::Within)
        );
        for busy in [1, 5, 6] {
            assert!(!shed(&registry, busy), "busy connections are never shed");
        }
        registry
            .lock()
            .get(&7)
            .unwrap()
            .phase
            .store(BUSY, Ordering::Relaxed);
        assert_eq!(
            registry.admit(8, at(AWAITING_HEAD, 12), 3, 1),
            (4, Admission::Refused),
            "past the overflow, with every connection busy, the newcomer is refused"
        );
        assert!(shed(&registry, 8));
    }

    #[test]
    fn deadlines_follow_the_phase() {
        let clock = Clock {
            start: Instant::now(),
        };
        let limits = limits();
        let c = Connection::new(&clock);
        c.since_ms.store(1_000, Ordering::Relaxed);
        assert_eq!(
            c.deadline(&clock, &limits),
            Some(clock.start + Duration::from_millis(6_000))
        );
        c.phase.store(IDLE, Ordering::Relaxed);
        assert_eq!(
            c.deadline(&clock, &limits),
            Some(clock.start + Duration::from_millis(61_000))
        );
        c.phase.store(BUSY, Ordering::Relaxed);
        assert_eq!(c.deadline(&clock, &limits), None);
    }
}
