# ctest: one entry per case
"""What a stolen coordinator key can make an agent do (docs/protocol.md,
"Trust"). A fake coordinator (godwit-rawpeer with the coordinator's key)
sends the agent commands no real coordinator would:

- commands whose replication connection names a peer the agent's config
  does not list, or carries the retired host/port/user/passfile fields
  (the old attack: the agent's own passfile sent to a server of the
  attacker's choice): refused with the peer and the config file named, and
  no connection leaves the agent (a listener on the attacker's port sees
  nothing);
- DropObjects, EnsurePublication, SetSubscriptionEnabled and BulkCopy
  naming objects godwit did not create: the application's publication and
  subscription, a publication with a godwit-like name but no marker, a
  physical slot held by pg_receivewal, a test_decoding slot held by
  pg_recvlogical, a pgoutput slot of another database, a slot without a
  godwit name: each refused, each object still there, each holder still
  running;
- and what godwit did create (a publication, a slot held by a reader) is
  still dropped, its holder terminated; an unmarked publication from an
  older godwit is dropped once the statement the error names marks it;
- ImportProfile naming a setting an import profile may not change
  (archive_command: a shell command run by the server) is refused before
  anything is written; an allowed setting's value that tries to break out
  of its quotes is a literal the server refuses; postgresql.auto.conf is
  as it was."""

import os
import select
import socket
import stat
import time

import harness
from harness import PG_BIN, Agent, RawPeer, check, wait_for

# ---- a fake coordinator ----------------------------------------------------


class FakeCoordinator:
    """godwit-rawpeer bound with the coordinator's (stolen) key: the agent
    under test dials it (.endpoint) and it sends what the test says."""

    def __init__(self, rig):
        # Both keys: what the agent does with a command it accepts is the
        # question here (a CURVE key alone gets no command accepted beyond
        # the agent's current epoch: test_trust.py).
        self.peer = RawPeer(rig, "coordinator", signing=True)
        self.endpoint = self.peer.endpoint
        self.epoch = 7
        self.n = 0

    def hello(self):
        msg = self.peer.recv(20, "hello")
        check(msg is not None, "the agent said hello")
        return msg

    def _id(self):
        self.n += 1
        return "%d.%d" % (self.epoch, self.n)

    def send(self, action, **fields):
        """Sends command.<action> with fields (dots as __); returns its id."""
        cid = self._id()
        kw = {"command__id": cid, "command__epoch": self.epoch,
              "command__deadline_unix_ms": int(time.time() * 1000) + 120000}
        for k, v in fields.items():
            kw["command__%s__%s" % (action, k)] = v
        self.peer.send(**kw)
        return cid

    def send_frame(self, body):
        """Sends an Envelope built by hand (bytes) in a godwit frame."""
        frame = b"GW\x01\x00" + len(body).to_bytes(4, "big") + body
        line = self.peer.send_raw(frame)
        check(line == "sent", "raw frame sent: %r" % line)

    def result(self, cid, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self.peer.recv(max(0.1, deadline - time.monotonic()), "result")
            if msg and msg.get("result.command_id") == cid:
                return msg
        raise AssertionError("no result for command %s" % cid)

    def run(self, action, **fields):
        return self.result(self.send(action, **fields))


def failed(res, *words):
    """The result is FAILED and its message holds every word."""
    msg = res.get("result.message", "")
    return res.get("result.status") == "STATUS_FAILED" and all(w in msg for w in words)


def ok(res):
    return res.get("result.status") == "STATUS_OK"


# ---- protobuf by hand (for fields the schema no longer has) ---------------

def _varint(n):
    out = b""
    while True:
        b = n & 0x7f
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def _len(num, payload):
    if isinstance(payload, str):
        payload = payload.encode()
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _int(num, v):
    return _varint(num << 3) + _varint(v)


def old_conn(host, port, user, passfile, dbname, peer=None):
    """A ReplicationConn as older coordinators wrote it: host = 1, port = 2,
    user = 3, passfile = 4 (all reserved now), dbname = 6; peer = 7."""
    b = _len(1, host) + _int(2, port) + _len(3, user) + _len(4, passfile) + _len(6, dbname)
    return b + (_len(7, peer) if peer else b"")


def envelope(cid, epoch, action_num, action, claim):
    """Envelope{version 1, msg_id, command{id, epoch, deadline, claim,
    action}}; claim: (instance, signature) of that epoch."""
    claim_msg = _int(1, epoch) + _len(2, claim[0]) + _len(3, claim[1])
    cmd = (_len(1, cid) + _int(2, epoch) + _int(3, int(time.time() * 1000) + 120000)
           + _len(4, claim_msg) + _len(action_num, action))
    return _int(1, 1) + _int(2, 1 << 40) + _len(12, cmd)


VERIFY_ROLES, VERIFY_SCHEMA = 25, 20   # Command's field numbers


# ---- servers and processes -------------------------------------------------

def listener():
    """A TCP socket listening on a free loopback port: the attacker's
    server. Nothing accepts; a connection attempt makes it readable."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    return s


def nobody_came(sock):
    ready, _, _ = select.select([sock], [], [], 0)
    return not ready


def slot(cluster, name):
    """(type, plugin, database, active_pid) of a slot, None if none."""
    out = cluster.psql("SELECT slot_type || '|' || coalesce(plugin, '') || '|' ||"
                       " coalesce(database, '') || '|' || coalesce(active_pid::text, '')"
                       " FROM pg_catalog.pg_replication_slots WHERE slot_name = '%s'" % name)
    return tuple(out.split("|")) if out else None


def slot_lsn(cluster, name):
    """A slot's restart and confirmed positions: a slot dropped and made
    again under the same name has other ones."""
    return cluster.psql("SELECT restart_lsn || '/' || confirmed_flush_lsn"
                        " FROM pg_catalog.pg_replication_slots WHERE slot_name = '%s'" % name)


def holder(rig, cluster, name, argv):
    """Starts a client of PostgreSQL's own (pg_receivewal, pg_recvlogical)
    holding slot `name`; returns it once the slot is active."""
    p = rig.spawn("holder-" + name, [os.path.join(PG_BIN, argv[0]), "-h", "127.0.0.1", "-p",
                                     str(cluster.port), "-U", "postgres"] + argv[1:])
    wait_for("%s holds %s" % (argv[0], name), lambda: (slot(cluster, name) or "")[3:4] != ("",),
             20)
    return p


def still_held(cluster, name, proc, pid):
    s = slot(cluster, name)
    return s is not None and s[3] == pid and proc.alive()


def passfile(rig):
    """The agent's own passfile: the secret the old attack was after."""
    path = rig.path("agent.pgpass")
    with open(path, "w") as f:
        f.write("*:*:*:postgres:agent-secret\n")
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    return path


# ---- item 2: peers, never addresses ---------------------------------------

def test_unknown_peer_refused_and_nothing_leaves(rig):
    blue, green = rig.cluster("blue"), rig.cluster("green")
    for c in (blue, green):
        c.psql("CREATE DATABASE shop")
    blue.psql("CREATE ROLE godwit_repl WITH REPLICATION LOGIN SUPERUSER")
    blue.psql("CREATE TABLE public.t (id int PRIMARY KEY); CREATE PUBLICATION app_pub FOR TABLE "
              "public.t", db="shop")
    blue.psql("SELECT pg_catalog.pg_create_logical_replication_slot('app_slot', 'pgoutput')",
              db="shop")
    secret = passfile(rig)
    attacker = listener()
    port = attacker.getsockname()[1]
    fc = FakeCoordinator(rig)
    agent = Agent(rig, "green", fc, role="target", cluster=green, extra_pg={"passfile": secret},
                  peers={"blue": blue}).start()
    fc.hello()

    # The old attack: a VerifyRoles carrying host, port, user and the agent's
    # own passfile (fields older coordinators sent). They are no longer in
    # the schema: the agent reads no address from it and names no peer.
    cid = "%d.%d" % (fc.epoch, 1000)
    roles = _len(1, "postgres") + _len(2, old_conn("127.0.0.1", port, "postgres", secret,
                                                   "postgres")) + _len(3, "app")
    fc.send_frame(envelope(cid, fc.epoch, VERIFY_ROLES, roles, fc.peer.claim(fc.epoch)))
    res = fc.result(cid)
    check(failed(res, "peer", agent.config), "old-style connection refused: %r" % res)
    print("   old fields: %s" % res["result.message"])

    # Every command that reaches the other side, naming a peer the agent
    # does not have: refused before anything runs, naming peer and config.
    src = {"source__peer": "evil", "source__dbname": "shop"}
    cases = [
        ("verify_roles", dict(src, database="shop", roles=["app"])),
        ("verify_schema", dict(src, database="shop")),
        ("verify_table", dict(src, database="shop", table__schema="public", table__name="t",
                              subscription="godwit_shop", slot="godwit_shop")),
        ("apply_schema", dict(src, database="shop", section="pre")),
        ("bulk_copy", dict(src, database="shop", name="godwit_shop", publication="godwit_shop",
                           parallelism=1)),
        ("ensure_subscription", dict(src, database="shop", name="godwit_shop",
                                     publication="godwit_shop")),
        ("ensure_subscription", dict(src, database="shop", name="godwit_shop",
                                     publication="godwit_shop", attach="true")),
    ]
    for action, fields in cases:
        res = fc.run(action, **fields)
        check(failed(res, 'peer "evil"', agent.config), "%s refused: %r" % (action, res))
    print("   unknown peer: %s" % res["result.message"])
    res = fc.run("verify_roles", database="shop", roles=["app"], source__dbname="shop")
    check(failed(res, "peer", agent.config), "no peer at all: %r" % res)

    # A known peer with the retired fields beside it: the fields are dead,
    # the peer's own address is used.
    cid = "%d.%d" % (fc.epoch, 1001)
    schema = _len(1, "shop") + _len(2, old_conn("127.0.0.1", port, "postgres", secret, "shop",
                                                peer="blue"))
    fc.send_frame(envelope(cid, fc.epoch, VERIFY_SCHEMA, schema, fc.peer.claim(fc.epoch)))
    res = fc.result(cid)
    check(ok(res) and res.get("result.verify_schema.tables") == "1",
          "a configured peer works, read through its own address: %r" % res)

    # A copy named like no godwit object would drop the source's slot of
    # that name, make a new one and truncate: refused before anything runs.
    before = slot_lsn(blue, "app_slot")
    res = fc.run("bulk_copy", database="shop", name="app_slot", publication="app_pub",
                 parallelism=1, source__peer="blue", source__dbname="shop")
    check(failed(res, "app_slot", "not a name godwit gives"),
          "a copy on another's slot refused: %r" % res)
    check(slot_lsn(blue, "app_slot") == before, "app_slot on blue is the same slot as before")

    check(nobody_came(attacker), "no connection reached the attacker's port")
    attacker.close()
    log = open(agent.proc.log_path).read()
    check("agent-secret" not in log, "the secret is in no log line")


# ---- item 3: drop only what godwit created --------------------------------

def test_drop_refuses_what_godwit_did_not_create(rig):
    blue = rig.cluster("blue")
    blue.psql("CREATE DATABASE shop")
    blue.psql("CREATE TABLE public.t (id int PRIMARY KEY); CREATE TABLE public.u (id int);"
              "CREATE PUBLICATION app_pub FOR TABLE public.t;"
              "CREATE PUBLICATION godwit_lookalike FOR ALL TABLES", db="shop")
    blue.psql("SELECT pg_catalog.pg_create_logical_replication_slot('godwit_shop_td',"
              " 'test_decoding')", db="shop")
    blue.psql("SELECT pg_catalog.pg_create_logical_replication_slot('app_slot', 'pgoutput')",
              db="shop")
    blue.psql("SELECT pg_catalog.pg_create_physical_replication_slot('godwit_shop_phys')")
    blue.psql("SELECT pg_catalog.pg_create_logical_replication_slot('godwit_shop_other',"
              " 'pgoutput')")  # in database postgres
    wal = rig.path("receivewal")
    os.makedirs(wal)
    phys = holder(rig, blue, "godwit_shop_phys", ["pg_receivewal", "-S", "godwit_shop_phys",
                                                  "-D", wal, "-n"])
    td = holder(rig, blue, "godwit_shop_td", ["pg_recvlogical", "-d", "shop", "-S",
                                              "godwit_shop_td", "--start", "-f", "/dev/null",
                                              "-n"])
    phys_pid, td_pid = slot(blue, "godwit_shop_phys")[3], slot(blue, "godwit_shop_td")[3]
    fc = FakeCoordinator(rig)
    agent = Agent(rig, "blue", fc, role="source", cluster=blue).start()
    fc.hello()

    refusals = [
        ({"publication": "app_pub"}, "app_pub"),
        ({"publication": "godwit_lookalike"}, "COMMENT ON PUBLICATION"),
        ({"slot": "godwit_shop_phys"}, "physical"),
        ({"slot": "godwit_shop_td"}, "test_decoding"),
        ({"slot": "godwit_shop_other"}, "database"),
        ({"slot": "app_slot"}, "app_slot"),
        # A good name beside a bad one: nothing of the command runs.
        ({"publication": "godwit_lookalike", "slot": "godwit_shop_td"}, "godwit_lookalike"),
    ]
    for fields, word in refusals:
        res = fc.run("drop_objects", database="shop", **fields)
        check(failed(res, word), "refused %r: %r" % (fields, res))
        print("   %s" % res["result.message"])
    pubs = blue.psql("SELECT string_agg(pubname, ',' ORDER BY pubname) FROM pg_publication",
                     db="shop")
    check(pubs == "app_pub,godwit_lookalike", "both publications still there: %r" % pubs)
    for name in ("godwit_shop_other", "app_slot"):
        check(slot(blue, name) is not None, "%s still there" % name)
    check(still_held(blue, "godwit_shop_phys", phys, phys_pid),
          "the physical slot is there and pg_receivewal still holds it")
    check(still_held(blue, "godwit_shop_td", td, td_pid),
          "the test_decoding slot is there and pg_recvlogical still holds it")

    # EnsurePublication does not take over the application's publication
    # (it would set its tables and mark it ours).
    res = fc.run("ensure_publication", database="shop", name="godwit_lookalike")
    check(failed(res, "godwit_lookalike", "COMMENT ON PUBLICATION"),
          "an unmarked publication is not taken over: %r" % res)
    check(blue.psql("SELECT obj_description(oid, 'pg_publication') IS NULL FROM pg_publication"
                    " WHERE pubname = 'godwit_lookalike'", db="shop") == "t",
          "godwit_lookalike not marked")

    # What godwit creates it drops, terminating a reader of its slot.
    check(ok(fc.run("ensure_publication", database="shop", name="godwit_shop")), "publication")
    check(ok(fc.run("ensure_slot", database="shop", name="godwit_shop_rev")), "pub and slot")
    ours = holder(rig, blue, "godwit_shop_rev", [
        "pg_recvlogical", "-d", "shop", "-S", "godwit_shop_rev", "--start", "-f", "/dev/null",
        "-n", "-o", "proto_version=1", "-o", "publication_names=godwit_shop_rev"])
    res = fc.run("drop_objects", database="shop", publication="godwit_shop")
    check(ok(res), "our publication dropped: %r" % res)
    res = fc.run("drop_objects", database="shop", publication="godwit_shop_rev",
                 slot="godwit_shop_rev")
    check(ok(res), "our publication and held slot dropped: %r" % res)
    check(slot(blue, "godwit_shop_rev") is None, "our slot is gone")
    wait_for("our slot's reader ended", lambda: not ours.alive(), 10)

    # An older godwit's publication (no marker): the error names the
    # statement that marks it; once run, the drop goes through.
    res = fc.run("drop_objects", database="shop", publication="godwit_lookalike")
    msg = res["result.message"]
    stmt = msg[msg.index("COMMENT ON PUBLICATION"):].split(";")[0]
    blue.psql(stmt, db="shop")
    check(ok(fc.run("drop_objects", database="shop", publication="godwit_lookalike")),
          "marked by hand, then dropped")
    check(still_held(blue, "godwit_shop_phys", phys, phys_pid) and
          still_held(blue, "godwit_shop_td", td, td_pid), "the other holders never noticed")


def test_subscription_of_the_application_untouched(rig):
    blue, green = rig.cluster("blue"), rig.cluster("green")
    for c in (blue, green):
        c.psql("CREATE DATABASE shop")
        c.psql("CREATE TABLE public.t (id int PRIMARY KEY)", db="shop")
    blue.psql("CREATE PUBLICATION app_pub FOR TABLE public.t", db="shop")
    conninfo = "host=127.0.0.1 port=%d dbname=shop user=postgres" % blue.port
    green.psql("CREATE SUBSCRIPTION app_sub CONNECTION '%s' PUBLICATION app_pub" % conninfo,
               db="shop")
    green.psql("CREATE SUBSCRIPTION godwit_shop CONNECTION '%s' PUBLICATION app_pub WITH "
               "(create_slot = false, slot_name = NONE, enabled = false, connect = false)"
               % conninfo, db="shop")
    fc = FakeCoordinator(rig)
    Agent(rig, "green", fc, role="target", cluster=green,
          peers={"blue": {"host": "127.0.0.1", "port": blue.port, "user": "postgres"}}).start()
    fc.hello()
    for action, fields in [
            ("drop_objects", {"subscription": "app_sub"}),
            ("drop_objects", {"subscription": "godwit_shop"}),
            ("set_subscription_enabled", {"name": "app_sub", "enabled": "false"}),
            ("set_subscription_enabled", {"name": "godwit_shop", "enabled": "true"}),
            ("ensure_subscription", {"name": "godwit_shop", "publication": "app_pub",
                                     "source__peer": "blue", "source__dbname": "shop"}),
    ]:
        res = fc.run(action, database="shop", **fields)
        check(failed(res), "%s %r refused: %r" % (action, fields, res))
        print("   %s" % res["result.message"])
    subs = green.psql("SELECT string_agg(subname || ':' || subenabled, ',' ORDER BY subname)"
                      " FROM pg_subscription")
    check(subs == "app_sub:true,godwit_shop:false", "both subscriptions as they were: %r" % subs)
    check(slot(blue, "app_sub") is not None, "app_sub's slot on blue still there")


def test_import_profile_only_its_settings(rig):
    green = rig.cluster("green")
    auto = os.path.join(green.data, "postgresql.auto.conf")
    with open(auto) as f:
        before = f.read()
    fc = FakeCoordinator(rig)
    Agent(rig, "green", fc, role="target", cluster=green).start()
    fc.hello()
    res = fc.run("import_profile", **{"database": "postgres", "mode": "MODE_APPLY",
                                      "settings[0]__name": "max_wal_size",
                                      "settings[0]__value": "2GB",
                                      "settings[1]__name": "archive_command",
                                      "settings[1]__value": "touch /tmp/owned"})
    check(failed(res, "archive_command", "is not one an import profile may change",
                 "nothing was done"), "archive_command refused: %r" % res)
    print("   %s" % res["result.message"])
    res = fc.run("import_profile", **{
        "database": "postgres", "mode": "MODE_APPLY", "settings[0]__name": "max_wal_size",
        "settings[0]__value": "2GB'\narchive_command = 'touch /tmp/owned"})
    check(failed(res), "a value breaking out of its quotes is refused by the server: %r" % res)
    print("   %s" % res["result.message"])
    with open(auto) as f:
        after = f.read()
    check(after == before, "postgresql.auto.conf as it was: %r" % after)
    check(green.psql("SHOW archive_command") == "(disabled)" and
          green.psql("SHOW max_wal_size") == "1GB", "nothing changed on the server")
    # What a real coordinator sends is done.
    res = fc.run("import_profile", **{"database": "postgres", "mode": "MODE_READ",
                                      "settings[0]__name": "max_wal_size"})
    check(ok(res), "READ answered: %r" % res)


if __name__ == "__main__":
    harness.run([test_unknown_peer_refused_and_nothing_leaves,
                 test_drop_refuses_what_godwit_did_not_create,
                 test_subscription_of_the_application_untouched,
                 test_import_profile_only_its_settings])
