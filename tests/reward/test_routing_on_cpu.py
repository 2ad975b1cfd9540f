"""Routing and swapping through verl's own loading, on the composed recipe.

The recipe sets ``reward.custom_reward_function.path/name``; verl's ``get_custom_reward_fn`` loads it
and merges ``reward_kwargs``. Users swap rewards with Hydra overrides: a built-in by name, or their
own function by ``pkg://module:function`` or ``/path/file.py:function``. Finally a batch runs through
verl's reward manager (``load_reward_manager`` -> ``NaiveRewardManager.run_single``) unchanged.
"""

import asyncio
import inspect
import logging
import textwrap

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra

from r4b_verl.reward import RESULT_KEYS

# Equivalent to the reward_kwargs block the recipe carries (see r4b_verl/reward/README.md).
RECIPE_BLOCK = {
    "default": "math",
    "format_weight": 0.0,
    "mode_key": "bpo_mode",
    "think_tags": "kept",
    "fast_mismatch": True,
    "timeout_s": 5.0,
    "kill_grace_s": 1.0,
    "max_wait_s": 30.0,
    "workers": 1,
    "worker_memory_mb": 4096,
    "max_response_chars": 1000000,
    "max_answer_chars": 4096,
}
PREFIX = "reward.custom_reward_function.reward_kwargs"


def compose_recipe(*overrides: str):
    """verl's ppo_trainer + the r4b_bpo recipe (+ this issue's reward_kwargs if the recipe lacks them)."""
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        cfg = compose("ppo_trainer", overrides=["+recipe=r4b_bpo"])
        extra = []
        if cfg.reward.custom_reward_function.get("reward_kwargs") is None:
            extra = [f"+{PREFIX}.{k}={v}" for k, v in RECIPE_BLOCK.items()]
        return compose("ppo_trainer", overrides=["+recipe=r4b_bpo", *extra, *overrides])


def reward_fn(*overrides: str):
    from verl.trainer.ppo.reward import get_custom_reward_fn

    cfg = compose_recipe(*overrides)
    assert cfg.reward.custom_reward_function.path == "pkg://r4b_verl.reward"
    return get_custom_reward_fn(cfg)


def call(fn, source, response, gold, mode="no_think"):
    """One call the way verl's reward manager makes it: awaited if the loaded function is async."""
    result = fn(data_source=source, solution_str=response, ground_truth=gold, extra_info={"bpo_mode": mode})
    return asyncio.run(result) if inspect.isawaitable(result) else result


def key_override(key: str, value: str) -> str:
    """'+' only when the key is new in the composed config (Hydra refuses '+' on existing keys)."""
    cfg = compose_recipe()
    exists = cfg.reward.custom_reward_function.reward_kwargs.get(key.split(".")[0]) is not None and "." not in key
    return f"{'' if exists else '+'}{PREFIX}.{key}={value}"


@pytest.mark.parametrize("source", ["math", "gsm8k", "openai/gsm8k", "aime_2024", "AIME25", "HuggingFaceH4/MATH-500",
                                    "lighteval/MATH"])
def test_math_sources_route_to_math(source):
    result = call(reward_fn(), source, "reasoning </think> \\boxed{\\frac{1}{2}}", "0.5", mode="think")
    assert result["reward_fn"] == "math" and result["score"] == 1.0 and result["mode"] == "think"


def test_builtin_names_route_to_themselves():
    fn = reward_fn()
    assert call(fn, "choice", "The answer is (B).", "B")["reward_fn"] == "choice"
    assert call(fn, "numeric", "about 3.1416", "3.14159")["score"] == 1.0
    assert call(fn, "exact", "  Hello World. ", "hello world")["score"] == 1.0


def test_unknown_source_uses_the_default_and_is_logged_once(caplog):
    fn = reward_fn(key_override("default", "exact"))
    with caplog.at_level(logging.WARNING, logger="r4b_verl.reward.router"):
        first = call(fn, "some_new_ocr_set", "STOP", "stop")
        call(fn, "some_new_ocr_set", "GO", "stop")
    assert first["reward_fn"] == "exact" and first["score"] == 1.0
    assert sum("some_new_ocr_set" in r.getMessage() for r in caplog.records) == 1


def test_swap_a_source_to_a_builtin_by_override():
    fn = reward_fn(f"+{PREFIX}.routes.gpqa_diamond=choice")
    result = call(fn, "gpqa_diamond", "so the answer is \\boxed{C}", "C")
    assert result["reward_fn"] == "choice" and result["score"] == 1.0 and result["pred"] == "C"


def test_swap_to_user_functions_by_file_path_and_pkg(tmp_path, monkeypatch):
    user_code = textwrap.dedent(
        """
        def my_score(data_source, solution_str, ground_truth, extra_info=None):
            return {"score": 0.25 if ground_truth in solution_str else 0.0, "my_key": "dropped"}

        def compute_score(data_source, solution_str, ground_truth, extra_info=None):
            return 0.75
        """
    )
    (tmp_path / "my_reward.py").write_text(user_code)
    (tmp_path / "my_rewards_pkg").mkdir()
    (tmp_path / "my_rewards_pkg" / "__init__.py").write_text(user_code)
    monkeypatch.syspath_prepend(str(tmp_path))
    fn = reward_fn(
        f"+{PREFIX}.routes.by_file='{tmp_path / 'my_reward.py'}:my_score'",
        f"+{PREFIX}.routes.by_pkg='pkg://my_rewards_pkg'",
    )
    by_file = call(fn, "by_file", "the token xyz", "xyz")
    assert by_file["score"] == 0.25 and by_file["reward_fn"].endswith("my_reward.py:my_score")
    assert tuple(by_file) == RESULT_KEYS  # rows keep one key set: verl builds arrays from the first row's keys
    assert call(fn, "by_pkg", "anything", "x")["score"] == 0.75


@pytest.mark.parametrize(
    "override, message",
    [
        (f"+{PREFIX}.timeout=3", f"{PREFIX}.timeout: unknown option"),
        (f"+{PREFIX}.routes.src=mth", f"{PREFIX}.routes.src: unknown reward 'mth'"),
        ("FORMAT_WEIGHT", f"{PREFIX}.format_weight: must be in [0, 1]"),
        ("MAX_RESPONSE_CHARS", f"{PREFIX}.max_response_chars: must be >= max_answer_chars"),
    ],
)
def test_config_errors_name_the_key(override, message):
    if override == "FORMAT_WEIGHT":
        override = key_override("format_weight", "2.0")
    if override == "MAX_RESPONSE_CHARS":
        override = key_override("max_response_chars", "1000")
    fn = reward_fn(override)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        call(fn, "src", "\\boxed{1}", "1")


class CharTokenizer:
    """What verl's reward manager needs from a tokenizer: decode(ids, skip_special_tokens=True)."""

    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(int(i)) for i in ids)


def test_batch_runs_through_verls_reward_manager_unchanged():
    from verl import DataProto
    from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase
    from verl.trainer.ppo.reward import load_reward_manager

    cfg = compose_recipe()
    manager = load_reward_manager(cfg, CharTokenizer())
    rows = [
        ("math", "thinking </think> \\boxed{\\frac{3}{4}}", "0.75", "think"),
        ("gsm8k", "The answer is 12.", "12", "no_think"),
        ("aime_2024", "never closed \\boxed{5}", "5", "think"),
        ("choice", "Answer: (D)", "D", "auto"),
    ]
    width = max(len(r[1]) for r in rows)
    responses = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), 3 + width, dtype=torch.long)
    for i, (_, text, _, _) in enumerate(rows):
        responses[i, : len(text)] = torch.tensor([ord(c) for c in text])
        mask[i, : 3 + len(text)] = 1
    data = DataProto.from_dict(
        tensors={"responses": responses, "attention_mask": mask, "prompts": torch.ones(len(rows), 3, dtype=torch.long)},
        non_tensors={
            "data_source": np.array([r[0] for r in rows], dtype=object),
            "reward_model": np.array([{"ground_truth": r[2]} for r in rows], dtype=object),
            "extra_info": np.array([{"bpo_mode": r[3]} for r in rows], dtype=object),
        },
    )

    async def run_all():
        return await asyncio.gather(*(manager.run_single(data[i : i + 1]) for i in range(len(rows))))

    assert manager.is_async_reward_score  # the recipe names compute_score_async: verl awaits it
    outputs = manager.loop.run_until_complete(run_all())
    assert [o["reward_score"] for o in outputs] == [1.0, 1.0, 0.0, 1.0]
    # What RewardLoopManager.compute_rm_score does with the extra info: one array per key of row 0.
    infos = [o["reward_extra_info"] for o in outputs]
    arrays = {key: np.array([info[key] for info in infos]) for key in infos[0]}
    assert list(arrays["mode"]) == ["think", "no_think", "think", "auto"]
    assert list(arrays["has_answer"]) == [1.0, 1.0, 0.0, 1.0]
    assert list(arrays["reward_fn"]) == ["math", "math", "math", "choice"]
    scores = RewardManagerBase.assemble_rm_scores(data, [o["reward_score"] for o in outputs])
    assert scores.sum().item() == 3.0
