"""``python -m r4b_verl.evaluate``: evaluate in three modes, report a dump, draw a run's training curves.

    python -m r4b_verl.evaluate run --model MODEL --data VAL.parquet [--out DIR] [--recipe r4b_bpo_cpu]
                                    [--checkpoint .../global_step_N] [--n N] [-- HYDRA_OVERRIDES...]
    python -m r4b_verl.evaluate report DUMP.jsonl|GENERATIONS_DIR [--out DIR] [--source NAME ...]
    python -m r4b_verl.evaluate curves METRICS.jsonl [--out DIR] [--collapse-k 3]

``run`` = verl's validation of the model in all three modes (``run.py``), then ``report`` on its dump.
Every command prints the paths of what it wrote.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from r4b_verl.evaluate.curves import collapse_warnings, read_curves
from r4b_verl.evaluate.dump import DumpError, newest_dump, read_dump
from r4b_verl.evaluate.plots import evaluation_plots, training_plots
from r4b_verl.evaluate.report import build_report, markdown, write_report


def report(dump: Path, out: Path | None, sources: list[str] | None) -> int:
    dump = newest_dump(dump) if dump.is_dir() else dump
    out = out or dump.parent
    rows = build_report(read_dump(dump), sources)
    print(f"\n== three-mode report of {dump}\n")
    print(markdown(rows))
    for name, path in {**write_report(rows, out), **evaluation_plots(rows, out)}.items():
        print(f"{name:<16} {path}")
    return 0


def curves(metrics: Path, out: Path | None, k: int) -> int:
    series, think_rates = read_curves(metrics)
    path = training_plots(series, think_rates, out or metrics.parent)
    for line in collapse_warnings(think_rates, k):
        print(line)
    print(f"training curves  {path}")
    return 0


def run(args, overrides: list[str]) -> int:
    from r4b_verl.evaluate.run import eval_command, run_validation

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    cmd = eval_command(args.model, args.data, out, args.recipe, args.n, args.checkpoint, overrides=tuple(overrides))
    print("== evaluation:", " ".join(cmd), flush=True)
    if args.dry_run:
        return 0
    from r4b_verl.preflight import PreflightError

    try:
        code = run_validation(cmd, out, "eval.log")
    except PreflightError as exc:
        print(f"[r4b-verl eval] the preflight refused the evaluation command: {exc}", file=sys.stderr)
        return 1
    if code != 0:
        print(f"[r4b-verl eval] the evaluation run failed (exit {code}); its output: {out / 'eval.log'}",
              file=sys.stderr)
        return code
    return report(out / "generations", out, None)


def main(argv: list[str] | None = None) -> int:
    from r4b_verl.evaluate.run import split_overrides

    argv, overrides = split_overrides(list(sys.argv[1:] if argv is None else argv))
    parser = argparse.ArgumentParser(prog="python -m r4b_verl.evaluate", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="evaluate a model in think, no_think and auto mode with verl's validation")
    p.add_argument("--model", required=True, help="HF model path (actor_rollout_ref.model.path)")
    p.add_argument("--data", required=True, help="evaluation parquet file(s), as data.val_files takes them")
    p.add_argument("--out", default="eval", help="output directory (default ./eval)")
    p.add_argument("--recipe", default="r4b_bpo", help="+recipe= (r4b_bpo on GPUs, r4b_bpo_cpu on CPU)")
    p.add_argument("--checkpoint", help="a verl checkpoint (.../global_step_N) to evaluate instead of the HF weights")
    p.add_argument("--n", type=int, help="samples per prompt and mode (actor_rollout_ref.rollout.val_kwargs.n)")
    p.add_argument("--dry-run", action="store_true", help="print the command only")
    p = sub.add_parser("report", help="the three-mode table, CSV, markdown and plots of a validation dump")
    p.add_argument("dump", type=Path, help="a <step>.jsonl dump, or the validation_data_dir (its newest step)")
    p.add_argument("--out", type=Path, help="output directory (default: next to the dump)")
    p.add_argument("--source", action="append", help="only this data source (repeatable)")
    p = sub.add_parser("curves", help="training curves from verl's file-logger JSONL of a run")
    p.add_argument("metrics", type=Path, help="the run's metrics JSONL (VERL_FILE_LOGGER_PATH)")
    p.add_argument("--out", type=Path, help="output directory (default: next to the metrics)")
    p.add_argument("--collapse-k", type=int, default=3, help="validations a pinned think rate must last to warn")
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return run(args, overrides)
        if args.command == "report":
            return report(args.dump, args.out, args.source)
        return curves(args.metrics, args.out, args.collapse_k)
    except (DumpError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
