#!/usr/bin/env bash
# Scenario: the documentation's SQL runs as shown. Every ```sql block of
# README.md, docs/*.md and docs/connectors/*.md is run, in order, file by
# file; each file gets a fresh database (and the roles it creates are
# dropped after it). Blocks without the sql tag (output, signatures, C,
# shell) are not run.
#
# Each block runs in a psql session of its own (so psql meta-commands such
# as \gset work within a block), as the superuser postgres, with
# ON_ERROR_STOP: the block fails at its first error. A failure is reported
# as FILE:LINE (the markdown line of the failing statement's end) with
# the error, and the test goes on with the next block.
#
# Markers: an HTML comment, invisible when the markdown is rendered, on
# the lines just before a block (blank lines may come between):
#   <!-- docs-test: skip WHY -->       not run (a fragment, a placeholder);
#                                      reported as a SKIP line
#   <!-- docs-test: error SQLSTATE --> run; it must fail with that SQLSTATE
#   <!-- docs-test: needs EXTENSION --> run only if the server has that
#                                      extension (pgvector: needs vector);
#                                      otherwise reported as a SKIP line
#   <!-- docs-test: role NAME -->      run as role NAME
#                                      (SET SESSION AUTHORIZATION)
# and hidden setup, run like a block at that place:
#   <!-- docs-test: setup
#   SQL ...
#   -->
# In a block, a path that starts with /srv/ is rewritten to a directory
# below the test's temp dir, made for it and owned by the server's user,
# so the docs can show a readable root such as /srv/exports.
#
# The server gets examples/kv_connector (built here) preloaded, as its
# walk-through says, and cron.database_name set to the database of
# docs/worker.md, whose pg_cron example creates the extension.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"

[ -n "${COCO_TMP:-}" ] || coco_cluster_start

files=(README.md docs/*.md docs/connectors/*.md)
work="$COCO_TMP/docs"
mkdir -p "$work/srv"
chown -R postgres: "$work"

dbname() {  # docs/connectors/localfs.md -> docs_localfs
    local b
    b=$(basename "$1" .md | tr 'A-Z' 'a-z' | tr -c 'a-z0-9\n' '_')
    echo "docs_$b"
}

# The example connector, built in a copy (the tree stays clean), and the
# server restarted with it preloaded and pg_cron serving docs/worker.md's
# database.
build="$COCO_TMP/kv_build"
cp -a "$COCO_ROOT/examples/kv_connector" "$build"
(cd "$build" && make -s PG_CONFIG="$COCO_PGBIN/pg_config" clean all install) >/dev/null ||
    fail "building examples/kv_connector"
preload=$(q -c "SHOW shared_preload_libraries")
{
    echo "shared_preload_libraries = '$preload,kv_connector'"
    echo "cron.database_name = '$(dbname docs/worker.md)'"
} >>"$PGDATA/postgresql.conf"
coco_pg_ctl -w -t 60 restart >/dev/null || fail "restart with kv_connector preloaded"

# Split a markdown file into blocks: $2/N.sql, and $2/manifest with one
# "N|line|directives" line per block (directives joined by ';'; line is
# the markdown line just before the block's first line). A marker that no
# block follows is listed as "-|line|orphan MARKER".
split_blocks() {
    awk -v out="$2" '
    function emit(kind) {
        n++
        printf "%d|%d|%s\n", n, NR, (kind == "" ? pending : (pending == "" ? kind : pending ";" kind)) >> (out "/manifest")
        file = out "/" n ".sql"
        printf "" > file
        pending = ""; pline = 0
    }
    function orphan() {
        if (pending != "") printf "-|%d|orphan %s\n", pline, pending >> (out "/manifest")
        pending = ""; pline = 0
    }
    BEGIN { n = 0; pending = ""; mode = "" }
    mode == "sql" {
        if ($0 ~ /^[ \t]*```[ \t]*$/) { close(file); mode = ""; next }
        line = $0; sub("^" indent, "", line); print line >> file; next
    }
    mode == "setup" {
        if ($0 ~ /^[ \t]*-->[ \t]*$/) { close(file); mode = ""; next }
        print >> file; next
    }
    mode == "other" {
        if ($0 ~ /^[ \t]*```[ \t]*$/) mode = ""
        next
    }
    /^[ \t]*<!-- docs-test: setup[ \t]*$/ { emit("setup"); mode = "setup"; next }
    /^[ \t]*<!-- docs-test: .* -->[ \t]*$/ {
        d = $0
        sub(/^[ \t]*<!-- docs-test: */, "", d); sub(/ *-->[ \t]*$/, "", d)
        pending = (pending == "" ? d : pending ";" d)
        if (!pline) pline = NR
        next
    }
    /^[ \t]*```sql[ \t]*$/ {
        indent = $0; sub(/```sql.*/, "", indent)
        emit(""); mode = "sql"; next
    }
    /^[ \t]*```/ { orphan(); mode = "other"; next }
    /^[ \t]*$/ { next }
    { orphan() }
    END { orphan() }
    ' "$1"
}

total_run=0
total_skip=0
failures=0
report_fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# the roles there are before any doc runs; those a doc makes are dropped
roles_before=$(q -c "SELECT string_agg(quote_literal(rolname), ',') FROM pg_roles")

for f in "${files[@]}"; do
    [ -f "$f" ] || continue
    db=$(dbname "$f")
    dir="$work/$db"
    mkdir -p "$dir"
    : >"$dir/manifest"
    split_blocks "$f" "$dir"
    chown -R postgres: "$dir"
    q -c "CREATE DATABASE $db" >/dev/null
    ran=0
    setups=0
    skipped=0
    while IFS='|' read -r n line directives; do
        if [ "$n" = - ]; then
            report_fail "$f:$line: a docs-test marker that no sql block follows: ${directives#orphan }"
            continue
        fi
        skip="" want_error="" role="" kind=block
        IFS=';' read -r -a ds <<<"$directives"
        for d in "${ds[@]+"${ds[@]}"}"; do
            read -r word arg <<<"$d"
            case "$word" in
                skip) skip="${arg:-skipped}" ;;
                error) want_error="$arg" ;;
                needs)
                    have=$(q -d "$db" -c "SELECT count(*) FROM pg_available_extensions WHERE name = '$arg'")
                    [ "$have" = 1 ] || skip="needs $arg, which this server does not have"
                    ;;
                role) role="$arg" ;;
                setup) kind=setup ;;
                *) report_fail "$f:$line: unknown docs-test marker '$d'" ;;
            esac
        done
        if [ -n "$skip" ]; then
            echo "SKIP: $f:$((line + 1)): $skip"
            skipped=$((skipped + 1))
            continue
        fi
        for d in $(grep -o "[^A-Za-z0-9_.]/srv/[A-Za-z0-9_./-]*" "$dir/$n.sql" | cut -c2- || true); do
            mkdir -p "$work$d" && chown postgres: "$work$d"
        done
        sed -i "s|\([^A-Za-z0-9_.]\)/srv/|\1$work/srv/|g" "$dir/$n.sql"
        pre=()
        [ -z "$role" ] || pre=(-c "SET SESSION AUTHORIZATION $role")
        set +e
        timeout 60 runuser -u postgres -- "$COCO_PGBIN/psql" -X -q -v ON_ERROR_STOP=1 \
            -v VERBOSITY=verbose -d "$db" "${pre[@]+"${pre[@]}"}" -f "$dir/$n.sql" \
            >"$dir/$n.out" 2>&1
        rc=$?
        set -e
        ran=$((ran + 1))
        [ "$kind" = setup ] && setups=$((setups + 1))
        # psql:FILE:N: ERROR:  SQLSTATE: message (N: the statement's last line)
        err=$(grep -m1 -E '^psql:[^:]*:[0-9]+: (ERROR|FATAL|error):' "$dir/$n.out" ||
            grep -m1 -E '(ERROR|FATAL|error):' "$dir/$n.out" || true)
        at=$(echo "$err" | sed -n 's/^psql:[^:]*:\([0-9]*\): .*/\1/p')
        msg=$(echo "$err" | sed 's/^psql:[^:]*:[0-9]*: //')
        state=$(echo "$msg" | sed -n 's/^ERROR: *\([0-9A-Z]\{5\}\): .*/\1/p')
        where="$f:$((line + ${at:-1}))"
        [ "$kind" = setup ] && where="$where (hidden setup)"
        if [ -n "$want_error" ]; then
            if [ "$rc" -eq 0 ]; then
                report_fail "$where: the block succeeded, the doc says it fails with $want_error"
            elif [ "$state" != "$want_error" ]; then
                report_fail "$where: wanted error $want_error, got: ${msg:-exit $rc}"
                grep -E '^(DETAIL|HINT):' "$dir/$n.out" >&2 || true
            fi
        elif [ "$rc" -ne 0 ]; then
            [ "$rc" -eq 124 ] && msg="timed out after 60 s"
            report_fail "$where: ${msg:-psql exited with $rc}"
            grep -E '^(DETAIL|HINT|CONTEXT):' "$dir/$n.out" >&2 || true
        fi
    done <"$dir/manifest"
    echo "docs: $f: $ran blocks run ($setups of them hidden setup), $skipped skipped"
    total_run=$((total_run + ran))
    total_skip=$((total_skip + skipped))
    # a fresh start for the next file: its database and the roles it made go
    q -c "DROP DATABASE $db WITH (FORCE)" >/dev/null
    for r in $(q -c "SELECT quote_ident(rolname) FROM pg_roles WHERE rolname NOT IN ($roles_before)"); do
        q -c "DROP ROLE $r" >/dev/null
    done
done

[ "$failures" -eq 0 ] || fail "$failures failures in the documentation's SQL ($total_run blocks run)"
ok "every SQL block of the documentation ran as shown: $total_run blocks run in ${#files[@]} files, $total_skip skipped"
