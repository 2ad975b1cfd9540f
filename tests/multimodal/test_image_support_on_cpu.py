"""The multimodal start-up checks fire where verl 0.9.1 goes on silently, naming the fix.

Real verl classes (``hf_processor``, ``RLHFDataset``), the real tiny Qwen2.5-VL folder and real image
rows (``r4b_verl.demo.shapes``); nothing of ours is mocked.
"""

from __future__ import annotations

import warnings

import pytest
from omegaconf import OmegaConf

from r4b_verl.multimodal.dataset import PILImageDataset
from r4b_verl.multimodal.images import ImageInputError, process_images
from r4b_verl.multimodal.startup import MultimodalSetupError, check_image_helper, check_image_support


def _qwen_vl_utils_imports() -> bool:
    try:
        import qwen_vl_utils  # noqa: F401
    except Exception:  # noqa: BLE001 - ImportError, or torchvision's own operator errors
        return False
    return True


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    from r4b_verl.demo.shapes import build_dataset
    from r4b_verl.demo.tiny_vl import build_tiny_vl

    out = tmp_path_factory.mktemp("tiny_vl")
    build_tiny_vl(out / "model")
    return {"model": str(out / "model"), **build_dataset(out, n_train=6, n_val=2)}


def _data_config(assets, **extra):
    return OmegaConf.create({"max_prompt_length": 64, "filter_overlong_prompts": True, "truncation": "error",
                             "image_key": "images", "train_files": [assets["train"]], "val_files": [assets["val"]],
                             "cache_dir": "/tmp/unused", **extra})


def _tokenizer(assets):
    from verl.utils import hf_tokenizer

    return hf_tokenizer(assets["model"])


def test_a_processor_that_fails_to_load_is_refused_with_the_fix(assets):
    from verl.utils import hf_processor

    # verl's own behaviour: without trust_remote_code the stock processor needs torchvision (or, where it
    # loads, it is not this model's); verl only warns and hands back None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        processor = hf_processor(assets["model"], trust_remote_code=False)
    if processor is not None:
        pytest.skip("the stock Qwen2.5-VL processor loads here (torchvision present)")
    assert any("Failed to create processor" in str(w.message) for w in caught)

    with pytest.raises(MultimodalSetupError) as err:
        PILImageDataset(data_files=[assets["train"]], tokenizer=_tokenizer(assets), config=_data_config(assets),
                        processor=processor)
    msg = str(err.value)
    assert "6 image row(s)" in msg and assets["train"] in msg
    assert "actor_rollout_ref.model.trust_remote_code=true" in msg and "Failed to create processor" in msg
    # the BPO worker's check, for any dataset class, from the data files
    with pytest.raises(MultimodalSetupError, match="trust_remote_code=true"):
        check_image_support(_data_config(assets), None, PILImageDataset)


def test_an_image_helper_that_cannot_import_is_refused_with_the_fix(assets):
    from verl.utils import hf_processor

    processor = hf_processor(assets["model"], trust_remote_code=True)
    assert type(processor).__name__ == "Qwen2_5_VLProcessor" and hasattr(processor, "get_rope_index")

    class TorchvisionlessDataset(PILImageDataset):  # a user's dataset class whose image helper is missing
        @classmethod
        def _process_multi_modal_info(cls, messages, image_patch_size, config):
            raise ModuleNotFoundError("No module named 'torchvision'")

    with pytest.raises(MultimodalSetupError) as err:
        check_image_support(_data_config(assets), processor, TorchvisionlessDataset)
    msg = str(err.value)
    assert "No module named 'torchvision'" in msg and "would drop every image row" in msg
    assert "data.custom_cls.path=pkg://r4b_verl.multimodal.dataset data.custom_cls.name=PILImageDataset" in msg
    with pytest.raises(MultimodalSetupError, match="data.custom_cls.name=PILImageDataset"):
        TorchvisionlessDataset(data_files=[assets["train"]], tokenizer=_tokenizer(assets),
                               config=_data_config(assets), processor=processor)

    # the same PIL-only class keeps every row through verl's multimodal length filter
    kept = PILImageDataset(data_files=[assets["train"]], tokenizer=_tokenizer(assets), config=_data_config(assets),
                           processor=processor)
    assert len(kept) == 6


@pytest.mark.skipif(_qwen_vl_utils_imports(), reason="qwen_vl_utils imports here: verl's own image path works")
def test_verl_own_dataset_class_is_refused_where_qwen_vl_utils_is_broken(assets):
    from verl.utils import hf_processor
    from verl.utils.dataset.rl_dataset import RLHFDataset

    processor = hf_processor(assets["model"], trust_remote_code=True)
    # what verl does by itself: every image row "skipped" by the length filter, an empty dataset
    assert len(RLHFDataset(data_files=[assets["train"]], tokenizer=_tokenizer(assets), config=_data_config(assets),
                           processor=processor)) == 0
    with pytest.raises(MultimodalSetupError, match="RLHFDataset cannot read images"):
        check_image_helper(RLHFDataset, 14)
    with pytest.raises(MultimodalSetupError, match="data.custom_cls.name=PILImageDataset"):
        check_image_support(_data_config(assets), processor, RLHFDataset)


def test_text_only_data_needs_neither(tmp_path):
    import pandas as pd

    path = tmp_path / "text.parquet"
    pd.DataFrame([{"data_source": "math", "prompt": [{"role": "user", "content": "1+1?"}],
                   "reward_model": {"ground_truth": "2"}}]).to_parquet(path)
    config = OmegaConf.create({"train_files": [str(path)], "val_files": [str(path)]})
    assert check_image_support(config, None, PILImageDataset) == 0


def test_image_parts_are_read_without_network_and_bad_bytes_are_named(assets):
    import io

    from PIL import Image

    image = Image.new("RGB", (100, 30), (0, 0, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    images, videos = process_images([{"role": "user", "content": [{"type": "image", "image": image},
                                                                   {"type": "image", "bytes": buffer.getvalue()},
                                                                   {"type": "text", "text": "?"}]}])
    assert videos is None and len(images) == 2
    assert all(side % 28 == 0 for img in images for side in img.size)  # patch 14 x merge 2, like qwen_vl_utils
    with pytest.raises(ImageInputError, match="not fetched"):
        process_images([{"role": "user", "content": [{"type": "image", "image": "http://127.0.0.1:9/x.png"}]}])
    with pytest.raises(ImageInputError, match="image part 0 cannot be decoded"):
        process_images([{"role": "user", "content": [{"type": "image", "bytes": b"not a png"}]}])
    with pytest.raises(ImageInputError, match="videos need qwen_vl_utils"):
        process_images([{"role": "user", "content": [{"type": "video", "video": "clip.mp4"}]}])


def test_image_token_metrics_per_mode():
    from r4b_verl.metrics import compute_bpo_metrics

    m = compute_bpo_metrics(uids=["a"] * 4, modes=["think", "think", "no_think", "no_think"],
                            rewards=[1, 0, 0, 0], lengths=[3, 3, 3, 3], image_tokens=[4, 4, 4, 0])
    assert m["bpo/think/image_tokens/mean"] == 4 and m["bpo/think/image_prompts/frac"] == 1.0
    assert m["bpo/no_think/image_tokens/mean"] == 2 and m["bpo/no_think/image_prompts/frac"] == 0.5
    text_only = compute_bpo_metrics(uids=["a"] * 2, modes=["think", "no_think"], rewards=[1, 0], lengths=[3, 3],
                                    image_tokens=[0, 0])
    assert not any("image" in k for k in text_only)
