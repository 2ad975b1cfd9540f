"""Options of the reward, from ``reward.custom_reward_function.reward_kwargs``.

verl passes ``reward_kwargs`` to every ``compute_score`` call; they are validated once per distinct
set (a typo fails the first reward call with the key to fix) and cached. Containers are taken as
read-only once passed: a change made in place to the same object is not seen.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, fields

from r4b_verl.think import MODE_KEY

CONFIG_PREFIX = "reward.custom_reward_function.reward_kwargs"
# Keys verl itself may add to the call (reward-model router); accepted and ignored.
_VERL_KWARGS = frozenset({"reward_router_address", "reward_model_tokenizer"})


@dataclass(frozen=True)
class Settings:
    routes: tuple[tuple[str, str], ...] = ()  # (data_source pattern, reward) checked before the built-in table
    default: str = "math"  # reward for data sources no route matches (logged once per source)
    format_weight: float = 0.0  # score = (1 - w) * acc + w * format_ok
    mode_key: str = MODE_KEY  # extra_info key holding think / no_think / auto (written by the bi-mode loop)
    think_tags: str = "kept"  # "stripped" when the tokenizer drops <think> tags at decoding
    fast_mismatch: bool = True  # two different plain integers: "not equal" without the symbolic worker
    timeout_s: float = 5.0  # symbolic check of one answer (soft deadline in the worker)
    kill_grace_s: float = 1.0  # after timeout_s, the worker is killed and replaced
    max_wait_s: float = 30.0  # waiting for a free or (re)starting worker
    workers: int = 1  # symbolic worker processes per reward process
    worker_memory_mb: int = 4096  # address-space cap of each worker (0: none)
    verdict_store: str = "auto"  # symbolic verdicts shared by the node's reward processes: auto, a directory, off
    max_response_chars: int = 1_000_000  # longer responses keep their tail
    max_answer_chars: int = 4096  # the answer part is cut to its tail before extraction
    numeric_rel_tol: float = 1e-4
    numeric_abs_tol: float = 1e-8
    choice_letters: str = "ABCDEFGHIJ"

    def __post_init__(self):
        def bad(key, why):
            raise ValueError(f"{CONFIG_PREFIX}.{key}: {why}")

        if not 0.0 <= self.format_weight <= 1.0:
            bad("format_weight", f"must be in [0, 1], got {self.format_weight}")
        if self.think_tags not in ("kept", "stripped"):
            bad("think_tags", f"must be 'kept' or 'stripped', got {self.think_tags!r}")
        for key in ("timeout_s", "kill_grace_s", "max_wait_s"):
            if not getattr(self, key) > 0:
                bad(key, f"must be > 0, got {getattr(self, key)}")
        if self.workers < 1:
            bad("workers", f"must be >= 1, got {self.workers}")
        if self.max_answer_chars < 16:
            bad("max_answer_chars", f"must be >= 16, got {self.max_answer_chars}")
        if self.max_response_chars < self.max_answer_chars:
            bad("max_response_chars",
                f"must be >= max_answer_chars ({self.max_answer_chars}), got {self.max_response_chars}")
        if not self.choice_letters or not self.choice_letters.isalpha():
            bad("choice_letters", f"must be letters, got {self.choice_letters!r}")


_FIELDS = {f.name: f for f in fields(Settings)}
_cache: dict = {}
_cache_lock = threading.Lock()


def _plain(value):
    """OmegaConf containers (verl passes them nested) and lists as hashable plain values."""
    if isinstance(value, Mapping):
        return tuple((str(k), _plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    return value


def _convert(kind: type, value):
    if kind is bool:
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
            return value.strip().lower() in ("true", "1")
        if not isinstance(value, (bool, int)):
            raise TypeError(value)
        return bool(value)
    if kind is int and isinstance(value, float) and not value.is_integer():
        raise ValueError(value)
    return kind(value)


# verl passes the same reward_kwargs objects on every call (its partial holds them): those calls are
# answered by identity, without walking OmegaConf containers (a third of a fast verdict's time).
# The entry holds the objects, so their ids cannot be reused while it lives.
_by_identity: dict[tuple, tuple[Settings, tuple]] = {}


def settings_from(kwargs: Mapping) -> Settings:
    identity = (tuple(kwargs), tuple(map(id, kwargs.values())))
    hit = _by_identity.get(identity)
    if hit is not None:
        return hit[0]
    settings = _settings_from(kwargs)
    with _cache_lock:
        if len(_by_identity) > 256:
            _by_identity.clear()
        _by_identity[identity] = (settings, tuple(kwargs.values()))
    return settings


def _settings_from(kwargs: Mapping) -> Settings:
    key = tuple(sorted((k, _plain(v)) for k, v in kwargs.items() if k not in _VERL_KWARGS))
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    values = {}
    for name, value in key:
        if name not in _FIELDS:
            raise ValueError(
                f"{CONFIG_PREFIX}.{name}: unknown option; known options: {', '.join(sorted(_FIELDS))}"
            )
        if name == "routes":
            if value is None:
                value = ()
            if not all(isinstance(item, tuple) and len(item) == 2 for item in value):
                raise ValueError(f"{CONFIG_PREFIX}.routes: must map data_source patterns to reward names")
            value = tuple((str(k), str(v)) for k, v in value)
        else:
            kind = type(_FIELDS[name].default)
            try:
                value = _convert(kind, value)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{CONFIG_PREFIX}.{name}: expected {kind.__name__}, got {value!r}") from exc
        values[name] = value
    settings = Settings(**values)
    with _cache_lock:
        if len(_cache) > 64:
            _cache.clear()
        _cache[key] = settings
    return settings
