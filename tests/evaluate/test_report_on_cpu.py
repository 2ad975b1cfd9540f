"""The evaluation report and the training curves, from dumps and logs written here in verl's formats."""

import json
import random
import subprocess
import sys

import pytest
from PIL import Image

from r4b_verl.evaluate.__main__ import main


def dump_line(uid, session, source, mode, thinks, tokens, acc):
    """One line as verl's trainer.validation_data_dir writes it for a BPO run (reward keys + the BPO worker's)."""
    return {"input": "...", "output": "...", "gts": "4", "score": acc, "step": 0, "uid": f"{uid}_{session}_0",
            "acc": acc, "pred": "4", "mode": mode, "reward_fn": "math", "bpo_mode": mode, "bpo_think": float(thinks),
            "bpo_response_length": float(tokens), "bpo_data_source": source}


def random_dump(seed=0, prompts=12, n=2):
    rng = random.Random(seed)
    lines = []
    for p in range(prompts):
        source = ["gsm8k", "mathvista", "ocrbench"][p % 3]
        for k, mode in enumerate(["think"] * n + ["no_think"] * n + ["auto"] * n):
            thinks = mode == "think" or (mode == "auto" and rng.random() < 0.5)
            tokens = rng.randint(200, 900) if thinks else rng.randint(5, 60)
            lines.append(dump_line(f"p{p}", k, source, mode, thinks, tokens,
                                   float(rng.random() < (0.7 if thinks else 0.5))))
    return lines


def write(path, lines):
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_report_numbers_are_recomputable_from_the_dump(tmp_path, capsys, report_matches):
    lines = random_dump()
    (tmp_path / "gen").mkdir()
    write(tmp_path / "gen" / "0.jsonl", random_dump(seed=1))  # an older step: not the one reported
    write(tmp_path / "gen" / "12.jsonl", lines)
    assert main(["report", str(tmp_path / "gen"), "--out", str(tmp_path / "out")]) == 0  # the dir: its newest step
    printed = capsys.readouterr().out
    assert "| gsm8k | auto |" in printed and "| all | think |" in printed
    report_matches(tmp_path / "out" / "report.csv", lines)
    assert (tmp_path / "out" / "report.md").read_text().splitlines()[0].startswith("| data_source | mode | n |")
    for name in ("tokens_per_mode.png", "think_rate.png"):
        assert str(tmp_path / "out" / name) in printed  # the path is printed
        with Image.open(tmp_path / "out" / name) as image:
            assert image.format == "PNG" and image.size == (800, 450)


def test_hybrid_accuracy_and_tokens_saved_on_a_case_worked_by_hand(tmp_path):
    # prompt a: thinking wins, auto thinks (good) and once does not (bad); prompt b: a tie, auto does not think (good)
    lines = [dump_line("a", 0, "s", "think", True, 100, 1.0), dump_line("a", 1, "s", "no_think", False, 10, 0.0),
             dump_line("a", 2, "s", "auto", True, 90, 1.0), dump_line("a", 3, "s", "auto", False, 12, 0.0),
             dump_line("b", 0, "s", "think", True, 300, 1.0), dump_line("b", 1, "s", "no_think", False, 20, 1.0),
             dump_line("b", 2, "s", "auto", False, 18, 1.0)]
    write(tmp_path / "0.jsonl", lines)
    assert main(["report", str(tmp_path / "0.jsonl")]) == 0
    auto = [r for r in (tmp_path / "report.csv").read_text().splitlines() if ",auto," in r][0].split(",")
    header = (tmp_path / "report.csv").read_text().splitlines()[0].split(",")
    row = dict(zip(header, auto, strict=False))
    assert float(row["think_rate"]) == pytest.approx(1 / 3)
    assert float(row["hybrid_accuracy"]) == pytest.approx(2 / 3)
    assert float(row["tokens_saved"]) == pytest.approx(200 - 40)  # think mean 200, auto mean 40
    assert float(row["tokens_saved_pct"]) == pytest.approx(80.0)


@pytest.mark.parametrize("case, expected", [
    ("empty", "the dump has no responses"),
    ("truncated", "0.jsonl:2: not a JSON line"),
    ("not_bpo", "0.jsonl:1: no bpo_mode, bpo_think, bpo_response_length, bpo_data_source: the dump was not written"),
    ("unknown_source", "data source(s) ['chartqa'] are not in the dump; it has ['gsm8k', 'mathvista', 'ocrbench']"),
])
def test_bad_input_gets_a_clear_message(tmp_path, capsys, case, expected):
    path = tmp_path / "0.jsonl"
    lines = random_dump(prompts=3, n=1)
    text = "".join(json.dumps(line) + "\n" for line in lines)
    args = ["report", str(path)]
    if case == "empty":
        text = "\n"
    elif case == "truncated":
        text = text.splitlines()[0] + "\n" + text.splitlines()[1][:40] + "\n"
    elif case == "not_bpo":
        text = json.dumps({"input": "x", "output": "y", "score": 1.0, "uid": "u_0_0"}) + "\n"
    else:
        args += ["--source", "chartqa"]
    path.write_text(text)
    assert main(args) == 2
    assert expected in capsys.readouterr().err


def log_line(step, data):
    return json.dumps({"step": step, "data": data}) + "\n"


def test_curves_warn_of_a_collapse_and_skip_a_cut_last_line(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    text = "".join(log_line(s, {"bpo/val/think_rate": 0.5, "bpo/val/easy/think_rate": v,
                                "bpo/val/hard/think_rate": 1.0})
                   for s, v in [(0, 0.4), (1, 0.2), (2, 0.1)])
    text += "".join(log_line(s, {"bpo/think/reward/mean": 0.6, "bpo/no_think/reward/mean": 0.3,
                                 "bpo/reward_gap/mean": 0.3, "training/global_step": s}) for s in (1, 2))
    metrics.write_text(text + '{"step": 3, "data": {"bpo/val/thi')  # a run killed mid-write
    out = subprocess.run([sys.executable, "-m", "r4b_verl.evaluate", "curves", str(metrics), "--collapse-k", "3"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"{metrics}:6: not a file-logger line" in out.stderr
    warnings = [line for line in out.stdout.splitlines() if line.startswith("WARNING: collapse")]
    assert len(warnings) == 1 and "of hard is 1 at the last 3 validations (steps 0-2)" in warnings[0]  # easy moves
    assert f"training curves  {tmp_path / 'training_curves.png'}" in out.stdout
    with Image.open(tmp_path / "training_curves.png") as image:
        assert image.size == (1200, 720)


def test_curves_refuse_a_log_without_bpo_metrics(tmp_path, capsys):
    (tmp_path / "m.jsonl").write_text(log_line(1, {"actor/grad_norm": 1.0}))
    assert main(["curves", str(tmp_path / "m.jsonl")]) == 2
    assert "no bpo/ metrics: not the log of a BPO run" in capsys.readouterr().err
