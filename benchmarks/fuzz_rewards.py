"""Hostile model output through every built-in reward, at scale (``make fuzz``; CI runs a sample in
``tests/reward/test_fuzz_on_cpu.py``).

    python benchmarks/fuzz_rewards.py                 # 10,000 generated inputs
    python benchmarks/fuzz_rewards.py --cases 50000 --seed 7

Inputs come from the fuzz test's generators (injection attempts, deep nesting, huge numbers and
exponents, megabyte outputs, broken think tags, random LaTeX soup), varied per case so that the
verdict cache does not answer most of them. Every other call goes through ``compute_score_async`` in
an event loop, as verl's reward loop makes it. Passes (exit 0) when there are 0 exceptions, 0 calls
over the per-call bound (``timeout_s + kill_grace_s`` plus a worker restart), 0 malformed results,
and nothing written or executed (marker files named by the injections, the working directory, the
environment).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import random
import sys
import tempfile
import time
from pathlib import Path

# Short deadlines so 10,000 inputs take minutes; the bound has the same form with the defaults (5 + 1 s).
OPTS = {"timeout_s": 0.5, "kill_grace_s": 0.5, "max_wait_s": 20.0}
RESTART_S = 8.0  # a killed worker's replacement importing sympy on a loaded box


def _fuzz_module():
    path = Path(__file__).resolve().parents[1] / "tests" / "reward" / "test_fuzz_on_cpu.py"
    spec = importlib.util.spec_from_file_location("fuzz_inputs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _mutate(rng: random.Random, text: str) -> str:
    """The same hostile shape with a different payload, so it is not a verdict-cache hit."""
    salt = str(rng.randint(0, 10**9))
    where = rng.random()
    if where < 0.4:
        return text + " " + salt
    if where < 0.7:
        return salt + " " + text
    cut = rng.randint(0, len(text))
    return text[:cut] + salt + text[cut:]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args(argv)

    from r4b_verl.reward import RESULT_KEYS, STATS, compute_score, compute_score_async

    fuzz = _fuzz_module()
    bound = OPTS["timeout_s"] + OPTS["kill_grace_s"] + RESTART_S
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        markers, work = Path(tmp, "markers"), Path(tmp, "cwd")
        markers.mkdir()
        work.mkdir()
        old_cwd = os.getcwd()
        os.chdir(work)
        opts = dict(OPTS, verdict_store=str(Path(tmp, "store")))  # the store path runs too, not the node's
        env_before = dict(os.environ)
        hostile = fuzz.hostile(rng, str(markers))
        # Megabyte inputs go through once each; the rest are mutated per case.
        big = [text for text in hostile if len(text) > 200_000]
        small = [text for text in hostile if len(text) <= 200_000]
        golds = ["72", "\\frac{1}{2}", "B", "3.14", "hello world", "x^2+1", "\\{1,2\\}", "28\\%",
                 "(\\frac{3}{5}, \\frac{8}{3}]"] + fuzz.injections(str(markers))[:3]
        extras = [None, {}, {"bpo_mode": "think"}, {"bpo_mode": "no_think"}, {"bpo_mode": "auto"}, {"bpo_mode": 7},
                  "not a dict"]
        loop = asyncio.new_event_loop()
        exceptions, over, malformed, slowest = [], [], 0, 0.0
        start_all = time.monotonic()
        for i in range(args.cases):
            if i < len(big):
                response = big[i]
            elif rng.random() < 0.5:
                response = _mutate(rng, rng.choice(small))
            else:
                response = fuzz.random_text(rng)
            source = rng.choice(fuzz.ROUTES) if rng.random() < 0.3 else "math"
            gold, extra = rng.choice(golds), rng.choice(extras)
            start = time.monotonic()
            try:
                if i % 2:
                    result = loop.run_until_complete(compute_score_async(source, response, gold, extra, **opts))
                else:
                    result = compute_score(source, response, gold, extra, **opts)
            except BaseException as exc:  # noqa: BLE001 - counting them is the point
                exceptions.append((i, type(exc).__name__, response[:80]))
                continue
            elapsed = time.monotonic() - start
            slowest = max(slowest, elapsed)
            if elapsed > bound:
                over.append((i, round(elapsed, 2), response[:80]))
            if tuple(result) != RESULT_KEYS or not 0.0 <= result["score"] <= 1.0 or len(result["pred"]) > 256:
                malformed += 1
            if (i + 1) % 1000 == 0:
                print(f"  {i + 1} cases, {time.monotonic() - start_all:.0f}s, slowest {slowest:.2f}s", flush=True)
        loop.close()
        touched = [p.name for p in markers.iterdir()] + [p.name for p in work.iterdir()]
        env_changed = sorted(set(os.environ.items()) ^ set(env_before.items()))
        os.chdir(old_cwd)

    print(f"fuzz: {args.cases} hostile inputs in {time.monotonic() - start_all:.0f}s; exceptions {len(exceptions)}, "
          f"over the {bound:.1f} s bound {len(over)} (slowest {slowest:.2f} s), malformed results {malformed}, "
          f"files written {len(touched)}, environment changes {len(env_changed)}")
    print(f"counters: {STATS}")
    for item in exceptions[:5] + over[:5]:
        print("  ", item)
    ok = not (exceptions or over or malformed or touched or env_changed)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
