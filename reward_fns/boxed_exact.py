"""A reward of your own, written against r4b-verl's think-block contract: exact match of the last ``\\boxed{}``.

A template for the rewards users swap in. Use it for a whole run, or for some data sources only,
next to the built-in routes:

    # the whole run
    reward.custom_reward_function.path=$PWD/reward_fns/boxed_exact.py reward.custom_reward_function.name=compute_score
    # only the rows whose data_source matches my_set*
    +reward.custom_reward_function.reward_kwargs.routes.my_set*="'$PWD/reward_fns/boxed_exact.py:compute_score'"

What makes it bi-mode aware is ``r4b_verl.think``: the rollout writes the forced mode into
``extra_info[MODE_KEY]``, and ``answer_part`` cuts the answer the way every r4b-verl reward does
(a thinking response that never closes its think block has no answer; the reasoning is never
scored). Model output is untrusted: nothing here evaluates it, and the work is linear in its length.
"""

from __future__ import annotations

from r4b_verl.think import MODE_KEY, answer_part, format_score, normalize_mode

_BOXED = "\\boxed{"
MAX_ANSWER_CHARS = 4096  # the answer's tail is enough for its last \boxed{}


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (braces balanced), or None."""
    start = text.rfind(_BOXED)
    if start < 0:
        return None
    depth, begin = 1, start + len(_BOXED)
    for i in range(begin, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[begin:i]
    return None


def _normal(text: str) -> str:
    return " ".join(text.split()).rstrip(".")


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs) -> dict:
    mode = normalize_mode((extra_info or {}).get(MODE_KEY))
    answer = answer_part(str(solution_str), mode)
    boxed = None if answer is None else last_boxed(answer[-MAX_ANSWER_CHARS:])
    golds = ground_truth if isinstance(ground_truth, (list, tuple)) else [ground_truth]
    correct = boxed is not None and any(_normal(boxed) == _normal(str(g)) for g in golds if g is not None)
    return {
        "score": float(correct),
        "acc": float(correct),
        "pred": "" if boxed is None else boxed[:200],
        "format_ok": format_score(str(solution_str), mode),
    }
