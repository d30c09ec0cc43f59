#!/usr/bin/env python3
"""godwit benchmarks: prints a table and writes it to bench/results/.

    bench/run.py [--quick] [--only agent|fanin|pipeline|cutover|verify|fleet|group|mariadb|
                                   mariadb-cutover]
                 [--fanin 100,1000,5000] [--scale 50] [--durable] [--cutovers 20] [--verify-scale 10]
                 [--migrations 200] [--copies 0] [--group-sizes 1,10,50]
                 [--group-roles shared|database] [--group-rehearsals 3] [--group-copies 10]

Builds an optimised tree in build-bench (no sanitizers); with GODWIT_BIN set
in the environment, builds nothing and runs the binaries there (the table's
first line names the build type). Then:

1. Agent footprint: one agent at a 1 s interval against a live PostgreSQL
   cluster (made here, with a logical slot and light pgbench load) for 60 s
   (--quick: 20 s). Peak RSS (VmHWM) and CPU % of one core. Baseline in the
   same run: the CPU the PostgreSQL backend serving the agent's queries
   spent, i.e. what the agent costs the database it watches.
2. Coordinator fan-in: bench/fanin_load plays N agents, each with its own
   allowed CURVE key and connection, reporting at 1 Hz and answering pings.
   After the connections settle, over a 20 s window (--quick: 10 s):
   reports/s the coordinator handled (sum of per-agent report counters),
   coordinator CPU % and RSS, command round trip p50/p99 (the coordinator's
   own ping measurements over the last 10 s), and as baseline the load
   generator's CPU for the same messages (the same CURVE and protobuf work
   on the other end of every connection).

3. Pipeline: time from `migrate start` to streaming on pgbench at --scale
   (default 50, about 750 MB; --quick: 10) plus a schema with an enum, jsonb,
   a foreign key, a secondary index and a trigger, with its parts (schema,
   publish + subscribe + copy, post-data), against baselines in the same
   run on fresh target databases, each run before and after godwit's runs
   (the figure is the mean of the two): a plain subscription with copy_data after
   a full schema-only restore, pg_dump -Fd -j2 | pg_restore -j2 and
   Debian's pgcopydb clone with two table and two index jobs (both without
   streaming: floors, not ways to migrate live); then godwit again into a
   fresh database with an import profile on green (docs/import-profile.md).
   Then the physical path (docs/physical.md) on the same source, after the
   logical runs: `method: physical`, pg_basebackup of the whole of blue's
   server (every database: the baselines' live on green) into a standby
   that a third agent makes and starts itself, from `migrate start` to
   streaming, with its parts from that agent's log (before pg_basebackup,
   pg_basebackup, the standby's start, to streaming), against a plain
   `pg_basebackup -X stream -c fast` with the agent's options into a fresh
   folder, in the order P G G P, each after a checkpoint on blue; the
   ratios godwit physical / plain and godwit logical / physical.

4. Cutover: the migration of pgbench scale 2 plus the test schema through
   PgBouncer (transaction mode), pgbench writing 400 tx/s through it as the
   application's own role, at 0 and at 25 ms round trip (a relay of our own
   delaying 12.5 ms each way between the agents and the coordinator and
   between green and blue): --cutovers real cutovers back and forth
   (`cutover`, `rollback`, `cutover`, ...; blue follows green and green
   follows blue in turn through reverse replication). The write pause as godwit measured it (first PAUSE sent to last
   RESUME answered) and as the application saw it (the longest gap between
   two transactions' completions in pgbench's per-transaction log, during
   each cutover, against windows of the same length without one: the
   baseline), p50/p99/max; failed transactions (pgbench's count); lost rows
   (pgbench_history rows either side has that the side traffic ended on
   lacks, once the other side caught up). After each cutover, in the same
   rig and run, a hand-tuned expert script's write pause (expert_round:
   kept sessions across the same WAN, the fewest round trips PgBouncer and
   PostgreSQL allow) measured the same way, and the ratio godwit / expert.

5. Verify: the hostile workload's tables (tests/integration/workload.py:
   hot rows, a unique-index identity, REPLICA IDENTITY FULL, an insert-only
   keyless table, TOAST, a partitioned table) and pgbench's at
   --verify-scale (default 10; --quick: 4), migrated to streaming; then
   `migrate verify` three times on a quiet source, and three times while
   the workload writes unthrottled with its eight clients: rows compared
   per second (source rows of every table over the run's wall time), the
   ratio under load / quiet, the workload's transactions/s, each run's
   outcome (every one must be equal), the changes the windows explained and
   the longest time the verify slot lived.

6. Fleet: the coordinator driving --migrations (default 200) migrations, a
   fleet plan over two pairs of hosts, from `migrate start` (its preflight
   included) to all streaming, against simulated agents: bench/fleet_agents
   plays two sources and two targets, each a real CURVE client with its own
   allow-listed key, reporting once a second and answering every command at
   once with the result its step expects (no PostgreSQL, nothing copied).
   Copies uncapped unless --copies N (the coordinator's default is 2 per
   source and per target). Wall time to streaming and when the last
   migration entered each phase (from the journal); the coordinator's CPU
   (utime + stime) and peak RSS over that window and over 30 s of steady
   streaming (--quick: 10 s), against the simulated agents' CPU for the
   same messages; the journal's size (db + wal) and events; the latency of
   `godwitctl migrate status --json` and `fleet status --json` (p50, p95
   over 20 calls each) at all streaming, against `godwitctl status --json`
   in the same moments and before any migration.

7. Group cutover: on real servers (blue and green made here, one PgBouncer
   with a database entry per database, each in its include file, a proxy
   agent with a proxy per entry, source and target agents, the
   coordinator), small databases (a table with a bigserial key and 1000
   rows each) migrated as one fleet plan (copies capped at --group-copies
   per source and per target, max_write_pause 5s) to streaming and
   verified equal; one pgbench per database writes --group-rate (default
   1) inserts/s through PgBouncer as the database's application role
   (every WAL sender decodes the whole server's WAL: a slot per database
   makes the decoding grow as databases x total rate). For each size n in
   --group-sizes (--quick: 1,5), --group-rehearsals rehearsals
   (`cutover M1 ... Mn --dry-run`; n = 1 is a plain single cutover) under
   that load: the group's write pause (the longest member's) median and
   max, each step's median (the longest member's time in it), the ratio
   to the group of one and the pause per added database, load average,
   failed transactions; then one real cutover of the largest group: every
   member switched, every entry on green, failed transactions, lost rows
   (rows pgbench committed that the serving side lacks). --group-roles
   shared (default): a group of databases of its own per size, its
   databases sharing one role (app for the largest), since a shared
   role's sessions outside the group make the fence refuse; database: one
   role per database and the group of n is the first n of max(sizes).
   A cutover that did not end done is recorded with its members' reasons.

8. MariaDB: sysbench's --my-tables tables of --my-rows rows (default 8 of
   100000; --quick: 20000) in one database of a MariaDB 10.11 server made
   here, moved to another: godwit's `migrate start` to streaming (the copy
   with two readers in one snapshot, then replication from its GTID
   position) against `mariadb-dump --single-transaction --gtid | mariadb`
   and mydumper/myloader with two threads, each baseline before and after
   godwit's runs.

9. MariaDB cutover (--only mariadb-cutover): test_mariadb_cutover's rig (two
   MariaDB 10.11 servers, HAProxy in TCP mode, agents, coordinator), sysbench
   through HAProxy (4 threads, one transaction per connection, each order's
   `placed` its server time to the ms), --cutovers (--quick: 4) real
   cutovers back and forth with reverse replication. godwit's write_pause_ms
   p50/p99/max (and per direction); the application's longest gap between
   commits during each cutover against a window of the same length without
   one (the baseline); after each, a hand-tuned expert script's round on kept
   sessions (HAProxy paused through its runtime API; accounts locked, their
   sessions killed and the final GTID position in one batch; MASTER_GTID_WAIT
   on the other side; unlocked; HAProxy reloaded) and its gap, the ratios;
   failed transactions (sysbench's ignored errors) and lost rows (committed
   transactions the final primary lacks).

Targets (issue 2): agent < 10 MB RSS and < 1 % CPU; 1000 agents at 1 Hz
under 25 % of one core with round trip p99 under 10 ms. (Issue 3): at least
1.3x faster to streaming than the plain subscription, not slower than
dump/restore. (Cutover groups): the group of 50 under 1 s of write pause,
zero failed, zero lost; the pause growing by well under one database's
pause per added database.
"""

import argparse
import datetime
import glob
import json
import os
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# GODWIT_BIN set: its binaries as they are (nothing built; the tables say
# which build ran). Else an optimised tree built in build-bench.
PREBUILT = os.environ.get("GODWIT_BIN")
BUILD = PREBUILT or os.path.join(ROOT, "build-bench")
os.environ["GODWIT_BIN"] = BUILD
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid, children=False):
    """utime + stime; children: with those of the children it reaped
    (cutime, cstime: a child's own reaped children included)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15 if children else 13]) / TICK


def cluster_cpu_seconds(cluster):
    """CPU seconds of a PostgreSQL server so far: its postmaster, the
    backends it has reaped (cutime, cstime) and those alive."""
    pids = cluster.pids()
    if not pids:
        return 0.0
    with open("/proc/%d/stat" % pids[0]) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    total = sum(int(x) for x in fields[11:15]) / TICK
    for pid in pids[1:]:
        try:
            total += cpu_seconds(pid)
        except (OSError, IndexError, ValueError):
            pass  # it ended meanwhile: counted with the postmaster's children
    return total


def status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def smaps(pid):
    """Pss and private (Private_Clean + Private_Dirty) in kB, and the shared
    clean pages (library text mapped by other processes too)."""
    out = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":"):
                out[parts[0][:-1]] = int(parts[1])
    return out


def build():
    if PREBUILT:
        print("GODWIT_BIN=%s: its binaries as built (%s), nothing rebuilt" % (
            BUILD, build_kind()), file=sys.stderr)
        return
    subprocess.run(["cmake", "-S", ROOT, "-B", BUILD, "-DCMAKE_BUILD_TYPE=Release"],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", BUILD, "-j2"], check=True, stdout=subprocess.DEVNULL)


def build_kind():
    """The build type of the binaries run (CMakeCache.txt), e.g. "Release"
    or "Debug, sanitizers"."""
    kind, san = "unknown build type", False
    try:
        with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
            for line in f:
                if line.startswith("CMAKE_BUILD_TYPE:"):
                    kind = line.split("=", 1)[1].strip() or kind
                elif line.startswith("GODWIT_SANITIZE:"):
                    san = line.split("=", 1)[1].strip() in ("ON", "1", "TRUE")
    except OSError:
        pass
    return kind + (", sanitizers" if san else "")


def bench_agent(seconds):
    rig = harness.Rig("bench-agent")
    try:
        blue = rig.cluster("blue")
        blue.pgbench_init(scale=1)
        blue.psql("SELECT pg_catalog.pg_create_logical_replication_slot('bench', 'pgoutput')")
        coord = harness.Coordinator(rig, ["blue"], options={"log_level": "warn"}).start()
        agent = harness.Agent(rig, "blue", coord, role="source", cluster=blue, interval="1s")
        with open(agent.config) as f:
            text = f.read().replace("log_level: debug", "log_level: warn")
        with open(agent.config, "w") as f:
            f.write(text)
        agent.start()
        harness.wait_for("agent reporting", lambda: coord.agent("blue").get("postgres") and
                         coord.agent("blue")["postgres"].get("reachable"), 15)
        load = blue.pgbench(["-n", "-c", "1", "-R", "50", "-T", str(seconds + 10), "postgres"])
        backend = int(blue.psql("SELECT pid FROM pg_catalog.pg_stat_activity WHERE "
                                "application_name = 'godwit-agent' LIMIT 1"))
        pid = agent.proc.proc.pid
        a0, b0, t0 = cpu_seconds(pid), cpu_seconds(backend), time.monotonic()
        time.sleep(seconds)
        a1, b1, t1 = cpu_seconds(pid), cpu_seconds(backend), time.monotonic()
        wall = t1 - t0
        st = coord.agent("blue")
        mem = smaps(pid)
        load.stop()
        return {
            "seconds": round(wall, 1),
            "agent_cpu_pct": 100 * (a1 - a0) / wall,
            "agent_peak_rss_mb": status_kb(pid, "VmHWM") / 1024,
            "agent_pss_mb": mem.get("Pss", 0) / 1024,
            "agent_private_mb": (mem.get("Private_Clean", 0) + mem.get("Private_Dirty", 0)) / 1024,
            "agent_anon_mb": mem.get("Anonymous", 0) / 1024,
            "agent_shared_clean_mb": mem.get("Shared_Clean", 0) / 1024,
            "backend_cpu_pct": 100 * (b1 - b0) / wall,
            "reports": st["reports"],
            "max_report_gap_ms": st["max_report_gap_ms"],
        }
    finally:
        rig.close()


def bench_fanin(n, window):
    rig = harness.Rig("bench-fanin-%d" % n)
    try:
        keydir = rig.path("load")
        subprocess.run([harness.exe("fanin_load"), "keys", str(n), keydir], check=True)
        coord = harness.Coordinator(rig, [], options={"log_level": "warn", "ping_interval": "1s"})
        with open(coord.config) as f:
            text = f.read().replace(coord.allowed, os.path.join(keydir, "allowed"))
        with open(coord.config, "w") as f:
            f.write(text)
        coord.start()
        settle = 10 + n // 250
        total = settle + window + 5
        load = rig.spawn("fanin_load", [harness.exe("fanin_load"), "run", coord.endpoint,
                                        os.path.join(rig.keys, "coordinator.pub"), keydir,
                                        str(n), str(total)])
        cpid, lpid = coord.proc.proc.pid, load.proc.pid
        harness.wait_for("%d agents connected" % n, lambda: sum(
            1 for a in coord.status()["agents"] if a["state"] == "connected") == n, settle + 30)
        time.sleep(3)

        def reports():
            return sum(a.get("reports", 0) for a in coord.status()["agents"])
        r0, c0, l0, t0 = reports(), cpu_seconds(cpid), cpu_seconds(lpid), time.monotonic()
        time.sleep(window)
        c1, l1, t1 = cpu_seconds(cpid), cpu_seconds(lpid), time.monotonic()
        st = coord.status()
        r1 = sum(a.get("reports", 0) for a in st["agents"])
        wall = t1 - t0
        connected = sum(1 for a in st["agents"] if a["state"] == "connected")
        rtt = st["coordinator"]["rtt_ms"]
        load.wait(total + 30)
        return {
            "agents": n,
            "connected": connected,
            "reports_per_sec": (r1 - r0) / wall,
            "coord_cpu_pct": 100 * (c1 - c0) / wall,
            "coord_rss_mb": status_kb(cpid, "VmRSS") / 1024,
            "loadgen_cpu_pct": 100 * (l1 - l0) / wall,
            "rtt_p50_ms": rtt.get("p50"),
            "rtt_p99_ms": rtt.get("p99"),
            "rtt_samples": rtt.get("samples"),
            "bad_messages": st["coordinator"]["bad_messages"],
        }
    finally:
        rig.close()


FLEET_AGENTS = (("src-a", "source"), ("src-b", "source"), ("tgt-a", "target"),
                ("tgt-b", "target"))


def s_ctl_timed(coord, *args):
    """One godwitctl call: (seconds, completed process)."""
    t0 = time.monotonic()
    r = subprocess.run([harness.exe("godwitctl"), "--socket", coord.socket] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    return time.monotonic() - t0, r


def bench_fleet(n, steady, calls, copies):
    """The coordinator driving n migrations to streaming against simulated
    agents (bench/fleet_agents: two sources, two targets, real CURVE
    clients answering every command at once)."""
    rig = harness.Rig("bench-fleet")
    try:
        caps = "{per_source: %d, per_target: %d}" % (copies, copies)
        coord = harness.Coordinator(rig, [a for a, _ in FLEET_AGENTS],
                                    roles=dict(FLEET_AGENTS),
                                    options={"log_level": "warn", "ping_interval": "1s",
                                             "lost_after": "10s", "copies": caps}).start()
        sim = rig.spawn("fleet_agents", [harness.exe("fleet_agents"), coord.endpoint,
                                         os.path.join(rig.keys, "coordinator.pub"), rig.keys,
                                         "36000"] + ["%s:%s" % a for a in FLEET_AGENTS])
        harness.wait_for("simulated agents connected", lambda: sum(
            1 for a in coord.status()["agents"] if a["state"] == "connected") == 4, 30)
        half = (n + 1) // 2
        plan = rig.path("fleet.yaml")
        with open(plan, "w") as f:
            # The template's options as deploy/plan.fleet.example.yaml's: source
            # protection and the lag gate are on, so their checks run.
            f.write("fleets:\n  - template:\n      replication: {peer: src}\n"
                    "      options: {parallelism: 2, max_lag: 1s, slot_wal_limit: 20GiB}\n"
                    "    inventory:\n")
            for pair, lo, hi in (("a", 0, half), ("b", half, n)):
                f.write("      - source: src-%s\n        target: tgt-%s\n        name_prefix: %s_\n"
                        "        databases: [%s]\n" % (pair, pair, pair, ", ".join(
                            "db%03d" % i for i in range(lo, hi))))
        # The baseline's baseline: status with four idle agents, before any migration.
        idle = []
        for _ in range(calls):
            dt, r = s_ctl_timed(coord, "status", "--json")
            idle.append(dt * 1000.0)
        idle_bytes = len(r.stdout)
        # The floor: godwitctl starting and exiting, no request.
        g0, floor = resource.getrusage(resource.RUSAGE_CHILDREN), []
        for _ in range(calls):
            t = time.monotonic()
            subprocess.run([harness.exe("godwitctl"), "--version"], stdout=subprocess.DEVNULL,
                           check=True)
            floor.append((time.monotonic() - t) * 1000.0)
        g1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        floor_cpu = (g1.ru_utime + g1.ru_stime - g0.ru_utime - g0.ru_stime) * 1000.0 / calls
        cpid, spid = coord.proc.proc.pid, sim.proc.pid
        rss0, load0 = status_kb(cpid, "VmRSS"), os.getloadavg()
        c0, s0, t0, u0 = cpu_seconds(cpid), cpu_seconds(spid), time.monotonic(), time.time()
        took, r = s_ctl_timed(coord, "migrate", "start", plan)
        if r.returncode != 0:
            raise RuntimeError("migrate start: %s %s" % (r.stdout.decode()[-2000:],
                                                         r.stderr.decode()[-2000:]))
        started = len(json.loads(r.stdout)["started"]) if r.stdout.startswith(b"{") else n
        # Polled every half second with fleet status (its cost is in the
        # window); the phases' times are the journal's, read afterwards.
        phases = {}
        while time.monotonic() - t0 < 1800:
            _, r = s_ctl_timed(coord, "fleet", "status", "--json")
            if r.returncode in (0, 1):
                phases = json.loads(r.stdout)["phases"]
                if phases.get("streaming", 0) >= n:
                    break
            time.sleep(0.5)
        t1 = time.monotonic()
        if phases.get("streaming", 0) < n:
            raise RuntimeError("not all streaming after 1800 s: %r" % phases)
        c1, s1 = cpu_seconds(cpid), cpu_seconds(spid)
        hwm1, rss1 = status_kb(cpid, "VmHWM"), status_kb(cpid, "VmRSS")
        journal1 = sum(os.path.getsize(coord.journal + x) for x in ("", "-wal")
                       if os.path.exists(coord.journal + x))
        # A steady window of streaming with no control calls.
        time.sleep(3)
        c2, s2, t2 = cpu_seconds(cpid), cpu_seconds(spid), time.monotonic()
        time.sleep(steady)
        c3, s3, t3 = cpu_seconds(cpid), cpu_seconds(spid), time.monotonic()
        hwm3, rss3 = status_kb(cpid, "VmHWM"), status_kb(cpid, "VmRSS")
        # Control latency at n streaming, the three commands interleaved.
        # In blocks of calls/2 per command, twice, so that the coordinator's
        # CPU (less its steady rate) and godwitctl's own (the children's
        # rusage) can be told apart per command.
        lat = {"migrate": [], "fleet": [], "status": []}
        ccpu = {k: 0.0 for k in lat}
        gcpu = {k: 0.0 for k in lat}
        sizes = {}
        rate = (c3 - c2) / (t3 - t2)
        for _ in range(2):
            for key, argv in (("status", ("status", "--json")),
                              ("migrate", ("migrate", "status", "--json")),
                              ("fleet", ("fleet", "status", "--json"))):
                k0, g0, w0 = cpu_seconds(cpid), resource.getrusage(resource.RUSAGE_CHILDREN), \
                    time.monotonic()
                for _ in range(calls // 2):
                    dt, r = s_ctl_timed(coord, *argv)
                    if r.returncode not in (0, 1):
                        raise RuntimeError("%s: rc %d: %s" % (" ".join(argv), r.returncode,
                                                              r.stderr.decode()))
                    lat[key].append(dt * 1000.0)
                    sizes[key] = len(r.stdout)
                g1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                ccpu[key] += cpu_seconds(cpid) - k0 - rate * (time.monotonic() - w0)
                gcpu[key] += g1.ru_utime + g1.ru_stime - g0.ru_utime - g0.ru_stime
        sizes["idle"] = idle_bytes
        final = json.loads(s_ctl_timed(coord, "fleet", "status", "--json")[1].stdout)
        journal = {x: os.path.getsize(coord.journal + x) for x in ("", "-wal")
                   if os.path.exists(coord.journal + x)}
        # From the journal: when the last migration entered each phase, and
        # what was written.
        db = sqlite3.connect("file:%s?mode=ro" % coord.journal, uri=True)
        all_in = {st: at / 1000.0 - u0 for st, at in db.execute(
            "SELECT state, max(at) FROM event WHERE kind = 'moved' GROUP BY state")}
        kinds = dict(db.execute("SELECT kind, count(*) FROM event GROUP BY kind"))
        db.close()
        sim.stop()
        counters = [l for l in sim.log().splitlines() if l.startswith("agent=")]
        log = coord.proc.log()
        warns = [l for l in log.splitlines() if " warn" in l.lower() or "error" in l.lower()]
        return {
            "migrations": n, "started": started, "copies_cap": copies,
            "start_call_s": took,
            "to_streaming_s": t1 - t0,
            "all_in_s": all_in, "journal_events": kinds,
            "coord_cpu_s": c1 - c0, "sim_cpu_s": s1 - s0,
            "coord_rss_before_mb": rss0 / 1024.0,
            "coord_peak_rss_mb": hwm1 / 1024.0, "coord_rss_streaming_mb": rss1 / 1024.0,
            "steady_s": t3 - t2, "steady_coord_cpu_s": c3 - c2, "steady_sim_cpu_s": s3 - s2,
            "steady_coord_cpu_pct": 100.0 * (c3 - c2) / (t3 - t2),
            "steady_sim_cpu_pct": 100.0 * (s3 - s2) / (t3 - t2),
            "steady_peak_rss_mb": hwm3 / 1024.0, "steady_rss_end_mb": rss3 / 1024.0,
            "latency_ms": {k: {"p50": pct(v, 50), "p95": pct(v, 95), "max": max(v), "all": v,
                               "coord_cpu_ms_per_call": 1000.0 * ccpu[k] / len(v),
                               "godwitctl_cpu_ms_per_call": 1000.0 * gcpu[k] / len(v)}
                           for k, v in lat.items()},
            "idle_status_ms": {"p50": pct(idle, 50), "p95": pct(idle, 95), "all": idle},
            "godwitctl_version_ms": {"p50": pct(floor, 50), "p95": pct(floor, 95),
                                     "cpu_ms_per_call": floor_cpu},
            "answer_bytes": sizes,
            "journal_bytes": journal, "journal_bytes_at_streaming": journal1,
            "final_phases": final.get("phases"), "problems": final.get("problems"),
            "sim_counters": counters,
            "coord_log_warnings": len(warns), "coord_log_sample": warns[:20],
            "loadavg_start": load0, "loadavg": os.getloadavg(),
        }
    finally:
        rig.close()


BENCH_SCHEMA = """
CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE public.customers (id bigserial PRIMARY KEY, name text, mood public.mood, doc jsonb);
CREATE TABLE public.orders (id bigserial PRIMARY KEY,
  customer_id bigint REFERENCES public.customers (id), total numeric(12,2));
CREATE INDEX orders_customer ON public.orders (customer_id);
CREATE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TRIGGER orders_touch BEFORE INSERT ON public.orders FOR EACH ROW
  EXECUTE FUNCTION public.touch();
INSERT INTO public.customers (name, mood, doc)
  SELECT 'c' || g, 'ok', jsonb_build_object('g', g) FROM generate_series(1, 100000) g;
INSERT INTO public.orders (customer_id, total) SELECT 1 + g % 100000, g
  FROM generate_series(1, 500000) g;
ALTER TABLE public.pgbench_history REPLICA IDENTITY FULL;
"""


def s_run(argv, env=None):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


# The import profile of the pipeline's second godwit run (docs/import-profile.md);
# green already runs with max_wal_size 4GB.
PIPELINE_PROFILE = ("    import_profile: {synchronous_commit: off, max_wal_size: 16GB, "
                    "checkpoint_timeout: 30m, maintenance_work_mem: 512MB, "
                    "max_parallel_maintenance_workers: 2}\n")


def s_to_streaming(coord, plan, name):
    """`migrate start plan`, then its status polled every 0.1 s until
    streaming: {state: seconds from the start when it was first seen}."""
    seen = {}
    t0 = time.monotonic()
    coord.ctl("migrate", "start", plan)
    while time.monotonic() - t0 < 3600:
        r = coord.ctl("migrate", "status", name, "--json", check_rc=False)
        if r.returncode == 0:
            state = json.loads(r.stdout)["migrations"][0]["state"]
            seen.setdefault(state, time.monotonic() - t0)
            if state == "streaming":
                return seen
        time.sleep(0.1)
    raise RuntimeError("%s did not reach streaming: %r" % (name, seen))


def s_abort(coord, name):
    """`migrate abort name`, returning once it is aborted (nothing of ours
    left on either side)."""
    coord.ctl("migrate", "abort", name)
    harness.wait_for("%s aborted" % name, lambda: json.loads(coord.ctl(
        "migrate", "status", name, "--json").stdout)["migrations"][0]["state"] ==
        "aborted", 120, interval=0.2)


def s_journal_moves(coord, name):
    """{state: time.time()} when the coordinator's journal says the
    migration first entered each state (its first: when it was created)."""
    db = sqlite3.connect("file:%s?mode=ro" % coord.journal, uri=True)
    try:
        return {st: at / 1000.0 for st, at in db.execute(
            "SELECT state, min(at) FROM event WHERE migration = ? AND kind IN "
            "('created', 'moved') GROUP BY state", (name,))}
    finally:
        db.close()


# The lines of green's agent's log (agent/pg/physical/basebackup.c) that
# split the physical path's basebackup step.
PHYSICAL_MARKS = (("copy_begin", "pg_basebackup from peer"), ("copy_end", "pg_basebackup done ("),
                  ("runs", "the standby runs ("))


def s_log_marks(path, since):
    """{mark: time.time()} of the first line of a godwit log (UTC, ms) at
    or after since holding each of PHYSICAL_MARKS' texts, and the kB
    pg_basebackup reported; a mark not found is left out."""
    out, kb = {}, None
    with open(path, errors="replace") as f:
        for line in f:
            try:
                at = datetime.datetime.strptime(line.split(" ", 1)[0], "%Y-%m-%dT%H:%M:%S.%fZ")
            except ValueError:
                continue
            at = at.replace(tzinfo=datetime.timezone.utc).timestamp()
            if at < since - 0.001:  # the log keeps milliseconds
                continue
            for key, text in PHYSICAL_MARKS:
                if key not in out and text in line:
                    out[key] = at
                    if key == "copy_end":
                        kb = int(line.split(text, 1)[1].split()[0])
    return out, kb


def s_physical_runs(rig, coord, blue, blue_agent):
    """The physical path (docs/physical.md) on the pipeline's source: the
    whole of blue's server copied by green's agent with pg_basebackup into
    a standby it starts itself (a folder and a port of its own, no initdb),
    from `migrate start` to streaming, then aborted (standby and slot
    removed); against a plain pg_basebackup with the agent's options into
    a fresh folder. In the order P G G P, each after a checkpoint on blue.
    Returns {"physical": [run, run], "plain_basebackup": [run, run]}."""
    import test_physical as tp
    pg_basebackup = os.path.join(harness.PG_BIN, "pg_basebackup")
    standby = harness.PgCluster(rig, "standby")
    rig.clusters.append(standby)  # stopped at the end if it runs
    agent = harness.Agent(rig, "standby", coord, role="target", cluster=standby,
                          extra_pg={"standby": tp.standby_yaml(standby)},
                          peers={"blue": blue}).start()
    harness.wait_for("standby's agent", lambda: coord.agent("standby")["state"] == "connected", 15)
    # The copy runs in pg_basebackup, a child of green's agent (counted
    # with it once reaped, as is the start command).
    cpu = lambda: (cluster_cpu_seconds(blue), cluster_cpu_seconds(standby),
                   cpu_seconds(blue_agent.proc.proc.pid) +
                   cpu_seconds(agent.proc.proc.pid, children=True),
                   cpu_seconds(coord.proc.proc.pid))

    def godwit(name):
        plan = rig.path("plan-%s.yaml" % name)
        with open(plan, "w") as f:
            f.write("migrations:\n  - name: %s\n    method: physical\n"
                    "    source: {agent: blue, database: shop}\n"
                    "    target: {agent: standby, database: shop}\n"
                    "    replication: {peer: blue}\n    cutover: {reverse: 'off'}\n" % name)
        blue.psql("CHECKPOINT")
        standby.running = True  # from here on the agent may have started it
        c0, u0 = cpu(), time.time()
        seen = s_to_streaming(coord, plan, name)
        used = [b - a for a, b in zip(c0, cpu())]
        if standby.psql("SELECT pg_catalog.pg_is_in_recovery()") != "t":
            raise RuntimeError("%s: the standby is not in recovery" % name)
        moves = s_journal_moves(coord, name)
        marks, kb = s_log_marks(agent.proc.log_path, u0)
        s_abort(coord, name)
        standby.running = False
        if os.path.exists(standby.data):
            raise RuntimeError("%s: the abort left %s" % (name, standby.data))
        total = seen["streaming"]
        part = lambda a, b: b - a if a is not None and b is not None else None
        return {
            "s": total,
            # start to pg_basebackup's start: the plan, the preflight, the
            # coordinator's move, the slot looked up on blue
            "prepare_s": part(u0, marks.get("copy_begin")),
            "copy_s": part(marks.get("copy_begin"), marks.get("copy_end")),
            # the start command until the standby answers and reports its state
            "start_s": part(marks.get("copy_end"), marks.get("runs")),
            # the coordinator's move to streaming, and our poll's lag
            "streaming_s": part(marks.get("runs"), u0 + total),
            "journal_basebackup_s": part(moves.get("basebackup"), moves.get("streaming")),
            "journal_s": part(u0, moves.get("streaming")),
            "copied_kb": kb,
            "cpu_blue_s": used[0], "cpu_green_s": used[1], "cpu_agents_s": used[2],
            "cpu_coordinator_s": used[3],
        }

    def plain():
        folder = os.path.join(rig.pgroot, "plain-basebackup")
        os.makedirs(folder)
        shutil.chown(folder, "postgres", "postgres")
        blue.psql("CHECKPOINT")
        b0, r0, t0 = cluster_cpu_seconds(blue), resource.getrusage(resource.RUSAGE_CHILDREN), \
            time.monotonic()
        subprocess.run(["runuser", "-u", "postgres", "--", pg_basebackup, "-D",
                        os.path.join(folder, "data"), "-S", "bench_plain", "-C", "-R", "-X",
                        "stream", "-c", "fast", "--progress", "--verbose", "--no-password",
                        "-h", "127.0.0.1", "-p", str(blue.port), "-U", "godwit_repl"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        took = time.monotonic() - t0
        r1, b1 = resource.getrusage(resource.RUSAGE_CHILDREN), cluster_cpu_seconds(blue)
        blue.psql("SELECT pg_catalog.pg_drop_replication_slot('bench_plain')")
        shutil.rmtree(folder)
        return {"s": took, "cpu_blue_s": b1 - b0,
                "cpu_tool_s": r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime}

    runs = {"physical": [], "plain_basebackup": []}
    runs["plain_basebackup"].append(plain())
    runs["physical"] += [godwit("phys1"), godwit("phys2")]
    runs["plain_basebackup"].append(plain())
    for rs in runs.values():
        for r in rs:
            for k, v in list(r.items()):
                if v is None:  # a mark missing from the log: that part unknown
                    del r[k]
    return runs


def bench_pipeline(scale, durable=False):
    """durable: both servers flush their WAL (fsync on) and green keeps
    PostgreSQL's default max_wal_size (1GB), as a production server would;
    the test clusters' fsync off and green's 4GB otherwise hide what an
    import profile saves."""
    rig = harness.Rig("bench-pipeline")
    pg = lambda name: os.path.join(harness.PG_BIN, name)
    try:
        flush = {"fsync": "on"} if durable else {}
        blue = rig.cluster("blue", extra=dict(flush, shared_buffers="256MB", max_wal_size="4GB"))
        green = rig.cluster("green", extra=dict(flush, shared_buffers="256MB",
                                                max_sync_workers_per_subscription=2,
                                                **({} if durable else {"max_wal_size": "4GB"})))
        blue.psql("CREATE DATABASE shop")
        s_run([pg("pgbench"), "-i", "-q", "-s", str(scale), "-h", "127.0.0.1", "-p",
               str(blue.port), "-U", "postgres", "shop"])
        blue.psql(BENCH_SCHEMA, db="shop")
        blue.psql("CREATE ROLE godwit_repl WITH REPLICATION LOGIN SUPERUSER")
        size = int(blue.psql("SELECT pg_catalog.pg_database_size('shop')"))
        conn = ["-h", "127.0.0.1", "-U", "postgres"]
        results = {"database_bytes": size}

        def baselines():
            """Each baseline once, into a fresh database on green: the
            seconds of each. They run before and after godwit's runs (the
            figures are the means), so a machine slower for a while weighs
            on both sides alike."""
            out = {}
            # Baseline 1: schema-only restore, then a plain subscription.
            green.psql("CREATE DATABASE plain")
            t0 = time.monotonic()
            dump = subprocess.run([pg("pg_dump"), "-s"] + conn + ["-p", str(blue.port), "shop"],
                                  check=True, stdout=subprocess.PIPE)
            subprocess.run([pg("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"] + conn +
                           ["-p", str(green.port), "-d", "plain"], input=dump.stdout, check=True,
                           stdout=subprocess.DEVNULL)
            blue.psql("CREATE PUBLICATION bench_plain FOR ALL TABLES", db="shop")
            green.psql("CREATE SUBSCRIPTION bench_plain CONNECTION 'host=127.0.0.1 port=%d "
                       "dbname=shop user=godwit_repl' PUBLICATION bench_plain" % blue.port,
                       db="plain")
            harness.wait_for("plain subscription ready", lambda: green.psql(
                "SELECT count(*) FILTER (WHERE srsubstate <> 'r') = 0 AND count(*) > 0 FROM "
                "pg_catalog.pg_subscription_rel", db="plain") == "t", 3600, interval=0.2)
            out["plain_subscription_s"] = time.monotonic() - t0
            green.psql("DROP SUBSCRIPTION bench_plain", db="plain")
            blue.psql("DROP PUBLICATION bench_plain", db="shop")
            green.psql("DROP DATABASE plain")

            # Baseline 2: directory dump and restore, 2 jobs each.
            green.psql("CREATE DATABASE dumped")
            ddir = rig.path("dump")
            shutil.rmtree(ddir, ignore_errors=True)
            t0 = time.monotonic()
            s_run([pg("pg_dump"), "-Fd", "-j2", "-f", ddir] + conn + ["-p", str(blue.port),
                                                                    "shop"])
            s_run([pg("pg_restore"), "-j2", "-d", "dumped"] + conn + ["-p", str(green.port),
                                                                    ddir])
            out["dump_restore_s"] = time.monotonic() - t0
            green.psql("DROP DATABASE dumped")

            # Baseline 3: pgcopydb (Debian's), as its docs suggest for 2 cores.
            if shutil.which("pgcopydb"):
                green.psql("CREATE DATABASE copied")
                cdir = rig.path("pgcopydb")
                shutil.rmtree(cdir, ignore_errors=True)
                env = dict(os.environ, PATH=harness.PG_BIN + ":" + os.environ.get("PATH", ""))
                uri = "host=127.0.0.1 port=%d user=postgres dbname=%s"
                t0 = time.monotonic()
                s_run(["pgcopydb", "clone", "--source", uri % (blue.port, "shop"), "--target",
                       uri % (green.port, "copied"), "--dir", cdir, "--table-jobs", "2",
                       "--index-jobs", "2", "--split-tables-larger-than", "50MB"], env=env)
                out["pgcopydb_s"] = time.monotonic() - t0
                green.psql("DROP DATABASE copied")
            return out

        base_runs = [baselines()]

        # godwit without and with an import profile on green, in the order
        # A B B A (what runs later finds a warmer cache and an older WAL), each
        # into a fresh database, with the one before dropped and a checkpoint
        # first (each migration is aborted after it, which drops its slot).
        coord = harness.Coordinator(rig, ["blue", "green", "standby"],
                                    options={"log_level": "warn"}).start()
        agents = [harness.Agent(rig, "blue", coord, role="source", cluster=blue).start(),
                  harness.Agent(rig, "green", coord, role="target", cluster=green,
                                peers={"blue": blue}).start()]
        for n in ("blue", "green"):
            harness.wait_for(n, lambda: coord.agent(n)["state"] == "connected", 15)
        # Where the time goes: CPU seconds of each server and of the agents
        # (the copy runs in green's) during each run, against its wall time.
        cpu = lambda: (cluster_cpu_seconds(blue), cluster_cpu_seconds(green),
                       sum(cpu_seconds(a.proc.proc.pid) for a in agents),
                       cpu_seconds(coord.proc.proc.pid))
        runs = {}
        for key, name, profile in (("warm-up", "shop0", ""),
                                   ("godwit", "shop", ""),
                                   ("godwit_profile", "shop2", PIPELINE_PROFILE),
                                   ("godwit_profile", "shop3", PIPELINE_PROFILE),
                                   ("godwit", "shop4", "")):
            green.psql("CHECKPOINT")
            green.psql("CREATE DATABASE %s" % name)
            plan = rig.path("plan-%s.yaml" % name)
            with open(plan, "w") as f:
                f.write("migrations:\n  - name: %s\n    source: {agent: blue, database: shop}\n"
                        "    target: {agent: green, database: %s}\n"
                        "    replication: {peer: blue}\n%s" % (name, name, profile))
            c0 = cpu()
            seen = s_to_streaming(coord, plan, name)
            total = seen["streaming"]
            used = [b - a for a, b in zip(c0, cpu())]
            # publish and tune last less than a poll: the schema ends at the
            # first of the states after it that was seen
            schema = min(seen.get(st, total) for st in ("publish", "tune", "copy", "catchup"))
            runs.setdefault(key, []).append({
                "s": total,
                "schema_s": schema,
                "copy_s": seen.get("postdata", total) - schema,
                "postdata_s": total - seen.get("postdata", total),
                "cpu_blue_s": used[0], "cpu_green_s": used[1], "cpu_agents_s": used[2],
                "cpu_coordinator_s": used[3],
            })
            s_abort(coord, name)
            green.psql("DROP DATABASE %s WITH (FORCE)" % name)
        runs.pop("warm-up")  # the first load into green is slower (11.9 s against 9.5 s)
        base_runs.append(baselines())
        for k in base_runs[0]:
            results[k] = statistics.mean(b[k] for b in base_runs)
            results[k[:-2] + "_runs_s"] = [b[k] for b in base_runs]
        # The physical path on the same source, after the logical runs:
        # blue's data as they found it (the baselines' databases are on
        # green; each logical run's slot and publication are gone).
        runs.update(s_physical_runs(rig, coord, blue, agents[0]))
        for key, rs in runs.items():  # the mean of its two runs
            for part in rs[0]:
                if all(part in r for r in rs):  # a part the log did not show stays out
                    results[key + "_" + part] = statistics.mean(r[part] for r in rs)
            results[key + "_runs_s"] = [r["s"] for r in rs]
        results["server_databases"], results["server_bytes"] = (int(x) for x in blue.psql(
            "SELECT count(*), sum(pg_catalog.pg_database_size(oid)) FROM "
            "pg_catalog.pg_database").split("|"))
        results["durable"] = durable
        return results
    finally:
        rig.close()


def bench_mariadb(tables, rows):
    """The MariaDB copy (docs/mariadb.md "The copy"): sysbench's tables
    (--my-tables of --my-rows rows) in database shop on blue, moved to
    green. godwit: `migrate start` to streaming (the copy in one snapshot
    with two readers, then replication from its GTID position), then
    aborted (the database dropped); two runs after a warm-up. Baselines
    into a fresh shop on green, each before and after godwit's runs (the
    mean of the two): `mariadb-dump --single-transaction --gtid | mariadb`
    and mydumper/myloader with two threads each (both floors: neither
    streams afterwards)."""
    import mariadb
    rig = harness.Rig("bench-mariadb")
    try:
        opts = {"innodb-buffer-pool-size": "512M", "max-allowed-packet": "64M"}
        blue = mariadb.server(rig, "blue", server_id=1, options=opts)
        green = mariadb.server(rig, "green", server_id=2, options=opts)
        for db in (blue, green):
            db.sql("CREATE USER 'bench'@'127.0.0.1' IDENTIFIED BY 'bench';"
                   "GRANT ALL PRIVILEGES ON *.* TO 'bench'@'127.0.0.1'")
        blue.sql("CREATE DATABASE shop")
        s_run(["sysbench", "oltp_write_only", "--db-driver=mysql", "--mysql-socket=" + blue.sock,
               "--mysql-user=root", "--mysql-db=shop", "--tables=%d" % tables,
               "--table-size=%d" % rows, "--threads=2", "prepare"])
        size = int(blue.sql("SELECT SUM(DATA_LENGTH + INDEX_LENGTH) FROM information_schema.TABLES "
                            "WHERE TABLE_SCHEMA = 'shop'"))
        tcp = lambda db: ["--host=127.0.0.1", "--port=%d" % db.port, "--user=bench",
                          "--password=bench"]
        results = {"tables": tables, "rows": rows, "database_bytes": size}

        def baselines():
            out = {}
            t0 = time.monotonic()
            dump = subprocess.Popen(["mariadb-dump", "--no-defaults"] + tcp(blue) + [
                "--single-transaction", "--gtid", "--master-data=2", "--databases", "shop"],
                stdout=subprocess.PIPE)
            subprocess.run(["mariadb", "--no-defaults"] + tcp(green), stdin=dump.stdout,
                           check=True)
            dump.stdout.close()
            if dump.wait() != 0:
                raise RuntimeError("mariadb-dump exited %d" % dump.returncode)
            out["dump_s"] = time.monotonic() - t0
            green.sql("DROP DATABASE shop")
            ddir = rig.path("mydumper")
            shutil.rmtree(ddir, ignore_errors=True)
            t0 = time.monotonic()
            s_run(["mydumper"] + tcp(blue) + ["--database=shop", "--threads=2",
                                               "--trx-consistency-only", "--outputdir=" + ddir])
            s_run(["myloader"] + tcp(green) + ["--directory=" + ddir, "--threads=2"])
            out["mydumper_s"] = time.monotonic() - t0
            green.sql("DROP DATABASE shop")
            return out

        base_runs = [baselines()]
        pwfile = rig.path("bench.pass")
        with open(pwfile, "w") as f:
            f.write("bench\n")
        os.chmod(pwfile, 0o600)
        coord = harness.Coordinator(rig, ["blue", "green"], options={"log_level": "warn"}).start()
        mariadb.agent(rig, "blue", coord, blue, "source")
        mariadb.agent(rig, "green", coord, green, "target", peers={"blue": (blue, "bench", pwfile)})
        for n in ("blue", "green"):
            harness.wait_for(n, lambda: (coord.agent(n).get("mariadb") or {}).get("reachable"), 15)
        plan = rig.path("plan.yaml")
        with open(plan, "w") as f:
            f.write("migrations:\n  - name: shop\n    engine: mariadb\n"
                    "    source: {agent: blue, database: shop}\n"
                    "    target: {agent: green, database: shop}\n"
                    "    replication: {peer: blue}\n    options: {parallelism: 2}\n")
        runs = []
        for _ in range(3):  # a warm-up, then two
            runs.append(s_to_streaming(coord, plan, "shop")["streaming"])
            s_abort(coord, "shop")
        results["godwit_runs_s"] = runs[1:]
        results["godwit_s"] = statistics.mean(runs[1:])
        base_runs.append(baselines())
        for k in base_runs[0]:
            results[k] = statistics.mean(b[k] for b in base_runs)
            results[k[:-2] + "_runs_s"] = [b[k] for b in base_runs]
        return results
    finally:
        rig.close()


RATE = 400  # the cutover bench's pgbench rate, tx/s (4 clients)


def pct(values, p):
    v = sorted(values)
    if not v:
        return 0.0
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


class Session:
    """A psql session kept open (an expert's script holds its connections
    before it starts): run() sends one batch (statements joined with \\;
    travel as one message, one round trip) and returns its output lines."""

    def __init__(self, port, user, db, probe="SELECT 1;"):
        self.proc = subprocess.Popen(
            ["stdbuf", "-o0", os.path.join(harness.PG_BIN, "psql"), "-X", "-A", "-t", "-q",
             "-h", "127.0.0.1", "-p", str(port), "-U", user, "-d", db],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=0)
        self.run(probe)

    def run(self, sql):
        self.proc.stdin.write(sql.encode() + b"\n\\echo __end__\n")
        self.proc.stdin.flush()
        lines = []
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("psql session ended: %r" % lines)
            line = line.decode().rstrip("\n")
            if line == "__end__":
                break
            lines.append(line)
        if any("ERROR" in x or "FATAL" in x for x in lines):
            raise RuntimeError("expert script: %s: %s" % (sql[:200], lines))
        return lines

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(10)


# The expert's fence, final LSN, wait for the follower and sequences, in
# one message to the side traffic is on: refuse the application's logins
# (committed first, or a session could log in again before the end), end
# its sessions (PgBouncer is paused: none is in a transaction), take the WAL
# insert position in a transaction that takes an id and commits
# synchronously (so the walsender can send past it at once: the write
# position may lie before a commit the application already saw, and WAL
# waiting for a flush stays unsent), wait on the server until every logical
# slot of the database confirmed it, read every sequence.
EXPERT_FREEZE = (
    "BEGIN \\; ALTER ROLE app NOLOGIN \\; COMMIT \\; "
    "BEGIN \\; SELECT count(pg_catalog.pg_terminate_backend(pid)) AS t FROM pg_catalog.pg_stat_activity"
    " WHERE usename = 'app' \\; "
    "SELECT pg_catalog.set_config('expert.final', pg_catalog.pg_current_wal_insert_lsn()::text,"
    " false), pg_catalog.txid_current() \\; COMMIT \\; "
    "DO $$ DECLARE f pg_lsn := pg_catalog.current_setting('expert.final')::pg_lsn; "
    "t timestamptz := pg_catalog.clock_timestamp(); BEGIN "
    "WHILE (SELECT min(confirmed_flush_lsn) FROM pg_catalog.pg_replication_slots"
    " WHERE database = pg_catalog.current_database() AND slot_type = 'logical' AND active) < f"
    " LOOP IF pg_catalog.clock_timestamp() - t > interval '10 s' THEN"
    " RAISE EXCEPTION 'the follower did not confirm'; END IF;"
    " PERFORM pg_catalog.pg_sleep(0.0005); END LOOP; END $$ \\; "
    "SELECT 'seq|' || pg_catalog.format('%I.%I', schemaname, sequencename) || '|' ||"
    " coalesce(last_value, start_value) || '|' || (last_value IS NOT NULL)"
    " FROM pg_catalog.pg_sequences;")


def expert_round(admin, cur, oth):
    """One write pause of a hand-tuned expert script on kept sessions:
    PgBouncer PAUSE; the freeze batch on the side traffic is on; every
    sequence set on the other side in one batch; RELOAD (PgBouncer reads
    its switched [databases]) and RESUME. The bench does not move traffic
    (the migration's direction stays godwit's): the config names the same
    side, and the side's fence is lifted while the sequences are set, as
    the other side would take the logins after a real switch; each step's
    trips and server work are the real script's (PAUSE closes PgBouncer's
    server connections, so the application's first transactions after
    RESUME log in to fresh backends, as after a real switch)."""
    import threading
    marks = [time.time()]
    admin.run("PAUSE shop;")
    marks.append(time.time())
    out = cur.run(EXPERT_FREEZE)
    marks.append(time.time())
    setvals = []
    for line in out:
        if line.startswith("seq|"):
            _, name, value, called = line.split("|")
            setvals.append("SELECT pg_catalog.setval('%s', %s, %s)" % (
                name.replace("'", "''"), value, "true" if called == "t" else "false"))
    lift = threading.Thread(target=cur.run, args=("ALTER ROLE app LOGIN;",))
    lift.start()
    if setvals:
        oth.run(" \\; ".join(setvals) + ";")
    lift.join()
    marks.append(time.time())
    admin.run("RELOAD;")
    admin.run("RESUME shop;")
    marks.append(time.time())
    return [round((b - a) * 1000.0, 1) for a, b in zip(marks, marks[1:])]


# Where the coordinator is: "apart" (a site of its own, every agent across
# the WAN from it), or "two sites" (with the proxy and blue; green across
# the WAN). The replication between blue and green crosses the WAN in both.
PLACEMENTS = {"apart": (), "two sites": ("blue", "px")}


def bench_cutover(n, rtt_ms, placement="apart"):
    """n real cutovers back and forth (cutover, rollback, cutover, ...)
    with reverse replication, at rtt_ms round trip, the coordinator placed
    as PLACEMENTS says."""
    import re
    import test_cutover as tc
    near = PLACEMENTS[placement]
    rig = harness.Rig("bench-cutover-%d%s" % (rtt_ms, "-2" if near else ""))
    try:
        seconds = 40 + n * 10
        txlog = rig.path("txlog")
        blue, green, coord, bouncer, bench = tc.ready(
            rig, bench_seconds=seconds, wan_ms=rtt_ms / 2.0 if rtt_ms else None,
            bench_extra=["-R", str(RATE), "-l", "--log-prefix", txlog], near=near)
        # The expert's kept sessions, each across the same WAN as godwit's
        # coordinator's commands: PgBouncer's console, blue, green.
        def reach(port, agent):
            if not rtt_ms or agent in near:
                return port
            return harness.Relay(rig, port, delay_ms=rtt_ms / 2.0).port
        admin = Session(reach(bouncer.port, "px"), "postgres", "pgbouncer", probe="SHOW VERSION;")
        sides = {"blue": Session(reach(blue.port, "blue"), "postgres", "shop"),
                 "green": Session(reach(green.port, "green"), "postgres", "shop")}
        windows, quiet, godwit, expert, expert_ms, timelines = [], [], [], [], [], []
        for i in range(n):
            what = "cutover" if i % 2 == 0 else "rollback"
            t0 = time.time()
            r = tc.switch(coord, what, "--json")
            t1 = time.time()
            rep = json.loads(r.stdout or b"{}")
            if r.returncode != 0 or rep.get("state") != "done" or rep.get("follow") != "streaming":
                raise RuntimeError("%s %d: %s %s" % (what, i, r.stdout.decode()[-2000:],
                                                     r.stderr.decode()))
            windows.append((t0, t1))
            godwit.append(rep["write_pause_ms"])
            steps = [(t["step"], round(t["ms"], 1), round(t["at_ms"], 1))
                     for t in rep.get("timeline", [])]
            timelines.append(steps)
            for t in rep.get("timeline", []):
                if t["step"] in ("pause", "freeze", "sequences", "switch", "resume", "switch and resume"):
                    print("    %s: %s" % (t["step"], [
                        (a.get("agent"), [(x["name"], round(x["ms"], 1)) for x in a.get("steps") or []])
                        for a in t.get("agents") or []]), file=sys.stderr)
            print("  %d ms round trip: %s %d: write pause %.1f ms (%.1f s in all): %s" % (
                rtt_ms, what, i + 1, rep["write_pause_ms"], t1 - t0,
                " ".join("%s %.1f" % x[:2] for x in steps)), file=sys.stderr, flush=True)
            # The same length of time with no cutover, as the baseline.
            time.sleep(1.0)
            quiet.append((time.time(), time.time() + (t1 - t0)))
            time.sleep(max(0.5, t1 - t0) + 0.5)
            # The expert's write pause, on the side traffic is on now.
            cur, oth = ("green", "blue") if i % 2 == 0 else ("blue", "green")
            # Tuned as godwit is: the follower's apply commits synchronously
            # during the round, so its confirmation comes at once.
            subs = sides[oth].run("SELECT pg_catalog.quote_ident(subname) FROM"
                                  " pg_catalog.pg_subscription;")
            for sub in subs:
                sides[oth].run("ALTER SUBSCRIPTION %s SET (synchronous_commit = on);" % sub)
            time.sleep(0.5)
            e0 = time.time()
            esteps = expert_round(admin, sides[cur], sides[oth])
            e1 = time.time()
            expert.append((e0, e1))
            expert_ms.append((e1 - e0) * 1000.0)
            for sub in subs:
                sides[oth].run("ALTER SUBSCRIPTION %s SET (synchronous_commit = off);" % sub)
            print("  %d ms round trip: expert script %d: %.1f ms (pause, freeze, sequences, "
                  "reload and resume: %s)" % (rtt_ms, i + 1, (e1 - e0) * 1000, esteps),
                  file=sys.stderr, flush=True)
            time.sleep(1.0)
        for x in [admin] + list(sides.values()):
            x.close()
        if time.monotonic() - bench.started > seconds - 2:
            raise RuntimeError("pgbench ended before the last cutover: raise its duration")
        rc = bench.wait(seconds + 60)
        out = open(bench.log_path).read()
        failed = re.search(r"number of failed transactions: (\d+)", out)
        done = []
        for path in glob.glob(txlog + ".*"):
            with open(path) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 6 and parts[2].isdigit():
                        done.append(int(parts[4]) + int(parts[5]) / 1e6)
        done.sort()

        def longest_gaps(spans):
            out = []
            for t0, t1 in spans:
                inside = [t for t in done if t0 - 0.5 <= t <= t1 + 0.5]
                out.append(max((b - a for a, b in zip(inside, inside[1:])), default=0) * 1000.0)
            return out
        gaps, base, egaps = longest_gaps(windows), longest_gaps(quiet), longest_gaps(expert)
        # Lost: a row some side committed that the side traffic ended on
        # lacks, once the follower has caught up.
        primary, follower = (green, blue) if n % 2 else (blue, green)
        harness.wait_for("the follower caught up", lambda: not (
            set(tc.history(primary)) - set(tc.history(follower))), 60, interval=0.5)
        hp, hf = set(tc.history(primary)), set(tc.history(follower))
        lost = len((hp | hf) - hp)
        return {"rtt_ms": rtt_ms, "placement": placement, "cutovers": n, "pgbench_rc": rc,
                "failed": int(failed.group(1)) if failed else -1, "lost_rows": lost,
                "rows": len(hp),
                "godwit_ms": {"p50": pct(godwit, 50), "p99": pct(godwit, 99), "max": max(godwit),
                              "all": godwit, "timelines": timelines,
                              # the two directions apart: cutovers, then rollbacks
                              "forward": {"p50": pct(godwit[0::2], 50), "max": max(godwit[0::2])},
                              "back": {"p50": pct(godwit[1::2], 50),
                                       "max": max(godwit[1::2] or [0])}},
                "app_gap_ms": {"p50": pct(gaps, 50), "p99": pct(gaps, 99), "max": max(gaps),
                               "all": gaps},
                "baseline_gap_ms": {"p50": pct(base, 50), "p99": pct(base, 99), "max": max(base),
                                    "all": base},
                "expert_gap_ms": {"p50": pct(egaps, 50), "p99": pct(egaps, 99), "max": max(egaps),
                                  "all": egaps},
                "expert_script_ms": {"p50": pct(expert_ms, 50), "p99": pct(expert_ms, 99),
                                     "max": max(expert_ms), "all": expert_ms}}
    finally:
        rig.close()


class MySession:
    """A mariadb client session kept open over a server's socket (an
    expert's script holds its connections before it starts), its statements
    not binary-logged (as godwit's fence's are not: the final position is
    the application's last transaction). run() sends one batch: statements
    joined with ; travel as one multi-statement query (one round trip), the
    marker selected last in it, so no extra trip says the batch is done."""

    def __init__(self, db):
        self.name = db.name
        self.proc = subprocess.Popen(
            ["mariadb", "--no-defaults", "--socket=" + db.sock, "-uroot", "-N", "-B",
             "--unbuffered", "--force"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=0)
        self.proc.stdin.write(b"DELIMITER //\n")
        self.run("SET SESSION sql_log_bin = 0")

    def run(self, sql):
        self.proc.stdin.write(sql.encode() + b"; SELECT '__end__'//\n")
        self.proc.stdin.flush()
        lines = []
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("mariadb session on %s ended: %r" % (self.name, lines))
            line = line.decode().rstrip("\n")
            if line.startswith("ERROR"):
                raise RuntimeError("expert script on %s: %s: %s" % (self.name, sql[:200], line))
            if line == "__end__":
                return lines
            lines.append(line)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(10)


def hap_cmd(sock, line):
    """One HAProxy runtime API command (one per connection, as godwit's
    driver sends them): its answer."""
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(5)
        s.connect(sock)
        s.sendall(line.encode() + b"\n")
        out = []
        while True:
            b = s.recv(65536)
            if not b:
                return b"".join(out).decode()
            out.append(b)
    finally:
        s.close()


def hap_frontend(sock, frontend="pg"):
    """The frontend's (session limit, current sessions) from show stat."""
    hdr = None
    for line in hap_cmd(sock, "show stat").splitlines():
        if line.startswith("# "):
            hdr = line[2:].split(",")
            continue
        f = line.split(",")
        if hdr and len(f) >= len(hdr) - 1 and f[0] == frontend and f[1] == "FRONTEND":
            return f[hdr.index("slim")], int(f[hdr.index("scur")] or 0)
    raise RuntimeError("HAProxy's show stat has no frontend %s" % frontend)


# The expert's HAProxy polls (the driver's is 20 ms), and its bounds.
EXPERT_POLL_S = 0.002
EXPERT_ACCOUNTS = "'app'@'127.0.0.1', 'ops'@'127.0.0.1'"


def expert_round_my(proxy, cur, oth):
    """One write pause of a hand-tuned expert script on kept sessions (the
    MariaDB cutover's steps, fewest round trips): HAProxy paused (`set
    maxconn frontend pg 0`, then show stat polled every 2 ms until the
    frontend has no session); one batch on the side traffic is on (accounts
    locked, their sessions killed, the final position); on the other side
    MASTER_GTID_WAIT for it; then, as the bench does not move traffic (the
    migration's direction stays godwit's), the accounts unlocked on the same
    side, as the other side would take the logins after a real switch, and
    HAProxy resumed as godwit's driver resumes it (kill -USR2 to its master,
    a hitless reload; show stat polled until the frontend accepts). Returns
    each step's ms: pause, fence, wait, unlock, resume."""
    marks = [time.time()]
    out = hap_cmd(proxy.sock, "set maxconn frontend pg 0").strip()
    if out:
        raise RuntimeError("HAProxy refused the pause: %s" % out)
    deadline = time.time() + 5
    while hap_frontend(proxy.sock)[1] > 0:
        if time.time() > deadline:
            raise RuntimeError("expert script: sessions still open after 5 s")
        time.sleep(EXPERT_POLL_S)
    marks.append(time.time())
    out = cur.run("ALTER USER %s ACCOUNT LOCK; KILL CONNECTION USER 'app'@'127.0.0.1'; "
                  "KILL CONNECTION USER 'ops'@'127.0.0.1'; SELECT @@gtid_binlog_pos" %
                  EXPERT_ACCOUNTS)
    pos = out[-1] if out else ""
    marks.append(time.time())
    got = oth.run("SELECT MASTER_GTID_WAIT('%s', 10)" % pos)
    if got != ["0"]:
        raise RuntimeError("expert script: %s did not execute %s: %s" % (oth.name, pos, got))
    marks.append(time.time())
    cur.run("ALTER USER %s ACCOUNT UNLOCK" % EXPERT_ACCOUNTS)
    marks.append(time.time())
    os.kill(proxy.proc.proc.pid, signal.SIGUSR2)
    deadline = time.time() + 10
    while True:
        try:
            if hap_frontend(proxy.sock)[0] != "0":
                break
        except (OSError, RuntimeError):
            pass  # the socket between the old worker and the new one
        if time.time() > deadline:
            raise RuntimeError("expert script: HAProxy's frontend still held after the reload")
        time.sleep(EXPERT_POLL_S)
    marks.append(time.time())
    return [round((b - a) * 1000.0, 1) for a, b in zip(marks, marks[1:])]


def bench_mariadb_cutover(n):
    """n MariaDB cutovers back and forth (cutover, rollback, ...) through
    HAProxy under sysbench (tests/integration/test_mariadb_cutover.py's
    rig and application), with an expert script's round after each."""
    import test_mariadb_cutover as tmc
    from test_migrate import in_state
    from test_verify_load import run_verify
    rig = harness.Rig("bench-mariadb-cutover")
    try:
        blue, green, coord, proxy, plan = tmc.setup(rig)
        dbs = {"blue": blue, "green": green}
        r = coord.ctl("migrate", "start", plan, check_rc=False)
        if r.returncode != 0:
            raise RuntimeError("migrate start: %s %s" % (r.stdout.decode(), r.stderr.decode()))
        harness.wait_for("streaming", lambda: in_state(coord, "streaming"), 120, interval=0.3)
        v = run_verify(coord)
        if v["state"] != "equal":
            raise RuntimeError("verify: %s" % json.dumps(v))
        seconds = 30 + 12 * n
        app = tmc.App(rig, proxy, seconds, name="sysbench-bench")
        app_started = time.monotonic()
        sides = {k: MySession(db) for k, db in dbs.items()}
        time.sleep(3)
        windows, quiet, godwit, expert, expert_ms, timelines, esteps_all = [], [], [], [], [], [], []
        for i in range(n):
            what = "cutover" if i % 2 == 0 else "rollback"
            t0 = time.time()
            r = coord.ctl(what, "shop", "--json", check_rc=False)
            t1 = time.time()
            rep = json.loads(r.stdout or b"{}")
            if r.returncode != 0 or rep.get("state") != "done" or rep.get("follow") != "streaming":
                raise RuntimeError("%s %d: rc %d %s %s" % (what, i, r.returncode,
                                                           r.stdout.decode()[-3000:],
                                                           r.stderr.decode()[-1000:]))
            windows.append((t0, t1))
            godwit.append(rep["write_pause_ms"])
            steps = [(t["step"], round(t["ms"], 1), round(t["at_ms"], 1))
                     for t in rep.get("timeline", []) if t.get("ms") is not None]
            timelines.append(steps)
            for t in rep.get("timeline", []):
                if t["step"] in ("pause", "freeze", "promote", "switch", "resume",
                                 "switch and resume"):
                    print("    %s: %s" % (t["step"], [
                        (a.get("agent"), [(x["name"], round(x["ms"], 1)) for x in a.get("steps") or []])
                        for a in t.get("agents") or []]), file=sys.stderr)
            print("  mariadb %s %d: write pause %.1f ms (%.1f s in all): %s" % (
                what, i + 1, rep["write_pause_ms"], t1 - t0,
                " ".join("%s %.1f" % x[:2] for x in steps)), file=sys.stderr, flush=True)
            # The same length of time with no cutover, as the baseline.
            time.sleep(1.0)
            quiet.append((time.time(), time.time() + (t1 - t0)))
            time.sleep(max(0.5, t1 - t0) + 0.5)
            # The expert's write pause, on the side traffic is on now.
            cur, oth = ("green", "blue") if i % 2 == 0 else ("blue", "green")
            e0 = time.time()
            esteps = expert_round_my(proxy, sides[cur], sides[oth])
            e1 = time.time()
            expert.append((e0, e1))
            expert_ms.append((e1 - e0) * 1000.0)
            esteps_all.append(esteps)
            print("  mariadb expert script %d: %.1f ms (pause, fence, wait, unlock, resume: %s)" % (
                i + 1, (e1 - e0) * 1000, esteps), file=sys.stderr, flush=True)
            time.sleep(1.0)
        for s in sides.values():
            s.close()
        if time.monotonic() - app_started > seconds - 2:
            raise RuntimeError("sysbench ended before the last cutover: raise its duration")
        rc, events, out = app.wait()
        failed = tmc.ignored(out)
        if rc != 0 or "FATAL" in out or failed != 0:
            raise RuntimeError("the application: rc %d, %d ignored errors:\n%s" % (
                rc, failed, out[-3000:]))
        primary, follower = (green, blue) if n % 2 else (blue, green)
        pos = primary.sql("SELECT @@gtid_binlog_pos")
        if follower.sql("SELECT MASTER_GTID_WAIT('%s', 60)" % pos) != "0":
            raise RuntimeError("%s did not execute %s's position %s" % (
                follower.name, primary.name, pos))
        done = [float(x) for x in primary.sql(
            "SELECT UNIX_TIMESTAMP(placed) FROM shop.orders WHERE customer LIKE 'sb%' "
            "ORDER BY placed").split()]

        def longest_gaps(spans):
            res = []
            for a0, a1 in spans:
                inside = [t for t in done if a0 - 0.5 <= t <= a1 + 0.5]
                res.append(max((b - a for a, b in zip(inside, inside[1:])), default=0) * 1000.0)
            return res
        gaps, base, egaps = longest_gaps(windows), longest_gaps(quiet), longest_gaps(expert)
        rows_p, rows_f = tmc.committed(primary), tmc.committed(follower)
        stats = lambda v: {"p50": pct(v, 50), "p99": pct(v, 99), "max": max(v), "all": v}
        return {"cutovers": n, "app_seconds": seconds, "sysbench_rc": rc,
                "transactions": events, "failed": failed, "lost_rows": events - rows_p,
                "rows": rows_p, "rows_follower": rows_f, "final_primary": primary.name,
                "godwit_ms": dict(stats(godwit), timelines=timelines,
                                  forward={"p50": pct(godwit[0::2], 50), "max": max(godwit[0::2])},
                                  back={"p50": pct(godwit[1::2], 50),
                                        "max": max(godwit[1::2] or [0])}),
                "app_gap_ms": stats(gaps), "baseline_gap_ms": stats(base),
                "expert_gap_ms": stats(egaps),
                "expert_script_ms": dict(stats(expert_ms), steps=esteps_all)}
    finally:
        rig.close()


def bench_verify(scale, runs):
    """Verify throughput, quiet and under the hostile workload."""
    import test_migrate as tm
    import workload
    rig = harness.Rig("bench-verify")
    try:
        tables = "    tables: [%s]\n" % ", ".join(workload.TABLES)
        blue, green, coord, plan = tm.setup(rig, options=tables)
        workload.create(blue, "shop", harness.PG_BIN, scale=scale)
        if coord.ctl("migrate", "start", plan).returncode != 0:
            raise RuntimeError("migrate start failed")
        harness.wait_for("streaming", lambda: tm.in_state(coord, "streaming"), 1800, interval=1)

        def one():
            before = (tm.mstatus(coord) or {}).get("verify")
            since = before["started_at_ms"] if before else None
            r = coord.ctl("migrate", "verify", "shop", "--no-wait", check_rc=False)
            if r.returncode != 0:
                raise RuntimeError("verify: %s" % r.stderr.decode())

            def ended():
                v = (tm.mstatus(coord) or {}).get("verify")
                return v if v and v["started_at_ms"] != since and v["state"] != "running" else None
            v = harness.wait_for("verify", ended, 1800, interval=0.5)
            rows = sum(t.get("source_rows", 0) for t in v["tables"])
            secs = (v["finished_at_ms"] - v["started_at_ms"]) / 1000.0
            return {"state": v["state"], "rows": rows, "seconds": secs,
                    "rows_per_sec": rows / secs if secs else 0,
                    "changes": sum(t.get("window", {}).get("changes", 0) for t in v["tables"]),
                    "slot_ms": max(t.get("window", {}).get("slot_ms", 0) for t in v["tables"]),
                    "not_equal": [t["table"] for t in v["tables"] if t["outcome"] != "equal"]}

        harness.wait_for("caught up", lambda: (tm.mstatus(coord) or {}).get("lag_bytes") is not None
                         and tm.mstatus(coord)["lag_bytes"] < 1 << 20, 120, interval=1)
        quiet = [one() for _ in range(runs)]
        load = workload.start(rig, blue, "shop")
        time.sleep(5)
        c0, t0 = workload.commits(blue, "shop"), time.monotonic()
        busy = [one() for _ in range(runs)]
        tps = (workload.commits(blue, "shop") - c0) / (time.monotonic() - t0)
        if not load.alive():
            raise RuntimeError("the workload stopped: %s" % load.log()[-2000:])
        q = sum(r["rows_per_sec"] for r in quiet) / len(quiet)
        b = sum(r["rows_per_sec"] for r in busy) / len(busy)
        return {"scale": scale, "runs": runs, "quiet": quiet, "load": busy,
                "quiet_rows_per_sec": q, "load_rows_per_sec": b, "ratio": b / q if q else 0,
                "load_tps": tps}
    finally:
        rig.close()


# The group bench: every database its own PgBouncer entry and proxy, so the
# servers carry a slot, a WAL sender and an apply worker per database (and,
# after the real cutover, the same the other way for reverse replication).
GROUP_PG = {"max_connections": 400, "max_replication_slots": 150, "max_wal_senders": 150,
            "max_worker_processes": 150, "max_logical_replication_workers": 130,
            "max_sync_workers_per_subscription": 2}
# Each database's insert rate, tx/s (one pgbench client per database), by
# default: every WAL sender decodes all of the server's WAL, so with a slot
# per database the decoding grows as databases x total rate (at 50
# databases x 4 tx/s this 2-core machine's load average passed 40 and the
# cutover's connections timed out).
GROUP_RATE = 1
GROUP_ROWS = 1000   # each database's table at the start
GROUP_STEPS = ("pause", "freeze", "sequences", "switch", "unfreeze", "resume",
               "switch and resume")


def s_psql_script(cluster, sql, db="postgres"):
    """Statements one by one (psql reading a script: CREATE DATABASE may not
    share a message with others)."""
    subprocess.run([os.path.join(harness.PG_BIN, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                    "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", "-d", db],
                   input=sql.encode(), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=300)


def s_quiet_agent(agent, level="info"):
    with open(agent.config) as f:
        text = f.read().replace("log_level: debug", "log_level: %s" % level)
    with open(agent.config, "w") as f:
        f.write(text)
    return agent


def s_group_load(rig, port, role_of, script, seconds, tag, rate):
    """One pgbench per database through PgBouncer as its application role:
    one client, rate inserts a second, for seconds."""
    pgbench = os.path.join(harness.PG_BIN, "pgbench")
    return {db: rig.spawn("pgbench-%s-%s" % (tag, db), [
        pgbench, "-n", "-c", "1", "-R", str(rate), "-T", str(int(seconds)), "-h",
        "127.0.0.1", "-p", str(port), "-U", r, "-f", script, db]) for db, r in role_of.items()}


def s_group_load_end(benches, timeout):
    """Waits for every pgbench; {failed, processed, aborted, rc_nonzero,
    per_db_processed}."""
    import re
    out = {"failed": 0, "processed": 0, "aborted": 0, "rc_nonzero": 0, "per_db": {}}
    deadline = time.monotonic() + timeout
    for db, b in benches.items():
        rc = b.wait(max(1, deadline - time.monotonic()))
        text = open(b.log_path).read()
        failed = re.search(r"number of failed transactions: (\d+)", text)
        done = re.search(r"actually processed: (\d+)", text)
        out["failed"] += int(failed.group(1)) if failed else 0
        out["processed"] += int(done.group(1)) if done else 0
        out["per_db"][db] = int(done.group(1)) if done else 0
        out["aborted"] += 1 if ("aborted" in text or not done) else 0
        out["rc_nonzero"] += 1 if rc != 0 else 0
    return out


def s_group_steps(rep):
    """One cutover's answer as {members, pause_ms, steps: {step: the longest
    member's ms}, starts_spread_ms}; a single cutover is a group of one."""
    members = rep.get("members") or [rep]
    steps, starts = {}, []
    for m in members:
        for t in m.get("timeline") or []:
            if t.get("ms") is not None:
                steps[t["step"]] = max(steps.get(t["step"], 0.0), t["ms"])
            if t["step"] == "pause" and t.get("at_ms") is not None:
                starts.append(t["at_ms"])
    # Inside the pause's steps: each agent's own parts (the median and the
    # longest over the members), e.g. green's wait for the final position.
    parts = {}
    for m in members:
        for t in m.get("timeline") or []:
            if t["step"] not in ("pause", "freeze", "sequences", "switch", "resume",
                                 "switch and resume"):
                continue
            for a in t.get("agents") or []:
                for x in a.get("steps") or []:
                    key = "%s: %s: %s" % (t["step"], a.get("agent"), x["name"])
                    parts.setdefault(key, []).append(x["ms"])
    parts = {k: [round(statistics.median(v), 1), round(max(v), 1)] for k, v in parts.items()}
    return {"members": len(members), "pause_ms": rep.get("write_pause_ms"),
            "member_pauses_ms": [m.get("write_pause_ms") for m in members],
            "steps": steps, "agent_parts_ms": parts,
            "pause_sent_spread_ms": max(starts) - min(starts) if starts else 0}


def s_group_failure(r, rep):
    """What a cutover that did not end done said: its state, each member's
    reason and step, the tail of its output."""
    members = rep.get("members") or [rep]
    # The members that failed themselves (the others' reasons name the one
    # that aborted the group).
    own = [m for m in members if m.get("state") != "done" and
           "of the cutover group" not in (m.get("reason") or "")]
    failed_steps = sorted({next((t["step"] for t in m.get("timeline") or [] if not t.get("ok")),
                                "?") for m in own})
    return {"rc": r.returncode, "state": rep.get("state"),
            "failed_members": [m.get("migration", "?") for m in own],
            "failed_steps": failed_steps,
            "reason": (own[0].get("reason") if own else
                       next((m.get("reason") for m in members if m.get("reason")), "")) or "",
            "reasons": sorted({"%s: %s" % (m.get("migration", "?"), m.get("reason") or "")
                               for m in members if m.get("state") != "done"})[:10],
            "last_steps": sorted({(m.get("timeline") or [{}])[-1].get("step", "?")
                                  for m in members}),
            "stderr": r.stderr.decode()[-1000:], "stdout": r.stdout.decode()[-1500:]}


def s_group_layout(sizes, roles):
    """The databases, each one's application role, and each size's group.
    roles "shared": a group per size, of databases of its own (g<size>_NN),
    sharing one role (app for the largest group, app_n<size> for the
    others): a role's sessions in a database outside the group make the
    fence refuse the cutover, so a smaller group cannot be a part of a
    larger one. roles "database": max(sizes) databases gNN, each with a role
    of its own (app_gNN); the group of n is the first n."""
    big = max(sizes)
    if roles == "shared":
        groups = {n: ["g%d_%02d" % (n, i + 1) for i in range(n)] for n in sizes}
        role = {db: ("app" if n == big else "app_n%d" % n)
                for n, g in groups.items() for db in g}
        dbs = [db for n in sizes for db in groups[n]]
    else:
        dbs = ["g%02d" % (i + 1) for i in range(big)]
        groups = {n: dbs[:n] for n in sizes}
        role = {db: "app_" + db for db in dbs}
    return dbs, groups, role


def bench_group(sizes, reps, copies, roles="shared", rate=GROUP_RATE, connect_timeout="10s"):
    """Group cutovers on real servers: small databases, each its own
    PgBouncer entry and proxy, migrated as one fleet plan (s_group_layout
    says which and with which roles); under a light insert load on every
    database, reps rehearsals (`cutover ... --dry-run`) of each size's
    group, then one real cutover of the largest."""
    import test_cutover as tc
    n_all = max(sizes)
    dbs, groups, role_of = s_group_layout(sizes, roles)
    rig = harness.Rig("bench-group")
    t_start = time.monotonic()
    res = {"sizes": sizes, "rehearsals_per_size": reps, "databases": len(dbs),
           "roles": roles, "rate_per_db": rate, "copies_cap": copies,
           "max_write_pause": "5s", "server_settings": GROUP_PG,
           "agents_connect_timeout": connect_timeout, "rows": {}, "errors": []}
    try:
        blue = rig.cluster("blue", extra=GROUP_PG)
        green = rig.cluster("green", extra=GROUP_PG)
        for c in (blue, green):
            s_psql_script(c, "CREATE ROLE godwit_repl WITH REPLICATION LOGIN SUPERUSER;\n" +
                          "".join("CREATE ROLE %s LOGIN;\n" % r for r in sorted(set(
                              role_of.values()))) +
                          "".join("CREATE DATABASE %s;\n" % db for db in dbs))
        for db in dbs:
            s_psql_script(blue, "CREATE TABLE public.t (id bigserial PRIMARY KEY, v int NOT NULL,"
                                " note text);\n"
                                "INSERT INTO public.t (v, note) SELECT g, md5(g::text) FROM "
                                "generate_series(1, %d) g;\n"
                                "GRANT USAGE ON SCHEMA public TO {r};\n"
                                "GRANT ALL ON ALL TABLES IN SCHEMA public TO {r};\n"
                                "GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {r};\n"
                          .format(r=role_of[db]) % GROUP_ROWS, db=db)
        caps = "{per_source: %d, per_target: %d}" % (copies, copies)
        coord = harness.Coordinator(rig, ["blue", "green", "px"],
                                    options={"log_level": "info", "copies": caps}).start()
        peer = lambda c: {"host": "127.0.0.1", "port": c.port, "user": "godwit_repl"}
        # postgres.connect_timeout: the group's members open their connections
        # at the same moment (check roles, prepare), each a backend forked
        # by a busy postmaster.
        pg_extra = {"connect_timeout": connect_timeout}
        s_quiet_agent(harness.Agent(rig, "blue", coord, role="source", cluster=blue,
                                    peers={"green": peer(green)}, extra_pg=pg_extra)).start()
        s_quiet_agent(harness.Agent(rig, "green", coord, role="target", cluster=green,
                                    peers={"blue": peer(blue)}, extra_pg=pg_extra)).start()

        class Bouncer(tc.PgBouncer):
            def _up(self):
                return self.psql("SELECT 1", user="postgres", check_rc=False,
                                 db=dbs[0]).returncode == 0
        bouncer = Bouncer(rig, blue.port, databases=dbs)
        # PgBouncer's trust still wants every user in its auth_file.
        with open(os.path.join(bouncer.dir, "userlist.txt"), "w") as f:
            f.write("".join('"%s" ""\n' % r for r in ["postgres"] + sorted(set(
                role_of.values()))))
        bouncer.psql("RELOAD", user="postgres", db="pgbouncer")
        px = s_quiet_agent(harness.Agent(rig, "px", coord, role="proxy"))
        with open(px.config, "a") as f:
            f.write(bouncer.proxies_yaml(dbs, lambda db: blue.port, green.port))
        px.start()
        for a in ("blue", "green", "px"):
            harness.wait_for("%s connected" % a, lambda: coord.agent(a)["state"] == "connected",
                             30)
        plan = rig.path("group.yaml")
        with open(plan, "w") as f:
            # One fleet per application role (the template names it).
            f.write("fleets:\n")
            for r in sorted(set(role_of.values())):
                f.write("  - template:\n      replication: {peer: blue}\n"
                        "      reverse_replication: {peer: green}\n"
                        "      options: {max_lag: 5s, parallelism: 1}\n"
                        "      cutover:\n        app_roles: [%s]\n"
                        "        proxies: [{agent: px, proxy: \"pgb_{database}\"}]\n"
                        "        max_write_pause: 5s\n        verify_max_age: 1h\n"
                        "    inventory:\n      - {source: blue, target: green, databases: [%s]}\n"
                        % (r, ", ".join(db for db in dbs if role_of[db] == r)))
        res["setup_s"] = time.monotonic() - t_start
        t0 = time.monotonic()
        took, r = s_ctl_timed(coord, "migrate", "start", plan)
        if r.returncode != 0:
            raise RuntimeError("migrate start: %s %s" % (r.stdout.decode()[-2000:],
                                                         r.stderr.decode()[-2000:]))
        phases = {}
        while time.monotonic() - t0 < 600:
            _, r = s_ctl_timed(coord, "fleet", "status", "--json")
            if r.returncode in (0, 1):
                phases = json.loads(r.stdout)["phases"]
                if phases.get("streaming", 0) >= len(dbs):
                    break
            time.sleep(1)
        if phases.get("streaming", 0) < len(dbs):
            raise RuntimeError("not all streaming after 600 s: %r" % phases)
        res["to_streaming_s"] = time.monotonic() - t0

        # Verify every one until equal, four at a time.
        import concurrent.futures

        def verify(db):
            for i in range(5):
                _, r = s_ctl_timed(coord, "migrate", "verify", db, "--json")
                if r.returncode == 0:
                    return i + 1
                time.sleep(1)
            raise RuntimeError("verify %s: %s %s" % (db, r.stdout.decode()[-1500:],
                                                     r.stderr.decode()[-500:]))
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            tries = list(ex.map(verify, dbs))
        res["verify_s"] = time.monotonic() - t0
        res["verify_runs"] = sum(tries)

        script = rig.path("insert.sql")
        with open(script, "w") as f:
            f.write("INSERT INTO public.t (v) VALUES (1);\n")
        os.chmod(script, 0o644)
        processed = {db: 0 for db in dbs}
        # Each size's rehearsals under their own load run, long enough for
        # them (the estimate grows with what the previous size took).
        per_rehearsal = 3.0
        prev = None
        for size in sizes:
            guess = per_rehearsal * (1.0 + 0.04 * size)
            if prev:
                guess = max(guess, prev * (1.0 + 0.04 * size) / (1.0 + 0.04 * prev_size))
            seconds = 8 + reps * (guess + 1.5)
            load = s_group_load(rig, bouncer.port, role_of, script, seconds, "n%d" % size, rate)
            time.sleep(4)
            load_end = time.monotonic() + seconds - 4
            row = {"size": size, "runs": [], "walls_s": [], "errors": [], "loadavg": [],
                   "load_seconds": seconds}
            for i in range(reps):
                la = os.getloadavg()
                t = time.monotonic()
                _, r = s_ctl_timed(coord, "cutover", *(groups[size] + ["--dry-run", "--json"]))
                wall = time.monotonic() - t
                rep = json.loads(r.stdout or b"{}") if r.stdout.startswith(b"{") else {}
                row["loadavg"].append(la[0])
                row["walls_s"].append(wall)
                if r.returncode != 0 or rep.get("state") != "done":
                    fail = s_group_failure(r, rep)
                    fail.update(size=size, rehearsal=i + 1)
                    row["errors"].append(fail)
                    print("  group of %d, rehearsal %d: %s: %d member(s) failed in %s: %s" % (
                        size, i + 1, fail["state"], len(fail["failed_members"]),
                        fail["failed_steps"], fail["reason"]),
                          file=sys.stderr, flush=True)
                else:
                    s = s_group_steps(rep)
                    row["runs"].append(s)
                    if len(row["runs"]) == 1:  # one rehearsal's answer as it came, for reading
                        row["first_answer"] = rep
                    print("  group of %d, rehearsal %d: write pause %.1f ms (%s), %.1f s in all"
                          % (size, i + 1, s["pause_ms"], " ".join(
                              "%s %.1f" % (k, v) for k, v in s["steps"].items()
                              if k in GROUP_STEPS), wall), file=sys.stderr, flush=True)
                if time.monotonic() > load_end:
                    row["errors"].append({"size": size, "rehearsal": i + 1,
                                          "state": "the load ended before this rehearsal did"})
                time.sleep(1)
            got = s_group_load_end(load, seconds + 120)
            for db, k in got.pop("per_db").items():
                processed[db] += k
            row["load"] = got
            prev, prev_size = sum(row["walls_s"]) / len(row["walls_s"]), size
            res["rows"][size] = row

        # The real cutover of the largest group, under load.
        rows = res["rows"][n_all]
        est = max(rows["walls_s"]) if rows["walls_s"] else 30
        big = groups[n_all]
        seconds = 12 + 3 * est
        load = s_group_load(rig, bouncer.port, role_of, script, seconds, "real", rate)
        time.sleep(4)
        t = time.monotonic()
        _, r = s_ctl_timed(coord, "cutover", *(big + ["--json"]))
        wall = time.monotonic() - t
        rep = json.loads(r.stdout or b"{}") if r.stdout.startswith(b"{") else {}
        real = {"size": n_all, "wall_s": wall, "rc": r.returncode, "state": rep.get("state"),
                "load_seconds": seconds, "ended_before_load": time.monotonic() - t + 4 < seconds}
        if r.returncode == 0 and rep.get("state") == "done":
            real.update(s_group_steps(rep))
        else:
            real["error"] = s_group_failure(r, rep)
        got = s_group_load_end(load, seconds + 120)
        for db, k in got.pop("per_db").items():
            processed[db] += k
        real["load"] = got
        states = {}
        for db in dbs:
            m = (json.loads(s_ctl_timed(coord, "migrate", "status", db, "--json")[1].stdout)
                 ["migrations"][0])
            states[m["state"]] = states.get(m["state"], 0) + 1
        real["states"] = states
        on_port = lambda db: int(bouncer.psql("SELECT pg_catalog.inet_server_port()",
                                              user="postgres", db=db).stdout.decode().strip())
        real["on_green"] = sum(1 for db in big if on_port(db) == green.port)
        # Lost: a row pgbench counted as committed that the side traffic ended
        # on lacks (each transaction inserts one row).
        # (the group's databases on the side the cutover left them; the others
        # stayed on blue)
        serving = {db: green if db in big and real["on_green"] == n_all else blue for db in dbs}
        counts = {db: int(serving[db].psql("SELECT count(*) FROM public.t", db=db))
                  for db in dbs}
        real["lost_rows"] = sum(max(0, GROUP_ROWS + processed[db] - counts[db]) for db in dbs)
        real["extra_rows"] = sum(max(0, counts[db] - GROUP_ROWS - processed[db]) for db in dbs)
        real["committed"] = sum(processed.values())
        print("  real cutover of %d: %s, write pause %s ms, %.1f s in all; states %r; on green "
              "%d; lost %d" % (n_all, real["state"], real.get("pause_ms"), wall, states,
                               real["on_green"], real["lost_rows"]), file=sys.stderr, flush=True)
        res["real"] = real
        res["loadavg_end"] = os.getloadavg()
        res["wall_s"] = time.monotonic() - t_start
        return res
    finally:
        rig.close()


def group_table(g):
    """The group bench's Markdown lines."""
    med = lambda v: statistics.median(v) if v else 0.0
    rows = g["rows"]
    base = med([r["pause_ms"] for r in rows[min(rows)]["runs"]]) if rows else 0.0
    steps = [s for s in GROUP_STEPS if any(s in run["steps"] for r in rows.values()
                                          for run in r["runs"])]
    lines = ["", "Cutover groups: the write pause of N databases cut over together (rehearsals, "
             "`cutover g01 ... gNN --dry-run`), %d databases on one server behind one PgBouncer "
             "(an entry and a proxy each), application roles: %s; each written through it at "
             "%d tx/s (%d in all); "
             "max_write_pause %s; agents' postgres.connect_timeout %s; %d rehearsals per size; "
             "migrate start to all streaming %.0f s "
             "(copies cap %d), verify of all %.0f s" % (
                 g["databases"], "one per group, shared by its databases" if g["roles"] ==
                 "shared" else "one per database", g["rate_per_db"],
                 g["rate_per_db"] * g["databases"],
                 g["max_write_pause"], g.get("agents_connect_timeout", "2s"),
                 g["rehearsals_per_size"], g.get("to_streaming_s", 0),
                 g["copies_cap"], g.get("verify_s", 0)),
             "| databases | rehearsals done | write pause median / max | %s | pause spread "
             "(pause sent, first to last member) | ratio to 1 database | per added database | "
             "load average (1 min) | failed tx, pgbench runs aborted | rehearsal wall time |" % " | ".join(
                 "%s median" % s for s in steps),
             "|---|---|---|%s---|---|---|---|---|---|" % ("---|" * len(steps))]
    for size in sorted(rows):
        r = rows[size]
        pauses = [x["pause_ms"] for x in r["runs"]]
        m = med(pauses)
        per = (m - base) / (size - 1) if size > 1 and pauses else None
        lines.append("| %d | %d of %d | %s | %s | %s | %s | %s | %.1f | %d, %d of %d | %.1f s |" % (
            size, len(r["runs"]), len(r["runs"]) + len(
                [e for e in r["errors"] if "rehearsal" in e and e.get("rc") is not None]),
            "%.0f / %.0f ms" % (m, max(pauses)) if pauses else "-",
            " | ".join("%.0f ms" % med([x["steps"][s] for x in r["runs"] if s in x["steps"]])
                       if any(s in x["steps"] for x in r["runs"]) else "-" for s in steps),
            "%.0f ms" % med([x["pause_sent_spread_ms"] for x in r["runs"]]) if pauses else "-",
            "%.2f" % (m / base) if base and pauses else "-",
            "%.1f ms (%.0f %% of one database's pause)" % (per, 100.0 * per / base)
            if per is not None and base else "baseline" if size == min(rows) else "-",
            max(r["loadavg"]) if r["loadavg"] else 0, r["load"]["failed"], r["load"]["aborted"],
            g["databases"],
            med(r["walls_s"])))
    real = g.get("real") or {}
    if real:
        lines.append("")
        if real.get("state") == "done":
            lines.append("The real cutover of all %d: done in %.1f s, write pause %.0f ms (%s); "
                         "states %s; %d of %d entries on green; failed tx %d (clients aborted "
                         "%d); committed %d, lost %d, extra %d." % (
                             real["size"], real["wall_s"], real["pause_ms"], ", ".join(
                                 "%s %.0f ms" % (k, v) for k, v in real["steps"].items()
                                 if k in GROUP_STEPS), real["states"], real["on_green"],
                             real["size"], real["load"]["failed"], real["load"]["aborted"],
                             real["committed"], real["lost_rows"], real["extra_rows"]))
            if real.get("agent_parts_ms"):
                lines.append("Its agents' parts of the pause, median / longest over the "
                             "members: " + "; ".join(
                                 "%s %.1f / %.1f ms" % (k, v[0], v[1])
                                 for k, v in real["agent_parts_ms"].items()) + ".")
        else:
            e = real["error"]
            lines.append("The real cutover of all %d: %s (rc %s): %d member(s) failed (%s) in %s: "
                         "%s; states after %s; failed tx %d; lost %d." % (
                             real["size"], real.get("state"), real.get("rc"),
                             len(e["failed_members"]), ", ".join(e["failed_members"][:5]),
                             ", ".join(e.get("failed_steps", [])),
                             e["reason"][:400], real["states"], real["load"]["failed"],
                             real["lost_rows"]))
    for size in sorted(rows):
        for e in rows[size]["errors"]:
            lines.append("Group of %d, rehearsal %d: %s: %d member(s) failed (%s) in %s: %s" % (
                size, e.get("rehearsal", 0), e.get("state"), len(e.get("failed_members", [])),
                ", ".join(e.get("failed_members", [])[:5]), ", ".join(e.get("failed_steps", [])),
                e.get("reason", "")[:400]))
    big = max(rows) if rows else 0
    if big and rows[big]["runs"]:
        worst = max(x["pause_ms"] for x in rows[big]["runs"])
        lines.append("Target: the group of %d under 1 s of write pause (%s: max %.0f ms), zero "
                     "failed, zero lost; per added database well under one database's pause." % (
                         big, "met" if worst < 1000 else "NOT met", worst))
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=["agent", "fanin", "pipeline", "cutover", "verify",
                                       "fleet", "group", "mariadb", "mariadb-cutover"])
    ap.add_argument("--my-tables", type=int, default=8,
                    help="the MariaDB bench's sysbench tables")
    ap.add_argument("--my-rows", type=int, default=100000,
                    help="the MariaDB bench's rows per table (--quick: 20000)")
    ap.add_argument("--migrations", type=int, default=200,
                    help="the fleet bench's migrations, driven against simulated agents")
    ap.add_argument("--copies", type=int, default=0,
                    help="the fleet bench's copies.per_source and per_target (0: no cap; "
                         "the coordinator's default is 2)")
    ap.add_argument("--group-sizes", default="1,10,50",
                    help="the group bench's group sizes (databases cut over together; "
                         "--quick: 1,5)")
    ap.add_argument("--group-rehearsals", type=int, default=3,
                    help="the group bench's rehearsals per size")
    ap.add_argument("--group-roles", choices=["shared", "database"], default="shared",
                    help="the group bench's application roles: one per group, shared by its "
                         "databases (app for the largest), or one per database")
    ap.add_argument("--group-rate", type=int, default=GROUP_RATE,
                    help="the group bench's inserts/s into each database")
    ap.add_argument("--group-connect-timeout", default="10s",
                    help="the group bench's agents' postgres.connect_timeout (the agent's "
                         "default is 2s)")
    ap.add_argument("--group-copies", type=int, default=10,
                    help="the group bench's copies.per_source and per_target")
    ap.add_argument("--verify-scale", type=int, default=10)
    ap.add_argument("--cutovers", type=int, default=20,
                    help="the cutover and mariadb-cutover benches' cutovers (--quick: 5, 4)")
    ap.add_argument("--scale", type=int, default=50)
    ap.add_argument("--durable", action="store_true",
                    help="pipeline: the servers flush their WAL (fsync on), as in production")
    ap.add_argument("--fanin", default="100,1000,5000")
    ap.add_argument("--rigs", default="0,25,25-two-sites",
                    help="the cutover bench's rigs: round trip in ms, '-two-sites' for the "
                         "coordinator with the proxy and blue (default: all three)")
    args = ap.parse_args()
    # A SIGTERM unwinds, so that each bench's rig stops what it started.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit("killed by signal %d" % signum))
    build()
    lines = ["godwit benchmarks, %s, %s, %d cores, binaries %s (%s)" % (
        datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"), os.uname().nodename,
        os.cpu_count(), os.path.relpath(BUILD, ROOT), build_kind())]
    results = {}
    if args.only in (None, "pipeline"):
        scale = 10 if args.quick else args.scale
        p = bench_pipeline(scale, args.durable)
        results["pipeline"] = p
        lines += ["", "Time to streaming, pgbench scale %d plus a schema with FK, index, trigger "
                  "(%.0f MB), %s; godwit rows: the mean of two runs (A B B A, after a warm-up run)" % (
                      scale, p["database_bytes"] / 1048576.0,
                      "fsync on, green's max_wal_size the default 1GB" if p["durable"]
                      else "fsync off and max_wal_size 4GB (test clusters)"),
                  "| | seconds | godwit speed-up |", "|---|---|---|",
                  "| godwit, start to streaming | %.1f | |" % p["godwit_s"],
                  "| - schema (pre-data, keys) | %.1f | |" % p["godwit_schema_s"],
                  "| - publish, copy, catchup | %.1f | |" % p["godwit_copy_s"],
                  "| - post-data | %.1f | |" % p["godwit_postdata_s"],
                  "| baseline: schema-only restore + plain subscription | %.1f | %.2fx |" % (
                      p["plain_subscription_s"], p["plain_subscription_s"] / p["godwit_s"]),
                  "| baseline: pg_dump -Fd -j2, pg_restore -j2 (no streaming) | %.1f | %.2fx |" % (
                      p["dump_restore_s"], p["dump_restore_s"] / p["godwit_s"])]
        if "pgcopydb_s" in p:
            lines.append("| baseline: pgcopydb clone --table-jobs 2 --index-jobs 2 "
                         "--split-tables-larger-than 50MB (no streaming) | %.1f | %.2fx |" % (
                             p["pgcopydb_s"], p["pgcopydb_s"] / p["godwit_s"]))
        sec = lambda k: "%.1f" % p[k] if k in p else "-"  # a part the agent's log did not show
        lines += ["| godwit physical (`method: physical`): pg_basebackup to a standby, start to "
                  "streaming; copies the whole server (%d databases, %.0f MB by pg_database_size) "
                  "| %.1f | logical / physical: %.2f |" % (
                      p["server_databases"], p["server_bytes"] / 1048576.0, p["physical_s"],
                      p["godwit_s"] / p["physical_s"]),
                  "| - plan, preflight, slot (until pg_basebackup runs) | %s | |" %
                  sec("physical_prepare_s"),
                  "| - pg_basebackup (%s MB copied, by its own count) | %s | |" % (
                      "%.0f" % (p["physical_copied_kb"] / 1024.0) if "physical_copied_kb" in p
                      else "?", sec("physical_copy_s")),
                  "| - the standby's start until it answers | %s | |" % sec("physical_start_s"),
                  "| - until seen streaming (the coordinator's move, our 0.1 s poll) | %s | |" %
                  sec("physical_streaming_s"),
                  "| baseline: plain pg_basebackup -X stream -c fast (the agent's options, as "
                  "postgres, into a fresh folder; no server started) | %.1f | physical / plain: "
                  "%.2f |" % (p["plain_basebackup_s"], p["physical_s"] / p["plain_basebackup_s"])]
        lines += ["| godwit with an import profile, start to streaming (speed-up: over godwit without "
                  "one) | %.1f | %.2fx |" % (
                      p["godwit_profile_s"], p["godwit_s"] / p["godwit_profile_s"]),
                  "| - schema (pre-data, keys) | %.1f | |" % p["godwit_profile_schema_s"],
                  "| - publish, tune, copy, catchup | %.1f | |" % p["godwit_profile_copy_s"],
                  "| - post-data | %.1f | |" % p["godwit_profile_postdata_s"],
                  "| profile: dump/restore, pgcopydb against it | | %.2fx, %s |" % (
                      p["dump_restore_s"] / p["godwit_profile_s"],
                      "%.2fx" % (p["pgcopydb_s"] / p["godwit_profile_s"]) if "pgcopydb_s" in p
                      else "-"),
                  "Targets: at least 1.3x against the plain subscription, at least 1.2x against "
                  "dump/restore and 1.5x against pgcopydb (issue 15).",
                  "",
                  "Where godwit's time goes (CPU seconds during the run, mean of its two runs; "
                  "the machine has %d cores, so %.1f core-seconds over godwit's %.1f s; each "
                  "row's share is of its own time):" % (
                      os.cpu_count(), os.cpu_count() * p["godwit_s"], p["godwit_s"]),
                  "| | blue's server | green's server | agents (the copy runs in green's) | "
                  "coordinator | all | share of the cores |", "|---|---|---|---|---|---|---|"]
        for key, label in (("godwit", "godwit"), ("godwit_profile", "with the import profile"),
                           ("physical", "physical (green's agent with its pg_basebackup; "
                                        "green's server: the standby)")):
            parts = [p[key + "_cpu_" + x + "_s"] for x in ("blue", "green", "agents",
                                                           "coordinator")]
            lines.append("| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.0f %% |" % (
                (label,) + tuple(parts) + (sum(parts),
                                           100 * sum(parts) / (os.cpu_count() * p[key + "_s"]))))
        parts = (p["plain_basebackup_cpu_blue_s"], p["plain_basebackup_cpu_tool_s"])
        lines.append("| plain pg_basebackup (agents: pg_basebackup itself) | %.1f | - | %.1f | - "
                     "| %.1f | %.0f %% |" % (parts + (sum(parts), 100 * sum(parts) / (
                         os.cpu_count() * p["plain_basebackup_s"]))))
    if args.only in (None, "cutover"):
        n = 5 if args.quick else args.cutovers
        rigs = []
        for x in args.rigs.split(","):
            rtt, _, two = x.strip().partition("-")
            rigs.append((int(rtt), "two sites" if two else "apart"))
        rows = [bench_cutover(n, rtt, where) for rtt, where in rigs]
        results["cutover"] = rows
        lines += ["", "Cutover write pause through PgBouncer under pgbench (%d tx/s): %d "
                  "cutovers back and forth (cutover, rollback, ...) with reverse replication, per "
                  "round trip" % (RATE, n),
                  "| round trip | coordinator | cutovers | godwit pause p50 / p99 / max | application's longest "
                  "gap p50 / p99 / max | expert script: application's longest gap p50 / p99 / "
                  "max | ratio godwit / expert p50, p99 | same, no cutover (baseline) p50 / p99 | "
                  "failed tx | lost rows |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            g, a, b, e = r["godwit_ms"], r["app_gap_ms"], r["baseline_gap_ms"], r["expert_gap_ms"]
            lines.append("| %d ms | %s | %d | %.0f / %.0f / %.0f ms | %.0f / %.0f / %.0f ms | "
                         "%.0f / %.0f / %.0f ms | %.2f, %.2f | %.0f / %.0f ms | %d | %d of %d |" % (
                             r["rtt_ms"], r["placement"] if r["rtt_ms"] else "-", r["cutovers"], g["p50"], g["p99"], g["max"], a["p50"],
                             a["p99"], a["max"], e["p50"], e["p99"], e["max"],
                             a["p50"] / e["p50"] if e["p50"] else 0,
                             a["p99"] / e["p99"] if e["p99"] else 0, b["p50"], b["p99"],
                             r["failed"], r["lost_rows"], r["rows"]))
        lines += ["", "godwit's pause by direction: cutovers (blue to green) and rollbacks",
                  "| round trip | coordinator | cutovers p50 / max | rollbacks p50 / max |",
                  "|---|---|---|---|"]
        for r in rows:
            f, k = r["godwit_ms"]["forward"], r["godwit_ms"]["back"]
            lines.append("| %d ms | %s | %.0f / %.0f ms | %.0f / %.0f ms |" % (
                r["rtt_ms"], r["placement"] if r["rtt_ms"] else "-", f["p50"], f["max"],
                k["p50"], k["max"]))
        lines.append("Expert script: kept psql sessions across the same WAN (PgBouncer PAUSE; one "
                     "batch on the side traffic is on: NOLOGIN, sessions ended, final LSN, wait "
                     "on the server until the slots confirm it, sequences read; one batch of "
                     "setval on the other; RELOAD; RESUME). The coordinator apart: every agent "
                     "(and the expert's every session) across the WAN from it; two sites: the "
                     "coordinator with the proxy and blue, green across the WAN; the replication "
                     "crosses it in both. Targets: ratio at or below 1.0; "
                     "godwit's pause p99 under 100 ms at 25 ms round trip; zero failed, zero "
                     "lost.")
    if args.only in (None, "verify"):
        v = bench_verify(4 if args.quick else args.verify_scale, 3)
        results["verify"] = v
        lines += ["", "Verify throughput: the hostile workload's tables and pgbench scale %d "
                  "(%d rows), %d runs each" % (v["scale"], v["quiet"][0]["rows"], v["runs"]),
                  "| | rows/s | seconds per run | outcomes | changes explained by the windows | "
                  "verify slot lived at most |", "|---|---|---|---|---|---|"]
        for name, key in (("quiet source", "quiet"), ("under load (%.0f tx/s, 8 clients)" %
                                                      v["load_tps"], "load")):
            rs = v[key]
            lines.append("| %s | %.0f | %s | %s | %d | %d ms |" % (
                name, sum(r["rows_per_sec"] for r in rs) / len(rs),
                ", ".join("%.1f" % r["seconds"] for r in rs),
                ", ".join(r["state"] for r in rs), sum(r["changes"] for r in rs),
                max(r["slot_ms"] for r in rs)))
        lines.append("| ratio under load / quiet | %.2f | | | | |" % v["ratio"])
    if args.only in (None, "fleet"):
        f = bench_fleet(args.migrations, 10 if args.quick else 30, 20, args.copies)
        results["fleet"] = f
        L, j = f["latency_ms"], f["journal_bytes"]
        lines += ["", "Coordinator driving %d migrations to streaming, simulated agents (2 "
                  "sources, 2 targets: real CURVE clients answering every command at once; "
                  "no PostgreSQL), copies cap %s; load average (1 min) %.1f at the start, %.1f at the end" % (
                      f["migrations"], f["copies_cap"] or "none", f["loadavg_start"][0],
                      f["loadavg"][0]),
                  "| | value | baseline | ratio |", "|---|---|---|---|",
                  "| `migrate start` (preflight of all) returned after | %.1f s | | |" %
                  f["start_call_s"],
                  "| wall time, `migrate start` to all %d streaming | %.1f s | | |" % (
                      f["migrations"], f["to_streaming_s"]),
                  "| - the last migration entered (s from start, journal) | %s | | |" % ", ".join(
                      "%s %.2f" % (k, v) for k, v in sorted(f["all_in_s"].items(),
                                                            key=lambda kv: kv[1])),
                  "| coordinator CPU over that window | %.2f s | simulated agents %.2f s | "
                  "%.2f |" % (f["coord_cpu_s"], f["sim_cpu_s"],
                              f["coord_cpu_s"] / f["sim_cpu_s"] if f["sim_cpu_s"] else 0),
                  "| coordinator peak RSS (VmHWM) to streaming | %.1f MB | %.1f MB before "
                  "start | |" % (f["coord_peak_rss_mb"], f["coord_rss_before_mb"]),
                  "| coordinator CPU, %.0f s of steady streaming | %.2f %% of one core | "
                  "simulated agents %.2f %% | %.2f |" % (
                      f["steady_s"], f["steady_coord_cpu_pct"], f["steady_sim_cpu_pct"],
                      f["steady_coord_cpu_pct"] / f["steady_sim_cpu_pct"]
                      if f["steady_sim_cpu_pct"] else 0),
                  "| coordinator RSS after steady streaming (peak) | %.1f MB (%.1f MB) | %.1f MB "
                  "at streaming | |" % (f["steady_rss_end_mb"], f["steady_peak_rss_mb"],
                                        f["coord_rss_streaming_mb"]),
                  "| journal on disk (db + wal), events | %.1f MB (%.1f + %.1f), %d | %.1f MB when "
                  "all were streaming | |" % (
                      sum(j.values()) / 1048576.0, j.get("", 0) / 1048576.0,
                      j.get("-wal", 0) / 1048576.0, sum(f["journal_events"].values()),
                      f["journal_bytes_at_streaming"] / 1048576.0),
                  "| `migrate status --json` p50 / p95 (%d calls, %.0f kB) | %.0f / %.0f ms | "
                  "`status --json` %.0f / %.0f ms | %.1f, %.1f |" % (
                      len(L["migrate"]["all"]), f["answer_bytes"]["migrate"] / 1024.0,
                      L["migrate"]["p50"], L["migrate"]["p95"], L["status"]["p50"],
                      L["status"]["p95"], L["migrate"]["p50"] / L["status"]["p50"],
                      L["migrate"]["p95"] / L["status"]["p95"]),
                  "| `fleet status --json` p50 / p95 (%d calls, %.0f kB) | %.0f / %.0f ms | "
                  "`status --json` %.0f / %.0f ms | %.1f, %.1f |" % (
                      len(L["fleet"]["all"]), f["answer_bytes"]["fleet"] / 1024.0,
                      L["fleet"]["p50"], L["fleet"]["p95"], L["status"]["p50"],
                      L["status"]["p95"], L["fleet"]["p50"] / L["status"]["p50"],
                      L["fleet"]["p95"] / L["status"]["p95"]),
                  "| CPU per call, coordinator / godwitctl: `migrate status`, `fleet status` | "
                  "%.1f / %.1f ms, %.1f / %.1f ms | `status` %.1f / %.1f ms | %.1f, %.1f |" % (
                      L["migrate"]["coord_cpu_ms_per_call"],
                      L["migrate"]["godwitctl_cpu_ms_per_call"],
                      L["fleet"]["coord_cpu_ms_per_call"],
                      L["fleet"]["godwitctl_cpu_ms_per_call"],
                      L["status"]["coord_cpu_ms_per_call"],
                      L["status"]["godwitctl_cpu_ms_per_call"],
                      L["migrate"]["coord_cpu_ms_per_call"] / L["status"]["coord_cpu_ms_per_call"]
                      if L["status"]["coord_cpu_ms_per_call"] > 0 else 0,
                      L["fleet"]["coord_cpu_ms_per_call"] / L["status"]["coord_cpu_ms_per_call"]
                      if L["status"]["coord_cpu_ms_per_call"] > 0 else 0),
                  "| `status --json` before any migration (%.0f kB) | %.0f / %.0f ms | | |" % (
                      f["answer_bytes"]["idle"] / 1024.0, f["idle_status_ms"]["p50"],
                      f["idle_status_ms"]["p95"]),
                  "| `godwitctl --version` (no request: the process's start and exit) | "
                  "%.0f / %.0f ms, %.1f ms CPU | | |" % (
                      f["godwitctl_version_ms"]["p50"], f["godwitctl_version_ms"]["p95"],
                      f["godwitctl_version_ms"]["cpu_ms_per_call"]),
                  "Latency: the godwitctl process's wall time, start to exit, on the same "
                  "machine. `status` is the baseline: no migration work in its answer, but the "
                  "agents' reports in it list a slot, publication or subscription per "
                  "migration (%.0f kB at %d streaming). Coordinator log lines at warn or "
                  "error: %d." % (f["answer_bytes"]["status"] / 1024.0, f["migrations"],
                                  f["coord_log_warnings"])]
    if args.only in (None, "group"):
        sizes = [1, 5] if args.quick else sorted({int(x) for x in args.group_sizes.split(",")})
        g = bench_group(sizes, 3 if args.quick else args.group_rehearsals, args.group_copies,
                        args.group_roles, args.group_rate, args.group_connect_timeout)
        results["group"] = g
        lines += group_table(g)
    if args.only in (None, "agent"):
        a = bench_agent(20 if args.quick else 60)
        results["agent"] = a
        lines += ["", "Agent footprint (%.0f s, 1 s interval, live cluster, pgbench 50 tx/s)" %
                  a["seconds"],
                  "| metric | value | target |", "|---|---|---|",
                  "| agent peak RSS | %.1f MB | < 10 MB |" % a["agent_peak_rss_mb"],
                  "| of which shared library pages (clean, shared with other processes) | %.1f MB |  |" %
                  a["agent_shared_clean_mb"],
                  "| agent PSS | %.1f MB |  |" % a["agent_pss_mb"],
                  "| agent private memory (heap, stacks, private pages) | %.1f MB, %.1f MB anonymous |  |" % (
                      a["agent_private_mb"], a["agent_anon_mb"]),
                  "| agent CPU | %.3f %% of one core | < 1 %% |" % a["agent_cpu_pct"],
                  "| baseline: its PostgreSQL backend's CPU | %.3f %% |  |" % a["backend_cpu_pct"],
                  "| ratio agent / backend | %.2f |  |" % (
                      a["agent_cpu_pct"] / a["backend_cpu_pct"] if a["backend_cpu_pct"] else 0),
                  "| reports received, longest gap | %d, %d ms |  |" % (
                      a["reports"], a["max_report_gap_ms"])]
    if args.only in (None, "mariadb"):
        m = bench_mariadb(args.my_tables, 20000 if args.quick else args.my_rows)
        results["mariadb"] = m
        lines += ["", "MariaDB 10.11: one database copied, sysbench's %d tables of %d rows "
                  "(%.0f MB by information_schema); godwit: the mean of two runs after a "
                  "warm-up; baselines: the mean of a run before and one after godwit's" % (
                      m["tables"], m["rows"], m["database_bytes"] / 1048576.0),
                  "| | seconds | godwit speed-up |", "|---|---|---|",
                  "| godwit, `migrate start` to streaming (two readers in one snapshot, then "
                  "replication from its GTID position) | %.1f | |" % m["godwit_s"],
                  "| baseline: mariadb-dump --single-transaction --gtid, piped to mariadb (no "
                  "streaming) | %.1f | %.2fx |" % (m["dump_s"], m["dump_s"] / m["godwit_s"]),
                  "| baseline: mydumper --threads 2 --trx-consistency-only, then myloader "
                  "--threads 2 (no streaming) | %.1f | %.2fx |" % (
                      m["mydumper_s"], m["mydumper_s"] / m["godwit_s"])]
    if args.only in (None, "mariadb-cutover"):
        n = 4 if args.quick else args.cutovers
        c = bench_mariadb_cutover(n)
        results["mariadb_cutover"] = c
        g, a, b, e = c["godwit_ms"], c["app_gap_ms"], c["baseline_gap_ms"], c["expert_gap_ms"]
        s = c["expert_script_ms"]
        ratio = lambda x, y: "%.2f" % (x / y) if y else "-"
        lines += ["", "MariaDB 10.11 cutover write pause through HAProxy (TCP mode) under sysbench "
                  "(4 threads, one transaction per connection, unthrottled): %d cutovers back "
                  "and forth (cutover, rollback, ...) with reverse replication; %d transactions" % (
                      n, c["transactions"]),
                  "| | p50 | p99 | max |", "|---|---|---|---|",
                  "| godwit's write pause (write_pause_ms) | %.0f ms | %.0f ms | %.0f ms |" % (
                      g["p50"], g["p99"], g["max"]),
                  "| - cutovers (blue to green) / rollbacks | %.0f / %.0f ms | | %.0f / %.0f ms |" % (
                      g["forward"]["p50"], g["back"]["p50"], g["forward"]["max"],
                      g["back"]["max"]),
                  "| application's longest gap between commits, godwit | %.0f ms | %.0f ms | "
                  "%.0f ms |" % (a["p50"], a["p99"], a["max"]),
                  "| same, no cutover (baseline) | %.0f ms | %.0f ms | %.0f ms |" % (
                      b["p50"], b["p99"], b["max"]),
                  "| application's longest gap, expert script | %.0f ms | %.0f ms | %.0f ms |" % (
                      e["p50"], e["p99"], e["max"]),
                  "| expert script's own time | %.0f ms | %.0f ms | %.0f ms |" % (
                      s["p50"], s["p99"], s["max"]),
                  "| ratio application's gap godwit / expert | %s | %s | |" % (
                      ratio(a["p50"], e["p50"]), ratio(a["p99"], e["p99"])),
                  "| ratio application's gap godwit / baseline | %s | %s | |" % (
                      ratio(a["p50"], b["p50"]), ratio(a["p99"], b["p99"])),
                  "Failed transactions (sysbench's ignored errors): %d; lost: %d of %d rows on "
                  "the final primary (%s; %d on the follower)." % (
                      c["failed"], c["lost_rows"], c["rows"], c["final_primary"],
                      c["rows_follower"]),
                  "Expert script: kept mariadb sessions over each server's socket (HAProxy "
                  "`set maxconn frontend pg 0`, show stat every 2 ms until no session; one "
                  "batch on the side traffic is on: ACCOUNT LOCK, KILL CONNECTION USER, "
                  "@@gtid_binlog_pos; MASTER_GTID_WAIT on the other; accounts unlocked; "
                  "kill -USR2 to HAProxy's master, show stat until the frontend accepts). "
                  "Gaps: the longest between consecutive orders' `placed` (NOW(3)) inside "
                  "each window widened by 0.5 s either side."]
    if args.only in (None, "fanin"):
        rows = []
        for n in [int(x) for x in args.fanin.split(",")]:
            rows.append(bench_fanin(n, 10 if args.quick else 20))
        results["fanin"] = rows
        lines += ["", "Coordinator fan-in (reports at 1 Hz, one ping per agent per second)",
                  "| agents | connected | reports/s | coordinator CPU | coordinator RSS | "
                  "round trip p50 | p99 | baseline: load generator CPU | ratio coord/loadgen |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            lines.append("| %d | %d | %.0f | %.1f %% | %.1f MB | %.2f ms | %.2f ms | %.1f %% | %.2f |" % (
                r["agents"], r["connected"], r["reports_per_sec"], r["coord_cpu_pct"],
                r["coord_rss_mb"], r["rtt_p50_ms"] or -1, r["rtt_p99_ms"] or -1,
                r["loadgen_cpu_pct"],
                r["coord_cpu_pct"] / r["loadgen_cpu_pct"] if r["loadgen_cpu_pct"] else 0))
        lines.append("Targets: 1000 agents under 25 % of one core, round trip p99 under 10 ms.")
    text = "\n".join(lines) + "\n"
    print(text)
    outdir = os.path.join(ROOT, "bench", "results")
    os.makedirs(outdir, exist_ok=True)
    stamp = datetime.datetime.utcnow().strftime("%Y%m%d-%H%M%S")
    for ext, body in (("md", text), ("json", json.dumps(results, indent=2))):
        with open(os.path.join(outdir, "bench-%s.%s" % (stamp, ext)), "w") as f:
            f.write(body)
    print("written to bench/results/bench-%s.{md,json}" % stamp)


if __name__ == "__main__":
    main()
