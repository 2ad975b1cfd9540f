"""The ``exact`` reward: normalised string equality, for OCR-like answers.

The answer is the last ``\\boxed{}`` content if any, else the whole answer part. Both sides are
normalised: Unicode NFKC, ``\\text{...}`` unwrapped, case folded, whitespace collapsed, surrounding
quotes and a trailing full stop dropped. A list ground truth accepts any of its items.
"""

from __future__ import annotations

import re
import unicodedata

from .boxed import last_boxed
from .outcome import Outcome, gold_list

_TEXT_CMD = re.compile(r"\\(?:text|mathrm|textbf|mathbf)\{([^{}]*)\}")
_SPACES = re.compile(r"\s+")
_QUOTES = "\"'`“”‘’«»"


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = _TEXT_CMD.sub(r"\1", text)
    text = _SPACES.sub(" ", text).strip().casefold()
    text = text.strip(_QUOTES).strip()
    if text.endswith(".") and not text.endswith(".."):
        text = text[:-1].rstrip()
    return text


def score_exact(answer: str | None, ground_truth, settings) -> Outcome:
    if answer is None:
        return Outcome()
    boxed = last_boxed(answer)
    pred = normalize(boxed if boxed is not None else answer)
    if not pred:
        return Outcome()
    golds = gold_list(ground_truth)
    acc = any(normalize(str(g)) == pred for g in golds)
    return Outcome(acc=float(acc), pred=pred, has_answer=True)
