# ctest: one entry per case
"""A 30 s partition between the datacenters, in three phases.

The rig is the runbook's (docs/runbook-two-datacenters.md): Frankfurt holds
blue, its agent, the coordinator and (for the cutover) PgBouncer with its
proxy agent; Oslo holds green and its agent. "Between the datacenters" is
then every relay that joins the two sites: green's agent to the
coordinator (relay-coordinator: the Frankfurt agents dial the coordinator
directly), green's agent and subscription to blue (relay-replication) and
blue's agent to green (relay-reverse). (PgBouncer's own link to green is
not relayed: the aborted cutover never gets as far as using it.) The
partition is a blackhole (the relays' hold mode): nothing crosses and
nothing is reset, as a WAN that loses every packet for 30 s does to TCP
connections, which retransmit and outlive it. No operator command is
given between the partition and the checks:

- during the copy (the link capped so that the copy takes a while): the
  migration reaches streaming with every table equal, and the copy resumed
  where it was: the tables copied before the partition were not copied
  again, the table being copied went on from its rows, the slot and its
  snapshot were made once;
- during streaming, with pgbench writing on blue: the lag comes back under
  max_lag, verify says equal, and no pgbench transaction failed;
- during a cutover (the partition starts right as every proxy is paused,
  through the coordinator's cutover-stop-after-pause failpoint): the
  cutover aborts within max_write_pause plus a measured margin, PgBouncer
  stays on blue, blue is writable through it, pgbench loses no
  transaction; after the heal a rehearsal turns green's synchronous
  apply off again (the abort could not reach it) and a second cutover
  switches to green.

- during the copy again, with a partition that resets every connection
  between the sites and refuses new ones (the relays' drop mode): the
  copy's snapshot is held by blue's agent on a local connection, so the
  copy goes on in it after the heal; only the table being copied at the
  cut is copied again (docs/migrate.md, "A copy that is interrupted").
"""

import json
import os
import re
import signal
import time

import harness
from harness import check, wait_for
from test_cutover import bench_clean, can_login, gates_open, history, on_port, ready
from test_cutover_faults import cutover_in_background, proc_state, report_of
from test_migrate import TABLES, compare, in_state, mstatus, setup, verify_equal

PARTITION_S = 30


def between_sites(coord):
    """Every relay between the two datacenters."""
    return coord.wan + [coord.relay]


def partition(relays, mode="hold"):
    """Cuts every relay of relays (hold: a blackhole); returns when."""
    for r in relays:
        r.partition(mode)
    return time.monotonic()


def heal(relays):
    """Ends the partition; returns when."""
    for r in relays:
        r.heal()
    return time.monotonic()


def two_sites(rig, options="", rate_kbit=0, extra_agents=()):
    """setup() with blue (and extra_agents) beside the coordinator and green
    across relays that add 1 ms each way, the replication links capped at
    rate_kbit (0: no cap)."""
    return setup(rig, options=options, extra_agents=list(extra_agents), wan_ms=1,
                 near=("blue",) + tuple(extra_agents), wan_rate_kbit=rate_kbit)


def agent_log(rig, name):
    return [p for p in rig.procs if p.name == "agent-" + name][-1].log()


def copy_view(st):
    """The copy's tables {table: (state, rows)} and its bytes done, total."""
    tables = {t["table"]: (t["state"], t["rows_copied"]) for t in st.get("tables") or []}
    c = st.get("copy") or {}
    return tables, c.get("bytes_done") or 0, c.get("bytes_total") or 0


def check_one_snapshot(rig):
    """Blue's agent made our slot and its snapshot once, and no copy
    started over from its first table."""
    blue_log, green_log = agent_log(rig, "blue"), agent_log(rig, "green")
    made = len(re.findall(r'slot "godwit_shop" created, consistent at', blue_log))
    check(made == 1 and "starts again from the first table" not in green_log,
          "the slot and its snapshot made once (%d), never started over" % made)


BIG = "public.pgbench_accounts"


def cut_mid_copy(rig, mode):
    """Starts the migration between two sites and partitions them (mode)
    once the small tables are in and the biggest one is a quarter copied.
    16 Mbit/s between the sites: the copy (about 27 MB, pgbench_accounts 24
    MB of it) takes about 15 s, long enough to cut in the middle. Returns
    blue, green, coord, the relays, the status just before the cut, the
    start, the cut and the big table's rows."""
    blue, green, coord, plan = two_sites(rig, rate_kbit=16000)
    relays = between_sites(coord)
    t_start = time.monotonic()
    check(coord.ctl("migrate", "start", plan).returncode == 0, "started")
    total_rows = int(blue.psql("SELECT count(*) FROM %s" % BIG, db="shop"))
    st = wait_for("the copy a quarter into %s" % BIG, lambda: (lambda s: s if s and
                  s["state"] == "copy" and copy_view(s)[0].get(BIG, ("", 0))[1] > total_rows // 4
                  else None)(mstatus(coord)), 120, interval=0.2)
    t_cut = partition(relays, mode)
    return blue, green, coord, relays, st, t_start, t_cut, total_rows


def test_partition_during_copy(rig):
    blue, green, coord, relays, st, t_start, t_cut, total_rows = cut_mid_copy(rig, "hold")
    before, done_before, total = copy_view(st)
    copied_before = sorted(t for t, (state, _) in before.items() if state == "copied")
    rows_before = before[BIG][1]
    print("   partition %.1f s after the start: %s at %d of %d rows, %.1f of %.1f MiB; "
          "copied: %s" % (t_cut - t_start, BIG, rows_before, total_rows, done_before / 2**20,
                          total / 2**20, copied_before))
    check(before[BIG][0] == "copying" and copied_before, "cut mid-copy: %r" % before)
    # 30 s with nothing crossing. The coordinator loses green's agent.
    wait_for("green's agent lost", lambda: coord.agent("green")["state"] != "connected", 15,
             interval=0.5)
    time.sleep(max(0.0, t_cut + PARTITION_S - time.monotonic()))
    check(in_state(coord, "copy"), "still in copy during the partition")
    t_heal = heal(relays)
    # No operator command from here on. The copy goes on from where it was:
    # every progress the coordinator shows until the copy ends has the big
    # table at or past its rows before the cut and the tables copied then
    # still copied (a copy started over counts from zero again).
    samples = []

    def copy_over():
        s = mstatus(coord)
        if s and s["state"] == "copy":
            samples.append((time.monotonic(), copy_view(s)))
            return None
        return s
    wait_for("the copy over after the heal", copy_over, 120, interval=0.2)
    back = [(t, v) for t, v in samples if v[1] > done_before]
    if back:
        print("   %.1f s after the heal: %s at %d rows, %.1f MiB" % (
            back[0][0] - t_heal, BIG, back[0][1][0][BIG][1], back[0][1][1] / 2**20))
    for _, (tables, done, _) in samples:
        check(done >= done_before and tables.get(BIG, ("", 0))[1] >= rows_before and
              all(tables.get(t, ("", 0))[0] == "copied" for t in copied_before),
              "the copy went on from where it was: %r, before %r" % (tables, before))
    st = wait_for("streaming", lambda: in_state(coord, "streaming"), 120, interval=0.5)
    t_stream = time.monotonic()
    print("   streaming %.1f s after the heal (%.1f s after the start)" % (
        t_stream - t_heal, t_stream - t_start))
    # One slot, one snapshot, each table copied once.
    log = agent_log(rig, "green")
    check_one_snapshot(rig)
    for t in before:
        schema, name = t.split(".", 1)
        n = log.count('table "%s"."%s" copied:' % (schema, name.strip('"')))
        check(n == 1, "%s copied once, not %d times" % (t, n))
    audit = json.loads(coord.ctl("migrate", "audit", "shop", "--json").stdout)
    failed = [e for e in audit["events"] if e["kind"] == "failed"]
    check(not failed, "no step failed: %r" % failed)
    check(st["tables_ready"] == len(st["tables"]), "all tables ready")
    verify_equal(coord)
    check(compare(blue, green, TABLES) is None, "every table equal")


def test_partition_resetting_during_copy(rig):
    # As test_partition_during_copy, but the partition resets every
    # connection between the sites and refuses new ones for 30 s (the
    # relays' drop mode: a firewall failover, a NAT that forgot them). The
    # copy's connections to blue die with it; its snapshot, held by blue's
    # agent on a local connection, does not. After the heal the copy goes
    # on in the same snapshot: the tables copied before the cut are not
    # copied again, the one being copied starts over (its partial rows
    # emptied), the slot is made once.
    blue, green, coord, relays, st, t_start, t_cut, total_rows = cut_mid_copy(rig, "drop")
    before, _, _ = copy_view(st)
    copied_before = sorted(t for t, (state, _) in before.items() if state == "copied")
    print("   reset %.1f s after the start: %s at %d of %d rows; copied: %s" % (
        t_cut - t_start, BIG, before[BIG][1], total_rows, copied_before))
    check(before[BIG][0] == "copying" and copied_before, "cut mid-copy: %r" % before)
    time.sleep(max(0.0, t_cut + PARTITION_S - time.monotonic()))
    check(in_state(coord, "copy"), "still in copy during the partition")
    resets = sum(r.stats().get("resets", 0) for r in relays)
    check(resets > 0, "the partition reset connections: %d" % resets)
    t_heal = heal(relays)
    st = wait_for("streaming", lambda: in_state(coord, "streaming"), 180, interval=0.5)
    t_stream = time.monotonic()
    print("   streaming %.1f s after the heal (%.1f s after the start)" % (
        t_stream - t_heal, t_stream - t_start))
    check_one_snapshot(rig)
    log = agent_log(rig, "green")
    done = [int(n) for n in re.findall(r"(\d+) of them copied whole already in this snapshot", log)]
    check(done and max(done) >= len(copied_before),
          "a later run took the copied tables as done: %r" % done)
    for t in copied_before:
        schema, name = t.split(".", 1)
        n = log.count('table "%s"."%s" copied:' % (schema, name.strip('"')))
        check(n == 1, "%s copied once, not %d times" % (t, n))
    check(st["tables_ready"] == len(st["tables"]), "all tables ready")
    verify_equal(coord)
    check(compare(blue, green, TABLES) is None, "every table equal")


def lagging(coord, bytes_under=None):
    """The migration's status when it is streaming with its lag under
    max_lag (and under bytes_under bytes, when given)."""
    st = mstatus(coord)
    if not st or st["state"] != "streaming" or st["lag_bytes"] is None or \
            st["lag_seconds"] is None:
        return None
    if st["lag_seconds"] * 1000 >= st["max_lag_ms"]:
        return None
    if bytes_under is not None and st["lag_bytes"] >= bytes_under:
        return None
    return st


def test_partition_during_streaming(rig):
    seconds = 60
    blue, green, coord, plan = two_sites(rig, options="    options: {max_lag: 5s}\n")
    relays = between_sites(coord)
    check(coord.ctl("migrate", "start", plan).returncode == 0, "started")
    wait_for("streaming", lambda: in_state(coord, "streaming"), 120, interval=0.5)
    bench = blue.pgbench(["-n", "-c", "2", "-R", "100", "-T", str(seconds), "shop"])
    t_bench = time.monotonic()
    wait_for("caught up under pgbench", lambda: lagging(coord, 1 << 20), 30, interval=0.5)
    t_cut = partition(relays)
    wait_for("green's agent lost", lambda: coord.agent("green")["state"] != "connected", 15,
             interval=0.5)
    time.sleep(max(0.0, t_cut + PARTITION_S - 1 - time.monotonic()))
    st = mstatus(coord)
    print("   after %.0f s of partition: state %s, lag %s bytes" % (
        time.monotonic() - t_cut, st["state"], st["lag_bytes"]))
    check(st["state"] == "streaming" and st["lag_bytes"] > 256 * 1024,
          "blue's writes held back by the partition: %s bytes" % st["lag_bytes"])
    time.sleep(max(0.0, t_cut + PARTITION_S - time.monotonic()))
    t_heal = heal(relays)
    # No operator command: green reconnects and catches up by itself.
    st = wait_for("lag under max_lag and 1 MiB", lambda: lagging(coord, 1 << 20), 60,
                  interval=0.2)
    caught = time.monotonic()
    print("   caught up %.1f s after the heal: lag %d bytes, %.3f s" % (
        caught - t_heal, st["lag_bytes"], st["lag_seconds"]))
    wait_for("green's agent back", lambda: coord.agent("green")["state"] == "connected", 15,
             interval=0.5)
    check(time.monotonic() - t_bench < seconds - 3, "caught up while pgbench wrote")
    verify_equal(coord)
    bench_clean(bench, seconds)
    wait_for("every table equal", lambda: compare(blue, green, TABLES) is None, 60, interval=1)
    audit = json.loads(coord.ctl("migrate", "audit", "shop", "--json").stdout)
    ops = [e["detail"]["command"] for e in audit["events"] if e["kind"] == "operator"]
    check(ops == ["migrate_start", "migrate_verify"] and audit["state"] == "streaming",
          "no operator command but the start and the verify: %r" % ops)


def test_partition_during_cutover(rig):
    seconds = 80
    max_pause = 3.0
    blue, green, coord, bouncer, bench = ready(rig, bench_seconds=seconds, wan_ms=1,
                                               near=("blue", "px"), max_write_pause="3s")
    relays = between_sites(coord)
    # The cutover stops (its coordinator SIGSTOPped by the failpoint) once
    # PgBouncer is paused; the partition starts there and the coordinator
    # goes on: green's side is gone for the rest of the write pause.
    coord.proc.stop()
    coord.start(failpoint="cutover-stop-after-pause")
    gates_open(coord, ("blue", "green", "px"))
    t0 = time.monotonic()
    ctl = cutover_in_background(rig, coord)
    wait_for("the coordinator stopped after the pause", lambda: proc_state(coord.proc) == "T",
             20, interval=0.01)
    t_cut = partition(relays)
    os.kill(coord.proc.proc.pid, signal.SIGCONT)
    stopped = time.monotonic() - t_cut
    rc, rep = report_of(ctl, 60)
    ended = time.monotonic()
    print("   cutover: exit %d, %.2f s after it began, write pause %s ms, %.3f s stopped; %s" % (
        rc, ended - t0, rep.get("write_pause_ms"), stopped, rep.get("reason")))
    print("   timeline %s" % [(t["step"], t["ok"], round(t["ms"], 1))
                              for t in rep.get("timeline", [])])
    check(rc == 5 and rep.get("state") == "aborted" and rep.get("outcome") == "rolled_back",
          "aborted and rolled back: exit 5, got %d: %s" % (rc, json.dumps(rep)[-3000:]))
    # Within max_write_pause: the step that waits for green gives up when
    # the budget is spent (the coordinator notices at its next tick, every
    # 100 ms), then blue's fence is lifted and PgBouncer resumed on blue
    # (10 to 40 ms here): at most 185 ms past the budget in our runs.
    check(rep["write_pause_ms"] < max_pause * 1000 + 400,
          "the write pause within max_write_pause: %.1f ms" % rep["write_pause_ms"])
    # godwitctl's own bound (docs/cutover.md): max_write_pause plus
    # abort_timeout (10 s) of the pause, plus a second or two. The last
    # step, restore apply on green, fails when the coordinator marks green
    # lost (lost_after, 3 s here): at once, or up to 3 s later.
    before_pause = sum(t["ms"] for t in rep["timeline"] if t["step"] == "check roles") / 1000
    check(ended - t0 - before_pause < max_pause + 10 + 2,
          "godwitctl returned within max_write_pause and abort_timeout of the pause "
          "(%.2f s, %.2f s before the pause)" % (ended - t0, before_pause))
    check(on_port(bouncer) == blue.port and can_login(blue), "traffic on blue, blue writable")
    bouncer.psql("INSERT INTO public.customers (name) VALUES ('during the partition')")
    check(in_state(coord, "streaming"), "still streaming")
    # The abort could not turn green's synchronous apply off again (green
    # was cut off): the coordinator does it once green is back.
    sub = lambda: green.psql("SELECT subsynccommit FROM pg_catalog.pg_subscription", db="shop")
    time.sleep(max(0.0, t_cut + PARTITION_S - time.monotonic()))
    left = sub()
    t_heal = heal(relays)
    wait_for("green's subscription commits asynchronously again", lambda: sub() == "off", 30,
             interval=0.2)
    print("   green's subscription: synchronous_commit %s during the partition, off %.1f s "
          "after the heal" % (left, time.monotonic() - t_heal))
    check(left == "on", "the abort left it on (green cut off): %s" % left)
    # After the heal the gates open again by themselves and a second
    # cutover switches to green. (The coordinator is started again first
    # only to drop its failpoint, which would stop it in this one too.)
    coord.proc.stop()
    coord.start()
    # The cutover's gate predicts the pause from the lag in seconds
    # (replay_lag, which the partition left at seconds until green's next
    # feedback): wait until it is well under max_write_pause.
    wait_for("caught up", lambda: (lambda s: s and s["lag_seconds"] < max_pause / 6)(
        lagging(coord, 1 << 20)), 60, interval=0.2)
    gates_open(coord, ("blue", "green", "px"))
    t_gates = time.monotonic()
    r = coord.ctl("cutover", "shop", "--json", check_rc=False)
    rep = json.loads(r.stdout or b"{}")
    print("   second cutover %.1f s after the heal: exit %d, write pause %s ms" % (
        t_gates - t_heal, r.returncode, rep.get("write_pause_ms")))
    check(r.returncode == 0 and rep.get("state") == "done", "second cutover done: %s %s" % (
        r.stdout.decode()[-3000:], r.stderr.decode()))
    check(on_port(bouncer) == green.port and not can_login(blue), "on green, blue fenced")
    print("   pgbench ran %.0f s when the second cutover was done" % (
        time.monotonic() - bench.started))
    check(time.monotonic() - bench.started < seconds - 3, "while pgbench ran")
    bench_clean(bench, seconds)
    hb, hg = history(blue), history(green)
    check(not set(hb) - set(hg), "blue's history all on green")
    check(green.psql("SELECT count(*) FROM public.customers WHERE name = 'during the partition'",
                     db="shop") == "1", "the write made during the partition is on green")


if __name__ == "__main__":
    harness.run([test_partition_during_copy, test_partition_resetting_during_copy,
                 test_partition_during_streaming, test_partition_during_cutover])
