//! Slow, idle and greedy clients against a real service binary: a request head that does
//! not arrive in time is cut, an idle keep-alive connection is closed, and a flood of
//! half-open connections past the cap neither stops a normal client nor the health probe.
//! Raw sockets, so the test controls every byte the "client" sends.

// A test or tool: a failure to set up ends it, with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use system_tests::{KEY, Service};

fn catalog(dir: &tempfile::TempDir, extra: &[&str]) -> Service {
    let mut args = vec![
        "--db".to_string(),
        dir.path().join("products.db").display().to_string(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    Service::start("catalog-service", args, dir.path().join("catalog.log"))
}

fn connect(service: &Service) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", service.port)).expect("connect");
    // Generous: each wait below ends long before this unless the service misbehaves.
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("read timeout");
    stream
}

/// Reads until the service closes the connection; how long that took, or `None` when it
/// was still open after the read timeout.
fn wait_for_close(stream: &mut TcpStream) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(started.elapsed());
            }
            Err(_) => return None,
        }
    }
}

/// Sends one keep-alive request on `stream` and returns the status line and body of the
/// answer (whose length the `Content-Length` header gives).
fn request(stream: &mut TcpStream, path: &str) -> (String, String) {
    let head = format!("GET {path} HTTP/1.1\r\nHost: test\r\nX-API-Key: {KEY}\r\n\r\n");
    stream.write_all(head.as_bytes()).expect("send request");
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).expect("read answer");
        assert!(n > 0, "connection closed before a whole answer");
        received.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&received).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .expect("content-length");
            if received.len() >= end + 4 + length {
                let status = text.lines().next().unwrap_or_default().to_string();
                return (status, text[end + 4..end + 4 + length].to_string());
            }
        }
    }
}

/// A fresh connection, one request, closed: what a normal client does.
fn fresh_request(service: &Service, path: &str) -> String {
    let mut stream = connect(service);
    request(&mut stream, path).0
}

#[test]
fn a_request_head_that_does_not_arrive_in_time_is_cut_and_a_prompt_one_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let service = catalog(
        &dir,
        &["--header-timeout-ms", "400", "--idle-timeout-ms", "60000"],
    );

    let mut slow = connect(&service);
    slow.write_all(b"GET /products HT").unwrap();
    let cut = wait_for_close(&mut slow).expect("a slow head is cut, not kept open");
    assert!(
        cut >= Duration::from_millis(300),
        "cut after {cut:?}: before the head's time was up"
    );

    let mut silent = connect(&service);
    assert!(
        wait_for_close(&mut silent).is_some(),
        "a connection that sends nothing at all is cut too"
    );

    let mut prompt = connect(&service);
    let (status, body) = request(&mut prompt, "/products/1");
    assert!(status.contains(" 200 "), "{status} {body}");
    // The same connection serves the next request after a pause shorter than the idle
    // timeout but longer than the head's: the head deadline starts at its first byte.
    std::thread::sleep(Duration::from_millis(600));
    let (status, _) = request(&mut prompt, "/health");
    assert!(status.contains(" 200 "), "{status}");
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let service = catalog(
        &dir,
        &["--header-timeout-ms", "5000", "--idle-timeout-ms", "500"],
    );
    let mut kept = connect(&service);
    let (status, _) = request(&mut kept, "/health");
    assert!(status.contains(" 200 "), "{status}");
    let closed = wait_for_close(&mut kept).expect("an idle connection is closed");
    assert!(
        closed >= Duration::from_millis(400),
        "closed after {closed:?}: before the idle time was up"
    );
}

#[test]
fn a_flood_of_half_open_connections_past_the_cap_stops_neither_a_normal_client_nor_the_probe() {
    let dir = tempfile::tempdir().unwrap();
    // Deadlines far away, so only the cap can protect the service here.
    let service = catalog(
        &dir,
        &[
            "--max-connections",
            "64",
            "--header-timeout-ms",
            "60000",
            "--idle-timeout-ms",
            "60000",
        ],
    );
    // A client that was already connected before the flood.
    let mut regular = connect(&service);
    let (status, _) = request(&mut regular, "/products/1");
    assert!(status.contains(" 200 "), "{status}");

    let mut flood = Vec::new();
    for _ in 0..300 {
        let mut attacker = connect(&service);
        attacker.write_all(b"GET /products HT").unwrap();
        flood.push(attacker);
        // One normal request now and then, while the flood builds up.
        if flood.len() % 50 == 0 {
            assert!(fresh_request(&service, "/health").contains(" 200 "));
        }
    }
    for _ in 0..20 {
        let status = fresh_request(&service, "/products/1");
        assert!(status.contains(" 200 "), "{status}");
        assert!(fresh_request(&service, "/health").contains(" 200 "));
        assert!(fresh_request(&service, "/ready").contains(" 200 "));
    }
    let (status, _) = request(&mut regular, "/products/2");
    assert!(
        status.contains(" 200 "),
        "the connection open before the flood still works: {status}"
    );

    // The oldest attackers were closed to make room; the newest are still waiting.
    let closed = flood
        .iter_mut()
        .take(100)
        .filter_map(|s| {
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            wait_for_close(s)
        })
        .count();
    assert_eq!(
        closed, 100,
        "the longest-waiting half-open connections are shed"
    );
    let log = service.log_text();
    assert!(
        log.contains("connection cap reached") && log.contains("max_connections=64"),
        "the cap is named in the log:\n{log}"
    );
    assert!(log.contains("connection limits"), "{log}");
}

#[test]
fn a_request_body_that_stops_arriving_is_a_json_400_after_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let service = catalog(&dir, &["--header-timeout-ms", "400"]);
    let mut stalled = connect(&service);
    let head = format!(
        "POST /products HTTP/1.1\r\nHost: test\r\nX-API-Key: {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\":"
    );
    stalled.write_all(head.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stalled.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(
        answer.contains(r#"{"error":{"code":"bad_request""#),
        "{answer}"
    );
    let (status, products) =
        system_tests::Client::new().get(&format!("{}/products", service.url()));
    assert_eq!(status, 200);
    assert_eq!(
        products.as_array().map(Vec::len),
        Some(3),
        "nothing was created"
    );
}
