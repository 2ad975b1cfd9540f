"""The peers' reward tables on top of the recipe's verifiable reward (``r4b_verl.reward``).

Set by the method recipes as ``reward.custom_reward_function.path: pkg://r4b_verl.methods.rewards`` with
``name: compute_score_async`` and ``reward_kwargs.method: {name: ..., <option>: ...}``; the other
``reward_kwargs`` go to ``r4b_verl.reward`` unchanged, which gives ``acc`` (the verified answer). The
mode is the one the response took (``extra_info[bpo_chosen_mode]``, written by the bi-mode loop).

=============  ===========================================================================  ===========
method         score                                                                         source
=============  ===========================================================================  ===========
``adaptthink`` ``acc - Rref(x) + delta [no_think]``, ``Rref = extra_info[bpo_ref_acc]``       2505.13417
               (``python -m r4b_verl.methods.presample``), delta 0.05; auto-mode
               (validation) rows without ``Rref`` score ``acc``
``autothink``  think +1 / 0, no-think +2 / -1 (correct / wrong); a negative reward of a       2505.10832
               response with heavy repetition becomes -2
``thinkless``  correct no-think (``<short>``) +1.0, correct think +0.5, wrong -1.0            2505.13379
``ada_grpo``   ``acc`` (the mode-frequency scaling is in the ``ada_grpo`` estimator)          2505.20258
=============  ===========================================================================  ===========

Heavy repetition (AutoThink): a word n-gram (``ngram`` words, 3) occurring ``ngram_repeats`` (10) times or
more, or a whitespace-free run of ``long_word`` (120) characters or more. Every row returns the same keys:
``score``, ``base_score`` and the base reward's keys.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from r4b_verl import reward as base_reward
from r4b_verl.think import AUTO, CHOSEN_MODE_KEY, MODE_KEY, NO_THINK, REF_ACC_KEY, THINK

DEFAULTS: dict[str, dict[str, Any]] = {
    "adaptthink": {"delta": 0.05},
    "autothink": {"think_correct": 1.0, "think_wrong": 0.0, "no_think_correct": 2.0, "no_think_wrong": -1.0,
                  "repetition_penalty": -2.0, "ngram": 3, "ngram_repeats": 10, "long_word": 120},
    "thinkless": {"short_correct": 1.0, "think_correct": 0.5, "wrong": -1.0},
    "ada_grpo": {},
}
PRESAMPLE = "python -m r4b_verl.methods.presample --model REF_MODEL --data train.parquet --out train_rref.parquet"


def method_options(method: Any) -> tuple[str, dict]:
    """(name, options with defaults) of ``reward_kwargs.method``; errors name the key."""
    if isinstance(method, str):
        method = {"name": method}
    if not isinstance(method, Mapping) or method.get("name") not in DEFAULTS:
        raise ValueError(f"reward.custom_reward_function.reward_kwargs.method must be "
                         f"{{name: one of {sorted(DEFAULTS)}, ...options}}, got {method!r}")
    name = method["name"]
    options = dict(DEFAULTS[name])
    unknown = sorted(set(method) - {"name"} - set(options))
    if unknown:
        raise ValueError(f"reward_kwargs.method: unknown option(s) {unknown} for {name}; known: {sorted(options)}")
    options.update({k: v for k, v in method.items() if k != "name" and v is not None})
    return name, options


def check_reward_options(path: str, reward_kwargs: Mapping) -> None:
    """Every option, value and route target of r4b-verl's rewards, as the first reward call reads them.

    ``path`` is ``reward.custom_reward_function.path`` (``pkg://r4b_verl.reward`` or this module); raises a
    ``ValueError`` naming the key. The start-up check and the preflight call it before any worker starts.
    """
    from r4b_verl.reward.router import check_targets
    from r4b_verl.reward.settings import settings_from

    kwargs = dict(reward_kwargs)
    if path.endswith("methods.rewards"):
        method_options(kwargs.pop("method", None))
    check_targets(settings_from(kwargs))


def heavy_repetition(text: str, ngram: int = 3, repeats: int = 10, long_word: int = 120) -> bool:
    """AutoThink's repetition test (module doc); linear in the text."""
    words = text.split()
    if any(len(w) >= long_word for w in words):
        return True
    if len(words) < ngram * repeats:
        return False
    counts = Counter(tuple(words[i : i + ngram]) for i in range(len(words) - ngram + 1))
    return max(counts.values()) >= repeats


def method_score(name: str, options: dict, acc: float, mode: str, response: str, extra_info: Mapping) -> float:
    """The method's reward for one response (module doc's table)."""
    correct = acc >= 0.5
    if name == "adaptthink":
        if REF_ACC_KEY not in extra_info and extra_info.get(MODE_KEY) == AUTO:
            return float(acc)  # a validation row (auto mode; AdaptThink's training rows are all forced): no Rref
        if REF_ACC_KEY not in extra_info:
            raise ValueError(f"AdaptThink's reward needs extra_info.{REF_ACC_KEY} (Rref(x)) in every training row: "
                             f"presample the reference model first: {PRESAMPLE}")
        return float(acc) - float(extra_info[REF_ACC_KEY]) + options["delta"] * (mode == NO_THINK)
    if name == "autothink":
        if mode == THINK:
            r = options["think_correct"] if correct else options["think_wrong"]
        else:
            r = options["no_think_correct"] if correct else options["no_think_wrong"]
        if r < 0 and heavy_repetition(response, options["ngram"], options["ngram_repeats"], options["long_word"]):
            r = options["repetition_penalty"]
        return float(r)
    if name == "thinkless":
        if not correct:
            return float(options["wrong"])
        return float(options["short_correct"] if mode == NO_THINK else options["think_correct"])
    return float(acc)


def _finish(result: dict, method, solution_str, extra_info) -> dict:
    name, options = method_options(method)
    info = extra_info if isinstance(extra_info, Mapping) else {}
    mode = info.get(CHOSEN_MODE_KEY)
    if mode not in (THINK, NO_THINK):
        raise ValueError(f"reward method {name} needs extra_info.{CHOSEN_MODE_KEY} (think / no_think): "
                         "run the bpo_bimode agent loop "
                         "(actor_rollout_ref.rollout.agent.default_agent_loop=bpo_bimode)")
    text = solution_str if isinstance(solution_str, str) else str(solution_str)
    score = method_score(name, options, float(result.get("acc", 0.0)), mode, text, info)
    return {**result, "base_score": float(result["score"]), "score": score}


def compute_score(data_source, solution_str, ground_truth, extra_info=None, method=None, **reward_kwargs) -> dict:
    """Blocking twin of :func:`compute_score_async`."""
    result = base_reward.compute_score(data_source, solution_str, ground_truth, extra_info, **reward_kwargs)
    return _finish(result, method, solution_str, extra_info)


async def compute_score_async(data_source, solution_str, ground_truth, extra_info=None, method=None,
                              **reward_kwargs) -> dict:
    """``r4b_verl.reward.compute_score_async``, then the method's table (module doc)."""
    result = await base_reward.compute_score_async(data_source, solution_str, ground_truth, extra_info, **reward_kwargs)
    return _finish(result, method, solution_str, extra_info)
