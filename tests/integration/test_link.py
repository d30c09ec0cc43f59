"""The encrypted agent-coordinator link: allow-list, plaintext refusal,
reconnection after a coordinator crash, epochs fencing a stale coordinator,
one coordinator per journal, command round trip."""

import os
import shutil
import subprocess
import time

import harness
from harness import Agent, Coordinator, check, wait_for


def connected(coord, name):
    a = coord.agent(name)
    return a if a["state"] == "connected" else None


def test_allowlist_and_plaintext(rig):
    coord = Coordinator(rig, ["good"]).start()
    good = Agent(rig, "good", coord, role="proxy", interval="500ms").start()
    wait_for("good agent connected", lambda: connected(coord, "good"), 10)
    # An agent whose key is not in the allow-list.
    Agent(rig, "intruder", coord, role="proxy", interval="500ms").start()
    wait_for("unknown key refused",
             lambda: coord.status()["coordinator"]["refused"]["unknown_key"] >= 1, 10)
    names = [a["name"] for a in coord.status()["agents"]]
    check(names == ["good"], "only allow-listed agents exist, got %r" % names)
    # A plaintext ZeroMQ client, speaking a well-formed hello.
    r = subprocess.run([harness.exe("zmq_plain_client"), coord.endpoint, "2000"],
                       stdout=subprocess.PIPE)
    check(r.returncode == 0, "plaintext client got an answer: %r" % r.stdout)
    wait_for("plaintext handshake refused",
             lambda: coord.status()["coordinator"]["refused"]["handshake_failed"] >= 1, 10)
    log = coord.proc.log()
    check("not in the allow-list" in log, "unknown key refusal is logged")
    check("refused a connection" in log, "plaintext refusal is logged")
    # The allowed agent never noticed.
    before = coord.agent("good")["reports"]
    time.sleep(2)
    a = coord.agent("good")
    check(a["state"] == "connected", "good agent still connected")
    check(a["reports"] >= before + 3, "good agent kept reporting: %d -> %d" % (before, a["reports"]))
    check(a["max_report_gap_ms"] < 1000, "no report gap over 2 intervals: %r" % a["max_report_gap_ms"])
    check(coord.status()["coordinator"]["bad_messages"] == 0, "no bad message got through")


def test_coordinator_kill9_reconnect(rig):
    coord = Coordinator(rig, ["a1"]).start()
    Agent(rig, "a1", coord, role="proxy", interval="500ms").start()
    wait_for("agent connected", lambda: connected(coord, "a1"), 10)
    wait_for("epoch 1 seen", lambda: coord.agent("a1")["highest_epoch"] == 1, 10)
    coord.proc.kill9()
    time.sleep(1)
    t0 = time.monotonic()
    coord.start()
    a = wait_for("agent reconnected", lambda: connected(coord, "a1"), 5)
    took = time.monotonic() - t0
    check(took < 5, "reconnected in %.2f s" % took)
    check(coord.status()["coordinator"]["epoch"] == 2, "new coordinator has epoch 2")
    wait_for("agent adopts epoch 2", lambda: coord.agent("a1")["highest_epoch"] == 2, 5)
    print("   reconnected %.2f s after restart" % took)


def _copy_journal(src, dst):
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(src + suffix):
            shutil.copy(src + suffix, dst + suffix)


def test_stale_coordinator_is_fenced(rig):
    coord = Coordinator(rig, ["a1"]).start()
    agent = Agent(rig, "a1", coord, role="proxy", interval="500ms").start()
    wait_for("epoch 1 adopted", lambda: coord.agent("a1")["highest_epoch"] == 1, 10)
    check(coord.proc.stop() == 0, "clean stop")
    stale = rig.path("stale-journal.db")
    _copy_journal(coord.journal, stale)  # holds epoch 1: its next start is epoch 2
    for epoch in (2, 3):
        coord.start()
        wait_for("epoch %d adopted" % epoch,
                 lambda: coord.agent("a1")["highest_epoch"] == epoch, 10)
        check(coord.proc.stop() == 0, "clean stop")
    # The agent restarts too: the epoch it saw is on disk, with its claim.
    agent.proc.stop()
    with open(os.path.join(agent.dir, "state", "epoch")) as f:
        lines = f.read().split("\n")
    check(lines[0] == "3" and lines[1].startswith("claim "),
          "agent persisted epoch 3 and its claim: %r" % lines)
    agent.start()
    # It may be fenced before it answers a status request: read its log.
    old = Coordinator(rig, ["a1"], journal=stale, port=coord.port, dirname="stale")
    old.start(wait=False)
    rc = old.proc.wait(20)
    check("(epoch 2," in old.proc.log(), "stale coordinator ran with epoch 2")
    check(rc == 4, "stale coordinator exits with 4 (fenced), got %r" % rc)
    # The agent's hello proves epoch 3 with a claim signed by the
    # coordinators' key: fenced before it sent anything (else the agent
    # refuses its first command, and that refusal carries the same proof).
    log = old.proc.log()
    check("fenced" in log and "valid claim of epoch 3" in log,
          "the coordinator says it is fenced, and by what")
    check("epoch 2 (was 3)" not in agent.proc.log() and "coordinator epoch 2" not in
          agent.proc.log().split("coordinator epoch 3")[-1], "the agent never took epoch 2 again")


def test_same_epoch_from_another_journal_is_fenced(rig):
    """Two journals that share a past hand out the same epochs: a standby
    started on a copy of the journal takes epoch 2, and the old coordinator
    restarted on the original (by an operator, or by a supervisor after it
    exited 4) takes epoch 2 too. An agent that has adopted the standby's
    epoch from the standby must refuse the other one, which has never sent
    it anything: it reports epoch 2 in its hello before that coordinator
    could have given it."""
    coord = Coordinator(rig, ["a1"]).start()
    agent = Agent(rig, "a1", coord, role="proxy", interval="500ms").start()
    wait_for("epoch 1 adopted", lambda: coord.agent("a1")["highest_epoch"] == 1, 10)
    check(coord.proc.stop() == 0, "clean stop")
    standby_journal = rig.path("standby-journal.db")
    _copy_journal(coord.journal, standby_journal)
    standby = Coordinator(rig, ["a1"], journal=standby_journal, port=coord.port,
                          dirname="standby").start()
    check(standby.status()["coordinator"]["epoch"] == 2, "standby runs epoch 2")
    wait_for("epoch 2 adopted", lambda: standby.agent("a1")["highest_epoch"] == 2, 10)
    check(standby.proc.stop() == 0, "clean stop")
    coord.start(wait=False)
    rc = coord.proc.wait(20)
    check("(epoch 2," in coord.proc.log(), "the old journal's coordinator ran with epoch 2")
    check(rc == 4, "it exits with 4 (fenced), got %r" % rc)
    check("fenced" in coord.proc.log() and "twin" in coord.proc.log(),
          "the coordinator says it is fenced, by a twin's claim")
    check(agent.proc.alive(), "the agent runs on")


def test_one_coordinator_per_journal(rig):
    coord = Coordinator(rig, ["a1"]).start()
    second = Coordinator(rig, ["a1"], journal=coord.journal, dirname="second")
    second.start(wait=False)
    rc = second.proc.wait(10)
    check(rc != 0, "second coordinator refused to start")
    check("in use by another coordinator" in second.proc.log(), "and says why")
    check(coord.proc.alive() and coord.status() is not None, "first one unaffected")


def test_ping_round_trip(rig):
    coord = Coordinator(rig, ["a1", "a2"]).start()
    Agent(rig, "a1", coord, role="proxy").start()
    wait_for("agent connected", lambda: connected(coord, "a1"), 10)
    r = coord.ctl("ping", "a1", "--json")
    check(r.returncode == 0, "ping ok: %s %s" % (r.stdout, r.stderr))
    import json
    rtt = json.loads(r.stdout)["rtt_ms"]
    # A round trip was measured and answered; how fast is bench/'s to say
    # (a timed bound failed once at 388 ms under ASan on a loaded machine).
    check(0 < rtt < 5000, "round trip %.3f ms" % rtt)
    r = coord.ctl("ping", "a2", check_rc=False)
    check(r.returncode == 1 and b"not connected" in r.stderr, "ping to a never-seen agent fails")
    r = coord.ctl("ping", "nobody", check_rc=False)
    check(r.returncode == 1 and b"allow-list" in r.stderr, "ping to an unknown name fails")
    st = coord.status()
    check(st["coordinator"]["rtt_ms"]["samples"] >= 1, "round trips recorded")


if __name__ == "__main__":
    harness.run([test_allowlist_and_plaintext, test_coordinator_kill9_reconnect,
                 test_stale_coordinator_is_fenced, test_same_epoch_from_another_journal_is_fenced,
                 test_one_coordinator_per_journal,
                 test_ping_round_trip])
