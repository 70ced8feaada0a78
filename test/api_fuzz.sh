#!/usr/bin/env bash
# Scenario: a SQL-level fuzzer of the API (test/api_fuzz.sql) run by a role
# without superuser: random sequences of coco.* calls with hostile
# arguments and sabotaging user code, seed after seed, for
# COCO_FUZZ_SECONDS (60 by default; 1800 for a long run by hand).  It
# fails, naming the seed that replays it, when a backend dies (the server
# log shows a signal or a crash-restart) or a call ends in XX000.
# Replay a seed: COCO_FUZZ_SEED=<seed> bash scripts/... (one seed only).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"

seconds=${COCO_FUZZ_SECONDS:-60}
ops=${COCO_FUZZ_OPS:-150}

root="$COCO_TMP/fsroot"
mkdir -p "$root"
chown postgres: "$root"
q -c "CREATE EXTENSION coco_target" \
  -c "CREATE ROLE regress_fuzzer" -c "CREATE ROLE regress_alice" \
  -c "CREATE SCHEMA fz AUTHORIZATION regress_fuzzer" \
  -c "CREATE SCHEMA alice AUTHORIZATION regress_alice" \
  -c "SELECT coco.provide_context('files', 'localfs', '{\"root\": \"$root\"}', '{regress_fuzzer}')" >/dev/null
# another role's app, table and provider, for the fuzzer to aim at
q -c "SET ROLE regress_alice" \
  -c "CREATE TABLE alice.t (id int PRIMARY KEY, secret text)" \
  -c "INSERT INTO alice.t VALUES (1, 'alice only')" \
  -c "SELECT coco.create_app('alice_app')" \
  -c "SELECT coco.declare_table('alice_app', 'alice.t2', '[{\"name\":\"id\",\"type\":\"integer\"}]', '{id}')" \
  -c "SELECT coco.declare_rows('alice_app', 'alice.t2', 'SELECT id FROM alice.t')" \
  -c "SELECT coco.reconcile('alice_app')" >/dev/null
coco_psql -q -c "SET ROLE regress_fuzzer" -f "$COCO_ROOT/test/api_fuzz.sql" >/dev/null

fuzz() {
    q -c "SET ROLE regress_fuzzer" -c "SET statement_timeout = '20s'" -c "SET lock_timeout = '2s'" \
      -c "SET coco_target.lock_timeout = '2s'" -c "SET client_min_messages = error" \
      -c "SELECT sqlstate, n, example FROM fz.run($1, $ops)" 2>&1
}

start=$(date +%s)
seeds=0
calls=0
declare -A seen
while :; do
    if [ -n "${COCO_FUZZ_SEED:-}" ]; then seed=$COCO_FUZZ_SEED
    else seed="0.$(printf '%05d' $((RANDOM * 3 % 100000)))$seeds"; fi
    mark=$(coco_log_mark)
    out=$(fuzz "$seed" || true)
    sleep 0.2
    crash=$(coco_crashed_since "$mark")
    if [ -n "$crash" ]; then
        coco_wait_up || true
        fail "seed $seed: a backend died: $crash"
    fi
    # here-strings, not pipes: with pipefail, grep -q ending a pipe early
    # would make the writer's SIGPIPE read as "no match"
    if grep -q '^XX000|' <<<"$out"; then
        fail "seed $seed: XX000: $(grep '^XX000|' <<<"$out")"
    fi
    if ! grep -qE '^[0-9A-Z]{5}[|][0-9]+[|]' <<<"$out"; then
        # the session itself failed (a statement timeout outside a call)
        echo "seed $seed: no result: $(printf '%s' "$out" | head -c 300)"
    fi
    while IFS='|' read -r state n _; do
        [[ "$state" =~ ^[0-9A-Z]{5}$ ]] || continue
        seen[$state]=$((${seen[$state]:-0} + n))
        calls=$((calls + n))
    done <<<"$out"
    seeds=$((seeds + 1))
    [ -z "${COCO_FUZZ_SEED:-}" ] || break
    [ $(($(date +%s) - start)) -lt "$seconds" ] || break
    # now and then a clean slate, so early mistakes do not mask later calls
    if [ $((seeds % 10)) = 0 ]; then
        q -c "SELECT coco.drop_app(name, true) FROM coco.app WHERE owner = 'regress_fuzzer'::regrole" >/dev/null 2>&1 || true
    fi
done
[ -z "$(coco_crashed_since 0)" ] || fail "a backend died during the run"
summary=""
for s in $(printf '%s\n' "${!seen[@]}" | sort); do summary="$summary $s:${seen[$s]}"; done
ok "$seeds seeds, $calls calls in $(($(date +%s) - start)) s, no backend died, no XX000"
echo "SQLSTATEs:$summary"
[ "${seen[00000]:-0}" -gt 0 ] || fail "no call succeeded: the fuzzer is not reaching the API"
echo "api_fuzz scenario passed"
