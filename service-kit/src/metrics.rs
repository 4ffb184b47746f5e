//! `GET /metrics` in the Prometheus text format: requests and their latency per route, the
//! process (memory, CPU, open files, threads, start time), the build, the business counters
//! a service's operations count ([`BusinessCounters`]: checkouts, payments, refunds, webhook
//! deliveries), and whatever gauges a service adds (payment: its webhook backlog). Each
//! router owns its registry; nothing is global.

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type Labels = Vec<(String, String)>;

/// Work run before each scrape, to set a service's gauges from what it reads now (payment:
/// its webhook backlog). An error is the scrape's answer.
pub type BeforeScrape = Arc<
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), crate::ApiError>> + Send>> + Send + Sync,
>;

/// A service's metrics, being registered. Call [`MetricsBuilder::finish`] once every gauge
/// is added.
pub struct MetricsBuilder {
    registry: Registry,
    requests: Family<Labels, Counter>,
    latency: Family<Labels, Histogram>,
    process: ProcessGauges,
    before_scrape: Option<BeforeScrape>,
}

/// A service's metrics, ready to record and render. Cheap to clone: one shared count, as
/// every request clones it (a count per field was a tenth of a product read's CPU).
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<MetricsInner>,
}

/// What [`Metrics`] shares.
struct MetricsInner {
    registry: Registry,
    requests: Family<Labels, Counter>,
    latency: Family<Labels, Histogram>,
    process: ProcessGauges,
    before_scrape: Option<BeforeScrape>,
}

/// Counters of what a service's operations did, by label (a checkout's outcome and failed
/// step, a payment's outcome and decline code, ...). Made with the state the operations
/// share and registered with the service's metrics by [`MetricsBuilder::counters`]; counting
/// needs no registry. Cheap to clone.
#[derive(Clone, Default)]
pub struct BusinessCounters {
    families: Arc<Vec<NamedCounter>>,
}

/// A business counter: its name, help text and series by label.
type NamedCounter = (&'static str, &'static str, Family<Labels, Counter>);

impl std::fmt::Debug for BusinessCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.families.iter().map(|(name, _, _)| *name).collect();
        f.debug_struct("BusinessCounters")
            .field("names", &names)
            .finish()
    }
}

impl BusinessCounters {
    /// Counters named `name` (shown as `<name>_total`), each with its help text.
    pub fn new(counters: &[(&'static str, &'static str)]) -> Self {
        BusinessCounters {
            families: Arc::new(
                counters
                    .iter()
                    .map(|(name, help)| (*name, *help, Family::default()))
                    .collect(),
            ),
        }
    }

    /// The same counters with the series of `name` for each of `label_sets` made now, at 0,
    /// so a scraper sees every known series from the first scrape (a rate over a series
    /// that appears only with its first event misses that event).
    pub fn known(self, name: &str, label_sets: &[Vec<(&str, &str)>]) -> Self {
        if let Some((_, _, family)) = self.families.iter().find(|(n, _, _)| *n == name) {
            for labels in label_sets {
                let labels: Labels = labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                // Made and let go at once: the series exists from now on, at 0.
                drop(family.get_or_create(&labels));
            }
        }
        self
    }

    /// Adds one to counter `name` with these labels (nothing if no such counter was made).
    pub fn inc(&self, name: &str, labels: &[(&str, &str)]) {
        if let Some((_, _, family)) = self.families.iter().find(|(n, _, _)| *n == name) {
            let labels: Labels = labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            family.get_or_create(&labels).inc();
        }
    }
}

/// The process's own gauges, read from `/proc/self` at each scrape (Linux; elsewhere they
/// stay 0).
#[derive(Clone, Default)]
struct ProcessGauges {
    resident_memory_bytes: Gauge,
    virtual_memory_bytes: Gauge,
    open_fds: Gauge,
    threads: Gauge,
    /// A counter (`process_cpu_seconds_total`): the kernel's running total, moved forward to
    /// it at each scrape.
    cpu_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    start_time_seconds: Gauge,
}

impl ProcessGauges {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory",
            self.resident_memory_bytes.clone(),
        );
        registry.register(
            "process_virtual_memory_bytes",
            "Virtual memory",
            self.virtual_memory_bytes.clone(),
        );
        registry.register(
            "process_open_fds",
            "Open file descriptors",
            self.open_fds.clone(),
        );
        registry.register("process_threads", "Threads", self.threads.clone());
        registry.register(
            "process_cpu_seconds",
            "User and system CPU time spent, in seconds (a running total)",
            self.cpu_seconds.clone(),
        );
        registry.register(
            "process_start_time_seconds",
            "When the process started, in Unix seconds",
            self.start_time_seconds.clone(),
        );
        self.start_time_seconds.set(crate::clock::unix_now());
    }

    /// Reads `/proc/self` now.
    fn refresh(&self) {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| -> Option<i64> {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|value| value.parse().ok())
        };
        if let Some(kib) = field("VmRSS:") {
            self.resident_memory_bytes.set(kib.saturating_mul(1024));
        }
        if let Some(kib) = field("VmSize:") {
            self.virtual_memory_bytes.set(kib.saturating_mul(1024));
        }
        if let Some(threads) = field("Threads:") {
            self.threads.set(threads);
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds
                .set(i64::try_from(fds.count()).unwrap_or(i64::MAX));
        }
        // utime and stime, the 14th and 15th fields, after the command name's closing ")";
        // in clock ticks, 100 a second on Linux.
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|t| t.parse::<f64>().ok());
        if let (Some(user), Some(system)) = (ticks(11), ticks(12)) {
            let total = (user + system) / 100.0;
            let ahead = total - self.cpu_seconds.get();
            if ahead > 0.0 {
                self.cpu_seconds.inc_by(ahead);
            }
        }
    }
}

impl std::fmt::Debug for MetricsBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsBuilder")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("registry", &self.inner.registry)
            .finish_non_exhaustive()
    }
}

impl MetricsBuilder {
    /// Request counts and latencies, labelled with `service`.
    pub fn new(service: &'static str) -> Self {
        let mut registry = Registry::with_labels(
            [(
                std::borrow::Cow::Borrowed("service"),
                std::borrow::Cow::Borrowed(service),
            )]
            .into_iter(),
        );
        let requests = Family::<Labels, Counter>::default();
        let latency = Family::<Labels, Histogram>::new_with_constructor(|| {
            // 0.1 ms to about 6.5 s.
            Histogram::new(exponential_buckets(0.0001, 2.0, 17))
        });
        registry.register(
            "http_requests",
            "HTTP requests answered, by route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer, by route and method",
            latency.clone(),
        );
        let process = ProcessGauges::default();
        process.register(&mut registry);
        let build = Family::<Labels, Gauge>::default();
        registry.register(
            "build_info",
            "The build serving: 1, labelled with its version",
            build.clone(),
        );
        build
            .get_or_create(&vec![(
                "version".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            )])
            .set(1);
        MetricsBuilder {
            registry,
            requests,
            latency,
            process,
            before_scrape: None,
        }
    }

    /// Registers the business counters a service's operations count.
    pub fn counters(&mut self, counters: &BusinessCounters) {
        for (name, help, family) in counters.families.iter() {
            self.registry.register(*name, *help, family.clone());
        }
    }

    /// Runs `refresh` before each scrape (to set the gauges this service added).
    pub fn before_scrape<F, Fut>(&mut self, refresh: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), crate::ApiError>> + Send + 'static,
    {
        self.before_scrape = Some(Arc::new(move || Box::pin(refresh())));
    }

    /// Adds a gauge the service sets before each scrape.
    pub fn gauge(&mut self, name: &str, help: &str) -> Gauge {
        let gauge = Gauge::default();
        self.registry.register(name, help, gauge.clone());
        gauge
    }

    /// Freezes the registry.
    pub fn finish(self) -> Metrics {
        let inner = MetricsInner {
            registry: self.registry,
            requests: self.requests,
            latency: self.latency,
            process: self.process,
            before_scrape: self.before_scrape,
        };
        Metrics {
            inner: Arc::new(inner),
        }
    }
}

impl Metrics {
    /// The exposition text (OpenMetrics), the process gauges read now.
    pub fn render(&self) -> String {
        self.inner.process.refresh();
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.inner.registry);
        text
    }

    /// The answer in the format `accept` asks for: OpenMetrics unless it asks for the
    /// Prometheus text format (`text/plain`) and not OpenMetrics.
    pub fn response_for(&self, accept: Option<&str>) -> Response {
        let accept = accept.unwrap_or("");
        let wants_text = accept.contains("text/plain") && !accept.contains("openmetrics");
        if !wants_text {
            return self.response();
        }
        (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            openmetrics_to_text(&self.render()),
        )
            .into_response()
    }

    /// The `/metrics` route rendering these metrics, documented.
    pub fn route(&self) -> OpenApiRouter {
        OpenApiRouter::new()
            .routes(crate::auth::admin(routes!(scrape)))
            .with_state(self.clone())
    }

    /// The `/metrics` answer.
    pub fn response(&self) -> Response {
        (
            [(
                axum::http::header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            self.render(),
        )
            .into_response()
    }

    /// Middleware recording every request under its route pattern (never the raw path, so
    /// ids do not make new series).
    pub fn layer<S: Clone + Send + Sync + 'static>(&self, router: Router<S>) -> Router<S> {
        router.layer(middleware::from_fn_with_state(self.clone(), record))
    }
}

/// OpenMetrics text as the Prometheus text format (0.0.4) reads it: a counter's family is
/// named as its samples are (`_total`), and the `# UNIT` and `# EOF` lines, which that format
/// has not, are left out. Gauges and histograms read the same in both.
pub fn openmetrics_to_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut text = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        text.push_str(renamed.as_deref().unwrap_or(line));
        text.push('\n');
    }
    text
}

async fn record(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = vec![("route".to_string(), route), ("method".to_string(), method)];
    metrics
        .inner
        .latency
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    let mut with_status = labels;
    with_status.push(("status".to_string(), response.status().as_u16().to_string()));
    metrics.inner.requests.get_or_create(&with_status).inc();
    response
}

/// Request counts and latencies per route, in OpenMetrics, or in the Prometheus text format
/// (0.0.4) for a scraper whose `Accept` asks for `text/plain` only.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "probes",
    responses(
        (status = 200, description = "The metrics", content(
            (String = "application/openmetrics-text"),
            (String = "text/plain"),
        )),
        crate::openapi::ProtectedErrors,
    ),
    security(("api_key" = []), ("metrics_token" = []))
)]
pub async fn scrape(State(metrics): State<Metrics>, headers: axum::http::HeaderMap) -> Response {
    if let Some(refresh) = &metrics.inner.before_scrape
        && let Err(err) = refresh().await
    {
        return err.into_response();
    }
    let accept = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    metrics.response_for(accept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges_in_the_text_format() {
        let mut builder = MetricsBuilder::new("test-service");
        let backlog = builder.gauge("webhook_backlog_pending", "Deliveries pending");
        let counters = BusinessCounters::new(&[("checkouts", "Checkouts by outcome")]);
        builder.counters(&counters);
        let metrics = builder.finish();
        backlog.set(3);
        counters.inc("checkouts", &[("outcome", "completed")]);
        counters.inc("checkouts", &[("outcome", "completed")]);
        counters.inc("no_such_counter", &[]);
        let labels = vec![
            ("route".to_string(), "/orders/{id}".to_string()),
            ("method".to_string(), "GET".to_string()),
            ("status".to_string(), "200".to_string()),
        ];
        metrics.inner.requests.get_or_create(&labels).inc();
        metrics
            .inner
            .latency
            .get_or_create(&labels[..2].to_vec())
            .observe(0.003);
        let text = metrics.render();
        assert!(text.contains(r#"http_requests_total{service="test-service",route="/orders/{id}",method="GET",status="200"} 1"#), "{text}");
        assert!(
            text.contains("webhook_backlog_pending{service=\"test-service\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE http_request_duration_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains("http_request_duration_seconds_count{"),
            "{text}"
        );
        assert!(
            text.contains(r#"checkouts_total{service="test-service",outcome="completed"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"build_info{service="test-service",version=""#),
            "{text}"
        );
        #[cfg(target_os = "linux")]
        assert!(
            !text.contains("process_resident_memory_bytes{service=\"test-service\"} 0\n"),
            "read from /proc: {text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn the_text_format_names_counters_by_their_samples_and_known_series_start_at_zero() {
        let mut builder = MetricsBuilder::new("test-service");
        let counters = BusinessCounters::new(&[("refunds", "Refunds made")])
            .known("refunds", &[vec![("kind", "full")], vec![("kind", "part")]]);
        builder.counters(&counters);
        let metrics = builder.finish();
        counters.inc("refunds", &[("kind", "part")]);
        let route = vec![
            ("route".to_string(), "/x".to_string()),
            ("method".to_string(), "GET".to_string()),
        ];
        metrics.inner.latency.get_or_create(&route).observe(0.01);
        let openmetrics = metrics.render();
        assert!(
            openmetrics.contains("# TYPE refunds counter"),
            "{openmetrics}"
        );
        assert!(
            openmetrics.contains(r#"refunds_total{service="test-service",kind="full"} 0"#),
            "{openmetrics}"
        );
        let text = openmetrics_to_text(&openmetrics);
        assert!(text.contains("# TYPE refunds_total counter\n"), "{text}");
        assert!(text.contains("# HELP refunds_total Refunds made"), "{text}");
        assert!(
            text.contains("# TYPE process_cpu_seconds_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE http_request_duration_seconds histogram\n"),
            "{text}"
        );
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
        let answer = metrics.response_for(Some("text/plain; version=0.0.4"));
        assert!(
            answer.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        let prometheus =
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
        let answer = metrics.response_for(Some(prometheus));
        assert!(
            answer.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/openmetrics-text")
        );
    }
}
