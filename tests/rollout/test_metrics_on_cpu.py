"""bpo/ metrics: the pure functions, and the trainer hooks fed by real worker output."""

from types import SimpleNamespace

import pytest

from r4b_verl.metrics import (
    compute_bpo_metrics,
    compute_bpo_val_metrics,
    train_metrics_from_transfer_queue,
    val_metrics_from_reward_extra_infos,
)


def test_train_metrics_from_arrays():
    m = compute_bpo_metrics(
        uids=["a", "a", "a", "a", "b", "b", "c"],
        modes=["think", "think", "no_think", "no_think", "think", "no_think", "think"],
        rewards=[1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0],
        lengths=[100, 80, 10, 20, 60, 5, 50],
    )
    assert m["bpo/think/count"] == 4 and m["bpo/no_think/count"] == 3
    assert m["bpo/think/reward/mean"] == pytest.approx(0.5)
    assert m["bpo/no_think/reward/mean"] == pytest.approx(1 / 3)
    assert m["bpo/think/acc/mean"] == pytest.approx(0.5)  # no acc given: reward > 0
    assert m["bpo/think/response_length/mean"] == pytest.approx(72.5)
    assert m["bpo/no_think/response_length/mean"] == pytest.approx(35 / 3)
    # per group think - no_think: a: 0.5 - 0 = 0.5, b: 0 - 1 = -1; c has one mode only: skipped
    assert m["bpo/reward_gap/mean"] == pytest.approx(-0.25)
    assert m["bpo/reward_gap/abs_mean"] == pytest.approx(0.75)
    assert m["bpo/think_wins/frac"] == pytest.approx(0.5)


def test_train_metrics_use_acc_and_ignore_other_rows():
    m = compute_bpo_metrics(uids=["a", "a", "a"], modes=["think", "no_think", None], rewards=[0.9, 0.2, 5.0],
                            lengths=[3, 4, 99], acc=[True, False, True])
    assert m["bpo/think/acc/mean"] == 1.0 and m["bpo/no_think/acc/mean"] == 0.0
    assert m["bpo/think/count"] + m["bpo/no_think/count"] == 2
    assert compute_bpo_metrics(uids=["a"], modes=[None], rewards=[1.0], lengths=[1]) == {}


def test_val_metrics_from_arrays():
    m = compute_bpo_val_metrics(
        data_sources=["math", "math", "math", "ocr", "ocr"],
        think=[1.0, 1.0, 0.0, 0.0, 1.0],
        rewards=[1.0, 0.0, 1.0, 1.0, 1.0],
        lengths=[300, 500, 20, 10, 100],
        acc=[1, 0, 1, 1, 1],
    )
    assert m["bpo/val/think_rate"] == pytest.approx(0.6)
    assert m["bpo/val/math/think_rate"] == pytest.approx(2 / 3) and m["bpo/val/ocr/think_rate"] == 0.5
    assert m["bpo/val/think/acc/mean"] == pytest.approx(2 / 3) and m["bpo/val/no_think/acc/mean"] == 1.0
    assert m["bpo/val/think/response_length/mean"] == pytest.approx(300)
    assert m["bpo/val/no_think/response_length/mean"] == pytest.approx(15)
    assert m["bpo/val/think/count"] == 3 and m["bpo/val/no_think/count"] == 2


def test_val_metrics_with_forced_rows_count_the_think_rate_on_auto_rows_only():
    m = compute_bpo_val_metrics(
        data_sources=["math"] * 6, think=[1.0, 1.0, 0.0, 0.0, 1.0, 0.0], rewards=[1, 1, 0, 1, 1, 0],
        lengths=[300, 200, 10, 20, 250, 30], modes=["think", "think", "no_think", "no_think", "auto", "auto"],
    )
    assert m["bpo/val/think_rate"] == 0.5 and m["bpo/val/math/think_rate"] == 0.5  # the two auto rows
    assert m["bpo/val/think/count"] == 1 and m["bpo/val/no_think/count"] == 1
    assert m["bpo/val/forced/think/count"] == 2 and m["bpo/val/forced/think/acc/mean"] == 1.0
    assert m["bpo/val/forced/no_think/response_length/mean"] == 15
    forced_only = compute_bpo_val_metrics(["math"], [1.0], [1.0], [5], modes=["think"])
    assert "bpo/val/think_rate" not in forced_only and forced_only["bpo/val/forced/think/count"] == 1


def _reward_server(tokenizer):
    """Thinking replies answer right, non-thinking ones wrong (what the FakeRewardWorker scores)."""
    from bpo_rollout_testlib import FakeServer

    def reply(prompt_ids):
        return "42 }" if tokenizer.decode(prompt_ids).endswith("</think>") else "\n12+30\n</think>\\boxed{42}"

    return FakeServer(tokenizer, reply=reply)


def test_train_hook_reads_the_step_from_transfer_queue(compose, make_worker, fake_tq, helpers):
    worker = make_worker(compose("actor_rollout_ref.rollout.response_length=32"), _reward_server, reward=True)
    helpers.run_prompt(worker, fake_tq, uid="p1")
    helpers.run_prompt(worker, fake_tq, uid="p2")
    keys = sorted(fake_tq.rows)
    tags = [{"status": "success"} for _ in keys] + [{"is_padding": True}]
    batch = SimpleNamespace(keys=keys + [keys[0]], tags=tags, partition_id="train")  # a KVBatchMeta's fields

    m = train_metrics_from_transfer_queue(fake_tq, batch)
    assert m["bpo/think/count"] == 4 and m["bpo/no_think/count"] == 4  # padding row left out
    assert m["bpo/think/acc/mean"] == 1.0 and m["bpo/no_think/acc/mean"] == 0.0
    assert m["bpo/reward_gap/mean"] == 1.0 and m["bpo/think_wins/frac"] == 1.0
    lengths = {k: fake_tq.rows[k]["responses"].numel() for k in keys}
    think_len = [lengths[k] for k in keys if fake_tq.rows[k]["extra_fields"]["bpo_mode"] == "think"]
    assert m["bpo/think/response_length/mean"] == pytest.approx(sum(think_len) / 4)


@pytest.fixture
def trainer_metrics():
    """verl_compat.TRAINER_METRICS applied, as BPOAgentLoopManager does in a BPO run; undone afterwards."""
    from r4b_verl import verl_compat

    verl_compat.apply((verl_compat.TRAINER_METRICS,))
    yield
    verl_compat.restore_all()


def test_val_hook_adds_bpo_keys_to_verls_validation_metrics(compose, make_worker, fake_tq, helpers, trainer_metrics):
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    config = compose("actor_rollout_ref.rollout.val_kwargs.n=2", "actor_rollout_ref.rollout.response_length=32")
    worker = make_worker(config, _reward_server, reward=True)
    rows = helpers.run_prompt(worker, fake_tq, validate=True, uid="v1", data_source="math")
    rows += helpers.run_prompt(worker, fake_tq, validate=True, uid="v2", data_source="ocr")
    # what PPOTrainer._validate gathers before calling _val_metrics_update
    infos = [r["extra_fields"]["reward_extra_info"] for r in rows]
    reward_extra_infos_dict = {"reward": [i["acc"] for i in infos]}
    for key in infos[0]:
        reward_extra_infos_dict[key] = [i[key] for i in infos]
    sources = ["math", "math", "ocr", "ocr"]

    metrics = PPOTrainer._val_metrics_update(None, sources, ["v1", "v1", "v2", "v2"], reward_extra_infos_dict, [2] * 4)
    assert "val-core/math/acc/mean@2" in metrics  # verl's own keys are still there
    assert "val-aux/math/bpo_think/mean@2" in metrics  # verl also aggregates the hook's numbers per source
    expected = val_metrics_from_reward_extra_infos(sources, reward_extra_infos_dict)
    assert {k: v for k, v in metrics.items() if k.startswith("bpo/")} == expected
    assert {"bpo/val/think_rate", "bpo/val/math/think_rate", "bpo/val/ocr/think_rate"} <= set(expected)
    # the auto prompt ends in "<think>", so the fake replies think: all chose thinking
    assert expected["bpo/val/think_rate"] == 1.0 and expected["bpo/val/think/acc/mean"] == 1.0


def test_hooks_refuse_a_changed_verl_signature():
    from r4b_verl.verl_compat import check_signature

    def _compute_metrics(self, batch_meta, metrics):
        pass

    with pytest.raises(RuntimeError, match="r4b_verl/verl_compat.py needs updating"):
        check_signature(_compute_metrics, ("self", "batch", "metrics"))


def test_trainer_metrics_patch_is_applied_and_undone_by_its_owner():
    from verl.experimental.agent_loop.agent_loop import _agent_loop_registry
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    from r4b_verl import verl_compat

    assert _agent_loop_registry["bpo_bimode"] == {"_target_": "r4b_verl.rollout.agent_loop.BPOBiModeAgentLoop"}
    original = PPOTrainer._compute_metrics
    assert not getattr(original, "_r4b_patched", False)  # importing the plugin changed nothing
    verl_compat.apply((verl_compat.TRAINER_METRICS,))
    verl_compat.apply((verl_compat.TRAINER_METRICS,))  # idempotent: wrapped once
    assert PPOTrainer._compute_metrics.__wrapped__ is original
    verl_compat.restore_all()
    assert PPOTrainer._compute_metrics is original


def test_val_metrics_without_modes_skip_rows_without_a_think_flag():
    from r4b_verl.metrics import compute_bpo_val_metrics

    m = compute_bpo_val_metrics(["a", "a", "a"], [None, 1, 1], [1, 0, 1], [5, 5, 5])
    assert m["bpo/val/think_rate"] == 1.0  # the two rows with a flag, both auto (was an IndexError)
