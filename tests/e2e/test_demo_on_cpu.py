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
    # it ends with the training curves next to the metrics, their path printed, and how to evaluate
    curves = tmp_path / "demo" / "training_curves.png"
    assert f"training curves  {curves}" in out.stdout
    from PIL import Image

    assert Image.open(curves).size == (1200, 720)
    assert "make eval" in out.stdout and (tmp_path / "demo" / "checkpoints" / "global_step_1").is_dir()


def test_make_demo_on_a_fresh_clone_installs_first(checkout, tmp_path):
    # the README's first command with nothing else typed: no .venv yet, `make demo` builds it (once)
    assert not (checkout / ".venv").exists()
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(OUT=str(tmp_path / "demo"), STEPS="1", PATH=os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(sys.prefix)))  # the machine's python3
    out = subprocess.run(["make", "demo"], cwd=checkout, env=env, capture_output=True, text=True, timeout=2400)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    assert (checkout / ".venv" / "bin" / "python").exists() and (checkout / ".venv" / ".r4b-verl-installed").exists()
    assert "== summary" in out.stdout and (tmp_path / "demo" / "metrics.jsonl").stat().st_size > 0

    # the second command finds the install up to date: no pip, straight to pytest
    dry = subprocess.run(["make", "-n", "test"], cwd=checkout, env=env, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0 and "pip" not in dry.stdout and "pytest" in dry.stdout, dry.stdout
