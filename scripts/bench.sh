#!/usr/bin/env bash
# Benchmark: starts the four release binaries on a temp data dir (logging at warn, so the
# figures measure the services rather than their log files), measures the time from start to
# healthy and the resident memory idle, runs loadgen per operation and for the mixed journey,
# and prints the figures with the machine they came from.
#
# `scripts/bench.sh connections` measures connections instead: for each service, its
# resident memory idle, while connflood holds BENCH_CONNECTIONS (default 5000) keep-alive
# connections and BENCH_CONNECTIONS half-open ones (re-opened as the service cuts them), and
# after they close, with the latency of plain requests made meanwhile from another client.
#
# Environment (optional): BENCH_DURATION (default 10s per run), BENCH_USERS (default 32),
# BENCH_MIX_USERS (default 64), BENCH_PORT_BASE (default 28001), BENCH_CONNECTIONS.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
duration="${BENCH_DURATION:-10s}"
users="${BENCH_USERS:-32}"
mix_users="${BENCH_MIX_USERS:-64}"
base="${BENCH_PORT_BASE:-28001}"
for tool in curl jq; do
  command -v "$tool" >/dev/null || { echo "bench.sh needs $tool (scripts/test.sh installs it)" >&2; exit 2; }
done

echo "building release binaries..."
cargo build --release --quiet --bins
bin="$root/target/release"
data="$(mktemp -d)"
results="$root/target/bench"
mkdir -p "$results" "$data/pids"
export RATE_LIMIT=0 API_KEY="bench-key-$$" WEBHOOK_SECRET="whsec_$(head -c 32 /dev/urandom | base64)" RUST_LOG=warn

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

run() {
  local name="$1" mix="$2" n="$3"
  echo "== $name: $n users, $duration, mix $mix"
  "$bin/loadgen" --users "$n" --duration "$duration" --mix "$mix" --restock 1000000 \
    --pid-dir "$data/pids" --json "$results/$name.json" | tail -n +1
}

run warmup "browse=1,add=1,checkout=1" 8 >/dev/null
run product "product" "$users"
run add "add" "$users"
run order "order" "$users"
run pay "pay" "$users"
run mixed "browse=50,add=30,checkout=20" "$mix_users"

echo
echo "== summary ($(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2/1048576 }' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); load generator on the same machine)"
printf '%-26s %10s %8s %8s %8s\n' "operation" "req/s" "p50 ms" "p99 ms" "5xx"
row() {
  local file="$results/$1.json" step="$2" label="$3"
  jq -r --arg step "$step" --arg name "$label" \
    '(.steps[] | select(.step == $step)) as $s
     | [$name, ($s.requests_per_second | floor), $s.p50_ms, $s.p99_ms, .server_errors]
     | @tsv' "$file" | awk -F'\t' '{ printf "%-26s %10s %8.2f %8.2f %8s\n", $1, $2, $3, $4, $5 }'
}
row product product "GET /products/{id}"
row add add "POST /cart/{user}/add"
row order order.create "POST /orders"
row pay pay "POST /pay (+ webhook)"
row mixed checkout "mixed: checkout step"
jq -r '"mixed journey: \(.checkouts_per_second * 10 | floor / 10) checkouts/s, \(.requests_per_second | floor) req/s, \(.server_errors) server errors, invariants " + (if all(.invariants[]; .holds) then "all hold" else "FAILED" end)' "$results/mixed.json"
echo
printf '%-18s %14s %18s %18s\n' "service" "start→healthy" "RSS idle" "RSS peak (load)"
for s in "${services[@]}"; do
  printf '%-18s %11s ms %14s MiB %14s MiB\n' "$s" "${startup_ms[$s]}" \
    "$(awk -v k="${idle_kib[$s]}" 'BEGIN { printf "%.1f", k/1024 }')" \
    "$(awk -v k="$(peak_kib "$s")" 'BEGIN { printf "%.1f", k/1024 }')"
done
echo "(JSON for every run in target/bench/)"
