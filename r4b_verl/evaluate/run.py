"""Evaluate a model in all three modes with verl's own validation: ``main_ppo ... trainer.val_only=true``.

The command is verl's trainer with the recipe, made an evaluation by:

- ``trainer.val_only=true trainer.val_before_train=true``: validate once, log, return;
- ``bpo.val_mode=all``: the BPO worker rolls every prompt out ``val_kwargs.n`` times in forced thinking,
  forced non-thinking and auto mode (one request per mode per sample);
- ``trainer.validation_data_dir=OUT/generations``: verl dumps every response with its reward info;
- the file logger into ``OUT/metrics.jsonl`` (the ``val-core/``, ``val-aux/`` and ``bpo/val/`` numbers).

The model is an HF path (``actor_rollout_ref.model.path``) or a verl checkpoint
(``trainer.resume_mode=resume_path trainer.resume_from_path=.../global_step_N``, with the model path
naming its architecture and tokenizer). GPU runs use ``+recipe=r4b_bpo`` (vLLM); ``r4b_bpo_cpu`` is the
CPU backend.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path


def split_overrides(argv: list[str]) -> tuple[list[str], list[str]]:
    """(our arguments, the Hydra overrides after ``--``) of a command line."""
    if "--" not in argv:
        return argv, []
    return argv[: argv.index("--")], argv[argv.index("--") + 1 :]


def eval_command(model: str, data: str, out: Path, recipe: str = "r4b_bpo", n: int | None = None,
                 checkpoint: str | None = None, python: str = sys.executable, overrides: tuple[str, ...] = (),
                 val_mode: str = "all") -> list[str]:
    """The ``main_ppo`` command line of a validation-only run (``data`` as ``data.val_files`` takes it).

    ``val_mode=all`` is the three-mode evaluation; the labeller samples its annotator in one mode.
    """
    cmd = [
        python, "-m", "verl.trainer.main_ppo", f"+recipe={recipe}",
        f"actor_rollout_ref.model.path={model}",
        f"data.train_files={data}", f"data.val_files={data}",  # verl builds a train loader even for val_only
        "trainer.val_only=true", "trainer.val_before_train=true", f"bpo.val_mode={val_mode}",
        f"trainer.validation_data_dir={out / 'generations'}",
        "trainer.logger=[console,file]",
        f"+ray_kwargs.ray_init.runtime_env.env_vars.VERL_FILE_LOGGER_PATH={out / 'metrics.jsonl'}",
    ]
    if n is not None:
        cmd.append(f"actor_rollout_ref.rollout.val_kwargs.n={n}")
    if checkpoint:
        cmd += ["trainer.resume_mode=resume_path", f"trainer.resume_from_path={checkpoint}"]
    return cmd + list(overrides)


def run_validation(cmd: list[str], out: Path, log_name: str) -> int:
    """Run ``cmd`` in ``out/run`` (verl writes relative paths, outputs/ and checkpoints/, under its working
    directory), its output streamed and kept in ``out/log_name``; returns the exit code.

    The command's overrides go through the preflight first (``r4b_verl.preflight``): a command verl would refuse
    raises :class:`~r4b_verl.preflight.PreflightError` here, before Ray and a model load.
    """
    from r4b_verl.preflight import require

    require("ppo", cmd[cmd.index("verl.trainer.main_ppo") + 1 :])
    (out / "run").mkdir(parents=True, exist_ok=True)
    return run_streaming(cmd, cwd=out / "run", log=out / log_name)


def run_streaming(cmd: list[str], cwd: Path, log: Path, heartbeat_s: float = 30.0) -> int:
    """Run ``cmd``, its output to the terminal and to ``log``; a line every ``heartbeat_s`` of silence."""
    last = [time.monotonic()]
    start = last[0]
    done = threading.Event()

    def heartbeat():
        while not done.wait(5.0):
            if time.monotonic() - last[0] >= heartbeat_s:
                print(f"[r4b-verl eval] still running: {time.monotonic() - start:.0f} s", flush=True)
                last[0] = time.monotonic()

    thread = threading.Thread(target=heartbeat, daemon=True)
    thread.start()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "w") as sink, subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                                  stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            sys.stdout.write(line)
            sink.write(line)
            last[0] = time.monotonic()
        code = proc.wait()
    done.set()
    return code
