#!/usr/bin/env bash
# Benchmarks of okaya-webhooks; method and results: docs/benchmarks.md.
#
#   scripts/bench.sh             # PostgreSQL at $BENCH_DATABASE_URL's server
#   scripts/bench.sh --sqlite    # a fresh SQLite file per scenario
#   scripts/bench.sh --profile   # also perf profiles of two extra runs
#   scripts/bench.sh --no-build  # use the binaries already built (e.g. the
#                                # same build for --sqlite after PostgreSQL)
#   scripts/bench.sh --isolation # only the isolation scenarios (idle latency
#                                # beside 0, 5, 20, 100 hanging webhooks), into
#                                # docs/benchmarks/isolation[-sqlite].json
#   scripts/bench.sh --history   # only the history-size scenario: 1-webhook
#                                # throughput and the delivery log's latency
#                                # on an empty database and on one filled with
#                                # BENCH_HISTORY_ROWS finished deliveries, into
#                                # docs/benchmarks/history[-sqlite].json
#
# Builds the release binary and the bench harness, then runs every scenario
# BENCH_RUNS (3) times, each on a fresh service and a fresh database, and
# writes docs/benchmarks/results.json (results-sqlite.json), the tables of
# docs/benchmarks.md and the SVG charts. All traffic stays on 127.0.0.1.
# Every process this script starts is stopped at exit, and every database it
# creates is dropped.
#
# Sizes (environment, defaults in brackets): BENCH_RUNS [3],
# BENCH_CEILING_SECONDS [10], BENCH_API_SECONDS [20], BENCH_CONNECTIONS [32],
# BENCH_EVENTS [20000] (one webhook), BENCH_FANOUT_EVENTS [2000] (x 10 webhooks),
# BENCH_DRAIN_EVENTS [10000], BENCH_RATE [1000] / BENCH_RATE_SECONDS [10],
# BENCH_IDLE_EVENTS [200], BENCH_HISTORY_ROWS [5000000], BENCH_PUBLISHERS [32], BENCH_TIMEOUT [120] (longest
# wait for the arrivals of one scenario, seconds), BENCH_PG_OPTIONS
# [sslmode=disable] (query string of the service's PostgreSQL URL). BENCH_RESULTS: write the
# results there instead of docs/benchmarks/results*.json and leave
# docs/benchmarks.md alone (for experiments). BENCH_SCENARIOS: only these of
# the full set, space-separated (ceiling api deliver_1 rate_1000 fanout_10
# idle isolation drain), for experiments with BENCH_RESULTS. Other WEBHOOKS__* variables in
# the environment reach the service and are recorded with the command; the
# published figures use the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

BACKEND=postgres
PROFILE=0
BUILD=1
ONLY_ISOLATION=0
ONLY_HISTORY=0
for arg in "$@"; do
  case "$arg" in
    --sqlite) BACKEND=sqlite ;;
    --profile) PROFILE=1 ;;
    --no-build) BUILD=0 ;;
    --isolation) ONLY_ISOLATION=1 ;;
    --history) ONLY_HISTORY=1 ;;
    -h | --help)
      sed -n '2,37p' "$0"
      exit 0
      ;;
    *)
      echo "unknown argument: $arg" >&2
      exit 2
      ;;
  esac
done

RUNS=${BENCH_RUNS:-3}
CEILING_SECONDS=${BENCH_CEILING_SECONDS:-10}
API_SECONDS=${BENCH_API_SECONDS:-20}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
EVENTS=${BENCH_EVENTS:-20000}
FANOUT_EVENTS=${BENCH_FANOUT_EVENTS:-2000}
DRAIN_EVENTS=${BENCH_DRAIN_EVENTS:-10000}
RATE=${BENCH_RATE:-1000}
RATE_SECONDS=${BENCH_RATE_SECONDS:-10}
IDLE_EVENTS=${BENCH_IDLE_EVENTS:-200}
HISTORY_ROWS=${BENCH_HISTORY_ROWS:-5000000}
PUBLISHERS=${BENCH_PUBLISHERS:-32}
TIMEOUT=${BENCH_TIMEOUT:-120}
SCENARIOS=${BENCH_SCENARIOS:-}
DATABASE_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
# Connection parameters of the service's database URL. No TLS by default: the
# service and PostgreSQL share the machine (loopback), as a service next to
# its database would be deployed; set BENCH_PG_OPTIONS= to use libpq's
# default (TLS when the server offers it).
PG_OPTIONS=${BENCH_PG_OPTIONS-sslmode=disable}
SERVER_URL=${DATABASE_URL%/*}
GROUP=123456
export BENCH_CLK_TCK=$(getconf CLK_TCK)

STARTED=$(date +%s)
log() { echo "bench: $*" >&2; }

if [ "$BUILD" = 1 ]; then
  log "building (release)"
  cargo build --release -p okaya-webhooks --bin okaya-webhooks
  cargo build --release -p webhooks-bench --bin bench
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/okaya-bench.XXXXXX")
# Copies, so that a build by someone else during the run changes nothing.
mkdir -p "$WORK/bin"
cp "$ROOT/target/release/okaya-webhooks" "$ROOT/target/release/bench" "$WORK/bin/"
BIN=$WORK/bin/okaya-webhooks
BENCH=$WORK/bin/bench
# Which source the binaries were built from (the commit, plus any uncommitted
# changes in the work tree at build time).
BUILD_INFO=$ROOT/target/release/bench.build-info
if [ "$BUILD" = 1 ]; then
  {
    git rev-parse HEAD 2>/dev/null || echo unknown
    git status --porcelain --untracked-files=no 2>/dev/null | awk '{print $NF}'
  } >"$BUILD_INFO"
fi
export BENCH_BUILD_INFO=$BUILD_INFO
# The raw runs stay outside $WORK, so that a failure late in the run
# leaves them behind (the script says where).
RUNS_FILE=$(mktemp --suffix=.jsonl "${TMPDIR:-/tmp}/okaya-bench-runs-$BACKEND.XXXXXX")
COLLECTED=0
PIDS=()
DATABASES=()

stop_pid() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

drop_database() {
  psql "$SERVER_URL/postgres" -qAt -v ON_ERROR_STOP=1 \
    -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null 2>&1 || true
}

cleanup() {
  local pid db
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  for db in "${DATABASES[@]}"; do drop_database "$db"; done
  rm -rf "$WORK"
  if [ "$COLLECTED" = 1 ]; then
    rm -f "$RUNS_FILE"
  elif [ -s "$RUNS_FILE" ]; then
    echo "bench: stopped early; the runs so far are in $RUNS_FILE" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$BACKEND" = postgres ]; then
  if ! psql "$SERVER_URL/postgres" -qAtc 'select 1' >/dev/null; then
    echo "bench: no PostgreSQL at $SERVER_URL (set BENCH_DATABASE_URL)" >&2
    exit 1
  fi
fi

log "machine"
if [ "$BACKEND" = postgres ]; then
  "$BENCH" machine --pg-url "$SERVER_URL/postgres" >"$WORK/machine.json"
else
  "$BENCH" machine >"$WORK/machine.json"
fi

ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64)
SERVICE_TOKEN=bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')

# A fresh database for one scenario: sets DB_NAME and DB_URL.
fresh_database() {
  local name=$1
  if [ "$BACKEND" = postgres ]; then
    DB_NAME=bench_$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
    DATABASES+=("$DB_NAME")
    psql "$SERVER_URL/postgres" -qAt -v ON_ERROR_STOP=1 -c "CREATE DATABASE $DB_NAME" >/dev/null
    DB_URL=$SERVER_URL/$DB_NAME${PG_OPTIONS:+?$PG_OPTIONS}
  else
    DB_NAME=
    mkdir -p "$WORK/$name"
    DB_URL=sqlite://$WORK/$name/bench.db
  fi
}

# The service's binary with the benchmark's settings; with --exec first, it
# replaces the shell (so that the shell's pid is the service's).
service() {
  local run=
  if [ "$1" = --exec ]; then
    run=exec
    shift
  fi
  $run env \
    WEBHOOKS__SERVER__BIND=127.0.0.1:0 \
    WEBHOOKS__DATABASE__URL="$DB_URL" \
    WEBHOOKS__AUTH__SERVICE_TOKEN="$SERVICE_TOKEN" \
    WEBHOOKS__SECRETS__ENCRYPTION_KEY="$ENCRYPTION_KEY" \
    WEBHOOKS__DELIVERY__ALLOW_NETWORKS=127.0.0.0/8 \
    RUST_LOG=warn,okaya_webhooks=info \
    "$BIN" "$@"
}

# Starts the service: sets SVC_PID, SVC_ADDR and SVC_KEY (the demo tenant's,
# on a new database, or PRESET_KEY when set).
start_service() {
  local name=$1 role=$2
  local dir=$WORK/$name-$role
  mkdir -p "$dir"
  # RUST_LOG: warnings only, except the start-up lines of the binary itself
  # (the `listening on` line): no per-request or per-delivery log on the hot path.
  (
    cd "$dir" && service --exec serve --role "$role" >"$dir/stdout" 2>"$dir/stderr"
  ) &
  SVC_PID=$!
  PIDS+=("$SVC_PID")
  SVC_ADDR=
  SVC_KEY=${PRESET_KEY:-}
  for _ in $(seq 1 600); do
    SVC_ADDR=$(grep -oE 'listening on http://[0-9.]+:[0-9]+' "$dir/stderr" 2>/dev/null | head -n1 | sed 's/listening on //') || true
    [ -n "$SVC_ADDR" ] && break
    if ! kill -0 "$SVC_PID" 2>/dev/null; then
      cat "$dir/stderr" >&2
      echo "bench: the service ($role) exited at start" >&2
      return 1
    fi
    sleep 0.1
  done
  if [ -z "$SVC_ADDR" ]; then
    echo "bench: no 'listening on' line within 60 s" >&2
    return 1
  fi
  if [ "$role" != worker ] && [ -z "$SVC_KEY" ]; then
    for _ in $(seq 1 50); do
      SVC_KEY=$(awk '$1 == "API" && $2 == "key" {print $3}' "$dir/stdout") || true
      [ -n "$SVC_KEY" ] && break
      sleep 0.1
    done
    [ -n "$SVC_KEY" ] || { echo "bench: no demo API key printed" >&2; return 1; }
  fi
}

# Warnings and errors the service logged in a scenario.
log_problems() {
  local dir
  for dir in "$WORK"/"$1"-*; do
    local n
    n=$(grep -cE ' (WARN|ERROR) ' "$dir/stderr" 2>/dev/null) || true
    if [ "${n:-0}" -gt 0 ]; then
      log "$(basename "$dir"): $n warning/error lines in the service log, first:"
      grep -m3 -E ' (WARN|ERROR) ' "$dir/stderr" | cut -c1-300 >&2
    fi
  done
}

finish_scenario() {
  local name=$1
  shift
  local pid
  for pid in "$@"; do stop_pid "$pid"; done
  log_problems "$name"
  [ -n "$DB_NAME" ] && drop_database "$DB_NAME"
  return 0
}

common_args() {
  local args=(--backend "$BACKEND" --run "$1")
  shift
  local pid
  for pid in "$@"; do args+=(--pid "$pid"); done
  [ -n "$DB_NAME" ] && args+=(--pg-database "$DB_NAME")
  echo "${args[@]}"
}

# Profiles the machine with perf while "$@" runs, and reports the samples of
# the service and of the benchmark database's PostgreSQL backends (a
# system-wide record, so that threads started during the run count too);
# writes docs/benchmarks/profile-<backend>-<name>.txt.
with_profile() {
  local name=$1
  shift
  if [ "$PROFILE" != 1 ] || ! command -v perf >/dev/null; then
    "$@"
    return
  fi
  perf record -e cpu-clock -F 999 -a -g -o "$WORK/perf-$name.data" >/dev/null 2>&1 &
  local perf=$!
  "$@" || true
  local pids=$SVC_PID
  if [ -n "$DB_NAME" ]; then
    local pg
    for pg in $(pgrep -f " $DB_NAME " || true); do pids="$pids,$pg"; done
  fi
  kill -INT "$perf" 2>/dev/null || true
  wait "$perf" || true
  mkdir -p docs/benchmarks
  {
    echo "# perf record -e cpu-clock -F 999 -a -g, during one extra run of scenario $name ($BACKEND)"
    echo "# (not one of the measured runs); only samples of the service process and of the"
    echo "# PostgreSQL backends of the benchmark database are shown (perf report --pid)."
    echo "# Percentages are of those samples."
    echo
    echo "## By process and shared object"
    perf report -i "$WORK/perf-$name.data" --pid "$pids" --no-children --percentage relative -F overhead,comm,dso \
      --percent-limit 0.5 --stdio -g none 2>/dev/null | grep -vE '^$|^# *$|Tip:|perf.data header'
    echo
    echo "## By symbol (at least 0.4 %)"
    perf report -i "$WORK/perf-$name.data" --pid "$pids" --no-children --percentage relative -F overhead,comm,dso,sym \
      --percent-limit 0.4 --stdio -g none 2>/dev/null | grep -vE '^$|^# *$|Tip:|perf.data header' |
      cut -c1-150 | sed 's/ *$//' | head -n 150
  } >"docs/benchmarks/profile-$BACKEND-$name.txt" || true
  log "profile written: docs/benchmarks/profile-$BACKEND-$name.txt"
}

run_bench() {
  # One scenario's JSON line goes to the runs file; a failed scenario is
  # reported and the others go on.
  if ! "$BENCH" "$@" >>"$RUNS_FILE"; then
    log "scenario $2 failed (see above)"
  fi
}

scenario_api() {
  local r=$1
  fresh_database "api$r"
  start_service "api$r" all
  sleep 2
  run_bench api $(common_args "$r" "$SVC_PID") --base "$SVC_ADDR" --key "$SVC_KEY" \
    --group "$GROUP" --seconds "$API_SECONDS" --connections "$CONNECTIONS"
  finish_scenario "api$r" "$SVC_PID"
}

scenario_deliver() {
  local r=$1 name=$2 events=$3 webhooks=$4
  shift 4
  fresh_database "$name$r"
  start_service "$name$r" all
  sleep 2
  run_bench deliver $(common_args "$r" "$SVC_PID") --base "$SVC_ADDR" --key "$SVC_KEY" \
    --group "$GROUP" --service-token "$SERVICE_TOKEN" --scenario "$name" \
    --events "$events" --webhooks "$webhooks" --timeout "$TIMEOUT" "$@"
  finish_scenario "$name$r" "$SVC_PID"
}

scenario_idle() {
  local r=$1
  fresh_database "idle$r"
  start_service "idle$r" all
  sleep 2
  run_bench idle-latency $(common_args "$r" "$SVC_PID") --base "$SVC_ADDR" --key "$SVC_KEY" \
    --group "$GROUP" --service-token "$SERVICE_TOKEN" --events "$IDLE_EVENTS" --pause-ms 20
  finish_scenario "idle$r" "$SVC_PID"
}

# Idle latency of one healthy webhook while N webhooks in the same group
# point at a receiver that accepts and never answers, each sent 40
# deliveries first (more than the 32 one endpoint may have in flight), with
# the default settings (15 s timeout, so nothing times out during the run).
scenario_isolation() {
  local r=$1 hanging=$2
  local name=idle_hang_$hanging
  fresh_database "$name$r"
  start_service "$name$r" all
  sleep 2
  run_bench idle-latency $(common_args "$r" "$SVC_PID") --base "$SVC_ADDR" --key "$SVC_KEY" \
    --group "$GROUP" --service-token "$SERVICE_TOKEN" --events "$IDLE_EVENTS" --pause-ms 20 \
    --scenario "$name" --hanging "$hanging" --hanging-events 40
  finish_scenario "$name$r" "$SVC_PID"
}

# SQL of the 10 Crockford base-32 characters of a 48-bit number: the
# timestamp half of a ULID.
b32_sql() {
  local shift sql=
  for shift in 45 40 35 30 25 20 15 10 5 0; do
    sql+="${sql:+ || }substr('0123456789abcdefghjkmnpqrstvwxyz', CAST((($1) >> $shift) & 31 AS INTEGER) + 1, 1)"
  done
  echo "$sql"
}

# The history of the history-size scenario, as SQL for either backend: $1
# finished deliveries (one event each, one webhook of 100 each), created
# evenly over 19 days ending 2 days ago (so younger than the 30 days of
# retention, and older than anything the run adds). One in 20 failed after
# the 8 attempts of the default retry schedule; the others succeeded at the
# first. Ids are the prefix plus 26 lowercase ULID characters: the creation
# time, then the row number.
history_sql() {
  local rows=$1 series
  local now_ms=$(($(date +%s) * 1000)) day_ms=86400000
  local start=$((now_ms - 21 * day_ms)) span=$((19 * day_ms))
  if [ "$BACKEND" = postgres ]; then
    series="WITH series(n) AS (SELECT generate_series(0, $rows - 1)::bigint)"
  else
    series="WITH RECURSIVE series(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM series WHERE n < $rows - 1)"
  fi
  cat <<SQL
BEGIN;
CREATE TEMP TABLE history AS $series
SELECT n, t, CASE WHEN n % 20 = 7 THEN 1 ELSE 0 END AS failed,
       $(b32_sql t) || '000000' || $(b32_sql n) AS ulid,
       'we_' || $(b32_sql "$start") || '000000' || $(b32_sql 'n % 100') AS webhook_id
FROM (SELECT n, $start + n * $span / $rows AS t FROM series) AS s;
-- Disabled, so that the run's events fan out to the benchmark's webhook only.
INSERT INTO webhooks (id, group_id, url, description, status, enabled_events, rate_limit, secret,
                      created_at, updated_at)
SELECT webhook_id, $GROUP, 'http://127.0.0.1:9/history', 'history ' || n, 'disabled', 'history.sample',
       NULL, 'x1:history', $start, $start
FROM history WHERE n < 100;
INSERT INTO events (id, group_id, event_type, payload, idempotency_key, created_at)
SELECT 'evt_' || ulid, $GROUP, 'history.sample',
       '{"type":"history.sample","data":{"order":' || n || ',"status":"shipped","note":"one finished delivery of the history-size benchmark"}}',
       NULL, t
FROM history;
INSERT INTO deliveries (id, event_id, webhook_id, group_id, status, attempt_count, next_attempt_at,
                        created_at, updated_at, leased_until)
SELECT 'dlv_' || ulid, 'evt_' || ulid, webhook_id, $GROUP,
       CASE WHEN failed = 1 THEN 'failed' ELSE 'succeeded' END, CASE WHEN failed = 1 THEN 8 ELSE 1 END,
       NULL, t, t + CASE WHEN failed = 1 THEN 99305040 ELSE 40 END, NULL
FROM history;
INSERT INTO attempts (delivery_id, number, attempted_at, duration_ms, response_status, response_body, error)
WITH schedule(number, after_ms) AS (
  VALUES (1, 0), (2, 5000), (3, 305000), (4, 2105000), (5, 9305000), (6, 27305000), (7, 63305000), (8, 99305000)
)
SELECT 'dlv_' || ulid, number, t + after_ms, 40,
       CASE WHEN failed = 1 THEN 500 ELSE 200 END,
       CASE WHEN failed = 1 THEN 'internal error' ELSE 'ok' END, NULL
FROM history CROSS JOIN schedule WHERE number = 1 OR failed = 1;
-- A service that ran through this history has walked its events as each
-- passed the events' retention (all of them: they are older than a day),
-- deleting none (each has a delivery); its retention mark is at the newest.
UPDATE events_checked SET created_at = (SELECT MAX(created_at) FROM events),
                          id = (SELECT MAX(id) FROM events);
DROP TABLE history;
COMMIT;
SQL
}

# Fills the scenario's fresh database (migrated, with the benchmark's group)
# with $1 finished deliveries, and sets DB_BYTES to its size.
fill_history() {
  local rows=$1
  log "filling with $rows finished deliveries"
  local started=$(date +%s)
  if [ "$BACKEND" = postgres ]; then
    history_sql "$rows" | psql "$SERVER_URL/$DB_NAME" -qAt -v ON_ERROR_STOP=1 >/dev/null
    # A history that grew over weeks has long been vacuumed and checkpointed:
    # without this, the measurement would pay for the fill (the first
    # vacuum of millions of new rows, writing out gigabytes of dirty pages).
    psql "$SERVER_URL/$DB_NAME" -qAt -v ON_ERROR_STOP=1 -c 'VACUUM (ANALYZE)' >/dev/null
    psql "$SERVER_URL/$DB_NAME" -qAt -v ON_ERROR_STOP=1 -c 'CHECKPOINT' >/dev/null
    DB_BYTES=$(psql "$SERVER_URL/$DB_NAME" -qAt -c 'SELECT pg_database_size(current_database())')
  else
    local file=${DB_URL#sqlite://}
    { history_sql "$rows"; echo 'ANALYZE;'; } | sqlite3 -bail "$file" >/dev/null
    sqlite3 "$file" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
    DB_BYTES=$(stat -c %s "$file")
  fi
  log "filled in $(($(date +%s) - started)) s; database $((DB_BYTES / 1048576)) MiB"
}

# Delivery throughput and the delivery log's latency on a database holding
# $2 finished deliveries (0: empty). The tenant is made with the admin
# subcommands in both cases, before the fill, so the service starts on the
# filled database with the same one group and key.
scenario_history() {
  local r=$1 rows=$2 name=history_empty
  [ "$rows" -gt 0 ] && name=history_filled
  fresh_database "$name$r"
  service migrate >/dev/null 2>&1
  local org
  org=$(service admin create-org --name Bench | jq -r .id)
  service admin create-group --org "$org" --name Bench --id "$GROUP" >/dev/null
  PRESET_KEY=$(service admin create-key --org "$org" | jq -r .key)
  DB_BYTES=
  [ "$rows" -gt 0 ] && fill_history "$rows"
  start_service "$name$r" all
  PRESET_KEY=
  sleep 2
  run_bench history $(common_args "$r" "$SVC_PID") --base "$SVC_ADDR" --key "$SVC_KEY" \
    --group "$GROUP" --service-token "$SERVICE_TOKEN" --scenario "$name" --events "$EVENTS" \
    --publishers "$PUBLISHERS" --timeout "$TIMEOUT" --history-rows "$rows" ${DB_BYTES:+--database-bytes "$DB_BYTES"}
  finish_scenario "$name$r" "$SVC_PID"
}

scenario_drain() {
  local r=$1
  fresh_database "drain$r"
  start_service "drain$r" api
  local api=$SVC_PID api_addr=$SVC_ADDR key=$SVC_KEY
  sleep 2
  local ready=$WORK/drain$r.ready
  "$BENCH" drain $(common_args "$r" "$api") --base "$api_addr" --key "$key" \
    --group "$GROUP" --service-token "$SERVICE_TOKEN" --events "$DRAIN_EVENTS" \
    --publishers "$PUBLISHERS" --ready-file "$ready" --timeout "$TIMEOUT" >>"$RUNS_FILE" &
  local bench=$!
  local waited=0
  while [ ! -f "$ready" ] && kill -0 "$bench" 2>/dev/null && [ "$waited" -lt 6000 ]; do
    sleep 0.1
    waited=$((waited + 1))
  done
  if [ -f "$ready" ]; then
    start_service "drain$r" worker
    echo "$SVC_PID" >"$ready.pid"
    wait "$bench" || log "scenario drain failed"
    finish_scenario "drain$r" "$SVC_PID" "$api"
  else
    log "drain: the backlog was not published"
    stop_pid "$bench"
    finish_scenario "drain$r" "$api"
  fi
}

# Whether scenario $1 is to run: every one unless BENCH_SCENARIOS names some.
wanted() {
  [ -z "$SCENARIOS" ] || [[ " $SCENARIOS " == *" $1 "* ]]
}

for r in $(seq 1 "$RUNS"); do
  log "run $r of $RUNS ($BACKEND)"
  DB_NAME=
  if [ "$ONLY_ISOLATION" = 1 ]; then
    scenario_idle "$r"
    for hanging in 5 20 100; do scenario_isolation "$r" "$hanging"; done
    continue
  fi
  if [ "$ONLY_HISTORY" = 1 ]; then
    scenario_history "$r" 0
    scenario_history "$r" "$HISTORY_ROWS"
    continue
  fi
  if wanted ceiling; then
    run_bench ceiling --backend "$BACKEND" --run "$r" --seconds "$CEILING_SECONDS" --connections "$CONNECTIONS"
  fi
  if wanted api; then scenario_api "$r"; fi
  if wanted deliver_1; then scenario_deliver "$r" deliver_1 "$EVENTS" 1 --publishers "$PUBLISHERS"; fi
  if wanted rate_1000; then scenario_deliver "$r" rate_1000 "$((RATE * RATE_SECONDS))" 1 --rate "$RATE"; fi
  if wanted fanout_10; then scenario_deliver "$r" fanout_10 "$FANOUT_EVENTS" 10 --publishers "$PUBLISHERS"; fi
  if wanted idle; then scenario_idle "$r"; fi
  if wanted isolation; then
    for hanging in 5 20 100; do scenario_isolation "$r" "$hanging"; done
  fi
  if wanted drain; then scenario_drain "$r"; fi
done

WALL=$(($(date +%s) - STARTED))
if [ "$BACKEND" = sqlite ]; then OUT=docs/benchmarks/results-sqlite.json; else OUT=docs/benchmarks/results.json; fi
SETTINGS=$(env | grep -E '^WEBHOOKS__' | grep -vE 'TOKEN|KEY' | sort | tr '\n' ' ' || true)
COMMAND="${SETTINGS}scripts/bench.sh $*"
if [ "$ONLY_ISOLATION" = 1 ]; then
  if [ "$BACKEND" = sqlite ]; then OUT=docs/benchmarks/isolation-sqlite.json; else OUT=docs/benchmarks/isolation.json; fi
  # Not the full set of figures: the report of docs/benchmarks.md stays as it is.
  BENCH_RESULTS=${BENCH_RESULTS:-$OUT}
fi
if [ "$ONLY_HISTORY" = 1 ]; then
  if [ "$BACKEND" = sqlite ]; then OUT=docs/benchmarks/history-sqlite.json; else OUT=docs/benchmarks/history.json; fi
fi
if [ -n "${BENCH_RESULTS:-}" ]; then OUT=$BENCH_RESULTS; fi
"$BENCH" collect --machine "$WORK/machine.json" --runs "$RUNS_FILE" --out "$OUT" \
  --backend "$BACKEND" --command "${COMMAND% }" --wall-seconds "$WALL"
COLLECTED=1

if [ "$PROFILE" = 1 ]; then
  # Profiles are separate runs (perf costs CPU), not part of the figures.
  log "profiles"
  fresh_database prof_deliver
  start_service prof_deliver all
  sleep 2
  with_profile deliver_1 "$BENCH" deliver $(common_args 0 "$SVC_PID") --base "$SVC_ADDR" \
    --key "$SVC_KEY" --group "$GROUP" --service-token "$SERVICE_TOKEN" --scenario deliver_1 \
    --events "$EVENTS" --webhooks 1 --timeout "$TIMEOUT" --publishers "$PUBLISHERS" >/dev/null
  finish_scenario prof_deliver "$SVC_PID"
  fresh_database prof_api
  start_service prof_api all
  sleep 2
  with_profile api "$BENCH" api $(common_args 0 "$SVC_PID") --base "$SVC_ADDR" --key "$SVC_KEY" \
    --group "$GROUP" --seconds 10 --connections "$CONNECTIONS" >/dev/null
  finish_scenario prof_api "$SVC_PID"
fi

if [ -z "${BENCH_RESULTS:-}" ]; then
  "$BENCH" report --docs docs
fi
if [ -n "${BENCH_RESULTS:-}" ]; then log "done in ${WALL}s: $OUT"; else log "done in ${WALL}s: $OUT, docs/benchmarks.md, docs/benchmarks/*.svg"; fi
