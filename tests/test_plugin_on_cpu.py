"""The plugin reaches every process: entry point, VERL_USE_EXTERNAL_MODULES, loud failure, Hydra recipe."""

import os
import subprocess
import sys
import textwrap

import pytest
import yaml

FIND_BPO = "import verl; from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY as R; print('bpo' in R)"


def run_py(code: str, tmp_path, env_extra=None, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120, **kwargs)


def test_bare_import_verl_registers_bpo_through_the_entry_point(tmp_path):
    out = run_py(FIND_BPO, tmp_path, {"VERL_USE_EXTERNAL_PLUGINS": "auto"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


def test_without_plugins_bpo_is_absent(tmp_path):
    # the control for the test above: registration really comes from the plugin
    out = run_py(FIND_BPO, tmp_path, {"VERL_USE_EXTERNAL_PLUGINS": "none"})
    assert out.stdout.strip() == "False", out.stderr


def test_external_modules_path_works_with_entry_points_disabled(tmp_path):
    out = run_py(FIND_BPO, tmp_path,
                 {"VERL_USE_EXTERNAL_PLUGINS": "none", "VERL_USE_EXTERNAL_MODULES": "r4b_verl.plugin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


def test_a_load_failure_is_loud_and_bpo_raises_its_cause(tmp_path):
    # verl swallows entry-point errors at debug level; ours must still be visible and must not leave
    # 'bpo' silently unknown. Make one registering module unimportable, then load verl as usual.
    code = textwrap.dedent("""
        import sys
        sys.modules["r4b_verl.advantage"] = None  # importing it now raises ModuleNotFoundError
        import verl  # loads the verl.plugins entry point, which fails
        from verl.trainer.ppo import core_algos
        try:
            core_algos.get_adv_estimator_fn("bpo")(token_level_rewards=None, response_mask=None)
        except RuntimeError as e:
            print("STANDIN", e)
    """)
    out = run_py(code, tmp_path, {"VERL_USE_EXTERNAL_PLUGINS": "auto"})
    assert "STANDIN r4b-verl failed to load in this process" in out.stdout, out.stdout + out.stderr
    assert "r4b_verl.advantage" in out.stdout  # the stand-in names the cause
    assert "[r4b-verl] ERROR: plugin failed to load" in out.stderr  # visible, not debug-level


def test_wrong_verl_version_is_refused_by_name(tmp_path):
    code = textwrap.dedent("""
        import verl
        verl.__version__ = "0.0.1"
        import sys; sys.modules.pop("r4b_verl.plugin", None)
        try:
            import r4b_verl.plugin
        except Exception as e:
            print(type(e).__name__, e)
    """)
    out = run_py(code, tmp_path, {"VERL_USE_EXTERNAL_PLUGINS": "none"})
    assert "PluginLoadError" in out.stdout and "verl==0.9.1" in out.stdout and "0.0.1" in out.stdout, out.stdout


def compose_job(tmp_path, *overrides) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "verl.trainer.main_ppo", *overrides, "--cfg", "job"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=180)


def test_recipe_composes_through_main_ppo_with_our_values(tmp_path):
    out = compose_job(tmp_path, "+recipe=r4b_bpo", "bpo.think_fraction=0.25")
    assert out.returncode == 0, out.stderr[-3000:]
    cfg = yaml.safe_load(out.stdout)
    assert cfg["algorithm"]["adv_estimator"] == "bpo"
    assert cfg["algorithm"]["norm_adv_by_std_in_grpo"] is True
    rollout = cfg["actor_rollout_ref"]["rollout"]
    assert rollout["n"] % 2 == 0 and rollout["n"] >= 2
    assert rollout["agent"]["default_agent_loop"] == "bpo_bimode"
    assert cfg["reward"]["custom_reward_function"]["path"] == "pkg://r4b_verl.reward_fns"
    assert cfg["reward"]["custom_reward_function"]["name"] == "compute_score_async"
    assert cfg["bpo"]["think_fraction"] == 0.25  # command-line overrides still win over the recipe
    assert "recipe" not in cfg


def test_without_the_recipe_verl_defaults_stay(tmp_path):
    out = compose_job(tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    cfg = yaml.safe_load(out.stdout)
    assert cfg["algorithm"]["adv_estimator"] != "bpo"
    assert "bpo" not in cfg


def test_unknown_recipe_name_fails(tmp_path):
    out = compose_job(tmp_path, "+recipe=r4b_no_such_recipe")
    assert out.returncode != 0
    assert "r4b_no_such_recipe" in out.stderr and "recipe" in out.stderr
