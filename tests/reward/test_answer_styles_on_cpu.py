"""Never weaker than math-verify: on a corpus of answer styles the reward's verdict is
math-verify's on the answer part, case by case.

The reference, written here in its own words (math-verify's defaults throughout):
``verify(G, parse(answer))`` with ``G = parse("\\boxed{gold}")``, plus ``parse(gold)`` as given
when the boxed reading has no sympy value (``\\boxed{28\\%}``: latex2sympy fails on it).

CI runs a sample of ``tests/reward/answer_styles.py``'s corpus; the full corpus (3,000 cases):
``R4B_STYLE_CASES=3000 pytest tests/reward/test_answer_styles_on_cpu.py`` (``make corpus``).
The one reading we do not follow, math-verify on the gold *as given* always, is compared too: where it
says "equal" and we do not, it must have misread the gold, and ``test_gold_as_given_is_misread``
shows what that reading would pass.
"""

import importlib.util
import logging
import os
from pathlib import Path

import pytest
from math_verify import parse, verify

from r4b_verl.reward import STATS, compute_score
from r4b_verl.reward.extraction import gold_text

_spec = importlib.util.spec_from_file_location("answer_styles", Path(__file__).with_name("answer_styles.py"))
answer_styles = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(answer_styles)

CASES = int(os.environ.get("R4B_STYLE_CASES", "240"))
CHUNKS = 4  # xdist spreads the chunks over the cores


def _parse(text: str) -> list:
    return parse(text, parsing_timeout=None)


def _equal(gold: list, pred: list) -> bool:
    return bool(gold and pred and verify(gold, pred, timeout_seconds=None))


def readings(gold: str, answer: str) -> dict:
    boxed = _parse(gold_text(gold))
    as_given = _parse(gold.strip())
    pred = _parse(answer)
    reference = boxed + (as_given if all(isinstance(x, str) for x in boxed) else [])
    return {"reference": _equal(reference, pred), "as_given": _equal(as_given, pred), "boxed": boxed,
            "given": as_given}


def whole_gold(parsed: list) -> str:
    """The text math-verify's reading of a gold covers (its fallback string)."""
    return parsed[-1] if parsed and isinstance(parsed[-1], str) else ""


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_reward_is_math_verify_on_every_answer_style(chunk):
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    cases = answer_styles.corpus(CASES)[chunk::CHUNKS]
    differences, misread, equal = [], 0, 0
    for family, gold, answer in cases:
        ours = compute_score("math", answer, gold, {})["acc"] == 1.0
        ref = readings(gold, answer)
        equal += ref["reference"]
        if ours != ref["reference"]:
            differences.append((family, gold, answer, ours))
        if ref["as_given"] and not ref["reference"]:
            # Documented difference: as given, math-verify read only a piece of the gold.
            assert whole_gold(ref["given"]) != whole_gold(ref["boxed"]), (family, gold, answer)
            misread += 1
    assert differences == [], differences[:10]
    assert STATS["timeouts"] == 0
    # The corpus has both verdicts in every chunk, not only answers nothing reads.
    assert len(cases) // 5 < equal < len(cases) * 4 // 5, equal


def test_corpus_covers_every_family_with_unique_cases():
    cases = answer_styles.corpus(3000)
    assert len(cases) == len({(g, a) for _, g, a in cases}) == 3000
    assert {family for family, _, _ in cases} == set(answer_styles.FAMILIES)


# The styles a \boxed{}-first reading lost, against golds in the form data sets write them.
NAMED_STYLES = [
    ("28\\%", "The answer is 28 percent."),
    ("28\\%", "The answer is 28 pct"),
    ("28\\%", "The answer is 28 %"),
    ("28\\%", "The answer is $28$ %"),
    ("1.22", "so the answer is 1,22"),
    ("(\\frac{3}{5}, \\frac{8}{3}]", "The answer is $(0.6, 2.666667]$"),
    ("\\{1,2\\}", "$\\boxed{1}$ and $\\boxed{2}$"),
    ("(1,2)", "So $\\boxed{1}$ and $\\boxed{2}$."),
    ("\\{3, 5\\}", "The solutions are $3$ and $5$."),
]


@pytest.mark.parametrize("gold, answer", NAMED_STYLES)
def test_issue_styles_score_one(gold, answer):
    assert readings(gold, answer)["reference"]
    assert compute_score("math", answer, gold, {})["acc"] == 1.0


@pytest.mark.parametrize("gold, answer", [
    # math-verify says "not equal" to these, and so does the reward (not stronger than math-verify):
    ("(\\frac{3}{5}, \\frac{8}{3}]", "The answer is $(0.6, 2.6667]$"),  # 4 decimals: its rounding is to 6
    ("x \\in [-2,7]", "$-2 \\le x \\le 7$"),  # relation vs set only when the *answer* is the set
    ("28\\%", "The answer is 0.28"),  # its percent rule strips the sign of 28%, it does not scale 0.28
])
def test_styles_math_verify_rejects_score_zero(gold, answer):
    assert not readings(gold, answer)["reference"]
    assert compute_score("math", answer, gold, {})["acc"] == 0.0


@pytest.mark.parametrize("gold, wrong", [
    ("6\\sqrt{2}", "The answer is 6\\sqrt{3}."),  # as given, both read as 6
    ("y = 8x + 1", "we get y = 8x - 1 as the result."),  # both read as 1
    ("\\begin{bmatrix} 9 & -\\frac{1}{3} \\\\ 1 & 2 \\end{bmatrix}",
     "\\begin{bmatrix} 10 & -\\frac{1}{3} \\\\ 1 & 2 \\end{bmatrix}"),  # both read as the last entry, 2
    ("0, 3", "**Answer:** 3, 0, and 4"),  # both read as 3
    ("87{,}029{,}082", "The answer is 87\\,030\\,082."),  # both read as 87
])
def test_gold_as_given_is_misread(gold, wrong):
    """Why the gold is read in \\boxed{} first: math-verify on the bare gold text reads a piece of
    it, and that reading passes wrong answers. These are the corpus differences we keep."""
    assert readings(gold, wrong)["as_given"]  # what "math-verify on the raw gold" would reward
    assert not readings(gold, wrong)["reference"]
    assert compute_score("math", wrong, gold, {})["acc"] == 0.0
