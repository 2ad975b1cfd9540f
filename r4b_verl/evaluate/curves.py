"""Training curves from verl's file logger (``trainer.logger=[...,file]``, ``VERL_FILE_LOGGER_PATH``).

The logger writes one ``{"step": N, "data": {metric: value}}`` line per log call (validation and
training metrics of a step may come in separate lines). The curves are the ``bpo/`` series
(``r4b_verl/metrics.py``); the think rate per data source comes from ``bpo/val/<source>/think_rate``
and, overall, ``bpo/val/think_rate``.

Collapse: when the auto-mode think rate is pinned at 0 or 1 for the last ``k`` validations, the model
has stopped choosing (the failure users of every auto-thinking method report); :func:`collapse_warnings`
names the data source, the value and the steps.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from r4b_verl.evaluate.dump import jsonl_lines

THINK_RATE = re.compile(r"^bpo/val/(?:(?P<source>.+)/)?think_rate$")
OVERALL = "all"


def read_curves(path: str | Path) -> tuple[dict[str, dict[int, float]], dict[str, dict[int, float]]]:
    """(every numeric ``bpo/`` series, think rate per data source) as ``{name: {step: value}}``.

    A line that is not JSON is skipped with a warning naming it (the last line of a running or killed
    run is often cut short); a file with no ``bpo/`` metric at all is refused.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics file (verl's file logger writes VERL_FILE_LOGGER_PATH)")
    curves: dict[str, dict[int, float]] = {}
    for number, line in jsonl_lines(path):
        try:
            record = json.loads(line)
            step, data = int(record["step"]), record["data"]
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            print(f"warning: {path}:{number}: not a file-logger line ({{'step': N, 'data': {{...}}}}), skipped"
                  " (cut short by a running or killed job?)", file=sys.stderr)
            continue
        for key, value in data.items():
            if key.startswith("bpo/") and isinstance(value, (int, float)) and not isinstance(value, bool):
                curves.setdefault(key, {})[step] = float(value)
    if not curves:
        raise ValueError(f"{path}: no bpo/ metrics: not the log of a BPO run (+recipe=r4b_bpo with the file logger)")
    think_rates = {}
    for key, points in curves.items():
        match = THINK_RATE.match(key)
        if match:
            think_rates[match.group("source") or OVERALL] = points
    return curves, think_rates


def collapse_warnings(think_rates: dict[str, dict[int, float]], k: int = 3) -> list[str]:
    """One line per data source whose think rate was 0 (or 1) at each of its last ``k`` validations."""
    lines = []
    for source, points in sorted(think_rates.items()):
        steps = sorted(points)[-k:]
        if len(steps) < k:
            continue
        values = {points[s] for s in steps}
        for pinned, mode in ((0.0, "never thinks"), (1.0, "always thinks")):
            if values == {pinned}:
                lines.append(f"WARNING: collapse: the auto-mode think rate of {source} is {pinned:g} at the last {k} "
                             f"validations (steps {steps[0]}-{steps[-1]}): the model {mode} and no longer chooses")
    return lines
