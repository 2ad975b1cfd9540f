"""``make compare``: every method trained the same number of steps on one task from one checkpoint, side by side.

    python -m r4b_verl.methods.compare --out compare --init-model DIR --train P --val P [--steps 40] [--lr 5e-4]
        [--methods grpo,bpo,bpo_decision,adaptthink,autothink,thinkless,adagrpo] [--k 4] [-- HYDRA...]

Each method is its CPU recipe (``+recipe=r4b_<method>_cpu``) through ``verl.trainer.main_ppo``, with verl's
file logger; validation in auto mode before training, every ``steps // 4`` steps and after the last one.
``bpo`` is R-4B's BPO as published (decision token in the prompt), ``bpo_decision`` the same with
``bpo.decision_token.position=response``; ``grpo`` the plain GRPO baseline (the model chooses). AdaptThink's
``Rref(x)`` is presampled first from the starting checkpoint (``r4b_verl.methods.presample``, ``--k`` thinking
samples per prompt).
``make compare`` without ``INIT_MODEL`` first runs the demo's stage 1 (``recipes/run_demo_cpu.sh`` with
``STEPS=0``: tiny assets, bi-mode annealing on verl's SFT trainer, toy easy / hard math) and starts every
method from that checkpoint.

Writes ``OUT/<method>/{metrics.jsonl,train.log}``, ``OUT/compare.md`` (the table, also printed) and
``OUT/compare.png`` (think rate per data source, accuracy and response length over steps, per method).
The last column is each method's mean training-step time (verl's ``timing_s/step``) over BPO's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from r4b_verl.evaluate.dump import jsonl_lines

# method -> (recipe, extra overrides); the CPU overlays are sized for the demo's model and tokenizer
METHODS: dict[str, tuple[str, tuple[str, ...]]] = {
    "grpo": ("r4b_grpo_cpu", ()),
    "bpo": ("r4b_bpo_cpu", ()),
    "bpo_decision": ("r4b_bpo_cpu", ("bpo.decision_token.position=response",)),
    "adaptthink": ("r4b_adaptthink_cpu", ()),
    "autothink": ("r4b_autothink_cpu", ()),
    "thinkless": ("r4b_thinkless_cpu", ()),
    "adagrpo": ("r4b_adagrpo_cpu", ()),
}
SOURCES = ("toy_math_easy", "toy_math_hard")  # the demo's data sources


def train_command(method: str, model: str, train: str, val: str, steps: int, out: Path, overrides=(),
                  lr: float | None = None) -> list[str]:
    recipe, extra = METHODS[method]
    return [
        sys.executable, "-m", "verl.trainer.main_ppo", f"+recipe={recipe}",
        f"actor_rollout_ref.model.path={model}", f"data.train_files={train}", f"data.val_files={val}",
        f"trainer.total_training_steps={steps}",  # the recipe's total_epochs does not cut it short
        # validation before training, about four times during it, and after the last step (verl always
        # validates the last one)
        "trainer.val_before_train=true", f"trainer.test_freq={max(1, steps // 4)}",
        "trainer.save_freq=-1", f"trainer.default_local_dir={out / 'checkpoints'}",
        f"trainer.experiment_name=compare_{method}", "trainer.logger=[console,file]",
        f"+ray_kwargs.ray_init.runtime_env.env_vars.VERL_FILE_LOGGER_PATH={out / 'metrics.jsonl'}",
        *([f"actor_rollout_ref.actor.optim.lr={lr}"] if lr is not None else []), *extra, *overrides,
    ]  # fmt: skip


def run(cmd: list[str], cwd: Path, log: Path) -> float:
    """Run ``cmd`` in ``cwd``, output to ``log``; seconds taken. A failure raises naming the log."""
    cwd.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with open(log, "w") as sink:
        code = subprocess.run(cmd, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"}).returncode
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"{' '.join(cmd[2:4])} exited {code}; its output: {log}\n{tail}")
    return time.monotonic() - start


def read_metrics(path: Path) -> dict[int, dict]:
    steps: dict[int, dict] = {}
    for _, line in jsonl_lines(path):
        try:
            record = json.loads(line)
            steps.setdefault(int(record["step"]), {}).update(record["data"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            continue  # a line cut short by a killed run
    return steps


def _pooled(m: dict, what: str) -> float | None:
    """Auto-mode validation ``what`` (acc / response_length) over both chosen modes, weighted by their counts."""
    total, weight = 0.0, 0.0
    for mode in ("think", "no_think"):
        n = m.get(f"bpo/val/{mode}/count", 0.0)
        if n and f"bpo/val/{mode}/{what}/mean" in m:
            total += n * m[f"bpo/val/{mode}/{what}/mean"]
            weight += n
    return total / weight if weight else None


def series(metrics: dict[int, dict]) -> dict[str, dict[int, float]]:
    """Per validation step: think rate per source, pooled accuracy and length; and training step times."""
    out: dict[str, dict[int, float]] = {f"think_rate/{s}": {} for s in SOURCES}
    out.update({"acc": {}, "response_length": {}, "step_time_s": {}})
    for step, m in sorted(metrics.items()):
        for s in SOURCES:
            if f"bpo/val/{s}/think_rate" in m:
                out[f"think_rate/{s}"][step] = m[f"bpo/val/{s}/think_rate"]
        for what in ("acc", "response_length"):
            value = _pooled(m, what)
            if value is not None:
                out[what][step] = value
        if "timing_s/step" in m:
            out["step_time_s"][step] = m["timing_s/step"]
    return out


def _first_last(points: dict[int, float]) -> str:
    if not points:
        return "n/a"
    steps = sorted(points)
    return f"{points[steps[0]]:.2f} -> {points[steps[-1]]:.2f}"


def table(results: dict[str, dict[str, dict[int, float]]]) -> str:
    def mean_time(r):
        t = list(r["step_time_s"].values())
        return sum(t) / len(t) if t else None

    bpo_time = mean_time(results["bpo"]) if "bpo" in results else None
    head = ["method", *[f"think rate {s.removeprefix('toy_math_')}" for s in SOURCES], "accuracy", "response length",
            "step time s", "vs BPO"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method, r in results.items():
        t = mean_time(r)
        ratio = f"{t / bpo_time:.2f}x" if t and bpo_time else "n/a"
        cells = [method, *[_first_last(r[f"think_rate/{s}"]) for s in SOURCES], _first_last(r["acc"]),
                 _first_last(r["response_length"]), f"{t:.1f}" if t else "n/a", ratio]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: dict[str, dict[str, dict[int, float]]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    panels = [*(f"think_rate/{s}" for s in SOURCES), "acc", "response_length"]
    titles = [f"auto-mode think rate, {s}" for s in SOURCES] + ["validation accuracy (auto)", "response length (auto)"]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8))
    for ax, key, title in zip(axes, panels, titles, strict=True):
        for method, r in results.items():
            points = r[key]
            if points:
                steps = sorted(points)
                ax.plot(steps, [points[s] for s in steps], marker="o", label=method)
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes[:3]:
        ax.set_ylim(-0.05, 1.05)
    axes[0].legend(fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def compare(out: Path, methods: list[str], steps: int, init_model: str | None, train: str | None, val: str | None,
            k: int, overrides: list[str], lr: float | None = None) -> dict[str, dict[str, dict[int, float]]]:
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if not (init_model and train and val):  # the toy's files and checkpoint come from make compare's stage 1
        raise ValueError("--init-model, --train and --val are required (make compare without INIT_MODEL builds "
                         "the demo's stage-1 checkpoint and toy files first: recipes/run_demo_cpu.sh with STEPS=0)")
    results = {}
    for method in methods:
        work = out / method
        data = train
        if method == "adaptthink":
            from r4b_verl.methods.presample import presample

            data = str(out / "train_rref.parquet")
            if not Path(data).is_file():
                print(f"== adaptthink: presampling Rref(x), {k} thinking samples per prompt", flush=True)
                presample(init_model, train, data, k=k, recipe="r4b_bpo_cpu", overrides=overrides)
        print(f"== {method}: {steps} step(s), +recipe={METHODS[method][0]}", flush=True)
        (work / "metrics.jsonl").unlink(missing_ok=True)
        cmd = train_command(method, init_model, data, val, steps, work, overrides, lr)
        seconds = run(cmd, work / "run", work / "train.log")
        results[method] = series(read_metrics(work / "metrics.jsonl"))
        print(f"   done in {seconds:.0f} s, log {work / 'train.log'}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    from r4b_verl.evaluate.run import split_overrides

    argv, overrides = split_overrides(list(sys.argv[1:] if argv is None else argv))
    p = argparse.ArgumentParser(prog="python -m r4b_verl.methods.compare", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--init-model", help="starting checkpoint (HF directory) of every method")
    p.add_argument("--train", help="training parquet (default: the demo's)")
    p.add_argument("--val", help="validation parquet (default: the demo's)")
    p.add_argument("--steps", type=int, default=40, help="training steps per method (default 40)")
    p.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, of {','.join(METHODS)}")
    p.add_argument("--lr", type=float, help="actor learning rate of every method (default: each CPU recipe's, 1e-4)")
    p.add_argument("--k", type=int, default=4, help="AdaptThink's thinking samples per prompt for Rref (default 4)")
    args = p.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods or args.steps < 1:
        p.error(f"--methods must name some of {sorted(METHODS)} (unknown: {unknown}); --steps >= 1")
    try:
        results = compare(Path(args.out), methods, args.steps, args.init_model, args.train, args.val, args.k,
                          overrides, args.lr)
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = table(results)
    out = Path(args.out).resolve()
    (out / "compare.md").write_text(text + "\n")
    json_path = out / "compare.json"
    json_path.write_text(json.dumps(results, indent=1))
    picture = plot(results, out / "compare.png")
    print(f"\n== {args.steps} step(s) per method from the same checkpoint (first -> last validation)\n\n{text}\n")
    print(f"table      {out / 'compare.md'}\npicture    {picture}\nseries     {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
