// The dashboard in a real browser (Debian's Chromium, driven by playwright-core) against
// the four real services started by scripts/start-all.sh. Run by scripts/test.sh with:
//   DASHBOARD_URL  the URL start-all.sh printed (with the services' ports in its query)
//   API_KEY        the shop's key
//   PID_DIR        start-all.sh's pid files, to stop a service
//   ARTIFACTS      where screenshots go
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const url = process.env.DASHBOARD_URL;
const key = process.env.API_KEY;
const pidDir = process.env.PID_DIR;
const artifacts = process.env.ARTIFACTS || "artifacts";
assert.ok(url && key && pidDir, "DASHBOARD_URL, API_KEY and PID_DIR must be set");
mkdirSync(artifacts, { recursive: true });

const shot = (page, name) => page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });

async function saveSettings(page, apiKey, userId) {
  await page.click('nav button[data-tab="settings"]');
  await page.fill('#settings input[name="apiKey"]', apiKey);
  await page.fill('#settings input[name="userId"]', userId);
  await page.click('#settings button[type="submit"]');
}

async function addToCart(page, productId) {
  await page.click('nav button[data-tab="shop"]');
  await page.locator(`#products tr[data-product="${productId}"] button`).click();
  await page.waitForFunction(() => document.querySelector("#shop-msg").textContent.startsWith("Added"));
}

async function checkOut(page, card) {
  await page.click('nav button[data-tab="cart"]');
  await page.waitForSelector("#cart tbody tr");
  await page.selectOption("#card", card);
  await page.click("#checkout");
  await page.waitForFunction(() => {
    const text = document.querySelector("#checkout-msg").textContent;
    return text && !text.startsWith("Checking out");
  });
  return page.textContent("#checkout-msg");
}

test("a shopper buys, watches the order get paid, is declined, and sees a service go down", async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const user = `browser-${Date.now()}`;
    // The page runs under a strict policy; anything it does that the policy refuses is a bug.
    const refusedByPolicy = [];
    page.on("console", (message) => {
      if (message.text().includes("Content Security Policy")) refusedByPolicy.push(message.text());
    });
    const served = await page.goto(url);
    const policy = served.headers()["content-security-policy"] || "";
    assert.match(policy, /script-src 'self';/, "the dashboard is served with a strict policy");
    assert.match(policy, /frame-ancestors 'none'/);
    assert.equal(served.headers()["x-content-type-options"], "nosniff");

    // A wrong key is refused, in words.
    await saveSettings(page, "not-the-key", user);
    await page.waitForFunction(() => document.querySelector("#settings-msg").textContent.includes("rejected the API key"));
    await shot(page, "01-wrong-key");

    await saveSettings(page, key, user);
    await page.waitForFunction(() => document.querySelector("#settings-msg").textContent.includes("The key works"));
    await page.waitForSelector('#health .pill[data-service="payment"][data-state="up"]');

    // The laptop gets a picture (a 1x1 PNG), which the Shop shows (fetched with the key).
    const pixel = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgAAIAAAUAAQ0KLbQAAAAASUVORK5CYII=", "base64");
    const catalog = new URL(url).searchParams.get("catalog");
    const uploaded = await fetch(`${catalog}/products/1/image`, {
      method: "PUT", headers: { "X-API-Key": key, "Content-Type": "image/png" }, body: pixel,
    });
    assert.equal(uploaded.status, 200, await uploaded.text());
    await page.click('nav button[data-tab="shop"]');
    await page.waitForFunction(() =>
      (document.querySelector('#products tr[data-product="1"] img.thumb')?.src || "").startsWith("blob:"));

    // Buy a laptop with the success card, for a customer.
    await addToCart(page, 1);
    await page.click('nav button[data-tab="cart"]');
    await page.fill("#checkout-email", `${user}@example.com`);
    await page.fill("#ship-line", "12 St James's Square");
    await page.fill("#ship-city", "London");
    await page.fill("#ship-postcode", "SW1Y 4JH");
    await page.fill("#ship-country", "GB");
    const done = await checkOut(page, "4242424242424242");
    await shot(page, "02-checkout");
    const match = done.match(/order #(\d+) paid/);
    assert.ok(match, `checkout did not complete: ${done}`);
    const orderId = match[1];

    // The order is PAID, with its webhook attempt and its events across services.
    await page.click('nav button[data-tab="orders"]');
    await page.locator(`#orders tr[data-order="${orderId}"]`).click();
    await page.waitForFunction(() => document.querySelector("#od-status").textContent === "PAID");
    assert.match(await page.textContent("#od-customer"), /12 St James's Square/, "the test checkout's address is kept");
    await page.waitForSelector('#od-events li[data-event="checkout.completed"]');
    const attempts = await page.textContent("#od-deliveries");
    assert.match(attempts, /delivered/);
    assert.match(attempts, /HTTP 200/);
    const events = await page.locator("#od-events li").evaluateAll((items) => items.map((li) => li.dataset.event));
    for (const kind of ["order.created", "stock.reserved", "payment.captured", "order.paid", "stock.committed", "checkout.completed"]) {
      assert.ok(events.includes(kind), `${kind} missing from ${events}`);
    }
    assert.match(await page.textContent("#od-payments"), /captured 999\.99 by visa ····4242/);
    assert.match(await page.textContent("#od-lines"), /1 × Laptop at 999\.99/);
    assert.match(await page.textContent("#od-customer"), new RegExp(`${user}@example\\.com`));
    await shot(page, "03-order-paid");

    // Ship it with a carrier and tracking number: the lifecycle moves on and the order says how.
    await page.fill("#od-carrier", "DHL");
    await page.fill("#od-tracking", "JD014600006281230704");
    await page.click('#od-actions button:has-text("Ship")');
    await page.waitForFunction(() => document.querySelector("#od-status").textContent === "SHIPPED");
    assert.match(await page.textContent("#od-customer"), /Shipped with DHL, tracking JD014600006281230704/);

    // Refund part of the shipped laptop from its payment: the answer stays on screen.
    await page.fill('#od-payments input[aria-label="refund amount"]', "100,00");
    await page.click('#od-payments button:has-text("Refund")');
    await page.waitForFunction(() => document.querySelector("#od-msg").textContent.startsWith("Refunded 100.00"));
    await page.waitForFunction(() => document.querySelector("#od-payments").textContent.includes("100.00 refunded"));
    assert.match(await page.textContent("#od-msg"), /Refunded 100\.00 of payment #\d+/, "the answer stays after the refresh");
    await shot(page, "03b-refund");

    // The laptop comes back sellable: the return refunds what is left and shows on its line.
    await page.selectOption('#od-lines select[aria-label="condition"]', "sellable");
    await page.fill('#od-lines input[aria-label="return reason"]', "too heavy");
    await page.click('#od-lines button:has-text("Return")');
    await page.waitForFunction(() => document.querySelector("#od-msg").textContent.startsWith("Return recorded"));
    assert.match(await page.textContent("#od-msg"), /Return recorded: 899\.99 refund done, restock done/);
    await page.waitForFunction(() => document.querySelector("#od-lines").textContent.includes("1 returned"));
    assert.match(await page.textContent("#od-lines"), /too heavy/);
    await shot(page, "03c-return");
    // The order's timeline is its whole life, not only its checkout's journey: the shipping,
    // the refund and the return were other requests. Each delivery names its notice.
    await page.waitForSelector('#od-events li[data-event="order.returned"]');
    const life = await page.locator("#od-events li").evaluateAll((items) => items.map((li) => li.dataset.event));
    for (const kind of ["checkout.completed", "order.status_changed", "order.refunded", "order.returned"]) {
      assert.ok(life.includes(kind), `${kind} missing from ${life}`);
    }
    await page.waitForFunction(() => document.querySelector("#od-deliveries").textContent.includes("payment.refunded"));
    assert.match(await page.textContent("#od-deliveries"), /payment\.succeeded · msg_/);

    // A paid order cancelled from the dashboard is refunded in full, and says so.
    const api = (service) => new URL(url).searchParams.get(service);
    const json = { "X-API-Key": key, "Content-Type": "application/json" };
    const paidOrder = await (await fetch(`${api("order")}/orders?user_id=${user}-cancel`, {
      method: "POST", headers: json, body: JSON.stringify([{ product_id: 2, quantity: 1, price: 29.99 }]),
    })).json();
    const paid = await fetch(`${api("payment")}/pay?order_id=${paidOrder.id}&amount=29.99`, { method: "POST", headers: json });
    assert.equal(paid.status, 200, await paid.text());
    await page.fill("#order-search", String(paidOrder.id));
    await page.click("#orders-refresh");
    await page.locator(`#orders tr[data-order="${paidOrder.id}"]`).click();
    await page.waitForFunction(() => document.querySelector("#od-status").textContent === "PAID");
    await page.click('#od-actions button:has-text("Cancel and refund")');
    await page.waitForFunction(() => document.querySelector("#od-msg").textContent.includes("is now CANCELLED"));
    assert.match(await page.textContent("#od-msg"), /refunded in full/);
    await page.waitForFunction(() => document.querySelector("#od-payments").textContent.includes("29.99 refunded"), null, { timeout: 15000 });
    await shot(page, "03c-cancel-paid");

    // Paging through more than 500 orders of one shopper: a total, and every page reachable.
    const pager = `${user}-pager`;
    const pagerProduct = await (await fetch(`${api("catalog")}/products`, {
      method: "POST", headers: json, body: JSON.stringify({ name: `Pager pencil ${user}`, price: 1.0, stock: 1000 }),
    })).json();
    const pagerOrders = [];
    for (let i = 0; i < 520; i += 40) {
      pagerOrders.push(...await Promise.all(Array.from({ length: Math.min(40, 520 - i) }, () =>
        fetch(`${api("order")}/orders?user_id=${pager}`, {
          method: "POST", headers: json, body: JSON.stringify([{ product_id: pagerProduct.id, quantity: 1, price: 1.0 }]),
        }).then((r) => r.status))));
    }
    assert.ok(pagerOrders.every((s) => s === 201), `orders placed: ${[...new Set(pagerOrders)]}`);
    await page.fill("#order-search", "");
    await page.fill("#order-user-filter", pager);
    await page.click("#orders-refresh");
    await page.waitForFunction(() => document.querySelector("#orders-msg").textContent === "Orders 1–25 of 520.");
    assert.ok(await page.locator("#orders-prev").isDisabled());
    await page.click("#orders-next");
    await page.waitForFunction(() => document.querySelector("#orders-msg").textContent === "Orders 26–50 of 520.");
    for (let page_ = 2; page_ < 21; page_ += 1) await page.click("#orders-next");
    await page.waitForFunction(() => document.querySelector("#orders-msg").textContent === "Orders 501–520 of 520.");
    assert.ok(await page.locator("#orders-next").isDisabled());
    assert.equal(await page.locator("#orders tbody tr").count(), 20);
    await shot(page, "03d-orders-paged");
    await page.fill("#order-user-filter", "");

    // A declined card says why, and the cart keeps the mouse.
    await addToCart(page, 2);
    const declined = await checkOut(page, "4000000000000002");
    assert.match(declined, /declined/);
    assert.match(declined, /step pay/);
    assert.equal(await page.locator('#cart tr[data-product="2"]').count(), 1);
    await shot(page, "04-declined");

    // Stats draw their chart.
    await page.click('nav button[data-tab="stats"]');
    await page.waitForSelector("#stats-chart rect");
    assert.notEqual(await page.textContent("#stats-revenue"), "");
    const bars = await page.locator("#stats-chart rect").evaluateAll((rects) => rects.map((r) => r.dataset.label));
    assert.deepEqual(bars, ["pending", "paid", "shipped", "delivered", "cancelled", "refunded"], "lifecycle order");
    await page.waitForSelector("#stats-days rect");
    assert.ok((await page.locator("#stats-top tbody tr").count()) >= 1);
    assert.doesNotMatch(await page.textContent("#stats-top"), /Nothing sold yet/);
    assert.notEqual(await page.textContent("#stats-aov"), "0.00");
    await shot(page, "05-stats");
    // The accountant's exports download as CSV files, with the key.
    for (const [button, first] of [["#export-orders", "order_id,ref,placed_at"], ["#export-payments", "kind,id,ref"]]) {
      const [download] = await Promise.all([page.waitForEvent("download"), page.click(button)]);
      const text = readFileSync(await download.path(), "utf8");
      assert.ok(text.startsWith(first), `${button}: ${text.slice(0, 80)}`);
      assert.ok(text.split("\r\n").length > 2, `${button} holds records`);
    }
    await page.waitForFunction(() => document.querySelector("#export-msg").textContent.includes("downloaded"));

    // Admin: saving a row moves the stock by the difference from what was read (a row of the
    // stock ledger), never overwriting units that orders took meanwhile.
    const headers = { "X-API-Key": key, "Content-Type": "application/json" };
    const catalogUrl = new URL(url).searchParams.get("catalog");
    const productUrl = `${catalogUrl}/products/3`;
    await page.click('nav button[data-tab="admin"]');
    const row = page.locator('#admin-products tr[data-product="3"]');
    await row.waitFor();
    const shown = Number(await row.locator('input[aria-label="stock"]').inputValue());
    const before = await (await fetch(productUrl, { headers })).json();
    // Meanwhile an order takes 2 units of it.
    const placed = await fetch(`${new URL(url).searchParams.get("order")}/orders?user_id=${user}`, {
      method: "POST", headers, body: JSON.stringify([{ product_id: 3, quantity: 2, price: 89.99 }]),
    });
    assert.equal(placed.status, 201);
    await row.locator('input[aria-label="stock"]').fill(String(shown + 5));
    await row.locator('button:has-text("Save")').click();
    await page.waitForFunction(() => document.querySelector("#admin-msg").textContent.startsWith("Saved"));
    const after = await (await fetch(productUrl, { headers })).json();
    assert.equal(after.stock, shown - 2 + 5, "5 units added; the 2 the order holds stay its");
    assert.equal(after.reserved, before.reserved + 2, "the order's 2 units are reserved");
    const ledger = await (await fetch(`${productUrl}/stock/movements`, { headers })).json();
    assert.equal(ledger[0].delta, 5);
    assert.equal(ledger[0].reason, "adjusted in the dashboard");
    await shot(page, "06-admin-stock");

    // A stock change with a reason of the admin's, seen in the product's history; a price
    // typed with a comma; a promo code created and withdrawn.
    await page.waitForFunction((units) => document.querySelector(
      '#admin-products tr[data-product="3"] input[aria-label="stock"]').value === String(units), shown - 2 + 5);
    const keyboard = page.locator('#admin-products tr[data-product="3"]');
    await keyboard.locator('input[aria-label="stock"]').fill(String(shown - 2 + 5 + 1));
    await keyboard.locator('input[aria-label="reason"]').fill("found one in the back room");
    await keyboard.locator('button:has-text("Save")').click();
    await page.waitForFunction(() => document.querySelector("#admin-msg").textContent.startsWith("Saved"));
    await page.locator('#admin-products tr[data-product="3"] button:has-text("History")').click();
    await page.waitForSelector("#admin-movements li");
    assert.match(await page.textContent("#admin-movements li"), /\+1 \(found one in the back room\)/);
    await page.fill('#admin-add input[name="name"]', `Comma price ${user}`);
    await page.fill('#admin-add input[name="price"]', "19,99");
    await page.fill('#admin-add input[name="stock"]', "3");
    await page.click('#admin-add button[type="submit"]');
    await page.waitForFunction(() => document.querySelector("#admin-msg").textContent.startsWith("Added"));
    const code = `B${Date.now().toString(36).toUpperCase()}`;
    await page.fill('#promo-add input[name="code"]', code);
    await page.fill('#promo-add input[name="off"]', "10%");
    await page.fill('#promo-add input[name="max"]', "5");
    await page.click('#promo-add button[type="submit"]');
    await page.waitForSelector(`#promos tr[data-code="${code}"]`);
    assert.match(await page.textContent(`#promos tr[data-code="${code}"]`), /10%.*0 of 5/);
    await page.click(`#promos tr[data-code="${code}"] button:has-text("Withdraw")`);
    await page.waitForFunction((c) => document.querySelector(`#promos tr[data-code="${c}"]`)?.textContent.includes("withdrawn"), code);
    await shot(page, "06-admin-promos");

    // A service whose disk is full answers /health with 503 "unhealthy" and the problem: the
    // pill turns red and says why. (The answer is the service's documented one, played by
    // the browser for this one probe: filling a real disk under the shared shop is the
    // full-disk system test's job.)
    await page.route(`${new URL(url).searchParams.get("order")}/health`, (route) => route.fulfill({
      status: 503, contentType: "application/json",
      body: JSON.stringify({ status: "unhealthy", service: "order-service", problem: "database or disk is full" }),
    }));
    await page.waitForSelector('#health .pill[data-service="order"][data-state="unhealthy"]', { timeout: 15000 });
    assert.match(await page.textContent('#health .pill[data-service="order"]'), /unhealthy: database or disk is full/);
    await shot(page, "06-order-unhealthy");
    await page.unroute(`${new URL(url).searchParams.get("order")}/health`);
    await page.waitForSelector('#health .pill[data-service="order"][data-state="up"]', { timeout: 15000 });

    // A sold-out product cannot be added; at a phone's width nothing overflows the page.
    const soldOut = await (await fetch(`${catalogUrl}/products`, {
      method: "POST", headers, body: JSON.stringify({ name: `Sold out ${user}`, price: 5, stock: 0 }),
    })).json();
    await page.click('nav button[data-tab="shop"]');
    const soldOutButton = page.locator(`#products tr[data-product="${soldOut.id}"] button`);
    await soldOutButton.waitFor();
    assert.ok(await soldOutButton.isDisabled());
    assert.equal(await soldOutButton.textContent(), "Sold out");
    await page.setViewportSize({ width: 390, height: 844 });
    for (const tab of ["shop", "orders", "stats", "admin"]) {
      await page.click(`nav button[data-tab="${tab}"]`);
      await page.waitForTimeout(300);
      const wide = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(wide <= 390, `${tab} at 390 px is ${wide} px wide`);
    }
    await shot(page, "06-phone-stats");
    await page.setViewportSize({ width: 1200, height: 900 });

    // Stop the catalog: the dashboard shows it down.
    const pid = readFileSync(join(pidDir, "catalog-service.pid"), "utf8").trim();
    process.kill(Number(pid), "SIGTERM");
    await page.waitForSelector('#health .pill[data-service="catalog"][data-state="down"]', { timeout: 15000 });
    assert.equal(await page.locator('#health .pill[data-service="cart"]').getAttribute("data-state"), "up",
      "only the stopped service is down");
    await page.click('nav button[data-tab="shop"]');
    await page.waitForFunction(() => document.querySelector("#shop-msg").textContent.includes("unreachable"));
    await shot(page, "07-catalog-down");
    assert.deepEqual(refusedByPolicy, [], "nothing the dashboard does breaks its own policy");
  } finally {
    await browser.close();
  }
});
