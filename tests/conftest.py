"""Shared by the tests that need what a fresh clone of this checkout holds."""

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def copy_checkout(dest: Path) -> Path:
    """Copy the files a clone of this checkout has (tracked and new, not ignored) into ``dest``."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, listed):
        if (REPO / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    return dest


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A fresh copy of the checkout (no .venv, no build artefacts), shared by a module's tests."""
    return copy_checkout(tmp_path_factory.mktemp("clone") / "r4b-verl")


def _recompute_report(lines: list[dict]) -> dict[tuple[str, str], dict]:
    """The evaluation report's numbers, recomputed straight from dump lines (independent of r4b_verl.evaluate)."""
    import statistics
    from collections import defaultdict

    sources = sorted({line["bpo_data_source"] for line in lines})
    groups = [(s, [line for line in lines if line["bpo_data_source"] == s]) for s in sources]
    if len(sources) > 1:
        groups.append(("all", lines))
    table = {}
    for source, rows in groups:
        per_prompt = defaultdict(lambda: defaultdict(list))
        for line in rows:
            per_prompt[line["uid"].rsplit("_", 2)[0]][line["bpo_mode"]].append(line["acc"])
        for mode in ("think", "no_think", "auto"):
            sel = [line for line in rows if line["bpo_mode"] == mode]
            if not sel:
                continue
            tokens = [line["bpo_response_length"] for line in sel]
            cells = {"n": len(sel), "accuracy": statistics.fmean(line["acc"] for line in sel),
                     "tokens_mean": statistics.fmean(tokens), "tokens_p50": statistics.median(tokens),
                     "tokens_p90": (statistics.quantiles(tokens, n=10, method="inclusive")[8] if len(tokens) > 1
                                    else tokens[0])}
            if mode == "auto":
                cells["think_rate"] = statistics.fmean(line["bpo_think"] > 0.5 for line in sel)
                good = []
                for line in sel:
                    accs = per_prompt[line["uid"].rsplit("_", 2)[0]]
                    if accs["think"] and accs["no_think"]:
                        mine, other = ("think", "no_think") if line["bpo_think"] > 0.5 else ("no_think", "think")
                        good.append(statistics.fmean(accs[mine]) >= statistics.fmean(accs[other]))
                cells["hybrid_accuracy"] = statistics.fmean(good) if good else None
                think = [line["bpo_response_length"] for line in rows if line["bpo_mode"] == "think"]
                cells["tokens_saved"] = statistics.fmean(think) - cells["tokens_mean"] if think else None
            table[(source, mode)] = cells
    return table


@pytest.fixture
def recompute_report():
    return _recompute_report


def assert_report_matches(csv_path: Path, lines: list[dict]) -> None:
    """Every number of ``report.csv`` equals its recomputation from the dump's lines."""
    import csv

    expected = _recompute_report(lines)
    rows = list(csv.DictReader(open(csv_path)))
    assert {(r["data_source"], r["mode"]) for r in rows} == set(expected)
    for row in rows:
        for key, value in expected[(row["data_source"], row["mode"])].items():
            if value is None:
                assert row[key] == "", (row, key)
            else:
                assert float(row[key]) == pytest.approx(value, abs=1e-9), (row["data_source"], row["mode"], key)


@pytest.fixture
def report_matches():
    return assert_report_matches
