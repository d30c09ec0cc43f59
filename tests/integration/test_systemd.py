# ctest: one entry per case
"""The systemd side of the daemons: the units in deploy/systemd pass
`systemd-analyze verify` without a warning (a mangled copy does not, so the
check can fail), and the coordinator and an agent started as systemd would
start a Type=notify service (NOTIFY_SOCKET, WATCHDOG_USEC) send READY=1
with a status line, keep-alives at half the watchdog's interval,
RELOADING=1 and READY=1 around a reload (SIGHUP: the new log_level
applies, a broken file changes nothing), and STOPPING=1 when told to
stop. With log_format: journal, the daemons send their lines to the
journal's socket (here a socket of the test's own, in a mount namespace of
its own) with the fields GODWIT_MIGRATION, GODWIT_STEP and GODWIT_AGENT, and
fall back to stderr when nothing listens there."""

import ctypes
import os
import shutil
import signal
import socket
import struct
import subprocess
import threading
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


class JournalSink:
    """What systemd-journald listens on: a datagram socket at the path
    libsystemd sends to, in a mount namespace the test process enters (a
    tmpfs over /run there), so the host's /run is left alone; every process
    the test starts afterwards is in it. A thread takes every entry as it
    comes (as journald does: a sender blocks when the socket's queue is
    full); .got: each a {FIELD: value} decoded from the native protocol."""

    PATH = "/run/systemd/journal/socket"

    def __init__(self):
        libc = ctypes.CDLL(None, use_errno=True)
        rc = libc.unshare(0x00020000)  # CLONE_NEWNS
        check(rc == 0, "unshare(CLONE_NEWNS): %s" % os.strerror(ctypes.get_errno()))
        subprocess.run(["mount", "--make-rprivate", "/"], check=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", "/run"], check=True)
        os.makedirs(os.path.dirname(self.PATH))
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.PATH)
        self.sock.settimeout(0.1)
        self.got = []
        self.open = True
        self.thread = threading.Thread(target=self._take, daemon=True)
        self.thread.start()

    def _take(self):
        while self.open:
            try:
                self.got.append(self.decode(self.sock.recv(65536)))
            except (socket.timeout, OSError):
                continue

    @staticmethod
    def decode(data):
        fields, i = {}, 0
        while i < len(data):
            nl = data.index(b"\n", i)
            line = data[i:nl]
            if b"=" in line:
                k, v = line.split(b"=", 1)
                i = nl + 1
            else:  # binary-safe: NAME\n, a little-endian 64-bit size, the data, \n
                k = line
                (size,) = struct.unpack("<Q", data[nl + 1:nl + 9])
                v = data[nl + 9:nl + 9 + size]
                i = nl + 9 + size + 1
            fields[k.decode()] = v.decode()
        return fields

    def close(self):
        """Nothing listens any more: the socket is gone."""
        if self.open:
            self.open = False
            self.thread.join()
            self.sock.close()
            os.unlink(self.PATH)


def _restart_with_journal(rig, name, config):
    """Stops the rig's process name, adds log_format: journal to its
    config and starts it again from the same command line."""
    old = [p for p in rig.procs if p.name == name][-1]
    check(old.stop() == 0, "%s stopped cleanly" % name)
    with open(config, "a") as f:
        f.write("log_format: journal\n")
    return rig.spawn(name, old.argv)


def test_journal_fields(rig):
    import test_cutover
    sink = JournalSink()
    try:
        blue, green, coord, bouncer, bench = test_cutover.ready(rig, bench_seconds=25)
        coord.proc = _restart_with_journal(rig, "coordinator", coord.config)
        harness.wait_for("coordinator control socket", lambda: coord.status(), 10)
        _restart_with_journal(rig, "agent-green", rig.path("agent-green/agent.yaml"))
        test_cutover.gates_open(coord, ("blue", "green", "px"))
        text_before = coord.proc.log()
        r = coord.ctl("cutover", "shop", "--dry-run", "--json", check_rc=False)
        check(r.returncode == 0, "rehearsal done: %s %s" % (r.stdout.decode()[-2000:],
                                                           r.stderr.decode()))
        time.sleep(0.5)  # the last entries on their way
        mine = [e for e in sink.got if e.get("SYSLOG_IDENTIFIER") == "godwit-coordinator"]
        steps = {e["GODWIT_STEP"] for e in mine
                 if e.get("GODWIT_MIGRATION") == "shop" and "GODWIT_STEP" in e}
        print("   %d journal entries; the coordinator's rehearsal steps: %s" % (
            len(sink.got), sorted(steps)))
        check({"pause", "freeze", "resume"} <= steps, "cutover steps as fields: %s" % steps)
        done = [e for e in mine if "rehearsal done" in e.get("MESSAGE", "")]
        check(done and done[0]["PRIORITY"] == "6" and done[0]["GODWIT_LEVEL"] == "info",
              "the rehearsal's last line, at info: %r" % done)
        green_own = [e for e in sink.got if e.get("SYSLOG_IDENTIFIER") == "godwit-agent"]
        check(green_own and all(e.get("GODWIT_AGENT") == "green" for e in green_own),
              "the agent's own entries carry its name: %r" % green_own[:3])
        check("rehearsal" not in coord.proc.log()[len(text_before):],
              "nothing of it on stderr as well")
        # Nothing listens: the lines go to stderr instead, none lost.
        sink.close()
        coord.ctl("migrate", "verify", "shop", check_rc=False)
        harness.wait_for("stderr instead", lambda: "migration shop: verify started" in
                         coord.proc.log()[len(text_before):], 10)
        test_cutover.bench_clean(bench, 25)
    finally:
        sink.close()


if __name__ == "__main__":
    if not shutil.which("systemd-analyze"):
        raise SystemExit("systemd-analyze is missing: deploy/install-deps.sh installs systemd")
    harness.run([test_units_verify, test_notify_coordinator_and_agent, test_journal_fields])
