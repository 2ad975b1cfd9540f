"""Time the ``bpo`` estimator against verl's ``grpo`` and ``grpo_vectorized`` in one run.

    make bench-advantage        # or: python benchmarks/bench_advantage.py [--repeats 5]

Shapes are ``responses x response_length`` with groups of 16 responses (g = 8 per mode) and
string uids, as verl passes them. Target: bpo within 1.2x of grpo_vectorized.
"""

import argparse
import functools
import statistics
import time
import uuid

import numpy as np
import torch
from verl.trainer.ppo.core_algos import get_adv_estimator_fn

import r4b_verl.advantage  # noqa: F401 - registers "bpo"

SHAPES = [(4096, 512), (32768, 256)]
GROUP = 16


def batch(n: int, length: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    uids = np.array([str(uuid.UUID(int=int(i))) for i in np.repeat(np.arange(n // GROUP), GROUP)], dtype=object)
    uids = uids[rng.permutation(n)]
    rewards = torch.zeros(n, length)
    rewards[:, -1] = torch.from_numpy(rng.integers(0, 2, n)).float()
    return rewards, torch.ones(n, length), uids


def interleaved_times(calls: dict, repeats: int) -> dict:
    """Time every call once per round, rounds interleaved, so machine load drifts hit all alike."""
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            t0 = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - t0)
    return {name: (min(t), statistics.median(t)) for name, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    names = ["grpo", "grpo_vectorized", "bpo"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, best of {args.repeats} interleaved rounds "
          "(median in brackets)")
    print(f"| responses x length | {' | '.join(names)} | bpo / grpo_vectorized | bpo / grpo |")
    print("|---|" + "---|" * (len(names) + 2))
    for n, length in SHAPES:
        rewards, mask, uids = batch(n, length)
        kwargs = {"token_level_rewards": rewards, "response_mask": mask, "index": uids}
        calls = {name: functools.partial(get_adv_estimator_fn(name), **kwargs) for name in names}
        for call in calls.values():
            call()  # warm-up
        result = interleaved_times(calls, args.repeats)
        cells = " | ".join(f"{result[k][0] * 1e3:.1f} ms ({result[k][1] * 1e3:.1f})" for k in names)
        print(f"| {n} x {length} | {cells} | {result['bpo'][0] / result['grpo_vectorized'][0]:.2f}x "
              f"| {result['bpo'][0] / result['grpo'][0]:.3f}x |")


if __name__ == "__main__":
    main()
