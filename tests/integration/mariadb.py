"""MariaDB servers for the integration tests: made by the test with
mariadb-install-db in its temp folder, on a free loopback port, run by
mariadbd itself as the mysql user (it drops root's rights at start), and
stopped with the rig (SIGTERM: a clean shutdown)."""

import os
import pwd
import shutil
import subprocess
import sys

import harness
from harness import free_port, wait_for

MARIADBD = "/usr/sbin/mariadbd"
# InnoDB's native AIO sets up an io_uring per server, which depends on the
# kernel's and the sandbox's limits; several test servers at once need none
# of its speed.
AIO_OFF = "innodb-use-native-aio=0"


class MariaDb:
    """One server: blue or green. options: mariadbd options (without
    the leading --) over the defaults below; log_bin False leaves the
    binary log off."""

    def __init__(self, rig, name, server_id=1, log_bin=True, options=None):
        self.rig = rig
        self.name = name
        self.port = free_port()
        self.dir = os.path.join(rig.pgroot, "mariadb-" + name)
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "sock")
        self.server_id = server_id
        self.log_bin = log_bin
        self.options = dict(options or {})
        self.proc = None
        os.makedirs(self.dir)
        pw = pwd.getpwnam("mysql")
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)

    def init(self):
        """mariadb-install-db: --force skips its look-up of this host's name
        (resolveip), which the servers never need (--skip-name-resolve);
        InnoDB's native AIO (io_uring) stays off, as in the servers (AIO_OFF).
        A failure is tried once more, its output kept in the test's log."""
        argv = ["mariadb-install-db", "--no-defaults", "--user=mysql", "--force",
                "--datadir=" + self.data, "--auth-root-authentication-method=normal",
                "--skip-test-db", "--" + AIO_OFF]
        for attempt in (1, 2):
            r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=120)
            if r.returncode == 0:
                return self
            out = r.stdout.decode(errors="replace")[-3000:]
            sys.stderr.write("mariadb-install-db for %s, attempt %d, exited %d:\n%s\n" % (
                self.name, attempt, r.returncode, out))
            shutil.rmtree(self.data, ignore_errors=True)
        raise RuntimeError("mariadb-install-db for %s exited %d:\n%s" % (
            self.name, r.returncode, out))

    def argv(self):
        opts = {"datadir": self.data, "socket": self.sock, "port": self.port,
                "bind-address": "127.0.0.1", "pid-file": os.path.join(self.dir, "pid"),
                "log-error": os.path.join(self.dir, "error.log"), "server-id": self.server_id,
                "skip-name-resolve": None, "innodb-buffer-pool-size": "64M",
                "innodb-flush-log-at-trx-commit": 2, "sync-binlog": 0,
                "binlog-format": "ROW", "gtid-strict-mode": 1,
                AIO_OFF.split("=")[0]: AIO_OFF.split("=")[1]}
        if self.log_bin:
            opts["log-bin"] = os.path.join(self.data, "binlog")
        opts.update(self.options)
        argv = [MARIADBD, "--no-defaults", "--user=mysql"]
        for k, v in opts.items():
            if v is False:
                continue
            argv.append("--%s" % k if v is None else "--%s=%s" % (k, v))
        return argv

    def start(self):
        self.proc = self.rig.spawn("mariadb-" + self.name, self.argv())
        wait_for("mariadb %s answers" % self.name, self.answers, 60, interval=0.1)
        return self

    def answers(self):
        return subprocess.run(["mariadb-admin", "--no-defaults", "--socket=" + self.sock,
                               "-uroot", "ping"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT).returncode == 0

    def stop(self):
        if self.proc and self.proc.alive():
            self.proc.stop(timeout=60)

    def restart(self, **options):
        """Stops the server and starts it again with options changed."""
        self.stop()
        self.options.update(options)
        return self.start()

    def sql(self, stmt, db=None):
        """Runs stmt as root over the socket; returns the rows as text
        (tab-separated columns, one line per row)."""
        r = subprocess.run(["mariadb", "--no-defaults", "--socket=" + self.sock, "-uroot",
                            "-N", "-B", "-e", stmt] + ([db] if db else []),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("mariadb on %s: %s" % (self.name, r.stderr.decode()))
        return r.stdout.decode().strip()


def server(rig, name, **kw):
    return MariaDb(rig, name, **kw).init().start()


def agent_section(db, user="root", password_file=None):
    """The agent config's mariadb section for server db (over its socket)."""
    text = "mariadb:\n  socket: %s\n  user: %s\n  data_directory: %s\n" % (db.sock, user, db.data)
    if password_file:
        text += "  password_file: %s\n" % password_file
    return text


def agent(rig, name, coord, db, role, peers=None):
    """A godwit-agent for MariaDB server db: the harness's agent config with
    a mariadb section instead of a postgres one. peers: {name: (server,
    user, password_file)}."""
    a = harness.Agent(rig, name, coord, role=role)
    with open(a.config, "a") as f:
        f.write(agent_section(db))
        if peers:
            f.write("peers:\n")
            for pname, (p, user, pwfile) in peers.items():
                f.write("  - name: %s\n    host: 127.0.0.1\n    port: %d\n    user: %s\n"
                        "    password_file: %s\n" % (pname, p.port, user, pwfile))
    return a.start()
