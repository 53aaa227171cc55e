#!/usr/bin/env bash
# Runs one libFuzzer target for a short, fixed time from its committed seed corpus.
#
# Usage: scripts/fuzz-run.sh BUILD_FUZZ_DIR/NAME_fuzz
#
# make test runs every tests/fuzz/*_fuzz.c this way (ctest's fuzz/NAME_fuzz). The seeds in
# tests/fuzz/corpus/NAME_fuzz/ (or tests/fuzz/corpus/NAME/; neither: an empty corpus) are copied
# to a scratch folder, so that what libFuzzer adds never touches the committed corpus. Every seed
# runs first; then the target mutates them for HL_FUZZ_SECONDS (default 8) seconds, with the
# libFuzzer dictionary tests/fuzz/NAME_fuzz.dict when there is one.
#
# Exit status: 0 when nothing went wrong; 1 on any crash, sanitizer report, leak, timeout or
# out-of-memory, whether a seed or a new input caused it (the input is kept in
# BUILD_FUZZ_DIR/fuzz-artifacts/ and printed with the command that replays it); 77 (ctest's
# "skipped") when the target is not built, which is a failure (1) under HL_REQUIRE_ALL=1.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 BUILD_FUZZ_DIR/NAME_fuzz" >&2
    exit 2
fi
exe=$1
name=$(basename "$exe")
src=$(cd "$(dirname "$0")/.." && pwd)
seconds=${HL_FUZZ_SECONDS:-8}

if [ ! -x "$exe" ]; then
    echo "$0: $exe is not built (make fuzz builds the fuzz targets with clang and libFuzzer)" >&2
    if [ "${HL_REQUIRE_ALL:-0}" = 1 ]; then
        exit 1
    fi
    exit 77
fi
exe=$(cd "$(dirname "$exe")" && pwd)/$name
if [ "$src/tests/fuzz/$name.c" -nt "$exe" ]; then
    echo "$0: warning: $exe is older than tests/fuzz/$name.c (make fuzz rebuilds it)" >&2
fi

seeds=""
for d in "$src/tests/fuzz/corpus/$name" "$src/tests/fuzz/corpus/${name%_fuzz}"; do
    if [ -d "$d" ]; then
        seeds=$d
        break
    fi
done

dict=()
if [ -f "$src/tests/fuzz/$name.dict" ]; then
    dict=(-dict="$src/tests/fuzz/$name.dict")
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/hookline-fuzz-$name.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$work/tmp"
if [ -n "$seeds" ]; then
    cp -r "$seeds"/. "$work/corpus/"
    echo "$name: $(find "$work/corpus" -type f | wc -l) seeds from ${seeds#"$src"/}, ${seconds} s"
else
    echo "$name: no seed corpus (tests/fuzz/corpus/$name/): starting empty, ${seconds} s"
fi
artifacts="$(dirname "$exe")/fuzz-artifacts"
mkdir -p "$artifacts"

# libFuzzer's own exit codes default to 77 for a crash, which ctest would take for "skipped":
# every non-zero status is mapped to 1 below, and the codes are set to 1 as well.
status=0
(cd "$work" && TMPDIR="$work/tmp" \
    ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" \
    UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    "$exe" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -error_exitcode=1 \
    -timeout_exitcode=1 -print_final_stats=1 -artifact_prefix="$artifacts/$name-" \
    "${dict[@]}" "$work/corpus") || status=$?

if [ "$status" -ne 0 ]; then
    echo "$0: $name FAILED (libFuzzer exit $status)" >&2
    for f in "$artifacts/$name"-*; do
        [ -f "$f" ] || continue
        [ "$f" -nt "$work" ] || continue
        echo "input kept: $f ($(wc -c <"$f") bytes); replay: $exe $f" >&2
        od -A d -c "$f" | head -40 >&2
    done
    exit 1
fi
