#!/usr/bin/env bash
# SFT warm start for R1-Code-Interpreter (paper: full-parameter, 3 epochs, batch 32) with
# verl's multi-turn SFT trainer, on teacher trajectories rendered by `r1ci data sft`
# (sft.parquet, `messages` column, byte-identical to the agent loop's transcripts).
# Hardware: Qwen2.5-14B on 1-2 nodes of 8x H100 80GB (3B/7B fit on one node).
# Output: ${OUT_DIR}/global_step_<N>/huggingface, the model the first GRPO stage starts from.
#
#   MODEL_PATH=Qwen/Qwen2.5-14B-Instruct SFT_TRAIN_FILES=data/r1ci/sft.parquet recipes/run_sft.sh
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# ---- user-adjustable -------------------------------------------------------------------
export MODEL_PATH=${MODEL_PATH:-Qwen/Qwen2.5-14B-Instruct}
export SFT_TRAIN_FILES=${SFT_TRAIN_FILES:-data/r1ci/sft.parquet}
export OUT_DIR=${OUT_DIR:-checkpoints/r1ci/sft-14b}
export NNODES=${NNODES:-1}
export GPUS_PER_NODE=${GPUS_PER_NODE:-8}
export EPOCHS=${EPOCHS:-3}                    # paper
export TRAIN_BATCH_SIZE=${TRAIN_BATCH_SIZE:-32}  # paper
export MICRO_BATCH_SIZE=${MICRO_BATCH_SIZE:-1}
export MAX_LENGTH=${MAX_LENGTH:-8192}
export LR=${LR:-1e-5}
export EXPERIMENT=${EXPERIMENT:-sft-14b}

# Sequence parallelism keeps 8k-token multi-turn transcripts of a 14B model in memory.
exec bash "${REPO_ROOT}/recipes/lib/sft.sh" \
    engine.strategy=fsdp2 \
    engine.ulysses_sequence_parallel_size="${SP_SIZE:-2}" \
    model.use_remove_padding=True \
    model.enable_gradient_checkpointing=True \
    "$@"
