"""The cheap data check at trainer start-up: every row of ``data.train_files`` / ``data.val_files``.

The recipe registers :class:`DataCheckCallback` as a Hydra callback (``hydra.callbacks.r4b_data_check``
in ``r4b_bpo.yaml``): Hydra calls ``on_job_start`` in the driver of ``python -m verl.trainer.main_ppo``
with the composed config, before verl's task function starts Ray, loads the tokenizer, the dataset
or any model. Cheap means the schema, ground-truth and placeholder checks of ``r4b_verl.data.check``
on all rows, without decoding images or tokenising (image lists are counted in Arrow, their bytes
never become Python objects). ``bpo.data_check``: ``error`` (default) stops the run naming file,
row and reason; ``warn`` logs the same and trains; ``off`` skips it.
"""

from __future__ import annotations

import logging
import os
import sys
import time

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, ListConfig, OmegaConf

from r4b_verl.reward.settings import Settings, settings_from
from r4b_verl.rollout.options import BPORolloutOptions

from .check import DataCheckError, FileReport, check_file

logger = logging.getLogger("r4b_verl")
OUR_REWARDS = ("pkg://r4b_verl.reward", "pkg://r4b_verl.methods.rewards", "reward_fns/r4b.py")
SHOW = 20


def config_files(value) -> list[str]:
    """The paths of a ``data.*_files`` value: one path or a list of them."""
    if value is None:
        return []
    if isinstance(value, (list, tuple, ListConfig)):
        return [str(v) for v in value]
    return [str(value)]


def our_reward(path: str) -> bool:
    """``reward.custom_reward_function.path`` names one of r4b-verl's rewards (the engine, the methods', the file)."""
    return path in OUR_REWARDS[:2] or path.endswith(OUR_REWARDS[2])


def _reward(config) -> tuple[str, dict]:
    custom = (config.get("reward") or {}).get("custom_reward_function") or {}
    kwargs = custom.get("reward_kwargs") or {}
    if isinstance(kwargs, DictConfig):
        kwargs = OmegaConf.to_container(kwargs, resolve=True)
    return str(custom.get("path") or ""), dict(kwargs)


def reward_settings(config) -> tuple[Settings, str | None]:
    """(settings, fixed reward name): the recipe's reward routes rows; another reward only needs a ground truth."""
    path, kwargs = _reward(config)
    if our_reward(path):
        kwargs.pop("method", None)  # the methods' table (r4b_verl/methods/rewards.py) sits on the same engine
        return settings_from(kwargs), None
    return Settings(), f"reward function {path or '(verl default)'}"


def check_reward_config(config) -> None:
    """The reward's options, values and route targets, in the driver: a typo fails here, not at the first reward."""
    from r4b_verl.methods.rewards import check_reward_options

    path, kwargs = _reward(config)
    if our_reward(path):
        check_reward_options(path, kwargs)


def check_config_data(config) -> list[FileReport]:
    """Run the cheap check on the config's data files; raise or warn per ``bpo.data_check``."""
    mode = BPORolloutOptions.from_trainer_config(config).data_check
    if mode == "off":
        return []
    data = config.get("data") or {}
    settings, fixed = reward_settings(config)
    prompt_key, image_key = data.get("prompt_key", "prompt"), data.get("image_key", "images")
    start = time.perf_counter()
    reports = []
    for key in ("train_files", "val_files"):
        for path in config_files(data.get(key)):
            if "://" in path and not path.startswith("file://"):
                logger.warning("bpo.data_check: %s is not a local file; not checked at start-up", path)
                continue
            try:
                reports.append(check_file(os.path.expanduser(path.removeprefix("file://")), settings, decode=False,
                                          prompt_key=prompt_key, image_key=image_key, reward=fixed))
            except DataCheckError as exc:
                raise DataCheckError(f"data.{key}: {exc}") from None
    bad = [r for r in reports if r.bad]
    seconds = time.perf_counter() - start
    print(f"[r4b-verl] data check: {sum(r.rows for r in reports)} rows in {len(reports)} files, "
          f"{sum(len(r.bad) for r in bad)} bad, {seconds:.2f} s (bpo.data_check={mode})", file=sys.stderr, flush=True)
    if not bad:
        return reports
    lines = [line for r in bad for line in r.lines(SHOW)] + [r.summary() for r in bad]
    fix = ("fix or drop them (python -m r4b_verl.data.check FILE --drop-bad OUT writes the good rows), "
           "or set bpo.data_check=warn (train anyway) or off")
    message = "bad data rows:\n" + "\n".join(lines) + "\n" + fix
    if mode == "error":
        raise DataCheckError(message)
    logger.warning("%s", message)
    print(f"[r4b-verl] WARNING: {message}", file=sys.stderr, flush=True)
    return reports


class DataCheckCallback(Callback):
    """Hydra callback: the bi-mode options, the reward options and the cheap data check, in the driver, before the
    training job starts (the workers check again with the tokenizer).

    Hydra turns a callback's exception into a warning and runs the job anyway, so a refusal leaves
    as ``SystemExit`` (not an ``Exception``), the way ``r4b_verl.plugin`` refuses a recipe that did not compose.
    """

    def on_job_start(self, config: DictConfig, **kwargs) -> None:
        from r4b_verl.rollout.worker import startup_check, uses_bimode_loop

        try:
            if uses_bimode_loop(config):
                startup_check(config)  # the bi-mode checks that need no tokenizer: bpo block, split of n, loss
            check_reward_config(config)
            check_config_data(config)
        except ValueError as exc:  # DataCheckError, BPOConfigError, a bad reward_kwargs option: each names its fix
            sys.exit(f"[r4b-verl] ERROR: {exc}")
