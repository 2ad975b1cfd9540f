"""reward_fns/: the user-facing reward files, loaded by path exactly as verl loads custom_reward_function."""

import asyncio
from functools import partial
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from verl.trainer.ppo.reward import get_custom_reward_fn

import r4b_verl.reward as engine
from r4b_verl.reward import compute_score

FILES = Path(__file__).resolve().parents[2] / "reward_fns"


def load(path, name, reward_kwargs=None):
    config = OmegaConf.create({"reward": {"custom_reward_function": {
        "path": str(path), "name": name, "reward_kwargs": reward_kwargs or {}}}})
    fn = get_custom_reward_fn(config)
    assert isinstance(fn, partial)
    return fn


def test_r4b_file_is_the_recipe_reward_with_one_engine():
    fn = load(FILES / "r4b.py", "compute_score_async")
    raw = fn.args[0]  # verl wraps the loaded function with the reward_kwargs
    assert raw is engine.compute_score_async  # re-exported, not a copy: one set of caches and worker pools
    result = asyncio.run(fn(data_source="gsm8k", solution_str="work\n</think>\n\n\\boxed{42}", ground_truth="42",
                            extra_info={"bpo_mode": "think"}))
    assert result["score"] == 1.0 and result["reward_fn"] == "math"


@pytest.mark.parametrize(
    "response, mode, score",
    [
        ("12 + 30 = 42\n</think>\n\nSo \\boxed{42}.", "think", 1.0),
        ("12 + 30 = 42, so \\boxed{42}", "think", 0.0),  # never closed its think block: no answer
        ("\\boxed{42}", "no_think", 1.0),
        ("\\boxed{ 42 }", "auto", 1.0),
        ("\\boxed{41}", "no_think", 0.0),
        ("\\boxed{{42}", "no_think", 0.0),  # unbalanced: no boxed answer
    ],
)
def test_boxed_exact_file_follows_the_think_contract(response, mode, score):
    fn = load(FILES / "boxed_exact.py", "compute_score")
    result = fn(data_source="my_set", solution_str=response, ground_truth="42", extra_info={"bpo_mode": mode})
    assert result["score"] == score and result["acc"] == score


def test_boxed_exact_file_as_one_route_of_the_recipe_reward():
    route = f"{FILES / 'boxed_exact.py'}:compute_score"
    kwargs = {"routes": {"my_set*": route}}
    mine = compute_score("my_set_v2", "x</think>\\boxed{Paris}", "Paris", {"bpo_mode": "think"}, **kwargs)
    other = compute_score("gsm8k", "x</think>\\boxed{7}", "7", {"bpo_mode": "think"}, **kwargs)
    assert (mine["score"], mine["reward_fn"]) == (1.0, route)
    assert (other["score"], other["reward_fn"]) == (1.0, "math")  # the built-in routes still apply
