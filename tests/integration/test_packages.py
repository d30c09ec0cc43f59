"""The Debian packages (deploy/debian, docs/packages.md): godwit-agent and
godwit-coordinator, made by cpack from a release build ($GODWIT_DEB_DIR when
CI made them already, else built here), pass lintian with no error or
warning beyond the overrides deploy/debian explains, and install into a
throwaway copy of this system: an overlay of / (changes on a tmpfs) in a
mount namespace of the test's own, entered with chroot, so the host's files,
users and dpkg database stay as they were. There the programs print their
version and check the example configs, every file is where docs/packages.md
says, the postinst made the godwit user and /etc/godwit, a reinstall
(an upgrade's path) is quiet, and a purge takes the files and the state
folders away but leaves the operator's keys and the user."""

import glob
import os
import re
import shutil
import subprocess

import harness
from harness import check, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROGRAMS = ("godwit-agent", "godwit-coordinator", "godwitctl")
FILES = {
    "godwit-agent": [
        "/usr/bin/godwit-agent",
        "/usr/lib/systemd/system/godwit-agent.service",
        "/usr/lib/systemd/system/godwit-agent-proxy.service",
        "/usr/lib/sysusers.d/godwit-agent.conf",
        "/usr/share/man/man8/godwit-agent.8.gz",
        "/usr/share/doc/godwit-agent/copyright",
        "/usr/share/doc/godwit-agent/changelog.gz",
        "/usr/share/doc/godwit-agent/examples/agent.example.yaml",
        "/usr/share/doc/godwit-agent/examples/agent.proxy.example.yaml",
        "/usr/share/lintian/overrides/godwit-agent",
    ],
    "godwit-coordinator": [
        "/usr/bin/godwit-coordinator",
        "/usr/bin/godwitctl",
        "/usr/lib/systemd/system/godwit-coordinator.service",
        "/usr/lib/sysusers.d/godwit-coordinator.conf",
        "/usr/share/man/man8/godwit-coordinator.8.gz",
        "/usr/share/man/man1/godwitctl.1.gz",
        "/usr/share/bash-completion/completions/godwitctl",
        "/usr/share/doc/godwit-coordinator/copyright",
        "/usr/share/doc/godwit-coordinator/changelog.gz",
        "/usr/share/doc/godwit-coordinator/examples/coordinator.example.yaml",
        "/usr/share/doc/godwit-coordinator/examples/plan.example.yaml",
        "/usr/share/lintian/overrides/godwit-coordinator",
    ],
}


def project_version():
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        m = re.search(r"project\(godwit VERSION ([0-9.]+)", f.read())
    check(m, "CMakeLists.txt names the project's version")
    return m.group(1)


def build_debs(rig):
    """$GODWIT_DEB_DIR, or the packages of a release build made here."""
    if os.environ.get("GODWIT_DEB_DIR"):
        return os.environ["GODWIT_DEB_DIR"]
    build, out = rig.path("build"), rig.path("debs")
    for argv in (["cmake", "-S", ROOT, "-B", build, "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                  "-DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY=ON"],
                 ["cmake", "--build", build, "-j2", "--target"] + list(PROGRAMS) +
                 ["godwit_package_files"],
                 ["cpack", "-G", "DEB", "-B", out, "--config",
                  os.path.join(build, "CPackConfig.cmake")]):
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=900)
        check(r.returncode == 0, "%s: %s" % (" ".join(argv), r.stdout.decode()[-3000:]))
    return out


def one_deb(folder, pkg, version):
    found = glob.glob(os.path.join(folder, "%s_*.deb" % pkg))
    check(len(found) == 1, "one %s package in %s: %r" % (pkg, folder, found))
    check(os.path.basename(found[0]).startswith("%s_%s_" % (pkg, version)),
          "%s is version %s" % (found[0], version))
    return found[0]


def overrides_of(pkg):
    """The tags deploy/debian's override file of pkg names."""
    with open(os.path.join(ROOT, "deploy", "debian", pkg + ".lintian-overrides")) as f:
        return {line.split()[1] for line in f if line.strip() and not line.startswith("#")}


def run_lintian(debs):
    r = subprocess.run(["lintian", "--display-info", "--pedantic", "--show-overrides"] +
                       list(debs.values()), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=120)
    tags = re.findall(r"^([EWIPXO]): (\S+): (\S+)", r.stdout.decode(), re.M)
    # No error, no warning; and none of the hardening tags, some of which
    # are only info (bind-now, fortify): the optimized build's flags.
    bad = [t for t in tags if t[0] in "EW" or (t[0] != "O" and t[2].startswith("hardening-"))]
    check(not bad, "lintian: errors, warnings or hardening tags: %s" % r.stdout.decode())
    for pkg in debs:
        used = {tag for kind, p, tag in tags if kind == "O" and p == pkg}
        check(used == overrides_of(pkg),
              "%s: lintian applied the overrides %r, the file has %r" % (
                  pkg, used, overrides_of(pkg)))
    others = sorted("%s: %s: %s" % t for t in tags if t[0] != "O")
    print("   lintian: no error, warning or hardening tag; %d overridden, other tags: %s" % (
        sum(1 for t in tags if t[0] == "O"), others or "none"))


class Chroot:
    """An overlay of / whose changes go to a tmpfs, in a mount namespace of
    its own, held by a process chrooted into it; commands enter it with
    nsenter, files are read through /proc/PID/root."""

    def __init__(self, rig):
        base = rig.path("overlay")
        os.makedirs(base)
        ready = rig.path("overlay-ready")
        script = (
            'set -e; b="%s"; mount -t tmpfs -o mode=0755 tmpfs "$b"; '
            'mkdir "$b/upper" "$b/work" "$b/root"; '
            'mount -t overlay overlay -o lowerdir=/,upperdir="$b/upper",workdir="$b/work" '
            '"$b/root"; '
            'mount --bind /dev "$b/root/dev"; mount -t proc proc "$b/root/proc"; '
            'touch "%s"; exec chroot "$b/root" sleep 900' % (base, ready))
        self.proc = rig.spawn("overlay", ["unshare", "--mount", "--propagation", "private",
                                          "sh", "-c", script])
        wait_for("the overlay", lambda: os.path.exists(ready) or not self.proc.alive(), 30)
        check(self.proc.alive(), "the overlay is up: %s" % self.proc.log())
        self.top = "/proc/%d/root" % self.proc.proc.pid

    def path(self, p):
        return self.top + p

    def run(self, *argv, rc=0):
        pid = str(self.proc.proc.pid)
        r = subprocess.run(["nsenter", "-t", pid, "-m", "-r", "--"] + list(argv),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120,
                           env=dict(os.environ, DEBIAN_FRONTEND="noninteractive", LC_ALL="C.UTF-8"))
        out = r.stdout.decode()
        check(rc is None or r.returncode == rc, "%s: rc %d, expected %s: %s" % (
            " ".join(argv), r.returncode, rc, out))
        return out


def host_state():
    """What an install on the host would change."""
    paths = [p for files in FILES.values() for p in files] + ["/etc/godwit", "/var/lib/godwit"]
    r = subprocess.run(["getent", "passwd", "godwit"], stdout=subprocess.PIPE)
    return {p: os.path.lexists(p) for p in paths}, r.stdout, subprocess.run(
        ["dpkg-query", "-W", "-f=${Package} ${Status}\\n", "godwit-agent", "godwit-coordinator"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout


def test_packages(rig):
    version = project_version()
    folder = build_debs(rig)
    debs = {pkg: one_deb(folder, pkg, version) for pkg in FILES}
    for pkg, deb in debs.items():
        r = subprocess.run(["dpkg-deb", "-f", deb, "Version", "Depends"], stdout=subprocess.PIPE,
                           check=True)
        fields = r.stdout.decode()
        check("Version: %s\n" % version in fields and "libc6" in fields and "libzmq5" in fields,
              "%s: the version and dpkg-shlibdeps' dependencies: %s" % (pkg, fields))
    run_lintian(debs)

    before = host_state()
    ch = Chroot(rig)
    os.makedirs(ch.path("/var/tmp/godwit-debs"), exist_ok=True)
    for deb in debs.values():
        shutil.copy(deb, ch.path("/var/tmp/godwit-debs"))
    inside = ["/var/tmp/godwit-debs/" + os.path.basename(d) for d in debs.values()]
    out = ch.run("dpkg", "-i", *inside)
    check(out.count("not enabled nor started") == 2,
          "a first install tells how to start each service: %s" % out)
    out = ch.run("dpkg-query", "-W", "-f=${Package} ${Version} ${Status}\\n", *FILES)
    for pkg in FILES:
        check("%s %s install ok installed" % (pkg, version) in out, "%s installed: %s" % (pkg, out))

    missing = [p for files in FILES.values() for p in files if not os.path.isfile(ch.path(p))]
    check(not missing, "files where docs/packages.md says: missing %s" % missing)
    for unit, prog in (("godwit-agent", "godwit-agent"), ("godwit-agent-proxy", "godwit-agent"),
                       ("godwit-coordinator", "godwit-coordinator")):
        with open(ch.path("/usr/lib/systemd/system/%s.service" % unit)) as f:
            text = f.read()
        check("ExecStart=/usr/bin/%s --config" % prog in text and "@" not in text,
              "%s.service starts /usr/bin/%s" % (unit, prog))
    for prog in PROGRAMS:
        out = ch.run(prog, "--version")
        check(out == "%s %s\n" % (prog, version), "%s --version: %r" % (prog, out))
    for prog, example in (("godwit-agent", "godwit-agent/examples/agent.example.yaml"),
                          ("godwit-agent", "godwit-agent/examples/agent.proxy.example.yaml"),
                          ("godwit-coordinator",
                           "godwit-coordinator/examples/coordinator.example.yaml")):
        path = "/usr/share/doc/" + example
        out = ch.run(prog, "--check", "-c", path)
        check(out == "%s: ok\n" % path, "%s --check -c %s: %r" % (prog, path, out))
    for section, page in (("1", "godwitctl"), ("8", "godwit-agent"), ("8", "godwit-coordinator")):
        out = ch.run("man", "-w", section, page).strip()
        check(out == "/usr/share/man/man%s/%s.%s.gz" % (section, page, section),
              "man finds %s(%s): %r" % (page, section, out))
    out = ch.run("bash", "-c", "source /usr/share/bash-completion/completions/godwitctl && "
                 "complete -p godwitctl")
    check("-F _godwitctl godwitctl" in out, "the completion loads: %r" % out)

    # The postinst's work: the system user (systemd-sysusers), /etc/godwit.
    pw = ch.run("getent", "passwd", "godwit").strip().split(":")
    check(len(pw) == 7 and int(pw[2]) < 1000 and pw[5] == "/var/lib/godwit" and
          pw[6] == "/usr/sbin/nologin", "the godwit system user: %r" % pw)
    gid = ch.run("getent", "group", "godwit").strip().split(":")[2]
    st = os.stat(ch.path("/etc/godwit"))
    check(st.st_uid == 0 and str(st.st_gid) == gid and st.st_mode & 0o777 == 0o750,
          "/etc/godwit: root:godwit 0750, is %d:%d %o" % (st.st_uid, st.st_gid, st.st_mode & 0o777))
    print("   installed: %d files, user godwit uid %s, godwit* --version %s, examples check" % (
        sum(len(f) for f in FILES.values()), pw[2], version))

    # A reinstall goes the way of an upgrade (configure with the old version):
    # nothing to tell, nothing lost.
    out = ch.run("dpkg", "-i", *inside)
    check("not enabled nor started" not in out, "an upgrade says nothing: %s" % out)
    check(ch.run("getent", "passwd", "godwit").strip().split(":")[2] == pw[2], "same user")

    # Purge: the files and the services' state go, the operator's keys and
    # the user stay.
    ch.run("godwitctl", "keygen", "db1", "--dir", "/etc/godwit/keys", "--roles", "source")
    for state in ("agent", "coordinator"):
        os.makedirs(ch.path("/var/lib/godwit/%s/sub" % state))
    os.makedirs(ch.path("/etc/systemd/system/multi-user.target.wants"), exist_ok=True)
    os.symlink("/usr/lib/systemd/system/godwit-agent.service",
               ch.path("/etc/systemd/system/multi-user.target.wants/godwit-agent.service"))
    ch.run("dpkg", "--purge", *FILES)
    left = [p for files in FILES.values() for p in files if os.path.lexists(ch.path(p))]
    check(not left, "purged: %s left" % left)
    check(not os.path.lexists(ch.path("/var/lib/godwit")), "the state folders purged")
    check(not os.path.lexists(
        ch.path("/etc/systemd/system/multi-user.target.wants/godwit-agent.service")),
        "the enablement link purged")
    check(os.path.isfile(ch.path("/etc/godwit/keys/db1.key")), "the operator's keys kept")
    ch.run("getent", "passwd", "godwit")
    print("   purged: files, state and links gone; keys and user kept")

    check(host_state() == before, "the host is as it was")


if __name__ == "__main__":
    harness.run([test_packages])
