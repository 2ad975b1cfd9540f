"""choice, numeric and exact rewards, and the format reward, through compute_score."""

import pytest

from r4b_verl.reward import compute_score


def run(source, response, gold, mode="no_think", **kwargs):
    return compute_score(source, response, gold, {"bpo_mode": mode}, **kwargs)


@pytest.mark.parametrize(
    "response, gold, acc",
    [
        ("The answer is \\boxed{B}.", "B", 1.0),
        ("\\boxed{(C)}", "(C)", 1.0),
        ("\\boxed{\\text{D}}", "D. a dog", 1.0),
        ("So the final answer is A", "A", 1.0),
        ("Answer: (B)", "B", 1.0),
        ("I pick (A) at first, but the answer is C.", "C", 1.0),
        ("The answer is \\boxed{B}.", "C", 0.0),
        ("J is the tenth option: \\boxed{J}", "J", 1.0),
    ],
)
def test_choice(response, gold, acc):
    result = run("choice", response, gold)
    assert result["acc"] == acc and result["has_answer"] == 1.0, result


def test_choice_letters_are_case_insensitive():
    result = run("choice", "The answer is \\boxed{b}.", "B", choice_letters="abcd")
    assert result["acc"] == 1.0 and result["pred"] == "B", result


def test_choice_without_a_letter_has_no_answer():
    result = run("choice", "none of these look right", "B", choice_letters="ABCD")
    assert result["has_answer"] == 0.0 and result["score"] == 0.0


@pytest.mark.parametrize(
    "response, gold, acc",
    [
        ("It is about 3.14159.", "3.1416", 1.0),  # within rel_tol 1e-4
        ("It is about 3.15.", "3.1416", 0.0),
        ("\\boxed{1,234.5} people, not 7", "1234.5", 1.0),  # the boxed number, not the last one
        ("ratio 2/3", "0.666667", 1.0),
        ("speed 3e8 m/s", "300000000", 1.0),
        ("-0.5", "-0.5", 1.0),
    ],
)
def test_numeric(response, gold, acc):
    assert run("numeric", response, gold)["acc"] == acc


def test_numeric_tolerance_is_configurable():
    assert run("numeric", "3.15", "3.1416", numeric_rel_tol=0.01)["acc"] == 1.0
    assert run("numeric", "not a number", "3")["has_answer"] == 0.0
    assert run("numeric", "3", "three")["acc"] == 0.0  # bad gold: logged, scored 0


@pytest.mark.parametrize(
    "response, gold, acc",
    [
        ("  Hello   World. ", "hello world", 1.0),
        ("\\boxed{\\text{STOP}}", "stop", 1.0),
        ("“Quoted”", "quoted", 1.0),
        ("ｆｕｌｌｗｉｄｔｈ", "fullwidth", 1.0),  # NFKC
        ("hello world!", "hello world", 0.0),
    ],
)
def test_exact(response, gold, acc):
    assert run("exact", response, gold)["acc"] == acc


def test_exact_accepts_any_of_a_list():
    assert run("exact", "colour", ["color", "colour"])["acc"] == 1.0


def test_format_reward_scores_the_shape_only():
    assert run("format", "reasoning </think> 42", "ignored", mode="think")["score"] == 1.0
    assert run("format", "reasoning without end", "ignored", mode="think")["score"] == 0.0
    assert run("format", "<think>long</think> 42", "ignored", mode="no_think")["score"] == 0.0


def test_numeric_number_scan_is_linear_in_spaces():
    """No number match can be empty: a pattern that matches "" is tried, with its whitespace-eating
    fraction tail, at every position of a run of spaces (quadratic); finditer then yields one empty
    match per position, which is what this counts."""
    from r4b_verl.reward.numeric import _NUMERAL

    assert sum(1 for _ in _NUMERAL.finditer(" " * 4096)) == 0
    assert [m.group(0) for m in _NUMERAL.finditer("x = 7 / 8, y=-1,234.5e2 and .5")] == ["7 / 8", "-1,234.5e2", ".5"]
