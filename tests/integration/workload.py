"""A hostile workload for verify (and anything else that must hold while the
application writes): a schema whose tables stress every way rows can be
identified and stored, and pgbench scripts that write to all of them at
once, unthrottled.

  hot_counters   one row per client, updated by every transaction of that
                 client (hot rows: a version every few milliseconds)
  uidx_accounts  no primary key; REPLICA IDENTITY USING INDEX on a unique
                 NOT NULL column
  full_items     no key at all; REPLICA IDENTITY FULL; updated, rows deleted
                 and inserted
  events_log     no key, insert-only (REPLICA IDENTITY FULL, as preflight wants for
                 a table without a key; only inserts ever reach it)
  docs           TOASTed values (> 2 kB, stored out of line), the row updated
                 with its TOAST value unchanged and with a new one
  parted         partitioned by list (three partitions), updated and
                 inserted into
  pgbench_*      pgbench's own tables and its TPC-B-like transaction
                 (pgbench_history: REPLICA IDENTITY FULL)

Every table keeps a range of rows the workload never touches (RESERVED), so
a test can change them on the target behind replication's back and expect
exactly those differences.

Reused by tests and by bench/run.py: create() makes the schema and data in a
database, start() runs pgbench against it and returns the rig's Process.
Only the standard library.
"""

import os
import re
import subprocess

import harness

CLIENTS = 8

# What the workload touches, and the rows it leaves alone (for planting).
HOT_ROWS = CLIENTS
UIDX_ROWS, UIDX_TOUCHED = 10000, 9000
DOCS_ROWS, DOCS_TOUCHED = 210, 200
PARTED_ROWS, PARTED_TOUCHED = 31000, 30000
FULL_SKUS, FULL_TOUCHED = 520, 500

TABLES = ["public.hot_counters", "public.uidx_accounts", "public.full_items", "public.events_log",
          "public.docs", "public.parted", "public.pgbench_accounts", "public.pgbench_branches",
          "public.pgbench_tellers", "public.pgbench_history"]

SCHEMA = """
CREATE TABLE public.hot_counters (client int PRIMARY KEY, n bigint NOT NULL DEFAULT 0,
  at timestamptz);
INSERT INTO public.hot_counters (client) SELECT g FROM generate_series(1, %(hot)d) g;

CREATE TABLE public.uidx_accounts (id bigint NOT NULL, code text NOT NULL, balance int NOT NULL);
CREATE UNIQUE INDEX uidx_accounts_id ON public.uidx_accounts (id);
ALTER TABLE public.uidx_accounts REPLICA IDENTITY USING INDEX uidx_accounts_id;
INSERT INTO public.uidx_accounts SELECT g, 'c' || g, 0 FROM generate_series(1, %(uidx)d) g;

CREATE TABLE public.full_items (sku text NOT NULL, qty int NOT NULL, note text);
ALTER TABLE public.full_items REPLICA IDENTITY FULL;
INSERT INTO public.full_items SELECT 's' || g, 0, 'n' FROM generate_series(1, %(skus)d) g;

CREATE TABLE public.events_log (at timestamptz NOT NULL, client int NOT NULL, payload text);
ALTER TABLE public.events_log REPLICA IDENTITY FULL;
INSERT INTO public.events_log SELECT now(), 0, 'seed ' || g FROM generate_series(1, 1000) g;

CREATE TABLE public.docs (id int PRIMARY KEY, version int NOT NULL DEFAULT 0, body text);
ALTER TABLE public.docs ALTER COLUMN body SET STORAGE EXTERNAL;
INSERT INTO public.docs (id, body)
  SELECT g, repeat(md5(g::text), 80) FROM generate_series(1, %(docs)d) g;

CREATE SEQUENCE public.parted_id START %(parted_next)d;
CREATE TABLE public.parted (id bigint NOT NULL DEFAULT nextval('public.parted_id'),
  region int NOT NULL, v int NOT NULL, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE public.parted_0 PARTITION OF public.parted FOR VALUES IN (0);
CREATE TABLE public.parted_1 PARTITION OF public.parted FOR VALUES IN (1);
CREATE TABLE public.parted_2 PARTITION OF public.parted FOR VALUES IN (2);
INSERT INTO public.parted (id, region, v) SELECT g, g %% 3, 0 FROM generate_series(1, %(parted)d) g;
""" % {"hot": HOT_ROWS, "uidx": UIDX_ROWS, "skus": FULL_SKUS, "docs": DOCS_ROWS,
       "parted": PARTED_ROWS, "parted_next": PARTED_ROWS + 1000}

# Every transaction: the client's hot row, then one row of each other kind,
# always in this order (so no two clients wait for each other in a cycle).
SCRIPT_MAIN = """\\set rid random(1, %(uidx)d)
\\set did random(1, %(docs)d)
\\set pid random(1, %(parted)d)
\\set sku random(1, %(skus)d)
\\set aid random(1, 100000 * :scale)
BEGIN;
UPDATE public.hot_counters SET n = n + 1, at = now() WHERE client = :client_id %% %(hot)d + 1;
UPDATE public.uidx_accounts SET balance = balance + 1 WHERE id = :rid;
UPDATE public.docs SET version = version + 1 WHERE id = :did;
UPDATE public.parted SET v = v + 1 WHERE id = :pid AND region = :pid %% 3;
UPDATE public.full_items SET qty = qty + 1 WHERE sku = 's' || :sku;
UPDATE public.pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;
END;
""" % {"uidx": UIDX_TOUCHED, "docs": DOCS_TOUCHED, "parted": PARTED_TOUCHED, "skus": FULL_TOUCHED,
       "hot": HOT_ROWS}

# Now and then: a new TOAST value, an event, a new row in a partition, a
# keyless row deleted and inserted again.
SCRIPT_CHURN = """\\set did random(1, %(docs)d)
\\set region random(0, 2)
\\set sku random(1, %(skus)d)
BEGIN;
UPDATE public.docs SET body = repeat(md5(random()::text), 80) WHERE id = :did;
INSERT INTO public.events_log VALUES (now(), :client_id, 'e' || :did);
INSERT INTO public.parted (region, v) VALUES (:region, 0);
DELETE FROM public.full_items WHERE ctid = (SELECT ctid FROM public.full_items
  WHERE sku = 's' || :sku LIMIT 1);
INSERT INTO public.full_items VALUES ('s' || :sku, 0, 'again');
END;
""" % {"docs": DOCS_TOUCHED, "skus": FULL_TOUCHED}


def create(cluster, db, pg_bin, scale=2, pgbench_init=True):
    """The workload's tables and rows in db on cluster (a harness
    PgCluster), and pgbench's (scale) unless pgbench_init is False (they
    exist already)."""
    cluster.psql(SCHEMA, db=db)
    if pgbench_init:
        subprocess.run([os.path.join(pg_bin, "pgbench"), "-i", "-q", "-s", str(scale), "-h",
                        "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", db], check=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        cluster.psql("ALTER TABLE public.pgbench_history REPLICA IDENTITY FULL", db=db)


def start(rig, cluster, db, clients=CLIENTS, seconds=3600, rate=None, log_name="workload",
          port=None, user="postgres"):
    """pgbench with the workload's scripts (and its TPC-B-like one) on db,
    clients connections, unthrottled unless rate (transactions/s); retries
    deadlocks and serialization failures. Through port as user when given
    (a proxy in front of cluster), else straight to cluster as postgres.
    Returns the rig's Process."""
    main = rig.path("workload-main.sql")
    churn = rig.path("workload-churn.sql")
    with open(main, "w") as f:
        f.write(SCRIPT_MAIN)
    with open(churn, "w") as f:
        f.write(SCRIPT_CHURN)
    args = ["-n", "-c", str(clients), "-j", "2", "-T", str(seconds), "--max-tries", "10",
            "-f", main + "@10", "-f", churn + "@1", "-b", "tpcb-like@2"]
    if rate:
        args += ["-R", str(rate)]
    if port is None:
        return cluster.pgbench(args + [db], log_name=log_name)
    return rig.spawn(log_name, [os.path.join(harness.PG_BIN, "pgbench"), "-h", "127.0.0.1", "-p",
                                str(port), "-U", user] + args + [db])


def script_transactions(out):
    """From pgbench's summary: the transactions committed by each script,
    in the order start() gives them (main, churn, TPC-B-like)."""
    return [int(n) for n in re.findall(r"^ - (\d+) transactions \(", out, re.M)]


def commits(cluster, db):
    """Transactions committed in db so far (pg_stat_database), to measure a
    rate over an interval."""
    return int(cluster.psql("SELECT xact_commit FROM pg_catalog.pg_stat_database"
                            " WHERE datname = '%s'" % db.replace("'", "''")))
