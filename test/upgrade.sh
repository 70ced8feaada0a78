#!/usr/bin/env bash
# Scenario: a database at 0.1 with the current library.  Before ALTER
# EXTENSION coco_target UPDATE the library refuses to act, with a hint;
# after it (through every update script) the database has the same
# objects, indexes, comments and view definitions as a fresh install, and
# apps work, tracking included (a resync writes nothing).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"

fail() { echo "FAIL: $*" >&2; exit 1; }

# the version the library and a fresh install are at
current=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$COCO_ROOT/coco_target.control")

# the extension's indexes, by table and definition
indexes() {
    q -d "$1" -c "SELECT indrelid::regclass || ' ' || pg_get_indexdef(indexrelid) FROM pg_index
                  WHERE indrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'coco'::regnamespace)
                  ORDER BY 1"
}

members() {
    q -d "$1" -c "SELECT pg_describe_object(classid, objid, 0) FROM pg_depend
                  WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
                    AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'coco_target')
                  ORDER BY 1"
}

# each member's comment, and each view's definition
described() {
    q -d "$1" -c "SELECT pg_describe_object(d.classid, d.objid, 0) || ': ' || coalesce(obj_description(d.objid, c.relname), '-')
                         || coalesce(' ' || (SELECT pg_get_viewdef(r.oid) FROM pg_class r
                                             WHERE d.classid = 'pg_class'::regclass AND r.oid = d.objid
                                               AND r.relkind = 'v'), '')
                  FROM pg_depend d JOIN pg_class c ON c.oid = d.classid
                  WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
                    AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'coco_target')
                  ORDER BY 1"
}

q -c "CREATE DATABASE up_old" -c "CREATE DATABASE up_new" >/dev/null
q -d up_old -c "CREATE EXTENSION coco_target VERSION '0.1'" \
  -c "SELECT coco.create_app('up')" \
  -c "SELECT coco.declare_table('up', 'public.t', '[{\"name\":\"id\",\"type\":\"integer\"},{\"name\":\"v\",\"type\":\"text\"}]', '{id}')" \
  -c "SELECT coco.declare_rows('up', 'public.t', 'SELECT g AS id, g::text AS v FROM generate_series(1, 100) g')" >/dev/null 2>&1 &&
    fail "the $current library acted on a 0.1 schema"
[ "$(q -d up_old -c "SELECT extversion FROM pg_extension WHERE extname = 'coco_target'")" = 0.1 ] || fail "not at 0.1"
err=$(q -d up_old -c "SELECT coco.create_app('up')" 2>&1 || true)
case "$err" in *"version 0.1 in this database, its library at $current"*) ;; *) fail "no clear refusal before the update: $err" ;; esac
ok "before the update, the library refuses with a hint: ${err%%$'\n'*}"

q -d up_old -c "ALTER EXTENSION coco_target UPDATE" >/dev/null
q -d up_old -c "SELECT coco.create_app('up')" \
  -c "SELECT coco.declare_table('up', 'public.t', '[{\"name\":\"id\",\"type\":\"integer\"},{\"name\":\"v\",\"type\":\"text\"}]', '{id}')" \
  -c "SELECT coco.declare_rows('up', 'public.t', 'SELECT g AS id, g::text AS v FROM generate_series(1, 100) g')" \
  -c "SELECT coco.reconcile('up')" >/dev/null
[ "$(q -d up_old -c "SELECT extversion FROM pg_extension WHERE extname = 'coco_target'")" = "$current" ] || fail "not updated to $current"
q -d up_new -c "CREATE EXTENSION coco_target" >/dev/null
[ "$(members up_old)" = "$(members up_new)" ] || fail "objects differ: $(diff <(members up_old) <(members up_new))"
[ "$(indexes up_old)" = "$(indexes up_new)" ] || fail "indexes differ: $(diff <(indexes up_old) <(indexes up_new))"
[ "$(described up_old)" = "$(described up_new)" ] || fail "comments or views differ: $(diff <(described up_old) <(described up_new))"
ok "updated to $current: $(members up_new | wc -l) objects and $(indexes up_new | wc -l) indexes, their comments and views the same as a fresh install"

# tracking works on the updated schema: re-declaring the same rows writes nothing
r=$(q -d up_old -c "SELECT coco.declare_table('up', 'public.t', '[{\"name\":\"id\",\"type\":\"integer\"},{\"name\":\"v\",\"type\":\"text\"}]', '{id}')" \
      -c "SELECT coco.declare_rows('up', 'public.t', 'SELECT g AS id, g::text AS v FROM generate_series(1, 100) g')" \
      -c "SELECT (coco.reconcile('up')) #>> '{providers,postgres.row,unchanged}'" | tail -1)
[ "$r" = 100 ] || fail "after the update the resync was not a no-op: $r"
[ "$(q -d up_old -c "SELECT count(*) FROM coco.target_states WHERE pending_action IS NULL")" = 1 ] || fail "target_states view"
ok "an app on the updated schema: loaded, then a resync wrote nothing (100 unchanged)"
