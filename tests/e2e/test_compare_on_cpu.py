"""``make compare`` on a reduced setting: every method's CPU recipe trains ONE step through verl's real trainer
from the demo's stage-1 checkpoint (AdaptThink after its presampling run), and compare prints its table and picture.

The checkpoint and the toy files are the suite's one demo run (the ``demo`` fixture of tests/conftest.py), given
as ``INIT_MODEL`` / ``TRAIN`` / ``VAL``; without them ``make compare`` runs that stage 1 itself (the demo script
with ``STEPS=0``, which the demo run covers). This is also the one-step training test of each recipe
(+recipe=r4b_<method>_cpu). Slow by design: eight trainer start-ups (presampling + seven methods).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from r4b_verl.methods.compare import METHODS, read_metrics
from r4b_verl.think import REF_ACC_KEY

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(3600)  # eight trainer start-ups: above the suite's per-test default
FREE_CHOICE = ("grpo", "autothink", "thinkless", "adagrpo")


@pytest.fixture(scope="module")
def compared(demo, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    step = (demo.out / "anneal" / "latest_checkpointed_iteration.txt").read_text().strip()
    stage1 = demo.out / "anneal" / f"global_step_{step}" / "huggingface"
    assets = demo.out / "assets"
    cmd = ["make", f"PY={sys.executable}", "INSTALLED=", "compare", f"COMPARE_OUT={out}", "COMPARE_STEPS=1",
           f"INIT_MODEL={stage1}", f"TRAIN={assets / 'train.parquet'}", f"VAL={assets / 'val.parquet'}"]
    log = out / "make.log"
    with open(log, "w") as sink:
        code = subprocess.run(cmd, cwd=REPO, stdout=sink, stderr=subprocess.STDOUT, timeout=3600).returncode
    printed = log.read_text(errors="replace")
    assert code == 0, printed[-4000:]
    return out, printed


def test_every_recipe_trains_one_step(compared):
    out, _ = compared
    for method, (recipe, _) in METHODS.items():
        metrics = read_metrics(out / method / "metrics.jsonl")
        assert sorted(s for s, m in metrics.items() if "training/global_step" in m) == [1], method
        step = metrics[1]
        assert "critic/advantages/max" in step and step["actor/grad_norm"] == step["actor/grad_norm"], method
        log = (out / method / "train.log").read_text(errors="replace")
        estimator = {"adaptthink": "adaptthink", "autothink": "autothink", "adagrpo": "ada_grpo"}.get(
            method, "bpo" if method.startswith("bpo") else "grpo")
        assert f"'adv_estimator': '{estimator}'" in log, (method, recipe)
        if method in FREE_CHOICE:  # the model chose: counted under the mode it took, with a think rate
            assert 0.0 <= step["bpo/train/think_rate"] <= 1.0, method
        else:  # forced: both modes in every step
            assert step["bpo/think/count"] > 0 and step["bpo/no_think/count"] > 0, method
        for s in (0, 1):  # validation before and after the step, per data source
            assert 0.0 <= metrics[s]["bpo/val/toy_math_hard/think_rate"] <= 1.0, (method, s)


def test_adaptthink_presampled_rref(compared, demo):
    out, _ = compared
    rows = pd.read_parquet(out / "train_rref.parquet")
    ref = [e[REF_ACC_KEY] for e in rows["extra_info"]]
    assert len(ref) == len(pd.read_parquet(demo.out / "assets" / "train.parquet"))
    assert all(0.0 <= r <= 1.0 for r in ref)
    k = 4  # compare's default --k: every Rref is a multiple of 1/k
    assert all(abs(r * k - round(r * k)) < 1e-9 for r in ref)


def test_table_and_picture(compared):
    out, printed = compared
    table = (out / "compare.md").read_text()
    assert table in printed and str(out / "compare.png") in printed
    lines = table.strip().splitlines()
    assert [line.split("|")[1].strip() for line in lines[2:]] == list(METHODS)
    series = json.loads((out / "compare.json").read_text())
    for method in METHODS:  # the table's cells are the first and last validation of the series
        rate = series[method]["think_rate/toy_math_hard"]
        row = next(line for line in lines if line.split("|")[1].strip() == method)
        assert f"{rate['0']:.2f} -> {rate['1']:.2f}" in row
    assert "1.00x" in next(line for line in lines if line.split("|")[1].strip() == "bpo")
    assert (out / "compare.png").stat().st_size > 10_000
