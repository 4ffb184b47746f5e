// Small shop dashboard: talks to the four services directly with the API key from Settings.
// Every answer, good or bad, is shown in words next to the action that caused it.
"use strict";

const SERVICES = ["cart", "catalog", "order", "payment"];
const DEFAULTS = {
  apiKey: "",
  userId: "user1",
  cart: "http://127.0.0.1:8001",
  catalog: "http://127.0.0.1:8002",
  order: "http://127.0.0.1:8003",
  payment: "http://127.0.0.1:8004",
};

// Settings live in localStorage; service URLs given in the page's query string win, so the
// link start-all.sh prints works whatever ports it used.
function loadSettings() {
  const saved = JSON.parse(localStorage.getItem("shop-settings") || "{}");
  const settings = { ...DEFAULTS, ...saved };
  const query = new URLSearchParams(location.search);
  for (const name of SERVICES) {
    if (query.get(name)) settings[name] = query.get(name);
  }
  return settings;
}
let settings = loadSettings();

function saveSettings(next) {
  settings = { ...settings, ...next };
  localStorage.setItem("shop-settings", JSON.stringify(settings));
}

// Builds an element; children are nodes or text (always text, never HTML).
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null) el.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

const $ = (selector) => document.querySelector(selector);
// Amounts with thousands separators and two decimals, in the browser's own way of writing them.
const money = (value) => (value === null || value === undefined ? "?"
  : Number(value).toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 }));

function say(id, text, ok = false) {
  const el = document.getElementById(id);
  el.textContent = text;
  el.className = "msg " + (ok ? "ok" : "error");
}

// One call to a service. Resolves to {ok, status, data} and never throws: an unreachable
// service and every error answer come back as a sentence in `problem`.
async function api(service, method, path, body, extraHeaders = {}) {
  const headers = { "X-API-Key": settings.apiKey, ...extraHeaders };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(settings[service] + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    return { ok: false, status: 0, problem: `The ${service} service is unreachable (${settings[service]}).` };
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (response.ok) {
    const total = response.headers.get("X-Total-Count");
    return { ok: true, status: response.status, data, total: total === null ? null : Number(total) };
  }
  let problem;
  if (response.status === 401) problem = `The ${service} service rejected the API key (401). Check it under Settings.`;
  else if (data && data.error) problem = `${data.error.message} (${response.status} ${data.error.code})`;
  else problem = `The ${service} service answered ${response.status}.`;
  return { ok: false, status: response.status, data, problem };
}

// A picture behind the API key: fetched with the key (an <img src> cannot send it) and
// shown from a blob URL.
async function loadImage(service, path, img) {
  try {
    const response = await fetch(settings[service] + path, { headers: { "X-API-Key": settings.apiKey } });
    if (!response.ok) return;
    img.src = URL.createObjectURL(await response.blob());
  } catch (_) { /* no picture: the row shows without one */ }
}

// ---- Health -------------------------------------------------------------------------------

// A service is up only when both probes say so: /health (200 unless writes fail, e.g. a
// full disk: 503 "unhealthy" with the problem) and /ready (503 until the schema is there).
// Anything else is shown red with the reason the service gave.
async function probe(service, path) {
  const response = await fetch(settings[service] + path);
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  return { ok: response.ok, data, status: response.status };
}

async function refreshHealth() {
  const pills = await Promise.all(SERVICES.map(async (service) => {
    try {
      const [health, ready] = await Promise.all([probe(service, "/health"), probe(service, "/ready")]);
      const backlog = health.data && health.data.webhook_backlog;
      const queued = backlog ? ` (webhooks pending ${backlog.pending}, failed ${backlog.failed})` : "";
      if (!health.ok || !ready.ok) {
        const why = !health.ok
          ? (health.data && (health.data.problem || health.data.status)) || `HTTP ${health.status}`
          : (ready.data && ready.data.database) || `not ready (HTTP ${ready.status})`;
        return h("span", { class: "pill down", "data-service": service, "data-state": "unhealthy", title: why },
          `${service}: unhealthy: ${why}${queued}`);
      }
      const warn = backlog && backlog.failed > 0;
      return h("span", { class: warn ? "pill warn" : "pill up", "data-service": service, "data-state": "up" },
        `${service}: up${queued}`);
    } catch (_) {
      return h("span", { class: "pill down", "data-service": service, "data-state": "down" }, `${service}: down`);
    }
  }));
  $("#health").replaceChildren(...pills);
}

// ---- Shop ---------------------------------------------------------------------------------

async function refreshShop() {
  const answer = await api("catalog", "GET", "/products");
  if (!answer.ok) return say("shop-msg", answer.problem);
  const rows = answer.data.map((p) => {
    const qty = h("input", { class: "qty", type: "number", min: "1", value: "1", "aria-label": `quantity of ${p.name}` });
    const add = async () => {
      if (!/^\d+$/.test(qty.value.trim()) || Number(qty.value) < 1 || Number(qty.value) > 1000) {
        return say("shop-msg", `The quantity of ${p.name} is a whole number from 1 to 1000.`);
      }
      const path = `/cart/${encodeURIComponent(settings.userId)}/add?product_id=${p.id}&quantity=${encodeURIComponent(qty.value)}`;
      const added = await api("cart", "POST", path);
      if (!added.ok) return say("shop-msg", `Adding ${p.name} failed: ${added.problem}`);
      const note = added.data.item.verified ? "" : " (unverified: the catalog could not be asked)";
      say("shop-msg", `Added ${qty.value} × ${p.name} to the cart of ${settings.userId}${note}.`, true);
    };
    const picture = h("img", { class: "thumb", alt: p.image_url ? `picture of ${p.name}` : "" });
    if (p.image_url) loadImage("catalog", p.image_url, picture);
    return h("tr", { "data-product": p.id },
      h("td", {}, p.id), h("td", {}, picture),
      h("td", {}, p.name, p.category ? h("span", { class: "muted" }, ` · ${p.category}`) : null),
      h("td", {}, money(p.price)), h("td", {}, p.stock),
      h("td", {}, qty), h("td", {}, p.stock > 0
        ? h("button", { onclick: add }, "Add to cart")
        : h("button", { disabled: "", title: "none on sale now" }, "Sold out")));
  });
  $("#products tbody").replaceChildren(...(rows.length ? rows
    : [h("tr", {}, h("td", { colspan: "7" }, "No products on sale yet: add one in the Admin tab."))]));
}

// ---- Cart ---------------------------------------------------------------------------------

const cartPath = () => `/cart/${encodeURIComponent(settings.userId)}`;

async function refreshCart() {
  document.querySelectorAll(".user-id").forEach((el) => { el.textContent = settings.userId; });
  const answer = await api("cart", "GET", cartPath());
  if (!answer.ok) return say("cart-msg", answer.problem);
  const cart = answer.data;
  const rows = cart.items.map((line) => {
    const qty = h("input", { class: "qty", type: "number", min: "1", value: line.quantity, "aria-label": "quantity" });
    const update = async () => {
      if (!/^\d+$/.test(qty.value.trim()) || Number(qty.value) < 1 || Number(qty.value) > 1000) {
        return say("cart-msg", "A quantity is a whole number from 1 to 1000.");
      }
      const changed = await api("cart", "PUT", `${cartPath()}/items/${line.product_id}?quantity=${encodeURIComponent(qty.value)}`);
      if (!changed.ok) return say("cart-msg", `Updating the quantity failed: ${changed.problem}`);
      say("cart-msg", `Quantity of ${line.name || "product " + line.product_id} set to ${qty.value}.`, true);
      refreshCart();
    };
    const remove = async () => {
      const removed = await api("cart", "DELETE", `${cartPath()}/items/${line.product_id}`);
      if (!removed.ok) return say("cart-msg", `Removing failed: ${removed.problem}`);
      say("cart-msg", `Removed ${line.name || "product " + line.product_id}.`, true);
      refreshCart();
    };
    const name = h("td", {}, line.name || `product ${line.product_id}`,
      line.verified ? null : h("span", { class: "unverified" }, " unverified"));
    return h("tr", { "data-product": line.product_id },
      name, h("td", {}, money(line.unit_price)),
      h("td", {}, qty, h("button", { onclick: update }, "Update")),
      h("td", {}, money(line.line_total)), h("td", {}, h("button", { onclick: remove }, "Remove")));
  });
  $("#cart tbody").replaceChildren(...(rows.length ? rows
    : [h("tr", {}, h("td", { colspan: "5" }, "The cart is empty: add products from the Shop tab."))]));
  $("#cart-total").textContent = money(cart.total);
  $("#cart-unverified").textContent = cart.unverified_items
    ? `(${cart.unverified_items} unverified line(s): checked at checkout)` : "";
}

async function clearCart() {
  const answer = await api("cart", "DELETE", `${cartPath()}/clear`);
  if (!answer.ok) return say("cart-msg", `Clearing failed: ${answer.problem}`);
  say("cart-msg", "The cart is empty.", true);
  refreshCart();
}

async function checkout() {
  const number = $("#card").value;
  const body = {};
  if (number) body.card = { number, exp_month: 12, exp_year: new Date().getFullYear() + 3, cvc: "123" };
  if ($("#checkout-email").value.trim()) body.customer = { email: $("#checkout-email").value.trim() };
  if ($("#checkout-promo").value.trim()) body.promo_code = $("#checkout-promo").value.trim();
  const line = $("#ship-line").value.trim();
  if (line) {
    body.shipping_address = { lines: [line], city: $("#ship-city").value.trim(), postal_code: $("#ship-postcode").value.trim() };
    if ($("#ship-country").value.trim()) body.shipping_address.country = $("#ship-country").value.trim();
  }
  say("checkout-msg", "Checking out…", true);
  const answer = await api("cart", "POST", `${cartPath()}/checkout`, Object.keys(body).length ? body : undefined);
  if (!answer.ok) {
    say("checkout-msg", `Checkout failed: ${answer.problem}`);
  } else if (answer.data.status === "completed") {
    say("checkout-msg", `Checkout ${answer.data.id} completed: order #${answer.data.order_id} paid, ${money(answer.data.total)}.`, true);
  } else {
    say("checkout-msg", `Checkout ${answer.data.id} is ${answer.data.status} at step ${answer.data.step}.`, true);
  }
  refreshCart();
}

// ---- Orders -------------------------------------------------------------------------------

const ORDERS_PER_PAGE = 25;
let ordersOffset = 0;
// One way to show a time everywhere: local, with the zone.
const TIME_FORMAT = { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  second: "2-digit", timeZoneName: "short" };
const localTime = (at) => (at ? new Date(at).toLocaleString(undefined, TIME_FORMAT) : "");
const badge = (status) => h("span", { class: `badge status-${status}` }, status);

// A page of orders with the filters as they are now; `offset` 0 starts again from the top.
async function refreshOrders(offset = ordersOffset) {
  ordersOffset = Math.max(0, offset);
  const params = new URLSearchParams({ limit: ORDERS_PER_PAGE, offset: ordersOffset });
  const filters = {
    status: $("#order-status-filter").value,
    user_id: $("#order-user-filter").value.trim(),
    q: $("#order-search").value.trim(),
    created_after: $("#order-from").value ? new Date($("#order-from").value).toISOString() : "",
    created_before: $("#order-to").value ? new Date($("#order-to").value).toISOString() : "",
  };
  for (const [name, value] of Object.entries(filters)) if (value) params.set(name, value);
  const answer = await api("order", "GET", `/orders?${params}`);
  if (!answer.ok) return say("orders-msg", answer.problem);
  const total = answer.total ?? answer.data.length;
  say("orders-msg", total === 0
    ? "No orders match. Clear the filters, or place one from the Shop tab."
    : `Orders ${ordersOffset + 1}–${ordersOffset + answer.data.length} of ${total.toLocaleString()}.`, true);
  $("#orders-prev").disabled = ordersOffset === 0;
  $("#orders-next").disabled = ordersOffset + answer.data.length >= total;
  const rows = answer.data.map((o) => h("tr", { class: "clickable", "data-order": o.id, onclick: () => showOrder(o.id) },
    h("td", {}, o.id), h("td", {}, o.user_id), h("td", {}, o.customer ? o.customer.email : ""),
    h("td", {}, money(o.total)), h("td", { class: "status" }, badge(o.status)), h("td", {}, localTime(o.created_at))));
  $("#orders tbody").replaceChildren(...rows);
}

const NEXT_STEPS = {
  PENDING: [["Cancel", "CANCELLED"]],
  PAID: [["Ship", "SHIPPED"], ["Cancel and refund", "CANCELLED"]],
  SHIPPED: [["Deliver", "DELIVERED"]],
};

// Opens order `id` below the list and brings it into view. The last action's answer stays
// (`keepMessage`) until the next action or another order is opened.
async function showOrder(id, keepMessage = false) {
  const answer = await api("order", "GET", `/orders/${id}`);
  if (!answer.ok) return say("orders-msg", answer.problem);
  const order = answer.data;
  const opening = $("#order-detail").hidden || $("#od-id").textContent !== `#${order.id}`;
  $("#order-detail").hidden = false;
  $("#od-id").textContent = `#${order.id}`;
  $("#od-status").textContent = order.status;
  if (!keepMessage) say("od-msg", "", true);
  if (opening) $("#order-detail").scrollIntoView({ block: "start" });
  $("#od-actions").replaceChildren(...(NEXT_STEPS[order.status] || []).map(([label, status]) =>
    status === "SHIPPED" ? shipForm(order.id) : h("button", { onclick: () => advance(order.id, status) }, label)));
  // Goods come back by line once the order is paid and its units sold.
  const returnable = ["PAID", "SHIPPED", "DELIVERED", "REFUNDED"].includes(order.status) &&
    ["committed", "untracked"].includes(order.stock);
  $("#od-lines").replaceChildren(...order.items.map((l) =>
    h("li", { "data-line": l.product_id },
      `${l.quantity} × ${l.name || "product " + l.product_id} at ${money(l.price)} = ${money(l.line_total)}`,
      l.returned ? ` · ${l.returned} returned` : null,
      returnable && l.returned < l.quantity ? returnForm(order.id, l) : null)),
    ...order.returns.map((r) => h("li", { class: "return", "data-return": r.ref },
      `Return: ${r.lines.map((x) => `${x.quantity} × product ${x.product_id} (${x.condition})`).join(", ")}` +
      ` · "${r.reason}" · refund ${money(r.refund)} ${r.refund_state} · restock ${r.restock_state}` +
      (r.problem ? ` · ${r.problem}` : ""))));
  $("#od-money").textContent = (order.discount > 0
    ? `Subtotal ${money(order.subtotal)} − ${money(order.discount)} (${order.promo_code}) = ${money(order.total)}`
    : `Total ${money(order.total)}`) + ` ${order.currency || ""}`;
  const customer = order.customer;
  const address = order.shipping_address;
  $("#od-customer").replaceChildren(
    h("li", {}, customer ? `${customer.name ? customer.name + " · " : ""}${customer.email}` : "no customer given"),
    h("li", {}, address
      ? [address.name, ...address.lines, [address.postal_code, address.city].join(" "), address.region, address.country]
          .filter(Boolean).join(", ")
      : "no shipping address"),
    h("li", {}, order.shipment
      ? `Shipped with ${order.shipment.carrier}, tracking ${order.shipment.tracking_number}`
      : "not shipped"));
  $("#od-history").replaceChildren(...order.status_history.map((s) =>
    h("li", {}, `${s.status} at ${localTime(s.at)}${s.reason ? " (" + s.reason + ")" : ""}`)));

  const payments = await api("payment", "GET", `/payments?order_id=${id}`);
  $("#od-payments").replaceChildren(...(payments.ok
    ? (payments.data.length ? payments.data.map((p) => h("li", { "data-payment": p.id },
        `Payment #${p.id}: ${p.status} ${money(p.amount)}` +
        (p.card ? ` by ${p.card.brand} ····${p.card.last4}` : "") +
        (p.failure_code ? ` (${p.failure_code})` : "") +
        (p.refunded > 0 ? `, ${money(p.refunded)} refunded` : ""),
        p.status === "captured" && p.refunded < p.amount ? refundForm(order.id, p) : null))
      : [h("li", {}, "no payment")])
    : [h("li", { class: "msg error" }, payments.problem)]));

  await showDeliveries(id);
  await showEvents(order.correlation_id, order.id);
}

async function showDeliveries(orderId) {
  const list = await api("payment", "GET", `/webhooks/deliveries?order_id=${orderId}`);
  if (!list.ok) return $("#od-deliveries").replaceChildren(h("p", { class: "msg error" }, list.problem));
  const blocks = await Promise.all(list.data.map(async (d) => {
    const detail = await api("payment", "GET", `/webhooks/deliveries/${d.id}`);
    const attempts = detail.ok ? detail.data.attempts : [];
    const retry = async () => {
      const answer = await api("payment", "POST", `/webhooks/deliveries/${d.id}/retry`);
      if (!answer.ok) return say("od-msg", `Retry failed: ${answer.problem}`);
      say("od-msg", `Delivery ${d.id} retried: now ${answer.data.status}.`, true);
      showOrder(orderId);
    };
    // A 401 or 403 is the order service refusing the signature: the secrets differ.
    const last = attempts[attempts.length - 1];
    const locked = d.status !== "delivered" && last && [401, 403].includes(last.status_code);
    return h("div", { class: "delivery", "data-delivery": d.id },
      h("p", {}, `${d.notice}${d.refund_id ? ` (refund #${d.refund_id})` : ""} · ${d.id}: `, h("strong", {}, d.status), " ",
        d.status === "delivered" ? null : h("button", { onclick: retry }, "Retry")),
      locked ? h("p", { class: "msg error hint" },
        `The order service refused the signature (HTTP ${last.status_code}): check the webhook secret ` +
        "(WEBHOOK_SECRET) is the same on the order and payment services. Deliveries keep being retried.") : null,
      h("ul", {}, attempts.map((a) => h("li", { class: "attempt" },
        `${localTime(a.attempted_at)}: ${a.status_code ? "HTTP " + a.status_code : a.error} in ${a.duration_ms} ms`))));
  }));
  $("#od-deliveries").replaceChildren(...(blocks.length ? blocks : [h("p", {}, "no webhook")]));
}

// An order's whole life: the events of the journey that placed it, and every event about it
// (shipping, refunds, returns are other requests), from all four services, once each.
async function showEvents(correlationId, orderId) {
  const feeds = await Promise.all(SERVICES.flatMap((service) => [
    correlationId ? `/events?correlation_id=${encodeURIComponent(correlationId)}&limit=500` : null,
    `/events?order_id=${orderId}&limit=500`,
  ].filter(Boolean).map(async (path) => {
    const answer = await api(service, "GET", path);
    return answer.ok ? answer.data.map((e) => ({ ...e, service })) : [{ at: "", type: answer.problem, service, seq: path }];
  })));
  const seen = new Set();
  const events = feeds.flat()
    .filter((e) => !seen.has(`${e.service}:${e.seq}`) && seen.add(`${e.service}:${e.seq}`))
    .sort((a, b) => a.at.localeCompare(b.at));
  $("#od-events").replaceChildren(...(events.length ? events.map((e) =>
    h("li", { "data-event": e.type }, h("span", { class: "svc" }, `${localTime(e.at)} ${e.service} · `), e.type))
    : [h("li", {}, "no events")]));
}

// A refund of a captured payment: the amount typed, or all that is left when blank.
function refundForm(orderId, payment) {
  const amount = h("input", { placeholder: `all ${money(payment.amount - payment.refunded)}`, size: "8",
    "aria-label": "refund amount", id: `refund-amount-${payment.id}` });
  const refund = async () => {
    const typed = amount.value.trim().replace(",", ".");
    if (typed && !/^\d+(\.\d{1,2})?$/.test(typed)) {
      return say("od-msg", "A refund amount is a number with at most two decimals, e.g. 10.50.");
    }
    const body = typed ? { amount: Number(typed), reason: "refunded in the dashboard" } : { reason: "refunded in the dashboard" };
    const answer = await api("payment", "POST", `/payments/${payment.id}/refunds`, body);
    if (!answer.ok) return say("od-msg", `Refund failed: ${answer.problem}`);
    say("od-msg", `Refunded ${money(answer.data.amount)} of payment #${payment.id}.`, true);
    showOrder(orderId, true);
  };
  return h("span", { class: "row" }, " ", amount, h("button", { onclick: refund }, "Refund"));
}

// A return of some units of one line: how many came back, and whether they can be sold again.
function returnForm(orderId, line) {
  const left = line.quantity - line.returned;
  const quantity = h("input", { value: "1", size: "3", "aria-label": "units returned", id: `return-qty-${line.product_id}` });
  const condition = h("select", { "aria-label": "condition", id: `return-condition-${line.product_id}` },
    h("option", { value: "sellable" }, "sellable"), h("option", { value: "damaged" }, "damaged"));
  const reason = h("input", { placeholder: "reason", size: "12", "aria-label": "return reason", id: `return-reason-${line.product_id}` });
  const send = async () => {
    const units = Number(quantity.value.trim());
    if (!Number.isInteger(units) || units < 1 || units > left) {
      return say("od-msg", `A return takes 1 to ${left} units of this line.`);
    }
    const body = { lines: [{ product_id: line.product_id, quantity: units, condition: condition.value }],
      reason: reason.value.trim() || "returned in the dashboard" };
    const answer = await api("order", "POST", `/orders/${orderId}/returns`, body);
    if (!answer.ok) return say("od-msg", `Return failed: ${answer.problem}`);
    const made = answer.data.returns[answer.data.returns.length - 1];
    say("od-msg", `Return recorded: ${money(made.refund)} refund ${made.refund_state}, restock ${made.restock_state}.`, true);
    showOrder(orderId, true);
  };
  return h("span", { class: "row" }, " ", quantity, condition, reason, h("button", { onclick: send }, "Return"));
}

// Shipping takes the carrier and the tracking number (both, or neither).
function shipForm(id) {
  const carrier = h("input", { placeholder: "carrier", "aria-label": "carrier", id: "od-carrier" });
  const tracking = h("input", { placeholder: "tracking number", "aria-label": "tracking number", id: "od-tracking" });
  const ship = () => {
    const shipment = carrier.value.trim() || tracking.value.trim()
      ? { carrier: carrier.value.trim(), tracking_number: tracking.value.trim() } : {};
    advance(id, "SHIPPED", shipment);
  };
  return h("span", { class: "row" }, carrier, tracking, h("button", { onclick: ship }, "Ship"));
}

async function advance(id, status, extra = {}) {
  const answer = await api("order", "PUT", `/orders/${id}/status`, { status, ...extra });
  if (!answer.ok) return say("od-msg", `Could not set ${status}: ${answer.problem}`);
  const refunded = status === "CANCELLED" && answer.data.payment_id ? " Its payment is refunded in full." : "";
  say("od-msg", `Order #${id} is now ${answer.data.status}.${refunded}`, true);
  showOrder(id, true);
  refreshOrders();
}

// ---- Stats --------------------------------------------------------------------------------

const LIFECYCLE = ["PENDING", "PAID", "SHIPPED", "DELIVERED", "CANCELLED", "REFUNDED"];

// An export is fetched with the key (a link cannot send it) and handed to the browser as a
// file.
async function downloadExport(service, path, filename) {
  const period = new URLSearchParams();
  if ($("#export-from").value) period.set("from", `${$("#export-from").value}T00:00:00Z`);
  if ($("#export-to").value) period.set("to", `${$("#export-to").value}T00:00:00Z`);
  let response;
  try {
    response = await fetch(`${settings[service]}${path}?${period}`, { headers: { "X-API-Key": settings.apiKey } });
  } catch {
    return say("export-msg", `The ${service} service is unreachable.`);
  }
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    return say("export-msg", `Export refused: ${body?.error?.message || response.status}`);
  }
  const link = h("a", { href: URL.createObjectURL(await response.blob()), download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  say("export-msg", `${filename} downloaded.`, true);
}

async function refreshStats() {
  const answer = await api("order", "GET", "/orders/stats");
  if (!answer.ok) return say("stats-msg", answer.problem);
  const stats = answer.data;
  say("stats-msg", stats.order_count ? "" : "No orders yet: buy something in the Shop tab.", true);
  $("#stats-count").textContent = `${stats.order_count} (${stats.paid_order_count} paid)`;
  $("#stats-revenue").textContent = `${money(stats.revenue)} ${stats.currency || ""}`;
  $("#stats-aov").textContent = money(stats.average_order_value);
  const r = stats.reconciliation;
  $("#stats-refunds").textContent = r.refunded_total === null ? "?" : money(r.refunded_total);
  $("#stats-reconciliation").textContent = r.status === "unavailable"
    ? "payment service unavailable"
    : `${r.status}: paid orders ${money(r.paid_orders_total)}, captured payments net of refunds ${money(r.captured_payments_total - r.refunded_total)}`;
  $("#stats-mismatches").replaceChildren(...r.mismatched_orders.map((m) => h("li", {},
    h("a", { href: "#", "data-order": m.order_id, onclick: (e) => { e.preventDefault(); openOrder(m.order_id); } },
      `order #${m.order_id}`), `: holds ${money(m.order_value)}, its payments ${money(m.captured_net)}`)));
  drawBars("#stats-chart", LIFECYCLE.map((s) => [s.toLowerCase(), stats.orders_by_status[s] || 0, String(stats.orders_by_status[s] || 0)]));
  drawBars("#stats-days", stats.revenue_by_day.map((d) => [d.day.slice(5), Number(d.revenue), money(d.revenue)]));
  $("#stats-top tbody").replaceChildren(...(stats.top_products.length
    ? stats.top_products.map((p) => h("tr", {}, h("td", {}, p.name || `product ${p.product_id}`),
        h("td", {}, p.units), h("td", {}, money(p.sales))))
    : [h("tr", {}, h("td", { colspan: "3" }, "Nothing sold yet."))]));
}

// Opens an order in the Orders tab (from a mismatch in Stats).
function openOrder(id) {
  showTab("orders");
  showOrder(id);
}

// A bar per [label, value, shown value], drawn in SVG, as wide as the bars need.
function drawBars(selector, entries) {
  const svg = $(selector);
  const ns = "http://www.w3.org/2000/svg";
  const max = Math.max(1, ...entries.map(([, n]) => n));
  const step = 64;
  svg.setAttribute("viewBox", `0 0 ${Math.max(360, 10 + entries.length * step)} 200`);
  const bars = entries.flatMap(([label, n, shown], i) => {
    const height = Math.round((n / max) * 140);
    const x = 10 + i * step;
    const make = (tag, attrs, text) => {
      const el = document.createElementNS(ns, tag);
      Object.entries(attrs).forEach(([k, v]) => el.setAttribute(k, v));
      if (text !== undefined) el.textContent = text;
      return el;
    };
    return [
      make("rect", { x, y: 160 - height, width: 48, height, fill: "#2f5fd0", "data-label": label }),
      make("text", { x, y: 178, "font-size": 10 }, label),
      make("text", { x, y: 155 - height, "font-size": 10 }, shown),
    ];
  });
  if (!entries.length) bars.push(Object.assign(document.createElementNS(ns, "text"), { textContent: "no paid orders in the last 30 days" }));
  svg.replaceChildren(...bars);
}

// ---- Admin --------------------------------------------------------------------------------

// Money as people type it: "19.99" or "19,99"; null when it is not an amount.
function parseMoney(text) {
  const typed = String(text).trim().replace(",", ".");
  return /^\d+(\.\d{1,2})?$/.test(typed) ? Number(typed) : null;
}

const ADMIN_PER_PAGE = 50;
let adminOffset = 0;

async function refreshAdmin(offset = adminOffset) {
  adminOffset = Math.max(0, offset);
  const answer = await api("catalog", "GET", `/products?limit=${ADMIN_PER_PAGE}&offset=${adminOffset}`);
  if (!answer.ok) return say("admin-msg", answer.problem);
  const total = answer.total ?? answer.data.length;
  $("#admin-count").textContent = total
    ? `Products ${adminOffset + 1}–${adminOffset + answer.data.length} of ${total}.`
    : "No products yet: add one below.";
  $("#admin-prev").disabled = adminOffset === 0;
  $("#admin-next").disabled = adminOffset + answer.data.length >= total;
  const rows = answer.data.map((p) => {
    const name = h("input", { value: p.name, "aria-label": "name" });
    const price = h("input", { class: "qty", value: money(p.price), "aria-label": "price" });
    const stock = h("input", { class: "qty", value: p.stock, "aria-label": "stock" });
    const reason = h("input", { value: "adjusted in the dashboard", "aria-label": "reason", size: "18" });
    // Stock is moved by the difference from what was read, never overwritten: units that
    // checkouts reserved or sold meanwhile stay theirs.
    const save = async () => {
      const newPrice = parseMoney(price.value);
      if (newPrice === null) return say("admin-msg", `The price of ${p.name} is a number like 19.99 (or 19,99).`);
      if (!/^\d+$/.test(stock.value.trim())) return say("admin-msg", `The stock of ${p.name} is a whole number of units.`);
      const saved = await api("catalog", "PUT", `/products/${p.id}`, { name: name.value, price: newPrice });
      if (!saved.ok) return say("admin-msg", `Saving ${p.name} failed: ${saved.problem}`);
      let stockNow = saved.data.stock;
      const delta = Number(stock.value) - p.stock;
      if (delta !== 0) {
        const moved = await api("catalog", "POST", `/products/${p.id}/stock`, { delta, reason: reason.value.trim() || "adjusted in the dashboard" });
        if (!moved.ok) return say("admin-msg", `Saved ${saved.data.name}, but moving ${delta} units failed: ${moved.problem}`);
        stockNow = moved.data.stock_after;
      }
      say("admin-msg", `Saved ${saved.data.name}: ${money(saved.data.price)}, stock ${stockNow}.`, true);
      refreshAdmin();
    };
    const remove = async () => {
      const removed = await api("catalog", "DELETE", `/products/${p.id}`);
      if (!removed.ok) return say("admin-msg", `Deleting ${p.name} failed: ${removed.problem}`);
      say("admin-msg", `Deleted ${p.name} from the catalog.`, true);
      refreshAdmin();
    };
    const picture = h("input", { type: "file", accept: "image/png,image/jpeg,image/webp", "aria-label": "picture" });
    picture.addEventListener("change", async () => {
      const file = picture.files[0];
      if (!file) return;
      let response;
      try {
        response = await fetch(`${settings.catalog}/products/${p.id}/image`, {
          method: "PUT", headers: { "X-API-Key": settings.apiKey, "Content-Type": file.type || "application/octet-stream" }, body: file,
        });
      } catch (_) {
        return say("admin-msg", `The catalog service is unreachable (${settings.catalog}).`);
      }
      const data = await response.json().catch(() => null);
      if (!response.ok) return say("admin-msg", `The picture of ${p.name} was refused: ${data && data.error ? data.error.message : response.status}`);
      say("admin-msg", `Picture of ${p.name} saved.`, true);
    });
    return h("tr", { "data-product": p.id }, h("td", {}, p.id), h("td", {}, name), h("td", {}, price),
      h("td", {}, stock), h("td", { "data-reserved": p.reserved }, p.reserved), h("td", {}, p.on_hand),
      h("td", {}, reason),
      h("td", {}, h("button", { onclick: save }, "Save"), " ",
        h("button", { onclick: () => showMovements(p) }, "History"), " ",
        h("button", { onclick: remove }, "Delete"), " ", picture));
  });
  $("#admin-products tbody").replaceChildren(...rows);
  refreshPromos();
}

// A product's stock ledger, newest first.
async function showMovements(product) {
  const answer = await api("catalog", "GET", `/products/${product.id}/stock/movements?limit=20`);
  if (!answer.ok) return say("admin-msg", answer.problem);
  $("#admin-movements-title").textContent = `Stock movements of ${product.name} (${answer.total ?? answer.data.length} in all, newest first)`;
  $("#admin-movements").replaceChildren(...answer.data.map((m) => h("li", { "data-movement": m.id },
    `${localTime(m.created_at)}: ${m.delta > 0 ? "+" : ""}${m.delta} (${m.reason}), ${m.stock_after} on sale after`)));
}

async function addProduct(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const price = parseMoney(form.get("price"));
  if (!String(form.get("name")).trim()) return say("admin-msg", "A new product needs a name.");
  if (price === null) return say("admin-msg", "The price is a number like 19.99 (or 19,99).");
  if (!/^\d+$/.test(String(form.get("stock")).trim())) return say("admin-msg", "The stock is a whole number of units.");
  const body = { name: form.get("name"), price, stock: Number(form.get("stock")) };
  const answer = await api("catalog", "POST", "/products", body);
  if (!answer.ok) return say("admin-msg", `Adding failed: ${answer.problem}`);
  say("admin-msg", `Added ${answer.data.name} (#${answer.data.id}).`, true);
  event.target.reset();
  refreshAdmin();
}

// ---- Promo codes (Admin) ---------------------------------------------------------------

async function refreshPromos() {
  const answer = await api("order", "GET", "/promo-codes?limit=200");
  if (!answer.ok) return say("promo-msg", answer.problem);
  const rows = answer.data.map((c) => h("tr", { "data-code": c.code },
    h("td", {}, c.code),
    h("td", {}, c.percent_off ? `${c.percent_off}%` : money(c.amount_off)),
    h("td", {}, money(c.min_total)),
    h("td", {}, c.ends_at ? localTime(c.ends_at) : "no end"),
    h("td", {}, `${c.redeemed}${c.max_redemptions ? " of " + c.max_redemptions : ""}`),
    h("td", {}, c.active ? h("button", { onclick: () => withdrawPromo(c.code) }, "Withdraw") : "withdrawn")));
  $("#promos tbody").replaceChildren(...(rows.length ? rows
    : [h("tr", {}, h("td", { colspan: "6" }, "No promo codes yet: create one below."))]));
}

async function addPromo(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const off = String(form.get("off")).trim();
  const body = { code: String(form.get("code")).trim() };
  if (off.endsWith("%")) body.percent_off = Number(off.slice(0, -1));
  else if (parseMoney(off) !== null) body.amount_off = parseMoney(off);
  else return say("promo-msg", "The discount is a percentage (10%) or an amount (5.00).");
  const min = String(form.get("min")).trim();
  if (min) {
    if (parseMoney(min) === null) return say("promo-msg", "The minimum order is an amount like 50.00.");
    body.min_total = parseMoney(min);
  }
  if (form.get("ends")) body.ends_at = new Date(form.get("ends")).toISOString();
  if (String(form.get("max")).trim()) body.max_redemptions = Number(form.get("max"));
  if (String(form.get("per")).trim()) body.max_per_customer = Number(form.get("per"));
  const answer = await api("order", "POST", "/promo-codes", body);
  if (!answer.ok) return say("promo-msg", `Creating the code failed: ${answer.problem}`);
  say("promo-msg", `Created ${answer.data.code}.`, true);
  event.target.reset();
  refreshPromos();
}

async function withdrawPromo(code) {
  const answer = await api("order", "DELETE", `/promo-codes/${encodeURIComponent(code)}`);
  if (!answer.ok) return say("promo-msg", `Withdrawing ${code} failed: ${answer.problem}`);
  say("promo-msg", `${code} is withdrawn: no new order can use it.`, true);
  refreshPromos();
}

// ---- Settings and tabs --------------------------------------------------------------------

function fillSettings() {
  const form = $("#settings");
  for (const [key, value] of Object.entries(settings)) {
    if (form.elements[key]) form.elements[key].value = value;
  }
}

async function submitSettings(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  saveSettings(Object.fromEntries(form.entries()));
  const check = await api("catalog", "GET", "/products?limit=1");
  if (check.ok) say("settings-msg", "Saved. The key works.", true);
  else say("settings-msg", `Saved, but: ${check.problem}`);
  refreshHealth();
}

const REFRESH = { shop: refreshShop, cart: refreshCart, orders: refreshOrders, stats: refreshStats, admin: refreshAdmin };

function showTab(name) {
  // What a tab said last time (a refused key, a failed refresh) is not about the list it
  // is about to load.
  document.querySelectorAll(`#tab-${name} .msg`).forEach((m) => { m.textContent = ""; m.className = "msg"; });
  document.querySelectorAll("nav button").forEach((b) => b.classList.toggle("active", b.dataset.tab === name));
  document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t.id === `tab-${name}`));
  if (REFRESH[name]) REFRESH[name]();
}

document.querySelectorAll("nav button").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));
$("#settings").addEventListener("submit", submitSettings);
$("#cart-clear").addEventListener("click", clearCart);
$("#checkout").addEventListener("click", checkout);
$("#export-orders").addEventListener("click", () => downloadExport("order", "/orders/export.csv", "orders.csv"));
$("#export-payments").addEventListener("click", () => downloadExport("payment", "/payments/export.csv", "payments.csv"));
$("#orders-refresh").addEventListener("click", () => refreshOrders(0));
$("#orders-prev").addEventListener("click", () => refreshOrders(ordersOffset - ORDERS_PER_PAGE));
$("#orders-next").addEventListener("click", () => refreshOrders(ordersOffset + ORDERS_PER_PAGE));
$("#admin-add").addEventListener("submit", addProduct);
$("#promo-add").addEventListener("submit", addPromo);
$("#admin-prev").addEventListener("click", () => refreshAdmin(adminOffset - ADMIN_PER_PAGE));
$("#admin-next").addEventListener("click", () => refreshAdmin(adminOffset + ADMIN_PER_PAGE));

fillSettings();
refreshHealth();
setInterval(refreshHealth, 3000);
showTab(settings.apiKey ? "shop" : "settings");
