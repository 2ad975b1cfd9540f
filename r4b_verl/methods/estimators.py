"""Advantage estimators of the peers' methods, registered in verl like ``bpo`` (``register_adv_est``).

Select with ``algorithm.adv_estimator=<name>``. All return ``(advantages, returns)``, ``(bs, T)``,
the per-response scalar broadcast over ``response_mask``. ``r_i`` is the outcome reward (row sum of
``token_level_rewards``, the method's reward table from :mod:`r4b_verl.methods.rewards`), ``G(i)``
the responses sharing ``i``'s uid, ``GRPO(x)_i = (x_i - mean_G x) / (std_G x + eps)`` (unbiased std,
as verl's ``grpo``; without the std when ``algorithm.norm_adv_by_std_in_grpo=false``).

``adaptthink`` (AdaptThink, arXiv 2505.13417)::

    A_i = r_i        (r_i = acc_i - Rref(x) + delta [no_think_i]: the baseline is in the reward)

``autothink`` (AutoThink, arXiv 2505.10832), options ``algorithm.autothink.{stage, balance, alpha, beta}``::

    stage 1, p = share of think responses in the batch, lam = clip(2 (p - b), 0, 1) if p > b:
        think rows  r_i <- (1 - lam) r_i + lam target_i      (target 0 if correct, -1 if wrong)
        and symmetrically with q = 1 - p for no_think rows (targets +1 / -2)
    stage 3, per uid and per correct / wrong set S with |S| > 1, z_i = (L_i - mean_S L) / max(std_S L, 1e-6):
        correct  r_i += exp(-alpha z_i) - 1          wrong  r_i += 1 - exp(-beta z_i)
    A_i = GRPO(r)_i

``ada_grpo`` (ARM, arXiv 2505.20258), option ``algorithm.ada_grpo.decay_steps`` (T; null = total steps)::

    F_i = |{j in G(i): mode_j = mode_i}|,  t = global_step - 1 (clipped to T)
    alpha_i(t) = 1 + 0.5 (|G(i)| / F_i - 1) (1 + cos(pi t / T)),   A_i = GRPO(alpha(t) * r)_i

``std_S L`` in AutoThink's length term is the population std (ddof 0). The per-row modes, accuracies
and the step come from :mod:`r4b_verl.methods.batch_view` (``view=`` in tests).
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np
import torch
from verl.trainer.ppo import core_algos
from verl.trainer.ppo.core_algos import register_adv_est

from r4b_verl.advantage import _validate
from r4b_verl.methods.batch_view import BatchView, current_view
from r4b_verl.think import NO_THINK, THINK

AUTOTHINK_DEFAULTS = {"stage": 1, "balance": 0.5, "alpha": 0.05, "beta": 0.05}


def _scores(token_level_rewards: torch.Tensor, who: str, index) -> torch.Tensor:
    scores = token_level_rewards.sum(dim=-1)
    bad = ~torch.isfinite(scores)
    if bad.any():
        row = int(bad.nonzero()[0, 0])
        raise ValueError(f"{who}: non-finite reward at row {row} (uid={index[row]!r}); check the reward function")
    return scores


def _grpo(scores: torch.Tensor, index, config, epsilon: float) -> torch.Tensor:
    """verl's own GRPO (``grpo_vectorized``) on one score per row: its group statistics, one-row groups included
    (mean 0, std 1 there, as verl's ``grpo``: A = r / (1 + eps), never a division by a zero std)."""
    norm_by_std = True if config is None else bool(config.get("norm_adv_by_std_in_grpo", True))
    rows = scores.unsqueeze(-1)
    adv, _ = core_algos.get_adv_estimator_fn("grpo_vectorized")(
        token_level_rewards=rows, response_mask=torch.ones_like(rows), index=index, epsilon=epsilon,
        norm_adv_by_std_in_grpo=norm_by_std)
    return adv.squeeze(-1)


def _options(config, key: str, defaults: dict) -> dict:
    block = (config.get(key, None) if config is not None else None) or {}
    out = dict(defaults)
    out.update({k: v for k, v in dict(block).items() if v is not None})
    unknown = sorted(set(out) - set(defaults))
    if unknown:
        raise ValueError(
            f"unknown key(s) {', '.join(f'algorithm.{key}.{k}' for k in unknown)}; known: {sorted(defaults)}")
    return out


@register_adv_est("adaptthink")
def compute_adaptthink_advantage(token_level_rewards: torch.Tensor, response_mask: torch.Tensor,
                                 index: Optional[np.ndarray] = None, config: Optional[Any] = None, **kwargs):
    """AdaptThink: the raw reward is the advantage (its ``- Rref(x)`` is the baseline). Shapes as ``bpo``."""
    _validate(token_level_rewards, response_mask, index)
    with torch.no_grad():
        adv = _scores(token_level_rewards, "adaptthink", index).unsqueeze(-1) * response_mask
    return adv, adv


def autothink_rewards(scores: np.ndarray, modes: np.ndarray, acc: np.ndarray, lengths: np.ndarray,
                      index: np.ndarray, options: dict) -> np.ndarray:
    """AutoThink's stage-1 balance and stage-3 length terms on the base rewards (float64, the module doc)."""
    r = scores.astype(np.float64).copy()
    think, correct = modes == THINK, acc >= 0.5
    stage, b = int(options["stage"]), float(options["balance"])
    if stage not in (1, 2, 3):
        raise ValueError(f"algorithm.autothink.stage must be 1, 2 or 3, got {stage}")
    if stage == 1 and len(r):
        p = think.mean()
        for sel, share, target in ((think, p, np.where(correct, 0.0, -1.0)),
                                   (~think, 1 - p, np.where(correct, 1.0, -2.0))):
            if share > b:
                lam = min(max(2 * (share - b), 0.0), 1.0)
                r[sel] = (1 - lam) * r[sel] + lam * target[sel]
    if stage == 3:
        extra = np.zeros_like(r)
        for uid in dict.fromkeys(index.tolist()):
            for is_correct in (True, False):
                sel = (index == uid) & (correct == is_correct)
                if sel.sum() <= 1:
                    continue
                L = lengths[sel].astype(np.float64)
                z = (L - L.mean()) / max(L.std(), 1e-6)
                extra[sel] = np.exp(-options["alpha"] * z) - 1 if is_correct else 1 - np.exp(-options["beta"] * z)
        r = r + extra
    return r


@register_adv_est("autothink")
def compute_autothink_advantage(token_level_rewards: torch.Tensor, response_mask: torch.Tensor,
                                index: Optional[np.ndarray] = None, epsilon: float = 1e-6,
                                config: Optional[Any] = None, view: BatchView | None = None, **kwargs):
    """AutoThink: batch balance (stage 1) or length term (stage 3) on the reward, then GRPO per uid."""
    _validate(token_level_rewards, response_mask, index)
    view = view or current_view("algorithm.adv_estimator=autothink")
    view.check(len(index), "autothink")
    options = _options(config, "autothink", AUTOTHINK_DEFAULTS)
    with torch.no_grad():
        scores = _scores(token_level_rewards, "autothink", index)
        lengths = response_mask.sum(dim=-1).cpu().numpy()
        shaped = autothink_rewards(scores.cpu().double().numpy(), view.modes, view.acc, lengths,
                                   np.asarray(index, dtype=object), options)
        shaped = torch.as_tensor(shaped, dtype=scores.dtype, device=scores.device)
        adv = _grpo(shaped, index, config, epsilon).unsqueeze(-1) * response_mask
    return adv, adv


def ada_grpo_scale(modes: np.ndarray, index: np.ndarray, step: int, decay_steps: int) -> np.ndarray:
    """ARM's ``alpha_i(t)`` per row (float64, the module doc)."""
    if decay_steps < 1:
        raise ValueError(f"algorithm.ada_grpo.decay_steps must be >= 1, got {decay_steps}")
    t = min(max(step - 1, 0), decay_steps)
    decay = 1 + math.cos(math.pi * t / decay_steps)
    alpha = np.empty(len(modes), dtype=np.float64)
    for uid in dict.fromkeys(index.tolist()):
        sel = index == uid
        size = sel.sum()
        for mode in (THINK, NO_THINK):
            rows = sel & (modes == mode)
            if rows.any():
                alpha[rows] = 1 + 0.5 * (size / rows.sum() - 1) * decay
    return alpha


@register_adv_est("ada_grpo")
def compute_ada_grpo_advantage(token_level_rewards: torch.Tensor, response_mask: torch.Tensor,
                               index: Optional[np.ndarray] = None, epsilon: float = 1e-6,
                               config: Optional[Any] = None, view: BatchView | None = None, **kwargs):
    """Ada-GRPO: rare modes' rewards scaled up by ``alpha_i(t)``, decaying to 1 by step T, then GRPO per uid."""
    _validate(token_level_rewards, response_mask, index)
    view = view or current_view("algorithm.adv_estimator=ada_grpo")
    view.check(len(index), "ada_grpo")
    options = _options(config, "ada_grpo", {"decay_steps": None})
    decay_steps = int(options["decay_steps"] or view.total_steps)
    with torch.no_grad():
        scores = _scores(token_level_rewards, "ada_grpo", index)
        alpha = ada_grpo_scale(view.modes, np.asarray(index, dtype=object), view.step, decay_steps)
        scaled = scores * torch.as_tensor(alpha, dtype=scores.dtype, device=scores.device)
        adv = _grpo(scaled, index, config, epsilon).unsqueeze(-1) * response_mask
    return adv, adv


BATCH_VIEW_ESTIMATORS = ("autothink", "ada_grpo")  # the estimators verl_compat.ADVANTAGE_BATCH_VIEW serves
