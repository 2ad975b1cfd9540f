"""The demo's stage-1 summary (``python -m r4b_verl.demo.stage1``) from an SFT metrics file and a validation dump."""

import json
import subprocess
import sys

from r4b_verl.think import LENGTH_INFO_KEY, MODE_KEY, SOURCE_INFO_KEY, THINK_INFO_KEY


def _line(uid, source, mode, thinks, acc):
    return {"uid": uid, SOURCE_INFO_KEY: source, MODE_KEY: mode, THINK_INFO_KEY: float(thinks),
            LENGTH_INFO_KEY: 9, "acc": acc, "score": acc}


def test_summary_per_level_and_mode(tmp_path):
    sft = tmp_path / "sft.jsonl"
    sft.write_text("".join(json.dumps({"step": s, "data": {"train/loss": 6.0 / s}}) + "\n" for s in (1, 2, 3)))
    lines = []
    for i in range(4):  # hard: thinking right 3 of 4, no-thinking 1 of 4, auto thinks 3 of 4
        lines += [_line(f"h{i}", "toy_math_hard", "think", 1, float(i < 3)),
                  _line(f"h{i}", "toy_math_hard", "no_think", 0, float(i < 1)),
                  _line(f"h{i}", "toy_math_hard", "auto", i < 3, 1.0)]
        lines += [_line(f"e{i}", "toy_math_easy", "think", 1, 1.0), _line(f"e{i}", "toy_math_easy", "no_think", 0, 1.0),
                  _line(f"e{i}", "toy_math_easy", "auto", i < 1, 0.0)]
    dump = tmp_path / "0.jsonl"
    dump.write_text("".join(json.dumps(x) + "\n" for x in lines))
    out = subprocess.run([sys.executable, "-m", "r4b_verl.demo.stage1", str(sft), str(dump),
                          "--json", str(tmp_path / "s.json")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "stage 1: 3 SFT steps, train/loss 6.000 (step 1) -> 2.000" in out.stdout
    levels = json.loads((tmp_path / "s.json").read_text())["levels"]
    assert levels["toy_math_hard"]["think_acc"] == 0.75 and levels["toy_math_hard"]["no_think_acc"] == 0.25
    assert levels["toy_math_hard"]["auto_think_rate"] == 0.75 and levels["toy_math_easy"]["auto_think_rate"] == 0.25
    assert levels["toy_math_easy"]["auto_acc"] == 0.0 and levels["toy_math_easy"]["think_n"] == 4


def test_missing_dump_is_named(tmp_path):
    sft = tmp_path / "sft.jsonl"
    sft.write_text("")
    out = subprocess.run([sys.executable, "-m", "r4b_verl.demo.stage1", str(sft), str(tmp_path / "nope.jsonl")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "nope.jsonl" in out.stderr
