"""Small changes verl 0.9.1 needs to train on the CPU platform, applied only when it is selected.

Each patch states why it exists, and ``apply_cpu_patches`` refuses to run on any verl other
than the release they were written against (``VERL_VERSION``): they touch verl internals, and
a silent mismatch after an upgrade would be worse than a clear error. Everything else the CPU
run needs is configuration (``recipes/recipe/r4b_bpo_cpu.yaml``) or registration through verl's
public registries (``r4b_verl.cpu.registration``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import verl

from r4b_verl import VERL_VERSION


class CPUPatchError(RuntimeError):
    """The CPU patches cannot be applied to the installed verl."""


@dataclass(frozen=True)
class Patch:
    name: str
    why: str
    apply: Callable[[], None]


def _dedupe_gloo_backend() -> None:
    import torch.distributed as dist

    if getattr(dist.init_process_group, "_r4b_cpu_patched", False):
        return
    original = dist.init_process_group

    @functools.wraps(original)
    def init_process_group(*args, **kwargs):
        backend = kwargs.get("backend")
        if isinstance(backend, str) and "," in backend:
            parts = list(dict.fromkeys(p.strip() for p in backend.split(",")))
            kwargs["backend"] = ",".join(parts)
        return original(*args, **kwargs)

    init_process_group._r4b_cpu_patched = True
    dist.init_process_group = init_process_group


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
    if getattr(policy_cls, "_r4b_cpu_patched", False):
        return

    class UnpinnedCPUOffloadPolicy(policy_cls):
        _r4b_cpu_patched = True

        def __init__(self, pin_memory: bool = False, **kwargs):
            super().__init__(pin_memory=False, **kwargs)

    impl.CPUOffloadPolicy = UnpinnedCPUOffloadPolicy


PATCHES: tuple[Patch, ...] = (
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


def check_verl_version() -> None:
    if verl.__version__ != VERL_VERSION:
        raise CPUPatchError(
            f"r4b_verl.cpu patches were written for verl=={VERL_VERSION}, but verl=={verl.__version__} is "
            f"installed; install verl=={VERL_VERSION} or re-check each patch in r4b_verl/cpu/patches.py "
            "against the new release"
        )


def apply_cpu_patches() -> list[str]:
    """Apply every patch (idempotent); returns their names."""
    check_verl_version()
    for patch in PATCHES:
        try:
            patch.apply()
        except Exception as exc:  # noqa: BLE001 - re-raised with the patch's name and reason
            raise CPUPatchError(
                f"CPU patch {patch.name!r} ({patch.why}) failed on verl=={verl.__version__}: {exc!r}"
            ) from exc
    return [p.name for p in PATCHES]
