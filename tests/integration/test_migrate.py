# ctest: one entry per case
"""The migration pipeline on real clusters: migrate start runs preflight,
schema, publication, subscription with copy, post-data and reaches
streaming while pgbench writes on blue; every row arrives; a kill -9 of the
coordinator mid-way resumes from the journal; abort leaves blue with no slot
and no publication of ours."""

import json
import time

import harness
from harness import Agent, Coordinator, check, wait_for

EVIL = 'x"; DROP TABLE y; --'
Q_EVIL = '"%s"' % EVIL.replace('"', '""')

SCHEMA = """
CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE public.customers (id bigserial PRIMARY KEY, name text NOT NULL, mood public.mood,
  doc jsonb, photo bytea);
CREATE TABLE public.orders (id bigserial PRIMARY KEY,
  customer_id bigint NOT NULL REFERENCES public.customers (id), total numeric(12,2),
  at timestamptz DEFAULT now());
CREATE INDEX orders_customer ON public.orders (customer_id);
CREATE TABLE public.lines (order_id bigint, line int, qty int, PRIMARY KEY (order_id, line));
CREATE TABLE public.audit (who text, what text);
ALTER TABLE public.audit REPLICA IDENTITY FULL;
CREATE TABLE public.events (id int, at date, v text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE public.events_a PARTITION OF public.events FOR VALUES FROM ('2020-01-01') TO ('2026-01-01');
CREATE TABLE public.events_b PARTITION OF public.events FOR VALUES FROM ('2026-01-01') TO ('2030-01-01');
CREATE SEQUENCE public.invoice_no;
CREATE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN NEW.at := coalesce(NEW.at, now()); RETURN NEW; END$$;
CREATE TRIGGER orders_touch BEFORE INSERT ON public.orders FOR EACH ROW EXECUTE FUNCTION public.touch();
CREATE TABLE public.%s (id int PRIMARY KEY, v text);
INSERT INTO public.customers (name, mood, doc, photo)
  SELECT 'c' || g, 'ok', jsonb_build_object('g', g), decode(md5(g::text), 'hex')
  FROM generate_series(1, 2000) g;
INSERT INTO public.orders (customer_id, total) SELECT 1 + g %% 2000, g FROM generate_series(1, 20000) g;
INSERT INTO public.lines SELECT g, l, l FROM generate_series(1, 3000) g, generate_series(1, 3) l;
INSERT INTO public.audit SELECT 'u' || g, 'did ' || g FROM generate_series(1, 500) g;
INSERT INTO public.events SELECT g, DATE '2021-01-01' + g, 'v' FROM generate_series(1, 3000) g;
INSERT INTO public.%s SELECT g, 'v' FROM generate_series(1, 10) g;
SELECT pg_catalog.setval('public.invoice_no', 41);
""" % (Q_EVIL, Q_EVIL)

TABLES = ["public.customers", "public.orders", "public.lines", "public.audit", "public.events",
          "public.pgbench_accounts", "public.pgbench_branches", "public.pgbench_tellers",
          "public.pgbench_history", "public." + Q_EVIL]


def setup(rig, options="", extra_agents=(), wan_ms=None, near=(), wan_loss_pct=0.0,
          wan_rate_kbit=0, coord_options=None):
    """wan_ms: agents dial the coordinator, and green reaches blue for
    replication, through relays that delay each way by that much (the
    coordinator's .dial is what agents dial); 0: relays without delay (a
    test can then move the coordinator's address). wan_loss_pct and
    wan_rate_kbit: the link between the datacenters (green to blue and
    back, the relays coord.wan) loses that share of its segments and is
    capped at that rate. near: the agents in the coordinator's own site,
    which dial it directly (coord.near); the others dial through the relay
    coord.relay. coord_options: more keys of the
    coordinator's config ({key: value}, e.g. its metrics section)."""
    blue = rig.cluster("blue")
    green = rig.cluster("green")
    blue.psql("CREATE DATABASE shop")
    green.psql("CREATE DATABASE shop")
    blue.psql(SCHEMA, db="shop")
    harness.subprocess.run([harness.os.path.join(harness.PG_BIN, "pgbench"), "-i", "-q", "-s", "2",
                            "-h", "127.0.0.1", "-p", str(blue.port), "-U", "postgres", "shop"],
                           check=True, stdout=harness.subprocess.PIPE, stderr=harness.subprocess.STDOUT)
    # pgbench_history has no key: give it an identity so it can replicate.
    blue.psql("ALTER TABLE public.pgbench_history REPLICA IDENTITY FULL", db="shop")
    for c in (blue, green):  # green too: blue follows green after a cutover
        c.psql("CREATE ROLE godwit_repl WITH REPLICATION LOGIN SUPERUSER")
    coord = Coordinator(rig, ["blue", "green"] + list(extra_agents),
                        options=coord_options).start()
    coord.dial, repl_port, rev_port = coord, blue.port, green.port
    coord.near = set(near)
    if wan_ms is not None:
        relay = coord.relay = harness.Relay(rig, coord.port, delay_ms=wan_ms,
                                            name="relay-coordinator")
        coord.dial = harness.types.SimpleNamespace(endpoint="tcp://127.0.0.1:%d" % relay.port)
        coord.wan = [harness.Relay(rig, port, delay_ms=wan_ms, name=name, loss_pct=wan_loss_pct,
                                   rate_kbit=wan_rate_kbit)
                     for port, name in ((blue.port, "relay-replication"),
                                        (green.port, "relay-reverse"))]
        repl_port, rev_port = coord.wan[0].port, coord.wan[1].port
    # Each agent's way to the other side is a peer of its own config; the
    # plan names it.
    peer = lambda port: {"host": "127.0.0.1", "port": port, "user": "godwit_repl"}
    Agent(rig, "blue", coord if "blue" in coord.near else coord.dial, role="source", cluster=blue,
          peers={"green": peer(rev_port)}).start()
    Agent(rig, "green", coord if "green" in coord.near else coord.dial, role="target", cluster=green,
          peers={"blue": peer(repl_port)}).start()
    for n in ("blue", "green"):
        wait_for("%s connected" % n, lambda: coord.agent(n)["state"] == "connected", 15)
    plan = rig.path("plan.yaml")
    with open(plan, "w") as f:
        f.write("migrations:\n"
                "  - name: shop\n"
                "    source: {agent: blue, database: shop}\n"
                "    target: {agent: green, database: shop}\n"
                "    replication: {peer: blue}\n"
                "    reverse_replication: {peer: green}\n" + options)
    return blue, green, coord, plan


def mstatus(coord, name="shop"):
    r = coord.ctl("migrate", "status", name, "--json", check_rc=False)
    return json.loads(r.stdout)["migrations"][0] if r.returncode == 0 else None


def in_state(coord, state):
    st = mstatus(coord)
    return st if st and st["state"] == state else None


def verify_equal(coord):
    """migrate verify reports every table equal (re-run if rows were still
    in flux under writes)."""
    for _ in range(10):
        r = coord.ctl("migrate", "verify", "shop", "--json", check_rc=False)
        if r.returncode == 0:
            return
        time.sleep(1)  # right after a restart the target has not reported its tables yet
    check(False, "verify equal: %s %s" % (r.stdout.decode()[-2000:], r.stderr.decode()))


def compare(blue, green, tables):
    """Whole tables, ordered, as text: equal or the first difference."""
    for t in tables:
        q = "SELECT md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) FROM %s x" % t
        a, b = blue.psql(q, db="shop"), green.psql(q, db="shop")
        if a != b:
            return "%s differs" % t
    return None


def test_full_run_reaches_streaming(rig):
    blue, green, coord, plan = setup(rig)
    bench = blue.pgbench(["-n", "-c", "2", "-R", "100", "-T", "600", "shop"])
    r = coord.ctl("migrate", "start", plan, check_rc=False)
    check(r.returncode == 0 and b"started" in r.stdout, "started: %r" % (r.stdout + r.stderr))
    t0 = time.monotonic()
    st = wait_for("streaming", lambda: in_state(coord, "streaming"), 180, interval=0.5)
    print("   streaming after %.1f s" % (time.monotonic() - t0))
    check(st["tables_ready"] == len(st["tables"]) >= len(TABLES) - 1, "all tables ready: %r" %
          [(t["table"], t["state"]) for t in st["tables"]])
    # The copy's snapshot was held by blue's agent and let go when the copy
    # ended: its replication connection is gone.
    wait_for("the snapshot's hold ended", lambda: blue.psql(
        "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE application_name = "
        "'godwit_shop_hold'") == "0", 10, interval=0.2)
    blue_log = [p for p in rig.procs if p.name == "agent-blue"][0].log()
    check('slot "godwit_shop" created, consistent at' in blue_log and
          "no longer held: ended by the coordinator" in blue_log,
          "blue's agent made the slot, held its snapshot and let it go when told")
    lag = wait_for("lag under 1 MiB", lambda: (lambda s: s if s["lag_bytes"] is not None and
                                                 s["lag_bytes"] < 1 << 20 else None)(mstatus(coord)), 30)
    lag = wait_for("lag in seconds", lambda: (lambda s: s if s["lag_seconds"] is not None
                                               else None)(mstatus(coord)), 15)
    print("   lag %d bytes, %.3f s while pgbench writes" % (lag["lag_bytes"], lag["lag_seconds"]))
    check(lag["lag_seconds"] < 5, "lag in seconds is small: %r" % lag["lag_seconds"])
    # Post-data: the deferred index, foreign key and trigger exist on green.
    check(green.psql("SELECT count(*) FROM pg_catalog.pg_indexes WHERE indexname = 'orders_customer'",
                     db="shop") == "1", "secondary index built")
    check(green.psql("SELECT count(*) FROM pg_catalog.pg_constraint WHERE contype = 'f'", db="shop")
          == "1", "foreign key built")
    check(green.psql("SELECT count(*) FROM pg_catalog.pg_trigger WHERE tgname = 'orders_touch'",
                     db="shop") == "1", "trigger built")
    # The primary keys the copy built after loading (the big tables') exist.
    q = ("SELECT string_agg(conrelid::regclass::text, ',' ORDER BY conrelid::regclass::text)"
         " FROM pg_catalog.pg_constraint WHERE contype = 'p'")
    check(green.psql(q, db="shop") == blue.psql(q, db="shop"), "every primary key: %s" %
          green.psql(q, db="shop"))
    # Stop the writers, let green catch up, and compare every table.
    bench.stop()
    wait_for("caught up", lambda: compare(blue, green, TABLES) is None, 60, interval=1)
    # Human status.
    out = coord.ctl("migrate", "status").stdout.decode()
    check("migration shop: streaming" in out and "ready" in out, out)


def test_kill9_coordinator_during_copy_resumes(rig):
    blue, green, coord, plan = setup(rig)
    bench = blue.pgbench(["-n", "-c", "1", "-R", "50", "-T", "600", "shop"])
    check(coord.ctl("migrate", "start", plan).returncode == 0, "started")
    wait_for("past the schema", lambda: (lambda s: s and s["state"] == "copy")(
        mstatus(coord)), 60, interval=0.2)
    coord.proc.kill9()
    time.sleep(0.5)
    coord.start()
    st = wait_for("streaming after the restart", lambda: in_state(coord, "streaming"), 180)
    check(st["tables_ready"] == len(st["tables"]), "all ready")
    subs = green.psql("SELECT count(*) FROM pg_catalog.pg_subscription", db="shop")
    check(subs == "1", "one subscription, not two: %s" % subs)
    verify_equal(coord)
    bench.stop()
    wait_for("caught up", lambda: compare(blue, green, TABLES) is None, 60, interval=1)


def hold_lock(rig, cluster, table, mode, seconds, name="lock"):
    """A session on cluster that holds a lock of mode on table."""
    return rig.spawn(name, [harness.os.path.join(harness.PG_BIN, "psql"), "-X", "-h", "127.0.0.1",
                            "-p", str(cluster.port), "-U", "postgres", "-d", "shop", "-c",
                            "SET application_name = 'test_lock'; BEGIN; LOCK TABLE %s IN %s MODE; "
                            "SELECT pg_sleep(%d); COMMIT;" % (table, mode, seconds)])


def release_lock(cluster):
    """Ends the locking session on the server (stopping psql would not)."""
    cluster.psql("SELECT count(pg_catalog.pg_terminate_backend(pid)) FROM pg_catalog.pg_stat_activity "
                 "WHERE application_name = 'test_lock'", db="shop")


def test_kill9_coordinator_during_postdata_resumes(rig):
    blue, green, coord, plan = setup(rig)
    check(coord.ctl("migrate", "start", plan).returncode == 0, "started")
    # Once the tables exist on green, a ROW EXCLUSIVE lock on orders lets
    # the copy in but holds the index build (CREATE INDEX wants SHARE), so
    # the migration sits in postdata while we kill.
    wait_for("schema applied", lambda: (lambda s: s and s["state"] not in ("roles", "schema"))(
        mstatus(coord)), 60, interval=0.1)
    hold_lock(rig, green, "public.orders", "ROW EXCLUSIVE", 30)
    wait_for("in postdata", lambda: in_state(coord, "postdata"), 60, interval=0.1)
    time.sleep(1)
    coord.proc.kill9()
    coord.start()
    time.sleep(2)
    check(in_state(coord, "postdata"), "still in postdata after the restart")
    release_lock(green)
    st = wait_for("streaming after the lock", lambda: in_state(coord, "streaming"), 120)
    check(green.psql("SELECT count(*) FROM pg_catalog.pg_indexes WHERE indexname = 'orders_customer'",
                     db="shop") == "1", "the index exists once")
    check(green.psql("SELECT count(*) FROM pg_catalog.pg_constraint WHERE contype = 'f'",
                     db="shop") == "1", "the foreign key exists once")
    check(st["tables_ready"] == len(st["tables"]), "all ready")
    verify_equal(coord)
    wait_for("caught up", lambda: compare(blue, green, TABLES) is None, 60, interval=1)


def schema_on_green(blue, green):
    """Blue's schema restored on green, as the schema steps would."""
    dump = harness.subprocess.run(
        [harness.os.path.join(harness.PG_BIN, "pg_dump"), "-s", "-h", "127.0.0.1", "-p",
         str(blue.port), "-U", "postgres", "shop"], check=True, stdout=harness.subprocess.PIPE)
    harness.subprocess.run([harness.os.path.join(harness.PG_BIN, "psql"), "-X", "-q", "-v",
                            "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(green.port), "-U",
                            "postgres", "-d", "shop"], input=dump.stdout, check=True,
                           stdout=harness.subprocess.PIPE)


def test_kill9_target_agent_during_copy_completes(rig):
    blue, green, coord, plan = setup(rig)
    # The schema is on green already (the schema steps find it done), and an
    # EXCLUSIVE lock on green's orders holds that table's copy (it wants ROW
    # EXCLUSIVE) but not preflight's look at it (ACCESS SHARE).
    schema_on_green(blue, green)
    # As a copy that died after dropping a big table's primary key leaves it:
    # the copy puts the key back from the source's definition.
    green.psql("ALTER TABLE public.pgbench_accounts DROP CONSTRAINT pgbench_accounts_pkey", db="shop")
    hold_lock(rig, green, "public.orders", "EXCLUSIVE", 60)
    time.sleep(0.5)
    check(coord.ctl("migrate", "start", plan).returncode == 0, "started")
    wait_for("copying", lambda: in_state(coord, "copy"), 60, interval=0.2)
    time.sleep(1.5)
    agent = [p for p in rig.procs if p.name == "agent-green"][0]
    agent.kill9()
    time.sleep(1)
    agent.start()
    release_lock(green)
    st = wait_for("streaming after the agent restart", lambda: in_state(coord, "streaming"), 120)
    check(st["tables_ready"] == len(st["tables"]), "all ready")
    check(green.psql("SELECT count(*) FROM pg_catalog.pg_subscription", db="shop") == "1",
          "one subscription")
    check(green.psql("SELECT count(*) FROM pg_catalog.pg_constraint WHERE conname ="
                     " 'pgbench_accounts_pkey'", db="shop") == "1",
          "the primary key the first copy dropped is back")
    verify_equal(coord)
    wait_for("caught up", lambda: compare(blue, green, TABLES) is None, 60, interval=1)


def test_kill9_both_agents_during_copy_starts_over(rig):
    # Both agents die mid-copy: blue's took the copy's snapshot with it. The
    # restarted blue agent finds our slot without its snapshot and leaves it;
    # green's copy, finding no subscription of ours, drops it; a new slot
    # and snapshot follow and the copy begins again from its first table,
    # its partial rows emptied. Nothing is lost or doubled.
    blue, green, coord, plan = setup(rig)
    schema_on_green(blue, green)
    hold_lock(rig, green, "public.orders", "EXCLUSIVE", 60)
    time.sleep(0.5)
    check(coord.ctl("migrate", "start", plan).returncode == 0, "started")
    wait_for("some table copied", lambda: (lambda s: s and s["state"] == "copy" and any(
        t["state"] == "copied" for t in s.get("tables") or []))(mstatus(coord)), 60, interval=0.2)
    agents = {p.name: p for p in rig.procs if p.name in ("agent-blue", "agent-green")}
    for a in agents.values():
        a.kill9()
    time.sleep(1)
    for a in agents.values():
        a.start()
    release_lock(green)
    st = wait_for("streaming after both agents restarted", lambda: in_state(coord, "streaming"),
                  120)
    check(st["tables_ready"] == len(st["tables"]), "all ready")
    check("exists without its snapshot" in agents["agent-blue"].log(),
          "blue's agent found the slot without its snapshot")
    check("left on the source without its snapshot" in agents["agent-green"].log(),
          "green's copy dropped that slot")
    audit = json.loads(coord.ctl("migrate", "audit", "shop", "--json").stdout)
    check(any(e["kind"] == "restart" for e in audit["events"]), "the restart is journaled")
    check(blue.psql("SELECT count(*) FROM pg_catalog.pg_replication_slots", db="shop") == "1",
          "one slot on blue")
    check(green.psql("SELECT count(*) FROM pg_catalog.pg_subscription", db="shop") == "1",
          "one subscription")
    verify_equal(coord)
    check(compare(blue, green, TABLES) is None, "every table equal")


def test_slot_limit_protects_the_source(rig):
    limit = 32 << 20
    blue, green, coord, plan = setup(rig, "    options: {slot_wal_limit: 32MiB}\n")
    check(coord.ctl("migrate", "start", plan).returncode == 0, "started")
    wait_for("streaming", lambda: in_state(coord, "streaming"), 120)
    # The target stops consuming; blue keeps writing: our slot holds WAL.
    green.psql("ALTER SUBSCRIPTION godwit_shop DISABLE", db="shop")
    bench = blue.pgbench(["-n", "-c", "2", "-T", "120", "shop"])
    seen = 0
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        r = blue.psql("SELECT coalesce(max(pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(),"
                      " restart_lsn)), -1) FROM pg_catalog.pg_replication_slots"
                      " WHERE slot_name = 'godwit_shop'", db="shop")
        n = int(float(r))
        if n < 0:
            break  # the slot is gone
        seen = max(seen, n)
        time.sleep(0.1)
    bench.stop()
    print("   slot retained at most %.1f MiB (limit %d MiB) before godwit dropped it" %
          (seen / 1048576.0, limit >> 20))
    check(n < 0, "the slot was dropped")
    check(seen < limit, "before it passed the limit: %d >= %d" % (seen, limit))
    st = wait_for("aborted", lambda: in_state(coord, "aborted"), 60)
    check(st["stopped_because"] and "slot_wal_limit" in st["stopped_because"],
          "and says why: %r" % st["stopped_because"])
    check(blue.psql("SELECT count(*) FROM pg_catalog.pg_publication", db="shop") == "0",
          "no publication left on blue")
    check(green.psql("SELECT count(*) FROM pg_catalog.pg_subscription", db="shop") == "0",
          "no subscription left on green")


def test_pause_and_resume(rig):
    blue, green, coord, plan = setup(rig)
    check(coord.ctl("migrate", "start", plan).returncode == 0, "started")
    r = coord.ctl("migrate", "pause", "shop", check_rc=False)
    check(r.returncode == 1 and b"pause applies once the subscription exists" in r.stderr,
          "pause before the subscription exists is refused: %r" % r.stderr)
    wait_for("streaming", lambda: in_state(coord, "streaming"), 120)
    check(coord.ctl("migrate", "pause", "shop").returncode == 0, "pause accepted")
    wait_for("paused", lambda: in_state(coord, "paused"), 30)
    check(green.psql("SELECT subenabled FROM pg_catalog.pg_subscription", db="shop") == "f",
          "subscription disabled on green")
    blue.psql("INSERT INTO public.audit VALUES ('paused', 'while paused')", db="shop")
    time.sleep(2)
    q = "SELECT count(*) FROM public.audit WHERE who = 'paused'"
    check(green.psql(q, db="shop") == "0", "nothing applied while paused")
    check(coord.ctl("migrate", "resume", "shop").returncode == 0, "resume accepted")
    wait_for("streaming again", lambda: in_state(coord, "streaming"), 60)
    wait_for("the row written while paused", lambda: green.psql(q, db="shop") == "1", 30)
    r = coord.ctl("migrate", "resume", "shop", check_rc=False)
    check(r.returncode == 1 and b"not paused" in r.stderr, "resume when not paused says so")


def test_table_subset_in_another_schema(rig):
    blue, green, coord, plan = setup(rig, "    tables: [sales.orders, sales.customers]\n")
    blue.psql("CREATE SCHEMA sales; CREATE TYPE sales.status AS ENUM ('new', 'paid');"
              "CREATE TABLE sales.customers (id bigserial PRIMARY KEY, name text);"
              "CREATE TABLE sales.orders (id bigserial PRIMARY KEY, st sales.status,"
              " customer_id bigint REFERENCES sales.customers (id));"
              "CREATE TABLE sales.unrelated (id int PRIMARY KEY);"
              "INSERT INTO sales.customers (name) SELECT 'c' || g FROM generate_series(1, 100) g;"
              "INSERT INTO sales.orders (st, customer_id) SELECT 'paid', 1 + g % 100"
              " FROM generate_series(1, 1000) g", db="shop")
    check(coord.ctl("migrate", "start", plan).returncode == 0, "started")
    st = wait_for("streaming", lambda: in_state(coord, "streaming"), 120)
    check(sorted(t["table"] for t in st["tables"]) == ["sales.customers", "sales.orders"],
          "only the plan's tables: %r" % st["tables"])
    blue.psql("INSERT INTO sales.orders (st, customer_id) VALUES ('new', 7)", db="shop")
    wait_for("caught up", lambda: compare(blue, green, ["sales.orders", "sales.customers"]) is None,
             30, interval=0.5)
    q = ("SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_catalog.pg_class c"
         " WHERE c.relkind IN ('r', 'p') AND c.relnamespace NOT IN"
         " ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)")
    check(green.psql(q, db="shop") == "customers,orders", "nothing else on green: %s" %
          green.psql(q, db="shop"))
    check(green.psql("SELECT count(*) FROM pg_catalog.pg_constraint WHERE contype = 'f'",
                     db="shop") == "1", "the foreign key between them")


def copy_held_on_orders(rig, green, coord, plan, seconds):
    """Starts the migration and holds its copy: once the schema is on green,
    an EXCLUSIVE lock on green's orders makes that table's COPY wait (it
    wants ROW EXCLUSIVE) while the other tables are copied. The locking
    session is there before the migration starts and takes the lock the
    moment the schema's transaction makes orders visible (waiting for the
    coordinator to report the schema applied, then starting psql, lost the
    race to a copy of 1.4 s on a fast run). It polls pg_class, not
    to_regclass: each statement of the loop takes a new snapshot, while a
    name lookup keeps its catalog snapshot until a lock is taken."""
    rig.spawn("lock", [harness.os.path.join(harness.PG_BIN, "psql"), "-X", "-h", "127.0.0.1",
                       "-p", str(green.port), "-U", "postgres", "-d", "shop",
                       "-c", "DO $$ BEGIN WHILE NOT EXISTS (SELECT FROM pg_catalog.pg_class c"
                             " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
                             " WHERE n.nspname = 'public' AND c.relname = 'orders')"
                             " LOOP PERFORM pg_catalog.pg_sleep(0.001); END LOOP; END $$",
                       "-c", "SET application_name = 'test_lock'",
                       "-c", "BEGIN; LOCK TABLE public.orders IN EXCLUSIVE MODE;"
                             " SELECT pg_catalog.pg_sleep(%d); COMMIT;" % seconds])
    wait_for("the locking session waiting", lambda: green.psql(
        "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE query LIKE 'DO $$%'"
        " AND backend_type = 'client backend'", db="shop") == "1", 20, interval=0.05)
    check(coord.ctl("migrate", "start", plan).returncode == 0, "started")
    return wait_for("copying, orders held", lambda: (lambda s: s if s and s["state"] == "copy" and any(
        t["table"] == "public.orders" and t["state"] == "copying" for t in s["tables"]) else None)(
        mstatus(coord)), 60, interval=0.2)


def test_writes_during_copy_arrive_once(rig):
    """The seam: rows written on blue while the copy runs (after the slot's
    snapshot) arrive on green exactly once, through the subscription."""
    blue, green, coord, plan = setup(rig)
    bench = blue.pgbench(["-n", "-c", "2", "-R", "200", "-T", "600", "shop"])
    before = int(blue.psql("SELECT count(*) FROM public.pgbench_history", db="shop"))
    copy_held_on_orders(rig, green, coord, plan, 60)
    # Per-table progress while copying: the big table, copied beside the
    # held one, is done, with rows (it may still be copying when orders is
    # first seen held).
    st = wait_for("pgbench_accounts copied while orders is held", lambda: (lambda s: s if s and any(
        t["table"] == "public.pgbench_accounts" and t["state"] == "copied" for t in s["tables"])
        else None)(mstatus(coord)), 40, interval=0.2)
    check(any(t["table"] == "public.orders" and t["state"] == "copying" for t in st["tables"]),
          "orders still held: %r" % st["tables"])
    done = {t["table"]: t for t in st["tables"] if t["state"] == "copied"}
    check("public.pgbench_accounts" in done and done["public.pgbench_accounts"]["rows_copied"] == 200000
          and done["public.pgbench_accounts"]["bytes_copied"] > 0,
          "progress of the copied tables: %r" % st["tables"])
    # The whole copy's progress, rate and ETA (the held table is small: most
    # bytes are in).
    cp = wait_for("copy progress", lambda: (lambda s: s["copy"] if s and s.get("copy") and
                                            s["copy"]["bytes_total"] else None)(mstatus(coord)), 10)
    check(cp["bytes_total"] >= sum(t["bytes_total"] for t in st["tables"]) > 0 and
          0.5 < cp["bytes_done"] / cp["bytes_total"] < 1, "copy progress: %r" % cp)
    out = coord.ctl("migrate", "status", "shop").stdout.decode()
    check("copy: " in out and "ETA" in out and "/s" in out, out)
    # Writes and a row inserted on blue while the copy is held.
    time.sleep(3)
    blue.psql("INSERT INTO public.audit VALUES ('seam', 'during the copy')", db="shop")
    time.sleep(1)
    mid = int(blue.psql("SELECT count(*) FROM public.pgbench_history", db="shop"))
    check(mid > before + 100, "pgbench wrote during the copy: %d -> %d" % (before, mid))
    release_lock(green)
    wait_for("streaming", lambda: in_state(coord, "streaming"), 120)
    bench.stop()
    wait_for("caught up", lambda: compare(blue, green, TABLES) is None, 60, interval=1)
    check(green.psql("SELECT count(*) FROM public.audit WHERE who = 'seam'", db="shop") == "1",
          "the row written during the copy arrived once")


def test_abort_during_copy_stops_it(rig):
    blue, green, coord, plan = setup(rig)
    copy_held_on_orders(rig, green, coord, plan, 120)
    r = coord.ctl("migrate", "abort", "shop", check_rc=False)
    check(r.returncode == 0, "abort accepted: %r" % r.stderr)
    wait_for("aborted", lambda: in_state(coord, "aborted"), 60)
    check(blue.psql("SELECT count(*) FROM pg_catalog.pg_replication_slots", db="shop") == "0",
          "no slot left on blue")
    check(blue.psql("SELECT count(*) FROM pg_catalog.pg_publication", db="shop") == "0",
          "no publication left on blue")
    check(green.psql("SELECT count(*) FROM pg_catalog.pg_subscription", db="shop") == "0",
          "no subscription left on green")
    # The copy's sessions on blue are gone (the stopped step closed them).
    wait_for("no copy session left on blue", lambda: blue.psql(
        "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE application_name = 'godwit_shop_copy'",
        db="shop") == "0", 10)
    release_lock(green)


def test_abort_leaves_source_clean(rig):
    blue, green, coord, plan = setup(rig)
    check(coord.ctl("migrate", "start", plan).returncode == 0, "started")
    wait_for("copying", lambda: (lambda s: s and s["state"] in ("copy", "postdata", "streaming"))(
        mstatus(coord)), 120, interval=0.2)
    r = coord.ctl("migrate", "abort", "shop", check_rc=False)
    check(r.returncode == 0, "abort accepted: %r" % r.stderr)
    wait_for("aborted", lambda: in_state(coord, "aborted"), 60)
    check(blue.psql("SELECT count(*) FROM pg_catalog.pg_replication_slots", db="shop") == "0",
          "no slot left on blue")
    check(blue.psql("SELECT count(*) FROM pg_catalog.pg_publication", db="shop") == "0",
          "no publication left on blue")
    check(green.psql("SELECT count(*) FROM pg_catalog.pg_subscription", db="shop") == "0",
          "no subscription left on green")
    r = coord.ctl("migrate", "abort", "shop", check_rc=False)
    check(r.returncode == 1 and b"already aborted" in r.stderr, "second abort says so")


def test_copy_caps_one_at_a_time(rig):
    """copies.per_source 1: of two migrations from one source, the second's
    copy is admitted only once the first's has ended (the audit trail's
    order proves it); both reach streaming with every row."""
    blue, green, coord, plan = setup(rig, coord_options={"copies": "{per_source: 1}"})
    for c in (blue, green):
        c.psql("CREATE DATABASE shop2")
    blue.psql("CREATE TABLE public.t (id int PRIMARY KEY, v text);"
              "INSERT INTO public.t SELECT g, md5(g::text) FROM generate_series(1, 20000) g",
              db="shop2")
    with open(plan, "a") as f:
        f.write("  - name: shop2\n"
                "    source: {agent: blue, database: shop2}\n"
                "    target: {agent: green, database: shop2}\n"
                "    replication: {peer: blue}\n")
    r = coord.ctl("migrate", "start", plan, check_rc=False)
    check(r.returncode == 0, "started: %r" % (r.stdout + r.stderr))
    for name in ("shop", "shop2"):
        wait_for("%s streaming" % name, lambda: (mstatus(coord, name) or {}).get("state") ==
                 "streaming", 180, interval=0.5)
    trail = {}
    for name in ("shop", "shop2"):
        ev = json.loads(coord.ctl("migrate", "audit", name, "--json").stdout)["events"]
        trail[name] = {
            "admitted": [e["at_ms"] for e in ev if e["kind"] == "copy_slot"],
            "copied": [e["at_ms"] for e in ev if e["kind"] == "moved" and e["state"] == "catchup"],
        }
    print("   %r" % trail)
    check(len(trail["shop"]["admitted"]) == 1 and len(trail["shop2"]["admitted"]) == 1,
          "each copy admitted once: %r" % trail)
    first, second = sorted(("shop", "shop2"), key=lambda n: trail[n]["admitted"][0])
    check(trail[second]["admitted"][0] >= trail[first]["copied"][0],
          "%s's copy started after %s's ended: %r" % (second, first, trail))
    st = json.loads(coord.ctl("migrate", "status", "--json").stdout)
    check(st["copies"] == {"per_source": 1, "per_target": 2, "per_link": 0, "running": 0, "queued": 0,
                           "fleet_paused": False},
          "the caps in status: %r" % st["copies"])
    check(green.psql("SELECT count(*) FROM public.t", db="shop2") == "20000", "shop2's rows")
    # The fleet at a glance: both streaming, neither verified: verify next.
    r = coord.ctl("fleet", "status", "--json", check_rc=False)
    fv = json.loads(r.stdout)
    check(r.returncode == 0 and fv["migrations"] == 2 and fv["phases"] == {"streaming": 2} and
          fv["verify"]["not_verified"] == 2 and fv["agents"]["connected"] == 2 and
          fv["next"]["command"] == "godwitctl migrate verify shop",
          "fleet status: rc %d %r" % (r.returncode, fv))
    human = coord.ctl("fleet", "status").stdout.decode()
    print(human)
    check("fleet: 2 migrations; agents: 2 connected of 2" in human and
          "next: godwitctl migrate verify shop" in human, "human fleet status")
    # The fleet's pause: both subscriptions disabled, no copy would start;
    # journaled in each audit trail; the resume brings both back.
    r = coord.ctl("fleet", "pause", "--json", check_rc=False)
    check(r.returncode == 0 and sorted(json.loads(r.stdout)["paused"]) == ["shop", "shop2"],
          "fleet paused: %r" % r.stdout)
    for name in ("shop", "shop2"):
        wait_for("%s paused" % name, lambda: (mstatus(coord, name) or {}).get("state") == "paused",
                 30, interval=0.2)
    fv = json.loads(coord.ctl("fleet", "status", "--json", check_rc=False).stdout)
    check(fv["fleet_paused"] and fv["next"]["command"] == "godwitctl fleet resume",
          "fleet status while paused: %r" % fv["next"])
    out = coord.ctl("fleet", "resume").stdout.decode()
    check("fleet resumed" in out and "migration shop2: resuming" in out, out)
    for name in ("shop", "shop2"):
        wait_for("%s streaming again" % name, lambda: (mstatus(coord, name) or {}).get("state") ==
                 "streaming", 60, interval=0.5)
    ops = [e["detail"]["command"] for e in json.loads(
        coord.ctl("migrate", "audit", "shop2", "--json").stdout)["events"] if e["kind"] == "operator"]
    check(ops[-2:] == ["fleet_pause", "fleet_resume"], "in the audit trail: %r" % ops)


def test_waves_canary_then_go(rig):
    """A plan in waves (a canary, then two at once, go: operator): the
    canary starts alone and is verified by the schedule itself; the next
    wave waits for godwitctl fleet go (across a coordinator restart), then
    starts, streams and is verified; fleet status shows the schedule."""
    blue, green, coord, plan = setup(rig)
    for db in ("shop2", "shop3"):
        for c in (blue, green):
            c.psql("CREATE DATABASE %s" % db)
        blue.psql("CREATE TABLE public.t (id int PRIMARY KEY, v text);"
                  "INSERT INTO public.t SELECT g, md5(g::text) FROM generate_series(1, 5000) g",
                  db=db)
    text = open(plan).read()
    with open(plan, "w") as f:
        f.write("waves: {canary: 1, size: 2, go: operator}\n" + text)
        for db in ("shop2", "shop3"):
            f.write("  - name: %s\n"
                    "    source: {agent: blue, database: %s}\n"
                    "    target: {agent: green, database: %s}\n"
                    "    replication: {peer: blue}\n" % (db, db, db))
    out = coord.ctl("plan", "check", plan).stdout.decode()
    check("shop -> green/shop [wave 1]" in out and "shop3 -> green/shop3 [wave 2]" in out,
          "plan check shows the waves: %s" % out)
    r = coord.ctl("migrate", "start", plan, "--json", check_rc=False)
    check(r.returncode == 0 and json.loads(r.stdout)["waves"] == 2, "started: %r" % r.stdout)

    def waves():
        return json.loads(coord.ctl("migrate", "status", "--json").stdout)["waves"]

    check(mstatus(coord, "shop2")["state"] == "scheduled" and mstatus(coord, "shop2")["wave"] == 2,
          "shop2 waits for wave 2: %r" % mstatus(coord, "shop2"))
    # The canary streams; the schedule verifies it; wave 2 waits for the go.
    w = wait_for("wave 2 ready", lambda: (waves().get("waiting") or "").startswith(
        "wave 2 is ready"), 180, interval=0.5)
    check(mstatus(coord, "shop")["verify"]["state"] == "equal" and
          [x["passed"] for x in waves()["waves"]] == [1, 0], "the canary verified: %r" % w)
    # A restart keeps the schedule where it was.
    coord.proc.kill9()
    coord.start()
    wait_for("wave 2 ready after the restart", lambda: (waves().get("waiting") or "").startswith(
        "wave 2 is ready"), 60, interval=0.5)
    check(mstatus(coord, "shop3")["state"] == "scheduled", "shop3 still scheduled")
    fv = json.loads(coord.ctl("fleet", "status", "--json", check_rc=False).stdout)
    check(fv["next"]["command"] == "godwitctl fleet go" and fv["phases"]["scheduled"] == 2,
          "fleet status proposes the go: %r" % fv)
    print(coord.ctl("fleet", "status", check_rc=False).stdout.decode())
    r = coord.ctl("fleet", "go", check_rc=False)
    check(r.returncode == 0 and "wave 2 may open" in r.stdout.decode(), "go: %r" % r.stdout)
    for name in ("shop2", "shop3"):
        wait_for("%s verified" % name, lambda: ((mstatus(coord, name) or {}).get("verify") or {})
                 .get("state") == "equal", 180, interval=0.5)
    w = waves()
    check(w["next"] is None and [x["passed"] for x in w["waves"]] == [1, 2],
          "every wave passed: %r" % w)
    check(green.psql("SELECT count(*) FROM public.t", db="shop3") == "5000", "shop3's rows")
    r = coord.ctl("fleet", "go", check_rc=False)
    check(r.returncode != 0 and "no wave waits" in r.stderr.decode(), "nothing to go: %r" % r.stderr)
    opened = [e for e in json.loads(coord.ctl("migrate", "audit", "shop2", "--json").stdout)["events"]
              if e["kind"] == "moved" and e["state"] == "roles"]
    check(opened and "wave 2 of schedule 1 opened" in json.dumps(opened[0]),
          "the wave's opening in the audit trail: %r" % opened)


if __name__ == "__main__":
    harness.run([test_waves_canary_then_go, test_copy_caps_one_at_a_time, test_full_run_reaches_streaming, test_kill9_coordinator_during_copy_resumes,
                 test_kill9_coordinator_during_postdata_resumes,
                 test_kill9_target_agent_during_copy_completes,
                 test_kill9_both_agents_during_copy_starts_over, test_slot_limit_protects_the_source,
                 test_pause_and_resume, test_table_subset_in_another_schema,
                 test_writes_during_copy_arrive_once, test_abort_during_copy_stops_it,
                 test_abort_leaves_source_clean])
