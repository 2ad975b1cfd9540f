"""The annealing data builder: rows per mode, mix ratio, both modes, repeat, images, bad rows, CLI."""

from __future__ import annotations

import pandas as pd
import pytest

from r4b_verl.anneal.build import BadRowsError, bad_rows_path, build, build_file, main
from r4b_verl.demo.tiny import CHAT_TEMPLATE

ANSWER = "The answer is \\boxed{7}."
IMAGE = {"bytes": b"\x89PNG fake", "path": None}


def row(i, label, source="math", reasoning="Add the numbers step by step.", answer=ANSWER, prompt=None, images=None):
    out = {
        "data_source": source,
        "prompt": prompt or [{"role": "user", "content": f"Question {i}?"}],
        "label": label,
        "n_correct": 0 if label == "reasoning" else 5,
        "n_sampled": 8,
        "reasoning": reasoning,
        "answer": answer,
    }
    if images is not None:
        out["images"] = images
    return out


def frame(n_reasoning, n_direct, reasoning="Add the numbers step by step.", **kw):
    rows = [row(i, "reasoning", reasoning=reasoning, **kw) for i in range(n_reasoning)]
    rows += [row(n_reasoning + i, "direct", reasoning=None, **kw) for i in range(n_direct)]
    return pd.DataFrame(rows)


def test_modes_and_columns():
    result = build(frame(2, 3))
    s = result.samples
    assert s["mode"].tolist() == ["think", "think", "no_think", "no_think", "no_think"]
    assert s["enable_thinking"].tolist() == [True, True, False, False, False]
    assert s["source_index"].tolist() == [0, 1, 2, 3, 4]
    assert "images" not in s.columns  # MultiTurnSFTDataset would demand a processor for every row
    think, direct = s["messages"][0], s["messages"][2]
    assert [m["role"] for m in think] == ["user", "assistant"] and think[0]["content"] == "Question 0?"
    assert think[-1]["content"] == f"<think>\nAdd the numbers step by step.\n</think>\n\n{ANSWER}"
    assert direct[-1]["content"] == f"<think>\n\n</think>\n\n{ANSWER}"
    assert result.stats["direct_share"] == pytest.approx(0.6)


def test_preset_shapes_without_tokenizer():
    qwen3 = build(frame(1, 1), preset="qwen3").samples["messages"]
    assert qwen3[1][-1]["content"] == f"<think>\n\n</think>\n\n{ANSWER}"
    r1 = build(frame(1, 1), preset="r1_distill").samples["messages"]
    assert r1[0][-1]["content"] == f"<think>\nAdd the numbers step by step.\n</think>\n\n{ANSWER}"
    assert r1[1][-1]["content"] == f"<think>\n</think>\n\n{ANSWER}"  # the template opened "<think>\n"


def test_text_is_stripped_so_the_boundary_tokens_do_not_move():
    s = build(pd.DataFrame([row(0, "reasoning", reasoning="\n  think \n", answer="\n42 ")])).samples
    assert s["messages"][0][-1]["content"] == "<think>\nthink\n</think>\n\n42"


@pytest.mark.parametrize("n_reasoning,n_direct", [(40, 200), (100, 60)])
def test_ratio_downsamples_the_majority_deterministically(n_reasoning, n_direct):
    a = build(frame(n_reasoning, n_direct), direct_share=0.66, seed=3)
    b = build(frame(n_reasoning, n_direct), direct_share=0.66, seed=3)
    c = build(frame(n_reasoning, n_direct), direct_share=0.66, seed=4)
    modes = a.samples["mode"].value_counts().to_dict()
    if n_direct / (n_reasoning + n_direct) > 0.66:  # too many direct: keep every think sample
        assert modes["think"] == n_reasoning and modes["no_think"] == round(0.66 * n_reasoning / 0.34)
    else:  # too few direct: keep every direct sample
        assert modes["no_think"] == n_direct and modes["think"] == round(0.34 * n_direct / 0.66)
    assert a.stats["direct_share"] == pytest.approx(0.66, abs=0.01)
    assert a.samples["source_index"].tolist() == b.samples["source_index"].tolist()
    assert a.samples["source_index"].tolist() != c.samples["source_index"].tolist()
    assert a.samples["source_index"].is_monotonic_increasing  # input order kept
    assert a.stats["ratio_dropped"] == n_reasoning + n_direct - len(a.samples)
    assert int(a.summary.loc[a.summary["data_source"] == "all", "ratio_dropped"].iloc[0]) == a.stats["ratio_dropped"]
    assert f"target 0.660, achieved {a.stats['direct_share']:.3f}" in a.report()


def test_both_modes_where_a_row_has_reasoning():
    f = frame(2, 1)
    f.loc[2, "reasoning"] = "A direct row with reasoning text."
    f = pd.concat([f, pd.DataFrame([row(3, "direct", reasoning=None)])], ignore_index=True)
    s = build(f, both_modes=True).samples
    assert list(zip(s["source_index"], s["mode"], strict=True)) == [
        (0, "think"), (0, "no_think"), (1, "think"), (1, "no_think"), (2, "think"), (2, "no_think"), (3, "no_think")]


def test_direct_repeat_and_token_share(tokenizer_with):
    tok = tokenizer_with(CHAT_TEMPLATE)
    long_reasoning = " ".join(["step"] * 60)
    f = frame(2, 2, reasoning=long_reasoning)
    once = build(f, tokenizer=tok)
    twice = build(f, tokenizer=tok, direct_repeat=2)
    auto = build(f, tokenizer=tok, direct_repeat="auto")
    assert twice.samples["mode"].tolist() == ["think", "think"] + ["no_think"] * 4
    assert twice.stats["direct_token_share"] > once.stats["direct_token_share"]
    expected = round(once.stats["think_tokens_mean"] / once.stats["no_think_tokens_mean"])
    assert expected > 2 and auto.stats["direct_repeat"] == expected
    assert auto.stats["direct_token_share"] == pytest.approx(0.5, abs=0.1)
    with pytest.raises(ValueError, match="--direct-repeat auto needs --tokenizer"):
        build(f, direct_repeat="auto")


def test_image_rows():
    f = pd.DataFrame([
        row(0, "reasoning", prompt=[{"role": "user", "content": "<image>What is drawn?"}], images=[IMAGE]),
        row(1, "direct", reasoning=None, images=[]),
    ])
    s = build(f).samples
    assert s["images"].tolist() == [[IMAGE], []]  # [] on text rows: MultiTurnSFTDataset needs a list there
    assert s["messages"][0][0]["content"] == "<image>What is drawn?"


def test_image_rows_round_trip_through_parquet(tmp_path):
    f = pd.DataFrame([
        row(0, "direct", reasoning=None, prompt=[{"role": "user", "content": "<image> and <image>?"}],
            images=[IMAGE, IMAGE]),
        row(1, "direct", reasoning=None, images=None),
    ])
    f.to_parquet(tmp_path / "in.parquet")
    build_file(tmp_path / "in.parquet", tmp_path / "out.parquet")
    back = pd.read_parquet(tmp_path / "out.parquet")
    assert [len(x) for x in back["images"]] == [2, 0]
    assert back["images"][0][0]["bytes"] == IMAGE["bytes"]


BAD = {
    "bad_label": row(1, "maybe"),
    "bad_prompt": row(1, "direct", prompt=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}]),
    "no_answer": row(1, "direct", answer="  "),
    "no_reasoning": row(1, "reasoning", reasoning=""),
    "think_tag_in_text": row(1, "reasoning", reasoning="<think>already wrapped</think>"),
    "image_count": row(1, "direct", prompt=[{"role": "user", "content": "<image><image>"}], images=[IMAGE]),
}


@pytest.mark.parametrize("reason", sorted(BAD))
def test_each_bad_row_is_named_and_skipped_or_refused(reason):
    f = pd.DataFrame([row(0, "reasoning"), BAD[reason], row(2, "direct", reasoning=None)])
    with pytest.raises(BadRowsError, match=f"row 1.*: {reason}: ") as info:
        build(f)
    assert "--on-bad-row skip" in str(info.value)
    result = build(f, on_bad_row="skip")
    assert result.samples["source_index"].tolist() == [0, 2]
    assert [(b.row, b.reason) for b in result.bad] == [(1, reason)]
    summary = result.summary.set_index(["data_source", "label"])
    assert summary.loc[("all", "all"), f"bad_{reason}"] == 1
    assert summary.loc[("all", "all"), "rows_in"] == 3


def test_too_long_is_counted_in_tokens(tokenizer_with):
    tok = tokenizer_with(CHAT_TEMPLATE)
    f = pd.DataFrame([row(0, "reasoning", reasoning=" ".join(["step"] * 200)), row(1, "direct", reasoning=None)])
    with pytest.raises(BadRowsError, match=r"row 0 \(think\): too_long: \d+ tokens > --max-length 64"):
        build(f, tokenizer=tok, max_length=64)
    result = build(f, tokenizer=tok, max_length=64, on_bad_row="skip")
    assert result.samples["mode"].tolist() == ["no_think"]
    assert [(b.row, b.mode, b.reason) for b in result.bad] == [(0, "think", "too_long")]
    with pytest.raises(ValueError, match="--max-length needs --tokenizer"):
        build(f, max_length=64)


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match="no column 'solution' \\(name it with --answer-key\\)"):
        build(frame(1, 1), answer_key="solution")
    with pytest.raises(ValueError, match="no column 'cot'.*--reasoning-key"):
        build(frame(1, 1), reasoning_key="cot")


def test_cli(tmp_path, tokenizer_with, capsys):
    tok = tokenizer_with(CHAT_TEMPLATE)
    tok.save_pretrained(tmp_path / "tok")
    (tmp_path / "template.jinja").write_text(CHAT_TEMPLATE)
    bad = pd.DataFrame([row(99, "direct", answer="")])
    f = pd.concat([frame(3, 9, source="math"), frame(2, 2, source="chart"), bad], ignore_index=True)
    f.to_parquet(tmp_path / "labelled.parquet")
    argv = ["--in", str(tmp_path / "labelled.parquet"), "--out", str(tmp_path / "sft.parquet"),
            "--tokenizer", str(tmp_path / "tok"), "--chat-template", str(tmp_path / "template.jinja"),
            "--max-length", "256", "--direct-share", "0.66", "--progress-every", "5"]
    assert main(argv) == 1  # refuse is the default
    err = capsys.readouterr().err
    assert "row 16: no_answer" in err and not (tmp_path / "sft.parquet").exists()

    assert main(argv + ["--on-bad-row", "skip"]) == 0
    captured = capsys.readouterr()
    assert "[anneal.build] rows 5/17" in captured.err
    out = captured.out
    assert "math" in out and "chart" in out and "bad_no_answer" in out and "achieved" in out
    written = pd.read_parquet(tmp_path / "sft.parquet")
    assert set(written["mode"]) == {"think", "no_think"}
    bad = pd.read_csv(bad_rows_path(tmp_path / "sft.parquet"))
    assert bad[["row", "reason"]].values.tolist() == [[16, "no_answer"]]

    # the file verl's SFT trainer reads: its dataset class takes it as is
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    ds = MultiTurnSFTDataset(str(tmp_path / "sft.parquet"), tok, {"max_length": 256, "pad_mode": "no_padding"})
    assert len(ds) == len(written) and all(ds[i]["loss_mask"].sum() > 0 for i in range(len(ds)))
