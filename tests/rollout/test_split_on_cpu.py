"""g + g split through verl's real AgentLoopWorkerTQ: modes by session_id, one generate per session,
a byte-identical base prompt (vLLM prefix cache), extra_fields reaching the reward's extra_info."""

import pytest
from bpo_rollout_testlib import PROMPT

from r4b_verl.rollout.options import BPORolloutOptions


@pytest.mark.parametrize(
    "n, fraction, n_think",
    [(2, 0.5, 1), (4, 0.5, 2), (16, 0.5, 8), (4, 0.25, 1), (8, 0.75, 6), (6, 1 / 3, 2)],
)
def test_split_by_session_id(compose, make_worker, fake_tq, helpers, n, fraction, n_think):
    worker = make_worker(compose(f"actor_rollout_ref.rollout.n={n}", f"+bpo.think_fraction={fraction}"))
    rows = helpers.run_prompt(worker, fake_tq)

    modes = [row["extra_fields"]["bpo_mode"] for row in rows]
    assert modes == ["think"] * n_think + ["no_think"] * (n - n_think)  # the first g sessions think
    assert {row["uid"] for row in rows} == {"u0"}  # one advantage group for both modes
    assert len(worker.test_server.calls) == n  # exactly one generate call per response


def test_prefixes_appended_and_base_prompt_identical(compose, make_worker, fake_tq, helpers):
    worker = make_worker(compose("actor_rollout_ref.rollout.n=4"))
    tok = worker.tokenizer
    rows = helpers.run_prompt(worker, fake_tq)

    text = tok.apply_chat_template(PROMPT, add_generation_prompt=True, tokenize=False)
    base = tok.encode(text, add_special_tokens=False)
    calls = worker.test_server.calls
    for row, call in helpers.pair(rows, calls):
        # byte-identical base prompt in all 2g requests: vLLM's prefix cache computes it once
        assert call.prompt_ids[: len(base)] == base
        suffix = tok.decode(call.prompt_ids[len(base) :])
        assert suffix == row["extra_fields"]["bpo_prefix"]
        assert row["prompts"].tolist() == call.prompt_ids  # the prefix is prompt (no loss), not response
    prefixes = sorted(tok.decode(c.prompt_ids[len(base) :]) for c in calls)
    assert prefixes == ["<think>\n"] * 2 + ["<think>\n\n</think>"] * 2


def test_mode_reaches_the_reward_extra_info(compose, make_worker, fake_tq, helpers):
    worker = make_worker(compose("actor_rollout_ref.rollout.n=2", "actor_rollout_ref.rollout.response_length=48"),
                         reward=True)
    rows = helpers.run_prompt(worker, fake_tq)
    seen = worker.test_rewards[0].seen  # what verl's reward managers merge into extra_info
    assert sorted(s["bpo_mode"] for s in seen) == ["no_think", "think"]
    assert all(s["bpo_chosen_mode"] in ("think", "no_think") for s in seen)
    for row in rows:  # the BPO worker adds the numbers the validation metrics need
        info = row["extra_fields"]["reward_extra_info"]
        assert info["acc"] == 1.0 and info["bpo_response_length"] == row["responses"].numel()
        assert info["bpo_think"] == (1.0 if row["extra_fields"]["bpo_chosen_mode"] == "think" else 0.0)


def test_recipe_block_defaults_when_absent():
    assert BPORolloutOptions.from_trainer_config({}) == BPORolloutOptions()
    opts = BPORolloutOptions()
    defaults = (opts.think_fraction, opts.prefix_preset, opts.val_mode, opts.train_mode_token)
    assert defaults == (0.5, "r4b", "auto", False)
    assert [opts.mode_for_session(i, 4) for i in range(4)] == ["think", "think", "no_think", "no_think"]


@pytest.mark.parametrize("auto_prefix", ["<think>", "<think>\n...\n"])
def test_free_choice_training_rollout(compose, make_worker, fake_tq, helpers, auto_prefix):
    # bpo.train_mode=auto (AutoThink, Thinkless, Ada-GRPO, GRPO): every training session gets the auto prefix,
    # nothing moves into the response, and the chosen mode is read past the prompt's part of the block
    from bpo_rollout_testlib import FakeServer

    replies = iter(["\nLet me add.\n</think>\n\nThe answer is \\boxed{42}.",
                    "\n</think>\n\nThe answer is \\boxed{42}."] * 2)
    worker = make_worker(compose("actor_rollout_ref.rollout.n=4", "+bpo.train_mode=auto",
                                 f"+bpo.auto_prefix='{auto_prefix}'"),
                         lambda tok: FakeServer(tok, reply=lambda _ids: next(replies)))
    tok = worker.tokenizer
    rows = helpers.run_prompt(worker, fake_tq)
    assert [row["extra_fields"]["bpo_mode"] for row in rows] == ["auto"] * 4
    assert {row["uid"] for row in rows} == {"u0"}
    chosen = []
    for row, call in helpers.pair(rows, worker.test_server.calls):
        assert tok.decode(call.prompt_ids).endswith(auto_prefix)
        assert row["prompts"].tolist() == call.prompt_ids  # nothing moved into the response
        thinks = tok.decode(call.token_ids).startswith("\nLet")
        chosen.append((row["extra_fields"]["bpo_chosen_mode"], thinks))
    assert sorted(chosen) == [("no_think", False)] * 2 + [("think", True)] * 2
