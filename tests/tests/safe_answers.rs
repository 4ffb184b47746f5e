//! Every answer is safe to show in a browser: never sniffed into a page, never framed,
//! never kept by a shared cache; the docs page runs only its own scripts.

use system_tests::{Client, KEY, Shop};

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[test]
fn every_answer_of_every_service_says_nosniff_no_store_and_a_strict_policy() {
    let shop = Shop::start();
    let client = Client::new();
    let script = "<script>alert(1)</script>";
    let quoted = form_urlencoded::byte_serialize(script.as_bytes()).collect::<String>();
    let urls = [
        // A 422 that quotes the client's <script> back.
        format!("{}/orders?status={quoted}", shop.order.url()),
        format!("{}/orders/1", shop.order.url()),
        format!("{}/payments", shop.payment.url()),
        format!("{}/cart/u1", shop.cart.url()),
        format!("{}/products", shop.catalog.url()),
        format!("{}/no-such-route", shop.catalog.url()),
        format!("{}/health", shop.payment.url()),
        format!("{}/openapi.json", shop.cart.url()),
    ];
    for url in &urls {
        let (status, headers, body) = client
            .try_call_full("GET", url, None, &[("X-API-Key", KEY)])
            .unwrap();
        assert_eq!(
            header(&headers, "x-content-type-options"),
            Some("nosniff"),
            "{url}"
        );
        assert_eq!(header(&headers, "cache-control"), Some("no-store"), "{url}");
        let policy = header(&headers, "content-security-policy").unwrap_or_default();
        assert!(policy.contains("default-src 'none'"), "{url}: {policy}");
        assert!(policy.contains("frame-ancestors 'none'"), "{url}: {policy}");
        if url.contains("status=") {
            assert_eq!(status, 422, "{body}");
        }
    }
    // Swagger UI runs its own scripts only, and cannot be framed.
    let (status, headers, _) = client
        .try_call_full("GET", &format!("{}/docs/", shop.order.url()), None, &[])
        .unwrap();
    assert_eq!(status, 200);
    let policy = header(&headers, "content-security-policy").unwrap_or_default();
    assert!(
        policy.contains("script-src 'self'") && !policy.contains("unsafe-eval"),
        "{policy}"
    );
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
}
