"""One BPO training step against one GRPO step on the CPU demo config, side by side in one run.

    make bench-step             # or: python benchmarks/bench_step.py [--rounds 2 --steps 5]

Method. The tiny offline assets of ``make demo`` are built once (``python -m r4b_verl.demo``, with
random weights: ``make demo`` anneals on verl's SFT trainer first; or reused with ``--assets DIR``, e.g. a
demo's ``assets`` with ``model`` the annealed one). Then verl's
real trainer (``python -m verl.trainer.main_ppo +recipe=r4b_bpo_cpu``, as
``recipes/run_demo_cpu.sh`` runs it) trains ``--steps`` steps per run, alternately

* **BPO**: the recipe as it is (``adv_estimator=bpo``, the ``bpo_bimode`` agent loop and
  ``BPOAgentLoopManager``);
* **GRPO**: the same recipe with the BPO parts switched off: ``algorithm.adv_estimator=grpo
  actor_rollout_ref.rollout.agent.default_agent_loop=single_turn_agent
  actor_rollout_ref.rollout.agent.agent_loop_manager_class=null`` (the ``bpo:`` block stays in the
  config; it is inert without the bi-mode loop),

BPO, GRPO, BPO, GRPO, ... for ``--rounds`` rounds, so machine-load drift hits both alike. Every run
has its own directory, Ray instance and metrics file, with ``trainer.val_before_train=false
trainer.test_freq=-1`` (no validation in the step times) and verl's file logger on. The check that
the comparison is what it claims: every BPO step logs ``bpo/`` metrics, no GRPO step does.

Both methods get the same prompts, lengths and batch (4 prompts x n=4 responses, 64 prompt + 48
response tokens). The bi-mode loop appends the mode prefix to the prompt (``<think>\\n`` = 2
tokens, ``<think>\\n\\n</think>`` = 4 with the demo tokenizer), so BPO prompts are those few tokens
longer than GRPO's: inherent to BPO, shown in the table (``prompt_length/mean``). Response lengths
differ too (the model, not the harness, decides when to stop): also shown.

Measurement. ``timing_s/step`` and every other ``timing_s/*`` phase verl logs, per step, from
each run's metrics.jsonl. Step 1 of every run is dropped as warm-up (first calls, lazy
initialisation: several times a later step); the other steps of all rounds are pooled and the
table shows the median per method and the ratio BPO / GRPO. ``step - gen`` is the step without the
rollout phase. Note: verl 0.9.1's synchronous trainer collects rollouts by polling its replay
buffer every 2 s (``ReplayBuffer.poll_interval``), so ``timing_s/gen`` is quantised to about 2 s
whenever the rollout itself is faster; a cheaper or dearer rollout below that shows in
``timing_s/gen`` only when it crosses a 2 s boundary. The reward is scored by verl's reward-loop
workers during the rollout, so it is part of ``timing_s/gen`` too. ``make bench-rollout`` times
the rollout itself.

Start-up (Ray, workers, models) is most of a run's wall time (about 1 min here) and is not part of
a step; it is printed per run. Ray binds the machine's address, as in ``make demo``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GRPO_OVERRIDES = [
    "algorithm.adv_estimator=grpo",
    "actor_rollout_ref.rollout.agent.default_agent_loop=single_turn_agent",
    "actor_rollout_ref.rollout.agent.agent_loop_manager_class=null",
]
METHODS = {"BPO": [], "GRPO": GRPO_OVERRIDES}
# verl's phase order in a step; other timing_s/* keys follow, sorted.
PHASE_ORDER = ["step", "gen", "reward", "old_log_prob", "ref", "values", "adv", "update_critic", "update_actor",
               "update_weights", "testing", "save_checkpoint"]
CONTEXT_KEYS = ["prompt_length/mean", "response_length/mean", "perf/total_num_tokens"]
TAIL_LINES = 60


def python_exe() -> str:
    """$PYTHON (as the Makefile passes it) or this interpreter; relative paths made absolute, not resolved
    (resolving a venv's python symlink would leave the venv)."""
    exe = os.environ.get("PYTHON") or sys.executable
    if os.sep in exe and not os.path.isabs(exe):
        exe = os.path.join(os.getcwd(), exe)
    return exe


def tail(path: Path, n: int = TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError as exc:
        return f"(no output: {exc})"


def run_logged(cmd: list[str], cwd: Path, log: Path, timeout: float, what: str) -> float:
    """Run ``cmd`` in its own process group, output to ``log``; on failure or timeout print the tail, exit 1."""
    t0 = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)  # the group we started: the driver and its local Ray
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            rc = None
    wall = time.perf_counter() - t0
    if rc != 0:
        why = f"timed out after {timeout:.0f} s" if rc is None else f"exited with {rc}"
        print(f"\n{what} {why}. Last {TAIL_LINES} lines of {log}:\n{tail(log)}", file=sys.stderr)
        sys.exit(1)
    return wall


def read_steps(metrics: Path) -> list[dict]:
    """verl's file logger: one JSON line {"step": N, "data": {...}} per logged step."""
    rows = []
    for line in metrics.read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            rows.append({"step": rec["step"], **rec["data"]})
    return sorted(rows, key=lambda r: r["step"])


def train(py: str, assets: Path, run_dir: Path, method: str, steps: int, timeout: float, extra: list[str]) -> dict:
    run_dir.mkdir(parents=True)
    (run_dir / "cwd").mkdir()
    metrics = run_dir / "metrics.jsonl"
    cmd = [
        py, "-m", "verl.trainer.main_ppo", "+recipe=r4b_bpo_cpu",
        f"actor_rollout_ref.model.path={assets / 'model'}",
        f"data.train_files={assets / 'train.parquet'}",
        f"data.val_files={assets / 'val.parquet'}",
        f"trainer.total_training_steps={steps}",
        "trainer.val_before_train=false",
        "trainer.test_freq=-1",
        f"trainer.default_local_dir={run_dir / 'checkpoints'}",
        "trainer.logger=[console,file]",
        f"+ray_kwargs.ray_init.runtime_env.env_vars.VERL_FILE_LOGGER_PATH={metrics}",
        *METHODS[method],
        *extra,
    ]
    load0 = os.getloadavg()[0]
    wall = run_logged(cmd, run_dir / "cwd", run_dir / "train.log", timeout, f"{method} training ({run_dir})")
    if not metrics.is_file():
        print(f"{method} run wrote no {metrics}. Last lines of its output:\n{tail(run_dir / 'train.log')}",
              file=sys.stderr)
        sys.exit(1)
    rows = read_steps(metrics)
    if [r["step"] for r in rows] != list(range(1, steps + 1)):
        print(f"{method} run logged steps {[r['step'] for r in rows]}, expected 1..{steps} ({metrics})",
              file=sys.stderr)
        sys.exit(1)
    has_bpo = [any(k.startswith("bpo/") for k in r) for r in rows]
    if method == "BPO" and not all(has_bpo) or method == "GRPO" and any(has_bpo):
        print(f"{method} run: bpo/ metrics {'missing' if method == 'BPO' else 'present'} ({metrics}); "
              "the run is not the method it should be", file=sys.stderr)
        sys.exit(1)
    return {"method": method, "wall": wall, "load": (load0, os.getloadavg()[0]), "steps": rows[1:]}  # step 1: warm-up


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def fmt(v: float | None, unit: str = " s") -> str:
    return "-" if v is None else f"{v:.3f}{unit}"


def ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or not b else f"{a / b:.3f}x"


def values(runs: list[dict], method: str, key: str) -> list[float]:
    out = []
    for run in runs:
        if run["method"] == method:
            for row in run["steps"]:
                if key == "step - gen":
                    if "timing_s/step" in row and "timing_s/gen" in row:
                        out.append(row["timing_s/step"] - row["timing_s/gen"])
                elif key in row:
                    out.append(float(row[key]))
    return out


def report(runs: list[dict], args, target: float) -> None:
    keys = {k for run in runs for row in run["steps"] for k in row if k.startswith("timing_s/")}
    phases = [p for p in PHASE_ORDER if f"timing_s/{p}" in keys]
    phases += sorted(k[len("timing_s/"):] for k in keys if k[len("timing_s/"):] not in PHASE_ORDER)
    n_bpo, n_grpo = len(values(runs, "BPO", "timing_s/step")), len(values(runs, "GRPO", "timing_s/step"))

    print(f"\n{args.rounds} rounds x {args.steps} steps per method, BPO and GRPO alternating; step 1 of every run "
          f"dropped as warm-up; medians over {n_bpo} BPO and {n_grpo} GRPO steps")
    print("| phase (median) | BPO | GRPO | BPO / GRPO |")
    print("|---|---|---|---|")
    rows = [("step", "timing_s/step"), ("step - gen", "step - gen")]
    rows += [(p, f"timing_s/{p}") for p in phases if p != "step"]
    for label, key in rows:
        b, g = median(values(runs, "BPO", key)), median(values(runs, "GRPO", key))
        name = f"**{label}**" if label == "step" else label
        print(f"| {name} | {fmt(b)} | {fmt(g)} | {ratio(b, g)} |")
    for key in CONTEXT_KEYS:
        b, g = median(values(runs, "BPO", key)), median(values(runs, "GRPO", key))
        print(f"| {key} | {'-' if b is None else f'{b:.1f}'} | {'-' if g is None else f'{g:.1f}'} | {ratio(b, g)} |")

    print("\n| round | BPO step (median) | GRPO step (median) | BPO / GRPO | BPO / GRPO step - gen "
          "| run wall BPO, GRPO | load avg at start |")
    print("|---|---|---|---|---|---|---|")
    for r in range(args.rounds):
        pair = {run["method"]: run for run in runs[2 * r: 2 * r + 2]}
        b = median(values([pair["BPO"]], "BPO", "timing_s/step"))
        g = median(values([pair["GRPO"]], "GRPO", "timing_s/step"))
        bc = median(values([pair["BPO"]], "BPO", "step - gen"))
        gc = median(values([pair["GRPO"]], "GRPO", "step - gen"))
        print(f"| {r + 1} | {fmt(b)} | {fmt(g)} | {ratio(b, g)} | {ratio(bc, gc)} "
              f"| {pair['BPO']['wall']:.0f} s, {pair['GRPO']['wall']:.0f} s "
              f"| {pair['BPO']['load'][0]:.2f}, {pair['GRPO']['load'][0]:.2f} |")

    b, g = median(values(runs, "BPO", "timing_s/step")), median(values(runs, "GRPO", "timing_s/step"))
    verdict = "within" if b / g <= target else "OVER"
    print(f"\nBPO / GRPO step: {b / g:.3f}x, {verdict} the {target:.2f}x target. BPO prompts carry the 2-4 mode-prefix "
          "tokens GRPO prompts lack (prompt_length/mean above); timing_s/gen is quantised by verl's 2 s "
          "replay-buffer poll.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2, help="BPO+GRPO pairs of runs (default 2)")
    ap.add_argument("--steps", type=int, default=5, help="training steps per run, step 1 dropped (default 5)")
    ap.add_argument("--assets", type=Path,
                    help="reuse assets built by `python -m r4b_verl.demo --out DIR` (skips the build)")
    ap.add_argument("--out", type=Path, help="work directory, kept (default: a new one under $TMPDIR); must not exist")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per subprocess (default 600)")
    ap.add_argument("--target", type=float, default=1.05, help="BPO / GRPO step-time target (default 1.05)")
    ap.add_argument("overrides", nargs="*", help="extra Hydra overrides for both methods, appended last")
    args = ap.parse_args()
    if args.rounds < 1 or args.steps < 2:
        ap.error("--rounds >= 1 and --steps >= 2 (step 1 is dropped)")

    t_start = time.perf_counter()
    py = python_exe()
    if args.out is None:
        out = Path(tempfile.mkdtemp(prefix="r4b-verl-bench-step-"))
    else:
        out = args.out.absolute()
        if out.exists():
            ap.error(f"--out {out} exists; give a new directory")
        out.mkdir(parents=True)
    print(f"work dir {out}; python {py}; {os.cpu_count()} CPUs")

    if args.assets is not None:
        assets = args.assets.absolute()
        for name in ("model", "train.parquet", "val.parquet"):
            if not (assets / name).exists():
                ap.error(f"--assets {assets} has no {name}; build it with python -m r4b_verl.demo --out DIR")
        print(f"assets   {assets} (reused)")
    else:
        assets = out / "assets"
        wall = run_logged([py, "-m", "r4b_verl.demo", "--out", str(assets)],
                          out, out / "assets.log", args.timeout, "asset build")
        print(f"assets   {assets} (random weights, {wall:.0f} s)")

    runs = []
    for r in range(args.rounds):
        for method in METHODS:
            run_dir = out / f"round{r + 1}-{method.lower()}"
            print(f"round {r + 1}/{args.rounds}: {method:<4} ... ", end="", flush=True)
            run = train(py, assets, run_dir, method, args.steps, args.timeout, args.overrides)
            steps = ", ".join(f"{row['timing_s/step']:.2f}" for row in run["steps"])
            print(f"{run['wall']:.0f} s; step times after warm-up: {steps} s", flush=True)
            runs.append(run)

    report(runs, args, args.target)
    print(f"\ntotal wall time {time.perf_counter() - t_start:.0f} s; runs, logs and metrics in {out}")


if __name__ == "__main__":
    main()
