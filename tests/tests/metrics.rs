//! `/metrics` as Prometheus scrapes it: its own bearer token (and nothing else with it), the
//! process and build, and the business counters a journey moves.

// A test or tool: a failure to set up ends it, with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use system_tests::{Client, KEY, STOREFRONT_KEY, Shop};

const TOKEN: &str = "scrape-token-for-tests";
const CARD: &str =
    r#"{"card":{"number":"4242424242424242","exp_month":12,"exp_year":2031,"cvc":"123"}}"#;
const DECLINED: &str =
    r#"{"card":{"number":"4000000000000002","exp_month":12,"exp_year":2031,"cvc":"123"}}"#;

/// The metrics text of the service at `base`, scraped with the token.
fn scrape(base: &str) -> String {
    ureq::get(&format!("{base}/metrics"))
        .header("Authorization", &format!("Bearer {TOKEN}"))
        .call()
        .expect("a scrape with the token")
        .into_body()
        .read_to_string()
        .expect("text")
}

/// The value of the sample of `metric` whose labels include every one of `labels`.
fn sample(text: &str, metric: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|line| line.starts_with(&format!("{metric}{{")))
        .find(|line| labels.iter().all(|label| line.contains(label)))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[test]
fn a_scraper_reads_process_build_and_business_metrics_with_its_token_and_nothing_more() {
    let flags: &[&str] = &["--metrics-token", TOKEN];
    let shop = Shop::start_with(&[
        ("catalog-service", flags),
        ("order-service", flags),
        ("payment-service", flags),
        ("cart-service", flags),
    ]);
    let client = Client::new();
    let cart = shop.cart.url();
    assert_eq!(
        client.post(&format!("{cart}/cart/meg/add?product_id=2")).0,
        200
    );
    let (status, _) = client.post_json(&format!("{cart}/cart/meg/checkout"), DECLINED);
    assert_eq!(status, 402);
    let (status, _) = client.post_json(&format!("{cart}/cart/meg/checkout"), CARD);
    assert_eq!(status, 201);

    let carts = scrape(&cart);
    let checkouts = |labels: &[&str]| sample(&carts, "checkouts_total", labels);
    assert_eq!(checkouts(&[r#"outcome="completed""#]), Some(1.0), "{carts}");
    assert_eq!(
        checkouts(&[r#"outcome="failed""#, r#"failed_step="pay""#]),
        Some(1.0),
        "{carts}"
    );
    let payments = scrape(&shop.payment.url());
    let paid = |labels: &[&str]| sample(&payments, "payments_total", labels);
    assert_eq!(paid(&[r#"outcome="captured""#]), Some(1.0), "{payments}");
    assert_eq!(
        paid(&[r#"outcome="failed""#, r#"decline_code="card_declined""#]),
        Some(1.0),
        "{payments}"
    );
    assert_eq!(
        sample(
            &payments,
            "webhook_deliveries_total",
            &[r#"result="delivered""#]
        ),
        Some(1.0),
        "{payments}"
    );
    for text in [&carts, &payments] {
        assert!(
            sample(text, "process_resident_memory_bytes", &[]).unwrap_or(0.0) > 1e6,
            "{text}"
        );
        assert!(
            sample(text, "process_open_fds", &[]).unwrap_or(0.0) > 0.0,
            "{text}"
        );
        assert_eq!(
            sample(text, "build_info", &["version="]),
            Some(1.0),
            "{text}"
        );
    }

    // The token opens /metrics only; a storefront key does not open it; the admin key does.
    let with = |path: &str, headers: &[(&str, &str)]| {
        client
            .try_call(
                "GET",
                &format!("{}{path}", shop.catalog.url()),
                None,
                headers,
            )
            .expect("an answer")
            .0
    };
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(with("/metrics", &[("Authorization", &bearer)]), 200);
    assert_eq!(with("/products", &[("Authorization", &bearer)]), 401);
    assert_eq!(
        with("/metrics", &[("Authorization", "Bearer not-the-token")]),
        401
    );
    assert_eq!(with("/metrics", &[]), 401);
    assert_eq!(with("/metrics", &[("X-API-Key", STOREFRONT_KEY)]), 403);
    assert_eq!(with("/metrics", &[("X-API-Key", KEY)]), 200);
}

/// Every service's `/metrics`, asked for as Prometheus 2 asks for the text format, passes
/// `promtool check metrics` (Debian's `prometheus` package; `scripts/test.sh` installs it)
/// with nothing to say, and the business series are there at 0 before anything happened.
#[test]
fn promtool_finds_nothing_to_lint_in_any_services_text_format_and_known_series_start_at_zero() {
    use std::io::Write;
    let mut shop = Shop::start();
    let client = Client::new();
    client.get(&format!("{}/products/1", shop.catalog.url()));
    for service in shop.services() {
        let base = service.url();
        let text = ureq::get(&format!("{base}/metrics"))
            .header("X-API-Key", KEY)
            .header("Accept", "text/plain; version=0.0.4")
            .call()
            .expect("a scrape")
            .into_body()
            .read_to_string()
            .expect("text");
        assert!(!text.contains("# EOF"), "{}: {text}", service.name);
        let mut promtool = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("promtool (Debian's prometheus package; scripts/test.sh installs it)");
        promtool
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let output = promtool.wait_with_output().unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success() && said.trim().is_empty(),
            "{}: promtool says {said}\n{text}",
            service.name
        );
    }
    let carts = scrape_with_key(&shop.cart.url());
    assert_eq!(
        sample(&carts, "checkouts_total", &[r#"outcome="completed""#]),
        Some(0.0),
        "{carts}"
    );
    let payments = scrape_with_key(&shop.payment.url());
    assert_eq!(
        sample(
            &payments,
            "payments_total",
            &[r#"decline_code="insufficient_funds""#]
        ),
        Some(0.0),
        "{payments}"
    );
    assert_eq!(
        sample(
            &payments,
            "webhook_deliveries_total",
            &[r#"result="refused""#]
        ),
        Some(0.0),
        "{payments}"
    );
}

fn scrape_with_key(base: &str) -> String {
    ureq::get(&format!("{base}/metrics"))
        .header("X-API-Key", KEY)
        .call()
        .expect("a scrape")
        .into_body()
        .read_to_string()
        .expect("text")
}
