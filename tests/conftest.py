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


def _demo_steps(out: Path) -> int:
    return max(int(p.name.split("_")[-1]) for p in (out / "checkpoints").glob("global_step_*"))


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """The one `make demo` run the end-to-end tests share (the suite's slowest command, run once).

    `make demo` exactly as the README's first command, in a fresh clone (nothing installed: it builds `.venv`
    with the machine's python3), with `STEPS=2`. Under `.ci/run`, which has just run `make demo` on its own
    clean clone and exported `R4B_DEMO_OUT` / `R4B_DEMO_LOG`, that run is the one the tests read: not repeated.
    Tests only read its outputs (stage-1 checkpoint, metrics, rollout dumps, checkpoints, console log).
    """
    import os
    import sys
    from types import SimpleNamespace

    out, log = os.environ.get("R4B_DEMO_OUT"), os.environ.get("R4B_DEMO_LOG")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(sys.prefix))
    if out and log and Path(log).is_file():
        out = Path(out)
        return SimpleNamespace(checkout=REPO, out=out, stdout=Path(log).read_text(errors="replace"), env=env,
                               steps=_demo_steps(out))
    checkout = copy_checkout(tmp_path_factory.mktemp("clone") / "r4b-verl")
    out = tmp_path_factory.mktemp("demo") / "demo"
    env.update(OUT=str(out), STEPS="2")
    proc = subprocess.run(["make", "demo"], cwd=checkout, env=env, capture_output=True, text=True, timeout=2400)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return SimpleNamespace(checkout=checkout, out=out, stdout=proc.stdout, env=env, steps=_demo_steps(out))


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
