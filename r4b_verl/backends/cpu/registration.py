"""Register the CPU backend with verl; activate it only where it is selected.

Imported by ``r4b_verl.plugin`` in every process that imports verl. On every machine it only
*registers* names, which changes nothing until a config uses them:

- platform ``cpu`` in verl's ``PlatformRegistry`` (never auto-detected);
- rollout ``hf_cpu`` in ``RolloutReplicaRegistry`` and the async adapter table (a private dict:
  ``verl_compat.ROLLOUT_ADAPTER_TABLE``).

It *activates* the CPU mode (``r4b_verl.verl_compat.CPU_PATCHES``) only in a process whose
environment has ``VERL_PLATFORM=cpu``. That variable reaches the processes like this:

- the CPU overlay (``+recipe=r4b_bpo_cpu``) puts it in Ray's ``runtime_env.env_vars``, so every
  Ray actor (TaskRunner, model workers, agent-loop and reward workers) gets it;
- the driver (``python -m verl.trainer.main_ppo``) resolves verl's platform when it imports the
  trainer, before Hydra has composed any config; so when its command line selects the CPU
  backend (``recipe=r4b_bpo_cpu`` or ``actor_rollout_ref.rollout.name=hf_cpu``, or
  ``+recipe=r4b_anneal_cpu`` on a torchrun command line, in each process) and
  ``VERL_PLATFORM`` is unset, this module sets ``VERL_PLATFORM=cpu`` in the driver. Exporting
  ``VERL_PLATFORM=cpu`` yourself does the same.
"""

from __future__ import annotations

import logging
import os
import sys

from verl.workers.rollout.replica import RolloutReplicaRegistry

from r4b_verl import verl_compat
from r4b_verl.backends.cpu import platform as _platform  # noqa: F401 - registers platform "cpu"
from r4b_verl.backends.cpu.platform import PLATFORM_NAME
from r4b_verl.backends.cpu.rollout import ROLLOUT_NAME

# recipes that run on the CPU backend: the BPO overlay (main_ppo driver) and the annealing SFT overlay
# (every torchrun process of verl.trainer.sft_trainer sees the override in its own argv)
CPU_RECIPES = frozenset({"r4b_bpo_cpu", "r4b_bpo_mm_cpu", "r4b_anneal_cpu"})
logger = logging.getLogger(__name__)


def _load_replica():
    from r4b_verl.backends.cpu.rollout import HFCPUReplica

    return HFCPUReplica


def cpu_selected_on_command_line(argv: list[str]) -> bool:
    """True when Hydra overrides in ``argv`` select the CPU recipe or the ``hf_cpu`` rollout."""
    for arg in argv[1:]:
        key, sep, value = arg.lstrip("+~").partition("=")
        if not sep:
            continue
        if key == "recipe" and value in CPU_RECIPES:
            return True
        if key == "actor_rollout_ref.rollout.name" and value == ROLLOUT_NAME:
            return True
    return False


def cpu_mode_active() -> bool:
    return os.environ.get("VERL_PLATFORM", "").strip().lower() == PLATFORM_NAME


def register() -> None:
    RolloutReplicaRegistry.register(ROLLOUT_NAME, _load_replica)
    verl_compat.apply((verl_compat.ROLLOUT_ADAPTER_TABLE,))

    if not os.environ.get("VERL_PLATFORM") and cpu_selected_on_command_line(sys.argv):
        os.environ["VERL_PLATFORM"] = PLATFORM_NAME
    if cpu_mode_active():
        current = verl_compat.current_platform_name()
        if current is not None and current != "cpu":
            raise RuntimeError(
                f"VERL_PLATFORM=cpu, but verl already resolved the {current!r} platform in this "
                "process before r4b_verl loaded; make sure r4b-verl is installed (verl.plugins entry point) "
                "or set VERL_USE_EXTERNAL_MODULES=r4b_verl.plugin"
            )
        applied = verl_compat.apply(verl_compat.CPU_PATCHES)
        logger.info("r4b_verl.backends.cpu: CPU mode active (pid %d), patches: %s", os.getpid(), applied)


register()
