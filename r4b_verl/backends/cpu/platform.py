"""verl platform ``cpu``: runs verl's trainer, FSDP2 engines and collectives on the CPU (gloo).

Registered under the name ``cpu`` in verl's ``PlatformRegistry`` and selected only by
``VERL_PLATFORM=cpu``: ``is_platform_available`` is always False, so verl's auto-detection
never picks it, and a GPU machine without that variable keeps its CUDA/NPU platform.

Ray placement bundles ask for ``{"CPU": n, <ray_resource_name()>: 1}``, so the platform keeps
the resource name ``GPU`` and the CPU overlay starts Ray with logical GPUs
(``ray_kwargs.ray_init.num_gpus``): one "GPU" slot per training process, no device behind it.
"""

from __future__ import annotations

import os
import types
from contextlib import contextmanager
from typing import Any, Optional

import torch
from verl.plugin.platform.platform_base import PlatformBase
from verl.plugin.platform.platform_manager import PlatformRegistry

PLATFORM_NAME = "cpu"


def _noop(*args, **kwargs):
    return None


class _CPUStream:
    """Stand-in for ``torch.cuda.Stream``: CPU work is synchronous, so waits and syncs are no-ops."""

    def __init__(self, *args, **kwargs):
        pass

    def synchronize(self):
        return None

    def wait_stream(self, stream):
        return None

    def wait_event(self, event):
        return None

    def record_event(self, event=None):
        return _CPUEvent()

    def query(self):
        return True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _CPUEvent:
    def __init__(self, *args, **kwargs):
        pass

    def record(self, stream=None):
        return None

    def synchronize(self):
        return None

    def wait(self, stream=None):
        return None

    def query(self):
        return True

    def elapsed_time(self, other):
        return 0.0


def _build_device_module() -> types.ModuleType:
    """The ``torch.cuda``-shaped module verl calls through ``get_torch_device()``.

    verl calls ``empty_cache``, ``synchronize``, ``mem_get_info``, ``memory_allocated``,
    ``set_device``, RNG state and stream functions on it; on CPU they are no-ops or host values.
    """
    mod = types.ModuleType("r4b_verl.backends.cpu.device")
    mod.is_available = lambda: True
    mod.device_count = lambda: 1
    mod.current_device = lambda: 0
    mod.set_device = _noop
    mod.synchronize = _noop
    mod.empty_cache = _noop
    mod.ipc_collect = _noop
    mod.reset_peak_memory_stats = _noop
    mod.set_per_process_memory_fraction = _noop
    mod.memory_allocated = lambda *a, **k: 0
    mod.memory_reserved = lambda *a, **k: 0
    mod.max_memory_allocated = lambda *a, **k: 0
    mod.max_memory_reserved = lambda *a, **k: 0

    def mem_get_info(*args, **kwargs):
        page, pages = os.sysconf("SC_PAGE_SIZE"), os.sysconf("SC_PHYS_PAGES")
        avail = os.sysconf("SC_AVPHYS_PAGES")
        return avail * page, pages * page

    mod.mem_get_info = mem_get_info
    mod.get_rng_state = lambda *a, **k: torch.get_rng_state()
    mod.set_rng_state = lambda state, *a, **k: torch.set_rng_state(state)
    mod.manual_seed = torch.manual_seed
    mod.manual_seed_all = torch.manual_seed
    # utils/flops_counter.py looks the device name up in its table; "CPU" has an entry.
    mod.get_device_name = lambda *a, **k: "CPU"
    mod.Stream = _CPUStream
    mod.Event = _CPUEvent
    mod.current_stream = lambda *a, **k: _CPUStream()
    mod.default_stream = lambda *a, **k: _CPUStream()

    @contextmanager
    def stream(s=None):
        yield

    mod.stream = stream
    return mod


@PlatformRegistry.register(platform=PLATFORM_NAME)
class PlatformCPU(PlatformBase):
    """Host CPU with the gloo backend. Selected only by ``VERL_PLATFORM=cpu``."""

    def __init__(self) -> None:
        self._device_module = _build_device_module()

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> types.ModuleType:
        return self._device_module

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        # Never auto-detected: only VERL_PLATFORM=cpu selects this platform.
        return False

    def current_device(self):
        # verl passes get_device_id() to .to() / device_id=; an int would mean cuda:0.
        return torch.device("cpu")

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        return None

    def synchronize(self, device_index: Optional[int] = None) -> None:
        return None

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        return None

    def empty_cache(self) -> None:
        return None

    def get_device_capability(self, device_index: int = 0) -> tuple[Optional[int], Optional[int]]:
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        return "CUDA_VISIBLE_DEVICES"

    @contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        return None

    def profiler_stop(self) -> None:
        return None

    def ray_resource_name(self) -> str:
        return "GPU"  # logical GPUs from ray_init.num_gpus; see the module docstring

    def ray_noset_envvars(self) -> list[str]:
        return []

    def is_ipc_supported(self) -> bool:
        return False

    def cudart(self) -> Any:
        return None
