"""Every place where r4b-verl touches verl internals, each with its reason: the file to re-read when verl moves.

Everything else joins verl through its public hooks: registries (``register_adv_est``, agent-loop
``register``, ``PlatformRegistry``, ``RolloutReplicaRegistry``), the worker named by
``actor_rollout_ref.rollout.agent.agent_loop_manager_class`` and ``custom_reward_function``. Nothing
below runs at import, and nothing runs in a process that does not select it:

=========================  ===========================================  ===============================
patch                      what it touches                              applied by, where
=========================  ===========================================  ===============================
``trainer-metrics``        ``PPOTrainer._compute_metrics`` and          ``BPOAgentLoopManager`` (the
                           ``._val_metrics_update`` (wrapped)           recipe names it): BPO runs only
``advantage-batch-view``   ``PPOTrainer._compute_advantage`` (wrapped)  ``BPOAgentLoopManager``, only
                           for the autothink / ada_grpo estimators      when one of them is selected
``rollout-adapter-table``  ``verl.workers.rollout.base._ROLLOUT_REGISTRY``  the CPU backend's registration
                           (one key added: ``hf_cpu``)                  (a name, inert until selected)
``gloo-backend-string``    ``torch.distributed.init_process_group``     CPU mode (``VERL_PLATFORM=cpu``)
``fsdp-engine-on-cpu``     verl's FSDP engines registered for ``cpu``   CPU mode
``fsdp2-unpinned-offload`` ``transformer_impl.CPUOffloadPolicy``        CPU mode
=========================  ===========================================  ===============================

Each patch refuses any verl but :data:`r4b_verl.VERL_VERSION` (a silent mismatch after an upgrade
would be worse than a clear error), checks the signature it wraps, is idempotent, and records what
it replaced so :func:`restore_all` can undo it (tests do).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import verl

from r4b_verl import VERL_VERSION


class VerlCompatError(RuntimeError):
    """A patch cannot be applied to the installed verl."""


@dataclass(frozen=True)
class Patch:
    name: str
    why: str
    apply: Callable[[], None]


# (owner, attribute) -> the object a patch replaced; the one owner of this module's state.
_ORIGINALS: dict[tuple[Any, str], Any] = {}


def _replace(owner: Any, attr: str, new: Any) -> None:
    _ORIGINALS.setdefault((owner, attr), getattr(owner, attr))
    setattr(owner, attr, new)


def restore_all() -> None:
    """Undo every replacement made in this process (the registry entries stay: they are names)."""
    for (owner, attr), original in _ORIGINALS.items():
        setattr(owner, attr, original)
    _ORIGINALS.clear()


def check_verl_version() -> None:
    if verl.__version__ != VERL_VERSION:
        raise VerlCompatError(
            f"r4b_verl/verl_compat.py patches were written for verl=={VERL_VERSION}, but verl=={verl.__version__} "
            f"is installed; install verl=={VERL_VERSION} or re-check each patch against the new release"
        )


def check_signature(fn: Callable, expected: tuple[str, ...]) -> None:
    names = tuple(inspect.signature(fn).parameters)[: len(expected)]
    if names != expected:
        raise VerlCompatError(
            f"r4b-verl wraps {fn.__qualname__}{expected} but this verl has {names}: "
            "r4b_verl/verl_compat.py needs updating"
        )


def apply(patches: tuple[Patch, ...]) -> list[str]:
    """Apply ``patches`` (idempotent); returns their names. Errors name the patch and its reason."""
    check_verl_version()
    for patch in patches:
        try:
            patch.apply()
        except Exception as exc:  # noqa: BLE001 - re-raised with the patch's name and reason
            raise VerlCompatError(
                f"patch {patch.name!r} ({patch.why}) failed on verl=={verl.__version__}: {exc!r}") from exc
    return [p.name for p in patches]


# ----------------------------------------------------------------------------- trainer metrics


def _trainer_metrics() -> None:
    from verl.trainer.ppo.v1 import trainer_base
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    from r4b_verl.metrics import train_metrics_from_transfer_queue, val_metrics_from_reward_extra_infos

    if getattr(PPOTrainer._compute_metrics, "_r4b_patched", False):
        return
    check_signature(PPOTrainer._compute_metrics, ("self", "batch", "metrics"))
    check_signature(PPOTrainer._val_metrics_update, ("self", "data_sources", "sample_uids", "reward_extra_infos_dict"))
    original_compute, original_val = PPOTrainer._compute_metrics, PPOTrainer._val_metrics_update

    @functools.wraps(original_compute)
    def _compute_metrics(self, batch, metrics, *args, **kwargs):
        # runs before the step's TransferQueue rows are cleared, so they can still be read
        result = original_compute(self, batch, metrics, *args, **kwargs)
        metrics.update(train_metrics_from_transfer_queue(trainer_base.tq, batch))
        return result

    @functools.wraps(original_val)
    def _val_metrics_update(self, data_sources, sample_uids, reward_extra_infos_dict, *args, **kwargs):
        bpo_metrics = val_metrics_from_reward_extra_infos(data_sources, reward_extra_infos_dict)
        metric_dict = original_val(self, data_sources, sample_uids, reward_extra_infos_dict, *args, **kwargs)
        metric_dict.update(bpo_metrics)
        return metric_dict

    _compute_metrics._r4b_patched = _val_metrics_update._r4b_patched = True
    _replace(PPOTrainer, "_compute_metrics", _compute_metrics)
    _replace(PPOTrainer, "_val_metrics_update", _val_metrics_update)


TRAINER_METRICS = Patch(
    "trainer-metrics",
    "verl 0.9.1 has no hook for extra trainer metrics: trainer.v1.trainer_mode picks the trainer class by a name "
    "verl also branches on ('sync' or not), so a subclass cannot be slotted in; the bpo/ step metrics need the "
    "step's rows, which only _compute_metrics sees before TransferQueue clears them",
    _trainer_metrics,
)


def _advantage_batch_view() -> None:
    from verl.trainer.ppo.v1 import trainer_base
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    from r4b_verl.methods.batch_view import batch_view, view_from_extra_fields
    from r4b_verl.methods.estimators import BATCH_VIEW_ESTIMATORS

    if getattr(PPOTrainer._compute_advantage, "_r4b_patched", False):
        return
    check_signature(PPOTrainer._compute_advantage, ("self", "batch", "metrics"))
    original = PPOTrainer._compute_advantage

    @functools.wraps(original)
    def _compute_advantage(self, batch, metrics, *args, **kwargs):
        if self.config.algorithm.adv_estimator not in BATCH_VIEW_ESTIMATORS:
            return original(self, batch, metrics, *args, **kwargs)
        # verl's own _compute_advantage reads the rows in batch.keys order: the view follows it
        data = trainer_base.tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id,
                                            select_fields=["extra_fields"])
        extra = data.pop("extra_fields").tolist()  # as r4b_verl.metrics reads it (indexing gives a LinkedList)
        view = view_from_extra_fields(extra, self.global_steps, self.total_training_steps)
        with batch_view(view):
            return original(self, batch, metrics, *args, **kwargs)

    _compute_advantage._r4b_patched = True
    _replace(PPOTrainer, "_compute_advantage", _compute_advantage)


ADVANTAGE_BATCH_VIEW = Patch(
    "advantage-batch-view",
    "verl 0.9.1 calls a registered estimator with rewards, mask, uid and config only; AutoThink's batch balance "
    "and Ada-GRPO's mode counts need each row's mode (TransferQueue extra_fields) and Ada-GRPO's decay the global "
    "step, which only the trainer's _compute_advantage has at hand",
    _advantage_batch_view,
)


# ----------------------------------------------------------------------------- CPU backend


def _rollout_adapter_table() -> None:
    from verl.workers.rollout import base as rollout_base

    from r4b_verl.backends.cpu.rollout import ROLLOUT_NAME

    rollout_base._ROLLOUT_REGISTRY[(ROLLOUT_NAME, "async")] = "r4b_verl.backends.cpu.rollout.HFCPUServerAdapter"


ROLLOUT_ADAPTER_TABLE = Patch(
    "rollout-adapter-table",
    "verl has no public registration call for the in-worker rollout adapter of a new rollout name "
    "(workers/rollout/base.py keeps a plain dict); the hf_cpu key is inert until rollout.name=hf_cpu",
    _rollout_adapter_table,
)


def _dedupe_gloo_backend() -> None:
    import torch.distributed as dist

    if getattr(dist.init_process_group, "_r4b_patched", False):
        return
    original = dist.init_process_group

    @functools.wraps(original)
    def init_process_group(*args, **kwargs):
        backend = kwargs.get("backend")
        if isinstance(backend, str) and "," in backend:
            kwargs["backend"] = ",".join(dict.fromkeys(p.strip() for p in backend.split(",")))
        return original(*args, **kwargs)

    init_process_group._r4b_patched = True
    _replace(dist, "init_process_group", init_process_group)


def _register_fsdp_engines_for_cpu() -> None:
    from verl.workers.engine.base import EngineRegistry
    from verl.workers.engine.fsdp import transformer_impl as impl

    engines = (("language_model", impl.FSDPEngineWithLMHead), ("value_model", impl.FSDPEngineWithValueHead))
    for model_type, cls in engines:
        for backend in ("fsdp", "fsdp2"):
            if "cpu" not in EngineRegistry._engines.get(model_type, {}).get(backend, {}):
                EngineRegistry.register(model_type=model_type, backend=backend, device="cpu")(cls)


def _unpinned_fsdp2_offload() -> None:
    from verl.workers.engine.fsdp import transformer_impl as impl

    policy_cls = impl.CPUOffloadPolicy
    if getattr(policy_cls, "_r4b_patched", False):
        return

    class UnpinnedCPUOffloadPolicy(policy_cls):
        _r4b_patched = True

        def __init__(self, pin_memory: bool = False, **kwargs):
            super().__init__(pin_memory=False, **kwargs)

    _replace(impl, "CPUOffloadPolicy", UnpinnedCPUOffloadPolicy)


CPU_PATCHES: tuple[Patch, ...] = (
    Patch(
        "gloo-backend-string",
        "verl builds 'cpu:gloo,{device}:{backend}' (utils/distributed.py), i.e. 'cpu:gloo,cpu:gloo' on CPU, "
        "which torch rejects as a duplicate device",
        _dedupe_gloo_backend,
    ),
    Patch(
        "fsdp-engine-on-cpu",
        "verl registers its FSDP engines for devices cuda and npu only (workers/engine/fsdp/transformer_impl.py)",
        _register_fsdp_engines_for_cpu,
    ),
    Patch(
        "fsdp2-unpinned-offload",
        "the FSDP2 ref model uses CPUOffloadPolicy(pin_memory=True), and pinning needs an accelerator",
        _unpinned_fsdp2_offload,
    ),
)
ALL_PATCHES: tuple[Patch, ...] = (TRAINER_METRICS, ROLLOUT_ADAPTER_TABLE, *CPU_PATCHES)


def current_platform_name() -> str | None:
    """The verl platform this process already resolved, if any (reads ``platform_manager._current_platform``)."""
    from verl.plugin.platform import platform_manager

    current = platform_manager._current_platform
    return None if current is None else current.device_name
