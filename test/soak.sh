#!/usr/bin/env bash
# Scenario: a one-minute concurrent soak.
#   setup: 4 apps soak_0..soak_3, each deriving tgt_i (root component) from a
#          2000-row src_i with declare_table + declare_rows + reconcile
#   load:  pgbench, 8 clients for 60 s, three scripts on a random app:
#          modify.sql  UPDATE a random source row, or DELETE one id and
#                      upsert another (ids in 1..2500), autocommit
#          root.sql    BEGIN; declare_table; declare_rows; reconcile; COMMIT
#                      (one transaction: a second declarer of the table waits
#                      for the first one's commit, which consumed its staging)
#          side.sql    BEGIN; clear_component('{c<client>}'); maybe declare_row
#                      of key 100000+client into it; then (random) either
#                      submit + COMMIT, or COMMIT + reconcile in its own
#                      transaction. The clear first makes a repeated
#                      declare_row of the same key legal while an earlier
#                      submit of it is still staged. side_expect records, in
#                      the same transaction, what the component should hold.
#                      (clear_component + reconcile in ONE transaction can
#                      deadlock with a concurrent run of the app: the clear
#                      deletes committed staging that the run then wants to
#                      consume, while the clearer waits for the run's lock.)
#   then:  wait (<= 60 s) for the worker's queue to drain, one final
#          declare + reconcile per app, and the oracle: tgt_i equals src_i
#          plus the side rows side_expect lists (EXCEPT both ways), tracking
#          matches the target, nothing is left staged, no run is stuck.
# Prints pgbench transactions and tps per script, runs (succeeded/failed),
# rows changed and errors. Exits non-zero on an oracle mismatch, a stuck run,
# a failed run or any pgbench error (none is expected: see the scripts).
# An "extra" side row (key 100000+client) whose client's last act on the app
# was a clear is a lost clear_component: a clear committed while a run was
# consuming an earlier clear marker of the same component is swallowed by
# the marker's ON CONFLICT DO NOTHING (src/connectors/postgres/declare.c) and never applied.
# Runs against the throwaway cluster scripts/test.sh starts (PG* env set).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"

APPS=4
ROWS=2000
CLIENTS=8
SECS=${COCO_SOAK_SECS:-60}
COLS='[{"name": "id", "type": "integer"}, {"name": "v", "type": "text"}, {"name": "n", "type": "integer"}]'

problems=0
fail() {
    echo "FAIL: $*" >&2
    problems=$((problems + 1))
}

# --- setup -----------------------------------------------------------------
{
    echo "CREATE EXTENSION coco_target;"
    echo "CREATE TABLE side_expect (app int, client int, n int NOT NULL, PRIMARY KEY (app, client));"
    for i in $(seq 0 $((APPS - 1))); do
        cat <<SQL
CREATE TABLE src_$i (id int PRIMARY KEY, v text, n int);
INSERT INTO src_$i SELECT g, md5(g::text), g FROM generate_series(1, $ROWS) g;
SELECT coco.create_app('soak_$i');
SELECT coco.declare_table('soak_$i', 'public.tgt_$i', '$COLS', '{id}');
SELECT coco.declare_rows('soak_$i', 'public.tgt_$i', 'SELECT id, v, n FROM public.src_$i');
SELECT coco.reconcile('soak_$i');
SQL
    done
} | q >/dev/null
for i in $(seq 0 $((APPS - 1))); do
    got=$(q -c "SELECT count(*) FROM tgt_$i")
    [ "$got" = "$ROWS" ] || { echo "FAIL: setup: tgt_$i has $got rows" >&2; exit 1; }
done
setup_runs=$(q -c "SELECT count(*) FROM coco.run")
echo "setup: $APPS apps of $ROWS rows reconciled ($setup_runs runs)"

# --- pgbench scripts -------------------------------------------------------
# Simple query protocol (the default): pgbench substitutes :variables as text,
# also inside string literals ('soak_:a', '{c:client_id}').
dir="$COCO_TMP/soak"
mkdir -p "$dir"
cat >"$dir/modify.sql" <<'SQL'
\set a random(0, 3)
\set id random(1, 2500)
\set id2 random(1, 2500)
\set n random(1, 1000000)
\set op random(0, 2)
\if :op = 0
DELETE FROM public.src_:a WHERE id = :id;
INSERT INTO public.src_:a (id, v, n) VALUES (:id2, 'i' || :n, :n)
    ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v, n = EXCLUDED.n;
\else
UPDATE public.src_:a SET v = 'u' || :n, n = :n WHERE id = :id;
\endif
SQL
cat >"$dir/root.sql" <<SQL
\\set a random(0, 3)
BEGIN;
SELECT coco.declare_table('soak_:a', 'public.tgt_:a', '$COLS', '{id}');
SELECT coco.declare_rows('soak_:a', 'public.tgt_:a', 'SELECT id, v, n FROM public.src_:a');
SELECT coco.reconcile('soak_:a');
COMMIT;
SQL
cat >"$dir/side.sql" <<'SQL'
\set a random(0, 3)
\set op random(0, 2)
\set mode random(0, 1)
\set n random(1, 1000000)
\set k 100000 + :client_id
BEGIN;
SELECT coco.clear_component('soak_:a', '{c:client_id}');
\if :op > 0
SELECT coco.declare_row('soak_:a', 'public.tgt_:a', '{"id": :k, "v": "side", "n": :n}', '{c:client_id}');
INSERT INTO public.side_expect VALUES (:a, :client_id, :n)
    ON CONFLICT (app, client) DO UPDATE SET n = EXCLUDED.n;
\else
DELETE FROM public.side_expect WHERE app = :a AND client = :client_id;
\endif
\if :mode = 0
COMMIT;
SELECT coco.reconcile('soak_:a');
\else
SELECT coco.submit('soak_:a');
COMMIT;
\endif
SQL
chown -R postgres: "$dir"

# --- load ------------------------------------------------------------------
echo "load: pgbench -c $CLIENTS -j 2 -T $SECS, modify@6 root@2 side@2"
set +e
coco_as_pg "$COCO_PGBIN/pgbench" -n -c "$CLIENTS" -j 2 -T "$SECS" \
    -h "$PGHOST" -p "$PGPORT" -U postgres --failures-detailed \
    -f "$dir/modify.sql@6" -f "$dir/root.sql@2" -f "$dir/side.sql@2" \
    postgres >"$dir/pgbench.out" 2>"$dir/pgbench.err"
pgbench_rc=$?
set -e
# pgbench 15: an error other than a serialization failure or deadlock aborts
# the client ("client N script M aborted ...", exit status 2); those two are
# counted as failed transactions and the client goes on.
aborted=$(grep -c "aborted in command" "$dir/pgbench.err" || true)
failed_tx=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$dir/pgbench.out")
failed_tx=${failed_tx:-0}
errors=$((aborted + failed_tx))
tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$dir/pgbench.out")
total_tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$dir/pgbench.out")
echo "pgbench: exit $pgbench_rc, ${total_tx:-?} transactions, tps ${tps:-?}, errors $errors ($aborted clients aborted, $failed_tx failed transactions)"
# per script: "SQL script 1: <file>" then " - N transactions (x% of total, tps = T)"
awk '/^SQL script [0-9]+:/ { name = $4; sub(".*/", "", name) }
     /^ - [0-9]+ transactions/ && name != "" {
         tps = $0; sub(/.*tps = /, "", tps); sub(/\).*/, "", tps)
         printf "  %-11s %7d transactions, tps %s\n", name, $2, tps; name = "" }' "$dir/pgbench.out"
if [ "$errors" -ne 0 ] || [ "$pgbench_rc" -ne 0 ]; then
    fail "pgbench reported errors (exit $pgbench_rc)"
    grep -E "aborted|ERROR|DETAIL|CONTEXT" "$dir/pgbench.err" | head -n 20 >&2 || true
    grep -E "failed|retried" "$dir/pgbench.out" >&2 || true
fi

# --- drain the worker's queue (bounded) ------------------------------------
deadline=$((SECONDS + 60))
pending=$(q -c "SELECT count(*) FROM coco.run WHERE status IN ('queued', 'running')")
while [ "$pending" != 0 ] && [ "$SECONDS" -lt "$deadline" ]; do
    sleep 0.5
    pending=$(q -c "SELECT count(*) FROM coco.run WHERE status IN ('queued', 'running')")
done
[ "$pending" = 0 ] || fail "$pending runs still queued or running 60 s after the load"
echo "drain: worker queue empty $((SECONDS - deadline + 60)) s after the load"

# --- final reconcile and oracle ---------------------------------------------
for i in $(seq 0 $((APPS - 1))); do
    q >/dev/null <<SQL
BEGIN;
SELECT coco.declare_table('soak_$i', 'public.tgt_$i', '$COLS', '{id}');
SELECT coco.declare_rows('soak_$i', 'public.tgt_$i', 'SELECT id, v, n FROM public.src_$i');
SELECT coco.reconcile('soak_$i');
COMMIT;
SQL
    # expected = source + the side rows side_expect says are declared
    exp="SELECT id, v, n FROM src_$i UNION ALL
         SELECT 100000 + client, 'side', n FROM side_expect WHERE app = $i"
    res=$(q <<SQL
WITH e AS ($exp)
SELECT (SELECT count(*) FROM (SELECT * FROM e EXCEPT SELECT * FROM tgt_$i) m),
       (SELECT count(*) FROM (SELECT * FROM tgt_$i EXCEPT SELECT * FROM e) x),
       (SELECT count(*) FROM tgt_$i),
       (SELECT count(*) FROM src_$i),
       (SELECT count(*) FROM side_expect WHERE app = $i),
       (SELECT count(*) FROM coco.tracked_row t JOIN coco.app a USING (app_id) WHERE a.name = 'soak_$i'),
       (SELECT count(*) FROM coco.tracked_row t JOIN coco.app a USING (app_id)
                        JOIN coco.component c USING (comp_id)
         WHERE a.name = 'soak_$i' AND c.path <> '{}'),
       (SELECT pending_declarations FROM coco.apps WHERE app = 'soak_$i')
     + (SELECT count(*) FROM coco.cleared_component s JOIN coco.app a USING (app_id) WHERE a.name = 'soak_$i')
SQL
)
    IFS='|' read -r missing extra ntgt nsrc nside ntracked ntracked_side nstaged <<<"$res"
    echo "app soak_$i: target $ntgt rows = source $nsrc + side $nside; tracked $ntracked (side $ntracked_side); missing $missing, extra $extra, staged $nstaged"
    if [ "$missing" != 0 ] || [ "$extra" != 0 ]; then
        fail "soak_$i: target differs from the oracle (missing $missing, extra $extra)"
    fi
    if [ "$ntracked" != "$ntgt" ] || [ "$ntracked" != $((nsrc + nside)) ]; then
        fail "soak_$i: $ntracked tracked rows, target has $ntgt, source + side = $((nsrc + nside))"
    fi
    [ "$ntracked_side" = "$nside" ] || fail "soak_$i: $ntracked_side rows tracked in side components, $nside expected"
    [ "$nstaged" = 0 ] || fail "soak_$i: $nstaged declarations still staged after the final reconcile"
    if [ "$missing" != 0 ] || [ "$extra" != 0 ]; then
        q <<SQL >&2
WITH e AS ($exp)
(SELECT 'missing', * FROM (SELECT * FROM e EXCEPT SELECT * FROM tgt_$i) m ORDER BY id LIMIT 5)
UNION ALL
(SELECT 'extra', * FROM (SELECT * FROM tgt_$i EXCEPT SELECT * FROM e) x ORDER BY id LIMIT 5)
SQL
    fi
done

# --- figures -----------------------------------------------------------------
IFS='|' read -r ok_runs failed_runs stuck sync_runs submitted changed <<<"$(q <<SQL
SELECT count(*) FILTER (WHERE status = 'succeeded'),
       count(*) FILTER (WHERE status = 'failed'),
       count(*) FILTER (WHERE status IN ('queued', 'running')),
       count(*) FILTER (WHERE submitted_at IS NULL),
       count(*) FILTER (WHERE submitted_at IS NOT NULL),
       coalesce(sum(coalesce(inserted, 0) + coalesce(updated, 0) + coalesce(deleted, 0)), 0)
  FROM coco.runs
SQL
)"
retried=$(q -c "SELECT count(*) FROM coco.run WHERE attempts > 1")
echo "runs: $ok_runs succeeded, $failed_runs failed, $stuck stuck ($sync_runs synchronous, $submitted submitted, $retried retried); rows changed $((changed))"
echo "errors: $errors"
[ "$stuck" = 0 ] || fail "$stuck runs stuck in queued/running"
if [ "$failed_runs" != 0 ]; then
    fail "$failed_runs runs failed"
    q -c "SELECT run_id, app, attempts, error FROM coco.runs WHERE status = 'failed' LIMIT 5" >&2
fi
if [ "$problems" -ne 0 ]; then
    echo "--- server log (errors) ---" >&2
    grep -E "ERROR|FATAL|PANIC" "$COCO_TMP/postgres.log" | head -n 20 >&2 || true
    echo "soak scenario FAILED ($problems problems)"
    exit 1
fi
echo "soak scenario passed"
