"""Live metrics from a real PostgreSQL cluster: WAL position and rate under
pgbench, slot retention, subscriptions, disk; a stopped, restarted, locked or
SIGSTOPped database never stops the agent's heartbeat."""

import os
import time

import harness
from harness import Agent, Coordinator, check, wait_for


def pg_of(coord, name):
    a = coord.agent(name)
    return a.get("postgres") or {}


def reachable(coord, name):
    pg = pg_of(coord, name)
    return pg if pg.get("reachable") and pg.get("current_lsn_bytes") else None


def test_wal_slot_subscription_disk(rig):
    blue = rig.cluster("blue")
    green = rig.cluster("green")
    blue.pgbench_init(scale=1)
    coord = Coordinator(rig, ["blue", "green"]).start()
    Agent(rig, "blue", coord, role="source", cluster=blue, interval="500ms").start()
    Agent(rig, "green", coord, role="target", cluster=green, interval="500ms").start()
    pg = wait_for("blue metrics", lambda: reachable(coord, "blue"), 15)
    check(pg["wal_level"] == "logical", "wal_level reported: %r" % pg["wal_level"])
    check(pg["server_version_num"] >= 130000, "server version reported")
    check(any(d["name"] == "postgres" and d["size_bytes"] > 1000000 for d in pg["databases"]),
          "database sizes reported: %r" % pg["databases"])
    blue.psql("SELECT pg_catalog.pg_create_logical_replication_slot('godwit_t', 'pgoutput')")
    # A publication on blue and a subscription on green, through its own slot.
    blue.psql("CREATE PUBLICATION pub_t FOR TABLE public.pgbench_branches")
    green.psql("CREATE TABLE public.pgbench_branches (bid int PRIMARY KEY, bbalance int, "
               "filler char(88))")
    green.psql("CREATE SUBSCRIPTION sub_t CONNECTION 'host=127.0.0.1 port=%d dbname=postgres "
               "user=postgres' PUBLICATION pub_t" % blue.port)
    slot0 = wait_for("slot reported", lambda: [s for s in pg_of(coord, "blue")["slots"]
                                               if s["name"] == "godwit_t"], 10)[0]
    check(slot0["type"] == "logical" and slot0["plugin"] == "pgoutput" and not slot0["active"],
          "slot fields: %r" % slot0)
    lsn0 = pg_of(coord, "blue")["current_lsn_bytes"]
    bench = blue.pgbench(["-c", "2", "-T", "8", "-n", "postgres"])
    lsns, rates, retained = [], [], []
    for _ in range(12):
        time.sleep(0.5)
        p = pg_of(coord, "blue")
        lsns.append(p["current_lsn_bytes"])
        if p.get("wal_bytes_per_sec") is not None:
            rates.append(p["wal_bytes_per_sec"])
        retained += [s["retained_bytes"] for s in p["slots"] if s["name"] == "godwit_t"]
    bench.wait(30)
    check(lsns[-1] > lsn0 and lsns[-1] > lsns[0], "LSN grows: %r" % lsns)
    check(max(rates) > 100000, "WAL rate under pgbench: %r" % rates)
    check(retained[-1] > slot0["retained_bytes"] and retained[-1] > retained[0],
          "retained WAL grows while the slot is not consumed: %r" % retained)
    sub = wait_for("subscription reported", lambda: [s for s in pg_of(coord, "green")
                                                     ["subscriptions"] if s["name"] == "sub_t"], 10)[0]
    check(sub["enabled"], "subscription enabled")
    wait_for("subscription received LSN", lambda: [s for s in pg_of(coord, "green")["subscriptions"]
                                                   if s["received_lsn"] != "0/0"], 10)
    if pg["server_version_num"] >= 150000:
        check(sub["apply_error_count"] == 0, "apply error count on 15+: %r" % sub)
    pubs = pg_of(coord, "blue")["publications"]
    check(any(p["name"] == "pub_t" and p["table_count"] == 1 for p in pubs), "publication: %r" % pubs)
    disk = coord.agent("blue")["disk"]
    check(disk["ok"] and disk["size_bytes"] > disk["free_bytes"] > 0 and disk["free_inodes"] > 0,
          "filesystem figures: %r" % disk)
    if disk["device"]:
        check(disk["io"] is not None and disk["io"]["write_bytes_per_sec"] >= 0,
              "device I/O rates: %r" % disk)
    green.psql("DROP SUBSCRIPTION sub_t")


def test_database_stop_and_restart(rig):
    blue = rig.cluster("blue")
    coord = Coordinator(rig, ["blue"]).start()
    Agent(rig, "blue", coord, role="source", cluster=blue, interval="500ms").start()
    wait_for("blue metrics", lambda: reachable(coord, "blue"), 15)
    blue.stop(mode="fast")
    t0 = time.monotonic()
    pg = wait_for("unreachable reported", lambda: (lambda p: p if not p["reachable"] else None)(
        pg_of(coord, "blue")), 3)
    print("   unreachable reported after %.2f s: %s" % (time.monotonic() - t0, pg["error"]))
    check(pg["error"], "with a reason")
    reports = coord.agent("blue")["reports"]
    time.sleep(2)
    a = coord.agent("blue")
    check(a["state"] == "connected" and a["reports"] >= reports + 3,
          "agent kept heartbeating while the database was down")
    blue.start()
    t0 = time.monotonic()
    wait_for("metrics resume", lambda: reachable(coord, "blue") and
             pg_of(coord, "blue")["age_ms"] < 1500, 10)
    print("   metrics resumed %.2f s after restart" % (time.monotonic() - t0))
    check(coord.agent("blue")["max_report_gap_ms"] < 1000, "no heartbeat gap over one interval")


def test_locked_and_stopped_database_do_not_delay_heartbeat(rig):
    blue = rig.cluster("blue")
    coord = Coordinator(rig, ["blue"]).start()
    Agent(rig, "blue", coord, role="source", cluster=blue, interval="1s",
          extra_pg={"statement_timeout": "1s"}).start()
    wait_for("blue metrics", lambda: reachable(coord, "blue"), 15)
    # A session holds an exclusive lock on a catalog the metrics query reads.
    lock = rig.spawn("lock", [os.path.join(harness.PG_BIN, "psql"), "-X", "-h",
                              "127.0.0.1", "-p", str(blue.port), "-U", "postgres", "-c",
                              "BEGIN; LOCK TABLE pg_catalog.pg_database IN ACCESS EXCLUSIVE MODE; "
                              "SELECT pg_catalog.pg_sleep(6); COMMIT;"])
    # The metrics query waits on the lock until its statement timeout.
    pg = wait_for("the blocked query reported", lambda: (lambda p: p if p.get("error") and
                  "statement timeout" in p["error"] else None)(pg_of(coord, "blue")), 6)
    print("   lock reported: %s" % pg["error"])
    time.sleep(3)
    lock.stop()
    a = coord.agent("blue")
    check(a["state"] == "connected", "connected through the lock")
    check(a["max_report_gap_ms"] < 2000, "lock: heartbeat gap %r ms" % a["max_report_gap_ms"])
    wait_for("metrics after the lock", lambda: reachable(coord, "blue"), 10)
    # Every postgres process stopped: the query hangs, the heartbeat must not.
    blue.stop_signal()
    try:
        t0 = time.monotonic()
        pg = wait_for("stopped database reported", lambda: (lambda p: p if not p["reachable"]
                                                            else None)(pg_of(coord, "blue")), 8)
        print("   SIGSTOP reported after %.2f s: %s" % (time.monotonic() - t0, pg["error"]))
        time.sleep(4)
        a = coord.agent("blue")
        check(a["state"] == "connected", "connected while postgres is stopped")
        check(a["max_report_gap_ms"] < 2000, "SIGSTOP: heartbeat gap %r ms" % a["max_report_gap_ms"])
    finally:
        blue.cont()
    wait_for("metrics after SIGCONT", lambda: reachable(coord, "blue") and
             pg_of(coord, "blue")["age_ms"] < 2500, 15)


if __name__ == "__main__":
    harness.run([test_wal_slot_subscription_disk, test_database_stop_and_restart,
                 test_locked_and_stopped_database_do_not_delay_heartbeat])
