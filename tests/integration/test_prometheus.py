"""The coordinator's Prometheus endpoint scraped by a real Prometheus during
a real migration and a cutover rehearsal: series queried through
Prometheus's HTTP API against what status says, the raw text through
`promtool check metrics`, every query of the Grafana dashboard evaluated;
every metric the dashboard uses exported by the coordinator; and the
endpoint's edges (IPv6, methods, a slow client, a refused address, a busy
port)."""

import json
import os
import re
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import harness
from harness import Coordinator, check, free_port, wait_for
from test_cutover import ready
from test_migrate import mstatus

DASHBOARD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "deploy",
                         "grafana", "godwit-dashboard.json")


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def families(text):
    """{name: type} from the # TYPE lines."""
    return dict(m.groups() for m in re.finditer(r"^# TYPE (\S+) (\S+)$", text, re.M))


def dashboard_names():
    """Every godwit_ name anywhere in the dashboard (queries, variables)."""
    with open(DASHBOARD) as f:
        return set(re.findall(r"\bgodwit_[a-z0-9_]+", f.read()))


def dashboard_exprs():
    with open(DASHBOARD) as f:
        d = json.load(f)
    return [t["expr"] for p in d["panels"] for t in p.get("targets", [])]


class Prometheus:
    """Debian's prometheus on a free loopback port with its own config and
    storage in the rig's folder, scraping the coordinator every second."""

    def __init__(self, rig, target_port):
        self.port = free_port()
        d = rig.path("prometheus")
        os.makedirs(os.path.join(d, "data"))
        conf = os.path.join(d, "prometheus.yml")
        with open(conf, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: godwit\n"
                    "    static_configs:\n      - targets: ['127.0.0.1:%d']\n" % target_port)
        self.proc = rig.spawn("prometheus", [
            "prometheus", "--config.file=" + conf, "--storage.tsdb.path=" + os.path.join(d, "data"),
            "--web.listen-address=127.0.0.1:%d" % self.port, "--log.level=warn"])
        self.url = "http://127.0.0.1:%d" % self.port
        wait_for("prometheus ready", self.ready, 30, interval=0.2)

    def ready(self):
        try:
            return get(self.url + "/-/ready") is not None
        except OSError:
            return False

    def query(self, expr):
        """The instant vector or scalar of expr: [(labels, value)]; raises on
        an error (a bad expression)."""
        out = json.loads(get(self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})))
        check(out["status"] == "success", "query %s: %r" % (expr, out))
        data = out["data"]
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        return [(r["metric"], float(r["value"][1])) for r in data["result"]]

    def one(self, expr):
        """The single value of expr once Prometheus has it."""
        r = wait_for("prometheus has %s" % expr, lambda: self.query(expr), 20, interval=0.25)
        check(len(r) == 1, "one series for %s: %r" % (expr, r))
        return r[0][1]


def test_scraped_by_prometheus(rig):
    mport = free_port()
    metrics = "http://127.0.0.1:%d/metrics" % mport
    # Prometheus first: it scrapes the whole migration.
    prom = Prometheus(rig, mport)
    blue, green, coord, bouncer, bench = ready(
        rig, bench_seconds=30, coord_options={"metrics": "{listen: 127.0.0.1:%d}" % mport})
    r = coord.ctl("cutover", "shop", "--dry-run", "--json", check_rc=False)
    rep = json.loads(r.stdout or b"{}")
    check(r.returncode == 0 and rep.get("state") == "done" and rep["dry_run"],
          "rehearsal done: %s %s" % (r.stdout.decode()[-2000:], r.stderr.decode()))
    st = mstatus(coord)

    # The raw text: well-formed for promtool, and what status says.
    text = get(metrics)
    p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    check(p.returncode == 0, "promtool check metrics: %s" % p.stdout.decode())
    check('godwit_migration_phase{migration="shop",phase="streaming"} 1\n' in text and
          'godwit_migration_phase{migration="shop",phase="copy"} 0\n' in text, "phase in the text")
    check('godwit_cutover_write_pause_seconds_count{migration="shop",kind="rehearsal"} 1\n' in text
          and 'godwit_cutover_write_pause_seconds_count{migration="shop",kind="cutover"} 0\n' in text,
          "one rehearsal's pause in the histogram")

    # Through Prometheus.
    check(prom.one('up{job="godwit"}') == 1, "target up")
    for a, role in (("blue", "source"), ("green", "target"), ("px", "proxy")):
        check(prom.one('godwit_agent_up{agent="%s",role="%s"}' % (a, role)) == 1, "%s up" % a)
        check(prom.one('godwit_agent_rtt_seconds{agent="%s"}' % a) > 0, "%s rtt" % a)
    check(prom.one('godwit_agent_up{agent="px2"}') == 0, "px2 never connected: down")
    check(not prom.query('godwit_agent_rtt_seconds{agent="px2"}'), "no rtt without a ping")
    for a in ("blue", "green"):
        check(prom.one('godwit_agent_disk_free_bytes{agent="%s"}' % a) > 0, "%s disk" % a)
    check(prom.one('godwit_migration_phase{migration="shop",phase="streaming"}') == 1, "streaming")
    check(len(prom.query('godwit_migration_phase{migration="shop"} == 1')) == 1, "one phase")
    check(prom.one('godwit_migration_lag_bytes{migration="shop"}') >= 0, "lag")
    check(prom.one('godwit_migration_slot_retained_wal_bytes{migration="shop"}') > 0, "retained")
    check(prom.one('godwit_migration_apply_errors_total{migration="shop"}') ==
          st["apply_error_count"], "apply errors as status says")
    check(prom.one('godwit_migration_tables_ready{migration="shop"}') == st["tables_ready"],
          "tables ready as status says")
    ntables = len(st["verify"]["tables"])
    check(prom.one('godwit_verify_last_tables{migration="shop",outcome="equal"}') == ntables and
          prom.one('godwit_verify_last_tables{migration="shop",outcome="different"}') == 0 and
          prom.one('godwit_verify_last_equal{migration="shop"}') == 1, "verify equal")
    check(abs(prom.one('godwit_verify_last_finished_timestamp_seconds{migration="shop"}') -
              st["verify"]["finished_at_ms"] / 1000) < 1e-6, "verify's time")
    pause = rep["write_pause_ms"] / 1000
    check(abs(prom.one('godwit_cutover_last_write_pause_seconds{migration="shop"}') - pause) < 1e-9,
          "last pause %.4f s as the report says" % pause)
    q = prom.one('histogram_quantile(0.5, sum by (le) '
                 '(godwit_cutover_write_pause_seconds_bucket{kind="rehearsal"}))')
    check(0 < q <= 5 and prom.one('godwit_cutover_write_pause_seconds_sum{kind="rehearsal"}') ==
          prom.one('godwit_cutover_last_write_pause_seconds'), "pause histogram: median %.4f" % q)
    steps = {m["step"]: v for m, v in prom.query('godwit_cutover_last_step_seconds{migration="shop"}')}
    check(set(steps) == {t["step"] for t in rep["timeline"]} and "pause" in steps,
          "steps as the timeline: %r" % steps)
    check(prom.one('godwit_cutover_last_outcome{migration="shop",outcome="done"}') == 1, "outcome")
    check(prom.one('godwit_messages_received_total{type="report"}') > 0 and
          prom.one('godwit_messages_received_total{type="result"}') > 0 and
          prom.one('godwit_messages_sent_total{type="command"}') > 0, "messages counted")
    check(prom.one('sum(rate(godwit_messages_received_total[30s]))') > 0, "message rate")

    # Every query of the dashboard is valid PromQL and, but for the copy
    # (over by now), has data here.
    for e in dashboard_exprs():
        e = e.replace("$migration", "shop").replace("$__rate_interval", "30s")
        if "copy_" in e:
            prom.query(e)
        else:
            wait_for("dashboard query %s" % e, lambda: prom.query(e), 20, interval=0.25)
    print("   write pause %.1f ms, %d series scraped, %d dashboard queries" % (
        rep["write_pause_ms"], len(re.findall(r"^godwit_", text, re.M)), len(dashboard_exprs())))


def test_dashboard_metrics_exported(rig):
    """Every godwit_ name the dashboard uses is a family the coordinator
    exports (a histogram's by its _bucket, _sum or _count)."""
    mport = free_port()
    Coordinator(rig, ["blue"], options={"metrics": "{listen: 127.0.0.1:%d}" % mport}).start()
    fams = families(get("http://127.0.0.1:%d/metrics" % mport))
    names = dashboard_names()
    check(len(names) >= 15, "the dashboard's metrics: %r" % sorted(names))
    for n in sorted(names):
        base = re.sub(r"_(bucket|sum|count)$", "", n)
        check(n in fams or fams.get(base) == "histogram", "%s is exported" % n)


def http_code(url, method="GET"):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_endpoint_edges(rig):
    """IPv6 loopback; only GET and HEAD of /metrics; a client that sends
    half a request holds up nothing; an address beyond loopback is refused
    with file, line and field; a port in use stops the start (exit 1)."""
    port = free_port()
    coord = Coordinator(rig, ["blue"], options={"metrics": '{listen: "[::1]:%d"}' % port}).start()
    url = "http://[::1]:%d" % port
    check(http_code(url + "/metrics") == 200 and http_code(url + "/metrics", "HEAD") == 200 and
          http_code(url + "/") == 404 and http_code(url + "/metrics", "POST") == 405,
          "GET and HEAD of /metrics only")
    half = socket.create_connection(("::1", port))
    half.sendall(b"GET /metr")
    check(coord.status() is not None and http_code(url + "/metrics") == 200,
          "a dawdling client holds up neither the loop nor other scrapes")
    half.close()

    conf = rig.path("remote.yaml")
    with open(coord.config) as f:
        base = "".join(l for l in f if not l.startswith("metrics:"))
    with open(conf, "w") as f:
        f.write(base + "metrics:\n  listen: 0.0.0.0:%d\n" % port)
    line = base.count("\n") + 2
    r = subprocess.run([harness.exe("godwit-coordinator"), "--config", conf, "--check"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    want = '%s:%d: metrics.listen: "0.0.0.0:%d" is not a loopback address' % (conf, line, port)
    check(r.returncode == 2 and want in r.stdout.decode(), "refused: %s" % r.stdout.decode())
    with open(conf, "a") as f:
        f.write("  allow_remote: true\n")
    r = subprocess.run([harness.exe("godwit-coordinator"), "--config", conf, "--check"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    check(r.returncode == 0, "allowed with allow_remote: %s" % r.stdout.decode())

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    other = Coordinator(rig, ["blue"], dirname="coordinator2", options={
        "metrics": "{listen: 127.0.0.1:%d}" % busy.getsockname()[1]}).start(wait=False)
    rc = other.proc.wait(20)
    check(rc == 1 and "metrics: cannot listen on 127.0.0.1:%d" % busy.getsockname()[1]
          in other.proc.log(), "a busy port stops the start: %s %s" % (rc, other.proc.log()[-500:]))
    busy.close()


if __name__ == "__main__":
    harness.run([test_scraped_by_prometheus, test_dashboard_metrics_exported, test_endpoint_edges])
