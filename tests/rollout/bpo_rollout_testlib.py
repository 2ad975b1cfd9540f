"""Shared test helpers for tests/rollout (imported by conftest.py and the tests; unique name on purpose)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
import torch

from r4b_verl.demo.tiny import build_tokenizer

PROMPT = [{"role": "user", "content": "What is 12 + 30? Put the final answer in \\boxed{}."}]


class FakeServer:
    """Stand-in for verl's LLMServerClient: records each call, answers with a scripted response."""

    def __init__(self, tokenizer, reply="\nLet me add.\n</think>\n\nThe answer is \\boxed{42}.<|im_end|>"):
        self.tokenizer = tokenizer
        self.reply = reply
        self.calls = []

    def respond(self, prompt_ids, sampling_params):
        reply = self.reply(prompt_ids) if callable(self.reply) else self.reply
        ids = self.tokenizer.encode(reply, add_special_tokens=False)
        return ids, [-0.5] * len(ids)

    async def generate(self, request_id, *, prompt_ids, sampling_params, **kwargs):
        from verl.workers.rollout.replica import TokenOutput

        call = SimpleNamespace(prompt_ids=list(prompt_ids), sampling_params=dict(sampling_params), **kwargs)
        self.calls.append(call)
        ids, logprobs = self.respond(prompt_ids, sampling_params)
        call.token_ids = ids
        return TokenOutput(token_ids=ids, log_probs=logprobs if sampling_params.get("logprobs") else None)


class HFServer(FakeServer):
    """A real (tiny, random) causal LM behind the same interface: sampled tokens with their true log-probs."""

    def __init__(self, tokenizer, model, max_new_tokens=6):
        super().__init__(tokenizer)
        self.model, self.max_new_tokens = model, max_new_tokens

    def respond(self, prompt_ids, sampling_params):
        torch.manual_seed(len(self.calls))
        n_new = min(self.max_new_tokens, sampling_params.get("max_tokens", self.max_new_tokens))
        ids, logprobs = list(prompt_ids), []
        with torch.no_grad():
            for _ in range(n_new):
                logits = self.model(torch.tensor([ids])).logits[0, -1].float()
                lp = torch.log_softmax(logits, dim=-1)
                token = int(torch.multinomial(lp.exp(), 1))
                ids.append(token)
                logprobs.append(float(lp[token]))
        return ids[len(prompt_ids) :], logprobs


class FakeTQ:
    """Stand-in for the transfer_queue module as AgentLoopWorkerTQ and the trainer use it."""

    def __init__(self):
        self.rows, self.status = {}, {}

    def init(self, *args, **kwargs):
        pass

    async def async_kv_put(self, key, partition_id, tag=None, **kwargs):
        self.status[key] = tag["status"]

    async def async_kv_batch_put(self, keys, fields, tags, partition_id):
        for i, key in enumerate(keys):
            row = fields[i]
            self.rows[key] = {k: v if torch.is_tensor(v) else getattr(v, "data", v) for k, v in row.items()}

    def kv_batch_get(self, keys, partition_id, select_fields):
        from verl.utils.tensordict_utils import list_of_dict_to_tensordict

        return list_of_dict_to_tensordict([{f: self.rows[k][f] for f in select_fields} for k in keys])


@pytest.fixture
def fake_tq(monkeypatch):
    """verl's TransferQueue client in agent_loop_tq replaced by a FakeTQ (the conftests import this fixture)."""
    from verl.trainer.ppo.v1 import agent_loop_tq

    tq = FakeTQ()
    monkeypatch.setattr(agent_loop_tq, "tq", tq)
    return tq


class FakeRewardWorker:
    """Stand-in for a RewardLoopWorker actor handle: score 1 if the response has \\boxed{42}; records extra info."""

    def __init__(self, tokenizer):
        self.tokenizer, self.seen = tokenizer, []

        async def remote(data):
            extra = data.non_tensor_batch["tool_extra_fields"][-1]  # what verl's reward managers merge into extra_info
            self.seen.append(extra)
            text = self.tokenizer.decode(data.batch["responses"][-1].tolist())
            score = 1.0 if "\\boxed{42}" in text else 0.0
            return {"reward_score": score, "reward_extra_info": {"acc": score}}

        self.compute_score = SimpleNamespace(remote=remote)


def pair(rows, calls):
    """[(row, its generate call)]: sessions run concurrently, so calls come in completion order.

    A row's prompt + response is the start of exactly what its call sent and got back."""
    pairs = []
    for row in rows:
        seq = row["prompts"].tolist() + row["responses"].tolist()
        matches = [c for c in calls if (c.prompt_ids + c.token_ids)[: len(seq)] == seq]
        assert matches, "no generate call produced this row"
        pairs.append((row, matches[0]))
    return pairs


def run_prompt(worker, fake_tq, prompt=PROMPT, validate=False, uid="u0", data_source="toy", **row):
    """Run one prompt exactly as the V1 trainer does (AgentLoopWorkerTQ._run_prompt); rows by session id."""
    config = worker.config.actor_rollout_ref.rollout
    sampling_params = dict(temperature=config.temperature, top_p=1.0, top_k=-1, repetition_penalty=1.0,
                           logprobs=config.calculate_log_probs)
    trajectory = {"step": 1, "sample_index": 0, "rollout_n": 0, "validate": validate}
    prompt_row = {"raw_prompt": prompt, "uid": uid, "index": 0, "global_steps": 1, "agent_name": "bpo_bimode",
                  "data_source": data_source, "extra_info": {}, **row}
    asyncio.run(worker._run_prompt(prompt_row, sampling_params, trajectory=trajectory))
    assert fake_tq.status[uid] == "finished", fake_tq.status
    n = config.n if not validate else config.val_kwargs.n
    return [fake_tq.rows[f"{uid}_{i}_0"] for i in range(n)]


def run_session(worker, prompt=PROMPT, **row):
    """One training session through the worker's ``_run_agent_loop``; pass ``session_id`` in ``row``."""
    trajectory = {"step": 1, "sample_index": 0, "rollout_n": 0, "validate": False}
    return asyncio.run(worker._run_agent_loop({"logprobs": True}, trajectory, agent_name="bpo_bimode",
                                              raw_prompt=prompt, uid="u", global_steps=1, index=0, **row))


# Chat templates of other model families, rendered by the same tiny tokenizer.
QWEN3_TEMPLATE = (  # Qwen3 hybrid: enable_thinking=false writes an empty think block into the generation prompt
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{% if enable_thinking is defined and enable_thinking is false %}{{ '<think>\\n\\n</think>\\n\\n' }}{% endif %}"
    "{% endif %}"
)
R1_TEMPLATE = (  # DeepSeek-R1-distill: the generation prompt opens the think block
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n<think>\\n' }}{% endif %}"
)


def with_template(config, template):
    from omegaconf import open_dict

    with open_dict(config):
        config.actor_rollout_ref.model.custom_chat_template = template
    return config


# ----------------------------------------------------------------------------- multimodal (Qwen2-VL shaped)

VL_TOKENS = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
VL_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{% elif part['type'] == 'video' %}{{ '<|vision_start|><|video_pad|><|vision_end|>' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{ '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def _images_in(messages):
    return [part["image"] for m in messages if isinstance(m.get("content"), list)
            for part in m["content"] if isinstance(part, dict) and part.get("type") == "image"]


class PILImageDataset(__import__("verl.utils.dataset.rl_dataset", fromlist=["RLHFDataset"]).RLHFDataset):
    """verl's documented extension point (data.custom_cls): take PIL images from the messages as they are.

    RLHFDataset's own extraction goes through qwen_vl_utils, which imports torchvision; this CPU
    environment has no torchvision (a GPU install gets it with vLLM). Everything after the
    extraction (processor, Continuous Token VL builder, rope index) is verl's real code.
    """

    @classmethod
    def _process_multi_modal_info(cls, messages, image_patch_size, config):
        images = _images_in(messages)
        return (images or None), None, None


def build_vl_processor():
    """A real Qwen2-VL image processor + processor around the tiny tokenizer, bound as verl's hf_processor does.

    Image-only: transformers' Qwen2VLVideoProcessor (and so AutoProcessor for Qwen2-VL) needs
    torchvision, which this CPU environment does not have; images go through the PIL backend.
    """
    import types

    from transformers import Qwen2VLConfig, Qwen2VLImageProcessorPil, Qwen2VLProcessor
    from transformers.models.qwen2_vl import Qwen2VLModel
    from transformers.processing_utils import ProcessorMixin

    class ImageOnlyQwen2VLProcessor(Qwen2VLProcessor):
        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            self.image_token, self.video_token = "<|image_pad|>", "<|video_pad|>"
            self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
            self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
            ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

    tok = build_tokenizer()
    tok.add_tokens(VL_TOKENS, special_tokens=True)
    tok.chat_template = VL_TEMPLATE
    image_processor = Qwen2VLImageProcessorPil(min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 4)
    processor = ImageOnlyQwen2VLProcessor(image_processor, tok, chat_template=VL_TEMPLATE)
    ids = {t: tok.convert_tokens_to_ids(t) for t in VL_TOKENS}
    processor.config = Qwen2VLConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                         num_attention_heads=4, num_key_value_heads=2,
                         rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]}),
        vision_config=dict(depth=1, embed_dim=32, hidden_size=64, num_heads=2, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )
    # what verl.utils.tokenizer.hf_processor does for a Qwen2VLProcessor
    processor.get_rope_index = types.MethodType(Qwen2VLModel.get_rope_index, processor)
    if hasattr(Qwen2VLModel, "get_vision_position_ids"):
        processor.get_vision_position_ids = types.MethodType(Qwen2VLModel.get_vision_position_ids, processor)
    return processor
