"""The ``choice`` reward: a multiple-choice letter.

The answer's letter is, in order: the last ``\\boxed{}`` when it holds a letter (``B``, ``(B)``,
``\\text{B}``, ``B. text``); else math-verify's string extraction (``StringExtractionConfig``:
"final answer is B", "Answer: B", a standalone letter, rightmost first), after ``(B)`` is
rewritten ``B``. Regex work only, so it runs in-process. The gold is a letter, optionally as
``(B)`` or ``B. text``.
"""

from __future__ import annotations

import re
from functools import lru_cache

from math_verify.parser import StringExtractionConfig, parse

from .boxed import last_boxed
from .outcome import Outcome, gold_list

_LETTER_FORM = re.compile(r"^\s*(?:\\text\{\s*)?\(?\s*([A-Za-z])\s*\)?(?:\s*\})?\s*(?:[.:)]|\s|$)")
_PARENS = re.compile(r"\(([A-Z])\)")


@lru_cache(maxsize=8)
def _string_config(letters: str) -> StringExtractionConfig:
    return StringExtractionConfig(strings=tuple(letters), lowercase=False)


def _letter(text: str, letters: str) -> str | None:
    match = _LETTER_FORM.match(text)
    if match and match.group(1).upper() in letters:
        return match.group(1).upper()
    return None


def score_choice(answer: str | None, ground_truth, settings) -> Outcome:
    if answer is None:
        return Outcome()
    letters = settings.choice_letters.upper()  # answers and golds are compared upper-case
    golds = gold_list(ground_truth)
    gold_letters = {_letter(str(g), letters) for g in golds} - {None}
    pred = None
    boxed = last_boxed(answer)
    if boxed is not None:
        pred = _letter(boxed, letters)
    if pred is None:
        # parsing_timeout=None: string extraction is regex-only, and signal.alarm is unusable in threads.
        found = parse(_PARENS.sub(r"\1", answer), [_string_config(letters)], parsing_timeout=None)
        pred = found[0] if found and isinstance(found[0], str) else None
    if pred is None:
        return Outcome()
    return Outcome(acc=float(pred in gold_letters), pred=pred, has_answer=True)
