#!/usr/bin/env bash
# Scenario: pg_dump and restore of a database that uses coco_target.
# The bookkeeping (apps, pending declarations, tracking, runs, providers) is
# dumped with the database, so after a restore into a new database — owned
# by a role, not by the superuser — the next resync writes nothing, a change
# is applied as a change, and the app still belongs to its role.
# Runs against the throwaway cluster scripts/test.sh starts (PG* env set).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"

fail() { echo "FAIL: $*" >&2; exit 1; }

q -c "CREATE ROLE regress_coco_dumper LOGIN" \
  -c "CREATE DATABASE dump_src OWNER regress_coco_dumper" \
  -c "CREATE DATABASE dump_dst OWNER regress_coco_dumper"
q -d dump_src -c "CREATE EXTENSION coco_target"
q -d dump_src <<'SQL'
SET ROLE regress_coco_dumper;
CREATE TABLE src (id int PRIMARY KEY, v text);
INSERT INTO src SELECT g, 'v' || g FROM generate_series(1, 1000) g;
SELECT coco.create_app('dumped');
SELECT coco.declare_table('dumped', 'public.target',
    '[{"name":"id","type":"integer","nullable":false},{"name":"v","type":"text"}]', '{id}');
SELECT coco.declare_rows('dumped', 'public.target', 'SELECT id, v FROM src');
SELECT coco.declare_index('dumped', 'public.target', 'v_idx', '{v}');
SELECT coco.reconcile('dumped');
-- something pending too, to see that staging survives
SELECT coco.declare_row('dumped', 'public.target', '{"id": 5000, "v": "pending"}', '{later}');
SQL

dump="$COCO_TMP/dump_src.dump"
coco_as_pg "$COCO_PGBIN/pg_dump" -Fc -f "$dump" dump_src
coco_as_pg "$COCO_PGBIN/pg_restore" -d dump_dst "$dump"
ok "dumped dump_src and restored it into dump_dst"

[ "$(q -d dump_dst -c "SELECT count(*) FROM target")" = 1000 ] || fail "target rows not restored"
[ "$(q -d dump_dst -c "SELECT count(*) FROM coco.tracked_row")" = 1000 ] || fail "tracking not restored"
[ "$(q -d dump_dst -c "SELECT owner FROM coco.apps WHERE app = 'dumped'")" = regress_coco_dumper ] \
    || fail "the app's owner was not restored by name"
[ "$(q -d dump_dst -c "SELECT pending_declarations FROM coco.apps WHERE app = 'dumped'")" = 1 ] \
    || fail "pending declarations were not restored"
ok "target rows, tracking, owner and pending declarations restored"

components="SELECT string_agg(format('%s %s %s', component, state, last_run), ', ' ORDER BY component) FROM coco.components"
[ "$(q -d dump_dst -c "$components")" = "$(q -d dump_src -c "$components")" ] \
    || fail "components differ after restore: $(q -d dump_dst -c "$components")"
[ -n "$(q -d dump_dst -c "SELECT obj_description('coco.components'::regclass, 'pg_class')")" ] \
    || fail "the extension's comments are missing after restore"
ok "components (states, last runs) and the extension's comments restored: $(q -d dump_dst -c "$components")"

# the pending row of component {later} is applied; nothing else is written
out=$(q -d dump_dst <<'SQL'
SET ROLE regress_coco_dumper;
SELECT format('%s/%s/%s/%s', r->'inserted', r->'updated', r->'deleted', r->'unchanged')
  FROM coco.reconcile('dumped') r;
SQL
)
[ "$out" = "1/0/0/0" ] || fail "first run after restore: expected 1/0/0/0, got $out"
ok "the pending declaration was applied after the restore ($out)"

# a full resync writes nothing; the run ids continue after the dumped ones
xmin_before=$(q -d dump_dst -c "SELECT string_agg(xmin::text, ',' ORDER BY id) FROM target")
out=$(q -d dump_dst <<'SQL'
SET ROLE regress_coco_dumper;
SELECT coco.declare_table('dumped', 'public.target',
    '[{"name":"id","type":"integer","nullable":false},{"name":"v","type":"text"}]', '{id}');
SELECT coco.declare_rows('dumped', 'public.target', 'SELECT id, v FROM src');
SELECT coco.declare_index('dumped', 'public.target', 'v_idx', '{v}');
SELECT format('%s/%s/%s/%s', r#>'{providers,postgres.row,inserted}', r#>'{providers,postgres.row,updated}',
              r#>'{providers,postgres.row,deleted}', r#>'{providers,postgres.row,unchanged}')
  FROM coco.reconcile('dumped') r;
SQL
)
out=$(echo "$out" | tail -n 1)
[ "$out" = "0/0/0/1000" ] || fail "resync after restore: expected 0/0/0/1000 rows, got $out"
[ "$(q -d dump_dst -c "SELECT string_agg(xmin::text, ',' ORDER BY id) FROM target")" = "$xmin_before" ] \
    || fail "resync after restore rewrote rows"
[ "$(q -d dump_dst -c "SELECT count(DISTINCT run_id) = count(*) FROM coco.run")" = t ] \
    || fail "run ids collide after restore"
ok "resync after restore wrote nothing ($out) and run ids stay unique"

# a change is applied as a change
q -d dump_dst -c "UPDATE src SET v = 'changed' WHERE id = 7"
out=$(q -d dump_dst <<'SQL'
SET ROLE regress_coco_dumper;
SELECT coco.declare_table('dumped', 'public.target',
    '[{"name":"id","type":"integer","nullable":false},{"name":"v","type":"text"}]', '{id}');
SELECT coco.declare_rows('dumped', 'public.target', 'SELECT id, v FROM src');
SELECT coco.declare_index('dumped', 'public.target', 'v_idx', '{v}');
SELECT r#>>'{providers,postgres.row,updated}' FROM coco.reconcile('dumped') r;
SQL
)
[ "$(echo "$out" | tail -n 1)" = 1 ] || fail "a change after restore: expected 1 update, got $out"
[ "$(q -d dump_dst -c "SELECT v FROM target WHERE id = 7")" = changed ] || fail "change not applied"
ok "a change after restore is applied as one update"

q -c "DROP DATABASE dump_src" -c "DROP DATABASE dump_dst" -c "DROP ROLE regress_coco_dumper"
echo "dump/restore scenario passed"
