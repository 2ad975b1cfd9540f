"""bpo.train_mode_token: the forced decision token moves to the response (mask 1, rollout log-prob
log(mode share)); a tiny random model checks the log-probs the actor would recompute."""

import math

import pytest
import torch
from bpo_rollout_testlib import HFServer

THINK = "+bpo.think_prefix='<think>\nLet'"  # tiny BPE: "<think>\n" alone is a prefix of the no-think ids
OPTION = ["+bpo.train_mode_token=true", THINK, "actor_rollout_ref.rollout.response_length=12"]


@pytest.fixture(scope="module")
def model(model_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="eager").eval()


def actor_log_probs(model, prompt, response):
    """What verl's actor computes for old_log_prob: log p(response_t | prompt, response_<t)."""
    ids = torch.tensor([prompt + response])
    with torch.no_grad():
        lp = torch.log_softmax(model(ids).logits[0].float(), dim=-1)
    return [float(lp[len(prompt) + t - 1, tok]) for t, tok in enumerate(response)]


@pytest.mark.parametrize("fraction, n", [(0.5, 2), (0.75, 4)])
def test_decision_token_in_response(compose, make_worker, fake_tq, helpers, model, fraction, n):
    worker = make_worker(compose(*OPTION, f"+bpo.think_fraction={fraction}", f"actor_rollout_ref.rollout.n={n}"),
                         lambda tok: HFServer(tok, model))
    tok = worker.tokenizer
    rows = helpers.run_prompt(worker, fake_tq)
    think_ids = tok.encode("<think>\nLet", add_special_tokens=False)
    no_think_ids = tok.encode("<think>\n\n</think>", add_special_tokens=False)
    d = next(i for i, (a, b) in enumerate(zip(think_ids, no_think_ids, strict=False)) if a != b)

    prompts = {tuple(r["prompts"].tolist()) for r in rows}
    assert len(prompts) == 1  # one prompt for both modes: base + the shared "<think>\n"
    shared_prompt = list(prompts.pop())
    assert tok.decode(shared_prompt).endswith("assistant\n<think>\n")

    for row, call in helpers.pair(rows, worker.test_server.calls):
        mode = row["extra_fields"]["bpo_mode"]
        forced = think_ids if mode == "think" else no_think_ids
        moved = forced[d:]
        response, mask = row["responses"].tolist(), row["response_mask"].tolist()
        logprobs = row["rollout_log_probs"].tolist()
        generated = len(response) - len(moved)

        assert call.prompt_ids == shared_prompt + moved  # the server still sees the whole forced prefix
        assert call.sampling_params["max_tokens"] == 12 - len(moved)  # the response stays within response_length
        assert response[: len(moved)] == moved
        assert mask == [1] + [0] * (len(moved) - 1) + [1] * generated  # only the decision token is trained
        share = fraction if mode == "think" else 1 - fraction
        assert logprobs[0] == pytest.approx(math.log(share))  # AdaptThink: log 0.5 for a 50/50 split

        # generated tokens: rollout log-probs == what the actor recomputes on (prompt, response)
        actor = actor_log_probs(model, shared_prompt, response)
        assert actor[len(moved) :] == pytest.approx(logprobs[len(moved) :], abs=1e-4)
        # the decision token: the actor sees its real probability, the rollout says "forced with p=share"
        assert actor[0] != pytest.approx(logprobs[0], abs=1e-3)

        # verl's token-level rollout correction then weights it by pi_old / share (truncated at 2.0)
        from verl.protocol import DataProto
        from verl.trainer.ppo.rollout_corr_helper import compute_rollout_correction_and_add_to_batch

        batch = DataProto.from_dict({
            "old_log_probs": torch.tensor([actor]), "rollout_log_probs": torch.tensor([logprobs]),
            "response_mask": torch.tensor([mask]),
        })
        correction = {"rollout_is": "token", "rollout_is_threshold": 2.0}
        batch, _ = compute_rollout_correction_and_add_to_batch(batch, correction)
        weights = batch.batch["rollout_is_weights"][0]
        assert float(weights[0]) == pytest.approx(min(math.exp(actor[0]) / share, 2.0), rel=1e-4)
        assert weights[len(moved) :] == pytest.approx(torch.ones(generated), abs=1e-3)


def test_validation_is_untouched_by_the_option(compose, make_worker, fake_tq, helpers):
    worker = make_worker(compose(*OPTION, "actor_rollout_ref.rollout.val_kwargs.n=2"))
    rows = helpers.run_prompt(worker, fake_tq, validate=True)
    for row, call in helpers.pair(rows, worker.test_server.calls):
        assert row["prompts"].tolist() == call.prompt_ids  # auto prefix stays in the prompt
        assert "max_tokens" not in call.sampling_params
        assert row["response_mask"].tolist() == [1] * row["responses"].numel()


def test_option_off_keeps_the_prefix_in_the_prompt(compose, make_worker, fake_tq, helpers):
    worker = make_worker(compose(THINK))
    rows = helpers.run_prompt(worker, fake_tq)
    for row, call in helpers.pair(rows, worker.test_server.calls):
        assert row["prompts"].tolist() == call.prompt_ids
        assert row["rollout_log_probs"].tolist() == [-0.5] * row["responses"].numel()  # the server's, untouched
