"""The plugin reaches every process: entry point, VERL_USE_EXTERNAL_MODULES, loud failure, Hydra recipe."""

import os
import subprocess
import sys
import textwrap

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
    assert cfg["reward"]["custom_reward_function"]["path"] == "pkg://r4b_verl.reward"
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


# Every verl module a BPO run goes through, then every function reachable from their classes and module dicts.
_SCAN = textwrap.dedent("""
    import importlib, inspect, json, sys
    import verl  # loads the plugin through its entry point
    assert "r4b_verl.plugin" in sys.modules
    for name in ["verl.trainer.main_ppo", "verl.trainer.ppo.v1", "verl.trainer.ppo.v1.trainer_base",
                 "verl.experimental.agent_loop.agent_loop", "verl.experimental.agent_loop.single_turn_agent_loop",
                 "verl.trainer.ppo.v1.agent_loop_tq", "verl.trainer.ppo.core_algos", "verl.workers.rollout.base",
                 "verl.workers.rollout.replica", "verl.workers.engine.fsdp.transformer_impl", "torch.distributed"]:
        importlib.import_module(name)

    def ours(obj):  # by where its code lives: functools.wraps copies __module__ from the wrapped function
        fn = getattr(obj, "__func__", obj)
        fn = getattr(fn, "fget", fn)
        filename = getattr(getattr(fn, "__code__", None), "co_filename", None)
        return ("/r4b_verl/" in (filename if isinstance(filename, str) else "")
                or (getattr(fn, "__module__", None) or "").startswith("r4b_verl"))

    def scan():
        found = set()
        for modname, mod in list(sys.modules.items()):
            if not (modname.startswith("verl") or modname.startswith("torch.distributed")) or mod is None:
                continue
            for attr, obj in list(vars(mod).items()):
                if callable(obj) and ours(obj):
                    found.add(f"{modname}.{attr}")
                cls = getattr(obj, "__ray_actor_class__", obj)
                if inspect.isclass(cls) and cls.__module__ == modname:
                    found |= {f"{cls.__qualname__}.{k}" for k, v in vars(cls).items() if ours(v)}
        return sorted(found)

    before = scan()
    from r4b_verl import verl_compat
    verl_compat.apply((verl_compat.TRAINER_METRICS, verl_compat.ADVANTAGE_BATCH_VIEW))  # what BPOAgentLoopManager does
    print(json.dumps({"plugin_import": before, "bpo_run": scan()}))
""")


def test_importing_the_plugin_changes_no_verl_class(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "VERL_PLATFORM"}  # not the CPU backend's run
    out = subprocess.run([sys.executable, "-c", _SCAN], cwd=tmp_path, env={**env, "VERL_USE_EXTERNAL_PLUGINS": "auto"},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    import json

    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["plugin_import"] == []
    # the control: the scan does see a replaced method, and only the run that names the manager has one
    assert result["bpo_run"] == ["PPOTrainer._compute_advantage", "PPOTrainer._compute_metrics",
                                 "PPOTrainer._val_metrics_update"]
