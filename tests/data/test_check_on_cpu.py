"""``r4b_verl.data.check``: every bad-row case is named with file and row index; refuse or drop."""

from __future__ import annotations

import copy
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sources import png

from r4b_verl.data.check import check_file
from r4b_verl.data.rows import row_problems
from r4b_verl.reward.settings import Settings

GOOD = {"data_source": "openai/gsm8k", "prompt": [{"role": "user", "content": "What is 2+2?"}], "ability": "math",
        "images": [], "reward_model": {"style": "rule", "ground_truth": "4"}, "extra_info": {"index": 0}}


def variant(**changes) -> dict:
    row = copy.deepcopy(GOOD)
    for key, value in changes.items():
        if key == "ground_truth":
            row["reward_model"]["ground_truth"] = value
        elif key == "content":
            row["prompt"][0]["content"] = value
        else:
            row[key] = value
    return row


# rows that share GOOD's Arrow schema, so one parquet file holds them all: (row, the reason it is bad)
FILE_CASES = [
    (variant(data_source=None), "no data_source"),
    (variant(ground_truth=None), "null ground truth"),
    (variant(ground_truth=" "), "null ground truth"),
    (variant(data_source="scienceqa_mc", ground_truth="12"), "unreadable ground truth"),
    (variant(content="<image> What is it?"), "placeholders != images"),
    (variant(images=[{"bytes": png()}]), "placeholders != images"),
    (variant(content="<image> What is it?", images=[{"bytes": b"\x89PNG garbage"}]), "bad image"),
    (variant(content="<image> What is it?", images=[{"bytes": None}]), "bad image"),
    (variant(prompt=[{"role": "system", "content": "Be brief."}]), "bad prompt"),
    (variant(prompt=[{"role": "robot", "content": "Hi"}]), "bad prompt"),
    (variant(prompt=[]), "bad prompt"),
]


@pytest.mark.parametrize("row, reason", [
    *FILE_CASES,
    (variant(prompt="What is 2+2?"), "bad prompt"),
    (variant(prompt=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}]), "bad prompt"),
    (variant(prompt=["What is 2+2?"]), "bad prompt"),
    (variant(reward_model={"style": "rule"}), "no ground truth"),
    (variant(reward_model=None), "no ground truth"),
    (variant(ground_truth=float("nan")), "null ground truth"),
    (variant(ground_truth=[]), "null ground truth"),
    (variant(content="<image>", images=[{"path": "/nonexistent/x.png"}]), "bad image"),
    (variant(content="<image>", images=[42]), "bad image"),
])
def test_each_bad_row_case(row, reason):
    kinds = [kind for kind, _ in row_problems(row, Settings(), decode=True)]
    assert reason in kinds, kinds
    assert row_problems(GOOD, Settings(), decode=True) == []


def test_ground_truth_is_read_by_the_routed_reward():
    choice = variant(data_source="mmmu_mc", ground_truth="B")
    assert row_problems(choice, Settings()) == []
    routed = Settings(routes=(("openai/gsm8k", "choice"),))
    assert [k for k, _ in row_problems(GOOD, routed)] == ["unreadable ground truth"]
    # a user's own reward function: only a missing ground truth is refused
    assert row_problems(GOOD, Settings(), reward="my.py:fn") == []
    assert [k for k, _ in row_problems(variant(ground_truth=None), Settings(), reward="my.py:fn")] == [
        "null ground truth"]


def test_chat_template_and_length(tiny_tokenizer):
    tok = copy.deepcopy(tiny_tokenizer[0])
    ok = row_problems(GOOD, Settings(), tokenizer=tok, max_prompt_length=1000)
    assert ok == []
    long = row_problems(variant(content="x " * 400), Settings(), tokenizer=tok, max_prompt_length=50)
    assert [k for k, _ in long] == ["prompt too long"]
    tok.chat_template = "{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('no system role') }}" \
                        "{% endif %}{{ m.content }}{% endfor %}"
    system = variant(prompt=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}])
    problems = row_problems(system, Settings(), tokenizer=tok)
    assert [k for k, _ in problems] == ["chat template fails"] and "no system role" in problems[0][1]


def _bad_file(path):
    table = [GOOD, *(row for row, _ in FILE_CASES), variant(ground_truth="5")]
    pq.write_table(pa.Table.from_pylist(table), path)
    return table


def test_file_report_names_rows(tmp_path):
    path = tmp_path / "rl.parquet"
    table = _bad_file(path)
    full = check_file(path)
    assert full.rows == len(table)
    assert sorted(full.bad) == list(range(1, len(FILE_CASES) + 1))
    for index, (_, reason) in enumerate(FILE_CASES, start=1):
        assert reason in [k for k, _ in full.bad[index]], (index, full.bad[index])
    cheap = check_file(path, decode=False)  # no decoding: the garbage image passes, its count does not
    assert "bad image" not in {k for p in cheap.bad.values() for k, _ in p}
    assert set(full.bad) - set(cheap.bad) == {7, 8}
    assert f"{path}: row 2: null ground truth" in "\n".join(full.lines())


def test_cli_refuses_or_drops(tmp_path):
    path = tmp_path / "rl.parquet"
    table = _bad_file(path)
    cmd = [sys.executable, "-m", "r4b_verl.data.check", str(path)]
    refused = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1
    assert f"{path}: row 2: null ground truth: ground truth is null" in refused.stdout
    assert f"{len(FILE_CASES)} of {len(table)} rows bad" in refused.stdout
    out = tmp_path / "clean.parquet"
    dropped = subprocess.run([*cmd, "--drop-bad", str(out)], capture_output=True, text=True, timeout=300)
    assert dropped.returncode == 0, dropped.stderr
    kept = pq.read_table(out).to_pylist()
    assert [r["reward_model"]["ground_truth"] for r in kept] == ["4", "5"]
    again = subprocess.run([sys.executable, "-m", "r4b_verl.data.check", str(out)], capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0 and "2 rows, all good" in again.stdout


def test_jsonl_files_and_missing_files(tmp_path):
    import json

    path = tmp_path / "rl.jsonl"
    rows = [GOOD, variant(ground_truth=None)]
    path.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "images"}) + "\n" for r in rows))
    report = check_file(path)
    assert list(report.bad) == [1]
    proc = subprocess.run([sys.executable, "-m", "r4b_verl.data.check", str(tmp_path / "nope.parquet")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "data file not found" in proc.stderr


def test_a_directory_is_named_with_the_files_in_it(tmp_path):
    from r4b_verl.data.check import DataCheckError, check_file

    (tmp_path / "train.parquet").write_bytes(b"")
    with pytest.raises(DataCheckError, match=r"is a directory; the check takes RL files \(it holds train\.parquet"):
        check_file(tmp_path)
