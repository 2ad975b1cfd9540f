"""A tiny random Qwen2.5-VL built offline: vision tower + language model, processor, chat template.

The multimodal counterpart of :mod:`r4b_verl.demo.tiny` (whose byte-level BPE tokenizer it extends):

- tokenizer: the demo tokenizer plus Qwen2.5-VL's vision tokens (``<|vision_start|>``,
  ``<|vision_end|>``, ``<|image_pad|>``, ``<|video_pad|>``, special) and the non-special think tags;
  a ChatML template whose content loop renders an ``image`` part as
  ``<|vision_start|><|image_pad|><|vision_end|>`` (the processor expands the pad per image);
- image processor: ``Qwen2VLImageProcessorPil`` (transformers' PIL backend: no torchvision), with
  ``min_pixels = max_pixels = IMAGE_SIDE**2``: a 56 x 56 image is 4 x 4 patches of 14, merged 2 x 2
  into 4 image tokens;
- processor: ``processing_tiny_vl.Qwen2_5_VLProcessor`` as remote code (``trust_remote_code=true``),
  see that file for why;
- model: ``Qwen2_5_VLForConditionalGeneration``, text 2 layers x 64 wide (4 heads, 2 KV heads,
  M-RoPE sections [2, 3, 3] = head_dim / 2), vision 2 blocks x 32 wide, patch 14, temporal patch 2,
  spatial merge 2, about 0.2M parameters. The config's vision token ids are the tokenizer's.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from r4b_verl.demo.tiny import build_tokenizer, lm_config

VISION_START, VISION_END, IMAGE_PAD, VIDEO_PAD = "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"
VISION_TOKENS = [VISION_START, VISION_END, IMAGE_PAD, VIDEO_PAD]
IMAGE_SIDE = 56  # pixels; 4 image tokens after the 2 x 2 merge
PATCH_SIZE, MERGE_SIZE, TEMPORAL_PATCH = 14, 2, 2
PROCESSOR_FILE = Path(__file__).with_name("processing_tiny_vl.py")

# tiny.CHAT_TEMPLATE with image (and video) parts rendered as Qwen2.5-VL renders them.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}"
    "{% elif part['type'] == 'image' or 'image' in part %}{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{% elif part['type'] == 'video' or 'video' in part %}{{ '<|vision_start|><|video_pad|><|vision_end|>' }}"
    "{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def build_vl_tokenizer():
    """The demo tokenizer with the vision special tokens and the image-aware chat template."""
    tokenizer = build_tokenizer(None)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", *VISION_TOKENS]})
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_image_processor():
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    pixels = IMAGE_SIDE * IMAGE_SIDE
    return Qwen2VLImageProcessorPil(
        min_pixels=pixels, max_pixels=pixels, patch_size=PATCH_SIZE, merge_size=MERGE_SIZE,
        temporal_patch_size=TEMPORAL_PATCH,
    )


def build_vl_model(tokenizer, hidden_size: int = 64, num_layers: int = 2, seed: int = 0):
    """A random ``Qwen2_5_VLForConditionalGeneration`` sized to ``tokenizer``."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(seed)
    ids = {name: tokenizer.convert_tokens_to_ids(tok) for name, tok in
           (("vision_start_token_id", VISION_START), ("vision_end_token_id", VISION_END),
            ("image_token_id", IMAGE_PAD), ("video_token_id", VIDEO_PAD))}
    config = Qwen2_5_VLConfig(
        text_config=dict(
            **lm_config(tokenizer, hidden_size, num_layers),
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
        ),
        vision_config=dict(
            depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=hidden_size,
            patch_size=PATCH_SIZE, spatial_merge_size=MERGE_SIZE, temporal_patch_size=TEMPORAL_PATCH,
            window_size=2 * PATCH_SIZE * MERGE_SIZE, fullatt_block_indexes=[1],
        ),
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **ids,
    )
    return Qwen2_5_VLForConditionalGeneration(config)


def save_processor(out_dir: str | os.PathLike, tokenizer, image_processor) -> None:
    """Tokenizer, image processor and the remote-code processor (with its auto_map) in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(out))
    image_processor.save_pretrained(str(out))
    shutil.copy(PROCESSOR_FILE, out / PROCESSOR_FILE.name)
    auto_map = {"AutoProcessor": f"{PROCESSOR_FILE.stem}.Qwen2_5_VLProcessor"}
    (out / "processor_config.json").write_text(
        json.dumps({"processor_class": "Qwen2_5_VLProcessor", "auto_map": auto_map}, indent=2) + "\n"
    )
    # AutoProcessor reads auto_map from the image processor's config too; keep both in step
    pre = out / "preprocessor_config.json"
    data = json.loads(pre.read_text())
    data.update({"processor_class": "Qwen2_5_VLProcessor", "auto_map": auto_map})
    pre.write_text(json.dumps(data, indent=2) + "\n")


def build_tiny_vl(out_dir: str | os.PathLike, seed: int = 0):
    """Write the HF folder (model, tokenizer, processor); returns ``(model, processor)``."""
    from transformers import AutoProcessor

    tokenizer = build_vl_tokenizer()
    model = build_vl_model(tokenizer, seed=seed)
    model.save_pretrained(str(out_dir))
    save_processor(out_dir, tokenizer, build_image_processor())
    processor = AutoProcessor.from_pretrained(str(out_dir), trust_remote_code=True)
    return model, processor
