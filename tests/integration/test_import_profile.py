# ctest: one entry per case
"""The import profile on real clusters: green's settings relaxed for the
initial load and put back after it.

- During a copy held on one table, green's server runs with the plan's
  values (a new session's SHOW), status shows the profile applied with
  the values before; a kill -9 of green's agent mid-copy changes nothing
  of that; once streaming, every setting is back, including one an
  operator had set with ALTER SYSTEM before (its line in
  postgresql.auto.conf is the same as before, not removed).
- An abort mid-copy puts everything back, also when the coordinator was
  killed -9 right after the abort and green's agent was away meanwhile.
- A setting changed in postgresql.conf during the load cannot be put back
  to its recorded value: the revert fails naming the file and line, the
  cutover gate refuses with that, and once the file is set right the
  revert passes and the gate lets the cutover go on to its next check.
"""

import json
import os
import time
import urllib.request

import harness
from harness import check, wait_for
from test_migrate import copy_held_on_orders, in_state, mstatus, release_lock, setup

PROFILE = ("    import_profile:\n"
           "      synchronous_commit: off\n"
           "      max_wal_size: 2GB\n"
           "      checkpoint_timeout: 20m\n"
           "      maintenance_work_mem: 256MB\n"
           "      max_parallel_maintenance_workers: 3\n")
NAMES = ["synchronous_commit", "max_wal_size", "checkpoint_timeout", "maintenance_work_mem",
         "max_parallel_maintenance_workers"]
RELAXED = {"synchronous_commit": "off", "max_wal_size": "2GB", "checkpoint_timeout": "20min",
           "maintenance_work_mem": "256MB", "max_parallel_maintenance_workers": "3"}


def settings(cluster):
    """Each setting as a new session shows it."""
    return {n: cluster.psql("SHOW %s" % n) for n in NAMES}


def auto_conf(cluster):
    """postgresql.auto.conf's lines for the profile's settings."""
    with open(os.path.join(cluster.data, "postgresql.auto.conf")) as f:
        return sorted(l.strip() for l in f if l.split("=")[0].strip() in NAMES)


def profile(coord):
    st = mstatus(coord)
    return st.get("import_profile") if st else None


def profile_state(coord, state):
    p = profile(coord)
    return p if p and p["state"] == state else None


def before_load(green):
    """An operator's own ALTER SYSTEM value for one of the settings."""
    green.psql("ALTER SYSTEM SET maintenance_work_mem = '96MB'")
    green.psql("SELECT pg_reload_conf()")
    wait_for("green reloaded", lambda: green.psql("SHOW maintenance_work_mem") == "96MB", 10,
             interval=0.1)
    return settings(green), auto_conf(green)


def test_applied_during_copy_reverted_after(rig):
    blue, green, coord, plan = setup(rig, options=PROFILE)
    before, before_auto = before_load(green)
    check(before["max_wal_size"] != "2GB" and before["synchronous_commit"] == "on",
          "green's defaults differ from the profile: %r" % before)
    copy_held_on_orders(rig, green, coord, plan, 120)
    p = wait_for("profile applied", lambda: profile_state(coord, "applied"), 30, interval=0.2)
    check(settings(green) == RELAXED, "green runs with the profile during the copy: %r"
          % settings(green))
    was = {s["name"]: s.get("was") for s in p["settings"]}
    check(was == before, "status shows the values before: %r, want %r" % (was, before))
    out = coord.ctl("migrate", "status", "shop").stdout.decode()
    check("import profile on green: applied: synchronous_commit off (was on, now off)" in out,
          out)
    # The target's agent killed and back mid-copy: the settings stay as they
    # are (ALTER SYSTEM outlives it), the copy goes on.
    agent = [p for p in rig.procs if p.name == "agent-green"][0]
    agent.kill9()
    time.sleep(0.5)
    check(settings(green) == RELAXED, "still relaxed with green's agent gone")
    agent.start()
    release_lock(green)
    wait_for("streaming", lambda: in_state(coord, "streaming"), 120)
    p = wait_for("profile reverted", lambda: profile_state(coord, "reverted"), 30, interval=0.2)
    check(settings(green) == before, "green back to its settings: %r, want %r"
          % (settings(green), before))
    check(auto_conf(green) == before_auto, "postgresql.auto.conf as before: %r, want %r"
          % (auto_conf(green), before_auto))
    check(all(s["now"] == s["was"] for s in p["settings"]), "status: now is was: %r" % p)
    # The audit trail holds the record at each stage, in order.
    audit = json.loads(coord.ctl("migrate", "audit", "shop", "--json").stdout)
    stages = [(json.loads(e["detail"]) if isinstance(e["detail"], str) else e["detail"])["stage"]
              for e in audit["events"] if e.get("kind") == "import_profile"]
    check(stages == ["read", "applied", "reverted"], "journaled stages: %r" % stages)

def test_abort_mid_copy_reverts(rig):
    blue, green, coord, plan = setup(rig, options=PROFILE)
    before, before_auto = before_load(green)
    copy_held_on_orders(rig, green, coord, plan, 120)
    wait_for("profile applied", lambda: profile_state(coord, "applied"), 30, interval=0.2)
    # Green's agent away, the operator's abort, the coordinator killed -9:
    # the record in its journal is what the revert puts back once both are
    # back.
    agent = [p for p in rig.procs if p.name == "agent-green"][0]
    agent.kill9()
    r = coord.ctl("migrate", "abort", "shop", check_rc=False)
    check(r.returncode == 0, "abort accepted: %r" % r.stderr)
    time.sleep(1)
    coord.proc.kill9()
    check(settings(green) == RELAXED, "still relaxed while nobody can revert")
    coord.start()
    agent.start()
    release_lock(green)
    wait_for("aborted", lambda: in_state(coord, "aborted"), 90)
    wait_for("profile reverted", lambda: profile_state(coord, "reverted"), 60, interval=0.2)
    check(settings(green) == before, "green back to its settings: %r, want %r"
          % (settings(green), before))
    check(auto_conf(green) == before_auto, "postgresql.auto.conf as before: %r" % auto_conf(green))
    # The name may start again now (into an empty database, as preflight
    # asks after an abort mid-copy); its record is the new one's.
    green.psql("DROP DATABASE shop WITH (FORCE)")
    green.psql("CREATE DATABASE shop")
    r = coord.ctl("migrate", "start", plan, check_rc=False)
    check(r.returncode == 0, "started again: %r %r" % (r.stdout[-2000:], r.stderr[-2000:]))
    wait_for("streaming", lambda: in_state(coord, "streaming"), 120)
    wait_for("reverted again", lambda: profile_state(coord, "reverted"), 30, interval=0.2)
    check(settings(green) == before, "green back again: %r" % settings(green))


def pending_metric(port):
    """godwit_migration_import_profile_pending of shop, from /metrics."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        text = r.read().decode()
    for line in text.splitlines():
        if line.startswith('godwit_migration_import_profile_pending{migration="shop"}'):
            return float(line.split()[-1])
    return None


def test_gate_refuses_until_reverted(rig):
    cutover = ("    cutover:\n      app_roles: [app]\n      proxies: [{agent: px, proxy: pgb}]\n")
    mport = harness.free_port()
    blue, green, coord, plan = setup(rig, options=PROFILE + cutover, extra_agents=["px"],
                                     coord_options={"metrics": "{listen: 127.0.0.1:%d}" % mport})
    before = settings(green)
    copy_held_on_orders(rig, green, coord, plan, 120)
    wait_for("profile applied", lambda: profile_state(coord, "applied"), 30, interval=0.2)
    # Someone sets max_wal_size in postgresql.conf during the load.
    conf = os.path.join(green.data, "postgresql.conf")
    with open(conf) as f:
        original = f.read()
    with open(conf, "a") as f:
        f.write("max_wal_size = 3GB\n")
    line = original.count("\n") + 1
    green.psql("SELECT pg_reload_conf()")
    release_lock(green)
    wait_for("streaming", lambda: in_state(coord, "streaming"), 120)
    p = wait_for("the revert's failure", lambda: (lambda p: p if p and p.get("error") else None)(
        profile(coord)), 30, interval=0.2)
    check("max_wal_size is 3GB (from %s line %d), recorded %s before the import"
          % (conf, line, before["max_wal_size"]) in p["error"], "revert names file and line: %r"
          % p["error"])
    check(p["state"] == "applied", "not reverted: %r" % p)
    check(pending_metric(mport) == 1, "the metric says pending: %r" % pending_metric(mport))
    r = coord.ctl("cutover", "shop", check_rc=False)
    check(r.returncode == 4 and b"import profile is not reverted on green" in r.stderr and
          b"max_wal_size is 3GB" in r.stderr, "gate refuses (exit 4): %r" % r.stderr)
    # The other settings are back already (the revert wrote them all).
    now = settings(green)
    check(all(now[n] == before[n] for n in NAMES if n != "max_wal_size"),
          "the others are back: %r" % now)
    with open(conf, "w") as f:
        f.write(original)
    green.psql("SELECT pg_reload_conf()")
    wait_for("profile reverted", lambda: profile_state(coord, "reverted"), 30, interval=0.2)
    check(settings(green) == before, "green back: %r" % settings(green))
    check(pending_metric(mport) == 0, "the metric says done: %r" % pending_metric(mport))
    r = coord.ctl("cutover", "shop", check_rc=False)
    check(r.returncode == 4 and b"import profile" not in r.stderr and b"verify" in r.stderr,
          "the gate goes on to verify: %r" % r.stderr)


def test_preflight_names_missing_rights(rig):
    """An agent role that may not ALTER SYSTEM the profile's settings is a
    blocking finding of plan check, with the GRANTs that fix it."""
    blue, green, coord, plan = setup(rig, options=PROFILE)
    green.psql("CREATE ROLE godwit_tgt LOGIN CREATEDB CREATEROLE REPLICATION")
    green.psql("GRANT ALTER SYSTEM ON PARAMETER max_wal_size, synchronous_commit TO godwit_tgt")
    rig.agent_as(coord, "green", "godwit_tgt")
    r = coord.ctl("plan", "check", plan, check_rc=False, timeout=120)
    out = r.stdout.decode() + r.stderr.decode()
    check(r.returncode != 0 and "import_profile" in out and
          "may not ALTER SYSTEM checkpoint_timeout, maintenance_work_mem, "
          "max_parallel_maintenance_workers" in out and "cannot read pg_file_settings" in out
          and "GRANT ALTER SYSTEM ON PARAMETER" in out, "the finding: %s" % out[-3000:])


if __name__ == "__main__":
    harness.run([test_applied_during_copy_reverted_after, test_abort_mid_copy_reverts,
                 test_gate_refuses_until_reverted, test_preflight_names_missing_rights])
