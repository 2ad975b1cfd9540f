"""The peers' estimators against float64 per-group references, with the edge cases of a bi-mode batch."""

import math

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from verl.trainer.ppo.core_algos import get_adv_estimator_fn

import r4b_verl.methods.estimators  # noqa: F401 - registers adaptthink, autothink, ada_grpo
from r4b_verl.methods.batch_view import BatchView, batch_view

EPS = 1e-6


def grpo_reference(r: list[float], uids: list, norm_by_std: bool = True) -> list[float]:
    out = [0.0] * len(r)
    for uid in set(uids):
        rows = [i for i, u in enumerate(uids) if u == uid]
        vals = [r[i] for i in rows]
        mean = sum(vals) / len(vals)
        std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
        for i in rows:
            out[i] = (r[i] - mean) / (std + EPS) if norm_by_std else r[i] - mean
    return out


def autothink_reference(r, modes, acc, lengths, uids, stage, b=0.5, alpha=0.05, beta=0.05):
    r = [float(x) for x in r]
    if stage == 1:
        p = sum(m == "think" for m in modes) / len(modes)
        for mode, share in (("think", p), ("no_think", 1 - p)):
            if share > b:
                lam = min(max(2 * (share - b), 0.0), 1.0)
                for i, m in enumerate(modes):
                    if m == mode:
                        target = (0.0 if acc[i] else -1.0) if mode == "think" else (1.0 if acc[i] else -2.0)
                        r[i] = (1 - lam) * r[i] + lam * target
    if stage == 3:
        add = [0.0] * len(r)
        for uid in set(uids):
            for ok in (True, False):
                rows = [i for i in range(len(r)) if uids[i] == uid and bool(acc[i]) == ok]
                if len(rows) <= 1:
                    continue
                L = [float(lengths[i]) for i in rows]
                mean = sum(L) / len(L)
                std = math.sqrt(sum((x - mean) ** 2 for x in L) / len(L))
                for i in rows:
                    z = (lengths[i] - mean) / max(std, 1e-6)
                    add[i] = math.exp(-alpha * z) - 1 if ok else 1 - math.exp(-beta * z)
        r = [x + a for x, a in zip(r, add, strict=True)]
    return grpo_reference(r, uids)


def ada_reference(r, modes, uids, step, T):
    t = min(max(step - 1, 0), T)
    scaled = []
    for i in range(len(r)):
        group = [j for j in range(len(r)) if uids[j] == uids[i]]
        F = sum(modes[j] == modes[i] for j in group)
        scaled.append((1 + 0.5 * (len(group) / F - 1) * (1 + math.cos(math.pi * t / T))) * r[i])
    return grpo_reference(scaled, uids)


def batch(n_prompts, n, resp_len, seed, case="random"):
    rng = np.random.default_rng(seed)
    uids = [f"p{p}" for p in range(n_prompts) for _ in range(n)]
    order = rng.permutation(len(uids))
    uids = [uids[i] for i in order]
    modes = list(rng.choice(["think", "no_think"], size=len(uids)))
    if case == "one_mode_batch":
        modes = ["think"] * len(uids)
    if case == "mode_absent_in_group":  # the first prompt's group has only no_think responses
        modes = ["no_think" if u == "p0" else m for u, m in zip(uids, modes, strict=True)]
    acc = list(rng.integers(0, 2, size=len(uids)).astype(float))
    scores = [float(x) for x in rng.choice([-1.0, 0.0, 1.0, 2.0, -2.0], size=len(uids))]
    if case == "equal_rewards":
        scores = [1.0] * len(uids)
    lengths = rng.integers(1, resp_len + 1, size=len(uids))
    mask = (torch.arange(resp_len)[None, :] < torch.as_tensor(lengths)[:, None]).float()
    rewards = torch.zeros(len(uids), resp_len)
    rewards[torch.arange(len(uids)), torch.as_tensor(lengths) - 1] = torch.tensor(scores)
    return rewards, mask, np.array(uids, dtype=object), modes, acc, scores, [int(x) for x in lengths]


CASES = ["random", "one_mode_batch", "mode_absent_in_group", "equal_rewards"]


def check(adv, ret, expected, mask):
    want = torch.tensor(expected, dtype=torch.float64)[:, None] * mask.double()
    torch.testing.assert_close(adv.double(), want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ret, adv)
    assert torch.all(adv[mask == 0] == 0)


@pytest.mark.parametrize("case", CASES)
def test_adaptthink_is_the_raw_reward(case):
    rewards, mask, uids, _, _, scores, _ = batch(5, 4, 9, seed=1, case=case)
    adv, ret = get_adv_estimator_fn("adaptthink")(token_level_rewards=rewards, response_mask=mask, index=uids,
                                                  config=None)
    check(adv, ret, scores, mask)


@pytest.mark.parametrize("stage", [1, 2, 3])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_autothink_matches_reference(stage, case, seed):
    rewards, mask, uids, modes, acc, scores, lengths = batch(6, 8, 13, seed=seed, case=case)
    view = BatchView(np.array(modes, dtype=object), np.array(acc), step=1, total_steps=10)
    cfg = OmegaConf.create({"norm_adv_by_std_in_grpo": True, "autothink": {"stage": stage}})
    with batch_view(view):  # the way verl_compat hands it over in a run
        adv, ret = get_adv_estimator_fn("autothink")(token_level_rewards=rewards, response_mask=mask, index=uids,
                                                     config=cfg)
    check(adv, ret, autothink_reference(scores, modes, acc, lengths, list(uids), stage), mask)


def test_autothink_balance_moves_rewards_of_the_majority_mode_only():
    # 3 of 4 think: lam = clip(2 (0.75 - 0.5)) = 0.5, think rewards halfway to their targets; no_think untouched
    from r4b_verl.methods.estimators import autothink_rewards

    r = autothink_rewards(np.array([1.0, 0.0, 1.0, 2.0]), np.array(["think"] * 3 + ["no_think"], dtype=object),
                          np.array([1.0, 0.0, 1.0, 1.0]), np.array([3, 3, 3, 3]), np.array(["a"] * 4, dtype=object),
                          {"stage": 1, "balance": 0.5, "alpha": 0.05, "beta": 0.05})
    assert r.tolist() == [0.5, -0.5, 0.5, 2.0]


@pytest.mark.parametrize("step, total", [(1, 10), (6, 10), (11, 10), (40, 10)])
@pytest.mark.parametrize("case", CASES)
def test_ada_grpo_matches_reference(step, total, case):
    rewards, mask, uids, modes, acc, scores, _ = batch(6, 8, 11, seed=step, case=case)
    view = BatchView(np.array(modes, dtype=object), np.array(acc), step=step, total_steps=total)
    cfg = OmegaConf.create({"norm_adv_by_std_in_grpo": True, "ada_grpo": {"decay_steps": None}})
    adv, ret = get_adv_estimator_fn("ada_grpo")(token_level_rewards=rewards, response_mask=mask, index=uids, config=cfg,
                                                view=view)
    check(adv, ret, ada_reference(scores, modes, list(uids), step, total), mask)


def test_ada_grpo_boost_decays_to_one():
    from r4b_verl.methods.estimators import ada_grpo_scale

    modes = np.array(["think"] + ["no_think"] * 3, dtype=object)
    uids = np.array(["a"] * 4, dtype=object)
    assert ada_grpo_scale(modes, uids, step=1, decay_steps=4).tolist() == [
        4.0, pytest.approx(1 + 1 / 3), pytest.approx(1 + 1 / 3), pytest.approx(1 + 1 / 3)]
    assert ada_grpo_scale(modes, uids, step=5, decay_steps=4).tolist() == [1.0] * 4


def test_batch_estimators_refuse_to_run_without_the_view():
    rewards, mask, uids, *_ = batch(2, 4, 5, seed=0)
    for name in ("autothink", "ada_grpo"):
        with pytest.raises(RuntimeError, match="agent_loop_manager_class"):
            get_adv_estimator_fn(name)(token_level_rewards=rewards, response_mask=mask, index=uids, config=None)


def test_view_rows_without_a_mode_are_refused():
    rewards, mask, uids, modes, acc, *_ = batch(2, 4, 5, seed=0)
    modes[3] = None
    view = BatchView(np.array(modes, dtype=object), np.array(acc), step=1, total_steps=2)
    with pytest.raises(ValueError, match="bpo_bimode"):
        get_adv_estimator_fn("ada_grpo")(token_level_rewards=rewards, response_mask=mask, index=uids, config=None,
                                         view=view)


def test_view_from_extra_fields_takes_the_mode_each_response_took():
    from r4b_verl.methods.batch_view import view_from_extra_fields

    extra = [
        {"bpo_mode": "think", "bpo_chosen_mode": "no_think",
         "reward_extra_info": {"acc": 1.0}},  # forced: the forced mode
        {"bpo_mode": "auto", "bpo_chosen_mode": "no_think", "reward_extra_info": {"acc": 0.0}},  # chosen
        {"bpo_mode": "auto", "bpo_chosen_mode": "think"},  # no reward info: not correct
    ]
    view = view_from_extra_fields(extra, step=3, total_steps=7)
    assert view.modes.tolist() == ["think", "no_think", "think"]
    assert view.acc.tolist() == [1.0, 0.0, 0.0] and (view.step, view.total_steps) == (3, 7)


def test_a_group_of_one_gets_verls_grpo_advantage_not_an_explosion():
    # one prompt left with a single response (a dropped group, a filtered row): verl's grpo gives r / (1 + eps)
    from verl.trainer.ppo import core_algos

    from r4b_verl.methods.estimators import _grpo

    scores, index = torch.tensor([2.0, 1.0, 0.0]), np.array(["solo", "pair", "pair"], dtype=object)
    ours = _grpo(scores, index, None, 1e-6)
    verl, _ = core_algos.compute_grpo_outcome_advantage(scores.unsqueeze(-1), torch.ones(3, 1), index)
    assert torch.allclose(ours, verl.squeeze(-1)) and abs(float(ours[0]) - 2.0) < 1e-4, ours  # was 2e6
