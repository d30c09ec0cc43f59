# ctest: one entry per case
"""The MariaDB engine on real MariaDB 10.11 servers made by the test: the
agent reads its server every interval (version, server_id, binlog
settings, GTID positions, a replica's state) and the coordinator shows it;
a server that goes away is reported unreachable while the agent keeps
heartbeating. `godwitctl plan check` of an `engine: mariadb` plan runs the
preflight on both servers: every planted problem reported with its object
and its fix, nothing changed; once fixed, ready. migrate start refuses an
`engine: mariadb` plan (this version does not move one yet)."""

import json
import os

import mariadb
from harness import Coordinator, check, wait_for


def my_of(coord, name):
    a = coord.agent(name)
    return a.get("mariadb") if a else None


def reachable(coord, name):
    m = my_of(coord, name)
    return m if m and m["reachable"] else None


def test_mariadb_agent_reports(rig):
    blue = mariadb.server(rig, "blue", server_id=1)
    green = mariadb.server(rig, "green", server_id=2)
    coord = Coordinator(rig, ["blue", "green"]).start()
    mariadb.agent(rig, "blue", coord, blue, "source")
    mariadb.agent(rig, "green", coord, green, "target")
    m = wait_for("blue's reading", lambda: reachable(coord, "blue"), 15)
    check(m["version"].startswith("10.11.") and m["server_id"] == 1 and m["log_bin"] and
          m["binlog_format"] == "ROW" and m["binlog_row_image"] == "FULL" and
          m["gtid_strict_mode"] and m["replica"] is None and m["age_ms"] < 3000,
          "blue's reading: %r" % m)
    check(coord.agent("blue")["postgres"] is None, "no postgres section: %r" %
          coord.agent("blue")["postgres"])
    blue.sql("CREATE DATABASE shop; CREATE TABLE shop.t (id int PRIMARY KEY, v text);"
             "INSERT INTO shop.t VALUES (1, 'a'), (2, 'b')")
    pos = blue.sql("SELECT @@gtid_binlog_pos")
    wait_for("blue's GTID position reported", lambda: (reachable(coord, "blue") or {}).get(
        "gtid_binlog_pos") == pos, 10)

    # green replicates from blue (by hand here): its replica state shows.
    blue.sql("CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'r3pl';"
             "GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'")
    green.sql("SET GLOBAL gtid_slave_pos = '';"
              "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = %d, MASTER_USER = 'repl',"
              " MASTER_PASSWORD = 'r3pl', MASTER_USE_GTID = slave_pos; START SLAVE" % blue.port)
    pos = blue.sql("SELECT @@gtid_binlog_pos")  # the user and grant are events too
    r = wait_for("green's replica state", lambda: (lambda g: g["replica"] if g and g.get("replica")
                 and g["replica"]["io_running"] and g["replica"]["sql_running"] and
                 g["gtid_slave_pos"] == pos else None)(reachable(coord, "green")), 15)
    check(r["master_port"] == blue.port and r["seconds_behind"] == 0 and
          r["last_error"] is None, "replica: %r" % r)
    human = coord.ctl("status").stdout.decode()
    check("up mariadb 10.11." in human and "binlog on (ROW, FULL)" in human and
          "replica of 127.0.0.1:%d: io running, sql running" % blue.port in human,
          "human status:\n%s" % human)

    # A replication error is reported with the server's message.
    green.sql("STOP SLAVE; SET GLOBAL read_only = 0;"
              "INSERT INTO shop.t VALUES (3, 'green only'); START SLAVE")
    blue.sql("INSERT INTO shop.t VALUES (3, 'blue')")
    r = wait_for("the replica's error", lambda: (lambda g: g["replica"] if g and g.get("replica")
                 and g["replica"]["last_error"] else None)(reachable(coord, "green")), 15)
    check(not r["sql_running"] and "Duplicate entry" in r["last_error"], "error: %r" % r)

    # blue goes away: reported unreachable with a reason, heartbeats go on.
    reports = coord.agent("blue")["reports"]
    blue.stop()
    m = wait_for("blue unreachable", lambda: (lambda x: x if x and not x["reachable"] else None)(
        my_of(coord, "blue")), 10)
    check(m["error"], "with a reason: %r" % m)
    wait_for("heartbeats while down", lambda: coord.agent("blue")["reports"] >= reports + 3, 10)
    check(coord.agent("blue")["state"] == "connected", "blue's agent connected")
    blue.start()
    wait_for("blue back", lambda: reachable(coord, "blue"), 15)


PLAN = """migrations:
  - name: shop
    engine: %(engine)s
    source: {agent: blue, database: shop}
    target: {agent: green, database: shop}
    replication: {peer: blue}
"""


def plan_check(coord, plan):
    r = coord.ctl("plan", "check", plan, "--json", check_rc=False)
    return r.returncode, json.loads(r.stdout)


def findings(rep, severity="error"):
    return sorted((f["side"] if "side" in f else "", f["code"], f["object"])
                  for m in rep["migrations"] for f in m["findings"]
                  if f["severity"] == severity)


def test_mariadb_preflight(rig):
    # blue: statement-based binlog, a MyISAM table, a table without a key,
    # the same server_id as green; green: the database already holds a
    # table; the peer's user lacks REPLICATION SLAVE.
    blue = mariadb.server(rig, "blue", server_id=7, options={"binlog-format": "STATEMENT"})
    green = mariadb.server(rig, "green", server_id=7)
    blue.sql("CREATE DATABASE shop;"
             "CREATE TABLE shop.orders (id int PRIMARY KEY, total decimal(10,2)) ENGINE=InnoDB;"
             "CREATE TABLE shop.legacy (id int PRIMARY KEY, v text) ENGINE=MyISAM;"
             "CREATE TABLE shop.notes (v text) ENGINE=InnoDB;"
             "INSERT INTO shop.orders VALUES (1, 9.5), (2, 3.25); INSERT INTO shop.legacy VALUES (1, 'x');"
             "INSERT INTO shop.notes VALUES ('n');"
             "CREATE USER 'godwit_repl'@'127.0.0.1' IDENTIFIED BY 's3cret';"
             "GRANT SELECT ON shop.* TO 'godwit_repl'@'127.0.0.1'")
    green.sql("CREATE DATABASE shop; CREATE TABLE shop.stale (id int PRIMARY KEY)")
    pwfile = rig.path("repl.pass")
    with open(pwfile, "w") as f:
        f.write("s3cret\n")
    os.chmod(pwfile, 0o600)
    coord = Coordinator(rig, ["blue", "green"]).start()
    mariadb.agent(rig, "blue", coord, blue, "source")
    mariadb.agent(rig, "green", coord, green, "target",
                  peers={"blue": (blue, "godwit_repl", pwfile)})
    for n in ("blue", "green"):
        wait_for("%s's reading" % n, lambda: reachable(coord, n), 15)
    plan = rig.path("plan.yaml")
    with open(plan, "w") as f:
        f.write(PLAN % {"engine": "mariadb"})
    before = {db.name: db.sql("CHECKSUM TABLE shop.orders, shop.legacy, shop.notes" if
                              db is blue else "CHECKSUM TABLE shop.stale") for db in (blue, green)}
    rc, rep = plan_check(coord, plan)
    errors = [(c, o) for _, c, o in findings(rep)]
    warnings = [(c, o) for _, c, o in findings(rep, "warning")]
    print("   errors: %r\n   warnings: %r" % (errors, warnings))
    for want in [("binlog_format", "binlog_format"), ("storage_engine", "legacy"),
                 ("server_id", "server_id"), ("target_not_empty", "shop"),
                 ("replication_grant", "")]:
        check(any(c == want[0] and want[1] in o for c, o in errors), "error %r in %r" % (
            want, errors))
    check(any(c == "no_primary_key" and "notes" in o for c, o in warnings),
          "no primary key warned: %r" % warnings)
    check(rc != 0 and rep["blocking"] > 0, "blocking: rc %d" % rc)
    for f in (f for m in rep["migrations"] for f in m["findings"]):
        check(f["message"] and f["fix"], "every finding says why and what to do: %r" % f)
    after = {db.name: db.sql("CHECKSUM TABLE shop.orders, shop.legacy, shop.notes" if
                             db is blue else "CHECKSUM TABLE shop.stale") for db in (blue, green)}
    check(before == after and blue.sql("SELECT @@binlog_format") == "STATEMENT",
          "nothing changed on either server")

    # An engine: postgresql plan naming these agents: refused at the agents.
    with open(plan, "w") as f:
        f.write(PLAN % {"engine": "postgresql"})
    rc, rep = plan_check(coord, plan)
    check(rc != 0 and [o for _, c, o in findings(rep) if c == "agent_engine"] ==
          ["blue", "green"], "engine mismatch: %r" % findings(rep))

    # Fixed: ready.
    blue.sql("ALTER TABLE shop.legacy ENGINE=InnoDB; ALTER TABLE shop.notes ADD id serial PRIMARY KEY;"
             "GRANT REPLICATION SLAVE ON *.* TO 'godwit_repl'@'127.0.0.1'")
    blue.restart(**{"binlog-format": "ROW", "server-id": 1})
    green.sql("DROP DATABASE shop")
    with open(plan, "w") as f:
        f.write(PLAN % {"engine": "mariadb"})
    wait_for("blue's new reading", lambda: (reachable(coord, "blue") or {}).get("server_id") == 1,
             15)
    rc, rep = plan_check(coord, plan)
    check(rc == 0 and rep["blocking"] == 0, "ready once fixed: %r" % findings(rep))
    facts = rep["migrations"][0].get("source_facts") or {}
    print("   source facts: %r" % facts)

    # migrate start moves no MariaDB database yet: refused, nothing started.
    r = coord.ctl("migrate", "start", plan, check_rc=False)
    err = (r.stdout + r.stderr).decode()
    check(r.returncode != 0 and "engine mariadb" in err and "nothing was started" in err,
          "start refused: %s" % err)
    r = coord.ctl("migrate", "status", "shop", check_rc=False)
    check(r.returncode != 0, "no migration made: %r" % (r.stdout + r.stderr))


if __name__ == "__main__":
    import harness
    harness.run([test_mariadb_agent_reports, test_mariadb_preflight])
