#!/usr/bin/env bash
# Staged GRPO for R1-Code-Interpreter on Qwen2.5-14B with the paper's settings: lr 1e-6,
# 5 responses per prompt, KL 0.001 (low_var_kl as a loss), batch 128, temperature 1.0
# (validation 0.6), 4 curriculum stages of 150 steps, code executed by our sandbox during
# rollout, reward by pkg://r1ci_verl.reward. Hardware: 2 nodes x 8 H100 80GB (paper: 16 H100).
#
# One call trains one stage: STAGE=k runs until step k*STEPS_PER_STAGE and resumes from the
# checkpoint written at the end of stage k-1 (model, optimizer and curriculum sampler state;
# each boundary also exports HF weights under global_step_<N>/actor/huggingface). Run
# STAGE=1..4 in turn, or STAGE=4 once to train all stages in one go.
#
#   for stage in 1 2 3 4; do STAGE=$stage recipes/run_14b_stage.sh; done
#
# MODEL_PATH defaults to the newest HF export of recipes/run_sft.sh under SFT_DIR
# (checkpoints/r1ci/sft-14b/global_step_<N>/huggingface); TRAIN_FILES, VAL_FILES and
# POTENTIAL_FILE to what `r1ci data build --out data/r1ci` and `r1ci potential` write.
#
#   STAGE=1 MODEL_PATH=checkpoints/r1ci/sft-14b/global_step_600/huggingface \
#   TRAIN_FILES=data/r1ci/train.parquet POTENTIAL_FILE=data/r1ci/potential.parquet \
#   recipes/run_14b_stage.sh [hydra overrides...]
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

source "${REPO_ROOT}/recipes/lib/sft_export.sh"

# ---- user-adjustable -------------------------------------------------------------------
export SFT_DIR=${SFT_DIR:-checkpoints/r1ci/sft-14b}   # recipes/run_sft.sh's OUT_DIR
export MODEL_PATH=${MODEL_PATH:-$(latest_sft_export "${SFT_DIR}")}   # default: the newest SFT export there
: "${MODEL_PATH:?set MODEL_PATH to the SFT HF export (none found under SFT_DIR=${SFT_DIR}; run recipes/run_sft.sh)}"
export TRAIN_FILES=${TRAIN_FILES:-data/r1ci/train.parquet}
export VAL_FILES=${VAL_FILES:-data/r1ci/test.parquet}
export POTENTIAL_FILE=${POTENTIAL_FILE:-data/r1ci/potential.parquet}   # empty: no curriculum
export STAGE=${STAGE:-1}
export NUM_STAGES=${NUM_STAGES:-4}                 # paper
export STEPS_PER_STAGE=${STEPS_PER_STAGE:-150}     # paper
export OUT_DIR=${OUT_DIR:-checkpoints/r1ci/grpo-14b}
export NNODES=${NNODES:-2}
export GPUS_PER_NODE=${GPUS_PER_NODE:-8}
export ROLLOUT_TP=${ROLLOUT_TP:-4}
export TRAIN_BATCH_SIZE=${TRAIN_BATCH_SIZE:-128}   # paper
export ROLLOUT_N=${ROLLOUT_N:-5}                   # paper
export LR=${LR:-1e-6}                              # paper
export KL_COEF=${KL_COEF:-0.001}                   # paper
export TEMPERATURE=${TEMPERATURE:-1.0}             # paper
export VAL_TEMPERATURE=${VAL_TEMPERATURE:-0.6}     # paper
export PPO_MINI_BATCH_SIZE=${PPO_MINI_BATCH_SIZE:-32}
export MICRO_BATCH_SIZE=${MICRO_BATCH_SIZE:-1}
export MAX_PROMPT_LENGTH=${MAX_PROMPT_LENGTH:-2048}
export MAX_RESPONSE_LENGTH=${MAX_RESPONSE_LENGTH:-8192}
export EXPERIMENT=${EXPERIMENT:-grpo-14b}

exec bash "${REPO_ROOT}/recipes/lib/grpo_stage.sh" \
    actor_rollout_ref.actor.strategy=fsdp2 \
    actor_rollout_ref.ref.strategy=fsdp2 \
    actor_rollout_ref.model.use_remove_padding=True \
    actor_rollout_ref.model.enable_gradient_checkpointing=True \
    "$@"
