"""The man pages (docs/man) and godwitctl's bash completion
(deploy/bash-completion) in step with the programs: every command and
option `--help` prints is in the program's man page and in the completion,
the completion offers exactly `godwitctl --help`'s commands, and groff
renders each page without a warning."""

import os
import re
import subprocess

import harness
from harness import check, exe

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAGES = {"godwitctl": "godwitctl.1", "godwit-agent": "godwit-agent.8",
         "godwit-coordinator": "godwit-coordinator.8"}
COMPLETION = os.path.join(ROOT, "deploy", "bash-completion", "godwitctl")


def help_text(prog):
    r = subprocess.run([exe(prog), "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=10)
    check(r.returncode == 0, "%s --help: rc %d" % (prog, r.returncode))
    return r.stdout.decode()


def page_text(name):
    """The page's source with roff's escapes for dashes and fonts undone."""
    with open(os.path.join(ROOT, "docs", "man", name)) as f:
        text = f.read()
    return re.sub(r"\\f[BIRP]", "", text.replace("\\-", "-"))


def commands(help):
    """godwitctl's commands: the first word of each command line, and
    migrate's subcommands."""
    top, migrate = set(), set()
    for line in help.splitlines():
        m = re.match(r"^  ([a-z][a-z|]*)(?: ([a-z|]+))?", line)
        if not m:
            continue
        top.add(m.group(1))
        if m.group(1) == "migrate" and m.group(2):
            migrate.update(m.group(2).split("|"))
    return top, migrate


def complete(*words):
    """What the completion offers after godwitctl words... and an empty word."""
    script = ('source "%s"; COMP_WORDS=(godwitctl %s ""); COMP_CWORD=%d; _godwitctl; '
              'printf "%%s\\n" "${COMPREPLY[@]}"' % (COMPLETION, " ".join(words), len(words) + 1))
    r = subprocess.run(["bash", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=10)
    check(r.returncode == 0 and not r.stderr, "completion ran: %s" % r.stderr.decode())
    return set(x for x in r.stdout.decode().split() if x)


def test_pages_and_completion(rig):
    for prog, page in PAGES.items():
        help, text = help_text(prog), page_text(page)
        options = set(re.findall(r"--[a-z][a-z-]*", help)) | {"--help"}
        missing = sorted(o for o in options if o not in text)
        check(not missing, "%s: options of --help missing from %s: %s" % (prog, page, missing))
        r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z",
                            os.path.join(ROOT, "docs", "man", page)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30,
                           env=dict(os.environ, LC_ALL="C.UTF-8"))
        check(r.returncode == 0 and not r.stderr, "%s renders cleanly: %s" % (
            page, r.stderr.decode()))
        print("   %s: %d options, all in %s; groff: no warning" % (prog, len(options), page))
    help = help_text("godwitctl")
    top, migrate = commands(help)
    text = page_text(PAGES["godwitctl"])
    check(top >= {"status", "migrate", "cutover", "rollback", "version"} and
          migrate >= {"start", "verify"}, "the help's commands read: %r %r" % (top, migrate))
    for c in top | migrate:
        check(re.search(r"\b%s\b" % re.escape(c), text), "command %s in godwitctl.1" % c)
    offered = complete()
    check(top <= offered and {"--socket", "--help"} <= offered and
          not {w for w in offered if not w.startswith("-")} - top,
          "the completion offers the help's commands: %r, help %r" % (offered, top))
    check(complete("migrate") == migrate, "migrate's subcommands: %r" % complete("migrate"))
    check(complete("cutover", "shop") == {"--dry-run", "--json"}, "cutover's options")
    check(complete("migrate", "verify", "shop") == {"--json", "--no-wait"}, "verify's options")
    options = set(re.findall(r"--[a-z][a-z-]*", help))
    with open(COMPLETION) as f:
        ctext = f.read()
    missing = sorted(o for o in options if o not in ctext)
    check(not missing, "options of godwitctl --help missing from the completion: %s" % missing)
    print("   godwitctl: %d commands, %d migrate subcommands, %d options; completion in step" % (
        len(top), len(migrate), len(options)))


if __name__ == "__main__":
    harness.run([test_pages_and_completion])
