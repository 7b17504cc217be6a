#!/usr/bin/env bash
# The main job: set up (packages + build), then run `mmfuse demo`: a synthetic
# plant of inspection points (camera, infrared, sound, sensors) with injected
# faults and recorded ground truth is generated, fitted on its baselines,
# inspected in one round, fused into alarms stored in SQLite, and scored
# against the ground truth (precision/recall per modality and fused, latency).
#   DEVICES=50 SEED=7 scripts/demo.sh
# Afterwards `build/mmfuse serve --config $DATA/plant.yaml --port 8080` shows the
# plant on the dashboard (see docs/dashboard.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
DATA=${DATA:-demo-plant}
echo "\$ mmfuse demo --devices ${DEVICES:-20} --seed ${SEED:-1} --data $DATA"
build/mmfuse demo --devices "${DEVICES:-20}" --seed "${SEED:-1}" --data "$DATA"
