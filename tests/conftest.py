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
