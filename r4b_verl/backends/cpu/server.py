"""The ``hf_cpu`` rollout server: a Ray actor that samples from an HF transformers causal LM on CPU.

It implements the token-in/token-out interface verl's agent loops call through
``LLMServerClient`` (``generate(prompt_ids, sampling_params, request_id, ...) -> TokenOutput``),
the lifecycle calls ``RolloutReplica`` forwards (sleep, wake_up, abort, kv-cache: no-ops on
CPU) and ``update_weights`` that the in-worker adapter (``r4b_verl.backends.cpu.rollout``) calls after
each actor update.

Sampling is a plain KV-cached decode loop, so the returned log-probs are exactly what verl's
actor recomputes: ``log_softmax(logits / temperature)`` of the sampled token, before top-k /
top-p filtering (vLLM's convention; verl's ``training/rollout_probs_diff_*`` metrics compare the
two). ``temperature == 0`` is greedy decoding with log-probs at temperature 1.

Image-text models (Qwen2.5-VL style, loaded with ``AutoModelForImageTextToText``) take the agent
loop's ``image_data`` (the PIL images verl's dataset class extracted): the model folder's image
processor turns them into ``pixel_values`` / ``image_grid_thw``, given on the first decode step
only, with the image-token mask (``mm_token_type_ids``) so the model computes its 3-D M-RoPE
positions (without it they silently fall back to 1-D); the model's cached ``rope_deltas`` is reset
per request (a stale one would shift the next request's positions). Vision placeholder tokens are
never sampled (verl would read them in a response as images), but their probability stays in the
log-prob normaliser, as the actor computes it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, Optional

import torch

logger = logging.getLogger(__name__)


def _get(cfg, key: str):
    """``cfg.key`` for dataclass and DictConfig alike, None when absent."""
    if hasattr(cfg, "get"):
        return cfg.get(key, None)
    return getattr(cfg, key, None)


def _filter_logits(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Top-k then top-p (nucleus) filtering of a 1-D logits row, as vLLM applies them."""
    if top_k is not None and 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        # drop a token when the mass of the tokens before it already reaches top_p
        drop = (torch.cumsum(probs, dim=-1) - probs) >= top_p
        drop[0] = False
        logits = logits.clone()
        logits[order[drop]] = float("-inf")
    return logits


def _load_model(path: str, trust_remote_code: bool):
    """A causal LM, or an image-text-to-text model (Qwen2.5-VL) when the config is one."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING

    config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    auto = AutoModelForImageTextToText if type(config) in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING else AutoModelForCausalLM
    return auto.from_pretrained(path, dtype=torch.float32, trust_remote_code=trust_remote_code)


class VisionInputs:
    """The image side of a multimodal rollout model: its image processor and vision token ids."""

    def __init__(self, image_processor, image_token_id: int, blocked_ids: list[int]):
        self.image_processor = image_processor
        self.image_token_id = image_token_id
        self.blocked_ids = torch.tensor(sorted(set(blocked_ids)), dtype=torch.long)
        self.merge = int(getattr(image_processor, "merge_size", 1) or 1)

    @classmethod
    def for_model(cls, model, path: str, trust_remote_code: bool) -> Optional[VisionInputs]:
        config = model.config
        image_token_id = getattr(config, "image_token_id", None)
        if image_token_id is None:
            return None  # a text-only model
        from transformers import AutoProcessor

        try:
            processor = AutoProcessor.from_pretrained(path, trust_remote_code=trust_remote_code)
        except Exception as exc:  # noqa: BLE001 - re-raised naming the fix
            raise RuntimeError(
                f"hf_cpu: {path} is an image-text model but its processor does not load ({exc!r}); set "
                "actor_rollout_ref.model.trust_remote_code=true for a remote-code processor"
            ) from exc
        image_processor = getattr(processor, "image_processor", None)
        if image_processor is None:
            raise RuntimeError(f"hf_cpu: the processor at {path} has no image processor")
        blocked = [getattr(config, k, None) for k in
                   ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")]
        return cls(image_processor, int(image_token_id), [int(t) for t in blocked if t is not None])

    def model_kwargs(self, prompt_ids: list[int], images: list[Any]) -> dict[str, torch.Tensor]:
        """First-step kwargs: pixel values, grid and image-token mask; the placeholder count must match."""
        features = self.image_processor(images=list(images), return_tensors="pt")
        grid = features["image_grid_thw"]
        expected = int((grid.prod(dim=-1) // (self.merge * self.merge)).sum())
        ids = torch.tensor([prompt_ids], dtype=torch.long)
        mask = (ids == self.image_token_id).to(torch.int32)
        if int(mask.sum()) != expected:
            raise ValueError(
                f"hf_cpu: the prompt holds {int(mask.sum())} image tokens but its {len(images)} image(s) need "
                f"{expected}; the agent loop's processor and the rollout model's image processor disagree"
            )
        return {"pixel_values": features["pixel_values"], "image_grid_thw": grid, "mm_token_type_ids": mask}


class HFCPUServer:
    """One rollout replica's generation server (run as a Ray actor by ``HFCPUReplica``)."""

    def __init__(self, config, model_config, replica_rank: int = 0, node_rank: int = 0, **kwargs):
        self.config = config
        self.model_config = model_config
        self.replica_rank = replica_rank
        self.node_rank = node_rank
        self.global_steps: Optional[int] = None
        self._lock = asyncio.Lock()
        # verl hands replicas the raw ``actor_rollout_ref.model`` DictConfig, not an HFModelConfig.
        path = os.path.expanduser(_get(model_config, "local_path") or _get(model_config, "path"))
        trust = bool(_get(model_config, "trust_remote_code") or False)
        self.model = _load_model(path, trust)
        self.model.eval()
        self.vision = VisionInputs.for_model(self.model, path, trust)
        self.eos_token_ids = self._eos_token_ids(self.model, _get(model_config, "tokenizer_path") or path, trust)
        if not self.eos_token_ids:
            logger.warning("hf_cpu: %s defines no eos token; every response runs to the length limit", path)
        self._generator = torch.Generator().manual_seed(int(_get(config, "seed") or 0) + replica_rank)
        logger.info("hf_cpu server %s_%s: loaded %s, eos=%s", replica_rank, node_rank, path, self.eos_token_ids)

    @staticmethod
    def _eos_token_ids(model, tokenizer_path: str, trust_remote_code: bool) -> set[int]:
        """Stop tokens: the generation config's, the model config's and the tokenizer's eos."""
        found = [getattr(model.generation_config, "eos_token_id", None), getattr(model.config, "eos_token_id", None)]
        try:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(tokenizer_path, trust_remote_code=trust_remote_code)
            found.append(tokenizer.eos_token_id)
        except Exception as exc:  # noqa: BLE001 - the model's own eos ids still apply
            logger.warning("hf_cpu: could not load the tokenizer at %s for its eos token: %r", tokenizer_path, exc)
        ids: set[int] = set()
        for value in found:
            if value is not None:
                ids.update(value if isinstance(value, (list, tuple)) else [value])
        return {int(i) for i in ids}

    # --- generation -------------------------------------------------------------------------

    def _max_tokens(self, prompt_len: int, sampling_params: dict[str, Any]) -> int:
        max_model_len = self.config.max_model_len or (self.config.prompt_length + self.config.response_length)
        room = max_model_len - prompt_len
        if room < 1:
            raise ValueError(
                f"hf_cpu: prompt of {prompt_len} tokens leaves no room within max_model_len={max_model_len}; "
                "raise actor_rollout_ref.rollout.prompt_length/response_length or shorten the prompts"
            )
        if "max_tokens" in sampling_params:
            wanted = sampling_params["max_tokens"]
        elif "max_new_tokens" in sampling_params:
            wanted = sampling_params["max_new_tokens"]
        else:
            wanted = min(
                self.config.response_length, self.config.prompt_length + self.config.response_length - prompt_len
            )
        return max(1, min(int(wanted), room))

    @torch.no_grad()
    def _sample(
        self, prompt_ids: list[int], sampling_params: dict[str, Any], images: Optional[list[Any]] = None
    ) -> tuple[list[int], list[float], str]:
        temperature = float(sampling_params.get("temperature", 1.0) or 0.0)
        top_k = int(-1 if sampling_params.get("top_k") is None else sampling_params["top_k"])
        top_p = float(1.0 if sampling_params.get("top_p") is None else sampling_params["top_p"])
        greedy = temperature <= 0.0
        max_tokens = self._max_tokens(len(prompt_ids), sampling_params)
        ignore_eos = bool(sampling_params.get("ignore_eos", False))

        input_ids = torch.tensor([prompt_ids], dtype=torch.long)
        past = None
        step_kwargs: dict[str, Any] = {}
        if self.vision is not None:
            self.model.model.rope_deltas = None  # left from the previous request, it would shift this one
            if images:
                step_kwargs = self.vision.model_kwargs(prompt_ids, images)
        token_ids: list[int] = []
        log_probs: list[float] = []
        for _ in range(max_tokens):
            out = self.model(input_ids=input_ids, past_key_values=past, use_cache=True, **step_kwargs)
            step_kwargs = {}  # the images are in the KV cache after the first step
            past = out.past_key_values
            logits = out.logits[0, -1].float()
            scaled = logits if greedy else logits / temperature
            logp = torch.log_softmax(scaled, dim=-1)
            if self.vision is not None:  # sample no placeholder; logp keeps the full normaliser
                scaled = scaled.index_fill(0, self.vision.blocked_ids, float("-inf"))
                logits = logits.index_fill(0, self.vision.blocked_ids, float("-inf"))
            if greedy:
                token = int(torch.argmax(logits))
            else:
                filtered = _filter_logits(scaled, top_k, top_p)
                probs = torch.softmax(filtered, dim=-1)
                token = int(torch.multinomial(probs, 1, generator=self._generator))
            token_ids.append(token)
            log_probs.append(float(logp[token]))
            if not ignore_eos and token in self.eos_token_ids:
                break
            input_ids = torch.tensor([[token]], dtype=torch.long)
        # As verl's vLLM server: "completed" for an eos stop and for the length limit alike.
        return token_ids, log_probs, "completed"

    async def generate(
        self,
        prompt_ids: list[int],
        sampling_params: dict[str, Any],
        request_id: str,
        image_data: Optional[list[Any]] = None,
        video_data: Optional[list[Any]] = None,
        **kwargs: Any,
    ):
        from verl.workers.rollout.replica import TokenOutput

        if video_data:
            raise NotImplementedError("hf_cpu rollout serves images, not videos; use vllm/sglang for video data")
        if image_data and self.vision is None:
            raise ValueError(
                "hf_cpu: the request has images but the rollout model is text-only; actor_rollout_ref.model.path "
                "must be an image-text model (e.g. Qwen2.5-VL) for image rows"
            )
        prompt_ids = [int(t) for t in prompt_ids]
        params = dict(sampling_params)
        want_logprobs = bool(params.pop("logprobs", False))
        # One request at a time: the model is shared and CPU threads are the bottleneck anyway.
        async with self._lock:
            token_ids, log_probs, stop = await asyncio.to_thread(self._sample, prompt_ids, params, image_data)
        return TokenOutput(
            token_ids=token_ids,
            log_probs=log_probs if want_logprobs else None,
            stop_reason=stop,
            extra_fields={"global_steps": self.global_steps},
        )

    # --- weights ----------------------------------------------------------------------------

    async def update_weights(self, state_dict: dict[str, torch.Tensor], global_steps: Optional[int] = None) -> int:
        """Load the actor's full (unsharded) weights; returns the number of tensors loaded."""
        async with self._lock:
            own = self.model.state_dict()
            unknown = sorted(k for k in state_dict if k not in own)
            if unknown:
                raise KeyError(
                    f"hf_cpu: the actor sent {len(unknown)} weight(s) the rollout model does not have, "
                    f"e.g. {unknown[:3]}; actor and rollout must load the same model.path"
                )
            with torch.no_grad():
                for name, tensor in state_dict.items():
                    own[name].copy_(tensor.to(own[name].dtype))
            if global_steps is not None:
                self.global_steps = global_steps
        return len(state_dict)

    async def set_global_steps(self, global_steps: int):
        self.global_steps = global_steps

    async def get_weights_checksum(self) -> float:
        """Sum of all parameters: lets a test check that weight sync changed the rollout model."""
        return float(sum(p.double().sum() for p in self.model.parameters()))

    # --- lifecycle: nothing to free or pause on CPU -----------------------------------------

    async def wake_up(self, tags: Optional[list[str]] = None):
        return None

    async def sleep(self):
        return None

    async def clear_kv_cache(self):
        return None

    async def release_kv_cache(self):
        return None

    async def resume_kv_cache(self):
        return None

    async def abort_all_requests(self, reset_prefix_cache: bool = True, reject_request: bool = False) -> dict[str, Any]:
        return {"aborted_count": 0, "request_ids": []}

    async def resume_generation(self):
        return None

    async def abort_request(self, request_id: str, reset_prefix_cache: bool = True) -> dict[str, Any]:
        return {"aborted": False, "request_id": request_id}

    async def wait_for_requests_to_drain(self):
        async with self._lock:
            return None

    async def start_profile(self, **kwargs):
        return None

    async def stop_profile(self):
        return None

    def get_server_address(self) -> tuple[str, int]:
        return "hf-cpu", 0

    def ping(self) -> int:
        return os.getpid()
