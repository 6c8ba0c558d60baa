#!/usr/bin/env bash
# Staged GRPO for R1-Code-Interpreter on Qwen2.5-3B-Instruct (paper settings; see run_14b_stage.sh,
# which this only resizes). Hardware: 1 node x 8 H100 80GB.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export NNODES=${NNODES:-1}
export ROLLOUT_TP=${ROLLOUT_TP:-1}
export SFT_DIR=${SFT_DIR:-checkpoints/r1ci/sft-3b}   # OUT_DIR of your run_sft.sh run for this size
export OUT_DIR=${OUT_DIR:-checkpoints/r1ci/grpo-3b}
export EXPERIMENT=${EXPERIMENT:-grpo-3b}
exec bash "${REPO_ROOT}/recipes/run_14b_stage.sh" "$@"
