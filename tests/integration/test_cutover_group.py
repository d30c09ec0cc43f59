# ctest: one entry per case
"""A cutover group: three databases of one server (pgbench's shop, and g2,
g3 with a table each), each one database entry of the same PgBouncer, the
application role app shared by all three, the application writing to
each through PgBouncer. shop alone is refused before anything pauses (its
fence would take app's logins from g2 and g3 too). The group switches in
one write pause: a rehearsal first; then a cutover that one member cannot
finish (a sequence missing on green) aborts every member, all back on
blue, all streaming; repaired, the group switches: every entry on green. Then the three roll
back as a group, in one write pause, while the application writes: every
entry on blue again, every migration streaming, zero failed transactions
in the whole run, every row on blue and green."""

import json
import os
import time

import harness
from harness import Agent, check, wait_for
from test_cutover import PgBouncer, bench_clean, on_port
from test_migrate import mstatus, setup
from test_physical import slot_reported_active

DBS = ("shop", "g2", "g3")
SECONDS = 80


def group_ready(rig):
    blue, green, coord, _ = setup(rig, extra_agents=["px"])
    for c in (blue, green):
        c.psql("CREATE ROLE app LOGIN")
        for db in DBS[1:]:
            c.psql("CREATE DATABASE %s" % db)
    for db in DBS[1:]:
        blue.psql("CREATE TABLE public.t (id bigserial PRIMARY KEY, v int NOT NULL);"
                  "INSERT INTO public.t (v) SELECT g FROM generate_series(1, 1000) g", db=db)
    for db in DBS:
        blue.psql("GRANT USAGE ON SCHEMA public TO app;"
                  "GRANT ALL ON ALL TABLES IN SCHEMA public TO app;"
                  "GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO app", db=db)
    bouncer = PgBouncer(rig, blue.port, databases=DBS)
    agent = Agent(rig, "px", coord, role="proxy")
    with open(agent.config, "a") as f:
        f.write(bouncer.proxies_yaml(DBS, lambda db: blue.port, green.port))
    agent.start()
    wait_for("px connected", lambda: coord.agent("px")["state"] == "connected", 15)
    plan = rig.path("group.yaml")
    with open(plan, "w") as f:
        f.write("fleets:\n  - template:\n      replication: {peer: blue}\n"
                "      reverse_replication: {peer: green}\n      options: {max_lag: 5s}\n"
                "      cutover:\n        app_roles: [app]\n"
                "        proxies: [{agent: px, proxy: \"pgb_{database}\"}]\n"
                "        max_write_pause: 3s\n"
                "    inventory:\n      - {source: blue, target: green, databases: [%s]}\n"
                % ", ".join(DBS))
    # The application: pgbench on shop, inserts into g2 and g3, each
    # through its PgBouncer entry, as app.
    script = rig.path("insert.sql")
    with open(script, "w") as f:
        f.write("INSERT INTO public.t (v) VALUES (1);\n")
    os.chmod(script, 0o644)
    pgbench = os.path.join(harness.PG_BIN, "pgbench")
    common = ["-n", "-c", "2", "-R", "50", "-T", str(SECONDS), "-h", "127.0.0.1", "-p",
              str(bouncer.port), "-U", "app"]
    benches = [rig.spawn("pgbench-shop", [pgbench] + common + ["shop"])]
    for db in DBS[1:]:
        benches.append(rig.spawn("pgbench-%s" % db, [pgbench] + common + ["-f", script, db]))
    check(coord.ctl("migrate", "start", plan).returncode == 0, "started")
    for db in DBS:
        wait_for("%s streaming" % db, lambda: (mstatus(coord, db) or {}).get("state") ==
                 "streaming", 180, interval=0.5)
    for db in DBS:
        for _ in range(5):
            r = coord.ctl("migrate", "verify", db, "--json", check_rc=False)
            if r.returncode == 0:
                break
        check(r.returncode == 0, "%s verified equal: %s" % (db, r.stdout.decode()[-1500:]))
    # The gate reads each slot's state from blue's report, up to an
    # interval older than green's (the cutover was refused "our slot on the
    # source is not active" when it ran first).
    for db in DBS:
        wait_for("blue reports %s's slot active" % db,
                 lambda: slot_reported_active(coord, slot="godwit_%s" % db), 10)
    return blue, green, coord, bouncer, benches


def group_cutover(coord, *extra, command="cutover"):
    r = coord.ctl(command, *(list(DBS) + list(extra) + ["--json"]), check_rc=False)
    return r.returncode, json.loads(r.stdout or b"{}"), r


def test_cutover_group_one_pause(rig):
    blue, green, coord, bouncer, benches = group_ready(rig)

    # Alone, shop cannot go: its fence would take app's LOGIN on the whole
    # server, and app has sessions in g2 and g3, which stay on blue.
    r = coord.ctl("cutover", "shop", "--json", check_rc=False)
    rep = json.loads(r.stdout or b"{}")
    reason = rep.get("reason") or ""
    check(r.returncode == 4 and rep.get("outcome") == "refused" and
          "sessions in other databases of this server too" in reason and "g2" in reason and
          "g3" in reason, "shop alone refused: rc %d %r" % (r.returncode, reason))
    check(on_port(bouncer) == blue.port and
          blue.psql("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'app'") == "t",
          "nothing paused, nothing fenced")

    # Blue's WAL writer all but asleep: a freeze whose commit were not
    # flushed at once (asynchronous, as a transaction that only takes a
    # transaction id commits) would leave a quiet member's final position
    # unsent past max_write_pause, and the group would abort.
    blue.psql("ALTER SYSTEM SET wal_writer_delay = '10s'")
    blue.psql("SELECT pg_reload_conf()")

    # The rehearsal: every member paused, frozen, sequences read, at once.
    rc, rep, r = group_cutover(coord, "--dry-run")
    check(rc == 0 and rep.get("state") == "done" and len(rep["members"]) == 3,
          "group rehearsal: rc %d %s %s" % (rc, r.stdout.decode()[-2000:], r.stderr.decode()))
    starts = [next(t["at_ms"] for t in m["timeline"] if t["step"] == "pause")
              for m in rep["members"]]
    print("   rehearsal: longest write pause %.1f ms; members' pauses %s; pause sent within "
          "%.0f ms of each other" % (rep["write_pause_ms"],
                                     [round(m["write_pause_ms"], 1) for m in rep["members"]],
                                     max(starts) - min(starts)))
    check(max(starts) - min(starts) < 200, "one pause for the group: %r" % starts)
    check(all(on_port(bouncer, db) == blue.port for db in DBS), "all still on blue")

    # A sequence missing on green for g3: its sequences step fails, inside
    # the pause; every member goes back, nothing switched.
    green.psql("ALTER TABLE public.t ALTER COLUMN id DROP DEFAULT;"
               "DROP SEQUENCE public.t_id_seq", db="g3")
    rc, rep, r = group_cutover(coord)
    reasons = [m.get("reason") or "" for m in rep.get("members", [])]
    print("   aborted: %s" % reasons)
    check(rc != 0 and rep.get("state") == "aborted" and
          all(m["state"] == "aborted" for m in rep["members"]) and
          any("t_id_seq is missing on the target" in x for x in reasons) and
          sum("database g3 of the cutover group" in x for x in reasons) == 2,
          "the group aborted together: rc %d %r" % (rc, reasons))
    check(all(on_port(bouncer, db) == blue.port for db in DBS) and
          all(mstatus(coord, db)["state"] == "streaming" for db in DBS) and
          blue.psql("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'app'") == "t",
          "every member on blue, streaming, blue writable")

    # Repaired, the group switches in one pause.
    green.psql("CREATE SEQUENCE public.t_id_seq OWNED BY public.t.id;"
               "ALTER TABLE public.t ALTER COLUMN id SET DEFAULT nextval('public.t_id_seq');"
               "GRANT SELECT, UPDATE, USAGE ON SEQUENCE public.t_id_seq TO app", db="g3")
    rc, rep, r = group_cutover(coord)
    check(all(b.alive() for b in benches), "the application still writes")
    check(rc == 0 and rep.get("state") == "done" and
          all(m["state"] == "done" for m in rep["members"]),
          "group cutover done: rc %d %s %s" % (rc, r.stdout.decode()[-3000:], r.stderr.decode()))
    print("   cutover group: longest write pause %.1f ms; members %s" % (
        rep["write_pause_ms"], [(m["migration"], round(m["write_pause_ms"], 1),
                                 [(t["step"], round(t["ms"], 1)) for t in m["timeline"]])
                                for m in rep["members"]]))
    check(all(on_port(bouncer, db) == green.port for db in DBS), "every entry on green")
    check(all(mstatus(coord, db)["state"] == "switched" for db in DBS), "all switched")
    # Each member's freeze on blue ran on the connection its check kept
    # (no "connect" inside the pause): the agent keeps one per member.
    connects = [(m["migration"], s["ms"]) for m in rep["members"] for t in m["timeline"]
                if t["step"] == "freeze" for a in t.get("agents", []) if a["agent"] == "blue"
                for s in a.get("steps", []) if s["name"] == "connect"]
    check(not connects, "no member's freeze connected inside the pause: %r" % connects)
    # One fence for the three on blue: one member's message refused app's
    # logins and ended the sessions of all three databases, with one final
    # position; the others took it and read their own sequences.
    fz = {m["migration"]: [s["name"] for t in m["timeline"] if t["step"] == "freeze"
                           for a in t.get("agents", []) if a["agent"] == "blue"
                           for s in a.get("steps", [])] for m in rep["members"]}
    ran = [n for n, steps in fz.items() if "refuse the group's logins, drain, terminate" in steps]
    took = [n for n, steps in fz.items()
            if "the group's fence (another member's message)" in steps]
    check(len(ran) == 1 and len(took) == 2 and
          all("read sequences" in steps for steps in fz.values()),
          "one fence message for the group on blue: %r" % fz)
    finals = {m.get("final_lsn") for m in rep["members"]}
    check(len(finals) == 1 and None not in finals, "one final position: %r" % finals)
    check(on_port(bouncer) == green.port, "shop through PgBouncer on green")

    # The group rolls back in one pause, the application still writing
    # (through green now): blue, which followed green, takes over again.
    for db in DBS:
        wait_for("%s: blue follows green" % db, lambda: (mstatus(coord, db).get("follow") or
                                                         {}).get("active"), 30, interval=0.5)
    deadline = time.monotonic() + 10
    while True:  # the gate may not have seen each reverse slot reported active yet
        rc, rep, r = group_cutover(coord, command="rollback")
        if rc != 4 or b"not active" not in r.stderr or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    check(rc == 0 and rep.get("state") == "done" and rep.get("rollback") is True and
          all(m["state"] == "done" and m.get("direction") == "back" for m in rep["members"]),
          "group rollback done: rc %d %s %s" % (rc, r.stdout.decode()[-3000:], r.stderr.decode()))
    starts = [next(t["at_ms"] for t in m["timeline"] if t["step"] == "pause")
              for m in rep["members"]]
    print("   rollback group: longest write pause %.1f ms; pause sent within %.0f ms of each "
          "other; application still writing: %s" % (
              rep["write_pause_ms"], max(starts) - min(starts), all(b.alive() for b in benches)))
    check(max(starts) - min(starts) < 200, "one pause for the rollback group: %r" % starts)
    check(all(on_port(bouncer, db) == blue.port for db in DBS), "every entry on blue again")
    check(all(mstatus(coord, db)["state"] == "streaming" for db in DBS), "all streaming again")
    check(green.psql("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'app'") == "f" and
          blue.psql("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'app'") == "t",
          "green fenced, blue writable")
    for b in benches:
        bench_clean(b, SECONDS)
    # Every row the application wrote, on either side, is on blue, and green
    # (which follows blue again) has them too.
    for db in DBS[1:]:
        wait_for("%s: green follows blue" % db, lambda: blue.psql(
            "SELECT count(*) FROM public.t", db=db) == green.psql(
            "SELECT count(*) FROM public.t", db=db), 30, interval=0.5)


if __name__ == "__main__":
    harness.run([test_cutover_group_one_pause])
