"""The bpo estimator against a straightforward per-group reference, and its refusals."""

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from verl.trainer.ppo.core_algos import get_adv_estimator_fn

import r4b_verl.advantage  # noqa: F401 - registers "bpo" (also done by the verl plugin entry point)


def reference_bpo(scores: torch.Tensor, uids: list, norm_by_std: bool, eps: float = 1e-6) -> torch.Tensor:
    """Textbook GRPO over each uid's merged group: a Python loop, float64."""
    out = torch.empty_like(scores, dtype=torch.float64)
    for uid in set(uids):
        rows = [i for i, u in enumerate(uids) if u == uid]
        group = scores[rows].double()
        centred = group - group.mean()
        out[rows] = centred / (group.std(unbiased=True) + eps) if norm_by_std else centred
    return out


def make_batch(n_prompts: int, n: int, resp_len: int, seed: int):
    rng = np.random.default_rng(seed)
    uids = [f"prompt-{p}" for p in range(n_prompts) for _ in range(n)]
    order = rng.permutation(len(uids))  # groups interleaved, as after verl's balancing / shuffling
    uids = [uids[i] for i in order]
    lengths = torch.from_numpy(rng.integers(1, resp_len + 1, size=len(uids)))
    mask = (torch.arange(resp_len)[None, :] < lengths[:, None]).float()
    # outcome reward on the last valid token; a mix of binary and graded rewards
    scores = torch.from_numpy(rng.choice([0.0, 1.0, 0.5, -1.0], size=len(uids))).float()
    rewards = torch.zeros(len(uids), resp_len)
    rewards[torch.arange(len(uids)), lengths - 1] = scores
    return rewards, mask, np.array(uids, dtype=object), scores


@pytest.mark.parametrize("norm_by_std", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bpo_matches_reference_on_shuffled_groups(norm_by_std, seed):
    rewards, mask, uids, scores = make_batch(n_prompts=13, n=8, resp_len=17, seed=seed)
    cfg = OmegaConf.create({"adv_estimator": "bpo", "norm_adv_by_std_in_grpo": norm_by_std})
    adv, ret = get_adv_estimator_fn("bpo")(token_level_rewards=rewards, response_mask=mask, index=uids, config=cfg)

    expected = reference_bpo(scores, list(uids), norm_by_std)
    assert adv.shape == rewards.shape
    torch.testing.assert_close(adv, (expected[:, None] * mask).float(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ret, adv)
    assert torch.all(adv[mask == 0] == 0)


def test_norm_flag_is_read_from_config_and_defaults_to_std():
    rewards, mask, uids, _ = make_batch(n_prompts=4, n=4, resp_len=5, seed=3)
    fn = get_adv_estimator_fn("bpo")
    with_std, _ = fn(token_level_rewards=rewards, response_mask=mask, index=uids, config=None)
    on, _ = fn(token_level_rewards=rewards, response_mask=mask, index=uids,
               config=OmegaConf.create({"norm_adv_by_std_in_grpo": True}))
    off, _ = fn(token_level_rewards=rewards, response_mask=mask, index=uids,
                config=OmegaConf.create({"norm_adv_by_std_in_grpo": False}))
    torch.testing.assert_close(with_std, on)
    assert not torch.allclose(on, off)


def test_equal_rewards_in_a_group_give_zero_advantage():
    rewards = torch.ones(4, 3)
    mask = torch.ones(4, 3)
    adv, _ = get_adv_estimator_fn("bpo")(token_level_rewards=rewards, response_mask=mask,
                                         index=np.array(["a"] * 4, dtype=object), config=None)
    assert torch.count_nonzero(adv) == 0


def test_matches_verl_grpo_vectorized_on_integer_uids():
    from verl.trainer.ppo.core_algos import compute_grpo_vectorized_outcome_advantage

    rewards, mask, _, _ = make_batch(n_prompts=7, n=6, resp_len=9, seed=4)
    uids = np.repeat(np.arange(7), 6)
    ours, _ = get_adv_estimator_fn("bpo")(token_level_rewards=rewards, response_mask=mask, index=uids, config=None)
    verl_adv, _ = compute_grpo_vectorized_outcome_advantage(rewards, mask, uids)
    torch.testing.assert_close(ours, verl_adv)


def _call(rewards, mask, uids):
    return get_adv_estimator_fn("bpo")(token_level_rewards=rewards, response_mask=mask, index=uids, config=None)


def test_refuses_a_group_of_one_response():
    rewards, mask = torch.zeros(3, 4), torch.ones(3, 4)
    with pytest.raises(ValueError, match=r"uid='lonely'.*single response.*rollout\.n"):
        _call(rewards, mask, np.array(["g", "g", "lonely"], dtype=object))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_refuses_non_finite_rewards_and_names_the_row(bad):
    rewards, mask = torch.zeros(4, 4), torch.ones(4, 4)
    rewards[2, 1] = bad
    with pytest.raises(ValueError, match=r"non-finite.*row 2.*uid='b'"):
        _call(rewards, mask, np.array(["a", "a", "b", "b"], dtype=object))


def test_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="response_mask"):
        _call(torch.zeros(4, 4), torch.ones(4, 5), np.array(["a"] * 4, dtype=object))
    with pytest.raises(ValueError, match="3 uids for 4 responses"):
        _call(torch.zeros(4, 4), torch.ones(4, 4), np.array(["a"] * 3, dtype=object))
    with pytest.raises(ValueError, match="batch, response_len"):
        _call(torch.zeros(4), torch.ones(4), np.array(["a"] * 4, dtype=object))


def test_refuses_missing_uids():
    with pytest.raises(ValueError, match="uid"):
        _call(torch.zeros(2, 2), torch.ones(2, 2), None)
