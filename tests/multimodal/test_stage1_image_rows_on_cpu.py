"""The stage-1 builder (r4b_verl/anneal/build.py) takes the demo's real image rows (PNG bytes, <image>).

It checks placeholders against images and writes the images through to verl's SFT rows; with the
tiny Qwen2.5-VL tokenizer the token contract is checked on the text (no processor: image rows are
counted as such in the report). Training verl's SFT on those rows needs its MultiTurnSFTDataset to
read images, which goes through qwen_vl_utils (torchvision); see the multimodal README.
"""

from __future__ import annotations

import pandas as pd

from r4b_verl.anneal.build import build
from r4b_verl.demo.shapes import make_rows
from r4b_verl.demo.tiny_vl import build_vl_tokenizer


def _labelled(n: int) -> pd.DataFrame:
    rows = make_rows(n, "label")
    for i, row in enumerate(rows):
        row["label"] = "reasoning" if i % 2 else "direct"
        row["reasoning"] = "Let me count the shapes one by one." if i % 2 else None
        row["answer"] = f"The answer is \\boxed{{{row['reward_model']['ground_truth']}}}."
    return pd.DataFrame(rows)


def test_builder_writes_the_image_rows_through(tmp_path):
    labelled = _labelled(6)
    result = build(labelled, tokenizer=build_vl_tokenizer(), on_bad_row="refuse")
    samples = result.samples
    assert not result.bad and len(samples) == 6
    assert samples["mode"].tolist() == ["no_think", "think"] * 3
    for sample, (_, source) in zip(samples.to_dict("records"), labelled.iterrows(), strict=True):
        assert sample["messages"][0]["content"].count("<image>") == 1
        assert sample["images"][0]["bytes"] == source["images"][0]["bytes"]  # the PNG itself, unchanged
    assert result.stats["image_rows_checked_as_text"] == 6
    assert "6 image samples were tokenised without a processor" in result.report()

    path = tmp_path / "sft.parquet"
    samples.to_parquet(path)
    back = pd.read_parquet(path)
    import io

    from PIL import Image

    assert Image.open(io.BytesIO(back["images"][0][0]["bytes"])).size == (56, 56)


def test_builder_names_an_image_row_whose_placeholders_do_not_match():
    labelled = _labelled(2)
    labelled.at[1, "images"] = []
    result = build(labelled, on_bad_row="skip")
    assert [(b.row, b.reason) for b in result.bad] == [(1, "image_count")]
