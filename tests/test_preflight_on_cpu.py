"""The preflight (r4b_verl/preflight.py): every documented GPU command passes verl's own start-up checks and
r4b-verl's, composed from where the launch takes it (the README code blocks, ``make -n`` of the launch targets);
a broken command fails with the key to change, and the launch targets refuse it before launching."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from r4b_verl.preflight import check

REPO = Path(__file__).resolve().parents[1]
GPU_RECIPES = ["r4b_bpo", "r4b_grpo", "r4b_adaptthink", "r4b_autothink", "r4b_thinkless", "r4b_adagrpo"]


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> Path:
    """The demo's tiny model (single-token think tags) and toy RL files: a local model, real rows."""
    from r4b_verl.demo.__main__ import main

    out = tmp_path_factory.mktemp("preflight")
    assert main(["--out", str(out), "--n-train", "8", "--n-val", "4"]) == 0
    return out


def job(assets: Path, *extra: str, recipe: str = "r4b_bpo") -> list[str]:
    return [f"+recipe={recipe}", f"actor_rollout_ref.model.path={assets / 'model'}",
            f"data.train_files={assets / 'train.parquet'}", f"data.val_files={assets / 'val.parquet'}", *extra]


def problems(report) -> str:
    return "\n".join(f"{c}: {m}" for c, m in report.problems)


# ------------------------------------------------------------------------------------ documented commands

def readme_code_lines():
    """(README, line) of every line in a code block of every README, continuation lines joined."""
    for md in sorted(REPO.glob("**/README.md")):
        if any(part.startswith(".") for part in md.relative_to(REPO).parts):
            continue
        for block in re.findall(r"```[\w-]*\n(.*?)```", md.read_text(), re.S):
            for line in re.sub(r"\\\n\s*", " ", block).splitlines():
                yield str(md.relative_to(REPO)), line


def documented_commands() -> list[tuple[str, str]]:
    """(README, overrides) of every ``python -m verl.trainer.main_ppo +recipe=<GPU recipe>`` in a code block."""
    found = []
    for md, line in readme_code_lines():
        m = re.search(r"python -m verl\.trainer\.main_ppo (.*)", line.split(" #")[0].split(" | ")[0])
        recipe = re.search(r"\+recipe=(\w+)", line)
        if m and recipe and not recipe.group(1).endswith("_cpu"):
            found.append((md, m.group(1)))
    return found


# The docs' placeholders, made real: the tiny model and files, this checkout's reward files for "your own".
def fill_placeholders(words: list[str], assets: Path) -> list[str]:
    values = {"actor_rollout_ref.model.path": str(assets / "model"), "data.train_files": str(assets / "train.parquet"),
              "data.val_files": str(assets / "val.parquet"), "trainer.n_gpus_per_node": "8", "trainer.nnodes": "1",
              "trainer.logger": "[console]"}
    own = {"/abs/path/my_reward.py": str(REPO / "reward_fns" / "boxed_exact.py"), "$PWD": str(REPO),
           "pkg://my_rewards.scoring:score": "pkg://r4b_verl.reward:compute_score", ":score": ":compute_score",
           "name=my_fn": "name=compute_score"}
    out, flag_value = [], False
    for word in words:
        if flag_value or word in ("...", "ARGS...") or word.startswith("--"):
            flag_value = word == "--cfg"  # "the rest of your command", and Hydra's own flags (--cfg job)
            continue
        for placeholder, real in own.items():
            word = word.replace(placeholder, real)
        key, sep, value = word.partition("=")
        if sep and key in values and not value.isdigit():
            word = f"{key}={values[key]}"
        elif sep and value == "...":
            word = f"{key}=doc"
        out.append(word)
    keys = {w.partition("=")[0].lstrip("+") for w in out}
    return out + [f"{k}={v}" for k, v in values.items()
                  if k.startswith(("actor_rollout_ref.model", "data.")) and k not in keys]


def test_the_docs_hold_gpu_commands():
    docs = {md for md, _ in documented_commands()}
    assert {"README.md", "recipes/README.md", "r4b_verl/methods/README.md", "r4b_verl/reward/README.md"} <= docs
    targets = {target for _, target, _ in documented_make_lines()}
    assert targets == set(LAUNCH_TARGETS)


@pytest.mark.parametrize("where, command", documented_commands())
def test_every_documented_gpu_command_passes(assets, where, command):
    report = check("ppo", fill_placeholders(shlex.split(command), assets))
    assert report.ok, f"{where}: {command}\n{problems(report)}"
    assert report.world_size == 8
    assert "verl validate_config (world size 8)" in report.passed
    assert "bi-mode rollout: bpo block, split, loss, prompt budget (with the tokenizer)" in report.passed


def documented_make_lines() -> list[tuple[str, str, list[str]]]:
    """(README, target, variables) of every ``make <launch target> ...`` in a code block, CPU recipes aside."""
    found = []
    for md, line in readme_code_lines():
        m = re.match(r"\s*make (\S+)(.*)", line.split(" #")[0])
        if m and m.group(1) in LAUNCH_TARGETS and not re.search(r"RECIPE=\w+_cpu", line):
            found.append((md, m.group(1), shlex.split(m.group(2))))
    return found


LAUNCH_TARGETS = ("train", "submit", "slurm", "preflight", "anneal", "anneal-submit", "anneal-slurm", "eval")


def fill_make_placeholders(target: str, words: list[str], assets: Path, sft: Path, tmp: Path) -> list[str]:
    """The docs' placeholder variables made real; optional parts ([...]) kept; paths no test can hold dropped."""
    real = {"MODEL": assets / "model", "TRAIN": assets / "train.parquet", "VAL": assets / "val.parquet",
            "DATA": sft if target.startswith("anneal") else assets / "val.parquet", "ANNEAL_OUT": tmp / "anneal",
            "EVAL_OUT": tmp / "eval"}
    out = []
    for word in words:
        if re.match(r"^\[?[A-Z_]+=", word):
            word = word.lstrip("[").removesuffix("]")
        name, _, value = word.partition("=")
        if name in ("CHECKPOINT", "ANNEAL_VAL"):
            continue  # a checkpoint or file of the user's run: not what the start-up checks read
        out.append(f"{name}={real[name]}" if name in real else word)
    return out


def preflight_words(lines: list[list[str]]) -> tuple[str, list[str]]:
    pre = next(w for w in lines if w[1:3] == ["-m", "r4b_verl.preflight"])
    return pre[3], pre[4:]


def eval_overrides(lines: list[list[str]], tmp: Path) -> list[str]:
    """make eval runs python -m r4b_verl.evaluate run ...; the main_ppo overrides it builds from its arguments."""
    from r4b_verl.evaluate.run import eval_command, split_overrides

    words = next(w for w in lines if w[1:3] == ["-m", "r4b_verl.evaluate"])
    ours, hydra = split_overrides(words[4:])
    opts = dict(zip(ours[::2], ours[1::2], strict=False))
    return eval_command(opts["--model"], opts["--data"], tmp, opts["--recipe"], overrides=tuple(hydra))[3:]


@pytest.mark.parametrize("where, target, words", documented_make_lines())
def test_every_documented_make_command_passes(assets, sft_file, tmp_path, where, target, words):
    variables = fill_make_placeholders(target, words, assets, sft_file, tmp_path)
    if target in ("anneal", "anneal-slurm"):  # run_anneal.sh runs the preflight: run it up to there
        sbatch, _ = fake_sbatch(tmp_path)
        out = run_make(target, *variables, f"JOB_PYTHON={sys.executable}", f"SBATCH={sbatch}",
                       env={"PREFLIGHT_ONLY": "1"})
        assert out.returncode == 0 and re.search(r"^preflight: ok", out.stdout, re.M), f"{where}: make {target} " \
            f"{' '.join(words)}\n{out.stdout}{out.stderr}"
        return
    lines = make_n(target, *variables)
    kind, overrides = ("ppo", eval_overrides(lines, tmp_path)) if target == "eval" else preflight_words(lines)
    report = check(kind, overrides)
    assert report.ok, f"{where}: make {target} {' '.join(words)}\n{problems(report)}"


# ------------------------------------------------------------------------------------ make targets

def make_n(*args: str) -> list[list[str]]:
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    out = subprocess.run(["make", "--no-print-directory", "-n", *args], cwd=REPO, capture_output=True, text=True,
                         timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    return [shlex.split(line) for line in re.sub(r"\\\n\s*", " ", out.stdout).splitlines() if line.strip()]


def preflight_and_launch(lines: list[list[str]]) -> tuple[list[str], list[str]]:
    """(the preflight's overrides, the launched job's overrides) of one target's ``make -n``."""
    pre = next(w for w in lines if w[1:3] == ["-m", "r4b_verl.preflight"])
    launch = next(w for w in lines if any(x.startswith("+recipe=") for x in w) and w is not pre)
    start = next(i for i, x in enumerate(launch) if x.startswith("+recipe="))
    assert pre[3] == "ppo"
    return pre[4:], launch[start:]


@pytest.mark.parametrize("nnodes", ["1", "2"])
@pytest.mark.parametrize("target", ["train", "submit", "slurm"])
def test_every_launch_target_preflights_what_it_launches_and_passes(assets, target, nnodes):
    for recipe in GPU_RECIPES:
        lines = make_n(target, f"RECIPE={recipe}", f"NNODES={nnodes}", f"MODEL={assets / 'model'}",
                       f"TRAIN={assets / 'train.parquet'}", f"VAL={assets / 'val.parquet'}")
        checked, launched = preflight_and_launch(lines)
        assert checked == launched  # the same words: the check is of the job, not of a copy
        report = check("ppo", launched)
        assert report.ok, f"make {target} RECIPE={recipe} NNODES={nnodes}\n{problems(report)}"
        assert report.world_size == 8 * int(nnodes)


def test_launch_target_refuses_before_launching(assets, tmp_path):
    marker = tmp_path / "launched"
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    out = subprocess.run(
        ["make", "--no-print-directory", "train", f"MODEL={assets / 'model'}", f"TRAIN={assets / 'train.parquet'}",
         f"VAL={assets / 'val.parquet'}", f"JOB_PYTHON={sys.executable}", f"ENTRYPOINT=touch {marker}",
         "ARGS=actor_rollout_ref.actor.ppo_mini_batch_size=512"],
        cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode != 0 and not marker.exists()  # refused on this host; the job never started
    assert "actor_rollout_ref.actor.ppo_mini_batch_size=512 > data.train_batch_size=256" in out.stdout


# ------------------------------------------------------------------------------------ each check refuses

@pytest.mark.parametrize(
    "extra, check_name, match",
    [
        (["actor_rollout_ref.actor.ppo_mini_batch_size=512"], "batch sizes", r"ppo_mini_batch_size=512 > data\.train"),
        (["trainer.n_gpus_per_node=6"], "batch sizes", r"do not split evenly over the 6 GPUs"),
        (["actor_rollout_ref.actor.use_dynamic_bsz=false"], "verl validate_config",
         r"Please set at least one of 'actor\.ppo_micro_batch_size'"),
        (["bpo.train_mode_tokn=true"], "Hydra composition", r"Did you mean bpo\.train_mode\?"),
        (["actor_rollout_ref.rolout.n=4"], "Hydra composition", r"Did you mean actor_rollout_ref\.rollout\?"),
        (["actor_rollout_ref.rollout.n=3"], "bi-mode rollout", r"rollout\.n=3 with bpo\.think_fraction=0\.5 does not"),
        (["actor_rollout_ref.rollout.prompt_length=1000"], "bi-mode rollout",
         r"prompt_length=1000 < data\.max_prompt_length=1024 \+ the \d-token mode prefix"),
        (["data.filter_overlong_prompts=false"], "bi-mode rollout", r"data\.filter_overlong_prompts=true"),
        (["actor_rollout_ref.actor.ppo_max_token_len_per_gpu=4000"], "token budgets",
         r"ppo_max_token_len_per_gpu=4000.* < rollout\.prompt_length \+ rollout\.response_length = 5128"),
        (["reward.custom_reward_function.reward_kwargs.default=exactt"], "reward options", r"unknown reward 'exactt'"),
        (["reward.custom_reward_function.reward_kwargs.format_weight=2"], "reward options", r"format_weight"),
        (["actor_rollout_ref.rollout.name=???"], "mandatory values", r"actor_rollout_ref\.rollout\.name"),
        (["actor_rollout_ref.model.path=/no/such/model"], "model", r"/no/such/model: no such directory"),
        (["+recipe=r4b_bpoo"], "Hydra composition", r"recipe/r4b_bpoo"),
        (["data.val_files=[{val},{val}2]"], "data check", r"data\.val_files: .*not found: .*val\.parquet2"),
    ],
)
def test_a_broken_command_fails_with_its_key(assets, extra, check_name, match):
    report = check("ppo", job(assets, *(e.format(val=assets / "val.parquet") for e in extra)))
    assert not report.ok
    assert any(c.startswith(check_name) and re.search(match, m) for c, m in report.problems), problems(report)


def test_a_bad_data_row_is_refused(assets, tmp_path):
    import pandas as pd

    rows = pd.read_parquet(assets / "train.parquet")
    rows.at[1, "reward_model"] = {"style": "rule", "ground_truth": None}
    bad = tmp_path / "bad.parquet"
    rows.to_parquet(bad)
    report = check("ppo", job(assets, f"data.train_files={bad}"))
    assert any(c.startswith("data check") and "row 1" in m and str(bad) in m for c, m in report.problems), \
        problems(report)


def test_make_preflight_prints_ok(assets):
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    out = subprocess.run(["make", "--no-print-directory", "preflight", f"MODEL={assets / 'model'}",
                          f"TRAIN={assets / 'train.parquet'}", f"VAL={assets / 'val.parquet'}",
                          f"JOB_PYTHON={sys.executable}", "RECIPE=r4b_thinkless", "NNODES=2"],
                         cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "preflight ppo +recipe=r4b_thinkless, world size 16" in out.stdout
    assert re.search(r"^preflight: ok", out.stdout, re.M)


# ------------------------------------------------------------------------------------ evaluation

def test_the_evaluation_command_is_preflighted(assets, tmp_path, capsys):
    from r4b_verl.evaluate.__main__ import main
    from r4b_verl.evaluate.run import eval_command

    cmd = eval_command(str(assets / "model"), str(assets / "val.parquet"), tmp_path, "r4b_bpo")
    assert check("ppo", cmd[3:]).ok  # what make eval launches on GPUs starts
    code = main(["run", "--model", str(assets / "model"), "--data", str(assets / "val.parquet"), "--out",
                 str(tmp_path / "eval"), "--", "actor_rollout_ref.rollout.n=3"])
    assert code == 1 and not (tmp_path / "eval" / "run").exists()  # refused before verl started
    assert "preflight refused" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ stage 1 (SFT)

@pytest.fixture(scope="module")
def sft_file(assets) -> Path:
    import pandas as pd

    messages = [[{"role": "user", "content": f"What is {i} + 1?"},
                 {"role": "assistant", "content": f"<think>\n\n</think>\n\n\\boxed{{{i + 1}}}"}] for i in range(512)]
    path = assets / "sft.parquet"
    pd.DataFrame({"messages": messages}).to_parquet(path)
    return path


def run_make(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    return subprocess.run(["make", "--no-print-directory", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=180, env={**base, "PYTHONWARNINGS": "ignore", **(env or {})})


def fake_sbatch(tmp_path: Path) -> tuple[Path, Path]:
    called, sbatch = tmp_path / "sbatch-called", tmp_path / "sbatch"
    sbatch.write_text(f"#!/usr/bin/env bash\ntouch {called}\n")
    sbatch.chmod(0o755)
    return sbatch, called


def test_stage1_targets_preflight_the_sft_job(assets, sft_file, tmp_path):
    stage1 = [f"MODEL={assets / 'model'}", f"DATA={sft_file}", f"JOB_PYTHON={sys.executable}",
              f"ANNEAL_OUT={tmp_path / 'anneal'}"]
    out = run_make("anneal", *stage1, env={"PREFLIGHT_ONLY": "1"})  # run_anneal.sh stops after its preflight
    assert out.returncode == 0 and "preflight sft +recipe=r4b_anneal, world size 8" in out.stdout, \
        out.stdout + out.stderr
    sbatch, called = fake_sbatch(tmp_path)
    out = run_make("anneal-slurm", *stage1, "NNODES=2", f"SBATCH={sbatch}")
    assert out.returncode == 0 and called.exists(), out.stdout + out.stderr
    assert "preflight sft +recipe=r4b_anneal, world size 16" in out.stdout
    for nnodes in ("1", "2"):  # anneal-submit: the preflight's words are the submitted job's
        lines = make_n("anneal-submit", *stage1, f"NNODES={nnodes}")
        pre = next(w for w in lines if w[1:3] == ["-m", "r4b_verl.preflight"])
        launch = next(w for w in lines if "verl.trainer.sft_trainer_ray" in w)
        assert pre[3] == "sft" and pre[4:] == launch[launch.index("verl.trainer.sft_trainer_ray") + 1:]
        report = check("sft", pre[4:])
        assert report.ok and report.world_size == 8 * int(nnodes), problems(report)


def test_stage1_refused_before_sbatch(assets, tmp_path):
    sbatch, called = fake_sbatch(tmp_path)
    out = run_make("anneal-slurm", f"MODEL={assets / 'model'}", f"DATA={assets / 'train.parquet'}",
                   f"JOB_PYTHON={sys.executable}", f"SBATCH={sbatch}")
    assert out.returncode != 0 and not called.exists()
    assert "has no column 'messages' (data.messages_key)" in out.stdout


@pytest.mark.parametrize(
    "extra, match",
    [
        (["data.train_batch_size=1000"], r"hold 512 rows, fewer than data\.train_batch_size=1000: .* 0 steps"),
        (["trainer.n_gpus_per_node=3"], r"train_batch_size=256 is not a multiple of the data-parallel size 3"),
        (["model.path=/no/such/model"], r"model\.path=/no/such/model: no such directory"),
        (["optim.lr_scheduler_type=sawtooth"],
         r"assert self\.lr_scheduler_type in \[.constant., .cosine.\] \(optimizer\.py"),
    ],
)
def test_a_broken_stage1_command_fails_with_its_key(assets, sft_file, extra, match):
    report = check("sft", ["+recipe=r4b_anneal", f"model.path={assets / 'model'}", f"data.train_files={sft_file}",
                           *extra])
    assert any(re.search(match, m) for _, m in report.problems), problems(report)
