#!/bin/sh
# run.sh BUILD_DIR SECONDS [TARGET]: fuzzes for SECONDS with the already
# built BUILD_DIR/tests/fuzz/TARGET (this script builds nothing): fuzz_wire
# (common/wire.c, the default) or fuzz_pgoutput (agent/pg/verify/pgoutput.c and
# agent/pg/verify/vwindow.c, from an empty corpus).
#
# The seed corpus (one frame per body kind, from make_corpus) and the corpus
# the fuzzer grows live in a temp folder that is removed at exit. A crash,
# leak or timeout input is kept in BUILD_DIR/fuzz-artifacts/ and the script
# exits non-zero; a clean run exits 0 after printing libFuzzer's final stats
# (executions and executions per second).
set -eu

if [ $# -ne 2 ] && [ $# -ne 3 ]; then
    echo "usage: $0 BUILD_DIR SECONDS [fuzz_wire|fuzz_pgoutput]" >&2
    exit 2
fi
build=$1
seconds=$2
target=${3:-fuzz_wire}
case $target in
    fuzz_wire|fuzz_pgoutput) ;;
    *) echo "$0: unknown target $target" >&2; exit 2 ;;
esac
fuzzer=$build/tests/fuzz/$target
make_corpus=$build/tests/fuzz/make_corpus
for exe in "$fuzzer" "$make_corpus"; do
    if [ ! -x "$exe" ]; then
        echo "$0: $exe not built; run: cmake --build $build --target $target make_corpus" >&2
        exit 2
    fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/godwit-$target.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
mkdir "$work/seeds" "$work/corpus"
artifacts=$build/fuzz-artifacts
mkdir -p "$artifacts"

if [ "$target" = fuzz_wire ]; then
    "$make_corpus" "$work/seeds"
fi

rc=0
"$fuzzer" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" \
    "$work/corpus" "$work/seeds" > "$work/fuzz.log" 2>&1 || rc=$?
# libFuzzer's progress lines go to the log; show only its final stats, or
# the end of the log when it failed.
if [ "$rc" -ne 0 ]; then
    tail -n 60 "$work/fuzz.log" >&2
    echo "$0: $target failed (exit $rc); inputs kept in $artifacts/" >&2
    ls -l "$artifacts" >&2
    exit 1
fi
grep -E '^(stat::|Done )' "$work/fuzz.log" || tail -n 5 "$work/fuzz.log"
echo "$target: ${seconds} s, no crash"
