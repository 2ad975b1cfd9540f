"""Can the routed reward read a row's ground truth? Checked before training, without sympy.

A ground truth the reward cannot read scores every response 0, with at most a log line per gold
(``ground_truth: null`` gives none at all): ``r4b_verl.data.check`` and the trainer start-up check
refuse such rows instead. Each test is the reward's own first step on the gold:

- ``math``: math-verify's extraction finds an answer in ``\\boxed{gold}`` (``first_candidate`` of
  ``gold_text``, string code, as ``score_math`` does before anything else);
- ``choice``: the gold reads as a letter of ``choice_letters``;
- ``numeric``: the gold is a number;
- ``exact``: the gold is not empty after normalisation;
- ``format`` and user functions: anything but null / empty.
"""

from __future__ import annotations

import math as _math
from functools import lru_cache

from .choice import _letter
from .exact import normalize
from .extraction import GOLD_CONFIG, first_candidate, gold_text
from .numeric import to_number
from .outcome import gold_list
from .settings import Settings


def _is_null(value) -> bool:
    return value is None or (isinstance(value, float) and _math.isnan(value)) or (
        isinstance(value, str) and not value.strip())


def null_gold(ground_truth) -> bool:
    """A ground truth that holds no answer at all: null, NaN, blank, or a list of only those."""
    if _is_null(ground_truth):
        return True
    golds = gold_list(ground_truth)
    return not golds or all(_is_null(g) for g in golds)


def gold_problem(reward: str, ground_truth, settings: Settings = Settings()) -> str | None:  # noqa: B008 - Settings is a frozen dataclass
    """None if ``reward`` (a route's name) can read ``ground_truth``, else why not."""
    if isinstance(ground_truth, str) and len(ground_truth) <= 256:
        return _short_gold_problem(reward, ground_truth, settings)  # datasets repeat their golds: cached
    return _gold_problem(reward, ground_truth, settings)


@lru_cache(maxsize=65536)
def _short_gold_problem(reward: str, ground_truth: str, settings: Settings) -> str | None:
    return _gold_problem(reward, ground_truth, settings)


def _gold_problem(reward: str, ground_truth, settings: Settings) -> str | None:
    if null_gold(ground_truth):
        shown = "null" if ground_truth is None else repr(ground_truth)[:40]
        return f"ground truth is {shown}: every response would score 0"
    golds = gold_list(ground_truth)
    if reward == "format" or reward not in ("math", "choice", "numeric", "exact"):
        return None
    for gold in golds:
        if _is_null(gold):
            continue
        text = str(gold)[: settings.max_answer_chars].strip()
        if reward == "math" and first_candidate(gold_text(text), GOLD_CONFIG) is not None:
            return None
        if reward == "choice" and _letter(text, settings.choice_letters.upper()) is not None:
            return None
        if reward == "numeric" and to_number(text) is not None:
            return None
        if reward == "exact" and normalize(text):
            return None
    return f"the {reward} reward cannot read the ground truth {str(ground_truth)[:80]!r}: every response would score 0"
