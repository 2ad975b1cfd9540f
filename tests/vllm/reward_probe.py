"""A reward function (custom_reward_function.path) that reports what verl's reward manager handed it.

Run by verl's real RewardLoopWorker: it echoes the bi-mode fields of ``extra_info`` back as
``reward_extra_info`` (numbers: verl's reward managers gather them into arrays), so a test can see
that they reached the reward. Mode codes: r4b_verl.think's MODES order.
"""

from r4b_verl.think import CHOSEN_MODE_KEY, MODE_KEY, MODES, PREFIX_KEY


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    info = extra_info or {}
    return {
        "score": 1.0 if info.get(MODE_KEY) == info.get(CHOSEN_MODE_KEY) else 0.0,
        "probe_mode": float(MODES.index(info[MODE_KEY])) if info.get(MODE_KEY) in MODES else -1.0,
        "probe_chosen_mode": float(MODES.index(info[CHOSEN_MODE_KEY])) if info.get(CHOSEN_MODE_KEY) in MODES else -1.0,
        "probe_prefix_chars": float(len(info.get(PREFIX_KEY, ""))) if PREFIX_KEY in info else -1.0,
        "probe_response_chars": float(len(solution_str)),
    }
