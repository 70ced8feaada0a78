#!/usr/bin/env bash
# Scenario: build the libFuzzer target of test/fuzz (stable-key encoding,
# decision rules, row fingerprints) and fuzz for ~30 seconds from its seed
# corpus. Passes only if the target built, ran, and found nothing (no
# crash, sanitizer report, broken invariant, leak or timeout). Needs no
# database: the cluster the test runner starts is not used. clang and its
# libFuzzer runtime are installed by scripts/lib.sh; their absence is a
# failure, not a skip.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"

seconds="${COCO_FUZZ_SECONDS:-30}"

fail() {
    echo "fuzz_smoke: FAIL: $*" >&2
    exit 1
}

command -v clang >/dev/null 2>&1 ||
    fail "clang is not installed (packages clang and libclang-rt-14-dev)"
command -v make >/dev/null 2>&1 || fail "make is not installed"

work="$(mktemp -d -t coco-fuzz.XXXXXX)"
trap 'rm -rf "$work"' EXIT

echo "fuzz_smoke: building test/fuzz into $work"
if ! make -s -C "$COCO_ROOT/test/fuzz" FUZZ_BUILD="$work/build" \
    PG_CONFIG="$COCO_PGBIN/pg_config" all seeds >"$work/build.log" 2>&1; then
    cat "$work/build.log" >&2
    fail "the fuzz target did not build"
fi
nseeds=$(find "$work/build/seeds" -type f | wc -l)
[ "$nseeds" -gt 0 ] || fail "no seeds were written"

mkdir -p "$work/corpus" "$work/artifacts"
echo "fuzz_smoke: fuzzing for ${seconds}s from $nseeds seeds"
set +e
"$work/build/fuzz_coco" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
    "$work/corpus" "$work/build/seeds" >"$work/fuzz.log" 2>&1
rc=$?
set -e

execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9][0-9]*\)$/\1/p' "$work/fuzz.log" | tail -n 1)
findings=$(find "$work/artifacts" -type f | wc -l)
if [ "$rc" -ne 0 ] || [ "$findings" -ne 0 ] || [ -z "$execs" ]; then
    # the report: the broken invariant or sanitizer message and its stack
    grep -v -E '^#[0-9]+.*(NEW|REDUCE|pulse)' "$work/fuzz.log" | tail -n 60 >&2
    for f in "$work"/artifacts/*; do
        [ -f "$f" ] || continue
        echo "fuzz_smoke: failing input $(basename "$f") (hex):" >&2
        od -An -tx1 -v "$f" | head -n 20 >&2
    done
    fail "fuzzer exit $rc, $findings failing input(s), ${execs:-no} executions"
fi
# the target must really have run: seeds plus mutations, not just a start
[ "$execs" -gt "$nseeds" ] || fail "only $execs executions"

echo "fuzz_smoke: $execs executions in ${seconds}s, no findings"
