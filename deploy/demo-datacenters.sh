#!/usr/bin/env bash
# The demo of deploy/demo.sh between two datacenters, on one machine: every
# host in its own network namespace, Frankfurt and Oslo joined only by a WAN
# that takes 12.5 ms each way (25 ms round trip).
#
#   Frankfurt 10.77.1.0/24 (one switch)         Oslo 10.77.2.0/24
#     blue   10.77.1.10  PostgreSQL :5432,         green 10.77.2.10  PostgreSQL
#                        agent blue (source)                          :5432, agent
#     px     10.77.1.20  PgBouncer :6432, agent                       green (target)
#                        px (proxy), pgbench (the application)
#     coord  10.77.1.30  coordinator :7400
#               |                                       |
#            10.77.1.1 ------------- wan -------------- 10.77.2.1
#
# wan is a namespace with a leg in each datacenter and IP forwarding off:
# no packet crosses it. The only paths between the datacenters are three
# relays listening there (godwit-relay, built with the tests), each delaying
# every byte 12.5 ms each way:
#   10.77.2.1:5432 -> blue 10.77.1.10:5432   green's copy, replication, verify
#   10.77.2.1:7400 -> coord 10.77.1.30:7400  green's agent to the coordinator
#   10.77.1.1:5432 -> green 10.77.2.10:5432  blue's reverse replication and
#                                            PgBouncer, after the cutover
# So Oslo knows blue and the coordinator as 10.77.2.1, Frankfurt knows green
# as 10.77.1.1, as behind a NAT or a load balancer. Each host has a route to
# its own /24 only.
#
# Each host makes its own CURVE key pair; only public keys travel. Both
# PostgreSQL servers speak TLS with certificates of a CA made for the run;
# the agents' peers and PgBouncer connect with sslmode verify-full, and the
# servers accept the WAN's connections only over TLS (hostssl).
#
# Then as deploy/demo.sh: pgbench writes through PgBouncer while shop moves
# from blue to green, verify, a rehearsal, the cutover; the live screen
# until Ctrl-C (or DEMO_SECONDS; --once: until the cutover, then a summary).
# Everything it made (namespaces and their links, processes, clusters, the
# temporary folder) is removed on exit, Ctrl-C and errors included.
# Environment (GODWIT_BIN, DEMO_SCALE, ...): see deploy/demo-lib.sh.
#   deploy/demo-datacenters.sh [--once]   (as root on Debian 12)
# docs/runbook-two-datacenters.md is the same move between real hosts.
set -euo pipefail
# shellcheck source=deploy/demo-lib.sh
. "$(dirname "$0")/demo-lib.sh"
# The application stays in Frankfurt: after the cutover each of its
# transactions crosses the WAN several times, so more clients, fewer tx/s.
DEMO_CLIENTS=${DEMO_CLIENTS:-8}
DEMO_RATE=${DEMO_RATE:-40}
demo_setup "$@"
relay_exe=$(demo_exe godwit-relay)
one_way_ms=12.5

# --- the network ---------------------------------------------------------
tag="godwit-demo-$$"
for h in fra wan blue px coord green; do
    ip netns add "$tag-$h"
    demo_on_cleanup "ip netns del $tag-$h"
    eval "ns_$h=$tag-$h"
    ip -n "$tag-$h" link set lo up
    # No host routes for others; wan above all forwards nothing.
    ip netns exec "$tag-$h" sysctl -q -w net.ipv4.ip_forward=0
done
# Frankfurt's switch: a bridge in fra; each Frankfurt host and wan's
# Frankfurt leg plug into it with a veth pair (eth0 on the host's side).
ip -n "$ns_fra" link add sw type bridge
ip -n "$ns_fra" link set sw up
plug() { # HOST ADDR/24 [IFNAME on the host]
    local ifname=${3:-eth0}
    ip link add "$ifname" netns "$tag-$1" type veth peer name "$1" netns "$ns_fra"
    ip -n "$ns_fra" link set "$1" master sw up
    ip -n "$tag-$1" addr add "$2" dev "$ifname"
    ip -n "$tag-$1" link set "$ifname" up
}
plug blue 10.77.1.10/24
plug px 10.77.1.20/24
plug coord 10.77.1.30/24
plug wan 10.77.1.1/24 fra
# Oslo has one host: green's eth0 and wan's Oslo leg, one veth pair.
ip link add eth0 netns "$ns_green" type veth peer name osl netns "$ns_wan"
ip -n "$ns_green" addr add 10.77.2.10/24 dev eth0
ip -n "$ns_green" link set eth0 up
ip -n "$ns_wan" addr add 10.77.2.1/24 dev osl
ip -n "$ns_wan" link set osl up
echo "network: namespaces $tag-{fra,wan,blue,px,coord,green}; Frankfurt 10.77.1.0/24, Oslo 10.77.2.0/24"

# The relays, in wan. Each prints its port once it listens.
relay() { # NAME LISTEN TO
    demo_spawn wan "$work/relay-$1.log" "$relay_exe" --listen "$2" --to "$3" \
        --delay-ms "$one_way_ms" --control "$work/relay-$1.sock" > "$work/relay-$1.port"
    local i
    for i in $(seq 100); do [ -s "$work/relay-$1.port" ] && return; sleep 0.1; done
    echo "demo: relay $1 did not start:" >&2
    cat "$work/relay-$1.log" >&2
    return 1
}
relay oslo-to-blue 10.77.2.1:5432 10.77.1.10:5432
relay oslo-to-coord 10.77.2.1:7400 10.77.1.30:7400
relay fra-to-green 10.77.1.1:5432 10.77.2.10:5432
echo "WAN: relays in wan, $one_way_ms ms each way (control sockets $work/relay-*.sock)"

# --- TLS for PostgreSQL --------------------------------------------------
# A CA for this run; each server's certificate names every address it is
# reached at (its own, and the relay's in the other datacenter).
mkdir -p "$work/tls"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=godwit demo CA" \
    -keyout "$work/tls/ca.key" -out "$work/tls/ca.crt" 2>/dev/null
server_cert() { # NAME ADDRESSES (subjectAltName)
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$1" -keyout "$work/tls/$1.key" \
        -out "$work/tls/$1.csr" 2>/dev/null
    openssl x509 -req -in "$work/tls/$1.csr" -CA "$work/tls/ca.crt" -CAkey "$work/tls/ca.key" \
        -CAcreateserial -days 2 -extfile <(echo "subjectAltName = $2") \
        -out "$work/tls/$1.crt" 2>/dev/null
    chown postgres "$work/tls/$1.key" "$work/tls/$1.crt"
    chmod 600 "$work/tls/$1.key"
}
server_cert blue "IP:10.77.1.10,IP:10.77.2.1"
server_cert green "IP:10.77.2.10,IP:10.77.1.1"
# Every libpq client verifies with this CA: the agents, their pg_dump, the
# servers' subscriptions (walreceiver), psql here. PgBouncer has its own.
export PGSSLROOTCERT="$work/tls/ca.crt"
tls_on() {
    printf "ssl = on\nssl_cert_file = '%s'\nssl_key_file = '%s'\n" \
        "$work/tls/$1.crt" "$work/tls/$1.key" >> "$work/$1/data/postgresql.auto.conf"
}
demo_cluster_hook=tls_on
peer_sslmode=verify-full
pgbouncer_extra="server_tls_sslmode = verify-full
server_tls_ca_file = $work/tls/ca.crt"

# --- the clusters: each accepts its datacenter, and the WAN over TLS ------
# A relay connects from its namespace's leg in the server's datacenter:
# blue sees Oslo's connections come from 10.77.1.1, green Frankfurt's from
# 10.77.2.1. Only the replication role may cross to blue.
demo_cluster blue 10.77.1.10 5432 \
    "hostssl all godwit_repl 10.77.1.1/32 trust" "host all all 10.77.1.1/32 reject" \
    "host all all 10.77.1.0/24 trust"
demo_cluster green 10.77.2.10 5432 \
    "hostssl all all 10.77.2.1/32 trust" "host all all 10.77.2.1/32 reject" \
    "host all all 10.77.2.0/24 trust"

# Isolation: Oslo reaches Frankfurt only through the relays.
if on green "$pgbin/pg_isready" -q -t 2 -h 10.77.1.10 -p 5432; then
    echo "demo: green reaches blue without the WAN relay" >&2
    exit 1
fi
on green "$pgbin/pg_isready" -q -t 5 -h 10.77.2.1 -p 5432
echo "isolation: green reaches blue only through the relay (10.77.2.1:5432), not at 10.77.1.10"

# --- keys: each host its own pair ------------------------------------------
for h in blue green px coord; do eval "keys_$h=$work/$h/keys"; done
demo_keys
echo "keys: CURVE pairs made on each host ($work/{blue,green,px,coord}/keys), public keys copied"

# --- the daemons -----------------------------------------------------------
demo_coordinator tcp://10.77.1.30:7400
echo "coordinator tcp://10.77.1.30:7400 (Oslo dials tcp://10.77.2.1:7400)"
demo_agent blue source 10.77.1.10 5432 tcp://10.77.1.30:7400 green 10.77.1.1 5432
demo_agent green target 10.77.2.10 5432 tcp://10.77.2.1:7400 blue 10.77.2.1 5432
demo_database
demo_pgbouncer 10.77.1.20 6432 10.77.1.10 5432
demo_proxy_agent tcp://10.77.1.30:7400 10.77.1.10:5432 10.77.1.1:5432
demo_wait_agents blue green px
echo "round trips from the coordinator:"; demo_rtts | sed 's/^/  /'
# After the cutover: what crosses the WAN to green, and whether over TLS.
wan_tls() {
    echo "green's connections from Frankfurt (through the relay, 10.77.2.1), over TLS:" \
        "$(sql_on green -A -t -F ' of ' -c \
        "SELECT count(*) FILTER (WHERE s.ssl), count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s
         USING (pid) WHERE a.client_addr = '10.77.2.1'")"
}
demo_status_hook=wan_tls
demo_pgbench
demo_migrate
demo_watch
