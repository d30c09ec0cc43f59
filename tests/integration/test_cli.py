"""The binaries at their edges: bad config files and keys are refused at
start with file, line and field and nothing starts; a silent agent is marked
lost and `godwitctl status` says so in its exit code; status output."""

import json
import os
import signal
import subprocess
import time

import harness
from harness import Agent, Coordinator, check, exe, wait_for


def run(argv, timeout=20):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)


def test_bad_config_refused(rig):
    coord = Coordinator(rig, ["a1"])
    agent = Agent(rig, "a1", coord, role="proxy")
    # An unknown key, named with its line.
    with open(agent.config) as f:
        good = f.read()
    bad = good.replace("coordinator:\n", "coordinatr:\n", 1)
    with open(agent.config, "w") as f:
        f.write(bad)
    line = bad.splitlines().index("coordinatr:") + 1
    r = run([exe("godwit-agent"), "--config", agent.config])
    err = r.stderr.decode()
    check(r.returncode == 2, "agent refused a bad file with 2, got %d" % r.returncode)
    check("%s:%d: coordinatr: unknown key" % (agent.config, line) in err, "file:line:field: %s" % err)
    # A bad endpoint in the coordinator's file.
    with open(coord.config) as f:
        ctext = f.read()
    with open(coord.config, "w") as f:
        f.write(ctext.replace(coord.endpoint, "tcp://127.0.0.1:99999"))
    r = run([exe("godwit-coordinator"), "--config", coord.config])
    err = r.stderr.decode()
    check(r.returncode == 2 and "%s:1: listen:" % coord.config in err,
          "bad endpoint named with line and field: rc %d %s" % (r.returncode, err))
    check(not os.path.exists(coord.socket) and not os.path.exists(coord.journal),
          "nothing was created")
    # --check on the good files.
    with open(coord.config, "w") as f:
        f.write(ctext)
    with open(agent.config, "w") as f:
        f.write(good)
    for argv in ([exe("godwit-coordinator"), "--config", coord.config, "--check"],
                 [exe("godwit-agent"), "--config", agent.config, "--check"]):
        r = run(argv)
        check(r.returncode == 0 and b": ok" in r.stdout, "--check accepts a good file: %r" % r)


def test_readable_secret_key_refused(rig):
    coord = Coordinator(rig, ["a1"])
    key = os.path.join(rig.keys, "coordinator.key")
    os.chmod(key, 0o640)
    r = run([exe("godwit-coordinator"), "--config", coord.config])
    err = r.stderr.decode()
    check(r.returncode == 1, "coordinator refuses a group-readable key: rc %d" % r.returncode)
    check("chmod 600" in err and key in err, "and says how to fix it: %s" % err)
    check(not os.path.exists(coord.socket), "nothing was started")
    os.chmod(key, 0o600)
    r = run([exe("godwitctl"), "keygen", "coordinator", "--dir", rig.keys])
    check(r.returncode == 1 and b"refusing to overwrite" in r.stderr, "keygen never overwrites")
    st = os.stat(key)
    check(st.st_mode & 0o777 == 0o600, "key left as it was")


def test_silent_agent_marked_lost(rig):
    coord = Coordinator(rig, ["a1", "a2"]).start()
    a1 = Agent(rig, "a1", coord, role="source", interval="500ms").start()
    Agent(rig, "a2", coord, role="target", interval="500ms").start()
    for n in ("a1", "a2"):
        wait_for("%s connected" % n, lambda: coord.agent(n)["state"] == "connected", 10)
    mode = os.stat(coord.socket).st_mode & 0o777
    check(mode == 0o600, "control socket is mode 0600, not %o" % mode)
    r = coord.ctl("status")
    check(r.returncode == 0, "status exits 0 when all is well: %d" % r.returncode)
    out = r.stdout.decode()
    check("agents 2/2 connected" in out and "a1" in out and "source" in out, out)
    a1.proc.signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        wait_for("a1 lost", lambda: coord.agent("a1")["state"] == "lost", 6)
        took = time.monotonic() - t0
        print("   marked lost after %.2f s (lost_after 3 s)" % took)
        check(took >= 2.0, "not before lost_after")
        r = coord.ctl("status")
        check(r.returncode == 1, "status exits 1 with a lost agent: %d" % r.returncode)
        check(b"lost" in r.stdout, "and shows it")
        check(coord.agent("a2")["state"] == "connected", "the other agent is unaffected")
        check("from connected to lost" in coord.proc.log(), "the change is logged")
    finally:
        a1.proc.signal(signal.SIGCONT)
    wait_for("a1 back", lambda: coord.agent("a1")["state"] == "connected", 10)
    r = coord.ctl("status", "--json")
    st = json.loads(r.stdout)
    check(st["schema"] == "godwit.status/1" and r.returncode == 0, "json status, exit 0 again")


def test_status_without_coordinator(rig):
    r = run([exe("godwitctl"), "--socket", rig.path("nothing.sock"), "status"])
    check(r.returncode == 3 and b"cannot reach the coordinator" in r.stderr,
          "exit 3 when the coordinator is away: %r" % r)
    r = run([exe("godwitctl"), "frobnicate"])
    check(r.returncode == 2, "usage error exits 2")


if __name__ == "__main__":
    harness.run([test_bad_config_refused, test_readable_secret_key_refused,
                 test_silent_agent_marked_lost, test_status_without_coordinator])
