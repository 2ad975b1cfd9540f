"""``compute_score_async``: what verl's reward loop awaits (the recipe's ``custom_reward_function.name``).

Same verdicts as the blocking ``compute_score``; responses the in-process steps decide never touch
the executor; a symbolic check runs in the loop's executor so the event loop keeps serving other
responses while it waits; user functions, sync or async, are called the way verl would call them.
"""

import asyncio
import itertools
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from r4b_verl.reward import STATS, compute_score, compute_score_async, reset_caches

_counter = itertools.count(11)


class CountingExecutor(ThreadPoolExecutor):
    """The loop's default executor, counting what is sent to it."""

    def __init__(self):
        super().__init__(4)
        self.submitted = 0

    def submit(self, fn, /, *args, **kwargs):
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def run_async(rows, executor=None, **options):
    async def main():
        if executor is not None:
            asyncio.get_running_loop().set_default_executor(executor)
        return await asyncio.gather(*(compute_score_async(r[0], r[1], r[2], r[3], **options) for r in rows))

    return asyncio.run(main())


def test_same_results_as_the_blocking_reward_on_a_bpo_batch(bench_rewards):
    rows = [r[:4] for r in bench_rewards.make_batch(6, seed=3, mix="math")]
    rows += [("math", "so \\boxed{3}", ["2", "3"], {}), ("choice", "Answer: (B)", "B", {"bpo_mode": "no_think"}),
             ("gsm8k", "</think> nothing here", "4", {"bpo_mode": "think"})]
    blocking = [compute_score(*r) for r in rows]
    reset_caches()
    awaited = run_async(rows)
    assert awaited == blocking
    assert sum(r["acc"] for r in awaited) > 0 and STATS["symbolic"] > 0  # both paths were exercised


def test_fast_path_responses_never_touch_the_executor():
    group = [("math", f"reasoning </think> the answer is $\\boxed{{{v}}}$", "42", {"bpo_mode": "think"})
             for v in ("42", "42.0", "41", "-42")]
    executor = CountingExecutor()
    results = run_async(group, executor)
    assert [r["acc"] for r in results] == [1.0, 1.0, 0.0, 0.0]
    assert executor.submitted == 0
    # An equivalent form only sympy can confirm: one executor call for the worker.
    executor = CountingExecutor()
    assert run_async([("math", "\\boxed{\\sqrt{8}}", "2\\sqrt{2}", {})], executor)[0]["acc"] == 1.0
    assert executor.submitted == 1


def test_the_event_loop_keeps_running_during_a_symbolic_check():
    slow = f"</think> \\boxed{{(x+{next(_counter) * 7919})^{{2000}}}}"  # overruns a 1 s deadline

    async def main():
        ticks = 0
        task = asyncio.ensure_future(compute_score_async("math", slow, "x^2+1", {"bpo_mode": "think"},
                                                         timeout_s=1.0, kill_grace_s=0.5))
        start = time.monotonic()
        while not task.done():
            await asyncio.sleep(0.01)
            ticks += 1
        return task.result(), ticks, time.monotonic() - start

    result, ticks, seconds = asyncio.run(main())
    assert result["timeout"] == 1.0 and result["score"] == 0.0
    assert seconds >= 1.0 and ticks >= 0.5 * seconds / 0.01  # the loop was free while the worker ran


def test_user_functions_sync_and_async(tmp_path):
    (tmp_path / "user_rewards.py").write_text(textwrap.dedent(
        """
        import asyncio

        async def graded(data_source, solution_str, ground_truth, extra_info=None):
            await asyncio.sleep(0)
            return {"score": 0.5, "acc": 1.0, "pred": "p"}

        def plain(data_source, solution_str, ground_truth, extra_info=None):
            return 0.25
        """
    ))
    routes = {"graded": f"{tmp_path / 'user_rewards.py'}:graded", "plain": f"{tmp_path / 'user_rewards.py'}:plain"}
    executor = CountingExecutor()
    graded, plain = run_async([("graded", "x", "y", {}), ("plain", "x", "y", {})], executor, routes=routes)
    assert (graded["score"], graded["acc"], graded["pred"]) == (0.5, 1.0, "p")
    assert plain["score"] == 0.25 and plain["reward_fn"].endswith(":plain")
    assert executor.submitted == 1  # the sync one ran in the executor, the async one was awaited
    assert compute_score("plain", "x", "y", {}, routes=routes)["score"] == 0.25
    with pytest.raises(TypeError, match="compute_score_async"):
        compute_score("graded", "x", "y", {}, routes=routes)
