"""`make demo-mm` (recipes/run_demo_mm_cpu.sh): 2 BPO steps with an image in every prompt, through
verl 0.9.1's real trainer on CPU; and the three-mode evaluation (r4b_verl/evaluate) on such image rows.

Observed from the outside, as a user sees it: verl's file logger (metrics.jsonl), verl's rollout dump,
the evaluation report and the console. One trainer start-up per test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
N = 4  # actor_rollout_ref.rollout.n: 2 thinking + 2 non-thinking per prompt
IMAGE_TOKENS = 4  # a 56 x 56 image: 4 x 4 patches of 14, merged 2 x 2 (r4b_verl/demo/tiny_vl.py)
THINK_SUFFIX, NO_THINK_SUFFIX = "<think>\n", "<think>\n\n</think>"


def test_make_demo_mm_runs_the_demo_script():
    # `make demo-mm` is the script below with the venv's python (dry run: no install, no training)
    dry = subprocess.run(["make", "-n", "demo-mm", f"VENV={sys.prefix}"], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert dry.returncode == 0 and f"PYTHON={sys.prefix}/bin/python bash recipes/run_demo_mm_cpu.sh" in dry.stdout


def test_demo_mm_trains_both_modes_on_image_prompts(tmp_path):
    out_dir = tmp_path / "demo-mm"
    ray_tmp = tempfile.mkdtemp(prefix="r4bmm", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    env = {**os.environ, "OUT": str(out_dir), "PYTHON": sys.executable, "PYTHONUNBUFFERED": "1", "RAY_TMPDIR": ray_tmp}
    try:
        proc = subprocess.run(["bash", "recipes/run_demo_mm_cpu.sh"], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=1200)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "== summary" in proc.stdout
    # verl's multimodal data path with our dataset class and a real processor: nothing silently dropped
    assert "Using dataset class: PILImageDataset" in log
    assert "Failed to create processor" not in log
    assert "filter dataset len: 32" in log and "filter dataset len: 8" in log

    metrics = {}
    for line in (out_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        metrics.setdefault(record["step"], {}).update(record["data"])
    trained = sorted(s for s, m in metrics.items() if "actor/pg_loss" in m or "critic/advantages/max" in m)
    assert trained == [1, 2], trained
    for step in trained:
        m = metrics[step]
        assert m["bpo/think/count"] > 0 and m["bpo/no_think/count"] > 0, m
        for mode in ("think", "no_think"):  # both modes' prompts carried the image tokens
            assert m[f"bpo/{mode}/image_tokens/mean"] == IMAGE_TOKENS, (step, mode, m)
            assert m[f"bpo/{mode}/image_prompts/frac"] == 1.0, (step, mode, m)
        # rollout (hf_cpu with pixel values + 3-D positions) and actor (FSDP2 with multi_modal_inputs) agree
        assert m["training/rollout_probs_diff_valid"] == 1.0
        assert m["training/rollout_probs_diff_max"] < 1e-3, m["training/rollout_probs_diff_max"]

    # verl's rollout dump: every prompt in both forced modes, N // 2 each
    for step in trained:
        modes = defaultdict(list)
        for line in (out_dir / "rollout" / f"{step}.jsonl").read_text().splitlines():
            row = json.loads(line)
            assert "How many shapes" in row["input"]
            mode = "no_think" if row["input"].endswith(NO_THINK_SUFFIX) else "think"
            assert row["input"].endswith(THINK_SUFFIX if mode == "think" else NO_THINK_SUFFIX)
            modes[row["uid"].rsplit("_", 2)[0]].append(mode)
        assert len(modes) == 4, modes
        assert all(sorted(v) == ["no_think"] * (N // 2) + ["think"] * (N // 2) for v in modes.values()), modes



def test_evaluation_takes_the_image_rows(tmp_path):
    """r4b_verl/evaluate on the demo's image rows: every prompt in each of the 3 modes, in the report."""
    assets = tmp_path / "assets"
    subprocess.run([sys.executable, "-m", "r4b_verl.demo.multimodal", "--out", str(assets), "--n-train", "4",
                    "--n-val", "4", "--anneal-steps", "0"], check=True, capture_output=True, timeout=300)
    ray_tmp = tempfile.mkdtemp(prefix="r4bmm", dir="/tmp")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "RAY_TMPDIR": ray_tmp}
    try:
        evaluation = subprocess.run(
            [sys.executable, "-m", "r4b_verl.evaluate", "run", "--model", str(assets / "model"),
             "--data", str(assets / "val.parquet"), "--recipe", "r4b_bpo_mm_cpu", "--out", str(tmp_path / "eval"),
             "--n", "2"],  # samples per prompt and mode (the recipe's val_kwargs.n is the demo's 4)
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert evaluation.returncode == 0, evaluation.stdout[-4000:] + evaluation.stderr[-4000:]
    import pandas as pd

    report = pd.read_csv(tmp_path / "eval" / "report.csv")
    per_source = report[report["data_source"] != "all"]
    assert sorted(set(per_source["data_source"])) == ["shapes_count_easy", "shapes_count_hard"]
    assert sorted(per_source["mode"]) == sorted(["think", "no_think", "auto"] * 2)
    assert (per_source["n"] == 2 * 2).all(), per_source  # 4 validation rows, half easy, half hard; 2 samples each
