"""The in-process fast path agrees with math-verify, and caching verifies each answer once.

A generated corpus of (gold, answer) pairs covers numbers written many ways, fractions,
expressions, sets, percentages and units inside several answer wrappers. For every pair:
- the answer string found without sympy is the fallback string math-verify's ``parse`` returns;
- a fast "equal" is math-verify's "equal", a fast "not equal" is math-verify's "not equal";
- compute_score's verdict (fast path, caches, worker) equals math-verify run directly.
"""

import itertools
import random
from concurrent.futures import ThreadPoolExecutor

import pytest
from math_verify import parse, verify

from r4b_verl.reward import STATS, compute_score, math_answer
from r4b_verl.reward.extraction import GOLD_CONFIG, PRED_CONFIG, first_candidate, gold_text
from r4b_verl.reward.math_answer import fast_decision, fast_equal

WRAPPERS = [
    "The final answer is $\\boxed{%s}$.",
    "So the answer is \\boxed{%s}",
    "Answer: %s",
    "the result is $%s$",
    "We get %s.",
    "\\[ %s \\]",
    "The answer is %s%%.",
    "The answer is $\\boxed{%s \\text{ cm}}$",
]


def numeral_forms(rng: random.Random, value: int) -> list[str]:
    return [str(value), f"{value}.0", f"{value}.00", f"0{value}", f"{value:,}", f"{value}.5", f"-{value}",
            str(value + rng.choice([-1, 1])), f"{value}e0", str(value * 1000003)]


def corpus(seed: int = 0, size: int = 400) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    pairs = []
    for _ in range(size):
        kind = rng.randrange(5)
        if kind == 0:
            value = rng.choice([0, 1, 7, 12, 100, 2024, 123456789, 10**14 + 7, 10**17])
            gold = str(value)
            forms = numeral_forms(rng, value)
        elif kind == 1:
            a, b = rng.randint(1, 9), rng.randint(2, 9)
            gold = rng.choice([f"\\frac{{{a}}}{{{b}}}", f"{a / b:.6g}", f"{a}.{b}"])
            forms = [f"\\frac{{{a}}}{{{b}}}", f"\\dfrac{{{a}}}{{{b}}}", f"{a}/{b}", f"{a / b:.6g}", f"{a}.{b}",
                     f"{a}.{b}0", f"\\frac{{{2 * a}}}{{{2 * b}}}", f"{b}/{a}"]
        elif kind == 2:
            k = rng.randint(1, 9)
            gold = rng.choice([f"{k}\\sqrt{{2}}", f"x^2+{k}", f"{k}\\pi"])
            forms = [f"{k}\\sqrt{{2}}", f"\\sqrt{{{2 * k * k}}}", f"x^2+{k}", f"x^{{2}} + {k}", f"{k}\\pi",
                     f"{k} \\pi", f"{k + 1}\\pi"]
        elif kind == 3:
            items = rng.sample(range(1, 9), 3)
            gold = "\\{" + ",".join(map(str, items)) + "\\}"
            forms = ["\\{" + ",".join(map(str, p)) + "\\}" for p in itertools.permutations(items)][:3]
            forms += [", ".join(map(str, items)), "\\{" + ",".join(map(str, items[:2])) + "\\}"]
        else:
            value = rng.randint(1, 99)
            gold = rng.choice([str(value), f"{value}\\%", f"0.{value:02d}"])
            forms = [str(value), f"{value}\\%", f"0.{value:02d}", f"{value} \\text{{ cm}}", f"{value}\\,\\mathrm{{m}}"]
        pairs.append((gold, rng.choice(WRAPPERS) % rng.choice(forms)))
    return pairs


def reference(gold: str, answer: str) -> bool:
    """math-verify on the answer, default configs; the gold boxed, and also as given if boxed it has no value."""
    g = parse(gold_text(gold), parsing_timeout=None)
    if all(isinstance(item, str) for item in g):
        g += parse(gold.strip(), parsing_timeout=None)
    p = parse(answer, parsing_timeout=None)
    return bool(g and p and verify(g, p, timeout_seconds=None))


CORPUS = corpus()


def test_extracted_answer_is_math_verify_fallback():
    checked = 0
    for _, answer in CORPUS:
        candidate = first_candidate(answer, PRED_CONFIG)
        parsed = parse(answer, PRED_CONFIG, parsing_timeout=None)
        if candidate is None:
            assert parsed == [], answer
            continue
        if candidate.text and candidate.single:
            assert isinstance(parsed[-1], str) and parsed[-1] == candidate.text, (answer, parsed, candidate)
            checked += 1
    assert checked > len(CORPUS) // 2


def checked_fast_decisions(pairs) -> dict[str, int]:
    """Every fast decision on (gold, answer) pairs asserted against math-verify; how many of each."""
    decided = {"equal": 0, "mismatch": 0}
    for gold, answer in pairs:
        gold_cand = first_candidate(gold_text(gold), GOLD_CONFIG)
        pred = first_candidate(answer, PRED_CONFIG)
        if gold_cand is None or pred is None:
            continue
        decision = fast_decision(gold_cand, pred, answer)
        if decision is not None:
            assert decision[0] == reference(gold, answer), (gold, answer, decision)
            decided["equal" if decision[0] else "mismatch"] += 1
    return decided


def test_fast_decisions_match_math_verify():
    decided = checked_fast_decisions(CORPUS)
    # The corpus exercises both shortcuts, not just the symbolic fall-through.
    assert decided["equal"] > 50 and decided["mismatch"] > 10, decided


@pytest.mark.parametrize("fast_mismatch", [True, False])
def test_compute_score_verdicts_equal_math_verify(fast_mismatch):
    pairs = CORPUS[:150]
    verdicts = [compute_score("math", answer, gold, {}, fast_mismatch=fast_mismatch)["acc"] == 1.0
                for gold, answer in pairs]
    expected = [reference(gold, answer) for gold, answer in pairs]
    assert verdicts == expected
    assert STATS["timeouts"] == 0


def test_identical_answers_in_a_group_are_verified_once():
    # 16 responses, one gold, the same non-trivial answer in different words: one symbolic check.
    wrappers = ["So \\boxed{\\sqrt{12}}.", "Hence the answer is $\\boxed{\\sqrt{12}}$", "\\boxed{\\sqrt{12}}"]
    group = [f"thinking {i} </think> {wrappers[i % 3]}" for i in range(16)]
    with ThreadPoolExecutor(8) as pool:  # concurrently, as verl's executor calls it
        results = list(pool.map(lambda r: compute_score("math", r, "2\\sqrt{3}", {"bpo_mode": "think"}), group))
    assert all(r["acc"] == 1.0 for r in results)
    assert STATS["symbolic"] == 1 and STATS["cache_hits"] == 15
    assert math_answer._gold_cache.misses == 1  # the gold was read once for the group


def test_identical_answers_scanned_in_the_worker_are_verified_once():
    # More than 32 display-math openers: scanned in the worker, not in-process; the group still costs one call.
    answer = "thinking </think> " + "\\( x " * 40 + "so \\boxed{\\sqrt{12}}"
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: compute_score("math", answer, "2\\sqrt{3}", {"bpo_mode": "think"}),
                                range(16)))
    assert all(r["acc"] == 1.0 for r in results), results[0]
    assert STATS["scanned_in_worker"] == 16 and STATS["symbolic"] == 1 and STATS["cache_hits"] == 15


def test_fast_equal_leaves_lists_to_math_verify():
    # "$a$ and $b$": math-verify's fallback is the joined text only if every item parses, so equal
    # joined texts are not its string comparison; only single expressions are decided in-process.
    gold = first_candidate("$1$ and $2$", PRED_CONFIG)
    pred = first_candidate("so $1$ and $2$", PRED_CONFIG)
    assert not gold.single and gold.text == pred.text
    assert fast_equal(gold, pred) is None


def test_fast_path_skips_the_worker_for_canonical_answers():
    group = ["r </think> \\boxed{42}", "r </think> The answer is $\\boxed{42.0}$", "r </think> \\boxed{41}"]
    results = [compute_score("math", r, "42", {"bpo_mode": "think"}) for r in group]
    assert [r["acc"] for r in results] == [1.0, 1.0, 0.0]
    assert STATS["symbolic"] == 0
    assert (STATS["fast_string"], STATS["fast_numeric"], STATS["fast_mismatch"]) == (1, 1, 1)


def test_opener_scan_finds_exactly_finditers_matches():
    """The boxed-in-environment pattern is only tried at environment openers: same matches as finditer."""
    from math_verify.parser import get_extraction_regexes

    from r4b_verl.reward.extraction import _BOXED_ENV_PREFIX, _finditer_at_openers

    patterns = [p for ps, _ in get_extraction_regexes(PRED_CONFIG) for p, _ in ps
                if p.pattern.startswith(_BOXED_ENV_PREFIX)]
    assert len(patterns) == 1  # math-verify still has the pattern this shortcut is written for
    pieces = ["\\boxed{", "}", "{", "$", "$$", "\\[", "\\]", "\\(", "\\)", " [", "]", "[", "\\", "\n", " ", "x", "1",
              ",", " and ", " or ", "%", "\\%", "percent", "\\frac{1}{2}", "\\\\"]
    rng = random.Random(7)
    texts = [answer for _, answer in CORPUS]
    texts += ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 40))) for _ in range(3000)]
    for text in texts:
        expected = [(m.span(), m.groupdict()) for m in patterns[0].finditer(text)]
        assert [(m.span(), m.groupdict()) for m in _finditer_at_openers(patterns[0], text)] == expected, text


def test_numeral_shortcut_is_normalize_latex():
    """extraction._normalized skips normalize_latex for boxed plain numerals: it must return the same."""
    from r4b_verl.reward import extraction

    rng = random.Random(5)
    numerals = ["0", "-0", "00", "007", "0.5", "-0.5", "00.5", "0.50", "0.05", "1.0", "-12.250", "3.14159",
                str(10**40), f"-{10**17}.{10**9}", "1.", ".5", "1..2", "--1", "١٢", "1e5", "0x1F", "1 000", "1,000"]
    numerals += [str(rng.randint(-10**12, 10**12)) for _ in range(200)]
    numerals += [f"{rng.randint(-999, 999)}.{rng.randint(0, 10**6):0{rng.randint(1, 7)}d}" for _ in range(200)]
    shortcut = 0
    for numeral in numerals:
        for value in (f"\\boxed{{{numeral}}}", numeral, f"\\boxed{{{numeral}}}.", f"$\\boxed{{{numeral}}}$"):
            for config in (GOLD_CONFIG[0], PRED_CONFIG[0]):
                for boxed_last in (False, True):
                    fast = extraction._normalized(value, config, boxed_last)
                    assert fast == extraction._normalize_latex(value, config, boxed_last), (value, boxed_last)
                    shortcut += extraction._BOXED_NUMERAL.fullmatch(value) is not None
    assert shortcut > 1000  # the shortcut was taken, not only the slow path


@pytest.mark.parametrize("digits", ["١٢", "１２", "१२", "٧", "12"])
@pytest.mark.parametrize("wrapper", ["\\boxed{%s}", "The answer is %s", "$%s$"])
def test_non_ascii_digits_are_left_to_math_verify(digits, wrapper):
    # Python reads int("١٢") as 12; math-verify does not parse it as a number. The fast path must not
    # decide on such digits, either way.
    answer = wrapper % digits
    for gold in ("12", "7", "13"):
        gold_cand = first_candidate(gold_text(gold), GOLD_CONFIG)
        pred = first_candidate(answer, PRED_CONFIG)
        if pred is not None and not digits.isascii():
            assert fast_decision(gold_cand, pred, answer) is None
        assert (compute_score("math", answer, gold, {})["acc"] == 1.0) == reference(gold, answer), (gold, answer)


VALUES = [0, 1, 5, 12, 100, 999, 1000, 12345, 10**6, 10**9 + 7, 10**14 + 3, 10**15, 10**16 + 1]


def numeral_variants(rng: random.Random, k: int) -> tuple[str, str]:
    """(k, one way a model or a dataset might write it): signs, separators, zeros, spacing commands,
    units, text wrappers, unicode digits and minus, fractions over 1, percent."""
    forms = [str(k), f"-{k}", f"+{k}", f"0{k}", f"{k}.0", f"{k}.00", f"{k}.5", f"{k:,}", f"{k:_}", f" {k} ",
             f"{k}\\,", f"\\!{k}", f"{{{k}}}", f"{k}.", f".{k}", f"{k}e0", f"{k}\\%", f"{k}%", f"-0{k}", f"- {k}",
             f"{k}\\text{{ cm}}", f"\\text{{{k}}}", f"\\mathrm{{{k}}}", f"{k}^{{1}}", f"({k})", f"[{k}]",
             f"{k}\\cdot 1", f"{k}/1", f"\\frac{{{k}}}{{1}}", f"{k}\\;", f"{k}~", f"\\${k}", f"\u2212{k}",
             f"{k:,}.0", str(k).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))]
    return str(k), rng.choice(forms)


def test_fast_decisions_on_numerals_written_every_way_are_math_verifys():
    """The fast decisions the throughput rests on (numeral equality, integer mismatch) against
    math-verify itself, on golds and answers written in adversarial ways."""
    rng = random.Random(7)
    wrappers = ["\\boxed{%s}", "$\\boxed{%s}$", "The final answer is $%s$.", "Answer: %s", "the answer is %s.",
                "\\[\\boxed{%s}\\]", "so $%s$", "%s"]
    pairs = []
    for _ in range(2500):
        k = rng.choice(VALUES)
        plain, written = numeral_variants(rng, k)
        gold = rng.choice([plain, written])
        answer = rng.choice(wrappers) % numeral_variants(rng, k if rng.random() < 0.5 else rng.choice(VALUES))[1]
        pairs.append((gold, answer))
    decided = checked_fast_decisions(pairs)
    assert decided["equal"] > 100 and decided["mismatch"] > 100, decided


@pytest.mark.parametrize("number", ["7" * 4500, "1" + ",000" * 1500, " ".join(["123"] * 1500)])
def test_a_number_math_verify_chokes_on_blocks_the_string_shortcut(number):
    # The boxed answer's string equals the gold's, but its LaTeX does not parse, so math-verify goes on
    # to the 4500-digit number, whose conversion raises: parse returns [] and the verdict is "not equal".
    answer = "we get " + number + " so \\boxed{\\alpha\\beta\\gamma}"
    gold = "\\alpha\\beta\\gamma"
    pred = first_candidate(answer, PRED_CONFIG)
    assert fast_equal(first_candidate(gold_text(gold), GOLD_CONFIG), pred) == "string"  # what a naive shortcut says
    assert not reference(gold, answer)
    assert compute_score("math", answer, gold, {}, max_answer_chars=10000)["acc"] == 0.0
