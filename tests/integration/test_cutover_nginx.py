"""The cutover through an nginx stream proxy (TCP to PostgreSQL). nginx
cannot hold connections, so the plan says `hold: false` on it: the cutover
sends it no PAUSE and no RESUME, only the switch, and blue's freeze is what
stops the writes (the application's logins are refused and its sessions
ended). pgbench goes through nginx as the application's role, connecting
anew for every transaction; the transactions that meet the freeze fail,
and only those: their number is small, bounded and printed. Then a cutover
whose `nginx -t` fails: it aborts, nginx keeps blue and its upstream file
as it was, blue is writable and the migration goes on streaming."""

import json
import os
import re
import subprocess
import threading
import time

import harness
from harness import Agent, check, free_port, wait_for
from test_cutover import PgBouncer, can_login, history, on_port
from test_migrate import in_state, mstatus, setup

NGINX = "/usr/sbin/nginx"
STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"  # Debian: libnginx-mod-stream
CLIENTS = 4
RATE = 50  # transactions per second, all clients together
ROUND_S = 2


class Nginx:
    """An nginx of the test's own (master and one worker, run as root) whose
    stream upstream includes the file the proxy agent owns, plus a second
    include standing for the operator's own additions (the test breaks it
    to make `nginx -t` fail). Same .port and .psql as test_cutover's
    PgBouncer."""

    def __init__(self, rig, blue):
        self.dir = rig.path("nginx")
        os.makedirs(os.path.join(self.dir, "logs"))
        self.port = free_port()
        self.include = os.path.join(self.dir, "upstream.conf")
        self.extra = os.path.join(self.dir, "extra.conf")
        self.pid_file = os.path.join(self.dir, "nginx.pid")
        conf = os.path.join(self.dir, "nginx.conf")
        with open(self.include, "w") as f:
            f.write("server 127.0.0.1:%d;\n" % blue.port)
        with open(self.extra, "w") as f:
            f.write("# operators' additions\n")
        with open(conf, "w") as f:
            f.write("load_module %s;\ndaemon off;\nmaster_process on;\nworker_processes 1;\n"
                    "pid %s;\nerror_log %s/logs/error.log;\n"
                    "events { worker_connections 256; }\n"
                    "stream {\n  upstream pg {\n    include %s;\n  }\n  include %s;\n"
                    "  server { listen 127.0.0.1:%d; proxy_pass pg; proxy_connect_timeout 2s; }\n"
                    "}\n" % (STREAM_MODULE, self.pid_file, self.dir, self.include, self.extra,
                             self.port))
        self.argv = [NGINX, "-p", self.dir, "-c", conf, "-g", "user root;"]
        self.proc = rig.spawn("nginx", self.argv)
        wait_for("nginx pid", lambda: os.path.exists(self.pid_file), 10)

    def agent_yaml(self, blue, green):
        argv = ", ".join("'%s'" % a for a in self.argv)
        return ("proxies:\n  - name: edge\n    kind: nginx\n    blue: 127.0.0.1:%d\n"
                "    green: 127.0.0.1:%d\n    command_timeout: 5s\n    nginx:\n"
                "      include_file: %s\n      test_argv: [%s, -t, -q]\n"
                "      reload_argv: [%s, -s, reload]\n      pid_file: %s\n" % (
                    blue.port, green.port, self.include, argv, argv, self.pid_file))

    psql = PgBouncer.psql


class Load:
    """pgbench through nginx as app, -C (a new connection per transaction),
    in rounds of ROUND_S seconds back to back: pgbench ends a client at its
    first failed connection or statement, so one long run would lose every
    client at the freeze; each round starts them again. Each failed
    transaction ends its client, so the aborted clients are the failures;
    a round whose setup connection is refused counts one and the next
    round starts ROUND_S after it, as after any round: at most CLIENTS + 1
    failures per round. Runs until stop()."""

    def __init__(self, rig, port):
        self.rig = rig
        self.port = port
        self.rounds = []  # (started, ended, processed, failures, first error)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        n = 0
        while not self.stopping.is_set():
            n += 1
            t0 = time.monotonic()
            p = self.rig.spawn("pgbench-%d" % n, [
                os.path.join(harness.PG_BIN, "pgbench"), "-n", "-C", "-c", str(CLIENTS), "-j",
                str(CLIENTS), "-R", str(RATE), "-T", str(ROUND_S), "-h", "127.0.0.1", "-p",
                str(self.port), "-U", "app", "shop"])
            try:
                rc = p.wait(ROUND_S + 60)
            except subprocess.TimeoutExpired:
                p.kill9()
                rc = "hung"
            log = p.log()
            done = re.search(r"number of transactions actually processed: (\d+)", log)
            failed = re.search(r"number of failed transactions: (\d+)", log)
            errors = re.findall(r"client \d+ aborted.*", log)
            # rc 1 with no run: pgbench's own setup connection was refused.
            fails = len(errors) + (int(failed.group(1)) if failed else 0) + (
                1 if rc != 0 and not done and not errors else 0)
            first = errors[0] if errors else ("" if rc == 0 else log.strip()[-300:])
            self.rounds.append((t0, time.monotonic(), int(done.group(1)) if done else 0, fails,
                                first))
            if rc == 0:
                os.unlink(p.log_path)  # keep the logs of the rounds that failed only
            self.stopping.wait(t0 + ROUND_S - time.monotonic())  # a round that ended early

    def stop(self):
        self.stopping.set()
        self.thread.join(ROUND_S + 70)

    def processed(self, after=0.0):
        return sum(r[2] for r in self.rounds if r[0] >= after)

    def failures(self):
        return sum(r[3] for r in self.rounds)

    def report(self, window):
        """Checks that every failure is in a round that overlapped window
        (start, end) and that they are few; prints them."""
        bad = [r for r in self.rounds if r[3]]
        for r in bad:
            print("   round at %+.2f s .. %+.2f s: %d done, %d failed: %s" % (
                r[0] - window[0], r[1] - window[0], r[2], r[3], r[4][:160]))
        outside = [r for r in bad if r[1] < window[0] or r[0] > window[1]]
        check(not outside, "failures outside the cutover (%.2f s .. %.2f s): %r" % (
            window[0], window[1], outside))
        # At most every client once per round that met the freeze, plus
        # pgbench's own setup connection; the freeze lasts less than
        # max_write_pause (3 s, else the cutover aborts), so at most three
        # rounds of ROUND_S meet it.
        fails = self.failures()
        check(fails <= 3 * (CLIENTS + 1), "few failed transactions: %d" % fails)
        return fails


def ready(rig):
    """Blue, green, a coordinator, nginx in front of blue with its proxy
    agent (plan: hold: false), the load through nginx, the migration
    streaming and verified equal."""
    cutover = ("    options: {max_lag: 5s}\n"
               "    cutover:\n      app_roles: [app]\n"
               "      proxies: [{agent: px, proxy: edge, hold: false}]\n"
               "      max_write_pause: 3s\n      lease: 15s\n")
    blue, green, coord, plan = setup(rig, options=cutover, extra_agents=["px"])
    for c in (blue, green):
        c.psql("CREATE ROLE app LOGIN")
    grants = ("GRANT USAGE ON SCHEMA public TO app;"
              "GRANT ALL ON ALL TABLES IN SCHEMA public TO app;"
              "GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO app")
    blue.psql(grants, db="shop")
    nginx = Nginx(rig, blue)
    wait_for("nginx serves blue", lambda: on_port(nginx) == blue.port, 10)
    a = Agent(rig, "px", coord, role="proxy")
    with open(a.config, "a") as f:
        f.write(nginx.agent_yaml(blue, green))
    a.start()
    wait_for("px connected", lambda: coord.agent("px")["state"] == "connected", 15)
    load = Load(rig, nginx.port)
    try:
        check(coord.ctl("migrate", "start", plan).returncode == 0, "started")
        wait_for("streaming", lambda: in_state(coord, "streaming"), 120, interval=0.5)
        green.psql(grants, db="shop")
        for _ in range(5):
            r = coord.ctl("migrate", "verify", "shop", "--json", check_rc=False)
            if r.returncode == 0:
                break
        check(r.returncode == 0, "verify equal: %s" % r.stdout.decode()[-2000:])
    except BaseException:
        load.stop()
        raise
    check(load.processed() > 0 and load.failures() == 0,
          "the load runs through nginx before the cutover: %r" % load.rounds[-3:])
    return blue, green, coord, nginx, load


def cutover(coord):
    t0 = time.monotonic()
    r = coord.ctl("cutover", "shop", "--json", check_rc=False)
    t1 = time.monotonic()
    rep = json.loads(r.stdout or b"{}")
    print("   %s in %.2f s: write pause %s ms: %s" % (rep.get("state"), t1 - t0, rep.get(
        "write_pause_ms"), [(t["step"], round(t["ms"], 1)) for t in rep.get("timeline", [])]))
    return r, rep, (t0, t1)


def app_login_refused(cluster):
    r = subprocess.run([os.path.join(harness.PG_BIN, "psql"), "-X", "-h", "127.0.0.1", "-p",
                        str(cluster.port), "-U", "app", "-d", "shop", "-c", "SELECT 1"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    return r.returncode != 0 and b"not permitted to log in" in r.stderr


def test_cutover_through_nginx(rig):
    blue, green, coord, nginx, load = ready(rig)
    try:
        r, rep, window = cutover(coord)
        check(r.returncode == 0 and rep.get("state") == "done", "cutover done: %s %s" % (
            r.stdout.decode()[-3000:], r.stderr.decode()))
        steps = [t["step"] for t in rep["timeline"]]
        check(steps[:6] == ["check roles", "pause", "freeze", "sequences", "switch", "resume"],
              "every step, in order: %r" % steps)
        for t in rep["timeline"]:
            if t["step"] in ("pause", "resume"):
                whats = [a["what"] for a in t.get("agents", [])]
                check(whats == ["proxy edge: skipped (hold: false)"],
                      "%s: nginx skipped: %r" % (t["step"], whats))
        # Every new connection through nginx reaches green at once.
        for _ in range(5):
            check(on_port(nginx) == green.port, "nginx now on green")
        check(mstatus(coord)["state"] == "switched", "migration switched")
        check(not can_login(blue) and app_login_refused(blue), "blue fenced: app cannot log in")
        with open(nginx.include) as f:
            check("127.0.0.1:%d" % green.port in f.read(), "the upstream file names green")
        # The load goes on, now on green.
        wait_for("transactions on green after the cutover",
                 lambda: load.processed(after=window[1]) > 2 * RATE, 30, interval=0.5)
    finally:
        load.stop()
    fails = load.report(window)
    print("   through nginx: %d transactions, %d failed (all in the cutover's freeze)" % (
        load.processed(), fails))
    # Every transaction blue committed is on green (and green took the
    # load's writes after the switch: checked above through nginx).
    hb, hg = history(blue), history(green)
    missing = set(hb) - set(hg)
    check(not missing, "blue's %d history rows all on green (%d): missing %d" % (
        len(hb), len(hg), len(missing)))


def test_failed_nginx_test_aborts(rig):
    blue, green, coord, nginx, load = ready(rig)
    with open(nginx.include, "rb") as f:
        before = f.read()
    # The operator's include goes bad: nginx runs on as it is, but its
    # config test fails, so the switch cannot happen.
    with open(nginx.extra, "w") as f:
        f.write("this_is_not_a_directive on;\n")
    try:
        r, rep, window = cutover(coord)
        reason = rep.get("reason") or ""
        print("   aborted: %s" % reason)
        check(r.returncode == 5 and rep.get("state") == "aborted" and
              reason.startswith("switch:") and "config test (%s" % NGINX in reason and
              " -t -q)" in reason and "this_is_not_a_directive" in reason and
              "put the old" in reason,
              "aborted at the switch, naming nginx -t: %s %s" % (r.stdout.decode()[-3000:],
                                                                 r.stderr.decode()))
        steps = [t["step"] for t in rep["timeline"]]
        check(steps[:5] == ["check roles", "pause", "freeze", "sequences", "switch"] and
              "switch back" in steps and "unfreeze" in steps, "the abort path: %r" % steps)
        with open(nginx.include, "rb") as f:
            check(f.read() == before, "the upstream file as it was")
        for _ in range(5):
            check(on_port(nginx) == blue.port, "nginx still serves blue")
        check(can_login(blue) and not app_login_refused(blue), "blue writable: app logs in")
        check(mstatus(coord)["state"] == "streaming", "still streaming")
        # Writes through nginx land on blue again and stream to green.
        wait_for("transactions on blue after the abort",
                 lambda: load.processed(after=window[1]) > 2 * RATE, 30, interval=0.5)
        nginx.psql("INSERT INTO public.audit VALUES ('nginx', 'after the abort')")
        wait_for("the row on green", lambda: green.psql(
            "SELECT count(*) FROM public.audit WHERE what = 'after the abort'", db="shop") == "1",
            15, interval=0.2)
    finally:
        load.stop()
    fails = load.report(window)
    print("   through nginx: %d transactions, %d failed (all in the aborted cutover's freeze)" % (
        load.processed(), fails))


if __name__ == "__main__":
    harness.run([test_cutover_through_nginx, test_failed_nginx_test_aborts])
