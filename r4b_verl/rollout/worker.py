"""The BPO agent-loop worker and its manager, named by the recipe through verl's public hook.

``actor_rollout_ref.rollout.agent.agent_loop_manager_class: r4b_verl.rollout.worker.BPOAgentLoopManager``
makes verl's V1 TaskRunner build :class:`BPOAgentLoopManager`, which hands verl the worker subclass
:class:`BPOAgentLoopWorker` (the pattern of verl-recipe's ``dynamo`` recipe). Only runs whose config
names the manager are touched; the worker overrides three steps of verl's ``AgentLoopWorkerTQ``:

* ``__init__``: after verl's own init, the bi-mode start-up checks (config, split, prefixes against
  the real tokenizer and chat template), so a bad setup fails when the workers start, with a message
  naming the key, instead of every rollout failing later in a background task; and, when the data
  files have image rows, a processor and an image helper that works (``r4b_verl/multimodal/startup.py``);
* ``_run_prompt``: with ``bpo.val_mode=all``, runs each validation prompt ``val_kwargs.n`` times in
  each mode (the loop picks the mode from the session id);
* ``_run_agent_loop``: runs the loop inside ``rollout_phase(validate=...)``, since verl tells agent
  loops nothing about validation;
* ``_compute_score``: after the reward, adds ``bpo_think``, ``bpo_response_length``, ``bpo_mode``,
  ``bpo_data_source`` and ``bpo_index`` to the ``reward_extra_info`` of bi-mode responses, which is all
  verl's validation metrics and generation dumps carry (it also logs the numbers per data source as
  ``val-aux/<source>/bpo_think/...``).

The manager also turns on ``verl_compat.TRAINER_METRICS`` (the ``bpo/`` training metrics), in the
TaskRunner process of this run only.
"""

from __future__ import annotations

import logging
from typing import Any

import ray
from omegaconf import OmegaConf
from verl.trainer.ppo.v1.agent_loop_tq import AgentLoopManagerTQ, AgentLoopWorkerTQ

from r4b_verl import verl_compat
from r4b_verl.metrics import reward_info_for_metrics
from r4b_verl.multimodal.startup import check_image_support
from r4b_verl.recipe_guard import refuse_plain_recipe_key
from r4b_verl.rollout.agent_loop import AGENT_LOOP_NAME, rollout_phase
from r4b_verl.rollout.options import BPOConfigError, BPORolloutOptions, check_truncation
from r4b_verl.rollout.prefixes import CHECKED_PREFIXES
from r4b_verl.think import ALL_MODES, CHOSEN_MODE_KEY, FORCED_MODES

logger = logging.getLogger("r4b_verl")


def check_decision_loss(options: BPORolloutOptions, policy_loss: Any) -> None:
    """``bpo.decision_token.weight`` and a forced old log-prob act only through the ``r4b_decision`` loss."""
    from r4b_verl.methods.losses import LOSS_NAME

    is_ours = policy_loss.get("loss_mode", "vanilla") == LOSS_NAME
    if options.decision_weight is not None and not is_ours:
        raise BPOConfigError(
            f"bpo.decision_token.weight={options.decision_weight} needs actor_rollout_ref.actor.policy_loss.loss_mode="
            f"{LOSS_NAME} (with policy_loss._target_=r4b_verl.methods.losses.DecisionTokenLossConfig and "
            "decision_weight=${bpo.decision_token.weight}, as +recipe=r4b_thinkless sets)"
        )
    if is_ours and policy_loss.get("decision_weight", None) != options.decision_weight:
        raise BPOConfigError(
            f"actor_rollout_ref.actor.policy_loss.decision_weight={policy_loss.get('decision_weight', None)} "
            f"differs from bpo.decision_token.weight={options.decision_weight}: set only bpo.decision_token.weight "
            "(the recipes interpolate it)"
        )
    forced = policy_loss.get("decision_old_log_prob", None) if is_ours else None
    if forced is not None:
        if options.train_mode != "forced" or not options.decision_in_response:
            raise BPOConfigError(
                "actor_rollout_ref.actor.policy_loss.decision_old_log_prob corrects a FORCED decision token in the "
                "response: it needs bpo.train_mode=forced and bpo.decision_token.position=response"
            )
        shares = {options.mode_token_log_prob(m) for m in FORCED_MODES}
        if not any(abs(float(forced) - s) < 1e-6 for s in shares) or len(shares) > 1:
            raise BPOConfigError(
                f"policy_loss.decision_old_log_prob={forced} is not the log of the forcing share of both modes "
                f"(bpo.think_fraction={options.think_fraction}): AdaptThink's correction needs think_fraction=0.5 "
                "and decision_old_log_prob=log(0.5)"
            )


def check_prompt_budget(config: Any, prefix_len: int | None = None) -> None:
    """No prompt may be dropped inside a step: over-long prompts go at start-up, and the prefix always fits.

    With ``data.truncation=error`` a prompt over ``rollout.prompt_length`` raises inside the bi-mode loop, and
    verl then marks the prompt's whole group failed and trains on without it (no count in the metrics). So:
    verl's own filter must drop prompts over ``data.max_prompt_length`` when it loads the data (it prints the
    count), and ``rollout.prompt_length`` must hold ``max_prompt_length`` plus the mode prefix (``prefix_len``
    tokens: checked once the tokenizer is known).
    """
    rollout, data = config.actor_rollout_ref.rollout, config.data
    if check_truncation(data) != "error":
        return  # the loop truncates the base prompt per data.truncation and keeps the prefix whole
    if not data.get("filter_overlong_prompts", False):
        raise BPOConfigError(
            "data.truncation=error with data.filter_overlong_prompts=false: a prompt over the budget would be dropped "
            "with its whole group inside a training step. Set data.filter_overlong_prompts=true (verl drops them "
            "when it loads the data and prints how many) or data.truncation=left|right|middle"
        )
    max_prompt = data.get("max_prompt_length", None)
    if prefix_len is not None and max_prompt is not None and max_prompt + prefix_len > rollout.prompt_length:
        raise BPOConfigError(
            f"actor_rollout_ref.rollout.prompt_length={rollout.prompt_length} < data.max_prompt_length={max_prompt} + "
            f"the {prefix_len}-token mode prefix: a prompt near the limit would be refused inside a step "
            "(data.truncation=error). Leave prompt_length to the recipe "
            "(${r4b.sum:${data.max_prompt_length},${bpo.prefix_tokens}}) or raise it"
        )


def uses_bimode_loop(config: Any) -> bool:
    """The run's agent loop is the bi-mode one (``rollout.agent.default_agent_loop``): its checks apply."""
    return OmegaConf.select(config, "actor_rollout_ref.rollout.agent.default_agent_loop") == AGENT_LOOP_NAME


def startup_check(config: Any, tokenizer: Any = None, processor: Any = None) -> BPORolloutOptions:
    """Refuse a bi-mode setup that cannot work, naming the config key. Warn about lossy ones.

    Without a tokenizer (the driver's start-up check; ``python -m r4b_verl.preflight`` for a model that is not a
    local path) the checks that need its tokens are left to the worker, which runs this again with the real one.
    """
    refuse_plain_recipe_key(config)
    options = BPORolloutOptions.from_trainer_config(config)
    if not config.trainer.get("use_v1", True):
        raise BPOConfigError(
            "bpo_bimode needs trainer.use_v1=true: the legacy trainer gives agent loops no session_id, so the "
            "g thinking and g non-thinking responses of a prompt cannot be told apart"
        )
    rollout = config.actor_rollout_ref.rollout
    options.check_split(rollout.n)
    check_truncation(config.data)
    policy_loss = config.actor_rollout_ref.actor.get("policy_loss", None) or {}
    check_decision_loss(options, policy_loss)
    if tokenizer is None:
        check_prompt_budget(config)
        return options
    tokens = CHECKED_PREFIXES.get(options, tokenizer, processor, config.data.get("apply_chat_template_kwargs", {}))
    if rollout.prompt_length <= tokens.max_len:
        raise BPOConfigError(
            f"actor_rollout_ref.rollout.prompt_length={rollout.prompt_length} leaves no room for a prompt next to "
            f"the {tokens.max_len}-token mode prefix of bpo.prefix_preset={tokens.preset.name}"
        )
    check_prompt_budget(config, tokens.max_len)
    if options.decision_in_response:
        moved = max(len(tokens.decision_tail(m)) for m in FORCED_MODES)
        if rollout.response_length <= moved:
            raise BPOConfigError(
                f"actor_rollout_ref.rollout.response_length={rollout.response_length} leaves no room to generate "
                f"after the {moved} forced prefix tokens bpo.decision_token.position=response moves into the response"
            )
        if not rollout.get("calculate_log_probs", False):
            raise BPOConfigError(
                "bpo.decision_token.position=response needs actor_rollout_ref.rollout.calculate_log_probs=true: "
                "the forced token's correction is carried by its rollout log-prob"
            )
        corr = config.algorithm.get("rollout_correction", None) or {}
        corrected = policy_loss.get("decision_old_log_prob", None) is not None
        if not (corrected or corr.get("bypass_mode", False) or corr.get("rollout_is", None)):
            logger.warning(
                "bpo.decision_token.position=response without algorithm.rollout_correction.bypass_mode=true or "
                "algorithm.rollout_correction.rollout_is=token: the forced decision token is trained with the "
                "plain PPO ratio, without the correction for having been forced (see r4b_verl/rollout/README.md)"
            )
    return options


class BPOAgentLoopWorker(AgentLoopWorkerTQ.__ray_actor_class__):  # the class behind verl's @ray.remote
    """verl's V1 agent-loop worker with the bi-mode start-up checks, phase and metrics info."""

    def __init__(self, config, *args, **kwargs):
        super().__init__(config, *args, **kwargs)
        self.bpo_options = startup_check(config, self.tokenizer, self.processor)
        # image rows without a processor or a working image helper: loud here, silent in verl
        check_image_support(config.data, self.processor, self.dataset_cls)

    async def _run_prompt(self, prompt, sampling_params, trajectory, *args, **kwargs):
        if trajectory["validate"] and self.bpo_options.val_mode == ALL_MODES:
            # verl reads the session count from this key first; a row's own count is replaced (the loop
            # maps sessions to modes by val_kwargs.n)
            val_n = self.config.actor_rollout_ref.rollout.val_kwargs.n
            prompt = {**prompt, "__rollout_n__": self.bpo_options.val_sessions(val_n)}
        return await super()._run_prompt(prompt, sampling_params, trajectory, *args, **kwargs)

    async def _run_agent_loop(self, sampling_params, trajectory, *args, **kwargs):
        with rollout_phase(validate=bool(trajectory["validate"])):
            return await super()._run_agent_loop(sampling_params, trajectory, *args, **kwargs)

    async def _compute_score(self, outputs, kwargs):
        await super()._compute_score(outputs, kwargs)
        final = outputs[-1]
        info = final.extra_fields.get("reward_extra_info")
        if CHOSEN_MODE_KEY in final.extra_fields and isinstance(info, dict):
            final.extra_fields["reward_extra_info"] = reward_info_for_metrics(
                final.extra_fields, info, len(final.response_ids), kwargs
            )


class BPOAgentLoopManager(AgentLoopManagerTQ):
    """verl's V1 agent-loop manager, with :class:`BPOAgentLoopWorker` workers and the ``bpo/`` trainer metrics."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)  # AgentLoopManagerTQ sets its worker class first; ours replaces it
        self.agent_loop_workers_class = ray.remote(BPOAgentLoopWorker)
        refuse_plain_recipe_key(self.config)
        verl_compat.apply((verl_compat.TRAINER_METRICS, verl_compat.ADVANTAGE_BATCH_VIEW))
