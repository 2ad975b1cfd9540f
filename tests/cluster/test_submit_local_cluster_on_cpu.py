"""A real cluster on this machine: make ray-head, make submit (a probe, then the CPU demo), make stop.

Isolation. Ray's daemons listen on every interface and advertise the machine's address, whatever
`--node-ip-address` says. So the whole cluster runs in a private network namespace whose only
interface is loopback (`unshare --net`, or `unshare --user --map-root-user --net` without root):
it cannot be reached from, or reach, anything but 127.0.0.1, and its ports cannot collide with
other tests. It gets a fresh `RAY_TEMP_DIR`, and its own token (`RAY_AUTH_MODE=token`), so that it
neither reads nor writes ~/.ray. `make stop RAY_TEMP_DIR=...` stops only this node (never
`ray stop`, which kills every Ray process on the machine, other tests' included); the teardown then
kills whatever is still in the namespace, even when the test failed.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # --import-mode=importlib: make the helper module importable
from loopback_netns import Netns, cmdline, listening_ports  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
RAY = BIN / "ray"
TOTAL_BUDGET_S = 900  # the whole test, cluster start to stop (the demo alone takes ~1 min on 2 cores)
GCS_PORT = 46379
DASHBOARD_PORT = 48265


@pytest.fixture
def cluster_env():
    missing = [tool for tool in ("unshare", "nsenter", "make") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} to isolate the Ray cluster in a loopback-only network namespace")
    if not RAY.exists():
        pytest.skip(f"no ray executable next to {sys.executable}")
    ns = Netns(TOTAL_BUDGET_S + 120)
    if ns.holder is None:
        pytest.skip("cannot create a network namespace here (unshare --net): the cluster would not be loopback-only")
    # Short, fresh temp dir: Ray's unix socket paths live under it and are limited to 107 characters.
    temp_dir = Path(tempfile.mkdtemp(prefix="r4b-ray-", dir="/tmp"))
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # `python` on the cluster = this env's
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    for var in ("RAY_ADDRESS", "VERL_PLATFORM", "MAKEFLAGS", "MFLAGS", "MAKELEVEL"):
        env.pop(var, None)
    common = [f"RAY={RAY}", f"RAY_TEMP_DIR={temp_dir / 'ray'}", "RAY_STOP_GRACE=5"]
    try:
        yield ns, env, temp_dir, common
    finally:
        try:
            subprocess.run([*ns.prefix, "make", "--no-print-directory", "stop", *common], cwd=REPO, env=env,
                           capture_output=True, timeout=60)
        except subprocess.TimeoutExpired:
            pass
        ns.close()
        shutil.rmtree(temp_dir, ignore_errors=True)


def _run(ns, env, args, timeout, log: Path):
    began = time.monotonic()
    with open(log, "w") as out:
        try:
            proc = subprocess.run([*ns.prefix, *args], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=timeout, start_new_session=True)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    text = log.read_text(errors="replace")
    print(f"[{time.monotonic() - began:6.1f}s] make {args[2] if len(args) > 2 else args}: rc={rc}")
    return rc, text


PROBE = textwrap.dedent("""
    # Submitted with the same runtime env as the demo: where do r4b_verl and the recipe come from?
    import json, os, sys
    import ray
    from hydra import compose, initialize_config_module
    from verl.trainer.ppo import core_algos
    import r4b_verl, hydra_plugins.r4b_verl_searchpath as search_path

    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        cfg = compose(config_name="ppo_trainer", overrides=sys.argv[1:])

    @ray.remote(num_cpus=0)
    def in_a_worker():
        import os, r4b_verl
        from verl.trainer.ppo import core_algos
        return {"cwd": os.getcwd(), "r4b_verl": r4b_verl.__file__, "bpo": "bpo" in core_algos.ADV_ESTIMATOR_REGISTRY,
                "modules": os.environ.get("VERL_USE_EXTERNAL_MODULES")}

    ray.init()
    print("PROBE " + json.dumps({
        "driver": {"cwd": os.getcwd(), "r4b_verl": r4b_verl.__file__, "searchpath": search_path.__file__,
                   "bpo": "bpo" in core_algos.ADV_ESTIMATOR_REGISTRY},
        "worker": ray.get(in_a_worker.remote()),
        "adv_estimator": cfg.algorithm.adv_estimator, "rollout": cfg.actor_rollout_ref.rollout.name,
        "nodes": [n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]],
    }))
""")


def _budget(start: float):
    """left(): seconds of the test's TOTAL_BUDGET_S still to spend (fails the test when nearly none are)."""

    def left() -> float:
        remaining = TOTAL_BUDGET_S - (time.monotonic() - start)
        assert remaining > 10, f"over the {TOTAL_BUDGET_S}s budget"
        return remaining

    return left


def _tail(text: str, n: int = 6000) -> str:
    return text[-n:]


def test_make_submit_runs_the_cpu_demo_on_a_local_ray_cluster(cluster_env):
    ns, env, temp_dir, common = cluster_env
    start = time.monotonic()
    left = _budget(start)

    assert ns.interfaces() == ["lo"], ns.interfaces()  # nothing but loopback to listen on

    assets = temp_dir / "assets"
    # a random model is enough for the plumbing (no bi-mode annealing: that is minutes on a busy CPU)
    subprocess.run([sys.executable, "-m", "r4b_verl.demo", "--out", str(assets), "--anneal-steps", "0"],
                   check=True, cwd=temp_dir, capture_output=True, timeout=min(300, left()))
    print(f"[{time.monotonic() - start:6.1f}s] demo assets built")
    job = [f"RAY_ADDRESS=http://127.0.0.1:{DASHBOARD_PORT}", "RECIPE=r4b_bpo_cpu", f"MODEL={assets / 'model'}",
           f"TRAIN={assets / 'train.parquet'}", f"VAL={assets / 'val.parquet'}", "NGPUS=1", "NNODES=1",
           "ROLLOUT=", "PROJECT=", "EXPERIMENT=", "LOGGER=", f"JOB_PYTHON={sys.executable}",
           f"ARGS=trainer.total_training_steps=2 trainer.default_local_dir={temp_dir / 'checkpoints'}"]

    # 1. the head: 8 logical CPUs (TaskRunner, TransferQueue actors and a 3-CPU bundle), 1 logical GPU
    rc, out = _run(ns, env, ["make", "--no-print-directory", "ray-head", *common, "NODE_IP=127.0.0.1",
                             f"RAY_PORT={GCS_PORT}", f"DASHBOARD_PORT={DASHBOARD_PORT}",
                             "RAY_START_ARGS=--num-cpus=8 --num-gpus=1"],
                   min(180, left()), temp_dir / "head.log")
    assert rc == 0, _tail(out)
    assert (temp_dir / "ray" / "r4b_ray_node.pgid").exists()
    listening = listening_ports(ns.holder.pid)
    assert {GCS_PORT, DASHBOARD_PORT} <= listening, listening

    # 2. a probe with the demo's overrides and runtime env: the shipped checkout is what runs, in the
    #    driver (Hydra resolves +recipe through the shipped search-path plugin) and in a Ray worker.
    probe = temp_dir / "probe.py"
    probe.write_text(PROBE)
    rc, out = _run(ns, env, ["make", "--no-print-directory", "submit", *common, *job,
                             f"ENTRYPOINT={sys.executable} {probe}"], min(300, left()), temp_dir / "probe.log")
    assert rc == 0, _tail(out)
    (line,) = [line for line in out.splitlines() if line.startswith("PROBE ")]
    report = json.loads(line[len("PROBE "):])
    driver, worker = report["driver"], report["worker"]
    shipped = driver["cwd"]
    assert "working_dir_files" in shipped and shipped.startswith(str(temp_dir / "ray")), report
    assert driver["r4b_verl"].startswith(shipped + "/") and driver["searchpath"].startswith(shipped + "/"), report
    assert worker["cwd"] == shipped and worker["r4b_verl"].startswith(shipped + "/"), report
    assert driver["bpo"] and worker["bpo"] and worker["modules"] == "r4b_verl.plugin", report
    assert report["adv_estimator"] == "bpo" and report["rollout"] == "hf_cpu", report
    assert report["nodes"] == ["127.0.0.1"], report

    # 3. the CPU demo itself, through the same `make submit`
    rc, out = _run(ns, env, ["make", "--no-print-directory", "submit", *common, *job],
                   min(600, left()), temp_dir / "demo.log")
    assert rc == 0, _tail(out)
    assert "ray job submit --address='http://127.0.0.1:48265' --runtime-env='recipes/runtime_env.yaml'" in out
    assert "succeeded" in out, _tail(out)
    assert "training/global_step:2" in out, _tail(out)  # both training steps ran
    assert "bpo/think/count" in out and "bpo/no_think/count" in out, _tail(out)  # the bi-mode rollout + bpo
    assert "plugin failed to load" not in out, _tail(out)

    # 4. make stop: only this node, and all of it
    rc, out = _run(ns, env, ["make", "--no-print-directory", "stop", *common], min(60, left()),
                   temp_dir / "stop.log")
    assert rc == 0, out
    assert "ray_node.sh: stopped" in out, out
    time.sleep(1)
    survivors = ns.survivors()
    assert not survivors, [cmdline(p) for p in survivors]


def test_make_anneal_submit_runs_stage_1_on_a_local_ray_cluster(cluster_env):
    """Stage 1 on Ray: `make anneal-submit` -> ray job submit -> verl.trainer.sft_trainer_ray, whose bare
    ray.init() joins this cluster and places its TrainingWorker on the head's one logical GPU."""
    ns, env, temp_dir, common = cluster_env
    start = time.monotonic()
    left = _budget(start)

    work = temp_dir / "anneal"
    subprocess.run([sys.executable, "-m", "r4b_verl.demo", "--out", str(work), "--n-anneal", "16"],
                   check=True, cwd=temp_dir, capture_output=True, timeout=min(300, left()))
    sft = work / "sft.parquet"
    subprocess.run([sys.executable, "-m", "r4b_verl.anneal.build", "--in", str(work / "anneal.parquet"),
                    "--out", str(sft), "--label-key", "level_label", "--tokenizer", str(work / "model"),
                    "--max-length", "128"], check=True, cwd=temp_dir, capture_output=True, timeout=min(300, left()))
    # A CPU cluster's job needs VERL_PLATFORM=cpu in every process: the shipped runtime env plus that variable
    # (recipes/README.md, "Stage 1 on a Ray cluster"), as a user of a CPU cluster writes it.
    import yaml

    runtime_env = yaml.safe_load((REPO / "recipes" / "runtime_env.yaml").read_text())
    runtime_env["env_vars"]["VERL_PLATFORM"] = "cpu"
    runtime_env_file = temp_dir / "runtime_env_cpu.yaml"
    runtime_env_file.write_text(yaml.safe_dump(runtime_env))

    # verl's RayResourcePool asks {"CPU": 10, "GPU": 1} per worker (max_colocate_count): 12 logical CPUs
    rc, out = _run(ns, env, ["make", "--no-print-directory", "ray-head", *common, "NODE_IP=127.0.0.1",
                             f"RAY_PORT={GCS_PORT}", f"DASHBOARD_PORT={DASHBOARD_PORT}",
                             "RAY_START_ARGS=--num-cpus=12 --num-gpus=1"], min(180, left()), temp_dir / "head.log")
    assert rc == 0, _tail(out)
    ckpt = temp_dir / "anneal-out"
    rc, out = _run(ns, env, ["make", "--no-print-directory", "anneal-submit", *common,
                             f"RAY_ADDRESS=http://127.0.0.1:{DASHBOARD_PORT}", f"RUNTIME_ENV={runtime_env_file}",
                             "ANNEAL_RECIPE=r4b_anneal_cpu", f"MODEL={work / 'model'}", f"DATA={sft}", "NNODES=1",
                             "NGPUS=1", "LOGGER=[console]", f"ANNEAL_OUT={ckpt}", f"JOB_PYTHON={sys.executable}",
                             "ARGS=trainer.total_training_steps=3 trainer.total_epochs=10 data.train_batch_size=4 "
                             "data.micro_batch_size_per_gpu=4"], min(600, left()), temp_dir / "anneal.log")
    assert rc == 0, _tail(out)
    assert "-m verl.trainer.sft_trainer_ray +recipe=r4b_anneal_cpu" in out and "succeeded" in out, _tail(out)
    assert re.search(r"step:3 - .*train/loss:", out), _tail(out)  # three SFT steps in the Ray worker
    hf = ckpt / "global_step_3" / "huggingface"
    assert (hf / "config.json").is_file() and list(hf.glob("*.safetensors")), _tail(out)
    import torch
    from transformers import AutoModelForCausalLM  # stage 2 loads model.path this way

    before, after = (AutoModelForCausalLM.from_pretrained(p).state_dict() for p in (work / "model", hf))
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the worker's optimiser steps reached the export
