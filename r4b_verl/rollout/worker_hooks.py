"""Three small wrappers on verl's ``AgentLoopWorker`` (verl 0.9.1), installed by ``r4b_verl.rollout``.

verl gives an agent loop the dataset row and ``session_id`` but not whether the rollout is a
validation one (``AgentLoopWorkerTQ.generate_sequences`` pops ``validate`` from the batch), and
it has no start-up hook for agent loops. So, on the worker class (applies to the V1
``AgentLoopWorkerTQ`` and the legacy worker alike):

* ``__init__``: after verl's own init, run the bi-mode start-up checks (config, split, prefixes
  against the real tokenizer and chat template) so a bad setup fails when the workers start,
  with a message naming the key, instead of every rollout failing later in a background task;
* ``_run_agent_loop``: expose ``trajectory["validate"]`` to the loop through a ContextVar
  (:func:`current_rollout_context`);
* ``_compute_score``: after the reward, add two numbers to ``reward_extra_info`` of bi-mode
  responses, ``bpo_think`` (1.0 if the response thinks, by its think block) and
  ``bpo_response_length``, so the validation metrics can use them (verl's validation gathers
  ``reward_extra_info`` only; it also logs them per data source as ``val-aux/<source>/bpo_think/...``).

Each wrapper calls the original first-or-around and changes nothing for other agent loops.
``install()`` checks the wrapped signatures and is idempotent.
"""

from __future__ import annotations

import functools
import inspect
import logging
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("r4b_verl")


@dataclass(frozen=True)
class RolloutContext:
    validate: bool


_CONTEXT: ContextVar[RolloutContext | None] = ContextVar("r4b_verl_rollout_context", default=None)


def current_rollout_context() -> RolloutContext | None:
    """The context of the agent-loop run in progress (None outside verl's ``_run_agent_loop``)."""
    return _CONTEXT.get()


def uses_bimode(config: Any) -> bool:
    """Whether this run uses the bi-mode loop (its default agent loop, or a ``bpo:`` block)."""
    try:
        default_loop = config.actor_rollout_ref.rollout.agent.default_agent_loop
    except Exception:  # noqa: BLE001 - partial configs in other tools
        default_loop = None
    return default_loop == "bpo_bimode" or (hasattr(config, "get") and config.get("bpo", None) is not None)


def startup_check(config: Any, tokenizer: Any, processor: Any) -> None:
    """Refuse a bi-mode setup that cannot work, naming the config key. Warn about lossy ones."""
    from r4b_verl.rollout.agent_loop import checked_prefix_tokens
    from r4b_verl.rollout.options import BPOConfigError, BPORolloutOptions, check_truncation

    options = BPORolloutOptions.from_trainer_config(config)
    if not config.trainer.get("use_v1", True):
        raise BPOConfigError(
            "bpo_bimode needs trainer.use_v1=true: the legacy trainer gives agent loops no session_id, so the "
            "g thinking and g non-thinking responses of a prompt cannot be told apart"
        )
    rollout = config.actor_rollout_ref.rollout
    options.check_split(rollout.n)
    truncation = check_truncation(config.data)
    tokens = checked_prefix_tokens(options, tokenizer, processor, config.data.get("apply_chat_template_kwargs", {}))
    if rollout.prompt_length <= tokens.max_len:
        raise BPOConfigError(
            f"actor_rollout_ref.rollout.prompt_length={rollout.prompt_length} leaves no room for a prompt next to "
            f"the {tokens.max_len}-token mode prefix of bpo.prefix_preset={tokens.preset.name}"
        )
    max_prompt = config.data.get("max_prompt_length", None)
    if max_prompt is not None and max_prompt + tokens.max_len > rollout.prompt_length:
        logger.warning(
            "bpo: data.max_prompt_length=%s plus the %d-token mode prefix exceeds actor_rollout_ref.rollout."
            "prompt_length=%s: prompts near the limit will be %s (data.truncation=%s). "
            "Set actor_rollout_ref.rollout.prompt_length=%s to avoid it.",
            max_prompt, tokens.max_len, rollout.prompt_length,
            "refused" if truncation == "error" else "truncated", truncation, max_prompt + tokens.max_len,
        )
    if options.train_mode_token:
        moved = max(len(tokens.decision_tail(m)) for m in ("think", "no_think"))
        if rollout.response_length <= moved:
            raise BPOConfigError(
                f"actor_rollout_ref.rollout.response_length={rollout.response_length} leaves no room to generate "
                f"after the {moved} forced prefix tokens bpo.train_mode_token=true moves into the response"
            )
        if not rollout.get("calculate_log_probs", False):
            raise BPOConfigError(
                "bpo.train_mode_token=true needs actor_rollout_ref.rollout.calculate_log_probs=true: the forced "
                "token's correction is carried by its rollout log-prob"
            )
        corr = config.algorithm.get("rollout_correction", None) or {}
        if not (corr.get("bypass_mode", False) or corr.get("rollout_is", None)):
            logger.warning(
                "bpo.train_mode_token=true without algorithm.rollout_correction.bypass_mode=true or "
                "algorithm.rollout_correction.rollout_is=token: the forced decision token is trained with the "
                "plain PPO ratio, without the correction for having been forced (see r4b_verl/rollout/README.md)"
            )


def _check_signature(fn, expected: tuple[str, ...]) -> None:
    names = tuple(inspect.signature(fn).parameters)[: len(expected)]
    if names != expected:
        raise RuntimeError(
            f"r4b-verl wraps {fn.__qualname__}{expected} but this verl has {names}: the hook needs updating"
        )


def install() -> None:
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker

    if getattr(AgentLoopWorker, "_r4b_bpo_hooks", False):
        return
    _check_signature(AgentLoopWorker.__init__, ("self", "config", "llm_client"))
    _check_signature(AgentLoopWorker._run_agent_loop, ("self", "sampling_params", "trajectory"))
    _check_signature(AgentLoopWorker._compute_score, ("self", "outputs", "kwargs"))

    original_init = AgentLoopWorker.__init__
    original_run = AgentLoopWorker._run_agent_loop
    original_score = AgentLoopWorker._compute_score

    @functools.wraps(original_init)
    def __init__(self, config, *args, **kwargs):
        original_init(self, config, *args, **kwargs)
        if uses_bimode(config):
            startup_check(config, self.tokenizer, self.processor)

    @functools.wraps(original_run)
    async def _run_agent_loop(self, sampling_params, trajectory, *args, **kwargs):
        token = _CONTEXT.set(RolloutContext(validate=bool(trajectory["validate"])))
        try:
            return await original_run(self, sampling_params, trajectory, *args, **kwargs)
        finally:
            _CONTEXT.reset(token)

    @functools.wraps(original_score)
    async def _compute_score(self, outputs, kwargs):
        await original_score(self, outputs, kwargs)
        final = outputs[-1]
        info = final.extra_fields.get("reward_extra_info")
        if "bpo_chosen_mode" in final.extra_fields and isinstance(info, dict):
            info = dict(info)
            info["bpo_think"] = 1.0 if final.extra_fields["bpo_chosen_mode"] == "think" else 0.0
            info["bpo_response_length"] = float(len(final.response_ids))
            final.extra_fields["reward_extra_info"] = info

    AgentLoopWorker.__init__ = __init__
    AgentLoopWorker._run_agent_loop = _run_agent_loop
    AgentLoopWorker._compute_score = _compute_score
    AgentLoopWorker._r4b_bpo_hooks = True
