"""Verify (phase 6) on real clusters while pgbench keeps writing on blue:
every table reported equal; then rows changed, deleted and inserted on
green behind replication's back are each found, with their table and key,
and a keyless table changed on green is found too."""

import json
import time

import harness
from harness import check, wait_for
from test_migrate import TABLES, in_state, mstatus, setup


def verify(coord, *extra):
    r = coord.ctl("migrate", "verify", "shop", *extra, check_rc=False)
    check(r.returncode in (0, 1), "verify ran: rc %d %r" % (r.returncode, r.stderr))
    return r


def reach_streaming(rig):
    blue, green, coord, plan = setup(rig)
    bench = blue.pgbench(["-n", "-c", "2", "-R", "100", "-T", "600", "shop"])
    check(coord.ctl("migrate", "start", plan).returncode == 0, "started")
    wait_for("streaming", lambda: in_state(coord, "streaming"), 180, interval=0.5)
    return blue, green, coord, bench


def by_table(report):
    return {t["table"]: t for t in report["tables"]}


def test_verify_equal_while_pgbench_writes(rig):
    blue, green, coord, bench = reach_streaming(rig)
    t0 = time.monotonic()
    r = verify(coord, "--json")
    took = time.monotonic() - t0
    rep = json.loads(r.stdout)
    print("   verify: %s in %.1f s; re-checked chunks %s" % (rep["state"], took,
          {t["table"]: t["chunks_rechecked"] for t in rep["tables"] if t["chunks_rechecked"]}))
    check(r.returncode == 0 and rep["state"] == "equal",
          "every table equal: %s %s" % (rep["error"], json.dumps([(t["table"], t["outcome"], t["detail"])
                                                 for t in rep["tables"]])))
    tables = by_table(rep)
    check(len(tables) >= len(TABLES) - 1, "every table verified: %r" % sorted(tables))
    check(tables["public.pgbench_accounts"]["source_rows"] == 200000 and
          tables["public.pgbench_accounts"]["chunks"] == 40, "accounts summed in 40 chunks: %r" %
          tables["public.pgbench_accounts"])
    check(tables["public.lines"]["key_columns"] == ["order_id", "line"], "composite key")
    check(tables["public.audit"]["key_columns"] == [], "keyless table compared whole")
    # pgbench wrote the whole time.
    check(bench.alive(), "pgbench still writing")
    # The report stays in status, also after a coordinator restart.
    coord.proc.kill9()
    coord.start()
    st = wait_for("status after restart", lambda: mstatus(coord), 30)
    check(st["verify"] and st["verify"]["state"] == "equal", "last verify kept: %r" %
          (st["verify"] or {}).get("state"))
    out = coord.ctl("migrate", "status", "shop").stdout.decode()
    check("verify: equal" in out, out)


def test_verify_finds_rows_changed_on_green(rig):
    blue, green, coord, bench = reach_streaming(rig)
    # Behind replication's back, on green only: a changed row, a deleted row,
    # an extra row (composite key) and an extra row in the keyless table.
    green.psql("UPDATE public.customers SET name = 'tampered' WHERE id = 7;"
               "DELETE FROM public.lines WHERE order_id = 5 AND line = 2;"
               "INSERT INTO public.lines VALUES (999999, 1, 1);"
               "INSERT INTO public.audit VALUES ('mallory', 'was here')", db="shop")
    # A table emptied on green: its rows are read row by row against an
    # empty target (a row round with nothing on one side).
    green.psql('DELETE FROM public."x""; DROP TABLE y; --"', db="shop")
    r = verify(coord, "--json")
    rep = json.loads(r.stdout)
    check(r.returncode == 1 and rep["state"] == "different", "reported different: %r" % rep["state"])
    tables = by_table(rep)
    bad = sorted(t for t, v in tables.items() if v["outcome"] != "equal")
    evil = tables.pop('public.x"; DROP TABLE y; --')
    check(evil["outcome"] == "different" and evil["diff_count"] == 10 and
          all(d["kind"] == "missing_on_target" for d in evil["diffs"]),
          "the emptied table: %r" % evil)
    bad = sorted(t for t, v in tables.items() if v["outcome"] != "equal")
    check(bad == ["public.audit", "public.customers", "public.lines"],
          "only the changed tables differ: %r" % [(t, tables[t]["outcome"]) for t in bad])
    c = tables["public.customers"]
    check(c["diff_count"] == 1 and c["diffs"] == [{"key": {"id": "7"}, "kind": "changed"}],
          "the changed customer: %r" % c["diffs"])
    lines = sorted((d["kind"], d["key"]["order_id"], d["key"]["line"])
                   for d in tables["public.lines"]["diffs"])
    check(lines == [("extra_on_target", "999999", "1"), ("missing_on_target", "5", "2")],
          "the deleted and the extra line: %r" % lines)
    check("rows differ" in tables["public.audit"]["detail"] and
          tables["public.audit"]["target_rows"] == tables["public.audit"]["source_rows"] + 1,
          "keyless: %r" % tables["public.audit"])
    out = coord.ctl("migrate", "status", "shop").stdout.decode()
    check("verify: different" in out and "changed: id=7" in out, out)
    # Human output of verify itself.
    r = verify(coord)
    text = r.stdout.decode()
    check(r.returncode == 1 and "missing_on_target: order_id=5 line=2" in text, text)
    check(bench.alive(), "pgbench still writing")


def test_verify_finds_schema_drift(rig):
    """DDL run on blue after the schema phase: each change is a finding with
    the statement to run on green; once green runs them, verify is equal."""
    blue, green, coord, bench = reach_streaming(rig)
    blue.psql("ALTER TABLE public.orders ADD COLUMN note text DEFAULT 'none';"
              "CREATE INDEX customers_name ON public.customers (name);"
              "ALTER TABLE public.customers ADD CONSTRAINT name_nonempty CHECK (name <> '')",
              db="shop")
    r = verify(coord, "--json")
    rep = json.loads(r.stdout)
    check(r.returncode == 1 and rep["state"] == "different", "drift blocks: %r" % rep["state"])
    findings = {f["object"]: f for f in rep["schema"]["findings"]}
    check(sorted(findings) == ["public.customers.customers_name", "public.customers.name_nonempty",
                               "public.orders.note"], "the three changes: %r" % sorted(findings))
    check(findings["public.orders.note"]["statement"] ==
          "ALTER TABLE public.orders ADD COLUMN note text DEFAULT 'none'::text;",
          findings["public.orders.note"]["statement"])
    tables = by_table(rep)
    check(tables["public.orders"]["outcome"] == "skipped", "orders' rows not compared: %r" %
          tables["public.orders"])
    check(tables["public.customers"]["outcome"] == "equal", "customers' rows still compared")
    out = coord.ctl("migrate", "verify", "shop", check_rc=False).stdout.decode()
    check("CREATE INDEX customers_name ON public.customers USING btree (name);" in out, out)
    # Run the statements on green as given: then nothing differs.
    for f in rep["schema"]["findings"]:
        green.psql(f["statement"], db="shop")
    r = verify(coord, "--json")
    rep = json.loads(r.stdout)
    check(r.returncode == 0 and rep["state"] == "equal" and rep["schema"]["findings"] == [],
          "equal after the fix: %r" % rep["schema"]["findings"])
    check(bench.alive(), "pgbench still writing")


if __name__ == "__main__":
    harness.run([test_verify_equal_while_pgbench_writes, test_verify_finds_rows_changed_on_green,
                 test_verify_finds_schema_drift])
