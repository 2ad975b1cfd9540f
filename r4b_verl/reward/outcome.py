"""What every reward function returns, and the dict verl logs from it.

verl's reward loop builds one array per extra key from the *first* response's keys, so every
response of a batch must carry the same keys whatever function scored it: ``to_result`` always
emits all of them. Flags are floats so verl can average them (``val-aux/<source>/timeout/mean@N``);
``pred`` feeds verl's majority-vote metrics (``maj@N``).
"""

from __future__ import annotations

from dataclasses import dataclass

PRED_MAX_CHARS = 256
RESULT_KEYS = ("score", "acc", "pred", "mode", "has_answer", "format_ok", "timeout", "reward_fn")


@dataclass
class Outcome:
    acc: float = 0.0  # answer correctness in [0, 1], before the format weight
    pred: str = ""  # the extracted answer, as compared
    has_answer: bool = False  # an answer was found in the answer part
    timeout: bool = False  # a deadline cut the check short (the answer then counts as wrong)


def to_result(outcome: Outcome, *, mode: str, format_ok: float, format_weight: float, reward_fn: str) -> dict:
    score = (1.0 - format_weight) * float(outcome.acc) + format_weight * float(format_ok)
    return {
        "score": float(score),
        "acc": float(outcome.acc),
        "pred": outcome.pred[:PRED_MAX_CHARS],
        "mode": mode,
        "has_answer": float(outcome.has_answer),
        "format_ok": float(format_ok),
        "timeout": float(outcome.timeout),
        "reward_fn": reward_fn,
    }


def gold_list(ground_truth) -> list:
    """Ground truth as a list of accepted answers (verl rows may hold a list or a numpy array)."""
    if isinstance(ground_truth, (list, tuple)) or type(ground_truth).__name__ == "ndarray":
        return list(ground_truth)
    return [ground_truth]
