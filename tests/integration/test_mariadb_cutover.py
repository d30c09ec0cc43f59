# ctest: one entry per case
"""MariaDB's cutover and rollback on real MariaDB 10.11 servers made by the
test, through an HAProxy of the test's own in TCP mode, with sysbench as
the application: every transaction on a new connection through HAProxy
(an order, its line, an update of a random order and of one hot row), so
the pause holds new connections in HAProxy's backlog.

The cutover fences blue (the application's accounts locked, among them
one with every privilege, their sessions ended, read_only on), waits until
green has executed blue's final GTID position, stops green's replication,
switches HAProxy to green and resumes; blue then replicates from green
from the switch position. Zero failed transactions, every committed one
on both sides, every table equal; the broad account cannot write on blue
afterwards. The rollback goes the same way back."""

import json
import os
import subprocess
import time
import types

import harness
import mariadb
from harness import check, wait_for
from test_cutover import HAProxy, agents_connected
from test_mariadb import PLAN, SHOP, checksums, fill, reachable
from test_migrate import in_state, mstatus
from test_verify_load import run_verify

# The application: one transaction per connection (sysbench's own OLTP
# scripts keep their connections, which a proxy's pause cannot hold). Each
# order's `placed` is its transaction's time on the server, to the
# millisecond: bench/run.py finds the application's longest gap in them.
APP_LUA = r"""
function thread_init()
  drv = sysbench.sql.driver()
end

function event()
  local con = drv:connect()
  local id = sysbench.rand.uniform(1, 2000)
  con:query("BEGIN")
  con:query("INSERT INTO shop.orders (customer, total, placed) VALUES ('sb" .. sysbench.tid ..
            "', " .. id .. ", NOW(3))")
  con:query("INSERT INTO shop.lines VALUES (LAST_INSERT_ID(), 1, 'SB', 1, 2.5)")
  con:query("UPDATE shop.orders SET total = total + 1 WHERE id = " .. id)
  con:query("UPDATE shop.orders SET total = total + 1 WHERE id = 1")
  con:query("COMMIT")
  con:disconnect()
end
"""

PLAN_CUTOVER = """    reverse_replication: {peer: green}
    options: {parallelism: 2}
    cutover:
      app_roles: [app, ops]
      proxies: [{agent: px, proxy: my}]
      max_write_pause: 5s
      verify_max_age: 1h
"""


class App:
    """sysbench running APP_LUA through HAProxy for seconds (a process of
    the rig: stopped with it); .wait() gives (return code, committed
    transactions, output)."""

    def __init__(self, rig, proxy, seconds, threads=4, name="sysbench"):
        script = rig.path("app.lua")
        with open(script, "w") as f:
            f.write(APP_LUA)
        self.proc = rig.spawn(name, [
            "sysbench", script, "--db-driver=mysql", "--mysql-host=127.0.0.1",
            "--mysql-port=%d" % proxy.port, "--mysql-user=app", "--mysql-password=app",
            "--mysql-db=shop", "--threads=%d" % threads, "--time=%d" % seconds,
            "--report-interval=1", "run"])

    def wait(self):
        rc = self.proc.wait(120)
        out = self.proc.log()
        events = [int(line.split(":")[1]) for line in out.splitlines()
                  if line.strip().startswith("total number of events:")]
        return rc, events[0] if events else -1, out


def ignored(out):
    """sysbench's count of errors it went past (none are on its list here:
    any error ends the run with FATAL)."""
    n = [int(line.split(":")[1].split()[0]) for line in out.splitlines()
         if line.strip().startswith("ignored errors:")]
    return n[0] if n else -1


def server_id_through(proxy):
    """The server_id of the server HAProxy sends a new connection to."""
    r = subprocess.run(["mariadb", "--no-defaults", "-h127.0.0.1", "-P%d" % proxy.port, "-uapp",
                        "-papp", "-N", "-B", "-e", "SELECT @@server_id"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return r.stdout.decode().strip()


def write_error(db, user, password):
    """What the server answers a write by user over TCP: '' if it went
    through, else the client's message."""
    r = subprocess.run(["mariadb", "--no-defaults", "-h127.0.0.1", "-P%d" % db.port, "-u" + user,
                        "-p" + password, "-N", "-B", "-e",
                        "INSERT INTO shop.audit VALUES (NOW(6), 'written by %s')" % user],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return "" if r.returncode == 0 else r.stdout.decode().strip()


def setup(rig, wan_ms=0.0):
    """blue (the shop database) and green, both logging what they replicate
    (the way back starts from the new primary's binary log position), the
    replication user on both, the application's accounts on both (app for
    the shop database, ops with every privilege), HAProxy in front of blue,
    the coordinator, blue's agent (green its peer, for the way back),
    green's (blue its peer), the proxy's, and the plan: (blue, green,
    coord, proxy, plan). wan_ms: each server reaches the other (the copy,
    replication both ways) through a relay delaying each way by that
    much."""
    opts = {"log-slave-updates": 1}
    blue = mariadb.server(rig, "blue", server_id=1, options=opts)
    green = mariadb.server(rig, "green", server_id=2, options=opts)
    blue.sql(SHOP)
    fill(blue, 3000)
    accounts = ("CREATE USER 'godwit_repl'@'127.0.0.1' IDENTIFIED BY 's3cret';"
                "GRANT REPLICATION SLAVE, RELOAD ON *.* TO 'godwit_repl'@'127.0.0.1';"
                "GRANT SELECT ON shop.* TO 'godwit_repl'@'127.0.0.1';"
                "CREATE USER 'app'@'127.0.0.1' IDENTIFIED BY 'app';"
                "GRANT ALL ON shop.* TO 'app'@'127.0.0.1';"
                "CREATE USER 'ops'@'127.0.0.1' IDENTIFIED BY 'ops';"
                "GRANT ALL PRIVILEGES ON *.* TO 'ops'@'127.0.0.1' WITH GRANT OPTION;")
    blue.sql(accounts)
    # Not in green's binary log: GTIDs of green's own there would come
    # before blue's in the same domain, which gtid_strict_mode refuses.
    green.sql("SET SESSION sql_log_bin = 0;" + accounts)
    proxy = HAProxy(rig, blue, green)
    pwfile = rig.path("repl.pass")
    with open(pwfile, "w") as f:
        f.write("s3cret\n")
    os.chmod(pwfile, 0o600)
    coord = harness.Coordinator(rig, ["blue", "green", "px"]).start()
    def via(db):
        if not wan_ms:
            return db
        return types.SimpleNamespace(port=harness.Relay(rig, db.port, delay_ms=wan_ms).port)
    mariadb.agent(rig, "blue", coord, blue, "source",
                  peers={"green": (via(green), "godwit_repl", pwfile)})
    mariadb.agent(rig, "green", coord, green, "target",
                  peers={"blue": (via(blue), "godwit_repl", pwfile)})
    px = harness.Agent(rig, "px", coord, role="proxy")
    with open(px.config, "a") as f:
        f.write(proxy.agent_yaml(blue, green).replace("name: pgb", "name: my"))
    px.start()
    for n in ("blue", "green"):
        wait_for("%s's reading" % n, lambda: reachable(coord, n), 15)
    plan = rig.path("plan.yaml")
    with open(plan, "w") as f:
        f.write(PLAN % {"engine": "mariadb"} + PLAN_CUTOVER)
    return blue, green, coord, proxy, plan


def both_equal(blue, green, follower):
    """Once follower has executed the other's whole binary log: every
    table's checksum on both sides (the pair)."""
    leader = green if follower is blue else blue
    pos = leader.sql("SELECT @@gtid_binlog_pos")
    follower.sql("SELECT MASTER_GTID_WAIT('%s', 30)" % pos)
    return checksums(blue), checksums(green)


def committed(db):
    """The application's orders on db (one per committed transaction)."""
    return int(db.sql("SELECT COUNT(*) FROM shop.orders WHERE customer LIKE 'sb%'"))


def cutover(coord, *args):
    r = coord.ctl(*(args + ("--json",)), check_rc=False)
    rep = json.loads(r.stdout or b"{}")
    return r.returncode, rep, r


def test_mariadb_cutover_and_rollback_under_load(rig):
    blue, green, coord, proxy, plan = setup(rig)
    r = coord.ctl("migrate", "start", plan, check_rc=False)
    check(r.returncode == 0, "started: %r" % (r.stdout + r.stderr))
    wait_for("streaming", lambda: in_state(coord, "streaming"), 120, interval=0.3)
    wait_for("our replica running", lambda: (lambda s: s if s and s.get("replica") and
             s["replica"]["io_running"] and s["replica"]["sql_running"] else None)(
             mstatus(coord)), 30, interval=0.3)
    check(server_id_through(proxy) == "1", "HAProxy on blue first")

    app = App(rig, proxy, 20)
    time.sleep(2)
    # Every transaction updates the hot row: a chunk's checksum statement
    # is at times a deadlock's victim, and is sent again.
    for i in range(3):
        v = run_verify(coord)
        check(v["state"] == "equal", "verify %d equal under load: %s" % (i + 1, json.dumps(v)))
    blue_log = [p for p in rig.procs if p.name == "agent-blue"][0].log()
    print("   3 verifies equal under load; chunks sent again after a lock conflict: %d" %
          blue_log.count(" again (try "))
    rc, rep, r = cutover(coord, "cutover", "shop")
    check(rc == 0 and rep.get("state") == "done",
          "cut over: rc %d %s %s" % (rc, json.dumps(rep)[-3000:], r.stderr.decode()[-1000:]))
    steps = {t["step"]: t["ms"] for t in rep["timeline"] if t.get("ms") is not None}
    print("   cutover: write pause %.1f ms (%s); final GTID %s, switch GTID %s" % (
        rep["write_pause_ms"], ", ".join("%s %.1f" % kv for kv in steps.items()),
        rep.get("final_gtid"), rep.get("switch_gtid")))
    check(server_id_through(proxy) == "2", "HAProxy on green")
    code, events, out = app.wait()
    check(code == 0 and events > 0 and "FATAL" not in out and ignored(out) == 0,
          "the application: no failed transaction (rc %d, %d transactions):\n%s" % (
              code, events, out[-3000:]))

    # blue follows green from the switch position: both equal, every
    # committed transaction on both.
    st = wait_for("blue follows green", lambda: (lambda s: s if s and s.get("state") ==
                  "switched" else None)(mstatus(coord)), 30, interval=0.3)
    b, g = both_equal(blue, green, blue)
    check(b == g, "every table equal after the cutover:\n%s\n%s" % (b, g))
    check(committed(green) == events, "every committed transaction on green: %d of %d" % (
        committed(green), events))
    print("   %d transactions through HAProxy, 0 failed, 0 lost; blue follows green" % events)

    # The fence: the application's accounts cannot write on blue, not even
    # the one with every privilege (read_only alone would not stop it).
    for user in ("app", "ops"):
        err = write_error(blue, user, user)
        check("locked" in err, "%s cannot write on blue: %r" % (user, err))
        check(write_error(green, user, user) == "", "%s writes on green" % user)
    check(blue.sql("SELECT @@global.read_only") == "1", "blue read_only")

    # The way back, under load again.
    app = App(rig, proxy, 10, name="sysbench-back")
    time.sleep(2)
    rc, rep, r = cutover(coord, "rollback", "shop")
    check(rc == 0 and rep.get("state") == "done",
          "rolled back: rc %d %s %s" % (rc, json.dumps(rep)[-3000:], r.stderr.decode()[-1000:]))
    print("   rollback: write pause %.1f ms" % rep["write_pause_ms"])
    check(server_id_through(proxy) == "1", "HAProxy on blue again")
    code, back_events, out = app.wait()
    check(code == 0 and back_events > 0 and "FATAL" not in out and ignored(out) == 0,
          "the application during the rollback: no failed transaction:\n%s" % out[-3000:])
    wait_for("streaming again", lambda: in_state(coord, "streaming"), 30, interval=0.3)
    b, g = both_equal(blue, green, green)
    check(b == g, "every table equal after the rollback:\n%s\n%s" % (b, g))
    check(committed(blue) == events + back_events and committed(green) == committed(blue),
          "every committed transaction on both: blue %d, green %d, committed %d" % (
              committed(blue), committed(green), events + back_events))
    for user in ("app", "ops"):
        check("locked" in write_error(green, user, user), "%s cannot write on green" % user)
        check(write_error(blue, user, user) == "", "%s writes on blue again" % user)

    # Over to green for good, then cleanup: both replication connections
    # gone, green's database kept (its copy's comment cleared: no later
    # drop takes it), blue still fenced.
    rc, rep, r = cutover(coord, "cutover", "shop")
    check(rc == 0 and rep.get("state") == "done", "cut over again: rc %d %s" % (
        rc, json.dumps(rep)[-2000:]))
    want = checksums(green)
    r = coord.ctl("cleanup", "shop", check_rc=False)
    check(r.returncode == 0, "cleanup: %r" % (r.stdout + r.stderr))
    wait_for("cleaned up", lambda: in_state(coord, "done"), 30, interval=0.3)
    check(blue.sql("SHOW ALL SLAVES STATUS") == "" and green.sql("SHOW ALL SLAVES STATUS") == "",
          "no replication connection left on either side")
    check(checksums(green) == want and green.sql(
          "SELECT SCHEMA_COMMENT FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'shop'") == "",
          "green's database kept, its comment cleared")
    check(locked_out(blue) and write_error(green, "app", "app") == "",
          "blue still fenced, green writable")
    print("   cleanup: both connections gone, green's database kept, blue fenced")


def locked_out(db):
    """Whether both application users are refused on db (its fence)."""
    return all("locked" in write_error(db, u, u) for u in ("app", "ops"))


# Where the coordinator kills itself, and what the restarted one must make
# of it: before the promote is sent it rolls back; from the promote on the
# new side has stopped replicating and may take writes, so it goes forward.
KILLS = [("cutover-after-pause", "aborted"), ("cutover-after-freeze", "aborted"),
         ("cutover-during-promote", "done"), ("cutover-after-promote", "done"),
         ("cutover-after-switch and resume", "done")]
# (cutover-during-switch needs two proxies: with one, the switch and the
# resume are one command)


def test_mariadb_cutover_survives_kills(rig):
    """kill -9 of the coordinator at each step of the cutover and of the
    rollback, one after the other on one pair, sysbench writing through
    HAProxy all along: each restart resolves the cutover (back before the
    promote, forward from it), zero failed transactions, the serving side
    writable and the other fenced, and in the end every committed
    transaction on both sides and every table equal."""
    blue, green, coord, proxy, plan = setup(rig)
    check(coord.ctl("migrate", "start", plan, check_rc=False).returncode == 0, "started")
    wait_for("streaming", lambda: in_state(coord, "streaming"), 120, interval=0.3)
    # A transaction holds a row of the first chunk locked for 2.5 s: the
    # chunk's checksum statement gives up waiting after 1 s (1205, as a
    # deadlock's victim is rolled back), is sent again, and the verify
    # concludes equal once the lock is gone.
    blue.sql("SET GLOBAL innodb_lock_wait_timeout = 1")
    holder = subprocess.Popen(["mariadb", "--no-defaults", "--socket=" + blue.sock, "-uroot", "-e",
                               "BEGIN; UPDATE shop.orders SET total = total WHERE id = 3;"
                               " DO SLEEP(2.5); COMMIT"])
    time.sleep(0.3)
    v = run_verify(coord)
    holder.wait(10)
    blue.sql("SET GLOBAL innodb_lock_wait_timeout = 50")
    again = [p for p in rig.procs if p.name == "agent-blue"][0].log().count(" again (try ")
    print("   verify with a chunk's row locked for 2.5 s: %s, the chunk sent %d more time(s)" % (
        v["state"], again))
    check(v["state"] == "equal" and again >= 1, "verify waited out the lock: %d tries more, %s" % (
        again, json.dumps(v)))
    total = 0
    for i, (point, outcome) in enumerate(KILLS):
        state = mstatus(coord)["state"]
        verb = "cutover" if state == "streaming" else "rollback"
        app = App(rig, proxy, 14, name="sysbench-%d" % i)
        coord.proc.stop()
        coord.start(failpoint=point)
        wait_for("agents back", lambda: agents_connected(coord, ("blue", "green", "px")), 15)
        wait_for("replication polled since the restart", lambda: (lambda s: s if s and
                 s.get("replica") and s["replica"]["io_running"] else None)(mstatus(coord)),
                 15, interval=0.2)
        wait_for("px reports its proxy", lambda: any(p.get("reachable") for p in
                 coord.agent("px").get("proxies") or []), 15, interval=0.2)
        r = coord.ctl(verb, "shop", check_rc=False)
        check(r.returncode == 3, "%s %s: the coordinator died: rc %d %r" % (
            verb, point, r.returncode, r.stderr))
        check(coord.proc.wait(10) == -9, "killed itself at %s" % point)
        coord.start()
        st = wait_for("the %s resolved" % verb, lambda: (lambda s: s if s and s["cutover"] and
                      s["cutover"]["state"] in ("done", "aborted") else None)(mstatus(coord)), 30,
                      interval=0.2)
        went = st["cutover"]["state"]
        serving = (green if verb == "cutover" else blue) if went == "done" else \
            (blue if verb == "cutover" else green)
        other = green if serving is blue else blue
        code, events, out = app.wait()
        print("   %s killed at %s: %s; %d transactions, rc %d" % (verb, point, went, events, code))
        check(went == outcome, "%s at %s: %s, not %s" % (verb, point, went, outcome))
        check(code == 0 and events > 0 and "FATAL" not in out and ignored(out) == 0,
              "no failed transaction:\n%s" % out[-3000:])
        total += events
        check(server_id_through(proxy) == ("1" if serving is blue else "2"),
              "HAProxy on the serving side")
        # (green is fenced only once a rollback left it: before the first
        # cutover the application could write there directly, as on
        # PostgreSQL)
        check(write_error(serving, "app", "app") == "" and (other is green or locked_out(other)),
              "the serving side writable, blue fenced while green serves")
        wait_for("settled", lambda: (lambda s: s if s and s["state"] in ("streaming", "switched")
                 and s.get("replica") and s["replica"]["io_running"] and
                 s["replica"]["sql_running"] else None)(mstatus(coord)), 30, interval=0.3)
    b, g = both_equal(blue, green, green if mstatus(coord)["state"] == "streaming" else blue)
    check(b == g, "every table equal in the end:\n%s\n%s" % (b, g))
    check(committed(blue) == total and committed(green) == total,
          "every committed transaction on both: blue %d, green %d, committed %d" % (
              committed(blue), committed(green), total))


def test_mariadb_cutover_across_a_wan_and_a_proxy_gone(rig):
    """blue and green 12.5 ms apart each way (the copy and replication both
    ways cross a relay of ours), the application's hot row in every
    transaction: verify equal under load, the cutover with 0 failed and
    nothing lost, blue following green across the WAN. Then the proxy's
    agent goes away (kill -9): the rollback is refused, nothing changed;
    once it is back the rollback goes through."""
    blue, green, coord, proxy, plan = setup(rig, wan_ms=12.5)
    check(coord.ctl("migrate", "start", plan, check_rc=False).returncode == 0, "started")
    wait_for("streaming", lambda: in_state(coord, "streaming"), 120, interval=0.3)
    app = App(rig, proxy, 14)
    time.sleep(2)
    v = run_verify(coord)
    check(v["state"] == "equal", "verify equal under load across the WAN: %s" % json.dumps(v))
    print("   verify equal under load across the WAN; chunks sent again after a lock conflict: %d" %
          [p for p in rig.procs if p.name == "agent-blue"][0].log().count(" again (try "))
    wait_for("caught up", lambda: (lambda s: s if s and s["lag_seconds"] is not None and
             s["lag_seconds"] <= 1 else None)(mstatus(coord)), 30, interval=0.3)
    rc, rep, r = cutover(coord, "cutover", "shop")
    check(rc == 0 and rep.get("state") == "done", "cut over across the WAN: rc %d %s" % (
        rc, json.dumps(rep)[-2000:]))
    code, events, out = app.wait()
    check(code == 0 and events > 0 and "FATAL" not in out and ignored(out) == 0,
          "no failed transaction:\n%s" % out[-3000:])
    b, g = both_equal(blue, green, blue)
    check(b == g and committed(green) == events and committed(blue) == events,
          "every table equal, every committed transaction on both: %d, %d of %d" % (
              committed(blue), committed(green), events))
    print("   across 12.5 ms each way: write pause %.1f ms, %d transactions, 0 failed, 0 lost" % (
        rep["write_pause_ms"], events))

    px = [p for p in rig.procs if p.name == "agent-px"][0]
    px.kill9()
    wait_for("px gone", lambda: coord.agent("px")["state"] != "connected", 30, interval=0.3)
    r = coord.ctl("rollback", "shop", check_rc=False)
    out = (r.stdout + r.stderr).decode()
    check(r.returncode == 4 and "px" in out, "rollback refused with the proxy's agent gone: "
          "rc %d %s" % (r.returncode, out))
    check(server_id_through(proxy) == "2" and locked_out(blue) and
          mstatus(coord)["state"] == "switched", "nothing changed")
    print("   the proxy's agent gone: rollback refused (%s)" % out.strip().splitlines()[-1][:160])
    px.start()
    wait_for("px back", lambda: agents_connected(coord, ("px",)), 30, interval=0.3)
    # (the gate wants a report of the proxy since the agent came back)
    rc, rep, r = wait_for("rollback let through", lambda: (lambda x: x if x[0] != 4 or
                          b"has not reported" not in x[2].stderr else None)(
                              cutover(coord, "rollback", "shop")), 15, interval=0.3)
    check(rc == 0 and rep.get("state") == "done" and server_id_through(proxy) == "1",
          "rolled back once the proxy's agent is back: rc %d %s %s" % (
              rc, json.dumps(rep)[-2000:], r.stderr.decode()[-1000:]))


if __name__ == "__main__":
    harness.run([test_mariadb_cutover_and_rollback_under_load,
                 test_mariadb_cutover_survives_kills,
                 test_mariadb_cutover_across_a_wan_and_a_proxy_gone])
