#!/usr/bin/env bash
# The whole test suite, as CI runs it: install dependencies, build with
# AddressSanitizer and UndefinedBehaviorSanitizer (and the demo's optimized
# build, for its warnings), run every ctest test
# (unit tests in parallel, integration tests two at a time, those that load
# the machine or measure time alone: tests/CMakeLists.txt), then build the libFuzzer targets with clang and fuzz the wire
# decoder and the pgoutput parser (with the verify window) for a short while
# each.
#   tests/run-all.sh            (as root on Debian 12)
# Environment: BUILD_DIR (default build-ci), FUZZ_SECONDS (default 30).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${BUILD_DIR:-build-ci}
fuzz_seconds=${FUZZ_SECONDS:-30}

deploy/install-deps.sh

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DGODWIT_SANITIZE=ON
cmake --build "$build" -j2
# The optimized build too: -O2 finds warnings (-Werror) that -O0 does not,
# and cpack makes the Debian packages from it once, for test_packages.py.
cmake -S . -B "$build-rel" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build-rel" -j2
(cd "$build-rel" && cpack -G DEB >/dev/null)
GODWIT_DEB_DIR=$(cd "$build-rel" && pwd)
export GODWIT_DEB_DIR

status=0
ctest --test-dir "$build" -L unit -j2 --output-on-failure || status=1
ctest --test-dir "$build" -L integration -j2 --output-on-failure || status=1

# Fuzzing needs clang; its build is separate so the main build stays gcc.
CC=clang cmake -S . -B "$build-fuzz" -DCMAKE_BUILD_TYPE=Debug -DGODWIT_FUZZ=ON >/dev/null
cmake --build "$build-fuzz" -j2 --target fuzz_wire fuzz_pgoutput make_corpus
tests/fuzz/run.sh "$build-fuzz" "$fuzz_seconds" || status=1
tests/fuzz/run.sh "$build-fuzz" "$fuzz_seconds" fuzz_pgoutput || status=1

if [ "$status" -ne 0 ]; then
    echo "test suite FAILED"
else
    echo "test suite passed"
fi
exit "$status"
