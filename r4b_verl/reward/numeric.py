"""The ``numeric`` reward: the last number of the answer, within a relative tolerance of the gold.

The number is taken from the last ``\\boxed{}`` if there is one, else from the whole answer part:
the last numeral (``-1,234.5``, ``3e-4``, ``2/3``; a trailing ``%`` is kept as written, 42% -> 42).
Equal when ``|pred - gold| <= max(rel_tol * |gold|, abs_tol)``. Plain ``float`` arithmetic on
numerals of at most 64 characters: no symbolic work, no unbounded cost.
"""

from __future__ import annotations

import logging
import math
import re

from .boxed import last_boxed
from .outcome import Outcome, gold_list

logger = logging.getLogger(__name__)

# A match starts with a sign, a digit or ".": the optional "\s* / ..." tail is then tried once per
# number, not at every position of a run of spaces (which made the scan quadratic).
_NUMERAL = re.compile(
    r"[-+]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d{1,4})?(?:\s*/\s*[-+]?\d+(?:\.\d+)?)?"
)
_MAX_NUMERAL = 64
_warned: set[str] = set()


def to_number(text: str) -> float | None:
    text = text.strip().replace(",", "").replace(" ", "")
    if not text or len(text) > _MAX_NUMERAL:
        return None
    try:
        if "/" in text:
            num, den = text.split("/", 1)
            value = float(num) / float(den)
        else:
            value = float(text)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def last_number(text: str) -> tuple[float, str] | None:
    boxed = last_boxed(text)
    if boxed is not None:
        text = boxed
    for match in reversed([m for m in _NUMERAL.finditer(text) if any(c.isdigit() for c in m.group(0))]):
        value = to_number(match.group(0))
        if value is not None:
            return value, match.group(0).strip()
    return None


def score_numeric(answer: str | None, ground_truth, settings) -> Outcome:
    if answer is None:
        return Outcome()
    found = last_number(answer)
    if found is None:
        return Outcome()
    value, shown = found
    golds = gold_list(ground_truth)
    for gold in golds:
        gold_value = to_number(str(gold))
        if gold_value is None:
            if str(gold) not in _warned:
                _warned.add(str(gold))
                logger.warning("numeric reward: ground truth %r (data row's reward_model.ground_truth) is not a "
                               "number: responses to it score 0", str(gold)[:200])
            continue
        if abs(value - gold_value) <= max(settings.numeric_rel_tol * abs(gold_value), settings.numeric_abs_tol):
            return Outcome(acc=1.0, pred=shown, has_answer=True)
    return Outcome(pred=shown, has_answer=True)
