# ctest: one entry per case
"""A cutover through a proxy its agent cannot drive, with two PgBouncers
(one per datacenter, each with its own proxy agent) in front of blue and
pgbench writing through the first as the application's role:

- the second PgBouncer runs without its TCP listener, so its agent cannot
  reach the admin console: the cutover is refused at the gate (exit 4),
  naming the proxy and what its agent reported; nothing is paused or
  fenced and the writes go on;
- the second proxy's agent dies (kill -9) once traffic is paused (the
  coordinator is stopped at cutover-stop-after-pause meanwhile, past
  max_write_pause): the cutover aborts, resumes the first proxy on blue,
  gives up on the second after cutover.abort_timeout, and godwitctl
  returns within max_write_pause plus that time with exit 6; blue is
  writable and status names the proxy left unknown;
- the coordinator killed while aborting a cutover whose first proxy had
  switched (the second's switch failed): restarted, it reads from the
  journal which proxies were sent the switch and rolls back;
- with one proxy (switch and resume in one command), its agent dies after
  resuming on green and before answering: the cutover never switches
  back, gives up after abort_timeout and reports the proxy unknown.

The failpoints are described in docs/testing.md."""

import json
import os
import shutil
import signal
import time

import harness
from harness import check, wait_for
from test_cutover import bench_clean, can_login, history, on_port, ready
from test_cutover_faults import (cutover_in_background, gates_open, proc_state, report_of,
                                 restart_agent, rig_log)
from test_migrate import mstatus


def proxy_state(coord, agent):
    """The first proxy of agent as its last report says, or None."""
    px = coord.agent(agent).get("proxies") or []
    return px[0] if px else None


def without_tcp_listener(rig, bouncer):
    """Restarts bouncer with no TCP listener (only its Unix socket): it runs,
    but its agent's admin connection (host and port) is refused."""
    old = bouncer.proc
    old.stop()
    with open(bouncer.ini) as f:
        ini = f.read()
    ini = ini.replace("listen_addr = 127.0.0.1\n", "listen_addr =\n")
    ini = ini.replace("unix_socket_dir =\n", "unix_socket_dir = %s\n" % bouncer.dir)
    with open(bouncer.ini, "w") as f:
        f.write(ini)
    bouncer.proc = rig.spawn(old.name, old.argv)
    sock = os.path.join(bouncer.dir, ".s.PGSQL.%d" % bouncer.port)
    wait_for("pgbouncer's Unix socket", lambda: os.path.exists(sock), 15, interval=0.2)


def test_unreachable_proxy_refused_at_gate(rig):
    """PgBouncer up without its TCP listener: its agent reports it
    unreachable, and the cutover is refused before anything pauses."""
    seconds = 30
    blue, green, coord, bouncer, bench = ready(rig, bench_seconds=seconds, two_proxies=True)
    without_tcp_listener(rig, bouncer.second)
    st = wait_for("px2 reports its proxy unreachable",
                  lambda: (lambda p: p if p and not p.get("reachable") and p.get("error")
                           else None)(proxy_state(coord, "px2")), 15, interval=0.3)
    print("   px2 reports: %s" % st["error"])
    rows = len(history(blue))
    t0 = time.monotonic()
    r = coord.ctl("cutover", "shop", "--json", check_rc=False)
    took = time.monotonic() - t0
    err = r.stderr.decode()
    print("   godwitctl cutover: exit %d in %.2f s: %s" % (r.returncode, took, err.strip()))
    check(r.returncode == 4, "refused at the gate: exit 4, got %d" % r.returncode)
    check("refused" in err and "pgb" in err and "px2" in err and "unreachable" in err and
          "cannot connect" in err, "the reason names the proxy and what was reported: %s" % err)
    st = mstatus(coord)
    check(st["state"] == "streaming" and not st.get("cutover"), "no cutover started: %r" % (
        st.get("cutover"),))
    check(can_login(blue), "blue not fenced")
    check(on_port(bouncer) == blue.port, "the first PgBouncer on blue")
    px = proxy_state(coord, "px")
    check(px and not px["paused"] and px["backend"] == "blue", "the first proxy not paused: %r" %
          px)
    check("proxy pgb: pause" not in rig_log(rig, "agent-px"),
          "no PAUSE reached the first proxy's agent")
    wait_for("writes go on", lambda: len(history(blue)) > rows + 50, 20, interval=0.5)
    check(time.monotonic() - bench.started < seconds - 3, "while pgbench ran")
    bench_clean(bench, seconds)


def test_proxy_agent_dies_after_pause(rig):
    """The second proxy's agent is killed once both proxies are paused (the
    coordinator stopped there by its failpoint, then continued past
    max_write_pause): the abort resumes the first proxy on blue, never sends
    a switch back to a proxy that was not switched, gives up on the dead
    one after cutover.abort_timeout (4 s) and reports it unknown."""
    seconds = 40
    max_pause, abort_timeout = 3.0, 4.0
    blue, green, coord, bouncer, bench = ready(
        rig, bench_seconds=seconds, two_proxies=True, max_write_pause="3s",
        cutover_extra="      abort_timeout: 4s\n")
    coord.proc.stop()
    coord.start(failpoint="cutover-stop-after-pause")
    gates_open(coord, ("blue", "green", "px", "px2"))
    for n in ("px", "px2"):
        wait_for("%s reports its proxy reachable" % n,
                 lambda: (proxy_state(coord, n) or {}).get("reachable"), 15, interval=0.3)
    t0 = time.monotonic()
    ctl = cutover_in_background(rig, coord)
    wait_for("the coordinator stopped after the pause", lambda: proc_state(coord.proc) == "T",
             20, interval=0.05)
    stopped = time.monotonic()
    agent = [p for p in rig.procs if p.name == "agent-px2"][-1]
    agent.kill9()
    # Continued once the write pause's budget is spent: the cutover aborts.
    time.sleep(max(0.0, stopped + max_pause + 0.5 - time.monotonic()))
    cont = time.monotonic()
    os.kill(coord.proc.proc.pid, signal.SIGCONT)
    rc, rep = report_of(ctl, 60)
    ended = time.monotonic()
    print("   godwitctl cutover: exit %d, %.1f s after it began, %.1f s after the coordinator "
          "continued; %s" % (rc, ended - t0, ended - cont, rep.get("reason")))
    print("   timeline %s" % [(t["step"], t["ok"], round(t["ms"], 1)) for t in
                              rep.get("timeline", [])])
    check(rc == 6 and rep.get("state") == "aborted" and rep.get("outcome") == "unknown",
          "aborted with a proxy left unknown: exit 6, got %d: %s" % (rc, json.dumps(rep)[-3000:]))
    # The bound: the coordinator was stopped past max_write_pause, so from
    # the start the abort's time and a few seconds' slack at most remain.
    check(ended - t0 < max_pause + 0.5 + abort_timeout + 5,
          "returned within max_write_pause and abort_timeout (%.1f s)" % (ended - t0))
    left = {p["agent"]: p for p in rep.get("proxies", [])}
    check(left.get("px", {}).get("left") == "blue" and not left["px"]["switch_sent"],
          "the first proxy left on blue, never switched: %r" % left.get("px"))
    check(left.get("px2", {}).get("left") == "unknown" and "resume" in left["px2"].get("why", ""),
          "the second proxy left unknown, why given: %r" % left.get("px2"))
    steps = [(t["step"], t["ok"]) for t in rep["timeline"]]
    back = [t for t in rep["timeline"] if t["step"] == "switch back"]
    check(len(back) == 1 and back[0]["ok"] and
          all("skipped (never switched)" in a["what"] for a in back[0].get("agents", [])),
          "no switch back sent to a proxy never switched: %r" % back)
    check(("resume on old side", False) in steps, "the resume failed towards the dead agent: %r"
          % steps)
    check(can_login(blue), "blue writable")
    check(on_port(bouncer) == blue.port, "the first PgBouncer on blue, traffic flowing")
    st = mstatus(coord)
    check(st["state"] == "streaming", "still streaming: %r" % st["state"])
    unknown = [p for p in st["cutover"]["proxies"] if p["left"] == "unknown"]
    check([p["agent"] for p in unknown] == ["px2"], "status names px2 unknown: %r" % unknown)
    out = coord.ctl("migrate", "status", "shop").stdout.decode()
    check("proxy pgb of agent px2 left UNKNOWN" in out, "status text names it: %s" % out)
    check(time.monotonic() - bench.started < seconds - 3, "while pgbench ran")
    bench_clean(bench, seconds)


def test_coordinator_killed_while_aborting_rolls_back(rig):
    """The second proxy's switch fails (its include file cannot be
    replaced), so the cutover aborts after the first proxy switched; the
    coordinator is killed once the switch back is done, before blue's fence
    is lifted. The journal ("aborting") names both proxies as sent the
    switch, and the restarted coordinator, back well within the lease,
    rolls back: both proxies sent the switch back, blue writable, traffic
    on blue."""
    seconds = 40
    blue, green, coord, bouncer, bench = ready(rig, bench_seconds=seconds, two_proxies=True)
    second = bouncer.second
    os.rename(second.include, second.include + ".real")
    os.makedirs(second.include)
    with open(os.path.join(second.include, "keep"), "w") as f:
        f.write("x")
    coord.proc.stop()
    coord.start(failpoint="cutover-after-switch back")
    gates_open(coord, ("blue", "green", "px", "px2"))
    for n in ("px", "px2"):
        wait_for("%s reports its proxy reachable" % n,
                 lambda: (proxy_state(coord, n) or {}).get("reachable"), 15, interval=0.3)
    r = coord.ctl("cutover", "shop", check_rc=False)
    check(r.returncode == 3 and coord.proc.wait(10) == -9,
          "the coordinator killed itself after the switch back: rc %d" % r.returncode)
    check(not can_login(blue), "blue still fenced when it died")
    t0 = time.monotonic()
    coord.start()
    st = wait_for("cutover resolved", lambda: (lambda s: s if s and s["cutover"] and
                  s["cutover"]["state"] in ("done", "aborted") else None)(mstatus(coord)), 30,
                  interval=0.2)
    cu = st["cutover"]
    print("   resolved to %s (%s) in %.1f s after the restart; timeline %s" % (
        cu["state"], cu.get("outcome"), time.monotonic() - t0,
        [(t["step"], t["ok"]) for t in cu["timeline"]]))
    check(cu["state"] == "aborted" and cu.get("recovered_from") == "aborting" and
          cu.get("outcome") == "rolled_back", "rolled back from aborting: %r" % (
              {k: cu.get(k) for k in ("state", "recovered_from", "outcome", "reason")},))
    # The first try may find the agents not yet reconnected; the one that
    # worked sent both the switch back.
    back = [t for t in cu["timeline"] if t["step"] == "switch back" and t["ok"]]
    check(len(back) == 1 and sorted(a["agent"] for a in back[0]["agents"]) == ["px", "px2"] and
          all("proxy pgb: blue" in a["what"] for a in back[0]["agents"]),
          "both proxies, journaled as sent the switch, were sent the switch back: %r" % back)
    check(can_login(blue), "blue writable")
    check(on_port(bouncer) == blue.port, "the first PgBouncer on blue")
    shutil.rmtree(second.include)
    os.rename(second.include + ".real", second.include)
    check(on_port(second) == blue.port, "the second never left blue")
    check(st["state"] == "streaming", "still streaming: %r" % st["state"])
    check(time.monotonic() - bench.started < seconds - 3, "while pgbench ran")
    bench_clean(bench, seconds)


def test_proxy_agent_dies_after_switch_and_resume(rig):
    """One proxy: switch and resume go in one command. Its agent switches
    PgBouncer to green, resumes it and dies before answering (its failpoint
    proxy-after-switch-resume): traffic may already flow to green, so the
    coordinator never switches back; it tries the switch and resume again
    (towards a dead agent) until cutover.abort_timeout, then reports the
    proxy unknown (exit 6), blue fenced for good, green taking the writes.
    Restarted, the agent reads PgBouncer back on green, not paused."""
    seconds = 40
    max_pause, abort_timeout = 3.0, 4.0
    blue, green, coord, bouncer, bench = ready(
        rig, bench_seconds=seconds, max_write_pause="3s",
        cutover_extra="      abort_timeout: 4s\n")
    reports = coord.agent("px").get("reports", 0)
    agent = restart_agent(rig, "px", failpoint="proxy-after-switch-resume")
    gates_open(coord, ("blue", "green", "px"))
    wait_for("the restarted px reports its proxy reachable",
             lambda: coord.agent("px").get("reports", 0) > reports and
             (proxy_state(coord, "px") or {}).get("reachable"), 15, interval=0.3)
    t0 = time.monotonic()
    ctl = cutover_in_background(rig, coord)
    wait_for("the proxy agent killed itself after switching and resuming",
             lambda: not agent.alive(), 20, interval=0.05)
    check(agent.proc.returncode == -9, "killed by its failpoint: %r" % agent.proc.returncode)
    rc, rep = report_of(ctl, 60)
    ended = time.monotonic()
    print("   godwitctl cutover: exit %d, %.1f s after it began; %s" % (
        rc, ended - t0, rep.get("reason")))
    steps = [(t["step"], t["ok"]) for t in rep.get("timeline", [])]
    print("   timeline %s" % steps)
    check(rc == 6 and rep.get("state") == "done" and rep.get("outcome") == "unknown",
          "done with the proxy left unknown: exit 6, got %d: %s" % (rc, json.dumps(rep)[-3000:]))
    check(ended - t0 < max_pause + abort_timeout + 8,
          "returned within max_write_pause and abort_timeout (%.1f s)" % (ended - t0))
    check(("switch and resume", False) in steps and
          not any(s in ("switch back", "unfreeze", "resume on old side") for s, _ in steps),
          "tried forward only, never back: %r" % steps)
    px = (rep.get("proxies") or [{}])[0]
    check(px.get("left") == "unknown" and "may flow to green" in px.get("why", ""),
          "the proxy left unknown, why given: %r" % px)
    check("no proxy was sent" not in rep.get("reason", ""),
          "the reason does not claim the switch was never sent: %r" % rep.get("reason"))
    check(not can_login(blue), "blue fenced for good")
    check(on_port(bouncer) == green.port, "PgBouncer on green, traffic flowing")
    n = len(history(green))
    wait_for("the application writes on green", lambda: len(history(green)) > n + 20, 15,
             interval=0.3)
    reports = coord.agent("px").get("reports", 0)
    restart_agent(rig, "px")
    wait_for("px reports PgBouncer on green, not paused",
             lambda: coord.agent("px").get("reports", 0) > reports and
             (proxy_state(coord, "px") or {}).get("backend") == "green" and
             not proxy_state(coord, "px").get("paused"), 20, interval=0.3)
    bench_clean(bench, seconds)


if __name__ == "__main__":
    harness.run([test_unreachable_proxy_refused_at_gate,
                 test_proxy_agent_dies_after_pause,
                 test_coordinator_killed_while_aborting_rolls_back,
                 test_proxy_agent_dies_after_switch_and_resume])
