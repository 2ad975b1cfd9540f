"""Rule-based verifiable rewards for r4b-verl: one verl ``compute_score`` that routes by data source.

Set by the recipe as ``reward.custom_reward_function.path: pkg://r4b_verl.reward_fns`` with
``name: compute_score``; options come from ``reward.custom_reward_function.reward_kwargs``
(settings.py). User documentation: ``reward_fns/README.md``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

from .answer_part import THINK_CLOSE, answer_part, normalize_mode
from .math_answer import STATS, reset_caches
from .outcome import PRED_MAX_CHARS, RESULT_KEYS, Outcome, to_result
from .router import BUILTINS, DEFAULT_ROUTES, route
from .settings import Settings, settings_from
from .think_format import format_score

__all__ = ["compute_score", "BUILTINS", "DEFAULT_ROUTES", "RESULT_KEYS", "Settings", "STATS", "reset_caches"]

logger = logging.getLogger(__name__)

_STRIPPED_TAGS_PROBE = 256  # think-mode responses looked at before suspecting stripped tags
_probe = {"think": 0, "closed": 0, "warned": False, "errors_logged": 0}
_probe_lock = threading.Lock()


def _watch_think_tags(response: str, mode: str, settings: Settings) -> None:
    """Warn once if no think-mode response ever shows </think>: the tokenizer probably strips it."""
    if mode != "think" or settings.think_tags != "kept" or _probe["think"] >= _STRIPPED_TAGS_PROBE:
        return
    with _probe_lock:
        if _probe["think"] >= _STRIPPED_TAGS_PROBE:
            return
        _probe["think"] += 1
        _probe["closed"] += THINK_CLOSE in response
        if _probe["think"] == _STRIPPED_TAGS_PROBE and _probe["closed"] == 0:
            _probe["warned"] = True
            logger.warning(
                "reward: none of the first %d think-mode responses contains %r, so all score 0. If the tokenizer "
                "marks the think tags as special tokens, verl's decoding (skip_special_tokens=True) drops them: set "
                "reward.custom_reward_function.reward_kwargs.think_tags=stripped",
                _STRIPPED_TAGS_PROBE, THINK_CLOSE,
            )


def _user_result(result, mode: str, name: str) -> dict:
    """A user function's float or dict, with exactly the keys every row must share."""
    if isinstance(result, Mapping):
        if "score" not in result:
            raise ValueError(f"reward function returned a dict without 'score': keys {sorted(result)}")
        score = float(result["score"])
        extra = result
    else:
        score, extra = float(result), {}
    return {
        "score": score,
        "acc": float(extra.get("acc", score)),
        "pred": str(extra.get("pred", ""))[:PRED_MAX_CHARS],
        "mode": mode,
        "has_answer": float(extra.get("has_answer", 1.0)),
        "format_ok": float(extra.get("format_ok", 1.0)),
        "timeout": float(extra.get("timeout", 0.0)),
        "reward_fn": name,
    }


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **reward_kwargs) -> dict:
    """Score one response; verl's ``custom_reward_function`` entry point.

    Returns ``score`` plus ``acc``, ``pred``, ``mode``, ``has_answer``, ``format_ok``, ``timeout`` and
    ``reward_fn`` (same keys for every row). Model output never makes it raise; a bad option does.
    """
    settings = settings_from(reward_kwargs)
    name, fn = route(settings, data_source)
    mode = normalize_mode(extra_info.get(settings.mode_key) if isinstance(extra_info, Mapping) else None)
    if name not in BUILTINS:
        return _user_result(
            fn(data_source=data_source, solution_str=solution_str, ground_truth=ground_truth, extra_info=extra_info),
            mode,
            name,
        )
    try:
        response = solution_str if isinstance(solution_str, str) else str(solution_str)
        if len(response) > settings.max_response_chars:
            response = response[-settings.max_response_chars :]
        _watch_think_tags(response, mode, settings)
        answer = answer_part(response, mode, settings.think_tags)
        if answer is not None and len(answer) > settings.max_answer_chars:
            # Every reward prefers the rightmost answer: keep the tail (bounds regex time on hostile text).
            answer = answer[-settings.max_answer_chars :]
        format_ok = format_score(response, mode, settings.think_tags)
        if fn is None:  # the "format" reward
            outcome = Outcome(acc=format_ok, has_answer=answer is not None)
        else:
            outcome = fn(answer, ground_truth, settings)
    except Exception:  # noqa: BLE001 - model output must never fail the training step
        with _probe_lock:
            _probe["errors_logged"] += 1
            log = _probe["errors_logged"] <= 10
        if log:
            logger.exception("reward %r failed on a response of data_source %r; scored 0", name, data_source)
        outcome, format_ok = Outcome(), 0.0
    return to_result(outcome, mode=mode, format_ok=format_ok, format_weight=settings.format_weight, reward_fn=name)
