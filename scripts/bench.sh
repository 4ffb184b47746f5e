#!/usr/bin/env bash
# Benchmark: starts the four release binaries on a temp data dir (logging at warn, so the
# figures measure the services rather than their log files), measures the time from start to
# healthy and the resident memory idle, then measures each operation with wrk (Debian's
# package) side by side with the yardstick server (../shared/bench/limits: the same stack,
# each route doing only the work its operation needs), pair by pair in the same run, so the
# ratio holds however busy the machine is. loadgen then runs the mixed journey and checks its
# invariants. Prints every figure with the machine it came from.
#
# `scripts/bench.sh connections` measures connections instead: for each service, its
# resident memory idle, while connflood holds BENCH_CONNECTIONS (default 5000) keep-alive
# connections and BENCH_CONNECTIONS half-open ones (re-opened as the service cuts them), and
# after they close, with the latency of plain requests made meanwhile from another client.
#
# Environment (optional): BENCH_DURATION (default 10s per wrk and loadgen run),
# BENCH_CONNS (default 32 wrk connections), BENCH_MIX_USERS (default 64), BENCH_PORT_BASE
# (default 28001), BENCH_YARDSTICK (default ../shared/bench/limits), BENCH_CONNECTIONS.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
duration="${BENCH_DURATION:-10s}"
seconds="${duration%s}"
conns="${BENCH_CONNS:-32}"
mix_users="${BENCH_MIX_USERS:-64}"
base="${BENCH_PORT_BASE:-28001}"
tools=(curl jq)
[[ "${1:-}" == "connections" ]] || tools+=(wrk)
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null || { echo "bench.sh needs $tool (apt-get install $tool)" >&2; exit 2; }
done
yardstick_src="${BENCH_YARDSTICK:-$root/../shared/bench/limits}"

echo "building release binaries..."
cargo build --release --quiet --bins
bin="$root/target/release"
data="$(mktemp -d)"
results="$root/target/bench"
mkdir -p "$results" "$data/pids"
# The yardstick takes this one key; the shop here is a throwaway one on a temp dir.
export RATE_LIMIT=0 API_KEY="secret-key-123" WEBHOOK_SECRET="whsec_$(head -c 32 /dev/urandom | base64)" RUST_LOG=warn

cart_port=$base; catalog_port=$((base + 1)); order_port=$((base + 2)); payment_port=$((base + 3))
export CART_URL="http://127.0.0.1:$cart_port" CATALOG_URL="http://127.0.0.1:$catalog_port"
export ORDER_URL="http://127.0.0.1:$order_port" PAYMENT_URL="http://127.0.0.1:$payment_port"

pids=()
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  for f in "$data"/pids/*.pid; do [[ -f "$f" ]] && kill "$(cat "$f")" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$data"
}
trap cleanup EXIT

now_ms() { date +%s%3N; }
declare -A startup_ms
start() {
  local name="$1" port="$2"; shift 2
  local t0; t0="$(now_ms)"
  "$bin/$name" --port "$port" --db "$data/$name.db" "$@" >"$data/$name.log" 2>&1 &
  pids+=("$!")
  echo "$!" >"$data/pids/$name.pid"
  until curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1; do sleep 0.002; done
  startup_ms[$name]=$(( $(now_ms) - t0 ))
}
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$(cat "$data/pids/$1.pid")/status"; }
peak_kib() { awk '/^VmHWM/ { print $2 }' "/proc/$(cat "$data/pids/$1.pid")/status"; }

start catalog-service "$catalog_port"
start order-service "$order_port" --catalog-url "$CATALOG_URL" --payment-url "$PAYMENT_URL"
start payment-service "$payment_port" --order-url "$ORDER_URL"
start cart-service "$cart_port" --catalog-url "$CATALOG_URL" --order-url "$ORDER_URL" --payment-url "$PAYMENT_URL"
services=(catalog-service cart-service order-service payment-service)
declare -A idle_kib
for s in "${services[@]}"; do idle_kib[$s]="$(rss_kib "$s")"; done

if [[ "${1:-}" == "connections" ]]; then
  flood_n="${BENCH_CONNECTIONS:-5000}"
  declare -A port_of=([catalog-service]=$catalog_port [cart-service]=$cart_port
    [order-service]=$order_port [payment-service]=$payment_port)
  echo "== $flood_n connections held against each service in turn ($(nproc) cores; connflood on the same machine)"
  printf '%-16s %-10s %9s %9s %9s %12s %9s %9s\n' "service" "clients" "RSS idle" "held" \
    "after" "probes ok/x" "p50 ms" "p99 ms"
  for s in "${services[@]}"; do
    # warm-up: 300 requests first, so the database pool and its page caches are filled and
    # the next row's "RSS idle" is a service that has worked, not one that never has.
    for mode in warm-up keepalive half; do
      n="$flood_n" kind="$mode" extra=()
      [[ "$mode" == warm-up ]] && n=300 kind=keepalive
      [[ "$mode" == half ]] && extra=(--reopen)
      # After closing, wait past the allocator's purge delay (about 10 s) before reading RSS.
      line="$("$bin/connflood" --addr "127.0.0.1:${port_of[$s]}" --connections "$n" \
        --mode "$kind" "${extra[@]}" --hold 6s --settle 20s --pid "$(cat "$data/pids/$s.pid")")"
      echo "$line" >>"$results/connections.txt"
      awk -v s="$s" -v m="$mode" '{
        for (i = 1; i <= NF; i++) {
          if ($i == "ok") ok = $(i + 1); if ($i == "failed") bad = $(i + 1)
          if ($i == "p50") p50 = $(i + 1); if ($i == "p99") p99 = $(i + 1)
          if ($i == "idle") idle = $(i + 1); if ($i == "held") held = $(i + 1)
          if ($i == "after") after = $(i + 1)
        }
        printf "%-16s %-10s %9s %9s %9s %12s %9s %9s\n", s, m, idle, held, after, ok "/" bad, p50, p99
      }' <<<"${line//,/}"
    done
  done
  echo "(MiB; warm-up: 300 connections, one request each; keepalive: $flood_n connections, one"
  echo " request each, then silent; half: half a request line, re-opened when the service cuts it;"
  echo " probes: plain requests on new connections from another client meanwhile)"
  exit 0
fi


# The yardstick: two servers, one standing in for the catalog the other's routes call.
[[ -d "$yardstick_src" ]] || { echo "bench.sh needs the yardstick server's source in $yardstick_src (BENCH_YARDSTICK)" >&2; exit 2; }
echo "building the yardstick ($yardstick_src)..."
(cd "$yardstick_src" && CARGO_TARGET_DIR="$root/target/yardstick" cargo build --release --quiet)
yardstick_port=$((base + 10)); yardstick_catalog_port=$((base + 11))
DB="$data/yardstick-catalog.db" PORT=$yardstick_catalog_port "$root/target/yardstick/release/limits" >/dev/null 2>&1 &
pids+=("$!")
DB="$data/yardstick.db" PORT=$yardstick_port CATALOG="http://127.0.0.1:$yardstick_catalog_port" \
  "$root/target/yardstick/release/limits" >/dev/null 2>&1 &
pids+=("$!")
for port in $yardstick_port $yardstick_catalog_port; do
  until curl -fsS "http://127.0.0.1:$port/hello" >/dev/null 2>&1; do sleep 0.01; done
done
yardstick="http://127.0.0.1:$yardstick_port"

# Every order and checkout below buys product 1, filled up to the most a product may hold
# (1,000,000 units) so that it does not sell out.
on_hand="$(curl -fsS "$CATALOG_URL/products/1" -H "X-API-Key: $API_KEY" | jq .on_hand)"
curl -fsS -X POST "$CATALOG_URL/products/1/stock" -H "X-API-Key: $API_KEY" -H 'Content-Type: application/json' \
  -d "{\"delta\":$((1000000 - on_hand)),\"reason\":\"benchmark\"}" >/dev/null

# wrk scripts. Requests that name a cart or an order count up per wrk thread (-t1: one), so
# the carts filled first are checked out in the same order, and the orders placed are paid.
scripts="$data/wrk"; mkdir -p "$scripts"
cat >"$scripts/get.lua" <<LUA
wrk.headers["X-API-Key"] = "$API_KEY"
LUA
cat >"$scripts/order.lua" <<LUA
wrk.method = "POST"
wrk.headers["X-API-Key"] = "$API_KEY"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '[{"product_id":1,"quantity":1,"price":999.99}]'
LUA
counted() { # name path-before-n path-after-n [body]
  cat >"$scripts/$1.lua" <<LUA
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "$2" .. n .. "$3", {["X-API-Key"] = "$API_KEY", ["Content-Type"] = "application/json"}, ${4:-nil})
end
LUA
}
counted add "/cart/bench-add-" "/add?product_id=1&quantity=1"
counted fill "/cart/bench-" "/add?product_id=1&quantity=1"
counted checkout "/cart/bench-" "/checkout"
counted pay "/pay?order_id=" "&amount=999.99"

# wrk URL script [seconds] -> "req/s p50 p99 non-2xx requests"
measure() {
  local out
  out="$(wrk -t1 -c"$conns" -d"${3:-$seconds}s" --latency -s "$2" "$1" 2>&1)"
  awk '/Requests\/sec/ { rps = int($2) } $1 == "50%" { p50 = $2 } $1 == "99%" { p99 = $2 }
       /Non-2xx/ { bad = $5 } /requests in/ { n = $1 }
       END { print rps, p50, p99, bad + 0, n }' <<<"$out"
}
warm() { wrk -t1 -c"$conns" -d2s -s "$2" "$1" >/dev/null 2>&1; }
declare -A peak_kib_under_load
note_peaks() { for s in "${services[@]}"; do peak_kib_under_load[$s]="$(peak_kib "$s")"; done; }

echo "== mixed journey: loadgen, $mix_users users, $duration, its invariants checked (first, on a quiet shop: they compare its books before and after)"
"$bin/loadgen" --users "$mix_users" --duration "$duration" --mix "browse=50,add=30,checkout=20" \
  --restock 1000000 --pid-dir "$data/pids" --against-running-shop --json "$results/mixed.json" >"$results/mixed.txt" || true
jq -r '"mixed journey: \(.checkouts_per_second * 10 | floor / 10) checkouts/s, \(.requests_per_second | floor) req/s, p99 \(.steps | map(.p99_ms) | max) ms, \(.server_errors) server errors, invariants " + (if all(.invariants[]; .holds) then "all hold" else "FAILED" end)' "$results/mixed.json"

echo
echo "== each operation with wrk -t1 -c$conns -d${seconds}s, ours then the yardstick's, in one run"
table="$results/wrk.txt"
printf '%-34s %9s %9s %6s %9s %9s %8s\n' operation "ours/s" "yard/s" ratio "p50" "p99" "non-2xx" | tee "$table"
pair() { # label our-url our-script yardstick-url yardstick-script
  warm "$2" "$3"; warm "$4" "$5"
  read -r ours p50 p99 bad _ < <(measure "$2" "$3")
  read -r theirs _ < <(measure "$4" "$5")
  awk -v l="$1" -v o="$ours" -v t="$theirs" -v a="$p50" -v b="$p99" -v x="$bad" \
    'BEGIN { printf "%-34s %9d %9d %6.2f %9s %9s %8d\n", l, o, t, (t > 0 ? o / t : 0), a, b, x }' | tee -a "$table"
}
alone() { # label url script
  read -r ours p50 p99 bad _ < <(measure "$2" "$3")
  printf '%-34s %9d %9s %6s %9s %9s %8d\n' "$1" "$ours" - - "$p50" "$p99" "$bad" | tee -a "$table"
}
pair "GET /products/{id}" "$CATALOG_URL/products/1" "$scripts/get.lua" "$yardstick/products/1" "$scripts/get.lua"
pair "POST /cart/{u}/add (one call)" "$CART_URL" "$scripts/add.lua" "$yardstick/validate/1" "$scripts/get.lua"
# /pay below pays the orders these rows place, from the first one on (the mixed journey's
# came before).
first_order=$(( $(curl -fsS "$ORDER_URL/orders?limit=1" -H "X-API-Key: $API_KEY" | jq '.[0].id // 0') + 1 ))
sed -i "s/^local n = 0$/local n = $((first_order - 1))/" "$scripts/pay.lua"
pair "POST /orders (check+group commit)" "$ORDER_URL/orders?user_id=bench" "$scripts/order.lua" "$yardstick/orders_full" "$scripts/order.lua"
pair "POST /orders (vs 1 commit/request)" "$ORDER_URL/orders?user_id=bench" "$scripts/order.lua" "$yardstick/orders" "$scripts/order.lua"
# More orders than /pay can pay in its run, paid from order 1 up (all of them PENDING, 999.99).
measure "$ORDER_URL/orders?user_id=bench" "$scripts/order.lua" $((seconds + 2)) >/dev/null
alone "POST /pay (check+capture+webhook)" "$PAYMENT_URL" "$scripts/pay.lua"
read -r _ _ _ _ filled < <(measure "$CART_URL" "$scripts/fill.lua" $((seconds + 4)))
alone "checkout (cart filled before)" "$CART_URL" "$scripts/checkout.lua"
note_peaks
echo "($filled carts filled for the checkout row; p50/p99 are ours)" | tee -a "$table"

echo
echo "== $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2/1048576 }' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); wrk and loadgen on the same machine"
printf '%-18s %14s %12s %22s\n' "service" "start→healthy" "RSS idle" "RSS peak (wrk rows)"
for s in "${services[@]}"; do
  printf '%-18s %11s ms %8s MiB %18s MiB\n' "$s" "${startup_ms[$s]}" \
    "$(awk -v k="${idle_kib[$s]}" 'BEGIN { printf "%.1f", k/1024 }')" \
    "$(awk -v k="${peak_kib_under_load[$s]}" 'BEGIN { printf "%.1f", k/1024 }')"
done
echo "(wrk table in target/bench/wrk.txt, the mixed journey in target/bench/mixed.*)"
