"""The cheap data check at trainer start-up (``bpo.data_check``), a Hydra callback of the recipe.

The trainer start is the real ``python -m verl.trainer.main_ppo +recipe=r4b_bpo_cpu`` of
tests/e2e/test_train_cpu_on_cpu.py, stopped by a bad train file before Ray starts (the model path
does not even exist: nothing reaches it).
"""

from __future__ import annotations

import copy
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from r4b_verl.data.check import DataCheckError
from r4b_verl.data.startup import DataCheckCallback, check_config_data
from r4b_verl.rollout.options import BPOConfigError

GOOD = {"data_source": "toy_math_easy", "prompt": [{"role": "user", "content": "What is 1 + 2?"}], "ability": "math",
        "reward_model": {"style": "rule", "ground_truth": "3"}, "extra_info": {"split": "train", "index": 0}}


def write_rows(path, n: int = 8, bad: dict[int, str | None] | None = None, data_source: str = "toy_math_easy"):
    rows = []
    for i in range(n):
        row = copy.deepcopy(GOOD)
        row["extra_info"]["index"] = i
        row["data_source"] = data_source
        if bad and i in bad:
            row["reward_model"]["ground_truth"] = bad[i]
        rows.append(row)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def compose(*overrides):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    with initialize_config_module("verl.trainer.config", version_base=None):
        return hydra_compose("ppo_trainer", overrides=["+recipe=r4b_bpo_cpu", *overrides], return_hydra_config=True)


def test_trainer_start_stops_at_the_bad_row_before_ray(tmp_path):
    train = write_rows(tmp_path / "train.parquet", bad={5: None})
    val = write_rows(tmp_path / "val.parquet", n=2)
    cmd = [sys.executable, "-m", "verl.trainer.main_ppo", "+recipe=r4b_bpo_cpu",
           f"actor_rollout_ref.model.path={tmp_path / 'no_model'}",
           f"data.train_files={train}", f"data.val_files={val}", "trainer.total_training_steps=1"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - start
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"[r4b-verl] ERROR: bad data rows:\n{train}: row 5: null ground truth: ground truth is null" in out
    assert "bpo.data_check=warn" in out  # the message names the switch
    assert "ray init kwargs" not in out and "Started a local Ray instance" not in out
    print(f"trainer start to refusal: {elapsed:.1f} s")  # ~40 s on the shared 2-core box, all of it imports


def test_recipe_registers_the_callback_and_the_switch(tmp_path):
    train = write_rows(tmp_path / "train.parquet", bad={2: " "})
    val = write_rows(tmp_path / "val.parquet", n=3)
    files = [f"data.train_files={train}", f"data.val_files={val}"]
    config = compose(*files)
    assert config.hydra.callbacks.r4b_data_check._target_ == "r4b_verl.data.startup.DataCheckCallback"
    assert config.bpo.data_check == "error"
    with pytest.raises(SystemExit, match=r"train\.parquet: row 2: null ground truth"):
        DataCheckCallback().on_job_start(config)

    reports = check_config_data(compose(*files, "bpo.data_check=warn"))
    assert [(r.rows, sorted(r.bad)) for r in reports] == [(8, [2]), (3, [])]
    assert check_config_data(compose(*files, "bpo.data_check=off")) == []
    with pytest.raises(BPOConfigError, match="bpo.data_check"):
        check_config_data(compose(*files, "bpo.data_check=maybe"))


def test_the_recipe_reward_routes_decide_what_is_readable(tmp_path):
    train = write_rows(tmp_path / "train.parquet", data_source="my_set")  # "3": readable by math, not by choice
    val = write_rows(tmp_path / "val.parquet", n=1)
    files = [f"data.train_files={train}", f"data.val_files={val}"]
    assert not any(r.bad for r in check_config_data(compose(*files)))
    routed = compose(*files, "+reward.custom_reward_function.reward_kwargs.routes.my_set=choice")
    with pytest.raises(DataCheckError,
                       match=r"row 0: unreadable ground truth: the choice reward cannot read the ground truth '3'"):
        check_config_data(routed)
    # another reward function than ours: only a missing ground truth is refused
    other = compose(*files, "reward.custom_reward_function.path=/somewhere/reward.py")
    assert not any(r.bad for r in check_config_data(other))


def test_missing_data_file_is_named(tmp_path):
    val = write_rows(tmp_path / "val.parquet", n=1)
    with pytest.raises(SystemExit, match=r"data.train_files: data file not found: .*nope.parquet"):
        DataCheckCallback().on_job_start(compose(f"data.train_files={tmp_path / 'nope.parquet'}",
                                                 f"data.val_files={val}"))


def test_a_bad_reward_option_value_stops_the_driver():
    from r4b_verl.data.startup import check_reward_config

    kwargs = {"default": "exactt"}
    config = {"reward": {"custom_reward_function": {"path": "pkg://r4b_verl.reward", "reward_kwargs": kwargs}}}
    with pytest.raises(ValueError, match=r"reward_kwargs\.default: unknown reward 'exactt'"):
        check_reward_config(config)
    methods = {"path": "pkg://r4b_verl.methods.rewards", "reward_kwargs": {"method": {"name": "thinkles"}}}
    with pytest.raises(ValueError, match=r"reward_kwargs\.method must be"):
        check_reward_config({"reward": {"custom_reward_function": methods}})
    check_reward_config({"reward": {"custom_reward_function": {"path": "/my/reward.py", "reward_kwargs": kwargs}}})


@pytest.mark.parametrize("override, match", [
    ("actor_rollout_ref.rollout.n=3", r"rollout\.n=3 with bpo\.think_fraction=0\.5 does not split into whole groups"),
    ("reward.custom_reward_function.reward_kwargs.default=exactt", r"unknown reward 'exactt'"),
])
def test_the_driver_refuses_before_ray(tmp_path, override, match):
    # what main_ppo's driver runs once Hydra has composed: refused in seconds, before Ray or a model
    val = write_rows(tmp_path / "val.parquet", n=1)
    config = compose(f"data.train_files={val}", f"data.val_files={val}", override)
    with pytest.raises(SystemExit, match=match):
        DataCheckCallback().on_job_start(config)
