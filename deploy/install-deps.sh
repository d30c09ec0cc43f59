#!/usr/bin/env bash
# Installs everything godwit needs to build, test and run its demo on
# Debian 12, as root. Idempotent: packages already present are left alone.
#
# Build:   cmake, gcc, pkg-config, protobuf-c-compiler (protoc-c) and the -dev
#          packages of libpq, libzmq (with CURVE), protobuf-c, libsodium,
#          libuv, libyaml, cJSON, SQLite, libsystemd (sd_notify), cmocka,
#          libmicrohttpd (the coordinator's Prometheus endpoint) and
#          libmariadb-dev (MariaDB Connector/C: the agent's MariaDB engine).
# Tests:   postgresql (server, psql, pgbench), python3, clang with the
#          libFuzzer runtime (the fuzz job), and the proxies later issues
#          test against (haproxy, nginx with its stream module for TCP
#          proxying, pgbouncer), systemd (systemd-analyze verifies the units),
#          groff-base (the man pages are rendered in a test), prometheus
#          (scrapes the coordinator in a test; promtool checks the text),
#          mariadb-server and mariadb-client (the MariaDB engine's tests make
#          their own servers).
# Packages: dpkg-dev (dpkg-shlibdeps, which cpack's DEB generator runs),
#          lintian (checks the .debs), man-db (`man -w` in the packages'
#          test).
# Benchmarks: pgcopydb (a baseline of bench/run.py --only pipeline);
#          mydumper (myloader: a baseline of --only mariadb) and sysbench
#          (its tables are that bench's data).
# Demos:   pgbouncer; iproute2 (network namespaces) and openssl (a CA and
#          the servers' certificates) for demo-datacenters.sh.
set -euo pipefail

packages=(
    build-essential cmake pkg-config git
    libpq-dev libzmq3-dev libprotobuf-c-dev protobuf-c-compiler libsodium-dev
    libuv1-dev libyaml-dev libcjson-dev libsqlite3-dev libcmocka-dev libsystemd-dev libmicrohttpd-dev systemd groff-base
    libmariadb-dev
    postgresql postgresql-contrib python3
    mariadb-server mariadb-client
    clang libclang-rt-14-dev
    haproxy nginx libnginx-mod-stream pgbouncer prometheus
    procps iproute2 openssl
    dpkg-dev lintian man-db
    pgcopydb mydumper sysbench
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Debian's postgresql package would create and start a cluster of its
    # own on port 5432; godwit's tests and demo make their own, so keep the
    # package from creating one.
    mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/godwit.conf
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The proxies, Prometheus and MariaDB must not run as system services here:
# tests start their own (the Prometheus and MariaDB packages enable their
# services at boot too).
for svc in nginx haproxy pgbouncer prometheus mariadb; do
    if command -v service >/dev/null 2>&1; then service "$svc" stop >/dev/null 2>&1 || true; fi
done
if command -v systemctl >/dev/null 2>&1; then
    systemctl disable prometheus >/dev/null 2>&1 || true
    systemctl disable mariadb >/dev/null 2>&1 || true
fi
id postgres >/dev/null 2>&1 || { echo "the postgres user is missing after install" >&2; exit 1; }
echo "dependencies ready"
