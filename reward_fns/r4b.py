"""The recipe's reward as a file: verifiable rewards routed by ``data_source`` (math, choice, numeric, ...).

Equivalent to the recipe's ``reward.custom_reward_function.path: pkg://r4b_verl.reward``, for users
who point verl at reward files:

    python -m verl.trainer.main_ppo +recipe=r4b_bpo ... \\
        reward.custom_reward_function.path=$PWD/reward_fns/r4b.py reward.custom_reward_function.name=compute_score_async

The engine (routes, math-verify fast path, symbolic worker pool, caches) lives in ``r4b_verl.reward``
and is only re-exported here, so every loading path shares one set of caches and worker pools.
Options: ``reward.custom_reward_function.reward_kwargs`` (``r4b_verl/reward/README.md``).
"""

from r4b_verl.reward import compute_score, compute_score_async

__all__ = ["compute_score", "compute_score_async"]
