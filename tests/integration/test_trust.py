# ctest: one entry per case
"""What an allow-listed agent key, a stolen coordinator CURVE key and hostile
strings can and cannot do to the coordinator (docs/protocol.md, "Trust").
The attacks use godwit-rawpeer (harness.RawPeer): the real transport with an
allow-listed key, sending hand-built messages.

- no message an agent can forge stops or fences the coordinator: a
  STALE_EPOCH refusal of a command never sent, refusals of commands it was
  sent without proof, with a forged claim or with the coordinator's own
  claim; hellos stating epochs 1..5 (the coordinator's among them) before
  the coordinator sent anything, bare or with forged claims, across three
  restarts. Each is logged, counted, ignored, and the agent marked suspect.
  (A genuine twin or newer coordinator still fences: test_link.py and
  test_cutover_faults.py.)
- a thief of the coordinator's CURVE key without its signing key cannot
  raise an agent's epoch, so cannot fence out the real coordinator;
- an agent's role is its key's: a hello claiming another is refused;
- strings from agents reach the log and `status` escaped, one line each;
- refusals of unknown keys and plaintext clients are logged once per peer
  and window, with the count of what was not logged;
- the journal is 0600; a message over max_message is counted and logged as
  a bad message, the connection kept.
"""

import json
import os
import re
import stat
import subprocess
import time

import harness
from harness import Agent, Coordinator, RawPeer, check, exe, wait_for


def connected(coord, name):
    a = coord.agent(name)
    return a if a["state"] == "connected" else None


def hello(p, role="ROLE_PROXY", epoch=0, **extra):
    """A hello as an agent sends it, from a RawPeer."""
    p.send(hello__role=role, hello__protocol_version=1, hello__agent_version="rogue-1",
           hello__hostname="rogue-host", hello__highest_epoch=epoch, **extra)


def forged_claim(body, epoch):
    """Claim fields for body (hello, result, command) that no coordinator
    signed: the right shape, random bytes."""
    return {body + "__claim__epoch": epoch,
            body + "__claim__instance": os.urandom(16).hex(),
            body + "__claim__signature": os.urandom(64).hex()}


def claim_of(msg, body, to):
    """The claim a received message carries (body: its prefix), as fields
    for another message (to: its body)."""
    prefix = body + ".claim."
    return {to + "__claim__" + k[len(prefix):]: v for k, v in msg.items()
            if k.startswith(prefix) and k != prefix[:-1]}


# A RawPeer sends no reports: the tests that have the coordinator send it
# commands use QUIET (no automatic pings, so every command it gets is one the
# test asked for; not marked lost between steps on a slow machine, since a
# lost agent gets no command).
QUIET = {"ping_interval": "60s", "lost_after": "60s"}


def suspects(coord):
    return coord.status()["coordinator"]["suspect_messages"]


def ctl_ping(rig, coord, name):
    """`godwitctl ping NAME` in the background: a command the coordinator
    then awaits from that agent."""
    return rig.spawn("godwitctl-ping", [exe("godwitctl"), "--socket", coord.socket, "ping",
                                        name])


def refuse_next(rig, coord, p, **fields):
    """Makes the coordinator send p a command (a godwitctl ping), refuses it
    as STALE_EPOCH with fields, and returns the command and godwitctl's
    exit code."""
    ping = ctl_ping(rig, coord, "rogue")
    cmd = p.recv(5, body="command")
    check(cmd is not None, "the coordinator sent a command")
    p.send(result__command_id=cmd["command.id"], result__status="STATUS_STALE_EPOCH",
           result__epoch=cmd["command.epoch"], **fields)
    return cmd, ping.wait(15)


# ---- no forged message stops the coordinator --------------------------------

def test_forged_stale_epoch_result(rig):
    """Refusals for a newer coordinator that prove nothing: the coordinator
    runs on, marks the agent suspect and counts them."""
    coord = Coordinator(rig, ["rogue"], roles={"rogue": "proxy"},
                        options=QUIET).start()
    p = RawPeer(rig, "rogue", coordinator=coord)
    hello(p)
    wait_for("rogue connected", lambda: connected(coord, "rogue"), 10)
    epoch = coord.status()["coordinator"]["epoch"]

    # A refusal of a command that was never sent.
    p.send(result__command_id="%d.999" % epoch, result__status="STATUS_STALE_EPOCH",
           result__epoch=epoch, result__highest_epoch=epoch + 1)
    wait_for("first suspect message counted", lambda: suspects(coord) == 1, 10)
    a = coord.agent("rogue")
    check(a["suspect"] and a["suspect"]["count"] == 1 and "never sent" in a["suspect"]["reason"],
          "marked suspect, with the reason: %r" % a["suspect"])

    # Refusals of commands it was sent: no claim, a forged claim, the
    # coordinator's own claim (genuine, and proving nothing newer).
    cmd, rc = refuse_next(rig, coord, p, result__highest_epoch=epoch + 1)
    check(rc == 1, "godwitctl ping failed on the refusal: rc %r" % rc)
    wait_for("no claim counted", lambda: suspects(coord) == 2, 10)
    check("without a claim" in coord.agent("rogue")["suspect"]["reason"], "reason: no claim")
    refuse_next(rig, coord, p, result__highest_epoch=epoch + 1,
                **forged_claim("result", epoch + 1))
    wait_for("forged claim counted", lambda: suspects(coord) == 3, 10)
    check("does not verify" in coord.agent("rogue")["suspect"]["reason"], "reason: forged")
    ping = ctl_ping(rig, coord, "rogue")
    cmd = p.recv(5, body="command")
    own = claim_of(cmd, "command", "result")
    check(own.get("result__claim__epoch") == str(epoch), "commands carry our claim: %r" % own)
    p.send(result__command_id=cmd["command.id"], result__status="STATUS_STALE_EPOCH",
           result__epoch=epoch, result__highest_epoch=epoch, **own)
    ping.wait(15)
    wait_for("own claim counted", lambda: suspects(coord) == 4, 10)
    check("not newer" in coord.agent("rogue")["suspect"]["reason"], "reason: not newer")

    # Still the same coordinator, never fenced, still talking to it.
    st = coord.status()
    check(coord.proc.alive() and st["coordinator"]["epoch"] == epoch, "still running")
    a = coord.agent("rogue")
    check(a["state"] == "connected" and a["suspect"]["count"] == 4, "suspect: %r" % a["suspect"])
    check(a["highest_epoch"] <= epoch, "no unproven epoch shown as the agent's: %r" %
          a["highest_epoch"])
    log = coord.proc.log()
    check("fenced" not in log, "never fenced")
    check("marked suspect" in log, "the suspect messages are logged")
    r = coord.ctl("status")
    check(r.returncode == 1 and b"SUSPECT (4 messages" in r.stdout,
          "godwitctl status shows it (exit 1): %r" % r.stdout)


def test_hello_epochs_without_proof(rig):
    """Hellos stating epochs 1..5, bare or with forged claims, sent before
    the coordinator sent the agent anything, at three starts (epochs 1, 2,
    3): none stops it. A genuine claim shown back (its own, or the previous
    start's) is no offence either."""
    coord = Coordinator(rig, ["rogue"], roles={"rogue": "proxy"},
                        options=QUIET)
    previous = None
    for start in (1, 2, 3):
        coord.start()
        epoch = coord.status()["coordinator"]["epoch"]
        check(epoch == start, "start %d runs epoch %d" % (start, epoch))
        p = RawPeer(rig, "rogue", coordinator=coord)
        for e in range(1, 6):
            hello(p, epoch=e)
            hello(p, epoch=e, **forged_claim("hello", e))
        if previous:  # the previous start's genuine claim: older, proves nothing
            hello(p, epoch=epoch - 1, **previous)
        expected = sum(1 for e in range(1, 6) if e >= epoch) + 5
        wait_for("%d suspect hellos counted" % expected, lambda: suspects(coord) >= expected, 10)
        # This start's own claim, shown back after a command carried it.
        ping = ctl_ping(rig, coord, "rogue")
        cmd = p.recv(5, body="command")
        p.send(result__command_id=cmd["command.id"], result__status="STATUS_OK",
               result__epoch=epoch, result__highest_epoch=epoch,
               result__ping__nonce=cmd["command.ping.nonce"])
        check(ping.wait(15) == 0, "the ping answered")
        previous = claim_of(cmd, "command", "hello")
        hellos = coord.agent("rogue")["hellos"]
        hello(p, epoch=epoch, **previous)
        wait_for("hello with our claim taken",
                 lambda: coord.agent("rogue")["hellos"] == hellos + 1, 10)
        check(suspects(coord) == expected, "%d suspect messages, not %d" % (
            expected, suspects(coord)))
        check(coord.proc.alive(), "not stopped")
        check("fenced" not in coord.proc.log(), "never fenced")
        p.close()
        check(coord.proc.stop() == 0, "start %d stops cleanly" % start)


# ---- a stolen coordinator CURVE key -----------------------------------------

def test_stolen_curve_key_cannot_raise_epoch(rig):
    """A fake coordinator with the real one's CURVE key (not its signing
    key), where the agent dials, cannot move the agent's epoch: commands of
    a newer epoch with a forged claim, with the agent's own genuine claim,
    or without one are refused (BAD_CLAIM) and the epoch file is untouched.
    It can send commands of the agent's current epoch with the claim the
    agent's hello showed it (what a CURVE key thief gets). The real
    coordinator comes back and the agent follows it."""
    coord = Coordinator(rig, ["a1"], roles={"a1": "proxy"}).start()
    agent = Agent(rig, "a1", coord, role="proxy", interval="500ms").start()
    wait_for("epoch 1 adopted", lambda: coord.agent("a1")["highest_epoch"] == 1, 10)
    check(coord.proc.stop() == 0, "clean stop")
    epoch_file = os.path.join(agent.dir, "state", "epoch")
    with open(epoch_file) as f:
        before = f.read()

    fake = RawPeer(rig, "coordinator", port=coord.port)
    h = fake.recv(15, body="hello")
    check(h and h.get("hello.highest_epoch") == "1" and h.get("hello.claim.signature"),
          "the agent's hello shows its epoch and claim: %r" % h)
    genuine = claim_of(h, "hello", "command")

    def command(cid, epoch, **claim):
        fake.send(command__id=cid, command__epoch=epoch,
                  command__deadline_unix_ms=int(time.time() * 1000) + 60000,
                  command__ping__nonce=7, **claim)
        r = fake.recv(5, body="result")
        check(r is not None, "an answer to %s" % cid)
        return r

    forged = dict(forged_claim("command", 9))
    forged["command__claim__instance"] = h["hello.claim.instance"]
    for cid, claim in (("9.1", forged), ("9.2", genuine), ("9.3", {})):
        r = command(cid, 9, **claim)
        check(r["result.status"] == "STATUS_BAD_CLAIM", "%s refused: %r" % (cid, r))
    with open(epoch_file) as f:
        check(f.read() == before, "the epoch file is untouched")
    r = command("1.900", 1, **genuine)
    check(r["result.status"] == "STATUS_OK" and r.get("result.ping.nonce") == "7",
          "a command of the current epoch with the shown claim runs: %r" % r)
    check(fake.close() == 0, "fake coordinator done")

    coord.start()
    wait_for("the agent follows the real coordinator's epoch 2",
             lambda: coord.agent("a1")["highest_epoch"] == 2, 15)
    check(coord.proc.alive() and "fenced" not in coord.proc.log(), "not fenced")
    log = agent.proc.log()
    check("does not verify" in log and "is not its claim's" in log and "no epoch claim" in log,
          "the agent logged each refusal")


# ---- roles bound to keys -----------------------------------------------------

def test_role_bound_to_key(rig):
    """db1's key may take only the source role; its agent says target: the
    hello is refused with the reason, in the log, in status and in plan
    check, and nothing else it sends is taken. px1's key may take proxy: a
    hello claiming source or no role is refused, one claiming proxy taken."""
    coord = Coordinator(rig, ["db1", "px1"], roles={"db1": "source", "px1": "proxy"},
                        options=QUIET).start()
    Agent(rig, "db1", coord, role="target", interval="500ms").start()
    a = wait_for("db1 refused", lambda: (lambda a: a if a["state"] == "refused" else None)(
        coord.agent("db1")), 10)
    check("claims role target" in a["refused"] and "only source" in a["refused"],
          "refusal reason: %r" % a["refused"])
    check(a["role"] == "unknown" and a["allowed_roles"] == ["source"], "no role bound: %r" % a)
    time.sleep(1.5)  # reports every 500 ms: none is taken
    a = coord.agent("db1")
    check(a["state"] == "refused" and a["reports"] == 0, "no report taken: %r" % a["reports"])
    st = coord.status()
    check(st["coordinator"]["refused"]["role"] >= 1, "counted: %r" % st["coordinator"]["refused"])
    check("agent db1: hello claims role target; its key may take only source" in
          coord.proc.log(), "the refusal is logged")
    r = coord.ctl("ping", "db1", check_rc=False)
    check(r.returncode == 1 and b"not connected" in r.stderr, "no commands to it")
    r = coord.ctl("status")
    check(r.returncode == 1 and b"REFUSED: hello claims role target" in r.stdout,
          "godwitctl status shows it: %r" % r.stdout)

    plan = rig.path("plan.yaml")
    with open(plan, "w") as f:
        f.write("migrations:\n"
                "  - name: shop\n"
                "    source: {agent: db1, database: shop}\n"
                "    target: {agent: px1, database: shop}\n"
                "    replication: {peer: blue}\n"
                "    cutover: {reverse: off}\n")
    r = coord.ctl("plan", "check", plan, "--json", check_rc=False)
    rep = json.loads(r.stdout)
    check("migrations" in rep, "a plan check report: %r" % rep)
    codes = [(f["object"], f["code"]) for m in rep["migrations"] for f in m["findings"]]
    check(("db1", "agent_role_refused") in codes, "plan check names the refusal: %r" % codes)

    p = RawPeer(rig, "px1", coordinator=coord)
    hello(p, role="ROLE_SOURCE")
    wait_for("px1 refused as source", lambda: coord.agent("px1")["state"] == "refused", 10)
    hello(p, role="ROLE_PROXY")
    a = wait_for("px1 taken as proxy", lambda: connected(coord, "px1"), 10)
    check(a["role"] == "proxy" and a["refused"] is None, "bound role proxy: %r" % a)
    hello(p, role="ROLE_UNSPECIFIED")
    a = wait_for("px1 refused without a role", lambda: (lambda a: a if a["state"] == "refused"
                                                        else None)(coord.agent("px1")), 10)
    check("no known role" in a["refused"] and a["role"] == "unknown", "reason: %r" % a["refused"])
    check(coord.status()["coordinator"]["refused"]["role"] >= 3, "each refusal counted")


def test_allowlist_entry_needs_roles(rig):
    """No key gets every role by default: an allowed NAME.pub without a
    roles line stops the coordinator at start, naming the file and what to
    add. godwitctl keygen --roles writes the line, and refuses a role that
    does not exist."""
    coord = Coordinator(rig, ["old"], roles={"old": None})
    coord.start(wait=False)
    rc = coord.proc.wait(15)
    log = coord.proc.log()
    check(rc != 0, "refused to start")
    check(os.path.join(coord.allowed, "old.pub") in log and "roles: missing" in log,
          "names the file and the missing line: %s" % log[-600:])
    check(not os.path.exists(coord.socket), "never listened")

    keys = rig.path("more-keys")
    r = subprocess.run([exe("godwitctl"), "keygen", "db9", "--dir", keys, "--roles", "sourse"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    check(r.returncode == 2 and b'unknown role "sourse"' in r.stderr and
          not os.path.exists(os.path.join(keys, "db9.key")), "a bad role: usage error, no file")
    r = subprocess.run([exe("godwitctl"), "keygen", "db9", "--dir", keys, "--roles",
                        "source,target"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    check(r.returncode == 0, "keygen --roles: %r" % r.stderr)
    with open(os.path.join(keys, "db9.pub")) as f:
        check("\nroles: source, target\n" in f.read(), "the roles line is written")

    coord.allow("old", "proxy")
    coord.start()
    check(coord.agent("old")["allowed_roles"] == ["proxy"], "starts once the line is there")


# ---- hostile strings, noisy peers, files --------------------------------------

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z coordinator (debug|info|warn|error): ")


def test_log_injection_escaped(rig):
    """Newlines, carriage returns and escape sequences in an agent's hello,
    event and report come out escaped: each log line is one real line, and
    godwitctl status prints no control character."""
    coord = Coordinator(rig, ["rogue"], roles={"rogue": "proxy"}, options=QUIET).start()
    p = RawPeer(rig, "rogue", coordinator=coord)
    p.send(hello__role="ROLE_PROXY", hello__protocol_version=1,
           hello__agent_version="1.0\n2030 FORGED-VER",
           hello__hostname="host\x1b]0;title\x07")
    wait_for("rogue connected", lambda: connected(coord, "rogue"), 10)
    message = ("ok\n2030-01-01T00:00:00.000Z coordinator error: agent blue: FORGED-EVENT "
               "\x1b[31mred\x1b[0m\r")
    p.send(event__severity="SEVERITY_ERROR", event__code="db.unreachable\nFORGED-CODE",
           event__message=message, event__object="shop\r\nFORGED-OBJECT")
    pg_error = "down\n    database: FORGED-STATUS \x1b[2J\u202e"
    p.send(report__seq=1, report__postgres__reachable="false", report__postgres__error=pg_error)
    wait_for("event logged", lambda: "FORGED-EVENT" in coord.proc.log(), 10)
    wait_for("report taken", lambda: coord.agent("rogue")["reports"] >= 1, 10)

    log = coord.proc.log()
    for bad in ("\x1b", "\r", "\x07", "\u202e"):
        check(bad not in log, "no %r in the log" % bad)
    for line in log.splitlines():
        if "FORGED" in line:
            check(LOG_LINE.match(line) and not line.startswith("2030"),
                  "a forged line stands alone: %r" % line)
    check("event db.unreachable\\nFORGED-CODE: ok\\n2030-01-01T00:00:00.000Z coordinator error: "
          "agent blue: FORGED-EVENT \\x1b[31mred\\x1b[0m\\r on shop\\r\\nFORGED-OBJECT" in log,
          "the event is one escaped line")
    check("version 1.0\\n2030 FORGED-VER," in log,
          "the hello's version is escaped")

    r = coord.ctl("status")
    out = r.stdout.decode("utf-8", "replace")
    check("\x1b" not in out and "\u202e" not in out and "\r" not in out,
          "no control character in godwitctl status")
    check("database: down\\n    database: FORGED-STATUS \\x1b[2J\\u{202e}" in out,
          "the database error is escaped: %s" % out)
    check(not any(l.startswith("    database: FORGED") for l in out.splitlines()),
          "and forges no line")
    a = json.loads(coord.ctl("status", "--json").stdout)["agents"][0]
    check(a["postgres"]["error"] == pg_error and a["hostname"] == "host\x1b]0;title\x07",
          "--json keeps the strings as they were (JSON-escaped)")


def test_refusals_rate_limited(rig):
    """A client with an unknown key redialling, and plaintext clients: each
    refusal is counted, but logged once per peer per refusal_log_interval,
    with the count of the others; nothing is lost from the count."""
    coord = Coordinator(rig, ["good"], options={"refusal_log_interval": "5s"}).start()
    # libzmq stops redialling once refused; an attacker's client does not.
    for i in range(8):
        intruder = RawPeer(rig, "intruder", coordinator=coord)
        wait_for("refusal %d" % (i + 1),
                 lambda: coord.status()["coordinator"]["refused"]["unknown_key"] > i, 10,
                 interval=0.02)
        check(intruder.close() == 0, "intruder %d done" % i)
    for _ in range(6):
        subprocess.run([exe("zmq_plain_client"), coord.endpoint, "200"], stdout=subprocess.PIPE)
    wait_for("6 failed handshakes",
             lambda: coord.status()["coordinator"]["refused"]["handshake_failed"] >= 6, 10)

    def balance(line_re, key_re, total_key):
        """Lines logged + counts carried on later lines + counts reported at
        the end of a window == refusals counted; (lines, carried, reported,
        total) once they agree."""
        log = coord.proc.log()
        lines = re.findall(r"warn: " + line_re + r"[^\n]*", log)
        carried = sum(int(n) for l in lines
                      for n in re.findall(r"and (\d+) more of the same not logged before", l))
        reported = sum(int(n) for n in re.findall(
            r"warn: " + key_re + r": (\d+) more of the same not logged in the last 5 s", log))
        total = coord.status()["coordinator"]["refused"][total_key]
        return len(lines) + carried + reported == total and (len(lines), carried, reported, total)

    def zap_balance():
        return balance(r"zap: refused 127\.0\.0\.1: ", r"127\.0\.0\.1", "unknown_key")

    def plain_balance():
        # Every failed handshake (the unknown keys' too), by kind of failure:
        # libzmq 4.3 names our endpoint there, not the peer.
        return balance(r"refused a connection on tcp://\S+: handshake failed",
                       r"tcp://\S+: handshake failed(?:: [^\n:]*)?", "handshake_failed")

    zap = wait_for("every unknown-key refusal accounted for", zap_balance, 30)
    plain = wait_for("every plaintext refusal accounted for", plain_balance, 30)
    print("   unknown key: %d lines, %d counted on a later line, %d in reports, of %d refusals"
          % zap)
    print("   failed handshakes: %d lines, %d counted on a later line, %d in reports, of %d"
          % plain)
    check(zap[0] < zap[3] and zap[2] > 0, "unknown-key refusals were suppressed and reported")
    check(plain[0] < plain[3], "plaintext refusals were suppressed")
    check(coord.status()["coordinator"]["refused"]["log_lines_suppressed"] > 0, "and counted")


def test_journal_private(rig):
    """The journal holds the plans: it and its side files are 0600 even
    under a umask of 022, and a journal left readable by an older version
    is tightened, with a warning."""
    old = os.umask(0o022)
    try:
        coord = Coordinator(rig, ["a1"]).start()
    finally:
        os.umask(old)
    files = [coord.journal + s for s in ("", "-wal", "-shm", ".lock")
             if os.path.exists(coord.journal + s)]
    check(len(files) >= 3, "journal, its write-ahead log and lock exist: %r" % files)
    for f in files:
        mode = stat.S_IMODE(os.stat(f).st_mode)
        check(mode == 0o600, "%s is mode %o" % (f, mode))
    check(coord.proc.stop() == 0, "clean stop")
    os.chmod(coord.journal, 0o644)
    coord.start()
    check(stat.S_IMODE(os.stat(coord.journal).st_mode) == 0o600, "tightened to 0600")
    check("was mode 0644 (readable by others); now 0600" in coord.proc.log(), "and said so")


def test_oversize_message_counted(rig):
    """A message over max_message is counted and logged as a bad message,
    naming the agent; the connection stays."""
    coord = Coordinator(rig, ["rogue"], roles={"rogue": "proxy"},
                        options=dict(QUIET, max_message="64KiB")).start()
    p = RawPeer(rig, "rogue", coordinator=coord)
    hello(p)
    wait_for("rogue connected", lambda: connected(coord, "rogue"), 10)
    check(p.send_size(100 * 1024) == "sent", "sent")
    wait_for("counted", lambda: coord.status()["coordinator"]["oversize_messages"] == 1, 10)
    st = coord.status()["coordinator"]
    check(st["bad_messages"] == 1, "a bad message: %r" % st["bad_messages"])
    check("agent rogue: bad message (102400 bytes) dropped: over max_message (65536 bytes)" in
          coord.proc.log(), "logged with the agent's name")
    # The same connection goes on: a command reaches it and its answer
    # comes back (a new connection would say hello first).
    ping = ctl_ping(rig, coord, "rogue")
    cmd = p.recv(5, body="command")
    check(cmd is not None, "a command reached it")
    p.send(result__command_id=cmd["command.id"], result__status="STATUS_OK",
           result__epoch=cmd["command.epoch"], result__ping__nonce=cmd["command.ping.nonce"])
    check(ping.wait(15) == 0, "and its answer came back")
    check(coord.agent("rogue")["hellos"] == 1, "on the first connection")


if __name__ == "__main__":
    harness.run([test_forged_stale_epoch_result, test_hello_epochs_without_proof,
                 test_stolen_curve_key_cannot_raise_epoch, test_role_bound_to_key,
                 test_allowlist_entry_needs_roles, test_log_injection_escaped,
                 test_refusals_rate_limited, test_journal_private,
                 test_oversize_message_counted])
