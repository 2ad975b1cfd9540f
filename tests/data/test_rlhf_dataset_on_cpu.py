"""Prepared rows load back through verl's own ``RLHFDataset`` with a real (tiny, offline) tokenizer.

Image rows: a Qwen2-VL processor cannot be built here (transformers 5's Qwen2VLProcessor needs a video
processor, which needs torchvision, not installed; verl's ``vision_utils.process_image`` needs
``qwen_vl_utils``, which imports torchvision too). So image rows go through RLHFDataset's text path
(``image_key`` set to a column the rows do not have, the ``<image>`` placeholders then stay text), and
their images are decoded the way ``RLHFDataset._build_messages`` opens them: ``Image.open(BytesIO(bytes))``.
"""

from __future__ import annotations

import io

import pytest
from omegaconf import OmegaConf
from PIL import Image
from sources import GOOD, write
from verl.utils.dataset.rl_dataset import RLHFDataset

from r4b_verl.data.prepare import prepare


def dataset_config(tmp_path, **extra):
    return OmegaConf.create({"max_prompt_length": 512, "filter_overlong_prompts": True,
                             "filter_overlong_prompts_workers": 1, "cache_dir": str(tmp_path / "cache"), **extra})


@pytest.mark.parametrize("family", ["gsm8k", "math", "aime", "dapo-math-17k"])
def test_text_rows_load_through_rlhf_dataset(family, tmp_path, tiny_tokenizer):
    tok, _ = tiny_tokenizer
    src = write(GOOD[family], tmp_path / "src.parquet", "parquet")
    prepare(family, str(src), str(tmp_path / "out"), val_size=0)
    train = tmp_path / "out" / "train.parquet"
    dataset = RLHFDataset(str(train), tok, dataset_config(tmp_path))
    assert len(dataset) == len(GOOD[family])  # the overlong filter tokenised every prompt and kept it
    for i in range(len(dataset)):
        item = dataset[i]
        assert item["index"] == i and item["extra_info"]["split"] == "train"
        assert item["raw_prompt"][0]["role"] == "user" and "\\boxed{}" in item["raw_prompt"][0]["content"]
        ids = tok.apply_chat_template(item["raw_prompt"], add_generation_prompt=True, tokenize=True)
        assert len(ids) > 0
        assert item["reward_model"]["ground_truth"]


@pytest.mark.parametrize("family", ["geometry3k", "mathvista", "scienceqa", "mmmu"])
def test_image_rows_load_through_the_text_path_and_decode(family, tmp_path, tiny_tokenizer):
    tok, _ = tiny_tokenizer
    src = write(GOOD[family], tmp_path / "src.parquet", "parquet")
    prepare(family, str(src), str(tmp_path / "out"), val_size=0)
    train = str(tmp_path / "out" / "train.parquet")
    text_path = RLHFDataset(train, tok, dataset_config(tmp_path, image_key="no_such_column"))
    assert len(text_path) == len(GOOD[family])
    import datasets

    rows = datasets.load_dataset("parquet", data_files=train, split="train")  # as RLHFDataset reads it
    for i in range(len(text_path)):
        content = text_path[i]["raw_prompt"][0]["content"]
        images = rows[i]["images"]
        assert content.count("<image>") == len(images)
        for image in images:
            assert set(image) == {"bytes"}  # RLHFDataset opens image["bytes"] when the key is present
            with Image.open(io.BytesIO(image["bytes"])) as opened:
                opened.convert("RGB").load()
    assert any(rows[i]["images"] for i in range(len(rows)))
