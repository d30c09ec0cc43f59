# ctest: one entry per case
"""Faults during the cutover that a kill -9 of the coordinator does not
cover (test_cutover.py has those), with PgBouncer in front of blue and
pgbench writing through it as the application's role:

- a coordinator stopped (SIGSTOP: a VM freeze, a long pause) after the
  freeze and past its leases, replaced by a standby coordinator, then
  continued: the agents refuse it (epoch) and it exits 4 having switched
  nothing;
- the source agent killed while blue is fenced, before it answered the
  FREEZE: the cutover aborts and its UNFREEZE is retried until the agent,
  restarted, lifts the fence; and the same with the agent gone for longer
  than the proxies' lease.

The failpoints are described in docs/testing.md."""

import json
import os
import re
import shutil
import signal
import time

import harness
from harness import Coordinator, check, exe, wait_for
from test_cutover import (agents_connected, bench_clean, can_login, gates_open, history, on_port,
                          ready)
from test_migrate import mstatus

FENCE_FILE = "freeze-%s.json" % b"shop".hex()  # the source agent's fence file for "shop"


def proc_state(proc):
    """The process's state letter in /proc (T: stopped), None once gone."""
    try:
        with open("/proc/%d/stat" % proc.proc.pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def cutover_in_background(rig, coord, name="godwitctl-cutover"):
    """godwitctl cutover --json as a process of the rig: it follows the
    cutover until it ends, or until its coordinator is gone."""
    return rig.spawn(name, [exe("godwitctl"), "--socket", coord.socket, "cutover", "shop",
                            "--json"], stdout_pipe=True)


def report_of(ctl, timeout):
    """godwitctl's exit code and the report it printed."""
    out, _ = ctl.proc.communicate(timeout=timeout)
    try:
        rep = json.loads(out or b"{}")
    except ValueError:
        rep = {"unparsed": out.decode("utf-8", "replace")}
    return ctl.proc.returncode, rep


def rows_on_green(blue, green):
    """Every pgbench_history row blue has is on green (waits for the apply)."""
    hb = history(blue)
    wait_for("blue's %d history rows on green" % len(hb),
             lambda: not set(hb) - set(history(green)), 30, interval=0.5)
    return len(hb)


def bench_outcome(bench, seconds):
    """pgbench's failed transactions and aborted clients, once it ended."""
    rc = bench.wait(seconds + 60)
    out = open(bench.log_path).read()
    failed = re.search(r"number of failed transactions: (\d+)", out)
    aborted = len(re.findall(r"client \d+ aborted", out))
    return rc, int(failed.group(1)) if failed else None, aborted


# ---- a stopped coordinator, replaced, continued ----------------------------

class Address:
    """The coordinator's address the agents dial (a relay started by
    setup(wan_ms=0)): moved to another coordinator by starting the relay
    again on the same port towards it, as a virtual IP or a DNS name moves
    to a standby host. In between, the agents' connections are reset and
    they redial."""

    def __init__(self, rig, coord):
        self.rig = rig
        self.port = int(coord.dial.endpoint.rsplit(":", 1)[1])
        self.proc = [p for p in rig.procs if p.name == "relay-coordinator"][-1]
        self.moves = 0

    def move_to(self, coord):
        check(self.proc.stop() == 0, "relay stopped cleanly")
        self.moves += 1
        relay = harness.Relay(self.rig, coord.port, port=self.port,
                              name="relay-coordinator-%d" % self.moves)
        self.proc = relay.proc


def copy_journal(src, dst):
    """The journal as a standby host would have it (a replicated disk): the
    database and its write-ahead log. The -shm index is left behind on
    purpose: SQLite rebuilds it from the log, which is what a copy of a
    journal whose coordinator is stopped mid-run needs (the lock is a
    separate file the copy does not carry)."""
    for suffix in ("", "-wal"):
        if os.path.exists(src + suffix):
            shutil.copy(src + suffix, dst + suffix)


def test_stopped_coordinator_is_refused_after_takeover(rig):
    """The coordinator is stopped (SIGSTOP) right after the freeze, with a
    lease of 4 s. Left alone, blue's fence lease (2 s) and the proxy's pause
    lease (4 s) run out: blue writable, traffic on blue. A standby
    coordinator starts on a copy of the journal (the stopped one still holds
    the lock on the original), the coordinator's address moves to it, every
    agent adopts its higher epoch, and it rolls the interrupted cutover back
    (each step idempotent: nothing left to undo). The stopped coordinator is
    continued while the address is still the standby's: it cannot reach any
    agent, so it can do nothing, and it queues its rollback's first command.
    Then the address flaps back to it (the old host announcing its virtual
    IP again): the agents reach it, and the first hello carries the
    standby's epoch claim, signed with the coordinators' signing key: it
    exits 4 having switched nothing (a command of it that reached an agent
    first would be refused for its stale epoch, the refusal carrying the
    same proof).
    The address goes back to the standby, which kept the migration
    streaming.

    What this proves: a continued coordinator that reaches agents which
    have seen a newer epoch is refused on its first command and stops.
    What it does not: the agents dial one address, so the two coordinators
    never reach an agent at the same time; an isolated stale coordinator
    (the first phase after the SIGCONT) is harmless only because it reaches
    nobody, and it keeps running until something reaches it."""
    seconds = 35
    blue, green, coord, bouncer, bench = ready(rig, bench_seconds=seconds, lease="4s", wan_ms=0)
    agents = ("blue", "green", "px")
    address = Address(rig, coord)
    coord.proc.stop()
    coord.start(failpoint="cutover-stop-after-freeze")
    epoch_a = coord.status()["coordinator"]["epoch"]
    gates_open(coord, agents)
    ctl = cutover_in_background(rig, coord)
    wait_for("coordinator stopped after the freeze", lambda: proc_state(coord.proc) == "T", 20,
             interval=0.05)
    t0 = time.monotonic()
    check(not can_login(blue), "blue fenced while the coordinator is stopped")

    # Its leases run out: blue writable again, traffic resumed on blue.
    wait_for("blue's fence lifted by its lease", lambda: can_login(blue), 15, interval=0.1)
    t_fence = time.monotonic() - t0
    port = on_port(bouncer)  # waits in PgBouncer while still paused
    t_resumed = time.monotonic() - t0
    check(port == blue.port, "traffic on blue")
    wait_for("the proxy's lease ran out", lambda: "lease ran out while paused" in
             rig_log(rig, "agent-px"), 10)
    print("   stopped coordinator: fence lifted after %.1f s, traffic through PgBouncer after "
          "%.1f s (lease 4 s)" % (t_fence, t_resumed))

    # A standby coordinator takes over, on a copy of the journal.
    journal = rig.path("standby-journal.db")
    copy_journal(coord.journal, journal)
    standby = Coordinator(rig, ["blue", "green", "px", "px2"], journal=journal,
                          dirname="standby").start()
    epoch_b = standby.status()["coordinator"]["epoch"]
    check(epoch_b == epoch_a + 1, "standby runs epoch %d after %d" % (epoch_b, epoch_a))
    address.move_to(standby)
    wait_for("agents on the standby, epoch %d adopted" % epoch_b,
             lambda: agents_connected(standby, agents, epoch_b), 20)
    st = wait_for("interrupted cutover rolled back", lambda: (lambda s: s if s and s["cutover"]
                  and s["cutover"]["state"] == "aborted" else None)(mstatus(standby)), 30,
                  interval=0.2)
    check(st["state"] == "streaming" and st["cutover"].get("recovered_from") == "started",
          "standby: streaming, recovered from started: %r %r" % (
              st["state"], st["cutover"].get("recovered_from")))
    steps = [(t["step"], t["ok"]) for t in st["cutover"]["timeline"]]
    check(("switch back", True) in steps and ("unfreeze", True) in steps and
          ("resume on old side", True) in steps, "the rollback's steps: %r" % steps)
    check(on_port(bouncer) == blue.port and can_login(blue), "on blue, writable")

    # The stopped coordinator continues, cut off: it can reach nobody.
    coord.proc.signal(signal.SIGCONT)
    wait_for("continued", lambda: "failpoint cutover-stop-after-freeze: continued" in
             coord.proc.log(), 10)
    time.sleep(1.5)
    check(coord.proc.alive(), "continued coordinator still running (it reaches no agent)")
    check(on_port(bouncer) == blue.port and can_login(blue), "nothing moved meanwhile")

    # The address flaps back to it: the agents reach it and refuse it.
    t1 = time.monotonic()
    address.move_to(coord)
    rc = coord.proc.wait(20)
    t_refused = time.monotonic() - t1
    log = coord.proc.log()
    check(rc == 4 and "fenced" in log, "continued coordinator exits 4 (fenced): rc %r" % rc)
    refused = []
    for n in agents:
        refused += re.findall(r"command (%d\.\d+) refused: epoch %d is older than %d" % (
            epoch_a, epoch_a, epoch_b), rig_log(rig, "agent-" + n))
    why = re.search(r"agent (\S+): (hello: agent holds a valid claim of epoch %d|command \S+ "
                    r"refused: stale epoch %d, agent holds a valid claim of the newer epoch %d)"
                    % (epoch_b, epoch_a, epoch_b), log)
    check(why, "fenced on an agent's proof of epoch %d" % epoch_b)
    print("   continued coordinator fenced %.1f s after the agents could reach it, by agent %s: "
          "%s; %d refusals logged by the agents" % (t_refused, why.group(1), why.group(2),
                                                    len(refused)))
    ctl_rc, rep = report_of(ctl, 10)
    check(ctl_rc != 0 and rep.get("state") != "done", "its godwitctl did not see a cutover done: "
          "rc %d %r" % (ctl_rc, rep.get("state")))
    check(on_port(bouncer) == blue.port and can_login(blue), "PgBouncer on blue, blue writable")
    with open(bouncer.include) as f:
        check("port=%d " % blue.port in f.read(), "PgBouncer's include file names blue")

    # The address back to the standby; the migration goes on.
    address.move_to(standby)
    wait_for("agents back on the standby", lambda: agents_connected(standby, agents, epoch_b), 20)
    st = mstatus(standby)
    check(st["state"] == "streaming" and st["cutover"]["state"] == "aborted",
          "still streaming: %r" % st["state"])
    took = time.monotonic() - bench.started
    print("   checks done %.1f s into pgbench's %d s" % (took, seconds))
    check(took < seconds - 3, "while pgbench ran")
    bench_clean(bench, seconds)
    n = rows_on_green(blue, green)
    print("   pgbench: zero failed transactions; %d history rows of blue all on green" % n)


def rig_log(rig, name):
    """The log of the rig's processes named name (all runs, appended)."""
    procs = [p for p in rig.procs if p.name == name]
    return procs[-1].log() if procs else ""


# ---- the source agent crashes while blue is fenced --------------------------

def restart_agent(rig, name, failpoint=None):
    """Stops agent name and starts it again with the same config, with
    GODWIT_FAILPOINT=failpoint or without (as systemd would restart it)."""
    old = [p for p in rig.procs if p.name == "agent-" + name][-1]
    if old.alive():
        check(old.stop() == 0, "agent %s stopped cleanly" % name)
    env = dict(os.environ, GODWIT_FAILPOINT=failpoint) if failpoint else None
    return rig.spawn(old.name, old.argv, env=env)


def crash_source_agent_in_freeze(rig, lease="15s", seconds=40):
    """ready(), the source agent restarted with the failpoint
    freeze-after-fence, a cutover started in the background; returns once
    the agent killed itself, blue fenced."""
    blue, green, coord, bouncer, bench = ready(rig, bench_seconds=seconds, lease=lease)
    agent = restart_agent(rig, "blue", failpoint="freeze-after-fence")
    gates_open(coord, ("blue", "green", "px"))
    ctl = cutover_in_background(rig, coord)
    wait_for("the source agent killed itself while fencing", lambda: not agent.alive(), 20,
             interval=0.05)
    died = time.monotonic()
    check(agent.proc.returncode == -9, "killed by its failpoint: %r" % agent.proc.returncode)
    fence = os.path.join(rig.path("agent-blue"), "state", FENCE_FILE)
    check(os.path.exists(fence) and not can_login(blue), "blue fenced, fence file left behind")
    return blue, green, coord, bouncer, bench, ctl, died, fence


def failed_unfreezes(coord):
    """How many UNFREEZE attempts of the running cutover failed so far."""
    st = mstatus(coord)
    cu = st and st["cutover"]
    if not cu:
        return 0
    return sum(1 for t in cu["timeline"] if t["step"] == "unfreeze" and not t["ok"])


def check_abort_report(rep):
    """The report of a cutover aborted at the freeze whose unfreeze was
    retried until the source agent came back."""
    tl = rep.get("timeline", [])
    steps = [t["step"] for t in tl]
    check(rep.get("state") == "aborted" and "freeze" in (rep.get("reason") or ""),
          "aborted at the freeze: %r %r" % (rep.get("state"), rep.get("reason")))
    check(steps[:4] == ["check roles", "pause", "freeze", "switch back"] and not tl[2]["ok"] and
          tl[3]["ok"], "freeze failed, then the switch back: %r" % steps)
    unfreezes = [t for t in tl if t["step"] == "unfreeze"]
    check(len(unfreezes) >= 2 and not unfreezes[0]["ok"] and unfreezes[-1]["ok"] and
          all(not t["ok"] for t in unfreezes[:-1]),
          "unfreeze retried until it worked: %r" % [(t["ok"], t.get("detail")) for t in unfreezes])
    check(steps[-2:] == ["resume on old side", "restore apply"] and tl[-2]["ok"],
          "then resumed on blue: %r" % steps)
    return len(unfreezes) - 1


def test_source_agent_crash_while_fenced(rig):
    """The source agent dies by SIGKILL once blue is fenced, before it
    answers the FREEZE. The freeze step runs out of the write pause's budget
    (3 s) and the cutover aborts: the proxy is pointed back at blue (and
    stays paused), and the UNFREEZE is retried while the agent is away. The
    agent is restarted 2 s after it died at the earliest, and only once the
    abort has begun, as systemd would with RestartSec=2 (earlier, the
    re-sent FREEZE would find the fence file and finish the freeze: the
    cutover would go on, a different case). It finds its fence file, and
    the coordinator's next UNFREEZE lifts the fence: blue writable,
    PgBouncer on blue, traffic resumed, the migration streaming, zero
    failed transactions (the pause stays within the 15 s lease)."""
    seconds = 35
    blue, green, coord, bouncer, bench, ctl, died, fence = crash_source_agent_in_freeze(
        rig, seconds=seconds)
    wait_for("the abort's UNFREEZE failing while the agent is away",
             lambda: failed_unfreezes(coord) >= 1, 15, interval=0.1)
    # PREPARE armed the fence; the freeze renamed the armed file into it.
    armed = os.path.join(os.path.dirname(fence),
                         "armed-" + os.path.basename(fence)[len("freeze-"):])
    check(os.path.exists(fence) and not os.path.exists(armed),
          "the freeze made the armed file the fence file")
    # An armed file beside a fence file is stale: the restarted agent
    # removes it (and keeps the fence).
    with open(fence) as f, open(armed, "w") as g:
        g.write(f.read())
    time.sleep(max(0.0, died + 2 - time.monotonic()))
    back = time.monotonic()
    restart_agent(rig, "blue")
    rc, rep = report_of(ctl, 40)
    print("   source agent back %.1f s after it died; cutover %s: %s" % (
        back - died, rep.get("state"), rep.get("reason")))
    check(rc == 5, "godwitctl cutover: exit 5 (aborted, rolled back), got %d" % rc)
    retries = check_abort_report(rep)
    print("   write pause %.1f ms; %d UNFREEZE attempts failed before the agent was back; "
          "timeline %s" % (rep.get("write_pause_ms") or -1, retries,
                           [(t["step"], t["ok"], round(t["ms"], 1)) for t in rep["timeline"]]))
    check(can_login(blue) and not os.path.exists(fence), "blue writable, fence file gone")
    check(not os.path.exists(armed), "the stale armed file removed")
    check(on_port(bouncer) == blue.port, "PgBouncer on blue")
    log = rig_log(rig, "agent-blue")
    check("left frozen by an earlier run" in log and "unfrozen" in log,
          "the restarted agent found its fence and lifted it")
    st = mstatus(coord)
    check(st["state"] == "streaming", "still streaming: %r" % st["state"])
    took = time.monotonic() - bench.started
    print("   checks done %.1f s into pgbench's %d s" % (took, seconds))
    check(took < seconds - 3, "while pgbench ran")
    bench_clean(bench, seconds)
    n = rows_on_green(blue, green)
    print("   pgbench: zero failed transactions; %d history rows of blue all on green" % n)


def test_source_agent_gone_past_the_leases(rig):
    """The same crash, with a lease of 4 s and the source agent away for
    longer: the proxy's pause lease (renewed by the switch back) runs out
    and PgBouncer resumes into a blue that is still fenced, since nothing
    can lift a fence whose agent is dead: the application's logins are
    refused (an outage, no lost write, no split brain). Once the agent is
    back, the coordinator's retried UNFREEZE lifts the fence and traffic
    flows again (after PgBouncer's server_login_retry)."""
    seconds = 35
    blue, green, coord, bouncer, bench, ctl, died, fence = crash_source_agent_in_freeze(
        rig, lease="4s", seconds=seconds)
    wait_for("the proxy's lease ran out", lambda: "lease ran out while paused" in
             rig_log(rig, "agent-px"), 15, interval=0.1)
    t_lease = time.monotonic() - died
    r = wait_for("the application refused through PgBouncer",
                 lambda: (lambda r: r if r.returncode != 0 else None)(
                     bouncer.psql("SELECT 1", check_rc=False)), 10, interval=0.2)
    refusal = r.stderr.decode().strip().splitlines()[-1]
    check(not can_login(blue) and os.path.exists(fence), "blue still fenced")
    wait_for("the cutover retrying its UNFREEZE", lambda: failed_unfreezes(coord) >= 2, 15,
             interval=0.1)
    check(ctl.alive(), "the cutover still runs")
    print("   proxy lease ran out %.1f s after the agent died; application through PgBouncer: %s"
          % (t_lease, refusal))
    back = time.monotonic()
    restart_agent(rig, "blue")
    rc, rep = report_of(ctl, 40)
    check(rc == 5, "godwitctl cutover: exit 5 (aborted, rolled back), got %d" % rc)
    retries = check_abort_report(rep)
    check(can_login(blue) and not os.path.exists(fence), "blue writable, fence file gone")
    wait_for("the application through PgBouncer again",
             lambda: bouncer.psql("SELECT 1", check_rc=False).returncode == 0, 30, interval=0.5)
    t_app = time.monotonic() - back
    check(on_port(bouncer) == blue.port, "PgBouncer on blue")
    st = mstatus(coord)
    check(st["state"] == "streaming", "still streaming: %r" % st["state"])
    print("   agent back %.1f s after it died, %d UNFREEZE attempts failed; the application "
          "through PgBouncer %.1f s after the agent's restart; checks done %.1f s into pgbench's "
          "%d s" % (back - died, retries, t_app, time.monotonic() - bench.started, seconds))
    rc, failed, aborted = bench_outcome(bench, seconds)
    print("   pgbench: rc %s, %s failed transactions, %d clients aborted" % (rc, failed, aborted))
    n = rows_on_green(blue, green)
    print("   %d history rows of blue all on green" % n)


if __name__ == "__main__":
    harness.run([test_stopped_coordinator_is_refused_after_takeover,
                 test_source_agent_crash_while_fenced,
                 test_source_agent_gone_past_the_leases])
