"""Untrusted model output: random and hostile strings never raise, hang, or touch anything.

Thousands of inputs (random unicode, deep nesting, huge numbers and exponents, megabyte outputs,
code/shell/LaTeX injection attempts, broken think tags) through every built-in reward, every other
one through ``compute_score_async`` in an event loop as verl's reward loop calls it. Asserted:
no exception escapes, every call returns the full result shape, each call ends within a bound
derived from the configured deadlines, and nothing is written or executed (marker files named
by the injection attempts never appear, the working directory stays empty, the environment is
unchanged).
"""

import asyncio
import os
import random
import string
import time

import pytest

from r4b_verl.reward import RESULT_KEYS, STATS, compute_score, compute_score_async

OPTS = {"timeout_s": 0.5, "kill_grace_s": 0.5, "max_wait_s": 20.0}
# Per call: wait budget is not hit here (one caller); deadline + kill grace + a worker restart.
PER_CALL_BOUND_S = OPTS["timeout_s"] + OPTS["kill_grace_s"] + 8.0
ROUTES = ["math", "choice", "numeric", "exact", "format"]


def injections(marker_dir: str) -> list[str]:
    marker = os.path.join(marker_dir, "pwned")
    return [
        f"__import__('os').system('touch {marker}')",
        f"\\boxed{{__import__('os').system('touch {marker}')}}",
        f"The answer is $\\boxed{{eval(\"open('{marker}','w')\")}}$",
        f"answer: exec(\"open('{marker}','w').write('x')\")",
        f"$(touch {marker})", f"`touch {marker}`", f"; touch {marker} #",
        f"\\immediate\\write18{{touch {marker}}}", f"\\input{{{marker}}}", "\\include{/etc/passwd}",
        "Symbol('x').__class__.__mro__[1].__subclasses__()", "lambda: (yield)", "${jndi:ldap://x/a}",
        f"\\boxed{{(lambda f: f(f))(lambda f: open('{marker}','w'))}}",
        "{{7*7}}", "%s%s%s%n", "\x00\x01\x02", "\ud800 lone surrogate",
    ]


def hostile(rng: random.Random, marker_dir: str) -> list[str]:
    cases = injections(marker_dir)
    for n in (10, 100, 1000, 5000):
        cases += [
            "\\boxed{" + "\\frac{1}{" * n + "2" + "}" * n + "}",
            "\\boxed{" + "{" * n + "1" + "}" * n + "}",
            "$" + "(" * n + "x" + ")" * n + "$",
            "\\boxed{" + "\\sqrt{" * n + "2" + "}" * n + "}",
            "The answer is " + "9^" * n + "9",
            "\\[" * n, "\\(" * n, "$" * n, "\\boxed{" * n, "answer: " * n, "</think>" * n, "<think>" * n,
        ]
    cases += [
        "\\boxed{" + "9" * 100_000 + "}", "The answer is " + "9" * 20_000, "\\boxed{1e99999}",
        "\\boxed{9^{9^{9^{9}}}}", "\\boxed{10^{10^{10^{10}}}}", "answer: 9**9**9**9**9", "\\boxed{100000!}",
        "\\boxed{\\sum_{k=1}^{10^{100}} k}", "\\boxed{x^{1000000}-1}", "\\boxed{\\int_0^1 e^{x^2} dx}",
        "\\boxed{\\begin{pmatrix}" + "&".join(["1"] * 300) + "\\end{pmatrix}}",
        "\\boxed{\\{" + ",".join(map(str, range(3000))) + "\\}}",
        "a" * 1_100_000, "\\boxed{" + "1" * 1_000_000 + "}", ("x </think> " * 100_000),
        "</think>" + "\\[ 1 \\]" * 20_000,
    ]
    return cases


def random_text(rng: random.Random) -> str:
    alphabet = string.printable + "\\{}$^_αβπ∞√≤≥×÷%" + "\u200b\u202e"
    pieces = ["\\boxed{", "}", "\\frac{", "$", "\\[", "\\]", "</think>", "<think>", "answer: ", "final answer is ",
              "\\sqrt", "^", "-", ".", ",", "%", "\\infty", "\\{", "\\}", "(", ")", "[", "]", "\\begin{pmatrix}",
              "\\\\", "&", "\\end{pmatrix}", "\\text{", " cm", "9" * 30]
    out = []
    for _ in range(rng.randint(0, 60)):
        out.append(rng.choice(pieces) if rng.random() < 0.5 else "".join(rng.choices(alphabet, k=rng.randint(1, 8))))
    return "".join(out)


def test_fuzz_never_raises_hangs_or_touches_anything(tmp_path, monkeypatch):
    marker_dir = tmp_path / "markers"
    marker_dir.mkdir()
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    env_before = dict(os.environ)
    rng = random.Random(1234)
    # Every hostile input through every reward; random ones mostly through math.
    calls = [(route, text) for text in hostile(rng, str(marker_dir)) for route in ROUTES]
    calls += [(rng.choice(ROUTES) if rng.random() < 0.3 else "math", random_text(rng)) for _ in range(2500)]
    golds = ["72", "\\frac{1}{2}", "B", "3.14", "hello world", "x^2+1", "\\{1,2\\}"] + injections(str(marker_dir))[:3]
    extras = [None, {}, {"bpo_mode": "think"}, {"bpo_mode": "no_think"}, {"bpo_mode": "auto"}, {"bpo_mode": 7},
              {"bpo_mode": ["x"]}, "not a dict"]

    slowest = 0.0
    start_all = time.monotonic()
    loop = asyncio.new_event_loop()  # every other call the way verl's reward loop makes it
    for i, (source, response) in enumerate(calls):
        gold = rng.choice(golds)
        extra = rng.choice(extras)
        start = time.monotonic()
        if i % 2:
            result = loop.run_until_complete(
                compute_score_async(source, response, gold, extra, routes={"choice": "choice"}, **OPTS))
        else:
            result = compute_score(source, response, gold, extra, routes={"choice": "choice"}, **OPTS)
        elapsed = time.monotonic() - start
        slowest = max(slowest, elapsed)
        assert elapsed < PER_CALL_BOUND_S, (i, elapsed, response[:80])
        assert tuple(result) == RESULT_KEYS, result
        assert 0.0 <= result["score"] <= 1.0 and isinstance(result["pred"], str) and len(result["pred"]) <= 256
        assert result["mode"] in ("think", "no_think", "auto")
        assert all(isinstance(result[k], float) for k in ("score", "acc", "has_answer", "format_ok", "timeout"))

    loop.close()
    assert list(marker_dir.iterdir()) == [] and list(work.iterdir()) == []
    assert dict(os.environ) == env_before
    # The hostile paths really ran: symbolic work, deadlines, scanning in the worker.
    assert STATS["responses"] > 1500 and STATS["symbolic"] > 100
    assert STATS["timeouts"] > 0 and STATS["scanned_in_worker"] > 0
    print(f"fuzz: {len(calls)} calls in {time.monotonic() - start_all:.1f}s, slowest call {slowest:.2f}s, {STATS}")


@pytest.mark.parametrize("bad", [None, 12345, b"\\boxed{1}", ["\\boxed{1}"]])
def test_non_string_solutions_do_not_raise(bad):
    result = compute_score("math", bad, "1", {}, **OPTS)
    assert tuple(result) == RESULT_KEYS and 0.0 <= result["score"] <= 1.0
