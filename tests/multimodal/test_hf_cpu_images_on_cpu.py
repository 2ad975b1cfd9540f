"""The hf_cpu server with images: log-probs equal a full Qwen2.5-VL forward (pixel values, 3-D M-RoPE
positions), a text request after an image request is not shifted, placeholders are never sampled."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from r4b_verl.backends.cpu.server import HFCPUServer


@pytest.fixture(scope="module")
def vl_path(tmp_path_factory):
    from r4b_verl.demo.tiny_vl import build_tiny_vl

    path = tmp_path_factory.mktemp("tiny_vl") / "model"
    model, _ = build_tiny_vl(path)
    # random init leaves attention almost uniform, hence blind to positions; sharpen it so a wrong
    # position (1-D instead of M-RoPE, a stale rope offset) shows in the log-probs
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "language_model" in name and ("q_proj" in name or "k_proj" in name):
                param.mul_(12.0)
    model.save_pretrained(path)
    return str(path)


def _server(path):
    config = SimpleNamespace(max_model_len=None, prompt_length=48, response_length=10, seed=0)
    return HFCPUServer(config, {"path": path, "trust_remote_code": True})


def _prompt(server, text="How many shapes are there?"):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(server.model.name_or_path, trust_remote_code=True)
    image = Image.new("RGB", (56, 56), (0, 130, 200))
    messages = [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": text}]}]
    chat = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return processor(text=[chat], images=[image], return_tensors="pt"), image, processor


def _generate(server, prompt_ids, images=None, **params):
    return asyncio.run(server.generate(prompt_ids=prompt_ids, sampling_params=params, request_id="t",
                                       image_data=images))


def _full_forward_log_probs(model, ids, response, **mm):
    with torch.no_grad():
        model.model.rope_deltas = None
        logits = model(input_ids=torch.tensor([ids + response]), **mm).logits[0].float()
    ref = torch.log_softmax(logits[len(ids) - 1 : -1], dim=-1)
    return ref.gather(1, torch.tensor(response)[:, None])[:, 0]


def test_image_request_log_probs_match_a_full_forward_and_text_after_it_is_not_shifted(vl_path):
    server = _server(vl_path)
    inputs, image, processor = _prompt(server)
    ids = inputs["input_ids"][0].tolist()
    assert ids.count(server.model.config.image_token_id) == 4

    out = _generate(server, ids, [image], temperature=1.0, logprobs=True, ignore_eos=True)
    assert len(out.token_ids) == 10
    # a text request right after it: the model still holds the image request's rope offset
    text_ids = processor.tokenizer.apply_chat_template([{"role": "user", "content": "What is 1 + 2?"}],
                                                       add_generation_prompt=True, tokenize=True)
    text_ids = list(text_ids["input_ids"] if hasattr(text_ids, "keys") else text_ids)
    after = _generate(server, text_ids, None, temperature=1.0, logprobs=True, ignore_eos=True)

    types = torch.cat([inputs["mm_token_type_ids"], torch.zeros(1, len(out.token_ids), dtype=torch.long)], dim=1)
    mm = {"pixel_values": inputs["pixel_values"], "image_grid_thw": inputs["image_grid_thw"],
          "mm_token_type_ids": types}
    ref = _full_forward_log_probs(server.model, ids, out.token_ids, **mm)
    assert torch.allclose(torch.tensor(out.log_probs), ref, atol=1e-5), (out.log_probs, ref)
    # without the image (1-D positions, no pixels) the numbers differ: the rollout really used both
    blind = _full_forward_log_probs(server.model, ids, out.token_ids)
    assert not torch.allclose(blind, ref, atol=1e-3)
    ref_text = _full_forward_log_probs(server.model, text_ids, after.token_ids)
    assert torch.allclose(torch.tensor(after.log_probs), ref_text, atol=1e-5), (after.log_probs, ref_text)


def test_placeholders_are_never_sampled_and_counts_are_checked(vl_path):
    server = _server(vl_path)
    inputs, image, _ = _prompt(server)
    ids = inputs["input_ids"][0].tolist()
    config = server.model.config
    blocked = {config.image_token_id, config.video_token_id, config.vision_start_token_id, config.vision_end_token_id}
    with torch.no_grad():  # make <|image_pad|> by far the most likely next token everywhere
        server.model.lm_head.weight[config.image_token_id] *= 200.0
    out = _generate(server, ids, [image], temperature=0, logprobs=True, ignore_eos=True)
    assert not blocked & set(out.token_ids)
    assert max(out.log_probs) < -5.0  # the chosen tokens' probability is over the full vocabulary

    with pytest.raises(ValueError, match="image tokens but its 2 image"):
        _generate(server, ids, [image, image], temperature=1.0)
    with pytest.raises(NotImplementedError, match="not videos"):
        asyncio.run(server.generate(prompt_ids=ids, sampling_params={}, request_id="v", video_data=[[image]]))
