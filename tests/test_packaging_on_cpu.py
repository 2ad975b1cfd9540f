"""Installs: every install mode composes +recipe=r4b_bpo, the wheel holds one namespace, a hidden Hydra plugin is
refused.

Each install goes into its own virtual environment, made from a copy of this checkout's files (what a
clone holds) with the README's command, `pip install [-e] .`; the dependencies are taken from the test
environment through a .pth line instead of being downloaded again (`--no-deps`).
"""

import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def run(cmd, cwd, timeout=600, check=True, env=None):
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and out.returncode != 0:
        raise AssertionError(f"{cmd} failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out


def new_env(where: Path) -> Path:
    """A venv (no pip) that sees the test environment's packages, but not its r4b-verl install."""
    run([sys.executable, "-m", "venv", "--without-pip", str(where)], where.parent)
    python = where / "bin" / "python"
    purelib = run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                  where).stdout.strip()
    deps = [p for p in site.getsitepackages() if "site-packages" in p]
    Path(purelib, "zz_test_deps.pth").write_text("\n".join(deps) + "\n")  # after the project's own .pth
    return python


def pip_install(python: Path, *args, cwd):
    return run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                "--no-build-isolation", *args], cwd)


def composed(python: Path, cwd: Path, *overrides) -> subprocess.CompletedProcess:
    return run([str(python), "-m", "verl.trainer.main_ppo", *overrides, "--cfg", "job"], cwd, timeout=300, check=False)


@pytest.fixture(scope="module")
def wheel(checkout, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), "."],
        checkout)
    (whl,) = out.glob("r4b_verl-*.whl")
    return whl


@pytest.mark.parametrize("mode", ["editable", "editable-compat", "wheel"])
def test_every_install_mode_composes_the_recipe(mode, checkout, wheel, tmp_path):
    python = new_env(tmp_path / "venv")
    args = {"editable": ["-e", "."], "editable-compat": ["-e", ".", "--config-settings", "editable_mode=compat"],
            "wheel": [str(wheel)]}[mode]
    pip_install(python, *args, cwd=checkout)

    where = run([str(python), "-c", "import r4b_verl; print(r4b_verl.__file__)"], tmp_path).stdout
    expected_root = checkout if mode.startswith("editable") else tmp_path / "venv"
    assert where.startswith(str(expected_root)), where  # really this install, not the test environment's

    out = composed(python, tmp_path, "+recipe=r4b_bpo")
    assert out.returncode == 0, out.stderr[-3000:]
    cfg = yaml.safe_load(out.stdout)
    assert cfg["algorithm"]["adv_estimator"] == "bpo"
    agent = cfg["actor_rollout_ref"]["rollout"]["agent"]
    assert agent["default_agent_loop"] == "bpo_bimode"
    assert agent["agent_loop_manager_class"] == "r4b_verl.rollout.worker.BPOAgentLoopManager"
    assert "recipe" not in cfg


def test_an_install_that_hides_the_hydra_plugin_is_refused(wheel, tmp_path):
    # the silent failure: Hydra cannot see hydra_plugins/, so +recipe=r4b_bpo would become a plain key
    python = new_env(tmp_path / "venv")
    pip_install(python, str(wheel), cwd=tmp_path)
    purelib = run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path).stdout
    shutil.rmtree(Path(purelib.strip(), "hydra_plugins", "r4b_verl_searchpath"))

    out = composed(python, tmp_path, "+recipe=r4b_bpo")
    assert out.returncode != 0
    assert "[r4b-verl] ERROR: +recipe=r4b_bpo cannot compose here" in out.stderr
    assert "pip install" in out.stderr and "hydra_plugins" in out.stderr  # the fix is named
    assert "adv_estimator" not in out.stdout  # no config was printed, nothing would have run

    plain = composed(python, tmp_path)  # runs that ask for no recipe of ours are not concerned
    assert plain.returncode == 0, plain.stderr[-2000:]


def test_wheel_has_one_namespace_and_ships_every_source_file(wheel, checkout):
    names = set(zipfile.ZipFile(wheel).namelist())
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"r4b_verl", "hydra_plugins"}
    assert not any(n.startswith("hydra_plugins/__init__") for n in names)  # namespace package for Hydra

    expected = {f.relative_to(checkout).as_posix() for folder in ("r4b_verl", "hydra_plugins")
                for f in (checkout / folder).rglob("*") if f.is_file() and f.suffix in {".py", ".yaml", ".md"}}
    missing = expected - names
    assert not missing, f"files left out of the wheel (add them to setup.cfg package_data): {sorted(missing)}"
    assert "r4b_verl/config/recipe/r4b_bpo.yaml" in names

    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "[verl.plugins]" in entry_points and "r4b_verl.plugin" in entry_points


def test_every_module_has_one_import_name():
    # no symlinks into the package: a checkout without symlink support, or a tool walking the tree, sees one copy
    links = [p for p in REPO.rglob("*")
             if p.is_symlink() and not any(part.startswith((".venv", ".git")) for part in p.parts)]
    assert links == []
    import r4b_verl.reward as reward

    assert Path(reward.__file__).resolve().parent == REPO / "r4b_verl" / "reward"


def test_wheel_pins_verl_and_declares_the_extras(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    requires = [line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    assert "verl[math,verl-core]==0.9.1" in requires
    assert any(r.startswith("math-verify") for r in requires)
    assert any(r.startswith("hydra-core") for r in requires)
    assert 'verl[vllm]==0.9.1; extra == "gpu"' in requires
    assert not any(r.startswith("flash-attn") for r in requires)  # its own step, after torch (README)


def test_recipe_guard_reads_the_overrides_hydra_reads():
    from r4b_verl.recipe_guard import RecipeNotComposedError, recipe_names, refuse_plain_recipe_key, requested_recipes

    assert {"r4b_bpo", "r4b_bpo_cpu"} <= recipe_names()
    assert requested_recipes(["main_ppo.py", "+recipe=r4b_bpo", "x=1", "++recipe=r4b_bpo_cpu", "recipe=a"]) == [
        "r4b_bpo", "r4b_bpo_cpu", "a"]
    assert requested_recipes(["main_ppo.py", "trainer.recipe=1", "myrecipe=2"]) == []
    refuse_plain_recipe_key({"algorithm": {}})  # a composed recipe leaves no key behind
    with pytest.raises(RecipeNotComposedError, match=r"plain key recipe='r4b_bpo'.*pip install"):
        refuse_plain_recipe_key({"recipe": "r4b_bpo"})
