//! loadgen: virtual shoppers against the four services, a live progress line, a latency
//! table per step, and the shop's invariants checked when the load stops.
//!
//! # Layout
//! - [`Args`]: the command line.
//! - [`run`]: set-up, the virtual users, the report.
//! - `mix.rs`: journeys and their weights.
//! - `shop.rs`: the timed HTTP client.
//! - `stats.rs`: per-step counts and HDR latency histograms.
//! - `invariants.rs`: the books before and after, and what must hold between them.
//! - `fault.rs`: stopping and restarting a service mid-run.

pub mod fault;
pub mod invariants;
pub mod mix;
pub mod shop;
pub mod stats;
pub mod threshold;
pub mod throwaway;

use fault::{Fault, FaultReport};
use invariants::{Books, OtherUnits, Verdict};
use mix::{Journey, Mix};
use serde::Serialize;
use serde_json::json;
use shop::{Client, Endpoints};
use stats::{StepReport, StepStats};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// loadgen: drive the shop with virtual shoppers and check it stayed correct.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "loadgen", version, about)]
pub struct Args {
    /// Virtual users, each running journeys one after another.
    #[arg(long, default_value_t = 16)]
    pub users: usize,

    /// How long to run (e.g. 30s, 2m).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,

    /// Journeys and weights: browse, product, add, order, pay, checkout.
    #[arg(long, default_value = "browse=50,add=30,checkout=20")]
    pub mix: Mix,

    #[arg(long, env = "CART_URL", default_value = "http://127.0.0.1:8001")]
    pub cart_url: String,
    #[arg(long, env = "CATALOG_URL", default_value = "http://127.0.0.1:8002")]
    pub catalog_url: String,
    #[arg(long, env = "ORDER_URL", default_value = "http://127.0.0.1:8003")]
    pub order_url: String,
    #[arg(long, env = "PAYMENT_URL", default_value = "http://127.0.0.1:8004")]
    pub payment_url: String,

    /// The shop's API key.
    #[arg(long, env = "API_KEY", hide_env_values = true)]
    pub api_key: String,

    /// How many products loadgen adds for itself before the run (named `loadgen <run> #k`,
    /// SKU `loadgen-<run>-<k>`): it buys only those, so a real shop's products and stock are
    /// never touched. 0 buys the shop's own products instead (read-only to loadgen: it
    /// never moves their stock).
    #[arg(long, default_value_t = 4)]
    pub products: usize,

    /// The units each of loadgen's own products starts with (so a run does not sell them
    /// out); the shop's own products are never restocked.
    #[arg(long, default_value_t = 100_000)]
    pub restock: i64,

    /// Conditions for exit code 0 besides the invariants, e.g. `p99<50ms,errors<1%,rps>500`
    /// (measures: p50, p90, p99 in ms; errors (5xx or no answer) and 4xx in % of requests;
    /// rps).
    #[arg(long)]
    pub threshold: Option<threshold::Thresholds>,

    /// Open model: start journeys at this rate (`200/s`, or `200`) whatever the shop's
    /// speed, `--users` of them at most at once; starts wait (at most `--users` of them) for
    /// a free user, and one that finds that many already waiting is counted as missed.
    /// Without it the users are a closed loop (each starts its next journey when its last
    /// one ended).
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<f64>,

    /// Write the figures to this file as JSON too.
    #[arg(long)]
    pub json: Option<PathBuf>,

    /// Stop a service mid-run and start it again, e.g. `catalog-down@10s`.
    #[arg(long)]
    pub fault: Option<Fault>,

    /// How long the faulted service stays down.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub fault_for: Duration,

    /// Where start-all.sh keeps its pid files (needed by --fault).
    #[arg(long, default_value = "data/pids")]
    pub pid_dir: PathBuf,

    /// Load the running shop at the URLs above instead of a throwaway shop of loadgen's own
    /// (the default: the same binaries on free ports and a temp folder, removed after). A run
    /// against a running shop leaves its products, orders, payments, checkouts and refunds
    /// there, in that shop's stats and storefront.
    #[arg(long)]
    pub against_running_shop: bool,

    /// How long to wait after the run for webhooks and checkouts to settle.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub settle: Duration,
}

/// Everything the run measured.
#[derive(Debug, Serialize)]
pub struct Report {
    pub users: usize,
    pub duration_s: f64,
    pub total_requests: u64,
    pub requests_per_second: f64,
    pub server_errors: u64,
    /// Answers 400 to 499: refusals (stock ran out, a declined card) and mistakes.
    pub client_errors: u64,
    /// Latency over every request of the run.
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    /// The commonest answers that were not 2xx: `step status code` and how many.
    pub top_failures: Vec<(String, u64)>,
    /// With `--rate`: journeys started per second asked for, and the starts every user was
    /// too busy to take.
    pub rate: Option<f64>,
    pub missed_starts: Option<u64>,
    pub checkouts_completed: usize,
    pub checkouts_per_second: f64,
    pub steps: Vec<StepReport>,
    /// Requests and server errors (5xx or no answer) per second of the run.
    pub timeline: Vec<(u64, u64)>,
    pub invariants: Vec<Verdict>,
    pub fault: Option<FaultReport>,
}

impl Report {
    /// True when every invariant held.
    pub fn invariants_hold(&self) -> bool {
        self.invariants.iter().all(|v| v.holds)
    }
}

/// Live counters shared by the virtual users and the progress line.
struct Live {
    requests: AtomicU64,
    server_errors: AtomicU64,
    client_errors: AtomicU64,
    per_second: Vec<(AtomicU64, AtomicU64)>,
    /// Every request's latency, in microseconds (for the live p99 and the report's).
    latency_us: std::sync::Mutex<hdrhistogram::Histogram<u64>>,
    started: Instant,
}

impl Live {
    /// The latency at quantile `q` so far, in milliseconds.
    fn quantile_ms(&self, q: f64) -> f64 {
        self.latency_us
            .lock()
            .map_or(0.0, |l| l.value_at_quantile(q) as f64 / 1000.0)
    }

    /// The progress line: elapsed of total, requests by class, the last second's rate, p99.
    fn line(&self, total: Duration) -> String {
        let elapsed = self.started.elapsed();
        let requests = self.requests.load(Ordering::Relaxed);
        let server = self.server_errors.load(Ordering::Relaxed);
        let client = self.client_errors.load(Ordering::Relaxed);
        let last_second = (elapsed.as_secs() as usize)
            .checked_sub(1)
            .and_then(|s| self.per_second.get(s))
            .map_or(0, |(r, _)| r.load(Ordering::Relaxed));
        format!(
            "{:.0}s/{}s  {requests} requests ({} 2xx, {client} 4xx, {server} 5xx)  {last_second} req/s now  p99 {:.1} ms",
            elapsed.as_secs_f64(),
            total.as_secs(),
            requests.saturating_sub(server + client),
            self.quantile_ms(0.99)
        )
    }

    fn note(&self, status: u16, took: Duration) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, 60_000_000);
        if let Ok(mut latency) = self.latency_us.lock() {
            let _ = latency.record(micros);
        }
        let second = self.started.elapsed().as_secs() as usize;
        let server_error = status == 0 || status >= 500;
        if server_error {
            self.server_errors.fetch_add(1, Ordering::Relaxed);
        } else if (400..500).contains(&status) {
            self.client_errors.fetch_add(1, Ordering::Relaxed);
        }
        if let Some((requests, errors)) = self.per_second.get(second) {
            requests.fetch_add(1, Ordering::Relaxed);
            if server_error {
                errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

const GOOD_CARD: &str =
    r#"{"card":{"number":"4242424242424242","exp_month":12,"exp_year":2099,"cvc":"123"}}"#;

/// One virtual user's state.
struct Shopper {
    client: Client,
    user: String,
    products: Arc<Vec<(i64, String)>>,
    completed: Vec<i64>,
    /// Units paid orders do not show: held by unpaid orders, sold in refunded ones, added
    /// by adjustments; the stock invariant counts them.
    other: OtherUnits,
    adds: u32,
    /// Answers that were not 2xx, by `step status code`.
    failures: HashMap<String, u64>,
}

impl Shopper {
    fn product(&self) -> &(i64, String) {
        &self.products[fastrand::usize(..self.products.len())]
    }

    fn call(
        &mut self,
        live: &Live,
        step: &'static str,
        method: &str,
        url: &str,
        json: Option<&str>,
    ) -> shop::Answer {
        let started = Instant::now();
        let answer = self.client.call(step, method, url, json);
        live.note(answer.status, started.elapsed());
        if !answer.ok() {
            let code = answer.body["error"]["code"]
                .as_str()
                .unwrap_or(if answer.status == 0 { "no answer" } else { "-" });
            *self
                .failures
                .entry(format!("{step} {} {code}", answer.status))
                .or_default() += 1;
        }
        answer
    }

    fn run(&mut self, journey: Journey, live: &Live) {
        let (product, price) = self.product().clone();
        match journey {
            Journey::Browse => {
                self.view(live, "browse.list", "/products".to_string());
                self.view(live, "browse.product", format!("/products/{product}"));
            }
            Journey::Product => self.view(live, "product", format!("/products/{product}")),
            Journey::Add => self.add(live, product),
            Journey::Order => {
                if self.place_order(live, product, &price).is_some() {
                    *self.other.held_unpaid.entry(product).or_default() += 1;
                }
            }
            Journey::Pay => {
                if let Some(order_id) = self.place_order(live, product, &price) {
                    self.pay(live, order_id, product, &price);
                }
            }
            Journey::Cancel => self.cancel(live, product, &price),
            Journey::Refund => self.refund(live, product, &price),
            Journey::Adjust => self.adjust(live, product),
            Journey::Checkout => self.checkout(live, product),
        }
    }

    /// A catalog read (`path` under the catalog's URL).
    fn view(&mut self, live: &Live, step: &'static str, path: String) {
        let url = format!("{}{path}", self.client.endpoints.catalog);
        self.call(live, step, "GET", &url, None);
    }

    fn clear_cart(&mut self) {
        let url = format!("{}/cart/{}/clear", self.client.endpoints.cart, self.user);
        self.client.send("DELETE", &url, None);
    }

    fn add_one(&mut self, live: &Live, product: i64) {
        let url = format!(
            "{}/cart/{}/add?product_id={product}&quantity=1",
            self.client.endpoints.cart, self.user
        );
        self.call(live, "add", "POST", &url, None);
    }

    fn add(&mut self, live: &Live, product: i64) {
        // A line holds at most 1000 units: empty the cart now and then.
        self.adds += 1;
        if self.adds % 200 == 0 {
            self.clear_cart();
        }
        self.add_one(live, product);
    }

    /// An order placed and cancelled: its unit goes back, unless the cancel fails.
    fn cancel(&mut self, live: &Live, product: i64, price: &str) {
        let Some(order_id) = self.place_order(live, product, price) else {
            return;
        };
        let url = format!("{}/orders/{order_id}/status", self.client.endpoints.order);
        let body = r#"{"status":"CANCELLED","reason":"loadgen cancel"}"#;
        if !self
            .call(live, "order.cancel", "PUT", &url, Some(body))
            .ok()
        {
            *self.other.held_unpaid.entry(product).or_default() += 1;
        }
    }

    /// An order placed, paid and refunded in full (money only: its unit stays sold).
    fn refund(&mut self, live: &Live, product: i64, price: &str) {
        let Some(order_id) = self.place_order(live, product, price) else {
            return;
        };
        let Some(payment_id) = self.pay(live, order_id, product, price) else {
            return;
        };
        let url = format!(
            "{}/payments/{payment_id}/refunds",
            self.client.endpoints.payment
        );
        let body = r#"{"reason":"loadgen refund"}"#;
        if self.call(live, "refund", "POST", &url, Some(body)).ok() {
            *self.other.refunded.entry(product).or_default() += 1;
        }
    }

    /// An admin's stock adjustment of one unit.
    fn adjust(&mut self, live: &Live, product: i64) {
        let url = format!("{}/products/{product}/stock", self.client.endpoints.catalog);
        let body = r#"{"delta":1,"reason":"loadgen adjustment"}"#;
        if self.call(live, "adjust", "POST", &url, Some(body)).ok() {
            *self.other.adjusted.entry(product).or_default() += 1;
        }
    }

    /// A cart of one unit checked out with the good test card, and its order read.
    fn checkout(&mut self, live: &Live, product: i64) {
        self.clear_cart();
        self.add_one(live, product);
        let e = self.client.endpoints.clone();
        let url = format!("{}/cart/{}/checkout", e.cart, self.user);
        let answer = self.call(live, "checkout", "POST", &url, Some(GOOD_CARD));
        if answer.status == 201
            && let Some(order_id) = answer.body["order_id"].as_i64()
        {
            self.completed.push(order_id);
            let url = format!("{}/orders/{order_id}", e.order);
            self.call(live, "order.view", "GET", &url, None);
        }
    }

    /// Pays order `order_id` (one unit of `product`); its payment id when captured. An
    /// order left unpaid keeps holding its unit.
    fn pay(&mut self, live: &Live, order_id: i64, product: i64, price: &str) -> Option<i64> {
        let url = format!(
            "{}/pay?order_id={order_id}&amount={price}",
            self.client.endpoints.payment
        );
        let answer = self.call(live, "pay", "POST", &url, None);
        if answer.status != 200 {
            *self.other.held_unpaid.entry(product).or_default() += 1;
            return None;
        }
        answer.body["id"].as_i64()
    }

    fn place_order(&mut self, live: &Live, product: i64, price: &str) -> Option<i64> {
        let e = &self.client.endpoints;
        let url = format!("{}/orders?user_id={}", e.order, self.user);
        let body = format!(r#"[{{"product_id":{product},"quantity":1,"price":{price}}}]"#);
        let answer = self.call(live, "order.create", "POST", &url, Some(&body));
        answer.body["id"].as_i64().filter(|_| answer.ok())
    }
}

/// Runs the load and checks the invariants.
pub fn run(args: &Args) -> Result<Report, String> {
    let endpoints = Endpoints {
        cart: args.cart_url.trim_end_matches('/').into(),
        catalog: args.catalog_url.trim_end_matches('/').into(),
        order: args.order_url.trim_end_matches('/').into(),
        payment: args.payment_url.trim_end_matches('/').into(),
        api_key: args.api_key.clone(),
    };
    let setup = Client::new(endpoints.clone());
    let run_id = fastrand::u32(..);
    let products = if args.products == 0 {
        shop_products(&setup)?
    } else {
        own_products(&setup, run_id, args.products, args.restock)?
    };
    let before = invariants::read_books(&setup)?;
    let live = Arc::new(Live::new(args.duration)?);
    let deadline = live.started + args.duration;
    let done = Arc::new(AtomicBool::new(false));
    let progress = indicatif::ProgressBar::new_spinner();
    let ticker = spawn_ticker(&live, &done, &progress, args.duration);
    let fault_thread = spawn_fault(args, &endpoints, live.started);
    let pacer = args
        .rate
        .map(|rate| spawn_pacer(rate, args.users, deadline));
    let crowd = Crowd {
        run_id,
        endpoints: endpoints.clone(),
        products: Arc::new(products),
        mix: args.mix.clone(),
        starts: pacer.as_ref().map(|(receiver, _)| receiver.clone()),
        deadline,
    };
    let shoppers: Vec<_> = (0..args.users)
        .map(|vu| crowd.spawn_shopper(vu, &live))
        .collect();
    let gathered = gather(shoppers)?;
    let elapsed = live.started.elapsed();
    done.store(true, Ordering::Relaxed);
    let _ = ticker.join();
    progress.finish_and_clear();
    let fault = match fault_thread {
        Some(thread) => Some(thread.join().map_err(|_| "the fault thread panicked")??),
        None => None,
    };
    let invariants = settle_and_judge(&setup, &before, &gathered, args.settle);
    let missed_starts = pacer.map(|(_, missed)| missed.load(Ordering::Relaxed));
    Ok(report(
        args,
        &live,
        elapsed,
        gathered,
        (missed_starts, invariants, fault),
    ))
}

impl Live {
    fn new(duration: Duration) -> Result<Live, String> {
        Ok(Live {
            requests: AtomicU64::new(0),
            server_errors: AtomicU64::new(0),
            client_errors: AtomicU64::new(0),
            latency_us: std::sync::Mutex::new(
                hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 3)
                    .map_err(|e| format!("latency histogram: {e}"))?,
            ),
            per_second: (0..duration.as_secs() + 120)
                .map(|_| (AtomicU64::new(0), AtomicU64::new(0)))
                .collect(),
            started: Instant::now(),
        })
    }
}

/// The live progress line: redrawn on a terminal, a plain line every 5 s without one.
fn spawn_ticker(
    live: &Arc<Live>,
    done: &Arc<AtomicBool>,
    progress: &indicatif::ProgressBar,
    total: Duration,
) -> std::thread::JoinHandle<()> {
    progress.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let (live, done, progress) = (live.clone(), done.clone(), progress.clone());
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    std::thread::spawn(move || {
        let mut printed = Instant::now();
        while !done.load(Ordering::Relaxed) {
            if terminal {
                progress.set_message(live.line(total));
                progress.tick();
            } else if printed.elapsed() >= Duration::from_secs(5) {
                eprintln!("{}", live.line(total));
                printed = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    })
}

/// The `--fault` thread, when one is asked for.
fn spawn_fault(
    args: &Args,
    endpoints: &Endpoints,
    started: Instant,
) -> Option<std::thread::JoinHandle<Result<FaultReport, String>>> {
    let fault = args.fault.clone()?;
    let (pid_dir, down_for) = (args.pid_dir.clone(), args.fault_for);
    let base = match fault.service.as_str() {
        "catalog-service" => &endpoints.catalog,
        "cart-service" => &endpoints.cart,
        "order-service" => &endpoints.order,
        _ => &endpoints.payment,
    };
    let health = format!("{base}/health");
    Some(std::thread::spawn(move || {
        fault::inject(&fault, down_for, &pid_dir, &health, started)
    }))
}

/// Starts handed out one per 1/rate seconds, taken by idle users (the open model).
type Starts = Arc<std::sync::Mutex<std::sync::mpsc::Receiver<()>>>;

/// The open model's pacer: one start per 1/`rate` seconds until `deadline`; a start that
/// finds `users` starts waiting already is missed (counted).
fn spawn_pacer(rate: f64, users: usize, deadline: Instant) -> (Starts, Arc<AtomicU64>) {
    let (sender, receiver) = std::sync::mpsc::sync_channel::<()>(users.max(1));
    let missed = Arc::new(AtomicU64::new(0));
    let pacer_missed = missed.clone();
    let interval = Duration::from_secs_f64(1.0 / rate);
    std::thread::spawn(move || {
        let mut next = Instant::now();
        while next < deadline {
            if sender.try_send(()).is_err() {
                pacer_missed.fetch_add(1, Ordering::Relaxed);
            }
            next += interval;
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
    });
    (Arc::new(std::sync::Mutex::new(receiver)), missed)
}

/// What every virtual user shares.
struct Crowd {
    run_id: u32,
    endpoints: Endpoints,
    products: Arc<Vec<(i64, String)>>,
    mix: Mix,
    starts: Option<Starts>,
    deadline: Instant,
}

/// What one virtual user brings back.
type ShopperResult = (
    HashMap<&'static str, StepStats>,
    Vec<i64>,
    OtherUnits,
    HashMap<String, u64>,
);

impl Crowd {
    /// Virtual user `vu`: journeys one after another (each on a start, in the open model)
    /// until the deadline.
    fn spawn_shopper(&self, vu: usize, live: &Arc<Live>) -> std::thread::JoinHandle<ShopperResult> {
        let (live, products, mix) = (live.clone(), self.products.clone(), self.mix.clone());
        let (starts, deadline) = (self.starts.clone(), self.deadline);
        let client = Client::new(self.endpoints.clone());
        let user = format!("lg-{:x}-{vu}", self.run_id);
        std::thread::spawn(move || {
            let mut shopper = Shopper {
                client,
                user,
                products,
                completed: Vec::new(),
                other: OtherUnits::default(),
                adds: 0,
                failures: HashMap::new(),
            };
            while Instant::now() < deadline {
                if let Some(starts) = &starts {
                    let started = starts
                        .lock()
                        .map(|r| r.recv_timeout(Duration::from_millis(100)).is_ok())
                        .unwrap_or(false);
                    if !started {
                        continue;
                    }
                }
                let journey = mix.pick(fastrand::u32(..mix.total()));
                shopper.run(journey, &live);
            }
            let Shopper {
                client,
                completed,
                other,
                failures,
                ..
            } = shopper;
            (client.steps, completed, other, failures)
        })
    }
}

/// Every virtual user's results, merged.
struct Gathered {
    steps: HashMap<&'static str, StepStats>,
    completed: Vec<i64>,
    other: OtherUnits,
    failures: HashMap<String, u64>,
}

fn gather(shoppers: Vec<std::thread::JoinHandle<ShopperResult>>) -> Result<Gathered, String> {
    let mut all = Gathered {
        steps: HashMap::new(),
        completed: Vec::new(),
        other: OtherUnits::default(),
        failures: HashMap::new(),
    };
    for shopper in shoppers {
        let (steps, completed, other, failures) =
            shopper.join().map_err(|_| "a virtual user panicked")?;
        for (failure, n) in failures {
            *all.failures.entry(failure).or_default() += n;
        }
        for (step, measured) in steps {
            all.steps.entry(step).or_default().merge(&measured);
        }
        all.completed.extend(completed);
        all.other.merge(other);
    }
    Ok(all)
}

/// Lets webhooks and interrupted checkouts settle (up to `settle`), then judges the books.
fn settle_and_judge(
    setup: &Client,
    before: &Books,
    gathered: &Gathered,
    settle: Duration,
) -> Vec<Verdict> {
    let settle_until = Instant::now() + settle;
    let order_url = &setup.endpoints.order;
    loop {
        let after = invariants::read_books(setup);
        let unpaid = gathered
            .completed
            .iter()
            .filter(|id| {
                let order = setup.send("GET", &format!("{order_url}/orders/{id}"), None);
                !matches!(
                    order.body["status"].as_str(),
                    Some("PAID" | "SHIPPED" | "DELIVERED")
                )
            })
            .count();
        let completed = gathered.completed.len();
        let verdicts = match &after {
            Ok(after) => invariants::check(before, after, &gathered.other, unpaid, completed),
            Err(problem) => vec![Verdict {
                invariant: "the shop answers after the run",
                holds: false,
                detail: problem.clone(),
            }],
        };
        let settled = after
            .as_ref()
            .map(|b: &Books| b.pending_deliveries == 0)
            .unwrap_or(false);
        if (settled && verdicts.iter().all(|v| v.holds)) || Instant::now() > settle_until {
            return verdicts;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The run's report: throughput, latency, the steps, the worst failures, the timeline.
fn report(
    args: &Args,
    live: &Live,
    elapsed: Duration,
    gathered: Gathered,
    (missed_starts, invariants, fault): (Option<u64>, Vec<Verdict>, Option<FaultReport>),
) -> Report {
    let mut steps: Vec<StepReport> = gathered
        .steps
        .iter()
        .map(|(name, s)| s.report(name, elapsed))
        .collect();
    steps.sort_by(|a, b| a.step.cmp(&b.step));
    let total_requests = live.requests.load(Ordering::Relaxed);
    let seconds = elapsed.as_secs() as usize + 1;
    let mut top_failures: Vec<(String, u64)> = gathered.failures.into_iter().collect();
    top_failures.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top_failures.truncate(5);
    let per_second = |n: usize| n as f64 / elapsed.as_secs_f64().max(0.001);
    Report {
        users: args.users,
        duration_s: elapsed.as_secs_f64(),
        total_requests,
        requests_per_second: total_requests as f64 / elapsed.as_secs_f64().max(0.001),
        server_errors: live.server_errors.load(Ordering::Relaxed),
        client_errors: live.client_errors.load(Ordering::Relaxed),
        p50_ms: live.quantile_ms(0.50),
        p90_ms: live.quantile_ms(0.90),
        p99_ms: live.quantile_ms(0.99),
        top_failures,
        rate: args.rate,
        missed_starts,
        checkouts_completed: gathered.completed.len(),
        checkouts_per_second: per_second(gathered.completed.len()),
        steps,
        timeline: live.per_second[..seconds.min(live.per_second.len())]
            .iter()
            .map(|(r, e)| (r.load(Ordering::Relaxed), e.load(Ordering::Relaxed)))
            .collect(),
        invariants,
        fault,
    }
}

/// The shop's own products on sale (at most 200), to buy without changing their stock.
fn shop_products(setup: &Client) -> Result<Vec<(i64, String)>, String> {
    let catalog = &setup.endpoints.catalog;
    let listed = setup.send("GET", &format!("{catalog}/products?limit=200"), None);
    if !listed.ok() {
        return Err(format!(
            "the catalog answered {} to GET /products: is the shop running, is the key right?",
            listed.status
        ));
    }
    let products: Vec<(i64, String)> = listed
        .body
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|p| Some((p["id"].as_i64()?, format!("{:.2}", p["price"].as_f64()?))))
                .collect()
        })
        .unwrap_or_default();
    if products.is_empty() {
        return Err("the catalog has no products to buy".into());
    }
    Ok(products)
}

/// Adds `count` products of loadgen's own, each with `stock` units, and returns them: the
/// run buys only these, so a real shop's products keep their stock.
fn own_products(
    setup: &Client,
    run_id: u32,
    count: usize,
    stock: i64,
) -> Result<Vec<(i64, String)>, String> {
    let catalog = &setup.endpoints.catalog;
    (1..=count)
        .map(|k| {
            let price = format!("{}.99", 4 + 5 * k);
            let body = json!({
                "name": format!("loadgen {run_id:x} #{k}"),
                "sku": format!("loadgen-{run_id:x}-{k}"),
                "category": "loadgen",
                "description": "made by loadgen for its run; safe to delete",
                "price": price.parse::<f64>().unwrap_or(9.99),
                "stock": stock,
            });
            let made = setup.send(
                "POST",
                &format!("{catalog}/products"),
                Some(&body.to_string()),
            );
            match made.body["id"].as_i64() {
                Some(id) if made.ok() => Ok((id, price)),
                _ => Err(format!(
                    "the catalog answered {} to POST /products (loadgen adds its own products; \
                     is the shop running, is the key an admin key?): {}",
                    made.status, made.body
                )),
            }
        })
        .collect()
}

/// The report as text: a table per step, the invariants, and the fault's recovery.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{} users for {:.1}s: {} requests, {:.0} req/s, {} refused or wrong (4xx), {} server errors, p99 {:.1} ms, {} checkouts completed ({:.1}/s)\n\n",
        report.users, report.duration_s, report.total_requests, report.requests_per_second,
        report.client_errors, report.server_errors, report.p99_ms, report.checkouts_completed,
        report.checkouts_per_second
    ));
    out.push_str(&format!(
        "{:<16} {:>9} {:>10} {:>8} {:>8} {:>8} {:>9}  errors by status\n",
        "step", "count", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
    ));
    for s in &report.steps {
        let errors = if s.errors.is_empty() {
            "-".to_string()
        } else {
            s.errors
                .iter()
                .map(|(k, v)| format!("{k}:{v}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        out.push_str(&format!(
            "{:<16} {:>9} {:>10.1} {:>8.2} {:>8.2} {:>8.2} {:>9.2}  {}\n",
            s.step, s.count, s.requests_per_second, s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms, errors
        ));
    }
    if let (Some(rate), Some(missed)) = (report.rate, report.missed_starts) {
        out.push_str(&format!(
            "open model: journeys started at {rate}/s, {missed} starts missed (every user busy)\n\n"
        ));
    }
    if !report.top_failures.is_empty() {
        out.push_str("\ncommonest answers that were not 2xx (step, status, code):\n");
        for (failure, n) in &report.top_failures {
            out.push_str(&format!("  {n:>8}  {failure}\n"));
        }
    }
    if let Some(fault) = &report.fault {
        out.push_str(&format!(
            "\nfault: {} stopped at {:.1}s, restarted at {:.1}s, healthy at {}\n",
            fault.service,
            fault.stopped_at_s,
            fault.restarted_at_s,
            fault
                .healthy_at_s
                .map_or("never".to_string(), |s| format!("{s:.1}s"))
        ));
        out.push_str("requests/server errors per second: ");
        let line: Vec<String> = report
            .timeline
            .iter()
            .map(|(r, e)| format!("{r}/{e}"))
            .collect();
        out.push_str(&line.join(" "));
        out.push('\n');
    }
    out.push_str("\ninvariants:\n");
    for v in &report.invariants {
        out.push_str(&format!(
            "  {} {} ({})\n",
            if v.holds { "PASS" } else { "FAIL" },
            v.invariant,
            v.detail
        ));
    }
    out
}

impl Report {
    /// The run as `--threshold` reads it.
    pub fn observed(&self) -> threshold::Observed {
        let share = |n: u64| 100.0 * n as f64 / self.total_requests.max(1) as f64;
        threshold::Observed {
            p50_ms: self.p50_ms,
            p90_ms: self.p90_ms,
            p99_ms: self.p99_ms,
            server_error_percent: share(self.server_errors),
            client_error_percent: share(self.client_errors),
            requests_per_second: self.requests_per_second,
        }
    }
}

/// `--rate`: journeys a second, as `200/s` or `200`; more than 0.
fn parse_rate(text: &str) -> Result<f64, String> {
    let number = text.trim().trim_end_matches("/s").trim();
    match number.parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate.is_finite() => Ok(rate),
        _ => Err(format!("'{text}': expected journeys a second, e.g. 200/s")),
    }
}

#[cfg(test)]
mod rate_tests {
    use super::*;

    #[test]
    fn a_rate_is_journeys_a_second() {
        assert_eq!(parse_rate("200/s"), Ok(200.0));
        assert_eq!(parse_rate(" 2.5 "), Ok(2.5));
        for bad in ["0", "-1/s", "fast", "inf"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }
}
