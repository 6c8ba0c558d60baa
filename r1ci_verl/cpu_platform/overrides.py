"""Hydra overrides that let verl's own trainers run on the CPU platform (smoke runs only).

Each group is appended after a recipe's own overrides, so the cluster recipe and the CPU
smoke run share one launcher and differ only here. Why each matters is noted inline; the ones
without a note just pick the CPU-capable implementation (no flash-attention, no CUDA graphs,
no torch.compile).
"""

from __future__ import annotations

from r1ci_verl.cpu_platform import CPU_ENV

# Environment for every process of a CPU run (verl reads these at import time).
CPU_RUN_ENV: dict[str, str] = {
    **CPU_ENV,
    "WANDB_MODE": "disabled",
    "TOKENIZERS_PARALLELISM": "false",
    "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB of KV cache; plenty for a tiny model
}

SFT_CPU_OVERRIDES: tuple[str, ...] = (
    "trainer.device=cpu",
    "engine.strategy=fsdp2",
    "engine.use_torch_compile=False",
    "+model.override_config.attn_implementation=sdpa",
    "model.use_remove_padding=False",
    "data.num_workers=0",
    "data.use_dynamic_bsz=False",
)

GRPO_CPU_OVERRIDES: tuple[str, ...] = (
    "trainer.device=cpu",
    "actor_rollout_ref.actor.strategy=fsdp2",
    "actor_rollout_ref.ref.strategy=fsdp2",
    "actor_rollout_ref.actor.use_torch_compile=False",
    "+actor_rollout_ref.model.override_config.attn_implementation=sdpa",
    "actor_rollout_ref.model.use_remove_padding=False",
    "actor_rollout_ref.rollout.dtype=float32",
    # Actor and reference compute in float32 like the rollout, so vLLM's log-probs match the
    # actor's to ~1e-6 (bf16 autocast left ~1e-2 once SFT had sharpened the model).
    "+actor_rollout_ref.actor.fsdp_config.mixed_precision={param_dtype:fp32,reduce_dtype:fp32,buffer_dtype:fp32}",
    "+actor_rollout_ref.ref.fsdp_config.mixed_precision={param_dtype:fp32,reduce_dtype:fp32,buffer_dtype:fp32}",
    "actor_rollout_ref.rollout.enforce_eager=True",
    "actor_rollout_ref.rollout.free_cache_engine=False",
    # "Sleep mode is not supported on current platform"
    "+actor_rollout_ref.rollout.enable_sleep_mode=False",
    "actor_rollout_ref.rollout.enable_prefix_caching=False",
    # vLLM-CPU repacks weights at load: reload them layer-wise (see vllm_worker)
    "+actor_rollout_ref.rollout.engine_kwargs.vllm.worker_extension_cls="
    "r1ci_verl.cpu_platform.vllm_worker.CpuWorkerExtension",
    "actor_rollout_ref.rollout.agent.num_workers=1",
    "reward.num_workers=1",
    # One Ray "GPU" per trainer rank (the platform's resource name is GPU).
    "+ray_kwargs.ray_init.num_gpus=1",
    # Without these two the first run hung for > 8 minutes on 2 cores.
    "ray_kwargs.ray_init.num_cpus=16",
    "transfer_queue.backend.SimpleStorage.num_data_storage_units=1",
    "trainer.val_before_train=False",
)
