#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the tests that need a server of
# their own (TLS, stopping it under load), never the machine's own:
#
#   scripts/pg-test-cluster.sh DIR PORT
#
# DIR (new or empty) receives:
#   certs/ca.crt, certs/other-ca.crt        the test CA, and an unrelated one
#   certs/client.crt, certs/client.key      a client certificate for user `certuser`
#   data/, log                              the cluster (ssl = on) and its log
#   port                                    the port it listens on
#   ctl start|stop|destroy                  starts, stops (`-m fast`), or stops
#                                           and deletes everything
# The server certificate is issued by the test CA for `localhost` only (not
# for 127.0.0.1), so verify-full passes with host `localhost` and fails with
# `127.0.0.1`. Users: `postgres` (trust, with or without TLS), `tlsonly`
# (trust, TLS only) and `certuser` (TLS with its client certificate only).
# Run as root, the cluster runs as the `postgres` OS user (initdb refuses root).
set -euo pipefail

dir="${1:?usage: $0 DIR PORT}"
port="${2:?usage: $0 DIR PORT}"
pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
[ -x "$pg_bin/initdb" ] || { echo "error: no initdb under /usr/lib/postgresql/*/bin (apt-get install postgresql)" >&2; exit 1; }

mkdir -p "$dir/certs"
chmod 755 "$dir"  # the postgres user must reach data/ (and its parent must let it)
dir="$(cd "$dir" && pwd)"
certs="$dir/certs"
if [ "$(id -u)" -eq 0 ]; then
  as_pg="runuser -u postgres --"
  chown postgres "$dir"
else
  as_pg=""
fi

# Certificates: a CA, the server's (SAN DNS:localhost), the client's (CN=certuser).
quiet() { "$@" >/dev/null 2>&1 || { echo "error: failed: $*" >&2; exit 1; }; }
quiet openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=okaya-webhooks test CA" \
  -keyout "$certs/ca.key" -out "$certs/ca.crt"
quiet openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=unrelated CA" \
  -keyout "$certs/other-ca.key" -out "$certs/other-ca.crt"
issue() { # NAME CN [extension]
  quiet openssl req -new -newkey rsa:2048 -nodes -subj "/CN=$2" \
    -keyout "$certs/$1.key" -out "$certs/$1.csr"
  printf '%s\n' "${3:-basicConstraints=CA:FALSE}" >"$certs/$1.ext"
  quiet openssl x509 -req -in "$certs/$1.csr" -CA "$certs/ca.crt" -CAkey "$certs/ca.key" \
    -CAcreateserial -days 2 -extfile "$certs/$1.ext" -out "$certs/$1.crt"
}
issue server localhost "subjectAltName=DNS:localhost"
issue client certuser
chmod 600 "$certs"/*.key
chmod 755 "$certs"
chmod 644 "$certs"/*.crt

$as_pg "$pg_bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-locale --no-sync >/dev/null
install -m 600 "$certs/server.key" "$dir/data/server.key"
install -m 644 "$certs/server.crt" "$dir/data/server.crt"
install -m 644 "$certs/ca.crt" "$dir/data/ca.crt"
[ -z "$as_pg" ] || chown postgres "$dir/data/server.key" "$dir/data/server.crt" "$dir/data/ca.crt"
cat >>"$dir/data/postgresql.conf" <<EOF
port = $port
listen_addresses = 'localhost'
unix_socket_directories = '$dir'
max_connections = 300
fsync = off
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
ssl_ca_file = 'ca.crt'
EOF
cat >"$dir/data/pg_hba.conf" <<'EOF'
local   all  all                 trust
hostssl all  certuser  localhost cert
host    all  certuser  localhost reject
hostssl all  tlsonly   localhost trust
host    all  tlsonly   localhost reject
host    all  all       localhost trust
EOF

cat >"$dir/ctl" <<EOF
#!/usr/bin/env bash
# start | stop | destroy the throwaway cluster in $dir (port $port).
set -euo pipefail
case "\${1:-}" in
  start) $as_pg "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 start >/dev/null ;;
  stop) $as_pg "$pg_bin/pg_ctl" -D "$dir/data" -w -t 60 -m fast stop >/dev/null ;;
  destroy)
    $as_pg "$pg_bin/pg_ctl" -D "$dir/data" -w -t 30 -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir" ;;
  *) echo "usage: \$0 start|stop|destroy" >&2; exit 2 ;;
esac
EOF
chmod 755 "$dir/ctl"
echo "$port" >"$dir/port"
chmod 755 "$dir"

"$dir/ctl" start
$as_pg "$pg_bin/psql" -h "$dir" -p "$port" -U postgres -d postgres -Atq \
  -c "CREATE ROLE certuser LOGIN SUPERUSER; CREATE ROLE tlsonly LOGIN SUPERUSER"
