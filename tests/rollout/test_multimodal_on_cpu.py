"""An image prompt through the same loop: verl's VL Continuous Token builder with a real (tiny) Qwen2-VL
processor; image_data reaches every generate call, the prefix follows the expanded image tokens."""

import os

import bpo_rollout_testlib as lib
from PIL import Image


def vl_worker(compose, make_worker, *overrides):
    """A worker with the tiny Qwen2-VL processor and the PIL dataset class (see bpo_rollout_testlib)."""
    config = compose(f"+data.custom_cls.path={os.path.abspath(lib.__file__)}", "+data.custom_cls.name=PILImageDataset",
                     *overrides)
    worker = make_worker(config)
    # Hand the worker the processor as HFModelConfig would for a Qwen2-VL checkpoint (AutoProcessor needs
    # torchvision here, see build_vl_processor); hf_model_type picks verl's Qwen-VL token builder.
    processor = lib.build_vl_processor()
    worker.processor = worker.model_config.processor = processor
    worker.tokenizer = processor.tokenizer
    worker.hf_model_type = "qwen2_vl"
    return worker, processor


def test_image_prompt_bimode(compose, make_worker, fake_tq, helpers):
    worker, processor = vl_worker(compose, make_worker, "data.max_prompt_length=40",
                                   "actor_rollout_ref.rollout.prompt_length=48")

    image = Image.new("RGB", (60, 60), "red")
    content = [{"type": "image", "image": image}, {"type": "text", "text": "What is 1 + 2?"}]
    prompt = [{"role": "user", "content": content}]
    rows = helpers.run_prompt(worker, fake_tq, prompt=prompt)

    tok = processor.tokenizer
    pad = tok.convert_tokens_to_ids("<|image_pad|>")
    calls = worker.test_server.calls
    bases = set()
    for row, call in helpers.pair(rows, calls):
        assert call.image_data == [image]  # the image goes with every one of the 2g requests
        prefix = tok.encode(row["extra_fields"]["bpo_prefix"], add_special_tokens=False)
        assert call.prompt_ids[-len(prefix):] == prefix
        base = call.prompt_ids[: -len(prefix)]
        bases.add(tuple(base))
        assert base.count(pad) == 4  # 60x60 -> 56x56 -> 4x4 patches, merged 2x2: expanded by the processor
        mm = row["multi_modal_inputs"]  # verl recomputes the processor features for the actor
        assert mm["image_grid_thw"].tolist() == [[1, 4, 4]] and mm["pixel_values"].shape[0] == 16
        assert row["position_ids"].shape == (4, row["input_ids"].numel())  # text + 3D M-RoPE positions
    assert len(bases) == 1  # same base (image tokens included) for both modes
    assert [r["extra_fields"]["bpo_mode"] for r in rows] == ["think", "think", "no_think", "no_think"]


def test_image_prompt_too_long_is_refused_not_cut(compose, make_worker, fake_tq):
    import pytest

    worker, _ = vl_worker(compose, make_worker, "data.truncation=left", "actor_rollout_ref.rollout.prompt_length=16")
    prompt = [{"role": "user", "content": [{"type": "image", "image": Image.new("RGB", (60, 60))},
                                           {"type": "text", "text": "What is 1 + 2?"}]}]
    with pytest.raises(ValueError, match="multimodal prompts cannot be truncated"):
        lib.run_session(worker, prompt=prompt, session_id=0)
