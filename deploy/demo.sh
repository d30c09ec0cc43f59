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
# when set, or when not on a terminal: 60 s; with --once until the cutover).
# Everything it started is stopped and removed on exit.
# deploy/demo-datacenters.sh is the same move between two datacenters.
# Environment (GODWIT_BIN, DEMO_SCALE, ...): see deploy/demo-lib.sh.
#   deploy/demo.sh [--once]   (as root on Debian 12)
set -euo pipefail
# shellcheck source=deploy/demo-lib.sh
. "$(dirname "$0")/demo-lib.sh"
demo_setup "$@"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Every host is this machine: no namespace, everything on 127.0.0.1.
for c in blue green; do demo_cluster "$c" 127.0.0.1 "$(free_port)"; done
demo_keys
cport=$(free_port)
endpoint=tcp://127.0.0.1:$cport
demo_coordinator "tcp://127.0.0.1:$cport"
echo "coordinator $endpoint"
demo_agent blue source 127.0.0.1 "$blue_port" "$endpoint" green 127.0.0.1 "$green_port"
demo_agent green target 127.0.0.1 "$green_port" "$endpoint" blue 127.0.0.1 "$blue_port"
demo_database
demo_pgbouncer 127.0.0.1 "$(free_port)" 127.0.0.1 "$blue_port"
demo_proxy_agent "$endpoint" "127.0.0.1:$blue_port" "127.0.0.1:$green_port"
demo_wait_agents blue green px
demo_pgbench
demo_migrate
demo_watch
