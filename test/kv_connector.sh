#!/usr/bin/env bash
# Scenario: a connector written by others, in C, against the installed
# public header — examples/kv_connector (provider "example.kv").
#   (a) it builds and installs with PGXS against the installed coco_target
#   (b) preloaded after coco_target, CREATE EXTENSION works and the provider
#       is registered
#   (c) coco.declare_target_state + coco.reconcile: create, update, delete
#       and no-op through example_kv.kv_store, with the run's per-provider
#       counts; a no-op does not write the row (its xmin stays)
#   (d) bad specs and keys fail the run with 22023 and change nothing
#   (e) the sink runs as the app owner: without privileges on kv_store the
#       run fails (42501); granted, it succeeds
#   (f) the background worker has the provider too (coco.submit + coco.wait)
#   (g) drop_app deletes what the app made
#   (h) preloaded *before* coco_target, it still loads and works
# Runs against the throwaway cluster scripts/test.sh starts (PG* env set);
# run on its own, it starts one (coco_target must be installed).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"

[ -n "${COCO_TMP:-}" ] || coco_cluster_start

fail() {
    echo "FAIL: $*" >&2
    echo "--- server log (tail) ---" >&2
    tail -n 40 "$COCO_TMP/postgres.log" >&2
    exit 1
}
# expect "what" "sql" "wanted output"
expect() {
    local got
    got=$(q -c "$2" 2>&1) || fail "$1: psql failed: $got"
    [ "$got" = "$3" ] || fail "$1: got '$got', wanted '$3'"
    ok "$1"
}
# expect_error "what" "sql" SQLSTATE — the statement fails with that state
expect_error() {
    local got
    got=$(q -v VERBOSITY=sqlstate -c "$2" 2>&1) && fail "$1: succeeded, wanted $3"
    case "$got" in *"$3"*) ok "$1 ($3)" ;; *) fail "$1: got '$got', wanted $3" ;; esac
}
counts() {  # the run's counts for example.kv: +inserted ~updated -deleted =unchanged
    echo "SELECT format('+%s ~%s -%s =%s', r#>>'{providers,example.kv,inserted}',
        r#>>'{providers,example.kv,updated}', r#>>'{providers,example.kv,deleted}',
        r#>>'{providers,example.kv,unchanged}') FROM ($1) AS x(r)"
}
store="SELECT string_agg(key || '=' || value::text, ' ' ORDER BY key) FROM example_kv.kv_store"
restart_with() {
    echo "shared_preload_libraries = '$1'" >>"$PGDATA/postgresql.conf"
    coco_pg_ctl -w -t 60 restart >/dev/null || fail "restart with '$1'"
}

# (a) build and install the example in a copy (the tree stays clean)
build="$COCO_TMP/kv_build"
cp -a "$COCO_ROOT/examples/kv_connector" "$build"
(cd "$build" && make -s PG_CONFIG="$COCO_PGBIN/pg_config" clean all install) ||
    fail "building examples/kv_connector"
ok "example built and installed with PGXS"

# (b) preloaded after coco_target
restart_with 'coco_target,pg_cron,kv_connector'
q -c "CREATE EXTENSION coco_target; CREATE EXTENSION kv_connector" >/dev/null
expect "provider registered" "SELECT example_kv.registered()" "t"

# (c) create, update, delete, no-op
q >/dev/null <<'SQL'
SELECT coco.create_app('kv');
SELECT coco.declare_target_state('kv', 'example.kv', '"a"', '{"value": 1}');
SELECT coco.declare_target_state('kv', 'example.kv', '"b"', '{"value": {"x": [1, 2]}}');
SQL
expect "create: counts" "$(counts "SELECT coco.reconcile('kv')")" "+2 ~0 -0 =0"
expect "create: store" "$store" 'a=1 b={"x": [1, 2]}'
q >/dev/null <<'SQL'
SELECT coco.declare_target_state('kv', 'example.kv', '"a"', '{"value": 10}');
SELECT coco.declare_target_state('kv', 'example.kv', '"c"', '{"value": "three"}');
SQL
expect "update a, delete b, create c: counts" "$(counts "SELECT coco.reconcile('kv')")" "+1 ~1 -1 =0"
expect "update a, delete b, create c: store" "$store" 'a=10 c="three"'
xmin_before=$(q -c "SELECT string_agg(xmin::text, ',' ORDER BY key) FROM example_kv.kv_store")
q >/dev/null <<'SQL'
SELECT coco.declare_target_state('kv', 'example.kv', '"c"', '{"value": "three"}');
SELECT coco.declare_target_state('kv', 'example.kv', '"a"', '{"value": 10}');
SQL
expect "same again: counts" "$(counts "SELECT coco.reconcile('kv')")" "+0 ~0 -0 =2"
expect "same again: rows not written" \
    "SELECT string_agg(xmin::text, ',' ORDER BY key) FROM example_kv.kv_store" "$xmin_before"
expect "tracking records are the specs" \
    "SELECT string_agg(key::text || ' ' || records::text, '; ' ORDER BY key::text)
       FROM coco.target_states WHERE app = 'kv' AND provider = 'example.kv'" \
    '"a" [{"value": 10}]; "c" [{"value": "three"}]'

# (d) bad input fails the run and changes nothing
expect_error "spec without value" "SELECT coco.declare_target_state('kv', 'example.kv', '\"a\"', '{\"v\": 1}');
                                   SELECT coco.reconcile('kv')" 22023
expect_error "spec with an extra field" "SELECT coco.declare_target_state('kv', 'example.kv', '\"a\"', '{\"value\": 1, \"x\": 2}');
                                   SELECT coco.reconcile('kv')" 22023
expect_error "key not a string" "SELECT coco.declare_target_state('kv', 'example.kv', '[\"a\", 1]', '{\"value\": 1}');
                                   SELECT coco.reconcile('kv')" 22023
expect "after bad input: store unchanged" "$store" 'a=10 c="three"'

# (e) the sink runs as the app owner
q >/dev/null <<'SQL'
CREATE ROLE kv_owner;
GRANT USAGE ON SCHEMA example_kv TO kv_owner;
SET ROLE kv_owner;
SELECT coco.create_app('kv_other');
SELECT coco.declare_target_state('kv_other', 'example.kv', '"z"', '{"value": 26}');
SQL
expect_error "no privilege on kv_store" "SET ROLE kv_owner; SELECT coco.reconcile('kv_other')" 42501
q -c "GRANT SELECT, INSERT, UPDATE, DELETE ON example_kv.kv_store TO kv_owner" >/dev/null
expect "granted: counts" "$(counts "SELECT coco.reconcile('kv_other')")" "+1 ~0 -0 =0"
expect "granted: store" "$store" 'a=10 c="three" z=26'
q -c "SET ROLE kv_owner; SELECT coco.drop_app('kv_other')" >/dev/null

# (f) the worker has the provider as well (it is preloaded)
q -c "SELECT coco.declare_target_state('kv', 'example.kv', '\"a\"', '{\"value\": 11}')" >/dev/null
run_id=$(q -c "SELECT coco.submit('kv')")   # committed, so the worker sees it
expect "worker: counts" "$(counts "SELECT coco.wait($run_id, '60s')")" "+0 ~1 -1 =0"
expect "worker: store" "$store" 'a=11'

# (h) preloaded before coco_target: the link to coco_target.so still works
restart_with 'kv_connector,coco_target,pg_cron'
expect "other order: provider registered" "SELECT example_kv.registered()" "t"
q -c "SELECT coco.declare_target_state('kv', 'example.kv', '\"b\"', '{\"value\": null}')" >/dev/null
expect "other order: counts" "$(counts "SELECT coco.reconcile('kv')")" "+1 ~0 -1 =0"
expect "other order: store" "$store" 'b=null'

# (g) dropping the app deletes what it made
q -c "SELECT coco.drop_app('kv')" >/dev/null
expect "drop_app: store empty" "SELECT count(*) FROM example_kv.kv_store" "0"
expect "drop_app: no tracking left" "SELECT count(*) FROM coco.target_states WHERE provider = 'example.kv'" "0"

echo "kv_connector: all checks passed"
