// The shoppers' storefront in a real browser (Debian's Chromium, driven by playwright-core)
// against the four real services started by scripts/start-all.sh. Run by scripts/test.sh with:
//   STOREFRONT_URL  the storefront URL start-all.sh printed (key and services in its query)
//   API_KEY         the shop's admin key (to set up a promo code and a picture, and check)
//   ARTIFACTS       where screenshots go
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const url = process.env.STOREFRONT_URL;
const adminKey = process.env.API_KEY;
const artifacts = process.env.ARTIFACTS || "artifacts";
assert.ok(url && adminKey, "STOREFRONT_URL and API_KEY must be set");
mkdirSync(artifacts, { recursive: true });
const services = new URL(url).searchParams;
const shot = (page, name) => page.screenshot({ path: join(artifacts, `storefront-${name}.png`), fullPage: true });

async function admin(service, method, path, body, type = "application/json") {
  const response = await fetch(`${services.get(service)}${path}`, {
    method, headers: { "X-API-Key": adminKey, "Content-Type": type }, body,
  });
  return { status: response.status, text: await response.text() };
}

const noticeSays = (page, pattern) => page.waitForFunction(
  (source) => new RegExp(source).test(document.querySelector("#notice").textContent), pattern.source);

async function fillCheckout(page, card) {
  await page.waitForSelector("#checkout");
  const fill = (name, value) => page.fill(`#checkout input[name="${name}"]`, value);
  await fill("email", "grace@example.com");
  await fill("name", "Grace Hopper");
  await fill("line", "1 Navy Way");
  await fill("city", "Arlington");
  await fill("postcode", "22202");
  await fill("country", "US");
  await fill("card", card);
  await fill("expiry", "12/31");
  await fill("cvc", "123");
  await page.click('#checkout button[type="submit"]');
}

test("a shopper signs up, browses, fills a cart, quotes a promo code, checks out with an address, reads their orders and signs out; a guest buys and reads their receipt", async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const code = `SHOP${Date.now() % 100000}`;
    const promo = await admin("order", "POST", "/promo-codes", JSON.stringify({ code, percent_off: 10 }));
    assert.equal(promo.status, 201, promo.text);
    const pixel = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgAAIAAAUAAQ0KLbQAAAAASUVORK5CYII=", "base64");
    const picture = await admin("catalog", "PUT", "/products/2/image", pixel, "image/png");
    assert.equal(picture.status, 200, picture.text);

    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const refusedByPolicy = [];
    page.on("console", (message) => {
      if (message.text().includes("Content Security Policy")) refusedByPolicy.push(message.text());
    });
    const served = await page.goto(url);
    assert.match(served.headers()["content-security-policy"] || "", /script-src 'self';/);

    // Browse: the grid, a picture fetched with the storefront key, search.
    await page.waitForSelector('#products .card[data-product="2"]');
    await page.waitForFunction(() =>
      (document.querySelector('#products .card[data-product="2"] img')?.src || "").startsWith("blob:"));
    await page.fill("#q", "mouse");
    await page.click('#search button[type="submit"]');
    await page.waitForFunction(() => document.querySelectorAll("#products .card").length === 1);
    await shot(page, "01-browse");

    // Sign up (which signs in).
    await page.click("#nav-account");
    await page.waitForSelector("#sign-up");
    const email = `grace-${Date.now()}@example.com`;
    await page.fill('#sign-up input[name="name"]', "Grace");
    await page.fill('#sign-up input[name="email"]', email);
    await page.fill('#sign-up input[name="password"]', "a long enough password");
    await page.click('#sign-up button[type="submit"]');
    await noticeSays(page, /Welcome, Grace/);

    // A product page: two mice into the cart.
    await page.goto(`${url}#/p/2`);
    await page.waitForSelector("#product #add");
    await page.fill("#quantity", "2");
    await page.click("#add");
    await noticeSays(page, /Added Wireless Mouse/);
    assert.equal(await page.textContent("#cart-count"), "2");

    // The cart: change a quantity, then a quote with the promo code before paying.
    await page.click("#nav-cart");
    await page.waitForSelector('#cart tr[data-product="2"]');
    await page.fill('#cart tr[data-product="2"] input', "3");
    await page.locator('#cart tr[data-product="2"] input').dispatchEvent("change");
    await page.waitForFunction(() => document.querySelector("#cart-count").textContent === "3");
    await page.fill("#promo", code.toLowerCase());
    await page.click("#apply-promo");
    await page.waitForSelector("#to-pay");
    assert.equal(await page.textContent("#to-pay"), "€80.98", "3 × 29.99 less 10% (8.99, rounded down)");
    await shot(page, "02-cart-quote");

    // A declined card: plain words, nothing charged, the cart kept.
    await fillCheckout(page, "4000 0000 0000 0002");
    await noticeSays(page, /declined.*Nothing was charged/);
    // The right card: paid, with the address, and listed in "my orders".
    await fillCheckout(page, "4242 4242 4242 4242");
    await noticeSays(page, /Thank you! Order #\d+ is paid: €80\.98/);
    await page.waitForSelector("#orders .card[data-order]");
    const orderId = await page.getAttribute("#orders .card[data-order]", "data-order");
    const order = JSON.parse((await admin("order", "GET", `/orders/${orderId}`)).text);
    assert.equal(order.shipping_address.city, "Arlington");
    assert.equal(order.total, 80.98);
    assert.equal(order.promo_code, code);
    assert.match(order.user_id, /^cus_/);
    // Shipped by the back office: the tracking number shows on the shopper's page.
    for (let i = 0; i < 50 && JSON.parse((await admin("order", "GET", `/orders/${orderId}`)).text).status !== "PAID"; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const shipped = await admin("order", "PUT", `/orders/${orderId}/status`,
      JSON.stringify({ status: "SHIPPED", carrier: "UPS", tracking_number: "1Z999" }));
    assert.equal(shipped.status, 200, shipped.text);
    await page.reload();
    await page.waitForSelector("#orders .tracking");
    assert.match(await page.textContent("#orders .tracking"), /UPS: 1Z999/);
    await shot(page, "03-my-orders");

    // Sign out: the orders page asks to sign in again.
    await page.click("#nav-account");
    await page.click("#sign-out");
    await noticeSays(page, /signed out/);
    await page.click("#nav-orders");
    await page.waitForFunction(() => document.querySelector("#view").textContent.includes("Sign in to see your orders"));

    // A guest: a cart of their own (a token from the shop), checkout, the receipt page.
    await page.goto(`${url}#/p/3`);
    await page.waitForSelector("#product #add");
    await page.click("#add");
    await noticeSays(page, /Added Mechanical Keyboard/);
    await page.click("#nav-cart");
    await fillCheckout(page, "4242424242424242");
    await noticeSays(page, /Thank you! Order #\d+ is paid/);
    await page.waitForSelector("#guest-order .card");
    const receipt = await page.textContent("#guest-order");
    assert.match(receipt, /Mechanical Keyboard/);
    assert.match(receipt, /Arlington/);
    await shot(page, "04-guest-receipt");
    assert.deepEqual(refusedByPolicy, [], "the page did nothing its policy refuses");
  } finally {
    await browser.close();
  }
});
