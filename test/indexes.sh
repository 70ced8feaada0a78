#!/usr/bin/env bash
# Scenario: indexes built with "concurrently": true, and pgvector indexes.
# - the build runs in the worker, outside the run's transaction, with
#   CREATE INDEX CONCURRENTLY: the index ends valid, its records pruned;
# - writes to the table are not blocked while it waits for an open
#   transaction, where a plain build blocks them (shown side by side);
# - a change rebuilds it concurrently, a leftover index of the same name
#   is replaced, and removal drops it;
# - hnsw/ivfflat with a metric when pgvector is installed, on vector
#   columns and (pgvector 0.7 or later) halfvec and sparsevec columns, each
#   with its type's operator class; a column retyped under one (vector(3)
#   to vector(4), vector to halfvec) keeps it, with the new type's class;
#   ivfflat on sparsevec is refused (42704);
#   without pgvector the declaration is refused with 42704, and the skipped
#   part says so.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"

COLS='[{"name":"id","type":"integer"},{"name":"v","type":"text"}]'
# declare(options): the table, its rows and the index v_idx with options
declare() {
    q -c "SELECT coco.declare_table('ix', 'public.t', '$COLS', '{id}')" \
      -c "SELECT coco.declare_rows('ix', 'public.t', 'SELECT id, v FROM src')" \
      -c "SELECT coco.declare_index('ix', 'public.t', 'v_idx', '{v}', 'btree', '$1')" >/dev/null
}
# Wait for a run by polling in short transactions: a concurrent build
# waits for every transaction that holds an older snapshot, and a session
# blocked in coco.wait() holds one.
await_run() {
    local run=$1 status=
    for _ in $(seq 1 240); do
        status=$(q -c "SELECT status FROM coco.runs WHERE run_id = $run")
        case "$status" in succeeded|failed) break ;; esac
        sleep 0.25
    done
    echo "$status"
}
reconcile_and_wait() {
    local r run
    r=$(q -c "SELECT coco.reconcile('ix')")
    run=$(q -c "SELECT '$r'::jsonb ->> 'completion_run_id'")
    [ -n "$run" ] || fail "no completion run queued: $r"
    [ "$(await_run "$run")" = succeeded ] || fail "run $run: $(q -c "SELECT status || ' ' || coalesce(error, '') FROM coco.runs WHERE run_id = $run")"
}
index_def() {
    q -c "SELECT coalesce(string_agg(pg_get_indexdef(i.indexrelid) || CASE WHEN i.indisvalid THEN '' ELSE ' INVALID' END, '; '), 'none')
          FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
          WHERE i.indrelid = 'public.t'::regclass AND c.relname = 't_v_idx'"
}

q -c "CREATE EXTENSION coco_target" \
  -c "CREATE TABLE src AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g" \
  -c "SELECT coco.create_app('ix')" >/dev/null

# 1. a concurrent build
declare '{"concurrently": true}'
reconcile_and_wait
[ "$(index_def)" = "CREATE INDEX t_v_idx ON public.t USING btree (v)" ] || fail "after create: $(index_def)"
[ "$(q -c "SELECT provider || ' ' || coalesce(pending_action, 'done') || ' ' || jsonb_array_length(records) FROM coco.target_states WHERE name = 'public.t@index/v_idx'")" = \
  "postgres.index_concurrently done 1" ] || fail "tracking after create"
ok "created with CREATE INDEX CONCURRENTLY: valid, recorded"

# 2. writes during the build.  An open transaction has inserted into t; a
# build must wait for it.  Meanwhile another session inserts, with a 3 s
# statement timeout.
writer_during_build() {
    local opts=$1 holder r run rc
    q -c "SELECT coco.declare_table('ix', 'public.t', '$COLS', '{id}')" \
      -c "SELECT coco.declare_rows('ix', 'public.t', 'SELECT id, v FROM src')" \
      -c "SELECT coco.declare_index('ix', 'public.t', 'w_idx', '{id,v}', 'btree', '$opts')" \
      -c "SELECT coco.declare_index('ix', 'public.t', 'v_idx', '{v}', 'btree', '{\"concurrently\": true}')" >/dev/null
    coco_psql -qAt -c "BEGIN" -c "INSERT INTO t VALUES (-1, 'open')" -c "SELECT pg_sleep(6)" -c "ROLLBACK" >/dev/null &
    holder=$!
    sleep 1
    if [ "$opts" = '{}' ]; then
        # a plain build runs in the reconcile itself
        coco_psql -qAt -c "SELECT coco.reconcile('ix')" >/dev/null &
        run=$!
    else
        r=$(q -c "SELECT coco.reconcile('ix')")
        run=$(q -c "SELECT '$r'::jsonb ->> 'completion_run_id'")
    fi
    sleep 1
    set +e
    q -c "SET statement_timeout = '3s'" -c "INSERT INTO t VALUES (-2, 'during')" -c "DELETE FROM t WHERE id = -2" >/dev/null 2>&1
    rc=$?
    set -e
    wait "$holder"
    if [ "$opts" = '{}' ]; then
        wait "$run" || fail "the plain build failed"
    else
        [ "$(await_run "$run")" = succeeded ] || fail "concurrent build run $run did not succeed"
    fi
    echo "$rc"
}
[ "$(writer_during_build '{}')" != 0 ] || fail "a plain build did not block the writer (the contrast fails)"
ok "a plain build blocks a writer while it waits for an open transaction"
q -c "SELECT 1" >/dev/null
[ "$(writer_during_build '{"concurrently": true}')" = 0 ] || fail "the writer was blocked by the concurrent build"
[ "$(q -c "SELECT count(*) FROM pg_index WHERE indrelid = 'public.t'::regclass AND NOT indisvalid")" = 0 ] || fail "an invalid index remains"
ok "a concurrent build lets the writer through, and ends valid"

# 3. change (unique) rebuilds concurrently; a leftover of the same name is
# replaced; removal drops it
declare '{"concurrently": true, "unique": true}'
reconcile_and_wait
[ "$(index_def)" = "CREATE UNIQUE INDEX t_v_idx ON public.t USING btree (v)" ] || fail "after change: $(index_def)"
q -c "DROP INDEX t_v_idx" -c "CREATE INDEX t_v_idx ON t (id)" >/dev/null
declare '{"concurrently": true, "unique": true, "where": "id > 0"}'
reconcile_and_wait
[ "$(index_def)" = "CREATE UNIQUE INDEX t_v_idx ON public.t USING btree (v) WHERE (id > 0)" ] || fail "leftover not replaced: $(index_def)"
# switched to a plain build: the concurrent index goes in the run, before
# the plain one is built
declare '{"unique": true}'
r=$(q -c "SELECT coco.reconcile('ix')")
[ "$(index_def)" = "CREATE UNIQUE INDEX t_v_idx ON public.t USING btree (v)" ] || fail "switched to plain: $(index_def)"
run=$(q -c "SELECT '$r'::jsonb ->> 'completion_run_id'")
[ "$(await_run "$run")" = succeeded ] || fail "completion of the switch"
[ "$(q -c "SELECT string_agg(provider, ',') FROM coco.target_states WHERE provider LIKE 'postgres.index%'")" = postgres.index ] ||
    fail "after the switch: $(q -c "SELECT provider, pending_action FROM coco.target_states")"
# and back, then removal
declare '{"concurrently": true}'
reconcile_and_wait
[ "$(index_def)" = "CREATE INDEX t_v_idx ON public.t USING btree (v)" ] || fail "switched back: $(index_def)"
q -c "SELECT coco.declare_table('ix', 'public.t', '$COLS', '{id}')" \
  -c "SELECT coco.declare_rows('ix', 'public.t', 'SELECT id, v FROM src')" >/dev/null
reconcile_and_wait
[ "$(index_def)" = none ] || fail "after removal: $(index_def)"
[ "$(q -c "SELECT count(*) FROM coco.target_states WHERE provider LIKE 'postgres.index%'")" = 0 ] || fail "index states remain"
ok "changed and rebuilt concurrently, leftover replaced, switched to plain and back, removed"

# the same index declared both ways in one component: the later declaration
# replaces the earlier one; declared by another component: refused (23505)
out=$(q -c "SELECT coco.declare_table('ix', 'public.t', '$COLS', '{id}')" \
        -c "SELECT coco.declare_index('ix', 'public.t', 'v_idx', '{v}')" \
        -c "SELECT coco.declare_index('ix', 'public.t', 'v_idx', '{v}', 'btree', '{\"concurrently\": true}')" \
        -c "SELECT string_agg(s.provider, ',') FROM coco.staged_state s JOIN coco.app a USING (app_id)
            WHERE a.name = 'ix' AND s.name LIKE '%v_idx'" 2>&1)
staged=$(echo "$out" | tail -n 1)
[ "$staged" = postgres.index_concurrently ] || fail "both variants of one index in one component: staged '$out'"
state=$(q -c "DO \$\$ BEGIN PERFORM coco.declare_index('ix', 'public.t', 'v_idx', '{v}', 'btree', '{}', '{other}');
              RAISE EXCEPTION 'accepted'; EXCEPTION WHEN OTHERS THEN RAISE NOTICE '%', SQLSTATE; END \$\$" 2>&1 |
        grep -o '[0-9A-Z]\{5\}$' || true)
[ "$state" = 23505 ] || fail "one index declared by two components: $state"
reconcile_and_wait
[ "$(index_def)" = "CREATE INDEX t_v_idx ON public.t USING btree (v)" ] || fail "declared plainly then concurrently: $(index_def)"
ok "one index declared plainly then concurrently in one component: the concurrent declaration replaced the plain one; in another component refused (23505)"

# 4. pgvector
if [ -n "$(q -c "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")" ]; then
    q -c "CREATE EXTENSION vector" \
      -c "CREATE TABLE vsrc AS SELECT g AS id, ('[' || g % 7 || ',' || g % 5 || ',1]')::vector(3) AS e FROM generate_series(1, 500) g" >/dev/null
    for m in 'hnsw|cosine|{"m": 8, "ef_construction": 32}|vector_cosine_ops' \
             'ivfflat|l2|{"lists": 4}|vector_l2_ops' 'hnsw|ip|{}|vector_ip_ops'; do
        IFS='|' read -r method metric with opclass <<<"$m"
        q -c "SELECT coco.declare_table('ix', 'public.vt', '[{\"name\":\"id\",\"type\":\"integer\"},{\"name\":\"e\",\"type\":\"vector(3)\"}]', '{id}')" \
          -c "SELECT coco.declare_rows('ix', 'public.vt', 'SELECT id, e FROM vsrc')" \
          -c "SELECT coco.declare_index('ix', 'public.vt', 'e_idx', '{e}', '$method', '{\"metric\": \"$metric\", \"with\": $with}')" >/dev/null
        q -c "SELECT coco.reconcile('ix')" >/dev/null
        def=$(q -c "SELECT pg_get_indexdef('public.vt_e_idx'::regclass)")
        # vector_l2_ops is the default operator class: not spelled out
        case "$def" in *"USING $method (e $opclass)"*|*"USING $method (e)"*) ;; *) fail "pgvector $method/$metric: $def" ;; esac
        [ "$metric" != l2 ] || case "$def" in *"(e)"*) ;; *) fail "l2: $def" ;; esac
        echo "  $def"
    done
    ok "pgvector: hnsw and ivfflat with each metric and their parameters"

    # halfvec and sparsevec (pgvector 0.7): the column's type picks the class
    if [ -n "$(q -c "SELECT 1 FROM pg_extension WHERE extname = 'vector'
                       AND string_to_array(extversion, '.')::int[] >= '{0,7}'")" ]; then
        q -c "CREATE TABLE hsrc AS SELECT id, e::halfvec(3) AS h, e::sparsevec(3) AS s FROM vsrc" >/dev/null
        for m in 'h|halfvec|hnsw|cosine|halfvec_cosine_ops' 'h|halfvec|ivfflat|l2|halfvec_l2_ops' \
                 'h|halfvec|ivfflat|ip|halfvec_ip_ops' 's|sparsevec|hnsw|ip|sparsevec_ip_ops' \
                 's|sparsevec|hnsw|l2|sparsevec_l2_ops' 's|sparsevec|hnsw|cosine|sparsevec_cosine_ops'; do
            IFS='|' read -r col type method metric opclass <<<"$m"
            q -c "SELECT coco.declare_table('ix', 'public.ht', '[{\"name\":\"id\",\"type\":\"integer\"},{\"name\":\"$col\",\"type\":\"$type(3)\"}]', '{id}')" \
              -c "SELECT coco.declare_rows('ix', 'public.ht', 'SELECT id, $col FROM hsrc')" \
              -c "SELECT coco.declare_index('ix', 'public.ht', 'x_idx', '{$col}', '$method', '{\"metric\": \"$metric\"}')" >/dev/null
            q -c "SELECT coco.reconcile('ix')" >/dev/null
            def=$(q -c "SELECT pg_get_indexdef('public.ht_x_idx'::regclass)")
            # an l2 class may be its type's default: then it is not spelled out
            case "$def" in *"USING $method ($col $opclass)"*|*"USING $method ($col)"*) ;; *) fail "pgvector $type $method/$metric: $def" ;; esac
            [ "$metric" = l2 ] || case "$def" in *"$opclass"*) ;; *) fail "$type $metric: $def" ;; esac
            echo "  $def"
        done
        ok "pgvector: halfvec and sparsevec columns take their own operator classes"

        # A declared column retyped under its hnsw index: vector(3) to
        # vector(4), then to halfvec(4), whose operator class differs. The
        # index is dropped before the column changes and built again after
        # the rows, with the new type's class; a second run writes nothing.
        q -c "SELECT coco.declare_table('ix', 'public.rt', '[{\"name\":\"id\",\"type\":\"integer\"},{\"name\":\"e\",\"type\":\"vector(3)\"}]', '{id}')" \
          -c "SELECT coco.declare_rows('ix', 'public.rt', 'SELECT id, e FROM vsrc')" \
          -c "SELECT coco.declare_index('ix', 'public.rt', 'e_idx', '{e}', 'hnsw', '{\"metric\": \"cosine\"}')" \
          -c "SELECT coco.reconcile('ix')" >/dev/null
        for type in 'vector(4)|vector_cosine_ops' 'halfvec(4)|halfvec_cosine_ops'; do
            IFS='|' read -r type opclass <<<"$type"
            for run in 1 2; do
                q -c "SELECT coco.declare_table('ix', 'public.rt', '[{\"name\":\"id\",\"type\":\"integer\"},{\"name\":\"e\",\"type\":\"$type\"}]', '{id}')" \
                  -c "SELECT coco.declare_rows('ix', 'public.rt', 'SELECT id, (e::real[] || 1::real)::$type AS e FROM vsrc')" \
                  -c "SELECT coco.declare_index('ix', 'public.rt', 'e_idx', '{e}', 'hnsw', '{\"metric\": \"cosine\"}')" >/dev/null
                out=$(q -v VERBOSITY=sqlstate -c "SELECT coco.reconcile('ix')" 2>&1) || fail "retyped to $type (run $run): $out"
                changed=$(q -c "SELECT (r->>'inserted')::int + (r->>'updated')::int + (r->>'deleted')::int FROM (SELECT '$out'::jsonb r) x")
                [ "$run" = 1 ] || [ "$changed" = 0 ] || fail "retyped to $type: the second run wrote: $out"
                def=$(q -c "SELECT pg_get_indexdef(to_regclass('public.rt_e_idx'))")
                case "$def" in *"USING hnsw (e $opclass)"*) ;; *) fail "retyped to $type (run $run): index: '$def'" ;; esac
            done
            echo "  $def"
        done
        ok "pgvector: a column retyped from vector(3) to vector(4) and to halfvec(4) keeps its hnsw index, with the new type's class"
        # the same for an index its component does not declare again
        bt() {
            q -c "SELECT coco.declare_table('ix', 'public.bt', '[{\"name\":\"id\",\"type\":\"integer\"},{\"name\":\"e\",\"type\":\"$1\"}]', '{id}', component => '{t}')" \
              -c "SELECT coco.declare_rows('ix', 'public.bt', 'SELECT id, e::$1 AS e FROM vsrc', component => '{t}')" >/dev/null
        }
        bt 'vector(3)'
        q -c "SELECT coco.declare_index('ix', 'public.bt', 'e_idx', '{e}', 'ivfflat', '{\"metric\": \"l2\", \"with\": {\"lists\": 4}}', '{i}')" \
          -c "SELECT coco.reconcile('ix')" >/dev/null
        for run in 1 2; do
            bt 'halfvec(3)'
            out=$(q -v VERBOSITY=sqlstate -c "SELECT coco.reconcile('ix')" 2>&1) || fail "retyped to halfvec(3) under another component's index (run $run): $out"
            changed=$(q -c "SELECT (r->>'inserted')::int + (r->>'updated')::int + (r->>'deleted')::int FROM (SELECT '$out'::jsonb r) x")
            [ "$run" = 1 ] || [ "$changed" = 0 ] || fail "retyped to halfvec(3): the second run wrote: $out"
            def=$(q -c "SELECT pg_get_indexdef(to_regclass('public.bt_e_idx'))")
            case "$def" in *"USING ivfflat (e halfvec_l2_ops)"*) ;; *) fail "retyped to halfvec(3) (run $run): index: '$def'" ;; esac
        done
        echo "  $def"
        q -c "SELECT coco.clear_component('ix', '{i}')" -c "SELECT coco.clear_component('ix', '{t}')" -c "SELECT coco.reconcile('ix')" >/dev/null
        ok "pgvector: the same when the index's component is not declared again (ivfflat, vector(3) to halfvec(3))"

        # pgvector has no ivfflat class for sparsevec: the build is refused
        q -c "SELECT coco.declare_table('ix', 'public.ht', '[{\"name\":\"id\",\"type\":\"integer\"},{\"name\":\"s\",\"type\":\"sparsevec(3)\"}]', '{id}')" \
          -c "SELECT coco.declare_index('ix', 'public.ht', 'x_idx', '{s}', 'ivfflat', '{\"metric\": \"l2\"}')" >/dev/null
        out=$(q -v VERBOSITY=sqlstate -c "SELECT coco.reconcile('ix')" 2>&1 || true)
        case "$out" in *"ERROR:  42704"*) ;; *) fail "ivfflat on sparsevec: $out" ;; esac
        q -c "SELECT coco.clear_component('ix', '{}')" >/dev/null
        ok "pgvector: ivfflat on a sparsevec column is refused (42704)"
    else
        echo "SKIP: pgvector here is older than 0.7: halfvec and sparsevec indexes not exercised"
    fi
else
    state=$(q -c "SELECT coco.declare_table('ix', 'public.vt', '[{\"name\":\"id\",\"type\":\"integer\"},{\"name\":\"e\",\"type\":\"real[]\"}]', '{id}')" \
              -c "DO \$\$ BEGIN PERFORM coco.declare_index('ix', 'public.vt', 'e_idx', '{e}', 'hnsw', '{\"metric\": \"cosine\"}');
                  RAISE EXCEPTION 'accepted'; EXCEPTION WHEN OTHERS THEN RAISE NOTICE '%', SQLSTATE; END \$\$" 2>&1 | grep -o '[0-9A-Z]\{5\}$' || true)
    [ "$state" = 42704 ] || fail "hnsw without pgvector: $state"
    echo "SKIP: pgvector is not installed here (no Debian 12 package): hnsw/ivfflat builds on vector, halfvec and sparsevec columns not exercised; their refusal without it is (42704)"
fi
