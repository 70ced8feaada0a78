#!/usr/bin/env bash
# Scenario: the model-based random tester (test/model.py) for
# COCO_MODEL_SECONDS (150 by default; an hour by hand), seed after seed.
# It compares every run against an in-memory oracle of what is declared
# and fails naming the seed that replays it. Run by hand, it starts its own
# cluster:  test/model.sh --seed 17 -v   or   COCO_MODEL_SECONDS=3600 test/model.sh
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
if [ -z "${PGHOST:-}" ]; then
    coco_cluster_start
fi
# The tester restarts the server and makes runs crash on purpose
# (coco_target.fault_point), so a crash in the log is not a failure here:
# a run that must not fail is checked by the tester itself.
mark=$(coco_log_mark)
# a fixed hash seed: a seed replays the same operations
if ! PYTHONHASHSEED=0 /usr/bin/python3 "$COCO_ROOT/test/model.py" --seconds "${COCO_MODEL_SECONDS:-150}" "$@"; then
    echo "--- server log: fault points and backends that died ---"
    tail -c +"$((mark + 1))" "$COCO_TMP/postgres.log" |
        grep -E "fault point|terminated by signal|PANIC|TRAP" | tail -n 20 || true
    exit 1
fi
