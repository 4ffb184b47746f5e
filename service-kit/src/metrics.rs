//! `GET /metrics` in the Prometheus text format: requests and their latency per route,
//! and whatever gauges a service adds (payment: its webhook backlog). Each router owns its
//! registry; nothing is global.

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
    before_scrape: Option<BeforeScrape>,
}

/// A service's metrics, ready to record and render. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    requests: Family<Labels, Counter>,
    latency: Family<Labels, Histogram>,
    before_scrape: Option<BeforeScrape>,
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
            .field("registry", &self.registry)
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
        MetricsBuilder {
            registry,
            requests,
            latency,
            before_scrape: None,
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
        Metrics {
            registry: Arc::new(self.registry),
            requests: self.requests,
            latency: self.latency,
            before_scrape: self.before_scrape,
        }
    }
}

impl Metrics {
    /// The exposition text.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
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
        .latency
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    let mut with_status = labels;
    with_status.push(("status".to_string(), response.status().as_u16().to_string()));
    metrics.requests.get_or_create(&with_status).inc();
    response
}

/// Request counts and latencies per route, in the Prometheus (OpenMetrics) text format.
#[utoipa::path(
    get,
    path = "/metrics",
    responses(
        (status = 200, description = "The metrics", content_type = "application/openmetrics-text", body = String),
        crate::openapi::ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn scrape(State(metrics): State<Metrics>) -> Response {
    if let Some(refresh) = &metrics.before_scrape
        && let Err(err) = refresh().await
    {
        return err.into_response();
    }
    metrics.response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges_in_the_text_format() {
        let mut builder = MetricsBuilder::new("test-service");
        let backlog = builder.gauge("webhook_backlog_pending", "Deliveries pending");
        let metrics = builder.finish();
        backlog.set(3);
        let labels = vec![
            ("route".to_string(), "/orders/{id}".to_string()),
            ("method".to_string(), "GET".to_string()),
            ("status".to_string(), "200".to_string()),
        ];
        metrics.requests.get_or_create(&labels).inc();
        metrics
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
        assert!(text.ends_with("# EOF\n"));
    }
}
