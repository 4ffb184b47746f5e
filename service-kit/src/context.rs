//! The request's context that outlives a thread hop: its correlation id (the journey a log
//! line or a peer call belongs to) and its tracing span, carried onto the blocking pool and
//! the database's writer thread. A leaf module: it imports nothing of the kit, so the
//! modules that need it (`http`, `db`, `peer`, `idempotency`) do not depend on each other.

use std::future::Future;

tokio::task_local! {
    static CORRELATION_ID: String;
}

/// The correlation id of the request this task is serving, if any.
pub fn correlation_id() -> Option<String> {
    CORRELATION_ID.try_with(Clone::clone).ok()
}

/// Runs `work` with `id` as its correlation id (for work moved to another task).
pub async fn with_correlation_id<F: Future>(id: Option<String>, work: F) -> F::Output {
    match id {
        Some(id) => CORRELATION_ID.scope(id, work).await,
        None => work.await,
    }
}

/// The caller's span and correlation id, taken on the async side to be entered on another
/// thread (the blocking pool, the database's writer thread).
#[derive(Debug)]
pub struct Carried {
    span: tracing::Span,
    correlation_id: Option<String>,
}

impl Carried {
    /// The context of the task running now.
    pub fn here() -> Self {
        Carried {
            span: tracing::Span::current(),
            correlation_id: correlation_id(),
        }
    }

    /// Runs `work` on this thread inside the carried span and with the carried id.
    pub fn run<T>(self, work: impl FnOnce() -> T) -> T {
        let _entered = self.span.enter();
        match self.correlation_id {
            Some(id) => CORRELATION_ID.sync_scope(id, work),
            None => work(),
        }
    }
}

/// Runs blocking `work` on tokio's blocking pool inside the caller's tracing span and with
/// its correlation id, so log lines and peer calls made there belong to the same request.
pub async fn spawn_blocking<F, T>(work: F) -> Result<T, tokio::task::JoinError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let carried = Carried::here();
    tokio::task::spawn_blocking(move || carried.run(work)).await
}
