"""verl plugin entry point: importing this module registers every r4b-verl part in this process.

Registering means adding names to verl's registries (the ``bpo`` estimator, the ``bpo_bimode`` agent
loop, the CPU platform and rollout) and the recipes' two OmegaConf resolvers; it changes no verl class.
What a run changes is named by its config (``agent_loop_manager_class``) and listed in
``r4b_verl/verl_compat.py``.

verl imports it in every process that imports verl (driver, TaskRunner, agent-loop, reward and
model workers) through the ``verl.plugins`` entry point, or through
``VERL_USE_EXTERNAL_MODULES=r4b_verl.plugin`` where users disable entry-point discovery.

verl swallows entry-point load errors at debug level, which would leave ``bpo`` silently
missing. So a failure here is made loud: it is logged at ERROR level with its cause, and a
stand-in ``bpo`` estimator is registered that raises that cause when the trainer reaches it.
In the driver, a ``+recipe=`` of ours that Hydra would not compose stops the process
(``r4b_verl/recipe_guard.py``): SystemExit passes verl's ``except Exception``.
"""

from __future__ import annotations

import importlib
import logging
import sys

import verl

from r4b_verl import VERL_VERSION
from r4b_verl.recipe_guard import RecipeNotComposedError, check_driver

logger = logging.getLogger("r4b_verl")

# Each module registers its parts with verl on import.
REGISTERING_MODULES = (
    "r4b_verl.config",  # the recipes' ${r4b.sum:...} / ${r4b.mul:...} resolvers (the TaskRunner resolves again)
    "r4b_verl.backends.cpu.registration",  # platform cpu + rollout hf_cpu (active only with VERL_PLATFORM=cpu)
    "r4b_verl.advantage",  # algorithm.adv_estimator=bpo
    "r4b_verl.rollout.agent_loop",  # rollout.agent.default_agent_loop=bpo_bimode
    "r4b_verl.methods.estimators",  # adv_estimator=adaptthink | autothink | ada_grpo
    "r4b_verl.methods.losses",  # actor.policy_loss.loss_mode=r4b_decision
)


class PluginLoadError(RuntimeError):
    """r4b-verl could not register its parts in this process."""


def _check_verl_version() -> None:
    if verl.__version__ != VERL_VERSION:
        raise PluginLoadError(
            f"r4b-verl was written against verl=={VERL_VERSION} but verl=={verl.__version__} is installed; "
            f"install the pinned release: pip install 'verl[verl-core,math]=={VERL_VERSION}'"
        )


def _register_failure_standin(cause: BaseException) -> None:
    """Make the first use of ``bpo`` raise the real load error instead of 'unknown estimator'."""
    from verl.trainer.ppo import core_algos

    def bpo_failed_to_load(*args, **kwargs):
        raise PluginLoadError(f"r4b-verl failed to load in this process, so 'bpo' is unavailable: {cause!r}") from cause

    core_algos.ADV_ESTIMATOR_REGISTRY.setdefault("bpo", bpo_failed_to_load)


def load() -> None:
    _check_verl_version()
    for name in REGISTERING_MODULES:
        importlib.import_module(name)
    check_driver(sys.argv)


try:
    load()
except RecipeNotComposedError as exc:
    sys.exit(f"[r4b-verl] ERROR: {exc}")
except Exception as exc:  # noqa: BLE001 - re-raised below, after making it visible
    logger.exception("r4b-verl plugin failed to load: %r", exc)
    print(f"[r4b-verl] ERROR: plugin failed to load: {exc!r}", file=sys.stderr, flush=True)
    try:
        _register_failure_standin(exc)
    except Exception:  # noqa: BLE001 - verl itself is broken; the original error is what matters
        pass
    raise
