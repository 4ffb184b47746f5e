//! The memory allocator the service binaries choose (each `main.rs` sets it; a library
//! never does, so tests and other programs that link the kit keep their own).
//!
//! jemalloc, with its background thread returning freed pages to the system. A burst of
//! connections allocates thousands of buffers of a few KiB from several threads; glibc's
//! malloc keeps those pages (its per-thread arenas only shrink from the top), so a service
//! stayed at its peak after the clients left (measured: 10 MiB idle, 73 MiB with 5,000
//! keep-alive connections, still 73 MiB after they closed), and mimalloc only purges when
//! the thread that freed the memory allocates again, which an idle service does not
//! (123 MiB, then 123 MiB). jemalloc's background thread purges dirty pages after about
//! ten seconds whatever the service does (`scripts/bench.sh connections` prints the figures).

/// The allocator: `#[global_allocator] static ALLOCATOR: Jemalloc = Jemalloc;` in a binary.
pub use tikv_jemallocator::Jemalloc;

/// Starts jemalloc's background purging (one thread); without it freed pages are returned
/// only while the service keeps allocating. For a binary whose allocator is [`Jemalloc`].
pub fn return_freed_memory_in_the_background() {
    let started = tikv_jemalloc_ctl::max_background_threads::write(1)
        .and_then(|()| tikv_jemalloc_ctl::background_thread::write(true));
    if let Err(err) = started {
        tracing::warn!(error = %err, "cannot start the allocator's background purge");
    }
}
