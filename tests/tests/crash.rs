//! Crash safety: each service killed with SIGKILL while clients write to it, then started
//! again. Every write that was answered 2xx must be there, whole, and SQLite must find its
//! file intact. And many concurrent writers must never see "database is locked".

// A test or tool: a failure to set up ends it, with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use system_tests::{Client, KEY, Shop};

/// One write that may meet a dead service: `None` when there was no answer.
fn attempt(client: &Client, method: &str, url: &str, body: Option<&str>) -> Option<(u16, Value)> {
    client
        .try_call(method, url, body, &[("X-API-Key", KEY)])
        .ok()
}

/// Writes from six threads until some writes are acknowledged, kills the service while the
/// writes keep coming, and returns the ids of every write that was answered 2xx.
fn kill_during<F>(service: &mut system_tests::Service, write: F) -> Vec<i64>
where
    F: Fn(&Client, usize) -> Option<i64> + Sync,
{
    let stop = AtomicBool::new(false);
    let acknowledged = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for t in 0..6 {
            let (write, acknowledged, stop) = (&write, &acknowledged, &stop);
            scope.spawn(move || {
                let client = Client::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    if let Some(id) = write(&client, t * 100_000 + n) {
                        acknowledged.lock().expect("lock").push(id);
                    }
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while acknowledged.lock().expect("lock").len() < 20 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        service.kill();
        std::thread::sleep(Duration::from_millis(100));
        stop.store(true, Ordering::Relaxed);
    });
    acknowledged.into_inner().expect("lock")
}

fn integrity(shop: &Shop, file: &str) -> String {
    let conn = rusqlite::Connection::open(shop.dir.path().join(file)).expect("open");
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("check")
}

fn created_id(answer: Option<(u16, Value)>) -> Option<i64> {
    let (status, body) = answer?;
    ((200..300).contains(&status))
        .then(|| body["id"].as_i64())
        .flatten()
}

#[test]
fn every_acknowledged_write_survives_sigkill_of_each_service() {
    let mut shop = Shop::start();
    let client = Client::new();

    // Orders: each one acknowledged must come back whole (all its lines, its history).
    let (order_url, catalog_url) = (shop.order.url(), shop.catalog.url());
    let body = r#"[{"product_id":1,"quantity":1,"price":999.99},{"product_id":2,"quantity":2,"price":29.99}]"#;
    let orders = kill_during(&mut shop.order, |c, n| {
        created_id(attempt(
            c,
            "POST",
            &format!("{order_url}/orders?user_id=crash{n}"),
            Some(body),
        ))
    });
    shop.order.restart();
    assert!(
        !orders.is_empty(),
        "some orders were acknowledged before the kill"
    );
    for id in &orders {
        let (status, order) = client.get(&format!("{}/orders/{id}", shop.order.url()));
        assert_eq!(status, 200, "acknowledged order {id} lost");
        assert_eq!(
            order["items"].as_array().expect("items").len(),
            2,
            "order {id} half written"
        );
        assert_eq!(
            order["status_history"].as_array().expect("history").len(),
            1
        );
    }
    assert_eq!(integrity(&shop, "orders.db"), "ok");

    // Products (catalog admin).
    let products = kill_during(&mut shop.catalog, |c, n| {
        let body = format!(r#"{{"name":"Crash {n}","price":1.50,"stock":3}}"#);
        created_id(attempt(
            c,
            "POST",
            &format!("{catalog_url}/products"),
            Some(&body),
        ))
    });
    shop.catalog.restart();
    assert!(!products.is_empty());
    for id in &products {
        let (status, _) = client.get(&format!("{}/products/{id}", shop.catalog.url()));
        assert_eq!(status, 200, "acknowledged product {id} lost");
    }
    assert_eq!(integrity(&shop, "products.db"), "ok");

    // Payments, for orders placed beforehand.
    let to_pay: Vec<i64> = (0..400)
        .filter_map(|n| {
            let url = format!("{}/orders?user_id=payer{n}", shop.order.url());
            created_id(attempt(&client, "POST", &url, Some(body)))
        })
        .collect();
    let payment_url = shop.payment.url();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let payments = kill_during(&mut shop.payment, |c, _| {
        let order = *to_pay.get(next.fetch_add(1, Ordering::Relaxed))?;
        created_id(attempt(
            c,
            "POST",
            &format!("{payment_url}/pay?order_id={order}&amount=1059.97"),
            None,
        ))
    });
    shop.payment.restart();
    assert!(!payments.is_empty());
    for id in &payments {
        let (status, payment) = client.get(&format!("{}/payments/{id}", shop.payment.url()));
        assert_eq!(status, 200, "acknowledged payment {id} lost");
        assert_eq!(payment["status"], "captured");
        assert!(
            payment["webhook_delivery_id"].is_string(),
            "payment {id} without its webhook"
        );
    }
    assert_eq!(integrity(&shop, "payments.db"), "ok");

    // Cart lines: every acknowledged add is in the cart.
    let cart_url = shop.cart.url();
    let adds = kill_during(&mut shop.cart, |c, n| {
        let (status, _) = attempt(
            c,
            "POST",
            &format!("{cart_url}/cart/adder{n}/add?product_id=3&quantity=1"),
            None,
        )?;
        ((200..300).contains(&status)).then_some(n as i64)
    });
    shop.cart.restart();
    assert!(!adds.is_empty());
    for n in &adds {
        let (_, cart) = client.get(&format!("{}/cart/adder{n}", shop.cart.url()));
        assert_eq!(
            cart["items"].as_array().expect("items").len(),
            1,
            "acknowledged add for adder{n} lost"
        );
    }
    assert_eq!(integrity(&shop, "carts.db"), "ok");
}

#[test]
fn fifty_concurrent_writers_never_see_a_locked_database() {
    let shop = Shop::start();
    // Each order holds its unit: enough stock for all 500.
    system_tests::set_stock(&Client::new(), &shop.catalog.url(), 2, 1000);
    let url = format!("{}/orders", shop.order.url());
    let body = r#"[{"product_id":2,"quantity":1,"price":29.99}]"#;
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..50)
            .map(|t| {
                let url = &url;
                scope.spawn(move || {
                    let client = Client::new();
                    (0..10)
                        .map(|i| {
                            client
                                .call("POST", &format!("{url}?user_id=w{t}-{i}"), Some(body))
                                .0
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("writer"))
            .collect()
    });
    assert_eq!(statuses.len(), 500);
    assert!(
        statuses.iter().all(|s| *s == 201),
        "{:?}",
        statuses.iter().filter(|s| **s != 201).collect::<Vec<_>>()
    );
    assert!(!shop.order.log_text().contains("database is locked"));
}

#[test]
fn sigterm_lets_a_request_in_flight_finish_and_exits_zero_within_ten_seconds() {
    let mut shop = Shop::start();
    let client = Client::new();
    let (status, _) = client.post(&format!("{}/cart/term/add?product_id=2", shop.cart.url()));
    assert_eq!(status, 200);
    // The checkout waits at its pay step while payment-service is frozen.
    shop.payment.pause();
    let url = format!("{}/cart/term/checkout", shop.cart.url());
    let in_flight = {
        let client = client.clone();
        std::thread::spawn(move || client.try_call("POST", &url, None, &[("X-API-Key", KEY)]))
    };
    let cart_url = shop.cart.url();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, checkouts) = client.get(&format!("{cart_url}/checkouts?user_id=term"));
        if checkouts[0]["step"] == "pay" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the checkout never reached its pay step"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let stopping = Instant::now();
    let cart = std::thread::scope(|scope| {
        let stopped = scope.spawn(|| shop.cart.stop());
        std::thread::sleep(Duration::from_millis(500));
        // No new request is taken while the old one is still being served.
        let refused = attempt(&client, "GET", &format!("{cart_url}/health"), None);
        assert!(
            refused.is_none(),
            "a stopping service accepted a new request: {refused:?}"
        );
        shop.payment.resume();
        stopped.join().expect("stop")
    });
    assert!(cart, "cart-service exits 0 on SIGTERM");
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "took {:?}",
        stopping.elapsed()
    );
    let (status, checkout) = in_flight
        .join()
        .expect("thread")
        .expect("the request in flight was answered");
    assert_eq!(status, 201, "{checkout}");
    assert_eq!(checkout["status"], "completed");
}

/// A file system mounted for one test at a folder, unmounted when dropped. Needs root, as CI
/// has.
struct Mount(std::path::PathBuf);

impl Mount {
    /// Runs `mount ARGS AT`, creating `at` first.
    fn new(args: &[&str], at: std::path::PathBuf) -> Mount {
        std::fs::create_dir_all(&at).expect("mount point");
        let mount = Mount(at);
        mount.run(args);
        mount
    }

    /// A tmpfs of `size` (`2m`) at `at`.
    fn small_disk(at: std::path::PathBuf, size: &str) -> Mount {
        Mount::new(&["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"], at)
    }

    /// `source` seen read-only at `at`.
    fn read_only_view(source: &std::path::Path, at: std::path::PathBuf) -> Mount {
        let source = source.to_str().expect("UTF-8 path");
        let view = Mount::new(&["--bind", source], at);
        view.run(&["-o", "remount,bind,ro"]);
        view
    }

    fn make_writable(&self) {
        self.run(&["-o", "remount,bind,rw"]);
    }

    fn run(&self, args: &[&str]) {
        let status = std::process::Command::new("mount")
            .args(args)
            .arg(&self.0)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mount {args:?} failed: this test needs root, as CI has"
        );
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_full_disk_is_a_503_and_an_unhealthy_service_that_recovers_when_space_is_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let disk = Mount::small_disk(dir.path().join("disk"), "2m");
    let args = vec![
        "--db".to_string(),
        disk.0.join("orders.db").display().to_string(),
        "--catalog-url".to_string(),
        "http://127.0.0.1:1".to_string(),
    ];
    let mut order =
        system_tests::Service::start("order-service", args, dir.path().join("order.log"));
    let client = Client::new();
    let place = |n: usize| {
        let body = r#"[{"product_id":1,"quantity":1,"price":999.99}]"#;
        client.call(
            "POST",
            &format!("{}/orders?user_id=disk{n}", order.url()),
            Some(body),
        )
    };
    assert_eq!(place(0).0, 201);

    // Fill the disk to the last byte.
    let filler = disk.0.join("filler");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&filler).expect("filler");
        let chunk = vec![0u8; 16 * 1024];
        while file.write_all(&chunk).is_ok() {}
        let _ = file.write_all(&[0u8; 512]);
        let _ = file.sync_all();
    }
    let mut refused = None;
    for n in 1..2000 {
        let (status, body) = place(n);
        assert_ne!(status, 500, "a full disk is not a bug: {body}");
        if status == 503 {
            refused = Some(body);
            break;
        }
    }
    let refused = refused.expect("the disk never filled up");
    assert_eq!(refused["error"]["code"], "storage_unavailable", "{refused}");
    let (status, health) =
        client.call_with_key("GET", &format!("{}/health", order.url()), None, None);
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["status"], "unhealthy");
    let (status, _) = client.get(&format!("{}/orders?limit=1", order.url()));
    assert_eq!(
        status, 200,
        "reads still work: the process is alive, not in a panic loop"
    );

    // Space is back: health recovers by itself (a load balancer that stopped sending writes
    // would wait for it) and writes succeed again, without a restart.
    std::fs::remove_file(&filler).expect("remove filler");
    let (status, health) =
        client.call_with_key("GET", &format!("{}/health", order.url()), None, None);
    assert_eq!(status, 200, "{health}");
    assert_eq!(place(9_999).0, 201);
    assert!(order.stop(), "exits 0 on SIGTERM");
    drop(disk);
}

/// Linux refuses to make a file system read-only while a file on it is open for writing,
/// as a running service's database is; so what can be tested is a start on a database that
/// cannot be written: a prompt exit that says why, no panic, and nothing lost.
#[test]
fn a_read_only_database_is_refused_at_start_with_the_reason_and_served_once_writable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data folder");
    let args = |folder: &std::path::Path| {
        vec![
            "--db".to_string(),
            folder.join("orders.db").display().to_string(),
            "--catalog-url".to_string(),
            "http://127.0.0.1:1".to_string(),
        ]
    };
    let client = Client::new();
    let body = r#"[{"product_id":1,"quantity":2,"price":999.99}]"#;
    let mut order =
        system_tests::Service::start("order-service", args(&data), dir.path().join("a.log"));
    let (status, placed) = client.call(
        "POST",
        &format!("{}/orders?user_id=ro", order.url()),
        Some(body),
    );
    assert_eq!(status, 201, "{placed}");
    assert!(order.stop());

    let view = Mount::read_only_view(&data, dir.path().join("read-only"));
    let started = std::time::Instant::now();
    let refused = std::process::Command::new(system_tests::bin_dir().join("order-service"))
        .args(args(&view.0))
        .args(["--port", "0"])
        .env("API_KEY", system_tests::KEY)
        .env("WEBHOOK_SECRET", system_tests::WEBHOOK_SECRET)
        .output()
        .expect("run order-service");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "it must not serve: {stderr}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "refused promptly"
    );
    assert!(
        stderr.contains("Read-only file system"),
        "says why: {stderr}"
    );
    assert!(stderr.contains("orders.db"), "names the file: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    view.make_writable();
    let mut order =
        system_tests::Service::start("order-service", args(&view.0), dir.path().join("b.log"));
    let (status, found) = client.get(&format!("{}/orders/{}", order.url(), placed["id"]));
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["total"], placed["total"]);
    let (status, _) = client.call(
        "POST",
        &format!("{}/orders?user_id=ro", order.url()),
        Some(body),
    );
    assert_eq!(status, 201, "writable again");
    assert!(order.stop());
}

/// A stand-in for order-service that payment-service's webhook worker talks to: it knows
/// order 1 (PENDING, 999.99), refuses the first webhook with a 503, and holds the second for
/// `hold` before acknowledging it, saying when that second one arrived.
fn slow_order_receiver(
    hold: Duration,
) -> (
    String,
    std::sync::mpsc::Receiver<()>,
    std::sync::Arc<AtomicBool>,
) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let (arrived, arrivals) = std::sync::mpsc::channel();
    let acknowledged = std::sync::Arc::new(AtomicBool::new(false));
    let acked = acknowledged.clone();
    std::thread::spawn(move || {
        let mut webhooks = 0;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            let mut length = 0;
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let (status, answer) = if request_line.starts_with("GET /orders/1 ") {
                (
                    "200 OK",
                    r#"{"id":1,"ref":"order-ref-1","total":999.99,"status":"PENDING","stock":"held"}"#,
                )
            } else if request_line.starts_with("POST /orders/1/payment ") {
                webhooks += 1;
                if webhooks == 1 {
                    ("503 Service Unavailable", r#"{"error":"busy"}"#)
                } else {
                    let _ = arrived.send(());
                    std::thread::sleep(hold);
                    acked.store(true, Ordering::SeqCst);
                    ("200 OK", r#"{"id":1,"status":"PAID"}"#)
                }
            } else {
                ("404 Not Found", r#"{"error":"unknown"}"#)
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    (url, arrivals, acknowledged)
}

#[test]
fn sigterm_lets_the_webhook_workers_attempt_in_flight_finish_and_record_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (order_url, arrivals, acknowledged) = slow_order_receiver(Duration::from_millis(1500));
    let args = vec![
        "--db".to_string(),
        dir.path().join("payments.db").display().to_string(),
        "--order-url".to_string(),
        order_url,
        "--peer-timeout-ms".to_string(),
        "5000".to_string(),
    ];
    let mut payment =
        system_tests::Service::start("payment-service", args, dir.path().join("payment.log"));
    let client = Client::new();
    let (status, paid) = client.post(&format!("{}/pay?order_id=1&amount=999.99", payment.url()));
    assert_eq!(status, 200, "{paid}");
    assert_eq!(
        paid["webhook_status"], "pending",
        "the first attempt was refused"
    );
    let delivery = paid["webhook_delivery_id"].as_str().expect("delivery id");

    // The worker's retry is now being held by the receiver: stop the service under it.
    arrivals
        .recv_timeout(Duration::from_secs(10))
        .expect("the worker retried");
    let stopping = Instant::now();
    assert!(payment.stop(), "exits 0 on SIGTERM");
    let took = stopping.elapsed();
    assert!(
        acknowledged.load(Ordering::SeqCst),
        "exited before the attempt in flight was answered"
    );
    assert!(
        took >= Duration::from_millis(1000),
        "did not wait: {took:?}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");

    // The answered attempt was recorded before exiting: delivered, two attempts, no more.
    payment.restart();
    let (status, found) = client.get(&format!("{}/webhooks/deliveries/{delivery}", payment.url()));
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["status"], "delivered", "{found}");
    let codes: Vec<&Value> = found["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| &a["status_code"])
        .collect();
    assert_eq!(codes, [&serde_json::json!(503), &serde_json::json!(200)]);
    assert!(payment.stop());
}

/// Units of product `product` held by orders (stock held or committed), and whether any
/// order's stock or checkout is still unsettled.
fn units_held_by_orders(client: &Client, shop: &Shop, product: i64) -> (i64, bool) {
    let (_, orders) = client.get(&format!("{}/orders?limit=200", shop.order.url()));
    let mut held = 0;
    let mut unsettled = false;
    for order in orders.as_array().expect("orders") {
        match order["stock"].as_str() {
            Some("held" | "committed") => {
                for item in order["items"].as_array().expect("items") {
                    if item["product_id"] == product {
                        held += item["quantity"].as_i64().expect("quantity");
                    }
                }
            }
            Some("pending") => unsettled = true,
            _ => {}
        }
        // A cancelled order still holding its stock is waiting for the catalog.
        if order["status"] == "CANCELLED" && order["stock"] != "released" {
            unsettled = true;
        }
    }
    (held, unsettled)
}

#[test]
fn sigkill_of_each_service_during_checkouts_leaves_both_ledgers_balanced_after_recovery() {
    let mut shop = Shop::start_with(&[
        ("order-service", &["--stock-retry-ms", "100"]),
        ("payment-service", &["--capture-retry-ms", "100"]),
        (
            "cart-service",
            &[
                "--checkout-timeout-ms",
                "1500",
                "--checkout-recovery-ms",
                "200",
            ],
        ),
    ]);
    let client = Client::new();
    let start_stock = 1000;
    system_tests::set_stock(&client, &shop.catalog.url(), 2, start_stock);
    let mut users = Vec::new();
    for round in 0..4 {
        let (cart_url, victim_name) = (
            shop.cart.url(),
            ["catalog", "order", "payment", "cart"][round],
        );
        // Buyers arrive every 50 ms for 750 ms: some before the kill, some while the service
        // is dead (at every step of their checkout), some after it is back.
        let buyers: Vec<_> = (0..15)
            .map(|n| {
                let user = format!("kill{round}u{n}");
                users.push(user.clone());
                let (client, cart_url) = (client.clone(), cart_url.clone());
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(50 * n as u64));
                    let add = format!("{cart_url}/cart/{user}/add?product_id=2&quantity=1");
                    attempt(&client, "POST", &add, None);
                    let url = format!("{cart_url}/cart/{user}/checkout");
                    attempt(&client, "POST", &url, None)
                        .map(|(status, body)| (status, body.to_string()))
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(200));
        let victim = match victim_name {
            "catalog" => &mut shop.catalog,
            "order" => &mut shop.order,
            "payment" => &mut shop.payment,
            _ => &mut shop.cart,
        };
        victim.kill();
        std::thread::sleep(Duration::from_millis(300));
        victim.restart();
        for buyer in buyers {
            let answer = buyer.join().unwrap();
            assert!(
                !matches!(answer, Some((500..=502 | 504.., _))),
                "{victim_name} round: {answer:?}"
            );
        }
    }

    // Recovery settles every checkout, stock and payment; then both ledgers balance.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let running = users.iter().any(|user| {
            let (_, list) = client.get(&format!("{}/checkouts?user_id={user}", shop.cart.url()));
            list.as_array()
                .is_some_and(|l| l.iter().any(|c| c["status"] == "running"))
        });
        let (_, pending) = client.get(&format!(
            "{}/webhooks/deliveries?status=pending",
            shop.payment.url()
        ));
        let (_, stats) = client.get(&format!("{}/orders/stats", shop.order.url()));
        let (_, product) = client.get(&format!("{}/products/2", shop.catalog.url()));
        let (held, unsettled) = units_held_by_orders(&client, &shop, 2);
        let taken = start_stock - product["stock"].as_i64().unwrap_or(start_stock);
        let authorized = stats["reconciliation"]["authorized_payments_count"].as_i64();
        let (_, audit) = client.get(&format!("{}/stock/audit", shop.catalog.url()));
        let audited = audit
            .as_array()
            .is_some_and(|rows| rows.iter().all(|r| r["balanced"] == true));
        // Every order here comes from a checkout: once all are settled, a PENDING one would
        // be a failed checkout's order still holding its stock.
        let (_, pending_orders) =
            client.get(&format!("{}/orders?status=PENDING", shop.order.url()));
        let balanced = !running
            && pending_orders.as_array().is_some_and(Vec::is_empty)
            && !unsettled
            && pending.as_array().is_some_and(Vec::is_empty)
            && stats["reconciliation"]["status"] == "matched"
            && authorized == Some(0)
            && audited
            && taken == held;
        if balanced {
            let (_, paid) = client.get(&format!(
                "{}/orders?status=PAID&limit=200",
                shop.order.url()
            ));
            let paid = paid.as_array().map_or(0, Vec::len);
            println!("settled: {paid} paid orders, {taken} units taken, all checkouts settled");
            assert!(paid > 0, "some checkouts went through around the kills");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not settled: running {running}, unsettled stock {unsettled}, pending {pending}, \
             pending orders {pending_orders}, \
             stats {stats}, units taken {taken} vs held by orders {held}, audit {audit}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    for file in ["products.db", "orders.db", "payments.db", "carts.db"] {
        assert_eq!(integrity(&shop, file), "ok", "{file}");
    }
}
