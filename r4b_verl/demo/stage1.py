"""What stage 1 gave the demo's model: ``python -m r4b_verl.demo.stage1 SFT_METRICS.jsonl VAL_DUMP.jsonl``.

Prints the annealing SFT's ``train/loss`` (first and last step, from verl's file logger of the SFT run)
and, from the validation dump of stage 2's validation before training (``bpo.val_mode=all``,
``trainer.validation_data_dir``: the stage-1 model, sampled), per toy level: the accuracy forced into
thinking, forced not to think, and in auto mode with its thinking-trigger rate. Thinking pays on a
level when forced-think accuracy is above forced-no-think accuracy there (the demo's hard level).
``--json`` also writes these numbers (tests read them).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from r4b_verl.evaluate.dump import DumpError, read_dump
from r4b_verl.evaluate.report import build_report
from r4b_verl.think import AUTO, NO_THINK, THINK


def sft_losses(path: str | Path) -> list[tuple[int, float]]:
    """``[(step, train/loss)]`` from verl's file-logger JSONL of an SFT run."""
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return [(int(r["step"]), float(r["data"]["train/loss"])) for r in rows if "train/loss" in r.get("data", {})]


def forced_table(dump: str | Path) -> dict[str, dict[str, float]]:
    """``{data_source: {think_acc, no_think_acc, auto_acc, auto_think_rate, n}}`` of one validation dump."""
    table: dict[str, dict[str, float]] = {}
    for row in build_report(read_dump(dump)):
        cell = table.setdefault(row["data_source"], {})
        cell[f"{row['mode']}_acc"] = row["accuracy"]
        cell[f"{row['mode']}_n"] = row["n"]
        if row["mode"] == AUTO:
            cell["auto_think_rate"] = row["think_rate"]
    return table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m r4b_verl.demo.stage1", description=__doc__.splitlines()[0])
    ap.add_argument("sft_metrics", type=Path, help="the SFT run's VERL_FILE_LOGGER_PATH JSONL")
    ap.add_argument("dump", type=Path, help="stage 2's validation dump before training (<validation_data_dir>/0.jsonl)")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args(argv)
    try:
        losses = sft_losses(args.sft_metrics)
        table = forced_table(args.dump)
    except (OSError, DumpError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if losses:
        print(f"stage 1: {losses[-1][0]} SFT steps, train/loss {losses[0][1]:.3f} (step {losses[0][0]}) "
              f"-> {losses[-1][1]:.3f}")
    n = next(iter(table.values())).get(f"{THINK}_n", 0)
    print(f"stage-1 model, sampled validation ({n} responses per level and mode):")
    print(f"  {'level':<16} {'forced think acc':>16} {'forced no_think acc':>19} {'auto acc':>9} "
          f"{'auto think rate':>15}")
    for source, cell in table.items():
        print(f"  {source:<16} {cell.get(f'{THINK}_acc', float('nan')):>16.3f} "
              f"{cell.get(f'{NO_THINK}_acc', float('nan')):>19.3f} "
              f"{cell.get(f'{AUTO}_acc', float('nan')):>9.3f} {cell.get('auto_think_rate', float('nan')):>15.3f}")
    if args.json:
        args.json.write_text(json.dumps({"sft_loss": losses, "levels": table}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
