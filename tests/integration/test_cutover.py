# ctest: one entry per case
"""The cutover end to end with PgBouncer (transaction mode) in front of
blue: pgbench, with persistent connections as the application's own role,
writes through PgBouncer for the whole run. A rehearsal first (PgBouncer
stays on blue, blue writable), then the real cutover: zero failed pgbench
transactions, every row blue committed is on green, green's sequences are
at or past blue's, new inserts on green get no duplicate key, and blue is
fenced for good."""

import json
import os
import pwd
import re
import shutil
import subprocess
import time

import harness
from harness import Agent, check, wait_for
from test_migrate import in_state, mstatus, setup

BENCH_SECONDS = 60


class PgBouncer:
    """A PgBouncer of the test's own, run as postgres, in front of a cluster;
    its [databases] entry for each database (default: "shop") lives in an
    include file of its own (.includes, .include the first's) the proxy
    agent rewrites."""

    def __init__(self, rig, backend_port, name="pgbouncer", databases=("shop",)):
        self.rig = rig
        self.dir = rig.path(name)
        os.makedirs(self.dir)
        pw = pwd.getpwnam("postgres")
        self.port = harness.free_port()
        self.includes = {}
        for i, db in enumerate(databases):
            self.includes[db] = os.path.join(self.dir, "databases.ini" if i == 0 else
                                             "databases-%s.ini" % db)
            with open(self.includes[db], "w") as f:
                f.write("%s = host=127.0.0.1 port=%d dbname=%s\n" % (db, backend_port, db))
        self.include = self.includes[databases[0]]
        with open(os.path.join(self.dir, "userlist.txt"), "w") as f:
            f.write('"app" ""\n"postgres" ""\n')
        self.ini = os.path.join(self.dir, "pgbouncer.ini")
        with open(self.ini, "w") as f:
            f.write("[databases]\n%s[pgbouncer]\nlisten_addr = 127.0.0.1\n"
                    "listen_port = %d\nunix_socket_dir =\nauth_type = trust\n"
                    "auth_file = %s/userlist.txt\nadmin_users = postgres\n"
                    "pool_mode = transaction\nmax_client_conn = 200\ndefault_pool_size = 20\n"
                    "ignore_startup_parameters = extra_float_digits,options\n"
                    "logfile = %s/pgbouncer.log\n" % (
                        "".join("%%include %s\n" % self.includes[db] for db in databases),
                        self.port, self.dir, self.dir))
        for root, dirs, files in os.walk(self.dir):
            for p in [root] + [os.path.join(root, x) for x in files]:
                os.chown(p, pw.pw_uid, pw.pw_gid)
        self.proc = rig.spawn(name, ["setpriv", "--reuid=postgres", "--regid=postgres",
                                     "--init-groups", "pgbouncer", self.ini])
        wait_for("pgbouncer listening", self._up, 15, interval=0.2)

    def _up(self):
        r = self.psql("SELECT 1", check_rc=False)
        return r.returncode == 0

    def proxies_yaml(self, databases, blue_port, green_port):
        """A proxy agent's `proxies:` section: one entry pgb_DB per database,
        each repointing that database's include file; blue_port(db) is the
        blue server of db."""
        return "proxies:\n" + "".join(
            "  - name: pgb_%s\n    kind: pgbouncer\n    blue: 127.0.0.1:%d\n"
            "    green: 127.0.0.1:%d\n    pgbouncer:\n      host: 127.0.0.1\n"
            "      port: %d\n      user: postgres\n      database: %s\n"
            "      include_file: %s\n" % (db, blue_port(db), green_port, self.port, db,
                                          self.includes[db]) for db in databases)

    def psql(self, sql, user="app", check_rc=True, db="shop"):
        r = subprocess.run([os.path.join(harness.PG_BIN, "psql"), "-X", "-A", "-t", "-v",
                            "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port), "-U",
                            user, "-d", db, "-c", sql],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        if check_rc and r.returncode != 0:
            raise RuntimeError("psql via pgbouncer: %s" % r.stderr.decode())
        return r


class HAProxy:
    """An HAProxy of the test's own (TCP mode, master-worker, state file) in
    front of blue, green's server disabled; same .port and .psql as
    PgBouncer."""

    def __init__(self, rig, blue, green):
        self.rig = rig
        self.dir = rig.path("haproxy")
        os.makedirs(self.dir)
        self.port = harness.free_port()
        self.sock = os.path.join(self.dir, "admin.sock")
        self.state = os.path.join(self.dir, "server-state")
        cfg = self.cfg = os.path.join(self.dir, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write("global\n  stats socket %s mode 600 level admin\n  server-state-file %s\n"
                    "  pidfile %s/haproxy.pid\n"
                    "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n"
                    "  timeout server 60s\n  load-server-state-from-file global\n"
                    "frontend pg\n  bind 127.0.0.1:%d\n  maxconn 200\n  default_backend pg\n"
                    "backend pg\n  server blue 127.0.0.1:%d\n  server green 127.0.0.1:%d disabled\n"
                    % (self.sock, self.state, self.dir, self.port, blue.port, green.port))
        self.proc = rig.spawn("haproxy", ["/usr/sbin/haproxy", "-W", "-db", "-f", cfg])
        wait_for("haproxy socket", lambda: os.path.exists(self.sock), 10)

    def agent_yaml(self, blue, green):
        return ("proxies:\n  - name: pgb\n    kind: haproxy\n    blue: 127.0.0.1:%d\n"
                "    green: 127.0.0.1:%d\n    pause_timeout: 2s\n    haproxy:\n      socket: %s\n"
                "      frontend: pg\n      backend: pg\n      blue_server: blue\n"
                "      green_server: green\n      state_file: %s\n      config_file: %s\n"
                "      reload_argv: [/bin/kill, -USR2, '%d']\n" % (
                    blue.port, green.port, self.sock, self.state, self.cfg,
                    self.proc.proc.pid))

    def restart_cold(self):
        """Stops HAProxy (master and worker) and starts it again from its
        config file alone: the state file moved away first."""
        old = self.proc
        old.stop()
        os.rename(self.state, self.state + ".away")
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        self.proc = self.rig.spawn(old.name, old.argv)
        wait_for("haproxy socket", lambda: os.path.exists(self.sock), 10)

    psql = PgBouncer.psql


def proxy_agent(rig, coord, bouncer, blue, green, name="px"):
    extra = bouncer.agent_yaml(blue, green) if isinstance(bouncer, HAProxy) else (
             "proxies:\n  - name: pgb\n    kind: pgbouncer\n    blue: 127.0.0.1:%d\n"
             "    green: 127.0.0.1:%d\n    pgbouncer:\n      host: 127.0.0.1\n      port: %d\n"
             "      user: postgres\n      database: shop\n      include_file: %s\n" % (
                 blue.port, green.port, bouncer.port, bouncer.include))
    near = name in getattr(coord, "near", ())
    a = Agent(rig, name, coord if near else getattr(coord, "dial", coord), role="proxy")
    with open(a.config, "a") as f:
        f.write(extra)
    return a.start()


def history(cluster):
    """pgbench_history's rows as sorted text (a multiset)."""
    out = cluster.psql("SELECT h::text FROM public.pgbench_history h ORDER BY 1", db="shop")
    return out.splitlines()


def ready(rig, bench_seconds=BENCH_SECONDS, max_write_pause="3s", wan_ms=None,
          two_proxies=False, bench_extra=(), lease="15s", haproxy=False, options="max_lag: 5s",
          cutover_extra="", near=(), coord_options=None):
    """Blue, green, a coordinator, PgBouncer in front of blue with its proxy
    agent, pgbench writing through it as the role app, the migration
    streaming and verified equal. cutover_extra: more lines of the plan's
    cutover section. near: the agents in the coordinator's site (setup).
    coord_options: more keys of the coordinator's config (setup)."""
    proxies = "{agent: px, proxy: pgb}" + (", {agent: px2, proxy: pgb}" if two_proxies else "")
    cutover = ("    options: {%s}\n" % options +
               "    cutover:\n      app_roles: [app]\n"
               "      proxies: [%s]\n      max_write_pause: %s\n      lease: %s\n"
               % (proxies, max_write_pause, lease) + cutover_extra)
    blue, green, coord, plan = setup(rig, options=cutover, extra_agents=["px", "px2"],
                                     wan_ms=wan_ms, near=near, coord_options=coord_options)
    # The application's role: not a superuser, on both sides (made on green
    # by the operator too: the roles step leaves a role that exists as it
    # is), with the rights it needs on blue (the schema phase restores them
    # on green).
    for c in (blue, green):
        c.psql("CREATE ROLE app LOGIN")
    grants = ("GRANT USAGE ON SCHEMA public TO app;"
              "GRANT ALL ON ALL TABLES IN SCHEMA public TO app;"
              "GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO app")
    blue.psql(grants, db="shop")
    bouncer = HAProxy(rig, blue, green) if haproxy else PgBouncer(rig, blue.port)
    proxy_agent(rig, coord, bouncer, blue, green)
    wait_for("px connected", lambda: coord.agent("px")["state"] == "connected", 15)
    if two_proxies:  # a second datacenter's PgBouncer, with its own agent
        bouncer.second = PgBouncer(rig, blue.port, name="pgbouncer2")
        proxy_agent(rig, coord, bouncer.second, blue, green, name="px2")
        wait_for("px2 connected", lambda: coord.agent("px2")["state"] == "connected", 15)
    # pgbench through PgBouncer, persistent connections, the whole run.
    if haproxy:  # a new connection per transaction (pgbench needs a thread per client then)
        bench_extra = ["-C", "-j", "4"] + list(bench_extra)
    bench = rig.spawn("pgbench", [os.path.join(harness.PG_BIN, "pgbench"), "-n", "-c", "4",
                                  "-R", "100", "-T", str(bench_seconds), "-h", "127.0.0.1",
                                  "-p", str(bouncer.port), "-U", "app"] + list(bench_extra) +
                     ["shop"])
    bench.started = time.monotonic()
    check(coord.ctl("migrate", "start", plan).returncode == 0, "started")
    wait_for("streaming", lambda: in_state(coord, "streaming"), 120, interval=0.5)
    # A refused cutover names its gate and changes nothing.
    r = coord.ctl("cutover", "shop", check_rc=False)
    check(r.returncode == 4 and b"verify" in r.stderr, "gate (exit 4): %r" % r.stderr)
    for _ in range(5):
        r = coord.ctl("migrate", "verify", "shop", "--json", check_rc=False)
        if r.returncode == 0:
            break
    check(r.returncode == 0, "verify equal: %s" % r.stdout.decode()[-2000:])
    return blue, green, coord, bouncer, bench


def bench_clean(bench, seconds):
    """pgbench ran to its end with zero failed transactions."""
    rc = bench.wait(seconds + 60)
    out = open(bench.log_path).read()
    failed = re.search(r"number of failed transactions: (\d+)", out)
    check(rc == 0 and failed and failed.group(1) == "0" and "aborted" not in out,
          "pgbench: rc %s, failed %s: %s" % (rc, failed and failed.group(1), out[-1500:]))


def on_port(bouncer, db="shop"):
    return int(bouncer.psql("SELECT pg_catalog.inet_server_port()", db=db).stdout.decode()
               .strip())


def can_login(cluster):
    return cluster.psql("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'app'") == "t"


def test_cutover_through_pgbouncer(rig):
    blue, green, coord, bouncer, bench = ready(rig)
    t0 = bench.started
    # Green lost the application role's rights after verify (someone
    # revoked them there): the cutover's role check refuses before anything
    # pauses, with the GRANTs.
    green.psql("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM app", db="shop")
    r = coord.ctl("cutover", "shop", "--json", check_rc=False)
    rep = json.loads(r.stdout or b"{}")
    stmts = [f["statement"] for f in rep.get("role_findings", [])]
    check(r.returncode == 4 and rep.get("state") == "aborted" and
          rep.get("outcome") == "refused" and "GRANT DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE ON TABLE "
          "public.pgbench_accounts TO \"app\";" in stmts and
          not any("ON SCHEMA public" in s for s in stmts),
          "refused with the statements: %r %r" % (rep.get("reason"), stmts[:5]))
    check([t["step"] for t in rep["timeline"]] == ["check roles", "restore apply"] and
          can_login(blue), "nothing paused, nothing fenced: %r" % rep["timeline"])
    for stmt in stmts:
        green.psql(stmt, db="shop")

    # The rehearsal: the pause is measured, nothing switches.
    r = coord.ctl("cutover", "shop", "--dry-run", "--json", check_rc=False)
    rep = json.loads(r.stdout or b"{}")
    check(r.returncode == 0 and rep.get("state") == "done" and rep["dry_run"],
          "rehearsal done: %s %s" % (r.stdout.decode()[-3000:], r.stderr.decode()))
    print("   rehearsal: write pause %.1f ms: %s" % (rep["write_pause_ms"], [
        (t["step"], round(t["ms"], 1)) for t in rep["timeline"]]))
    check(bouncer.psql("SELECT pg_catalog.inet_server_port()").stdout.decode().strip() ==
          str(blue.port), "still on blue after the rehearsal")
    check(blue.psql("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'app'") == "t",
          "blue writable again")
    check(in_state(coord, "streaming"), "still streaming")

    # A table of blue's outside the plan, with its own sequence: the freeze
    # reads every sequence, and green skips this one (neither it nor its
    # table is migrated) while it sets the others in the same statement.
    blue.psql("CREATE TABLE public.scratch (id bigserial);"
              " SELECT setval('public.scratch_id_seq', 77)", db="shop")

    # The cutover.
    r = coord.ctl("cutover", "shop", check_rc=False)
    text = r.stdout.decode()
    print(text)
    check(r.returncode == 0 and "cutover: done" in text, "cutover done: %s %s" % (
        text, r.stderr.decode()))
    st = mstatus(coord)
    check(st["state"] == "switched", "migration switched: %r" % st["state"])
    pause = st["cutover"]["write_pause_ms"]
    check(pause < 3000, "pause within max_write_pause: %.1f ms" % pause)
    check(bouncer.psql("SELECT pg_catalog.inet_server_port()").stdout.decode().strip() ==
          str(green.port), "PgBouncer now on green")
    check(blue.psql("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'app'") == "f",
          "blue fenced for good")
    check(time.monotonic() - t0 < BENCH_SECONDS - 5, "the cutover happened while pgbench ran")
    at_switch = len(history(green))

    # pgbench ends on its own: zero failed transactions.
    bench_clean(bench, BENCH_SECONDS)
    # Every transaction blue committed is on green; green kept pgbench's
    # invariant (the history's deltas sum to the balances) across the switch.
    hb, hg = history(blue), history(green)
    missing = set(hb) - set(hg)
    # (Blue follows green after the switch: it has green's rows too.)
    check(not missing and len(hg) > at_switch, "blue's %d history rows all on green (%d): "
          "missing %d" % (len(hb), len(hg), len(missing)))
    for c in (blue, green):
        sums = c.psql("SELECT (SELECT sum(delta) FROM public.pgbench_history) = "
                      "(SELECT sum(abalance) FROM public.pgbench_accounts)", db="shop")
        check(sums == "t", "%s: history and balances agree" % c.name)
    for t in ("public.customers", "public.orders", "public.lines", "public.audit"):
        q = "SELECT md5(string_agg(x::text, ',' ORDER BY x::text)) FROM %s x" % t
        check(blue.psql(q, db="shop") == green.psql(q, db="shop"), "%s equal" % t)
    # Sequences: at or past blue's; a new row on green gets a fresh key.
    for seq in ("public.customers_id_seq", "public.orders_id_seq", "public.invoice_no"):
        q = "SELECT last_value FROM %s" % seq
        check(int(green.psql(q, db="shop")) >= int(blue.psql(q, db="shop")), seq)
    on_green = int(green.psql("SELECT count(*) FROM pg_catalog.pg_sequences", db="shop"))
    check(st["cutover"].get("sequences") == on_green and
          green.psql("SELECT to_regclass('public.scratch_id_seq') IS NULL", db="shop") == "t",
          "green's %d sequences set, blue's scratch_id_seq skipped: %r" % (
              on_green, st["cutover"].get("sequences")))
    bouncer.psql("INSERT INTO public.customers (name) VALUES ('after the switch')")
    check(green.psql("SELECT nextval('public.invoice_no')", db="shop") == "42",
          "the unowned sequence went on from blue's value")

    # The audit trail: who started the migration and each cutover (the
    # kernel's word for the control socket's client), each phase, and the
    # cutover records with their steps, oldest first, with times.
    audit = json.loads(coord.ctl("migrate", "audit", "shop", "--json").stdout)
    ev = audit["events"]
    ops = [e["detail"] for e in ev if e["kind"] == "operator"]
    me = (os.getuid(), pwd.getpwuid(os.getuid()).pw_name)
    check(ops and ops[0]["command"] == "migrate_start" and ops[0]["outcome"] == "accepted" and
          all((o["by"]["uid"], o["by"]["user"]) == me and o["by"]["pid"] > 0 for o in ops),
          "started by %r: %r" % (me, ops[:2]))
    cuts = [(o["dry_run"], o["outcome"]) for o in ops if o["command"] == "cutover"]
    check(cuts == [(False, "requested"), (False, "refused"), (False, "requested"),
                   (True, "requested"), (False, "requested")],
          "the three cutovers asked for: %r" % cuts)
    moved = [e["state"] for e in ev if e["kind"] == "moved"]
    check(moved[-1] == "switched" and "copy" in moved and "streaming" in moved,
          "each phase: %r" % moved)
    steps = [e["detail"].get("state") for e in ev if e["kind"] == "cutover"]
    check("switched" in steps or "done" in steps, "the cutover's records: %r" % steps)
    at = [e["at_ms"] for e in ev]
    check(at == sorted(at) and audit["state"] == "switched", "in order, with times")
    human = coord.ctl("migrate", "audit", "shop").stdout.decode()
    check("migrate_start by %s (uid %d" % (me[1], me[0]) in human and
          "cutover (dry run) by" in human, "human audit:\n%s" % human[:1500])


def agents_connected(coord, names, epoch=None):
    """Every agent of names connected to coord (and, with epoch, having
    seen it)."""
    for n in names:
        a = coord.agent(n)
        if a["state"] != "connected" or (epoch is not None and a["highest_epoch"] != epoch):
            return False
    return True


def tables_reported(coord):
    s = mstatus(coord)
    return s and s["tables"] and s["tables_ready"] == len(s["tables"])


def slot_active(coord):
    """The source agent reports our slot active (a cutover gate)."""
    pg = coord.agent("blue").get("postgres") or {}
    slots = [s for s in pg.get("slots", []) if s["database"] == "shop"]
    return slots and all(s["active"] for s in slots)


def gates_open(coord, agents):
    """What a cutover's gates need after a restart: the agents connected,
    every table reported ready, our slot reported active."""
    t0 = time.monotonic()
    wait_for("agents back", lambda: agents_connected(coord, agents), 15)
    wait_for("tables reported", lambda: tables_reported(coord), 15)
    wait_for("slot reported active", lambda: slot_active(coord), 15, interval=0.2)
    for a in agents:  # a proxy agent's report since it connected, its proxy reached
        if coord.agent(a).get("role") == "proxy":
            wait_for("%s reports its proxy" % a, lambda: coord.agent(a).get("reports", 0) >= 1 and
                     any(p.get("reachable") for p in coord.agent(a).get("proxies") or []), 15,
                     interval=0.2)
    return time.monotonic() - t0


def crash_at(rig, failpoint, two_proxies=False):
    """The coordinator killed at failpoint during the cutover, then
    started again: returns what it resolved the cutover to."""
    seconds = 35
    blue, green, coord, bouncer, bench = ready(rig, bench_seconds=seconds, two_proxies=two_proxies)
    coord.proc.stop()
    coord.start(failpoint=failpoint)
    gates_open(coord, ("blue", "green", "px") + (("px2",) if two_proxies else ()))
    r = coord.ctl("cutover", "shop", check_rc=False)
    check(r.returncode == 3, "the coordinator died during the cutover: rc %d %r" % (
        r.returncode, r.stderr))
    check(coord.proc.wait(10) == -9, "killed itself at %s" % failpoint)
    t0 = time.monotonic()
    coord.start()
    st = wait_for("cutover resolved", lambda: (lambda s: s if s and s["cutover"] and
                  s["cutover"]["state"] in ("done", "aborted") else None)(mstatus(coord)), 30,
                  interval=0.2)
    print("   %s: resolved to %s in %.1f s after the restart" % (
        failpoint, st["cutover"]["state"], time.monotonic() - t0))
    check(time.monotonic() - bench.started < seconds - 3, "resolved while pgbench ran")
    bench_clean(bench, seconds)
    return blue, green, coord, bouncer, st


def test_crash_after_pause_rolls_back(rig):
    blue, green, coord, bouncer, st = crash_at(rig, "cutover-after-pause")
    check(st["state"] == "streaming" and st["cutover"]["state"] == "aborted", "rolled back")
    check(on_port(bouncer) == blue.port and can_login(blue), "traffic on blue, writable")


def test_crash_after_freeze_rolls_back(rig):
    blue, green, coord, bouncer, st = crash_at(rig, "cutover-after-freeze")
    check(st["state"] == "streaming" and st["cutover"]["state"] == "aborted", "rolled back")
    check(on_port(bouncer) == blue.port and can_login(blue), "traffic on blue, writable")


def test_crash_after_sequences_finishes(rig):
    blue, green, coord, bouncer, st = crash_at(rig, "cutover-after-sequences")
    check(st["state"] == "switched" and st["cutover"]["state"] == "done", "finished")
    check(on_port(bouncer) == green.port and not can_login(blue), "on green, blue fenced")


def test_crash_after_switch_finishes(rig):
    """Two proxies (switch and resume are two steps then): the coordinator
    dies once both switched, none resumed."""
    blue, green, coord, bouncer, st = crash_at(rig, "cutover-after-switch", two_proxies=True)
    check(st["state"] == "switched" and st["cutover"]["state"] == "done", "finished")
    check(on_port(bouncer) == green.port and on_port(bouncer.second) == green.port and
          not can_login(blue), "both on green, blue fenced")


def test_crash_after_switch_and_resume_finishes(rig):
    """One proxy, switched and resumed in one command: the coordinator dies
    once it confirmed; restarted, it finishes (switch and resume again find
    the proxy so) and blue follows green."""
    blue, green, coord, bouncer, st = crash_at(rig, "cutover-after-switch and resume")
    check(st["state"] == "switched" and st["cutover"]["state"] == "done", "finished")
    check(on_port(bouncer) == green.port and not can_login(blue), "on green, blue fenced")


def test_crash_during_switch_finishes(rig):
    """Two proxies: the coordinator dies once the first has switched and
    before the second answered; restarted, it switches the second too."""
    blue, green, coord, bouncer, st = crash_at(rig, "cutover-during-switch", two_proxies=True)
    check(st["state"] == "switched" and st["cutover"]["state"] == "done", "finished")
    check(on_port(bouncer) == green.port and on_port(bouncer.second) == green.port,
          "both proxies on green")
    check(not can_login(blue), "blue fenced")


def test_coordinator_gone_after_freeze_leases_release_blue(rig):
    """The coordinator dies after the freeze and does not come back: the
    proxy's pause lease and blue's fence lease run out, traffic flows to
    blue again, writable, and no transaction failed."""
    seconds = 35
    blue, green, coord, bouncer, bench = ready(rig, bench_seconds=seconds, lease="3s")
    coord.proc.stop()
    coord.start(failpoint="cutover-after-freeze")
    gates_open(coord, ("blue", "green", "px"))
    r = coord.ctl("cutover", "shop", check_rc=False)
    check(r.returncode == 3 and coord.proc.wait(10) == -9, "the coordinator died after the freeze: "
          "rc %d %r" % (r.returncode, r.stderr))
    t0 = time.monotonic()
    check(not can_login(blue), "blue fenced right after")
    wait_for("blue's fence lifted by its lease", lambda: can_login(blue), 15, interval=0.2)
    print("   fence lifted %.1f s after the coordinator died (lease 3 s)" % (time.monotonic() - t0))
    check(on_port(bouncer) == blue.port, "traffic on blue")
    check(time.monotonic() - bench.started < seconds - 3, "while pgbench ran")
    bench_clean(bench, seconds)


def test_cutover_through_haproxy(rig):
    """HAProxy in TCP mode, pgbench connecting anew for every transaction
    (-C): the cutover holds new connections in HAProxy's backlog, switches
    and resumes with a hitless reload; zero failed transactions."""
    seconds = 40
    blue, green, coord, proxy, bench = ready(rig, bench_seconds=seconds, haproxy=True)
    r = coord.ctl("cutover", "shop", "--json", check_rc=False)
    rep = json.loads(r.stdout or b"{}")
    check(r.returncode == 0 and rep.get("state") == "done", "cutover done: %s %s" % (
        r.stdout.decode()[-3000:], r.stderr.decode()))
    print("   haproxy: write pause %.1f ms: %s" % (rep["write_pause_ms"], [
        (t["step"], round(t["ms"], 1)) for t in rep["timeline"]]))
    check(on_port(proxy) == green.port, "HAProxy on green")
    check(time.monotonic() - bench.started < seconds - 3, "while pgbench ran")
    at_switch = len(history(green))
    bench_clean(bench, seconds)
    hb, hg = history(blue), history(green)
    check(not set(hb) - set(hg) and len(hg) > at_switch,
          "blue's history all on green, and green took writes after the switch")
    # The switch is in HAProxy's config file too: started again from it
    # alone (no state file), HAProxy sends traffic to green.
    with open(proxy.cfg) as f:
        servers = [l.strip() for l in f if l.strip().startswith("server ")]
    check(servers == ["server blue 127.0.0.1:%d disabled" % blue.port,
                      "server green 127.0.0.1:%d" % green.port],
          "the config file names green, blue disabled: %r" % servers)
    proxy.restart_cold()
    wait_for("HAProxy takes connections", lambda: proxy.psql("SELECT 1", check_rc=False)
             .returncode == 0, 15, interval=0.3)
    check(on_port(proxy) == green.port, "HAProxy restarted from its config file: on green")


def test_cutover_over_a_wan_link(rig):
    """The same with 12.5 ms each way between the agents and the coordinator
    and between green and blue (Frankfurt-Oslo): zero failed transactions."""
    seconds = 50
    blue, green, coord, bouncer, bench = ready(rig, bench_seconds=seconds, wan_ms=12.5)
    r = coord.ctl("cutover", "shop", "--json", check_rc=False)
    rep = json.loads(r.stdout or b"{}")
    check(r.returncode == 0 and rep.get("state") == "done", "cutover done: %s %s" % (
        r.stdout.decode()[-3000:], r.stderr.decode()))
    print("   12.5 ms each way: write pause %.1f ms: %s" % (rep["write_pause_ms"], [
        (t["step"], round(t["ms"], 1)) for t in rep["timeline"]]))
    check(on_port(bouncer) == green.port, "on green")
    check(time.monotonic() - bench.started < seconds - 3, "while pgbench ran")
    bench_clean(bench, seconds)
    hb, hg = history(blue), history(green)
    check(not set(hb) - set(hg), "blue's history all on green")


def test_one_proxy_fails_to_switch_both_back_on_blue(rig):
    """Two proxies, one per datacenter: the second one's switch fails (its
    include file cannot be replaced), so the cutover aborts: both point at
    blue, blue is writable, no transaction failed, nothing reached green."""
    seconds = 40
    blue, green, coord, bouncer, bench = ready(rig, bench_seconds=seconds, two_proxies=True)
    second = bouncer.second
    # The include file stays readable for PgBouncer's reloads, but nothing
    # can be renamed over it any more.
    os.rename(second.include, second.include + ".real")
    os.makedirs(second.include)
    with open(os.path.join(second.include, "keep"), "w") as f:
        f.write("x")
    r = coord.ctl("cutover", "shop", "--json", check_rc=False)
    rep = json.loads(r.stdout or b"{}")
    print("   aborted: %s" % rep.get("reason"))
    check(r.returncode == 5 and rep.get("state") == "aborted" and "switch" in rep["reason"] and
          rep.get("outcome") == "rolled_back",
          "aborted at the switch: %s %s" % (r.stdout.decode()[-3000:], r.stderr.decode()))
    steps = [t["step"] for t in rep["timeline"]]
    check(steps[:5] == ["check roles", "pause", "freeze", "sequences", "switch"] and
          "switch back" in steps and "resume on old side" in steps, "the abort path: %r" % steps)
    check(on_port(bouncer) == blue.port, "the first proxy is back on blue")
    shutil.rmtree(second.include)
    os.rename(second.include + ".real", second.include)
    check(on_port(second) == blue.port, "the second never left blue")
    check(can_login(blue), "blue writable")
    st = mstatus(coord)
    check(st["state"] == "streaming", "still streaming: %r" % st["state"])
    check(time.monotonic() - bench.started < seconds - 3, "while pgbench ran")
    bench_clean(bench, seconds)


def test_rollback_that_fails_to_switch_keeps_blue_fenced(rig):
    """A rollback (green to blue) whose second proxy cannot switch aborts
    after its sequences step lifted blue's fence: the abort fences blue
    again, for good, before it lifts green's, so traffic stays on green,
    green is writable and blue is not (never two writable sides); no
    transaction failed."""
    seconds = 50
    blue, green, coord, bouncer, bench = ready(rig, bench_seconds=seconds, two_proxies=True)
    r = coord.ctl("cutover", "shop", "--json", check_rc=False)
    rep = json.loads(r.stdout or b"{}")
    check(r.returncode == 0 and rep.get("follow") == "streaming",
          "cutover done: %s %s" % (r.stdout.decode()[-3000:], r.stderr.decode()))
    check(not can_login(blue) and can_login(green), "on green, blue fenced")
    wait_for("follow reported", lambda: (lambda s: s if s and s["follow"] and
             s["follow"]["active"] else None)(mstatus(coord)), 15)
    second = bouncer.second
    os.rename(second.include, second.include + ".real")
    os.makedirs(second.include)
    with open(os.path.join(second.include, "keep"), "w") as f:
        f.write("x")
    r = switch(coord, "rollback", "--json")
    rep = json.loads(r.stdout or b"{}")
    print("   rollback aborted: %s" % rep.get("reason"))
    check(r.returncode == 5 and rep.get("state") == "aborted" and
          rep.get("outcome") == "rolled_back",
          "aborted at the switch: %s %s" % (r.stdout.decode()[-3000:], r.stderr.decode()))
    steps = [t["step"] for t in rep["timeline"]]
    check("sequences" in steps and steps.index("fence again") < steps.index("unfreeze"),
          "blue fenced again before green's fence is lifted: %r" % steps)
    shutil.rmtree(second.include)
    os.rename(second.include + ".real", second.include)
    check(on_port(bouncer) == green.port and on_port(second) == green.port,
          "both proxies on green")
    check(can_login(green), "green writable")
    check(not can_login(blue), "blue fenced again")
    st = mstatus(coord)
    check(st["state"] == "switched", "still switched: %r" % st["state"])
    check(time.monotonic() - bench.started < seconds - 3, "while pgbench ran")
    bench_clean(bench, seconds)


def our_objects(cluster):
    """Our publications, slots and subscriptions on cluster, as names."""
    q = ("SELECT string_agg(n, ',' ORDER BY n) FROM ("
         " SELECT 'pub:' || pubname AS n FROM pg_publication UNION ALL"
         " SELECT 'slot:' || slot_name FROM pg_replication_slots UNION ALL"
         " SELECT 'sub:' || subname FROM pg_subscription) x")
    out = cluster.psql(q, db="shop")
    return set(out.split(",")) if out else set()


def settled(a, b):
    """b has every pgbench_history row of a (replication caught up)."""
    return not (set(history(a)) - set(history(b)))


def switch(coord, what, *args):
    """godwitctl cutover|rollback shop args..., asked again for up to 10 s
    while refused only because the agents have not reported the new
    direction's slot active yet (they report once a second)."""
    deadline = time.monotonic() + 10
    while True:
        r = coord.ctl(what, "shop", *args, check_rc=False)
        if r.returncode == 0 or b"not active" not in r.stderr or time.monotonic() > deadline:
            return r
        time.sleep(0.3)


def test_rollback_after_cutover(rig):
    """Cutover with reverse replication (the plan's default): blue follows
    green; rows written on green after the switch reach blue; the rollback
    switches traffic back to blue with nothing lost, green follows blue;
    a second cutover goes to green again; cleanup then leaves nothing of
    ours on either side. pgbench writes through PgBouncer all along."""
    seconds = 75
    blue, green, coord, bouncer, bench = ready(rig, bench_seconds=seconds)
    # Besides PgBouncer, a session of the application straight to blue,
    # committing one row after the other as fast as it can: the freeze ends
    # it while its statements run (it shows active, or idle between them),
    # and whatever it committed before must be on green.
    script = rig.path("direct.sql")
    with open(script, "w") as f:
        for i in range(400000):
            f.write("INSERT INTO public.customers (name) VALUES ('direct %d');\n" % i)
    direct = rig.spawn("direct", [os.path.join(harness.PG_BIN, "psql"), "-X", "-q", "-h",
                                  "127.0.0.1", "-p", str(blue.port), "-U", "app", "-d", "shop",
                                  "-f", script])
    wait_for("the direct session writes", lambda: int(blue.psql(
        "SELECT count(*) FROM public.customers WHERE name LIKE 'direct %'", db="shop")) > 100, 15,
        interval=0.2)
    r = coord.ctl("cutover", "shop", "--json", check_rc=False)
    rep = json.loads(r.stdout or b"{}")
    check(r.returncode == 0 and rep.get("follow") == "streaming",
          "cutover done, blue follows green: %s %s" % (r.stdout.decode()[-3000:], r.stderr.decode()))
    print("   cutover: write pause %.1f ms, switch at %s" % (rep["write_pause_ms"], rep["switch_lsn"]))
    check(direct.wait(10) != 0, "the direct session was ended by the freeze")
    q = "SELECT name FROM public.customers WHERE name LIKE 'direct %' ORDER BY 1"
    on_blue = set(blue.psql(q, db="shop").splitlines())
    on_green = set(green.psql(q, db="shop").splitlines())
    check(on_blue and on_blue <= on_green, "every row the direct session committed on blue is on "
          "green (%d on blue, %d missing)" % (len(on_blue), len(on_blue - on_green)))
    print("   the direct session committed %d rows on blue, all on green" % len(on_blue))
    check(on_port(bouncer) == green.port and not can_login(blue), "on green, blue fenced")
    check(our_objects(blue) == {"pub:godwit_shop", "sub:godwit_shop_rev"} and
          our_objects(green) == {"pub:godwit_shop_rev", "slot:godwit_shop_rev"},
          "blue subscribes to green, the forward subscription is gone: %r %r" % (
              our_objects(blue), our_objects(green)))
    # Written on green after the switch: through PgBouncer (pgbench too).
    bouncer.psql("INSERT INTO public.customers (name) VALUES ('written on green')")
    wait_for("blue has green's writes", lambda: blue.psql(
        "SELECT count(*) FROM public.customers WHERE name = 'written on green'", db="shop") == "1",
        15, interval=0.2)
    st = wait_for("follow reported", lambda: (lambda s: s if s and s["follow"] and
                  s["follow"]["active"] else None)(mstatus(coord)), 15)
    print("   blue follows green: lag %d bytes" % st["follow"]["lag_bytes"])

    r = switch(coord, "rollback")
    text = r.stdout.decode()
    print(text)
    check(r.returncode == 0 and "rollback: done" in text, "rollback done: %s %s" % (
        text, r.stderr.decode()))
    st = mstatus(coord)
    check(st["state"] == "streaming", "streaming again: %r" % st["state"])
    check(on_port(bouncer) == blue.port, "PgBouncer back on blue")
    check(can_login(blue) and not can_login(green), "blue writable, green fenced")
    check(our_objects(green) == {"pub:godwit_shop_rev", "sub:godwit_shop"} and
          our_objects(blue) == {"pub:godwit_shop", "slot:godwit_shop"},
          "green follows blue again: %r %r" % (our_objects(blue), our_objects(green)))
    check(blue.psql("SELECT count(*) FROM public.customers WHERE name = 'written on green'",
                    db="shop") == "1", "the row written on green is on blue")
    # Blue's writes after the rollback reach green; green's sequences hold.
    wait_for("green follows blue", lambda: settled(blue, green), 20, interval=0.5)

    # And to green once more (blue's verify still stands), then cleanup.
    r = switch(coord, "cutover", "--json")
    rep = json.loads(r.stdout or b"{}")
    check(r.returncode == 0 and rep.get("state") == "done", "second cutover: %s %s" % (
        r.stdout.decode()[-3000:], r.stderr.decode()))
    check(on_port(bouncer) == green.port and can_login(green) and not can_login(blue),
          "on green again, green writable, blue fenced")
    check(time.monotonic() - bench.started < seconds - 3, "all of it while pgbench ran")
    bench_clean(bench, seconds)
    wait_for("blue has all of green's rows", lambda: settled(green, blue), 20, interval=0.5)
    hb, hg = history(blue), history(green)
    check(sorted(hb) == sorted(hg), "pgbench_history equal on both: %d and %d rows" % (
        len(hb), len(hg)))
    for c in (blue, green):
        sums = c.psql("SELECT (SELECT sum(delta) FROM public.pgbench_history) = "
                      "(SELECT sum(abalance) FROM public.pgbench_accounts)", db="shop")
        check(sums == "t", "%s: history and balances agree" % c.name)
    bouncer.psql("INSERT INTO public.customers (name) VALUES ('after two switches')")

    r = coord.ctl("cleanup", "shop", check_rc=False)
    check(r.returncode == 0, "cleanup: %s %s" % (r.stdout.decode(), r.stderr.decode()))
    check(mstatus(coord)["state"] == "done", "done")
    check(not our_objects(blue) and not our_objects(green),
          "nothing of ours left: %r %r" % (our_objects(blue), our_objects(green)))
    r = coord.ctl("rollback", "shop", check_rc=False)
    check(r.returncode == 4 and b"switched" in r.stderr, "no rollback after cleanup: %r" % r.stderr)
    r = coord.ctl("migrate", "abort", "shop", check_rc=False)
    check(r.returncode == 1 and b"abort applies before the cutover" in r.stderr,
          "no abort after the cutover: %r" % r.stderr)


def test_green_protected_after_cutover(rig):
    """After the cutover green holds a slot for blue. When blue stops
    taking changes and that slot would keep more WAL than slot_wal_limit,
    godwit drops it on green first, then blue's subscription: the migration
    stays switched, says why, and refuses a rollback that would lose
    green's writes; the application never notices."""
    seconds = 45
    blue, green, coord, bouncer, bench = ready(rig, bench_seconds=seconds,
                                               options="max_lag: 5s, slot_wal_limit: 24MB")
    r = coord.ctl("cutover", "shop", "--json", check_rc=False)
    check(r.returncode == 0 and json.loads(r.stdout)["follow"] == "streaming", "cut over: %s %s" % (
        r.stdout.decode()[-2000:], r.stderr.decode()))
    blue.psql("ALTER SUBSCRIPTION godwit_shop_rev DISABLE", db="shop")  # blue stops taking changes
    green.psql("CREATE TABLE public.bulk AS SELECT g, repeat('x', 300) AS pad "
               "FROM generate_series(1, 120000) g", db="shop")
    st = wait_for("green protected", lambda: (lambda s: s if s and s["state"] == "switched" and
                  s["stopped_because"] and s["follow"] is None else None)(mstatus(coord)), 30,
                  interval=0.5)
    print("   %s" % st["stopped_because"])
    check("blue stopped following green" in st["stopped_because"], "says why")
    check("slot:godwit_shop_rev" not in our_objects(green) and
          "sub:godwit_shop_rev" not in our_objects(blue),
          "green's slot and blue's subscription gone: %r %r" % (our_objects(green),
                                                               our_objects(blue)))
    r = coord.ctl("rollback", "shop", check_rc=False)
    check(r.returncode == 4 and b"blue does not follow green" in r.stderr,
          "rollback refused: %r" % r.stderr)
    check(on_port(bouncer) == green.port, "traffic still on green")
    bench_clean(bench, seconds)


if __name__ == "__main__":
    harness.run([test_cutover_through_pgbouncer, test_crash_after_pause_rolls_back,
                 test_crash_after_freeze_rolls_back, test_crash_after_sequences_finishes,
                 test_crash_after_switch_finishes, test_crash_after_switch_and_resume_finishes,
                 test_crash_during_switch_finishes,
                 test_coordinator_gone_after_freeze_leases_release_blue,
                 test_cutover_through_haproxy,
                 test_cutover_over_a_wan_link,
                 test_one_proxy_fails_to_switch_both_back_on_blue,
                 test_rollback_that_fails_to_switch_keeps_blue_fenced,
                 test_rollback_after_cutover, test_green_protected_after_cutover])
