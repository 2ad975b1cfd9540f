"""`make demo`, the README's first command, exactly as a user types it in a fresh clone: it installs, then runs.

One run carries every check (the `demo` fixture, tests/conftest.py, shared with the other end-to-end
tests): the install into `.venv` and that the next command finds it up to date; verl's SFT trainer
anneals the random model (its loss falls), stage 2 trains from the stage-1 HF checkpoint, the annealed
model's auto-mode think rate follows its labels (hard questions thought about more often than easy ones),
and thinking pays on hard questions (forced thinking more accurate than forced direct answers there).
"""

import json
import subprocess


def test_make_demo_on_a_fresh_clone_installs_first(demo):
    checkout = demo.checkout
    assert (checkout / ".venv" / "bin" / "python").exists() and (checkout / ".venv" / ".r4b-verl-installed").exists()
    # the second command finds the install up to date: no pip, straight to pytest
    dry = subprocess.run(["make", "-n", "test"], cwd=checkout, env=demo.env, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0 and "pip" not in dry.stdout and "pytest" in dry.stdout, dry.stdout


def test_make_demo_trains_and_prints_the_summary(demo):
    out, stdout = demo.out, demo.stdout
    assert "== stage 2 (BPO) summary" in stdout
    assert "bpo/" in stdout  # verl's console line carries the bpo/ metrics
    assert (out / "metrics.jsonl").stat().st_size > 0
    # it ends with the training curves next to the metrics, their path printed, and how to evaluate
    curves = out / "training_curves.png"
    assert f"training curves  {curves}" in stdout
    from PIL import Image

    assert Image.open(curves).size == (1200, 720)
    steps = sorted(int(p.name.split("_")[-1]) for p in (out / "checkpoints").glob("global_step_*"))
    last = out / "checkpoints" / f"global_step_{steps[-1]}"
    assert "make eval" in stdout and f"CHECKPOINT={last}" in stdout

    # both stages in the summary; stage 2 started from stage 1's HF export
    step = (out / "anneal" / "latest_checkpointed_iteration.txt").read_text().strip()
    annealed = out / "anneal" / f"global_step_{step}" / "huggingface"
    assert f"annealed model: {annealed}" in stdout
    assert "== stage 1 (bi-mode annealing SFT) summary" in stdout
    stage1 = json.loads((out / "stage1.json").read_text())
    losses = [loss for _, loss in stage1["sft_loss"]]
    assert len(losses) == int(step) and losses[-1] < losses[0] - 1.0, losses[:3] + losses[-3:]
    # stage 2 validated the annealed model before training, in the three modes, sampled
    levels = stage1["levels"]
    easy, hard = levels["toy_math_easy"], levels["toy_math_hard"]
    assert easy["think_n"] == easy["no_think_n"] == easy["auto_n"] == 32  # 8 prompts x val_kwargs.n=4
    # stage 1 moved the auto-mode choice in the direction of its labels (easy: direct, hard: reasoning)
    # (annealed on 5/6 direct samples for easy questions, 5/6 thinking ones for hard: r4b_verl/backends/cpu/README.md)
    assert hard["auto_think_rate"] > easy["auto_think_rate"] + 0.3, levels
    # and to use the think block: on hard questions forced thinking beats forced direct answers (measured
    # 0.28 vs 0.03 at the default 600 SFT steps; the strict order alone fails about once in 600 runs)
    assert hard["think_acc"] > hard["no_think_acc"], levels
