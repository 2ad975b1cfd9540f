"""The ``hf_cpu`` rollout backend for verl: replica (trainer side) and server adapter (worker side).

- ``HFCPUReplica`` (a verl ``RolloutReplica``): started by verl's ``LLMServerManager`` for
  ``actor_rollout_ref.rollout.name=hf_cpu``; launches one ``HFCPUServer`` Ray actor per replica
  and hands its handle to verl's load balancer, which routes the agent loops' ``generate`` calls.
- ``HFCPUServerAdapter`` (a verl ``BaseRollout``): built inside every hybrid actor worker; after
  each actor update verl's ``naive`` checkpoint engine calls ``update_weights`` with the actor's
  full tensors, which rank 0 of each replica pushes to its server.

Both names are registered by ``r4b_verl.backends.cpu.registration``; nothing here runs unless a config
selects ``rollout.name=hf_cpu``.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import ray
import torch
from verl.workers.rollout.base import BaseRollout
from verl.workers.rollout.replica import RolloutReplica

ROLLOUT_NAME = "hf_cpu"

def server_actor_name(replica_rank: int, node_rank: int = 0) -> str:
    return f"{ROLLOUT_NAME}_server_{replica_rank}_{node_rank}"


def _require_cpu_platform() -> None:
    from verl.utils.device import get_device_name

    if get_device_name() != "cpu":
        raise RuntimeError(
            f"rollout.name={ROLLOUT_NAME} needs verl's cpu platform in every process, but this process "
            f"(pid {os.getpid()}) runs on {get_device_name()!r}: run with +recipe=r4b_bpo_cpu, or export "
            "VERL_PLATFORM=cpu before starting the trainer"
        )


class HFCPUReplica(RolloutReplica):
    """One rollout replica = one ``HFCPUServer`` actor next to the replica's first actor worker."""

    async def launch_servers(self):
        from r4b_verl.backends.cpu.server import HFCPUServer

        _require_cpu_platform()
        if self.world_size != 1 or self.nnodes != 1:
            raise ValueError(
                f"{ROLLOUT_NAME} serves a replica from one process: set actor_rollout_ref.rollout."
                f"tensor_model_parallel_size=1 (got a replica world size of {self.world_size})"
            )
        node_id = None
        if self.workers:
            node_id = await self.workers[0].__ray_call__.remote(lambda self: ray.get_runtime_context().get_node_id())
        options: dict[str, Any] = {
            "name": server_actor_name(self.replica_rank),
            "num_cpus": 0,  # shares the worker's cores; generation and training alternate
            "max_concurrency": self.max_concurrency,
        }
        if node_id is not None:
            options["scheduling_strategy"] = ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(
                node_id=node_id, soft=False
            )
        server = (
            ray.remote(HFCPUServer)
            .options(**options)
            .remote(config=self.config, model_config=self.model_config, replica_rank=self.replica_rank)
        )
        await server.ping.remote()  # surface model-loading errors here, not at the first generate
        self.servers = [server]
        self._server_handle = server
        self._server_address = f"{ROLLOUT_NAME}-replica-{self.replica_rank}"

    def rollout_worker_use_gpu(self) -> bool:
        return False


class HFCPUServerAdapter(BaseRollout):
    """In-worker side of ``hf_cpu``: forwards the actor's weights to the replica's server."""

    def __init__(self, config, model_config, device_mesh, replica_rank: int = -1, **kwargs):
        super().__init__(config, model_config, device_mesh)
        rank = int(os.environ.get("RANK", "0"))
        replica_world = (
            self.config.tensor_model_parallel_size
            * self.config.data_parallel_size
            * self.config.pipeline_model_parallel_size
        )
        self.replica_rank = rank // replica_world if replica_rank == -1 else replica_rank
        self.is_replica_leader = rank % replica_world == 0
        self.sleep_level = 2
        self._server = None

    def _server_handle(self):
        if self._server is None:
            self._server = ray.get_actor(server_actor_name(self.replica_rank))
        return self._server

    async def resume(self, tags: list[str]):
        return None  # weights and cache stay in host memory

    async def release(self):
        return None

    async def update_weights(
        self,
        weights: Generator[tuple[str, torch.Tensor], None, None],
        wire_format: str = "named_tensors",
        peft_config: Any = None,
        global_steps: int | None = None,
        **kwargs,
    ):
        if wire_format != "named_tensors":
            raise NotImplementedError(
                f"{ROLLOUT_NAME} takes full named tensors; set "
                "actor_rollout_ref.rollout.checkpoint_engine.backend=naive (got wire_format={wire_format!r})"
            )
        if peft_config is not None:
            raise NotImplementedError(f"{ROLLOUT_NAME} does not serve LoRA adapters: set model.lora.merge=True")
        # Every rank must walk the generator: DTensor.full_tensor() inside it is a collective.
        state = {}
        for name, tensor in weights:
            if hasattr(tensor, "full_tensor"):
                tensor = tensor.full_tensor()
            if self.is_replica_leader:
                state[name] = tensor.detach().to("cpu", copy=True)
        if self.is_replica_leader:
            await self._server_handle().update_weights.remote(state, global_steps)
