"""Answer-part rules per rollout mode, and the think-block format check."""

import pytest

from r4b_verl.think import answer_part, format_score, normalize_mode


@pytest.mark.parametrize(
    "response, mode, expected",
    [
        # think: the prefix "<think>\n" is in the prompt; the answer follows the first </think>.
        ("reasoning\n</think>\n\nThe answer is 4.", "think", "\n\nThe answer is 4."),
        ("a </think> b </think> c", "think", " b </think> c"),
        ("still thinking when the budget ran out \\boxed{4}", "think", None),
        # no_think: the whole response, minus a repeated leading empty think block.
        ("<think>\n\n</think>\n\nThe answer is 4.", "no_think", "The answer is 4."),
        ("The answer is 4.", "no_think", "The answer is 4."),
        ("x </think> y", "no_think", "x </think> y"),
        # auto / unknown: after </think> if present, else everything.
        ("<think>hmm</think>The answer is 4.", "auto", "The answer is 4."),
        ("The answer is 4.", "auto", "The answer is 4."),
    ],
)
def test_answer_part_per_mode(response, mode, expected):
    assert answer_part(response, mode) == expected


def test_stripped_tags_use_the_auto_rule_in_every_mode():
    # A tokenizer whose think tags are special tokens: verl's decode drops them.
    assert answer_part("reasoning then The answer is 4.", "think", "stripped") == "reasoning then The answer is 4."
    assert answer_part("r </think> ans", "think", "stripped") == " ans"


@pytest.mark.parametrize(
    "value, mode",
    [("think", "think"), ("THINKING", "think"), ("no_think", "no_think"), ("no-think", "no_think"),
     ("nothink", "no_think"), ("auto", "auto"), (None, "auto"), ("weird", "auto"), (b"think", "think")],
)
def test_normalize_mode(value, mode):
    assert normalize_mode(value) == mode


@pytest.mark.parametrize(
    "response, mode, ok",
    [
        ("reasoning </think> answer", "think", 1.0),
        ("</think> answer", "think", 0.0),  # empty reasoning
        ("reasoning </think>   ", "think", 0.0),  # empty answer
        ("reasoning without end", "think", 0.0),
        ("r </think> a </think> b", "think", 0.0),  # a second tag in the answer
        ("answer", "no_think", 1.0),
        ("<think>\n\n</think>answer", "no_think", 1.0),
        ("<think>long thoughts</think>answer", "no_think", 0.0),
        ("<think>thoughts</think>answer", "auto", 1.0),
        ("answer", "auto", 1.0),
        ("<think>unclosed", "auto", 0.0),
    ],
)
def test_format_score(response, mode, ok):
    assert format_score(response, mode) == ok


def test_format_is_neutral_when_tags_are_stripped():
    assert format_score("anything", "think", "stripped") == 1.0
