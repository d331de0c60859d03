#!/usr/bin/env bash
# Property-based API test: schemathesis generates requests from the OpenAPI
# document the binary serves and checks every answer against it (no 5xx,
# documented status codes, content types and body schemas).
#
# It starts the debug binary on 127.0.0.1:0 with a fresh SQLite database and
# the API role only (no delivery workers, so nothing leaves the machine),
# reads the bound address from the log and the demo API key from standard
# output, runs schemathesis (installed in a virtualenv under target/), and
# stops the binary. Settings: scripts/schemathesis.toml.
#
#   scripts/schemathesis.sh                       # as scripts/test.sh runs it
#   SCHEMATHESIS_SEED=123 scripts/schemathesis.sh # replay a run (the seed is printed)
#   SCHEMATHESIS_EXAMPLES=500 scripts/schemathesis.sh  # default 100 per operation
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"

fail() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Schemathesis, pinned to one major version, in its own virtualenv: nothing is
# installed into the system's Python (which Debian refuses anyway, PEP 668).
work="$root/target/schemathesis"
venv="$work/venv"
if ! "$venv/bin/st" --version 2>/dev/null | grep -q 'version 4\.'; then
  echo "installing schemathesis 4 into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv" ||
    fail "cannot create a Python virtualenv (Debian: apt-get install python3-venv)"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'schemathesis>=4,<5'
fi
"$venv/bin/st" --version

# The same debug binary the integration tests run; cargo says where it is.
binary="$(cargo build --quiet -p okaya-webhooks --message-format=json-render-diagnostics |
  sed -n 's/.*"executable":"\([^"]*okaya-webhooks\)".*/\1/p' | tail -n1)"
[ -x "$binary" ] || fail "cargo build did not report the okaya-webhooks binary"

run="$(mktemp -d)"
pid=""
stop() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$run"
}
trap stop EXIT
trap 'exit 130' INT TERM

admin_token="admin-$RANDOM$RANDOM"
service_token="service-$RANDOM$RANDOM"
(
  cd "$run"
  exec env \
    WEBHOOKS__SERVER__BIND=127.0.0.1:0 \
    WEBHOOKS__DATABASE__URL="sqlite://$run/webhooks.db" \
    WEBHOOKS__SECRETS__KEY_FILE="$run/encryption.key" \
    WEBHOOKS__AUTH__ADMIN_TOKEN="$admin_token" \
    WEBHOOKS__AUTH__SERVICE_TOKEN="$service_token" \
    WEBHOOKS__BOOTSTRAP__DEMO_TENANT=true \
    WEBHOOKS__LOG__FORMAT=text \
    RUST_LOG=warn,okaya_webhooks=info \
    "$binary" serve --role api >"$run/stdout" 2>"$run/stderr"
) &
pid=$!

address="" key=""
for _ in $(seq 600); do
  address="$(grep -oE 'listening on http://[0-9.]+:[0-9]+' "$run/stderr" | head -n1 | sed 's|.*http://||')" || true
  key="$(grep -oE 'API key +okw_[A-Za-z0-9_-]+' "$run/stdout" | head -n1 | awk '{print $3}')" || true
  [ -n "$address" ] && [ -n "$key" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$address" ] || [ -z "$key" ]; then
  cat "$run/stderr" >&2
  fail "the binary printed no 'listening on' line or no demo API key"
fi
echo "okaya-webhooks (pid $pid) on http://$address"

# One worker: with several threads, Hypothesis parses source in parallel,
# which CPython before 3.11.8/3.12.2 can fail with "AST constructor recursion
# depth mismatch" (python/cpython#106905), a tool error rather than a finding.
seed=()
[ -n "${SCHEMATHESIS_SEED:-}" ] && seed=(--seed "$SCHEMATHESIS_SEED")
# Run from target/schemathesis: its .hypothesis database replays earlier
# failures first, and `st replay` finds its cache there.
cd "$work"
WEBHOOKS_TEST_API_KEY="$key" \
  WEBHOOKS_TEST_ADMIN_TOKEN="$admin_token" \
  WEBHOOKS_TEST_SERVICE_TOKEN="$service_token" \
  "$venv/bin/st" --config-file "$root/scripts/schemathesis.toml" \
  run "http://$address/openapi.json" \
  --max-examples "${SCHEMATHESIS_EXAMPLES:-100}" \
  --workers 1 \
  --request-timeout 10 \
  --wait-for-schema 10 \
  "${seed[@]}"
