"""``bpo_bimode``: verl's single-turn agent loop with a thinking / non-thinking prefix per session.

verl's V1 trainer runs an agent loop ``rollout.n`` times per prompt with ``session_id = 0..n-1``,
all sharing the prompt's ``uid`` (``AgentLoopWorkerTQ._run_prompt``). This loop turns that into
BPO's bi-mode group: sessions ``0..g_think-1`` get the thinking prefix appended to the prompt,
the others the non-thinking one, so the ``bpo`` estimator normalises both modes together.
Validation rollouts get ``bpo.val_mode`` (``auto`` by default: the model chooses).

Per session there is exactly one ``server_manager.generate`` call, and the base prompt token ids
(everything before the mode prefix) are identical across the prompt's n sessions: vLLM's
automatic prefix caching computes the shared prompt once and the 2g requests only differ in
the few prefix tokens at the end.

The mode is recorded in ``AgentLoopOutput.extra_fields`` (which reach the reward function's
``extra_info``): ``bpo_mode`` (think | no_think | auto), ``bpo_chosen_mode`` (think | no_think,
read from the response: an empty think block means non-thinking), ``bpo_prefix`` (the string).
"""

from __future__ import annotations

import logging
import os
from typing import Any
from uuid import uuid4

from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopOutput, register
from verl.utils.profiler import simple_timer
from verl.utils.rollout_trace import rollout_trace_op
from verl.workers.rollout.replica import TokenOutput

from r4b_verl.rollout.options import BPOConfigError, BPORolloutOptions, check_truncation
from r4b_verl.rollout.prefixes import PrefixTokens, check_prefixes, detect_chosen_mode
from r4b_verl.rollout.worker_hooks import current_rollout_context

logger = logging.getLogger(__file__)
logger.setLevel(os.getenv("VERL_LOGGING_LEVEL", "WARN"))

AGENT_LOOP_NAME = "bpo_bimode"

# Per-process cache of the checked prefixes: the worker instantiates one loop per trajectory.
# Each entry keeps its tokenizer and processor alive, so their id()s in the key cannot be reused by
# other objects (a stale hit would skip the checks for a different tokenizer or template).
_PREFIX_CACHE: dict[tuple, tuple[Any, Any, PrefixTokens]] = {}


def checked_prefix_tokens(options: BPORolloutOptions, tokenizer, processor, chat_template_kwargs) -> PrefixTokens:
    """Run the start-up prefix checks once per (options, tokenizer) in this process."""
    key = (options, id(tokenizer), id(processor), repr(sorted((chat_template_kwargs or {}).items())))
    if key not in _PREFIX_CACHE:
        tokens = check_prefixes(
            options.preset(), tokenizer, processor, chat_template_kwargs, train_mode_token=options.train_mode_token
        )
        _PREFIX_CACHE[key] = (tokenizer, processor, tokens)
    return _PREFIX_CACHE[key][2]


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
class BPOBiModeAgentLoop(AgentLoopBase):
    """Single-turn loop that appends the session's mode prefix to the prompt (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.prompt_length = self.rollout_config.prompt_length
        self.response_length = self.rollout_config.response_length
        self.options = BPORolloutOptions.from_trainer_config(self.config)
        self.truncation = check_truncation(self.data_config)
        self.prefixes = checked_prefix_tokens(
            self.options, self.tokenizer, self.processor, self.apply_chat_template_kwargs
        )

    def choose_mode(self, session_id: Any, validate: bool) -> str:
        if validate:
            return self.options.val_mode
        if session_id is None:
            raise BPOConfigError(
                "bpo_bimode got no session_id: the legacy trainer (trainer.use_v1=false) runs each of the n "
                "responses as an independent row, so the loop cannot tell which mode a response belongs to. "
                "Use trainer.use_v1=true."
            )
        n = self.rollout_config.n
        self.options.check_split(n)
        session_id = int(session_id)
        if not 0 <= session_id < n:
            raise BPOConfigError(
                f"session_id={session_id} outside 0..actor_rollout_ref.rollout.n-1={n - 1}: per-prompt "
                "__rollout_n__ overrides are not supported by bpo_bimode (the split is computed from rollout.n)"
            )
        return self.options.mode_for_session(session_id, n)

    @rollout_trace_op
    async def run(self, sampling_params: dict[str, Any], priority: int = 0, **kwargs) -> AgentLoopOutput:
        priority = int(priority)
        context = current_rollout_context()
        if context is None:
            raise RuntimeError(
                "bpo_bimode runs outside r4b-verl's agent-loop worker hook, so it cannot tell training from "
                "validation: import r4b_verl.plugin in this process (verl does it through the verl.plugins entry "
                "point unless VERL_USE_EXTERNAL_PLUGINS excludes it)"
            )
        mode = self.choose_mode(kwargs.get("session_id"), context.validate)
        prefix_ids = self.prefixes.ids[mode]
        messages = list(kwargs["raw_prompt"])

        # 1. multimodal inputs, exactly as SingleTurnAgentLoop
        multi_modal_data = await self.process_multi_modal_info(messages)
        images = multi_modal_data.get("images")
        videos = multi_modal_data.get("videos")
        audios = multi_modal_data.get("audios")
        mm_processor_kwargs = self._get_mm_processor_kwargs(audios)
        self._assert_mm_supported(bool(multi_modal_data))

        # 2. base prompt with verl's Continuous Token builder. We call the builder rather than
        # ct_build_initial_tokens: that one left-truncates to prompt_length, leaving no room for the
        # prefix and ignoring data.truncation. The budget uses the LONGEST prefix so every session of a
        # prompt keeps the same base ids (same prompt for both modes, and a shared vLLM prefix cache).
        mm_inputs: dict[str, Any] = {}
        base_ids = await self.loop.run_in_executor(
            None,
            lambda: self.continuous_token_builder.build_initial_tokens(
                messages, images=images, videos=videos, audios=audios, mm_inputs_out=mm_inputs
            ),
        )
        base_ids = fit_prompt(
            list(base_ids),
            self.prompt_length - self.prefixes.max_len,
            self.truncation,
            multimodal=bool(images or videos or audios),
        )
        mm_processor_output = self.build_sglang_video_payload(videos, mm_inputs)

        # 3. one generate call: base prompt + mode prefix
        generate_ids = base_ids + prefix_ids
        moved = self._moved_prefix_ids(mode)  # forced tokens that go to the response (train_mode_token)
        run_sampling_params = dict(sampling_params)  # shared by the n sessions: never mutate it
        if moved:
            run_sampling_params["max_tokens"] = self.response_length - len(moved)
        metrics = {}
        with simple_timer("generate_sequences", metrics):
            request_id = f"det-{priority}" if getattr(self.rollout_config, "full_determinism", False) else uuid4().hex
            output: TokenOutput = await self.server_manager.generate(
                request_id=request_id,
                prompt_ids=generate_ids,
                sampling_params=run_sampling_params,
                image_data=images,
                audio_data=audios,
                video_data=videos,
                mm_processor_output=mm_processor_output,
                mm_processor_kwargs=mm_processor_kwargs,
                priority=priority,
            )
        if metrics.get("num_preempted") is None:
            metrics["num_preempted"] = output.num_preempted if output.num_preempted is not None else -1

        merge_result, response_mask, response_logprobs = await self.ct_merge_assistant_token(
            generate_ids,
            output.token_ids,
            [],
            [] if output.log_probs else None,
            assistant_logprobs=output.log_probs if output.log_probs else None,
        )
        response_ids = merge_result.token_ids[-len(response_mask) :] if response_mask else []
        prompt_ids = merge_result.token_ids[: len(merge_result.token_ids) - len(response_mask)]

        # 4. optional: the forced decision token (and the rest of the forced prefix) become response
        # tokens. Only the decision token is trained (mask 1); its rollout log-prob is the log of the
        # probability with which the mode was forced (AdaptThink: log 0.5). See README "mode token".
        if moved:
            prompt_ids = prompt_ids[: len(prompt_ids) - len(moved)]
            response_ids = moved + response_ids
            response_mask = [1] + [0] * (len(moved) - 1) + response_mask
            if response_logprobs is not None:
                forced = [self.options.mode_token_log_prob(mode)] + [0.0] * (len(moved) - 1)
                response_logprobs = forced + response_logprobs

        response_ids = response_ids[: self.response_length]
        chosen = self.chosen_mode(mode, response_ids, moved)

        result = AgentLoopOutput(
            prompt_ids=prompt_ids,
            response_ids=response_ids,
            response_mask=response_mask[: self.response_length],
            response_logprobs=response_logprobs[: self.response_length] if response_logprobs else None,
            routed_experts=(
                output.routed_experts[: len(prompt_ids) + self.response_length]
                if output.routed_experts is not None
                else None
            ),
            multi_modal_data=multi_modal_data,
            mm_processor_kwargs=mm_processor_kwargs,
            mm_processor_output=mm_processor_output,
            num_turns=2,
            metrics=metrics,
            extra_fields=output.extra_fields,
        )
        result.extra_fields.update(
            {
                "turn_scores": [],  # the schema of verl's single-turn / tool loops
                "tool_rewards": [],
                "bpo_mode": mode,
                "bpo_chosen_mode": chosen,
                "bpo_prefix": self.prefixes.preset.prefix(mode),
            }
        )
        return result

    def _moved_prefix_ids(self, mode: str) -> list[int]:
        """With ``bpo.train_mode_token``, the forced prefix from its decision token on; else nothing."""
        if not self.options.train_mode_token or mode == "auto":
            return []
        return self.prefixes.decision_tail(mode)

    def chosen_mode(self, mode: str, response_ids: list[int], moved: list[int]) -> str:
        """The mode the response actually took, read from its think block (tags kept: no skip_special_tokens)."""
        prefix_ids = self.prefixes.ids[mode]
        in_prompt = prefix_ids[: len(prefix_ids) - len(moved)] if moved else prefix_ids
        opened = self.prefixes.preset.template_opens + self.tokenizer.decode(in_prompt)
        return detect_chosen_mode(self.tokenizer.decode(response_ids), opened)
