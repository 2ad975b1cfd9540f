"""The ``r4b_decision`` policy loss: verl's losses with the decision token (t = 0) treated apart.

Select with ``actor_rollout_ref.actor.policy_loss.loss_mode=r4b_decision`` and the config class below
(``policy_loss._target_: r4b_verl.methods.losses.DecisionTokenLossConfig``, which the method recipes set).
t = 0 is the first token with ``response_mask = 1`` of each row: the decision token when
``bpo.decision_token.position=response`` (forced) or the model's first token (``bpo.train_mode=auto``).

- ``decision_old_log_prob`` (AdaptThink, arXiv 2505.13417): the old log-prob of t = 0 is replaced by this
  constant, the log of the probability with which the mode was forced (``log 0.5``), so the ratio of the
  decision token is ``pi_theta(token) / 0.5``; with ``base_loss_mode=gspo`` it enters the sequence ratio
  ``exp(mean_t logp - mean_t logp_old)`` (``loss_agg_mode=seq-mean-token-mean``).
- ``decision_weight`` alpha (Thinkless's DeGRPO, arXiv 2505.13379): with ``l_{i,t}`` the base loss's per-token
  clipped term and B the global number of sequences,

      L = alpha * (sum_i l_{i,0}) / B + (sum_i sum_{t>=1} m_{i,t} l_{i,t}) / (sum_i sum_{t>=1} m_{i,t})

  (``null``: t = 0 is an ordinary token of ``base_loss_mode`` with ``loss_agg_mode``). A per-token base
  is required for the split (``vanilla``); a sequence-ratio base (``gspo``) is refused with a weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch
from verl.trainer.ppo.core_algos import get_policy_loss_fn, register_policy_loss
from verl.workers.config import PolicyLossConfig

LOSS_NAME = "r4b_decision"
PER_TOKEN_BASES = ("vanilla",)


@dataclass
class DecisionTokenLossConfig(PolicyLossConfig):
    """verl's ``PolicyLossConfig`` plus the decision-token settings (module doc)."""

    base_loss_mode: str = "vanilla"
    decision_weight: Optional[float] = None
    decision_old_log_prob: Optional[float] = None


def first_token_mask(response_mask: torch.Tensor) -> torch.Tensor:
    """``(bs, T)`` one-hot at the first position of each row where ``response_mask`` is 1 (zeros for empty rows)."""
    mask = response_mask > 0
    first = mask & (mask.long().cumsum(dim=-1) == 1)
    return first.to(response_mask.dtype)


@register_policy_loss(LOSS_NAME)
def compute_policy_loss_decision(
    old_log_prob: torch.Tensor,
    log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    loss_agg_mode: str = "token-mean",
    config: Optional[Any] = None,
    rollout_is_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """The base loss with t = 0's old log-prob and weight set apart (module doc); shapes ``(bs, T)``."""
    if config is None:
        raise ValueError(f"policy_loss.loss_mode={LOSS_NAME} needs the actor config")
    pl = config.policy_loss
    base_name = pl.get("base_loss_mode", "vanilla")
    if base_name == LOSS_NAME:
        raise ValueError(f"policy_loss.base_loss_mode cannot be {LOSS_NAME} itself")
    base = get_policy_loss_fn(base_name)
    first = first_token_mask(response_mask)
    if pl.get("decision_old_log_prob", None) is not None:
        old_log_prob = torch.where(first > 0, torch.full_like(old_log_prob, float(pl.decision_old_log_prob)),
                                   old_log_prob)
    weight = pl.get("decision_weight", None)
    if weight is None:
        return base(old_log_prob, log_prob, advantages, response_mask, loss_agg_mode, config, rollout_is_weights)
    if base_name not in PER_TOKEN_BASES:
        raise ValueError(
            f"bpo.decision_token.weight={weight} splits the loss per token, which policy_loss.base_loss_mode="
            f"{base_name} (a sequence-level ratio) cannot; use base_loss_mode=vanilla or weight=null"
        )
    # verl passes a bool mask; keep the input's dtype for the base loss
    rest = ((response_mask > 0) & ~(first > 0)).to(response_mask.dtype)
    # token-sum gives sum(l * mask) * dp_size; the normalisers below are the global counts
    info = dict(config.get("global_batch_info", {}) or {})
    n_seq = info.get("global_batch_size") or (first > 0).sum()
    n_tok = info.get("batch_num_tokens") or (response_mask > 0).sum()
    rest_sum, metrics = base(old_log_prob, log_prob, advantages, rest, "token-sum", config, rollout_is_weights)
    first_sum, _ = base(old_log_prob, log_prob, advantages, first, "token-sum", config, rollout_is_weights)
    n_rest = torch.clamp(torch.as_tensor(n_tok, dtype=log_prob.dtype) - torch.as_tensor(n_seq, dtype=log_prob.dtype),
                         min=1)
    loss = float(weight) * first_sum / torch.as_tensor(n_seq, dtype=log_prob.dtype).clamp(min=1) + rest_sum / n_rest
    return loss, metrics
