# ctest: one entry per case
"""Verify while a hostile workload writes (tests/integration/workload.py:
eight clients at a rate green follows, hot rows updated by every transaction, a unique
index as replica identity, REPLICA IDENTITY FULL, a keyless insert-only
table, TOASTed values, a partitioned table, pgbench's own): every verify says
equal, at 0 ms and at 12.5 ms each way between green and blue (the relay sits
between green's subscription and blue, and between the target agent and
blue); twenty verifies in a row without one false difference; differences
planted on green behind replication's back are each found, with their key;
the verify slot never stays behind, a long transaction on blue bounds its
creation with a message naming it, and a slot left by a target agent killed
mid-verify is dropped."""

import json
import time

import harness
import workload
from harness import check, wait_for
from test_migrate import in_state, mstatus, setup


# The workload's tables and two of test_migrate's, for planted differences.
TABLES = workload.TABLES + ["public.customers", "public.lines"]
# Every kind of hostile table, without pgbench's (the same kinds again, and
# the big pgbench_accounts): twenty verifies of these fit a test's time on
# a loaded machine.
HOSTILE = [t for t in workload.TABLES if not t.startswith("public.pgbench_")]
# The workload's rate (transactions/s). Unthrottled on a loaded 2-core
# machine blue commits about 1000/s and green's one apply worker follows at
# about 70% of that: its lag grows without end, and each verify, which waits
# for green to reach the position it compares at, waits longer than the one
# before. A verify cannot conclude against a subscriber that never catches
# up (nor could a cutover); the tests write at a rate green follows there.
RATE = 400


def reach_streaming(rig, wan_ms=None, options="", rate=RATE, tables=TABLES):
    """Blue with the workload's schema writing (rate transactions/s)
    from the start; the migration of tables through copy and catch-up to
    streaming."""
    options = "    tables: [%s]\n" % ", ".join(tables) + options
    blue, green, coord, plan = setup(rig, options=options, wan_ms=wan_ms)
    workload.create(blue, "shop", harness.PG_BIN, pgbench_init=False)
    load = workload.start(rig, blue, "shop", rate=rate)
    check(coord.ctl("migrate", "start", plan).returncode == 0, "started")
    wait_for("streaming", lambda: in_state(coord, "streaming"), 240, interval=0.5)
    return blue, green, coord, load


def run_verify(coord, timeout=240):
    """migrate verify to its end (started with --no-wait, followed in
    status): the report."""
    before = (mstatus(coord) or {}).get("verify")
    since = before["started_at_ms"] if before else None
    for _ in range(50):
        r = coord.ctl("migrate", "verify", "shop", "--no-wait", check_rc=False)
        if r.returncode == 0:
            break
        time.sleep(0.2)  # e.g. the target has not reported its tables yet
    check(r.returncode == 0, "verify started: %r" % (r.stdout + r.stderr))

    def ended():
        v = (mstatus(coord) or {}).get("verify")
        if v and v["started_at_ms"] != since and v["state"] != "running":
            return v
        return None
    return wait_for("verify to end", ended, timeout, interval=0.2)


def by_table(report):
    return {t["table"]: t for t in report["tables"]}


def describe(report):
    return json.dumps({"state": report["state"], "error": report["error"],
                       "not equal": [(t["table"], t["outcome"], t["diffs"][:5], t["detail"])
                                     for t in report["tables"] if t["outcome"] != "equal"]})


def rate(blue, seconds=3.0):
    """Transactions per second committed on blue over a few seconds."""
    a, t0 = workload.commits(blue, "shop"), time.monotonic()
    time.sleep(seconds)
    return (workload.commits(blue, "shop") - a) / (time.monotonic() - t0)


def check_kinds(report):
    """Each table compared by what identifies its rows."""
    t = by_table(report)
    check(t["public.uidx_accounts"]["key_kind"] == "replica identity index uidx_accounts_id" and
          t["public.uidx_accounts"]["key_columns"] == ["id"],
          "unique index identity: %r" % t["public.uidx_accounts"]["key_kind"])
    check(t["public.full_items"]["key_kind"] == "multiset (REPLICA IDENTITY FULL)",
          "FULL: %r" % t["public.full_items"]["key_kind"])
    check(t["public.events_log"]["key_columns"] == [], "keyless insert-only: multiset")
    check(t["public.parted"]["key_columns"] == ["id", "region"], "partitioned, through its root")
    check(t["public.hot_counters"]["key_kind"] == "primary key", "hot rows by primary key")


def check_window(report):
    """The report carries each window and the keys changed in it (the final
    check's input): the hot rows among them, bounded."""
    hot = by_table(report)["public.hot_counters"]
    check(hot["window"]["changes"] > 0 and hot["recent"]["count"] > 0 and
          hot["recent"]["key_columns"] == ["client"] and
          all(len(k) == 1 and 1 <= int(k[0]) <= workload.HOT_ROWS for k in hot["recent"]["keys"]),
          "hot rows' recent keys: %r" % hot["recent"])
    for t in report["tables"]:
        check(len(t["recent"]["keys"]) <= 1000, "recent keys bounded: %s" % t["table"])


def test_verify_twenty_times_under_load(rig):
    """At 0 ms: twenty verifies in a row while the workload writes, every
    one equal: no false difference, nothing unsettled."""
    blue, green, coord, load = reach_streaming(rig, tables=HOSTILE)
    tps = rate(blue)
    print("   workload: %.0f transactions/s on blue" % tps)
    check(tps > 200, "the workload writes: %.0f/s" % tps)
    took, changes, slot_ms, windows_checked = [], 0, 0, False
    for i in range(20):
        t0 = time.monotonic()
        rep = run_verify(coord)
        took.append(time.monotonic() - t0)
        check(rep["state"] == "equal", "verify %d of 20: %s" % (i + 1, describe(rep)))
        changes += sum(t["window"]["changes"] for t in rep["tables"])
        slot_ms = max([slot_ms] + [t["window"]["slot_ms"] for t in rep["tables"]])
        if i == 0:
            check_kinds(rep)
        # Whether the hot rows changed inside a verify's windows is chance
        # (one fast batch can see none): the first verify whose windows
        # saw them change must report their keys.
        if not windows_checked and by_table(rep)["public.hot_counters"]["window"]["changes"] > 0:
            check_window(rep)
            windows_checked = True
    print("   20 verifies equal, %.1f-%.1f s each; %d changes explained by the windows; the "
          "verify slot lived at most %d ms" % (min(took), max(took), changes, slot_ms))
    check(changes > 0, "the windows held changes (the verifies ran under load)")
    check(windows_checked, "some verify's windows saw the hot rows change")
    check(load.alive(), "the workload wrote the whole time")
    # The slot went with each verify.
    check(blue.psql("SELECT count(*) FROM pg_catalog.pg_replication_slots WHERE slot_name ="
                    " 'godwit_shop_verify'") == "0", "no verify slot left")


def test_verify_equal_under_load_across_a_wan(rig):
    """At 12.5 ms each way between green and blue (and the agents and the
    coordinator): the hot rows no longer "never settle"; every verify is
    equal while the workload writes. The batch size is small so that the
    big table is compared at several positions."""
    blue, green, coord, load = reach_streaming(rig, wan_ms=12.5,
                                               options="    options: {verify_batch_rows: 50000}\n")
    tps = rate(blue)
    print("   workload: %.0f transactions/s on blue" % tps)
    for i in range(3):
        t0 = time.monotonic()
        rep = run_verify(coord)
        check(rep["state"] == "equal", "verify %d at 12.5 ms each way: %s" % (i + 1, describe(rep)))
        acc = by_table(rep)["public.pgbench_accounts"]
        print("   verify %d equal in %.1f s; pgbench_accounts in %d batches, slot held at most %d "
              "ms" % (i + 1, time.monotonic() - t0, acc["batches"], acc["window"]["slot_ms"]))
    check(acc["batches"] == 4, "200000 rows at 50000 a position: %r" % acc["batches"])
    check_kinds(rep)
    check_window(rep)
    check(load.alive(), "the workload wrote the whole time")


def test_verify_finds_planted_differences_under_load(rig):
    """Changed on green alone while the workload writes: a row changed, one
    deleted, one added (primary key tables), a TOAST value, a row in one
    partition, a row of the unique-index table, a row added to the keyless
    insert-only table and one deleted from the FULL table: each found, with
    its key (a multiset's row by its values), and nothing else."""
    blue, green, coord, load = reach_streaming(rig)
    rep = run_verify(coord)
    check(rep["state"] == "equal", "equal before: %s" % describe(rep))
    green.psql("UPDATE public.customers SET name = 'tampered' WHERE id = 7;"
               "DELETE FROM public.lines WHERE order_id = 5 AND line = 2;"
               "INSERT INTO public.lines VALUES (999999, 1, 1);"
               "UPDATE public.docs SET body = 'x' || body WHERE id = %d;"
               "UPDATE public.parted SET v = -1 WHERE id = %d AND region = %d;"
               "UPDATE public.uidx_accounts SET balance = -5 WHERE id = %d;"
               "INSERT INTO public.events_log VALUES ('2020-01-01 00:00:00+00', 99, 'mallory');"
               "DELETE FROM public.full_items WHERE sku = 's%d'" % (
                   workload.DOCS_ROWS - 5, workload.PARTED_ROWS - 500,
                   (workload.PARTED_ROWS - 500) % 3, workload.UIDX_ROWS - 500,
                   workload.FULL_SKUS - 10), db="shop")
    for attempt in range(2):
        rep = run_verify(coord)
        check(rep["state"] == "different", "found: %s" % describe(rep))
        t = by_table(rep)
        bad = sorted(n for n, v in t.items() if v["outcome"] != "equal")
        check(bad == ["public.customers", "public.docs", "public.events_log", "public.full_items",
                      "public.lines", "public.parted", "public.uidx_accounts"],
              "only the planted tables differ: %s" % describe(rep))

        def diffs(name):
            return sorted((d["kind"], sorted(d["key"].items())) for d in t[name]["diffs"])
        check(diffs("public.customers") == [("changed", [("id", "7")])], diffs("public.customers"))
        check(diffs("public.lines") == [("extra_on_target", [("line", "1"), ("order_id", "999999")]),
                                        ("missing_on_target", [("line", "2"), ("order_id", "5")])],
              diffs("public.lines"))
        check(diffs("public.docs") == [("changed", [("id", str(workload.DOCS_ROWS - 5))])],
              "the TOAST value: %r" % diffs("public.docs"))
        pid = workload.PARTED_ROWS - 500
        check(diffs("public.parted") == [("changed", [("id", str(pid)), ("region", str(pid % 3))])],
              "the partition's row: %r" % diffs("public.parted"))
        check(diffs("public.uidx_accounts") == [("changed", [("id", str(workload.UIDX_ROWS - 500))])],
              "the unique-index table: %r" % diffs("public.uidx_accounts"))
        ev = t["public.events_log"]
        check(ev["diff_count"] == 1 and ev["diffs"][0]["kind"] == "extra_on_target" and
              ev["diffs"][0]["key"]["payload"] == "mallory" and ev["diffs"][0]["key"]["client"] == "99",
              "the keyless row: %r" % ev["diffs"])
        fi = t["public.full_items"]
        check(fi["diff_count"] == 1 and fi["diffs"][0]["kind"] == "missing_on_target" and
              fi["diffs"][0]["key"]["sku"] == "s%d" % (workload.FULL_SKUS - 10),
              "the FULL table's row: %r" % fi["diffs"])
    out = coord.ctl("migrate", "status", "shop").stdout.decode()
    check("verify: different" in out and "changed: id=7" in out, out)
    check(load.alive(), "the workload wrote the whole time")


def test_verify_slot_bounded_and_cleaned(rig):
    """The verify slot's creation waits for blue's running transactions: a
    transaction left open is waited for only verify_slot_wait, and the
    failure names it. A target agent killed mid-verify may leave the slot:
    the coordinator drops it (no verify runs), and abort drops it too."""
    blue, green, coord, load = reach_streaming(
        rig, options="    options: {verify_slot_wait: 2s, verify_batch_rows: 5000}\n",
        tables=HOSTILE)
    # A session holding a transaction id, as an idle-in-transaction
    # application session would.
    holder = rig.spawn("holder", [harness.os.path.join(harness.PG_BIN, "psql"), "-X", "-h",
                                  "127.0.0.1", "-p", str(blue.port), "-U", "postgres", "-d", "shop",
                                  "-c", "SET application_name = 'test_idle'; BEGIN; "
                                  "SELECT pg_catalog.txid_current(); SELECT pg_sleep(300)"])
    wait_for("the holder's transaction", lambda: blue.psql(
        "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE application_name = 'test_idle'"
        " AND backend_xid IS NOT NULL", db="shop") == "1", 20)
    rep = run_verify(coord)
    check(rep["state"] == "failed" and "test_idle" in (rep["error"] or "") and
          "idle_in_transaction_session_timeout" in rep["error"],
          "failed, naming the holder: %r" % rep["error"])
    print("   %s" % rep["error"][:400])
    check(blue.psql("SELECT count(*) FROM pg_catalog.pg_replication_slots WHERE slot_name ="
                    " 'godwit_shop_verify'") == "0", "no verify slot left after the wait")
    blue.psql("SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity"
              " WHERE application_name = 'test_idle'", db="shop")
    holder.stop()
    rep = run_verify(coord)
    check(rep["state"] == "equal", "equal once it ended: %s" % describe(rep))

    # Kill the target agent while a verify holds its slot (small batches:
    # many slots per table), then start it again.
    green_agent = [p for p in rig.procs if p.name == "agent-green"][-1]
    coord.ctl("migrate", "verify", "shop", "--no-wait")
    wait_for("a verify slot on blue", lambda: blue.psql(
        "SELECT count(*) FROM pg_catalog.pg_replication_slots WHERE slot_name ="
        " 'godwit_shop_verify'") == "1", 60, interval=0.01)
    green_agent.kill9()
    left = blue.psql("SELECT count(*) FROM pg_catalog.pg_replication_slots WHERE slot_name ="
                     " 'godwit_shop_verify'")
    print("   verify slot left by the killed agent: %s" % left)
    harness.Agent(rig, "green", coord.dial, role="target", cluster=green,
                  peers={"blue": blue}).start()
    wait_for("green back", lambda: coord.agent("green")["state"] == "connected", 30)
    # The verify that was running fails or finishes; once none runs, a slot
    # left behind is dropped within seconds.
    wait_for("verify over", lambda: (mstatus(coord) or {}).get("verify", {}).get("state")
             not in (None, "running"), 300, interval=0.5)
    wait_for("no verify slot left", lambda: blue.psql(
        "SELECT count(*) FROM pg_catalog.pg_replication_slots WHERE slot_name ="
        " 'godwit_shop_verify'") == "0", 60, interval=0.5)
    rep = run_verify(coord)
    check(rep["state"] == "equal", "equal after the agent came back: %s" % describe(rep))
    # A slot left behind for sure (as a dead agent leaves it): dropped by the
    # coordinator once it has seen it for a while with no verify running.
    blue.psql("SELECT pg_catalog.pg_create_logical_replication_slot('godwit_shop_verify',"
              " 'pgoutput')", db="shop")
    t0 = time.monotonic()
    wait_for("the left slot dropped", lambda: blue.psql(
        "SELECT count(*) FROM pg_catalog.pg_replication_slots WHERE slot_name ="
        " 'godwit_shop_verify'") == "0", 60, interval=0.5)
    print("   a verify slot left behind was dropped after %.1f s" % (time.monotonic() - t0))
    # Abort drops it too: leave one (as a dead agent would), then abort.
    blue.psql("SELECT pg_catalog.pg_create_logical_replication_slot('godwit_shop_verify',"
              " 'pgoutput')", db="shop")
    check(coord.ctl("migrate", "abort", "shop").returncode == 0, "abort")
    wait_for("aborted", lambda: in_state(coord, "aborted"), 120, interval=0.5)
    check(blue.psql("SELECT count(*) FROM pg_catalog.pg_replication_slots") == "0",
          "abort left no slot on blue: %s" % blue.psql(
              "SELECT string_agg(slot_name, ',') FROM pg_catalog.pg_replication_slots"))


if __name__ == "__main__":
    harness.run([test_verify_twenty_times_under_load, test_verify_equal_under_load_across_a_wan,
                 test_verify_finds_planted_differences_under_load,
                 test_verify_slot_bounded_and_cleaned])
