"""What an estimator that sees the whole batch needs besides rewards: each row's mode, accuracy, the step.

verl 0.9.1 calls a registered estimator with ``token_level_rewards``, ``response_mask``, ``index`` (uid)
and ``config`` only; the mode a response took lives in its ``extra_fields`` in TransferQueue, and the
global step in the trainer. ``verl_compat.ADVANTAGE_BATCH_VIEW`` reads both around verl's
``_compute_advantage`` and hands them over through :func:`batch_view`, a context variable set for the
duration of that one call (the single owner of this state: nothing outlives the call). Tests pass a
:class:`BatchView` to the estimator directly (``view=``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np

from r4b_verl.think import AUTO, CHOSEN_MODE_KEY, MODE_KEY, NO_THINK, THINK


@dataclass(frozen=True)
class BatchView:
    """Per-row facts of one training batch, in the row order of the estimator's tensors.

    modes: ``(bs,)`` ``think`` / ``no_think``, the mode each response took (forced or chosen);
    acc: ``(bs,)`` 1.0 if the answer was correct (the reward's ``acc``), else 0.0;
    step: verl's ``global_steps`` of this update (1 = first); total_steps: ``total_training_steps``.
    """

    modes: np.ndarray
    acc: np.ndarray
    step: int
    total_steps: int

    def check(self, n_rows: int, who: str) -> None:
        if len(self.modes) != n_rows or len(self.acc) != n_rows:
            raise ValueError(f"{who}: the batch view has {len(self.modes)} rows for {n_rows} responses")
        bad = [m for m in self.modes if m not in (THINK, NO_THINK)]
        if bad:
            raise ValueError(f"{who}: {len(bad)} row(s) without a think / no_think mode (e.g. {bad[0]!r}): "
                             "the rows must come from the bpo_bimode agent loop")


_VIEW: ContextVar[BatchView | None] = ContextVar("r4b_verl_batch_view", default=None)


@contextmanager
def batch_view(view: BatchView) -> Iterator[None]:
    """Make ``view`` visible to the estimators called inside this block (and only there)."""
    token = _VIEW.set(view)
    try:
        yield
    finally:
        _VIEW.reset(token)


def current_view(who: str) -> BatchView:
    view = _VIEW.get()
    if view is None:
        raise RuntimeError(
            f"{who} needs each response's mode and the training step, which r4b-verl's agent-loop manager provides: "
            "set actor_rollout_ref.rollout.agent.agent_loop_manager_class=r4b_verl.rollout.worker.BPOAgentLoopManager "
            "(the +recipe=r4b_* recipes do)"
        )
    return view


def view_from_extra_fields(extra: Sequence[Any], step: int, total_steps: int) -> BatchView:
    """A :class:`BatchView` from the rows' ``extra_fields`` (as TransferQueue returns them)."""
    modes, acc = [], []
    for e in extra:
        e = e if isinstance(e, dict) else {}
        mode = e.get(MODE_KEY)
        modes.append(e.get(CHOSEN_MODE_KEY) if mode == AUTO else mode)
        info = e.get("reward_extra_info") if isinstance(e.get("reward_extra_info"), dict) else {}
        acc.append(float(info.get("acc", 0.0) or 0.0))
    return BatchView(np.asarray(modes, dtype=object), np.asarray(acc, dtype=float), int(step), int(total_steps))
