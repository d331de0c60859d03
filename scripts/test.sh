#!/usr/bin/env bash
# The project's one test command, also run by CI (.ci/run): installs what is
# missing, makes sure PostgreSQL answers, starts two throwaway PostgreSQL
# clusters of its own (TLS; one to stop under load), then checks formatting,
# lints, docker-compose.yml, runs every test on SQLite and on PostgreSQL, and
# property-tests the running binary against its own OpenAPI document.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }
have() { command -v "$1" >/dev/null 2>&1; }
fail() { printf 'error: %s\n' "$*" >&2; exit 1; }
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif have sudo; then sudo "$@"
  else fail "needs root (or sudo) to run: $*"; fi
}

step "Tools"
if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install cargo-nextest --locked --quiet
fi
if ! python3 -c 'import requests' 2>/dev/null; then
  # Debian's own Python refuses pip (PEP 668); its package is the fallback below.
  python3 -m pip install --quiet requests 2>/dev/null || true
fi
packages=()
have curl || packages+=(curl)
have node || packages+=(nodejs)   # runs the seed's JavaScript example
# The portal's browser tests: headless Chromium driven through chromedriver.
[ -x /usr/bin/chromium ] || packages+=(chromium)
[ -x /usr/bin/chromedriver ] || packages+=(chromium-driver)
have docker-compose || packages+=(docker-compose)
have pg_isready || packages+=(postgresql-client)
[ -f /usr/include/postgresql/libpq-fe.h ] || packages+=(libpq-dev)
# The LISTEN connection's TLS (openssl crate) builds against the system OpenSSL.
[ -f /usr/include/openssl/ssl.h ] || packages+=(libssl-dev)
have pkg-config || packages+=(pkg-config)
# The test clusters: initdb/pg_ctl, and openssl to make their certificates.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || packages+=(postgresql)
have openssl || packages+=(openssl)
python3 -c 'import requests' 2>/dev/null || packages+=(python3-requests)
# scripts/schemathesis.sh installs schemathesis into a virtualenv.
python3 -c 'import ensurepip' 2>/dev/null || packages+=(python3-venv)
if [ "${#packages[@]}" -gt 0 ]; then
  echo "installing: ${packages[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
cargo nextest --version | head -n1

step "PostgreSQL"
# No TLS to the machine's server on loopback (it only costs CPU there); TLS is
# tested on the throwaway cluster below.
export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"
pg_answers() { pg_isready -q -d "$TEST_DATABASE_URL"; }
if ! pg_answers && have pg_ctlcluster && [ -d /etc/postgresql ]; then
  version="$(ls /etc/postgresql | sort -V | tail -n1)"
  echo "no answer at $TEST_DATABASE_URL: starting the local cluster $version/main"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 20); do pg_answers && break; sleep 1; done
fi
if ! pg_answers; then
  fail "no PostgreSQL answers at $TEST_DATABASE_URL.
Start one (apt-get install postgresql; or docker run -p 5432:5432 -e POSTGRES_DB=test
-e POSTGRES_HOST_AUTH_METHOD=trust postgres:15), or point the tests at yours:
  TEST_DATABASE_URL=postgres://USER:PASSWORD@HOST:PORT/DB scripts/test.sh"
fi
psql "$TEST_DATABASE_URL" -Atqc 'select 1' >/dev/null ||
  fail "PostgreSQL answers but refuses $TEST_DATABASE_URL (wrong user, password or database?)"
echo "PostgreSQL ready at $TEST_DATABASE_URL"

step "Throwaway PostgreSQL clusters (TLS; stopped under load by the fault test)"
# Never the machine's server: each runs from a temporary folder on a free port
# and is deleted on exit. TEST_TLS_CLUSTER serves the TLS tests;
# TEST_FAULT_CLUSTER is stopped and restarted by the fault test, so it is not
# shared with tests running at the same time.
clusters=()
cleanup_clusters() {
  local dir
  for dir in "${clusters[@]}"; do
    [ -x "$dir/ctl" ] && "$dir/ctl" destroy || rm -rf "$dir"
  done
}
trap cleanup_clusters EXIT
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
next_port=5433
start_cluster() { # VARIABLE
  local dir port
  port=$next_port
  until port_free "$port"; do port=$((port + 1)); done
  next_port=$((port + 1))
  dir="$(mktemp -d)"
  chmod 755 "$dir"
  clusters+=("$dir")
  bash scripts/pg-test-cluster.sh "$dir" "$port"
  export "$1=$dir"
  echo "$1=$dir (port $port, ssl on)"
}
start_cluster TEST_TLS_CLUSTER
start_cluster TEST_FAULT_CLUSTER

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "docker-compose config"
# The file requires these from the environment; dummies are enough to validate it.
WEBHOOKS_ADMIN_TOKEN="${WEBHOOKS_ADMIN_TOKEN:-check}" \
  WEBHOOKS_SERVICE_TOKEN="${WEBHOOKS_SERVICE_TOKEN:-check}" \
  WEBHOOKS_ENCRYPTION_KEY="${WEBHOOKS_ENCRYPTION_KEY:-check}" \
  docker-compose config -q

step "Tests (SQLite and PostgreSQL)"
cargo nextest run --workspace --all-features --no-fail-fast

step "Doctests"
cargo test --workspace --all-features --doc

step "Schemathesis (property-based API test from /openapi.json)"
bash scripts/schemathesis.sh

step "All checks passed"
