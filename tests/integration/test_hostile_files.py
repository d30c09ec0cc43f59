# ctest: one entry per case
"""Hostile files: a plan or a config nested 200,000 deep, or larger than the
loader takes, is refused at once with file, line and field, changes nothing,
and never holds the coordinator's loop (it keeps answering, and stops on
SIGTERM). Before the loader bounded nesting, libyaml took minutes on such a
file (it walks every open flow level at each token) while the coordinator
ignored everything, SIGTERM included."""

import json
import os
import socket
import subprocess

import harness
from harness import Agent, Coordinator, check, exe

DEPTH = 200000
PATH63 = "[0]" * 63


def run(argv, timeout=30):
    """A hang shows as a TimeoutExpired failure, not as a slow pass."""
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)


def control(coord, request, timeout=30):
    """One request on the control socket, bypassing godwitctl's own limits."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(coord.socket)
        s.sendall(json.dumps(request).encode() + b"\n")
        reply = b""
        while not reply.endswith(b"\n"):
            got = s.recv(65536)
            if not got:
                break
            reply += got
    return json.loads(reply)


def test_deep_plan_refused(rig):
    coord = Coordinator(rig, ["a1"]).start()
    plan = rig.path("deep.yaml")
    with open(plan, "w") as f:
        f.write("migrations:\n  - name: m\n    tables: " + "[" * DEPTH + "\n")
    for args in (["plan", "check", plan], ["migrate", "start", plan]):
        r = run([exe("godwitctl"), "--socket", coord.socket] + args)
        err = r.stderr.decode()
        check(r.returncode == 2, "%s: refused as an invalid plan: rc %d %s" % (args, r.returncode, err))
        want = "%s:3: migrations[0].tables%s: nested deeper than 64 levels, refused" % (
            plan, "[0]" * 61)
        check(want in err, "file, line and field named: %s" % err)
    # Flow mappings and block sequences alike, straight to the socket.
    for text in ("x: " + "{a: " * DEPTH, "x:\n  " + "- " * DEPTH + "a\n"):
        r = control(coord, {"cmd": "plan_check", "file": "p.yaml", "text": text})
        check(not r["ok"] and r.get("invalid_plan") and "nested deeper than 64 levels" in
              r["error"], "refused: %r" % r)
    # The loop went on serving: status answers, nothing was started.
    st = coord.status()
    check(st is not None and st["agents"][0]["name"] == "a1", "status answers: %r" % st)
    r = coord.ctl("migrate", "status", "--json")
    check(json.loads(r.stdout)["migrations"] == [], "nothing started: %s" % r.stdout)
    # And stops on SIGTERM, exit 0 (the rig checks that at the end too).
    check(coord.proc.stop() == 0, "coordinator stopped cleanly")


def test_large_plan_refused(rig):
    coord = Coordinator(rig, ["a1"]).start()
    # godwitctl refuses to send over 1 MiB; a client of the socket may try.
    text = "migrations:\n  - name: m\n" + "# padding\n" * 120000
    r = control(coord, {"cmd": "plan_check", "file": "big.yaml", "text": text})
    check(not r["ok"] and r["error"] == "big.yaml: larger than 1024 KiB, refused", "%r" % r)
    check(coord.status() is not None, "still serving")


def test_deep_configs_refused(rig):
    coord = Coordinator(rig, ["a1"])
    agent = Agent(rig, "a1", coord, role="proxy")
    for who, path, prog in (("agent", agent.config, "godwit-agent"),
                            ("coordinator", coord.config, "godwit-coordinator")):
        with open(path) as f:
            good = f.read()
        lines = good.count("\n")
        with open(path, "w") as f:
            f.write(good + "x: " + "[" * DEPTH + "\n")
        r = run([exe(prog), "--config", path])
        err = r.stderr.decode()
        check(r.returncode == 2, "%s refused its file with 2: rc %d %s" % (who, r.returncode, err))
        want = "%s:%d: x%s: nested deeper than 64 levels, refused" % (path, lines + 1, PATH63)
        check(want in err, "%s: file, line and field: %s" % (who, err))
        with open(path, "w") as f:
            f.write(good)
    check(not os.path.exists(coord.socket) and not os.path.exists(coord.journal),
          "nothing was created")


if __name__ == "__main__":
    harness.run([test_deep_plan_refused, test_large_plan_refused, test_deep_configs_refused])
