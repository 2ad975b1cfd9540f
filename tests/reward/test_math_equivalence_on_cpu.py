"""The math reward per answer type: math-verify's equivalences hold through compute_score."""

import pytest

from r4b_verl.reward import RESULT_KEYS, compute_score


def score(answer: str, gold: str, mode: str = "no_think", **kwargs) -> dict:
    return compute_score("math", answer, gold, {"bpo_mode": mode}, **kwargs)


EQUIVALENT = [
    # numbers
    ("72", "The answer is $\\boxed{72}$."),
    ("72", "so the answer is 72.0"),
    ("-3", "$\\boxed{-3}$"),
    ("1234", "Answer: 1,234"),
    # fractions and decimals
    ("\\frac{3}{4}", "$\\boxed{0.75}$"),
    ("\\frac{3}{4}", "$\\boxed{\\dfrac{6}{8}}$"),
    ("0.5", "\\boxed{\\frac12}"),
    # expressions
    ("2\\sqrt{3}", "\\boxed{\\sqrt{12}}"),
    ("x^2+2x+1", "\\boxed{(x+1)^2}"),
    ("\\frac{\\pi}{2}", "\\boxed{\\pi/2}"),
    # sets and intervals
    ("\\{1,2,3\\}", "\\boxed{\\{3,1,2\\}}"),
    ("(-\\infty, 2]", "\\boxed{(-\\infty,2]}"),
    # matrices
    ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\boxed{\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}}"),
    # percentages and units
    ("0.25", "The answer is 25%."),
    ("5", "\\boxed{5 \\text{ cm}}"),
]

DIFFERENT = [
    ("72", "\\boxed{71}"),
    ("\\frac{3}{4}", "\\boxed{\\frac{4}{3}}"),
    ("2\\sqrt{3}", "\\boxed{3\\sqrt{2}}"),
    ("x^2+2x+1", "\\boxed{(x-1)^2}"),
    ("\\{1,2,3\\}", "\\boxed{\\{1,2\\}}"),
    ("(-\\infty, 2]", "\\boxed{(-\\infty, 2)}"),
    ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\boxed{\\begin{pmatrix}2&1\\\\3&4\\end{pmatrix}}"),
    ("0.25", "\\boxed{2.5}"),
]


@pytest.mark.parametrize("gold, answer", EQUIVALENT)
def test_equivalent_answers_score_one(gold, answer):
    result = score(answer, gold)
    assert result["score"] == 1.0 and result["acc"] == 1.0, result
    assert result["has_answer"] == 1.0 and result["timeout"] == 0.0


@pytest.mark.parametrize("gold, answer", DIFFERENT)
def test_different_answers_score_zero(gold, answer):
    result = score(answer, gold)
    assert result["score"] == 0.0 and result["has_answer"] == 1.0, result


def test_result_has_the_same_keys_whatever_happens():
    results = [
        score("\\boxed{1}", "1"),
        score("no number here", "1"),
        score("unclosed thinking \\boxed{1}", "1", mode="think"),
        compute_score("gpqa", "B", "B", {}, routes={"gpqa": "choice"}),
    ]
    for result in results:
        assert tuple(result) == RESULT_KEYS
        assert isinstance(result["score"], float) and isinstance(result["pred"], str)


def test_thinking_mode_needs_a_closed_think_block():
    unclosed = score("I think it is \\boxed{4} but let me check", "4", mode="think")
    assert unclosed["score"] == 0.0 and unclosed["has_answer"] == 0.0
    closed = score("I think it is \\boxed{5}. </think> The answer is \\boxed{4}.", "4", mode="think")
    assert closed["score"] == 1.0 and closed["mode"] == "think" and closed["pred"] == "4"


def test_the_answer_part_is_what_is_scored():
    # The think block drafts a wrong answer; only the part after </think> counts.
    result = score("maybe \\boxed{3} </think> so \\boxed{4}", "4", mode="think")
    assert result["acc"] == 1.0
    result = score("maybe \\boxed{4} </think> so \\boxed{3}", "4", mode="think")
    assert result["acc"] == 0.0


def test_list_ground_truth_accepts_any_item():
    assert compute_score("math", "\\boxed{6}", ["5", "6"], {})["acc"] == 1.0
    assert compute_score("math", "\\boxed{7}", ["5", "6"], {})["acc"] == 0.0


def test_format_weight_combines_format_and_answer():
    good = score("r </think> \\boxed{4}", "4", mode="think", format_weight=0.2)
    assert good["score"] == pytest.approx(1.0)
    wrong_but_formatted = score("r </think> \\boxed{5}", "4", mode="think", format_weight=0.2)
    assert wrong_but_formatted["score"] == pytest.approx(0.2) and wrong_but_formatted["format_ok"] == 1.0
    unformatted = score("<think>thoughts</think>\\boxed{4}", "4", mode="no_think", format_weight=0.2)
    assert unformatted["score"] == pytest.approx(0.8) and unformatted["format_ok"] == 0.0


def test_benchmark_labels_are_math_verifys_verdicts(bench_rewards):
    """The benchmark's labels (benchmarks/bench_rewards.py) agree with math-verify itself."""
    from math_verify import parse, verify

    from r4b_verl.reward.extraction import GOLD_CONFIG, PRED_CONFIG, gold_text

    for k in (3, 1234):
        for gold, right, wrong in bench_rewards.answer_kinds(k):
            g = parse(gold_text(gold), GOLD_CONFIG, parsing_timeout=None)
            for form, label in [(f, True) for f in right] + [(f, False) for f in wrong]:
                p = parse(f"So the answer is $\\boxed{{{form}}}$.", PRED_CONFIG, parsing_timeout=None)
                assert verify(g, p, timeout_seconds=None) == label, (gold, form)
