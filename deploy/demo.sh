#!/usr/bin/env bash
# A local demo a newcomer can watch: installs dependencies, builds godwit,
# makes two PostgreSQL clusters (blue and green) in a temporary folder on
# free loopback ports, generates CURVE keys, starts a coordinator and two
# agents (blue: source, green: target), puts a light pgbench load on blue,
# and shows `godwitctl status --watch` until you press Ctrl-C (or for
# DEMO_SECONDS seconds when set, or when not on a terminal: 20 s).
# Everything it started is stopped and removed on exit.
#   deploy/demo.sh            (as root on Debian 12)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

deploy/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2

pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
work=$(mktemp -d /tmp/godwit-demo.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
    set +e
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    for c in blue green; do
        [ -f "$work/$c/data/postmaster.pid" ] &&
            runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/$c/data" -m fast -w stop >/dev/null
    done
    rm -rf "$work"
    echo "demo stopped; $work removed"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

for c in blue green; do
    port=$(free_port)
    mkdir -p "$work/$c" && chown postgres "$work/$c"
    runuser -u postgres -- "$pgbin/initdb" -D "$work/$c/data" -A trust -U postgres >/dev/null
    printf "port = %s\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\nwal_level = logical\n" \
        "$port" "$work/$c" >> "$work/$c/data/postgresql.auto.conf"
    runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/$c/data" -l "$work/$c/log" -w start >/dev/null
    eval "${c}_port=$port"
    echo "cluster $c: 127.0.0.1:$port, data $work/$c/data"
done

ctl=build/coordinator/godwitctl
for k in coordinator blue green; do $ctl keygen "$k" --dir "$work/keys" >/dev/null; done
mkdir -p "$work/allowed" && cp "$work/keys/blue.pub" "$work/keys/green.pub" "$work/allowed/"
cport=$(free_port)
cat > "$work/coordinator.yaml" <<YAML
listen: tcp://127.0.0.1:$cport
secret_key: $work/keys/coordinator.key
allowed_keys: $work/allowed
control_socket: $work/coordinator.sock
journal: $work/journal.db
YAML
for c in blue green; do
    role=source; [ "$c" = green ] && role=target
    port_var=${c}_port
    cat > "$work/$c.yaml" <<YAML
name: $c
role: $role
state_dir: $work/$c/agent-state
secret_key: $work/keys/$c.key
coordinator:
  endpoint: tcp://127.0.0.1:$cport
  public_key: $work/keys/coordinator.pub
postgres:
  host: 127.0.0.1
  port: ${!port_var}
  data_directory: $work/$c/data
YAML
done

build/coordinator/godwit-coordinator --config "$work/coordinator.yaml" 2> "$work/coordinator.log" &
pids+=($!)
sleep 0.5
for c in blue green; do
    build/agent/godwit-agent --config "$work/$c.yaml" 2> "$work/agent-$c.log" &
    pids+=($!)
done
"$pgbin/pgbench" -i -q -h 127.0.0.1 -p "$blue_port" -U postgres postgres >/dev/null 2>&1
"$pgbin/psql" -X -q -h 127.0.0.1 -p "$blue_port" -U postgres -c \
    "SELECT pg_catalog.pg_create_logical_replication_slot('demo_slot', 'pgoutput')" >/dev/null
"$pgbin/pgbench" -n -c 2 -R 200 -T 3600 -h 127.0.0.1 -p "$blue_port" -U postgres postgres \
    >/dev/null 2>&1 &
pids+=($!)

echo "coordinator tcp://127.0.0.1:$cport, control socket $work/coordinator.sock; logs in $work"
echo "pgbench writes 200 tx/s on blue; slot demo_slot retains its WAL. Ctrl-C to stop."
sleep 2
seconds=${DEMO_SECONDS:-}
if [ -z "$seconds" ] && [ ! -t 1 ]; then seconds=20; fi
if [ -n "$seconds" ]; then
    timeout "$seconds" "$ctl" --socket "$work/coordinator.sock" status --watch || true
    "$ctl" --socket "$work/coordinator.sock" status
else
    "$ctl" --socket "$work/coordinator.sock" status --watch || true
fi
