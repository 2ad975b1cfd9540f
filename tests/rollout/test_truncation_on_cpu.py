"""Prompt budget: the base prompt is cut per data.truncation (verl's semantics) so the prefix always fits."""

import pytest
import torch
from bpo_rollout_testlib import run_session

from r4b_verl.rollout.agent_loop import fit_prompt

LONG = [{"role": "user", "content": " ".join(f"What is {i} + {i + 1}?" for i in range(30))}]


def verl_truncate(ids, budget, truncation):
    """verl's own rule (utils/torch_functional.postprocess_data) on the same ids, as the reference."""
    from verl.utils.torch_functional import postprocess_data

    t = torch.tensor([ids])
    out, _ = postprocess_data(t, torch.ones_like(t), budget, pad_token_id=0, left_pad=True, truncation=truncation)
    return out[0].tolist()


@pytest.mark.parametrize("truncation", ["left", "right", "middle"])
def test_long_prompt_truncated_prefix_kept(compose, make_worker, fake_tq, helpers, truncation):
    worker = make_worker(compose(f"data.truncation={truncation}", "actor_rollout_ref.rollout.prompt_length=40"))
    tok = worker.tokenizer
    rows = helpers.run_prompt(worker, fake_tq, prompt=LONG)

    text = tok.apply_chat_template(LONG, add_generation_prompt=True, tokenize=False)
    full = tok.encode(text, add_special_tokens=False)
    budget = 40 - 4  # the longest (no_think) r4b prefix is 4 tokens here
    base = verl_truncate(full, budget, truncation)
    assert len(full) > 40 and len(base) == budget
    for row, call in helpers.pair(rows, worker.test_server.calls):
        prefix = tok.encode(row["extra_fields"]["bpo_prefix"], add_special_tokens=False)
        assert call.prompt_ids == base + prefix  # same base in every session, the prefix whole at the end
        assert len(call.prompt_ids) <= 40 and row["prompts"].numel() <= 40


def test_error_truncation_refuses_a_prompt_that_does_not_fit(compose, make_worker, fake_tq):
    # a prompt verl's start-up filter let through (it measures without the prefix): refused, never cut
    worker = make_worker(compose("data.truncation=error", "data.max_prompt_length=32",
                                 "actor_rollout_ref.rollout.prompt_length=40"))
    with pytest.raises(ValueError, match=r"data\.truncation='error'.*actor_rollout_ref\.rollout\.prompt_length"):
        run_session(worker, prompt=LONG, session_id=0)
    assert worker.test_server.calls == []  # refused before generating


def test_fit_prompt_rules():
    ids = list(range(10))
    assert fit_prompt(ids, 10, "error", multimodal=False) == ids  # fits: untouched whatever the setting
    assert fit_prompt(ids, 4, "left", False) == [6, 7, 8, 9]
    assert fit_prompt(ids, 4, "right", False) == [0, 1, 2, 3]
    assert fit_prompt(ids, 5, "middle", False) == [0, 1, 7, 8, 9] == verl_truncate(ids, 5, "middle")
    with pytest.raises(ValueError, match="cannot be truncated"):
        fit_prompt(ids, 4, "left", multimodal=True)  # placeholders would lose their images


@pytest.mark.parametrize(
    "overrides, match",
    [
        # the loop would refuse prompts near the limit, and verl would drop their groups mid-step
        (["data.truncation=error", "actor_rollout_ref.rollout.prompt_length=40"],
         r"prompt_length=40 < data\.max_prompt_length=56 \+ the 4-token mode prefix"),
        # nothing drops the over-long prompts at start-up
        (["data.truncation=error", "data.filter_overlong_prompts=false"], r"data\.filter_overlong_prompts=true"),
    ],
)
def test_error_truncation_budget_refused_at_start(compose, make_worker, overrides, match):
    from r4b_verl.rollout.options import BPOConfigError

    with pytest.raises(BPOConfigError, match=match):
        make_worker(compose(*overrides))


def test_cutting_truncation_needs_no_filter(compose, make_worker):
    worker = make_worker(compose("data.truncation=left", "data.filter_overlong_prompts=false",
                                 "actor_rollout_ref.rollout.prompt_length=40"))
    assert worker.bpo_options.prefix_tokens == 8
