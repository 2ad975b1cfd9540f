"""Routing by ``data_source``: which reward function scores a row.

Lookup order: ``reward_kwargs.routes`` (user table), then the built-in table below, then
``reward_kwargs.default`` (logged once per unknown source). Keys are case-insensitive shell
patterns (``fnmatch``); the first match wins. A route's value is a built-in name (``math``,
``choice``, ``numeric``, ``exact``, ``format``) or a user function: ``pkg://module:function`` or
``/path/to/file.py:function`` (``:function`` defaults to ``compute_score``), loaded the way verl
loads ``custom_reward_function.path``.
"""

from __future__ import annotations

import fnmatch
import functools
import logging
import threading
from collections.abc import Callable

from .choice import score_choice
from .exact import score_exact
from .math_answer import score_math
from .numeric import score_numeric
from .settings import CONFIG_PREFIX, Settings

logger = logging.getLogger(__name__)

# name -> fn(answer_part | None, ground_truth, settings) -> Outcome, the answer part already cut to
# max_answer_chars by the caller; "format" is handled by the caller.
BUILTINS: dict[str, Callable | None] = {
    "math": score_math,
    "choice": score_choice,
    "numeric": score_numeric,
    "exact": score_exact,
    "format": None,
}

DEFAULT_ROUTES: tuple[tuple[str, str], ...] = (
    ("*_mc", "choice"),  # multiple-choice rows of r4b_verl.data.prepare (mathvista_mc, scienceqa_mc, ...)
    ("math", "math"),
    ("*math-500*", "math"),
    ("*math500*", "math"),
    ("*math_500*", "math"),
    ("lighteval/math*", "math"),
    ("*hendrycks_math*", "math"),
    ("*gsm8k*", "math"),
    ("aime*", "math"),
    ("*/aime*", "math"),
    ("*dapo_math*", "math"),
    ("*geometry3k*", "math"),
    ("*mathvista*", "math"),
    ("*mathverse*", "math"),
    ("choice", "choice"),
    ("numeric", "numeric"),
    ("exact", "exact"),
    ("format", "format"),
)

_resolved: dict[tuple, tuple[str, Callable | None]] = {}
_user_fns: dict[str, Callable] = {}
_warned_sources: set[str] = set()
_lock = threading.Lock()


def split_spec(spec: str) -> tuple[str, str]:
    """'pkg://a.b:fn' -> ('pkg://a.b', 'fn'); without ':fn' the function is compute_score."""
    head, sep, tail = spec.rpartition(":")
    if sep and tail and "/" not in tail and head not in ("", "pkg", "file"):
        return head, tail
    return spec, "compute_score"


def load_user_fn(spec: str, where: str) -> Callable:
    """``pkg://module:function`` or ``path.py:function`` -> the function (cached)."""
    with _lock:
        fn = _user_fns.get(spec)
    if fn is not None:
        return fn
    path, name = split_spec(spec)
    from verl.utils.import_utils import load_extern_object  # verl's own pkg:// / file loader

    try:
        fn = load_extern_object(module_path=path, object_name=name)
    except Exception as exc:
        raise ValueError(f"{where}: cannot load reward function {spec!r}: {exc}") from exc
    if not callable(fn):
        raise ValueError(f"{where}: {spec!r} is not callable")
    with _lock:
        _user_fns[spec] = fn
    return fn


def _target(value: str, where: str) -> tuple[str, Callable | None]:
    if value in BUILTINS:
        return value, BUILTINS[value]
    if value.startswith("pkg://") or value.startswith("file://") or ".py" in value or "/" in value:
        return value, load_user_fn(value, where)
    raise ValueError(
        f"{where}: unknown reward {value!r}; use one of {', '.join(BUILTINS)}, "
        "pkg://module:function or /path/to/file.py:function"
    )


def _match(table: tuple[tuple[str, str], ...], source: str) -> tuple[str, str] | None:
    """The first (pattern, reward) of ``table`` whose pattern matches ``source``, case-insensitively."""
    lowered = source.lower()
    return next((item for item in table if fnmatch.fnmatchcase(lowered, item[0].lower())), None)


def _lookup(settings: Settings, source: str) -> tuple[str, str]:
    """(route value, where it was set) for ``source``: user routes, then the built-in table, then the default."""
    user = _match(settings.routes, source)
    if user is not None:
        return user[1], f"{CONFIG_PREFIX}.routes.{user[0]}"
    builtin = _match(DEFAULT_ROUTES, source)
    if builtin is not None:
        return builtin[1], "built-in route"
    return settings.default, f"{CONFIG_PREFIX}.default"


def route_name(settings: Settings, data_source) -> str:
    """The reward ``data_source`` routes to (a built-in name or a user function's spec), without loading it."""
    return _cached_lookup(settings, str(data_source))[0]


@functools.lru_cache(maxsize=4096)
def _cached_lookup(settings: Settings, source: str) -> tuple[str, str]:
    return _lookup(settings, source)


def route(settings: Settings, data_source) -> tuple[str, Callable | None]:
    """(reward name, function); function None means the built-in ``format`` reward."""
    source = str(data_source)
    key = (settings, source)
    with _lock:
        hit = _resolved.get(key)
    if hit is not None:
        return hit
    value, where = _lookup(settings, source)
    result = _target(value, where)
    if where == f"{CONFIG_PREFIX}.default":
        if source not in _warned_sources:
            _warned_sources.add(source)
            logger.warning(
                "reward: data_source %r matches no route; scoring it with the default %r (set %s.routes to change)",
                source, result[0], CONFIG_PREFIX,
            )
    with _lock:
        if len(_resolved) > 4096:
            _resolved.clear()
        _resolved[key] = result
    return result


def check_targets(settings: Settings) -> None:
    """Resolve the reward of every route and the default (a typo or a user function that does not load raises here,
    naming the key), as the first reward call of each data source would."""
    for pattern, value in settings.routes:
        _target(value, f"{CONFIG_PREFIX}.routes.{pattern}")
    _target(settings.default, f"{CONFIG_PREFIX}.default")
