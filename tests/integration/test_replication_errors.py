"""Apply errors surface with the server's own message: a row inserted on
green behind replication's back makes the next insert from blue fail with a
duplicate key on green; the target agent finds the error in its server's
log and the coordinator shows it in migrate status (and journals it).
Removing the row lets replication go on, and nothing is lost."""

import harness
from harness import check, wait_for
from test_migrate import in_state, mstatus, setup


def test_apply_error_shows_the_servers_message(rig):
    blue, green, coord, plan = setup(rig)
    bench = blue.pgbench(["-n", "-c", "1", "-R", "50", "-T", "600", "shop"])
    check(coord.ctl("migrate", "start", plan).returncode == 0, "started")
    wait_for("streaming", lambda: in_state(coord, "streaming"), 180, interval=0.5)
    st = mstatus(coord)
    check(st["replication_error"] is None, "no error yet: %r" % st["replication_error"])
    # The next customer id on blue is 2001: take it on green first.
    green.psql("INSERT INTO public.customers (id, name) VALUES (2001, 'squatter')", db="shop")
    blue.psql("INSERT INTO public.customers (name) VALUES ('real')", db="shop")
    st = wait_for("the error in status", lambda: (lambda s: s if s and s["replication_error"]
                                                   else None)(mstatus(coord)), 60, interval=0.5)
    msg = st["replication_error"]["message"]
    print("   %s" % msg)
    check('duplicate key value violates unique constraint "customers_pkey"' in msg and
          "Key (id)=(2001) already exists" in msg and "public.customers" in msg, msg)
    wait_for("error counted", lambda: (lambda s: s if s["apply_error_count"] >= 1 else None)(
        mstatus(coord)), 30)
    out = coord.ctl("migrate", "status", "shop").stdout.decode()
    check("replication error on the target" in out and "customers_pkey" in out, out)
    # Clear the way: the row from blue arrives, and replication goes on.
    green.psql("DELETE FROM public.customers WHERE id = 2001", db="shop")
    wait_for("blue's row on green", lambda: green.psql(
        "SELECT name FROM public.customers WHERE id = 2001", db="shop") == "real", 60)
    bench.stop()
    q = "SELECT count(*) FROM public.pgbench_history"
    wait_for("caught up", lambda: blue.psql(q, db="shop") == green.psql(q, db="shop"), 60)


if __name__ == "__main__":
    harness.run([test_apply_error_shows_the_servers_message])
