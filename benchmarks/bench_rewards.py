"""Throughput of r4b_verl.reward vs verl's math-verify wrapper on an RL-shaped batch.

    python benchmarks/bench_rewards.py            # integer and MATH-style batches, 64 groups x 16 each
    python benchmarks/bench_rewards.py --quick    # 64 groups each
    python benchmarks/bench_rewards.py --think-chars 16000 64000   # 4k-16k tokens of reasoning

The batch looks like a BPO step: groups of 16 responses to one prompt sharing one gold answer,
half thinking (long reasoning, ``</think>``, short answer; some never close the think block) and
half non-thinking, with equivalent forms of correct answers (``0.75`` for ``\\frac{3}{4}``,
``(x+1)^2`` for ``x^2+2x+1``, sets, intervals, matrices, units) and wrong ones.

Both scorers run the way verl runs a reward: ``--reward-workers`` processes (verl's
``reward.num_workers`` reward-loop workers; default one per core) each score a contiguous chunk
of the batch (``RewardLoopManager.compute_rm_score``) with one asyncio task per response
(``RewardLoopWorker.compute_score_batch``). A synchronous reward goes through the loop's default
executor, an async one is awaited (``NaiveRewardManager.run_single``). Ours is the function verl's
``get_custom_reward_fn`` loads from the recipe (``compute_score_async`` with the recipe's
``reward_kwargs``); the wrapper is ``verl.utils.reward_score.math_verify.compute_score``, which
sends every response to its own pool of 4 processes. Wall time runs from the start signal to the
last worker's reply; CPU time is that of every worker and its child processes (the wrapper's pool,
our symbolic worker), so "responses per CPU-second" is throughput per core.

Caches start cold for every run and every round draws new gold answers. Every response has a label
by construction (correct form + closed answer); the run prints responses/s of both and how their
verdicts agree, and fails (exit 1) if ours differs from the wrapper anywhere the wrapper matches
the label.
"""

from __future__ import annotations

import argparse
import random
import sys
import time


def answer_kinds(k: int):
    """For a group parameter k: [(gold, equivalent forms, wrong forms)], one per answer kind.

    Every gold differs between groups (as prompts do in a batch); every pair is one math-verify
    itself judges as labelled (``tests/reward/test_math_equivalence_on_cpu.py`` checks samples).
    """
    a, b = 2 * k + 1, 4 * k + 4  # coprime: (2k+1) is odd and shares no factor with 4(k+1)
    return [
        (f"{k}", [f"{k}", f"{k}.0", f"{k} \\text{{ cm}}"], [f"{k - 1}", f"{2 * k}", f"-{k}"]),
        (f"\\frac{{{a}}}{{{b}}}", [f"\\frac{{{a}}}{{{b}}}", f"\\dfrac{{{a}}}{{{b}}}", f"\\frac{{{2 * a}}}{{{2 * b}}}",
                                 f"{a}/{b}"], [f"\\frac{{{b}}}{{{a}}}", f"\\frac{{{a}}}{{{b + 1}}}"]),
        (f"{k}\\sqrt{{2}}", [f"{k}\\sqrt{{2}}", f"\\sqrt{{{2 * k * k}}}", f"{k} \\cdot \\sqrt{{2}}"],
         [f"{k}\\sqrt{{3}}", f"\\sqrt{{{2 * k}}}"]),
        (f"x^2+{2 * k}x+{k * k}", [f"x^2+{2 * k}x+{k * k}", f"(x+{k})^2", f"x^{{2}}+{2 * k}x+{k * k}"],
         [f"x^2+{k * k}", f"(x-{k})^2"]),
        (f"\\{{{k},{k + 1},{k + 2}\\}}", [f"\\{{{k},{k + 1},{k + 2}\\}}", f"\\{{{k + 2},{k},{k + 1}\\}}"],
         [f"\\{{{k},{k + 1}\\}}"]),
        (f"(-\\infty, {k}]", [f"(-\\infty, {k}]", f"(-\\infty,{k}]"], [f"(-\\infty, {k})", f"[{k},\\infty)"]),
        (f"\\begin{{pmatrix}}{k}&1\\\\0&{k + 1}\\end{{pmatrix}}",
         [f"\\begin{{pmatrix}}{k}&1\\\\0&{k + 1}\\end{{pmatrix}}",
          f"\\begin{{bmatrix}}{k}&1\\\\0&{k + 1}\\end{{bmatrix}}"],
         [f"\\begin{{pmatrix}}{k + 1}&1\\\\0&{k}\\end{{pmatrix}}"]),
        (f"\\frac{{\\pi}}{{{k + 1}}}", [f"\\frac{{\\pi}}{{{k + 1}}}", f"\\dfrac{{\\pi}}{{{k + 1}}}", f"\\pi/{k + 1}"],
         [f"{k + 1}\\pi", f"\\frac{{\\pi}}{{{k + 2}}}"]),
        (f"{k}.25", [f"{k}.25", f"\\frac{{{4 * k + 1}}}{{4}}", f"{k}.250"], [f"{k}.5", f"{k}"]),
    ]


# Share of each answer kind above in the batch: math RL sets (GSM8K, AIME, MATH, DAPO-Math) are
# mostly integers, then fractions, radicals and expressions.
MIXES = {
    "integer": (1, 0, 0, 0, 0, 0, 0, 0, 0),  # GSM8K, AIME, DAPO-Math-17k: integer answers only
    "math": (40, 15, 10, 8, 4, 5, 3, 10, 5),  # MATH / MATH-500 style mix
}

_WORDS = (
    "we consider the equation so that hence substituting gives note that the sum of terms "
    "therefore it follows let us check each case carefully and simplify both sides again"
).split()
_MATH = ["$x^2 + {a}x + {b} = 0$", "$\\frac{{{a}}}{{{b}}}$", "$a_n = {a}n + {b}$", "\\[ {a} \\cdot {b} = {c} \\]",
         "$\\sqrt{{{a}}}$", "$f({a}) = {c}$", "${a} + {b} = {c}$"]


def _reasoning(rng: random.Random, chars: int) -> str:
    parts, size = [], 0
    while size < chars:
        if rng.random() < 0.25:
            a, b = rng.randint(1, 99), rng.randint(1, 99)
            piece = rng.choice(_MATH).format(a=a, b=b, c=a * b)
        else:
            piece = " ".join(rng.choices(_WORDS, k=rng.randint(6, 14))) + "."
        parts.append(piece)
        size += len(piece) + 1
    return " ".join(parts)


def make_batch(groups: int, seed: int = 0, group_size: int = 16, mix: str = "math",
               think_chars: tuple[int, int] = (2000, 16000), start: int = 0, epoch: int = 0):
    """[(data_source, response, gold, extra_info, label)] for groups ``start .. start + groups - 1``.

    Every group has its own random stream, so a reward worker can build just its own chunk.
    ``epoch`` > 0: the same prompts (golds) again, with fresh responses.
    """
    rows = []
    for g in range(start, start + groups):
        rng = random.Random(f"{seed}/{mix}/{g}")
        gold, right, wrong = rng.choices(answer_kinds(rng.randint(3, 10**6)), weights=MIXES[mix])[0]
        source = rng.choice(["math", "gsm8k", "aime_2024", "HuggingFaceH4/MATH-500"])
        if epoch:
            rng = random.Random(f"{seed}/{mix}/{g}/epoch{epoch}")
        for i in range(group_size):
            think = i < group_size // 2
            correct = rng.random() < (0.6 if think else 0.4)
            # Models mostly write the canonical form; a few write equivalent ones.
            form = (right[0] if rng.random() < 0.6 else rng.choice(right)) if correct else rng.choice(wrong)
            tail = rng.choice(["Therefore, the final answer is $\\boxed{%s}$.", "So the answer is $\\boxed{%s}$",
                               "The answer: \\boxed{%s}"]) % form
            if think:
                body = _reasoning(rng, rng.randint(*think_chars))  # default ~500-4000 tokens of thinking
                if rng.random() < 0.1:  # ran out of tokens while thinking: no answer, even if one was drafted
                    response = body + " maybe $\\boxed{%s}$ but let me double check" % rng.choice(right)  # noqa: UP031 - LaTeX braces
                    rows.append((source, response, gold, {"bpo_mode": "think"}, False))
                    continue
                response = body + "\n</think>\n\n" + _reasoning(rng, rng.randint(50, 300)) + " " + tail
            else:
                response = _reasoning(rng, rng.randint(200, 1500)) + " " + tail
            rows.append((source, response, gold, {"bpo_mode": "think" if think else "no_think"}, correct))
    return rows


def _recipe_reward_fn(overrides: list[str]):
    """The reward verl loads from the recipe: ``get_custom_reward_fn`` on its ``reward`` block,
    with ``KEY=VALUE`` overrides of its ``reward_kwargs`` (values parsed as YAML)."""
    from importlib.resources import files

    import yaml
    from omegaconf import OmegaConf
    from verl.trainer.ppo.reward import get_custom_reward_fn

    config = OmegaConf.load(str(files("r4b_verl.config") / "recipe" / "r4b_bpo.yaml"))
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE (a reward_kwargs option)")
        OmegaConf.update(config, f"reward.custom_reward_function.reward_kwargs.{key}", yaml.safe_load(value))
    return get_custom_reward_fn(config)


def _cpu_seconds() -> float:
    """CPU time of this process (all threads, ns resolution) and of its live children (psutil)."""
    import psutil

    total = time.process_time()
    for child in psutil.Process().children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.Error:
            pass
    return total


def _chunk_groups(groups: int, index: int, count: int) -> tuple[int, int]:
    """(first group, number of groups) of worker ``index``: contiguous equal shares of the batch, as
    ``DataProto.chunk`` splits it (``groups`` is a multiple of ``count``, so no group is split)."""
    share = groups // count
    return index * share, share


def _reward_worker(index: int, count: int, args, conn) -> None:
    """One reward-loop worker process: builds its chunk of each batch, scores it on command."""
    import asyncio
    import inspect

    from verl.utils.reward_score import math_verify as math_verify_wrapper
    from verl.utils.reward_score.math_verify import compute_score as wrapper_score

    from r4b_verl.reward import STATS, reset_caches

    ours = _recipe_reward_fn(args.set)
    loop = asyncio.new_event_loop()  # kept for the worker's life, like a Ray actor's loop

    async def score_all(rows, scorer):
        async def one(row):
            source, response, gold, extra_info, _ = row
            if scorer == "wrapper":  # synchronous: through the loop's default executor
                return await loop.run_in_executor(None, lambda: wrapper_score(response, gold)) == 1.0
            result = ours(data_source=source, solution_str=response, ground_truth=gold, extra_info=dict(extra_info))
            result = await result if inspect.isawaitable(result) else result
            return result["acc"] == 1.0

        return await asyncio.gather(*(asyncio.ensure_future(one(row)) for row in rows))

    # Start both scorers' processes outside the timing, on answers not in the batches.
    warm = [("math", f"warm up \\boxed{{\\sqrt{{{i}}}}}", f"\\sqrt{{{i + 1}}}", {}, False) for i in range(32)]
    loop.run_until_complete(score_all(warm, "ours"))
    loop.run_until_complete(score_all(warm, "wrapper"))
    conn.send("ready")
    rows, built = [], None
    try:
        while True:
            command = conn.recv()
            if command is None:
                break
            # Build the chunk and empty the caches (not in a later epoch), then wait for "go". In a later
            # epoch each worker gets another worker's chunk of the same prompts, as verl's chunking
            # of a reshuffled batch would give it: only the node's shared verdict store has seen them.
            mix, round_, scorer, epoch = command
            if built != (mix, round_, epoch):
                first, share = _chunk_groups(args.groups, (index + epoch) % count, count)
                rows = make_batch(share, args.seed + round_, mix=mix, think_chars=tuple(args.think_chars), start=first,
                                  epoch=epoch)
                built = (mix, round_, epoch)
            if not epoch and scorer == "ours":  # (the wrapper's runs leave our store to the later epochs)
                reset_caches()
            conn.send("prepared")
            conn.recv()
            before = dict(STATS)  # a later epoch keeps the caches, and so the counters: report this run's
            cpu = _cpu_seconds()
            verdicts = loop.run_until_complete(score_all(rows, scorer))
            cpu = _cpu_seconds() - cpu
            facts = [(r[2], r[1][-120:], len(r[1]), r[4]) for r in rows]  # gold, tail, length, label
            counts = {key: STATS[key] - before[key] for key in STATS} if scorer == "ours" else {}
            conn.send((verdicts, cpu, counts, facts))
    finally:
        loop.close()
        # multiprocessing joins a child's children before interpreter exit, which would wait
        # forever on the wrapper's idle pool: shut it down first.
        math_verify_wrapper._get_pool().shutdown(cancel_futures=True)


def _start_workers(args):
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # a fresh interpreter, like a Ray worker
    workers = []
    for index in range(args.reward_workers):
        parent, child = context.Pipe()
        proc = context.Process(target=_reward_worker, args=(index, args.reward_workers, args, child), daemon=False)
        proc.start()
        workers.append((proc, parent))
    for proc, conn in workers:
        if conn.recv() != "ready":
            raise RuntimeError("a reward worker failed to start")
    return workers


def _run(workers, mix: str, round_: int, scorer: str, epoch: int = 0):
    """(verdicts, wall seconds, CPU seconds, summed stats, row facts) of one scorer on one batch."""
    for _, conn in workers:
        conn.send((mix, round_, scorer, epoch))
    for _, conn in workers:
        assert conn.recv() == "prepared"
    start = time.perf_counter()
    for _, conn in workers:
        conn.send("go")
    replies = [conn.recv() for _, conn in workers]
    seconds = time.perf_counter() - start
    stats: dict = {}
    for reply in replies:
        for key, value in reply[2].items():
            stats[key] = stats.get(key, 0) + value
    flat = [[item for reply in replies for item in reply[i]] for i in (0, 3)]
    return flat[0], seconds, sum(reply[1] for reply in replies), stats, flat[1]


def _measure(workers, mix: str, args) -> dict:
    """Both scorers, alternating over ``args.rounds`` fresh batches of one mix (new golds each round),
    so that load from other processes on the machine hits both alike."""
    out = {"rows": [], "ours": [], "theirs": [], "t_ours": 0.0, "t_theirs": 0.0, "cpu_ours": 0.0, "cpu_theirs": 0.0,
           "stats": {}, "later": []}
    for round_ in range(args.rounds):
        for scorer, key in (("ours", "ours"), ("wrapper", "theirs")):
            verdicts, seconds, cpu, stats, facts = _run(workers, mix, round_, scorer)
            out[key] += verdicts
            out["t_" + key] += seconds
            out["cpu_" + key] += cpu
            for name, value in stats.items():
                out["stats"][name] = out["stats"].get(name, 0) + value
        out["rows"] += facts
        if args.epochs > 1 and len(workers) > 1:
            # The wrapper keeps nothing between steps: its later epochs cost what the first did.
            for epoch in range(1, args.epochs):
                out["later"].append(_run(workers, mix, round_, "ours", epoch))
    return out


def main(argv=None) -> int:
    import os

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", type=int, default=512, help="prompts per batch (a 512 x 16 RL step)")
    parser.add_argument("--quick", action="store_true", help="64 groups per batch")
    parser.add_argument("--reward-workers", type=int, default=os.cpu_count() or 1,
                        help="reward-loop worker processes (verl: reward.num_workers); default: one per core")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one of the recipe's reward_kwargs for ours (repeatable), e.g. workers=2")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mix", choices=["integer", "math", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds, each on a fresh batch")
    parser.add_argument("--epochs", type=int, default=2,
                        help="also score the same prompts again with fresh responses, as the next epoch does, "
                             "without emptying the caches (needs 2+ reward workers); 1: first epoch only")
    parser.add_argument("--think-chars", type=int, nargs=2, default=[2000, 16000], metavar=("MIN", "MAX"),
                        help="length range of the reasoning of thinking responses (4 chars ~ 1 token)")
    args = parser.parse_args(argv)
    if args.quick:
        args.groups = 64
    if args.reward_workers < 1 or args.groups % args.reward_workers:
        parser.error("--reward-workers must be >= 1 and divide --groups")
    mixes = ["integer", "math"] if args.mix == "both" else [args.mix]

    workers = _start_workers(args)
    try:
        results = {mix: _measure(workers, mix, args) for mix in mixes}
    finally:
        for proc, conn in workers:
            conn.send(None)
            proc.join(60)

    first = results[mixes[0]]["rows"]
    print(f"\n{args.rounds} rounds x {args.groups} groups x 16 responses per mix, mean response length "
          f"{sum(r[2] for r in first) // len(first)} chars (thinking {args.think_chars[0]}-{args.think_chars[1]}), "
          f"{args.reward_workers} reward workers on {os.cpu_count()} cores\n")
    print("| answers | scorer | responses/s (wall) | responses per CPU-second | speed-up (wall / per CPU) "
          "| label accuracy |")
    print("|---|---|---:|---:|---:|---:|")
    failed = False
    notes = []
    for mix, res in results.items():
        rows, ours, theirs = res["rows"], res["ours"], res["theirs"]
        n = len(rows)
        labels = [r[3] for r in rows]
        agree = sum(a == b for a, b in zip(ours, theirs, strict=False))
        bad = [i for i in range(n) if theirs[i] == labels[i] and ours[i] != labels[i]]
        failed = failed or bool(bad)
        for name, t, cpu, verdicts, speed in (
            ("verl math_verify wrapper", res["t_theirs"], res["cpu_theirs"], theirs, ""),
            ("r4b_verl.reward", res["t_ours"], res["cpu_ours"], ours,
             f"{res['t_theirs'] / res['t_ours']:.1f}x / {res['cpu_theirs'] / res['cpu_ours']:.1f}x"),
        ):
            accuracy = sum(a == b for a, b in zip(verdicts, labels, strict=False)) / n
            print(f"| {mix} | {name} | {n / t:,.0f} | {n / cpu:,.0f} | {speed} | {accuracy:.1%} |")
        if res["later"]:
            later_t = sum(run[1] for run in res["later"])
            later_cpu = sum(run[2] for run in res["later"])
            later_n = sum(len(run[0]) for run in res["later"])
            later_bad = sum(v != label for run in res["later"]
                            for v, label in zip(run[0], (f[3] for f in run[4]), strict=False))
            failed = failed or bool(later_bad)
            wrapper_rate, wrapper_cpu_rate = n / res["t_theirs"], n / res["cpu_theirs"]
            print(f"| {mix}, later epochs | r4b_verl.reward | {later_n / later_t:,.0f} | {later_n / later_cpu:,.0f} | "
                  f"{later_n / later_t / wrapper_rate:.1f}x / {later_n / later_cpu / wrapper_cpu_rate:.1f}x | "
                  f"{1 - later_bad / later_n:.1%} |")
            later_stats: dict = {}
            for run in res["later"]:
                for name, value in run[3].items():
                    later_stats[name] = later_stats.get(name, 0) + value
            notes.append(f"{mix}, later epochs (same prompts, fresh responses, chunks on other workers; speed-up "
                         f"against the wrapper's first-epoch rate): {later_bad} verdicts differ from the label; "
                         f"ours: {later_stats}")
        notes.append(f"{mix}: verdict agreement {agree / n:.1%}, ours differs where the wrapper matches the label: "
                     f"{len(bad)}; ours: {res['stats']}")
        for i in bad[:5]:
            notes.append(f"  differs: {rows[i][0]} | {rows[i][1]!r} | label {labels[i]}")
    print()
    print("\n".join(notes))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
