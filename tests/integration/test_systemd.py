# ctest: one entry per case
"""The systemd side of the daemons: the units in deploy/systemd pass
`systemd-analyze verify` without a warning (a mangled copy does not, so the
check can fail), and the coordinator and an agent started as systemd would
start a Type=notify service (NOTIFY_SOCKET, WATCHDOG_USEC) send READY=1
with a status line, keep-alives at half the watchdog's interval,
RELOADING=1 and READY=1 around a reload (SIGHUP: the new log_level
applies, a broken file changes nothing), and STOPPING=1 when told to
stop."""

import os
import shutil
import signal
import socket
import subprocess
import time

import harness
from harness import Agent, Coordinator, check, exe

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNITS = ("godwit-agent", "godwit-agent-proxy", "godwit-coordinator")


def _verify(paths):
    r = subprocess.run(["systemd-analyze", "verify", "--man=no"] + paths,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    return r.returncode, r.stdout.decode()


def test_units_verify(rig):
    # The units as installed: ExecStart in a folder holding the programs.
    bindir = rig.path("bin")
    os.makedirs(bindir)
    for prog in ("godwit-agent", "godwit-coordinator"):
        os.symlink(exe(prog), os.path.join(bindir, prog))
    paths = []
    for unit in UNITS:
        with open(os.path.join(ROOT, "deploy", "systemd", unit + ".service")) as f:
            text = f.read()
        check("@BINDIR@" in text and "Type=notify" in text and "WatchdogSec=" in text,
              "%s: a notify unit with a watchdog, its programs' folder to fill in" % unit)
        path = rig.path(unit + ".service")
        with open(path, "w") as f:
            f.write(text.replace("@BINDIR@", bindir))
        paths.append(path)
    rc, out = _verify(paths)
    print("   systemd-analyze verify: rc %d, %d lines of output" % (rc, len(out.splitlines())))
    check(rc == 0 and out.strip() == "", "the units verify cleanly: %s" % out)
    # The check can fail: a misspelt key is reported.
    bad = rig.path("bad.service")
    with open(paths[0]) as f, open(bad, "w") as g:
        g.write(f.read().replace("NoNewPrivileges=", "NoNewPrivilege="))
    rc, out = _verify([bad])
    check("NoNewPrivilege" in out, "a misspelt key is reported: %s" % out)


class NotifySocket:
    """What systemd listens on for a Type=notify service: a datagram socket;
    messages() gathers what arrived, each a set of KEY=VALUE lines."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.1)
        self.got = []  # (time, {key: value})

    def pump(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.got.append((time.monotonic(), fields))

    def wait_for(self, key, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for t, m in self.got:
                if key in m:
                    return t, m
            self.pump(0.1)
        return None, None

    def close(self):
        self.sock.close()


def _check_daemon(proc, notify, status_word, config):
    t_ready, ready = notify.wait_for("READY", 15)
    check(ready and ready["READY"] == "1" and status_word in ready.get("STATUS", ""),
          "READY=1 with a status: %r" % (notify.got,))
    # WATCHDOG_USEC 400 ms: a keep-alive about every 200 ms.
    notify.pump(1.2)
    beats = [t for t, m in notify.got if m.get("WATCHDOG") == "1" and t >= t_ready]
    gaps = [b - a for a, b in zip(beats, beats[1:])]
    print("   READY with STATUS=%r; %d keep-alives in 1.2 s, gaps %s ms" % (
        ready.get("STATUS"), len(beats), [round(g * 1000) for g in gaps]))
    check(len(beats) >= 5 and max(gaps) < 0.4, "keep-alives at half the interval: %r" % gaps)
    # A reload (SIGHUP, ExecReload): RELOADING=1, then READY=1; the new
    # log_level applies; a broken file changes nothing and it runs on.
    with open(config) as f:
        text = f.read()
    with open(config, "w") as f:
        f.write(text.replace("log_level: debug", "log_level: info") + "# edited\n")
    n = len(notify.got)
    proc.signal(signal.SIGHUP)
    t_rel, rel = notify.wait_for("RELOADING", 5)
    notify.pump(0.3)
    after = [m for t, m in notify.got[n:] if "READY" in m]
    check(rel and after, "RELOADING=1 then READY=1: %r" % notify.got[n:])
    harness.wait_for("reloaded", lambda: "log_level applied; its other changes apply at the "
                     "next start" in proc.log(), 5)
    with open(config, "w") as f:
        f.write(text.replace("log_level: debug", "log_level: loud"))
    proc.signal(signal.SIGHUP)
    harness.wait_for("refused", lambda: "config not reloaded, nothing changed" in proc.log(), 5)
    check("log_level" in proc.log().split("config not reloaded")[-1].splitlines()[0],
          "the refusal names the field")
    check(proc.alive(), "still running after a broken reload")
    print("   SIGHUP: RELOADING=1, READY=1, log_level applied; a broken file refused")
    rc = proc.stop()
    _, stopping = notify.wait_for("STOPPING", 5)
    check(rc == 0 and stopping and stopping["STOPPING"] == "1",
          "STOPPING=1 and a clean exit: rc %r, %r" % (rc, notify.got[-3:]))


def test_notify_coordinator_and_agent(rig):
    env = {"WATCHDOG_USEC": "400000"}
    notify = NotifySocket(rig.path("coord.notify"))
    try:
        coord = Coordinator(rig, ["blue"]).start(env_extra=dict(env, NOTIFY_SOCKET=notify.path))
        _check_daemon(coord.proc, notify, "coordinator", coord.config)
    finally:
        notify.close()
    coord = Coordinator(rig, ["blue"]).start()
    blue = rig.cluster("blue")
    notify = NotifySocket(rig.path("agent.notify"))
    try:
        agent = Agent(rig, "blue", coord, cluster=blue).start(
            env_extra=dict(env, NOTIFY_SOCKET=notify.path))
        _check_daemon(agent.proc, notify, "agent blue", agent.config)
    finally:
        notify.close()
    # Without NOTIFY_SOCKET the daemons run as before (every other test).


if __name__ == "__main__":
    if not shutil.which("systemd-analyze"):
        raise SystemExit("systemd-analyze is missing: deploy/install-deps.sh installs systemd")
    harness.run([test_units_verify, test_notify_coordinator_and_agent])
