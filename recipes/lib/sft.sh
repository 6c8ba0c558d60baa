#!/usr/bin/env bash
# The one SFT launcher: verl's own multi-turn SFT trainer (torchrun -m verl.trainer.sft_trainer)
# on a `messages` parquet written by `r1ci data sft`, exporting a HuggingFace checkpoint that the
# first GRPO stage starts from. recipes/run_sft.sh (cluster) and the CPU smoke run both call it;
# they differ only in the knobs below and in trailing hydra overrides ("$@", passed last).
#
# Knobs (environment):
#   MODEL_PATH        base model (HF dir or hub id)                       [required]
#   SFT_TRAIN_FILES   sft.parquet path(s), hydra list syntax allowed       [required]
#   SFT_VAL_FILES     validation parquet (default: none)
#   OUT_DIR           checkpoints; the HF export lands in OUT_DIR/global_step_<N>/huggingface
#   NNODES, GPUS_PER_NODE, NODE_RANK, MASTER_ADDR, MASTER_PORT   torchrun topology
#   EPOCHS, TRAIN_BATCH_SIZE, MICRO_BATCH_SIZE, MAX_LENGTH, LR, TOTAL_STEPS (empty = epochs)
#   PROJECT, EXPERIMENT   tracker names; LOGGERS e.g. '["console","wandb"]'
set -euo pipefail

: "${MODEL_PATH:?set MODEL_PATH to the base model}"
: "${SFT_TRAIN_FILES:?set SFT_TRAIN_FILES to the sft.parquet written by r1ci data sft}"
SFT_VAL_FILES=${SFT_VAL_FILES:-null}
OUT_DIR=${OUT_DIR:-checkpoints/r1ci-sft}
NNODES=${NNODES:-1}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-29500}
EPOCHS=${EPOCHS:-3}
TRAIN_BATCH_SIZE=${TRAIN_BATCH_SIZE:-32}
MICRO_BATCH_SIZE=${MICRO_BATCH_SIZE:-1}
MAX_LENGTH=${MAX_LENGTH:-8192}
LR=${LR:-1e-5}
TOTAL_STEPS=${TOTAL_STEPS:-null}
PROJECT=${PROJECT:-r1ci}
EXPERIMENT=${EXPERIMENT:-sft}
LOGGERS=${LOGGERS:-'["console","wandb"]'}

if (( TRAIN_BATCH_SIZE % (NNODES * GPUS_PER_NODE) != 0 )); then
    echo "sft.sh: TRAIN_BATCH_SIZE=${TRAIN_BATCH_SIZE} must be a multiple of NNODES*GPUS_PER_NODE=$((NNODES * GPUS_PER_NODE))" >&2
    exit 2
fi

set -x
torchrun --nnodes="${NNODES}" --nproc_per_node="${GPUS_PER_NODE}" --node_rank="${NODE_RANK}" \
    --master_addr="${MASTER_ADDR}" --master_port="${MASTER_PORT}" \
    -m verl.trainer.sft_trainer \
    data.train_files="${SFT_TRAIN_FILES}" \
    data.val_files="${SFT_VAL_FILES}" \
    data.messages_key=messages \
    data.custom_cls.path=pkg://r1ci_verl.training.sft_dataset \
    data.custom_cls.name=CodeInterpreterSFTDataset \
    data.train_batch_size="${TRAIN_BATCH_SIZE}" \
    data.micro_batch_size_per_gpu="${MICRO_BATCH_SIZE}" \
    data.max_length="${MAX_LENGTH}" \
    data.max_token_len_per_gpu="${MAX_LENGTH}" \
    model.path="${MODEL_PATH}" \
    optim.lr="${LR}" \
    checkpoint.save_contents='["model","optimizer","extra","hf_model"]' \
    trainer.default_local_dir="${OUT_DIR}" \
    trainer.project_name="${PROJECT}" \
    trainer.experiment_name="${EXPERIMENT}" \
    trainer.logger="${LOGGERS}" \
    trainer.total_epochs="${EPOCHS}" \
    trainer.total_training_steps="${TOTAL_STEPS}" \
    trainer.nnodes="${NNODES}" \
    trainer.n_gpus_per_node="${GPUS_PER_NODE}" \
    "$@"
