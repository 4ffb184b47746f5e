//! Customers and what the storefront key may reach, attacked from outside on the four real
//! services: accounts and sessions, forged tokens, one customer against another's objects,
//! a guest against another guest's order, password guessing, enumeration, and a flood from
//! one client while others shop.

// A test or tool: a failure to set up ends it, with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::time::Duration;
use system_tests::{Client, KEY, SESSION_SECRET, STOREFRONT_KEY, Shop, Shopper, wait_for_order};

const CARD: &str =
    r#"{"card":{"number":"4242424242424242","exp_month":12,"exp_year":2031,"cvc":"123"}}"#;

/// A signed HS256 token over `claims` with `secret` (the attacker's forgeries use others).
fn hs256(claims: &Value, secret: &str) -> String {
    use hmac::{KeyInit, Mac};
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{header}.{payload}").as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{header}.{payload}.{signature}")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Buys one unit of product 2 as `shopper` through their cart; the checkout's answer.
fn buy(client: &Client, shop: &Shop, shopper: &Shopper) -> Value {
    let cart = shop.cart.url();
    let (status, added) = shopper.call(
        client,
        "POST",
        &format!("{cart}/cart/me/add?product_id=2"),
        None,
    );
    assert_eq!(status, 200, "{added}");
    let (status, checkout) = shopper.call(
        client,
        "POST",
        &format!("{cart}/cart/me/checkout"),
        Some(CARD),
    );
    assert_eq!(status, 201, "{checkout}");
    checkout
}

#[test]
fn a_customer_signs_up_in_refreshes_and_out_and_an_ended_session_opens_nothing() {
    let shop = Shop::start();
    let client = Client::new();
    let order = shop.order.url();
    let ada = Shopper::customer(&client, &order, "Ada.Lovelace@Example.com");
    let (status, me) = ada.call(&client, "GET", &format!("{order}/customers/me"), None);
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["email"], "Ada.Lovelace@example.com");
    assert!(me["id"].as_str().unwrap().starts_with("cus_"));
    // The email is compared in any case; the account is the same one.
    let mut again = Shopper::guest();
    let session = again.sign_in(
        &client,
        &order,
        "ada.lovelace@EXAMPLE.com",
        "correct horse battery staple",
    );
    assert_eq!(session["customer"]["id"], me["id"]);
    assert_eq!(session["token_type"], "Bearer");
    assert!(session["expires_in"].as_u64().unwrap() <= 900);

    // Refresh: a new session; the old refresh token, replayed, opens nothing.
    let old = ada.refresh_token.clone().unwrap();
    let body = format!(r#"{{"refresh_token":"{old}"}}"#);
    let (status, refreshed) = Shopper::guest().call(
        &client,
        "POST",
        &format!("{order}/sessions/refresh"),
        Some(&body),
    );
    assert_eq!(status, 200, "{refreshed}");
    let (status, replayed) = Shopper::guest().call(
        &client,
        "POST",
        &format!("{order}/sessions/refresh"),
        Some(&body),
    );
    assert_eq!(status, 401, "a replayed refresh token: {replayed}");

    // Sign-out ends the new one too.
    let newer = refreshed["refresh_token"].as_str().unwrap();
    let body = format!(r#"{{"refresh_token":"{newer}"}}"#);
    let (status, _) = Shopper::guest().call(
        &client,
        "POST",
        &format!("{order}/sessions/sign-out"),
        Some(&body),
    );
    assert_eq!(status, 204);
    let (status, _) = Shopper::guest().call(
        &client,
        "POST",
        &format!("{order}/sessions/refresh"),
        Some(&body),
    );
    assert_eq!(status, 401, "a refresh token replayed after sign-out");

    // A password change ends every session; the old password opens nothing after.
    let change = r#"{"current_password":"correct horse battery staple","new_password":"a brand new passphrase"}"#;
    let (status, wrong) = ada.call(
        &client,
        "PUT",
        &format!("{order}/customers/me/password"),
        Some(&change.replace("correct horse", "wrong horse")),
    );
    assert_eq!(status, 401, "{wrong}");
    let (status, _) = ada.call(
        &client,
        "PUT",
        &format!("{order}/customers/me/password"),
        Some(change),
    );
    assert_eq!(status, 204);
    let other = again.refresh_token.clone().unwrap();
    let body = format!(r#"{{"refresh_token":"{other}"}}"#);
    let (status, _) = Shopper::guest().call(
        &client,
        "POST",
        &format!("{order}/sessions/refresh"),
        Some(&body),
    );
    assert_eq!(status, 401, "the password change ended the other session");
    let login = |password: &str| {
        let body = format!(r#"{{"email":"ada.lovelace@example.com","password":"{password}"}}"#);
        Shopper::guest()
            .call(&client, "POST", &format!("{order}/sessions"), Some(&body))
            .0
    };
    assert_eq!(login("correct horse battery staple"), 401);
    assert_eq!(login("a brand new passphrase"), 201);

    // An admin's reset token sets a new one, once.
    let (status, reset) = client.post_json(
        &format!("{order}/customers/password-resets"),
        r#"{"email":"ADA.lovelace@example.com"}"#,
    );
    assert_eq!(status, 201, "{reset}");
    let token = reset["reset_token"].as_str().unwrap();
    let body = format!(r#"{{"reset_token":"{token}","new_password":"reset passphrase 42"}}"#);
    let (status, _) = Shopper::guest().call(
        &client,
        "POST",
        &format!("{order}/customers/reset-password"),
        Some(&body),
    );
    assert_eq!(status, 204);
    let (status, _) = Shopper::guest().call(
        &client,
        "POST",
        &format!("{order}/customers/reset-password"),
        Some(&body),
    );
    assert_eq!(status, 401, "a reset token works once");
    assert_eq!(login("reset passphrase 42"), 201);
    // The storefront cannot ask for a reset token.
    let (status, _) = Shopper::guest().call(
        &client,
        "POST",
        &format!("{order}/customers/password-resets"),
        Some(r#"{"email":"ada.lovelace@example.com"}"#),
    );
    assert_eq!(status, 403);

    // No log line carries the email or a password.
    let mut shop = shop;
    for service in shop.services() {
        let text = service.log_text().to_lowercase();
        assert!(
            !text.contains("ada.lovelace"),
            "{}: an email in the log",
            service.name
        );
        assert!(
            !text.contains("passphrase"),
            "{}: a password in the log",
            service.name
        );
    }
}

#[test]
fn sign_up_sign_in_and_reset_answers_never_tell_whether_an_email_has_an_account() {
    let shop = Shop::start();
    let client = Client::new();
    let order = shop.order.url();
    Shopper::customer(&client, &order, "known@example.com");
    let sign_up = |email: &str| {
        let body = format!(r#"{{"email":"{email}","password":"some long password"}}"#);
        Shopper::guest().call(&client, "POST", &format!("{order}/customers"), Some(&body))
    };
    assert_eq!(sign_up("known@example.com"), sign_up("unknown@example.com"));
    let sign_in = |email: &str| {
        let body = format!(r#"{{"email":"{email}","password":"not the password"}}"#);
        Shopper::guest().call(&client, "POST", &format!("{order}/sessions"), Some(&body))
    };
    let (known, unknown) = (
        sign_in("known@example.com"),
        sign_in("nobody-here@example.com"),
    );
    assert_eq!(known.0, 401);
    assert_eq!(
        known, unknown,
        "the same answer for a wrong password and an unknown email"
    );
    // A reset token is issued by the admin only, and a made-up one is told apart from a
    // used one by nobody.
    let reset = |token: &str| {
        let body = format!(r#"{{"reset_token":"{token}","new_password":"whatever it is 1"}}"#);
        Shopper::guest().call(
            &client,
            "POST",
            &format!("{order}/customers/reset-password"),
            Some(&body),
        )
    };
    assert_eq!(reset("pr_made-up").0, 401);
    assert_eq!(reset("pr_made-up"), reset("pr_another-made-up"));
    // The sign-up of a known email did not change its password.
    let mut owner = Shopper::guest();
    owner.sign_in(
        &client,
        &order,
        "known@example.com",
        "correct horse battery staple",
    );
}

#[test]
fn forged_expired_early_unsigned_and_resigned_tokens_are_each_refused_with_a_clear_401_everywhere()
{
    let shop = Shop::start();
    let client = Client::new();
    let victim = Shopper::customer(&client, &shop.order.url(), "victim@example.com");
    let sub = victim.customer_id().unwrap();
    let t = now();
    let claims =
        |nbf: u64, exp: u64| json!({"sub": sub, "iss": "shop", "iat": nbf, "nbf": nbf, "exp": exp});
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims(t, t + 600).to_string())
    );
    let hs512 = {
        let token = hs256(&claims(t, t + 600), SESSION_SECRET);
        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        parts[0] = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS512","typ":"JWT"}"#);
        parts.join(".")
    };
    let edited = {
        let mut parts: Vec<String> = victim
            .access_token
            .clone()
            .unwrap()
            .split('.')
            .map(String::from)
            .collect();
        parts[1] = URL_SAFE_NO_PAD.encode(claims(t, t + 86_400).to_string());
        parts.join(".")
    };
    let forgeries = [
        (hs256(&claims(t, t + 600), "a guessed secret"), "signature"),
        (
            hs256(&claims(t - 2000, t - 1000), SESSION_SECRET),
            "expired",
        ),
        (
            hs256(&claims(t + 600, t + 900), SESSION_SECRET),
            "not valid yet",
        ),
        (none, "unsigned"),
        (hs512, "HS256"),
        (edited, "signature"),
        ("not.a.token".to_string(), "malformed"),
    ];
    let urls = [
        format!("{}/cart/me", shop.cart.url()),
        format!("{}/orders", shop.order.url()),
        format!("{}/customers/me", shop.order.url()),
        format!("{}/payments", shop.payment.url()),
        format!("{}/products", shop.catalog.url()),
    ];
    let mut tried = 0;
    for (token, says) in &forgeries {
        let forged = Shopper {
            access_token: Some(token.clone()),
            ..Shopper::guest()
        };
        for url in &urls {
            let (status, answer) = forged.call(&client, "GET", url, None);
            tried += 1;
            assert_eq!(status, 401, "{url} with a {says} token: {answer}");
            let message = answer["error"]["message"].as_str().unwrap();
            assert!(message.contains(says), "{url}: {says}: {message}");
        }
    }
    assert_eq!(tried, 35);
    // The real token is good everywhere.
    for url in &urls {
        let (status, answer) = victim.call(&client, "GET", url, None);
        assert_eq!(status, 200, "{url}: {answer}");
    }
}

#[test]
fn one_customer_never_reads_or_changes_what_belongs_to_another_and_a_guest_token_opens_one_order() {
    let shop = Shop::start();
    let client = Client::new();
    let (cart, order, payment) = (shop.cart.url(), shop.order.url(), shop.payment.url());
    let alice = Shopper::customer(&client, &order, "alice@example.com");
    let bob = Shopper::customer(&client, &order, "bob@example.com");
    let bought = buy(&client, &shop, &alice);
    let alice_order = bought["order_id"].as_i64().unwrap();
    let alice_payment = bought["payment_id"].as_i64().unwrap();
    let alice_checkout = bought["id"].as_i64().unwrap();
    let alice_id = alice.customer_id().unwrap();
    wait_for_order(&client, &order, alice_order, Duration::from_secs(10), |o| {
        o["status"] == "PAID"
    });
    let (status, added) = alice.call(
        &client,
        "POST",
        &format!("{cart}/cart/me/add?product_id=3&quantity=2"),
        None,
    );
    assert_eq!(status, 200, "{added}");

    // Bob, signed in, reaches for each of Alice's things: 404 or his own empty lists.
    let reads = [
        format!("{order}/orders/{alice_order}"),
        format!("{payment}/payments/{alice_payment}"),
        format!("{cart}/checkouts/{alice_checkout}"),
        format!("{cart}/cart/{alice_id}"),
        format!("{order}/orders?user_id={alice_id}"),
        format!("{cart}/checkouts?user_id={alice_id}"),
    ];
    for url in &reads {
        let (status, answer) = bob.call(&client, "GET", url, None);
        assert_eq!(status, 404, "{url}: {answer}");
        assert!(
            !answer.to_string().contains("alice@"),
            "{url} leaked: {answer}"
        );
    }
    let (status, own) = bob.call(&client, "GET", &format!("{order}/orders"), None);
    assert_eq!((status, own.clone()), (200, json!([])), "{own}");
    let (status, own) = bob.call(&client, "GET", &format!("{payment}/payments"), None);
    assert_eq!((status, own.clone()), (200, json!([])), "{own}");
    // Nor can he change her cart or order in her name.
    let writes = [
        ("POST", format!("{cart}/cart/{alice_id}/add?product_id=2")),
        (
            "PUT",
            format!("{cart}/cart/{alice_id}/items/3?quantity=1000"),
        ),
        ("DELETE", format!("{cart}/cart/{alice_id}/clear")),
        ("POST", format!("{cart}/cart/{alice_id}/checkout")),
    ];
    for (method, url) in &writes {
        let (status, answer) = bob.call(&client, method, url, None);
        assert_eq!(status, 404, "{method} {url}: {answer}");
    }
    let (status, answer) = bob.call(
        &client,
        "POST",
        &format!("{order}/orders?user_id={alice_id}"),
        Some(r#"[{"product_id":2,"quantity":1,"price":29.99}]"#),
    );
    assert_eq!(status, 403, "an order in her name: {answer}");
    let (status, answer) = bob.call(
        &client,
        "POST",
        &format!("{payment}/pay?order_id={alice_order}&amount=29.99"),
        None,
    );
    assert_eq!(status, 404, "paying her order: {answer}");
    // Alice sees hers; her cart is as she left it.
    let (_, mine) = alice.call(&client, "GET", &format!("{order}/orders"), None);
    assert_eq!(mine.as_array().unwrap().len(), 1, "{mine}");
    let (_, mine) = alice.call(&client, "GET", &format!("{payment}/payments"), None);
    assert_eq!(mine[0]["card"]["last4"], "4242", "{mine}");
    assert!(mine[0]["card"]["exp_month"].is_null(), "{mine}");
    let (_, her_cart) = alice.call(&client, "GET", &format!("{cart}/cart/me"), None);
    assert_eq!(her_cart["items"][0]["quantity"], 2, "{her_cart}");
    let (_, her_order) = client.get(&format!("{order}/orders/{alice_order}"));
    assert_eq!(her_order["status"], "PAID");

    // Two guests: each one's order token opens that order only.
    let mut first = Shopper::guest();
    first.open_cart(&client, &cart);
    let mut second = Shopper::guest();
    second.open_cart(&client, &cart);
    let first_checkout = buy(&client, &shop, &first);
    let second_checkout = buy(&client, &shop, &second);
    first.order_token = first_checkout["order_token"].as_str().map(String::from);
    second.order_token = second_checkout["order_token"].as_str().map(String::from);
    let second_order = second_checkout["order_id"].as_i64().unwrap();
    let (status, answer) = first.call(
        &client,
        "GET",
        &format!("{order}/orders/{second_order}"),
        None,
    );
    assert_eq!(status, 404, "another guest's order: {answer}");
    let (status, mine) = first.call(&client, "GET", &format!("{order}/orders/by-token"), None);
    assert_eq!((status, &mine["id"]), (200, &first_checkout["order_id"]));
    let (status, answer) = first.call(
        &client,
        "GET",
        &format!("{cart}/checkouts/{}", second_checkout["id"]),
        None,
    );
    assert_eq!(status, 404, "another guest's checkout: {answer}");
    // A made-up cart token opens no cart.
    let made_up = Shopper {
        cart_token: Some("ct_made-up".into()),
        ..Shopper::guest()
    };
    let (status, _) = made_up.call(&client, "GET", &format!("{cart}/cart/me"), None);
    assert_eq!(status, 404);
    // The storefront key alone, without a session or cart token, has no cart at all.
    let (status, answer) = Shopper::guest().call(&client, "GET", &format!("{cart}/cart/me"), None);
    assert_eq!(status, 401, "{answer}");
    // Lists of everyone's are the admin's.
    for url in [
        format!("{order}/orders/stats"),
        format!("{payment}/payments/summary"),
        format!("{order}/events"),
        format!("{payment}/webhooks/deliveries"),
    ] {
        let (status, _) = alice.call(&client, "GET", &url, None);
        assert_eq!(status, 403, "{url}");
    }
}

#[test]
fn a_guest_cart_joins_the_customers_cart_when_they_sign_in_once() {
    let shop = Shop::start();
    let client = Client::new();
    let cart = shop.cart.url();
    let mut shopper = Shopper::guest();
    shopper.open_cart(&client, &cart);
    let (status, _) = shopper.call(
        &client,
        "POST",
        &format!("{cart}/cart/me/add?product_id=2&quantity=2"),
        None,
    );
    assert_eq!(status, 200);
    let signed_in = Shopper::customer(&client, &shop.order.url(), "merger@example.com");
    let (status, _) = signed_in.call(
        &client,
        "POST",
        &format!("{cart}/cart/me/add?product_id=2&quantity=1"),
        None,
    );
    assert_eq!(status, 200);
    // The same browser, now signed in, still sends its cart token: the lines join once.
    let both = Shopper {
        cart_token: shopper.cart_token.clone(),
        ..signed_in.clone()
    };
    for _ in 0..3 {
        let (status, merged) = both.call(&client, "GET", &format!("{cart}/cart/me"), None);
        assert_eq!(status, 200, "{merged}");
        assert_eq!(
            merged["items"][0]["quantity"], 3,
            "2 + 1, merged once: {merged}"
        );
        assert_eq!(
            merged["user_id"].as_str(),
            signed_in.customer_id().as_deref()
        );
    }
    // The token alone opens nothing any more (its lines are the customer's now).
    let (status, _) = shopper.call(&client, "GET", &format!("{cart}/cart/me"), None);
    assert_eq!(status, 404);
}

#[test]
fn a_thousand_wrong_passwords_for_one_email_or_a_thousand_emails_from_one_client_are_slowed_to_a_crawl()
 {
    let shop = Shop::start();
    let client = Client::new();
    let order = shop.order.url();
    Shopper::customer(&client, &order, "target@example.com");
    let attempt = |email: &str, password: &str| {
        let body = format!(r#"{{"email":"{email}","password":"{password}"}}"#);
        Shopper::guest()
            .call(&client, "POST", &format!("{order}/sessions"), Some(&body))
            .0
    };
    let mut answers = std::collections::BTreeMap::new();
    for n in 0..1000 {
        *answers
            .entry(attempt("target@example.com", &format!("guess number {n}")))
            .or_insert(0) += 1;
    }
    assert_eq!(answers.get(&201), None, "{answers:?}");
    assert!(
        answers[&401] <= 10,
        "only a few guesses were even tried: {answers:?}"
    );
    assert!(answers[&429] >= 990, "{answers:?}");
    // While it waits, even the right password is not tried.
    assert_eq!(
        attempt("target@example.com", "correct horse battery staple"),
        429
    );
    // The same client spraying other emails is held too (counted per client).
    let sprayed: Vec<u16> = (0..1000)
        .map(|n| attempt(&format!("spray{n}@example.com"), "password123"))
        .collect();
    assert!(
        sprayed.iter().filter(|s| **s == 429).count() >= 990,
        "{:?}",
        &sprayed[..20]
    );
}

/// One raw HTTP/1.1 GET from `local` (a loopback address of its own) to `url`'s host and
/// port, with the storefront key; its status.
fn get_from(local: &str, url: &str, path: &str, extra: &str) -> u16 {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
        socket
            .connect(addr.parse().unwrap())
            .await
            .unwrap()
            .into_std()
            .unwrap()
    });
    stream.set_nonblocking(false).unwrap();
    let mut stream = stream;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nX-API-Key: {STOREFRONT_KEY}\r\n{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_flood_from_one_client_slows_only_that_client_while_others_shop() {
    // 5 a second, bursts of 10: slow enough that the checks below run well inside one
    // refill (200 ms), however busy the machine.
    let shop = Shop::start_with(&[(
        "catalog-service",
        &["--client-rate-limit", "5", "--trusted-proxy", "127.0.0.4"],
    )]);
    let catalog = shop.catalog.url();
    let port = catalog.rsplit(':').next().unwrap().to_string();
    let flood = |n: usize| -> usize {
        (0..n)
            .map(|_| get_from("127.0.0.2", &catalog, "/products/1", ""))
            .filter(|s| *s == 429)
            .count()
    };
    let refused = flood(100);
    assert!(
        refused >= 60,
        "the flooder is slowed: {refused} of 100 refused"
    );
    // A header any client can set names no one: from 127.0.0.2, X-Forwarded-For is ignored.
    assert_eq!(
        get_from(
            "127.0.0.2",
            &catalog,
            "/products/1",
            "X-Forwarded-For: 127.0.0.50\r\n"
        ),
        429
    );
    // Another client on its own address, meanwhile, is served every time.
    for _ in 0..8 {
        assert_eq!(get_from("127.0.0.3", &catalog, "/products/1", ""), 200);
    }
    // From the trusted proxy, the address it adds is the client.
    let via_proxy = |client: &str| {
        get_from(
            "127.0.0.4",
            &format!("http://127.0.0.1:{port}"),
            "/products/1",
            &format!("X-Forwarded-For: {client}\r\n"),
        )
    };
    assert!(flood(20) >= 10);
    assert_eq!(
        via_proxy("127.0.0.2"),
        429,
        "the flooder behind the proxy is still the flooder"
    );
    assert_eq!(
        via_proxy("127.0.0.60"),
        200,
        "another client behind the proxy is served"
    );
    // The admin key keeps its own budget.
    let client = Client::new();
    let (status, _) =
        client.call_with_key("GET", &format!("{catalog}/products/1"), None, Some(KEY));
    assert_eq!(status, 200);
}

#[test]
fn nobody_hoards_stock_a_storefront_client_holds_a_capped_number_of_units_for_a_short_time() {
    let shop = Shop::start_with(&[(
        "order-service",
        &[
            "--storefront-hold-ttl",
            "1s",
            "--max-held-units",
            "5",
            "--stock-retry-ms",
            "100",
        ],
    )]);
    let client = Client::new();
    let order = shop.order.url();
    let hoarder = Shopper::guest();
    let place = |who: &Shopper, quantity: i64| {
        let body = format!(r#"[{{"product_id":2,"quantity":{quantity},"price":29.99}}]"#);
        who.call(&client, "POST", &format!("{order}/orders"), Some(&body))
    };
    let (status, first) = place(&hoarder, 4);
    assert_eq!(status, 201, "{first}");
    let (status, refused) = place(&hoarder, 2);
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "hold_limit");
    let (_, stock_before) = client.get(&format!("{}/products/2", shop.catalog.url()));
    // The admin's own orders keep ORDER_TTL (30 minutes) and no cap.
    let (status, admins) = client.post_json(
        &format!("{order}/orders?user_id=back-office"),
        r#"[{"product_id":2,"quantity":10,"price":29.99}]"#,
    );
    assert_eq!(status, 201, "{admins}");
    // The storefront hold runs out in a second; its units are on sale again.
    let expired = wait_for_order(
        &client,
        &order,
        first["id"].as_i64().unwrap(),
        Duration::from_secs(10),
        |o| o["status"] == "CANCELLED" && o["stock"] == "released",
    );
    assert_eq!(
        expired["status_history"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()["reason"],
        "expired"
    );
    let (_, admin_order) = client.get(&format!("{order}/orders/{}", admins["id"]));
    assert_eq!(
        admin_order["status"], "PENDING",
        "the admin's order keeps its hold"
    );
    let (_, stock_after) = client.get(&format!("{}/products/2", shop.catalog.url()));
    assert_eq!(
        stock_after["stock"].as_i64().unwrap(),
        stock_before["stock"].as_i64().unwrap() - 10 + 4,
        "the storefront hold came back, the admin's did not"
    );
    // With nothing held any more, the client may order again.
    let (status, again) = place(&hoarder, 5);
    assert_eq!(status, 201, "{again}");
    // A shopper cannot claim another client's holds.
    let (status, _) = hoarder.call(
        &client,
        "POST",
        &format!("{order}/orders?held_for=127.0.0.9"),
        Some(r#"[{"product_id":2,"quantity":1,"price":29.99}]"#),
    );
    assert_eq!(status, 403);
}

#[test]
fn a_quote_prices_the_cart_with_a_promo_code_and_places_nothing() {
    let shop = Shop::start();
    let client = Client::new();
    let order = shop.order.url();
    let (status, _) = client.post_json(
        &format!("{order}/promo-codes"),
        r#"{"code":"TENOFF","percent_off":10}"#,
    );
    assert_eq!(status, 201);
    let shopper = Shopper::guest();
    let body = r#"{"items":[{"product_id":2,"quantity":2,"price":29.99}],"promo_code":"tenoff"}"#;
    let (status, quote) = shopper.call(
        &client,
        "POST",
        &format!("{order}/orders/quote"),
        Some(body),
    );
    assert_eq!(status, 200, "{quote}");
    assert_eq!(
        quote,
        json!({"subtotal": 59.98, "discount": 5.99, "promo_code": "TENOFF", "total": 53.99})
    );
    let (status, refused) = shopper.call(
        &client,
        "POST",
        &format!("{order}/orders/quote"),
        Some(&body.replace("tenoff", "NOPE")),
    );
    assert_eq!(status, 422, "{refused}");
    let (status, refused) = shopper.call(
        &client,
        "POST",
        &format!("{order}/orders/quote"),
        Some(&body.replace("29.99", "1.00")),
    );
    assert_eq!(status, 422, "another price: {refused}");
    let (_, orders) = client.get(&format!("{order}/orders"));
    assert_eq!(orders, json!([]), "a quote places nothing");
    let (_, code) = client.get(&format!("{order}/promo-codes/TENOFF"));
    assert_eq!(code["redeemed"], 0, "nor redeems anything");
}

/// The money and stock races with customers in them: 100 rounds of shoppers (customers and
/// guests, each through their own cart and session) racing for the last units; each round
/// sells exactly what was there, each sale is paid once, and the books balance at the end.
#[test]
fn customers_and_guests_racing_for_the_last_units_buy_exactly_what_is_there_over_a_hundred_rounds()
{
    use std::sync::{Arc, Barrier};
    let shop = Shop::start();
    let client = Client::new();
    let (cart, order, catalog) = (shop.cart.url(), shop.order.url(), shop.catalog.url());
    let shoppers: Vec<Shopper> = (0..4)
        .map(|n| match n % 2 {
            0 => Shopper::customer(&client, &order, &format!("racer{n}@example.com")),
            _ => {
                let mut guest = Shopper::guest();
                guest.open_cart(&client, &cart);
                guest
            }
        })
        .collect();
    let mut sold = 0;
    for round in 0..100 {
        let units = 1 + round % 3;
        system_tests::set_stock(&client, &catalog, 3, units);
        let barrier = Arc::new(Barrier::new(shoppers.len()));
        let racers: Vec<_> = shoppers
            .iter()
            .cloned()
            .map(|shopper| {
                let (barrier, cart) = (barrier.clone(), cart.clone());
                std::thread::spawn(move || {
                    let client = Client::new();
                    let (status, _) = shopper.call(
                        &client,
                        "POST",
                        &format!("{cart}/cart/me/add?product_id=3&quantity=1"),
                        None,
                    );
                    assert_eq!(status, 200);
                    barrier.wait();
                    let (status, answer) = shopper.call(
                        &client,
                        "POST",
                        &format!("{cart}/cart/me/checkout"),
                        Some(CARD),
                    );
                    // Whoever lost the race has the line still in their cart: empty it.
                    shopper.call(&client, "DELETE", &format!("{cart}/cart/me/clear"), None);
                    (status, answer)
                })
            })
            .collect();
        let answers: Vec<(u16, Value)> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        let won = answers
            .iter()
            .filter(|(s, _)| *s == 201 || *s == 202)
            .count() as i64;
        for (status, answer) in &answers {
            assert!(
                [201, 202, 409].contains(status),
                "round {round}: {status} {answer}"
            );
        }
        assert_eq!(
            won,
            units.min(shoppers.len() as i64),
            "round {round}: {answers:?}"
        );
        let (_, product) = client.get(&format!("{catalog}/products/3"));
        assert_eq!(product["stock"], 0, "round {round}: every unit sold once");
        sold += won;
    }
    // Each customer sees their own sales only; the books balance.
    let mut seen = 0;
    for shopper in shoppers.iter().filter(|s| s.access_token.is_some()) {
        let (_, mine) = shopper.call(
            &client,
            "GET",
            &format!("{order}/orders?status=PAID&limit=200"),
            None,
        );
        let mine = mine.as_array().unwrap();
        assert!(
            mine.iter()
                .all(|o| o["user_id"].as_str() == shopper.customer_id().as_deref())
        );
        seen += mine.len();
    }
    assert!(seen as i64 <= sold);
    let stats = wait_for_matched(&client, &order);
    assert_eq!(stats["paid_units"]["3"].as_i64(), Some(sold), "{stats}");
}

fn wait_for_matched(client: &Client, order: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, stats) = client.get(&format!("{order}/orders/stats"));
        if stats["reconciliation"]["status"] == "matched" || std::time::Instant::now() > deadline {
            assert_eq!(stats["reconciliation"]["status"], "matched", "{stats}");
            return stats;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `each` on `n` threads released at once; their answers.
fn at_once<T: Send + 'static>(n: usize, each: impl Fn() -> T + Send + Sync + 'static) -> Vec<T> {
    use std::sync::{Arc, Barrier};
    let (barrier, each) = (Arc::new(Barrier::new(n)), Arc::new(each));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (barrier, each) = (barrier.clone(), each.clone());
            std::thread::spawn(move || {
                barrier.wait();
                each()
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

#[test]
fn racing_requests_merge_a_guest_cart_once_refresh_a_token_once_and_never_pass_the_hold_cap() {
    let shop = Shop::start_with(&[("order-service", &["--max-held-units", "5"])]);
    let client = Client::new();
    let (cart, order) = (shop.cart.url(), shop.order.url());
    for round in 0..20 {
        // A guest cart of 2 units joins a customer's cart of 1: twenty racing requests that
        // carry both merge it once.
        let mut guest = Shopper::guest();
        guest.open_cart(&client, &cart);
        guest.call(
            &client,
            "POST",
            &format!("{cart}/cart/me/add?product_id=2&quantity=2"),
            None,
        );
        let customer = Shopper::customer(&client, &order, &format!("merge{round}@example.com"));
        customer.call(
            &client,
            "POST",
            &format!("{cart}/cart/me/add?product_id=2&quantity=1"),
            None,
        );
        let both = Shopper {
            cart_token: guest.cart_token.clone(),
            ..customer.clone()
        };
        let url = format!("{cart}/cart/me");
        let answers = at_once(20, move || both.call(&Client::new(), "GET", &url, None));
        assert!(
            answers.iter().all(|(s, _)| *s == 200),
            "round {round}: {answers:?}"
        );
        let (_, merged) = customer.call(&client, "GET", &format!("{cart}/cart/me"), None);
        assert_eq!(
            merged["items"][0]["quantity"], 3,
            "round {round}: merged once: {merged}"
        );

        // Twenty racing refreshes of one refresh token: exactly one new session.
        let body = format!(
            r#"{{"refresh_token":"{}"}}"#,
            customer.refresh_token.clone().unwrap()
        );
        let url = format!("{order}/sessions/refresh");
        let answers = at_once(20, move || {
            Shopper::guest()
                .call(&Client::new(), "POST", &url, Some(&body))
                .0
        });
        assert_eq!(
            answers.iter().filter(|s| **s == 200).count(),
            1,
            "round {round}: {answers:?}"
        );
        assert!(
            answers.iter().all(|s| [200, 401].contains(s)),
            "{answers:?}"
        );
    }
    // Ten racing storefront orders of one unit each from one client: the cap of 5 holds.
    let url = format!("{order}/orders");
    let answers = at_once(10, move || {
        Shopper::guest()
            .call(
                &Client::new(),
                "POST",
                &url,
                Some(r#"[{"product_id":2,"quantity":1,"price":29.99}]"#),
            )
            .0
    });
    assert_eq!(
        answers.iter().filter(|s| **s == 201).count(),
        5,
        "{answers:?}"
    );
    assert_eq!(
        answers.iter().filter(|s| **s == 409).count(),
        5,
        "{answers:?}"
    );
}

#[test]
fn a_shopper_cannot_pay_blind_while_the_order_service_is_away_and_nothing_is_charged() {
    let mut shop = Shop::start();
    let client = Client::new();
    let (order, payment) = (shop.order.url(), shop.payment.url());
    let mut guest = Shopper::guest();
    let (status, placed) = guest.call(
        &client,
        "POST",
        &format!("{order}/orders"),
        Some(r#"[{"product_id":2,"quantity":1,"price":29.99}]"#),
    );
    assert_eq!(status, 201, "{placed}");
    guest.order_token = placed["order_token"].as_str().map(String::from);
    shop.order.stop();
    let pay = format!("{payment}/pay?order_id={}&amount=29.99", placed["id"]);
    let (status, answer) = guest.call(&client, "POST", &pay, Some(CARD));
    assert_eq!(
        status, 503,
        "whose order it is cannot be told, so nothing is taken: {answer}"
    );
    let (_, payments) = client.get(&format!("{payment}/payments"));
    assert_eq!(
        payments,
        json!([]),
        "no payment recorded, not even an authorization"
    );
    shop.order.restart();
    let (status, paid) = guest.call(&client, "POST", &pay, Some(CARD));
    assert_eq!(
        status, 200,
        "once it is back, the order's own guest pays: {paid}"
    );
    assert_eq!(paid["status"], "captured");
}
