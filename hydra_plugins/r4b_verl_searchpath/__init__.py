"""Hydra search-path plugin: puts r4b-verl's recipes on the search path of every Hydra app.

Hydra discovers plugins by importing every sub-package of the ``hydra_plugins`` namespace
package (which therefore has no ``__init__.py``). With this one installed,
``python -m verl.trainer.main_ppo +recipe=r4b_bpo`` resolves ``recipe/r4b_bpo.yaml`` from
``r4b_verl.config``; an unknown ``+recipe=name`` fails with Hydra's "Could not find" error
instead of silently becoming a plain ``recipe:`` key.
"""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class R4BVerlSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.append(provider="r4b-verl", path="pkg://r4b_verl.config")
