//! A harness that runs the shop as a user would: the four real binaries as child processes,
//! each on a port-0 loopback socket with its own SQLite file in a temp dir, wired together
//! by URL, and a blocking HTTP client to drive them.
//!
//! Binaries are taken from the target folder this test was built into (`cargo build
//! --workspace --bins` first; `scripts/test.sh` does) or from `SHOP_BIN_DIR`.

// A test harness: a failure to set up is the test failing, with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

/// The key every service in a test shop accepts.
pub const KEY: &str = "system-test-key-0123";
/// The storefront key every test service accepts besides [`KEY`] (shopper routes only).
pub const STOREFRONT_KEY: &str = "system-test-storefront-key-89";
/// The key the services send each other in system tests (never rate-limited).
pub const PEER_KEY: &str = "system-test-peer-key-4567";
/// The secret payment-service signs webhooks with and order-service checks them with.
pub const WEBHOOK_SECRET: &str = "whsec_c3lzdGVtLXRlc3Qtd2ViaG9vay1zZWNyZXQ=";
/// The secret every test service signs and checks customers' sessions and order tokens with.
pub const SESSION_SECRET: &str = "system-test-session-secret-0987654321";
/// Fast retries, so tests see a delivery through in a second or two.
pub const RETRY_SCHEDULE: &str = "100ms,200ms,300ms,500ms,1s,1s,2s,2s";

/// Where the service binaries are.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SHOP_BIN_DIR") {
        return PathBuf::from(dir);
    }
    // target/<profile>/deps/<test binary> -> target/<profile>
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// One running (or stopped) service process.
#[derive(Debug)]
pub struct Service {
    /// Binary name, e.g. `order-service`.
    pub name: &'static str,
    args: Vec<String>,
    /// The port it listens on; kept across restarts so peers' URLs stay valid.
    pub port: u16,
    /// Its stderr (the log).
    pub log: PathBuf,
    /// Environment variables it gets besides the test shop's.
    env: Vec<(String, String)>,
    child: Option<(Child, ChildStdout)>,
}

impl Service {
    /// Starts `name` with `args` plus `--port 0`, and waits for its "listening on" line.
    pub fn start(name: &'static str, args: Vec<String>, log: PathBuf) -> Service {
        Service::start_on(0, name, args, log)
    }

    /// Starts `name` on `port` (0: any free one).
    pub fn start_on(port: u16, name: &'static str, args: Vec<String>, log: PathBuf) -> Service {
        Service::start_with_env(port, name, args, log, &[])
    }

    /// Starts `name` on `port` with these environment variables too (`LOG_FORMAT`, say).
    pub fn start_with_env(
        port: u16,
        name: &'static str,
        args: Vec<String>,
        log: PathBuf,
        env: &[(&str, &str)],
    ) -> Service {
        let mut service = Service {
            name,
            args,
            port,
            log,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            child: None,
        };
        service.spawn();
        service
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let binary = bin_dir().join(self.name);
        assert!(
            binary.exists(),
            "{} not found: run `cargo build --workspace --bins` first (or set SHOP_BIN_DIR)",
            binary.display()
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open log file");
        let mut child = Command::new(&binary)
            .args(&self.args)
            .arg("--port")
            .arg(self.port.to_string())
            .env("API_KEY", KEY)
            .env("PEER_API_KEY", PEER_KEY)
            .env("STOREFRONT_KEY", STOREFRONT_KEY)
            .env("WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("SESSION_SECRET", SESSION_SECRET)
            .env("WEBHOOK_RETRY_SCHEDULE", RETRY_SCHEDULE)
            .env("WEBHOOK_POLL_MS", "20")
            .env("PEER_TIMEOUT_MS", "700")
            // Load tests here would trip the per-key and per-client limits; router tests and
            // the flood tests (which set them) cover those.
            .env("RATE_LIMIT", "0")
            .env("CLIENT_RATE_LIMIT", "0")
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        // The binary binds before it prints, so once this line is read the port is ready.
        let read = reader.read_line(&mut line).unwrap_or(0);
        // `... listening on http://127.0.0.1:PORT`, or its JSON form ending `:PORT"}`.
        let port = line
            .trim()
            .trim_end_matches(['"', '}'])
            .rsplit(':')
            .next()
            .and_then(|p| p.parse::<u16>().ok());
        let Some(port) = port.filter(|_| read > 0) else {
            let _ = child.kill();
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            panic!("{} did not start; its log:\n{log}", self.name);
        };
        self.port = port;
        self.child = Some((child, reader.into_inner()));
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops it gracefully (SIGTERM) and waits for it to exit; returns whether it exited 0.
    pub fn stop(&mut self) -> bool {
        let Some((mut child, _)) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        child.wait().map(|s| s.success()).unwrap_or(false)
    }

    /// Kills it outright (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some((mut child, _)) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes it (SIGSTOP): it keeps its port and accepts connections but answers nothing.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused service run again (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        if let Some((child, _)) = &self.child {
            let _ = Command::new("kill")
                .arg(signal)
                .arg(child.id().to_string())
                .status();
        }
    }

    /// Starts it again on the same port with the same database.
    pub fn restart(&mut self) {
        self.spawn();
    }

    /// Everything it has logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

/// All four services, started in dependency order, each with its own database in `dir`.
#[derive(Debug)]
pub struct Shop {
    /// Catalog.
    pub catalog: Service,
    /// Orders.
    pub order: Service,
    /// Payments.
    pub payment: Service,
    /// Carts.
    pub cart: Service,
    /// Holds the databases and logs; removed when the shop is dropped.
    pub dir: tempfile::TempDir,
}

impl Shop {
    /// A new shop with empty databases.
    pub fn start() -> Shop {
        Shop::start_with(&[])
    }

    /// A new shop with empty databases, `extra` flags given to the services they name,
    /// e.g. `&[("order-service", &["--order-ttl", "2s"])]`.
    pub fn start_with(extra: &[(&str, &[&str])]) -> Shop {
        Shop::start_in(tempfile::tempdir().expect("temp dir"), extra)
    }

    /// A shop on the databases already in `dir` (a restored backup, say), `extra` flags as
    /// for [`Shop::start_with`].
    pub fn start_in(dir: tempfile::TempDir, extra: &[(&str, &[&str])]) -> Shop {
        let at = |file: &str| dir.path().join(file);
        let flags = |service: &str| -> Vec<String> {
            extra
                .iter()
                .filter(|(name, _)| *name == service)
                .flat_map(|(_, flags)| flags.iter().map(|f| f.to_string()))
                .collect()
        };
        let db = |file: &str| vec!["--db".to_string(), at(file).display().to_string()];
        let mut catalog_args = db("products.db");
        catalog_args.extend(flags("catalog-service"));
        let catalog = Service::start("catalog-service", catalog_args, at("catalog.log"));
        let with_catalog = |file: &str| {
            let mut args = db(file);
            args.extend(["--catalog-url".to_string(), catalog.url()]);
            args
        };
        // Order and payment each call the other, so payment's port is chosen first.
        let payment_port = free_port();
        let mut order_args = with_catalog("orders.db");
        order_args.extend([
            "--payment-url".to_string(),
            format!("http://127.0.0.1:{payment_port}"),
        ]);
        order_args.extend(flags("order-service"));
        let order = Service::start("order-service", order_args, at("order.log"));
        let mut payment_args = db("payments.db");
        payment_args.extend(["--order-url".to_string(), order.url()]);
        payment_args.extend(flags("payment-service"));
        let payment = Service::start_on(
            payment_port,
            "payment-service",
            payment_args,
            at("payment.log"),
        );
        let mut cart_args = with_catalog("carts.db");
        cart_args.extend([
            "--order-url".to_string(),
            order.url(),
            "--payment-url".to_string(),
            payment.url(),
        ]);
        cart_args.extend(flags("cart-service"));
        let cart = Service::start("cart-service", cart_args, at("cart.log"));
        Shop {
            catalog,
            order,
            payment,
            cart,
            dir,
        }
    }

    /// Every service, in start order.
    pub fn services(&mut self) -> [&mut Service; 4] {
        [
            &mut self.catalog,
            &mut self.order,
            &mut self.payment,
            &mut self.cart,
        ]
    }
}

/// A loopback port that was free a moment ago, chosen below the kernel's range for
/// ephemeral ports (32768 and up on Linux): the services started meanwhile with `--port 0`
/// are given ports from that range, so none of them can take this one before its service
/// starts (a port-0 pick could, and once did).
fn free_port() -> u16 {
    // Tests of one process start shops at once: each call starts somewhere else.
    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        ^ std::process::id().rotate_left(16)
        ^ call.wrapping_mul(2_654_435_761);
    (0..200u32)
        .map(|i| 20_000 + (seed.wrapping_add(i.wrapping_mul(7919)) % 12_000) as u16)
        .find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .expect("a free loopback port below the ephemeral range")
}

/// Status, headers and JSON body of an answer.
pub type FullAnswer = (u16, Vec<(String, String)>, Value);

/// A blocking JSON client that sends the test key unless told otherwise.
#[derive(Debug, Clone)]
pub struct Client {
    agent: ureq::Agent,
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

impl Client {
    /// A client that reports every status instead of failing on 4xx/5xx.
    pub fn new() -> Client {
        // No connection reuse: a test that kills and restarts services must never pick a
        // pooled connection to a process that is gone.
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_idle_connections(0)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Client { agent }
    }

    /// Sends a request with the test key; returns status and JSON body (`Null` if none).
    pub fn call(&self, method: &str, url: &str, json: Option<&str>) -> (u16, Value) {
        self.call_with_key(method, url, json, Some(KEY))
    }

    /// Sends a request with `key` (or no key header at all).
    pub fn call_with_key(
        &self,
        method: &str,
        url: &str,
        json: Option<&str>,
        key: Option<&str>,
    ) -> (u16, Value) {
        let headers = key
            .map(|k| ("X-API-Key", k))
            .into_iter()
            .collect::<Vec<_>>();
        self.try_call(method, url, json, &headers)
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
    }

    /// Sends a request with exactly these headers; an error when there is no answer (the
    /// service died mid-request). The answer's headers come back too.
    pub fn try_call_full(
        &self,
        method: &str,
        url: &str,
        json: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<FullAnswer, ureq::Error> {
        let mut request = ureq::http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if json.is_some() {
            request = request.header("Content-Type", "application/json");
        }
        let body = json.unwrap_or("").as_bytes().to_vec();
        let request = request.body(body).expect("valid request");
        let mut response = self.agent.run(request)?;
        let status = response.status().as_u16();
        let answer_headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        Ok((
            status,
            answer_headers,
            serde_json::from_str(&text).unwrap_or(Value::Null),
        ))
    }

    /// [`Client::try_call_full`] without the answer's headers.
    pub fn try_call(
        &self,
        method: &str,
        url: &str,
        json: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<(u16, Value), ureq::Error> {
        self.try_call_full(method, url, json, headers)
            .map(|(status, _, body)| (status, body))
    }

    /// Sends `body` as it is, with the test key and `content_type` (if any): for bodies that
    /// are not JSON, or not even UTF-8.
    pub fn send_raw(
        &self,
        method: &str,
        url: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> (u16, Value) {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(url)
            .header("X-API-Key", KEY);
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        let request = request.body(body.to_vec()).expect("valid request");
        let mut response = self
            .agent
            .run(request)
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (
            response.status().as_u16(),
            serde_json::from_str(&text).unwrap_or(Value::Null),
        )
    }

    /// `GET url`.
    pub fn get(&self, url: &str) -> (u16, Value) {
        self.call("GET", url, None)
    }

    /// `POST url` without a body.
    pub fn post(&self, url: &str) -> (u16, Value) {
        self.call("POST", url, None)
    }

    /// `POST url` with a JSON body.
    pub fn post_json(&self, url: &str, json: &str) -> (u16, Value) {
        self.call("POST", url, Some(json))
    }
}

/// Sets product `product`'s stock the way an admin who has just read it does: `PUT` with
/// `If-Match` of the version read (the catalog refuses a blind overwrite).
pub fn set_stock(client: &Client, catalog_url: &str, product: i64, stock: i64) {
    let url = format!("{catalog_url}/products/{product}");
    let (status, read) = client.get(&url);
    assert_eq!(status, 200, "{read}");
    let version = format!("\"{}\"", read["version"]);
    let body = format!(r#"{{"stock":{stock}}}"#);
    let headers = [("X-API-Key", KEY), ("If-Match", version.as_str())];
    let (status, answer) = client
        .try_call("PUT", &url, Some(&body), &headers)
        .expect("an answer");
    assert_eq!(status, 200, "{answer}");
}

/// Polls `GET {order_url}/orders/{id}` until `done` holds for the order, and returns it;
/// fails the test after `timeout`.
pub fn wait_for_order(
    client: &Client,
    order_url: &str,
    id: impl std::fmt::Display,
    timeout: std::time::Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let (_, order) = client.get(&format!("{order_url}/orders/{id}"));
        if done(&order) {
            return order;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "order {id} never got there: {order}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Four threads sending `GET url` with the test key as fast as they can, until stopped.
#[derive(Debug)]
pub struct Flood {
    on: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<usize>>,
}

impl Flood {
    /// Starts flooding `url`.
    pub fn start(client: &Client, url: String) -> Flood {
        let on = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let threads = (0..4)
            .map(|_| {
                let (client, on, url) = (client.clone(), on.clone(), url.clone());
                std::thread::spawn(move || {
                    let mut refused = 0;
                    while on.load(std::sync::atomic::Ordering::Relaxed) {
                        if client.get(&url).0 == 429 {
                            refused += 1;
                        }
                    }
                    refused
                })
            })
            .collect();
        Flood { on, threads }
    }

    /// Stops it; returns how many of its requests were refused with 429.
    pub fn stop(self) -> usize {
        self.on.store(false, std::sync::atomic::Ordering::Relaxed);
        self.threads
            .into_iter()
            .map(|t| t.join().unwrap_or(0))
            .sum()
    }
}

/// A shopper as a browser front end is: the storefront key, and what the shop handed them
/// (a customer's access token, a guest's cart token, an order token).
#[derive(Debug, Clone, Default)]
pub struct Shopper {
    /// `Authorization: Bearer` when signed in.
    pub access_token: Option<String>,
    /// Kept to refresh and sign out.
    pub refresh_token: Option<String>,
    /// `X-Cart-Token` for a guest cart.
    pub cart_token: Option<String>,
    /// `X-Order-Token` for a guest's order.
    pub order_token: Option<String>,
}

impl Shopper {
    /// A shopper with nothing but the storefront key.
    pub fn guest() -> Shopper {
        Shopper::default()
    }

    /// Signs up (if new) and in with `email` at the order service `order_url`.
    pub fn customer(client: &Client, order_url: &str, email: &str) -> Shopper {
        let password = "correct horse battery staple";
        let body =
            format!(r#"{{"email":"{email}","password":"{password}","name":"Test Shopper"}}"#);
        let (status, answer) = Shopper::guest().call(
            client,
            "POST",
            &format!("{order_url}/customers"),
            Some(&body),
        );
        assert_eq!(status, 202, "sign-up: {answer}");
        let mut shopper = Shopper::guest();
        shopper.sign_in(client, order_url, email, password);
        shopper
    }

    /// Signs in; panics unless it works.
    pub fn sign_in(
        &mut self,
        client: &Client,
        order_url: &str,
        email: &str,
        password: &str,
    ) -> Value {
        let body = format!(r#"{{"email":"{email}","password":"{password}"}}"#);
        let (status, session) = self.call(
            client,
            "POST",
            &format!("{order_url}/sessions"),
            Some(&body),
        );
        assert_eq!(status, 201, "sign-in: {session}");
        self.access_token = session["access_token"].as_str().map(String::from);
        self.refresh_token = session["refresh_token"].as_str().map(String::from);
        session
    }

    /// A new guest cart from the cart service at `cart_url`, its token kept.
    pub fn open_cart(&mut self, client: &Client, cart_url: &str) {
        let (status, answer) = self.call(client, "POST", &format!("{cart_url}/carts"), None);
        assert_eq!(status, 201, "{answer}");
        self.cart_token = answer["cart_token"].as_str().map(String::from);
    }

    /// The customer's id, if signed in (the `sub` of the access token).
    pub fn customer_id(&self) -> Option<String> {
        use base64::Engine;
        let token = self.access_token.as_ref()?;
        let payload = token.split('.').nth(1)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .ok()?;
        let claims: Value = serde_json::from_slice(&bytes).ok()?;
        claims["sub"].as_str().map(String::from)
    }

    /// Sends a request with the storefront key and whatever this shopper holds.
    pub fn call(
        &self,
        client: &Client,
        method: &str,
        url: &str,
        json: Option<&str>,
    ) -> (u16, Value) {
        let bearer = self.access_token.as_ref().map(|t| format!("Bearer {t}"));
        let mut headers = vec![("X-API-Key", STOREFRONT_KEY)];
        if let Some(bearer) = &bearer {
            headers.push(("Authorization", bearer));
        }
        if let Some(token) = &self.cart_token {
            headers.push(("X-Cart-Token", token));
        }
        if let Some(token) = &self.order_token {
            headers.push(("X-Order-Token", token));
        }
        client
            .try_call(method, url, json, &headers)
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
    }
}
