//! connflood: holds thousands of idle, half-open or kept-alive connections against one
//! service, meanwhile times plain requests from another client, and reports the service's
//! resident memory before, during and after. `scripts/bench.sh connections` runs it against
//! each service; it is a measuring tool, not a test (it asserts nothing).

// A test or tool: a failure to set up ends it, with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Connect and send nothing.
    Idle,
    /// Send half a request line and wait (the slow-header attack).
    Half,
    /// Make one complete request, then keep the connection open and silent.
    Keepalive,
}

/// Holds many connections against one service and measures what they cost it.
#[derive(Debug, Parser)]
#[command(name = "connflood", about)]
struct Args {
    /// The service's address, e.g. 127.0.0.1:8002.
    #[arg(long)]
    addr: SocketAddr,
    /// How many connections to hold.
    #[arg(long, default_value_t = 5000)]
    connections: usize,
    #[arg(long, value_enum, default_value_t = Mode::Half)]
    mode: Mode,
    /// How long to hold them once all are open.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    hold: Duration,
    /// Open a connection again when the service closes it, as an attacker would.
    #[arg(long)]
    reopen: bool,
    /// The service's process id, for its resident memory (from /proc).
    #[arg(long)]
    pid: Option<u32>,
    /// How long to wait after closing before the last memory reading.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    settle: Duration,
    /// The path the other client asks for, on a new connection each time.
    #[arg(long, default_value = "/health")]
    probe_path: String,
    /// Sent as X-API-Key with the probe (not needed for /health).
    #[arg(long, env = "API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

fn rss_kib(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("-".to_string(), |k| format!("{:.1}", k as f64 / 1024.0))
}

/// One held connection: open it in its mode, then wait until the service closes it (and
/// open it again with `--reopen`). Runs until it is aborted at the end of the hold.
async fn hold_one(args: Arc<Args>, reopened: Arc<AtomicU64>) {
    let half = b"GET /health HT".as_slice();
    let full = b"GET /health HTTP/1.1\r\nHost: flood\r\n\r\n".as_slice();
    let mut first = true;
    loop {
        if !first {
            reopened.fetch_add(1, Ordering::Relaxed);
        }
        first = false;
        let Ok(mut stream) = TcpStream::connect(args.addr).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let sent = match args.mode {
            Mode::Idle => Ok(()),
            Mode::Half => stream.write_all(half).await,
            Mode::Keepalive => stream.write_all(full).await,
        };
        if sent.is_err() {
            continue;
        }
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {} // the keep-alive answer; keep waiting
            }
        }
        if !args.reopen {
            return;
        }
    }
}

/// One plain request on a new connection; its latency, or `None` when it failed.
async fn probe(args: &Args) -> Option<Duration> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(args.addr).await.ok()?;
    let key = args
        .api_key
        .as_ref()
        .map_or(String::new(), |k| format!("X-API-Key: {k}\r\n"));
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: probe\r\n{key}Connection: close\r\n\r\n",
        args.probe_path
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.ok()?;
    answer
        .starts_with(b"HTTP/1.1 200")
        .then(|| started.elapsed())
}

#[tokio::main]
async fn main() {
    let args = Arc::new(Args::parse());
    // The flood needs as many descriptors as it holds connections.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let idle = rss_kib(args.pid);
    let reopened = Arc::new(AtomicU64::new(0));
    let mut holders = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        holders.push(tokio::spawn(hold_one(args.clone(), reopened.clone())));
        // Let the accept queue drain now and then rather than overflow it.
        if holders.len() % 200 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let mut latency_us = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
    let mut failed = 0u64;
    let mut peak = idle;
    let hold_until = Instant::now() + args.hold;
    while Instant::now() < hold_until {
        match tokio::time::timeout(Duration::from_secs(5), probe(&args)).await {
            Ok(Some(took)) => {
                let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
                let _ = latency_us.record(us.max(1));
            }
            _ => failed += 1,
        }
        peak = peak.max(rss_kib(args.pid));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for holder in holders {
        holder.abort();
        let _ = holder.await;
    }
    tokio::time::sleep(args.settle).await;
    let after = rss_kib(args.pid);
    let ms = |q: f64| latency_us.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "connflood {:?} x{} for {:?}: probes ok {} failed {}, p50 {:.2} ms, p99 {:.2} ms, \
         max {:.2} ms; reopened {}; RSS MiB idle {} held {} after {}",
        args.mode,
        args.connections,
        args.hold,
        latency_us.len(),
        failed,
        ms(0.5),
        ms(0.99),
        latency_us.max() as f64 / 1000.0,
        reopened.load(Ordering::Relaxed),
        mib(idle),
        mib(peak),
        mib(after),
    );
}
