#!/usr/bin/env bash
# A local demo migration a newcomer can watch: installs dependencies, builds
# godwit, makes two PostgreSQL clusters (blue and green) in a temporary
# folder on free loopback ports, generates CURVE keys, starts a coordinator
# and two agents (blue: source, green: target), fills blue's database "shop"
# with pgbench data and keeps pgbench writing, then migrates shop from blue
# to green (godwitctl migrate start), verifies every table once it streams
# (godwitctl migrate verify), then cuts over: the application (pgbench, as
# its own role "app") writes through a PgBouncer that godwit switches from
# blue to green in a write pause of milliseconds (godwitctl cutover, after a
# rehearsal), and shows the fleet and the migration
# live, every second, until you press Ctrl-C (or for DEMO_SECONDS seconds
# when set, or when not on a terminal: 60 s).
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
# PostgreSQL's programs run as postgres, from a folder postgres may enter.
as_pg() { (cd / && runuser -u postgres -- "$@"); }
cleanup() {
    set +e
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    for c in blue green; do
        [ -f "$work/$c/data/postmaster.pid" ] &&
            as_pg "$pgbin/pg_ctl" -D "$work/$c/data" -m fast -w stop >/dev/null
    done
    rm -rf "$work"
    echo "demo stopped; $work removed"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

for c in blue green; do
    port=$(free_port)
    mkdir -p "$work/$c" && chown postgres "$work/$c"
    as_pg "$pgbin/initdb" -D "$work/$c/data" -A trust -U postgres >/dev/null
    printf "port = %s\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\nwal_level = logical\n" \
        "$port" "$work/$c" >> "$work/$c/data/postgresql.auto.conf"
    as_pg "$pgbin/pg_ctl" -D "$work/$c/data" -l "$work/$c/log" -w start >/dev/null
    eval "${c}_port=$port"
    echo "cluster $c: 127.0.0.1:$port, data $work/$c/data"
done

ctl=build/coordinator/godwitctl
# The coordinator's CURVE pair and its signing pair (epoch claims); each
# agent's key with the one role it may take.
$ctl keygen coordinator --dir "$work/keys" --signing >/dev/null
$ctl keygen blue --dir "$work/keys" --roles source >/dev/null
$ctl keygen green --dir "$work/keys" --roles target >/dev/null
$ctl keygen px --dir "$work/keys" --roles proxy >/dev/null
mkdir -p "$work/allowed" && cp "$work/keys/blue.pub" "$work/keys/green.pub" "$work/keys/px.pub" \
    "$work/allowed/"
cport=$(free_port)
cat > "$work/coordinator.yaml" <<YAML
listen: tcp://127.0.0.1:$cport
secret_key: $work/keys/coordinator.key
allowed_keys: $work/allowed
control_socket: $work/coordinator.sock
journal: $work/journal.db
YAML
for c in blue green; do
    # Each agent's peer is the other side: the target reads blue for the
    # migration, the source reads green after the cutover.
    role=source other=green; [ "$c" = green ] && role=target other=blue
    port_var=${c}_port other_port_var=${other}_port
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
  log_file: $work/$c/log
peers:
  - {name: $other, host: 127.0.0.1, port: ${!other_port_var}, user: godwit_repl}
YAML
done

build/coordinator/godwit-coordinator --config "$work/coordinator.yaml" 2> "$work/coordinator.log" &
pids+=($!)
sleep 0.5
for c in blue green; do
    build/agent/godwit-agent --config "$work/$c.yaml" 2> "$work/agent-$c.log" &
    pids+=($!)
done
psql_blue() { "$pgbin/psql" -X -q -h 127.0.0.1 -p "$blue_port" -U postgres "$@"; }
psql_blue -c "CREATE DATABASE shop" >/dev/null
"$pgbin/psql" -X -q -h 127.0.0.1 -p "$green_port" -U postgres -c "CREATE DATABASE shop" >/dev/null
echo "filling blue/shop with pgbench data (scale 10, about 150 MB)..."
"$pgbin/pgbench" -i -q -s 10 -h 127.0.0.1 -p "$blue_port" -U postgres shop >/dev/null 2>&1
# pgbench_history has no key: give it a replica identity (preflight would say so).
psql_blue -d shop -c "ALTER TABLE public.pgbench_history REPLICA IDENTITY FULL" >/dev/null
psql_blue -c "CREATE ROLE godwit_repl WITH REPLICATION LOGIN SUPERUSER" >/dev/null
# After the cutover blue follows green (for a rollback): the same role there.
"$pgbin/psql" -X -q -h 127.0.0.1 -p "$green_port" -U postgres \
    -c "CREATE ROLE godwit_repl WITH REPLICATION LOGIN SUPERUSER" >/dev/null
# The application's role, on both sides (roles are not part of a database's
# dump), and its rights on blue; green gets them once the schema is there.
grants="GRANT ALL ON ALL TABLES IN SCHEMA public TO app; GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO app"
psql_blue -c "CREATE ROLE app LOGIN" >/dev/null
"$pgbin/psql" -X -q -h 127.0.0.1 -p "$green_port" -U postgres -c "CREATE ROLE app LOGIN" >/dev/null
psql_blue -d shop -c "$grants" >/dev/null
# PgBouncer in front of blue (transaction mode); its [databases] entry lives
# in an include file the proxy agent rewrites at the switch.
bport=$(free_port)
mkdir -p "$work/pgbouncer"
echo "shop = host=127.0.0.1 port=$blue_port dbname=shop" > "$work/pgbouncer/databases.ini"
printf '"app" ""\n"postgres" ""\n' > "$work/pgbouncer/userlist.txt"
cat > "$work/pgbouncer/pgbouncer.ini" <<INI
[databases]
%include $work/pgbouncer/databases.ini
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bport
unix_socket_dir =
auth_type = trust
auth_file = $work/pgbouncer/userlist.txt
admin_users = postgres
pool_mode = transaction
ignore_startup_parameters = extra_float_digits,options
logfile = $work/pgbouncer/pgbouncer.log
INI
chown -R postgres "$work/pgbouncer"
(cd / && exec setpriv --reuid=postgres --regid=postgres --init-groups pgbouncer \
    "$work/pgbouncer/pgbouncer.ini" >/dev/null 2>&1) &
pids+=($!)
cat > "$work/px.yaml" <<YAML
name: px
role: proxy
state_dir: $work/px/agent-state
secret_key: $work/keys/px.key
coordinator:
  endpoint: tcp://127.0.0.1:$cport
  public_key: $work/keys/coordinator.pub
proxies:
  - name: pgb
    kind: pgbouncer
    blue: 127.0.0.1:$blue_port
    green: 127.0.0.1:$green_port
    pgbouncer: {host: 127.0.0.1, port: $bport, user: postgres, database: shop,
                include_file: $work/pgbouncer/databases.ini}
YAML
build/agent/godwit-agent --config "$work/px.yaml" 2> "$work/agent-px.log" &
pids+=($!)
sleep 1
"$pgbin/pgbench" -n -c 2 -R 200 -T 3600 -h 127.0.0.1 -p "$bport" -U app shop \
    > "$work/pgbench.log" 2>&1 &
pids+=($!)
cat > "$work/plan.yaml" <<YAML
migrations:
  - name: shop
    source: {agent: blue, database: shop}
    target: {agent: green, database: shop}
    replication: {peer: blue}            # a peer in green's agent config
    reverse_replication: {peer: green}   # a peer in blue's agent config
    options: {slot_wal_limit: 1GiB}
    cutover:
      app_roles: [app]
      proxies: [{agent: px, proxy: pgb}]
      max_write_pause: 2s
YAML

sock="$work/coordinator.sock"
echo "coordinator tcp://127.0.0.1:$cport, control socket $sock; logs and plan in $work"
sleep 2
"$ctl" --socket "$sock" plan check "$work/plan.yaml" || true
"$ctl" --socket "$sock" migrate start "$work/plan.yaml"
echo "pgbench writes 200 tx/s through PgBouncer (port $bport) while shop moves to green. Ctrl-C to stop."
sleep 1
seconds=${DEMO_SECONDS:-}
if [ -z "$seconds" ] && [ ! -t 1 ]; then seconds=60; fi
end=$(( $(date +%s) + ${seconds:-999999} ))
verified=
while [ "$(date +%s)" -lt "$end" ]; do
    # Once it streams, compare every table, blue against green, while
    # pgbench keeps writing (the report shows under the migration).
    if [ -z "$verified" ] && "$ctl" --socket "$sock" migrate status shop 2>/dev/null |
            grep -q "migration shop: streaming"; then
        "$pgbin/psql" -X -q -h 127.0.0.1 -p "$green_port" -U postgres -d shop -c "$grants" >/dev/null
        "$ctl" --socket "$sock" migrate verify shop --no-wait >/dev/null && verified=yes
    fi
    # Verified equal: rehearse the cutover, then do it (once); the timelines
    # stay on the screen.
    if [ "$verified" = yes ] && "$ctl" --socket "$sock" migrate status shop 2>/dev/null |
            grep -q "verify: equal"; then
        "$ctl" --socket "$sock" cutover shop --dry-run > "$work/rehearsal.txt" 2>&1 || true
        "$ctl" --socket "$sock" cutover shop > "$work/cutover.txt" 2>&1 || true
        verified=done
    fi
    [ -t 1 ] && printf '\033[H\033[2J'
    "$ctl" --socket "$sock" status || true
    echo
    "$ctl" --socket "$sock" migrate status || true
    if [ -s "$work/cutover.txt" ]; then
        echo; echo "rehearsal (godwitctl cutover shop --dry-run):"; sed 1d "$work/rehearsal.txt"
        echo "PgBouncer serves port $("$pgbin/psql" -X -A -t -h 127.0.0.1 -p "$bport" -U app -d shop \
            -c 'SELECT inet_server_port()' 2>/dev/null) now (blue $blue_port, green $green_port);" \
            "pgbench errors so far: $(grep -ciE 'error|abort' "$work/pgbench.log")"
    fi
    [ -t 1 ] || echo "----"
    sleep 1
done
