"""One-screen table of a run's key metrics: ``python -m r4b_verl.backends.cpu.summary METRICS.jsonl``.

Reads the JSON lines verl's ``file`` logger writes (``trainer.logger=[console,file]``, path from
``VERL_FILE_LOGGER_PATH``) and prints, per step, the numbers a BPO user watches (see
``r4b_verl/backends/cpu/README.md``). ``make demo`` prints it at the end of the run.
"""

from __future__ import annotations

import fnmatch
import json
import math
import sys
from pathlib import Path

# (column title, metric key or fnmatch pattern; a pattern shows the mean over its matches)
COLUMNS = (
    ("think rate", "bpo/val/think_rate"),
    ("easy", "bpo/val/*easy/think_rate"),
    ("hard", "bpo/val/*hard/think_rate"),
    ("val acc", "val-core/*/acc/mean@*"),
    ("reward", "critic/score/mean"),
    ("think R", "bpo/think/reward/mean"),
    ("no_think R", "bpo/no_think/reward/mean"),
    ("gap", "bpo/reward_gap/mean"),
    ("len", "response_length/mean"),
    ("grad norm", "actor/grad_norm"),
    ("kl loss", "actor/kl_loss"),
    ("probs diff", "training/rollout_probs_diff_max"),
)


def read_metrics(path: str) -> dict[int, dict[str, float]]:
    """``{step: {key: value}}``; later lines for a step update earlier ones."""
    steps: dict[int, dict[str, float]] = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                row = json.loads(line)
                steps.setdefault(int(row["step"]), {}).update(row["data"])
    return steps


def _lookup(metrics: dict[str, float], pattern: str):
    if pattern in metrics:
        return metrics[pattern]
    values = [float(v) for k, v in metrics.items() if fnmatch.fnmatchcase(k, pattern)]
    return sum(values) / len(values) if values else None  # mean over data sources


def _fmt(value) -> str:
    if value is None:
        return "-"
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(value):
        return "nan"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e4):
        return f"{value:.1e}"
    return f"{value:.3f}"


def format_table(steps: dict[int, dict[str, float]]) -> str:
    titles = ["step"] + [title for title, _ in COLUMNS]
    rows = [[str(step)] + [_fmt(_lookup(steps[step], key)) for _, key in COLUMNS] for step in sorted(steps)]
    widths = [max(len(r[i]) for r in [titles] + rows) for i in range(len(titles))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(r, widths, strict=True)) for r in [titles] + rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    usage = "usage: python -m r4b_verl.backends.cpu.summary METRICS.jsonl   (verl's file-logger JSONL of a run)"
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print(usage, file=sys.stdout if argv in (["-h"], ["--help"]) else sys.stderr)
        return 0 if argv in (["-h"], ["--help"]) else 2
    if not Path(argv[0]).is_file():
        print(f"no such file: {argv[0]}\n{usage}", file=sys.stderr)
        return 2
    print(format_table(read_metrics(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
