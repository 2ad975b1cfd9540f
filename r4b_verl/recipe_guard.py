"""Refuse a run whose ``+recipe=`` did not compose, instead of letting it train verl's defaults.

Hydra resolves ``+recipe=r4b_bpo`` through the search path that ``hydra_plugins/r4b_verl_searchpath``
adds (``pkg://r4b_verl.config``). When Hydra cannot see that plugin, it does not fail: the override
becomes a plain string key ``recipe: r4b_bpo`` and the run is verl's PPO with a critic. Two checks:

* :func:`check_driver`, from ``r4b_verl.plugin`` in the process whose command line carries the
  override (the driver of ``python -m verl.trainer.main_ppo``), *before* Hydra composes: if one of
  r4b-verl's recipes is asked for and Hydra does not discover the search-path plugin, the run stops;
* :func:`refuse_plain_recipe_key`, on a composed config (the BPO worker and manager run it): a
  string ``recipe`` key is refused.

Both name the fix.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

RECIPE_GROUP = "recipe"
SEARCH_PATH = "pkg://r4b_verl.config"
SEARCH_PATH_PLUGIN = "R4BVerlSearchPathPlugin"
_OVERRIDE = re.compile(r"^(?:\+\+|\+|~)?recipe=(.*)$")

FIX = (
    "Hydra does not see r4b-verl's search-path plugin (hydra_plugins/r4b_verl_searchpath), so the override would "
    "become a plain 'recipe' key and the run would train verl's defaults (adv_estimator=gae, a critic). Install "
    "r4b-verl so that hydra_plugins/ is importable: `pip install .` or `pip install -e .` from its checkout "
    "(setuptools>=64), or put the checkout on PYTHONPATH; `python -m verl.trainer.main_ppo +recipe=r4b_bpo --cfg job` "
    "then shows adv_estimator: bpo"
)


class RecipeNotComposedError(RuntimeError):
    """A ``+recipe=`` override of r4b-verl's did not (or would not) compose."""


def recipe_names() -> set[str]:
    """The recipes r4b-verl ships (``r4b_verl/config/recipe/*.yaml``)."""
    folder = resources.files("r4b_verl.config") / RECIPE_GROUP
    return {p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml")}


def requested_recipes(argv: list[str]) -> list[str]:
    """The values of ``recipe=`` overrides (``+``, ``++`` or none) on a Hydra command line."""
    return [m.group(1).strip("'\"") for arg in argv[1:] if (m := _OVERRIDE.match(arg))]


def search_path_plugin_discovered() -> bool:
    """Whether Hydra's plugin scan finds r4b-verl's search-path plugin in this environment."""
    from hydra.core.plugins import Plugins
    from hydra.plugins.search_path_plugin import SearchPathPlugin

    return any(cls.__name__ == SEARCH_PATH_PLUGIN for cls in Plugins.instance().discover(SearchPathPlugin))


def check_driver(argv: list[str]) -> None:
    """Raise :class:`RecipeNotComposedError` if ``argv`` asks for our recipe and Hydra would not find it."""
    ours = sorted(set(requested_recipes(argv)) & recipe_names())
    if ours and not search_path_plugin_discovered():
        raise RecipeNotComposedError(f"+recipe={ours[0]} cannot compose here. {FIX}")


def refuse_plain_recipe_key(config: Any) -> None:
    """Refuse a composed config that still holds ``recipe`` as a plain value (the silent failure)."""
    value = config.get(RECIPE_GROUP, None) if hasattr(config, "get") else None
    if isinstance(value, str):
        raise RecipeNotComposedError(
            f"the config holds a plain key recipe={value!r}: the recipe did not compose. {FIX}")
