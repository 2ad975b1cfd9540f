"""The BPO advantage estimator (R-4B, arXiv 2508.21113, Eq. 1), registered in verl as ``bpo``.

Select it with ``algorithm.adv_estimator=bpo``. The bi-mode rollout gives every prompt ``2g``
responses (g thinking, g non-thinking) that share the prompt's ``uid``; BPO normalises their
outcome rewards over that merged group, so the two modes compete on the same query::

    A_i = (r_i - mean_{j in G(i)} r_j) / (std_{j in G(i)} r_j + eps)   norm_adv_by_std_in_grpo=True
    A_i =  r_i - mean_{j in G(i)} r_j                                  norm_adv_by_std_in_grpo=False

with ``std`` the unbiased sample standard deviation (as verl's ``grpo``), and ``A_i`` broadcast
over the response tokens. Per-mode statistics (reward, accuracy and length per mode, and the
mode gap per group) are rollout metrics, logged under ``bpo/`` by ``r4b_verl.rollout``.

Unlike verl's ``grpo``, a group of one response is an error rather than ``A = r``: BPO needs
both modes of a prompt in one group, so a singleton means the rollout or the batch is wrong.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch
from verl.trainer.ppo.core_algos import register_adv_est
from verl.utils.groupwise import as_torch_index, group_mean_std


def _validate(token_level_rewards: torch.Tensor, response_mask: torch.Tensor, index: Any) -> None:
    if index is None:
        raise ValueError("bpo needs the prompt uid of every response (non_tensor_batch['uid']); none was passed")
    if token_level_rewards.dim() != 2:
        raise ValueError(
            f"bpo: token_level_rewards must be (batch, response_len), got {tuple(token_level_rewards.shape)}")
    if response_mask.shape != token_level_rewards.shape:
        raise ValueError(
            f"bpo: response_mask {tuple(response_mask.shape)} and token_level_rewards "
            f"{tuple(token_level_rewards.shape)} must have the same shape"
        )
    if len(index) != token_level_rewards.shape[0]:
        raise ValueError(f"bpo: {len(index)} uids for {token_level_rewards.shape[0]} responses")


@register_adv_est("bpo")
def compute_bpo_outcome_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: Optional[np.ndarray] = None,
    epsilon: float = 1e-6,
    config: Optional[Any] = None,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GRPO advantage over the merged thinking + non-thinking group of each prompt.

    Args:
        token_level_rewards: ``(bs, response_length)``; the outcome reward is the row sum.
        response_mask: ``(bs, response_length)``, 1 on generated tokens.
        index: ``(bs,)`` prompt ``uid`` of each response; equal uid = one group of 2g.
        epsilon: added to the std.
        config: verl's ``AlgoConfig``; ``norm_adv_by_std_in_grpo`` is read from it (verl passes
            that flag only to its built-in GRPO), default True.
        **kwargs: other keys verl passes to custom estimators (e.g. ``reward_baselines``), unused.

    Returns:
        ``(advantages, returns)``, both ``(bs, response_length)`` and equal, zero where masked.

    Raises:
        ValueError: shapes disagree, a reward is NaN or infinite, or a uid has a single response.
    """
    _validate(token_level_rewards, response_mask, index)
    norm_by_std = True if config is None else bool(config.get("norm_adv_by_std_in_grpo", True))

    with torch.no_grad():
        scores = token_level_rewards.sum(dim=-1)
        bad = ~torch.isfinite(scores)
        if bad.any():
            row = int(bad.nonzero()[0, 0])
            raise ValueError(
                f"bpo: {int(bad.sum())} non-finite reward(s), first at row {row} (uid={index[row]!r}, "
                f"reward={scores[row].item()}); check the reward function"
            )
        gidx = as_torch_index(index, device=scores.device)
        mean_g, std_g, count_g = group_mean_std(scores, gidx, eps=0.0, device=scores.device)
        if (count_g < 2).any():
            g = int((count_g < 2).nonzero()[0, 0])
            row = int((gidx == g).nonzero()[0, 0])
            raise ValueError(
                f"bpo: the group of uid={index[row]!r} has a single response; BPO needs both modes of a "
                f"prompt in one group: set actor_rollout_ref.rollout.n to an even number >= 2"
            )
        centred = scores - mean_g[gidx].to(scores.dtype)
        scalars = centred / (std_g[gidx].to(scores.dtype) + epsilon) if norm_by_std else centred
        advantages = scalars.unsqueeze(-1) * response_mask
    return advantages, advantages
