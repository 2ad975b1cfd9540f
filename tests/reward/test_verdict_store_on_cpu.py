"""The shared verdict store: a symbolic verdict is computed once per node, not once per reward process."""

import json
import os
import subprocess
import sys

from r4b_verl.reward import STATS, compute_score, math_answer
from r4b_verl.reward.verdict_store import store_path

GOLD, ANSWER = "2\\sqrt{3}", "r </think> so \\boxed{\\sqrt{12}}"
FAST_OPTS = {"timeout_s": 0.5, "kill_grace_s": 0.5}


def _forget_process_caches():
    """What another reward process (or this one after its LRU evicted the entry) would know."""
    math_answer._verdict_cache.clear()
    for key in STATS:
        STATS[key] = 0


def test_a_verdict_is_reused_by_another_reward_process():
    assert compute_score("math", ANSWER, GOLD, {"bpo_mode": "think"})["acc"] == 1.0
    assert STATS["symbolic"] == 1
    code = ("import json; from r4b_verl.reward import STATS, compute_score; "
            f"r = compute_score('math', {ANSWER!r}, {GOLD!r}, {{'bpo_mode': 'think'}}); "
            "print(json.dumps([r['acc'], STATS['symbolic'], STATS['store_hits']]))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [1.0, 0, 1]  # no sympy in the second process


def test_store_hit_keeps_the_verdict_and_the_shown_answer():
    wrong = "r </think> so \\boxed{\\sqrt{13}}"
    first = [compute_score("math", a, GOLD, {"bpo_mode": "think"}) for a in (ANSWER, wrong)]
    _forget_process_caches()
    again = [compute_score("math", a, GOLD, {"bpo_mode": "think"}) for a in (ANSWER, wrong)]
    assert again == first and [r["acc"] for r in again] == [1.0, 0.0]
    assert STATS["store_hits"] == 2 and STATS["cache_hits"] == 2 and STATS["symbolic"] == 0


def test_timeouts_are_not_shared():
    slow = "</think> \\boxed{(x+104729)^{2000}}"
    assert compute_score("math", slow, "x^2+1", {"bpo_mode": "think"}, **FAST_OPTS)["timeout"] == 1.0
    _forget_process_caches()
    compute_score("math", slow, "x^2+1", {"bpo_mode": "think"}, **FAST_OPTS)
    assert STATS["store_hits"] == 0 and STATS["symbolic"] == 1  # tried again: a timeout depends on load


def test_off_and_unusable_stores_still_score(tmp_path, caplog):
    assert compute_score("math", ANSWER, GOLD, {"bpo_mode": "think"}, verdict_store="off")["acc"] == 1.0
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    _forget_process_caches()
    result = compute_score("math", ANSWER, GOLD, {"bpo_mode": "think"}, verdict_store=str(blocker))
    assert result["acc"] == 1.0
    assert "verdict store" in caplog.text and "verdict_store" in caplog.text  # says what to change


def test_a_new_engine_reading_starts_a_new_file(monkeypatch):
    from r4b_verl.reward import verdict_store

    before = store_path("auto")
    monkeypatch.setattr(verdict_store, "ENGINE_READING", verdict_store.ENGINE_READING + "+changed")
    assert store_path("auto") != before and os.path.dirname(store_path("auto")) == os.path.dirname(before)
    assert store_path("off") is None
