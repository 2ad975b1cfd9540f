"""Throughput of r4b_verl.reward_fns vs verl's math-verify wrapper on an RL-shaped batch.

    python benchmarks/bench_rewards.py            # integer and MATH-style batches, 64 groups x 16 each
    python benchmarks/bench_rewards.py --quick    # 16 groups each

The batch looks like a BPO step: groups of 16 responses to one prompt sharing one gold answer,
half thinking (long reasoning, ``</think>``, short answer; some never close the think block) and
half non-thinking, with equivalent forms of correct answers (``0.75`` for ``\\frac{3}{4}``,
``(x+1)^2`` for ``x^2+2x+1``, sets, intervals, matrices, units) and wrong ones. Both scorers are
called per response from a thread pool, as verl's reward loop does (``run_in_executor``), with
cold caches. Every response has a label by construction (correct form + closed answer); the run
prints responses/s of both and how their verdicts agree, and fails (exit 1) if ours differs from
the wrapper anywhere the wrapper matches the label.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor


def answer_kinds(k: int):
    """For a group parameter k: [(gold, equivalent forms, wrong forms)], one per answer kind.

    Every gold differs between groups (as prompts do in a batch); every pair is one math-verify
    itself judges as labelled (``tests/reward_fns/test_math_equivalence_on_cpu.py`` checks samples).
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
         [f"\\begin{{pmatrix}}{k}&1\\\\0&{k + 1}\\end{{pmatrix}}", f"\\begin{{bmatrix}}{k}&1\\\\0&{k + 1}\\end{{bmatrix}}"],
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
               think_chars: tuple[int, int] = (2000, 16000)):
    """[(data_source, response, gold, extra_info, label)] in groups of ``group_size``."""
    rng = random.Random(seed)
    rows = []
    for g in range(groups):
        gold, right, wrong = rng.choices(answer_kinds(rng.randint(3, 10**6)), weights=MIXES[mix])[0]
        source = rng.choice(["math", "gsm8k", "aime_2024", "HuggingFaceH4/MATH-500"])
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
                    response = body + " maybe $\\boxed{%s}$ but let me double check" % rng.choice(right)
                    rows.append((source, response, gold, {"bpo_mode": "think"}, False))
                    continue
                response = body + "\n</think>\n\n" + _reasoning(rng, rng.randint(50, 300)) + " " + tail
            else:
                response = _reasoning(rng, rng.randint(200, 1500)) + " " + tail
            rows.append((source, response, gold, {"bpo_mode": "think" if think else "no_think"}, correct))
    return rows


def _cpu_seconds() -> float:
    """CPU time of this process and its live children (both scorers do their work in children)."""
    import psutil

    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.Error:
            pass
    return total


def _run(score_one, rows, threads: int):
    """(verdicts, wall seconds, CPU seconds) of scoring rows from a thread pool."""
    with ThreadPoolExecutor(threads) as pool:
        cpu, start = _cpu_seconds(), time.perf_counter()
        verdicts = list(pool.map(score_one, rows))
        return verdicts, time.perf_counter() - start, _cpu_seconds() - cpu


def _measure(mix: str, groups: int, args, wrapper_score, compute_score, reset_caches, stats_source) -> dict:
    """Both scorers, alternating over ``args.rounds`` fresh batches of one mix (new golds each round,
    cold caches), so that load from other processes on the machine hits both alike."""
    kwargs = {"workers": args.workers}
    out = {"rows": [], "ours": [], "theirs": [], "t_ours": 0.0, "t_theirs": 0.0, "cpu_ours": 0.0, "cpu_theirs": 0.0,
           "stats": {}}
    for round_ in range(args.rounds):
        batch = make_batch(groups, args.seed + round_, mix=mix, think_chars=tuple(args.think_chars))
        reset_caches()
        verdicts, seconds, cpu = _run(lambda r: compute_score(r[0], r[1], r[2], r[3], **kwargs)["acc"] == 1.0,
                                      batch, args.threads)
        out["ours"] += verdicts
        out["t_ours"] += seconds
        out["cpu_ours"] += cpu
        out["stats"] = {k: out["stats"].get(k, 0) + v for k, v in stats_source.items()}
        verdicts, seconds, cpu = _run(lambda r: wrapper_score(r[1], r[2]) == 1.0, batch, args.threads)
        out["theirs"] += verdicts
        out["t_theirs"] += seconds
        out["cpu_theirs"] += cpu
        out["rows"] += batch
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="16 groups per batch")
    parser.add_argument("--threads", type=int, default=16, help="caller threads (verl: executor threads)")
    parser.add_argument("--workers", type=int, default=1, help="reward_kwargs.workers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mix", choices=["integer", "math", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds, each on a fresh batch")
    parser.add_argument("--think-chars", type=int, nargs=2, default=[2000, 16000], metavar=("MIN", "MAX"),
                        help="length range of the reasoning of thinking responses (4 chars ~ 1 token)")
    args = parser.parse_args(argv)
    groups = 16 if args.quick else args.groups
    mixes = ["integer", "math"] if args.mix == "both" else [args.mix]

    from verl.utils.reward_score.math_verify import compute_score as wrapper_score

    from r4b_verl.reward_fns import STATS, compute_score, reset_caches

    # Start every process of both pools outside the timing (the wrapper's spawn pool starts its 4
    # processes on demand), on answers not in the batches.
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: wrapper_score(f"warm up \\boxed{{{i}}}", "7"), range(64)))
        list(pool.map(lambda i: compute_score("math", f"warm up \\boxed{{\\sqrt{{{i}}}}}", f"\\sqrt{{{i + 1}}}", {},
                                              workers=args.workers), range(64)))

    results = {mix: _measure(mix, groups, args, wrapper_score, compute_score, reset_caches, STATS) for mix in mixes}

    first = results[mixes[0]]["rows"]
    print(f"\n{args.rounds} rounds x {groups} groups x 16 responses per mix, mean response length "
          f"{sum(len(r[1]) for r in first) // len(first)} chars, {args.threads} caller threads\n")
    print("| answers | scorer | responses/s (wall) | responses per CPU-second | speed-up (wall / CPU) | label accuracy |")
    print("|---|---|---:|---:|---:|---:|")
    failed = False
    notes = []
    for mix, res in results.items():
        rows, ours, theirs = res["rows"], res["ours"], res["theirs"]
        n = len(rows)
        labels = [r[4] for r in rows]
        agree = sum(a == b for a, b in zip(ours, theirs))
        bad = [i for i in range(n) if theirs[i] == labels[i] and ours[i] != labels[i]]
        failed = failed or bool(bad)
        for name, t, cpu, verdicts, speed in (
            ("verl math_verify wrapper", res["t_theirs"], res["cpu_theirs"], theirs, ""),
            (f"r4b_verl.reward_fns (workers={args.workers})", res["t_ours"], res["cpu_ours"], ours,
             f"{res['t_theirs'] / res['t_ours']:.1f}x / {res['cpu_theirs'] / res['cpu_ours']:.1f}x"),
        ):
            accuracy = sum(a == b for a, b in zip(verdicts, labels)) / n
            print(f"| {mix} | {name} | {n / t:,.0f} | {n / cpu:,.0f} | {speed} | {accuracy:.1%} |")
        notes.append(f"{mix}: verdict agreement {agree / n:.1%}, ours differs where the wrapper matches the label: "
                     f"{len(bad)}; ours: {res['stats']}")
        for i in bad[:5]:
            notes.append(f"  differs: {rows[i][2]} | {rows[i][1][-120:]!r} | label {labels[i]}")
    print()
    print("\n".join(notes))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
