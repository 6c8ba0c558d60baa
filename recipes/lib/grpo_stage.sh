#!/usr/bin/env bash
# The one GRPO launcher for R1-Code-Interpreter: verl's PPO trainer in GRPO mode through our
# curriculum entry point (python -m r1ci_verl.training.main_grpo), vLLM rollout, our code-interpreter
# agent loop (code runs in tool_env's sandbox) and our reward (pkg://r1ci_verl.reward).
# The cluster recipes (run_{3b,7b,14b}_stage.sh) and the CPU smoke run call this script; they
# differ only in the knobs below and in trailing hydra overrides ("$@", passed last).
#
# Stages: one curriculum run of NUM_STAGES x STEPS_PER_STAGE steps, cut at stage boundaries.
# Calling this with STAGE=k trains until the end of stage k (k x STEPS_PER_STAGE steps); a
# checkpoint (sharded model + optimizer + dataloader/sampler state + HF export) is written at
# every stage boundary, and the call for stage k+1 resumes from it, so the curriculum sampler
# continues exactly where stage k ended.
#
# Knobs (environment):
#   MODEL_PATH          policy to start from: the SFT HF export                    [required]
#   TRAIN_FILES         RL parquet from `r1ci data build` (train side)             [required]
#   VAL_FILES           validation parquet (default: TRAIN_FILES)
#   POTENTIAL_FILE      `r1ci potential` output; empty = no curriculum (plain GRPO on all data)
#   NUM_STAGES, STEPS_PER_STAGE, STAGE       curriculum shape (paper: 4, 150) and the stage to reach
#   OUT_DIR             trainer.default_local_dir (checkpoints; HF export under
#                       global_step_<N>/actor/huggingface)
#   NNODES, GPUS_PER_NODE, ROLLOUT_TP
#   TRAIN_BATCH_SIZE (128), ROLLOUT_N (5), LR (1e-6), KL_COEF (0.001), TEMPERATURE (1.0),
#   VAL_TEMPERATURE (0.6), PPO_MINI_BATCH_SIZE, MICRO_BATCH_SIZE, MAX_PROMPT_LENGTH,
#   MAX_RESPONSE_LENGTH, GPU_MEMORY_UTILIZATION, SAVE_FREQ, TEST_FREQ
#   PROJECT, EXPERIMENT, LOGGERS, ROLLOUT_DATA_DIR (dump rollouts; empty = off)
#   ENTRY_POINT         python module run (default r1ci_verl.training.main_grpo)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

: "${MODEL_PATH:?set MODEL_PATH to the policy to start from (the SFT HF export)}"
: "${TRAIN_FILES:?set TRAIN_FILES to the RL train parquet}"
VAL_FILES=${VAL_FILES:-${TRAIN_FILES}}
POTENTIAL_FILE=${POTENTIAL_FILE:-}
NUM_STAGES=${NUM_STAGES:-4}
STEPS_PER_STAGE=${STEPS_PER_STAGE:-150}
STAGE=${STAGE:-${NUM_STAGES}}
OUT_DIR=${OUT_DIR:-checkpoints/r1ci-grpo}
NNODES=${NNODES:-1}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
ROLLOUT_TP=${ROLLOUT_TP:-1}
TRAIN_BATCH_SIZE=${TRAIN_BATCH_SIZE:-128}
ROLLOUT_N=${ROLLOUT_N:-5}
LR=${LR:-1e-6}
KL_COEF=${KL_COEF:-0.001}
TEMPERATURE=${TEMPERATURE:-1.0}
VAL_TEMPERATURE=${VAL_TEMPERATURE:-0.6}
PPO_MINI_BATCH_SIZE=${PPO_MINI_BATCH_SIZE:-32}
MICRO_BATCH_SIZE=${MICRO_BATCH_SIZE:-1}
MAX_PROMPT_LENGTH=${MAX_PROMPT_LENGTH:-2048}
MAX_RESPONSE_LENGTH=${MAX_RESPONSE_LENGTH:-8192}
GPU_MEMORY_UTILIZATION=${GPU_MEMORY_UTILIZATION:-0.6}
SAVE_FREQ=${SAVE_FREQ:-${STEPS_PER_STAGE}}
TEST_FREQ=${TEST_FREQ:-${STEPS_PER_STAGE}}
PROJECT=${PROJECT:-r1ci}
EXPERIMENT=${EXPERIMENT:-grpo}
LOGGERS=${LOGGERS:-'["console","wandb"]'}
ROLLOUT_DATA_DIR=${ROLLOUT_DATA_DIR:-null}
ENTRY_POINT=${ENTRY_POINT:-r1ci_verl.training.main_grpo}
AGENT_LOOP_CONFIG=${AGENT_LOOP_CONFIG:-${REPO_ROOT}/recipes/configs/agent_loop.yaml}

if (( STAGE < 1 || STAGE > NUM_STAGES )); then
    echo "grpo_stage.sh: STAGE=${STAGE} must lie in 1..NUM_STAGES=${NUM_STAGES}" >&2
    exit 2
fi
if (( (TRAIN_BATCH_SIZE * ROLLOUT_N) % (NNODES * GPUS_PER_NODE) != 0 )); then
    echo "grpo_stage.sh: TRAIN_BATCH_SIZE*ROLLOUT_N must be a multiple of NNODES*GPUS_PER_NODE" >&2
    exit 2
fi
TOTAL_STEPS=$((STAGE * STEPS_PER_STAGE))

curriculum=()
if [[ -n "${POTENTIAL_FILE}" ]]; then
    curriculum=(
        +curriculum.potential_file="${POTENTIAL_FILE}"
        +curriculum.num_stages="${NUM_STAGES}"
        +curriculum.steps_per_stage="${STEPS_PER_STAGE}"
    )
fi

echo "grpo_stage.sh: stage ${STAGE}/${NUM_STAGES}: training until step ${TOTAL_STEPS} (resumes from ${OUT_DIR} if a checkpoint is there)" >&2
set -x
python -m "${ENTRY_POINT}" \
    algorithm.adv_estimator=grpo \
    algorithm.use_kl_in_reward=False \
    data.train_files="${TRAIN_FILES}" \
    data.val_files="${VAL_FILES}" \
    data.train_batch_size="${TRAIN_BATCH_SIZE}" \
    data.max_prompt_length="${MAX_PROMPT_LENGTH}" \
    data.max_response_length="${MAX_RESPONSE_LENGTH}" \
    data.filter_overlong_prompts=True \
    data.truncation=error \
    data.dataloader_num_workers=0 \
    actor_rollout_ref.model.path="${MODEL_PATH}" \
    actor_rollout_ref.actor.optim.lr="${LR}" \
    actor_rollout_ref.actor.ppo_mini_batch_size="${PPO_MINI_BATCH_SIZE}" \
    actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu="${MICRO_BATCH_SIZE}" \
    actor_rollout_ref.actor.use_kl_loss=True \
    actor_rollout_ref.actor.kl_loss_coef="${KL_COEF}" \
    actor_rollout_ref.actor.kl_loss_type=low_var_kl \
    actor_rollout_ref.actor.entropy_coeff=0 \
    actor_rollout_ref.actor.checkpoint.save_contents='["model","optimizer","extra","hf_model"]' \
    actor_rollout_ref.actor.checkpoint.load_contents='["model","optimizer","extra"]' \
    actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu="${MICRO_BATCH_SIZE}" \
    actor_rollout_ref.rollout.name=vllm \
    actor_rollout_ref.rollout.n="${ROLLOUT_N}" \
    actor_rollout_ref.rollout.temperature="${TEMPERATURE}" \
    actor_rollout_ref.rollout.val_kwargs.temperature="${VAL_TEMPERATURE}" \
    actor_rollout_ref.rollout.val_kwargs.do_sample=True \
    actor_rollout_ref.rollout.tensor_model_parallel_size="${ROLLOUT_TP}" \
    actor_rollout_ref.rollout.gpu_memory_utilization="${GPU_MEMORY_UTILIZATION}" \
    actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu="${MICRO_BATCH_SIZE}" \
    actor_rollout_ref.rollout.multi_turn.enable=True \
    actor_rollout_ref.rollout.agent.agent_loop_config_path="${AGENT_LOOP_CONFIG}" \
    actor_rollout_ref.rollout.agent.default_agent_loop=r1ci_code_interpreter \
    reward.custom_reward_function.path=pkg://r1ci_verl.reward \
    reward.custom_reward_function.name=compute_score \
    "${curriculum[@]}" \
    trainer.project_name="${PROJECT}" \
    trainer.experiment_name="${EXPERIMENT}" \
    trainer.logger="${LOGGERS}" \
    trainer.nnodes="${NNODES}" \
    trainer.n_gpus_per_node="${GPUS_PER_NODE}" \
    trainer.total_training_steps="${TOTAL_STEPS}" \
    trainer.save_freq="${SAVE_FREQ}" \
    trainer.test_freq="${TEST_FREQ}" \
    trainer.resume_mode=auto \
    trainer.default_local_dir="${OUT_DIR}" \
    trainer.rollout_data_dir="${ROLLOUT_DATA_DIR}" \
    "$@"
