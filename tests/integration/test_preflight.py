# ctest: one entry per case
"""`godwitctl plan check`: a plan validated, and preflight run on real
source and target clusters through their agents. Every planted problem is
reported with its object and fix; nothing changes on either server."""

import json
import os
import re
import subprocess
import time

import harness
from harness import Agent, Coordinator, check, wait_for

EVIL = 'x"; DROP TABLE y; --'

SOURCE_SCHEMA = """
CREATE TABLE public.accounts (id bigserial PRIMARY KEY, owner text NOT NULL);
CREATE TABLE public.nokey (a int, b text);
CREATE TABLE public.fullident (a int, b text);
ALTER TABLE public.fullident REPLICA IDENTITY FULL;
CREATE TABLE public."%s" (a int);
CREATE TABLE public.y (a int);
CREATE TABLE public.events (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE public.events_2026 PARTITION OF public.events
  FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE UNLOGGED TABLE public.scratch (id int PRIMARY KEY);
CREATE TABLE public.gen (id int PRIMARY KEY, a int, b int GENERATED ALWAYS AS (a * 2) STORED);
CREATE SEQUENCE public.free_seq;
INSERT INTO public.accounts (owner) VALUES ('ann'), ('bob');
SELECT pg_catalog.lo_create(0);
""" % EVIL.replace('"', '""')


def agents_up(rig, blue, green, blue_peers=None, green_peers=None, green_config=""):
    """The coordinator and blue's and green's agents, connected;
    green_config: lines appended to green's config. Returns the coordinator
    and green's Agent."""
    coord = Coordinator(rig, ["blue", "green"]).start()
    Agent(rig, "blue", coord, role="source", cluster=blue, peers=blue_peers).start()
    green_agent = Agent(rig, "green", coord, role="target", cluster=green, peers=green_peers)
    if green_config:
        with open(green_agent.config, "a") as f:
            f.write(green_config)
    green_agent.start()
    for n in ("blue", "green"):
        wait_for("%s connected" % n, lambda: coord.agent(n)["state"] == "connected", 15)
    return coord, green_agent


def logical_pair(rig, databases=("shop",)):
    """Blue and green with wal_level logical, the databases on both and
    blue's replication role."""
    blue = rig.cluster("blue", wal_level="logical")
    green = rig.cluster("green", wal_level="logical")
    for c in (blue, green):
        for d in databases:
            c.psql("CREATE DATABASE %s" % d)
    blue.psql("CREATE ROLE godwit_repl WITH REPLICATION LOGIN")
    return blue, green


def setup(rig, wal_level):
    blue = rig.cluster("blue", wal_level=wal_level)
    green = rig.cluster("green", wal_level=wal_level)  # it publishes after a cutover
    blue.psql("CREATE DATABASE shop")
    green.psql("CREATE DATABASE shop")
    blue.psql(SOURCE_SCHEMA, db="shop")
    blue.psql("CREATE ROLE godwit_repl WITH REPLICATION LOGIN")
    blue.psql("GRANT SELECT ON ALL TABLES IN SCHEMA public TO godwit_repl", db="shop")
    # A target table that already holds rows.
    green.psql("CREATE TABLE public.accounts (id bigint PRIMARY KEY, owner text)", db="shop")
    green.psql("INSERT INTO public.accounts VALUES (1, 'old')", db="shop")
    # A second peer for the same server with a role blue does not know.
    coord, _ = agents_up(rig, blue, green, blue_peers={"green": green},
                         green_peers={"blue": blue, "blue_nobody": {
                             "host": "127.0.0.1", "port": blue.port, "user": "nobody_here"}})
    plan = rig.path("plan.yaml")
    with open(plan, "w") as f:
        f.write("migrations:\n"
                "  - name: shop\n"
                "    source: {agent: blue, database: shop}\n"
                "    target: {agent: green, database: shop}\n"
                "    replication:\n"
                "      peer: blue\n"
                "    reverse_replication: {peer: green}\n"
                "    cutover: {app_roles: [app], proxies: [{agent: px, proxy: pgb}]}\n")
    return blue, green, coord, plan


def snapshot(blue, green):
    """What plan check must not change."""
    q = ("SELECT string_agg(x, ',' ORDER BY x) FROM ("
         " SELECT 'slot:' || slot_name AS x FROM pg_catalog.pg_replication_slots"
         " UNION ALL SELECT 'pub:' || pubname FROM pg_catalog.pg_publication"
         " UNION ALL SELECT 'sub:' || subname FROM pg_catalog.pg_subscription"
         " UNION ALL SELECT 'ns:' || nspname FROM pg_catalog.pg_namespace"
         " UNION ALL SELECT 'table:' || count(*) FROM pg_catalog.pg_class"
         " UNION ALL SELECT 'rel:' || c.oid::regclass || ':' || c.relreplident::text"
         "  FROM pg_catalog.pg_class c WHERE c.relnamespace = 'public'::regnamespace) s")
    return (blue.psql(q, db="shop"), green.psql(q, db="shop"),
            blue.psql("SHOW wal_level"),
            green.psql("SELECT count(*) FROM public.accounts", db="shop"),
            blue.psql("SELECT count(*) FROM public.y", db="shop"))


def plan_check(coord, plan):
    # Up to godwitctl's own wait: 200 databases take 15 s on an idle
    # machine, several times that on a busy one.
    r = coord.ctl("plan", "check", plan, "--json", check_rc=False, timeout=610)
    check(r.returncode in (0, 1), "plan check ran: rc %d %s" % (r.returncode, r.stderr.decode()))
    return r.returncode, json.loads(r.stdout)


def findings(report):
    return report["migrations"][0]["findings"]


def find(report, code, obj=None):
    return [f for f in findings(report) if f["code"] == code and (obj is None or f["object"] == obj)]


def test_planted_problems_reported_and_nothing_changes(rig):
    blue, green, coord, plan = setup(rig, "replica")
    before = snapshot(blue, green)
    rc, rep = plan_check(coord, plan)
    after = snapshot(blue, green)
    check(before == after, "plan check changed nothing:\n%r\n%r" % (before, after))
    for f in findings(rep):
        print("   %-7s %-6s %-22s %s" % (f["severity"], f["side"], f["code"], f["object"]))
    check(rc == 1 and rep["blocking"] >= 4, "blocked: rc %d, %d blocking" % (rc, rep["blocking"]))
    wl = find(rep, "wal_level")
    check(wl and wl[0]["severity"] == "error" and "logical" in wl[0]["fix"], "wal_level: %r" % wl)
    rw = find(rep, "reverse_wal_level")
    check(rw and rw[0]["side"] == "target" and "cutover.reverse: off" in rw[0]["fix"],
          "green's wal_level, for blue following green after the cutover: %r" % rw)
    nk = find(rep, "no_replica_identity")
    objs = sorted(f["object"] for f in nk)
    check(any("nokey" in o for o in objs) and any("DROP TABLE" in o for o in objs),
          "tables without key or identity: %r" % objs)
    check(not any("fullident" in o for o in objs), "REPLICA IDENTITY FULL is fine")
    check(not any("accounts" in o for o in objs), "a primary key is fine")
    check(all("REPLICA IDENTITY FULL" in f["fix"] or "PRIMARY KEY" in f["fix"] for f in nk),
          "each with its fix: %r" % [f["fix"] for f in nk])
    ne = find(rep, "target_table_not_empty")
    check(ne and "accounts" in ne[0]["object"] and ne[0]["side"] == "target", "target rows: %r" % ne)
    # Green's accounts lacks the grant blue's has, and the schema phase does
    # not change a table that exists: rights would differ.
    op = find(rep, "object_privileges", "table public.accounts")
    check(op and op[0]["severity"] == "error" and
          'GRANT SELECT ON TABLE public.accounts TO "godwit_repl";' in op[0]["fix"],
          "an existing table's privileges: %r" % op)
    warn_codes = {f["code"] for f in findings(rep) if f["severity"] == "warning"}
    print("   warnings: %s" % sorted(warn_codes))
    check(len(warn_codes) >= 5, "warnings for large objects, unlogged, partitioned, generated, "
          "sequences and more: %r" % warn_codes)
    # The human form names each finding and its fix, and exits 1.
    r = coord.ctl("plan", "check", plan, check_rc=False)
    out = r.stdout.decode()
    check(r.returncode == 1 and "BLOCKS" in out and "fix:" in out and "blocked" in out, out)
    check(blue.psql("SELECT count(*) FROM public.y", db="shop") == "0", "nothing dropped")


def test_fixed_source_is_ready(rig):
    blue, green, coord, plan = setup(rig, "logical")
    blue.psql('ALTER TABLE public.nokey REPLICA IDENTITY FULL; ALTER TABLE public.y REPLICA IDENTITY FULL; '
              'ALTER TABLE public."%s" REPLICA IDENTITY FULL' % EVIL.replace('"', '""'), db="shop")
    green.psql("TRUNCATE public.accounts", db="shop")
    # and green's accounts gets the grant blue's has (the role first)
    green.psql("CREATE ROLE godwit_repl WITH REPLICATION LOGIN")
    green.psql("GRANT SELECT ON public.accounts TO godwit_repl", db="shop")
    rc, rep = plan_check(coord, plan)
    blocking = [f for f in findings(rep) if f["severity"] == "error"]
    check(rc == 0 and not blocking, "nothing blocks: %r" % blocking)
    check(not find(rep, "replication_tls") and not find(rep, "reverse_replication_tls"),
          "peers on loopback: no TLS warning (they do not leave the host)")
    facts = rep["migrations"][0]["source_facts"]
    check(facts["tables"] >= 8 and facts["database_size"] > 1000000, "facts: %r" % facts)
    # A replication role the source does not know is blocking.
    with open(plan) as f:
        text = f.read()
    with open(plan, "w") as f:
        f.write(text.replace("peer: blue\n", "peer: blue_nobody\n"))
    rc, rep = plan_check(coord, plan)
    rcf = find(rep, "replication_connection")
    check(rc == 1 and rcf and "nobody_here" in rcf[0]["message"], "bad replication role: %r" % rcf)
    # A peer an agent's config does not have is blocking, naming the agent,
    # the peer and its config file; nothing is tried.
    with open(plan, "w") as f:
        f.write(text.replace("peer: blue\n", "peer: elsewhere\n")
                .replace("peer: green}", "peer: nowhere}"))
    rc, rep = plan_check(coord, plan)
    rp, rrp = find(rep, "replication_peer"), find(rep, "reverse_replication_peer")
    print("   %s\n   %s" % (rp and rp[0]["message"], rp and rp[0]["fix"]))
    check(rc == 1 and rp and rp[0]["side"] == "target" and rp[0]["severity"] == "error" and
          rp[0]["object"] == "peer elsewhere" and "agent green" in rp[0]["message"] and
          "agent-green/agent.yaml" in rp[0]["fix"], "the target lacks the peer: %r" % rp)
    check(rrp and rrp[0]["side"] == "source" and rrp[0]["object"] == "peer nowhere" and
          "agent blue" in rrp[0]["message"], "the source lacks the reverse peer: %r" % rrp)
    check(not find(rep, "replication_connection"), "no connection tried to no peer")


def test_invalid_plan_refused(rig):
    coord = Coordinator(rig, ["blue", "green"]).start()
    plan = rig.path("bad.yaml")
    with open(plan, "w") as f:
        f.write("migrations:\n"
                "  - name: shop\n"
                "    source: {agent: blue, database: shop}\n"
                "    target: {agent: green, databse: shop}\n"
                "    replication: {peer: blue}\n")
    r = coord.ctl("plan", "check", plan, check_rc=False)
    err = r.stderr.decode()
    check(r.returncode == 2 and "%s:4:" % plan in err and "databse" in err,
          "invalid plan named with line and field: rc %d %s" % (r.returncode, err))
    # Agents not connected are blocking findings, not a crash.
    with open(plan, "w") as f:
        f.write("migrations:\n"
                "  - name: shop\n"
                "    source: {agent: blue, database: shop}\n"
                "    target: {agent: green, database: shop}\n"
                "    replication: {peer: blue}\n")
    rc, rep = plan_check(coord, plan)
    codes = sorted(f["code"] for f in findings(rep))
    check(rc == 1 and codes.count("agent_not_connected") == 2, "agents missing: %r" % codes)


def _create_databases(clusters, names):
    """CREATE DATABASE for each name on each cluster, one psql per cluster
    (each statement in its own transaction, as CREATE DATABASE wants), the
    clusters at once."""
    script = "".join('CREATE DATABASE "%s";\n' % n for n in names).encode()
    procs = [subprocess.Popen([os.path.join(harness.PG_BIN, "psql"), "-X", "-q", "-v",
                               "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(c.port), "-U",
                               "postgres", "-d", "postgres"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
             for c in clusters]
    for p in procs:
        p.communicate(script, timeout=120)
        check(p.returncode == 0, "databases created: rc %d" % p.returncode)


def test_fleet_plan_expanded(rig):
    """A fleet of 200 databases written as one template and one inventory
    entry: plan check expands it into 200 migrations, runs preflight on
    each against the real servers and names where each came from."""
    blue, green = logical_pair(rig, databases=())
    names = ["db%03d" % i for i in range(200)]
    t0 = time.monotonic()
    _create_databases((blue, green), names)
    print("   %d databases on each cluster: %.1f s" % (len(names), time.monotonic() - t0))
    coord, _ = agents_up(rig, blue, green, blue_peers={"green": green}, green_peers={"blue": blue})
    plan = rig.path("fleet.yaml")
    with open(plan, "w") as f:
        f.write("fleets:\n"
                "  - template:\n"
                "      replication: {peer: blue}\n"
                "      options: {parallelism: 1}\n"
                "    inventory:\n"
                "      - source: blue\n"
                "        target: green\n"
                "        name_prefix: fra_\n"
                "        databases: [%s]\n" % ", ".join(names))
    t0 = time.monotonic()
    rc, rep = plan_check(coord, plan)
    took = time.monotonic() - t0
    migs = rep["migrations"]
    print("   plan check of %d migrations: %.2f s, rc %d" % (len(migs), took, rc))
    check(len(migs) == 200, "200 migrations checked: %d" % len(migs))
    for i, m in enumerate(migs):
        check(m["name"] == "fra_" + names[i] and m["source_database"] == names[i] and
              m["target_database"] == names[i] and m["source"] == "blue" and
              m["target"] == "green" and m["from"] == "fleets[0].inventory[0].databases[%d]" % i,
              "expansion %d: %r" % (i, {k: m.get(k) for k in ("name", "from")}))
        failed = [f for f in m["findings"] if f["code"] in ("preflight_failed",
                                                            "agent_not_connected")]
        check(not failed and m.get("source_facts"),
              "%s: preflight ran on its own database: %r" % (m["name"], failed))
    # The human report shows the expansion too (two databases suffice).
    small = rig.path("small.yaml")
    with open(small, "w") as f:
        f.write("fleets:\n  - template: {replication: {peer: blue}}\n    inventory:\n"
                "      - {source: blue, target: green, name_prefix: osl_, databases: [db000, db199]}\n")
    human = coord.ctl("plan", "check", small, check_rc=False).stdout.decode()
    check("migration osl_db199: blue/db199 -> green/db199 (fleets[0].inventory[0].databases[1])"
          in human, "the human report shows the expansion:\n%s" % human[-600:])
    # A fleet that repeats a name is refused with the entry and the name.
    with open(plan, "a") as f:
        f.write("      - {source: blue, target: green, name_prefix: fra_, databases: [db007]}\n")
    r = coord.ctl("plan", "check", plan, check_rc=False)
    err = r.stderr.decode()
    check(r.returncode == 2 and "fleets[0].inventory[1].databases[0] (migration \"fra_db007\")"
          in err and "already fleets[0].inventory[0].databases[7]" in err,
          "a repeated name refused: rc %d %s" % (r.returncode, err))


def test_jurisdiction_required(rig):
    """Data residency: a plan that requires its target in a jurisdiction
    refuses a target agent whose config says another (or none), in plan
    check and at migrate start, changing nothing; the agent's label (and
    its site) shows in status."""
    blue, green = logical_pair(rig)
    coord, green_agent = agents_up(rig, blue, green, blue_peers={"green": green},
                                   green_peers={"blue": blue},
                                   green_config="jurisdiction: no\nsite: osl\n")
    with open(green_agent.config) as f:
        base = f.read().replace("jurisdiction: no\n", "")
    check(coord.agent("green")["jurisdiction"] == "no" and coord.agent("blue")["jurisdiction"] is None,
          "status shows each agent's label: %r %r" % (coord.agent("green").get("jurisdiction"),
                                                      coord.agent("blue").get("jurisdiction")))
    check(coord.agent("green")["site"] == "osl" and coord.agent("blue")["site"] is None,
          "status shows each agent's site: %r" % coord.agent("green"))
    plan = rig.path("plan.yaml")
    with open(plan, "w") as f:
        f.write("migrations:\n"
                "  - name: shop\n"
                "    source: {agent: blue, database: shop}\n"
                "    target: {agent: green, database: shop}\n"
                "    replication: {peer: blue}\n"
                "    options: {target_jurisdiction: eu}\n")
    rc, rep = plan_check(coord, plan)
    j = find(rep, "jurisdiction")
    print("   %s" % (j and j[0]["message"]))
    check(rc == 1 and j and j[0]["side"] == "target" and j[0]["severity"] == "error" and
          j[0]["object"] == "green" and "is in no" in j[0]["message"],
          "the target's jurisdiction refused: %r" % j)
    r = coord.ctl("migrate", "start", plan, check_rc=False)
    check(r.returncode != 0 and "jurisdiction" in (r.stdout + r.stderr).decode(),
          "migrate start refused: rc %d %s" % (r.returncode, (r.stdout + r.stderr).decode()))
    check(blue.psql("SELECT count(*) FROM pg_catalog.pg_replication_slots") == "0" and
          blue.psql("SELECT count(*) FROM pg_catalog.pg_publication", db="shop") == "0",
          "nothing created on the source")
    # The host is in the EU after all: its config says so, the plan passes.
    green_agent.proc.stop()
    with open(green_agent.config, "w") as f:
        f.write(base + "jurisdiction: eu\n")
    green_agent.start()
    wait_for("green back with its new label",
             lambda: coord.agent("green")["state"] == "connected" and
             coord.agent("green")["jurisdiction"] == "eu", 15)
    rc, rep = plan_check(coord, plan)
    check(not find(rep, "jurisdiction"), "no jurisdiction finding: %r" % findings(rep))


def test_link_checks(rig):
    """The link between target and source: its round trip timed on the
    replication connection (through a relay of 12.5 ms each way), and both
    hosts' TCP windows against the plan's link_mbit: warnings with the
    sysctl to set when the windows cannot fill the link, none when they
    can. The target's writes timed once, and the copy's duration predicted
    from the slower of disk and link."""
    blue, green = logical_pair(rig)
    relay = harness.Relay(rig, blue.port, delay_ms=12.5)
    coord, _ = agents_up(rig, blue, green, green_peers={
        "blue": {"host": "127.0.0.1", "port": relay.port, "user": "godwit_repl"}})
    plan = rig.path("plan.yaml")

    def check_plan(mbit):
        with open(plan, "w") as f:
            f.write("migrations:\n"
                    "  - {name: shop, source: {agent: blue, database: shop},"
                    " target: {agent: green, database: shop}, replication: {peer: blue},"
                    " options: {link_mbit: %d}}\n" % mbit)
        return plan_check(coord, plan)[1]

    def sysctl_max(name):
        with open("/proc/sys/net/ipv4/" + name) as f:
            return int(f.read().split()[2])

    rep = check_plan(1000000)
    link = find(rep, "link")
    check(link and link[0]["severity"] == "info", "the link's finding: %r" % findings(rep))
    rtt = float(re.search(r"answers in ([0-9.]+) ms", link[0]["message"]).group(1))
    print("   %s" % link[0]["message"])
    check(24 <= rtt < 200, "the round trip crosses the relay: %.2f ms" % rtt)
    for code, sysctl in (("tcp_receive_window", "tcp_rmem"), ("tcp_send_window", "tcp_wmem")):
        window = sysctl_max(sysctl)
        want = window * 8 / (rtt / 1000) / 1e6 < 1000000
        got = find(rep, code)
        check(bool(got) == want and (not got or (got[0]["severity"] == "warning" and
                                                  "net.ipv4.%s" % sysctl in got[0]["fix"])),
              "%s at 1000000 Mbit/s: %r" % (code, got))
    # The target's writes, timed (a scratch table rolled back): no disk
    # fills a link of 1000000 Mbit/s.
    disk = find(rep, "disk_write")
    check(disk and disk[0]["severity"] == "info" and "wrote 64.0 MiB" in disk[0]["message"] and
          "bound by this disk" in disk[0]["message"], "the disk's finding: %r" % disk)
    print("   %s" % disk[0]["message"])
    slow = find(rep, "disk_write_slow")
    check(slow and slow[0]["severity"] == "warning" and "NVMe" in slow[0]["fix"],
          "a disk slower than the link: %r" % slow)
    rep2 = check_plan(1)
    check(not find(rep2, "tcp_receive_window") and not find(rep2, "tcp_send_window") and
          find(rep2, "link"), "a 1 Mbit/s link needs no larger windows: %r" % findings(rep2))
    # At 1 Mbit/s the link bounds the copy; the second check reused the
    # first one's timing (one probe per agent for a while).
    disk2 = find(rep2, "disk_write")
    check(disk2 and "bound by the link" in disk2[0]["message"] and not find(rep2, "disk_write_slow"),
          "a link slower than the disk: %r" % disk2)
    took = lambda f: re.search(r" in ([0-9]+) ms", f["message"]).group(1)
    check(took(disk[0]) == took(disk2[0]), "one probe for both checks: %s, %s" % (
        took(disk[0]), took(disk2[0])))
    check(green.psql("SELECT count(*) FROM pg_catalog.pg_namespace"
                     " WHERE nspname = 'godwit_disk_probe'", db="shop") == "0",
          "the probe left nothing")


def test_source_agent_role_needs_replication(rig):
    """The source agent creates the copy's slot and holds its snapshot on a
    replication connection of its own: a role without REPLICATION is a
    blocking finding with the statement that fixes it."""
    blue, green, coord, plan = setup(rig, "logical")
    blue.psql("CREATE ROLE godwit_src LOGIN")
    blue.psql("GRANT pg_read_all_settings, pg_read_all_stats TO godwit_src")
    rig.agent_as(coord, "blue", "godwit_src")
    rc, rep = plan_check(coord, plan)
    nr = find(rep, "agent_role_no_replication")
    check(rc == 1 and nr and nr[0]["severity"] == "error" and nr[0]["side"] == "source" and
          "ALTER ROLE godwit_src REPLICATION" in nr[0]["fix"], "the finding: %r" % nr)
    blue.psql("ALTER ROLE godwit_src REPLICATION")
    rc, rep = plan_check(coord, plan)
    check(not find(rep, "agent_role_no_replication"), "gone once the role has REPLICATION")


if __name__ == "__main__":
    harness.run([test_planted_problems_reported_and_nothing_changes, test_fixed_source_is_ready,
                 test_invalid_plan_refused, test_fleet_plan_expanded,
                 test_jurisdiction_required, test_link_checks,
                 test_source_agent_role_needs_replication])
