"""Integration test harness: real PostgreSQL clusters, a real coordinator and
real agents over CURVE on loopback.

Every test gets its own temporary folder, free ports and processes. A Rig
owns everything it starts and stops all of it in close(), which runs on
success, on failure and on SIGTERM/SIGINT (ctest's timeout). PostgreSQL
refuses to run as root, so clusters are made and run as the `postgres` user
in folders that user owns.

A Relay (tests/tools/relay.c) puts a one-way delay and, on demand, a
partition between the test and a server; it is one of the Rig's processes.

Only the standard library is used. Binaries come from $GODWIT_BIN (the CMake
build folder); PostgreSQL from the newest /usr/lib/postgresql/*/bin or
$GODWIT_PG_BINDIR.
"""

import glob
import json
import os
import pwd
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import types
import traceback
import urllib.parse

BIN = os.environ.get("GODWIT_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build")


def _pg_bindir():
    if os.environ.get("GODWIT_PG_BINDIR"):
        return os.environ["GODWIT_PG_BINDIR"]
    dirs = glob.glob("/usr/lib/postgresql/*/bin")
    if not dirs:
        raise RuntimeError("no PostgreSQL server found in /usr/lib/postgresql/*/bin")
    return max(dirs, key=lambda d: int(d.split("/")[-2]))


PG_BIN = _pg_bindir()


def exe(name):
    for sub in ("coordinator", "agent", "tests/tools", "bench", "."):
        p = os.path.join(BIN, sub, name)
        if os.path.exists(p):
            return p
    raise RuntimeError("binary %s not found under %s" % (name, BIN))


def free_port():
    """A port nothing listens on now (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, predicate, timeout, interval=0.1):
    """Polls predicate until it returns a true value; fails with `what`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except Exception as e:  # a poll that fails is just "not yet"
            last = e
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError("timed out after %.1f s waiting for %s (last: %r)" % (timeout, what, last))


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


class Process:
    """A child process with its output in a log file."""

    def __init__(self, name, argv, log_path, env=None, ours=False, stdout_pipe=False):
        self.name = name
        self.stdout_pipe = stdout_pipe  # stdout readable as proc.stdout; stderr to the log
        self.ours = ours  # a godwit binary: must exit cleanly and sanitizer-clean
        self.argv = argv
        self.log_path = log_path
        self.env = env
        self.proc = None

    def start(self):
        log = open(self.log_path, "ab")
        if self.stdout_pipe:
            out, err = subprocess.PIPE, log
        else:
            out, err = log, subprocess.STDOUT
        self.proc = subprocess.Popen(self.argv, stdout=out, stderr=err,
                                     env=self.env, start_new_session=True)
        log.close()
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def stop(self, timeout=10):
        if not self.alive():
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill9(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()

    def wait(self, timeout):
        return self.proc.wait(timeout)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


class PgCluster:
    """A PostgreSQL cluster made with initdb, run as the postgres user."""

    def __init__(self, rig, name, wal_level="logical", extra=None):
        self.rig = rig
        self.name = name
        self.port = free_port()
        self.dir = os.path.join(rig.pgroot, name)
        self.data = os.path.join(self.dir, "data")
        self.wal_level = wal_level
        self.extra = extra or {}
        self.running = False
        os.makedirs(self.dir)
        pw = pwd.getpwnam("postgres")
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)

    def _as_pg(self, argv, **kw):
        return subprocess.run(["runuser", "-u", "postgres", "--"] + argv, check=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)

    def init(self):
        self._as_pg([os.path.join(PG_BIN, "initdb"), "-D", self.data, "-A", "trust", "-U",
                     "postgres", "--no-sync", "-E", "UTF8"])
        conf = {
            "port": self.port, "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": "'%s'" % self.dir, "wal_level": self.wal_level,
            "max_wal_senders": 10, "max_replication_slots": 10, "fsync": "off",
            "shared_buffers": "32MB", "logging_collector": "off",
        }
        conf.update(self.extra)
        with open(os.path.join(self.data, "postgresql.auto.conf"), "a") as f:
            for k, v in conf.items():
                f.write("%s = %s\n" % (k, v))
        return self

    def start(self):
        self._as_pg([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-l",
                     os.path.join(self.dir, "log"), "-w", "-t", "60", "start"])
        self.running = True
        return self

    def stop(self, mode="fast"):
        if not self.running:
            return
        self.cont()  # a stopped cluster cannot shut down
        self._as_pg([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-m", mode, "-w", "-t",
                     "60", "stop"])
        self.running = False

    def pids(self):
        """The postmaster and all its children."""
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                pm = int(f.readline())
        except (OSError, ValueError):
            return []
        pids = [pm]
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pm:
                    pids.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
        return pids

    def stop_signal(self):
        # A backend may exit between the listing and the signal: not an error.
        for p in self.pids():
            try:
                os.kill(p, signal.SIGSTOP)
            except ProcessLookupError:
                pass

    def cont(self):
        for p in self.pids():
            try:
                os.kill(p, signal.SIGCONT)
            except ProcessLookupError:
                pass

    def psql(self, sql, db="postgres"):
        r = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-A", "-t", "-v",
                            "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port), "-U",
                            "postgres", "-d", db, "-c", sql],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("psql on %s: %s" % (self.name, r.stderr.decode()))
        return r.stdout.decode().strip()

    def pgbench(self, args, log_name="pgbench"):
        """Starts pgbench in the background; returns the Process."""
        argv = [os.path.join(PG_BIN, "pgbench"), "-h", "127.0.0.1", "-p", str(self.port),
                "-U", "postgres"] + args
        return self.rig.spawn(log_name, argv)

    def pgbench_init(self, scale=1):
        subprocess.run([os.path.join(PG_BIN, "pgbench"), "-i", "-q", "-s", str(scale), "-h",
                        "127.0.0.1", "-p", str(self.port), "-U", "postgres", "postgres"],
                       check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


class Coordinator:
    """A coordinator with its own folder, config and allow-list. Its CURVE
    and signing keys are rig.keys/coordinator.{key,pub,sign.key,sign.pub}
    (the agents' configs find coordinator.sign.pub next to coordinator.pub).
    roles: {name: "source" | "source, target" ...}, the roles line of each
    allowed key; a name not in it may take every role (a convenience of the
    tests, written out in its .pub: the coordinator itself has no default)."""

    def __init__(self, rig, allowed_names, journal=None, options=None, port=None,
                 dirname="coordinator", roles=None):
        self.rig = rig
        self.port = port or free_port()
        self.endpoint = "tcp://127.0.0.1:%d" % self.port
        self.dir = rig.path(dirname)
        os.makedirs(self.dir, exist_ok=True)
        rig.keygen("coordinator", signing=True)
        self.allowed = os.path.join(self.dir, "allowed")
        os.makedirs(self.allowed, exist_ok=True)
        for n in allowed_names:
            self.allow(n, (roles or {}).get(n, "source, target, proxy"))
        self.socket = os.path.join(self.dir, "ctl.sock")
        self.journal = journal or os.path.join(self.dir, "journal.db")
        self.config = os.path.join(self.dir, "coordinator.yaml")
        opts = {"ping_interval": "500ms", "lost_after": "3s", "log_level": "debug"}
        opts.update(options or {})
        with open(self.config, "w") as f:
            f.write("listen: %s\nsecret_key: %s\nallowed_keys: %s\ncontrol_socket: %s\n"
                    "journal: %s\n" % (
                        self.endpoint, os.path.join(rig.keys, "coordinator.key"), self.allowed,
                        self.socket, self.journal))
            for k, v in opts.items():
                f.write("%s: %s\n" % (k, v))
        self.proc = None
        self.starts = 0

    def allow(self, name, roles):
        """Puts name's public key in the allow-list with a roles line
        (roles None: none); takes effect at the next start."""
        self.rig.keygen(name)
        with open(os.path.join(self.rig.keys, name + ".pub")) as f:
            lines = [l for l in f if not l.strip().startswith("roles:")]
        if roles is not None:
            lines.append("roles: %s\n" % roles)
        with open(os.path.join(self.allowed, name + ".pub"), "w") as f:
            f.writelines(lines)

    def start(self, wait=True, failpoint=None, env_extra=None):
        """failpoint: GODWIT_FAILPOINT for this run (the coordinator kills
        or stops itself there; docs/testing.md). env_extra: more
        environment (NOTIFY_SOCKET, ...)."""
        self.starts += 1
        env = None
        if failpoint or env_extra:
            env = dict(os.environ, **(env_extra or {}))
            if failpoint:
                env["GODWIT_FAILPOINT"] = failpoint
        self.proc = self.rig.spawn(os.path.basename(self.dir),
                                   [exe("godwit-coordinator"), "--config", self.config], env=env)
        if wait:
            wait_for("coordinator control socket", lambda: self.status(), 10)
        return self

    def ctl(self, *args, check_rc=True, timeout=60):
        r = subprocess.run([exe("godwitctl"), "--socket", self.socket] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        if check_rc and r.returncode not in (0, 1):
            raise RuntimeError("godwitctl %s: rc %d: %s" % (" ".join(args), r.returncode,
                                                             r.stderr.decode()))
        return r

    def status(self):
        r = self.ctl("status", "--json", check_rc=False)
        if r.returncode not in (0, 1):
            return None
        return json.loads(r.stdout)

    def agent(self, name):
        st = self.status()
        for a in st["agents"]:
            if a["name"] == name:
                return a
        raise KeyError(name)


class Agent:
    def __init__(self, rig, name, coordinator, role="source", cluster=None, interval="1s",
                 key_name=None, extra_pg=None, peers=None):
        """peers: the servers this agent may connect to (docs/config.md
        "peers"), {name: cluster or {host, port, user, passfile, sslmode}};
        a cluster gives 127.0.0.1, its port and the user godwit_repl."""
        self.rig = rig
        self.name = name
        self.dir = rig.path("agent-" + name)
        os.makedirs(self.dir, exist_ok=True)
        key = key_name or name
        rig.keygen(key)
        self.config = os.path.join(self.dir, "agent.yaml")
        with open(self.config, "w") as f:
            f.write("name: %s\nrole: %s\nstate_dir: %s\nreport_interval: %s\nlog_level: debug\n"
                    "secret_key: %s\ncoordinator:\n  endpoint: %s\n  public_key: %s\n" % (
                        name, role, os.path.join(self.dir, "state"), interval,
                        os.path.join(rig.keys, key + ".key"), coordinator.endpoint,
                        os.path.join(rig.keys, "coordinator.pub")))
            if cluster is not None:
                f.write("postgres:\n  host: 127.0.0.1\n  port: %d\n  dbname: postgres\n"
                        "  user: postgres\n  data_directory: %s\n  log_file: %s\n" % (
                            cluster.port, cluster.data, os.path.join(cluster.dir, "log")))
                for k, v in (extra_pg or {}).items():
                    f.write("  %s: %s\n" % (k, v))
            if peers:
                f.write("peers:\n")
                for pname, p in peers.items():
                    if isinstance(p, PgCluster):
                        p = {"host": "127.0.0.1", "port": p.port, "user": "godwit_repl"}
                    f.write("  - name: %s\n" % pname)
                    for k, v in p.items():
                        f.write("    %s: %s\n" % (k, v))
        self.proc = None

    def start(self, env_extra=None):
        """env_extra: more environment (NOTIFY_SOCKET, ...)."""
        self.proc = self.rig.spawn("agent-" + self.name, [exe("godwit-agent"), "--config",
                                                          self.config],
                                   env=dict(os.environ, **env_extra) if env_extra else None)
        return self


class Relay:
    """A godwit-relay from a free loopback port (.port) to to_port: every
    chunk is forwarded delay_ms after it was read, in both directions. The
    delay and a partition change at run time through its control socket.
    It is one of the rig's processes, so the rig stops it (and checks that it
    exited 0, sanitizer-clean) also when the test fails. port: listen there
    instead of on a free port (a relay started again on the port of one
    that stopped: an address that moved to another host)."""

    def __init__(self, rig, to_port, delay_ms=0.0, partition_mode="hold", to_host="127.0.0.1",
                 name=None, port=0, rate_kbit=0, loss_pct=0.0, seed=1):
        self.rig = rig
        if name is None:
            name = "relay-%d" % (1 + sum(1 for p in rig.procs if p.name.startswith("relay-")))
        self.name = name
        self.control = rig.path(name + ".sock")
        argv = [exe("godwit-relay"), "--listen", "127.0.0.1:%d" % port, "--to",
                "%s:%d" % (to_host, to_port), "--delay-ms", repr(float(delay_ms)),
                "--partition-mode", partition_mode, "--control", self.control,
                "--rate-kbit", repr(float(rate_kbit)), "--loss", repr(float(loss_pct)),
                "--seed", str(seed), "--log-level", "debug"]
        self.proc = rig.spawn(name, argv, stdout_pipe=True)
        self.port = self._read_port(timeout=10)

    def _read_port(self, timeout):
        """The one line the relay prints once it listens."""
        out = self.proc.proc.stdout
        try:
            ready, _, _ = select.select([out], [], [], timeout)
            line = out.readline() if ready else b""
        finally:
            out.close()  # the relay prints nothing else
        if not line.strip().isdigit():
            raise RuntimeError("%s did not print its port (got %r): %s" % (
                self.name, line, self.proc.log()[-2000:]))
        return int(line)

    def ctl(self, line, timeout=10):
        """Sends one control command; returns the reply after "ok"."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(self.control)
            s.sendall(line.encode() + b"\n")
            reply = b""
            while not reply.endswith(b"\n"):
                got = s.recv(4096)
                if not got:
                    break
                reply += got
        reply = reply.decode().strip()
        if not reply.startswith("ok"):
            raise RuntimeError("%s: %r: %s" % (self.name, line, reply))
        return reply[2:].strip()

    def set_delay(self, ms):
        self.ctl("delay %r" % float(ms))

    def set_rate(self, kbit):
        """Caps each direction (all links together) at kbit/s; 0: no cap."""
        self.ctl("rate %r" % float(kbit))

    def set_loss(self, pct):
        """Loses pct % of segments, each arriving a retransmission timeout late."""
        self.ctl("loss %r" % float(pct))

    def partition(self, mode=None):
        """Holds bytes (mode "hold") or resets links and refuses new ones
        ("drop"); None: the mode the relay was started with."""
        self.ctl("partition" + (" " + mode if mode else ""))

    def heal(self):
        self.ctl("heal")

    def stats(self):
        """The relay's counters: links, accepted, refused, connect_failed,
        resets, bytes_up, bytes_down, held, held_peak, delay_ms, rate_kbit,
        loss_pct, segments, lost, partitioned, mode."""
        out = {}
        for field in self.ctl("stats").split():
            k, v = field.split("=", 1)
            try:
                out[k] = int(v)
            except ValueError:
                try:
                    out[k] = float(v)
                except ValueError:
                    out[k] = v
        return out

    def stop(self):
        """Stops the relay with SIGTERM; returns its exit code (0 expected)."""
        return self.proc.stop()


class RawPeer:
    """A godwit-rawpeer (tests/tools/rawpeer.c): a peer that speaks the real
    transport (ZeroMQ, CURVE, godwit frames) but sends whatever the test
    writes, for attacks and broken peers. With coordinator: dials it with
    the allow-listed key `key` (a key name in rig.keys). Otherwise a fake
    coordinator bound on a free port (or port: a real coordinator's, stopped)
    with the CURVE key `key` (coordinator.key: a stolen one, without the
    signing key; with signing=True, with it too: every command then carries
    a valid claim of its epoch, and .claim(epoch) gives its instance and
    signature for hand-built frames), for agents to dial (.endpoint). One
    of the rig's processes."""

    def __init__(self, rig, key, coordinator=None, name=None, port=None, signing=False):
        self.rig = rig
        self.name = name or "rawpeer-%d" % (1 + sum(1 for p in rig.procs
                                                    if p.name.startswith("rawpeer-")))
        if coordinator is not None:
            rig.keygen(key)
            argv = [exe("godwit-rawpeer"), "agent", "--endpoint", coordinator.endpoint,
                    "--key", os.path.join(rig.keys, key + ".key"),
                    "--server-key", os.path.join(rig.keys, "coordinator.pub")]
        else:
            self.port = port or free_port()
            self.endpoint = "tcp://127.0.0.1:%d" % self.port
            argv = [exe("godwit-rawpeer"), "coordinator", "--bind", self.endpoint,
                    "--key", os.path.join(rig.keys, key + ".key")]
            if signing:  # the signing key stolen too: commands carry valid claims
                rig.keygen(key, signing=True)
                argv += ["--sign-key", os.path.join(rig.keys, key + ".sign.key")]
        p = Process(self.name, argv, rig.path("%s.log" % self.name), ours=True,
                    stdout_pipe=True)
        log = open(p.log_path, "ab")
        # Unbuffered: a line read ahead into a buffer would hide from select().
        p.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=log, start_new_session=True, bufsize=0)
        log.close()
        rig.procs.append(p)
        self.proc = p
        line = self._line(10)
        check(line == "ready", "%s: %r" % (self.name, line))

    def _line(self, timeout):
        out = self.proc.proc.stdout
        ready, _, _ = select.select([out], [], [], timeout)
        if not ready:
            raise AssertionError("%s: no answer within %.1f s" % (self.name, timeout))
        line = out.readline()
        if not line:
            raise AssertionError("%s exited: %s" % (self.name, self.proc.log()[-2000:]))
        return line.decode().rstrip("\n")

    def _cmd(self, line):
        self.proc.proc.stdin.write(line.encode() + b"\n")
        self.proc.proc.stdin.flush()

    @staticmethod
    def _quote(v):
        out = []
        for b in str(v).encode():
            out.append("%%%02X" % b if b < 0x21 or b > 0x7e or b == 0x25 else chr(b))
        return "".join(out)

    def send(self, **fields):
        """Sends an Envelope built from fields: path=value, the path's dots
        written as __ (hello__role="ROLE_PROXY"); a list value appends each
        element (hello__capabilities=["ping"])."""
        parts = []
        for k, v in fields.items():
            path = k.replace("__", ".")
            for item in (v if isinstance(v, list) else [v]):
                parts.append("%s%s=%s" % (path, "+" if isinstance(v, list) else "",
                                          self._quote(item)))
        self._cmd("send " + " ".join(parts))
        line = self._line(10)
        if line != "sent":
            raise AssertionError("%s: send %s: %s" % (self.name, parts, line))

    def claim(self, epoch):
        """(instance, signature) as bytes: the claim of epoch this fake
        coordinator's commands carry (signing=True only)."""
        self._cmd("claim %d" % epoch)
        line = self._line(10)
        check(line.startswith("claim "), "%s: %r" % (self.name, line))
        inst, sig = line.split()[1:]
        return bytes.fromhex(inst), bytes.fromhex(sig)

    def send_raw(self, data):
        self._cmd("sendraw " + data.hex())
        return self._line(10)

    def send_size(self, n):
        self._cmd("sendsize %d" % n)
        return self._line(10)

    def recv(self, timeout=10.0, body=None):
        """The next message (of that body) as {"body": ..., path: value},
        values as strings; None if none came within timeout."""
        self._cmd("recv %d%s" % (int(timeout * 1000), " " + body if body else ""))
        line = self._line(timeout + 10)
        if line == "timeout":
            return None
        if line.startswith("bad "):
            return {"body": None, "bad": line[4:]}
        check(line.startswith("msg "), "%s: %r" % (self.name, line))
        msg = {"body": line[4:]}
        while True:
            line = self._line(10)
            if line == "end":
                return msg
            k, _, v = line.partition("=")
            msg[k] = urllib.parse.unquote(v)

    def close(self):
        self.proc.proc.stdin.close()
        return self.proc.wait(10)


class Rig:
    """Owns a test's temp folder, servers and processes."""

    def __init__(self, name):
        self.name = name
        self.root = tempfile.mkdtemp(prefix="godwit-%s-" % name)
        os.chmod(self.root, 0o755)
        self.keys = os.path.join(self.root, "keys")
        self.pgroot = os.path.join(self.root, "pg")
        os.makedirs(self.pgroot)
        os.chmod(self.pgroot, 0o755)
        self.procs = []
        self.clusters = []
        self.keep = os.environ.get("GODWIT_KEEP_TMP") == "1"

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def agent_as(self, coord, name, user):
        """Restarts agent name (killed -9) with its postgres.user set to
        user; returns once the coordinator sees it connected."""
        agent = [p for p in self.procs if p.name == "agent-" + name][0]
        agent.kill9()
        config = os.path.join(self.path("agent-" + name), "agent.yaml")
        with open(config) as f:
            text = f.read()
        with open(config, "w") as f:
            f.write(text.replace("  user: postgres\n", "  user: %s\n" % user, 1))
        agent.start()
        wait_for("%s connected" % name, lambda: coord.agent(name)["state"] == "connected", 15)

    def keygen(self, name, signing=False):
        """The CURVE pair rig.keys/NAME.{key,pub} (and with signing, the
        signing pair NAME.sign.{key,pub}) unless it exists."""
        have = os.path.exists(os.path.join(self.keys, name + ".key"))
        if have and (not signing or os.path.exists(os.path.join(self.keys, name + ".sign.key"))):
            return
        subprocess.run([exe("godwitctl"), "keygen", name, "--dir", self.keys] +
                       (["--signing"] if signing else []), check=True, stdout=subprocess.PIPE)

    def spawn(self, name, argv, stdout_pipe=False, env=None):
        ours = os.path.basename(argv[0]).startswith("godwit")
        p = Process(name, argv, self.path("%s.log" % name), ours=ours,
                    stdout_pipe=stdout_pipe, env=env).start()
        self.procs.append(p)
        return p

    def cluster(self, name, **kw):
        c = PgCluster(self, name, **kw).init().start()
        self.clusters.append(c)
        return c

    def dump_logs(self):
        for p in self.procs:
            sys.stderr.write("----- %s (%s) -----\n" % (p.name, p.log_path))
            sys.stderr.write(p.log()[-6000:])
        for c in self.clusters:
            try:
                with open(os.path.join(c.dir, "log")) as f:
                    sys.stderr.write("----- postgres %s -----\n%s" % (c.name, f.read()[-3000:]))
            except OSError:
                pass

    def close(self):
        """Stops everything; returns the problems found: a godwit process
        that did not exit 0 on SIGTERM, or a sanitizer report in any of our
        logs (leaks show up at exit)."""
        problems = []
        for p in reversed(self.procs):
            try:
                was_alive = p.alive()
                rc = p.stop(timeout=10)
                if p.ours and was_alive and rc != 0:
                    problems.append("%s exited %s on SIGTERM" % (p.name, rc))
            except Exception as e:
                problems.append("%s: %s" % (p.name, e))
            if p.ours:
                log = p.log()
                for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                    if marker in log:
                        problems.append("%s: %s in %s" % (p.name, marker, p.log_path))
        for c in self.clusters:
            try:
                c.stop(mode="immediate")
            except Exception:
                pass
        if not self.keep and not problems:
            shutil.rmtree(self.root, ignore_errors=True)
        return problems


def _on_signal(signum, frame):
    raise SystemExit("killed by signal %d" % signum)


def run(tests):
    """Runs each test(rig) in order with its own Rig; prints the summary
    line ctest's log readers expect and exits non-zero on any failure."""
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    only = sys.argv[1:]
    passed = failed = 0
    for t in tests:
        if only and t.__name__ not in only:
            continue
        rig = Rig(t.__name__)
        t0 = time.monotonic()
        try:
            t(rig)
        except BaseException as e:  # SystemExit from a signal too: clean up first
            failed += 1
            sys.stderr.write("FAIL %s (%.1f s): %s\n" % (t.__name__, time.monotonic() - t0, e))
            traceback.print_exc()
            rig.dump_logs()
            rig.close()
            if isinstance(e, (SystemExit, KeyboardInterrupt)):
                break
            continue
        problems = rig.close()
        if problems:
            failed += 1
            sys.stderr.write("FAIL %s at shutdown: %s (kept %s)\n" % (
                t.__name__, "; ".join(problems), rig.root))
            rig.dump_logs()
        else:
            passed += 1
            print("ok   %s (%.1f s)" % (t.__name__, time.monotonic() - t0), flush=True)
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed or passed == 0 else 0)
