#!/usr/bin/env bash
# Builds the four services in release mode, starts them, waits until all are healthy,
# prints their URLs, and stops them all on Ctrl-C.
#
#   scripts/start-all.sh                    start the shop (stays in the foreground)
#   scripts/start-all.sh restart SERVICE    stop one service of a running shop and start it
#                                           again (catalog, cart, order or payment), same
#                                           data, ports and keys; its log goes on
#
# Logs: DATA_DIR/logs/<service>.log, appended to across restarts (an incident's evidence
# survives the restart made for it); a log past LOG_MAX_BYTES (default 10 MiB) is rotated
# when its service starts: <service>.log.1 is the newest of LOG_KEEP (default 5) old ones.
# LOG_FORMAT=json makes every line of them a JSON object.
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
#   SESSION_SECRET signs customers' sessions and guests' order tokens, the same on all four
#                  (default: generated once and kept in DATA_DIR/session-secret)
#   DATA_DIR       where the four SQLite files and logs go (default: data)
#   CATALOG_PORT CART_PORT ORDER_PORT PAYMENT_PORT   (defaults 8002 8001 8003 8004)
#   DASHBOARD_PORT  where the dashboard is served (default 8080; python3's static server)
#   STOREFRONT_PORT where the shoppers' storefront page is served (default 8081)
#   SHOP_CURRENCY  the shop's currency, ISO 4217 (default EUR); the storefront shows it
#   SKIP_BUILD=1 use the binaries already in target/release (or $CARGO_TARGET_DIR/release)
#
# A second start on the same DATA_DIR, or on ports another shop holds, is refused (exit 1)
# before anything is touched: the running shop keeps its services, pid files and logs.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

mode="${1:-start}"
case "$mode" in
  start) ;;
  restart)
    case "${2:-}" in
      catalog|cart|order|payment) restart_name="$2-service" ;;
      catalog-service|cart-service|order-service|payment-service) restart_name="$2" ;;
      *) echo "usage: scripts/start-all.sh restart catalog|cart|order|payment" >&2; exit 2 ;;
    esac ;;
  *) echo "usage: scripts/start-all.sh [restart catalog|cart|order|payment]" >&2; exit 2 ;;
esac

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
# Customers' sessions are signed with it and checked by every service on its own.
if [[ -z "${SESSION_SECRET:-}" ]]; then
  session_file="$data_dir/session-secret"
  if [[ ! -s "$session_file" ]]; then
    (umask 077; printf 'sess_%s\n' "$(head -c 32 /dev/urandom | base64 | tr -d '/+=')" >"$session_file")
    echo "note: generated a session signing secret in $session_file"
  fi
  SESSION_SECRET="$(head -n 1 "$session_file")"
  export SESSION_SECRET
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
storefront_port="${STOREFRONT_PORT:-8081}"
export CORS_ORIGINS="${CORS_ORIGINS:-http://127.0.0.1:$dashboard_port,http://localhost:$dashboard_port,http://127.0.0.1:$storefront_port,http://localhost:$storefront_port}"
command -v python3 >/dev/null || { echo "error: python3 is needed to serve the dashboard" >&2; exit 1; }

pid_dir="$data_dir/pids"

# refuse_second_shop: exits 1, touching nothing, when a shop already runs on this data dir
# (a pid file whose process is alive) or when one of the ports answers or is taken.
refuse_second_shop() {
  local file pid name port
  for file in "$pid_dir"/*.pid; do
    [[ -f "$file" ]] || continue
    pid="$(cat "$file" 2>/dev/null || true)"
    name="$(basename "$file" .pid)"
    # A pid file left by a shop that died may name a process that is something else now.
    local expected="$name"
    [[ "$name" == "dashboard" || "$name" == "storefront" ]] && expected="python3"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null \
      && [[ "$(ps -p "$pid" -o comm= 2>/dev/null)" == "$expected"* ]]; then
      echo "error: a shop is already running on $data_dir/ ($name, pid $pid); it is left as it is." >&2
      echo "  stop it with Ctrl-C in its terminal, or restart one service of it with:" >&2
      echo "  scripts/start-all.sh restart catalog|cart|order|payment" >&2
      exit 1
    fi
  done
  for port in "$cart_port" "$catalog_port" "$order_port" "$payment_port" "$dashboard_port" "$storefront_port"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "error: port $port is already in use (another shop, or another program); nothing was started." >&2
      echo "  pick other ports (CART_PORT, CATALOG_PORT, ORDER_PORT, PAYMENT_PORT, DASHBOARD_PORT," >&2
      echo "  STOREFRONT_PORT)" >&2
      echo "  and another DATA_DIR for a second shop." >&2
      exit 1
    fi
  done
}
[[ "$mode" == "start" ]] && refuse_second_shop

if [[ "${SKIP_BUILD:-0}" != "1" ]]; then
  echo "building release binaries (first build takes a few minutes)..."
  cargo build --release --quiet --bins
fi
bin="${CARGO_TARGET_DIR:-$root/target}/release"

mkdir -p "$pid_dir"
log_max_bytes="${LOG_MAX_BYTES:-10485760}"
log_keep="${LOG_KEEP:-5}"

# rotate_log NAME: when NAME's log has grown past log_max_bytes, it becomes NAME.log.1 (the
# older ones move up one, the oldest beyond log_keep is dropped).
rotate_log() {
  local log="$log_dir/$1.log"
  [[ -f "$log" ]] || return 0
  (( $(stat -c %s "$log") > log_max_bytes )) || return 0
  rm -f "$log.$log_keep"
  for ((i = log_keep - 1; i >= 1; i--)); do
    [[ -f "$log.$i" ]] && mv "$log.$i" "$log.$((i + 1))"
  done
  mv "$log" "$log.1"
}

# service_args NAME: the flags NAME runs with.
service_args() {
  case "$1" in
    catalog-service) args=(--port "$catalog_port" --db "$data_dir/products.db") ;;
    order-service) args=(--port "$order_port" --db "$data_dir/orders.db"
      --catalog-url "http://127.0.0.1:$catalog_port" --payment-url "http://127.0.0.1:$payment_port") ;;
    payment-service) args=(--port "$payment_port" --db "$data_dir/payments.db"
      --order-url "http://127.0.0.1:$order_port") ;;
    cart-service) args=(--port "$cart_port" --db "$data_dir/carts.db"
      --catalog-url "http://127.0.0.1:$catalog_port" --order-url "http://127.0.0.1:$order_port"
      --payment-url "http://127.0.0.1:$payment_port") ;;
  esac
}

# port_of NAME: the port NAME listens on.
port_of() {
  case "$1" in
    catalog-service) echo "$catalog_port" ;; order-service) echo "$order_port" ;;
    payment-service) echo "$payment_port" ;; cart-service) echo "$cart_port" ;;
    dashboard) echo "$dashboard_port" ;; storefront) echo "$storefront_port" ;;
  esac
}

# wait_healthy NAME PID: until NAME answers its probe; exits the script if it dies or
# takes more than 10 s.
wait_healthy() {
  local name="$1" pid="$2" probe
  probe="http://127.0.0.1:$(port_of "$name")/health"
  [[ "$name" == "dashboard" ]] && probe="http://127.0.0.1:$dashboard_port/index.html"
  [[ "$name" == "storefront" ]] && probe="http://127.0.0.1:$storefront_port/index.html"
  for _ in $(seq 1 100); do
    curl -fsS "$probe" >/dev/null 2>&1 && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "error: $name exited during start-up. Its log ($log_dir/$name.log) ends with:" >&2
      tail -n 5 "$log_dir/$name.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "error: $name did not become healthy on port $(port_of "$name") within 10 s; see $log_dir/$name.log" >&2
  exit 1
}

if [[ "$mode" == "restart" ]]; then
  pid_file="$pid_dir/$restart_name.pid"
  old_pid="$(cat "$pid_file" 2>/dev/null || true)"
  if [[ -n "$old_pid" ]] && kill -0 "$old_pid" 2>/dev/null; then
    echo "stopping $restart_name (pid $old_pid)..."
    kill "$old_pid"
    # It finishes its requests in flight first (at most 10 s, then a little to exit).
    for _ in $(seq 1 150); do kill -0 "$old_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$old_pid" 2>/dev/null && { echo "error: $restart_name (pid $old_pid) did not stop" >&2; exit 1; }
  else
    echo "note: $restart_name was not running"
  fi
  rotate_log "$restart_name"
  service_args "$restart_name"
  # Its own session, so it outlives this script; the shop's start-all finds it by its pid
  # file (and stops it with the rest on Ctrl-C).
  setsid "$bin/$restart_name" "${args[@]}" >>"$log_dir/$restart_name.log" 2>&1 < /dev/null &
  new_pid="$!"
  echo "$new_pid" >"$pid_file"
  wait_healthy "$restart_name" "$new_pid"
  echo "$restart_name restarted (pid $new_pid), healthy; its log goes on in $log_dir/$restart_name.log"
  exit 0
fi

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

start() {
  local name="$1"
  rotate_log "$name"
  service_args "$name"
  "$bin/$name" "${args[@]}" >>"$log_dir/$name.log" 2>&1 &
  pids+=("$!")
  names+=("$name")
  echo "$!" >"$pid_dir/$name.pid"
}

start catalog-service
start order-service
start payment-service
start cart-service

rotate_log dashboard
# The page may call the four services only, by either loopback name.
connect_sources=()
for port in "$cart_port" "$catalog_port" "$order_port" "$payment_port"; do
  connect_sources+=("http://127.0.0.1:$port" "http://localhost:$port")
done
python3 "$root/scripts/serve-dashboard.py" "$dashboard_port" "$root/dashboard" "${connect_sources[@]}" \
  >>"$log_dir/dashboard.log" 2>&1 &
pids+=("$!")
names+=("dashboard")
echo "$!" >"$pid_dir/dashboard.pid"
# The shoppers' page: the same static server, its own folder and port.
rotate_log storefront
python3 "$root/scripts/serve-dashboard.py" "$storefront_port" "$root/storefront" "${connect_sources[@]}" \
  >>"$log_dir/storefront.log" 2>&1 &
pids+=("$!")
names+=("storefront")
echo "$!" >"$pid_dir/storefront.pid"

for i in "${!names[@]}"; do
  wait_healthy "${names[$i]}" "${pids[$i]}"
done

# The demo key is shown as it is (the reader types it); a key of your own is not printed.
shown_key='$API_KEY'
[[ "$API_KEY" == "secret-key-123" ]] && shown_key="secret-key-123"
dashboard_url="http://127.0.0.1:$dashboard_port/?cart=http://127.0.0.1:$cart_port&catalog=http://127.0.0.1:$catalog_port&order=http://127.0.0.1:$order_port&payment=http://127.0.0.1:$payment_port"
# The storefront key is public by design (every shopper's browser holds it), so the link
# carries it.
storefront_url="http://127.0.0.1:$storefront_port/?key=$STOREFRONT_KEY&currency=${SHOP_CURRENCY:-EUR}&cart=http://127.0.0.1:$cart_port&catalog=http://127.0.0.1:$catalog_port&order=http://127.0.0.1:$order_port&payment=http://127.0.0.1:$payment_port"
cat <<MSG
all four services are healthy (data in $data_dir/, logs in $log_dir/):
  cart-service     http://127.0.0.1:$cart_port
  catalog-service  http://127.0.0.1:$catalog_port
  order-service    http://127.0.0.1:$order_port
  payment-service  http://127.0.0.1:$payment_port
dashboard (open in a browser, enter the API key under Settings):
  $dashboard_url
storefront for shoppers (the storefront key only; sign up, shop, check out):
  $storefront_url
try:  curl -H "X-API-Key: $shown_key" http://127.0.0.1:$catalog_port/products
API docs (Swagger UI; "Authorize" with a key, then "Try it out"):
  http://127.0.0.1:$cart_port/docs  http://127.0.0.1:$catalog_port/docs  http://127.0.0.1:$order_port/docs  http://127.0.0.1:$payment_port/docs
restart one service (same data, ports and keys):  scripts/start-all.sh restart catalog|cart|order|payment
press Ctrl-C to stop them all.
MSG

# Keeps running until Ctrl-C (the trap stops everything). Each service is followed by its
# pid file, so one restarted (`scripts/start-all.sh restart catalog`, or loadgen --fault) is
# followed too; one that stops is reported once and the others keep running.
declare -A reported=()
while :; do
  sleep 1
  running=0
  for name in "${names[@]}"; do
    pid="$(cat "$pid_dir/$name.pid" 2>/dev/null || true)"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
      running=$((running + 1))
      [[ -n "${reported[$name]:-}" ]] && echo "$name is running again (pid $pid)" >&2
      reported[$name]=""
    elif [[ -z "${reported[$name]:-}" ]]; then
      echo "$name stopped; see $log_dir/$name.log" >&2
      reported[$name]=1
    fi
  done
  ((running)) || break
done
echo "every service has stopped" >&2
exit 1
