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

    /// Bring every product's units on sale to this before the run (a stock movement of the
    /// difference, reason "loadgen --restock"), so checkouts do not sell out.
    #[arg(long)]
    pub restock: Option<i64>,

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
    per_second: Vec<(AtomicU64, AtomicU64)>,
    started: Instant,
}

impl Live {
    fn note(&self, status: u16) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let second = self.started.elapsed().as_secs() as usize;
        let server_error = status == 0 || status >= 500;
        if server_error {
            self.server_errors.fetch_add(1, Ordering::Relaxed);
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
        let answer = self.client.call(step, method, url, json);
        live.note(answer.status);
        answer
    }

    fn run(&mut self, journey: Journey, live: &Live) {
        let e = self.client.endpoints.clone();
        let (product, price) = self.product().clone();
        match journey {
            Journey::Browse => {
                self.call(
                    live,
                    "browse.list",
                    "GET",
                    &format!("{}/products", e.catalog),
                    None,
                );
                self.call(
                    live,
                    "browse.product",
                    "GET",
                    &format!("{}/products/{product}", e.catalog),
                    None,
                );
            }
            Journey::Product => {
                self.call(
                    live,
                    "product",
                    "GET",
                    &format!("{}/products/{product}", e.catalog),
                    None,
                );
            }
            Journey::Add => {
                // A line holds at most 1000 units: empty the cart now and then.
                self.adds += 1;
                if self.adds % 200 == 0 {
                    self.client.send(
                        "DELETE",
                        &format!("{}/cart/{}/clear", e.cart, self.user),
                        None,
                    );
                }
                let url = format!(
                    "{}/cart/{}/add?product_id={product}&quantity=1",
                    e.cart, self.user
                );
                self.call(live, "add", "POST", &url, None);
            }
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
            Journey::Cancel => {
                if let Some(order_id) = self.place_order(live, product, &price) {
                    let url = format!("{}/orders/{order_id}/status", e.order);
                    let body = r#"{"status":"CANCELLED","reason":"loadgen cancel"}"#;
                    if !self
                        .call(live, "order.cancel", "PUT", &url, Some(body))
                        .ok()
                    {
                        *self.other.held_unpaid.entry(product).or_default() += 1;
                    }
                }
            }
            Journey::Refund => {
                if let Some(order_id) = self.place_order(live, product, &price)
                    && let Some(payment_id) = self.pay(live, order_id, product, &price)
                {
                    let url = format!("{}/payments/{payment_id}/refunds", e.payment);
                    let body = r#"{"reason":"loadgen refund"}"#;
                    if self.call(live, "refund", "POST", &url, Some(body)).ok() {
                        *self.other.refunded.entry(product).or_default() += 1;
                    }
                }
            }
            Journey::Adjust => {
                let url = format!("{}/products/{product}/stock", e.catalog);
                let body = r#"{"delta":1,"reason":"loadgen adjustment"}"#;
                if self.call(live, "adjust", "POST", &url, Some(body)).ok() {
                    *self.other.adjusted.entry(product).or_default() += 1;
                }
            }
            Journey::Checkout => {
                self.client.send(
                    "DELETE",
                    &format!("{}/cart/{}/clear", e.cart, self.user),
                    None,
                );
                let add = format!(
                    "{}/cart/{}/add?product_id={product}&quantity=1",
                    e.cart, self.user
                );
                self.call(live, "add", "POST", &add, None);
                let url = format!("{}/cart/{}/checkout", e.cart, self.user);
                let answer = self.call(live, "checkout", "POST", &url, Some(GOOD_CARD));
                if answer.status == 201
                    && let Some(order_id) = answer.body["order_id"].as_i64()
                {
                    self.completed.push(order_id);
                    self.call(
                        live,
                        "order.view",
                        "GET",
                        &format!("{}/orders/{order_id}", e.order),
                        None,
                    );
                }
            }
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
    let listed = setup.send(
        "GET",
        &format!("{}/products?limit=200", endpoints.catalog),
        None,
    );
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
    if let Some(stock) = args.restock {
        // A movement of the difference, with a reason, as an admin would: never a blind
        // overwrite of units orders hold.
        let on_sale = listed.body.as_array().cloned().unwrap_or_default();
        for product in on_sale {
            let (Some(id), Some(now)) = (product["id"].as_i64(), product["stock"].as_i64()) else {
                continue;
            };
            if now == stock {
                continue;
            }
            let body = json!({"delta": stock - now, "reason": "loadgen --restock"}).to_string();
            setup.send(
                "POST",
                &format!("{}/products/{id}/stock", endpoints.catalog),
                Some(&body),
            );
        }
    }
    let before = invariants::read_books(&setup)?;

    let run_id = fastrand::u32(..);
    let products = Arc::new(products);
    let live = Arc::new(Live {
        requests: AtomicU64::new(0),
        server_errors: AtomicU64::new(0),
        per_second: (0..args.duration.as_secs() + 120)
            .map(|_| (AtomicU64::new(0), AtomicU64::new(0)))
            .collect(),
        started: Instant::now(),
    });
    let deadline = live.started + args.duration;
    let done = Arc::new(AtomicBool::new(false));

    let progress = indicatif::ProgressBar::new_spinner();
    progress.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let ticker = {
        let (live, done, progress) = (live.clone(), done.clone(), progress.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let secs = live.started.elapsed().as_secs_f64().max(0.001);
                let requests = live.requests.load(Ordering::Relaxed);
                progress.set_message(format!(
                    "{requests} requests, {:.0} req/s, {} server errors",
                    requests as f64 / secs,
                    live.server_errors.load(Ordering::Relaxed)
                ));
                progress.tick();
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };

    let fault_thread = args.fault.clone().map(|fault| {
        let (pid_dir, down_for, started) = (args.pid_dir.clone(), args.fault_for, live.started);
        let health = format!(
            "{}/health",
            match fault.service.as_str() {
                "catalog-service" => &endpoints.catalog,
                "cart-service" => &endpoints.cart,
                "order-service" => &endpoints.order,
                _ => &endpoints.payment,
            }
        );
        std::thread::spawn(move || fault::inject(&fault, down_for, &pid_dir, &health, started))
    });

    let shoppers: Vec<_> = (0..args.users)
        .map(|vu| {
            let (live, products, mix) = (live.clone(), products.clone(), args.mix.clone());
            let client = Client::new(endpoints.clone());
            std::thread::spawn(move || {
                let mut shopper = Shopper {
                    client,
                    user: format!("lg-{run_id:x}-{vu}"),
                    products,
                    completed: Vec::new(),
                    other: OtherUnits::default(),
                    adds: 0,
                };
                while Instant::now() < deadline {
                    let journey = mix.pick(fastrand::u32(..mix.total()));
                    shopper.run(journey, &live);
                }
                (shopper.client.steps, shopper.completed, shopper.other)
            })
        })
        .collect();

    let mut steps: HashMap<&'static str, StepStats> = HashMap::new();
    let mut completed = Vec::new();
    let mut other = OtherUnits::default();
    for shopper in shoppers {
        let (their_steps, their_completed, their_other) =
            shopper.join().map_err(|_| "a virtual user panicked")?;
        for (step, measured) in their_steps {
            steps.entry(step).or_default().merge(&measured);
        }
        completed.extend(their_completed);
        other.merge(their_other);
    }
    let elapsed = live.started.elapsed();
    done.store(true, Ordering::Relaxed);
    let _ = ticker.join();
    progress.finish_and_clear();
    let fault = match fault_thread {
        Some(thread) => Some(thread.join().map_err(|_| "the fault thread panicked")??),
        None => None,
    };

    // Let webhooks and interrupted checkouts settle, then judge.
    let settle_until = Instant::now() + args.settle;
    let invariants = loop {
        let after = invariants::read_books(&setup);
        let unpaid = completed
            .iter()
            .filter(|id| {
                let order = setup.send("GET", &format!("{}/orders/{id}", endpoints.order), None);
                !matches!(
                    order.body["status"].as_str(),
                    Some("PAID" | "SHIPPED" | "DELIVERED")
                )
            })
            .count();
        let verdicts = match &after {
            Ok(after) => invariants::check(&before, after, &other, unpaid, completed.len()),
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
            break verdicts;
        }
        std::thread::sleep(Duration::from_millis(500));
    };

    let mut step_reports: Vec<StepReport> = steps
        .iter()
        .map(|(name, s)| s.report(name, elapsed))
        .collect();
    step_reports.sort_by(|a, b| a.step.cmp(&b.step));
    let total_requests = live.requests.load(Ordering::Relaxed);
    let seconds = elapsed.as_secs() as usize + 1;
    Ok(Report {
        users: args.users,
        duration_s: elapsed.as_secs_f64(),
        total_requests,
        requests_per_second: total_requests as f64 / elapsed.as_secs_f64().max(0.001),
        server_errors: live.server_errors.load(Ordering::Relaxed),
        checkouts_completed: completed.len(),
        checkouts_per_second: completed.len() as f64 / elapsed.as_secs_f64().max(0.001),
        steps: step_reports,
        timeline: live.per_second[..seconds.min(live.per_second.len())]
            .iter()
            .map(|(r, e)| (r.load(Ordering::Relaxed), e.load(Ordering::Relaxed)))
            .collect(),
        invariants,
        fault,
    })
}

/// The report as text: a table per step, the invariants, and the fault's recovery.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{} users for {:.1}s: {} requests, {:.0} req/s, {} server errors, {} checkouts completed ({:.1}/s)\n\n",
        report.users, report.duration_s, report.total_requests, report.requests_per_second,
        report.server_errors, report.checkouts_completed, report.checkouts_per_second
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
