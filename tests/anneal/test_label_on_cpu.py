"""Labelling through verl's validation with the tiny demo model: labels follow the rewards (and the judge's
votes for subjective rows), a restart resumes."""

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
    rows = pd.read_parquet(assets / "val.parquet").head(7).reset_index(drop=True)
    for subjective in (5, 6):  # subjective queries: no ground truth; row 5 has the user's label, row 6 is judged
        rows.at[subjective, "reward_model"] = {"style": "rule", "ground_truth": None}
    rows["my_label"] = [None] * 5 + ["reasoning", None]
    data = tmp_path / "rows.parquet"
    rows.to_parquet(data)
    out = tmp_path / "labelled.parquet"
    # a crashed run finished its first chunk (rows 0-1): those labels are kept, not recomputed
    done = [{"position": 0, "label": "direct", "n_correct": 2, "n_sampled": 2},
            {"position": 1, "label": "reasoning", "n_correct": 0, "n_sampled": 2}]
    (tmp_path / "labelled.parquet.labels.jsonl").write_text("".join(json.dumps(d) + "\n" for d in done))

    cmd = [sys.executable, "-m", "r4b_verl.anneal.label", "--annotator", str(assets / "model"), "--data", str(data),
           "--out", str(out), "--n", "2", "--recipe", "r4b_bpo_cpu", "--chunk-rows", "10", "--label-column", "my_label",
           "--judge-prompt", "Think first? {query}"]  # short: the CPU recipe's prompt budget
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "resuming: 2 of 7 rows already labelled" in proc.stdout
    assert "| toy_math_" in proc.stdout and f"labelled   {out}" in proc.stdout

    labelled = pd.read_parquet(out)
    assert list(labelled.columns[: len(rows.columns)]) == list(rows.columns)  # the input rows, then the labels
    assert labelled["label"].tolist()[:2] == ["direct", "reasoning"] and labelled["n_sampled"].tolist()[:2] == [2, 2]
    assert labelled.at[5, "label"] == "reasoning" and labelled.at[5, "n_sampled"] == 0  # the user's own label
    assert labelled["label_source"].tolist() == ["samples"] * 5 + ["user", "judge"]

    # rows 2-4 went through one annotator run; their counts are the dump's rewards, their labels R-4B's rule
    (dump,) = (tmp_path / "labelled.parquet.work" / "chunk_0" / "generations").glob("*.jsonl")
    lines = [json.loads(line) for line in dump.read_text().splitlines()]
    assert sorted({int(line["bpo_index"]) for line in lines}) == [2, 3, 4, 6]
    assert {line["bpo_mode"] for line in lines} == {"no_think"}  # the annotator answered without thinking
    for position in (2, 3, 4):
        accs = [line["acc"] for line in lines if int(line["bpo_index"]) == position]
        assert len(accs) == 2 and labelled.at[position, "n_sampled"] == 2
        assert labelled.at[position, "n_correct"] == sum(a >= 1.0 for a in accs)
        assert labelled.at[position, "label"] == ("reasoning" if labelled.at[position, "n_correct"] == 0 else "direct")
    # row 6 went to the judge in the same run: its prompt asked the question around the query, the votes
    # are its \boxed{1} replies scored against the gold "1", and the label is the majority of them
    judge = [line for line in lines if int(line["bpo_index"]) == 6]
    query = rows.at[6, "prompt"][-1]["content"]
    assert len(judge) == 2 and all(f"Think first? {query}" in line["input"] for line in judge)
    votes = sum(line["acc"] >= 1.0 for line in judge)
    assert labelled.at[6, "n_correct"] == votes and labelled.at[6, "n_sampled"] == 2
    assert labelled.at[6, "label"] == ("reasoning" if 2 * votes > 2 else "direct")


def test_rows_that_are_not_verl_rl_rows_are_refused(tmp_path):
    data = tmp_path / "bad.parquet"
    pd.DataFrame({"question": ["1+1"]}).to_parquet(data)
    proc = subprocess.run([sys.executable, "-m", "r4b_verl.anneal.label", "--annotator", "m", "--data", str(data),
                           "--out", str(tmp_path / "o.parquet")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "no 'prompt' column: not verl RL rows" in proc.stderr


def test_a_judge_prompt_without_the_query_mark_is_refused(tmp_path):
    data = tmp_path / "rows.parquet"
    pd.DataFrame({"prompt": [[{"role": "user", "content": "Write a poem"}]], "data_source": ["chat"],
                  "reward_model": [{"style": "rule", "ground_truth": None}]}).to_parquet(data)
    proc = subprocess.run([sys.executable, "-m", "r4b_verl.anneal.label", "--annotator", "m", "--data", str(data),
                           "--out", str(tmp_path / "o.parquet"), "--judge-prompt", "Needs reasoning?"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--judge-prompt must contain {query}" in proc.stderr


def test_judge_rows_and_votes():
    from r4b_verl.anneal.label import JUDGE_PROMPT, JUDGE_SOURCE, judge_row, label_from_votes

    row = {"prompt": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "<image>Why {so}?"}],
           "data_source": "chat", "images": [{"bytes": b"png"}], "reward_model": {"ground_truth": None}}
    judged = judge_row(row, JUDGE_PROMPT, "f.parquet: row 3")
    assert judged["prompt"] == [{"role": "user", "content": JUDGE_PROMPT.replace("{query}", "<image>Why {so}?")}]
    assert judged["images"] == row["images"] and judged["data_source"] == JUDGE_SOURCE  # the image stays with it
    assert judged["reward_model"]["ground_truth"] == "1"
    with pytest.raises(ValueError, match="f.parquet: row 3: no user message"):
        judge_row({**row, "prompt": [{"role": "user", "content": [{"type": "text"}]}]}, JUDGE_PROMPT,
                  "f.parquet: row 3")
    assert [label_from_votes(k, 4) for k in range(5)] == ["direct", "direct", "direct", "reasoning", "reasoning"]
