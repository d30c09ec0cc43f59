"""godwit-relay, the delaying TCP relay the cutover tests put between green
and blue and between agents and the coordinator: its one-way delay measured
through a real PostgreSQL cluster and a loopback echo server, byte-identical
bulk transfer with backpressure, partitions that hold or drop traffic, many
concurrent connections, its control socket and a clean exit.

These check the tool, not godwit: the latency bounds are what a correct
relay gives on an idle loopback."""

import os
import random
import re
import select
import signal
import socket
import statistics
import subprocess
import threading
import time

import harness
from harness import PG_BIN, Relay, check, wait_for

ONE_WAY_MS = 12.5  # Frankfurt-Oslo


class EchoServer:
    """A loopback TCP echo server on its own threads; a context manager so
    it stops (listener and every connection closed) also when a test fails."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c.settimeout(None)
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.conns.append(c)
            threading.Thread(target=self._echo, args=(c,), daemon=True).start()

    @staticmethod
    def _echo(c):
        try:
            while True:
                data = c.recv(65536)
                if not data:
                    break
                c.sendall(data)
            c.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()
        with self.lock:
            for c in self.conns:
                c.close()


def connect(port, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exactly(s, n):
    buf = bytearray()
    while len(buf) < n:
        got = s.recv(min(n - len(buf), 1 << 20))
        if not got:
            raise AssertionError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += got
    return bytes(buf)


def echo_rtts_ms(port, count, size=16):
    """Round trips of `size` bytes on one connection, measured here."""
    out = []
    with connect(port) as s:
        for i in range(count):
            msg = bytes([65 + i % 26]) * size
            t0 = time.perf_counter()
            s.sendall(msg)
            got = recv_exactly(s, size)
            out.append((time.perf_counter() - t0) * 1000)
            check(got == msg, "echo returned %r for %r" % (got, msg))
    return out


def pipelined_rtts_ms(port, count, every_ms):
    """Round trips of numbered 16-byte messages sent every `every_ms` on one
    connection without waiting for the answers, measured here."""
    sent = {}
    errors = []
    with connect(port) as s:
        def send():
            try:
                for i in range(count):
                    sent[i] = time.perf_counter()
                    s.sendall(b"%016d" % i)
                    time.sleep(every_ms / 1000)
            except OSError as e:
                errors.append(e)

        t = threading.Thread(target=send, daemon=True)
        t.start()
        out = []
        for i in range(count):
            got = recv_exactly(s, 16)
            now = time.perf_counter()
            check(int(got) == i, "message %d came back as %r" % (i, got))
            out.append((now - sent[i]) * 1000)
        t.join(10)
    check(not errors, "sending: %r" % errors)
    return out


def psql_argv(port, *args):
    return [os.path.join(PG_BIN, "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h",
            "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "postgres"] + list(args)


def psql_rtts_ms(port, count):
    """`SELECT 1` round trips on one session, timed client-side by psql."""
    script = "\\timing on\n" + "SELECT 1;\n" * count
    r = subprocess.run(psql_argv(port, "-f", "-"), input=script.encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    check(r.returncode == 0, "psql failed: %s" % r.stderr.decode())
    times = [float(m) for m in re.findall(r"^Time: ([0-9.]+) ms", r.stdout.decode(), re.M)]
    check(len(times) == count, "psql printed %d timings, expected %d" % (len(times), count))
    return times


def summary(ts):
    return "min %.3f / median %.3f / max %.3f ms (%d)" % (min(ts), statistics.median(ts), max(ts),
                                                          len(ts))


def test_postgres_latency(rig):
    pg = rig.cluster("pg")
    direct = psql_rtts_ms(pg.port, 20)
    relay = Relay(rig, pg.port, delay_ms=ONE_WAY_MS)
    rtts = psql_rtts_ms(relay.port, 60)
    med = statistics.median(rtts)
    print("   SELECT 1 direct:  %s" % summary(direct))
    print("   SELECT 1 relayed: %s" % summary(rtts))
    # Nothing may ever arrive early: each way waits its full delay.
    check(min(rtts) >= 2 * ONE_WAY_MS, "fastest round trip %.3f ms < %.1f ms" % (
        min(rtts), 2 * ONE_WAY_MS))
    check(2 * ONE_WAY_MS <= med < 35, "median round trip %.3f ms outside [25, 35)" % med)
    # The delay changes at run time, without a restart.
    relay.set_delay(50)
    slow = psql_rtts_ms(relay.port, 10)
    print("   SELECT 1 at 50 ms each way: %s" % summary(slow))
    check(min(slow) >= 100, "50 ms each way gives round trips >= 100 ms: %s" % summary(slow))
    check(statistics.median(slow) < 110, "and not much more: %s" % summary(slow))
    relay.set_delay(0)
    fast = psql_rtts_ms(relay.port, 20)
    print("   SELECT 1 at 0 ms: %s" % summary(fast))
    check(statistics.median(fast) < 10, "no delay when set to 0: %s" % summary(fast))
    check(relay.stats()["delay_ms"] == 0, "stats show the new delay")


def test_echo_latency(rig):
    with EchoServer() as echo:
        relay = Relay(rig, echo.port, delay_ms=ONE_WAY_MS)
        rtts = echo_rtts_ms(relay.port, 60)
        print("   echo 16 B relayed: %s" % summary(rtts))
        check(min(rtts) >= 2 * ONE_WAY_MS, "fastest echo %.3f ms < 25 ms" % min(rtts))
        check(statistics.median(rtts) < 35, "median echo %.3f ms" % statistics.median(rtts))
        # Many messages in flight at once: each still waits its own delay.
        piped = pipelined_rtts_ms(relay.port, 100, 2.0)
        print("   echo 16 B every 2 ms, relayed: %s" % summary(piped))
        check(min(piped) >= 2 * ONE_WAY_MS, "fastest pipelined echo %.3f ms" % min(piped))
        check(statistics.median(piped) < 35, "pipelined: %s" % summary(piped))
        # A fractional delay is kept to well under a millisecond.
        relay.set_delay(0.4)
        sub = echo_rtts_ms(relay.port, 60)
        print("   echo 16 B at 0.4 ms each way: %s" % summary(sub))
        check(min(sub) >= 0.8, "0.4 ms each way: fastest %.3f ms" % min(sub))
        check(statistics.median(sub) < 5, "0.4 ms each way: %s" % summary(sub))
        # Bytes read after the delay was shortened wait behind earlier ones.
        with connect(relay.port) as s:
            relay.set_delay(400)
            s.sendall(b"first,")
            time.sleep(0.05)
            relay.set_delay(0)
            t0 = time.perf_counter()
            s.sendall(b"second")
            got = recv_exactly(s, 12)
            took = time.perf_counter() - t0
        check(got == b"first,second", "order kept across a shorter delay: %r" % got)
        check(took >= 0.3, "the later bytes waited for the earlier: %.3f s" % took)


def test_bulk_copy_byte_identical(rig):
    pg = rig.cluster("pg")
    pg.psql("CREATE TABLE bulk (i int PRIMARY KEY, t text NOT NULL)")
    rnd = random.Random(7)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?-_=+/()[]{}'\"<>"
    rows = ["%d\t%s\n" % (i, "".join(rnd.choice(alphabet) for _ in range(rnd.randint(20, 200))))
            for i in range(1, 40001)]
    data = "".join(rows).encode()
    check(len(data) > 4 * 1024 * 1024, "over 4 MiB of rows: %d bytes" % len(data))
    relay = Relay(rig, pg.port, delay_ms=ONE_WAY_MS)
    t0 = time.monotonic()
    r = subprocess.run(psql_argv(relay.port, "-c", "COPY bulk FROM STDIN"), input=data,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    t_in = time.monotonic() - t0
    check(r.returncode == 0, "COPY in through the relay: %s" % r.stderr.decode())
    t0 = time.monotonic()
    r = subprocess.run(psql_argv(relay.port, "-c",
                                 "COPY (SELECT i, t FROM bulk ORDER BY i) TO STDOUT"),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    t_out = time.monotonic() - t0
    check(r.returncode == 0, "COPY out through the relay: %s" % r.stderr.decode())
    check(r.stdout == data, "COPY out returned %d bytes, differing from the %d sent" % (
        len(r.stdout), len(data)))
    st = relay.stats()
    check(st["bytes_up"] >= len(data) and st["bytes_down"] >= len(data),
          "relay counted the bytes both ways: %r" % st)
    print("   %.1f MB in %.2f s, out %.2f s, through %.1f ms each way" % (
        len(data) / 1e6, t_in, t_out, ONE_WAY_MS))


def test_echo_bulk_backpressure(rig):
    size = 32 * 1024 * 1024
    payload = random.Random(11).randbytes(size)
    with EchoServer() as echo:
        relay = Relay(rig, echo.port, delay_ms=ONE_WAY_MS)
        with connect(relay.port, timeout=60) as s:
            errors = []

            def send():
                try:
                    s.sendall(payload)
                    s.shutdown(socket.SHUT_WR)
                except OSError as e:
                    errors.append(e)

            t0 = time.monotonic()
            sender = threading.Thread(target=send, daemon=True)
            sender.start()
            got = recv_exactly(s, size)
            took = time.monotonic() - t0
            sender.join(10)
            check(not errors, "sending: %r" % errors)
            check(s.recv(1) == b"", "the relay passed the end of stream back")
        check(got == payload, "32 MiB came back byte-identical")
        st = relay.stats()
        print("   32 MiB echoed in %.2f s through %.1f ms each way; largest queue %d bytes" % (
            took, ONE_WAY_MS, st["held_peak"]))
        # Reads stop above 4 MiB queued: one more read (64 KiB) at most.
        check(st["held_peak"] <= 4 * 1024 * 1024 + 64 * 1024,
              "queue bounded by backpressure: %d" % st["held_peak"])
        # Forwarding one 64 KiB read per delay would take 512 * 12.5 ms.
        check(took < 512 * ONE_WAY_MS / 1000, "not one chunk per delay: %.2f s" % took)
        wait_for("the link closed", lambda: relay.stats()["links"] == 0, 10)


def _refused(relay, commands):
    """Each control command is answered with an error."""
    for bad in commands:
        try:
            relay.ctl(bad)
        except RuntimeError as e:
            check("error" in str(e), "%r answered %s" % (bad, e))
        else:
            raise AssertionError("%r was accepted" % bad)


def test_rate_and_loss(rig):
    """The rate cap and the loss of a WAN: 1 MiB echoed through a cap of
    8000 kbit/s (1 MB/s each way) takes about a second, not less, and comes
    back byte-identical; with 10 % of segments lost, about a tenth of the
    segments counted are lost, and an echo that lost one takes a
    retransmission timeout (200 ms and a round trip) more, in order."""
    size = 1024 * 1024
    payload = random.Random(5).randbytes(size)
    with EchoServer() as echo:
        relay = Relay(rig, echo.port, rate_kbit=8000)
        with connect(relay.port, timeout=60) as s:
            t0 = time.monotonic()
            sender = threading.Thread(target=lambda: s.sendall(payload), daemon=True)
            sender.start()
            got = recv_exactly(s, size)
            took = time.monotonic() - t0
            sender.join(10)
        print("   1 MiB echoed through 8000 kbit/s each way in %.2f s" % took)
        check(got == payload, "byte-identical under the cap")
        check(took >= 1.0, "the cap held: %.2f s for 1 MiB at 1 MB/s" % took)
        check(took < 4.0, "not far slower than the cap: %.2f s" % took)
        relay.set_rate(0)
        relay.set_delay(1.0)
        relay.set_loss(10)
        st0 = relay.stats()
        check(st0["rate_kbit"] == 0 and st0["loss_pct"] == 10.0, "control: %r" % st0)
        rtts = echo_rtts_ms(relay.port, 150)
        st = relay.stats()
        segments, lost = st["segments"] - st0["segments"], st["lost"] - st0["lost"]
        slow = [x for x in rtts if x >= 200]
        print("   150 echoes at 10 %% loss: %d of %d segments lost, %d echoes slow (%s)" % (
            lost, segments, len(slow), summary(rtts)))
        check(segments >= 300, "every echo counted both ways: %d segments" % segments)
        check(0.04 * segments <= lost <= 0.18 * segments, "about 10 %% lost: %d of %d" % (
            lost, segments))
        check(slow and len(slow) <= lost, "an echo with a lost segment waits a timeout: %d slow, "
              "%d lost" % (len(slow), lost))
        check(min(slow) >= 202, "the timeout is 200 ms and a round trip: %.1f ms" % min(slow))
        check(len(rtts) - len(slow) >= 100 and min(rtts) >= 2.0, "the others: %s" % summary(rtts))
    _refused(relay, ("rate -1", "rate abc", "loss 101", "loss -0.5", "loss"))
    for argv in (["--loss", "150"], ["--rate-kbit", "-5"], ["--seed", "0"]):
        r = subprocess.run([harness.exe("godwit-relay"), "--listen", "127.0.0.1:0", "--to",
                            "127.0.0.1:1"] + argv, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=10)
        check(r.returncode == 2, "%r refused (usage): %d" % (argv, r.returncode))


def _cpu_seconds(pid):
    """User plus system CPU time of a process, from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _session_line(proc, timeout):
    """The next line psql prints, or None if none comes within timeout."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline().decode().strip() if ready else None


def _session_query(proc, sql, timeout):
    proc.stdin.write(sql.encode() + b";\n")
    proc.stdin.flush()
    return _session_line(proc, timeout)


def test_partition_hold(rig):
    pg = rig.cluster("pg")
    with EchoServer() as echo:
        relay = Relay(rig, echo.port, delay_ms=ONE_WAY_MS)
        pgrelay = Relay(rig, pg.port, delay_ms=ONE_WAY_MS)
        session = subprocess.Popen(psql_argv(pgrelay.port, "-f", "-"), stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            check(_session_query(session, "SELECT 'ready'", 10) == "ready", "session through relay")
            pgrelay.partition()
            # A query on an open session waits for the heal.
            check(_session_query(session, "SELECT 41", 2) is None,
                  "a query on an open session did not complete while partitioned")
            pgrelay.heal()
            check(_session_line(session, 10) == "41", "the held query completed after heal")
        finally:
            session.stdin.close()
            try:
                session.wait(10)
            except subprocess.TimeoutExpired:
                session.kill()
                session.wait()
        check(session.returncode == 0, "psql session ended cleanly: %r" % session.stderr.read())
        with connect(relay.port) as s:
            s.sendall(b"before")
            check(recv_exactly(s, 6) == b"before", "echo before the partition")
            relay.partition()
            pgrelay.partition()
            s.sendall(b"during")
            # A new connection is accepted but goes nowhere.
            late = connect(relay.port)
            late.sendall(b"late")
            # A new PostgreSQL session cannot even start.
            q = subprocess.Popen(psql_argv(pgrelay.port, "-c", "SELECT 42"),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                cpu0 = _cpu_seconds(relay.proc.proc.pid)
                time.sleep(2)
                cpu = _cpu_seconds(relay.proc.proc.pid) - cpu0
                check(cpu < 0.5, "holding costs no CPU: %.2f s in 2 s" % cpu)
                for sock, what in ((s, "open connection"), (late, "new connection")):
                    sock.settimeout(0.2)
                    try:
                        got = sock.recv(100)
                        raise AssertionError("%s got %r while partitioned" % (what, got))
                    except socket.timeout:
                        pass
                    sock.settimeout(10)
                check(q.poll() is None, "the query did not complete while partitioned")
                st = relay.stats()
                check(st["partitioned"] == 1 and st["links"] == 2 and st["held"] == 10,
                      "both links held, 10 bytes in the relay: %r" % st)
                t0 = time.monotonic()
                relay.heal()
                pgrelay.heal()
                check(recv_exactly(s, 6) == b"during", "held bytes delivered after heal")
                check(recv_exactly(late, 4) == b"late", "held connection connected after heal")
                took = time.monotonic() - t0
                out, err = q.communicate(timeout=20)
            finally:
                late.close()
                if q.poll() is None:
                    q.kill()
                    q.wait()
            check(q.returncode == 0 and out.decode().strip() == "42",
                  "query completed after heal: %r %r" % (out, err))
            print("   held echo answered %.1f ms after heal" % (took * 1000))
            s.sendall(b"after")
            check(recv_exactly(s, 5) == b"after", "echo after heal")
        st = relay.stats()
        check(st["resets"] == 0 and st["refused"] == 0, "nothing reset or refused: %r" % st)


def _is_reset(sock):
    """True if the peer reset (or closed) the connection."""
    sock.settimeout(5)
    try:
        sock.sendall(b"x")
        return sock.recv(10) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def _connection_refused(port):
    """True if a new connection is reset, possibly before connect() returns."""
    try:
        s = connect(port)
    except ConnectionResetError:
        return True
    with s:
        return _is_reset(s)


def test_partition_drop(rig):
    with EchoServer() as echo:
        relay = Relay(rig, echo.port, delay_ms=1, partition_mode="drop")
        with connect(relay.port) as s:
            s.sendall(b"hi")
            check(recv_exactly(s, 2) == b"hi", "echo before the partition")
            relay.partition()
            check(_is_reset(s), "open connection reset by the partition")
        check(_connection_refused(relay.port), "new connection refused while partitioned")
        st = relay.stats()
        check(st["links"] == 0 and st["refused"] == 1 and st["resets"] >= 2,
              "counters after drop: %r" % st)
        relay.heal()
        check(min(echo_rtts_ms(relay.port, 3)) >= 2, "connections work again after heal")


def test_many_connections(rig):
    n = 50
    pg = rig.cluster("pg")
    with EchoServer() as echo:
        relay = Relay(rig, echo.port, delay_ms=ONE_WAY_MS)
        socks = [connect(relay.port) for _ in range(n)]
        try:
            wait_for("%d links" % n, lambda: relay.stats()["links"] == n, 10)
            errors = []
            barrier = threading.Barrier(n)

            def talk(i, s):
                try:
                    barrier.wait(10)
                    for j in range(5):
                        msg = ("conn %d msg %d|" % (i, j)).encode() * 50
                        s.sendall(msg)
                        got = recv_exactly(s, len(msg))
                        if got != msg:
                            errors.append("conn %d got another connection's bytes" % i)
                except Exception as e:  # reported below
                    errors.append("conn %d: %r" % (i, e))

            t0 = time.monotonic()
            threads = [threading.Thread(target=talk, args=(i, s)) for i, s in enumerate(socks)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            took = time.monotonic() - t0
            check(not errors, "; ".join(errors[:5]))
            print("   %d connections x 5 echoes in %.2f s" % (n, took))
            # Serially that would be 250 round trips of 25 ms.
            check(took < 250 * 2 * ONE_WAY_MS / 1000 / 2, "connections run concurrently")
        finally:
            for s in socks:
                s.close()
        wait_for("all links closed", lambda: relay.stats()["links"] == 0, 10)
    # And 50 concurrent PostgreSQL sessions, each a second long.
    pgrelay = Relay(rig, pg.port, delay_ms=ONE_WAY_MS)
    t0 = time.monotonic()
    procs = [subprocess.Popen(psql_argv(pgrelay.port, "-c", "SELECT %d FROM pg_sleep(1)" % i),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(n)]
    try:
        outs = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    took = time.monotonic() - t0
    for i, (p, (out, err)) in enumerate(zip(procs, outs)):
        check(p.returncode == 0 and out.decode().strip() == str(i),
              "session %d: %r %r" % (i, out, err))
    print("   %d concurrent psql sessions of 1 s each in %.2f s" % (n, took))
    check(took < n / 2, "sessions ran concurrently: %.1f s" % took)
    st = pgrelay.stats()
    check(st["accepted"] == n and st["connect_failed"] == 0, "all relayed: %r" % st)


def test_control_and_exit(rig):
    # Nobody listens on `to`: the client is reset and the failure counted.
    nobody = harness.free_port()
    relay = Relay(rig, nobody)
    check(_connection_refused(relay.port), "client reset when the server refuses")
    wait_for("connect failure counted", lambda: relay.stats()["connect_failed"] == 1, 5)
    _refused(relay, ("delay", "delay -1", "delay abc", "delay 1e9", "partition sideways",
                     "heal now", "bogus", "stats please"))
    relay.set_delay(2.25)
    check(relay.stats()["delay_ms"] == 2.25, "delay changed")
    # Several commands on one connection, each answered in order.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.settimeout(10)
        c.connect(relay.control)
        c.sendall(b"partition\nstats\nheal\n")
        c.shutdown(socket.SHUT_WR)
        reply = b""
        while True:
            got = c.recv(4096)
            if not got:
                break
            reply += got
    lines = reply.decode().splitlines()
    check(len(lines) == 3 and lines[0].startswith("ok partitioned") and
          "partitioned=1" in lines[1] and lines[2] == "ok healed", "pipelined: %r" % lines)
    # A mode given to one partition is for that partition only.
    relay.partition("drop")
    check(relay.stats()["mode"] == "drop", "drop partition under way")
    relay.heal()
    relay.partition()
    check(relay.stats()["mode"] == "hold", "the next plain partition holds again")
    relay.heal()
    # Bad arguments are refused before anything starts.
    for argv in (["--listen", "nowhere", "--to", "127.0.0.1:1"],
                 ["--listen", "127.0.0.1:0", "--to", "127.0.0.1:1", "--delay-ms", "-3"],
                 ["--listen", "127.0.0.1:0"]):
        r = subprocess.run([harness.exe("godwit-relay")] + argv, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=10)
        check(r.returncode != 0, "%r refused" % argv)
    check(relay.stop() == 0, "exit 0 on SIGTERM")
    # SIGINT with a link open and bytes held: a clean exit (the rig checks
    # the log for leaks), the control socket removed.
    with EchoServer() as echo:
        held = Relay(rig, echo.port, delay_ms=ONE_WAY_MS)
        with connect(held.port) as s:
            s.sendall(b"warm")
            check(recv_exactly(s, 4) == b"warm", "echo through the relay")
            held.partition()
            s.sendall(b"x" * 100000)
            wait_for("bytes held", lambda: held.stats()["held"] == 100000, 10)
            held.proc.signal(signal.SIGINT)
            rc = held.proc.wait(10)
            check(rc == 0, "exit 0 on SIGINT, got %r" % rc)
            check(s.recv(10) == b"", "the open connection was closed")
    check(not os.path.exists(held.control), "control socket removed")


if __name__ == "__main__":
    harness.run([test_postgres_latency, test_echo_latency, test_bulk_copy_byte_identical,
                 test_echo_bulk_backpressure, test_partition_hold, test_partition_drop,
                 test_many_connections, test_rate_and_loss, test_control_and_exit])
