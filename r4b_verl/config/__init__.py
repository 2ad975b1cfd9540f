"""r4b-verl's Hydra recipes (``recipe/*.yaml``, on Hydra's search path as ``pkg://r4b_verl.config``) and the
two OmegaConf resolvers they size themselves with.

The recipes derive budgets from other keys instead of repeating literals that drift apart when a user
changes one (``rollout.prompt_length`` = ``data.max_prompt_length`` + the room of the mode prefix; the
dynamic-batch token budgets from the sequence length). OmegaConf has no arithmetic, so two resolvers:

* ``${r4b.sum:a,b,...}``: the sum of whole numbers;
* ``${r4b.mul:a,b,...}``: their product.

They are registered on import of this package, which happens wherever a recipe can be resolved: Hydra
imports it to read ``pkg://r4b_verl.config`` (the driver), and ``r4b_verl.plugin`` imports it in every
process that imports verl (the TaskRunner resolves the config again).
"""

from __future__ import annotations

import math

from omegaconf import OmegaConf

RESOLVERS = ("r4b.sum", "r4b.mul")


def _whole(name: str, values: tuple) -> list[int]:
    out = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                value = int(value)
            else:
                raise ValueError(f"${{{name}:...}} takes whole numbers, got {value!r}")
        out.append(value)
    return out


def _sum(*values) -> int:
    return sum(_whole("r4b.sum", values))


def _mul(*values) -> int:
    return math.prod(_whole("r4b.mul", values))


def register_resolvers() -> None:
    """Idempotent: a second import (or another copy of this package) replaces the same functions."""
    OmegaConf.register_new_resolver("r4b.sum", _sum, replace=True)
    OmegaConf.register_new_resolver("r4b.mul", _mul, replace=True)


register_resolvers()
