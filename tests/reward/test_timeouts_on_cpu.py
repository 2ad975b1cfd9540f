"""Deadlines hold where verl calls the reward: worker threads, asyncio executors; stuck workers die."""

import asyncio
import itertools
import os
import signal
import threading
import time

from r4b_verl.reward import STATS, compute_score
from r4b_verl.reward.symbolic_pool import get_pool

_counter = itertools.count(3)


def slow_answer() -> str:
    """An answer math-verify cannot finish comparing within the deadline (pure-Python sympy work).

    Unique per call: sympy's cache inside the long-lived worker would make a repeated one fast.
    """
    return f"</think> \\boxed{{(x+{next(_counter) * 7919})^{{2000}}}}"
FAST_OPTS = {"timeout_s": 0.5, "kill_grace_s": 0.5, "max_wait_s": 30.0}


def test_soft_timeout_from_a_non_main_thread_is_counted_and_scored_zero():
    box = {}
    slow = slow_answer()

    def run():
        start = time.monotonic()
        box["result"] = compute_score("math", slow, "x^2+1", {"bpo_mode": "think"}, **FAST_OPTS)
        box["seconds"] = time.monotonic() - start

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(60)
    assert not worker.is_alive()
    result = box["result"]
    assert result["timeout"] == 1.0 and result["score"] == 0.0 and result["has_answer"] == 1.0
    assert STATS["timeouts"] == 1
    # Bounded: deadline plus a fresh worker's start-up, well under the 30 s wait budget.
    assert box["seconds"] < 15
    # The verdict is cached: the same answer in the group does not cost another deadline.
    start = time.monotonic()
    again = compute_score("math", slow, "x^2+1", {"bpo_mode": "think"}, **FAST_OPTS)
    assert again["timeout"] == 1.0 and time.monotonic() - start < 0.5


def test_asyncio_executor_calls_like_verls_reward_manager():
    async def main():
        loop = asyncio.get_running_loop()
        calls = [
            loop.run_in_executor(None, lambda a=a: compute_score("math", a, "\\frac{1}{2}", {}, **FAST_OPTS))
            for a in ["\\boxed{0.5}", "\\boxed{\\frac{2}{4}}", "\\boxed{1/3}", slow_answer()]
        ]
        return await asyncio.gather(*calls)

    results = asyncio.run(main())
    assert [r["acc"] for r in results] == [1.0, 1.0, 0.0, 0.0]
    assert [r["timeout"] for r in results] == [0.0, 0.0, 0.0, 1.0]


def test_stuck_worker_is_killed_at_the_hard_deadline_and_replaced():
    pool = get_pool(1, 4096)
    compute_score("math", "\\boxed{\\sqrt{2}}", "\\sqrt{3}", {})  # make sure the worker runs
    stuck = pool.slots[0].proc
    os.kill(stuck.pid, signal.SIGSTOP)  # like code stuck in C: no signal handler ever runs
    try:
        start = time.monotonic()
        result = compute_score("math", "\\boxed{\\sqrt{5}}", "\\sqrt{3}", {}, **FAST_OPTS)
        elapsed = time.monotonic() - start
    finally:
        try:
            os.kill(stuck.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert result["timeout"] == 1.0 and result["score"] == 0.0
    assert elapsed < FAST_OPTS["timeout_s"] + FAST_OPTS["kill_grace_s"] + 1.0
    assert stuck.poll() is not None  # killed
    # A fresh worker serves the next answer.
    assert compute_score("math", "\\boxed{\\sqrt{12}}", "2\\sqrt{3}", {})["acc"] == 1.0
    assert pool.slots[0].proc is not None and pool.slots[0].proc.pid != stuck.pid


def test_busy_worker_bounds_the_wait():
    pool = get_pool(1, 4096)
    with pool.slot_for("\\boxed{\\sqrt{3}}", 1.0) as slot:  # another caller holds the only worker
        assert slot is not None
        start = time.monotonic()
        result = compute_score("math", "\\boxed{\\sqrt{7}}", "\\sqrt{3}", {}, timeout_s=0.5, max_wait_s=0.3)
        assert time.monotonic() - start < 2.0
    assert result["timeout"] == 1.0 and STATS["waited_out"] == 1


def test_a_starting_worker_outlives_a_caller_whose_wait_ran_out():
    from r4b_verl.reward.symbolic_pool import _Slot

    slot = _Slot(4096)
    try:
        assert slot._ensure_ready(time.monotonic()) is False  # no budget left: not ready yet
        starting = slot.proc
        assert starting is not None and starting.poll() is None  # ... but kept importing, not killed
        assert slot._ensure_ready(time.monotonic() + 60) is True  # the next caller gets that same worker
        assert slot.proc is starting
    finally:
        slot.kill()
