# shellcheck shell=bash
# What deploy/demo.sh and deploy/demo-datacenters.sh share; sourced by both,
# never run on its own. The calling script describes its hosts, then calls
# these functions in order:
#
#   demo_setup "$@"       options (--once), install and build (or GODWIT_BIN),
#                         the work folder, the traps
#   demo_cluster HOST ADDR PORT [HBA_LINE...]   one PostgreSQL cluster
#   demo_keys             the coordinator's and each agent's CURVE keys
#   demo_coordinator ENDPOINT
#   demo_agent NAME ROLE PG_ADDR PG_PORT COORD_ENDPOINT PEER PEER_HOST PEER_PORT
#   demo_database         shop on blue (pgbench data), roles on both sides
#   demo_pgbouncer ADDR PORT BLUE_HOST BLUE_PORT
#   demo_proxy_agent COORD_ENDPOINT BLUE_HOST:PORT GREEN_HOST:PORT
#   demo_pgbench          the application, writing through PgBouncer
#   demo_migrate          the plan, plan check, migrate start
#   demo_watch            verify, rehearse, cut over; the live screen
#
# Hosts are blue, green, px (the proxy host, which also runs the
# application) and coord. A host runs its programs in the network namespace
# named by ns_HOST (empty or unset: this machine's own network). The caller
# may add cleanup steps with demo_on_cleanup CMD (run last, newest first),
# give each host's keys a folder of its own (keys_HOST), and set
# peer_sslmode (the agents' peers' sslmode), pgbouncer_extra (more lines for
# pgbouncer.ini's [pgbouncer] section), demo_cluster_hook (a function run
# with the cluster's name before it starts) and demo_status_hook (a function
# whose lines show once the cutover is done).
#
# Environment:
#   GODWIT_BIN=DIR    godwit's programs are already built in DIR (a build
#                     tree or one folder): no install, no build
#   DEMO_SCALE=N      pgbench's scale (default 10, about 150 MB)
#   DEMO_CLIENTS=N, DEMO_RATE=TPS   pgbench's clients and rate (defaults 2
#                     and 200; the datacenter demo's 8 and 40)
#   DEMO_SECONDS=S    run for S seconds (default: until Ctrl-C; 60 s when
#                     not on a terminal; with --once at most 300 s)
#   --once            (an option of the script) run until the cutover has
#                     happened, print a summary and exit: 0 when it cut over
#                     with no failed transaction of the application
#
# Every process it started is stopped, every cluster, namespace and folder it
# made removed on exit: at the end, on an error, on Ctrl-C (exit 130) or
# SIGTERM (exit 143).

demo_pids=()
demo_cleanups=()
demo_once=
demo_work=

# The program NAME: from GODWIT_BIN (a build tree or a flat folder) or from
# this checkout's build folder.
demo_exe() {
    local base=${GODWIT_BIN:-$demo_root/build} sub
    for sub in coordinator agent tests/tools .; do
        [ -x "$base/$sub/$1" ] && { echo "$base/$sub/$1"; return; }
    done
    echo "demo: $1 not found under $base" >&2
    return 1
}

demo_setup() {
    local a
    for a in "$@"; do
        case $a in
            --once) demo_once=yes ;;
            *) echo "usage: $0 [--once]" >&2; exit 2 ;;
        esac
    done
    # GODWIT_BIN may be relative to where the script was started from.
    if [ -n "${GODWIT_BIN:-}" ]; then GODWIT_BIN=$(cd "$GODWIT_BIN" && pwd); fi
    cd "$(dirname "$0")/.."
    demo_root=$(pwd)
    if [ -z "${GODWIT_BIN:-}" ]; then
        deploy/install-deps.sh
        cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
        cmake --build build -j2
    fi
    ctl=$(demo_exe godwitctl)
    coordinator_exe=$(demo_exe godwit-coordinator)
    agent_exe=$(demo_exe godwit-agent)
    pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    scale=${DEMO_SCALE:-10}
    trap demo_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    # Under /tmp, not $TMPDIR: the postgres user runs the clusters in here
    # and must be able to reach it (a root's private TMPDIR would not do).
    demo_work=$(mktemp -d /tmp/godwit-demo.XXXXXX)
    work=$demo_work
    chmod 755 "$work"
    sock="$work/coordinator.sock"
}

demo_on_cleanup() { demo_cleanups+=("$*"); }

demo_cleanup() {
    local rc=$? p c i
    set +e
    trap - EXIT INT TERM
    for p in "${demo_pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${demo_pids[@]}"; do wait "$p" 2>/dev/null; done
    if [ -n "$demo_work" ]; then
        for c in blue green; do
            [ -f "$demo_work/$c/data/postmaster.pid" ] &&
                as_pg "$pgbin/pg_ctl" -D "$demo_work/$c/data" -m fast -w stop >/dev/null
        done
    fi
    for (( i=${#demo_cleanups[@]}-1; i>=0; i-- )); do eval "${demo_cleanups[i]}"; done
    if [ -n "$demo_work" ]; then
        rm -rf "$demo_work"
        echo "demo stopped; $demo_work removed"
    fi
    exit "$rc"
}

# pfx: the words that run a command on HOST (in its namespace, if it has
# one); callers declare it local. A background job started as
# "${pfx[@]}" CMD & is CMD itself (ip netns exec execs it): its pid is the
# one to stop.
demo_pfx() {
    local v="ns_$1"
    pfx=()
    if [ -n "${!v:-}" ]; then pfx=(ip netns exec "${!v}"); fi
}
# Runs a command on HOST.
on() { local pfx; demo_pfx "$1"; shift; "${pfx[@]}" "$@"; }
# PostgreSQL's programs run as postgres, from a folder postgres may enter.
as_pg() { (cd / && runuser -u postgres -- "$@"); }
as_pg_on() { local h=$1; shift; (cd / && on "$h" runuser -u postgres -- "$@"); }
# Starts a long-running program on HOST, its stderr in LOG; it is stopped
# on exit.
demo_spawn() {
    local h=$1 log=$2 pfx
    shift 2
    demo_pfx "$h"
    "${pfx[@]}" "$@" 2> "$log" &
    demo_pids+=($!)
}

# psql as postgres on HOST's cluster (blue or green), from that host.
sql_on() {
    local h=$1 a p
    shift
    a=${h}_addr p=${h}_port
    on "$h" "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -h "${!a}" -p "${!p}" -U postgres "$@"
}

# One PostgreSQL cluster, HOST (blue or green), listening on ADDR:PORT, with
# logical WAL; more pg_hba.conf lines after the port.
demo_cluster() {
    local c=$1 addr=$2 port=$3 line
    shift 3
    mkdir -p "$work/$c" && chown postgres "$work/$c"
    as_pg "$pgbin/initdb" -D "$work/$c/data" -A trust -U postgres >/dev/null
    printf "port = %s\nlisten_addresses = '%s'\nunix_socket_directories = '%s'\nwal_level = logical\n" \
        "$port" "$addr" "$work/$c" >> "$work/$c/data/postgresql.auto.conf"
    for line in "$@"; do echo "$line" >> "$work/$c/data/pg_hba.conf"; done
    [ -n "${demo_cluster_hook:-}" ] && "$demo_cluster_hook" "$c"
    as_pg_on "$c" "$pgbin/pg_ctl" -D "$work/$c/data" -l "$work/$c/log" -w start >/dev/null
    eval "${c}_addr=$addr ${c}_port=$port"
    echo "cluster $c: $addr:$port, data $work/$c/data"
}

# The coordinator's CURVE pair and its signing pair (epoch claims); each
# agent's key with the one role it may take. Each host's keys are made in
# its folder keys_HOST (default: all in $work/keys); an agent's public key
# goes to the coordinator's allow-list, the coordinator's two public keys to
# every agent host. No secret key leaves its folder.
demo_keys() {
    local ck=${keys_coord:-$work/keys} item name role kv k
    "$ctl" keygen coordinator --dir "$ck" --signing >/dev/null
    mkdir -p "$work/allowed"
    for item in blue:source green:target px:proxy; do
        name=${item%%:*} role=${item#*:} kv="keys_${item%%:*}"
        k=${!kv:-$work/keys}
        "$ctl" keygen "$name" --dir "$k" --roles "$role" >/dev/null
        cp "$k/$name.pub" "$work/allowed/"
        [ "$k" = "$ck" ] || cp "$ck/coordinator.pub" "$ck/coordinator.sign.pub" "$k/"
    done
}

demo_coordinator() {
    cat > "$work/coordinator.yaml" <<YAML
listen: $1
secret_key: ${keys_coord:-$work/keys}/coordinator.key
allowed_keys: $work/allowed
control_socket: $sock
journal: $work/journal.db
YAML
    demo_spawn coord "$work/coordinator.log" "$coordinator_exe" --config "$work/coordinator.yaml"
    local i
    for i in $(seq 100); do
        [ -S "$sock" ] && return
        kill -0 "${demo_pids[-1]}" 2>/dev/null || break
        sleep 0.1
    done
    echo "demo: the coordinator did not start; $work/coordinator.log:" >&2
    cat "$work/coordinator.log" >&2
    return 1
}

# keys_HOST: the folder with that host's keys (default: all in $work/keys).
demo_agent() {
    local name=$1 role=$2 addr=$3 port=$4 endpoint=$5 peer=$6 peer_host=$7 peer_port=$8
    local kv="keys_$name"
    local keys=${!kv:-$work/keys}
    # Each agent's peer is the other side: the target reads blue for the
    # migration, the source reads green after the cutover.
    cat > "$work/$name.yaml" <<YAML
name: $name
role: $role
state_dir: $work/$name/agent-state
secret_key: $keys/$name.key
coordinator:
  endpoint: $endpoint
  public_key: $keys/coordinator.pub
postgres:
  host: $addr
  port: $port
  data_directory: $work/$name/data
  log_file: $work/$name/log
peers:
  - {name: $peer, host: $peer_host, port: $peer_port, user: godwit_repl${peer_sslmode:+, sslmode: $peer_sslmode}}
YAML
    demo_spawn "$name" "$work/agent-$name.log" "$agent_exe" --config "$work/$name.yaml"
}

demo_database() {
    sql_on blue -c "CREATE DATABASE shop" >/dev/null
    sql_on green -c "CREATE DATABASE shop" >/dev/null
    echo "filling blue/shop with pgbench data (scale $scale, about $((scale * 15)) MB)..."
    on blue "$pgbin/pgbench" -i -q -s "$scale" -h "$blue_addr" -p "$blue_port" -U postgres shop \
        >/dev/null 2>&1
    # pgbench_history has no key: give it a replica identity (preflight would say so).
    sql_on blue -d shop -c "ALTER TABLE public.pgbench_history REPLICA IDENTITY FULL" >/dev/null
    # The replication role on both sides: after the cutover blue follows
    # green (for a rollback).
    sql_on blue -c "CREATE ROLE godwit_repl WITH REPLICATION LOGIN SUPERUSER" >/dev/null
    sql_on green -c "CREATE ROLE godwit_repl WITH REPLICATION LOGIN SUPERUSER" >/dev/null
    # The application's role, on both sides (roles are not part of a
    # database's dump), and its rights on blue; green gets them once the
    # schema is there.
    grants="GRANT ALL ON ALL TABLES IN SCHEMA public TO app; GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO app"
    sql_on blue -c "CREATE ROLE app LOGIN" >/dev/null
    sql_on green -c "CREATE ROLE app LOGIN" >/dev/null
    sql_on blue -d shop -c "$grants" >/dev/null
}

# PgBouncer on the proxy host in front of blue (transaction mode); its
# [databases] entry lives in an include file the proxy agent rewrites at the
# switch.
demo_pgbouncer() {
    bouncer_addr=$1 bouncer_port=$2
    mkdir -p "$work/pgbouncer"
    echo "shop = host=$3 port=$4 dbname=shop" > "$work/pgbouncer/databases.ini"
    printf '"app" ""\n"postgres" ""\n' > "$work/pgbouncer/userlist.txt"
    cat > "$work/pgbouncer/pgbouncer.ini" <<INI
[databases]
%include $work/pgbouncer/databases.ini
[pgbouncer]
listen_addr = $bouncer_addr
listen_port = $bouncer_port
unix_socket_dir =
auth_type = trust
auth_file = $work/pgbouncer/userlist.txt
admin_users = postgres
pool_mode = transaction
ignore_startup_parameters = extra_float_digits,options
logfile = $work/pgbouncer/pgbouncer.log
${pgbouncer_extra:-}
INI
    chown -R postgres "$work/pgbouncer"
    local pfx
    demo_pfx px
    (cd / && exec "${pfx[@]}" setpriv --reuid=postgres --regid=postgres --init-groups pgbouncer \
        "$work/pgbouncer/pgbouncer.ini" >/dev/null 2>&1) &
    demo_pids+=($!)
    local i
    for i in $(seq 100); do
        on px "$pgbin/pg_isready" -q -h "$bouncer_addr" -p "$bouncer_port" -U app -d shop && return
        sleep 0.1
    done
    echo "demo: PgBouncer did not start; $work/pgbouncer/pgbouncer.log:" >&2
    cat "$work/pgbouncer/pgbouncer.log" >&2
    return 1
}

demo_proxy_agent() {
    local kv=keys_px
    local keys=${!kv:-$work/keys}
    cat > "$work/px.yaml" <<YAML
name: px
role: proxy
state_dir: $work/px/agent-state
secret_key: $keys/px.key
coordinator:
  endpoint: $1
  public_key: $keys/coordinator.pub
proxies:
  - name: pgb
    kind: pgbouncer
    blue: $2
    green: $3
    pgbouncer: {host: $bouncer_addr, port: $bouncer_port, user: postgres, database: shop,
                include_file: $work/pgbouncer/databases.ini}
YAML
    demo_spawn px "$work/agent-px.log" "$agent_exe" --config "$work/px.yaml"
}

# Waits (up to 30 s) until every agent named answers a ping.
demo_wait_agents() {
    local n i
    for n in "$@"; do
        for i in $(seq 300); do
            "$ctl" --socket "$sock" ping "$n" >/dev/null 2>&1 && continue 2
            sleep 0.1
        done
        echo "demo: agent $n did not connect; $work/agent-$n.log:" >&2
        tail -n 20 "$work/agent-$n.log" >&2
        return 1
    done
}

# The application: pgbench as role app through PgBouncer, from the proxy
# host; DEMO_CLIENTS clients (default 2) at DEMO_RATE tx/s (default 200).
demo_pgbench() {
    local pfx
    clients=${DEMO_CLIENTS:-2} rate=${DEMO_RATE:-200}
    demo_pfx px
    "${pfx[@]}" "$pgbin/pgbench" -n -c "$clients" -R "$rate" -P 5 -T 3600 -h "$bouncer_addr" \
        -p "$bouncer_port" -U app shop > "$work/pgbench.log" 2>&1 &
    demo_pids+=($!)
}

# The application's errors so far (pgbench prints one line per failed
# transaction or aborted client).
pgbench_errors() { grep -ciE 'error|abort' "$work/pgbench.log" || true; }

demo_migrate() {
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
    echo "control socket $sock; logs and plan in $work"
    "$ctl" --socket "$sock" plan check "$work/plan.yaml" || true
    "$ctl" --socket "$sock" migrate start "$work/plan.yaml"
    echo "pgbench writes $rate tx/s through PgBouncer ($bouncer_addr:$bouncer_port) while shop moves to green."
    [ -n "$demo_once" ] || echo "Ctrl-C to stop."
}

# Which server PgBouncer sends the application to now.
demo_served_by() {
    on px "$pgbin/psql" -X -A -t -h "$bouncer_addr" -p "$bouncer_port" -U app -d shop \
        -c "SELECT host(inet_server_addr()) || ':' || inet_server_port()" 2>/dev/null
}

# The command round trip from the coordinator to each agent.
demo_rtts() {
    local n
    for n in blue green px; do
        printf '%s %s ms\n' "$n" "$("$ctl" --socket "$sock" ping "$n" --json 2>/dev/null |
            python3 -c 'import json,sys; print("%.1f" % json.load(sys.stdin)["rtt_ms"])' 2>/dev/null)"
    done
}

# With --once: the summary, and the exit status (0: cut over, the
# application lost nothing).
demo_summary() {
    local errors
    errors=$(pgbench_errors)
    echo "== summary"
    grep -h "cutover" "$work/cutover.txt" | head -n 3
    echo "served by: $(demo_served_by) (blue $blue_addr:$blue_port, green $green_addr:$green_port)"
    demo_rtts | sed 's/^/round trip /'
    echo "pgbench failed transactions: $errors"
    [ "$errors" = 0 ] && grep -q "cutover: done" "$work/cutover.txt"
}

# Once it streams: verify, rehearse, cut over (once each); every second the
# fleet and the migration. Until Ctrl-C, DEMO_SECONDS, or with --once until
# the cutover has happened.
demo_watch() {
    local seconds=${DEMO_SECONDS:-} end verified=
    if [ -z "$seconds" ] && [ -n "$demo_once" ]; then seconds=300; fi
    if [ -z "$seconds" ] && [ ! -t 1 ]; then seconds=60; fi
    end=$(( $(date +%s) + ${seconds:-999999} ))
    sleep 1
    while [ "$(date +%s)" -lt "$end" ]; do
        # Once it streams, compare every table, blue against green, while
        # pgbench keeps writing (the report shows under the migration).
        if [ -z "$verified" ] && "$ctl" --socket "$sock" migrate status shop 2>/dev/null |
                grep -q "migration shop: streaming"; then
            sql_on green -d shop -c "$grants" >/dev/null
            "$ctl" --socket "$sock" migrate verify shop --no-wait >/dev/null && verified=yes
        fi
        # Verified equal: rehearse the cutover, then do it (once); the
        # timelines stay on the screen.
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
            echo "PgBouncer serves $(demo_served_by) now (blue $blue_addr:$blue_port," \
                "green $green_addr:$green_port); pgbench errors so far: $(pgbench_errors)"
            [ -n "${demo_status_hook:-}" ] && "$demo_status_hook"
            [ -n "$demo_once" ] && { demo_summary; return; }
        fi
        [ -t 1 ] || echo "----"
        sleep 1
    done
    if [ -n "$demo_once" ]; then
        echo "demo: no cutover within $seconds s" >&2
        return 1
    fi
}
