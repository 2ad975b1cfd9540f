"""Validation rollouts: the auto prefix for every session, and the mode the model chose recorded."""

import pytest


def replies(*texts):
    it = iter(texts)
    return lambda tokenizer: __import__("bpo_rollout_testlib").FakeServer(tokenizer, reply=lambda _ids: next(it))


def test_validation_uses_auto_and_records_the_choice(compose, make_worker, fake_tq, helpers):
    server = replies("\n\n</think>\n\n42", "\nAdd: 12 + 30.\n</think>\n\n42", "\nno end", "</think>42")
    worker = make_worker(compose("actor_rollout_ref.rollout.val_kwargs.n=4", "actor_rollout_ref.rollout.n=2"), server)
    rows = helpers.run_prompt(worker, fake_tq, validate=True)  # val_kwargs.n sessions, not rollout.n

    tok = worker.tokenizer
    assert len(rows) == 4
    assert all(tok.decode(c.prompt_ids).endswith("assistant\n<think>") for c in worker.test_server.calls)
    assert [r["extra_fields"]["bpo_mode"] for r in rows] == ["auto"] * 4
    assert [r["extra_fields"]["bpo_prefix"] for r in rows] == ["<think>"] * 4
    expected = {"\n\n</think>\n\n42": "no_think", "\nAdd: 12 + 30.\n</think>\n\n42": "think", "\nno end": "think",
                "</think>42": "no_think"}
    for row, call in helpers.pair(rows, worker.test_server.calls):
        assert row["extra_fields"]["bpo_chosen_mode"] == expected[tok.decode(call.token_ids)]


@pytest.mark.parametrize("val_mode", ["think", "no_think"])
def test_forced_validation_mode(compose, make_worker, fake_tq, helpers, val_mode):
    worker = make_worker(compose(f"+bpo.val_mode={val_mode}", "actor_rollout_ref.rollout.val_kwargs.n=2"))
    rows = helpers.run_prompt(worker, fake_tq, validate=True)
    assert [r["extra_fields"]["bpo_mode"] for r in rows] == [val_mode] * 2


def test_training_rows_still_split(compose, make_worker, fake_tq, helpers):
    # the validate flag comes from verl's trajectory (via the BPO worker), not from the sampling params
    worker = make_worker(compose("actor_rollout_ref.rollout.val_kwargs.temperature=1.0"))
    rows = helpers.run_prompt(worker, fake_tq, validate=False)
    assert [r["extra_fields"]["bpo_mode"] for r in rows] == ["think", "think", "no_think", "no_think"]


def test_chosen_mode_with_special_think_tokens(compose, make_worker, fake_tq, helpers, special_think_model_dir):
    # tokenizers that mark the tags special: the loop decodes with the tags kept, so detection still works
    server = replies("\n\n</think>\n\n42", "\nAdd: 12 + 30.\n</think>\n\n42")
    config = compose(f"actor_rollout_ref.model.path={special_think_model_dir}",
                     "actor_rollout_ref.rollout.val_kwargs.n=2")
    worker = make_worker(config, server)
    tok = worker.tokenizer
    assert "<think>" in tok.all_special_tokens and tok.decode(tok.encode("<think>"), skip_special_tokens=True) == ""
    rows = helpers.run_prompt(worker, fake_tq, validate=True)
    expected = {"\n\n</think>\n\n42": "no_think", "\nAdd: 12 + 30.\n</think>\n\n42": "think"}
    for row, call in helpers.pair(rows, worker.test_server.calls):
        assert row["extra_fields"]["bpo_chosen_mode"] == expected[tok.decode(call.token_ids)]


def test_val_mode_all_rolls_each_prompt_out_in_every_mode(compose, make_worker, fake_tq, helpers):
    import asyncio

    from r4b_verl.metrics import val_metrics_from_reward_extra_infos

    config = compose("+bpo.val_mode=all", "actor_rollout_ref.rollout.val_kwargs.n=2")
    worker = make_worker(config, reward=True)
    trajectory = {"step": 0, "sample_index": 0, "rollout_n": 0, "validate": True}
    row = {"raw_prompt": helpers.PROMPT, "uid": "v", "index": 0, "global_steps": 0, "agent_name": "bpo_bimode",
           "data_source": "math", "extra_info": {}}
    asyncio.run(worker._run_prompt(row, {"logprobs": False}, trajectory=trajectory))
    assert fake_tq.status["v"] == "finished"
    rows = [fake_tq.rows[f"v_{i}_0"] for i in range(6)]  # 3 modes x val_kwargs.n
    assert not any(key.startswith("v_6") for key in fake_tq.rows)
    modes = [r["extra_fields"]["bpo_mode"] for r in rows]
    assert modes == ["think", "think", "no_think", "no_think", "auto", "auto"]
    tok = worker.tokenizer
    for row, call in helpers.pair(rows, worker.test_server.calls):
        assert tok.decode(call.prompt_ids).endswith({"think": "<think>\n", "no_think": "<think>\n\n</think>",
                                                     "auto": "<think>"}[row["extra_fields"]["bpo_mode"]])
    infos = [r["extra_fields"]["reward_extra_info"] for r in rows]
    assert [i["bpo_mode"] for i in infos] == modes and {i["bpo_data_source"] for i in infos} == {"math"}
    gathered = {key: [i[key] for i in infos] for key in infos[0]} | {"reward": [i["acc"] for i in infos]}
    metrics = val_metrics_from_reward_extra_infos(["math"] * 6, gathered)
    assert metrics["bpo/val/think/count"] + metrics["bpo/val/no_think/count"] == 2  # the auto rows
    assert metrics["bpo/val/forced/think/count"] == 2 and metrics["bpo/val/forced/no_think/count"] == 2


def test_val_mode_all_leaves_training_rollouts_alone(compose, make_worker, fake_tq, helpers):
    worker = make_worker(compose("+bpo.val_mode=all"))
    rows = helpers.run_prompt(worker, fake_tq, validate=False)
    assert [r["extra_fields"]["bpo_mode"] for r in rows] == ["think", "think", "no_think", "no_think"]
