"""The built wheel: everything under one namespace, recipe found by Hydra from the installed copy."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
                   check=True, cwd=out, timeout=600)
    (whl,) = out.glob("r4b_verl-*.whl")
    return whl


def test_wheel_has_no_generic_top_level_names_and_ships_every_source_file(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"r4b_verl", "hydra_plugins"}
    assert not any(n.startswith("hydra_plugins/__init__") for n in names)  # namespace package for Hydra

    expected = set()
    for folder, prefix in [("r4b_verl", "r4b_verl"), ("recipes", "r4b_verl/recipes"),
                           ("reward_fns", "r4b_verl/reward_fns"), ("hydra_plugins", "hydra_plugins")]:
        for f in (REPO / folder).rglob("*"):
            if f.is_file() and "__pycache__" not in f.parts and f.suffix in {".py", ".yaml", ".sh", ".sbatch"}:
                rel = f.relative_to(REPO / folder)
                if folder == "r4b_verl" and rel.parts[0] in {"recipes", "reward_fns"}:
                    continue  # the symlinked folders, counted once below
                expected.add(f"{prefix}/{rel.as_posix()}")
    missing = expected - set(names)
    assert not missing, f"files left out of the wheel (add them to setup.cfg package_data): {sorted(missing)}"

    entry_points = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "[verl.plugins]" in entry_points and "r4b_verl.plugin" in entry_points


def test_recipe_resolves_from_the_installed_wheel(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run([sys.executable, "-c", "import r4b_verl.recipes as r; print(r.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert where.stdout.startswith(str(target)), where.stdout + where.stderr  # really the wheel's copy
    out = subprocess.run([sys.executable, "-m", "verl.trainer.main_ppo", "+recipe=r4b_bpo", "--cfg", "job"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    cfg = yaml.safe_load(out.stdout)
    assert cfg["algorithm"]["adv_estimator"] == "bpo"
    assert cfg["actor_rollout_ref"]["rollout"]["agent"]["default_agent_loop"] == "bpo_bimode"


def test_wheel_pins_verl_and_declares_the_extras(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    requires = [line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    assert "verl[math,verl-core]==0.9.1" in requires
    assert any(r.startswith("math-verify") for r in requires)
    assert any(r.startswith("hydra-core") for r in requires)
    assert 'verl[vllm]==0.9.1; extra == "gpu"' in requires
    assert 'flash-attn; extra == "gpu"' in requires
