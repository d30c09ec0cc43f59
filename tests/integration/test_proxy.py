"""Proxy drivers on a proxy-role agent, driven through godwitctl and the
coordinator over CURVE, against real PgBouncer, HAProxy and nginx in front of
two real PostgreSQL clusters (blue and green): pause, switch and resume under
pgbench with zero failed transactions; a pause blocked by a long transaction
follows its policy; HAProxy keeps green across a reload; a failing nginx -t
puts the old upstream back; a lease resumes traffic after kill -9 of the
coordinator. Everything runs on loopback with free ports, in the test's own
folders; PgBouncer runs as postgres, like PostgreSQL."""

import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import time

import harness
from harness import Agent, Coordinator, check, free_port, wait_for

PGBENCH = os.path.join(harness.PG_BIN, "pgbench")
PSQL = os.path.join(harness.PG_BIN, "psql")


def _owned_dir(rig, name):
    d = os.path.join(rig.pgroot, name)
    os.makedirs(d)
    pw = pwd.getpwnam("postgres")
    os.chown(d, pw.pw_uid, pw.pw_gid)
    return d


def setup_db(blue, green):
    """pgbench tables on both: green stands for the migrated copy."""
    for c in (blue, green):
        c.pgbench_init()
        c.psql("TRUNCATE pgbench_history")


def rig_with_agent(rig, proxies_yaml):
    coord = Coordinator(rig, ["px"]).start()
    agent = Agent(rig, "px", coord, role="proxy", interval="500ms")
    with open(agent.config, "a") as f:
        f.write(proxies_yaml)
    agent.start()
    wait_for("proxy agent connected", lambda: coord.agent("px")["state"] == "connected", 15)
    return coord, agent


def proxy(coord, *args, ok=True):
    r = coord.ctl("proxy", "px", *args, "--json", check_rc=False)
    if r.returncode not in (0, 1):
        raise AssertionError("godwitctl proxy %s: rc %d: %s" % (args, r.returncode, r.stderr.decode()))
    out = json.loads(r.stdout)
    if ok is not None:
        check(out["ok"] == ok, "proxy %s: expected ok=%s, got %s" % (args, ok, out))
    print("  proxy %s -> ok=%s %s %s" % (" ".join(args), out["ok"], out.get("error", ""),
                                         json.dumps(out.get("state", {}).get("steps", []))),
          flush=True)
    return out


def pgbench_result(p, timeout):
    p.wait(timeout)
    log = p.log()
    failed = re.search(r"number of failed transactions: (\d+)", log)
    done = re.search(r"number of transactions actually processed: (\d+)", log)
    return p.proc.returncode, int(failed.group(1)) if failed else None, \
        int(done.group(1)) if done else 0, log


# ---------------------------------------------------------------- PgBouncer

class PgBouncer:
    def __init__(self, rig, blue_port):
        self.rig = rig
        self.dir = _owned_dir(rig, "pgbouncer")
        self.port = free_port()
        self.include = os.path.join(self.dir, "databases.ini")
        self.ini = os.path.join(self.dir, "pgbouncer.ini")
        with open(self.include, "w") as f:
            f.write("app = host=127.0.0.1 port=%d dbname=postgres\n" % blue_port)
        with open(os.path.join(self.dir, "userlist.txt"), "w") as f:
            f.write('"postgres" ""\n')
        with open(self.ini, "w") as f:
            f.write("[databases]\n%%include %s\n[pgbouncer]\nlisten_addr = 127.0.0.1\n"
                    "listen_port = %d\nunix_socket_dir =\nauth_type = trust\n"
                    "auth_file = %s/userlist.txt\nadmin_users = postgres\npool_mode = transaction\n"
                    "pidfile = %s/pgbouncer.pid\nmax_client_conn = 100\ndefault_pool_size = 10\n"
                    "ignore_startup_parameters = extra_float_digits\nserver_check_delay = 0\n"
                    % (self.include, self.port, self.dir, self.dir))
        for p in (self.include, self.ini, os.path.join(self.dir, "userlist.txt")):
            os.chmod(p, 0o644)
        self.proc = rig.spawn("pgbouncer", ["runuser", "-u", "postgres", "--", "/usr/sbin/pgbouncer",
                                            self.ini])
        wait_for("pgbouncer listening", lambda: self.admin("SHOW VERSION"), 15)

    def admin(self, sql):
        r = subprocess.run([PSQL, "-X", "-A", "-t", "-F", "|", "-h", "127.0.0.1", "-p", str(self.port),
                            "-U", "postgres", "-d", "pgbouncer", "-c", sql],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(r.stderr.decode())
        return r.stdout.decode()

    def logging_in(self):
        """SHOW POOLS' sv_login for the app entry."""
        r = subprocess.run([PSQL, "-X", "-A", "-F", "|", "-h", "127.0.0.1", "-p", str(self.port),
                            "-U", "postgres", "-d", "pgbouncer", "-c", "SHOW POOLS"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30, check=True)
        lines = r.stdout.decode().splitlines()
        hdr = lines[0].split("|")
        return sum(int(l.split("|")[hdr.index("sv_login")]) for l in lines[1:-1]
                   if l.split("|")[0] == "app")

    def paused(self):
        """PgBouncer's own paused flag for the app entry."""
        r = subprocess.run([PSQL, "-X", "-A", "-F", "|", "-h", "127.0.0.1", "-p", str(self.port),
                            "-U", "postgres", "-d", "pgbouncer", "-c", "SHOW DATABASES"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30, check=True)
        lines = r.stdout.decode().splitlines()
        hdr = lines[0].split("|")
        for l in lines[1:]:
            f = l.split("|")
            if f[0] == "app":
                return f[hdr.index("paused")] == "1"
        raise AssertionError("no app entry in SHOW DATABASES")

    def pgbench(self, args, name):
        return self.rig.spawn(name, [PGBENCH, "-h", "127.0.0.1", "-p", str(self.port), "-U",
                                     "postgres"] + args + ["app"])

    def yaml(self, name, blue, green, policy="resume", pause_timeout="5s", lease="30s"):
        return ("  - name: %s\n    kind: pgbouncer\n    blue: 127.0.0.1:%d\n    green: 127.0.0.1:%d\n"
                "    pause_timeout: %s\n    on_pause_timeout: %s\n    lease: %s\n"
                "    command_timeout: 5s\n"
                "    pgbouncer:\n      host: 127.0.0.1\n      port: %d\n      user: postgres\n"
                "      database: app\n      dbname: postgres\n      include_file: %s\n"
                "      backend_user: postgres\n"
                % (name, blue.port, green.port, pause_timeout, policy, lease, self.port,
                   self.include))


def test_pgbouncer_switch_under_load(rig):
    blue, green = rig.cluster("blue"), rig.cluster("green")
    setup_db(blue, green)
    pgb = PgBouncer(rig, blue.port)
    coord, _ = rig_with_agent(rig, "proxies:\n" + pgb.yaml("pool", blue, green))
    st = proxy(coord, "pool", "status")["state"]
    check(st["backend"] == "blue" and not st["paused"], "starts on blue, running: %s" % st)
    bench = pgb.pgbench(["-c", "4", "-T", "12", "-n"], "pgbench-pgbouncer")
    time.sleep(3)
    check(int(blue.psql("SELECT count(*) FROM pgbench_history")) > 0, "pgbench writes to blue")
    t0 = time.monotonic()
    p = proxy(coord, "pool", "pause", "--lease", "20s")["state"]
    check(p["paused"] and p["lease_left_ms"] > 15000, "paused under a lease: %s" % p)
    s = proxy(coord, "pool", "switch", "green")["state"]
    check(s["backend"] == "green" and s["paused"], "switched, still paused: %s" % s)
    green_before = int(green.psql("SELECT count(*) FROM pgbench_history"))
    r = proxy(coord, "pool", "resume")["state"]
    held = (time.monotonic() - t0) * 1000
    check(not r["paused"] and r["backend"] == "green", "resumed on green: %s" % r)
    print("  pgbouncer: writes held %.0f ms end to end (agent: %d ms)" % (held, r["paused_ms"]))
    again = proxy(coord, "pool", "switch", "green")["state"]
    check(again["already"], "switching to the active backend says so: %s" % again)
    rc, failed, done, log = pgbench_result(bench, 60)
    check(rc == 0 and failed == 0 and done > 0,
          "pgbench through the switch: rc %s, %s failed, %d done\n%s" % (rc, failed, done, log[-2000:]))
    blue_after = int(blue.psql("SELECT count(*) FROM pgbench_history"))
    green_after = int(green.psql("SELECT count(*) FROM pgbench_history"))
    check(green_after > green_before, "new transactions land on green (%d)" % green_after)
    time.sleep(1)
    check(int(blue.psql("SELECT count(*) FROM pgbench_history")) == blue_after,
          "nothing more lands on blue")
    with open(pgb.include) as f:
        check("port=%d" % green.port in f.read(), "include file names green")
    human = coord.ctl("proxy", "px", "pool", "status")
    check(human.returncode == 0 and "px/pool (pgbouncer): green at 127.0.0.1:%d, not paused"
          % green.port in human.stdout.decode(), "human output: %r" % human.stdout)
    bad = coord.ctl("proxy", "px", "pool", "switch", "purple", check_rc=False)
    check(bad.returncode == 1 and "blue\" or \"green" in bad.stderr.decode(),
          "an unknown backend is refused: %r" % bad.stderr)
    # The report carries the proxy's state to the coordinator.
    wait_for("report shows green", lambda: coord.agent("px").get("proxies", [{}])[0].get("backend")
             == "green", 10)


def test_pgbouncer_pause_while_a_server_logs_in(rig):
    """PAUSE closes server connections still logging in, and PgBouncer
    counts that as a failed login: with no server left after RESUME, it
    makes clients wait server_login_retry (15 s) or fails them ("server
    login has been failing"). The driver lets such logins finish before
    it pauses. Blue is behind a
    relay (100 ms each way), so a login lasts long enough to be caught."""
    blue, green = rig.cluster("blue"), rig.cluster("green")
    relay = harness.Relay(rig, blue.port, delay_ms=100, name="relay-login")
    pgb = PgBouncer(rig, relay.port)

    class Via:
        port = relay.port
    coord, _ = rig_with_agent(rig, "proxies:\n" + pgb.yaml("pool", Via, green))
    failures = 0
    for attempt in range(3):
        client = subprocess.Popen([PSQL, "-X", "-A", "-t", "-h", "127.0.0.1", "-p", str(pgb.port),
                                   "-U", "postgres", "-d", "app", "-c", "SELECT 'served'"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # Wait until PgBouncer logs in to the server for it, then pause.
        wait_for("a server logging in", lambda: pgb.logging_in() > 0, 5, interval=0.002)
        proxy(coord, "pool", "pause", "--lease", "10s")
        proxy(coord, "pool", "resume")
        t0 = time.monotonic()
        out, err = client.communicate(timeout=30)
        took = time.monotonic() - t0
        ok = client.returncode == 0 and out.decode().strip() == "served" and took < 3
        print("  attempt %d: %s %.1f s after the resume" % (
            attempt, "served" if client.returncode == 0 else err.decode().strip(), took))
        failures += not ok
        pgb.admin("RECONNECT app")  # an empty pool again for the next attempt
        time.sleep(0.3)
    check(failures == 0, "%d of 3 clients failed or waited 3 s or more after a pause during a "
          "server login" % failures)


def _open_transaction(pgb):
    """A client holding a transaction open through PgBouncer."""
    p = subprocess.Popen([PSQL, "-X", "-q", "-h", "127.0.0.1", "-p", str(pgb.port), "-U", "postgres",
                          "app"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, start_new_session=True)
    p.stdin.write(b"BEGIN;\nSELECT pg_backend_pid();\n")
    p.stdin.flush()
    return p


def test_pgbouncer_pause_blocked(rig):
    blue, green = rig.cluster("blue"), rig.cluster("green")
    pgb = PgBouncer(rig, blue.port)
    coord, _ = rig_with_agent(rig, "proxies:\n" +
                              pgb.yaml("pool", blue, green, policy="resume", pause_timeout="1500ms") +
                              pgb.yaml("pool_kill", blue, green, policy="terminate",
                                       pause_timeout="1500ms"))
    holder = _open_transaction(pgb)
    try:
        wait_for("transaction open on blue", lambda: blue.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'") == "1", 10)
        t0 = time.monotonic()
        out = proxy(coord, "pool", "pause", ok=False)
        took = time.monotonic() - t0
        check("gave up and resumed" in out["error"], "policy resume: %s" % out)
        check(out["state"]["paused"] is False, "resumed after giving up: %s" % out)
        check(1.4 < took < 8, "the wait was bounded by pause_timeout (%.1f s)" % took)
        check(not pgb.paused(), "PgBouncer shows the entry running")
        # Traffic flows again: a new client gets through.
        check(subprocess.run([PSQL, "-X", "-h", "127.0.0.1", "-p", str(pgb.port), "-U", "postgres",
                              "app", "-c", "SELECT 1"], stdout=subprocess.PIPE, timeout=10)
              .returncode == 0, "traffic resumed")
        # The terminate policy ends the blocker and the pause completes.
        t0 = time.monotonic()
        out = proxy(coord, "pool_kill", "pause", "--lease", "20s")["state"]
        check(out["paused"] and out["terminated"] == 1, "blocker terminated, paused: %s" % out)
        print("  pgbouncer: pause with a blocker took %.0f ms (terminate policy)"
              % ((time.monotonic() - t0) * 1000))
        check(blue.psql("SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'")
              == "0", "the blocking transaction is gone")
        proxy(coord, "pool_kill", "resume")
    finally:
        holder.kill()
        holder.wait()


def test_lease_after_coordinator_kill(rig):
    blue, green = rig.cluster("blue"), rig.cluster("green")
    pgb = PgBouncer(rig, blue.port)
    coord, agent = rig_with_agent(rig, "proxies:\n" + pgb.yaml("pool", blue, green))
    proxy(coord, "pool", "pause", "--lease", "2s")
    check(pgb.paused(), "paused in PgBouncer")
    coord.proc.kill9()
    t0 = time.monotonic()
    time.sleep(1)
    check(pgb.paused(), "still paused before the lease runs out")
    wait_for("the lease resumes PgBouncer", lambda: not pgb.paused(), 15)
    took = time.monotonic() - t0
    check(1.5 < took < 4, "resumed about when the lease ran out (%.1f s after the kill)" % took)
    check("lease ran out" in agent.proc.log(), "the agent logs the lease expiry")
    check(subprocess.run([PSQL, "-X", "-h", "127.0.0.1", "-p", str(pgb.port), "-U", "postgres",
                          "app", "-c", "SELECT 1"], stdout=subprocess.PIPE, timeout=10)
          .returncode == 0, "traffic flows after the lease")
    # A new coordinator hears about it from the report.
    coord.start()
    wait_for("agent back", lambda: coord.agent("px")["state"] == "connected", 15)
    wait_for("report says the lease expired",
             lambda: coord.agent("px").get("proxies", [{}])[0].get("lease_expired"), 10)
    # An agent stopped while a proxy is paused resumes it on the way out.
    proxy(coord, "pool", "pause", "--lease", "60s")
    check(pgb.paused(), "paused again")
    check(agent.proc.stop() == 0, "the agent exits 0")
    check(not pgb.paused(), "the stopping agent resumed PgBouncer")
    check("stopping while traffic is paused: resuming it first" in agent.proc.log(), "and says so")


# ------------------------------------------------------------------ HAProxy

def haproxy_rig(rig, blue, green, policy="resume", pause_timeout="5s"):
    d = rig.path("haproxy")
    os.makedirs(d)
    port = free_port()
    sock = os.path.join(d, "admin.sock")
    state = os.path.join(d, "server-state")
    cfg = os.path.join(d, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write("global\n  stats socket %s mode 600 level admin\n  server-state-file %s\n"
                "  pidfile %s/haproxy.pid\n"
                "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n"
                "  timeout server 60s\n  load-server-state-from-file global\n"
                "frontend pg\n  bind 127.0.0.1:%d\n  maxconn 200\n  default_backend pg\n"
                "backend pg\n  server blue 127.0.0.1:%d\n  server green 127.0.0.1:%d disabled\n"
                % (sock, state, d, port, blue.port, green.port))
    hap = rig.spawn("haproxy", ["/usr/sbin/haproxy", "-W", "-db", "-f", cfg])
    wait_for("haproxy socket", lambda: os.path.exists(sock), 10)
    entry = ("  - name: %s\n    kind: haproxy\n    blue: 127.0.0.1:%d\n    green: 127.0.0.1:%d\n"
             "    pause_timeout: %s\n    on_pause_timeout: %s\n    command_timeout: 5s\n"
             "    haproxy:\n      socket: %s\n"
             "      frontend: pg\n      backend: pg\n      blue_server: blue\n      green_server: green\n"
             "      state_file: %s\n      reload_argv: [/bin/kill, -USR2, '%d']\n")
    coord, _ = rig_with_agent(rig, "proxies:\n" + "".join(
        entry % (name, blue.port, green.port, pause_timeout, pol, sock, state, hap.proc.pid)
        for name, pol in (("lb", policy), ("lb_kill", "terminate"))))
    return coord, hap, port


def test_haproxy_switch_and_reload(rig):
    blue, green = rig.cluster("blue"), rig.cluster("green")
    setup_db(blue, green)
    coord, hap, port = haproxy_rig(rig, blue, green)
    st = proxy(coord, "lb", "status")["state"]
    check(st["backend"] == "blue" and not st["paused"], "starts on blue: %s" % st)
    bench = rig.spawn("pgbench-haproxy", [PGBENCH, "-h", "127.0.0.1", "-p", str(port), "-U",
                                          "postgres", "-C", "-c", "4", "-j", "4", "-T", "12", "-n", "postgres"])
    time.sleep(3)
    t0 = time.monotonic()
    p = proxy(coord, "lb", "pause", "--lease", "20s")["state"]
    check(p["paused"], "held: %s" % p)
    s = proxy(coord, "lb", "switch", "green")["state"]
    check(s["backend"] == "green" and s["paused"], "switched, still held: %s" % s)
    green_before = int(green.psql("SELECT count(*) FROM pgbench_history"))
    r = proxy(coord, "lb", "resume")["state"]
    print("  haproxy: writes held %.0f ms end to end (agent: %d ms)"
          % ((time.monotonic() - t0) * 1000, r["paused_ms"]))
    check(not r["paused"] and r["backend"] == "green", "resumed on green after the reload: %s" % r)
    rc, failed, done, log = pgbench_result(bench, 60)
    check(rc == 0 and failed == 0 and done > 0,
          "pgbench -C through the switch: rc %s, %s failed, %d done\n%s" % (rc, failed, done, log[-2000:]))
    check(int(green.psql("SELECT count(*) FROM pgbench_history")) > green_before,
          "new transactions land on green")
    # Someone else reloads HAProxy: it stays on green.
    os.kill(hap.proc.pid, signal.SIGUSR2)
    time.sleep(1.5)
    st = proxy(coord, "lb", "status")["state"]
    check(st["backend"] == "green", "still green after another reload: %s" % st)
    n = int(green.psql("SELECT count(*) FROM pgbench_history"))
    subprocess.run([PGBENCH, "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-C", "-t", "5",
                    "-n", "postgres"], check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    check(int(green.psql("SELECT count(*) FROM pgbench_history")) == n + 5, "traffic reaches green")


def test_haproxy_pause_with_open_sessions(rig):
    """A client keeps its connection: the pause waits pause_timeout, then
    resume gives up (and lets traffic in again), terminate shuts the session
    down and holds its reconnection."""
    blue, green = rig.cluster("blue"), rig.cluster("green")
    coord, hap, port = haproxy_rig(rig, blue, green, policy="resume", pause_timeout="1s")
    holder = subprocess.Popen([PSQL, "-X", "-q", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                               "postgres"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        holder.stdin.write(b"SELECT 1;\n")
        holder.stdin.flush()
        wait_for("a session through haproxy", lambda: blue.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
            "AND pid <> pg_backend_pid()") == "1", 10)
        t0 = time.monotonic()
        out = proxy(coord, "lb", "pause", ok=False)
        check("gave up and resumed" in out["error"] and not out["state"]["paused"],
              "policy resume: %s" % out)
        check(time.monotonic() - t0 < 6, "bounded by pause_timeout")
        check(subprocess.run([PSQL, "-X", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                              "-c", "SELECT 1"], stdout=subprocess.PIPE, timeout=10).returncode == 0,
              "traffic flows after giving up")
        # The same session (it survived the reload in the old worker) is cut
        # by the terminate policy, through the new worker's runtime API: a
        # new session for the test.
        holder.kill()
        holder.wait()
        holder = subprocess.Popen([PSQL, "-X", "-q", "-h", "127.0.0.1", "-p", str(port), "-U",
                                   "postgres", "postgres"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        holder.stdin.write(b"SELECT 1;\n")
        holder.stdin.flush()
        wait_for("a new session through haproxy", lambda: blue.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
            "AND pid <> pg_backend_pid()") == "1", 10)
        out = proxy(coord, "lb_kill", "pause", "--lease", "20s")["state"]
        check(out["paused"] and out["terminated"] >= 1, "session shut down, held: %s" % out)
        wait_for("the session is gone from blue", lambda: blue.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
            "AND pid <> pg_backend_pid()") == "0", 10)
        proxy(coord, "lb_kill", "resume")
    finally:
        holder.kill()
        holder.wait()


# -------------------------------------------------------------------- nginx

def test_nginx_switch_and_failed_test(rig):
    # The driver owns only the upstream's include file, so stream and http
    # upstreams are driven alike. Debian's nginx ships the stream module in
    # another package, so this test uses an http upstream in front of two
    # small web servers standing for blue and green.
    d = rig.path("nginx")
    os.makedirs(os.path.join(d, "logs"))
    ports = {}
    for name in ("blue", "green"):
        root = os.path.join(d, "www-" + name)
        os.makedirs(root)
        with open(os.path.join(root, "index.html"), "w") as f:
            f.write(name)
        ports[name] = free_port()
        rig.spawn("http-" + name, ["python3", "-m", "http.server", str(ports[name]), "--bind",
                                   "127.0.0.1", "--directory", root])
    port = free_port()
    include = os.path.join(d, "upstream.conf")
    extra = os.path.join(d, "extra.conf")
    conf = os.path.join(d, "nginx.conf")
    with open(include, "w") as f:
        f.write("server 127.0.0.1:%d;\n" % ports["blue"])
    with open(extra, "w") as f:
        f.write("# operators' additions\n")
    with open(conf, "w") as f:
        f.write("daemon off;\nmaster_process on;\nworker_processes 1;\npid %s/nginx.pid;\n"
                "error_log %s/logs/error.log;\nevents { worker_connections 64; }\n"
                "http {\n  access_log off;\n  upstream app {\n    include %s;\n  }\n  include %s;\n"
                "  server { listen 127.0.0.1:%d; location / { proxy_pass http://app; } }\n}\n"
                % (d, d, include, extra, port))
    nginx = ["/usr/sbin/nginx", "-p", d, "-c", conf, "-g", "user root;"]
    rig.spawn("nginx", nginx)
    wait_for("nginx pid", lambda: os.path.exists(os.path.join(d, "nginx.pid")), 10)
    coord, _ = rig_with_agent(rig, (
        "proxies:\n  - name: edge\n    kind: nginx\n    blue: 127.0.0.1:%d\n    green: 127.0.0.1:%d\n"
        "    command_timeout: 5s\n    nginx:\n      include_file: %s\n"
        "      test_argv: [%s, -t, -q]\n"
        "      reload_argv: [%s, -s, reload]\n      pid_file: %s/nginx.pid\n"
        % (ports["blue"], ports["green"], include, ", ".join("'%s'" % a for a in nginx),
           ", ".join("'%s'" % a for a in nginx), d)))

    def served_by():
        import urllib.request
        with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=5) as r:
            return r.read().decode()

    wait_for("nginx serves blue", lambda: served_by() == "blue", 10)
    check(proxy(coord, "edge", "status")["state"]["backend"] == "blue", "status reads blue")
    out = proxy(coord, "edge", "pause", ok=False)
    check("cannot hold" in out["error"] and "hold: false" in out["error"],
          "nginx refuses to pause and says what to put in the plan: %s" % out)
    # An invalid extra include makes nginx -t fail: the switch must undo itself.
    with open(extra, "w") as f:
        f.write("this_is_not_a_directive on;\n")
    out = proxy(coord, "edge", "switch", "green", ok=False)
    check("config test" in out["error"] and "put the old" in out["error"], "test failed: %s" % out)
    check(out["state"]["backend"] == "blue", "reported on blue: %s" % out)
    with open(include) as f:
        check("127.0.0.1:%d" % ports["blue"] in f.read(), "old upstream file restored")
    for _ in range(5):
        check(served_by() == "blue", "traffic still on blue")
    with open(extra, "w") as f:
        f.write("# fixed\n")
    s = proxy(coord, "edge", "switch", "green")["state"]
    check(s["backend"] == "green", "switched: %s" % s)
    wait_for("nginx serves green", lambda: served_by() == "green", 10)
    for _ in range(5):
        check(served_by() == "green", "new workers serve green")
    check(proxy(coord, "edge", "switch", "green")["state"]["already"], "already on green")


def test_bad_proxy_config(rig):
    coord = Coordinator(rig, ["px"]).start()
    agent = Agent(rig, "px", coord, role="proxy")
    with open(agent.config, "a") as f:
        f.write("proxies:\n  - name: lb\n    kind: haproxy\n    blue: 127.0.0.1:1\n"
                "    green: nowhere\n    haproxy:\n      socket: /x\n      frontend: f\n"
                "      backend: b\n      blue_server: b\n      green_server: g\n"
                "      state_file: /s\n      reload_argv: [true]\n")
    r = subprocess.run([harness.exe("godwit-agent"), "--config", agent.config],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
    out = r.stdout.decode()
    check(r.returncode == 2 and re.search(r"agent\.yaml:\d+: proxies\[0\]\.green: expected host:port",
                                          out), "names file, line and field: %s" % out)
    with open(agent.config) as f:
        text = f.read().replace("nowhere", "127.0.0.1:2").replace("    haproxy:", "    pgbouncer:")
    with open(agent.config, "w") as f:
        f.write(text)
    r = subprocess.run([harness.exe("godwit-agent"), "--config", agent.config],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
    check(r.returncode == 2 and "proxies[0].pgbouncer" in r.stdout.decode(),
          "a section of another kind is refused: %s" % r.stdout.decode())


if __name__ == "__main__":
    harness.run([test_bad_proxy_config, test_pgbouncer_switch_under_load,
                 test_pgbouncer_pause_blocked, test_lease_after_coordinator_kill,
                 test_haproxy_switch_and_reload, test_haproxy_pause_with_open_sessions,
                 test_nginx_switch_and_failed_test, test_pgbouncer_pause_while_a_server_logs_in])
