#!/usr/bin/env bash
# Show coco_target working: install deps, build, start a throwaway cluster,
# run demo/demo.sql with every query echoed, then stop and delete the cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

coco_install_deps
coco_build
coco_cluster_start
echo "coco: throwaway cluster on port $PGPORT (socket in $PGHOST)"
# Fed on stdin: postgres may not be able to read the root-owned tree.
# -e echoes each query before its result.
coco_psql -e -f - <demo/demo.sql
