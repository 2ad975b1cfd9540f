"""``bpo/`` metrics: what a user of bi-mode training watches (R-4B Figs. 7-8).

Training step (per mode m in think, no_think; rows forced into m):
  ``bpo/<m>/reward/mean``, ``bpo/<m>/acc/mean``, ``bpo/<m>/response_length/mean``, ``bpo/<m>/count``,
  ``bpo/reward_gap/mean``   mean over prompts of (mean think reward - mean no_think reward),
  ``bpo/reward_gap/abs_mean``, ``bpo/think_wins/frac`` (prompts where thinking scored higher).
  Rows the model chose the mode of (``bpo.train_mode=auto``: AutoThink, Thinkless, Ada-GRPO, GRPO) count
  under the mode they took, and ``bpo/train/think_rate`` is their share of thinking responses.
Validation, rows given auto mode (``bpo.val_mode`` auto or all; c = the mode the response took):
  ``bpo/val/think_rate`` and ``bpo/val/<data_source>/think_rate`` (thinking-trigger rate),
  ``bpo/val/<c>/acc/mean``, ``bpo/val/<c>/reward/mean``, ``bpo/val/<c>/response_length/mean``,
  ``bpo/val/<c>/count``; rows forced into mode m (val_mode think, no_think or all):
  ``bpo/val/forced/<m>/{reward,acc,response_length}/mean``, ``bpo/val/forced/<m>/count``.

``acc`` is the reward's ``acc`` extra info when it returns one (verl sets it for float rewards),
else ``reward > 0``. The pure functions below compute these from arrays; the readers below them
take verl's data as the trainer holds it. ``verl_compat.TRAINER_METRICS`` feeds them from verl's
V1 ``PPOTrainer`` in BPO runs (verl 0.9.1 has no public trainer-metrics hook):

* training: the step's rows read from TransferQueue (``uid``, ``extra_fields`` and ``rm_scores``,
  which has one entry per response token, so it gives the lengths too);
* validation: the ``reward_extra_infos_dict`` verl gathered, into which the BPO worker put
  ``bpo_think`` and ``bpo_response_length`` (verl also logs those per data source as
  ``val-aux/<source>/bpo_think/...``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from r4b_verl.think import (
    AUTO,
    CHOSEN_MODE_KEY,
    FORCED_MODES,
    IMAGE_TOKENS_KEY,
    INDEX_INFO_KEY,
    LENGTH_INFO_KEY,
    MODE_KEY,
    NO_THINK,
    SOURCE_INFO_KEY,
    THINK,
    THINK_INFO_KEY,
)


def _acc(acc: Sequence[Any] | None, rewards: np.ndarray) -> np.ndarray:
    if acc is None or any(a is None for a in acc):
        return (rewards > 0).astype(float)
    return np.asarray([float(a) for a in acc], dtype=float)


def _mode_means(prefix: str, sel: np.ndarray, rewards, accs, lengths) -> dict[str, float]:
    """``<prefix>/count`` and, when the selection is non-empty, its reward, accuracy and length means."""
    out = {f"{prefix}/count": float(sel.sum())}
    if sel.any():
        out[f"{prefix}/reward/mean"] = float(rewards[sel].mean())
        out[f"{prefix}/acc/mean"] = float(accs[sel].mean())
        out[f"{prefix}/response_length/mean"] = float(lengths[sel].mean())
    return out


def compute_bpo_metrics(
    uids: Sequence[Any],
    modes: Sequence[str],
    rewards: Sequence[float],
    lengths: Sequence[float],
    acc: Sequence[Any] | None = None,
    image_tokens: Sequence[Any] | None = None,
) -> dict[str, float]:
    """Training metrics of one step from per-response arrays (rows of other modes are ignored).

    ``image_tokens``: image placeholder tokens per prompt; when any prompt has images,
    ``bpo/<mode>/image_tokens/mean`` (and ``.../image_prompts/frac``) per mode.
    """
    keep = np.asarray([m in FORCED_MODES for m in modes], dtype=bool)
    if not keep.any():
        return {}
    metrics: dict[str, float] = {}
    if image_tokens is not None:
        images = np.asarray([float(t or 0) for t in image_tokens], dtype=float)[keep]
        if images.any():
            kept_modes = np.asarray(modes, dtype=object)[keep]
            for mode in FORCED_MODES:
                rows = images[kept_modes == mode]
                if rows.size:
                    metrics[f"bpo/{mode}/image_tokens/mean"] = float(rows.mean())
                    metrics[f"bpo/{mode}/image_prompts/frac"] = float((rows > 0).mean())
    uids = np.asarray(uids, dtype=object)[keep]
    modes = np.asarray(modes, dtype=object)[keep]
    rewards = np.asarray(rewards, dtype=float)[keep]
    lengths = np.asarray(lengths, dtype=float)[keep]
    accs = _acc(None if acc is None else [a for a, k in zip(acc, keep, strict=False) if k], rewards)

    for mode in FORCED_MODES:
        metrics.update(_mode_means(f"bpo/{mode}", modes == mode, rewards, accs, lengths))

    per_group: dict[Any, dict[str, list[float]]] = defaultdict(lambda: {THINK: [], NO_THINK: []})
    for uid, mode, reward in zip(uids, modes, rewards, strict=True):
        per_group[uid][mode].append(reward)
    gaps = [np.mean(g[THINK]) - np.mean(g[NO_THINK]) for g in per_group.values() if g[THINK] and g[NO_THINK]]
    if gaps:
        gaps = np.asarray(gaps, dtype=float)
        metrics["bpo/reward_gap/mean"] = float(gaps.mean())
        metrics["bpo/reward_gap/abs_mean"] = float(np.abs(gaps).mean())
        metrics["bpo/think_wins/frac"] = float((gaps > 0).mean())
    return metrics


def compute_bpo_val_metrics(
    data_sources: Sequence[Any],
    think: Sequence[float],
    rewards: Sequence[float],
    lengths: Sequence[float],
    acc: Sequence[Any] | None = None,
    modes: Sequence[Any] | None = None,
) -> dict[str, float]:
    """Validation metrics from per-response arrays; ``think`` is 1 where the response thinks.

    ``modes`` is the mode each prompt was given (``bpo.val_mode``, per session with ``all``); without
    it every row counts as given the mode the model chose. The think rate is over the rows whose
    mode was left to the model (auto); rows forced into a mode get ``bpo/val/forced/<mode>/...``.
    """
    keep = np.asarray([t is not None for t in think], dtype=bool)
    if not keep.any():
        return {}
    sources = np.asarray([str(s) for s in data_sources], dtype=object)[keep]
    think = np.asarray([float(t) for t, k in zip(think, keep, strict=True) if k], dtype=float)
    rewards = np.asarray(rewards, dtype=float)[keep]
    lengths = np.asarray([float(x) for x, k in zip(lengths, keep, strict=False) if k], dtype=float)
    accs = _acc(None if acc is None else [a for a, k in zip(acc, keep, strict=False) if k], rewards)
    # without modes every kept row was left to the model
    given = [AUTO] * len(think) if modes is None else [str(m) for m, k in zip(modes, keep, strict=True) if k]
    given = np.asarray(given, dtype=object)

    metrics: dict[str, float] = {}
    auto = given == AUTO
    if auto.any():
        metrics["bpo/val/think_rate"] = float(think[auto].mean())
        for source in sorted(set(sources[auto])):
            metrics[f"bpo/val/{source}/think_rate"] = float(think[auto & (sources == source)].mean())
        for chosen, sel in ((THINK, think > 0.5), (NO_THINK, think <= 0.5)):
            metrics.update(_mode_means(f"bpo/val/{chosen}", auto & sel, rewards, accs, lengths))
    for mode in FORCED_MODES:
        if (given == mode).any():
            metrics.update(_mode_means(f"bpo/val/forced/{mode}", given == mode, rewards, accs, lengths))
    return metrics


# ----------------------------------------------------------------------------- readers of verl's data


def _row_sums(t) -> list[float]:
    return [float(x) for x in t.sum(dim=1).tolist()]


def _row_lengths(t) -> list[float]:
    if getattr(t, "is_nested", False):  # TransferQueue returns ragged fields as jagged nested tensors
        return [float(x) for x in t.offsets().diff().tolist()]
    return [float(t.shape[1])] * t.shape[0]  # rows of equal length come back stacked


def train_metrics_from_transfer_queue(tq, batch) -> dict[str, float]:
    """Read the step's rows from TransferQueue (``tq.kv_batch_get``) and compute the ``bpo/`` metrics."""
    keep = [not tag.get("is_padding", False) for tag in batch.tags]
    keys = [key for key, k in zip(batch.keys, keep, strict=False) if k]
    if not keys:
        return {}
    data = tq.kv_batch_get(
        keys=keys,
        partition_id=batch.partition_id,
        select_fields=["uid", "extra_fields", "rm_scores"],
    )
    extra = data.pop("extra_fields").tolist()  # as verl's own _compute_metrics reads non-tensor fields
    if not any(isinstance(e, dict) and MODE_KEY in e for e in extra):
        return {}
    modes = [row_mode(e) for e in extra]
    auto = [isinstance(e, dict) and e.get(MODE_KEY) == AUTO for e in extra]
    infos = [e.get("reward_extra_info") if isinstance(e, dict) else None for e in extra]
    acc = [info.get("acc") if isinstance(info, dict) else None for info in infos]
    metrics = compute_bpo_metrics(
        uids=data.pop("uid").tolist(),
        modes=modes,
        rewards=_row_sums(data["rm_scores"]),
        lengths=_row_lengths(data["rm_scores"]),  # one score per response token (verl's agent-loop postprocess)
        acc=acc,
        image_tokens=[e.get(IMAGE_TOKENS_KEY) if isinstance(e, dict) else None for e in extra],
    )
    if any(auto):
        metrics["bpo/train/think_rate"] = float(np.mean([m == THINK for m, a in zip(modes, auto, strict=True) if a]))
    return metrics


def row_mode(extra_fields: Any) -> str | None:
    """The mode a training row counts under: the forced one, or (auto rows) the one the model took."""
    if not isinstance(extra_fields, dict):
        return None
    mode = extra_fields.get(MODE_KEY)
    return extra_fields.get(CHOSEN_MODE_KEY) if mode == AUTO else mode


def val_metrics_from_reward_extra_infos(data_sources, reward_extra_infos_dict: dict) -> dict[str, float]:
    think = reward_extra_infos_dict.get(THINK_INFO_KEY)
    if not think:
        return {}
    return compute_bpo_val_metrics(
        data_sources=list(data_sources),
        think=list(think),
        rewards=list(reward_extra_infos_dict["reward"]),
        lengths=list(reward_extra_infos_dict.get(LENGTH_INFO_KEY, [0.0] * len(think))),
        acc=reward_extra_infos_dict.get("acc"),
        modes=reward_extra_infos_dict.get(MODE_KEY),
    )


def reward_info_for_metrics(extra_fields: dict, info: dict, response_length: int, row: dict) -> dict:
    """``info`` plus what the validation metrics, the evaluation report and the labeller read about a bi-mode
    response; ``row`` is the dataset row's fields as verl's worker passes them to the agent loop."""
    info = dict(info)
    info[THINK_INFO_KEY] = 1.0 if extra_fields[CHOSEN_MODE_KEY] == THINK else 0.0
    info[LENGTH_INFO_KEY] = float(response_length)
    info[MODE_KEY] = extra_fields[MODE_KEY]
    info[SOURCE_INFO_KEY] = str(row.get("data_source", "unknown"))
    info[INDEX_INFO_KEY] = str(row.get("index", ""))  # a string: verl's validation metrics skip strings
    return info
