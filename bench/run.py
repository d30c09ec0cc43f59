#!/usr/bin/env python3
"""godwit benchmarks: prints a table and writes it to bench/results/.

    bench/run.py [--quick] [--only agent|fanin] [--fanin 100,1000,5000]

Builds an optimised tree in build-bench (no sanitizers), then:

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

Targets (issue 2): agent < 10 MB RSS and < 1 % CPU; 1000 agents at 1 Hz
under 25 % of one core with round trip p99 under 10 ms.
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build-bench")
os.environ["GODWIT_BIN"] = BUILD
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


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
    subprocess.run(["cmake", "-S", ROOT, "-B", BUILD, "-DCMAKE_BUILD_TYPE=Release"],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", BUILD, "-j2"], check=True, stdout=subprocess.DEVNULL)


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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=["agent", "fanin"])
    ap.add_argument("--fanin", default="100,1000,5000")
    args = ap.parse_args()
    build()
    lines = ["godwit benchmarks, %s, %s, %d cores" % (
        datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"), os.uname().nodename,
        os.cpu_count())]
    results = {}
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
