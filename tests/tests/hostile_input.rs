//! Hostile input against the four real services: wrong types, huge numbers, negative and zero
//! quantities, 10 KB strings, NUL bytes, SQL fragments, bytes that are not UTF-8, deep JSON,
//! wrong content types and oversized bodies. Each is a JSON 4xx, and afterwards every list
//! and every event feed is exactly as it was.

use serde_json::Value;
use system_tests::{Client, Shop};

const GUIDE_ORDER: &str = r#"[{"product_id":1,"quantity":1,"price":999.99}]"#;

/// Numbers that are not a usable id or quantity, as they would appear in a URL.
fn bad_numbers() -> Vec<String> {
    [
        "0",
        "-1",
        "1001",
        "99999999999999999999",
        "1e3",
        "1.5",
        "abc",
        "%00",
        "1%00",
        "%FF%FE",
        "1%27%20OR%20%271%27%3D%271",
        "1%3BDROP%20TABLE%20products",
    ]
    .into_iter()
    .map(String::from)
    .chain(["9".repeat(10 * 1024)])
    .collect()
}

/// User ids no shopper can have.
fn bad_users() -> Vec<String> {
    [
        "%00",
        "a%00b",
        "%FF",
        "a%27%20OR%201%3D1--",
        "%3Cscript%3E",
        "a%20b",
    ]
    .into_iter()
    .map(String::from)
    .chain(["x".repeat(10 * 1024)])
    .collect()
}

/// A request as the matrix holds it: method, URL, content type and body.
type Request = (&'static str, String, Option<&'static str>, Vec<u8>);

/// A request with `body` as JSON, or with no body at all when it is empty.
fn with_json(method: &'static str, url: String, body: &str) -> Request {
    let content_type = (!body.is_empty()).then_some("application/json");
    (method, url, content_type, body.as_bytes().to_vec())
}

/// Everything a client can see of the shop's state.
fn snapshot(client: &Client, shop: &Shop) -> Vec<Value> {
    let urls = [
        format!("{}/products?limit=200", shop.catalog.url()),
        format!("{}/cart/u1", shop.cart.url()),
        format!("{}/checkouts?user_id=u1", shop.cart.url()),
        format!("{}/orders?limit=200", shop.order.url()),
        format!("{}/payments?limit=200", shop.payment.url()),
        format!("{}/webhooks/deliveries?limit=200", shop.payment.url()),
        format!("{}/events?limit=200", shop.catalog.url()),
        format!("{}/events?limit=200", shop.cart.url()),
        format!("{}/events?limit=200", shop.order.url()),
        format!("{}/events?limit=200", shop.payment.url()),
    ];
    urls.iter()
        .map(|url| {
            let (status, body) = client.get(url);
            assert_eq!(status, 200, "{url}: {body}");
            body
        })
        .collect()
}

#[test]
fn hostile_input_is_a_json_4xx_everywhere_and_changes_nothing() {
    let shop = Shop::start();
    let client = Client::new();
    let (cart, catalog, order, payment) = (
        shop.cart.url(),
        shop.catalog.url(),
        shop.order.url(),
        shop.payment.url(),
    );
    // Something to aim at: a cart line and a PENDING order a valid request could pay.
    let (status, _) = client.post(&format!("{cart}/cart/u1/add?product_id=1&quantity=2"));
    assert_eq!(status, 200);
    let (status, placed) = client.post_json(&format!("{order}/orders?user_id=u1"), GUIDE_ORDER);
    assert_eq!(status, 201);
    let pending = placed["id"].as_i64().expect("order id");
    let before = snapshot(&client, &shop);

    let mut requests: Vec<Request> = Vec::new();
    let json = Some("application/json");
    let none = Vec::new;
    for n in bad_numbers() {
        for (method, url, body) in [
            ("GET", format!("{catalog}/products/{n}"), ""),
            ("PUT", format!("{catalog}/products/{n}"), r#"{"stock":0}"#),
            ("DELETE", format!("{catalog}/products/{n}"), ""),
            ("POST", format!("{catalog}/reservations/{n}/commit"), ""),
            ("POST", format!("{catalog}/reservations/{n}/release"), ""),
            (
                "POST",
                format!("{cart}/cart/u1/add?product_id={n}&quantity=1"),
                "",
            ),
            (
                "POST",
                format!("{cart}/cart/u1/add?product_id=1&quantity={n}"),
                "",
            ),
            ("PUT", format!("{cart}/cart/u1/items/1?quantity={n}"), ""),
            ("PUT", format!("{cart}/cart/u1/items/{n}?quantity=1"), ""),
            ("DELETE", format!("{cart}/cart/u1/items/{n}"), ""),
            ("GET", format!("{cart}/checkouts/{n}"), ""),
            ("GET", format!("{order}/orders/{n}"), ""),
            (
                "PUT",
                format!("{order}/orders/{n}/status"),
                r#"{"status":"CANCELLED"}"#,
            ),
            (
                "POST",
                format!("{payment}/pay?order_id={n}&amount=999.99"),
                "",
            ),
            (
                "POST",
                format!("{payment}/pay?order_id={pending}&amount={n}"),
                "",
            ),
            ("GET", format!("{payment}/payments/{n}"), ""),
        ] {
            requests.push(with_json(method, url, body));
        }
    }
    for user in bad_users() {
        for (method, url, body) in [
            ("GET", format!("{cart}/cart/{user}"), ""),
            ("POST", format!("{cart}/cart/{user}/add?product_id=1"), ""),
            ("DELETE", format!("{cart}/cart/{user}/clear"), ""),
            ("POST", format!("{cart}/cart/{user}/checkout"), ""),
            ("GET", format!("{cart}/checkouts?user_id={user}"), ""),
            (
                "POST",
                format!("{order}/orders?user_id={user}"),
                GUIDE_ORDER,
            ),
            ("GET", format!("{order}/orders?user_id={user}"), ""),
            ("GET", format!("{order}/orders?status={user}"), ""),
            ("GET", format!("{payment}/webhooks/deliveries/{user}"), ""),
            (
                "POST",
                format!("{payment}/webhooks/deliveries/{user}/retry"),
                "",
            ),
        ] {
            requests.push(with_json(method, url, body));
        }
    }
    let long = "x".repeat(10 * 1024);
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let not_utf8 =
        b"[{\"product_id\":1,\"quantity\":1,\"price\":999.99,\"note\":\"\xff\xfe\"}]".to_vec();
    let too_big = format!(
        r#"[{{"product_id":1,"quantity":1,"price":999.99,"note":"{}"}}]"#,
        "x".repeat(70 * 1024)
    );
    let new_order = format!("{order}/orders?user_id=u2");
    let card = |number: &str, cvc: &str| {
        format!(
            r#"{{"card":{{"number":"{number}","exp_month":12,"exp_year":2031,"cvc":"{cvc}"}}}}"#
        )
    };
    for (method, url, content_type, body) in [
        ("POST", new_order.clone(), json, not_utf8.clone()),
        ("POST", new_order.clone(), json, deep.clone().into_bytes()),
        (
            "POST",
            new_order.clone(),
            json,
            too_big.clone().into_bytes(),
        ),
        (
            "POST",
            new_order.clone(),
            Some("text/plain"),
            GUIDE_ORDER.as_bytes().to_vec(),
        ),
        (
            "POST",
            new_order.clone(),
            None,
            GUIDE_ORDER.as_bytes().to_vec(),
        ),
        ("POST", new_order.clone(), json, none()),
        ("POST", new_order.clone(), json, br#"[]"#.to_vec()),
        (
            "POST",
            new_order.clone(),
            json,
            br#"{"product_id":1}"#.to_vec(),
        ),
        (
            "POST",
            new_order.clone(),
            json,
            br#"[{"product_id":1,"quantity":1,"price":1e30}]"#.to_vec(),
        ),
        (
            "POST",
            new_order.clone(),
            json,
            br#"[{"product_id":1,"quantity":1e20,"price":999.99}]"#.to_vec(),
        ),
        (
            "POST",
            new_order.clone(),
            json,
            br#"[{"product_id":1,"quantity":-1,"price":999.99}]"#.to_vec(),
        ),
        (
            "POST",
            new_order.clone(),
            json,
            br#"[{"product_id":1,"quantity":"1\u0000","price":999.99}]"#.to_vec(),
        ),
        (
            "POST",
            new_order.clone(),
            json,
            br#"[{"product_id":1,"quantity":1,"price":0.001}]"#.to_vec(),
        ),
        (
            "POST",
            new_order.clone(),
            json,
            br#"[{"product_id":1,"quantity":1,"price":-999.99}]"#.to_vec(),
        ),
        (
            "POST",
            new_order.clone(),
            json,
            format!(r#"[{{"product_id":"{long}","quantity":1,"price":999.99}}]"#).into_bytes(),
        ),
        (
            "PUT",
            format!("{order}/orders/{pending}/status"),
            json,
            br#"{"status":"SHIPPED\u0000"}"#.to_vec(),
        ),
        (
            "PUT",
            format!("{order}/orders/{pending}/status"),
            json,
            format!(r#"{{"status":"{long}"}}"#).into_bytes(),
        ),
        (
            "PUT",
            format!("{order}/orders/{pending}/status"),
            json,
            br#"{"status":"PAID"}"#.to_vec(),
        ),
        (
            "PUT",
            format!("{order}/orders/{pending}/status"),
            json,
            b"{\"status\":\"\xff\"}".to_vec(),
        ),
        (
            "PUT",
            format!("{order}/orders/{pending}/status"),
            Some("text/plain"),
            br#"{"status":"CANCELLED"}"#.to_vec(),
        ),
        (
            "POST",
            format!("{catalog}/products"),
            json,
            format!(r#"{{"name":"{long}","price":1,"stock":1}}"#).into_bytes(),
        ),
        (
            "POST",
            format!("{catalog}/products"),
            json,
            br#"{"name":"nul\u0000","price":1,"stock":1}"#.to_vec(),
        ),
        (
            "POST",
            format!("{catalog}/products"),
            json,
            br#"{"name":"x','y');DROP TABLE products;--","price":-1,"stock":1}"#.to_vec(),
        ),
        (
            "POST",
            format!("{catalog}/products"),
            json,
            br#"{"name":"big","price":99999999999999999999,"stock":1}"#.to_vec(),
        ),
        (
            "POST",
            format!("{catalog}/products"),
            json,
            br#"{"name":"many","price":1,"stock":1e30}"#.to_vec(),
        ),
        (
            "POST",
            format!("{catalog}/products"),
            json,
            not_utf8.clone(),
        ),
        (
            "PUT",
            format!("{catalog}/products/1"),
            json,
            br#"{"price":"free"}"#.to_vec(),
        ),
        (
            "PUT",
            format!("{catalog}/products/1"),
            json,
            br#"{"stock":-5}"#.to_vec(),
        ),
        (
            "POST",
            format!("{catalog}/reservations"),
            json,
            deep.clone().into_bytes(),
        ),
        (
            "POST",
            format!("{catalog}/reservations"),
            json,
            br#"{"order_id":1,"lines":[{"product_id":1,"quantity":0}]}"#.to_vec(),
        ),
        (
            "POST",
            format!("{catalog}/reservations"),
            json,
            br#"{"order_id":1,"lines":[{"product_id":1,"quantity":99999999999}]}"#.to_vec(),
        ),
        (
            "POST",
            format!("{payment}/pay?order_id={pending}&amount=999.99"),
            json,
            not_utf8.clone(),
        ),
        (
            "POST",
            format!("{payment}/pay?order_id={pending}&amount=999.99"),
            json,
            card("4242424242424242\\u0000", "123").into_bytes(),
        ),
        (
            "POST",
            format!("{payment}/pay?order_id={pending}&amount=999.99"),
            json,
            card(&"4".repeat(10 * 1024), "123").into_bytes(),
        ),
        (
            "POST",
            format!("{payment}/pay?order_id={pending}&amount=999.99"),
            json,
            card("4242424242424242", "1' OR '1'='1").into_bytes(),
        ),
        (
            "POST",
            format!("{payment}/pay?order_id={pending}&amount=999.99"),
            json,
            too_big.clone().into_bytes(),
        ),
        (
            "POST",
            format!("{payment}/pay?order_id={pending}&amount=NaN"),
            None,
            none(),
        ),
        (
            "POST",
            format!("{payment}/pay?order_id={pending}&amount=1e308"),
            None,
            none(),
        ),
        (
            "POST",
            format!("{payment}/pay?order_id={pending}&amount=999.999"),
            None,
            none(),
        ),
        (
            "POST",
            format!("{payment}/pay?order_id={pending}&amount=99999999999999999999.99"),
            None,
            none(),
        ),
        (
            "POST",
            format!("{cart}/cart/u1/checkout"),
            json,
            not_utf8.clone(),
        ),
        (
            "POST",
            format!("{cart}/cart/u1/checkout"),
            json,
            too_big.clone().into_bytes(),
        ),
        // A card must come as JSON.
        (
            "POST",
            format!("{payment}/pay?order_id={pending}&amount=999.99"),
            Some("text/plain"),
            card("4242424242424242", "123").into_bytes(),
        ),
        (
            "POST",
            format!("{cart}/cart/u1/checkout"),
            Some("application/x-www-form-urlencoded"),
            card("4242424242424242", "123").into_bytes(),
        ),
        // A malformed card is refused before the checkout places an order.
        (
            "POST",
            format!("{cart}/cart/u1/checkout"),
            json,
            card("4000000000000002", "12345").into_bytes(),
        ),
        (
            "POST",
            format!("{cart}/cart/u1/checkout"),
            json,
            card("1234567890123456", "123").into_bytes(),
        ),
        (
            "POST",
            format!("{cart}/cart/u1/checkout"),
            json,
            card("4242424242424242\\u0000", "123").into_bytes(),
        ),
        (
            "POST",
            format!("{cart}/cart/u1/checkout"),
            json,
            br#"{"card":{"number":"4242424242424242"}}"#.to_vec(),
        ),
    ] {
        requests.push((method, url, content_type, body));
    }

    for (method, url, content_type, body) in &requests {
        let (status, answer) = client.send_raw(method, url, *content_type, body);
        let shown = &url[..url.len().min(120)];
        assert!(
            matches!(status, 400 | 404 | 405 | 409 | 413 | 415 | 422),
            "{method} {shown}: {status} {answer}"
        );
        assert!(
            answer["error"]["code"].is_string() && answer["error"]["message"].is_string(),
            "{method} {shown}: {status} is not our JSON error: {answer}"
        );
    }
    assert!(requests.len() > 300, "{} requests", requests.len());
    assert_eq!(
        snapshot(&client, &shop),
        before,
        "a refused request changed something"
    );
}
