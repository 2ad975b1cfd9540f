"""`make -n` of the cluster targets prints the expected command lines; values and ARGS survive quoting."""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
JOB = ["MODEL=Qwen/Qwen3-4B", "TRAIN=/data/train.parquet", "VAL=/data/val.parquet"]
DEFAULT_OVERRIDES = [
    "+recipe=r4b_bpo",
    "actor_rollout_ref.model.path=Qwen/Qwen3-4B",
    "data.train_files=/data/train.parquet",
    "data.val_files=/data/val.parquet",
    "trainer.n_gpus_per_node=8",
    "trainer.nnodes=1",
    "actor_rollout_ref.rollout.name=vllm",
    "trainer.project_name=r4b_verl",
    "trainer.experiment_name=r4b_bpo",
    "trainer.logger=[console]",
]
CLUSTER_OVERRIDES = ["++ray_kwargs.ray_init.num_cpus=null", "++ray_kwargs.ray_init.num_gpus=null"]
# Overrides with spaces, quotes and brackets, written as a user types them after ARGS=.
ARGS = """ARGS=trainer.experiment_name='run 1' "trainer.logger=['console','wandb']" data.max_prompt_length=1024"""
ARGS_PARSED = ["trainer.experiment_name=run 1", "trainer.logger=['console','wandb']", "data.max_prompt_length=1024"]


def make(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """make ARGS with the preflight off (PREFLIGHT=): these tests are of the values' way to the command line;
    tests/test_preflight_on_cpu.py checks the same targets' commands with it."""
    base = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "RAY_ADDRESS"}}
    return subprocess.run(["make", "--no-print-directory", "PREFLIGHT=", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60, env={**base, **(env or {})})


def dry_run(*args: str) -> list[list[str]]:
    """`make -n ARGS`: one list of shell words per command line (continuation lines joined)."""
    out = make("-n", *args)
    assert out.returncode == 0, out.stderr
    text = re.sub(r"\\\n\s*", " ", out.stdout)
    return [words for line in text.splitlines() if line.strip() and (words := shlex.split(line))[0] != ":"]


def split_env(words: list[str]) -> tuple[dict, list[str]]:
    """Leading VAR=value words (the command's environment) and the command."""
    env = {}
    while words and re.match(r"^[A-Z_]+=", words[0]):
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    return env, words


def test_help_lists_the_cluster_targets_and_documents_their_variables():
    out = make("help")
    assert out.returncode == 0, out.stderr
    for target in ("train", "ray-head", "ray-worker", "submit", "slurm", "stop"):
        assert re.search(rf"^  make {re.escape(target)}\s+\S", out.stdout, re.M), f"make help misses {target}"
    for var, default in [("MODEL", ""), ("TRAIN", ""), ("VAL", ""), ("ARGS", ""), ("NGPUS", "8"), ("NNODES", "1"),
                         ("RECIPE", "r4b_bpo"), ("ROLLOUT", "vllm"),
                         ("RAY_ADDRESS", "http://127.0.0.1:$(DASHBOARD_PORT)"),
                         ("RUNTIME_ENV", "recipes/runtime_env.yaml"), ("HEAD", ""), ("RAY_PORT", "6379"),
                         ("DASHBOARD_PORT", "8265"), ("RAY_TEMP_DIR", ""), ("PARTITION", ""), ("SBATCH", "sbatch")]:
        line = re.search(rf"^  {var}\s+(.*)$", out.stdout, re.M)
        assert line, f"make help does not document {var}"
        if default:
            assert line.group(1).endswith(f"[{default}]"), line.group(0)
    # the lead's targets are still there
    for target in ("install", "test", "bench"):
        assert f"make {target} " in out.stdout


def test_train_runs_main_ppo_with_the_recipe_and_every_variable():
    (cmd,) = dry_run("train", *JOB, ARGS)
    assert cmd[:3] == ["python", "-m", "verl.trainer.main_ppo"]
    assert cmd[3:] == DEFAULT_OVERRIDES + ARGS_PARSED


def test_train_variables_map_to_overrides_and_empty_ones_defer_to_the_recipe():
    (cmd,) = dry_run("train", *JOB, "NGPUS=4", "NNODES=2", "RECIPE=my_recipe", "ROLLOUT=sglang",
                     "PROJECT=", "EXPERIMENT=", "LOGGER=", "JOB_PYTHON=/opt/venv/bin/python")
    assert cmd == ["/opt/venv/bin/python", "-m", "verl.trainer.main_ppo", "+recipe=my_recipe",
                   "actor_rollout_ref.model.path=Qwen/Qwen3-4B", "data.train_files=/data/train.parquet",
                   "data.val_files=/data/val.parquet", "trainer.n_gpus_per_node=4", "trainer.nnodes=2",
                   "actor_rollout_ref.rollout.name=sglang"]


@pytest.mark.parametrize("target", ["train", "submit", "slurm"])
@pytest.mark.parametrize("missing, what", [("MODEL", "path or HF id of the model"),
                                           ("TRAIN", "training parquet file(s)"),
                                           ("VAL", "validation parquet file(s)")])
def test_job_targets_name_a_missing_required_variable(target, missing, what):
    given = [a for a in JOB if not a.startswith(missing + "=")]
    for args in (("-n", target, *given), (target, *given)):
        out = make(*args)
        assert out.returncode != 0
        assert f"{missing}=... is required: {what}" in out.stderr, out.stderr


def test_train_passes_awkward_values_through_unchanged(tmp_path):
    """Not only the printed line: the program really receives each override as one argument."""
    model = "/models/it's a model"  # a quote and spaces in a value
    out = make("train", f"MODEL={model}", "TRAIN=/d/t.parquet", "VAL=/d/v.parquet", ARGS,
               f"ENTRYPOINT={sys.executable} -c 'import json, sys; print(json.dumps(sys.argv[1:]))'")
    assert out.returncode == 0, out.stderr
    argv = json.loads(out.stdout.strip().splitlines()[-1])
    assert f"actor_rollout_ref.model.path={model}" in argv
    assert argv[-3:] == ARGS_PARSED


def test_ray_head_and_worker_command_lines():
    (cmd,) = dry_run("ray-head")
    env, cmd = split_env(cmd)
    assert env == {"RAY": "ray", "RAY_TEMP_DIR": ""}
    assert cmd == ["bash", "recipes/ray_node.sh", "head", "--port=6379", "--dashboard-host=127.0.0.1",
                   "--dashboard-port=8265", "--disable-usage-stats"]

    (cmd,) = dry_run("ray-head", "RAY_PORT=7000", "DASHBOARD_HOST=0.0.0.0", "DASHBOARD_PORT=9000", "NODE_IP=10.1.2.3",
                     "RAY_TEMP_DIR=/tmp/r4b", "RAY_START_ARGS=--num-gpus=8 --num-cpus=64", "RAY=/opt/bin/ray")
    env, cmd = split_env(cmd)
    assert env == {"RAY": "/opt/bin/ray", "RAY_TEMP_DIR": "/tmp/r4b"}
    assert cmd == ["bash", "recipes/ray_node.sh", "head", "--port=7000", "--dashboard-host=0.0.0.0",
                   "--dashboard-port=9000", "--node-ip-address=10.1.2.3", "--disable-usage-stats",
                   "--num-gpus=8", "--num-cpus=64"]

    (cmd,) = dry_run("ray-worker", "HEAD=10.1.2.3:6379")
    env, cmd = split_env(cmd)
    assert cmd == ["bash", "recipes/ray_node.sh", "worker", "--address=10.1.2.3:6379", "--disable-usage-stats"]

    out = make("-n", "ray-worker")
    assert out.returncode != 0 and "HEAD=... is required: host:port of the head's GCS" in out.stderr


def test_submit_command_line():
    (cmd,) = dry_run("submit", *JOB, ARGS)
    split = cmd.index("--")
    assert cmd[:split] == ["ray", "job", "submit", "--address=http://127.0.0.1:8265",
                           "--runtime-env=recipes/runtime_env.yaml"]
    assert cmd[split + 1:] == ["python", "-m", "verl.trainer.main_ppo", *DEFAULT_OVERRIDES, *CLUSTER_OVERRIDES,
                               *ARGS_PARSED]

    (cmd,) = dry_run("submit", *JOB, "RAY_ADDRESS=http://head:8265", "RUNTIME_ENV=", "SUBMIT_ARGS=--no-wait",
                     "DASHBOARD_PORT=9999")
    assert cmd[:cmd.index("--")] == ["ray", "job", "submit", "--address=http://head:8265", "--no-wait"]

    (cmd,) = dry_run("submit", *JOB, "DASHBOARD_PORT=9999", "RUNTIME_ENV=recipes/runtime_env_pip.yaml")
    assert cmd[3:5] == ["--address=http://127.0.0.1:9999", "--runtime-env=recipes/runtime_env_pip.yaml"]


def test_submit_hands_ray_each_override_as_one_argument(tmp_path):
    """`ray job submit -- ...` re-joins the entrypoint with shlex.join: each override must arrive whole."""
    fake_ray = tmp_path / "ray"
    fake_ray.write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    fake_ray.chmod(fake_ray.stat().st_mode | stat.S_IEXEC)
    out = make("submit", *JOB, ARGS, f"RAY={fake_ray}")
    assert out.returncode == 0, out.stderr
    argv = json.loads(out.stdout.strip().splitlines()[-1])
    assert argv[argv.index("--") + 1:][-3:] == ARGS_PARSED


def local_job(tmp_path: Path) -> tuple[list[str], list[str]]:
    """JOB with data files that exist (make slurm checks local paths before sbatch) and its overrides."""
    for name in ("train.parquet", "val.parquet"):
        (tmp_path / name).touch()
    job = [JOB[0], f"TRAIN={tmp_path / 'train.parquet'}", f"VAL={tmp_path / 'val.parquet'}"]
    return job, [o.replace("/data/", f"{tmp_path}/") for o in DEFAULT_OVERRIDES]


def test_slurm_command_line(tmp_path):
    job, default_overrides = local_job(tmp_path)
    (cmd,) = dry_run("slurm", *job, "NNODES=4", "PARTITION=gpu", "ACCOUNT=proj", "WALLTIME=1-00:00:00", ARGS,
                     "CPUS=64", "SBATCH_ARGS=--qos=high")
    env, cmd = split_env(cmd)
    assert env == {"RAY": "ray", "JOB_PYTHON": "python", "ENTRYPOINT": "python -m verl.trainer.main_ppo",
                   "RAY_PORT": "6379", "DASHBOARD_PORT": "8265", "NGPUS": "8",
                   "RUNTIME_ENV": "recipes/runtime_env.yaml", "RAY_START_ARGS": "", "SUBMIT_ARGS": "", "HEAD_IP": ""}
    script = cmd.index("recipes/slurm.sbatch")
    assert cmd[:script] == ["sbatch", "--nodes=4", "--gpus-per-node=8", "--partition=gpu", "--account=proj",
                            "--time=1-00:00:00", "--cpus-per-task=64", "--job-name=r4b_bpo", "--qos=high"]
    overrides = [o.replace("trainer.nnodes=1", "trainer.nnodes=4") for o in default_overrides]
    assert cmd[script + 1:] == overrides + CLUSTER_OVERRIDES + ARGS_PARSED


@pytest.mark.parametrize("bad, message", [
    ("NNODES=0", "NNODES=0: number of nodes: a whole number >= 1"),
    ("NNODES=two", "NNODES=two: number of nodes: a whole number >= 1"),
    ("NNODES=2 4", "NNODES=2 4: number of nodes: a whole number >= 1"),
    ("CPUS=0", "CPUS=0: CPUs per node: a whole number >= 1 or empty"),
    ("NGPUS=eight", "NGPUS=eight: GPUs per node: a whole number or empty"),
])  # a bad recipe, model path or data file: the preflight's (tests/test_preflight_on_cpu.py)
def test_slurm_refuses_a_bad_variable_before_calling_sbatch(tmp_path, bad, message):
    job, _ = local_job(tmp_path)
    bad, message = bad.format(tmp=tmp_path), message.format(tmp=tmp_path)
    called = tmp_path / "sbatch-called"
    sbatch = tmp_path / "sbatch"
    sbatch.write_text(f"#!/usr/bin/env bash\ntouch {called}\n")
    sbatch.chmod(0o755)
    for args in (("-n", "slurm"), ("slurm",)):
        out = make(*args, *job, bad, f"SBATCH={sbatch}")
        assert out.returncode != 0, out.stdout
        assert message in out.stderr, out.stderr
        assert not called.exists()
    out = make("slurm", *job, f"SBATCH={sbatch}")  # the same call without the bad value does reach sbatch
    assert out.returncode == 0 and called.exists(), out.stderr


@pytest.mark.parametrize("bad, message", [
    ("NNODES=0", "NNODES=0: number of nodes: a whole number >= 1"),
    ("NGPUS=eight", "NGPUS=eight: GPUs per node: a whole number or empty"),
    ("ANNEAL_RECIPE=r4b_aneal", "ANNEAL_RECIPE=r4b_aneal: no r4b_verl/config/recipe/r4b_aneal.yaml"),
    ("DATA=", "DATA=... is required: bi-mode SFT parquet file(s)"),
])  # a missing model or data file: the preflight's (tests/test_preflight_on_cpu.py)
def test_anneal_slurm_refuses_a_bad_variable_before_calling_sbatch(tmp_path, bad, message):
    (tmp_path / "sft.parquet").touch()
    bad, message = bad.format(tmp=tmp_path), message.format(tmp=tmp_path)
    called = tmp_path / "sbatch-called"
    sbatch = tmp_path / "sbatch"
    sbatch.write_text(f"#!/usr/bin/env bash\necho \"$@\" > {called}\n")
    sbatch.chmod(0o755)
    good = [f"MODEL={tmp_path}", f"DATA={tmp_path / 'sft.parquet'}", f"SBATCH={sbatch}"]
    for args in (("-n", "anneal-slurm"), ("anneal-slurm",)):
        out = make(*args, *good, bad)
        assert out.returncode != 0 and message in out.stderr, out.stderr
        assert not called.exists()
    out = make("anneal-slurm", *good, "NNODES=2")  # the same call without the bad value reaches sbatch
    assert out.returncode == 0, out.stderr
    argv = called.read_text().split()
    script = argv.index("recipes/anneal.sbatch")  # then MODEL DATA and the trainer's overrides
    assert argv[:2] == ["--nodes=2", "--gpus-per-node=8"]
    assert argv[script + 1 : script + 3] == [str(tmp_path), str(tmp_path / "sft.parquet")]


def test_slurm_leaves_uris_model_ids_and_recipe_defaults_to_the_nodes(tmp_path):
    (cmd,) = dry_run("slurm", "MODEL=Qwen/Qwen3-4B", "TRAIN=hdfs://data/train.parquet", f"VAL={tmp_path}",
                     "NGPUS=", "CPUS=", "RECIPE=r4b_bpo_cpu")
    _, cmd = split_env(cmd)
    assert cmd[:2] == ["sbatch", "--nodes=1"] and "data.train_files=hdfs://data/train.parquet" in cmd


def test_stop_command_lines():
    (cmd,) = dry_run("stop")
    assert cmd == ["RAY=ray", "RAY_TEMP_DIR=", "bash", "recipes/ray_node.sh", "stop"]
    (cmd,) = dry_run("stop", "RAY_TEMP_DIR=/tmp/r4b", "RAY_STOP_ARGS=--force")
    assert cmd == ["RAY=ray", "RAY_TEMP_DIR=/tmp/r4b", "bash", "recipes/ray_node.sh", "stop", "--force"]


def test_anneal_submit_command_line_and_refusals():
    (cmd,) = dry_run("anneal-submit", "MODEL=/shared/Qwen3-4B", "DATA=/shared/sft.parquet", "NNODES=2",
                     "ANNEAL_OUT=ckpt/anneal", "ANNEAL_VAL=/shared/val.parquet", ARGS)
    sep = cmd.index("--")
    assert cmd[:sep] == ["ray", "job", "submit", "--address=http://127.0.0.1:8265",
                         "--runtime-env=recipes/runtime_env.yaml"]
    assert cmd[sep + 1 :] == [
        "python", "-m", "verl.trainer.sft_trainer_ray", "+recipe=r4b_anneal", "model.path=/shared/Qwen3-4B",
        "data.train_files=/shared/sft.parquet", "data.val_files=/shared/val.parquet",
        f"trainer.default_local_dir={REPO / 'ckpt' / 'anneal'}",  # the job runs in the shipped copy: absolute
        "trainer.nnodes=2", "trainer.n_gpus_per_node=8", "trainer.logger=[console]", *ARGS_PARSED,
    ]
    (cmd,) = dry_run("anneal-submit", "MODEL=recipes", "DATA=Qwen/not-here.parquet")  # an existing relative path
    assert f"model.path={REPO / 'recipes'}" in cmd and "data.train_files=Qwen/not-here.parquet" in cmd
    for bad, message in [("NGPUS=", "NGPUS=: GPUs per node: a whole number >= 1"),  # one GPU per Ray worker
                         ("NNODES=two", "NNODES=two: number of nodes"),
                         ("ANNEAL_RECIPE=r4b_aneal",
                          "ANNEAL_RECIPE=r4b_aneal: no r4b_verl/config/recipe/r4b_aneal.yaml"),
                         ("MODEL=", "MODEL=... is required")]:
        out = make("-n", "anneal-submit", "MODEL=/m", "DATA=/d.parquet", bad)
        assert out.returncode != 0 and message in out.stderr, (bad, out.stderr)
