"""A fleet of 50 databases on two source clusters moved as one plan, then
cut over as one group through one PgBouncer, the application writing to
every database all along.

Four agents: blue1 and blue2 (the two source clusters, 25 databases
each, each with an application role app of its own), green (the target
cluster, which receives all 50) and px (the PgBouncer host: one
PgBouncer with an entry, and a proxy of px's config, per database). The
plan is a fleet: a template and two inventory entries (one per source
host, each naming its own replication peer), in waves (a canary, then
waves of 20, opened by the schedule once the previous wave streams and
is verified equal), with copy caps (three per source, four on the
target). Checked: the caps hold at every status read; every wave is
verified by the schedule; then, with pgbench inserting into every
database through PgBouncer as app, `cutover f01 ... f50` switches all 50
in one write pause: each source server fenced by one message (one member
per server ran it), every entry on green, zero failed transactions, and
every row pgbench committed is on green.
"""

import json
import os
import re
import time

import harness
from harness import Agent, Coordinator, check, wait_for
from test_cutover import PgBouncer

N = 50
DBS = ["f%02d" % i for i in range(1, N + 1)]
HALF = N // 2
ROWS = 500
SECONDS = 90
# A slot, a WAL sender and an apply worker per database on each side.
PG = {"max_connections": 300, "max_replication_slots": 80, "max_wal_senders": 80,
      "max_worker_processes": 80, "max_logical_replication_workers": 70,
      "max_sync_workers_per_subscription": 2}


def source_of(db):
    return "blue1" if DBS.index(db) < HALF else "blue2"


def psql_script(cluster, sql, db="postgres"):
    """Statements one by one (CREATE DATABASE may not share a message)."""
    harness.subprocess.run([os.path.join(harness.PG_BIN, "psql"), "-X", "-q", "-v",
                            "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(cluster.port), "-U",
                            "postgres", "-d", db], input=sql.encode(), check=True,
                           stdout=harness.subprocess.DEVNULL, stderr=harness.subprocess.PIPE,
                           timeout=300)


def quiet(agent):
    with open(agent.config) as f:
        text = f.read().replace("log_level: debug", "log_level: info")
    with open(agent.config, "w") as f:
        f.write(text)
    return agent


def cutover_failure(rep):
    """What a group cutover's report says went wrong: its reason and every
    step that failed, by member (the whole report is too long to print)."""
    out = ["reason %r" % rep.get("reason")]
    for m in rep.get("members", []):
        for t in m.get("timeline", []):
            if not t.get("ok", True):
                out.append("%s: %s failed at %s ms after %s ms: %s %s" % (
                    m.get("migration"), t["step"], t.get("at_ms"), t.get("ms"),
                    t.get("detail"), json.dumps(t.get("agents"))[:600]))
        if m.get("reason"):
            out.append("%s: reason %r" % (m.get("migration"), m["reason"]))
    return "; ".join(out[:12])


def fleet_status(coord):
    r = coord.ctl("fleet", "status", "--json", check_rc=False)
    return json.loads(r.stdout) if r.returncode in (0, 1) else {}


class Bouncer(PgBouncer):
    def _up(self):
        return self.psql("SELECT 1", user="postgres", check_rc=False, db=DBS[0]).returncode == 0


def test_fleet_of_fifty_one_group(rig):
    blues = {"blue1": rig.cluster("blue1", extra=PG), "blue2": rig.cluster("blue2", extra=PG)}
    green = rig.cluster("green", extra=PG)
    for c in list(blues.values()) + [green]:
        psql_script(c, "CREATE ROLE godwit_repl WITH REPLICATION LOGIN SUPERUSER;\n"
                       "CREATE ROLE app LOGIN;\n")
    psql_script(green, "".join("CREATE DATABASE %s;\n" % db for db in DBS))
    for name, c in blues.items():
        mine = [db for db in DBS if source_of(db) == name]
        psql_script(c, "".join("CREATE DATABASE %s;\n" % db for db in mine))
        for db in mine:
            psql_script(c, "CREATE TABLE public.t (id bigserial PRIMARY KEY, v int NOT NULL,"
                           " note text);\n"
                           "INSERT INTO public.t (v, note) SELECT g, md5(g::text) FROM "
                           "generate_series(1, %d) g;\n"
                           "GRANT USAGE ON SCHEMA public TO app;\n"
                           "GRANT ALL ON ALL TABLES IN SCHEMA public TO app;\n"
                           "GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO app;\n" % ROWS, db=db)
    coord = Coordinator(rig, ["blue1", "blue2", "green", "px"],
                        options={"log_level": "info",
                                 "copies": "{per_source: 3, per_target: 4}"}).start()
    peer = lambda c: {"host": "127.0.0.1", "port": c.port, "user": "godwit_repl"}
    # The members of the group open their connections at the same moment,
    # each a backend forked by a busy postmaster.
    slow = {"connect_timeout": "10s"}
    for name, c in blues.items():
        quiet(Agent(rig, name, coord, role="source", cluster=c, peers={"green": peer(green)},
                    extra_pg=slow)).start()
    quiet(Agent(rig, "green", coord, role="target", cluster=green,
                peers={n: peer(c) for n, c in blues.items()}, extra_pg=slow)).start()
    bouncer = Bouncer(rig, blues["blue1"].port, databases=DBS)
    # The second half's entries point at blue2.
    for db in DBS[HALF:]:
        with open(bouncer.includes[db], "w") as f:
            f.write("%s = host=127.0.0.1 port=%d dbname=%s\n" % (db, blues["blue2"].port, db))
    bouncer.psql("RELOAD", user="postgres", db="pgbouncer")
    px = quiet(Agent(rig, "px", coord, role="proxy"))
    with open(px.config, "a") as f:
        f.write(bouncer.proxies_yaml(DBS, lambda db: blues[source_of(db)].port, green.port))
    px.start()
    for a in ("blue1", "blue2", "green", "px"):
        wait_for("%s connected" % a, lambda: coord.agent(a)["state"] == "connected", 30)

    # max_write_pause 10 s: in one CI run (two tests sharing two cores) a
    # member had not finished its steps 5 s into the pause, cause unknown
    # (runs here took 0.3 to 1.3 s; a failure now prints every failed step);
    # the pause itself is bench/run.py --only group's to measure.
    plan = rig.path("fleet.yaml")
    with open(plan, "w") as f:
        f.write("waves: {canary: 1, size: 20}\n"
                "fleets:\n  - template:\n      reverse_replication: {peer: green}\n"
                "      options: {max_lag: 5s, parallelism: 1}\n"
                "      cutover:\n        app_roles: [app]\n"
                "        proxies: [{agent: px, proxy: \"pgb_{database}\"}]\n"
                "        max_write_pause: 10s\n        verify_max_age: 1h\n"
                "    inventory:\n")
        for name in blues:
            f.write("      - {source: %s, target: green, replication: {peer: %s}, "
                    "databases: [%s]}\n" % (name, name, ", ".join(
                        db for db in DBS if source_of(db) == name)))
    t0 = time.monotonic()
    r = coord.ctl("migrate", "start", plan, "--json", check_rc=False)
    check(r.returncode == 0 and json.loads(r.stdout)["waves"] == 4,
          "started in four waves (1, 20, 20, 9): %r" % r.stdout[-500:])

    # Every wave opens by itself once the one before streams and is
    # verified; the copies stay within their caps all along.
    most = {"per_source": 0, "per_target": 0}

    def all_verified():
        copying = {}
        for m in json.loads(coord.ctl("migrate", "status", "--json").stdout)["migrations"]:
            if m["state"] in ("tune", "copy") and not m.get("copy_queued"):
                src = source_of(m["name"])
                copying[src] = copying.get(src, 0) + 1
        most["per_source"] = max([most["per_source"]] + list(copying.values()))
        most["per_target"] = max(most["per_target"], sum(copying.values()))
        fv = fleet_status(coord)
        done = fv.get("phases", {}).get("streaming") == N and \
            fv.get("verify", {}).get("equal") == N
        return fv if done else None
    fv = wait_for("all 50 streaming and verified by the schedule", all_verified, 600,
                  interval=1.0)
    print("   all 50 streaming and verified %.0f s after the start; copies at once: at most %d "
          "per source, %d on the target" % (time.monotonic() - t0, most["per_source"],
                                             most["per_target"]))
    check(most["per_source"] <= 3 and most["per_target"] <= 4, "caps held: %r" % most)
    waves = json.loads(coord.ctl("migrate", "status", "--json").stdout)["waves"]
    check([w["passed"] for w in waves["waves"]] == [1, 20, 20, 9], "every wave passed: %r" %
          waves)

    # The application: one pgbench client per database through PgBouncer.
    script = rig.path("insert.sql")
    with open(script, "w") as f:
        f.write("INSERT INTO public.t (v) VALUES (1);\n")
    os.chmod(script, 0o644)
    pgbench = os.path.join(harness.PG_BIN, "pgbench")
    benches = {db: rig.spawn("pgbench-%s" % db, [
        pgbench, "-n", "-c", "1", "-R", "2", "-T", str(SECONDS), "-h", "127.0.0.1", "-p",
        str(bouncer.port), "-U", "app", "-f", script, db]) for db in DBS}
    time.sleep(5)
    r = coord.ctl("cutover", *(DBS + ["--json"]), check_rc=False)
    rep = json.loads(r.stdout or b"{}")
    check(r.returncode == 0 and rep.get("state") == "done" and
          all(m["state"] == "done" for m in rep["members"]),
          "the group of 50 cut over: rc %d, %s; stderr %s" % (
              r.returncode, cutover_failure(rep), r.stderr.decode()[-1000:]))
    steps = {}
    for m in rep["members"]:
        for t in m["timeline"]:
            if t.get("ms") is not None:
                steps[t["step"]] = max(steps.get(t["step"], 0.0), t["ms"])
    print("   group of %d: write pause %.1f ms (%s)" % (len(rep["members"]), rep["write_pause_ms"],
          ", ".join("%s %.1f" % (k, v) for k, v in steps.items()
                    if k in ("pause", "freeze", "sequences", "switch", "resume"))))
    # One fence message per source server.
    ran = {}
    for m in rep["members"]:
        for t in m["timeline"]:
            for a in t.get("agents", []) if t["step"] == "freeze" else []:
                if any(s["name"] == "refuse the group's logins, drain, terminate"
                       for s in a.get("steps", [])):
                    ran[a["agent"]] = ran.get(a["agent"], 0) + 1
    check(ran == {"blue1": 1, "blue2": 1}, "one fence message per source server: %r" % ran)
    check(all(bouncer.psql("SELECT pg_catalog.inet_server_port()", user="postgres",
                           db=db).stdout.decode().strip() == str(green.port) for db in DBS),
          "every entry on green")
    st = fleet_status(coord)
    check(st.get("phases") == {"switched": N}, "all switched: %r" % st.get("phases"))

    # Zero failed; every row pgbench committed is on green.
    failed = lost = 0
    for db, b in benches.items():
        b.wait(SECONDS + 120)
        text = open(b.log_path).read()
        m = re.search(r"number of failed transactions: (\d+)", text)
        done = re.search(r"actually processed: (\d+)", text)
        check(done is not None, "%s: pgbench ran: %s" % (db, text[-500:]))
        failed += int(m.group(1)) if m else 0
        rows = int(green.psql("SELECT count(*) FROM public.t", db=db))
        lost += max(0, ROWS + int(done.group(1)) - rows)
        check(rows == ROWS + int(done.group(1)),
              "%s: %d rows on green, %d + %s committed" % (db, rows, ROWS, done.group(1)))
    print("   pgbench: %d failed, %d rows lost over %d databases" % (failed, lost, N))
    check(failed == 0, "no failed transaction")


if __name__ == "__main__":
    harness.run([test_fleet_of_fifty_one_group])
