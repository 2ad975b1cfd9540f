"""End to end on CPU: verl 0.9.1's real trainers, as ``make demo`` runs them.

The suite's one demo run (the ``demo`` fixture of tests/conftest.py: ``make demo`` in a fresh clone, or the
one ``.ci/run`` made): assets, annealing data, stage 1 on verl's SFT trainer (``+recipe=r4b_anneal_cpu``),
then ``STEPS`` BPO steps with ``+recipe=r4b_bpo_cpu`` from the stage-1 HF checkpoint (validation first, in
all three modes), a checkpoint at the last step; then a second process that resumes from a copy of it for
one more step, and ``make eval`` on it. Everything is observed from the outside, the way a user sees it:
verl's ``file`` logger (``VERL_FILE_LOGGER_PATH``), verl's rollout dump (``trainer.rollout_data_dir``), the
checkpoint directory and the console log.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from r4b_verl.reward import compute_score

PYTHON = sys.executable
N = 4  # actor_rollout_ref.rollout.n in the CPU overlay: 2 thinking + 2 non-thinking per prompt
# Prefixes of the default bpo.prefix_preset "r4b" (r4b_verl/rollout/prefixes.py), as they end the
# decoded prompt in verl's rollout dump (think tags are non-special tokens, so decoding keeps them).
THINK_SUFFIX, NO_THINK_SUFFIX = "<think>\n", "<think>\n\n</think>"
RUN_TIMEOUT_S = 900
REPO = Path(__file__).resolve().parents[2]
TOY_ROUTES = {"toy_math_*": "math"}  # reward_kwargs.routes of the CPU overlay


def _run(cmd: list[str], cwd: Path, log: Path, timeout: int = RUN_TIMEOUT_S,
         **env_vars: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1", **env_vars)
    with open(log, "w") as out:
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-80:])
        pytest.fail(f"{' '.join(cmd[:4])} ... exited {proc.returncode}; last lines of {log}:\n{tail}")
    return proc


def _read_metrics(path: Path) -> dict[int, dict]:
    steps: dict[int, dict] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            steps.setdefault(int(row["step"]), {}).update(row["data"])
    return steps


def _train(root: Path, assets: Path, model: Path, name: str, steps: int, *extra: str):
    workdir = root / name
    workdir.mkdir()
    metrics = root / f"{name}.metrics.jsonl"
    log = root / f"{name}.log"
    cmd = [
        PYTHON, "-m", "verl.trainer.main_ppo", "+recipe=r4b_bpo_cpu",
        f"actor_rollout_ref.model.path={model}",
        f"data.train_files={assets / 'train.parquet'}",
        f"data.val_files={assets / 'val.parquet'}",
        f"trainer.total_training_steps={steps}",
        "trainer.save_freq=2",
        f"trainer.default_local_dir={root / 'checkpoints'}",
        f"trainer.rollout_data_dir={root / name / 'rollouts'}",
        "trainer.logger=[console,file]",
        f"+ray_kwargs.ray_init.runtime_env.env_vars.VERL_FILE_LOGGER_PATH={metrics}",
        *extra,
    ]  # fmt: skip
    _run(cmd, cwd=workdir, log=log)
    return _read_metrics(metrics), log.read_text(errors="replace"), workdir


@pytest.fixture(scope="module")
def runs(demo, tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e_cpu")
    out, steps = demo.out, demo.steps
    # the demo's stage 2 is the first BPO run: STEPS steps, checkpoint at STEPS (save_freq = STEPS); the
    # resumed run and make eval work on a copy, so the shared demo output stays as the demo left it
    shutil.copytree(out / "checkpoints", root / "checkpoints")
    step = (out / "anneal" / "latest_checkpointed_iteration.txt").read_text().strip()
    model = out / "anneal" / f"global_step_{step}" / "huggingface"
    first = (_read_metrics(out / "metrics.jsonl"), demo.stdout, out)
    resumed = _train(root, out / "assets", model, "resumed", steps + 1, "trainer.val_before_train=false")
    return {"root": root, "demo": out, "assets": out / "assets", "model": model, "first": first, "resumed": resumed,
            "steps": steps, "anneal_steps": int(step)}


def test_stage_one_anneals_on_verl_and_stage_two_starts_from_it(runs):
    demo, model = runs["demo"], runs["model"]
    losses = [m["train/loss"] for _, m in sorted(_read_metrics(demo / "anneal_metrics.jsonl").items())
              if "train/loss" in m]
    assert len(losses) == runs["anneal_steps"] and all(x == x for x in losses)
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 1.0, f"stage-1 train/loss did not fall: {losses[:5]} ... {losses[-5:]}"
    assert (model / "config.json").is_file() and (model / "tokenizer_config.json").is_file()
    log = runs["first"][1]
    assert f"annealed model: {model}" in log and f"'path': '{model}'" in log  # stage 2's actor config names it


def _train_steps(metrics: dict[int, dict]) -> list[int]:
    return sorted(s for s, m in metrics.items() if "training/global_step" in m)


def test_trains_two_steps_with_bpo(runs):
    metrics, log, _ = runs["first"]
    assert _train_steps(metrics) == list(range(1, runs["steps"] + 1))
    assert "'adv_estimator': 'bpo'" in log, "the trainer did not run with algorithm.adv_estimator=bpo"
    assert "'name': 'hf_cpu'" in log
    for step in _train_steps(metrics):
        assert "critic/advantages/max" in metrics[step]


def test_rollout_and_actor_log_probs_agree(runs):
    for name in ("first", "resumed"):
        metrics = runs[name][0]
        for step in _train_steps(metrics):
            m = metrics[step]
            assert m["training/rollout_probs_diff_valid"] == 1.0, (name, step)
            assert m["training/rollout_probs_diff_max"] < 1e-3, (name, step, m["training/rollout_probs_diff_max"])


def test_actor_gets_a_gradient(runs):
    steps = [m for name in ("first", "resumed") for m in runs[name][0].values()]
    norms = [m["actor/grad_norm"] for m in steps if "actor/grad_norm" in m]
    assert len(norms) == runs["steps"] + 1
    assert all(n == n and n < float("inf") for n in norms), norms
    assert max(norms) > 0.0, f"actor grad norm is zero at every step: {norms}"


def test_bpo_metrics_logged(runs):
    metrics = runs["first"][0]
    for step in _train_steps(metrics):
        bpo = {k: v for k, v in metrics[step].items() if k.startswith("bpo/") and not k.startswith("bpo/val/")}
        assert bpo, f"no bpo/ training metrics at step {step}"
        assert bpo["bpo/think/count"] > 0 and bpo["bpo/no_think/count"] > 0, bpo
    val = metrics[0]  # validation before training, auto mode
    assert 0.0 <= val["bpo/val/think_rate"] <= 1.0
    for source in ("toy_math_easy", "toy_math_hard"):  # thinking-trigger rate per data source
        assert 0.0 <= val[f"bpo/val/{source}/think_rate"] <= 1.0


def test_both_modes_for_every_prompt(runs):
    _, _, workdir = runs["first"]
    dumps = sorted((workdir / "rollouts").glob("*.jsonl"))
    assert [p.stem for p in dumps] == [str(s) for s in range(1, runs["steps"] + 1)]
    scored = {"think": 0, "no_think": 0, "right": 0}
    for dump in dumps:
        groups: dict[str, list[str]] = defaultdict(list)
        for line in dump.read_text().splitlines():
            row = json.loads(line)
            prompt = row["input"]
            mode = "no_think" if prompt.endswith(NO_THINK_SUFFIX) else "think" if prompt.endswith(THINK_SUFFIX) else "?"
            groups[row["uid"].rsplit("_", 2)[0]].append(mode)
            # The recipe's reward (compute_score_async, awaited by verl's reward loop) scored the row
            # as our reward does with the mode the rollout put in extra_info.
            expected = compute_score("toy_math", row["output"], row["gts"], {"bpo_mode": mode}, routes=TOY_ROUTES)
            assert row["score"] == expected["score"], (dump, mode, row["output"][-200:], row["gts"])
            scored[mode] += 1
            scored["right"] += row["score"] == 1.0
        assert len(groups) == 4, f"{dump}: expected 4 prompts (data.train_batch_size), got {len(groups)}"
        for uid, modes in groups.items():
            assert sorted(modes) == ["no_think"] * (N // 2) + ["think"] * (N // 2), f"{dump} prompt {uid}: {modes}"
    assert scored["think"] > 0 and scored["no_think"] > 0 and scored["right"] > 0, scored


def test_checkpoint_saved_and_resumed(runs):
    ckpt, last = runs["root"] / "checkpoints", runs["steps"]
    assert (runs["demo"] / "checkpoints" / f"global_step_{last}" / "actor").is_dir()
    metrics, log, _ = runs["resumed"]
    assert "Resuming from" in log and f"global_step_{last}" in log, f"the second run did not resume from step {last}"
    assert _train_steps(metrics) == [last + 1], f"resumed run trained {_train_steps(metrics)}, expected [{last + 1}]"
    assert (ckpt / "latest_checkpointed_iteration.txt").read_text().strip() in {str(last), str(last + 1)}


def test_make_eval_on_the_checkpoint_reports_all_three_modes(runs, report_matches):
    # the README's evaluation of a trained checkpoint: verl's val_only validation with bpo.val_mode=all
    root, assets, last = runs["root"], runs["assets"], runs["steps"]
    out = root / "eval"
    repo = Path(__file__).resolve().parents[2]
    cmd = ["make", "eval", f"JOB_PYTHON={PYTHON}", "RECIPE=r4b_bpo_cpu", f"MODEL={runs['model']}",
           f"DATA={assets / 'val.parquet'}", f"CHECKPOINT={root / 'checkpoints' / f'global_step_{last}'}",
           f"EVAL_OUT={out}"]
    proc = _run(cmd, cwd=repo, log=root / "eval.log")
    printed = (root / "eval.log").read_text(errors="replace")
    assert proc.returncode == 0 and "== three-mode report of" in printed
    assert "Resuming from" in printed and f"global_step_{last}" in printed  # the checkpoint's weights, not the HF ones

    dump = out / "generations" / f"{last}.jsonl"  # verl names the dump by the resumed global step
    lines = [json.loads(line) for line in dump.read_text().splitlines()]
    n_prompts, n_samples = 16, 4  # val.parquet of the demo assets; val_kwargs.n of r4b_bpo_cpu (sampled validation)
    suffix = {"think": THINK_SUFFIX, "no_think": NO_THINK_SUFFIX, "auto": "<think>"}
    for mode in ("think", "no_think", "auto"):
        rows = [line for line in lines if line["bpo_mode"] == mode]
        assert len(rows) == n_prompts * n_samples, (mode, len(rows))
        assert all(line["input"].endswith(suffix[mode]) for line in rows)  # forced modes really forced
        assert len({line["uid"].rsplit("_", 2)[0] for line in rows}) == n_prompts  # every prompt in every mode
    report_matches(out / "report.csv", lines)
    for name in ("report.md", "tokens_per_mode.png", "think_rate.png"):
        assert str(out / name) in printed
    metrics = _read_metrics(out / "metrics.jsonl")
    assert metrics[last]["bpo/val/forced/think/count"] == n_prompts * n_samples
    assert "bpo/val/think_rate" in metrics[last]
