"""Labelling through verl's validation with the tiny demo model: labels follow the rewards, a restart resumes."""

import json
import subprocess
import sys

import pandas as pd
import pytest


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    out = tmp_path_factory.mktemp("label_assets")
    # the random model (labels mostly reasoning); the rule is checked per row against the dump's rewards
    subprocess.run([sys.executable, "-m", "r4b_verl.demo", "--out", str(out)], check=True,
                   capture_output=True, timeout=600)
    return out


def test_labels_follow_the_rewards_and_a_restart_resumes(assets, tmp_path):
    rows = pd.read_parquet(assets / "val.parquet").head(6).reset_index(drop=True)
    rows.at[5, "reward_model"] = {"style": "rule", "ground_truth": None}  # a subjective query: no ground truth
    rows["my_label"] = [None] * 5 + ["reasoning"]
    data = tmp_path / "rows.parquet"
    rows.to_parquet(data)
    out = tmp_path / "labelled.parquet"
    # a crashed run finished its first chunk (rows 0-1): those labels are kept, not recomputed
    done = [{"position": 0, "label": "direct", "n_correct": 2, "n_sampled": 2},
            {"position": 1, "label": "reasoning", "n_correct": 0, "n_sampled": 2}]
    (tmp_path / "labelled.parquet.labels.jsonl").write_text("".join(json.dumps(d) + "\n" for d in done))

    cmd = [sys.executable, "-m", "r4b_verl.anneal.label", "--annotator", str(assets / "model"), "--data", str(data),
           "--out", str(out), "--n", "2", "--recipe", "r4b_bpo_cpu", "--chunk-rows", "10", "--label-column", "my_label"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "resuming: 2 of 6 rows already labelled" in proc.stdout
    assert "| toy_math_" in proc.stdout and f"labelled   {out}" in proc.stdout

    labelled = pd.read_parquet(out)
    assert list(labelled.columns[: len(rows.columns)]) == list(rows.columns)  # the input rows, then the labels
    assert labelled["label"].tolist()[:2] == ["direct", "reasoning"] and labelled["n_sampled"].tolist()[:2] == [2, 2]
    assert labelled.at[5, "label"] == "reasoning" and labelled.at[5, "n_sampled"] == 0  # the user's own label

    # rows 2-4 went through one annotator run; their counts are the dump's rewards, their labels R-4B's rule
    (dump,) = (tmp_path / "labelled.parquet.work" / "chunk_0" / "generations").glob("*.jsonl")
    lines = [json.loads(line) for line in dump.read_text().splitlines()]
    assert sorted({int(line["bpo_index"]) for line in lines}) == [2, 3, 4]
    assert {line["bpo_mode"] for line in lines} == {"no_think"}  # the annotator answered without thinking
    for position in (2, 3, 4):
        accs = [line["acc"] for line in lines if int(line["bpo_index"]) == position]
        assert len(accs) == 2 and labelled.at[position, "n_sampled"] == 2
        assert labelled.at[position, "n_correct"] == sum(a >= 1.0 for a in accs)
        assert labelled.at[position, "label"] == ("reasoning" if labelled.at[position, "n_correct"] == 0 else "direct")


def test_rows_that_are_not_verl_rl_rows_are_refused(tmp_path):
    data = tmp_path / "bad.parquet"
    pd.DataFrame({"question": ["1+1"]}).to_parquet(data)
    proc = subprocess.run([sys.executable, "-m", "r4b_verl.anneal.label", "--annotator", "m", "--data", str(data),
                           "--out", str(tmp_path / "o.parquet")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "no 'prompt' column: not verl RL rows" in proc.stderr
