"""Inside a Ray actor, the way verl's RewardLoopWorker calls a reward: asyncio + executor threads.

The actor runs compute_score for a group through ``loop.run_in_executor`` (verl's NaiveRewardManager
path), including an answer that overruns the deadline. It checks the deadline holds off the main
thread, the worker process is a child of the actor, and the actor stays healthy.
"""

import os

import pytest

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_session():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield
    if started:
        ray.shutdown()


def test_reward_in_a_ray_actor_event_loop(ray_session):
    @ray.remote(num_cpus=1)
    class RewardActor:
        async def score(self, rows, opts):
            import asyncio
            import time

            import psutil

            from r4b_verl.reward import STATS, compute_score

            loop = asyncio.get_running_loop()
            start = time.monotonic()
            results = await asyncio.gather(*(
                loop.run_in_executor(None, lambda r=r: compute_score(r[0], r[1], r[2], {"bpo_mode": r[3]}, **opts))
                for r in rows
            ))
            children = [p.cmdline() for p in psutil.Process().children(recursive=True)]
            return results, time.monotonic() - start, dict(STATS), children, os.getpid()

    actor = RewardActor.remote()
    rows = [
        ("math", "r </think> \\boxed{\\frac{6}{8}}", "0.75", "think"),
        ("math", "r </think> \\boxed{0.75}", "0.75", "think"),
        ("gsm8k", "The answer is 12.", "12", "no_think"),
        ("math", "r </think> \\boxed{(x+104729)^{2000}}", "x^2+1", "think"),  # overruns the deadline
    ]
    opts = {"timeout_s": 0.5, "kill_grace_s": 0.5}
    results, seconds, stats, children, pid = ray.get(actor.score.remote(rows, opts), timeout=120)
    assert pid != os.getpid()
    assert [r["acc"] for r in results] == [1.0, 1.0, 1.0, 0.0]
    assert [r["timeout"] for r in results] == [0.0, 0.0, 0.0, 1.0]
    assert stats["timeouts"] == 1
    assert seconds < 30  # worker start-up + one deadline, not a hang
    assert any("symbolic_worker" in " ".join(cmd) for cmd in children)
    # The actor is still healthy after the timeout.
    again, _, _, _, _ = ray.get(actor.score.remote(rows[:1], opts), timeout=60)
    assert again[0]["acc"] == 1.0
    ray.kill(actor)
