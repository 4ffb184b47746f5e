#!/usr/bin/env bash
# Builds the four services in release mode, starts them, waits until all are healthy,
# prints their URLs, and stops them all on Ctrl-C.
#
# Environment (all optional):
#   API_KEY        key clients must send in X-API-Key (default: the demo key secret-key-123)
#   STOREFRONT_KEY key(s) a shop's front end may use: browse, carts, checkout, pay, read
#                  orders and payments; admin routes answer 403 (default: the demo key
#                  storefront-key-123)
#   WEBHOOK_SECRET secret that signs payment webhooks (default: generated once and kept in
#                  DATA_DIR/webhook-secret)
#   PEER_API_KEY   the key the services send each other, never rate-limited (default:
#                  generated once and kept in DATA_DIR/peer-key)
#   DATA_DIR       where the four SQLite files and logs go (default: data)
#   CATALOG_PORT CART_PORT ORDER_PORT PAYMENT_PORT   (defaults 8002 8001 8003 8004)
#   DASHBOARD_PORT  where the dashboard is served (default 8080; python3's static server)
#   SKIP_BUILD=1 use the binaries already in target/release
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if [[ -z "${API_KEY:-}" ]]; then
  export API_KEY="secret-key-123"
  echo "note: using the DEMO API key 'secret-key-123'; set API_KEY to use your own."
fi
if [[ -z "${STOREFRONT_KEY:-}" ]]; then
  export STOREFRONT_KEY="storefront-key-123"
  echo "note: using the DEMO storefront key 'storefront-key-123'; set STOREFRONT_KEY to use your own."
fi
data_dir="${DATA_DIR:-data}"
log_dir="$data_dir/logs"
mkdir -p "$log_dir"
if [[ -z "${WEBHOOK_SECRET:-}" ]]; then
  secret_file="$data_dir/webhook-secret"
  if [[ ! -s "$secret_file" ]]; then
    (umask 077; printf 'whsec_%s\n' "$(head -c 32 /dev/urandom | base64)" >"$secret_file")
    echo "note: generated a webhook signing secret in $secret_file"
  fi
  WEBHOOK_SECRET="$(head -n 1 "$secret_file")"
  export WEBHOOK_SECRET
fi
# The services' own key for calls between them: a client flooding one service with its key
# cannot make that service refuse another's check.
if [[ -z "${PEER_API_KEY:-}" ]]; then
  peer_key_file="$data_dir/peer-key"
  if [[ ! -s "$peer_key_file" ]]; then
    (umask 077; printf 'peer-%s\n' "$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" >"$peer_key_file")
  fi
  PEER_API_KEY="$(head -n 1 "$peer_key_file")"
  export PEER_API_KEY
fi

catalog_port="${CATALOG_PORT:-8002}"
cart_port="${CART_PORT:-8001}"
order_port="${ORDER_PORT:-8003}"
payment_port="${PAYMENT_PORT:-8004}"
dashboard_port="${DASHBOARD_PORT:-8080}"
export CORS_ORIGINS="${CORS_ORIGINS:-http://127.0.0.1:$dashboard_port,http://localhost:$dashboard_port}"
command -v python3 >/dev/null || { echo "error: python3 is needed to serve the dashboard" >&2; exit 1; }

if [[ "${SKIP_BUILD:-0}" != "1" ]]; then
  echo "building release binaries (first build takes a few minutes)..."
  cargo build --release --quiet --bins
fi
bin="$root/target/release"

pids=()
names=()
stop_all() {
  trap - INT TERM EXIT
  if ((${#pids[@]})); then
    echo
    echo "stopping services..."
    kill "${pids[@]}" 2>/dev/null || true
    # A service restarted by hand (or by loadgen --fault) is found through its pid file.
    for file in "$pid_dir"/*.pid; do
      [[ -f "$file" ]] && kill "$(cat "$file")" 2>/dev/null || true
    done
    wait "${pids[@]}" 2>/dev/null || true
  fi
}
trap stop_all EXIT
trap 'exit 130' INT TERM

pid_dir="$data_dir/pids"
mkdir -p "$pid_dir"
start() {
  local name="$1"; shift
  "$bin/$name" "$@" >"$log_dir/$name.log" 2>&1 &
  pids+=("$!")
  names+=("$name")
  echo "$!" >"$pid_dir/$name.pid"
}

start catalog-service --port "$catalog_port" --db "$data_dir/products.db"
start order-service --port "$order_port" --db "$data_dir/orders.db" \
  --catalog-url "http://127.0.0.1:$catalog_port" --payment-url "http://127.0.0.1:$payment_port"
start payment-service --port "$payment_port" --db "$data_dir/payments.db" \
  --order-url "http://127.0.0.1:$order_port"
start cart-service --port "$cart_port" --db "$data_dir/carts.db" \
  --catalog-url "http://127.0.0.1:$catalog_port" --order-url "http://127.0.0.1:$order_port" \
  --payment-url "http://127.0.0.1:$payment_port"

python3 -m http.server "$dashboard_port" --bind 127.0.0.1 --directory "$root/dashboard" \
  >"$log_dir/dashboard.log" 2>&1 &
pids+=("$!")
names+=("dashboard")
echo "$!" >"$pid_dir/dashboard.pid"

ports=("$catalog_port" "$order_port" "$payment_port" "$cart_port" "$dashboard_port")
for i in "${!names[@]}"; do
  name="${names[$i]}"; port="${ports[$i]}"
  probe="http://127.0.0.1:$port/health"
  [[ "$name" == "dashboard" ]] && probe="http://127.0.0.1:$port/index.html"
  for _ in $(seq 1 100); do
    if curl -fsS "$probe" >/dev/null 2>&1; then
      continue 2
    fi
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      echo "error: $name exited during start-up. Its log ($log_dir/$name.log) ends with:" >&2
      tail -n 5 "$log_dir/$name.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "error: $name did not become healthy on port $port within 10 s; see $log_dir/$name.log" >&2
  exit 1
done

dashboard_url="http://127.0.0.1:$dashboard_port/?cart=http://127.0.0.1:$cart_port&catalog=http://127.0.0.1:$catalog_port&order=http://127.0.0.1:$order_port&payment=http://127.0.0.1:$payment_port"
cat <<MSG
all four services are healthy (data in $data_dir/, logs in $log_dir/):
  cart-service     http://127.0.0.1:$cart_port
  catalog-service  http://127.0.0.1:$catalog_port
  order-service    http://127.0.0.1:$order_port
  payment-service  http://127.0.0.1:$payment_port
dashboard (open in a browser, enter the API key under Settings):
  $dashboard_url
try:  curl -H "X-API-Key: \$API_KEY" http://127.0.0.1:$catalog_port/products
API docs (Swagger UI; "Authorize" with a key, then "Try it out"):
  http://127.0.0.1:$cart_port/docs  http://127.0.0.1:$catalog_port/docs  http://127.0.0.1:$order_port/docs  http://127.0.0.1:$payment_port/docs
press Ctrl-C to stop them all.
MSG

# Keeps running until Ctrl-C (the trap stops everything). A service that stops on its own
# is reported and the others keep running, so one can be stopped and started by hand.
alive=("${!pids[@]}")
while ((${#alive[@]})); do
  alive_pids=()
  for i in "${alive[@]}"; do alive_pids+=("${pids[$i]}"); done
  wait -n "${alive_pids[@]}" || true
  still=()
  for i in "${alive[@]}"; do
    if kill -0 "${pids[$i]}" 2>/dev/null; then
      still+=("$i")
    else
      echo "${names[$i]} stopped; see $log_dir/${names[$i]}.log" >&2
    fi
  done
  alive=("${still[@]}")
done
echo "every service has stopped" >&2
exit 1
