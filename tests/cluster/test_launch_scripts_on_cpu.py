"""The launch scripts in recipes/: syntax, runtime envs, argument checks, and `make slurm` run end to end
against fake Slurm and Ray commands (no Slurm here): the order of the steps and the tear-down."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
import yaml

import r4b_verl

REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "recipes"
JOB = ["MODEL=Qwen/Qwen3-4B", "TRAIN=/data/train.parquet", "VAL=/data/val.parquet"]


@pytest.mark.parametrize("script", ["ray_node.sh", "slurm.sbatch"])
def test_scripts_parse_and_are_strict(script):
    text = (RECIPES / script).read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    out = subprocess.run(["bash", "-n", str(RECIPES / script)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr


def test_sbatch_directives_come_before_any_command():
    lines = (RECIPES / "slurm.sbatch").read_text().splitlines()
    first_command = next(i for i, line in enumerate(lines[1:], 1) if line.strip() and not line.startswith("#"))
    directives = [i for i, line in enumerate(lines) if line.startswith("#SBATCH")]
    assert directives and max(directives) < first_command  # sbatch ignores #SBATCH after the first command


def _recipe_runtime_env_vars(name: str) -> set[str]:
    cfg = yaml.safe_load((RECIPES / "recipe" / f"{name}.yaml").read_text()) or {}
    return set((((cfg.get("ray_kwargs") or {}).get("ray_init") or {}).get("runtime_env") or {}).get("env_vars") or {})


@pytest.mark.parametrize("env_file", ["runtime_env.yaml", "runtime_env_pip.yaml"])
def test_runtime_envs_load_the_plugin_and_do_not_collide_with_the_recipes(env_file):
    env = yaml.safe_load((RECIPES / env_file).read_text())
    assert env["env_vars"]["VERL_USE_EXTERNAL_MODULES"] == "r4b_verl.plugin"
    # Ray refuses to merge the job's runtime env with ray.init()'s when both set the same variable.
    for recipe in (p.stem for p in (RECIPES / "recipe").glob("*.yaml")):
        clash = set(env["env_vars"]) & _recipe_runtime_env_vars(recipe)
        assert not clash, f"{env_file} and recipe {recipe} both set {clash}"


def test_shipping_runtime_env_ships_the_checkout_without_heavy_or_private_folders():
    env = yaml.safe_load((RECIPES / "runtime_env.yaml").read_text())
    assert env["working_dir"] == "."
    assert {".git", ".venv", "build", "assets", "checkpoints"} <= set(env["excludes"])


def test_pip_runtime_env_pins_this_release():
    env = yaml.safe_load((RECIPES / "runtime_env_pip.yaml").read_text())
    assert env["pip"]["packages"] == [f"r4b-verl=={r4b_verl.__version__}"]


def _ray_node(*args, **env):
    return subprocess.run(["bash", str(RECIPES / "ray_node.sh"), *args], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "RAY": "false", **env})


def test_ray_node_refuses_bad_arguments():
    out = _ray_node("worker", "--disable-usage-stats")
    assert out.returncode == 2 and "worker needs --address=HOST:PORT" in out.stderr
    out = _ray_node("head", RAY_TEMP_DIR="relative/dir")
    assert out.returncode == 2 and "RAY_TEMP_DIR must be an absolute path" in out.stderr
    out = _ray_node("head", RAY_TEMP_DIR="/tmp/" + "x" * 60)
    assert out.returncode == 2 and "keep it under 40" in out.stderr
    out = _ray_node("restart")
    assert out.returncode == 2 and "usage:" in out.stderr


def test_scoped_stop_of_a_node_that_is_not_running_touches_nothing(tmp_path):
    out = _ray_node("stop", RAY_TEMP_DIR=str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "no Ray process of the node" in out.stdout


def test_scoped_stop_kills_exactly_the_tagged_processes(tmp_path):
    """Processes carrying the node's tag go (even in their own process group); others stay."""
    tag = str(tmp_path / "node")
    ours = subprocess.Popen(["sleep", "300"], env={**os.environ, "R4B_RAY_NODE": tag}, start_new_session=True)
    other = subprocess.Popen(["sleep", "300"], env={**os.environ, "R4B_RAY_NODE": tag + "-other"},
                             start_new_session=True)
    try:
        out = _ray_node("stop", RAY_TEMP_DIR=tag, RAY_STOP_GRACE="2")
        assert out.returncode == 0, out.stdout + out.stderr
        assert "1 processes (SIGTERM)" in out.stdout and "stopped" in out.stdout
        assert ours.wait(timeout=10) is not None
        assert other.poll() is None
    finally:
        for proc in (ours, other):
            proc.kill()
            proc.wait()


def _live_members(pgid: int) -> list[str]:
    rows = subprocess.run(["ps", "-e", "-o", "pid=,pgid=,stat="], capture_output=True, text=True).stdout.split("\n")
    return [r for r in rows if r.split()[1:2] == [str(pgid)] and not r.split()[2].startswith("Z")]


def test_scoped_stop_kills_the_recorded_process_group_too(tmp_path):
    """Ray's daemons share the process group recorded at start; some of them lack the tag."""
    tag = str(tmp_path)
    node = subprocess.Popen(["bash", "-c", 'echo $$ > "$1/r4b_ray_node.pgid"; env -u R4B_RAY_NODE sleep 300 & '
                             "exec sleep 300", "_", tag], env={**os.environ, "R4B_RAY_NODE": tag},
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while len(_live_members(node.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(_live_members(node.pid)) == 2
        out = _ray_node("stop", RAY_TEMP_DIR=tag, RAY_STOP_GRACE="2")
        assert out.returncode == 0, out.stdout + out.stderr
        node.wait(timeout=10)
        assert _live_members(node.pid) == []
        assert not (tmp_path / "r4b_ray_node.pgid").exists()
    finally:
        try:
            os.killpg(node.pid, signal.SIGKILL)
        except OSError:
            pass


def test_scoped_stop_ignores_a_recorded_group_that_is_no_longer_the_node(tmp_path):
    """A stale pgid file (the node died, the id was reused) must not get another group killed."""
    stranger = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        (tmp_path / "r4b_ray_node.pgid").write_text(f"{stranger.pid}\n")
        out = _ray_node("stop", RAY_TEMP_DIR=str(tmp_path), RAY_STOP_GRACE="1")
        assert out.returncode == 0 and "no Ray process of the node" in out.stdout, out.stdout + out.stderr
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


FAKES = {
    # scontrol show hostnames NODELIST
    "scontrol": """
        [[ "$1 $2" == "show hostnames" ]] || exit 1
        printf 'node1\\nnode2\\nnode3\\n'
    """,
    # srun [options] command...: runs the command "on" the node given with -w
    "srun": """
        echo "srun $*" >> "$FAKE_LOG"
        while (( $# )); do
            case $1 in
                -w) export FAKE_NODE=$2; shift 2 ;;
                -*) shift ;;
                *) break ;;
            esac
        done
        exec "$@"
    """,
    "ray": """
        case "$1 $2" in
            "start "*)
                echo "ray $* @ $FAKE_NODE" >> "$FAKE_LOG"
                sleep 300 &
                trap 'kill $!; echo "ray stopped @ $FAKE_NODE" >> "$FAKE_LOG"; exit 0' TERM
                wait ;;
            "job submit")
                echo "ray $*" >> "$FAKE_LOG"
                exit "${FAKE_JOB_RC:-0}" ;;
            *)
                echo "ray $*" >> "$FAKE_LOG" ;;
        esac
    """,
    # the JOB_PYTHON that counts alive nodes: as many as `ray start` calls so far
    "python": """
        cat > /dev/null
        grep -c '^ray start' "$FAKE_LOG" || true
    """,
    # sbatch [options] script args...: run the script at once as the batch step of a 3-node job
    "sbatch": """
        echo "sbatch $*" >> "$FAKE_LOG"
        while [[ $1 == -* ]]; do
            [[ $1 == --cpus-per-task=* ]] && export SLURM_CPUS_PER_TASK=${1#*=}
            shift
        done
        SLURM_JOB_ID=42 SLURM_JOB_NODELIST='node[1-3]' SLURMD_NODENAME=node1 SLURM_SUBMIT_DIR=$PWD exec bash "$@"
    """,
}


@pytest.fixture
def fake_cluster(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in FAKES.items():
        path = bin_dir / name
        path.write_text("#!/usr/bin/env bash\n" + textwrap.dedent(body))
        path.chmod(0o755)
    log = tmp_path / "calls.log"
    log.touch()
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env['PATH']}", FAKE_LOG=str(log), HEAD_IP="10.0.0.1",
               WAIT_NODES_POLL="0.2", WAIT_NODES_TIMEOUT="20")
    return bin_dir, log, env


def _make_slurm(bin_dir, env, *extra):
    data = bin_dir.parent  # make slurm checks that local data paths exist
    for name in ("train.parquet", "val.parquet"):
        (data / name).touch()
    job = [JOB[0], f"TRAIN={data / 'train.parquet'}", f"VAL={data / 'val.parquet'}"]
    return subprocess.run(["make", "--no-print-directory", "slurm", *job, "NNODES=3", f"SBATCH={bin_dir}/sbatch",
                           f"RAY={bin_dir}/ray", f"JOB_PYTHON={bin_dir}/python", *extra],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_make_slurm_starts_head_then_workers_submits_and_tears_down(fake_cluster):
    bin_dir, log, env = fake_cluster
    out = _make_slurm(bin_dir, env, "ARGS=trainer.experiment_name='run 1'")
    assert out.returncode == 0, out.stdout + out.stderr
    calls = log.read_text().splitlines()
    ray = f"{bin_dir}/ray"
    starts = [c for c in calls if c.startswith("ray start")]
    assert starts[0] == ("ray start --head --block --node-ip-address=10.0.0.1 --port=6379 --dashboard-host=127.0.0.1 "
                         "--dashboard-port=8265 --disable-usage-stats --num-gpus=8 @ node1")
    assert sorted(starts[1:]) == [  # the workers start together, once the head answers
        "ray start --block --address=10.0.0.1:6379 --disable-usage-stats --num-gpus=8 @ node2",
        "ray start --block --address=10.0.0.1:6379 --disable-usage-stats --num-gpus=8 @ node3",
    ]
    assert calls[0].startswith("sbatch --nodes=3 --gpus-per-node=8 --job-name=r4b_bpo ")
    assert f"srun --overlap --nodes=1 --ntasks=1 -w node1 {ray} start --head" in calls[1]
    (submit,) = [c for c in calls if c.startswith("ray job submit")]
    assert submit.startswith("ray job submit --address=http://127.0.0.1:8265 --submission-id=r4b-42 "
                             f"--runtime-env=recipes/runtime_env.yaml -- {bin_dir}/python -m verl.trainer.main_ppo "
                             "+recipe=r4b_bpo ")
    assert "trainer.nnodes=3" in submit and "ray_kwargs.ray_init.num_cpus=null" in submit
    assert submit.endswith("trainer.experiment_name=run 1")
    # the job is submitted only once every node is up, and all of them are stopped afterwards
    assert calls.index(submit) > max(calls.index(s) for s in starts)
    stopped = sorted(c for c in calls[calls.index(submit):] if c.startswith("ray stopped"))
    assert stopped == ["ray stopped @ node1", "ray stopped @ node2", "ray stopped @ node3"]
    assert "job r4b-42 succeeded" in out.stdout


def test_make_slurm_propagates_a_failed_job_and_still_tears_down(fake_cluster):
    bin_dir, log, env = fake_cluster
    env["FAKE_JOB_RC"] = "3"
    out = _make_slurm(bin_dir, env)
    assert out.returncode != 0
    assert "tearing down (exit code 3)" in out.stdout
    # the end of the log says why: the failing command (expanded), its exit code, where the log is
    report = [line for line in out.stderr.splitlines() if line.startswith("slurm.sbatch: ")][-3:]
    assert report[0] == "slurm.sbatch: job 42 FAILED with exit code 3", out.stderr
    assert report[1].startswith(f"slurm.sbatch: failing command: {bin_dir}/ray job submit "
                                "--address=http://127.0.0.1:8265 --submission-id=r4b-42 "), report
    assert "actor_rollout_ref.model.path=Qwen/Qwen3-4B" in report[1], report
    assert report[2].startswith(f"slurm.sbatch: log: slurm-r4b-bpo-42.out (in {REPO})"), report
    calls = log.read_text().splitlines()
    assert any(c.startswith("ray job stop --address=http://127.0.0.1:8265 r4b-42") for c in calls)
    assert sorted(c for c in calls if c.startswith("ray stopped")) == [f"ray stopped @ node{i}" for i in (1, 2, 3)]


def test_slurm_script_gives_up_when_nodes_do_not_join(fake_cluster):
    bin_dir, log, env = fake_cluster
    (bin_dir / "python").write_text("#!/usr/bin/env bash\ncat > /dev/null\necho 1\n")  # workers never join
    env["WAIT_NODES_TIMEOUT"] = "1"
    out = _make_slurm(bin_dir, env)
    assert out.returncode != 0
    assert "only 1 of 3 Ray nodes joined within 1s" in out.stderr
    assert "slurm.sbatch: failing command: slurm.sbatch: only 1 of 3 Ray nodes joined" in out.stderr
    assert not any(c.startswith("ray job submit") for c in log.read_text().splitlines())
    assert len([c for c in log.read_text().splitlines() if c.startswith("ray stopped")]) == 3


def test_slurm_script_refuses_to_run_outside_slurm():
    out = subprocess.run(["bash", str(RECIPES / "slurm.sbatch"), "+recipe=r4b_bpo"], capture_output=True, text=True,
                         timeout=30, env={k: v for k, v in os.environ.items() if not k.startswith("SLURM_")})
    assert out.returncode == 2 and "not inside a Slurm job" in out.stderr


def test_make_slurm_cpus_reach_the_steps_and_ray(fake_cluster):
    bin_dir, log, env = fake_cluster
    out = _make_slurm(bin_dir, env, "CPUS=32")
    assert out.returncode == 0, out.stdout + out.stderr
    calls = log.read_text().splitlines()
    assert "--cpus-per-task=32" in calls[0]
    sruns = [c for c in calls if c.startswith("srun ")]
    assert len(sruns) == 3 and all(c.startswith("srun --overlap --nodes=1 --ntasks=1 --cpus-per-task=32 -w node")
                                   for c in sruns), sruns
    starts = [c for c in calls if c.startswith("ray start")]
    assert len(starts) == 3 and all("--num-gpus=8 --num-cpus=32 @ node" in c for c in starts), starts
