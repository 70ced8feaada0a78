#!/usr/bin/env bash
# The project's test command: install deps, build, run the pg_regress suite
# (sql/ + expected/) with the isolation specs (test/isolation/), and every
# executable test/*.sh scenario, each against a throwaway cluster. The last
# line is always "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

passed=0
failed=0
# COCO_ONLY="regress isolation hostile ..." runs only the named suites and
# scenarios (test/NAME.sh); COCO_REGRESS="02_basic 24_x" only those
# pg_regress tests. Both are for quick runs by hand; CI runs everything.
wanted() {
    [ -z "${COCO_ONLY:-}" ] && return 0
    case " $COCO_ONLY " in *" $1 "*) return 0 ;; esac
    return 1
}
summary() {
    echo
    echo "$passed passed, $failed failed"
}

coco_install_deps

# A build failure (e.g. a -Werror warning) is one failed test, not a crash.
if ! coco_build; then
    echo "coco: BUILD FAILED (see compiler output above)"
    failed=1
    summary
    exit 1
fi

# --- pg_regress ------------------------------------------------------------
if compgen -G 'sql/*.sql' >/dev/null; then
    coco_cluster_start
    # pg_regress runs as postgres and writes results/ and regression.diffs
    # into the tree, which is root's: run it on a postgres-owned copy.
    tree="$COCO_TMP/tree"
    mkdir "$tree"
    cp -a Makefile ./*.control sql expected src "$tree"/
    # the isolation specs (test/isolation/specs + expected) too
    if [ -d test/isolation ]; then
        mkdir -p "$tree/test"
        cp -a test/isolation "$tree/test/"
    fi
    chown -R postgres: "$tree"
    # Two installcheck runs, pg_regress alone, then the isolation specs
    # alone, so a failure in one suite does not skip the other.
    for suite in regress isolation; do
        if [ "$suite" = regress ]; then only=(ISOLATION=); else only=(REGRESS=); fi
        [ "$suite" = isolation ] && [ ! -d test/isolation ] && continue
        wanted "$suite" || continue
        if [ "$suite" = regress ] && [ -n "${COCO_REGRESS:-}" ]; then
            only+=(REGRESS="$COCO_REGRESS")
        fi
        set +e
        # The suites assert the rows each declare_rows counts at declare
        # time (coco_target.declare_rows_count); sql/36_declare_unchecked.sql
        # covers the default, which counts nothing until the run.
        PGOPTIONS="-c coco_target.declare_rows_count=on" \
        coco_as_pg make -C "$tree" -s installcheck "${only[@]}" \
            PG_CONFIG="$COCO_PGBIN/pg_config" 2>&1 | tee "$COCO_TMP/$suite.out"
        rc=$?
        set -e
        # PG 15 prints one line per test: "test NAME ... ok" or "... FAILED",
        # pg_regress and pg_isolation_regress alike.
        ok=$(grep -cE '^(test| ) +[^ ]+ +\.\.\. +ok' "$COCO_TMP/$suite.out" || true)
        bad=$(grep -ciE '^(test| ) +[^ ]+ +\.\.\. +failed' "$COCO_TMP/$suite.out" || true)
        # pg_regress failing before any test (e.g. CREATE EXTENSION) counts too.
        if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
        passed=$((passed + ok))
        failed=$((failed + bad))
        if [ "$bad" -ne 0 ]; then
            diffs="$tree/regression.diffs"
            [ "$suite" = isolation ] && diffs="$tree/output_iso/regression.diffs"
            if [ -f "$diffs" ]; then cat "$diffs"; fi
            echo "--- server log (tail) ---"
            tail -n 50 "$COCO_TMP/postgres.log"
        fi
    done
    coco_cluster_stop
else
    echo "coco: no sql/*.sql, skipping pg_regress"
fi

# --- scenario tests --------------------------------------------------------
# Each gets its own fresh cluster (a scenario may crash or restart its server)
# and the cluster's environment; exit 0 = pass. They can source
# scripts/lib.sh to use coco_psql and coco_pg_ctl.
for t in test/*.sh; do
    [ -e "$t" ] || continue
    wanted "$(basename "$t" .sh)" || continue
    if [ ! -x "$t" ]; then
        echo "coco: WARNING: $t is not executable, not run"
        continue
    fi
    echo "=== scenario $t"
    set +e
    (set -e; coco_cluster_start; "./$t")
    rc=$?
    set -e
    if [ "$rc" -eq 0 ]; then
        echo "scenario $t ... ok"
        passed=$((passed + 1))
    else
        echo "scenario $t ... FAILED (exit $rc)"
        failed=$((failed + 1))
    fi
done

summary
# Zero tests run is a failure too: it means the suite silently vanished.
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
