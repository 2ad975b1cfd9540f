"""The three-mode report of one evaluation: per data source and mode, what thinking costs and buys.

Per data source (and ``all``), per mode the prompts were given (think, no_think, auto):

- ``n``: responses; ``accuracy``: mean ``acc`` (the reward's, else its score);
- ``tokens_mean``, ``tokens_p50``, ``tokens_p90``: response tokens (numpy's linear percentiles);
- auto rows only: ``think_rate`` (share of auto responses that thought, R-4B's thinking-trigger rate);
  ``hybrid_accuracy``: the share of auto responses whose chosen mode did at least as well on that prompt
  as the other mode (per-prompt accuracy of the forced think and no_think responses; prompts missing a
  forced mode are left out, ties count as a good choice); ``tokens_saved``: mean forced-think tokens
  minus mean auto tokens, and ``tokens_saved_pct`` that as a share of the forced-think mean.

Every number is recomputable from the dump's lines (``tests/evaluate`` does it).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from r4b_verl.evaluate.dump import Response
from r4b_verl.think import AUTO, MODES, NO_THINK, THINK

ALL = "all"
COLUMNS = ("data_source", "mode", "n", "accuracy", "tokens_mean", "tokens_p50", "tokens_p90",
           "think_rate", "hybrid_accuracy", "tokens_saved", "tokens_saved_pct")


def _hybrid(responses: list[Response]) -> float | None:
    per_prompt: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in responses:
        per_prompt[r.prompt][r.mode].append(r.acc)
    good = []
    for r in responses:
        accs = per_prompt[r.prompt]
        if r.mode != AUTO or not accs[THINK] or not accs[NO_THINK]:
            continue
        chosen, other = (THINK, NO_THINK) if r.thinks else (NO_THINK, THINK)
        good.append(float(np.mean(accs[chosen]) >= np.mean(accs[other])))
    return float(np.mean(good)) if good else None


def _rows_for(source: str, responses: list[Response]) -> list[dict]:
    by_mode = {m: [r for r in responses if r.mode == m] for m in MODES}
    rows = []
    for mode in MODES:
        rs = by_mode[mode]
        if not rs:
            continue
        tokens = np.asarray([r.tokens for r in rs], dtype=float)
        row = {"data_source": source, "mode": mode, "n": len(rs), "accuracy": float(np.mean([r.acc for r in rs])),
               "tokens_mean": float(tokens.mean()), "tokens_p50": float(np.percentile(tokens, 50)),
               "tokens_p90": float(np.percentile(tokens, 90)),
               "think_rate": None, "hybrid_accuracy": None, "tokens_saved": None, "tokens_saved_pct": None}
        if mode == AUTO:
            row["think_rate"] = float(np.mean([r.thinks for r in rs]))
            row["hybrid_accuracy"] = _hybrid(responses)
            if by_mode[THINK]:
                think_mean = float(np.mean([r.tokens for r in by_mode[THINK]]))
                row["tokens_saved"] = think_mean - row["tokens_mean"]
                row["tokens_saved_pct"] = 100.0 * row["tokens_saved"] / think_mean if think_mean else None
        rows.append(row)
    return rows


def build_report(responses: Iterable[Response], sources: list[str] | None = None) -> list[dict]:
    """Report rows (``COLUMNS``) per data source, then ``all``; ``sources`` keeps only those (each must exist)."""
    responses = list(responses)
    present = sorted({r.data_source for r in responses})
    if sources:
        unknown = [s for s in sources if s not in present]
        if unknown:
            raise ValueError(f"data source(s) {unknown} are not in the dump; it has {present}")
        responses = [r for r in responses if r.data_source in sources]
        present = [s for s in present if s in sources]
    rows = []
    for source in present:
        rows += _rows_for(source, [r for r in responses if r.data_source == source])
    if len(present) > 1:
        rows += _rows_for(ALL, responses)
    return rows


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def markdown(rows: list[dict]) -> str:
    head = "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n"
    return head + "".join("| " + " | ".join(_cell(row[c]) for c in COLUMNS) + " |\n" for row in rows)


def write_report(rows: list[dict], out_dir: str | Path) -> dict[str, Path]:
    """``report.md`` and ``report.csv`` in ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "report.md", "csv": out / "report.csv"}
    paths["markdown"].write_text(markdown(rows))
    with open(paths["csv"], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({c: ("" if row[c] is None else row[c]) for c in COLUMNS} for row in rows)
    return paths
