#!/usr/bin/env bash
# The testing guide's curl commands, each with a checked expectation, run against services
# that are already running (scripts/start-all.sh). Every check runs; each failure is
# reported as it happens and counted at the end (exit 1 if any failed).
#
# Environment (all optional):
#   API_KEY                                 default secret-key-123
#   STOREFRONT_KEY                          default storefront-key-123
#   CART_URL CATALOG_URL ORDER_URL PAYMENT_URL   default http://localhost:8001 .. 8004
#   WEBHOOK_SECRET   the shop's webhook secret, to sign webhooks by hand (default: read from
#                    ${DATA_DIR:-data}/webhook-secret, where start-all.sh keeps it)
# It WRITES to the shop it is given: products, orders, payments, refunds, customers and a
# hand-signed webhook (each run under fresh ids, so it can be repeated against the same
# data, and its checks hold on a shop that already has books of its own). Point it at a
# shop of its own (scripts/test.sh starts one in a temp dir), not at a shop with real books.
set -euo pipefail

KEY="${API_KEY:-secret-key-123}"
SHOP_KEY="${STOREFRONT_KEY:-storefront-key-123}"
SHOP_KEY="${SHOP_KEY%%,*}"
CART="${CART_URL:-http://localhost:8001}"
CATALOG="${CATALOG_URL:-http://localhost:8002}"
ORDER="${ORDER_URL:-http://localhost:8003}"
PAYMENT="${PAYMENT_URL:-http://localhost:8004}"
RUN="$(date +%s)-$$"
U="guide-$RUN"

SECRET="${WEBHOOK_SECRET:-$(head -n 1 "${DATA_DIR:-data}/webhook-secret" 2>/dev/null || true)}"
SECRET="${SECRET%%,*}"
if [[ -z "$SECRET" ]]; then
  echo "testing-guide.sh needs WEBHOOK_SECRET (or ${DATA_DIR:-data}/webhook-secret from start-all.sh)" >&2
  exit 2
fi

echo "note: the testing guide writes test orders, payments, refunds and customers to the shop at $ORDER (and the other three)"
for tool in curl jq openssl; do
  command -v "$tool" >/dev/null || { echo "testing-guide.sh needs $tool" >&2; exit 2; }
done

body_file="$(mktemp)"
header_file="$(mktemp)"
trap 'rm -f "$body_file" "$header_file"' EXIT
passed=0
failures=0

# check DESCRIPTION STATUS JQ_CONDITION CURL_ARGS...
# Runs curl, then demands the HTTP status and (unless the condition is empty) that the jq
# condition holds on the JSON body.
check() {
  local description="$1" want="$2" condition="$3"; shift 3
  local got
  got="$(curl -sS -D "$header_file" -o "$body_file" -w '%{http_code}' "$@")" || got="curl-failed"
  if [[ "$got" != "$want" ]]; then
    echo "FAIL: $description: expected HTTP $want, got $got" >&2
    echo "  curl $*" >&2
    echo "  body: $(head -c 600 "$body_file")" >&2
    failures=$((failures + 1))
    return 0
  fi
  if [[ -n "$condition" ]] && ! jq -e "$condition" "$body_file" >/dev/null 2>&1; then
    echo "FAIL: $description: body does not satisfy: $condition" >&2
    echo "  curl $*" >&2
    echo "  body: $(head -c 600 "$body_file")" >&2
    failures=$((failures + 1))
    return 0
  fi
  passed=$((passed + 1))
  printf 'ok %2d  %s\n' "$passed" "$description"
}

# The last response body, for reading ids out of it.
last() { jq -r "$1" "$body_file" 2>/dev/null || echo ""; }

# header_is DESCRIPTION NAME VALUE: the last response carried that header.
header_is() {
  if ! grep -qi "^$2: $3"$'\r'"\?$" "$header_file"; then
    echo "FAIL: $1: no '$2: $3' header in:" >&2
    cat "$header_file" >&2
    failures=$((failures + 1))
    return 0
  fi
  passed=$((passed + 1))
  printf 'ok %2d  %s\n' "$passed" "$1"
}

# holds DESCRIPTION COMMAND...: the command succeeds (for what is not an HTTP answer).
holds() {
  local description="$1"; shift
  if ! "$@"; then
    echo "FAIL: $description: $* failed" >&2
    failures=$((failures + 1))
    return 0
  fi
  passed=$((passed + 1))
  printf 'ok %2d  %s\n' "$passed" "$description"
}

# sign ID TIMESTAMP BODY: the Standard Webhooks signature "v1,<base64 HMAC-SHA256>" of
# "ID.TIMESTAMP.BODY" with the shop's secret (whsec_ secrets are base64 after the prefix).
sign() {
  local key_hex
  if [[ "$SECRET" == whsec_* ]]; then
    key_hex="$(printf '%s' "${SECRET#whsec_}" | base64 -d | od -An -v -tx1 | tr -d ' \n')"
  else
    key_hex="$(printf '%s' "$SECRET" | od -An -v -tx1 | tr -d ' \n')"
  fi
  printf 'v1,%s' "$(printf '%s.%s.%s' "$1" "$2" "$3" |
    openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key_hex" -binary | base64)"
}

H=(-H "X-API-Key: $KEY")
JSON=(-H "Content-Type: application/json")

echo "== Quick start: the guide's commands as written =="
check "add item to cart (with validation)" 200 '.item.product_id == 1 and .item.verified' \
  -X POST "$CART/cart/user1/add?product_id=1&quantity=2" -H "X-API-Key: $KEY"
check "get products" 200 'length >= 3 and (map(.id) | index(1) != null)' \
  -X GET "$CATALOG/products" -H "X-API-Key: $KEY"
check "create order (it holds its unit of stock)" 201 '.status == "PENDING" and .total == 999.99 and .user_id == "user1" and .stock == "held" and (.ref | length) == 36' \
  -X POST "$ORDER/orders?user_id=user1" -H "X-API-Key: $KEY" -H "Content-Type: application/json" \
  -d '[{"product_id":1,"quantity":1,"price":999.99}]'
guide_order="$(last .id)"
check "process payment" 200 ".order_id == $guide_order and .amount == 999.99 and .webhook_status == \"delivered\"" \
  -X POST "$PAYMENT/pay?order_id=$guide_order&amount=999.99" -H "X-API-Key: $KEY"
check "the paid order is PAID and its stock sold" 200 '.status == "PAID" and (.status_history | map(.status)) == ["PENDING","PAID"] and .stock == "committed"' \
  "$ORDER/orders/$guide_order" "${H[@]}"
check "  ... the catalog's reservation, under the order's ref, is committed and has no timer" 200 \
  '.status == "committed" and .expires_at == null and .lines == [{"product_id":1,"quantity":1,"returned":0}]' \
  "$CATALOG/reservations/$(curl -sS "$ORDER/orders/$guide_order" "${H[@]}" | jq -r .ref)" "${H[@]}"

echo "== Health: open to anyone =="
for svc in "$CART" "$CATALOG" "$ORDER" "$PAYMENT"; do
  check "health of $svc without a key" 200 '.status == "ok"' "$svc/health"
  check "OpenAPI document of $svc without a key" 200 \
    '.openapi == "3.1.0" and .components.securitySchemes.api_key.name == "X-API-Key" and (.paths | length) >= 4' \
    "$svc/openapi.json"
done

echo "== Authentication: every route needs the key =="
check "products without a key" 401 '.error.code == "unauthorized"' "$CATALOG/products"
check "products with a wrong key" 401 '.error.code == "unauthorized"' "$CATALOG/products" -H "X-API-Key: wrong"
check "products with an empty key" 401 '.error.code == "unauthorized"' "$CATALOG/products" -H "X-API-Key:"
check "one product without a key" 401 '' "$CATALOG/products/1"
check "cart without a key" 401 '' "$CART/cart/$U"
check "cart add without a key changes nothing" 401 '' -X POST "$CART/cart/$U/add?product_id=1&quantity=1"
check "  ... the cart is still empty" 200 '.items == []' "$CART/cart/$U" "${H[@]}"
check "cart clear without a key" 401 '' -X DELETE "$CART/cart/$U/clear"
check "order create without a key" 401 '' -X POST "$ORDER/orders?user_id=$U" "${JSON[@]}" \
  -d '[{"product_id":1,"quantity":1,"price":999.99}]'
check "  ... no order was created" 200 'length == 0' "$ORDER/orders?user_id=$U" "${H[@]}"
check "order list without a key" 401 '' "$ORDER/orders"
check "order get without a key" 401 '' "$ORDER/orders/$guide_order"
check "payment webhook without a key" 401 '' -X POST "$ORDER/orders/$guide_order/payment"
check "pay without a key" 401 '' -X POST "$PAYMENT/pay?order_id=$guide_order&amount=999.99"
check "payments without a key" 401 '' "$PAYMENT/payments"

echo "== Scoped keys: the storefront key shops, the admin key runs the shop =="
S=(-H "X-API-Key: $SHOP_KEY")
check "the storefront key browses the catalog" 200 '.id == 1' "$CATALOG/products/1" "${S[@]}"
check "  ... opens a guest cart (its token is the only way in)" 201 '.cart_token | startswith("ct_")' -X POST "$CART/carts" "${S[@]}"
G=("${S[@]}" -H "X-Cart-Token: $(last .cart_token)")
check "  ... fills it as /cart/me" 200 '.item.quantity == 1 and (.cart.user_id | startswith("guest_"))' \
  -X POST "$CART/cart/me/add?product_id=2&quantity=1" "${G[@]}"
check "  ... but never a cart it names (no such cart)" 404 '' -X POST "$CART/cart/$U/add?product_id=2&quantity=1" "${S[@]}"
check "  ... nor the list of everyone's orders without a customer's session" 401 '.error.message | contains("sign in")' \
  "$ORDER/orders?user_id=$U" "${S[@]}"
check "  ... nor another's order (no such order, not 'forbidden')" 404 '' "$ORDER/orders/$guide_order" "${S[@]}"
check "  ... nor the shop's stats" 403 '.error.code == "forbidden"' "$ORDER/orders/stats" "${S[@]}"
check "  ... but creating a product is 403, not 401" 403 '.error.code == "forbidden"' \
  -X POST "$CATALOG/products" "${S[@]}" "${JSON[@]}" -d '{"name":"Not allowed","price":1.00,"stock":1}'
check "  ... so is moving stock" 403 '.error.code == "forbidden"' \
  -X POST "$CATALOG/products/1/stock" "${S[@]}" "${JSON[@]}" -d '{"delta":100,"reason":"sneaky"}'
check "  ... changing an order's status" 403 '.error.code == "forbidden"' \
  -X PUT "$ORDER/orders/$guide_order/status" "${S[@]}" "${JSON[@]}" -d '{"status":"CANCELLED"}'
check "  ... and retrying webhooks" 403 '.error.code == "forbidden"' "$PAYMENT/webhooks/deliveries" "${S[@]}"
check "  ... nothing changed: the guide's order is as it was" 200 '.status == "PAID"' "$ORDER/orders/$guide_order" "${H[@]}"
echo "== Customers: accounts, sessions, their own orders =="
check "sign up (the same answer whether or not the email has an account)" 202 '.status == "accepted"' \
  -X POST "$ORDER/customers" "${S[@]}" "${JSON[@]}" -d "{\"email\":\"$U@example.com\",\"password\":\"guide password 1\",\"name\":\"Guide\"}"
check "a wrong password is refused, naming neither part" 401 '.error.message == "the email or password is wrong"' \
  -X POST "$ORDER/sessions" "${S[@]}" "${JSON[@]}" -d "{\"email\":\"$U@example.com\",\"password\":\"not it at all\"}"
check "sign in: an access token of at most 15 minutes and a refresh token" 201 \
  '.token_type == "Bearer" and .expires_in <= 900 and (.customer.id | startswith("cus_"))' \
  -X POST "$ORDER/sessions" "${S[@]}" "${JSON[@]}" -d "{\"email\":\"$U@example.com\",\"password\":\"guide password 1\"}"
B=("${S[@]}" -H "Authorization: Bearer $(last .access_token)")
refresh_token="$(last .refresh_token)"
check "  ... the customer's cart is /cart/me" 200 '.item.quantity == 1 and (.cart.user_id | startswith("cus_"))' \
  -X POST "$CART/cart/me/add?product_id=2&quantity=1" "${B[@]}"
check "  ... the customer checks out, with the shipping address" 201 '.status == "completed"' \
  -X POST "$CART/cart/me/checkout" "${B[@]}" "${JSON[@]}" \
  -d '{"card":{"number":"4242424242424242","exp_month":12,"exp_year":2031,"cvc":"123"},"shipping_address":{"lines":["1 Guide Street"],"city":"London","postal_code":"N1 1AA","country":"GB"}}'
check "  ... and lists only their own orders" 200 'length == 1 and (.[0].user_id | startswith("cus_"))' "$ORDER/orders" "${B[@]}"
check "  ... and payments, card brand and last four only" 200 'length == 1 and .[0].card.last4 == "4242" and .[0].card.exp_year == null' \
  "$PAYMENT/payments" "${B[@]}"
check "a forged token is a 401 that says why" 401 '.error.message | contains("signature")' \
  "$ORDER/orders" "${S[@]}" -H "Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJjdXNfMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAiLCJuYmYiOjAsImV4cCI6NDEwMjQ0NDgwMH0.c2lnbmVkLWJ5LWFub3RoZXItc2VjcmV0LTAxMjM0NTY"
check "sign out" 204 '' -X POST "$ORDER/sessions/sign-out" "${S[@]}" "${JSON[@]}" -d "{\"refresh_token\":\"$refresh_token\"}"
check "  ... its refresh token opens nothing after" 401 '' \
  -X POST "$ORDER/sessions/refresh" "${S[@]}" "${JSON[@]}" -d "{\"refresh_token\":\"$refresh_token\"}"

check "each route's scope is in its OpenAPI document" 200 \
  '.paths["/products"].get["x-scope"] == "storefront" and .paths["/products"].post["x-scope"] == "admin"' "$CATALOG/openapi.json"
check "Swagger UI for the document, no key needed" 200 '' "$ORDER/docs/"

echo "== Catalog =="
check "product 1 costs 999.99" 200 '.id == 1 and .price == 999.99 and .stock >= 0' "$CATALOG/products/1" "${H[@]}"
check "products 2 and 3 exist" 200 '.id == 2' "$CATALOG/products/2" "${H[@]}"
check "unknown product is 404" 404 '.error.code == "not_found"' "$CATALOG/products/999999" "${H[@]}"
check "non-numeric product id is 400" 400 '.error.code == "bad_request"' "$CATALOG/products/abc" "${H[@]}"
check "product id 0 is 422" 422 '.error.code == "validation_failed"' "$CATALOG/products/0" "${H[@]}"
check "products paginate" 200 'length == 1 and .[0].id == 2' "$CATALOG/products?limit=1&offset=1" "${H[@]}"

echo "== Cart =="
check "an unknown user has an empty cart" 200 ".user_id == \"$U\" and .items == [] and .total == 0" "$CART/cart/$U" "${H[@]}"
check "add 2 x product 1" 200 '.item.quantity == 2 and .item.name != null and .item.unit_price == 999.99' \
  -X POST "$CART/cart/$U/add?product_id=1&quantity=2" "${H[@]}"
check "adding again adds to the quantity" 200 '.item.quantity == 3 and .cart.total == 2999.97' \
  -X POST "$CART/cart/$U/add?product_id=1&quantity=1" "${H[@]}"
check "quantity defaults to 1" 200 '.item.product_id == 2 and .item.quantity == 1' \
  -X POST "$CART/cart/$U/add?product_id=2" "${H[@]}"
check "unknown product is 404" 404 '.error.code == "not_found"' \
  -X POST "$CART/cart/$U/add?product_id=999999&quantity=1" "${H[@]}"
check "quantity 0 is 422" 422 '' -X POST "$CART/cart/$U/add?product_id=1&quantity=0" "${H[@]}"
check "negative quantity is 422" 422 '' -X POST "$CART/cart/$U/add?product_id=1&quantity=-1" "${H[@]}"
check "huge quantity is 422" 422 '' -X POST "$CART/cart/$U/add?product_id=1&quantity=1000000" "${H[@]}"
check "quantity beyond 64 bits is 400" 400 '' -X POST "$CART/cart/$U/add?product_id=1&quantity=99999999999999999999" "${H[@]}"
check "non-numeric quantity is 400" 400 '' -X POST "$CART/cart/$U/add?product_id=1&quantity=two" "${H[@]}"
check "missing product_id is 400" 400 '' -X POST "$CART/cart/$U/add?quantity=1" "${H[@]}"
check "a malformed user id is 422" 422 '' -X POST "$CART/cart/bad%20user/add?product_id=1" "${H[@]}"
check "  ... none of the bad adds changed the cart" 200 '.items | map([.product_id, .quantity]) == [[1,3],[2,1]]' \
  "$CART/cart/$U" "${H[@]}"
check "a price sent with an add is refused (422 naming it): only the catalog's applies" 422 '.error.message | test("unknown field `price`")' \
  -X POST "$CART/cart/$U/add?product_id=2&quantity=1&price=0.01" "${H[@]}"
check "  ... and the cart is as it was" 200 '.items | map([.product_id, .quantity]) == [[1,3],[2,1]]' \
  "$CART/cart/$U" "${H[@]}"
check "set a line's quantity" 200 '(.items[] | select(.product_id == 1) | .quantity) == 5' \
  -X PUT "$CART/cart/$U/items/1?quantity=5" "${H[@]}"
check "remove a line" 200 '.items | map(.product_id) == [1]' -X DELETE "$CART/cart/$U/items/2" "${H[@]}"
check "removing a missing line is 404" 404 '' -X DELETE "$CART/cart/$U/items/2" "${H[@]}"
check "clear the cart" 200 '.items == [] and .total == 0' -X DELETE "$CART/cart/$U/clear" "${H[@]}"
check "  ... and it stays empty" 200 '.items == []' "$CART/cart/$U" "${H[@]}"

echo "== Orders =="
check "a price that differs from the catalog is 422" 422 '.error.message | test("catalog")' \
  -X POST "$ORDER/orders?user_id=$U" "${H[@]}" "${JSON[@]}" -d '[{"product_id":1,"quantity":1,"price":1.00}]'
check "an unknown product is 422" 422 '' \
  -X POST "$ORDER/orders?user_id=$U" "${H[@]}" "${JSON[@]}" -d '[{"product_id":999999,"quantity":1,"price":1.00}]'
check "an empty order is 422" 422 '' -X POST "$ORDER/orders?user_id=$U" "${H[@]}" "${JSON[@]}" -d '[]'
check "quantity 0 is 422" 422 '' \
  -X POST "$ORDER/orders?user_id=$U" "${H[@]}" "${JSON[@]}" -d '[{"product_id":1,"quantity":0,"price":999.99}]'
check "three decimals in a price is 422" 422 '' \
  -X POST "$ORDER/orders?user_id=$U" "${H[@]}" "${JSON[@]}" -d '[{"product_id":1,"quantity":1,"price":999.999}]'
check "malformed JSON is 400" 400 '' -X POST "$ORDER/orders?user_id=$U" "${H[@]}" "${JSON[@]}" -d '[{"product_id":'
check "a body that is not JSON is 415" 415 '' \
  -X POST "$ORDER/orders?user_id=$U" "${H[@]}" -H "Content-Type: text/plain" -d 'hello'
check "a missing user_id is 422 (the admin key names whose order it is)" 422 '.error.message | contains("user_id")' \
  -X POST "$ORDER/orders" "${H[@]}" "${JSON[@]}" -d '[{"product_id":1,"quantity":1,"price":999.99}]'
check "an oversized body is 413" 413 '' -X POST "$ORDER/orders?user_id=$U" "${H[@]}" "${JSON[@]}" \
  --data-binary "[$(printf '{"product_id":1,"quantity":1,"price":999.99},%.0s' $(seq 1 2000)){}]"
check "  ... none of them created an order" 200 'length == 0' "$ORDER/orders?user_id=$U" "${H[@]}"
check "create an order of two products" 201 '.total == 1059.97 and (.items | length) == 2' \
  -X POST "$ORDER/orders?user_id=$U" "${H[@]}" "${JSON[@]}" \
  -d '[{"product_id":1,"quantity":1,"price":999.99},{"product_id":2,"quantity":2,"price":29.99}]'
order_id="$(last .id)"
check "a client-set status or total is refused (422 naming it), nothing placed" 422 '.error.message | test("unknown field `status`")' \
  -X POST "$ORDER/orders?user_id=$U" "${H[@]}" "${JSON[@]}" \
  -d '[{"product_id":2,"quantity":1,"price":29.99,"status":"PAID","total":0.01}]'
check "a second order, PENDING at the catalog's total" 201 '.status == "PENDING" and .total == 29.99' \
  -X POST "$ORDER/orders?user_id=$U" "${H[@]}" "${JSON[@]}" \
  -d '[{"product_id":2,"quantity":1,"price":29.99}]'
second_order="$(last .id)"
check "get the order" 200 ".id == $order_id and .status == \"PENDING\" and .catalog_verified" "$ORDER/orders/$order_id" "${H[@]}"
check "an unknown order is 404" 404 '' "$ORDER/orders/99999999" "${H[@]}"
check "list orders by user" 200 "length == 2 and .[0].id == $second_order" "$ORDER/orders?user_id=$U" "${H[@]}"
check "list orders by user and status" 200 'length == 2' "$ORDER/orders?user_id=$U&status=PENDING" "${H[@]}"
check "an unknown status filter is 422" 422 '' "$ORDER/orders?status=LOST" "${H[@]}"
check "a product with one unit left" 201 '.stock == 1' \
  -X POST "$CATALOG/products" "${H[@]}" "${JSON[@]}" -d '{"name":"Last One","price":5.00,"stock":1}'
last_one="$(last .id)"
check "an order takes the unit" 201 '.stock == "held"' \
  -X POST "$ORDER/orders?user_id=$U-last" "${H[@]}" "${JSON[@]}" -d "[{\"product_id\":$last_one,\"quantity\":1,\"price\":5.00}]"
last_order="$(last .id)"
check "  ... it is off sale" 200 '.stock == 0' "$CATALOG/products/$last_one" "${H[@]}"
check "a second order for it is 409, naming the product" 409 ".error.message | test(\"out of stock: product $last_one\")" \
  -X POST "$ORDER/orders?user_id=$U-last" "${H[@]}" "${JSON[@]}" -d "[{\"product_id\":$last_one,\"quantity\":1,\"price\":5.00}]"
check "  ... and kept, cancelled out_of_stock" 200 '.[0].status_history[-1].reason | startswith("out_of_stock: ")' \
  "$ORDER/orders?user_id=$U-last&status=CANCELLED" "${H[@]}"
check "cancelling the first order puts its unit back" 200 '.status == "CANCELLED" and .stock == "released"' \
  -X PUT "$ORDER/orders/$last_order/status" "${H[@]}" "${JSON[@]}" -d '{"status":"CANCELLED"}'
check "  ... on sale again" 200 '.stock == 1' "$CATALOG/products/$last_one" "${H[@]}"

echo "== Payments =="
check "a wrong amount is 422" 422 '.error.message | test("total")' \
  -X POST "$PAYMENT/pay?order_id=$order_id&amount=1.00" "${H[@]}"
check "an unknown order is 404" 404 '' -X POST "$PAYMENT/pay?order_id=99999999&amount=1.00" "${H[@]}"
check "a non-numeric amount is 422" 422 '' -X POST "$PAYMENT/pay?order_id=$order_id&amount=lots" "${H[@]}"
check "a negative amount is 422" 422 '' -X POST "$PAYMENT/pay?order_id=$order_id&amount=-1059.97" "${H[@]}"
check "a non-numeric order id is 400" 400 '' -X POST "$PAYMENT/pay?order_id=abc&amount=1.00" "${H[@]}"
check "  ... no payment was recorded" 200 'length == 0' "$PAYMENT/payments?order_id=$order_id" "${H[@]}"
check "pay the order" 200 '.status == "captured" and .amount == 1059.97 and .webhook_status == "delivered"' \
  -X POST "$PAYMENT/pay?order_id=$order_id&amount=1059.97" "${H[@]}"
payment_id="$(last .id)"
check "the webhook marked it PAID" 200 ".status == \"PAID\" and .payment_id == $payment_id" "$ORDER/orders/$order_id" "${H[@]}"
check "paying a PAID order again is 409" 409 '.error.code == "conflict"' \
  -X POST "$PAYMENT/pay?order_id=$order_id&amount=1059.97" "${H[@]}"
check "  ... and charged nothing" 200 'length == 1' "$PAYMENT/payments?order_id=$order_id" "${H[@]}"
check "marking it PAID with only the API key is 401 (webhooks are signed)" 401 '.error.code == "unauthorized"' \
  -X POST "$ORDER/orders/$order_id/payment" "${H[@]}" "${JSON[@]}" \
  -d "{\"type\":\"payment.succeeded\",\"data\":{\"payment_id\":$payment_id,\"order_id\":$order_id,\"amount\":1059.97}}"
check "get the payment" 200 ".id == $payment_id and .order_id == $order_id" "$PAYMENT/payments/$payment_id" "${H[@]}"
check "an unknown payment is 404" 404 '' "$PAYMENT/payments/99999999" "${H[@]}"
check "list payments" 200 'length >= 1' "$PAYMENT/payments?limit=5" "${H[@]}"
check "PAID orders of the user" 200 "length == 1 and .[0].id == $order_id" "$ORDER/orders?user_id=$U&status=PAID" "${H[@]}"

echo "== Signed webhooks (Standard Webhooks) =="
check "an order to pay through a hand-signed webhook" 201 '.status == "PENDING"' \
  -X POST "$ORDER/orders?user_id=$U" "${H[@]}" "${JSON[@]}" -d '[{"product_id":3,"quantity":1,"price":89.99}]'
signed_order="$(last .id)"
wh_body="{\"type\":\"payment.succeeded\",\"data\":{\"payment_id\":424242,\"order_id\":$signed_order,\"amount\":89.99}}"
wh_id="msg_guide_$RUN"
now="$(date +%s)"
good_sig="$(sign "$wh_id" "$now" "$wh_body")"
WH=(-H "webhook-id: $wh_id" -H "webhook-timestamp: $now")
check "a body changed by one byte is 401" 401 '' -X POST "$ORDER/orders/$signed_order/payment" "${H[@]}" "${JSON[@]}" \
  "${WH[@]}" -H "webhook-signature: $good_sig" -d "${wh_body/89.99/89.98}"
check "an empty v1 signature is 401" 401 '' -X POST "$ORDER/orders/$signed_order/payment" "${H[@]}" "${JSON[@]}" \
  "${WH[@]}" -H "webhook-signature: v1," -d "$wh_body"
stale=$((now - 600))
check "a timestamp ten minutes old is 401" 401 '' -X POST "$ORDER/orders/$signed_order/payment" "${H[@]}" "${JSON[@]}" \
  -H "webhook-id: $wh_id" -H "webhook-timestamp: $stale" -H "webhook-signature: $(sign "$wh_id" "$stale" "$wh_body")" -d "$wh_body"
check "  ... the order is still PENDING" 200 '.status == "PENDING"' "$ORDER/orders/$signed_order" "${H[@]}"
check "a correctly signed webhook marks it PAID" 200 '.status == "PAID" and .payment_id == 424242' \
  -X POST "$ORDER/orders/$signed_order/payment" "${H[@]}" "${JSON[@]}" "${WH[@]}" -H "webhook-signature: $good_sig" -d "$wh_body"
check "the same webhook-id again is processed once (200, unchanged)" 200 '(.status_history | length) == 2' \
  -X POST "$ORDER/orders/$signed_order/payment" "${H[@]}" "${JSON[@]}" "${WH[@]}" -H "webhook-signature: $good_sig" -d "$wh_body"

echo "== Webhook deliveries =="
check "the payment's delivery is listed" 200 "length == 1 and .[0].status == \"delivered\" and .[0].payment_id == $payment_id" \
  "$PAYMENT/webhooks/deliveries?order_id=$order_id" "${H[@]}"
delivery_id="$(last '.[0].id')"
check "a delivery keeps every attempt, successes too" 200 '.attempts | length >= 1 and (last | .status_code == 200)' \
  "$PAYMENT/webhooks/deliveries/$delivery_id" "${H[@]}"
check "retrying a delivered webhook is 409" 409 '' -X POST "$PAYMENT/webhooks/deliveries/$delivery_id/retry" "${H[@]}"
check "an unknown delivery is 404" 404 '' "$PAYMENT/webhooks/deliveries/msg_nothing_here" "${H[@]}"
check "an unknown delivery status filter is 422" 422 '' "$PAYMENT/webhooks/deliveries?status=lost" "${H[@]}"
check "payment health reports the webhook backlog" 200 '.webhook_backlog.pending >= 0 and .webhook_backlog.failed >= 0' "$PAYMENT/health"

echo "== Test cards =="
check "an order to pay by card" 201 '.total == 29.99' \
  -X POST "$ORDER/orders?user_id=$U" "${H[@]}" "${JSON[@]}" -d '[{"product_id":2,"quantity":1,"price":29.99}]'
card_order="$(last .id)"
card() { printf '{"card":{"number":"%s","exp_month":12,"exp_year":%s,"cvc":"123"}}' "$1" "${2:-2031}"; }
check "card 4000000000000002 is declined (402)" 402 '.error.code == "card_declined"' \
  -X POST "$PAYMENT/pay?order_id=$card_order&amount=29.99" "${H[@]}" "${JSON[@]}" -d "$(card 4000000000000002)"
check "card 4000000000009995 has insufficient funds (402)" 402 '.error.code == "insufficient_funds"' \
  -X POST "$PAYMENT/pay?order_id=$card_order&amount=29.99" "${H[@]}" "${JSON[@]}" -d "$(card 4000000000009995)"
check "card 4000000000000069 is expired (402)" 402 '.error.code == "expired_card"' \
  -X POST "$PAYMENT/pay?order_id=$card_order&amount=29.99" "${H[@]}" "${JSON[@]}" -d "$(card 4000000000000069)"
check "card 4000000000000127 has an incorrect CVC (402)" 402 '.error.code == "incorrect_cvc"' \
  -X POST "$PAYMENT/pay?order_id=$card_order&amount=29.99" "${H[@]}" "${JSON[@]}" -d "$(card 4000000000000127)"
check "a number failing the Luhn check is 422" 422 '' \
  -X POST "$PAYMENT/pay?order_id=$card_order&amount=29.99" "${H[@]}" "${JSON[@]}" -d "$(card 4242424242424241)"
check "a card that expired last year is 422" 422 '' \
  -X POST "$PAYMENT/pay?order_id=$card_order&amount=29.99" "${H[@]}" "${JSON[@]}" -d "$(card 4242424242424242 $(( $(date +%Y) - 1 )))"
check "  ... declines are recorded as failed with their reason" 200 'length == 4 and all(.status == "failed") and (map(.failure_code) | index("insufficient_funds") != null)' \
  "$PAYMENT/payments?order_id=$card_order" "${H[@]}"
check "  ... and the order stays unpaid" 200 '.status == "PENDING"' "$ORDER/orders/$card_order" "${H[@]}"
check "card 4242424242424242 succeeds; only brand, last four and expiry are kept" 200 \
  '.status == "captured" and .card == {"brand":"visa","last4":"4242","exp_month":12,"exp_year":2031}' \
  -X POST "$PAYMENT/pay?order_id=$card_order&amount=29.99" "${H[@]}" "${JSON[@]}" -d "$(card 4242424242424242)"
check "  ... and the order is PAID" 200 '.status == "PAID"' "$ORDER/orders/$card_order" "${H[@]}"

echo "== Idempotency keys =="
IK="guide-$RUN"
check "create an order with an Idempotency-Key" 201 '.total == 89.99' -X POST "$ORDER/orders?user_id=$U" "${H[@]}" "${JSON[@]}" \
  -H "Idempotency-Key: $IK-order" -d '[{"product_id":3,"quantity":1,"price":89.99}]'
idem_order="$(last .id)"
check "the same request again replays the first answer" 201 ".id == $idem_order" -X POST "$ORDER/orders?user_id=$U" "${H[@]}" "${JSON[@]}" \
  -H "Idempotency-Key: $IK-order" -d '[{"product_id":3,"quantity":1,"price":89.99}]'
header_is "  ... marked as a replay" "idempotent-replayed" "true"
check "the same key with another body is 422" 422 '' -X POST "$ORDER/orders?user_id=$U" "${H[@]}" "${JSON[@]}" \
  -H "Idempotency-Key: $IK-order" -d '[{"product_id":3,"quantity":2,"price":89.99}]'
check "a key longer than 255 characters is 400" 400 '' -X POST "$ORDER/orders?user_id=$U" "${H[@]}" "${JSON[@]}" \
  -H "Idempotency-Key: $(printf 'k%.0s' $(seq 1 256))" -d '[{"product_id":3,"quantity":1,"price":89.99}]'
check "pay it with an Idempotency-Key" 200 '.status == "captured"' \
  -X POST "$PAYMENT/pay?order_id=$idem_order&amount=89.99" "${H[@]}" -H "Idempotency-Key: $IK-pay"
idem_payment="$(last .id)"
check "paying again with the same key replays the payment, charging nothing" 200 ".id == $idem_payment" \
  -X POST "$PAYMENT/pay?order_id=$idem_order&amount=89.99" "${H[@]}" -H "Idempotency-Key: $IK-pay"
header_is "  ... marked as a replay" "idempotent-replayed" "true"
check "  ... one payment for the order" 200 'length == 1' "$PAYMENT/payments?order_id=$idem_order" "${H[@]}"

echo "== Order lifecycle =="
check "a PENDING order cannot ship (409)" 409 '' -X PUT "$ORDER/orders/$second_order/status" "${H[@]}" "${JSON[@]}" -d '{"status":"SHIPPED"}'
check "PAID cannot be set by hand (409)" 409 '.error.message | test("webhook")' \
  -X PUT "$ORDER/orders/$second_order/status" "${H[@]}" "${JSON[@]}" -d '{"status":"PAID"}'
check "cancel a PENDING order with a reason" 200 '.status == "CANCELLED" and .status_history[-1].reason == "changed my mind"' \
  -X PUT "$ORDER/orders/$second_order/status" "${H[@]}" "${JSON[@]}" -d '{"status":"CANCELLED","reason":"changed my mind"}'
check "a cancelled order cannot be paid (409)" 409 '' -X POST "$PAYMENT/pay?order_id=$second_order&amount=29.99" "${H[@]}"
check "ship a PAID order" 200 '.status == "SHIPPED"' -X PUT "$ORDER/orders/$order_id/status" "${H[@]}" "${JSON[@]}" -d '{"status":"SHIPPED"}'
check "deliver it" 200 '.status == "DELIVERED" and (.status_history | map(.status)) == ["PENDING","PAID","SHIPPED","DELIVERED"]' \
  -X PUT "$ORDER/orders/$order_id/status" "${H[@]}" "${JSON[@]}" -d '{"status":"DELIVERED"}'
check "a delivered order goes nowhere else (409)" 409 '' -X PUT "$ORDER/orders/$order_id/status" "${H[@]}" "${JSON[@]}" -d '{"status":"CANCELLED"}'
check "an unknown status is 422" 422 '' -X PUT "$ORDER/orders/$order_id/status" "${H[@]}" "${JSON[@]}" -d '{"status":"LOST"}'
# The order paid by the hand-signed webhook above has no captured payment behind it, and the
# reconciliation says so.
check "order stats: counts, revenue, and a reconciliation that spots the hand-signed payment" 200 \
  '.order_count >= 1 and .revenue > 0 and .reconciliation.status == "mismatch" and .reconciliation.paid_orders_total > .reconciliation.captured_payments_total - .reconciliation.refunded_total' \
  "$ORDER/orders/stats" "${H[@]}"
check "  ... and names the order behind it" 200 \
  "any(.reconciliation.mismatched_orders[]; .order_id == $signed_order and .order_value == 89.99 and .captured_net == 0)" \
  "$ORDER/orders/stats" "${H[@]}"

echo "== Refunds =="
# The delivered order of two products (1059.97): part of it comes back, then the rest.
check "refund part of a payment (money only)" 201 '.amount == 59.98 and .reason == "two mice returned" and (.ref | length) == 36' \
  -X POST "$PAYMENT/payments/$payment_id/refunds" "${H[@]}" "${JSON[@]}" -H "Idempotency-Key: $IK-refund" -d '{"amount":59.98,"reason":"two mice returned"}'
check "the same Idempotency-Key replays the refund, refunding nothing more" 201 '.amount == 59.98' \
  -X POST "$PAYMENT/payments/$payment_id/refunds" "${H[@]}" "${JSON[@]}" -H "Idempotency-Key: $IK-refund" -d '{"amount":59.98,"reason":"two mice returned"}'
check "  ... the order knows, through a signed payment.refunded webhook" 200 '.status == "DELIVERED" and .refunded == 59.98' \
  "$ORDER/orders/$order_id" "${H[@]}"
check "  ... and so does the payment" 200 '.refunded == 59.98' "$PAYMENT/payments/$payment_id" "${H[@]}"
check "more than is left is 422" 422 '.error.message | test("left to refund")' \
  -X POST "$PAYMENT/payments/$payment_id/refunds" "${H[@]}" "${JSON[@]}" -d '{"amount":1000.00}'
check "a refund puts no goods back on sale: restock is a 422 naming returns" 422 '.error.message | test("/returns")' \
  -X POST "$PAYMENT/payments/$payment_id/refunds" "${H[@]}" "${JSON[@]}" -d '{"restock":true}'
laptops="$(curl -sS "$CATALOG/products/1" "${H[@]}" | jq -r .stock)"
check "the laptop comes back sellable: its value refunded, the unit back on sale" 201 \
  '.returns[0].refund == 999.99 and .returns[0].refund_state == "done" and .returns[0].restock_state == "done" and ((.items[] | select(.product_id == 1) | .returned) == 1)' \
  -X POST "$ORDER/orders/$order_id/returns" "${H[@]}" "${JSON[@]}" \
  -d '{"lines":[{"product_id":1,"quantity":1,"condition":"sellable"}],"reason":"did not fit the desk"}'
check "  ... refunded in full, the order is REFUNDED" 200 \
  '.status == "REFUNDED" and .refunded == 1059.97' "$ORDER/orders/$order_id" "${H[@]}"
check "  ... the laptop is on sale again" 200 ".stock == $((laptops + 1))" "$CATALOG/products/1" "${H[@]}"
check "  ... and cannot come back twice (409)" 409 '.error.message | test("came back already")' \
  -X POST "$ORDER/orders/$order_id/returns" "${H[@]}" "${JSON[@]}" \
  -d '{"lines":[{"product_id":1,"quantity":1,"condition":"sellable"}],"reason":"again"}'
check "a return with an unknown field is refused and changes nothing" 422 '' \
  -X POST "$ORDER/orders/$order_id/returns" "${H[@]}" "${JSON[@]}" \
  -d '{"lines":[{"product_id":2,"quantity":1,"condition":"sellable"}],"reason":"x","restock":true}'
check "nothing is left to refund (409)" 409 '.error.code == "refunded_in_full"' -X POST "$PAYMENT/payments/$payment_id/refunds" "${H[@]}"
check "the payment's refunds" 200 'length == 2 and .[0].amount == 59.98' "$PAYMENT/payments/$payment_id/refunds" "${H[@]}"
header_is "  ... and their number" "x-total-count" "2"
check "payments list their total too" 200 'length >= 1' "$PAYMENT/payments?order_id=$order_id&limit=1" "${H[@]}"
header_is "  ... X-Total-Count" "x-total-count" "$(curl -sS "$PAYMENT/payments?order_id=$order_id" "${H[@]}" | jq length)"
check "REFUNDED is reached only through the payment service (409)" 409 '' \
  -X PUT "$ORDER/orders/$order_id/status" "${H[@]}" "${JSON[@]}" -d '{"status":"REFUNDED"}'
check "a paid order to cancel" 201 '.stock == "held"' \
  -X POST "$ORDER/orders?user_id=$U-cancel" "${H[@]}" "${JSON[@]}" -d '[{"product_id":3,"quantity":1,"price":89.99}]'
paid_to_cancel="$(last .id)"
check "  ... paid" 200 '.status == "captured"' -X POST "$PAYMENT/pay?order_id=$paid_to_cancel&amount=89.99" "${H[@]}"
keyboards="$(curl -sS "$CATALOG/products/3" "${H[@]}" | jq -r .stock)"
check "cancelling a PAID, unshipped order" 200 '.status == "CANCELLED"' \
  -X PUT "$ORDER/orders/$paid_to_cancel/status" "${H[@]}" "${JSON[@]}" -d '{"status":"CANCELLED","reason":"changed my mind"}'
check "  ... refunds it in full and returns its unit" 200 '.refunded == 89.99 and .stock == "released"' \
  "$ORDER/orders/$paid_to_cancel" "${H[@]}"
check "  ... which is on sale again" 200 ".stock == $((keyboards + 1))" "$CATALOG/products/3" "${H[@]}"
check "  ... the refund says why" 200 '.[0].reason == "order_cancelled"' \
  "$PAYMENT/payments/$(curl -sS "$PAYMENT/payments?order_id=$paid_to_cancel" "${H[@]}" | jq -r '.[0].id')/refunds" "${H[@]}"
check "a payment that was never captured cannot be refunded (409)" 409 '' \
  -X POST "$PAYMENT/payments/$(curl -sS "$PAYMENT/payments?order_id=$card_order" "${H[@]}" | jq -r 'map(select(.status == "failed"))[0].id')/refunds" "${H[@]}"

echo "== Catalog admin =="
check "add a product" 201 '.name == "Guide Lamp" and .price == 24.5 and .stock == 1' \
  -X POST "$CATALOG/products" "${H[@]}" "${JSON[@]}" -d "{\"name\":\"Guide Lamp\",\"price\":24.50,\"stock\":1}"
lamp="$(last .id)"
check "a product without a price is 422" 422 '' -X POST "$CATALOG/products" "${H[@]}" "${JSON[@]}" -d '{"name":"X","stock":1}'
check "a negative stock is 422" 422 '' -X PUT "$CATALOG/products/$lamp" "${H[@]}" "${JSON[@]}" -d '{"stock":-1}'
check "edit its price" 200 '.price == 19.99 and .stock == 1' -X PUT "$CATALOG/products/$lamp" "${H[@]}" "${JSON[@]}" -d '{"price":19.99}'
check "a product shows what is on sale, reserved and on hand, and its version" 200 \
  '.available == 1 and .reserved == 0 and .on_hand == 1 and .version >= 2' "$CATALOG/products/$lamp" "${H[@]}"
header_is "  ... its version is its ETag" "etag" "\"$(last .version)\""
check "a delivery of 5 is a stock movement" 201 '.delta == 5 and .stock_after == 6 and .reason == "delivery"' \
  -X POST "$CATALOG/products/$lamp/stock" "${H[@]}" "${JSON[@]}" -d '{"delta":5,"reason":"delivery"}'
check "taking more than is on sale is 409" 409 '.error.message | test("on sale")' \
  -X POST "$CATALOG/products/$lamp/stock" "${H[@]}" "${JSON[@]}" -d '{"delta":-7,"reason":"damaged"}'
check "a movement without a reason is 422" 422 '' \
  -X POST "$CATALOG/products/$lamp/stock" "${H[@]}" "${JSON[@]}" -d '{"delta":1}'
check "overwriting stock without If-Match is 428" 428 '.error.code == "precondition_required"' \
  -X PUT "$CATALOG/products/$lamp" "${H[@]}" "${JSON[@]}" -d '{"stock":1}'
check "  ... with a version that is no longer current, 412" 412 '.error.code == "precondition_failed"' \
  -X PUT "$CATALOG/products/$lamp" "${H[@]}" "${JSON[@]}" -H 'If-Match: "1"' -d '{"stock":1}'
lamp_version="$(curl -sS "$CATALOG/products/$lamp" "${H[@]}" | jq -r .version)"
check "  ... with the version just read, honoured (and recorded as a movement)" 200 '.stock == 1' \
  -X PUT "$CATALOG/products/$lamp" "${H[@]}" "${JSON[@]}" -H "If-Match: \"$lamp_version\"" -d '{"stock":1}'
check "the stock ledger, newest first, from the opening stock" 200 '[.[].delta] == [-5, 5, 1]' "$CATALOG/products/$lamp/stock/movements" "${H[@]}"
check "the stock audit balances for every product" 200 'length >= 4 and all(.balanced) and (map(select(.product_id == '"$lamp"'))[0] | .on_hand == 1 and .moved == 1)' \
  "$CATALOG/stock/audit" "${H[@]}"

echo "== Stock reservations =="
# An order id of its own, far above the order service's, so reruns never collide.
res_order="9$(date +%s)$((RANDOM % 100))"
check "reserve stock for an order" 201 '.status == "reserved" and .lines == [{"product_id":2,"quantity":2,"returned":0}]' \
  -X POST "$CATALOG/reservations" "${H[@]}" "${JSON[@]}" -d "{\"order_id\":$res_order,\"lines\":[{\"product_id\":2,\"quantity\":2}]}"
check "reserving again for the same order finds the same reservation" 200 '.status == "reserved"' \
  -X POST "$CATALOG/reservations" "${H[@]}" "${JSON[@]}" -d "{\"order_id\":$res_order,\"lines\":[{\"product_id\":2,\"quantity\":2}]}"
check "the same order with other lines is 409, never the reservation reused" 409 '.error.message | test("other lines")' \
  -X POST "$CATALOG/reservations" "${H[@]}" "${JSON[@]}" -d "{\"order_id\":$res_order,\"lines\":[{\"product_id\":2,\"quantity\":1}]}"
check "more than the stock is 409, and nothing is held" 409 '.error.message | test("out of stock")' \
  -X POST "$CATALOG/reservations" "${H[@]}" "${JSON[@]}" -d "{\"order_id\":$((res_order + 1)),\"lines\":[{\"product_id\":2,\"quantity\":1},{\"product_id\":$lamp,\"quantity\":2}]}"
check "release it" 200 '.status == "released"' -X POST "$CATALOG/reservations/$res_order/release" "${H[@]}"
check "a released reservation cannot be committed (409)" 409 '' -X POST "$CATALOG/reservations/$res_order/commit" "${H[@]}"
check "a reservation under a reference, held until settled" 201 ".reference == \"ref-$RUN\" and .order_id == $res_order and .expires_at == null" \
  -X POST "$CATALOG/reservations" "${H[@]}" "${JSON[@]}" -d "{\"reference\":\"ref-$RUN\",\"order_id\":$res_order,\"expires\":false,\"lines\":[{\"product_id\":2,\"quantity\":1}]}"
check "  ... the same reference for another order is 409" 409 '.error.message | test("other lines")' \
  -X POST "$CATALOG/reservations" "${H[@]}" "${JSON[@]}" -d "{\"reference\":\"ref-$RUN\",\"order_id\":1,\"expires\":false,\"lines\":[{\"product_id\":2,\"quantity\":1}]}"
check "  ... commit it by its reference" 200 '.status == "committed"' -X POST "$CATALOG/reservations/ref-$RUN/commit" "${H[@]}"
check "a reference that is not one is 422" 422 '' "$CATALOG/reservations/a%20b" "${H[@]}"

echo "== Checkout =="
check "an empty cart cannot be checked out (422)" 422 '' -X POST "$CART/cart/$U-empty/checkout" "${H[@]}"
check "fill a cart" 200 '.cart.item_count == 3' -X POST "$CART/cart/$U/add?product_id=2&quantity=3" "${H[@]}"
check "check out with the success card" 201 \
  '.status == "completed" and .total == 89.97 and ([.steps[].step] == ["validate","order","reserve","pay","commit","clear"])' \
  -X POST "$CART/cart/$U/checkout" "${H[@]}" "${JSON[@]}" -H "X-Request-Id: journey-$RUN" -d "$(card 4242424242424242)"
header_is "  ... the journey's id comes back" "x-request-id" "journey-$RUN"
checkout_id="$(last .id)"; checkout_order="$(last .order_id)"
check "  ... the checkout record shows every step" 200 ".order_id == $checkout_order and .payment_id != null" "$CART/checkouts/$checkout_id" "${H[@]}"
check "  ... the order is PAID" 200 '.status == "PAID"' "$ORDER/orders/$checkout_order" "${H[@]}"
check "  ... the stock is committed, under the order's ref" 200 '.status == "committed"' \
  "$CATALOG/reservations/$(curl -sS "$ORDER/orders/$checkout_order" "${H[@]}" | jq -r .ref)" "${H[@]}"
check "  ... the cart is empty" 200 '.items == []' "$CART/cart/$U" "${H[@]}"
check "the catalog's events of the journey" 200 '[.[].type] == ["stock.reserved","stock.committed"]' \
  "$CATALOG/events?correlation_id=journey-$RUN" "${H[@]}"
check "the order service's events of the journey" 200 '[.[].type] == ["order.created","order.status_changed","order.paid"]' \
  "$ORDER/events?correlation_id=journey-$RUN" "${H[@]}"
check "the payment service's events of the journey" 200 '[.[].type] == ["payment.captured"]' \
  "$PAYMENT/events?correlation_id=journey-$RUN" "${H[@]}"
check "the cart service's events of the journey" 200 '[.[].type] == ["checkout.completed"]' \
  "$CART/events?correlation_id=journey-$RUN" "${H[@]}"
check "event feeds page by sequence and filter by type" 200 'length <= 2 and all(.type == "order.created")' \
  "$ORDER/events?type=order.created&after=0&limit=2" "${H[@]}"
check "put the last lamp in the cart" 200 '.item.quantity == 1' -X POST "$CART/cart/$U/add?product_id=$lamp" "${H[@]}"
check "a declined card fails the checkout at the pay step (402)" 402 '.error.code == "card_declined" and (.error.message | test("step pay"))' \
  -X POST "$CART/cart/$U/checkout" "${H[@]}" "${JSON[@]}" -d "$(card 4000000000000002)"
failed="$(curl -sS "$CART/checkouts?user_id=$U" "${H[@]}" | jq -r '.[0].order_id')"
check "  ... the failed checkout's order is CANCELLED" 200 '.status == "CANCELLED"' "$ORDER/orders/$failed" "${H[@]}"
check "  ... its stock is released" 200 '.stock == "released"' "$ORDER/orders/$failed" "${H[@]}"
check "  ... and so says the catalog" 200 '.status == "released"' \
  "$CATALOG/reservations/$(curl -sS "$ORDER/orders/$failed" "${H[@]}" | jq -r .ref)" "${H[@]}"
check "  ... the cart is as it was" 200 "[.items[].product_id] == [$lamp]" "$CART/cart/$U" "${H[@]}"
check "  ... and it can simply be tried again" 201 '.status == "completed"' \
  -X POST "$CART/cart/$U/checkout" "${H[@]}" "${JSON[@]}" -H "Idempotency-Key: $IK-checkout" -d "$(card 4242424242424242)"
check "the same Idempotency-Key replays the checkout" 201 '.status == "completed"' \
  -X POST "$CART/cart/$U/checkout" "${H[@]}" "${JSON[@]}" -H "Idempotency-Key: $IK-checkout" -d "$(card 4242424242424242)"
header_is "  ... marked as a replay" "idempotent-replayed" "true"
check "another buyer adds the lamp" 200 '.item.product_id == '"$lamp" -X POST "$CART/cart/$U-2/add?product_id=$lamp" "${H[@]}"
check "  ... but it is sold out: the checkout is 409 at the order step, naming the product" 409 ".error.message | test(\"step order.*out of stock: product $lamp\")" \
  -X POST "$CART/cart/$U-2/checkout" "${H[@]}"
check "  ... and the first buyer's checkout history has both tries" 200 'length == 3 and .[0].status == "completed" and .[1].failed_step == "pay"' \
  "$CART/checkouts?user_id=$U" "${H[@]}"
check "delete the lamp: hidden from the catalog" 204 '' -X DELETE "$CATALOG/products/$lamp" "${H[@]}"
check "  ... and gone from GET" 404 '' "$CATALOG/products/$lamp" "${H[@]}"

echo "== Products: SKUs, categories, search and images =="
SKU="guide-$RUN"
check "add a product with a SKU and a category" 201 ".sku == \"$SKU\" and .category == \"Guide Lamps\" and .image_url == null" \
  -X POST "$CATALOG/products" "${H[@]}" "${JSON[@]}" \
  -d "{\"name\":\"Guide lamp $RUN\",\"price\":24.50,\"stock\":20,\"sku\":\"$SKU\",\"category\":\"Guide Lamps\",\"description\":\"Warm light\"}"
guide_lamp="$(last .id)"
check "  ... a second product with the same SKU is 409" 409 '.error.code == "conflict"' \
  -X POST "$CATALOG/products" "${H[@]}" "${JSON[@]}" -d "{\"name\":\"Copy\",\"price\":1,\"stock\":1,\"sku\":\"$SKU\"}"
check "find it by SKU" 200 "length == 1 and .[0].id == $guide_lamp" "$CATALOG/products?sku=$SKU" "${H[@]}"
check "search words, category, price and stock, sorted by price" 200 "map(.id) | index($guide_lamp) != null" \
  "$CATALOG/products?q=guide%20lamp&category=guide%20lamps&min_price=20&max_price=25&in_stock=true&sort=price" "${H[@]}"
check "lists say their total and link the next page" 200 'length == 1' "$CATALOG/products?limit=1" "${H[@]}"
header_is "  ... X-Total-Count" "x-total-count" "$(curl -sS "$CATALOG/products?limit=200" "${H[@]}" | jq length)"
header_is "  ... and Link to the next page" "link" '</products?limit=1&offset=1>; rel="next"'
png="$(mktemp)"
printf '\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\x0dIDATx\x9cc\x00\x01\x00\x00\x05\x00\x01\x0d\x0a\x2d\xb4\x00\x00\x00\x00IEND\xaeB\x60\x82' >"$png"
check "upload its picture (a PNG)" 200 ".image_url == \"/products/$guide_lamp/image\"" \
  -X PUT "$CATALOG/products/$guide_lamp/image" "${H[@]}" -H "Content-Type: image/png" --data-binary "@$png"
check "  ... served back as it was" 200 '' "$CATALOG/products/$guide_lamp/image" "${H[@]}"
header_is "  ... as image/png" "content-type" "image/png"
holds "  ... byte for byte" cmp -s "$png" "$body_file"
rm -f "$png"
check "something that is not an image is 422, whatever it claims" 422 '.error.message | test("not a PNG, JPEG or WebP")' \
  -X PUT "$CATALOG/products/$guide_lamp/image" "${H[@]}" -H "Content-Type: image/png" --data-binary '<svg onload="alert(1)"/>'
check "the storefront key cannot change a picture" 403 '.error.code == "forbidden"' \
  -X PUT "$CATALOG/products/$guide_lamp/image" "${S[@]}" -H "Content-Type: image/png" --data-binary 'x'

echo "== Customers, shipping addresses, promo codes and tracking =="
PROMO="GUIDE-$RUN"
check "an admin creates a promo code: 10% off, once" 201 ".code == \"$PROMO\" and .percent_off == 10 and .redeemed == 0" \
  -X POST "$ORDER/promo-codes" "${H[@]}" "${JSON[@]}" -d "{\"code\":\"$PROMO\",\"percent_off\":10,\"max_redemptions\":1}"
check "  ... the storefront key cannot" 403 '.error.code == "forbidden"' \
  -X POST "$ORDER/promo-codes" "${S[@]}" "${JSON[@]}" -d '{"code":"FREEBIE","percent_off":100}'
EMAIL="guide-$RUN@example.com"
ORDER_BODY="{\"items\":[{\"product_id\":$guide_lamp,\"quantity\":2,\"price\":24.50}],
  \"customer\":{\"email\":\"$EMAIL\",\"name\":\"Grace Hopper\"},
  \"shipping_address\":{\"name\":\"Grace Hopper\",\"lines\":[\"1 Navy Yard\"],\"city\":\"Arlington\",\"region\":\"VA\",\"postal_code\":\"22202\",\"country\":\"us\"},
  \"promo_code\":\"$PROMO\"}"
check "an order for a customer, to an address, with the code" 201 \
  ".subtotal == 49.0 and .discount == 4.9 and .total == 44.1 and .promo_code == \"$PROMO\" and .customer.email == \"$EMAIL\" and .shipping_address.country == \"US\" and .items[0].name == \"Guide lamp $RUN\"" \
  -X POST "$ORDER/orders?user_id=$U-grace" "${H[@]}" "${JSON[@]}" -H "X-Request-Id: grace-$RUN" -d "$ORDER_BODY"
grace_order="$(last .id)"
check "  ... the code is used up: the next order is 422, saying so" 422 '.error.message | test("used up")' \
  -X POST "$ORDER/orders?user_id=$U-grace" "${H[@]}" "${JSON[@]}" -d "$ORDER_BODY"
check "an unknown code is 422" 422 '.error.message | test("unknown")' \
  -X POST "$ORDER/orders?user_id=$U-grace" "${H[@]}" "${JSON[@]}" -d "${ORDER_BODY/$PROMO/NO-SUCH-CODE}"
check "a bad address field is 422, naming it" 422 '.error.message | startswith("shipping_address.country")' \
  -X POST "$ORDER/orders?user_id=$U-grace" "${H[@]}" "${JSON[@]}" -d "${ORDER_BODY/\"us\"/\"USA\"}"
check "orders by the customer's email" 200 "length == 1 and .[0].id == $grace_order" "$ORDER/orders?email=$EMAIL" "${H[@]}"
check "orders found by id, ref, user, email or name (q), with their total" 200 "length == 1 and .[0].id == $grace_order" \
  "$ORDER/orders?q=grace%20hopper&user_id=$U-grace&created_after=2020-01-01T00:00:00Z" "${H[@]}"
header_is "  ... X-Total-Count" "x-total-count" "1"
check "pay what is owed: the discounted total" 200 '.amount == 44.1 and .status == "captured"' \
  -X POST "$PAYMENT/pay?order_id=$grace_order&amount=44.10" "${H[@]}"
check "ship it with a carrier and tracking number" 200 '.status == "SHIPPED" and .shipment == {"carrier":"UPS","tracking_number":"1Z999AA10123456784"}' \
  -X PUT "$ORDER/orders/$grace_order/status" "${H[@]}" "${JSON[@]}" -H "X-Request-Id: grace-ship-$RUN" \
  -d '{"status":"SHIPPED","carrier":"UPS","tracking_number":"1Z999AA10123456784"}'
check "  ... and order.shipped says so" 200 ".[0].payload.order_id == $grace_order and .[0].payload.tracking_number == \"1Z999AA10123456784\"" \
  "$ORDER/events?type=order.shipped&correlation_id=grace-ship-$RUN" "${H[@]}"
check "order.created carried the customer and the discount" 200 ".[0].payload.customer.email == \"$EMAIL\" and .[0].payload.discount == 4.9" \
  "$ORDER/events?type=order.created&correlation_id=grace-$RUN" "${H[@]}"
check "a tracking number needs its carrier (422)" 422 '.error.message | test("carrier")' \
  -X PUT "$ORDER/orders/$grace_order/status" "${H[@]}" "${JSON[@]}" -d '{"status":"DELIVERED","tracking_number":"x"}'

echo "== Seed 001's one-call checkout: POST /checkout/process =="
# The seed's products, by SKU, at its prices (made once; a repeated run finds them).
for seed in "prod_001 Seed-shirt 99.90" "prod_002 Seed-shoes 149.90"; do
  read -r sku name price <<<"$seed"
  if [[ "$(curl -sS "$CATALOG/products?sku=$sku" "${H[@]}" | jq length)" == 0 ]]; then
    check "the catalog sells $sku at $price" 201 ".sku == \"$sku\"" -X POST "$CATALOG/products" "${H[@]}" "${JSON[@]}" \
      -d "{\"name\":\"$name\",\"price\":$price,\"stock\":1000,\"sku\":\"$sku\"}"
  else
    check "the catalog sells $sku at $price" 200 ".[0].price == $price" "$CATALOG/products?sku=$sku" "${H[@]}"
  fi
done
SEED_BODY='{
  "payment_method": {"type": "credit_card", "card_number": "4111111111111111", "card_expiry": "12/25", "card_cvv": "123"},
  "customer_email": "customer@example.com",
  "shipping_address": {"street": "Rua das Flores", "number": "123", "city": "São Paulo", "state": "SP", "zip_code": "01234-567"},
  "items": [{"product_id": "prod_001", "quantity": 2, "price": 99.90}, {"product_id": "prod_002", "quantity": 1, "price": 149.90}]
}'
check "the seed's body as written: its card expired in December 2025 (422, nothing placed)" 422 '.error.message | test("expired")' \
  -X POST "$CART/checkout/process" "${H[@]}" "${JSON[@]}" -d "$SEED_BODY"
check "the seed's body with a card that has not expired completes" 201 \
  '.status == "completed" and .total == 349.7 and (.user_id | startswith("guest_")) and (.lines | map(.name)) == ["Seed-shirt","Seed-shoes"]' \
  -X POST "$CART/checkout/process" "${H[@]}" "${JSON[@]}" -H "Idempotency-Key: seed-$RUN" -d "${SEED_BODY/12\/25/12\/30}"
seed_order="$(last .order_id)"
check "  ... the same Idempotency-Key replays it" 201 ".order_id == $seed_order" \
  -X POST "$CART/checkout/process" "${H[@]}" "${JSON[@]}" -H "Idempotency-Key: seed-$RUN" -d "${SEED_BODY/12\/25/12\/30}"
check "  ... its order is paid, for the customer, to the seed's address" 200 \
  '.status == "PAID" and .customer.email == "customer@example.com" and .shipping_address.lines == ["Rua das Flores, 123"] and .shipping_address.region == "SP"' \
  "$ORDER/orders/$seed_order" "${H[@]}"
check "a price that is not the catalog's is 422, naming the catalog's" 422 '.error.message | test("149.90")' \
  -X POST "$CART/checkout/process" "${H[@]}" "${JSON[@]}" -d "$(echo "${SEED_BODY/12\/25/12\/30}" | sed 's/149.90/14.99/')"

echo "== Errors are JSON everywhere =="
check "an unknown route is 404 JSON" 404 '.error.code == "not_found"' "$ORDER/nowhere" "${H[@]}"
check "a wrong method is 405 JSON" 405 '.error.code == "method_not_allowed"' -X DELETE "$CATALOG/products" "${H[@]}"
check "a query field the route does not know is 422 naming it" 422 '.error.message | test("limt")' \
  "$ORDER/orders?limt=5" "${H[@]}"
check "a body field the route does not know is 422 naming it" 422 '.error.message | test("promocode")' \
  -X POST "$ORDER/orders?user_id=typo-$U" "${H[@]}" "${JSON[@]}" \
  -d '{"items":[{"product_id":1,"quantity":1,"price":999.99}],"promocode":"WELCOME10"}'
check "  ... and placed nothing" 200 'length == 0' "$ORDER/orders?user_id=typo-$U" "${H[@]}"

echo
echo "guide: $passed passed, $failures failed"
[[ "$failures" -eq 0 ]]
