"""Preflight: the start-up checks a job meets, run on the submitting host without GPUs, in seconds.

    python -m r4b_verl.preflight ppo +recipe=r4b_bpo actor_rollout_ref.model.path=... data.train_files=... [...]
    python -m r4b_verl.preflight sft +recipe=r4b_anneal model.path=... data.train_files=... [...]

The arguments are the job's own Hydra overrides (``make train|submit|slurm|anneal*|eval`` pass exactly the ones
they launch with). One process composes them as verl's entry point does (``ppo_trainer`` for
``verl.trainer.main_ppo``, ``sft_trainer_engine`` for ``verl.trainer.sft_trainer``) and runs, in order:

1. Hydra's composition (an unknown key is named, with the closest existing one);
2. verl's own checks before any worker starts: ``validate_config`` with the job's world size
   (``trainer.n_gpus_per_node x trainer.nnodes``), as ``main_ppo`` does in the driver, and the dataclass
   conversions the trainer makes next (rollout, checkpoint engine, model; the SFT trainer's model, engine,
   optimiser, checkpoint and profiler); mandatory ``???`` values;
3. r4b-verl's start-up checks that need no GPU: the ``bpo`` block and the bi-mode split of ``rollout.n``,
   the decision-token loss, the prompt budget, the mode prefixes against the tokenizer (when the model is a
   local path: otherwise the workers check it), the dynamic-batch token budgets against the sequence length
   (verl finds that only inside a step), the reward options and the routes' rewards, and the data check on
   the files (``bpo.data_check``); for SFT, the files' ``messages`` column and enough rows for one batch.

It prints ``ok`` or every problem found, each naming the key (or file) to change, and exits 1 on a problem.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import os
import re
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

CONFIG_NAMES = {"ppo": "ppo_trainer", "sft": "sft_trainer_engine"}  # verl's entry points' config names
_GROUP_CHOICE = re.compile(r"^\+{0,2}recipe=")


class PreflightError(ValueError):
    """A problem the job would meet at start-up (or worse, inside a step); names the key to change."""


@dataclass
class Report:
    kind: str
    overrides: list[str]
    problems: list[tuple[str, str]] = field(default_factory=list)  # (check, message)
    notes: list[str] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)
    world_size: int | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        recipe = next((o.split("=", 1)[1] for o in self.overrides if _GROUP_CHOICE.match(o)), "(no +recipe=)")
        head = f"[r4b-verl] preflight {self.kind} +recipe={recipe}"
        if self.world_size is not None:
            head += f", world size {self.world_size}"
        lines = [head]
        lines += [f"  ok    {name}" for name in self.passed]
        lines += [f"  note  {note}" for note in self.notes]
        lines += [f"  FAIL  {check}: {message}" for check, message in self.problems]
        verdict = "ok" if self.ok else f"{len(self.problems)} problem(s): fix the key named, then run it again"
        lines.append(f"preflight: {verdict} ({self.seconds:.1f} s)")
        return "\n".join(lines)

    def run(self, name: str, check: Callable[[], Any]) -> Any:
        """Run one check; a refusal (any exception) becomes a problem, stdout chatter of verl's is kept quiet."""
        quiet = io.StringIO()
        try:
            with contextlib.redirect_stdout(quiet):
                result = check()
        except Exception as exc:  # noqa: BLE001 - every refusal is reported, none stops the other checks
            self.problems.append((name, explain(exc)))
            return None
        self.passed.append(name)
        return result


def explain(exc: BaseException) -> str:
    """The innermost message: verl's dataclass conversions wrap their assertions in Hydra's InstantiationException."""
    while exc.__cause__ is not None and type(exc).__name__ in ("InstantiationException", "ConfigCompositionException"):
        exc = exc.__cause__
    text = str(exc).strip()
    if not text and exc.__traceback__ is not None:  # a bare assert: the failing line says what it wanted
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        text = f"{frame.line} ({os.path.basename(frame.filename)}:{frame.lineno})"
    text = text or type(exc).__name__
    return text if isinstance(exc, (ValueError, AssertionError)) else f"{type(exc).__name__}: {text}"


def compose(kind: str, overrides: Sequence[str]) -> DictConfig:
    """The config verl's entry point would build from ``overrides`` (its config module, our search path)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    with initialize_config_module("verl.trainer.config", version_base=None):
        return hydra_compose(CONFIG_NAMES[kind], overrides=list(overrides))


def closest_key(kind: str, overrides: Sequence[str], error: BaseException) -> str:
    """For Hydra's "Could not override 'a.b'": the closest key the composed recipe has, and how to add one."""
    match = re.search(r"Could not override '([^']+)'", str(error))
    if not match:
        return ""
    key = match.group(1)
    try:
        node: Any = compose(kind, [o for o in overrides if _GROUP_CHOICE.match(o)])
    except Exception:  # noqa: BLE001 - the hint is optional
        return ""
    hint, seen = "", []
    for part in key.split("."):  # down to the first part the config lacks
        if not isinstance(node, DictConfig):
            break
        if part not in node:
            close = difflib.get_close_matches(part, [str(k) for k in node.keys()], n=1)
            hint = f" Did you mean {'.'.join([*seen, close[0]])}?" if close else ""
            break
        node, seen = node[part], [*seen, part]
    return (f"{key} is not a key of this config.{hint} (A new key is added with +{key}=..., one that may be absent "
            "with ++.)")


def model_is_local(report: Report, key: str, path: Any) -> bool:
    """A local model directory is checked here; a hub id is left to the workers; a missing path is a problem."""
    path = str(path)
    if "://" not in path and os.path.isdir(os.path.expanduser(path)):
        return True
    if path.startswith(("/", "./", "../", "~")):
        report.problems.append(("model", f"{key}={path}: no such directory (checked on this host; the nodes "
                                         "read the same path)"))
    else:
        report.notes.append(f"{key}={path} is not a local directory: its tokenizer (and the mode prefixes "
                            "against it) are checked when the workers start")
    return False


def missing_values(config: DictConfig, skip: Sequence[str]) -> None:
    """Mandatory ``???`` values left unset, outside the sections this job does not use."""
    missing = sorted(k for k in OmegaConf.missing_keys(config) if not any(k.startswith(s) for s in skip))
    if missing:
        raise PreflightError(f"mandatory value(s) not set: {', '.join(missing)}")


# ------------------------------------------------------------------------------------------------ ppo

def token_budgets(config: DictConfig) -> None:
    """With dynamic batch sizes every budget must hold one whole sequence; verl finds out inside a step."""
    aro = config.actor_rollout_ref
    longest = aro.rollout.prompt_length + aro.rollout.response_length
    budgets = []
    if aro.actor.use_dynamic_bsz:
        budgets.append(("actor_rollout_ref.actor.ppo_max_token_len_per_gpu", aro.actor.ppo_max_token_len_per_gpu))
    if aro.rollout.get("log_prob_use_dynamic_bsz", False):
        budgets.append(("actor_rollout_ref.rollout.log_prob_max_token_len_per_gpu",
                        aro.rollout.log_prob_max_token_len_per_gpu))
    if aro.ref.get("log_prob_use_dynamic_bsz", False):
        budgets.append(("actor_rollout_ref.ref.log_prob_max_token_len_per_gpu", aro.ref.log_prob_max_token_len_per_gpu))
    short = [f"{key}={value}" for key, value in budgets if value < longest]
    if short:
        raise PreflightError(
            f"{', '.join(short)} < rollout.prompt_length + rollout.response_length = {longest}: a full-length "
            "sequence would not fit a micro-batch (verl asserts it inside the first step). Raise the budget"
        )


def batch_sizes(config: DictConfig, world_size: int) -> None:
    """What verl checks only without dynamic batch sizes, and what its workers divide by the world size."""
    batch, n = config.data.train_batch_size, config.actor_rollout_ref.rollout.n
    mini = config.actor_rollout_ref.actor.ppo_mini_batch_size
    if mini > batch:
        raise PreflightError(f"actor_rollout_ref.actor.ppo_mini_batch_size={mini} > data.train_batch_size={batch}: "
                             "a step would hold less than one mini-batch")
    for what, rows in (("data.train_batch_size", batch), ("actor_rollout_ref.actor.ppo_mini_batch_size", mini)):
        if (rows * n) % world_size:
            raise PreflightError(f"{what}={rows} x actor_rollout_ref.rollout.n={n} = {rows * n} responses do not "
                                 f"split evenly over the {world_size} GPUs (trainer.n_gpus_per_node x trainer.nnodes)")


def reward_options(config: DictConfig) -> str:
    """The reward's options and values and every reward the routes name (the driver's own check); a note when the
    reward is not ours."""
    from r4b_verl.data.startup import check_reward_config, our_reward

    path = str(OmegaConf.select(config, "reward.custom_reward_function.path") or "")
    if not our_reward(path):
        return f"reward {path or '(verl default)'} is not r4b-verl's: its options are not checked here"
    check_reward_config(config)
    return ""


def check_ppo(overrides: Sequence[str]) -> Report:
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import omega_conf_to_dataclass, validate_config

    from r4b_verl.data.startup import check_config_data
    from r4b_verl.recipe_guard import check_driver
    from r4b_verl.rollout.worker import startup_check, uses_bimode_loop

    report = Report("ppo", list(overrides))
    report.run("recipe on Hydra's search path", lambda: check_driver(["preflight", *overrides]))
    config = _compose_or_report(report, overrides)
    if config is None:
        return report
    trainer = config.trainer
    report.world_size = trainer.n_gpus_per_node * trainer.nnodes
    critic, ref = need_critic(config), need_reference_policy(config)
    skip = ([] if critic else ["critic."]) + ([] if config.reward.reward_model.enable else ["reward.reward_model."])
    report.run("mandatory values", lambda: missing_values(config, skip))
    report.run(f"verl validate_config (world size {report.world_size})",
               lambda: validate_config(config, use_reference_policy=ref, use_critic=critic))
    report.run("verl RolloutConfig", lambda: omega_conf_to_dataclass(config.actor_rollout_ref.rollout))
    report.run("verl CheckpointEngineConfig",
               lambda: omega_conf_to_dataclass(config.actor_rollout_ref.rollout.checkpoint_engine))
    if critic:
        report.run("verl CriticConfig", lambda: omega_conf_to_dataclass(config.critic))
    tokenizer = processor = None
    if model_is_local(report, "actor_rollout_ref.model.path", config.actor_rollout_ref.model.path):
        model = report.run("verl HFModelConfig (tokenizer, processor)",
                           lambda: omega_conf_to_dataclass(config.actor_rollout_ref.model))
        tokenizer, processor = getattr(model, "tokenizer", None), getattr(model, "processor", None)
    if uses_bimode_loop(config):
        prefixes = "with the tokenizer" if tokenizer is not None else "without a tokenizer"
        report.run(f"bi-mode rollout: bpo block, split, loss, prompt budget ({prefixes})",
                   lambda: startup_check(config, tokenizer, processor))
    report.run("batch sizes over the world size", lambda: batch_sizes(config, report.world_size))
    report.run("token budgets (dynamic batch sizes)", lambda: token_budgets(config))
    note = report.run("reward options", lambda: reward_options(config))
    if note:
        report.notes.append(note)
    with contextlib.redirect_stderr(io.StringIO()):  # its one-line summary; problems come back as the exception
        report.run("data check (bpo.data_check)", lambda: check_config_data(config))
    return report


# ------------------------------------------------------------------------------------------------ sft

def sft_data(config: DictConfig, world_size: int) -> None:
    """Each file readable, with the messages column; enough training rows for one global batch."""
    import pyarrow.parquet as pq

    from r4b_verl.data.startup import config_files

    data = config.data
    dp = world_size // max(1, int(config.engine.get("ulysses_sequence_parallel_size", 1) or 1))
    if data.train_batch_size % dp:
        raise PreflightError(f"data.train_batch_size={data.train_batch_size} is not a multiple of the data-parallel "
                             f"size {dp} (trainer.nnodes x trainer.n_gpus_per_node / sequence parallel)")
    rows = 0
    for key in ("train_files", "val_files"):
        for path in config_files(data.get(key)):
            if "://" in path:
                continue
            local = os.path.expanduser(path)
            if not os.path.isfile(local):
                raise PreflightError(
                    f"data.{key}: no such file: {path} (checked on this host; the nodes read the same path)")
            try:
                schema = pq.read_schema(local)
                count = pq.ParquetFile(local).metadata.num_rows
            except Exception as exc:  # noqa: BLE001 - any unreadable file is this problem
                raise PreflightError(f"data.{key}: {path} is not a readable parquet file: {exc}") from None
            if data.messages_key not in schema.names:
                raise PreflightError(f"data.{key}: {path} has no column {data.messages_key!r} (data.messages_key); "
                                     f"its columns: {schema.names}")
            rows += count if key == "train_files" else 0
    if config_files(data.get("train_files")) and rows < data.train_batch_size:
        raise PreflightError(f"data.train_files hold {rows} rows, fewer than data.train_batch_size="
                             f"{data.train_batch_size}: the trainer drops the incomplete batch and trains 0 steps")


def check_sft(overrides: Sequence[str]) -> Report:
    from verl.utils.config import omega_conf_to_dataclass

    report = Report("sft", list(overrides))
    config = _compose_or_report(report, overrides)
    if config is None:
        return report
    report.world_size = config.trainer.n_gpus_per_node * config.trainer.nnodes
    report.run("mandatory values", lambda: missing_values(config, []))
    for section in ("engine", "optim", "checkpoint", "profiler"):
        report.run(f"verl {section} config", lambda section=section: omega_conf_to_dataclass(config[section]))
    if model_is_local(report, "model.path", config.model.path):
        report.run("verl HFModelConfig (tokenizer, processor)", lambda: omega_conf_to_dataclass(config.model))
    report.run("data files and batch", lambda: sft_data(config, report.world_size))
    return report


def _compose_or_report(report: Report, overrides: Sequence[str]) -> DictConfig | None:
    try:
        config = compose(report.kind, overrides)
        OmegaConf.to_container(config, resolve=True)  # every interpolation resolves (our r4b.* resolvers included)
    except Exception as exc:  # noqa: BLE001 - reported with the closest key
        report.problems.append(("Hydra composition", closest_key(report.kind, overrides, exc) or explain(exc)))
        return None
    report.passed.append("Hydra composition")
    return config


CHECKS = {"ppo": check_ppo, "sft": check_sft}


def check(kind: str, overrides: Sequence[str]) -> Report:
    """Run every check of ``kind`` (``ppo`` | ``sft``) on the job's overrides; never raises for a bad config."""
    import verl  # noqa: F401 - loads the r4b_verl plugin (registries, resolvers) as the job's driver does

    start = time.perf_counter()
    with warnings.catch_warnings():  # verl's import-time and deprecation warnings are not the job's problems
        warnings.simplefilter("ignore")
        report = CHECKS[kind](overrides)
    report.seconds = time.perf_counter() - start
    return report


def require(kind: str, overrides: Sequence[str]) -> Report:
    """``check`` that prints the report and raises :class:`PreflightError` on a problem (for launchers in Python)."""
    report = check(kind, overrides)
    print(report.text(), file=sys.stderr, flush=True)
    if not report.ok:
        raise PreflightError("; ".join(f"{c}: {m}" for c, m in report.problems))
    return report


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in CHECKS:
        print(__doc__)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    kind, overrides = argv[0], [a for a in argv[1:] if a != "--"]
    report = check(kind, overrides)
    print(report.text(), flush=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
