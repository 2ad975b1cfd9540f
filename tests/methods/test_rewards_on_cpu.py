"""The peers' reward tables on top of the recipe's verified answer, and their refusals."""

import asyncio

import pytest

from r4b_verl.methods.rewards import compute_score, compute_score_async, heavy_repetition

ROUTES = {"toy_math_*": "math"}
RIGHT, WRONG = "The answer is \\boxed{4}.", "The answer is \\boxed{5}."
THINKING = "\nLet me add 2 and 2.\n</think>\n\n"  # after the auto prefix "<think>"
DIRECT = "\n\n</think>\n\n"


def score(method, text, chosen, **extra):
    info = {"bpo_mode": "auto", "bpo_chosen_mode": chosen, **extra}
    return compute_score("toy_math_easy", text, "4", info, method=method, routes=ROUTES)


@pytest.mark.parametrize("chosen, body, expected", [
    ("no_think", DIRECT + RIGHT, 1.0), ("think", THINKING + RIGHT, 0.5),
    ("no_think", DIRECT + WRONG, -1.0), ("think", THINKING + WRONG, -1.0),
])
def test_thinkless_table(chosen, body, expected):
    out = score({"name": "thinkless"}, body, chosen)
    assert out["score"] == expected
    assert out["base_score"] == (1.0 if body.endswith(RIGHT) else 0.0)


@pytest.mark.parametrize("chosen, body, expected", [
    ("think", THINKING + RIGHT, 1.0), ("think", THINKING + WRONG, 0.0),
    ("no_think", DIRECT + RIGHT, 2.0), ("no_think", DIRECT + WRONG, -1.0),
    ("no_think", DIRECT + "la la la " * 40 + WRONG, -2.0),  # negative and repetitive
    ("think", "\n" + "go go go " * 40 + "</think>" + WRONG, 0.0),  # repetitive but not negative: unchanged
])
def test_autothink_table_and_repetition(chosen, body, expected):
    assert score({"name": "autothink"}, body, chosen)["score"] == expected


def test_repetition_rule():
    assert heavy_repetition("a b c " * 10)
    assert not heavy_repetition("a b c " * 9)
    assert heavy_repetition("x" * 120) and not heavy_repetition("x" * 119)
    assert not heavy_repetition(" ".join(str(i) for i in range(500)))


@pytest.mark.parametrize("chosen, body, ref, expected", [
    ("no_think", DIRECT + RIGHT, 0.25, 1 - 0.25 + 0.05), ("think", THINKING + RIGHT, 0.25, 0.75),
    ("no_think", DIRECT + WRONG, 0.5, -0.5 + 0.05), ("think", THINKING + WRONG, 1.0, -1.0),
])
def test_adaptthink_reward(chosen, body, ref, expected):
    assert score({"name": "adaptthink"}, body, chosen, bpo_ref_acc=ref)["score"] == pytest.approx(expected)
    assert score({"name": "adaptthink", "delta": 0.0}, body, chosen, bpo_ref_acc=ref)["score"] == pytest.approx(
        expected - 0.05 * (chosen == "no_think"))


def test_adaptthink_without_rref_names_the_presampling():
    forced = {"bpo_mode": "no_think", "bpo_chosen_mode": "no_think"}  # a training row: AdaptThink forces every one
    with pytest.raises(ValueError, match="r4b_verl.methods.presample"):
        compute_score("toy_math_easy", RIGHT, "4", forced, method="adaptthink", routes=ROUTES)
    # validation rows (auto mode) carry no Rref: scored by their accuracy
    assert score({"name": "adaptthink"}, DIRECT + RIGHT, "no_think")["score"] == 1.0
    assert score({"name": "adaptthink"}, DIRECT + WRONG, "no_think")["score"] == 0.0


def test_async_twin_and_refusals():
    info = {"bpo_mode": "auto", "bpo_chosen_mode": "no_think"}
    out = asyncio.run(compute_score_async("toy_math_easy", DIRECT + RIGHT, "4", info, method="thinkless",
                                          routes=ROUTES))
    assert out["score"] == 1.0 and set(out) == set(score("thinkless", DIRECT + RIGHT, "no_think"))
    with pytest.raises(ValueError, match="reward_kwargs.method"):
        score({"name": "nope"}, RIGHT, "think")
    with pytest.raises(ValueError, match="unknown option"):
        score({"name": "thinkless", "gamma": 1}, RIGHT, "think")
    with pytest.raises(ValueError, match="bpo_chosen_mode"):
        compute_score("toy_math_easy", RIGHT, "4", {"bpo_mode": "auto"}, method="thinkless", routes=ROUTES)
