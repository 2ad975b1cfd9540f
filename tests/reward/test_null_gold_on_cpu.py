"""A row without a ground truth scores 0 for every response: the reward says so (once per data source)."""

import logging

from r4b_verl.reward import compute_score


def test_null_ground_truth_is_logged_once_per_source(caplog):
    with caplog.at_level(logging.WARNING, logger="r4b_verl.reward"):
        for _ in range(3):
            assert compute_score("null_gold_set", "\\boxed{4}", None, {"bpo_mode": "no_think"})["score"] == 0.0
        assert compute_score("null_gold_set", "\\boxed{4}", "4", {"bpo_mode": "no_think"})["score"] == 1.0
        compute_score("null_gold_other", "\\boxed{4}", "  ", {"bpo_mode": "no_think"})
    warned = [r.getMessage() for r in caplog.records if "null ground truth" in r.getMessage()]
    assert len(warned) == 2
    assert "'null_gold_set'" in warned[0] and "python -m r4b_verl.data.check" in warned[0]
    assert "'null_gold_other'" in warned[1]
