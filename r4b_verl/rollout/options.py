"""The ``bpo:`` config block read by the bi-mode agent loop, with its defaults and checks.

``bpo`` is not part of verl's schema: the recipe sets it (or ``+bpo.<key>=...`` on the command
line). Every key has a default here, so the loop also works when the block is absent. Each
check names the config key to change.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, fields
from typing import Any

from omegaconf import DictConfig, OmegaConf

from r4b_verl.rollout.prefixes import PrefixPreset, resolve_preset
from r4b_verl.think import ALL_MODES, AUTO, MODES, NO_THINK, THINK

TRUNCATIONS = ("error", "left", "right", "middle")
DATA_CHECK_MODES = ("error", "warn", "off")  # bpo.data_check (r4b_verl/data/startup.py)
TRAIN_MODES = ("forced", "auto")  # bpo.train_mode
DECISION_POSITIONS = ("prompt", "response")  # bpo.decision_token.position


class BPOConfigError(ValueError):
    """A ``bpo.*`` (or related verl) option is invalid for the bi-mode rollout."""


@dataclass(frozen=True)
class DecisionToken:
    """``bpo.decision_token``: where the token that decides the mode sits in a forced rollout, and its loss weight.

    ``position=prompt`` (R-4B's BPO as published): the forced prefix is part of the prompt, the decision token
    gets no gradient. ``position=response`` (AdaptThink): it becomes the first response token (mask 1, rollout
    log-prob = log of the mode's share). ``weight``: null = an ordinary response token of the policy loss; a
    number alpha = Thinkless's decoupled term ``alpha * mean_i l_{i,0}`` (needs the ``r4b_decision`` loss).
    """

    position: str = "prompt"
    weight: float | None = None


@dataclass(frozen=True)
class BPORolloutOptions:
    """Options of the ``bpo_bimode`` agent loop (the ``bpo:`` block)."""

    think_fraction: float = 0.5  # share of the rollout.n sessions that think (first ones)
    prefix_preset: str = "r4b"  # r4b | qwen3 | r1_distill | custom
    think_prefix: str | None = None  # overrides of the preset's strings
    no_think_prefix: str | None = None
    auto_prefix: str | None = None
    template_opens: str | None = None
    val_mode: str = "auto"  # mode of validation rollouts: auto | think | no_think | all (each prompt in every mode)
    train_mode_token: bool = False  # legacy spelling: true = decision_token.position=response (wins over position)
    # Where the token that decides the mode sits in a forced rollout and how the loss weights it:
    # {position: prompt | response, weight: null | float}. See r4b_verl/methods/README.md.
    decision_token: DecisionToken = DecisionToken()
    train_mode: str = "forced"  # forced: g think + g no_think per prompt (BPO, AdaptThink); auto: the model chooses
    data_check: str = "error"  # trainer start-up check of data.train_files / val_files: error | warn | off
    # room for the mode prefix the recipes add to data.max_prompt_length to size rollout.prompt_length
    # (checked against the real prefix once the tokenizer is known)
    prefix_tokens: int = 8

    @classmethod
    def from_trainer_config(cls, config: DictConfig | dict | None) -> BPORolloutOptions:
        """Read and check ``config.bpo`` (missing block or keys -> defaults)."""
        block = None if config is None else config.get("bpo", None)
        if block is None:
            return cls()
        if isinstance(block, DictConfig):
            block = OmegaConf.to_container(block, resolve=True)
        if not isinstance(block, dict):
            raise BPOConfigError(f"bpo must be a mapping of options, got {block!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(block) - known)
        if unknown:
            hints = [f"bpo.{k} (did you mean bpo.{close[0]}?)" if (close := difflib.get_close_matches(k, known, 1))
                     else f"bpo.{k}" for k in unknown]
            raise BPOConfigError(f"unknown key(s) {', '.join(hints)}; known: {sorted(known)}")
        values = {k: v for k, v in block.items() if v is not None}  # null -> default
        token = values.get("decision_token", {})
        if not isinstance(token, dict) or set(token) - {"position", "weight"}:
            raise BPOConfigError(
                f"bpo.decision_token must be {{position: prompt|response, weight: null|number}}, got {token!r}")
        values["decision_token"] = DecisionToken(**{k: v for k, v in token.items() if v is not None})
        options = cls(**values)
        options.check()
        return options

    def check(self) -> None:
        tf = self.think_fraction
        if isinstance(tf, bool) or not isinstance(tf, (int, float)) or not (0.0 < tf < 1.0) or math.isnan(tf):
            raise BPOConfigError(f"bpo.think_fraction must be a number strictly between 0 and 1, got {tf!r}")
        if self.val_mode not in (*MODES, ALL_MODES):
            raise BPOConfigError(f"bpo.val_mode must be one of {[*MODES, ALL_MODES]}, got {self.val_mode!r}")
        if not isinstance(self.train_mode_token, bool):
            raise BPOConfigError(f"bpo.train_mode_token must be true or false, got {self.train_mode_token!r}")
        if self.data_check not in DATA_CHECK_MODES:
            raise BPOConfigError(f"bpo.data_check must be one of {list(DATA_CHECK_MODES)}, got {self.data_check!r}")
        if self.train_mode not in TRAIN_MODES:
            raise BPOConfigError(f"bpo.train_mode must be one of {list(TRAIN_MODES)}, got {self.train_mode!r}")
        position, weight = self.decision_token.position, self.decision_token.weight
        if position not in DECISION_POSITIONS:
            raise BPOConfigError(
                f"bpo.decision_token.position must be one of {list(DECISION_POSITIONS)}, got {position!r}")
        if weight is not None and (isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0):
            raise BPOConfigError(f"bpo.decision_token.weight must be null or a number >= 0, got {weight!r}")
        pt = self.prefix_tokens
        if isinstance(pt, bool) or not isinstance(pt, int) or pt < 0:
            raise BPOConfigError(f"bpo.prefix_tokens must be a whole number >= 0, got {pt!r}")
        if not isinstance(self.prefix_preset, str):
            raise BPOConfigError(f"bpo.prefix_preset must be a string, got {self.prefix_preset!r}")
        self.preset()  # raises PrefixConfigError (a ValueError) naming bpo.prefix_preset / bpo.*_prefix

    @property
    def decision_in_response(self) -> bool:
        """A forced rollout moves its decision token into the response (mask 1): ``decision_token.position=response``.

        With ``train_mode=auto`` nothing is forced: the model generates the decision token, which is a response
        token whatever ``position`` says, so no prefix moves.
        """
        return self.train_mode == "forced" and (self.train_mode_token or self.decision_token.position == "response")

    @property
    def decision_weight(self) -> float | None:
        """``decision_token.weight``: null = an ordinary response token; a number = DeGRPO's separate term."""
        return self.decision_token.weight

    def preset(self) -> PrefixPreset:
        return resolve_preset(
            self.prefix_preset, self.think_prefix, self.no_think_prefix, self.auto_prefix, self.template_opens
        )

    def num_think(self, n: int) -> int:
        """How many of the ``n`` sessions of a prompt think: round(n * think_fraction), half up."""
        return int(math.floor(n * self.think_fraction + 0.5))

    def check_split(self, n: Any) -> int:
        """Refuse a split that is not whole (so no mode is empty either); return the number of thinking sessions.

        A whole ``n * think_fraction`` with ``0 < think_fraction < 1`` leaves each mode at least one session.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise BPOConfigError(
                f"actor_rollout_ref.rollout.n={n!r}: BPO needs at least 2 responses per prompt (one per mode); "
                "use n = 2g"
            )
        if self.train_mode == "auto":
            return 0  # no forced split: every session chooses its mode
        g_think = self.num_think(n)
        if abs(n * self.think_fraction - g_think) > 1e-9:
            raise BPOConfigError(
                f"actor_rollout_ref.rollout.n={n} with bpo.think_fraction={self.think_fraction} does not split into "
                f"whole groups ({n * self.think_fraction:g} thinking responses per prompt): choose n so that "
                f"n * think_fraction is a whole number (n = 2g for 0.5)"
            )
        return g_think

    def val_sessions(self, val_n: int) -> int:
        """Sessions per validation prompt: ``val_kwargs.n``, or that many per mode with ``val_mode=all``."""
        return len(MODES) * val_n if self.val_mode == ALL_MODES else val_n

    def val_mode_for_session(self, session_id: int, val_n: int) -> str:
        """``val_mode``; with ``all``, sessions ``0..val_n-1`` think, the next ``val_n`` do not, the last are auto."""
        if self.val_mode != ALL_MODES:
            return self.val_mode
        if not 0 <= session_id < len(MODES) * val_n:
            raise BPOConfigError(
                f"bpo.val_mode=all: validation session_id={session_id} outside 0..{len(MODES) * val_n - 1} "
                f"({len(MODES)} modes x actor_rollout_ref.rollout.val_kwargs.n={val_n})"
            )
        return MODES[session_id // val_n]

    def mode_for_session(self, session_id: int, n: int) -> str:
        """Sessions 0..g_think-1 think, the others do not; with ``train_mode=auto`` every session chooses."""
        if self.train_mode == "auto":
            return AUTO
        return THINK if session_id < self.num_think(n) else NO_THINK

    def mode_token_log_prob(self, mode: str) -> float:
        """Log-probability with which the forced decision token was 'sampled': the mode's share of the group.

        AdaptThink uses log(0.5) for its 50/50 split; this generalises it to ``think_fraction``.
        """
        return math.log(self.think_fraction if mode == "think" else 1.0 - self.think_fraction)


def check_truncation(data_config: Any) -> str:
    value = (data_config.get("truncation", "error") if data_config is not None else "error") or "error"
    if value not in TRUNCATIONS:
        raise BPOConfigError(f"data.truncation={value!r} is not one of {list(TRUNCATIONS)}")
    return value
