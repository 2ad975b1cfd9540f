"""The r4b_decision policy loss against float64 references: DeGRPO (Thinkless) and GSPO with AdaptThink's
first-token correction, and the plain base loss when neither is set."""

import math

import pytest
import torch
from verl.trainer.ppo.core_algos import get_policy_loss_fn
from verl.workers.config import ActorConfig

from r4b_verl.methods.losses import LOSS_NAME, DecisionTokenLossConfig, first_token_mask

CLIP, DUAL = 0.2, 3.0


def actor_config(**loss):
    cfg = ActorConfig(strategy="fsdp", ppo_mini_batch_size=4, ppo_micro_batch_size_per_gpu=4, rollout_n=1,
                      policy_loss=DecisionTokenLossConfig(loss_mode=LOSS_NAME, **loss))
    return cfg


def make(bs=6, T=9, seed=0, leading_pad=True):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, T + 1, (bs,), generator=g)
    mask = (torch.arange(T)[None, :] < lengths[:, None]).float()
    if leading_pad:  # a row whose first response position is masked: t = 0 is its first MASKED token
        mask[0, 0] = 0.0
    old = -torch.rand(bs, T, generator=g, dtype=torch.float64) * 2
    new = old + 0.3 * torch.randn(bs, T, generator=g, dtype=torch.float64)
    adv = torch.randn(bs, 1, generator=g, dtype=torch.float64).expand(bs, T) * mask.double()
    return old.float(), new.float(), adv.float(), mask


def ppo_token_loss(old, new, adv):
    """verl's vanilla per-token term in float64: clipped ratio, dual clip for negative advantages."""
    ratio = (new.double() - old.double()).clamp(-20, 20).exp()
    a = adv.double()
    per_token = torch.maximum(-a * ratio, -a * ratio.clamp(1 - CLIP, 1 + CLIP))
    return torch.where(a < 0, torch.minimum(per_token, -a * DUAL), per_token)


def first_positions(mask):
    return [int(row.nonzero()[0, 0]) for row in mask]


def test_bool_masks_as_verl_passes_them():
    old, new, adv, mask = make(seed=6)
    fn = get_policy_loss_fn(LOSS_NAME)
    for cfg in (actor_config(decision_weight=0.01), actor_config(base_loss_mode="gspo", decision_old_log_prob=-0.69)):
        as_float, _ = fn(old, new, adv, mask, "token-mean", cfg)
        as_bool, _ = fn(old, new, adv, mask.bool(), "token-mean", cfg)
        assert as_bool.item() == pytest.approx(as_float.item(), rel=1e-6)


def test_first_token_mask():
    mask = torch.tensor([[0, 1, 1, 0], [1, 1, 0, 0], [0, 0, 0, 0.0]])
    assert first_token_mask(mask).tolist() == [[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("alpha", [0.001, 1.0])
def test_degrpo_matches_reference(seed, alpha):
    old, new, adv, mask = make(seed=seed)
    cfg = actor_config(base_loss_mode="vanilla", decision_weight=alpha)
    loss, _ = get_policy_loss_fn(LOSS_NAME)(old, new, adv, mask, "token-mean", cfg)

    per_token = ppo_token_loss(old, new, adv)
    firsts = first_positions(mask)
    B = mask.shape[0]
    decision = sum(per_token[i, t] for i, t in enumerate(firsts)) / B
    rest_terms = [per_token[i, t] for i in range(B) for t in range(mask.shape[1]) if mask[i, t] > 0 and t != firsts[i]]
    expected = alpha * decision + sum(rest_terms) / len(rest_terms)
    assert loss.item() == pytest.approx(float(expected), rel=1e-5, abs=1e-6)


def test_degrpo_uses_the_global_batch_counts():
    old, new, adv, mask = make(seed=4)
    cfg = actor_config(base_loss_mode="vanilla", decision_weight=0.5)
    cfg.global_batch_info.update({"dp_size": 1, "global_batch_size": 12, "batch_num_tokens": 100})
    loss, _ = get_policy_loss_fn(LOSS_NAME)(old, new, adv, mask, "token-mean", cfg)
    per_token = ppo_token_loss(old, new, adv)
    first = first_token_mask(mask).double()
    expected = 0.5 * (per_token * first).sum() / 12 + (per_token * (mask.double() - first)).sum() / (100 - 12)
    assert loss.item() == pytest.approx(float(expected), rel=1e-5)


@pytest.mark.parametrize("seed", [0, 1])
def test_gspo_with_the_forced_first_token_matches_reference(seed):
    old, new, adv, mask = make(seed=seed)
    cfg = actor_config(base_loss_mode="gspo", decision_old_log_prob=math.log(0.5))
    loss, _ = get_policy_loss_fn(LOSS_NAME)(old, new, adv, mask, "seq-mean-token-mean", cfg)

    firsts = first_positions(mask)
    per_row = []
    for i in range(mask.shape[0]):
        ts = [t for t in range(mask.shape[1]) if mask[i, t] > 0]
        old_i = [math.log(0.5) if t == firsts[i] else float(old[i, t]) for t in ts]
        s = math.exp(min(sum(float(new[i, t]) - o for t, o in zip(ts, old_i, strict=True)) / len(ts), 10.0))
        a = float(adv[i, ts[0]])
        per_row.append(max(-a * s, -a * min(max(s, 1 - CLIP), 1 + CLIP)))
    assert loss.item() == pytest.approx(sum(per_row) / len(per_row), rel=1e-5, abs=1e-6)


def test_without_settings_it_is_the_base_loss():
    old, new, adv, mask = make(seed=3)
    for base, agg in (("vanilla", "token-mean"), ("gspo", "seq-mean-token-mean")):
        ours, _ = get_policy_loss_fn(LOSS_NAME)(old, new, adv, mask, agg, actor_config(base_loss_mode=base))
        theirs, _ = get_policy_loss_fn(base)(old, new, adv, mask, agg, actor_config(base_loss_mode=base))
        assert ours.item() == theirs.item()


def test_decision_weight_gets_the_decision_token_gradient_only():
    # with alpha = 0 the decision token gets no gradient, every other token does
    old, new, adv, mask = make(seed=5, leading_pad=False)
    new = new.clone().requires_grad_(True)
    loss, _ = get_policy_loss_fn(LOSS_NAME)(old, new, adv, mask, "token-mean", actor_config(decision_weight=0.0))
    loss.backward()
    assert torch.all(new.grad[:, 0] == 0)
    assert (new.grad[:, 1:][mask[:, 1:] > 0] != 0).float().mean() > 0.5


def test_a_weight_with_a_sequence_ratio_is_refused():
    old, new, adv, mask = make()
    with pytest.raises(ValueError, match="base_loss_mode=vanilla"):
        get_policy_loss_fn(LOSS_NAME)(old, new, adv, mask, "token-mean",
                                      actor_config(base_loss_mode="gspo", decision_weight=0.1))
