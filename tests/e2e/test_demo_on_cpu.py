"""`make demo`, the README's run command, exactly as a user types it from the repository root."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_make_demo_trains_and_prints_the_summary(tmp_path):
    # A relative VENV, as in `make install` (.venv): the script changes directory before training.
    venv = os.path.relpath(sys.prefix, REPO)
    env = {**os.environ, "OUT": str(tmp_path / "demo"), "STEPS": "1"}
    out = subprocess.run(["make", "demo", f"VENV={venv}"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    assert "== summary" in out.stdout
    assert "bpo/" in out.stdout  # verl's console line carries the bpo/ metrics
    assert (tmp_path / "demo" / "metrics.jsonl").stat().st_size > 0
