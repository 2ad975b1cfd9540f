"""The demos empty OUT only when a demo made it: an exported OUT or a typo must not delete a user's files."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from r4b_verl.demo.outdir import MARKER, NotADemoDirectory, fresh

REPO = Path(__file__).resolve().parents[1]


def test_fresh_creates_refuses_and_clears(tmp_path):
    out = fresh(tmp_path / "new")
    assert (out / MARKER).is_file() and sorted(p.name for p in out.iterdir()) == [MARKER]
    (out / "checkpoint").mkdir()
    assert sorted(p.name for p in fresh(out).iterdir()) == [MARKER]  # a demo's own output: emptied
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(NotADemoDirectory, match=r"not empty and no demo run made it"):
        fresh(mine)
    assert (mine / "thesis.tex").read_text() == "years of work"
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADemoDirectory, match="not a directory"):
        fresh(tmp_path / "file")


@pytest.mark.parametrize("script", ["recipes/run_demo_cpu.sh", "recipes/run_demo_mm_cpu.sh"])
def test_demo_scripts_refuse_a_directory_they_did_not_make(tmp_path, script):
    mine = tmp_path / "data"
    mine.mkdir()
    (mine / "train.parquet").write_text("the user's")
    out = subprocess.run(["bash", script], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "OUT": str(mine), "PYTHON": sys.executable})
    assert out.returncode != 0 and f"OUT={mine} is not empty" in out.stderr
    assert (mine / "train.parquet").read_text() == "the user's"
