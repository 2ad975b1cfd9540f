"""``r4b_verl.data.prepare``: every input format, every dataset family, bad rows, split and de-duplication.

The source files are written by the tests (tests/data/sources.py), shaped like the public releases.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from PIL import Image
from sources import BAD, GOOD, write

from r4b_verl.data.converters import FAMILIES, BadRow, aime, multiple_choice
from r4b_verl.data.prepare import PrepareError, prepare
from r4b_verl.data.prompts import CHOICE_INSTRUCTION, MATH_INSTRUCTION
from r4b_verl.reward import compute_score
from r4b_verl.reward.router import route
from r4b_verl.reward.settings import Settings
from r4b_verl.think import THINK_CLOSE, THINK_OPEN


def rows(path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def run(family, tmp_path, good=None, bad=(), fmt="parquet", **kwargs):
    source = [*(good if good is not None else GOOD[family]), *(row for row, _ in bad)]
    suffix = {"parquet": ".parquet", "jsonl": ".jsonl", "json": ".json"}.get(fmt, "")
    path = write(source, tmp_path / f"src_{family}{suffix}", fmt)
    summaries = prepare(family, str(path), str(tmp_path / "out"), val_size=kwargs.pop("val_size", 0), **kwargs)
    return summaries, rows(tmp_path / "out" / "train.parquet")


EXPECTED = {  # family -> ground truths of GOOD[family], in order
    "gsm8k": [str(i + 1000) for i in range(6)],
    "math": ["1", "2\\sqrt{2}"],
    "math500": ["8"],
    "dapo-math-17k": ["7"],
    "aime": ["33", "33"],
    "geometry3k": ["2\\sqrt{3}", "12"],
    "mathvista": ["B", "4"],
    "mathverse": ["B", "5"],
    "scienceqa": ["B", "A"],
    "mmmu": ["B"],
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_rows_are_verl_rows_that_route_and_score(family, tmp_path):
    summaries, out = run(family, tmp_path, bad=BAD.get(family, ()))
    assert [r["reward_model"]["ground_truth"] for r in out] == EXPECTED[family]
    dropped = summaries[0].dropped
    for _, reason in BAD.get(family, ()):
        assert dropped[reason] >= 1, (reason, dict(dropped))
    assert sum(dropped.values()) == len(BAD.get(family, ()))
    for i, row in enumerate(out):
        assert row["reward_model"]["style"] == "rule" and row["ability"] == FAMILIES[family].ability
        assert row["extra_info"]["split"] == "train" and row["extra_info"]["index"] == i
        (message,) = row["prompt"]
        assert message["role"] == "user"
        text = message["content"]
        assert "think" not in text.lower(), "bi-mode prompts must not mention a think block"
        images = row.get("images") or []
        assert text.count("<image>") == len(images)
        for image in images:
            Image.open(io.BytesIO(image["bytes"])).load()
        name, _ = route(Settings(), row["data_source"])
        gold = row["reward_model"]["ground_truth"]
        if name == "choice":
            assert row["data_source"].endswith("_mc") and text.endswith(CHOICE_INSTRUCTION)
        else:
            assert name == "math" and text.endswith(MATH_INSTRUCTION)
        # the routed reward scores the right answer 1 and a wrong one 0, in both modes
        extra = {"bpo_mode": "no_think"}
        right = compute_score(row["data_source"], f"The answer is \\boxed{{{gold}}}.", gold, extra)
        assert right["acc"] == 1.0 and right["reward_fn"] == name, (gold, right)
        wrong = "J" if name == "choice" else "123457"
        assert compute_score(row["data_source"], f"{THINK_OPEN}\nhm\n{THINK_CLOSE}\\boxed{{{wrong}}}", gold,
                             {"bpo_mode": "think"})["acc"] == 0.0


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "json", "saved", "saved_dict"])
def test_every_input_format(fmt, tmp_path):
    kwargs = {"split": "train"} if fmt == "saved_dict" else {}
    _, out = run("gsm8k", tmp_path, fmt=fmt, **kwargs)
    assert [r["reward_model"]["ground_truth"] for r in out] == EXPECTED["gsm8k"]


def test_saved_datasetdict_needs_a_split(tmp_path):
    with pytest.raises(ValueError, match="--split"):
        run("gsm8k", tmp_path, fmt="saved_dict")


def test_image_paths_resolve_next_to_the_input(tmp_path):
    from sources import png

    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "1.png").write_bytes(png("red"))
    good = [{"question": "How many?", "image": "images/1.png", "decoded_image": None, "choices": None, "answer": "3",
             "question_type": "free_form"}]
    _, out = run("mathvista", tmp_path, good=good)
    assert out[0]["images"][0]["bytes"] == png("red")


def test_strict_names_the_row(tmp_path):
    with pytest.raises(PrepareError, match=r"src_gsm8k\.parquet: row 6: answer has no final"):
        run("gsm8k", tmp_path, bad=BAD["gsm8k"], strict=True)


def test_split_is_deterministic_and_duplicates_are_dropped(tmp_path):
    base = [{"question": f"What is {i} + {i}?", "answer": f"#### {2 * i}"} for i in range(40)]
    dup = [{"question": "  WHAT is 3 +   3? ", "answer": "#### 6"}, base[7]]  # normalised text, exact copy
    path = write(base + dup, tmp_path / "src.parquet", "parquet")
    splits = []
    for run_id in range(2):
        summaries = prepare("gsm8k", str(path), str(tmp_path / f"o{run_id}"), val_size=0.25, seed=3)
        train, val = rows(tmp_path / f"o{run_id}" / "train.parquet"), rows(tmp_path / f"o{run_id}" / "val.parquet")
        splits.append(([r["extra_info"]["question"] for r in train], [r["extra_info"]["question"] for r in val]))
        assert summaries[0].dropped["duplicate"] == 2
        assert len(train) == 30 and len(val) == 10
        assert not ({r["extra_info"]["question"].lower() for r in train}
                    & {r["extra_info"]["question"].lower() for r in val})
        assert [r["extra_info"]["index"] for r in val] == list(range(10))
    assert splits[0] == splits[1]
    prepare("gsm8k", str(path), str(tmp_path / "other"), val_size=0.25, seed=4)
    assert [r["extra_info"]["question"] for r in rows(tmp_path / "other" / "val.parquet")] != splits[0][1]
    prepare("gsm8k", str(path), str(tmp_path / "count"), val_size=5, seed=3, limit=20)
    assert len(rows(tmp_path / "count" / "val.parquet")) == 5 and len(rows(tmp_path / "count" / "train.parquet")) == 15


def test_images_are_part_of_the_duplicate_key(tmp_path):
    from sources import hf_image

    same_text = [{"images": [hf_image(c)], "problem": "<image>Find x.", "answer": "1"} for c in ("red", "blue", "red")]
    summaries, out = run("geometry3k", tmp_path, good=same_text)
    assert len(out) == 2 and summaries[0].dropped["duplicate"] == 1


def test_val_input_removes_its_questions_from_train(tmp_path):
    train_src = write(GOOD["math"] + GOOD["math500"], tmp_path / "train.parquet", "parquet")
    val_src = write(GOOD["math500"], tmp_path / "test.parquet", "parquet")
    summaries = prepare("math", str(train_src), str(tmp_path / "out"), val_input=str(val_src))
    assert len(rows(tmp_path / "out" / "train.parquet")) == 2
    assert [r["reward_model"]["ground_truth"] for r in rows(tmp_path / "out" / "val.parquet")] == ["8"]
    assert summaries[0].dropped["also in the val input"] == 1
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary[0]["dropped"] == {"also in the val input": 1} and summary[1]["rows"] == 1


def test_converters_read_odd_but_valid_values():
    assert aime({"problem": "p", "answer": 33}).answer == "33"
    assert aime({"problem": "p", "answer": "7.0"}).answer == "7"
    with pytest.raises(BadRow, match="not an integer"):
        aime({"problem": "p", "answer": "7.5"})
    assert multiple_choice({"question": "q", "choices": ["a", "b"], "answer": "(b)"}).answer == "B"
    assert multiple_choice({"question": "q", "options": ["x", "y"], "answer": "y"}).answer == "B"
    with pytest.raises(BadRow, match="several options"):
        multiple_choice({"question": "q", "choices": ["same", "same"], "answer": "same"})


def test_cli_prints_the_summary_table(tmp_path):
    path = write(GOOD["gsm8k"] + [row for row, _ in BAD["gsm8k"]], tmp_path / "g.parquet", "parquet")
    proc = subprocess.run([sys.executable, "-m", "r4b_verl.data.prepare", "--dataset", "gsm8k", "--input", str(path),
                           "--out", str(tmp_path / "out"), "--val-size", "2"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "g.parquet: row 6: answer has no final" in proc.stderr
    lines = [line.split() for line in proc.stdout.splitlines()]
    assert ["rows", "4"] in lines and ["rows", "2"] in lines and ["data_source", "openai/gsm8k", "4"] in lines
    assert ["dropped:", "no", "question", "1"] in lines
    bad = subprocess.run([sys.executable, "-m", "r4b_verl.data.prepare", "--dataset", "gsm8k", "--input",
                          str(tmp_path / "missing.parquet"), "--out", str(tmp_path / "o2")], capture_output=True,
                         text=True, timeout=300)
    assert bad.returncode == 1 and "input not found" in bad.stderr


def test_numbered_image_placeholders_follow_the_text():
    from sources import png

    example = multiple_choice({"question": "Is <image 2> bigger than <image 1>?", "options": ["yes", "no <image 3>"],
                               "answer": "A", "image_1": png("red"), "image_2": png("blue"), "image_3": png("green"),
                               "image_4": png("white"), "image_5": None})
    # image_4 is not referenced: it goes first, with its own placeholder; the others in the order the text names them
    assert example.images == [png("white"), png("blue"), png("red"), png("green")]
    assert example.prompt.startswith("<image>\nIs <image> bigger than <image>?")
    assert "B. no <image>" in example.prompt and example.prompt.count("<image>") == 4
