"use strict";
// The shoppers' storefront: static files, no build step, nothing fetched from elsewhere.
// It holds only the storefront key (public by design), the signed-in customer's session,
// a guest's cart token and the order tokens of a guest's orders, all in this browser.

const query = new URLSearchParams(location.search);
const shop = {
  key: query.get("key") || "",
  cart: query.get("cart") || "http://127.0.0.1:8001",
  catalog: query.get("catalog") || "http://127.0.0.1:8002",
  order: query.get("order") || "http://127.0.0.1:8003",
  payment: query.get("payment") || "http://127.0.0.1:8004",
  currency: query.get("currency") || "EUR",
};

const TROUBLE = "The shop is having trouble right now; nothing was charged. Please try again in a minute.";
const $ = (selector) => document.querySelector(selector);
const saved = {
  get: (name) => JSON.parse(localStorage.getItem(`shop.${name}`) || "null"),
  set: (name, value) => value === null ? localStorage.removeItem(`shop.${name}`) : localStorage.setItem(`shop.${name}`, JSON.stringify(value)),
};

/** An element with attributes and children (text or elements); never innerHTML. */
function h(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of [].concat(children)) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const money = (amount) => (amount ?? 0).toLocaleString("en-GB", { style: "currency", currency: shop.currency });
const when = (text) => new Date(text).toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" });

function notice(text, trouble = false) {
  const box = $("#notice");
  box.textContent = text;
  box.classList.toggle("trouble", trouble);
  box.hidden = !text;
}

/** What a refusal means to a shopper, in plain words. */
function plainWords(status, data) {
  const message = data?.error?.message;
  if (status === 429) return "You are going a little fast: please wait a few seconds and try again.";
  if (status >= 500 || !message) return TROUBLE;
  if (status === 402) return `Your card was declined (${message.split(";")[0]}). Nothing was charged; try another card.`;
  return message.charAt(0).toUpperCase() + message.slice(1) + ".";
}

/** Calls a service with the storefront key and what this shopper holds. */
async function api(service, method, path, body, extra = {}) {
  const headers = { "X-API-Key": shop.key, ...extra };
  const session = saved.get("session");
  if (session) headers.Authorization = `Bearer ${session.access_token}`;
  const cartToken = saved.get("cartToken");
  if (cartToken) headers["X-Cart-Token"] = cartToken;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(shop[service] + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    return { ok: false, status: 0, problem: TROUBLE };
  }
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (response.status === 401 && session && /expired/.test(data?.error?.message || "") && !extra.retried) {
    if (await refreshSession()) return api(service, method, path, body, { ...extra, retried: "1" });
  }
  if (response.ok) return { ok: true, status: response.status, data };
  return { ok: false, status: response.status, data, problem: plainWords(response.status, data) };
}

async function refreshSession() {
  const session = saved.get("session");
  saved.set("session", null);
  if (!session) return false;
  const answer = await api("order", "POST", "/sessions/refresh", { refresh_token: session.refresh_token });
  if (!answer.ok) return false;
  saved.set("session", answer.data);
  return true;
}

/** A guest's cart needs a token from the shop; a customer's cart is theirs already. */
async function ensureCart() {
  if (saved.get("session") || saved.get("cartToken")) return true;
  const answer = await api("cart", "POST", "/carts");
  if (!answer.ok) { notice(answer.problem, true); return false; }
  saved.set("cartToken", answer.data.cart_token);
  return true;
}

async function loadPicture(product, img) {
  if (!product.image_url) return;
  try {
    const response = await fetch(shop.catalog + product.image_url, { headers: { "X-API-Key": shop.key } });
    if (response.ok) img.src = URL.createObjectURL(await response.blob());
  } catch { /* no picture: the grey box stays */ }
}

function picture(product) {
  const img = h("img", { class: "picture", alt: product.image_url ? product.name : "" });
  loadPicture(product, img);
  return img;
}

async function addToCart(productId, quantity = 1) {
  if (!(await ensureCart())) return;
  const answer = await api("cart", "POST", `/cart/me/add?product_id=${productId}&quantity=${quantity}`);
  if (!answer.ok) return notice(answer.problem, true);
  notice(`Added ${answer.data.item.name || "the product"} to your cart.`);
  showCartCount(answer.data.cart);
}

function showCartCount(cart) {
  $("#cart-count").textContent = cart ? cart.item_count : 0;
}

// ---- Views ------------------------------------------------------------------------------

async function viewProducts() {
  const q = $("#q").value.trim();
  const category = $("#category").value;
  const filter = new URLSearchParams({ limit: "60" });
  if (q) filter.set("q", q);
  if (category) filter.set("category", category);
  const answer = await api("catalog", "GET", `/products?${filter}`);
  if (!answer.ok) return [h("p", {}, answer.problem)];
  if (!answer.data.length) return [h("p", {}, "Nothing matches your search.")];
  return [h("div", { class: "grid", id: "products" }, answer.data.map((p) => h("article", { class: "card", "data-product": p.id }, [
    h("a", { href: `#/p/${p.id}` }, [picture(p), h("h3", {}, p.name)]),
    h("span", { class: "muted" }, p.category || ""),
    h("span", { class: "price" }, money(p.price)),
    p.available > 0
      ? h("button", { class: "primary", onclick: () => addToCart(p.id) }, "Add to cart")
      : h("button", { disabled: true }, "Sold out"),
  ])))];
}

async function viewProduct(id) {
  const answer = await api("catalog", "GET", `/products/${encodeURIComponent(id)}`);
  if (!answer.ok) return [h("p", {}, answer.status === 404 ? "This product is not on sale." : answer.problem)];
  const p = answer.data;
  const quantity = h("input", { type: "number", min: "1", max: "1000", value: "1", "aria-label": "Quantity", id: "quantity" });
  return [h("div", { class: "columns", id: "product" }, [
    picture(p),
    h("div", {}, [
      h("h1", {}, p.name),
      h("p", {}, p.description),
      h("p", { class: "price" }, money(p.price)),
      h("p", { class: "muted" }, p.available > 0 ? `${p.available} in stock` : "Sold out"),
      h("p", {}, [quantity, " ", h("button", { class: "primary", id: "add", disabled: p.available <= 0, onclick: () => addToCart(p.id, Number(quantity.value) || 1) }, "Add to cart")]),
    ]),
  ])];
}

async function viewCart() {
  if (!saved.get("session") && !saved.get("cartToken")) return [h("h1", {}, "Your cart"), h("p", {}, "Your cart is empty.")];
  const answer = await api("cart", "GET", "/cart/me");
  if (!answer.ok) {
    if (answer.status === 404) saved.set("cartToken", null);
    return [h("p", {}, answer.status === 404 ? "Your cart is empty." : answer.problem)];
  }
  const cart = answer.data;
  showCartCount(cart);
  if (!cart.items.length) return [h("h1", {}, "Your cart"), h("p", {}, "Your cart is empty.")];
  const rows = cart.items.map((line) => {
    const quantity = h("input", { type: "number", min: "1", max: "1000", value: line.quantity, "aria-label": `Quantity of ${line.name}` });
    quantity.addEventListener("change", async () => {
      const changed = await api("cart", "PUT", `/cart/me/items/${line.product_id}?quantity=${Number(quantity.value) || 1}`);
      if (!changed.ok) notice(changed.problem, true);
      route();
    });
    return h("tr", { "data-product": line.product_id }, [
      h("td", {}, line.name || `Product ${line.product_id}`),
      h("td", {}, quantity),
      h("td", { class: "num" }, money(line.unit_price)),
      h("td", { class: "num" }, money(line.line_total)),
      h("td", {}, h("button", { onclick: async () => { await api("cart", "DELETE", `/cart/me/items/${line.product_id}`); route(); } }, "Remove")),
    ]);
  });
  const promo = h("input", { id: "promo", placeholder: "Promo code", size: "12" });
  const totals = h("div", { class: "totals", id: "totals" }, [h("div", {}, [h("span", {}, "Total"), h("strong", {}, money(cart.total))])]);
  const quote = async () => {
    const body = { items: cart.items.map((l) => ({ product_id: l.product_id, quantity: l.quantity, price: l.unit_price })) };
    if (promo.value.trim()) body.promo_code = promo.value.trim();
    const answer = await api("order", "POST", "/orders/quote", body);
    if (!answer.ok) return notice(answer.problem, true);
    notice("");
    totals.replaceChildren(
      h("div", {}, [h("span", {}, "Subtotal"), h("span", {}, money(answer.data.subtotal))]),
      h("div", {}, [h("span", {}, `Discount${answer.data.promo_code ? ` (${answer.data.promo_code})` : ""}`), h("span", {}, `− ${money(answer.data.discount)}`)]),
      h("div", {}, [h("span", {}, "To pay"), h("strong", { id: "to-pay" }, money(answer.data.total))]),
    );
  };
  return [
    h("h1", {}, "Your cart"),
    h("table", { id: "cart" }, [h("thead", {}, h("tr", {}, ["Product", "Quantity", "Price", "Line", ""].map((t) => h("th", {}, t)))), h("tbody", {}, rows)]),
    h("p", {}, [promo, " ", h("button", { id: "apply-promo", onclick: quote }, "Apply")]),
    totals,
    checkoutForm(promo),
  ];
}

function field(label, name, attrs = {}) {
  return h("label", {}, [label, h("input", { name, ...attrs })]);
}

function checkoutForm(promo) {
  const session = saved.get("session");
  const form = h("form", { class: "stack", id: "checkout" }, [
    h("h2", {}, "Check out"),
    field("Email", "email", { type: "email", required: true, value: session?.customer?.email || "" }),
    field("Name", "name", { required: true, value: session?.customer?.name || "" }),
    field("Street and number", "line", { required: true }),
    field("City", "city", { required: true }),
    field("Postcode", "postcode", { required: true }),
    field("Country (two letters)", "country", { maxlength: "2", placeholder: "GB" }),
    field("Card number", "card", { inputmode: "numeric", required: true, placeholder: "4242 4242 4242 4242" }),
    field("Expiry (MM/YY)", "expiry", { required: true, placeholder: "12/30" }),
    field("Security code", "cvc", { inputmode: "numeric", required: true, placeholder: "123" }),
    h("button", { class: "primary", type: "submit" }, "Pay and place the order"),
  ]);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = (name) => form.elements[name].value.trim();
    const [month, year] = value("expiry").split("/").map((part) => Number(part));
    const body = {
      card: { number: value("card").replace(/\s+/g, ""), exp_month: month || 0, exp_year: year < 100 ? 2000 + year : year || 0, cvc: value("cvc") },
      customer: { email: value("email"), name: value("name") },
      shipping_address: { name: value("name"), lines: [value("line")], city: value("city"), postal_code: value("postcode") },
    };
    if (value("country")) body.shipping_address.country = value("country");
    if (promo.value.trim()) body.promo_code = promo.value.trim();
    notice("Placing your order…");
    form.querySelector("button").disabled = true;
    const answer = await api("cart", "POST", "/cart/me/checkout", body, { "Idempotency-Key": crypto.randomUUID() });
    form.querySelector("button").disabled = false;
    if (!answer.ok) return notice(answer.problem, true);
    const checkout = answer.data;
    if (!saved.get("session") && checkout.order_token) {
      saved.set("orders", [...(saved.get("orders") || []), { id: checkout.order_id, token: checkout.order_token }]);
    }
    go(saved.get("session") ? "#/orders" : `#/order/${checkout.order_id}`,
      `Thank you! Order #${checkout.order_id} is paid: ${money(checkout.total)}.`);
  });
  return form;
}

function orderSummary(order) {
  const address = order.shipping_address;
  return h("article", { class: "card", "data-order": order.id }, [
    h("h3", {}, `Order #${order.id}`),
    h("span", { class: "muted" }, when(order.created_at)),
    h("span", { class: "status" }, order.status),
    h("ul", {}, order.items.map((i) => h("li", {}, `${i.quantity} × ${i.name || `product ${i.product_id}`}`))),
    h("span", {}, `Total ${money(order.total)}${order.discount ? ` (saved ${money(order.discount)})` : ""}`),
    address ? h("span", { class: "muted" }, `To ${[address.name, ...address.lines, address.city].filter(Boolean).join(", ")}`) : null,
    order.shipment ? h("span", { class: "tracking" }, `Shipped with ${order.shipment.carrier}: ${order.shipment.tracking_number}`) : null,
  ]);
}

async function viewOrders() {
  if (!saved.get("session")) {
    const mine = saved.get("orders") || [];
    return [h("h1", {}, "Your orders"), mine.length
      ? h("ul", {}, mine.map((o) => h("li", {}, h("a", { href: `#/order/${o.id}` }, `Order #${o.id}`))))
      : h("p", {}, ["Sign in to see your orders. ", h("a", { href: "#/account" }, "Sign in")])];
  }
  const answer = await api("order", "GET", "/orders?limit=50");
  if (!answer.ok) return [h("p", {}, answer.problem)];
  return [h("h1", {}, "Your orders"), answer.data.length
    ? h("div", { class: "grid", id: "orders" }, answer.data.map(orderSummary))
    : h("p", {}, "You have no orders yet.")];
}

async function viewGuestOrder(id) {
  const held = (saved.get("orders") || []).find((o) => String(o.id) === id);
  if (!held) return [h("p", {}, "This browser has no receipt for that order.")];
  const answer = await api("order", "GET", "/orders/by-token", undefined, { "X-Order-Token": held.token });
  if (!answer.ok) return [h("p", {}, answer.problem)];
  return [h("h1", {}, "Your order"), h("div", { id: "guest-order" }, orderSummary(answer.data))];
}

async function viewAccount() {
  const session = saved.get("session");
  if (session) {
    const me = await api("order", "GET", "/customers/me");
    const who = me.ok ? me.data : session.customer;
    return [h("h1", {}, "Your account"), h("p", { id: "signed-in" }, `Signed in as ${who.name || who.email} (${who.email}).`),
      h("button", { id: "sign-out", onclick: signOut }, "Sign out")];
  }
  const signIn = h("form", { class: "stack", id: "sign-in" }, [h("h2", {}, "Sign in"),
    field("Email", "email", { type: "email", required: true, autocomplete: "email" }),
    field("Password", "password", { type: "password", required: true, autocomplete: "current-password" }),
    h("button", { class: "primary", type: "submit" }, "Sign in")]);
  const signUp = h("form", { class: "stack", id: "sign-up" }, [h("h2", {}, "New here? Create an account"),
    field("Name", "name", { autocomplete: "name" }), field("Email", "email", { type: "email", required: true, autocomplete: "email" }),
    field("Password (at least 10 characters)", "password", { type: "password", required: true, minlength: "10", autocomplete: "new-password" }),
    h("button", { type: "submit" }, "Create account")]);
  signIn.addEventListener("submit", async (event) => {
    event.preventDefault();
    await startSession(signIn.elements.email.value.trim(), signIn.elements.password.value);
  });
  signUp.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { email: signUp.elements.email.value.trim(), password: signUp.elements.password.value };
    if (signUp.elements.name.value.trim()) body.name = signUp.elements.name.value.trim();
    const answer = await api("order", "POST", "/customers", body);
    if (!answer.ok) return notice(answer.problem, true);
    await startSession(body.email, body.password);
  });
  return [h("div", { class: "columns" }, [signIn, signUp])];
}

async function startSession(email, password) {
  const answer = await api("order", "POST", "/sessions", { email, password });
  if (!answer.ok) return notice(answer.status === 401 ? "That email and password do not match an account." : answer.problem, true);
  saved.set("session", answer.data);
  // The guest cart (if any) joins the customer's on this first call carrying both, then
  // its token opens nothing any more.
  const cart = await api("cart", "GET", "/cart/me");
  if (cart.ok) { saved.set("cartToken", null); showCartCount(cart.data); }
  go("#/", `Welcome${answer.data.customer.name ? `, ${answer.data.customer.name}` : ""}!`);
}

async function signOut() {
  const session = saved.get("session");
  if (session) await api("order", "POST", "/sessions/sign-out", { refresh_token: session.refresh_token });
  saved.set("session", null);
  showCartCount(null);
  go("#/", "You are signed out.");
}

// ---- Routing ----------------------------------------------------------------------------

let carried = "";

/** Goes to `hash` and shows `message` there. */
function go(hash, message) {
  if (location.hash === hash) {
    notice(message);
    route();
    return;
  }
  carried = message;
  location.hash = hash;
}

let routed = 0;

async function route() {
  // A view still loading when the shopper moves on must not replace the newer one.
  const mine = ++routed;
  const [, view, id] = (location.hash || "#/").split("/");
  const views = { "": viewProducts, p: () => viewProduct(id), cart: viewCart, orders: viewOrders, order: () => viewGuestOrder(id), account: viewAccount };
  const render = views[view] || viewProducts;
  $("#nav-account").textContent = saved.get("session") ? "Account" : "Sign in";
  const content = await render();
  if (mine !== routed) return;
  $("#view").replaceChildren(...content);
  document.body.dataset.view = view || "home";
}

async function loadCategories() {
  const answer = await api("catalog", "GET", "/products?limit=200");
  if (!answer.ok) return;
  const categories = [...new Set(answer.data.map((p) => p.category).filter(Boolean))].sort();
  $("#category").append(...categories.map((c) => h("option", { value: c }, c)));
}

$("#search").addEventListener("submit", (event) => {
  event.preventDefault();
  if (location.hash && location.hash !== "#/") location.hash = "#/";
  else route();
});
$("#category").addEventListener("change", () => route());
window.addEventListener("hashchange", () => { notice(carried); carried = ""; route(); });
if (!shop.key) notice("This page needs the shop's storefront key in its address (?key=...).", true);
loadCategories();
route();
if (saved.get("session") || saved.get("cartToken")) api("cart", "GET", "/cart/me").then((a) => a.ok && showCartCount(a.data));
