# ctest: one entry per case
"""The physical path (method: physical) on real servers: green's agent makes
green a standby of blue with pg_basebackup on our physical slot and starts
it; the migration streams; the cutover pauses PgBouncer, fences blue, waits
until green has replayed blue's final LSN, promotes green, gives the
application's role its LOGIN back there (the fence came with the WAL),
switches and resumes: zero failed pgbench transactions, every row blue
committed on green, every database of blue's server there too. An abort
removes the standby and our slot; the plan refuses what this path cannot
do, naming the line and the field."""

import json
import os
import shutil
import subprocess
import time

import harness
from harness import Agent, Coordinator, PgCluster, check, wait_for
from test_cutover import (PgBouncer, agents_connected, bench_clean, history, on_port,
                          proxy_agent)
from test_migrate import SCHEMA, in_state, mstatus
from test_verify_load import run_verify

BENCH_SECONDS = 25


def standby_cluster(rig, name="green"):
    """A cluster green's agent makes itself: a folder and a port, no initdb.
    The start command gives the port and socket folder on its command line:
    the base backup brings blue's postgresql.auto.conf (blue's port)."""
    c = PgCluster(rig, name)
    rig.clusters.append(c)  # stopped at the end if it runs
    c.running = True
    return c


def standby_yaml(c):
    pg_ctl = os.path.join(harness.PG_BIN, "pg_ctl")
    opts = "-p %d -k %s -c listen_addresses=127.0.0.1" % (c.port, c.dir)
    return ("\n    data_directory: %s\n    run_as: [runuser, -u, postgres, --]\n"
            "    start: [%s, -D, %s, -l, %s, -o, '%s', -w, -t, '60', start]\n"
            "    stop: [%s, -D, %s, -m, fast, -w, -t, '60', stop]" % (
                c.data, pg_ctl, c.data, os.path.join(c.dir, "log"), opts, pg_ctl, c.data))


def setup(rig, plan_extra="", proxies=True, reverse=False):
    """Blue with the shop database (and a second database, which moves with
    the server), green's agent with a standby section, a coordinator, and
    (proxies) PgBouncer in front of blue with its agent. reverse: the way
    back (cutover.reverse on): blue's agent gets a standby section for its
    own server and a peer for green; blue has wal_log_hints on (pg_rewind)."""
    blue = rig.cluster("blue", extra={"wal_keep_size": "'64MB'", "wal_log_hints": "on"})
    blue.psql("CREATE DATABASE shop")
    blue.psql("CREATE DATABASE other")
    blue.psql(SCHEMA, db="shop")
    blue.psql("CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g", db="other")
    subprocess.run([os.path.join(harness.PG_BIN, "pgbench"), "-i", "-q", "-s", "2", "-h",
                    "127.0.0.1", "-p", str(blue.port), "-U", "postgres", "shop"], check=True,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    blue.psql("CREATE ROLE godwit_repl WITH REPLICATION LOGIN SUPERUSER")
    blue.psql("CREATE ROLE app LOGIN")
    blue.psql("GRANT USAGE ON SCHEMA public TO app;"
              "GRANT ALL ON ALL TABLES IN SCHEMA public TO app;"
              "GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO app", db="shop")
    green = standby_cluster(rig)
    coord = Coordinator(rig, ["blue", "green", "px"]).start()
    if reverse:
        Agent(rig, "blue", coord, role="source", cluster=blue,
              extra_pg={"standby": standby_yaml(blue)},
              peers={"green": {"host": "127.0.0.1", "port": green.port,
                               "user": "godwit_repl"}}).start()
    else:
        Agent(rig, "blue", coord, role="source", cluster=blue).start()
    Agent(rig, "green", coord, role="target", cluster=green,
          extra_pg={"standby": standby_yaml(green)},
          peers={"blue": {"host": "127.0.0.1", "port": blue.port, "user": "godwit_repl"}}).start()
    bouncer = None
    if proxies:
        bouncer = PgBouncer(rig, blue.port)
        proxy_agent(rig, coord, bouncer, blue, green)
    for n in ("blue", "green") + (("px",) if proxies else ()):
        wait_for("%s connected" % n, lambda: coord.agent(n)["state"] == "connected", 15)
    plan = rig.path("plan.yaml")
    with open(plan, "w") as f:
        f.write("migrations:\n"
                "  - name: shop\n"
                "    method: physical\n"
                "    source: {agent: blue, database: shop}\n"
                "    target: {agent: green, database: shop}\n"
                "    replication: {peer: blue}\n" +
                ("    reverse_replication: {peer: green}\n" if reverse else "") +
                "    options: {max_lag: 5s}\n"
                "    cutover:\n      app_roles: [app]\n"
                "      proxies: [{agent: px, proxy: pgb}]\n      max_write_pause: 3s\n" +
                ("" if reverse else "      reverse: 'off'\n") + plan_extra)
    return blue, green, coord, bouncer, plan


def slot_reported_active(coord, agent="blue", slot="godwit_shop"):
    """Whether agent's last report shows slot active (what the cutover's
    gate reads)."""
    pg = (coord.agent(agent) or {}).get("postgres") or {}
    return any(s["name"] == slot and s["active"] for s in pg.get("slots") or [])


def physical_slot(cluster):
    return cluster.psql("SELECT coalesce(string_agg(slot_type || ':' || slot_name || ':' || "
                        "active, ','), '') FROM pg_replication_slots")


def test_physical_cutover_through_pgbouncer(rig):
    blue, green, coord, bouncer, plan = setup(rig)
    bench = rig.spawn("pgbench", [os.path.join(harness.PG_BIN, "pgbench"), "-n", "-c", "4",
                                  "-R", "100", "-T", str(BENCH_SECONDS), "-h", "127.0.0.1",
                                  "-p", str(bouncer.port), "-U", "app", "shop"])
    t0 = time.monotonic()
    r = coord.ctl("migrate", "start", plan, check_rc=False)
    check(r.returncode == 0, "started: %r" % (r.stdout + r.stderr))
    st = wait_for("streaming", lambda: in_state(coord, "streaming"), 120, interval=0.3)
    print("   streaming after %.1f s" % (time.monotonic() - t0))
    check(st["method"] == "physical" and st["scope"] == "server", "physical: %r" % st)
    check(physical_slot(blue) == "physical:godwit_shop:true", "our physical slot, active: %r" %
          physical_slot(blue))
    check(green.psql("SELECT pg_is_in_recovery()") == "t", "green is a standby")
    # the whole server: the other database came too
    check(green.psql("SELECT count(*) FROM t", db="other") == "1000", "the other database")
    st = wait_for("standby reported streaming", lambda: (lambda s: s if s and s.get("standby") and
                  s["standby"]["streaming"] and s["last_error"] is None else None)(mstatus(coord)),
                  30, interval=0.3)
    # The gate reads our slot's state from blue's report, up to an interval
    # older than green's.
    wait_for("blue reports our slot active", lambda: slot_reported_active(coord), 10)
    pg = [a for a in coord.status()["agents"] if a["name"] == "green"][0]["postgres"]
    check(pg["in_recovery"] and pg["wal_receiver_streaming"] and pg["replay_lsn"] and
          pg["basebackup"]["phase"] == "done", "green's report: %r" % pg)
    human = coord.ctl("migrate", "status", "shop").stdout.decode()
    check("physical: the whole server blue -> green" in human and "standby: streaming" in human,
          "human status: %s" % human)

    # A rehearsal: blue fenced and unfenced, nothing promoted, nothing switched.
    r = coord.ctl("cutover", "shop", "--dry-run", "--json", check_rc=False)
    rep = json.loads(r.stdout or b"{}")
    check(r.returncode == 0 and rep.get("state") == "done",
          "rehearsal: %s %s" % (r.stdout.decode()[-2000:], r.stderr.decode()))
    steps = [t["step"] for t in rep["timeline"]]
    check("promote" not in steps and green.psql("SELECT pg_is_in_recovery()") == "t" and
          on_port(bouncer) == blue.port and
          blue.psql("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'app'") == "t",
          "a rehearsal promotes nothing: %r" % steps)
    print("   rehearsal: write pause %.1f ms" % rep["write_pause_ms"])

    # The cutover.
    r = coord.ctl("cutover", "shop", "--json", check_rc=False)
    rep = json.loads(r.stdout or b"{}")
    check(r.returncode == 0 and rep.get("state") == "done",
          "cutover: %s %s" % (r.stdout.decode()[-3000:], r.stderr.decode()))
    steps = [t["step"] for t in rep["timeline"]]
    print("   cutover: write pause %.1f ms: %s" % (rep["write_pause_ms"], [
        (t["step"], round(t["ms"], 1)) for t in rep["timeline"]]))
    for t in rep["timeline"]:
        if t["step"] == "promote":
            print("   promote on green: %r" % [(s["name"], round(s["ms"], 1)) for a in
                                               t.get("agents", []) for s in a.get("steps") or []])
    check(steps[:5] == ["check roles", "pause", "freeze", "promote", "switch"] or
          steps[:4] == ["check roles", "pause", "freeze", "promote"], "steps: %r" % steps)
    check("sequences" not in steps and "follow" not in steps, "no sequences, no follow")
    check(time.monotonic() - t0 < BENCH_SECONDS - 3, "the cutover happened while pgbench ran")
    check(green.psql("SELECT pg_is_in_recovery()") == "f", "green promoted")
    check(green.psql("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'app'") == "t",
          "app logs in on green")
    check(blue.psql("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'app'") == "f",
          "blue fenced for good")
    check(on_port(bouncer) == green.port, "PgBouncer on green")
    st = mstatus(coord)
    check(st["state"] == "switched", "switched: %r" % st["state"])

    bench_clean(bench, BENCH_SECONDS)
    hb, hg = history(blue), history(green)
    missing = set(hb) - set(hg)
    check(not missing and len(hg) > len(hb), "blue's %d history rows all on green (%d), and "
          "green took writes after the switch: missing %d" % (len(hb), len(hg), len(missing)))
    sums = green.psql("SELECT (SELECT sum(delta) FROM public.pgbench_history) = "
                      "(SELECT sum(abalance) FROM public.pgbench_accounts)", db="shop")
    check(sums == "t", "green: history and balances agree")
    # sequences are physical: a new row on green gets a fresh key
    bouncer.psql("INSERT INTO public.customers (name) VALUES ('after the switch')")
    check(green.psql("SELECT nextval('public.invoice_no')", db="shop") == "42",
          "sequences came with the WAL")

    # Cleanup drops our slot on blue; green, the primary now, is left alone.
    check(coord.ctl("cleanup", "shop", check_rc=False).returncode == 0, "cleanup")
    wait_for("done", lambda: in_state(coord, "done"), 60, interval=0.3)
    check(physical_slot(blue) == "", "no slot left on blue: %r" % physical_slot(blue))
    check(green.psql("SELECT count(*) FROM public.customers", db="shop") == "2001",
          "green untouched by the cleanup")


def test_physical_abort_removes_the_standby(rig):
    blue, green, coord, _, plan = setup(rig, proxies=False)
    check(coord.ctl("migrate", "start", plan, check_rc=False).returncode == 0, "started")
    wait_for("streaming", lambda: in_state(coord, "streaming"), 120, interval=0.3)
    # Starting again finds the standby there (idempotent): nothing copied again.
    r = coord.ctl("migrate", "abort", "shop", check_rc=False)
    check(r.returncode == 0, "abort: %r" % (r.stdout + r.stderr))
    wait_for("aborted", lambda: in_state(coord, "aborted"), 60, interval=0.3)
    check(not os.path.exists(green.data), "the standby's data directory is gone")
    check(physical_slot(blue) == "", "no slot left on blue: %r" % physical_slot(blue))
    green.running = False
    # blue untouched
    check(blue.psql("SELECT count(*) FROM public.customers", db="shop") == "2000", "blue as it was")


def test_physical_plan_refuses_what_it_cannot_do(rig):
    coord = Coordinator(rig, ["blue", "green"]).start()
    base = ("migrations:\n  - name: shop\n    method: physical\n"
            "    source: {agent: blue, database: shop}\n"
            "    target: {agent: green, database: shop}\n    replication: {peer: blue}\n")
    cases = [
        ("    tables: [public.a]\n    cutover: {reverse: 'off'}\n", "tables",
         "copies the whole server"),
        ("    import_profile: {synchronous_commit: 'off'}\n    cutover: {reverse: 'off'}\n",
         "import_profile", "imports nothing"),
        ("    cutover: {reverse: 'off'}\n    options: {max_lag: 5s}\n", None, None),
    ]
    bad = rig.path("plan.yaml")
    for extra, field, words in cases:
        with open(bad, "w") as f:
            f.write(base + extra)
        r = coord.ctl("plan", "check", bad, check_rc=False)
        err = (r.stdout + r.stderr).decode()
        if field is None:  # loads; its agents are not there
            check(r.returncode != 2 and "is not connected" in err, "a valid plan: %s" % err)
            continue
        check(r.returncode == 2 and bad + ":" in err and field in err and words in err,
              "refused naming %s: %s" % (field, err))
    with open(bad, "w") as f:
        f.write(base.replace("physical", "photographic"))
    r = coord.ctl("plan", "check", bad, check_rc=False)
    err = (r.stdout + r.stderr).decode()
    check(r.returncode != 0 and "method" in err and "logical" in err, "bad method: %s" % err)


def test_physical_abort_after_promote_fences_green(rig):
    """The switch fails after green was promoted (PgBouncer's include file
    cannot be replaced): the cutover aborts, green is fenced again for good
    before blue's fence is lifted, traffic stays on blue, no transaction
    fails."""
    seconds = 22
    blue, green, coord, bouncer, plan = setup(rig)
    bench = rig.spawn("pgbench", [os.path.join(harness.PG_BIN, "pgbench"), "-n", "-c", "4",
                                  "-R", "100", "-T", str(seconds), "-h", "127.0.0.1",
                                  "-p", str(bouncer.port), "-U", "app", "shop"])
    t0 = time.monotonic()
    check(coord.ctl("migrate", "start", plan, check_rc=False).returncode == 0, "started")
    wait_for("streaming", lambda: in_state(coord, "streaming"), 120, interval=0.3)
    wait_for("standby reported", lambda: (mstatus(coord) or {}).get("standby"), 30, interval=0.3)
    wait_for("blue reports our slot active", lambda: slot_reported_active(coord), 10)
    os.rename(bouncer.include, bouncer.include + ".real")
    os.makedirs(bouncer.include)
    with open(os.path.join(bouncer.include, "keep"), "w") as f:
        f.write("x")
    r = coord.ctl("cutover", "shop", "--json", check_rc=False)
    rep = json.loads(r.stdout or b"{}")
    print("   aborted: %s" % rep.get("reason"))
    steps = [t["step"] for t in rep["timeline"]]
    check(r.returncode == 5 and rep.get("state") == "aborted" and "promote" in steps and
          "fence again" in steps, "aborted after the promote: %r %s" % (steps, r.stderr.decode()))
    shutil.rmtree(bouncer.include)
    os.rename(bouncer.include + ".real", bouncer.include)
    check(on_port(bouncer) == blue.port, "traffic on blue")
    check(blue.psql("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'app'") == "t",
          "blue writable again")
    check(green.psql("SELECT pg_is_in_recovery()") == "f" and
          green.psql("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'app'") == "f",
          "green promoted and fenced for good")
    check(time.monotonic() - t0 < seconds - 3, "while pgbench ran")
    bench_clean(bench, seconds)
    st = wait_for("says green is no standby", lambda: (lambda s: s if s and s["last_error"] and
                  "no longer a standby" in s["last_error"] else None)(mstatus(coord)), 30,
                  interval=0.3)
    check(st["state"] == "streaming", "the migration: %r" % st["state"])


def crash_at(rig, failpoint, reverse=False):
    """Streaming, pgbench through PgBouncer, then the coordinator killed at
    failpoint during the cutover and started again: returns what it
    resolved the cutover to, once pgbench ended with zero failed."""
    seconds = 25
    blue, green, coord, bouncer, plan = setup(rig, reverse=reverse)
    bench = rig.spawn("pgbench", [os.path.join(harness.PG_BIN, "pgbench"), "-n", "-c", "4",
                                  "-R", "100", "-T", str(seconds), "-h", "127.0.0.1",
                                  "-p", str(bouncer.port), "-U", "app", "shop"])
    t0 = time.monotonic()
    check(coord.ctl("migrate", "start", plan, check_rc=False).returncode == 0, "started")
    wait_for("streaming", lambda: in_state(coord, "streaming"), 120, interval=0.3)
    coord.proc.stop()
    coord.start(failpoint=failpoint)
    wait_for("agents back", lambda: agents_connected(coord, ("blue", "green", "px")), 15)
    wait_for("standby and slot reported", lambda: (lambda s: s if s and s.get("standby") and
             s["lag_seconds"] is not None else None)(mstatus(coord)), 15, interval=0.2)
    wait_for("blue reports our slot active", lambda: slot_reported_active(coord), 10)
    wait_for("px reports its proxy", lambda: any(p.get("reachable") for p in
             coord.agent("px").get("proxies") or []), 15, interval=0.2)
    # (the gate wants the standby's state polled since the restart)
    r = wait_for("cutover let through", lambda: (lambda r: r if r.returncode != 4 or
                 b"has not reported" not in r.stderr else None)(
                     coord.ctl("cutover", "shop", check_rc=False)), 15, interval=0.3)
    check(r.returncode == 3, "the coordinator died during the cutover: rc %d %r" % (
        r.returncode, r.stderr))
    check(coord.proc.wait(10) == -9, "killed itself at %s" % failpoint)
    coord.start()
    st = wait_for("cutover resolved", lambda: (lambda s: s if s and s["cutover"] and
                  s["cutover"]["state"] in ("done", "aborted") else None)(mstatus(coord)), 30,
                  interval=0.2)
    print("   %s: resolved to %s" % (failpoint, st["cutover"]["state"]))
    check(time.monotonic() - t0 < seconds - 3, "resolved while pgbench ran")
    bench_clean(bench, seconds)
    hb, hg = history(blue), history(green)
    return blue, green, coord, bouncer, st, set(hb) - set(hg)


def can_login(cluster):
    return cluster.psql("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'app'") == "t"


def test_physical_crash_after_freeze_rolls_back(rig):
    blue, green, coord, bouncer, st, _ = crash_at(rig, "cutover-after-freeze")
    check(st["state"] == "streaming" and st["cutover"]["state"] == "aborted", "rolled back")
    check(on_port(bouncer) == blue.port and can_login(blue), "traffic on blue, writable")
    check(green.psql("SELECT pg_is_in_recovery()") == "t", "green still a standby")


def test_physical_crash_during_promote_finishes(rig):
    """The promote sent, the coordinator killed before its answer: green's
    agent finishes it; the restarted coordinator goes forward (the promote
    again finds it done) and switches."""
    blue, green, coord, bouncer, st, missing = crash_at(rig, "cutover-during-promote")
    check(st["state"] == "switched" and st["cutover"]["state"] == "done", "finished: %r" %
          st["cutover"])
    check(on_port(bouncer) == green.port and not can_login(blue) and can_login(green),
          "on green, blue fenced, green takes logins")
    check(not missing, "every row of blue on green: %d missing" % len(missing))


def test_physical_crash_after_promote_finishes(rig):
    blue, green, coord, bouncer, st, missing = crash_at(rig, "cutover-after-promote")
    check(st["state"] == "switched" and st["cutover"]["state"] == "done", "finished")
    check(on_port(bouncer) == green.port and not can_login(blue) and can_login(green),
          "on green, blue fenced, green takes logins")
    check(not missing, "every row of blue on green: %d missing" % len(missing))


def test_physical_preflight(rig):
    """plan check on the physical path: ready on a clean target (an unlogged
    table is a warning: it arrives empty); a standby
    folder holding someone else's files, a source without a free WAL
    sender, a peer that refuses replication: each a blocking finding with
    its fix; nothing is changed."""
    blue, green, coord, _, plan = setup(rig, proxies=False)
    blue.psql("CREATE UNLOGGED TABLE public.scratch (v int)", db="shop")
    r = coord.ctl("plan", "check", plan, "--json", check_rc=False)
    out = json.loads(r.stdout)
    check(r.returncode == 0 and out["blocking"] == 0, "ready: %s" % r.stdout.decode()[-2000:])
    # an unlogged table arrives empty: a warning naming it, not a refusal
    warned = [(f["code"], f["object"]) for m in out["migrations"] for f in m["findings"]
              if f["severity"] == "warning"]
    check(("unlogged_table", "public.scratch") in warned, "unlogged warned: %r" % warned)
    os.makedirs(green.data)
    with open(os.path.join(green.data, "theirs"), "w") as f:
        f.write("x")
    blue.psql("ALTER SYSTEM SET max_wal_senders = 1")
    blue.stop()
    blue.start()
    r = coord.ctl("plan", "check", plan, "--json", check_rc=False)
    codes = [f["code"] for m in json.loads(r.stdout)["migrations"] for f in m["findings"]
             if f["severity"] == "error"]
    check(r.returncode != 0 and "standby_directory_not_empty" in codes and
          "no_free_wal_sender" in codes, "findings: %r" % codes)
    check(os.listdir(green.data) == ["theirs"], "nothing changed on green")


def test_physical_preflight_rewind_rights(rig):
    """cutover.reverse on: the reverse peer's user needs, on blue (green is
    blue's copy, roles included), REPLICATION, pg_checkpoint and EXECUTE on
    the functions pg_rewind reads green's files with; without them plan
    check refuses naming the user and the grants, with them it is ready."""
    blue, green, coord, _, plan = setup(rig, reverse=True)
    blue.psql("ALTER ROLE godwit_repl NOSUPERUSER")

    def rights_findings():
        r = coord.ctl("plan", "check", plan, "--json", check_rc=False)
        out = json.loads(r.stdout)
        return r.returncode, [f for m in out["migrations"] for f in m["findings"]
                              if f["code"] == "rewind_peer_rights"]

    rc, found = rights_findings()
    check(rc != 0 and len(found) == 1 and found[0]["object"] == "godwit_repl" and
          "pg_checkpoint" in found[0]["message"] and "pg_read_binary_file" in found[0]["fix"],
          "refused naming the user and the grants: %r" % found)
    blue.psql("GRANT pg_checkpoint TO godwit_repl;"
              "GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean),"
              " pg_catalog.pg_stat_file(text, boolean), pg_catalog.pg_read_binary_file(text),"
              " pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO godwit_repl")
    rc, found = rights_findings()
    check(rc == 0 and not found, "ready with the grants: rc %d %r" % (rc, found))

def test_physical_coordinator_killed_during_basebackup(rig):
    """kill -9 of the coordinator while pg_basebackup runs (held to 4 MB/s
    by options.basebackup_max_rate): the restarted coordinator sends the
    base backup again, which joins the one running; one pg_basebackup, one
    slot, streaming."""
    blue, green, coord, _, plan = setup(rig, proxies=False)
    with open(plan) as f:
        text = f.read()
    with open(plan, "w") as f:
        f.write(text.replace("options: {max_lag: 5s}", "options: {max_lag: 5s, "
                             "basebackup_max_rate: 4MB}"))
    check(coord.ctl("migrate", "start", plan, check_rc=False).returncode == 0, "started")
    st = wait_for("copying", lambda: (lambda s: s if s and (s.get("basebackup") or {}).get(
        "phase") == "copying" and s["basebackup"]["done_bytes"] > 0 else None)(mstatus(coord)),
        60, interval=0.2)
    print("   copying: %s" % st["basebackup"])
    check(st["basebackup"]["total_bytes"] > st["basebackup"]["done_bytes"] and
          "base backup: copying" in coord.ctl("migrate", "status", "shop").stdout.decode(),
          "progress in status")
    coord.proc.kill9()
    coord.start()
    st = wait_for("streaming", lambda: in_state(coord, "streaming"), 180, interval=0.5)
    log = open(rig.path("agent-green.log")).read()
    check(log.count("joins command") >= 1, "the second base backup joined the first")
    check(physical_slot(blue) == "physical:godwit_shop:true", "one slot: %r" %
          physical_slot(blue))
    check(green.psql("SELECT count(*) FROM t", db="other") == "1000", "the other database")


def test_physical_rollback_loses_nothing(rig):
    """cutover.reverse on: after the switch blue becomes a standby of green
    (its agent: the slot on green, pg_rewind, started in recovery); the
    rollback promotes blue back and makes green blue's standby again: zero
    failed pgbench transactions through PgBouncer, every row on both."""
    seconds = 40
    blue, green, coord, bouncer, plan = setup(rig, reverse=True)
    bench = rig.spawn("pgbench", [os.path.join(harness.PG_BIN, "pgbench"), "-n", "-c", "4",
                                  "-R", "100", "-T", str(seconds), "-h", "127.0.0.1",
                                  "-p", str(bouncer.port), "-U", "app", "shop"])
    t0 = time.monotonic()
    check(coord.ctl("migrate", "start", plan, check_rc=False).returncode == 0, "started")
    wait_for("streaming", lambda: in_state(coord, "streaming"), 120, interval=0.3)
    wait_for("standby reported", lambda: (mstatus(coord) or {}).get("standby"), 30, interval=0.3)
    wait_for("blue reports our slot active", lambda: slot_reported_active(coord), 10)
    r = coord.ctl("cutover", "shop", "--json", check_rc=False)
    rep = json.loads(r.stdout or b"{}")
    steps = [t["step"] for t in rep.get("timeline", [])]
    print("   cutover: write pause %.1f ms, %r" % (rep.get("write_pause_ms", -1), [
        (t["step"], round(t["ms"], 1)) for t in rep.get("timeline", [])]))
    check(r.returncode == 0 and rep["state"] == "done" and rep.get("follow") == "streaming" and
          "rejoin" in steps, "cutover with blue rejoined: %s %s" % (
              r.stdout.decode()[-3000:], r.stderr.decode()))
    check(on_port(bouncer) == green.port and blue.psql("SELECT pg_is_in_recovery()") == "t",
          "on green; blue a standby of green")
    st = wait_for("blue follows green", lambda: (lambda s: s if s and s.get("follow") and
                  s["follow"]["active"] else None)(mstatus(coord)), 30, interval=0.3)
    print("   blue follows green: %r" % st["follow"])
    time.sleep(3)  # green takes writes a while
    r = wait_for("rollback", lambda: (lambda r: r if r.returncode != 4 else None)(
        coord.ctl("rollback", "shop", "--json", check_rc=False)), 30, interval=1)
    rep = json.loads(r.stdout or b"{}")
    steps = [t["step"] for t in rep.get("timeline", [])]
    print("   rollback: write pause %.1f ms, %r" % (rep.get("write_pause_ms", -1), [
        (t["step"], round(t["ms"], 1)) for t in rep.get("timeline", [])]))
    check(r.returncode == 0 and rep["state"] == "done" and "promote" in steps and
          "rejoin" in steps, "rollback: %s %s" % (r.stdout.decode()[-3000:], r.stderr.decode()))
    check(on_port(bouncer) == blue.port and blue.psql("SELECT pg_is_in_recovery()") == "f" and
          green.psql("SELECT pg_is_in_recovery()") == "t", "on blue; green its standby again")
    check(blue.psql("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'app'") == "t",
          "app logs in on blue")
    st = wait_for("streaming again", lambda: (lambda s: s if s and s["state"] == "streaming" and
                  s.get("standby") and s["standby"]["streaming"] else None)(mstatus(coord)), 60,
                  interval=0.3)
    check(time.monotonic() - t0 < seconds - 3, "both while pgbench ran")
    bench_clean(bench, seconds)
    hb = history(blue)
    wait_for("green caught up", lambda: history(green) == hb, 30, interval=0.5)
    sums = blue.psql("SELECT (SELECT sum(delta) FROM public.pgbench_history) = "
                     "(SELECT sum(abalance) FROM public.pgbench_accounts)", db="shop")
    check(sums == "t", "blue: history and balances agree")
    print("   %d history rows on both" % len(hb))


def test_physical_crash_after_switch_rejoins(rig):
    """cutover.reverse on, the coordinator killed once the switch and resume
    were confirmed: restarted, it finishes, and blue rejoins as green's
    standby."""
    blue, green, coord, bouncer, st, missing = crash_at(
        rig, "cutover-after-switch and resume", reverse=True)
    check(st["state"] == "switched" and st["cutover"]["state"] == "done" and
          st["cutover"].get("follow") == "streaming", "finished, blue rejoined: %r" %
          st["cutover"])
    check(on_port(bouncer) == green.port and blue.psql("SELECT pg_is_in_recovery()") == "t",
          "on green, blue its standby")
    check(not missing, "every row of blue on green: %d missing" % len(missing))


def basebackups():
    """The pg_basebackup processes running (pids)."""
    out = subprocess.run(["pgrep", "-x", "pg_basebackup"], stdout=subprocess.PIPE).stdout
    return [int(x) for x in out.split()]


def test_physical_target_agent_killed_during_basebackup(rig):
    """kill -9 of green's agent while pg_basebackup runs (its own session:
    it outlives the agent): the agent, started again, kills that orphan
    (its process group is in the partial marker) before it removes the
    partial folder and copies again; streaming, one slot."""
    blue, green, coord, _, plan = setup(rig, proxies=False)
    with open(plan) as f:
        text = f.read()
    with open(plan, "w") as f:
        f.write(text.replace("options: {max_lag: 5s}", "options: {max_lag: 5s, "
                             "basebackup_max_rate: 4MB}"))
    check(coord.ctl("migrate", "start", plan, check_rc=False).returncode == 0, "started")
    wait_for("copying", lambda: (lambda s: s if s and (s.get("basebackup") or {}).get(
        "phase") == "copying" and s["basebackup"]["done_bytes"] > 0 else None)(mstatus(coord)),
        60, interval=0.2)
    agent = [p for p in rig.procs if p.name == "agent-green"][0]
    agent.kill9()
    orphans = basebackups()
    check(orphans, "pg_basebackup outlived its agent")
    agent.start()
    st = wait_for("streaming", lambda: in_state(coord, "streaming"), 240, interval=0.5)
    check(not set(orphans) & set(basebackups()), "the orphan is gone: %r" % basebackups())
    check("killed process group" in open(rig.path("agent-green.log")).read(),
          "the restarted agent killed it")
    check(physical_slot(blue) == "physical:godwit_shop:true", "one slot: %r" %
          physical_slot(blue))
    check(green.psql("SELECT count(*) FROM t", db="other") == "1000", "the other database")

def lsn_int(text):
    hi, lo = text.split("/")
    return int(hi, 16) << 32 | int(lo, 16)


def start_standby(c):
    """Starts green again as its agent's start command does (its own port
    and socket folder: its configuration files are blue's)."""
    opts = "-p %d -k %s -c listen_addresses=127.0.0.1" % (c.port, c.dir)
    c._as_pg([os.path.join(harness.PG_BIN, "pg_ctl"), "-D", c.data, "-l",
              os.path.join(c.dir, "log"), "-o", opts, "-w", "-t", "60", "start"])
    c.running = True


DOCS_SCRIPT = """\\set c random(1, 40)
UPDATE public.docs SET body = (SELECT string_agg(md5(random()::text), '')
  FROM generate_series(1, 300)), n = n + 1 WHERE code = 'd' || :c;
UPDATE public.loose SET n = n + 1 WHERE id = :c;
"""


def test_physical_verify_under_load_finds_a_corrupted_row(rig):
    """Verify on the standby while pgbench writes on blue (its branches are
    hot rows, updated by every transaction) and a second client rewrites
    TOASTed values of a table keyed by a unique index (REPLICA IDENTITY
    USING INDEX) and updates a table without a replica identity: every
    table equal, partitioned ones by their root, but the one without an
    identity, not compared (and its updates never refused on blue). Then one row's bytes changed in green's
    data file (storage corruption; nothing else writes that table): verify
    says different with its key, the cutover's gate refuses, and an abort
    leaves no publication and no verify slot on blue."""
    seconds = 40
    blue, green, coord, _, plan = setup(rig, proxies=False)
    blue.psql("CREATE TABLE public.docs (code text NOT NULL, body text, n int NOT NULL DEFAULT 0);"
              "CREATE UNIQUE INDEX docs_code ON public.docs (code);"
              "ALTER TABLE public.docs REPLICA IDENTITY USING INDEX docs_code;"
              "CREATE TABLE public.loose (id int, n int);"
              "INSERT INTO public.loose SELECT g, 0 FROM generate_series(1, 40) g;"
              "INSERT INTO public.docs (code, body) SELECT 'd' || g, repeat('x', 10) "
              "FROM generate_series(1, 40) g;"
              "CREATE TABLE public.planted (id int PRIMARY KEY, v text);"
              "INSERT INTO public.planted SELECT g, 'needle-' || lpad(g::text, 4, '0') "
              "FROM generate_series(1, 100) g;"
              "CREATE UNLOGGED TABLE public.scratch (v int)", db="shop")
    blue.psql("VACUUM (FREEZE) public.planted", db="shop")
    script = rig.path("docs.sql")
    with open(script, "w") as f:
        f.write(DOCS_SCRIPT)
    check(coord.ctl("migrate", "start", plan, check_rc=False).returncode == 0, "started")
    wait_for("streaming", lambda: in_state(coord, "streaming"), 120, interval=0.3)
    wait_for("standby reported", lambda: (mstatus(coord) or {}).get("standby"), 30, interval=0.3)
    wait_for("blue reports our slot active", lambda: slot_reported_active(coord), 10)
    pgb = os.path.join(harness.PG_BIN, "pgbench")
    bench = rig.spawn("pgbench", [pgb, "-n", "-c", "4", "-R", "150", "-T", str(seconds), "-h",
                                  "127.0.0.1", "-p", str(blue.port), "-U", "postgres", "shop"])
    docs = rig.spawn("pgbench-docs", [pgb, "-n", "-c", "2", "-R", "40", "-T", str(seconds),
                                      "-f", script, "-h", "127.0.0.1", "-p", str(blue.port),
                                      "-U", "postgres", "shop"])
    t0 = time.monotonic()
    time.sleep(1)
    rep = run_verify(coord)
    tables = {t["table"]: t for t in rep["tables"]}
    print("   verify under load: %s in %.1f s; %s" % (rep["state"], time.monotonic() - t0, [
        (n, t["outcome"], t.get("key_kind"), t.get("window", {}).get("changes"))
        for n, t in sorted(tables.items())]))
    check(rep["state"] == "equal", "equal under load: %s" % json.dumps(rep)[:3000])
    check(tables["public.loose"]["outcome"] == "not_compared" and
          tables["public.pgbench_history"]["outcome"] == "not_compared" and
          all(t["outcome"] == "equal" for n, t in tables.items()
              if n not in ("public.loose", "public.pgbench_history")),
          "no identity: not compared, every other table equal: %r" % {
              n: t["outcome"] for n, t in tables.items()})
    check("public.events" in tables and "public.events_a" not in tables and
          "public.scratch" not in tables and "public.pgbench_branches" in tables,
          "roots, not partitions; no unlogged table: %r" % sorted(tables))
    check(tables["public.docs"]["key_columns"] == ["code"], "docs keyed by its unique index: %r" %
          tables["public.docs"]["key_columns"])
    # blue wrote all along: its WAL moved from the first table's position to
    # the last one's (each window is short: a standby replays within ms)
    lsns = [lsn_int(t["window"][k]) for t in rep["tables"] if t["outcome"] == "equal"
            for k in ("from_lsn", "to_lsn")]
    check(bench.alive() and max(lsns) - min(lsns) > 100000,
          "compared while blue wrote: %d bytes of WAL" % (max(lsns) - min(lsns)))

    # One row's bytes changed on green's disk.
    path = green.psql("SELECT pg_relation_filepath('public.planted')", db="shop")
    blue.psql("CHECKPOINT")
    target = blue.psql("SELECT pg_current_wal_lsn()")
    wait_for("green replayed the checkpoint", lambda: green.psql(
        "SELECT pg_last_wal_replay_lsn() >= '%s'" % target) == "t", 30, interval=0.2)
    green.stop()
    fname = os.path.join(green.data, path)
    with open(fname, "r+b") as f:
        data = f.read()
        at = data.find(b"needle-0042")
        check(at >= 0 and data.count(b"needle-0042") == 1, "the row's bytes found once")
        f.seek(at)
        f.write(b"NEEDLE-0042")
    start_standby(green)
    check(green.psql("SELECT v FROM public.planted WHERE id = 42", db="shop") == "NEEDLE-0042",
          "green reads the changed bytes")
    wait_for("standby streaming again", lambda: (lambda s: s if s and s.get("standby") and
             s["standby"]["streaming"] else None)(mstatus(coord)), 30, interval=0.3)
    rep = run_verify(coord)
    tables = {t["table"]: t for t in rep["tables"]}
    bad = {n: t["diffs"] for n, t in tables.items() if t["outcome"] not in ("equal",
                                                                             "not_compared")}
    print("   after the change on green's disk: %s %r" % (rep["state"], bad))
    check(rep["state"] == "different" and bad == {"public.planted": [
        {"key": {"id": "42"}, "kind": "changed"}]}, "the changed row found, only it: %r" % bad)
    r = coord.ctl("cutover", "shop", check_rc=False)
    check(r.returncode == 4 and b"the last verify is different" in r.stderr,
          "the gate refuses: %d %r" % (r.returncode, r.stderr))
    bench_clean(bench, seconds)
    bench_clean(docs, seconds)
    check(coord.ctl("migrate", "abort", "shop", check_rc=False).returncode == 0, "abort")
    wait_for("aborted", lambda: in_state(coord, "aborted"), 60, interval=0.3)
    green.running = False
    check(blue.psql("SELECT count(*) FROM pg_publication", db="shop") == "0" and
          physical_slot(blue) == "", "no publication, no slot left on blue: %r" %
          physical_slot(blue))



if __name__ == "__main__":
    harness.run([test_physical_cutover_through_pgbouncer, test_physical_abort_removes_the_standby,
                 test_physical_abort_after_promote_fences_green,
                 test_physical_crash_after_freeze_rolls_back,
                 test_physical_crash_during_promote_finishes,
                 test_physical_crash_after_promote_finishes,
                 test_physical_crash_after_switch_rejoins,
                 test_physical_rollback_loses_nothing,
                 test_physical_preflight,
                 test_physical_preflight_rewind_rights,
                 test_physical_coordinator_killed_during_basebackup,
                 test_physical_target_agent_killed_during_basebackup,
                 test_physical_plan_refuses_what_it_cannot_do,
                 test_physical_verify_under_load_finds_a_corrupted_row])
