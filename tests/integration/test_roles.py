# ctest: one entry per case
"""Green keeps blue's owners, grants and roles (design invariant 7).

On blue, an application role (a member of a group role, with settings, a
connection limit and an expiry date) owns a schema, a table, a sequence, a
view and a SECURITY DEFINER function; a second role, whose name holds a
quote, a space and a non-ASCII letter, has fewer rights: column grants, a
row-level security policy, default privileges. The database itself is
owned by the application role and PUBLIC may not connect to it. None of
these roles exist on green.

After `migrate start` reaches streaming, every right of every role on
every object is the same on green as on blue, computed with the same SQL
on both and compared as a whole: has_table_privilege for each table
privilege, has_column_privilege per column, has_sequence_privilege,
has_function_privilege, has_schema_privilege, has_database_privilege,
owners, prosecdef, policies, row-level security, pg_default_acl, the
roles' attributes, settings and memberships. Logged in as the application
role on green, the SECURITY DEFINER function runs as its owner.

Then a drift (a GRANT, an owner, a policy and default privileges changed
on green only) is found by verify with the statement that fixes each, the
cutover is refused until they are run, and then the rehearsal passes the
cutover's role check, which catches a later drift by itself. The roles step
killed inside its transaction leaves no role and completes when sent
again. Password hashes: copied only when the plan asks, never seen in any
log. Preflight names the roles it will create, those it will leave as they
are, the superuser it will not create and the hashes it cannot read.
"""

import json
import os
import shutil
import subprocess

import harness
from harness import check, wait_for
from test_cutover import PgBouncer, proxy_agent
from test_migrate import in_state, mstatus, setup

ODD = "rep'ort er \u00fc"                   # the second role: a quote, a space, a non-ASCII letter
Q_ODD = '"%s"' % ODD                          # as an SQL identifier
L_ODD = "'%s'" % ODD.replace("'", "''")       # as an SQL string
ROLES = ["app", "app_group", ODD]
PASSWORD = "s3cret-of-app"

# Roles exist per cluster: made on blue only.
ROLES_SQL = """
CREATE ROLE app_group NOLOGIN;
CREATE ROLE app LOGIN CONNECTION LIMIT 20 VALID UNTIL '2040-01-02 03:04:05+00'
  PASSWORD '%s';
GRANT app_group TO app WITH ADMIN OPTION;
CREATE ROLE %s LOGIN;
ALTER ROLE app SET search_path = app, "$user", public;
ALTER ROLE app SET statement_timeout = '55s';
""" % (PASSWORD, Q_ODD)

SCHEMA_SQL = """
ALTER DATABASE shop OWNER TO app;
REVOKE CONNECT ON DATABASE shop FROM PUBLIC;
GRANT CONNECT ON DATABASE shop TO app_group, {odd};
ALTER ROLE app IN DATABASE shop SET work_mem = '8MB';
CREATE SCHEMA app AUTHORIZATION app;
GRANT USAGE ON SCHEMA app TO app_group, {odd};
SET ROLE app;
CREATE TABLE app.accounts (id bigserial PRIMARY KEY, owner_name text NOT NULL,
  balance numeric NOT NULL DEFAULT 0, secret text);
CREATE SEQUENCE app.invoice_no;
CREATE VIEW app.balances AS SELECT id, owner_name, balance FROM app.accounts;
CREATE FUNCTION app.app_helper() RETURNS text LANGUAGE sql SECURITY DEFINER
  SET search_path = '' AS $$ SELECT current_user::text $$;
REVOKE ALL ON FUNCTION app.app_helper() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.app_helper() TO app_group;
GRANT SELECT, INSERT, UPDATE ON app.accounts TO app_group;
GRANT USAGE ON SEQUENCE app.accounts_id_seq, app.invoice_no TO app_group;
GRANT SELECT (id, owner_name), UPDATE (balance) ON app.accounts TO {odd};
GRANT SELECT ON app.balances TO {odd} WITH GRANT OPTION;
ALTER DEFAULT PRIVILEGES FOR ROLE app IN SCHEMA app GRANT SELECT ON TABLES TO {odd};
ALTER DEFAULT PRIVILEGES FOR ROLE app REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
ALTER TABLE app.accounts ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON app.accounts FOR SELECT TO {odd} USING (owner_name = current_user);
CREATE POLICY group_rows ON app.accounts TO app_group USING (true) WITH CHECK (balance >= 0);
RESET ROLE;
INSERT INTO app.accounts (owner_name, balance)
  SELECT CASE WHEN g % 3 = 0 THEN {lodd} ELSE 'someone' END, g FROM generate_series(1, 300) g;
""".format(odd=Q_ODD, lodd=L_ODD)

# Everything that decides who may do what, one line per fact, computed
# with the same SQL on both sides.
VALUES_ROLES = "(VALUES ('app'), ('app_group'), (%s), ('public')) r(n)" % L_ODD
MATRIX_SQL = """
SELECT string_agg(x, E'\\n' ORDER BY x) FROM (
 SELECT format('table %s %s %s %s', r.n, c.oid::regclass, p, has_table_privilege(r.n, c.oid, p)) x
  FROM {roles}, pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
  unnest('{{SELECT,INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER}}'::text[]) p
  WHERE n.nspname IN ('app', 'public') AND c.relkind IN ('r', 'p', 'v', 'm')
 UNION ALL
 SELECT format('column %s %s.%s %s %s', r.n, c.oid::regclass, a.attname, p,
   has_column_privilege(r.n, c.oid, a.attnum, p))
  FROM {roles}, pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped,
  unnest('{{SELECT,INSERT,UPDATE,REFERENCES}}'::text[]) p
  WHERE n.nspname IN ('app', 'public') AND c.relkind IN ('r', 'p', 'v')
 UNION ALL
 SELECT format('sequence %s %s %s %s', r.n, c.oid::regclass, p,
   has_sequence_privilege(r.n, c.oid, p))
  FROM {roles}, pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
  unnest('{{USAGE,SELECT,UPDATE}}'::text[]) p
  WHERE n.nspname IN ('app', 'public') AND c.relkind = 'S'
 UNION ALL
 SELECT format('function %s %s %s', r.n, f.oid::regprocedure,
   has_function_privilege(r.n, f.oid, 'EXECUTE'))
  FROM {roles}, pg_proc f JOIN pg_namespace n ON n.oid = f.pronamespace
  WHERE n.nspname IN ('app', 'public')
 UNION ALL
 SELECT format('schema %s %s %s %s', r.n, n.nspname, p, has_schema_privilege(r.n, n.oid, p))
  FROM {roles}, pg_namespace n, unnest('{{USAGE,CREATE}}'::text[]) p
  WHERE n.nspname IN ('app', 'public')
 UNION ALL
 SELECT format('database %s %s %s', r.n, p, has_database_privilege(r.n, current_database(), p))
  FROM {roles}, unnest('{{CONNECT,CREATE,TEMPORARY}}'::text[]) p
 UNION ALL
 SELECT format('owner database %s', pg_get_userbyid(d.datdba)) FROM pg_database d
  WHERE d.datname = current_database()
 UNION ALL
 SELECT format('owner relation %s %s', c.oid::regclass, pg_get_userbyid(c.relowner))
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname IN ('app', 'public') AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
 UNION ALL
 SELECT format('owner function %s %s security definer %s', f.oid::regprocedure,
   pg_get_userbyid(f.proowner), f.prosecdef)
  FROM pg_proc f JOIN pg_namespace n ON n.oid = f.pronamespace
  WHERE n.nspname IN ('app', 'public')
 UNION ALL
 SELECT format('owner schema %s %s', n.nspname, pg_get_userbyid(n.nspowner))
  FROM pg_namespace n WHERE n.nspname IN ('app', 'public')
 UNION ALL
 SELECT format('policy %s %s %s %s %s using %s check %s', p.polrelid::regclass, p.polname,
   p.polcmd, p.polpermissive,
   (SELECT string_agg(y, ',' ORDER BY y) FROM (SELECT CASE WHEN x = 0 THEN 'public'
    ELSE pg_get_userbyid(x) END y FROM unnest(p.polroles) x) z),
   pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
  FROM pg_policy p
 UNION ALL
 SELECT format('rls %s %s %s', c.oid::regclass, c.relrowsecurity, c.relforcerowsecurity)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname IN ('app', 'public') AND c.relkind IN ('r', 'p')
 UNION ALL
 SELECT format('default acl %s %s %s %s', pg_get_userbyid(d.defaclrole),
   coalesce(n.nspname, '-'), d.defaclobjtype,
   (SELECT string_agg(y, ',' ORDER BY y) FROM (SELECT format('%s:%s:%s',
     CASE WHEN a.grantee = 0 THEN 'public' ELSE pg_get_userbyid(a.grantee) END,
     a.privilege_type, a.is_grantable) y FROM aclexplode(d.defaclacl) a) z))
  FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
 UNION ALL
 SELECT format('role %s super %s inherit %s createrole %s createdb %s login %s repl %s '
   'bypassrls %s connlimit %s until %s', r.rolname, r.rolsuper, r.rolinherit, r.rolcreaterole,
   r.rolcreatedb, r.rolcanlogin, r.rolreplication, r.rolbypassrls, r.rolconnlimit,
   r.rolvaliduntil AT TIME ZONE 'UTC')
  FROM pg_roles r WHERE r.rolname IN ('app', 'app_group', {lodd})
 UNION ALL
 SELECT format('setting %s %s %s', r.rolname,
   CASE WHEN s.setdatabase = 0 THEN '-' ELSE 'this database' END, s.setconfig)
  FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
  LEFT JOIN pg_database d ON d.oid = s.setdatabase
  WHERE r.rolname IN ('app', 'app_group', {lodd})
  AND (s.setdatabase = 0 OR d.datname = current_database())
 UNION ALL
 SELECT format('member %s of %s admin %s', pg_get_userbyid(m.member), pg_get_userbyid(m.roleid),
   m.admin_option)
  FROM pg_auth_members m WHERE pg_get_userbyid(m.member) IN ('app', 'app_group', {lodd})
) facts
""".format(roles=VALUES_ROLES, lodd=L_ODD)


def psql_as(cluster, user, sql, password=None, check_rc=True):
    env = dict(os.environ)
    env.pop("PGPASSWORD", None)
    if password is not None:
        env["PGPASSWORD"] = password
    r = subprocess.run([os.path.join(harness.PG_BIN, "psql"), "-X", "-A", "-t", "-v",
                        "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(cluster.port), "-U",
                        user, "-d", "shop", "-w", "-c", sql],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, env=env)
    if check_rc and r.returncode != 0:
        raise RuntimeError("psql as %s on %s: %s" % (user, cluster.name, r.stderr.decode()))
    return r


def roles_setup(rig, options=""):
    """The two clusters with the roles and schema above on blue, and a plan
    naming app as the application role."""
    opts = "    cutover:\n      app_roles: [app]\n" + options
    blue, green, coord, plan = setup(rig, options=opts, extra_agents=["px"])
    blue.psql(ROLES_SQL)
    blue.psql(SCHEMA_SQL, db="shop")
    for c in (blue, green):  # every statement in the server logs: a hash would show there
        c.psql("ALTER SYSTEM SET log_statement = 'all'")
        c.psql("SELECT pg_reload_conf()")
    return blue, green, coord, plan


def start_and_stream(coord, plan):
    r = coord.ctl("migrate", "start", plan, check_rc=False)
    check(r.returncode == 0, "started: %r" % (r.stdout + r.stderr))
    wait_for("streaming", lambda: in_state(coord, "streaming"), 240, interval=0.5)


def verify(coord):
    r = coord.ctl("migrate", "verify", "shop", "--json", check_rc=False)
    return r.returncode, json.loads(r.stdout or b"{}")


def test_rights_equal_as_a_whole(rig):
    blue, green, coord, plan = roles_setup(rig)
    check(green.psql("SELECT count(*) FROM pg_roles WHERE rolname IN ('app', 'app_group', %s)"
                     % L_ODD) == "0", "no application role on green before")
    start_and_stream(coord, plan)
    b, g = blue.psql(MATRIX_SQL, db="shop"), green.psql(MATRIX_SQL, db="shop")
    lines = b.splitlines()
    print("   %d facts compared" % len(lines))
    kinds = ["policy app.accounts own_rows r t rep'ort er \u00fc",
             "column rep'ort er \u00fc app.accounts.balance UPDATE t",
             "column rep'ort er \u00fc app.accounts.secret SELECT f",
             "default acl app app r rep'ort er \u00fc:SELECT:f",
             "owner function app.app_helper() app security definer t",
             "sequence app_group app.invoice_no USAGE t", "schema app_group app USAGE t",
             "database public CONNECT f", "member app of app_group admin t",
             "table rep'ort er \u00fc app.balances SELECT t"]
    missing = [k for k in kinds if k not in b]
    check(len(lines) > 1000 and not missing, "the matrix covers every kind: %d lines, "
          "missing %r" % (len(lines), missing))
    diff = sorted(set(b.splitlines()) ^ set(g.splitlines()))
    check(b == g, "every right on green is blue's: %d facts differ: %s" % (len(diff), diff[:20]))
    # The SECURITY DEFINER function runs as its owner on green, not as postgres.
    check(psql_as(green, "app", "SELECT app.app_helper()").stdout.decode().strip() == "app",
          "app_helper() runs as app on green")
    r = psql_as(green, ODD, "SELECT app.app_helper()", check_rc=False)
    check(r.returncode != 0 and b"permission denied" in r.stderr,
          "the second role may not run it on green either: %r" % r.stderr)
    # Row-level security: the second role sees its own rows only, on both.
    q = "SELECT count(*) FROM app.accounts"
    nb = psql_as(blue, ODD, q).stdout.decode().strip()
    ng = psql_as(green, ODD, q).stdout.decode().strip()
    check(nb == ng == "100", "policy applied alike: blue %s, green %s" % (nb, ng))
    # PUBLIC may not connect to green's database either.
    check(green.psql("SELECT has_database_privilege('public', 'shop', 'CONNECT')") == "f",
          "database privileges copied")
    # Passwords were not asked for: none set on green.
    check(green.psql("SELECT rolpassword IS NULL FROM pg_authid WHERE rolname = 'app'") == "t",
          "no password hash copied without roles.passwords")
    # Verify agrees: equal, with no roles finding.
    rc, rep = verify(coord)
    check(rc == 0 and rep["state"] == "equal" and rep["schema"]["findings"] == [],
          "verify equal: %r" % rep.get("schema"))


def test_drift_found_and_cutover_refused(rig):
    blue, green, coord, plan = roles_setup(rig)
    bouncer = PgBouncer(rig, blue.port)
    proxy_agent(rig, coord, bouncer, blue, green)
    wait_for("px connected", lambda: coord.agent("px")["state"] == "connected", 15)
    # the plan gets its proxy (the cutover needs one)
    with open(plan) as f:
        text = f.read()
    with open(plan, "w") as f:
        f.write(text.replace("      app_roles: [app]\n",
                             "      app_roles: [app]\n      proxies: [{agent: px, proxy: pgb}]\n"))
    start_and_stream(coord, plan)
    rc, rep = verify(coord)
    check(rc == 0 and rep["state"] == "equal", "verify equal first: %r" % rep.get("schema"))
    # Drift on green only: a grant blue never made, an owner changed, a
    # policy dropped, default privileges revoked.
    green.psql("GRANT DELETE ON app.accounts TO %s;"
               "ALTER FUNCTION app.app_helper() OWNER TO postgres;"
               "DROP POLICY own_rows ON app.accounts;"
               "ALTER DEFAULT PRIVILEGES FOR ROLE app IN SCHEMA app REVOKE SELECT ON TABLES"
               " FROM %s" % (Q_ODD, Q_ODD), db="shop")
    rc, rep = verify(coord)
    findings = rep["schema"]["findings"]
    for f in findings:
        print("   %s: %s\n      %s" % (f["object"], f["problem"], f["statement"]))
    stmts = [f["statement"] for f in findings]
    check(rc == 1 and rep["state"] == "different", "drift makes verify different: %r" % rep["state"])
    want = ['REVOKE DELETE ON TABLE app.accounts FROM "%s";' % ODD,
            'ALTER FUNCTION app.app_helper() OWNER TO "app";',
            'ALTER DEFAULT PRIVILEGES FOR ROLE "app" IN SCHEMA "app" GRANT SELECT ON TABLES TO '
            '"%s";' % ODD]
    policy = [x for x in stmts if x.startswith('CREATE POLICY "own_rows" ON app.accounts AS '
                                               'PERMISSIVE FOR SELECT TO "%s" USING (' % ODD)]
    check(sorted(set(stmts) - set(policy)) == sorted(want) and len(policy) == 1 and
          len(stmts) == 4, "each drift with its statement: %r" % stmts)
    out = coord.ctl("migrate", "status", "shop").stdout.decode()
    check("verify: different" in out and want[1] in out, "status shows the findings: %s" % out)
    r = coord.ctl("cutover", "shop", check_rc=False)
    check(r.returncode == 4 and b"verify" in r.stderr, "the cutover is refused: %r" % r.stderr)
    check(psql_as(green, "app", "SELECT app.app_helper()").stdout.decode().strip() == "postgres",
          "(the drift is real: on green the function ran as postgres)")
    # The statements as given fix it; then verify is equal and the cutover's
    # own role check (VerifyRoles, the same comparison) passes in a rehearsal.
    for s in stmts:
        green.psql(s, db="shop")
    rc, rep = verify(coord)
    check(rc == 0 and rep["state"] == "equal", "equal after the fix: %r" % rep.get("schema"))
    r = coord.ctl("cutover", "shop", "--dry-run", "--json", check_rc=False)
    cut = json.loads(r.stdout or b"{}")
    check(r.returncode == 0 and cut.get("state") == "done" and cut.get("role_findings") == [],
          "rehearsal passes the role check: %s %s" % (r.stdout.decode()[-1500:], r.stderr))
    # Drift after verify: the cutover's role check catches it before any pause.
    green.psql("REVOKE UPDATE (balance) ON app.accounts FROM %s" % Q_ODD, db="shop")
    r = coord.ctl("cutover", "shop", "--json", check_rc=False)
    cut = json.loads(r.stdout or b"{}")
    stmts = [f["statement"] for f in cut.get("role_findings", [])]
    check(r.returncode == 4 and cut.get("state") == "aborted" and
          'GRANT UPDATE ("balance") ON TABLE app.accounts TO "%s";' % ODD in stmts,
          "the cutover refuses with the GRANT: %r %r" % (cut.get("reason"), stmts))
    check(bouncer.psql("SELECT inet_server_port()", user="postgres").stdout.decode().strip() ==
          str(blue.port), "nothing switched")


def test_kill9_during_roles_leaves_nothing_half_made(rig):
    """The roles step is one transaction: the target agent killed while it
    waits inside it leaves no role behind, and the step sent again makes
    every role once."""
    blue, green, coord, plan = roles_setup(rig)
    # A session on green that holds CREATE ROLE back (it wants ROW EXCLUSIVE
    # on pg_authid; SHARE is held).
    rig.spawn("lock", [os.path.join(harness.PG_BIN, "psql"), "-X", "-h", "127.0.0.1", "-p",
                       str(green.port), "-U", "postgres", "-d", "postgres", "-c",
                       "SET application_name = 'test_lock'; BEGIN;"
                       " LOCK TABLE pg_catalog.pg_authid IN SHARE MODE;"
                       " SELECT pg_sleep(120); COMMIT;"])
    wait_for("lock held", lambda: green.psql(
        "SELECT count(*) FROM pg_locks WHERE relation = 'pg_authid'::regclass"
        " AND mode = 'ShareLock' AND granted") == "1", 15)
    check(coord.ctl("migrate", "start", plan).returncode == 0, "started")
    wait_for("the roles step waits inside its transaction", lambda: green.psql(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'godwit-agent'"
        " AND wait_event_type = 'Lock' AND query LIKE 'CREATE ROLE%'") == "1", 60)
    agent = [p for p in rig.procs if p.name == "agent-green"][0]
    agent.kill9()
    in_roles = mstatus(coord)["state"]
    green.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
               " WHERE application_name = 'test_lock'")
    # The killed agent's session gets the lock, then finds its client gone
    # and rolls back: nothing of the half-done step is left.
    wait_for("the killed session gone", lambda: green.psql(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'godwit-agent'"
        " AND query LIKE 'CREATE ROLE%'") == "0", 30)
    check(in_roles == "roles" and green.psql(
        "SELECT count(*) FROM pg_roles WHERE rolname IN ('app', 'app_group', %s)" % L_ODD) == "0",
        "no role half made (state %s)" % in_roles)
    agent.start()
    wait_for("streaming after the agent restart", lambda: in_state(coord, "streaming"), 240,
             interval=0.5)
    b, g = blue.psql(MATRIX_SQL, db="shop"), green.psql(MATRIX_SQL, db="shop")
    check(b == g, "every right on green is blue's: %r" % sorted(
        set(b.splitlines()) ^ set(g.splitlines()))[:20])


def rig_files(rig):
    """Every file of the rig that is not a cluster's data directory: our
    logs, the journal, agent state, the PostgreSQL server logs."""
    for root, dirs, files in os.walk(rig.root):
        dirs[:] = [d for d in dirs if d != "data"]  # a cluster's log, not its data
        for name in files:
            yield os.path.join(root, name)


def test_passwords_copied_when_asked(rig):
    blue, green, coord, plan = roles_setup(rig, options="    roles: {passwords: true}\n")
    # green asks app for a password (the rig's clusters trust everyone else)
    hba = os.path.join(green.data, "pg_hba.conf")
    with open(hba) as f:
        rules = f.read()
    # Replaced whole, never truncated in place: a reload still pending from
    # the setup would read an empty file and refuse every login (seen once).
    with open(hba + ".new", "w") as f:
        f.write("host all app 127.0.0.1/32 scram-sha-256\n" + rules)
    os.chmod(hba + ".new", os.stat(hba).st_mode)
    shutil.chown(hba + ".new", "postgres", "postgres")
    os.replace(hba + ".new", hba)
    green.psql("SELECT pg_reload_conf()")
    hash_ = blue.psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'app'")
    check(hash_.startswith("SCRAM-SHA-256$"), "blue keeps a SCRAM hash: %r" % hash_[:20])
    start_and_stream(coord, plan)
    check(green.psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'app'") == hash_,
          "green has blue's hash")
    r = psql_as(green, "app", "SELECT current_user", password=PASSWORD)
    check(r.stdout.decode().strip() == "app", "app logs in on green with its password")
    r = psql_as(green, "app", "SELECT 1", password="wrong", check_rc=False)
    check(r.returncode != 0 and b"password authentication failed" in r.stderr,
          "a wrong password is refused: %r" % r.stderr)
    # The hash (and its secret parts) in no log, journal or state file.
    secret = hash_.split("$", 2)[2]  # salt and keys
    found = []
    for path in rig_files(rig):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue
        for needle in (hash_, secret, PASSWORD):
            if needle.encode() in data:
                found.append((path, needle[:12]))
    print("   searched %d files" % len(list(rig_files(rig))))
    check(not found, "no hash or password in any log: %r" % found)


def test_preflight_reports_roles(rig):
    blue, green, coord, plan = roles_setup(rig, options="    roles: {passwords: true}\n")
    # a superuser that owns something, a role green has with other
    # attributes, and a source connection that cannot read password hashes
    blue.psql("CREATE ROLE dba SUPERUSER NOLOGIN; ALTER ROLE godwit_repl NOSUPERUSER")
    blue.psql("GRANT CONNECT ON DATABASE shop TO godwit_repl;"
              "GRANT SELECT ON ALL TABLES IN SCHEMA public, app TO godwit_repl;"
              "CREATE TABLE public.dba_notes (id int PRIMARY KEY); "
              "ALTER TABLE public.dba_notes OWNER TO dba", db="shop")
    green.psql("CREATE ROLE app_group LOGIN")
    before = green.psql("SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles")
    r = coord.ctl("plan", "check", plan, "--json", check_rc=False)
    rep = json.loads(r.stdout)
    fs = rep["migrations"][0]["findings"]
    for f in fs:
        print("   %-7s %-20s %s" % (f["severity"], f["code"], f["object"]))
    by = {(f["code"], f["object"]): f for f in fs}
    check(r.returncode == 1, "blocked: rc %d" % r.returncode)
    check(by.get(("role_missing", "role app"), {}).get("severity") == "info" and
          by.get(("role_missing", "role " + ODD), {}).get("severity") == "info",
          "missing roles reported, to be created")
    check('CREATE ROLE "app" WITH NOSUPERUSER LOGIN' in by[("role_missing", "role app")]["fix"],
          "with the statement: %r" % by[("role_missing", "role app")]["fix"])
    d = by.get(("role_differs", "role app_group"))
    check(d and d["severity"] == "warning" and 'ALTER ROLE "app_group" NOLOGIN' in d["fix"],
          "an existing role that differs: %r" % d)
    s = by.get(("role_superuser", "role dba"))
    check(s and s["severity"] == "error", "a superuser is never created: %r" % s)
    p = [f for f in fs if f["code"] == "passwords_unreadable"]
    check(p and p[0]["severity"] == "error", "unreadable hashes block: %r" % p)
    check(green.psql("SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles") == before,
          "plan check created nothing")


if __name__ == "__main__":
    harness.run([test_rights_equal_as_a_whole, test_drift_found_and_cutover_refused,
                 test_kill9_during_roles_leaves_nothing_half_made,
                 test_passwords_copied_when_asked, test_preflight_reports_roles])
