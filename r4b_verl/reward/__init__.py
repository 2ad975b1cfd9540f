"""Rule-based verifiable rewards for r4b-verl: one verl reward function that routes by data source.

Set by the recipe as ``reward.custom_reward_function.path: pkg://r4b_verl.reward`` with
``name: compute_score_async`` (verl's reward loop awaits it); ``compute_score`` is the same reward,
blocking, for any other caller. Options come from ``reward.custom_reward_function.reward_kwargs``
(settings.py). User documentation: ``r4b_verl/reward/README.md``; user-facing reward files: ``reward_fns/``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Callable, Mapping
from functools import partial

from r4b_verl.think import THINK_CLOSE, answer_part, format_score, normalize_mode

from .gold import null_gold
from .math_answer import STATS, reset_caches
from .outcome import PRED_MAX_CHARS, RESULT_KEYS, Outcome, to_result
from .router import BUILTINS, DEFAULT_ROUTES, route
from .settings import Settings, settings_from

__all__ = [
    "compute_score", "compute_score_async", "BUILTINS", "DEFAULT_ROUTES", "RESULT_KEYS", "Settings", "STATS",
    "reset_caches",
]

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


def _log_failure(name: str, data_source) -> None:
    with _probe_lock:
        _probe["errors_logged"] += 1
        log = _probe["errors_logged"] <= 10
    if log:
        logger.exception("reward %r failed on a response of data_source %r; scored 0", name, data_source)


_null_gold_sources: set[str] = set()


def _warn_null_gold(data_source) -> None:
    """Once per data source: a row without a ground truth scores 0 whatever the response (data rows, not the model)."""
    source = str(data_source)
    with _probe_lock:
        if source in _null_gold_sources or len(_null_gold_sources) > 1024:
            return
        _null_gold_sources.add(source)
    logger.warning("reward: a row of data_source %r has a null ground truth (reward_model.ground_truth): "
                   "every response to it scores 0. Find the rows with: python -m r4b_verl.data.check FILE", source)


def _builtin(name, fn, data_source, solution_str, ground_truth, mode, settings) -> dict | Callable[[], dict]:
    """A built-in reward's result, or (math needing sympy) a blocking callable that finishes it.

    Model output never makes either raise: a failure is logged and scored 0.
    """
    if null_gold(ground_truth):
        _warn_null_gold(data_source)
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
        _log_failure(name, data_source)
        outcome, format_ok = Outcome(), 0.0

    def result(outcome: Outcome) -> dict:
        return to_result(outcome, mode=mode, format_ok=format_ok, format_weight=settings.format_weight, reward_fn=name)

    if isinstance(outcome, Outcome):
        return result(outcome)

    def finish() -> dict:
        try:
            return result(outcome())
        except Exception:  # noqa: BLE001
            _log_failure(name, data_source)
            return result(Outcome())

    return finish


def _user_kwargs(data_source, solution_str, ground_truth, extra_info) -> dict:
    return {"data_source": data_source, "solution_str": solution_str, "ground_truth": ground_truth,
            "extra_info": extra_info}


def _setup(data_source, extra_info, reward_kwargs):
    settings = settings_from(reward_kwargs)
    name, fn = route(settings, data_source)
    mode = normalize_mode(extra_info.get(settings.mode_key) if isinstance(extra_info, Mapping) else None)
    return settings, name, fn, mode


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **reward_kwargs) -> dict:
    """Score one response, blocking; a verl ``custom_reward_function`` callable from any thread.

    Returns ``score`` plus ``acc``, ``pred``, ``mode``, ``has_answer``, ``format_ok``, ``timeout`` and
    ``reward_fn`` (same keys for every row). Model output never makes it raise; a bad option does.
    """
    settings, name, fn, mode = _setup(data_source, extra_info, reward_kwargs)
    if name not in BUILTINS:
        if inspect.iscoroutinefunction(fn):
            raise TypeError(f"reward route {name!r} is an async function: call compute_score_async "
                            "(the recipe's reward.custom_reward_function.name) instead of compute_score")
        return _user_result(fn(**_user_kwargs(data_source, solution_str, ground_truth, extra_info)), mode, name)
    result = _builtin(name, fn, data_source, solution_str, ground_truth, mode, settings)
    return result() if callable(result) else result


async def compute_score_async(data_source, solution_str, ground_truth, extra_info=None, **reward_kwargs) -> dict:
    """``compute_score`` for verl's reward loop, which awaits an async reward in its event loop.

    The in-process steps (answer part, extraction, fast verdicts, caches: tens of microseconds) run
    in the loop; only a symbolic check, or a synchronous user function, goes to the loop's default
    executor, so no executor hop is paid for the responses the fast path decides. The recipe sets
    ``reward.custom_reward_function.name: compute_score_async``.
    """
    settings, name, fn, mode = _setup(data_source, extra_info, reward_kwargs)
    loop = asyncio.get_running_loop()
    if name not in BUILTINS:
        kwargs = _user_kwargs(data_source, solution_str, ground_truth, extra_info)
        if inspect.iscoroutinefunction(fn):
            return _user_result(await fn(**kwargs), mode, name)
        return _user_result(await loop.run_in_executor(None, partial(fn, **kwargs)), mode, name)
    result = _builtin(name, fn, data_source, solution_str, ground_truth, mode, settings)
    return await loop.run_in_executor(None, result) if callable(result) else result
