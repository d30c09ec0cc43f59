"""deploy/demo-datacenters.sh, run as a newcomer would (with the built
binaries, GODWIT_BIN, and a small pgbench scale): blue, green, the proxy
with the application and the coordinator in network namespaces, Frankfurt
and Oslo joined only through godwit-relays delaying 12.5 ms each way.

With --once it runs to the end of the cutover: the migration cut over,
pgbench lost no transaction, green's round trip from the coordinator is
about 25 ms (the relay's), green's connections from Frankfurt came over
TLS; the write pause is printed. Interrupted like Ctrl-C (SIGINT to its
process group) it exits 130. Either way nothing it made is left: no
namespace, no veth, no process (every process it starts inherits a marker
in its environment), no temporary folder."""

import os
import re
import signal
import subprocess
import time
import uuid

import harness
from harness import check, wait_for

SCRIPT = os.path.join(os.environ.get("GODWIT_SRC") or
                      os.path.join(os.path.dirname(__file__), "..", ".."),
                      "deploy", "demo-datacenters.sh")


def netns_names():
    out = subprocess.run(["ip", "netns", "list"], stdout=subprocess.PIPE, check=True).stdout
    return {line.split()[0] for line in out.decode().splitlines() if line.strip()}


def root_links():
    out = subprocess.run(["ip", "-o", "link", "show"], stdout=subprocess.PIPE, check=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.decode().splitlines()}


def marked_pids(mark):
    """The processes whose environment holds the marker."""
    found = []
    needle = ("GODWIT_DEMO_MARK=%s" % mark).encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % pid, "rb") as f:
                if needle in f.read().split(b"\0"):
                    found.append(int(pid))
        except OSError:
            pass
    return found


class Demo:
    """The script in its own session (so SIGINT reaches its whole group,
    as Ctrl-C does), SIGINT at its default (a shell started in the
    background would ignore it)."""

    def __init__(self, rig, *args):
        self.mark = uuid.uuid4().hex
        self.log_path = rig.path("demo.log")
        self.netns_before = netns_names()
        self.links_before = root_links()
        env = dict(os.environ, GODWIT_DEMO_MARK=self.mark, DEMO_SCALE="1", DEMO_SECONDS="120")

        def child():
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.setsid()
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(["bash", SCRIPT] + list(args), stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=env, preexec_fn=child)

    def output(self):
        with open(self.log_path) as f:
            return f.read()

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise

    def stop(self):
        """SIGTERM to the group: the script cleans up (exit 143)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=60)

    def check_nothing_left(self):
        out = self.output()
        m = re.search(r"demo stopped; (\S+) removed", out)
        check(m is not None, "the demo says it cleaned up")
        check(not os.path.exists(m.group(1)), "its folder %s is gone" % m.group(1))
        left = sorted(netns_names() - self.netns_before)
        check(not left, "no namespace left: %r" % left)
        check(not [n for n in netns_names() if n.startswith("godwit-demo-%d-" % self.proc.pid)],
              "none of its namespaces left")
        links = sorted(root_links() - self.links_before)
        check(not links, "no link left in this namespace: %r" % links)
        pids = marked_pids(self.mark)
        check(not pids, "no process of the demo left: %r" % pids)


def run_demo(rig, body, *args):
    demo = Demo(rig, *args)
    try:
        body(demo)
    except BaseException:
        demo.stop()
        harness.sys.stderr.write("----- demo output -----\n" + demo.output()[-8000:])
        raise


def test_cutover_between_datacenters(rig):
    def body(demo):
        t0 = time.monotonic()
        rc = demo.wait(timeout=200)
        took = time.monotonic() - t0
        out = demo.output()
        check(rc == 0, "demo --once exited %d" % rc)
        check("isolation: green reaches blue only through the relay" in out,
              "green cannot reach blue around the relay")
        m = re.search(r"cutover: done, write pause ([0-9.]+) ms", out)
        check(m is not None, "the migration cut over")
        pause = float(m.group(1))
        check("served by: 10.77.2.10:5432" in out, "PgBouncer sends the application to green")
        failed = re.search(r"pgbench failed transactions: (\d+)", out)
        check(failed is not None and failed.group(1) == "0", "no failed pgbench transaction")
        rtt = {n: float(v) for n, v in re.findall(r"round trip (\w+) ([0-9.]+) ms", out)}
        check(rtt.get("green", 0) >= 20,
              "green's round trip from the coordinator crosses the relay: %r" % rtt)
        tls = re.findall(r"over TLS: (\d+) of (\d+)", out)
        check(tls and tls[-1][0] == tls[-1][1] and int(tls[-1][1]) > 0,
              "green's connections from Frankfurt all over TLS: %r" % tls)
        demo.check_nothing_left()
        print("demo-datacenters: cut over in a write pause of %.1f ms; round trips from the "
              "coordinator: blue %.1f ms, green %.1f ms, px %.1f ms; the run took %.1f s" % (
                  pause, rtt.get("blue", -1), rtt["green"], rtt.get("px", -1), took), flush=True)
    run_demo(rig, body, "--once")


def test_ctrl_c_cleans_up(rig):
    def body(demo):
        wait_for("the migration started", lambda: "migration shop started" in demo.output(), 120)
        os.killpg(demo.proc.pid, signal.SIGINT)
        rc = demo.wait(timeout=60)
        check(rc == 130, "Ctrl-C: exit 130, got %d" % rc)
        demo.check_nothing_left()
    run_demo(rig, body)


if __name__ == "__main__":
    harness.run([test_cutover_between_datacenters, test_ctrl_c_cleans_up])
