//! The accountant's exports: orders and payments of a period as CSV, whose sums are the
//! stats' and the payment summary's.

// A test or tool: a failure to set up ends it, with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use system_tests::{Client, KEY, STOREFRONT_KEY, Shop, wait_for_order};

const CARD: &str = r#"{"number":"4242424242424242","exp_month":12,"exp_year":2031,"cvc":"123"}"#;

/// Records of an RFC 4180 text: fields split on commas outside quotes, `""` a quote.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let (mut record, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => record.push(std::mem::take(&mut field)),
            ('\r', false) if chars.peek() == Some(&'\n') => {
                chars.next();
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            _ => field.push(c),
        }
    }
    assert!(
        field.is_empty() && record.is_empty(),
        "every record ends with CRLF"
    );
    records
}

/// Records as maps from the header's names.
fn rows(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut records = parse_csv(text).into_iter();
    let header = records.next().expect("a header");
    records
        .map(|r| {
            assert_eq!(r.len(), header.len(), "{r:?}");
            header.iter().cloned().zip(r).collect()
        })
        .collect()
}

fn cents(text: &str) -> i64 {
    if text.is_empty() {
        return 0;
    }
    (text.parse::<f64>().unwrap() * 100.0).round() as i64
}

fn export(client: &Client, url: &str) -> (u16, Vec<(String, String)>, String) {
    let (status, headers, _) = client
        .try_call_full("GET", url, None, &[("X-API-Key", KEY)])
        .unwrap();
    let text = ureq::get(url)
        .header("X-API-Key", KEY)
        .call()
        .map(|r| r.into_body().read_to_string().unwrap())
        .unwrap_or_default();
    (status, headers, text)
}

#[test]
fn the_exports_sums_are_the_stats_and_the_summary_and_personal_text_cannot_run_as_a_formula() {
    let shop = Shop::start_with(&[("order-service", &["--stock-retry-ms", "100"])]);
    let client = Client::new();
    let (cart, order, payment) = (shop.cart.url(), shop.order.url(), shop.payment.url());
    let (status, _) = client.post_json(
        &format!("{order}/promo-codes"),
        r#"{"code":"TEN","percent_off":10}"#,
    );
    assert_eq!(status, 201);
    let names = [
        "Lovelace, Ada",
        "Grace \"Amazing\" Hopper",
        "=HYPERLINK(\"http://x\")",
    ];
    let mut paid = Vec::new();
    for (n, name) in names.iter().enumerate() {
        let user = format!("exporter-{n}");
        assert_eq!(
            client
                .post(&format!(
                    "{cart}/cart/{user}/add?product_id={}&quantity=2",
                    n + 1
                ))
                .0,
            200
        );
        let body = json!({
            "card": serde_json::from_str::<Value>(CARD).unwrap(),
            "customer": {"email": format!("buyer{n}@example.org"), "name": name},
            "shipping_address": {"lines": ["1 Export Row"], "city": "Leeds", "postal_code": "LS1 1AA", "country": "GB"},
            "promo_code": if n == 1 { Some("TEN") } else { None },
        });
        let (status, done) =
            client.post_json(&format!("{cart}/cart/{user}/checkout"), &body.to_string());
        assert_eq!(status, 201, "{done}");
        paid.push((
            done["order_id"].as_i64().unwrap(),
            done["payment_id"].as_i64().unwrap(),
        ));
    }
    // A declined checkout leaves a cancelled order and a failed payment; a partial refund.
    assert_eq!(
        client
            .post(&format!("{cart}/cart/decliner/add?product_id=2"))
            .0,
        200
    );
    let declined =
        r#"{"card":{"number":"4000000000000002","exp_month":12,"exp_year":2031,"cvc":"123"}}"#;
    assert_eq!(
        client
            .post_json(&format!("{cart}/cart/decliner/checkout"), declined)
            .0,
        402
    );
    let (first_order, first_payment) = paid[0];
    let (status, refund) = client.post_json(
        &format!("{payment}/payments/{first_payment}/refunds"),
        r#"{"amount":10.00,"reason":"scratched"}"#,
    );
    assert_eq!(status, 201, "{refund}");
    wait_for_order(&client, &order, first_order, Duration::from_secs(10), |o| {
        o["refunded"] == 10.0
    });

    let (_, stats) = client.get(&format!("{order}/orders/stats"));
    let (status, headers, text) = export(&client, &format!("{order}/orders/export.csv"));
    assert_eq!(status, 200);
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert!(header("content-type").unwrap().starts_with("text/csv"));
    assert_eq!(
        header("transfer-encoding").as_deref(),
        Some("chunked"),
        "sent as it is read"
    );
    let orders = rows(&text);
    let ids: BTreeSet<&str> = orders.iter().map(|r| r["order_id"].as_str()).collect();
    assert_eq!(ids.len() as i64, stats["order_count"].as_i64().unwrap());
    let revenue: i64 = orders
        .iter()
        .filter(|r| ["PAID", "SHIPPED", "DELIVERED"].contains(&r["status"].as_str()))
        .map(|r| cents(&r["order_total"]) - cents(&r["order_refunded"]))
        .sum();
    assert_eq!(revenue, cents(&stats["revenue"].to_string()), "{text}");
    let lines: i64 = orders.iter().map(|r| cents(&r["line_total"])).sum();
    let subtotals: i64 = orders.iter().map(|r| cents(&r["order_subtotal"])).sum();
    assert_eq!(lines, subtotals, "each order's amounts once");
    // Text comes back as it was typed, but cannot start a formula.
    let customers: BTreeSet<&str> = orders.iter().map(|r| r["customer_name"].as_str()).collect();
    assert!(
        customers.contains("Lovelace, Ada") && customers.contains("Grace \"Amazing\" Hopper"),
        "{customers:?}"
    );
    assert!(
        customers.contains("'=HYPERLINK(\"http://x\")"),
        "{customers:?}"
    );
    assert!(
        orders
            .iter()
            .any(|r| r["promo_code"] == "TEN" && r["order_discount"] != "0.00")
    );

    let (_, summary) = client.get(&format!("{payment}/payments/summary"));
    let (status, _, text) = export(&client, &format!("{payment}/payments/export.csv"));
    assert_eq!(status, 200);
    let money = rows(&text);
    let captured: i64 = money
        .iter()
        .filter(|r| r["kind"] == "payment" && r["status"] == "captured")
        .map(|r| cents(&r["amount"]))
        .sum();
    assert_eq!(
        captured,
        cents(&summary["captured_total"].to_string()),
        "{text}"
    );
    let refunded: i64 = money
        .iter()
        .filter(|r| r["kind"] == "refund")
        .map(|r| cents(&r["amount"]))
        .sum();
    assert_eq!(refunded, cents(&summary["refunded_total"].to_string()));
    assert_eq!(refunded, 1000);
    assert!(
        money
            .iter()
            .any(|r| r["status"] == "failed" && r["reason"] == "card_declined")
    );
    assert!(
        !text.contains("4242424242424242") && !text.contains("2031"),
        "brand and last four only"
    );

    // A period: the future has nothing; a bad time is a 422; the storefront key is refused.
    let (status, _, text) = export(
        &client,
        &format!("{order}/orders/export.csv?from=2999-01-01T00:00:00Z"),
    );
    assert_eq!((status, rows(&text).len()), (200, 0));
    let (status, _, text) = export(
        &client,
        &format!("{payment}/payments/export.csv?to=2000-01-01T00:00:00Z"),
    );
    assert_eq!((status, rows(&text).len()), (200, 0));
    let (status, answer) = client.get(&format!("{order}/orders/export.csv?from=yesterday"));
    assert_eq!(status, 422, "{answer}");
    for url in [
        format!("{order}/orders/export.csv"),
        format!("{payment}/payments/export.csv"),
    ] {
        let (status, _) = client.call_with_key("GET", &url, None, Some(STOREFRONT_KEY));
        assert_eq!(status, 403, "{url}");
    }
}

#[test]
fn the_shops_one_currency_is_said_beside_every_amount_and_a_bad_one_stops_the_start() {
    let gbp: &[&str] = &["--currency", "GBP"];
    let shop = Shop::start_with(&[
        ("catalog-service", gbp),
        ("order-service", gbp),
        ("payment-service", gbp),
        ("cart-service", gbp),
    ]);
    let client = Client::new();
    let (cart, order, payment) = (shop.cart.url(), shop.order.url(), shop.payment.url());
    assert_eq!(
        client.post(&format!("{cart}/cart/quid/add?product_id=2")).0,
        200
    );
    let body = format!(r#"{{"card":{CARD}}}"#);
    let (status, done) = client.post_json(&format!("{cart}/cart/quid/checkout"), &body);
    assert_eq!(status, 201, "{done}");
    let (_, placed) = client.get(&format!("{order}/orders/{}", done["order_id"]));
    assert_eq!(placed["currency"], "GBP", "{placed}");
    let (_, paid) = client.get(&format!("{payment}/payments/{}", done["payment_id"]));
    assert_eq!(paid["currency"], "GBP", "{paid}");
    let (_, stats) = client.get(&format!("{order}/orders/stats"));
    assert_eq!(stats["currency"], "GBP");
    let (_, _, text) = export(&client, &format!("{order}/orders/export.csv"));
    assert!(rows(&text).iter().all(|r| r["currency"] == "GBP"), "{text}");
    let (_, _, text) = export(&client, &format!("{payment}/payments/export.csv"));
    assert!(rows(&text).iter().all(|r| r["currency"] == "GBP"), "{text}");

    let output = std::process::Command::new(system_tests::bin_dir().join("order-service"))
        .args(["--port", "0", "--currency", "euro"])
        .env("API_KEY", KEY)
        .env("WEBHOOK_SECRET", system_tests::WEBHOOK_SECRET)
        .env("ORDER_DB", shop.dir.path().join("other.db"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("ISO 4217"), "{said}");
}
