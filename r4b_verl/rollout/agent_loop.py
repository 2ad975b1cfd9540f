"""``bpo_bimode``: verl's ``SingleTurnAgentLoop`` with a thinking / non-thinking prefix per session.

verl's V1 trainer runs an agent loop ``rollout.n`` times per prompt with ``session_id = 0..n-1``,
all sharing the prompt's ``uid`` (``AgentLoopWorkerTQ._run_prompt``). This loop turns that into
BPO's bi-mode group: sessions ``0..g_think-1`` get the thinking prefix appended to the prompt,
the others the non-thinking one, so the ``bpo`` estimator normalises both modes together.
Validation rollouts get ``bpo.val_mode`` (``auto`` by default: the model chooses; ``all``: the BPO
worker runs each prompt ``val_kwargs.n`` times in each mode, think, no_think, auto).

Only the prompt building differs from verl's loop (:meth:`BPOBiModeAgentLoop.ct_build_initial_tokens`):
the base prompt is fitted per ``data.truncation`` and the mode prefix appended. verl's ``run`` does
the rest (multimodal inputs, the one ``generate`` call, merging); :meth:`BPOBiModeAgentLoop.run`
picks the mode before it and records the mode after it. The base prompt ids are identical across a
prompt's n sessions, so vLLM's prefix cache serves it to all but the first (measured: README, "vLLM on CPU").

Training or validation? verl's worker does not tell an agent loop (``AgentLoopWorkerTQ`` pops
``validate`` from the batch). r4b-verl's worker (``rollout/worker.py``, named by the recipe) runs
every loop inside :func:`rollout_phase`; a loop driven directly (as verl's own agent-loop tests do)
is a training rollout unless run inside ``rollout_phase(validate=True)``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from verl.experimental.agent_loop.agent_loop import AgentLoopOutput, register
from verl.experimental.agent_loop.single_turn_agent_loop import SingleTurnAgentLoop

from r4b_verl.rollout.options import BPOConfigError, BPORolloutOptions, check_truncation
from r4b_verl.rollout.prefixes import CHECKED_PREFIXES, PrefixTokens
from r4b_verl.think import AUTO, CHOSEN_MODE_KEY, IMAGE_TOKENS_KEY, MODE_KEY, MODES, PREFIX_KEY, read_chosen_mode

logger = logging.getLogger(__file__)
logger.setLevel(os.getenv("VERL_LOGGING_LEVEL", "WARN"))

AGENT_LOOP_NAME = "bpo_bimode"
MANAGER_CLASS = "r4b_verl.rollout.worker.BPOAgentLoopManager"

_VALIDATE: ContextVar[bool | None] = ContextVar("r4b_verl_bpo_validate", default=None)


@contextmanager
def rollout_phase(validate: bool) -> Iterator[None]:
    """Run the bi-mode loops started inside this block as validation (``True``) or training rollouts."""
    token = _VALIDATE.set(bool(validate))
    try:
        yield
    finally:
        _VALIDATE.reset(token)


def _in_ray_actor() -> bool:
    import ray

    return ray.is_initialized() and ray.get_runtime_context().get_actor_id() is not None


@dataclass(frozen=True)
class LoopSetup:
    """What every loop of a worker shares, read and checked once: options, prefixes, the prompt budget."""

    options: BPORolloutOptions
    truncation: str
    prefixes: PrefixTokens
    n: int  # rollout.n
    val_n: int  # rollout.val_kwargs.n
    opened: dict[str, str]  # mode -> the text of the think block the prompt already holds


class LoopSetups:
    """Per-process cache of :class:`LoopSetup`, keyed by the objects verl hands every loop of a worker.

    verl builds one loop per trajectory from the worker's config, tokenizer and processor; reading the
    ``bpo:`` block each time costs more than the rest of the loop's own work. Entries keep their keys'
    objects alive, so an ``id()`` is never reused by another object while cached.
    """

    def __init__(self):
        self._entries: dict[tuple[int, int, int], tuple[Any, Any, Any, LoopSetup]] = {}

    def get(self, loop: BPOBiModeAgentLoop) -> LoopSetup:
        key = (id(loop.config), id(loop.tokenizer), id(loop.processor))
        if key not in self._entries:
            options = BPORolloutOptions.from_trainer_config(loop.config)
            prefixes = CHECKED_PREFIXES.get(options, loop.tokenizer, loop.processor, loop.apply_chat_template_kwargs)
            opened = {m: prefixes.preset.template_opens + loop.tokenizer.decode(prefixes.ids[m]) for m in MODES}
            setup = LoopSetup(
                options=options,
                truncation=check_truncation(loop.data_config),
                prefixes=prefixes,
                n=loop.rollout_config.n,
                val_n=loop.rollout_config.val_kwargs.n,
                opened=opened,
            )
            self._entries[key] = (loop.config, loop.tokenizer, loop.processor, setup)
        return self._entries[key][3]

    def clear(self) -> None:
        self._entries.clear()


LOOP_SETUPS = LoopSetups()


def fit_prompt(base_ids: list[int], budget: int, truncation: str, multimodal: bool) -> list[int]:
    """Cut the base prompt to ``budget`` tokens the way ``data.truncation`` says; the prefix is never cut.

    Same semantics as verl's ``postprocess_data`` (utils/torch_functional.py): ``left`` keeps the
    end, ``right`` the start, ``middle`` both halves, ``error`` refuses. Multimodal prompts are
    refused whatever the setting, as verl does: cutting would misalign the image placeholders.
    """
    if len(base_ids) <= budget:
        return base_ids
    where = (
        f"the prompt has {len(base_ids)} tokens but only {budget} fit in actor_rollout_ref.rollout.prompt_length "
        "after the longest mode prefix"
    )
    if multimodal:
        raise ValueError(f"Multimodal {where}; multimodal prompts cannot be truncated. Raise the prompt_length.")
    if budget <= 0 or truncation == "error":
        raise ValueError(
            f"{where} and data.truncation={truncation!r}. Raise actor_rollout_ref.rollout.prompt_length "
            "(by the prefix length over data.max_prompt_length) or set data.truncation=left|right|middle."
        )
    if truncation == "left":
        return base_ids[-budget:]
    if truncation == "right":
        return base_ids[:budget]
    head = budget // 2
    return base_ids[:head] + base_ids[len(base_ids) - (budget - head) :]


@register(AGENT_LOOP_NAME)
class BPOBiModeAgentLoop(SingleTurnAgentLoop):
    """``SingleTurnAgentLoop`` whose prompt ends with the session's mode prefix (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.setup = LOOP_SETUPS.get(self)
        self.options, self.prefixes = self.setup.options, self.setup.prefixes
        self.mode: str | None = None  # this trajectory's (verl builds one loop per trajectory)

    async def run(self, sampling_params: dict[str, Any], **kwargs) -> AgentLoopOutput:
        self.mode = self.choose_mode(kwargs.get("session_id"), self.is_validation())
        moved = self._moved_prefix_ids(self.mode)
        if moved:  # the moved tokens count against the response budget
            sampling_params = {**sampling_params, "max_tokens": self.response_length - len(moved)}
        output = await super().run(sampling_params, **kwargs)  # builds the prompt with ct_build_initial_tokens
        if moved:
            self._move_into_response(output, moved)
        output.extra_fields.update(
            {
                MODE_KEY: self.mode,
                CHOSEN_MODE_KEY: self.chosen_mode(output.response_ids, moved),
                PREFIX_KEY: self.prefixes.preset.prefix(self.mode),
                IMAGE_TOKENS_KEY: self.image_tokens(output.prompt_ids),
            }
        )
        return output

    def image_tokens(self, prompt_ids: list[int]) -> int:
        """Image placeholder tokens in the prompt: what shows that the images reached the model."""
        from verl.utils.tokenizer import get_processor_token_id

        image_id = get_processor_token_id(self.processor, "image")
        return 0 if image_id is None else sum(1 for t in prompt_ids if t == image_id)

    async def ct_build_initial_tokens(self, messages, tools=None, images=None, videos=None, audios=None,
                                      mm_inputs_out=None) -> list[int]:
        """verl's prompt ids fitted to the budget per ``data.truncation``, then the mode prefix.

        verl's version left-caps the prompt to ``prompt_length``, leaving no room for the prefix and
        ignoring ``data.truncation``. The budget uses the LONGEST prefix, so every session of a prompt
        keeps the same base ids (the same prompt for both modes, and a shared vLLM prefix cache).
        """
        base_ids = await self.loop.run_in_executor(
            None,
            lambda: self.continuous_token_builder.build_initial_tokens(
                messages, tools=tools, images=images, videos=videos, audios=audios, mm_inputs_out=mm_inputs_out
            ),
        )
        budget = self.prompt_length - self.prefixes.max_len
        base_ids = fit_prompt(list(base_ids), budget, self.setup.truncation,
                              multimodal=bool(images or videos or audios))
        return base_ids + self.prefixes.ids[self.mode]

    def is_validation(self) -> bool:
        validate = _VALIDATE.get()
        if validate is None and _in_ray_actor():
            # Inside a Ray actor without r4b-verl's worker: validation would be forced into training modes.
            raise BPOConfigError(
                "bpo_bimode runs in a Ray actor without r4b-verl's agent-loop worker, which tells it training from "
                f"validation rollouts: set actor_rollout_ref.rollout.agent.agent_loop_manager_class={MANAGER_CLASS} "
                "(+recipe=r4b_bpo does)"
            )
        return bool(validate)

    def choose_mode(self, session_id: Any, validate: bool) -> str:
        if validate:
            return self.options.val_mode_for_session(int(session_id or 0), self.setup.val_n)
        if session_id is None:
            raise BPOConfigError(
                "bpo_bimode got no session_id: the legacy trainer (trainer.use_v1=false) runs each of the n "
                "responses as an independent row, so the loop cannot tell which mode a response belongs to. "
                "Use trainer.use_v1=true."
            )
        n = self.setup.n
        self.options.check_split(n)
        session_id = int(session_id)
        if not 0 <= session_id < n:
            raise BPOConfigError(
                f"session_id={session_id} outside 0..actor_rollout_ref.rollout.n-1={n - 1}: per-prompt "
                "__rollout_n__ overrides are not supported by bpo_bimode (the split is computed from rollout.n)"
            )
        return self.options.mode_for_session(session_id, n)

    def _moved_prefix_ids(self, mode: str) -> list[int]:
        """With ``bpo.decision_token.position=response``, the forced prefix from its decision token on; else nothing."""
        if not self.options.decision_in_response or mode == AUTO:
            return []
        return self.prefixes.decision_tail(mode)

    def _move_into_response(self, output: AgentLoopOutput, moved: list[int]) -> None:
        """``bpo.decision_token.position=response``: the forced decision token (and the rest of the prefix)
        become response tokens.

        Only the decision token is trained (mask 1); its rollout log-prob is the log of the probability
        with which the mode was forced (AdaptThink: log 0.5). See the rollout README, "mode token".
        """
        n, cap = len(moved), self.response_length
        output.prompt_ids = output.prompt_ids[: len(output.prompt_ids) - n]
        output.response_ids = (moved + output.response_ids)[:cap]
        output.response_mask = ([1] + [0] * (n - 1) + output.response_mask)[:cap]
        if output.response_logprobs is not None:
            forced = [self.options.mode_token_log_prob(self.mode)] + [0.0] * (n - 1)
            output.response_logprobs = (forced + output.response_logprobs)[:cap]

    def chosen_mode(self, response_ids: list[int], moved: list[int]) -> str:
        """The mode the response took, read from its think block (tags kept: no skip_special_tokens).

        Only the first characters of the block decide, so only a head of the response is decoded
        (:func:`read_chosen_mode`): thinking responses are long.
        """
        if moved:  # part of the prefix moved into the response: the prompt holds less of the block
            prefix_ids = self.prefixes.ids[self.mode]
            opened = self.prefixes.preset.template_opens + self.tokenizer.decode(
                prefix_ids[: len(prefix_ids) - len(moved)])
        else:
            opened = self.setup.opened[self.mode]
        return read_chosen_mode(self.tokenizer.decode, response_ids, opened)


__all__ = ["AGENT_LOOP_NAME", "MANAGER_CLASS", "BPOBiModeAgentLoop", "fit_prompt", "rollout_phase"]
