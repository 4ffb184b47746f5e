#!/usr/bin/env bash
# Runs every test: formatting and lints, unit and router tests, the system tests (four real
# binaries), the testing guide's curl commands against the release build started by
# scripts/start-all.sh, and the dashboard in headless Chromium against that same shop.
# Installs what it needs when it is missing (apt: curl jq openssl chromium; npm:
# playwright-core, pinned in tests/dashboard/package-lock.json; PyPI: schemathesis, pinned,
# into target/schemathesis-venv, or under CARGO_TARGET_DIR when that is set).
#
# Environment (optional):
#   GUIDE_PORT_BASE  first of four free ports for the guide run (default 18001: cart, then
#                    catalog, order, payment on the next three), so a shop you already run on
#                    8001-8004 is left alone.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# Where cargo builds (CARGO_TARGET_DIR when set): the logs, the venv and the screenshots go
# there too, so a developer's own target folder is the one used.
target_dir="${CARGO_TARGET_DIR:-$root/target}"
mkdir -p "$target_dir"

step() { printf '\n==> %s\n' "$*"; }

need_apt=()
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
for tool in curl jq openssl python3; do
  command -v "$tool" >/dev/null || need_apt+=("$tool")
done
[[ -x /usr/bin/chromium ]] || need_apt+=(chromium)
command -v npm >/dev/null || need_apt+=(nodejs npm)
command -v promtool >/dev/null || need_apt+=(prometheus)
if ((${#need_apt[@]})); then
  step "installing ${need_apt[*]}"
  sudo_cmd=""
  [[ "$(id -u)" != "0" ]] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}"
fi
if [[ ! -d tests/dashboard/node_modules/playwright-core ]]; then
  step "installing playwright-core (no browser download: Debian's chromium is used)"
  (cd tests/dashboard && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
fi
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    step "installing $component"
    rustup component add "$component"
  fi
done

step "formatting"
cargo fmt --all -- --check

step "lints"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "unit, router and system tests"
# The system tests run the service binaries, so build them first.
cargo build --workspace --bins --quiet
cargo test --workspace --quiet 2>&1 | tee "$target_dir/cargo-test.log"
# The per-target summaries, added up, for one line at the end.
read -r unit_passed unit_failed < <(awk '/^test result:/ { p += $4; f += $6 } END { print p+0, f+0 }' "$target_dir/cargo-test.log")

step "testing guide against the release build"
base="${GUIDE_PORT_BASE:-18001}"
export CART_PORT=$base CATALOG_PORT=$((base + 1)) ORDER_PORT=$((base + 2)) PAYMENT_PORT=$((base + 3))
export DASHBOARD_PORT=$((base + 79)) STOREFRONT_PORT=$((base + 80))
export CART_URL="http://localhost:$CART_PORT" CATALOG_URL="http://localhost:$CATALOG_PORT"
export ORDER_URL="http://localhost:$ORDER_PORT" PAYMENT_URL="http://localhost:$PAYMENT_PORT"
export API_KEY="secret-key-123"
WEBHOOK_SECRET="whsec_$(head -c 32 /dev/urandom | base64)"
export WEBHOOK_SECRET
guide_data="$(mktemp -d)"
DATA_DIR="$guide_data" scripts/start-all.sh >"$guide_data/start-all.out" 2>&1 &
shop_pid=$!
cleanup() {
  for pid in "$shop_pid" ${contract_pid:-}; do
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$guide_data" ${contract_data:-}
}
trap cleanup EXIT
for _ in $(seq 1 1800); do
  grep -q "all four services are healthy" "$guide_data/start-all.out" 2>/dev/null && break
  if ! kill -0 "$shop_pid" 2>/dev/null; then
    echo "start-all.sh failed:" >&2
    cat "$guide_data/start-all.out" >&2
    exit 1
  fi
  sleep 0.2
done
grep -q "all four services are healthy" "$guide_data/start-all.out" || {
  echo "start-all.sh did not report healthy services in time:" >&2
  cat "$guide_data/start-all.out" >&2
  exit 1
}
scripts/testing-guide.sh | tee "$guide_data/guide.out"
guide_passed="$(awk '/^guide: / { print $2 }' "$guide_data/guide.out")"

step "operator: one service restarted by start-all.sh, its log kept"
catalog_log="$guide_data/logs/catalog-service.log"
starts_before="$(grep -c 'listening on' "$catalog_log")"
DATA_DIR="$guide_data" SKIP_BUILD=1 scripts/start-all.sh restart catalog | tee "$guide_data/restart.out"
operator_check() {
  if ! eval "$2"; then echo "FAIL: $1" >&2; exit 1; fi
  echo "ok  $1"
  operator_passed=$((${operator_passed:-0} + 1))
}
operator_check "the restart says the catalog is back and healthy" 'grep -q "catalog-service restarted" "$guide_data/restart.out"'
operator_check "it answers again" 'curl -fsS "$CATALOG_URL/health" >/dev/null'
operator_check "its log was appended to, not truncated" '(( $(grep -c "listening on" "$catalog_log") == starts_before + 1 ))'
operator_check "the refusals logged before the restart are still there" 'grep -q "request refused" "$catalog_log"'
pids_before="$(cat "$guide_data"/pids/*.pid | sort | tr '\n' ' ')"
second_status=0
DATA_DIR="$guide_data" SKIP_BUILD=1 scripts/start-all.sh >"$guide_data/second.out" 2>&1 || second_status=$?
operator_check "a second start-all.sh on the same data dir is refused (exit 1)" '(( second_status == 1 )) && grep -q "already running" "$guide_data/second.out"'
all_healthy() {
  local url
  for url in "$CART_URL" "$CATALOG_URL" "$ORDER_URL" "$PAYMENT_URL"; do
    curl -fsS "$url/health" >/dev/null || return 1
  done
}
operator_check "  ... and leaves the first shop whole: its pid files and its four services" \
  '[[ "$(cat "$guide_data"/pids/*.pid | sort | tr "\n" " ")" == "$pids_before" ]] && all_healthy'
other_data="$(mktemp -d)"
third_status=0
DATA_DIR="$other_data" SKIP_BUILD=1 scripts/start-all.sh >"$guide_data/third.out" 2>&1 || third_status=$?
rm -rf "$other_data"
operator_check "a second shop on ports the first holds is refused before it starts anything" '(( third_status == 1 )) && grep -q "already in use" "$guide_data/third.out"'
backup_dir="$guide_data/backups/now"
operator_check "shopctl backs up the running shop: four databases, the secrets, a manifest" \
  '"$target_dir/release/shopctl" backup --data-dir "$guide_data" --out "$backup_dir" >"$guide_data/backup.out" && [[ -f "$backup_dir/manifest.json" && -f "$backup_dir/session-secret" ]]'
operator_check "  ... and the backup verifies" '"$target_dir/release/shopctl" verify "$backup_dir" | grep -q "verifies"'
restore_status=0
"$target_dir/release/shopctl" restore --from "$backup_dir" --data-dir "$guide_data" >"$guide_data/restore.out" 2>&1 || restore_status=$?
operator_check "  ... a restore onto the running shop is refused and changes nothing" \
  '(( restore_status == 1 )) && grep -q "a shop is running" "$guide_data/restore.out" && all_healthy'

step "loadgen smoke run: a few seconds of mixed load on a throwaway shop of its own, then the invariants and a threshold"
"$target_dir/release/loadgen" --users 8 --duration 3s --mix browse=35,add=25,checkout=20,pay=8,order=3,cancel=3,refund=3,adjust=3 \
  --restock 100000 --settle 30s --threshold 'errors<1%' | tee "$guide_data/loadgen.out"
grep -q '^  PASS errors<1%' "$guide_data/loadgen.out"
loadgen_passed="$(grep -c '^  PASS ' "$guide_data/loadgen.out" || true)"

step "contract: Schemathesis against each service's OpenAPI document"
venv="$target_dir/schemathesis-venv"
if [[ ! -x "$venv/bin/schemathesis" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "schemathesis==4.32.5"
fi
# A second shop, so the generated requests cannot disturb the one the browser test uses; a
# short loadgen run first gives it orders, payments, checkouts and deliveries to find.
contract_data="$(mktemp -d)"
contract_base=$((base + 90))
RATE_LIMIT=0 SKIP_BUILD=1 DATA_DIR="$contract_data" CART_PORT=$contract_base \
  CATALOG_PORT=$((contract_base + 1)) ORDER_PORT=$((contract_base + 2)) \
  PAYMENT_PORT=$((contract_base + 3)) DASHBOARD_PORT=$((contract_base + 4)) \
  STOREFRONT_PORT=$((contract_base + 5)) \
  scripts/start-all.sh >"$contract_data/start-all.out" 2>&1 &
contract_pid=$!
for _ in $(seq 1 300); do
  grep -q "all four services are healthy" "$contract_data/start-all.out" 2>/dev/null && break
  sleep 0.2
done
grep -q "all four services are healthy" "$contract_data/start-all.out" || {
  echo "the contract shop did not start:" >&2
  cat "$contract_data/start-all.out" >&2
  exit 1
}
# The open model (--rate) seeds it, so CI runs that mode too.
"$target_dir/release/loadgen" --users 4 --duration 2s --mix browse=20,add=20,checkout=30,pay=30 \
  --rate 100/s --restock 100000 --settle 10s --against-running-shop --cart-url "http://127.0.0.1:$contract_base" \
  --catalog-url "http://127.0.0.1:$((contract_base + 1))" \
  --order-url "http://127.0.0.1:$((contract_base + 2))" \
  --payment-url "http://127.0.0.1:$((contract_base + 3))" >"$contract_data/seed.out"
grep -q "open model: journeys started at 100/s" "$contract_data/seed.out" || {
  echo "loadgen --rate did not report its open model:" >&2
  cat "$contract_data/seed.out" >&2
  exit 1
}
contract_passed=0
contract_failed=()
for service in cart:0 catalog:1 order:2 payment:3; do
  name="${service%%:*}-service"
  url="http://127.0.0.1:$((contract_base + ${service##*:}))"
  echo "--- $name"
  if "$venv/bin/schemathesis" run "$url/openapi.json" --url "$url" -H "X-API-Key: $API_KEY" \
    --max-examples 100 \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,ignored_auth \
    | tee "$guide_data/schemathesis-$name.out"; then
    contract_passed=$((contract_passed + 1))
  else
    contract_failed+=("$name")
  fi
done
kill -TERM "$contract_pid"; wait "$contract_pid" 2>/dev/null || true
rm -rf "$contract_data"
if ((${#contract_failed[@]})); then
  echo "Schemathesis found contract violations in: ${contract_failed[*]} (see above)" >&2
  exit 1
fi

# The storefront first: the dashboard test stops the catalog at its end.
step "storefront in headless Chromium (screenshots in $target_dir/dashboard-screenshots/)"
storefront_url="$(grep -o 'http://127.0.0.1:[0-9]*/?key=[^ ]*' "$guide_data/start-all.out" | head -n 1)"
(cd tests/dashboard && STOREFRONT_URL="$storefront_url" \
  ARTIFACTS="$target_dir/dashboard-screenshots" node --test storefront.test.mjs) | tee "$guide_data/storefront.out"
storefront_passed="$(awk '/^# pass / { print $3 } /^ℹ pass / { print $3 }' "$guide_data/storefront.out" | tail -n 1)"
step "dashboard in headless Chromium (screenshots in $target_dir/dashboard-screenshots/)"
dashboard_url="$(grep -o 'http://127.0.0.1:[0-9]*/?cart=[^ ]*' "$guide_data/start-all.out" | head -n 1)"
(cd tests/dashboard && DASHBOARD_URL="$dashboard_url" PID_DIR="$guide_data/pids" \
  ARTIFACTS="$target_dir/dashboard-screenshots" node --test dashboard.test.mjs) | tee "$guide_data/browser.out"
dashboard_passed="$(awk '/^# pass / { print $3 } /^ℹ pass / { print $3 }' "$guide_data/browser.out" | tail -n 1)"

browser_passed=$((${dashboard_passed:-0} + ${storefront_passed:-0}))

echo
echo "cargo tests: $unit_passed passed, $unit_failed failed; testing guide: $guide_passed passed;" \
  "operator checks: $operator_passed passed; loadgen invariants and thresholds: $loadgen_passed passed;" \
  "browser: ${browser_passed:-0} passed"
echo "contract: Schemathesis passed against $contract_passed services"
echo "all: $((unit_passed + guide_passed + operator_passed + loadgen_passed + ${browser_passed:-0} + contract_passed)) passed, $unit_failed failed"
