"""Fixtures of the vLLM-on-CPU tests: verl's real vLLM server (standalone replica) with a tiny model, verl's
real reward workers, and the BPO worker (verl's AgentLoopWorkerTQ subclass) generating through verl's
LLMServerClient. Only TransferQueue is the rollout tests' CPU stand-in.

This file imports no vLLM: in the main environment (no vllm) the test modules skip themselves
(``pytest.importorskip`` at their top), and these fixtures are never built. ``make test-vllm`` runs
them in ``.venv-vllm``, inside a loopback-only network namespace (``loopback_only.sh``).
"""

from __future__ import annotations

import os
import sys

import pytest

HERE = os.path.dirname(__file__)
sys.path.insert(0, HERE)  # --import-mode=importlib: the helper modules below
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "rollout"))  # FakeTQ, pair (the rollout tests' helpers)
from bpo_rollout_testlib import fake_tq  # noqa: E402,F401  - a fixture (imports no vLLM)


@pytest.fixture(scope="session")
def vllm_model_dir(tmp_path_factory):
    from vllm_cpu_server import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_vllm"))


@pytest.fixture(scope="session")
def vllm_config(vllm_model_dir):
    import verl  # noqa: F401  - loads the r4b_verl plugin (bpo_bimode, the +recipe search path)
    from vllm_cpu_server import compose

    return compose(
        vllm_model_dir,
        "actor_rollout_ref.rollout.dtype=float32",  # the tiny model's own dtype: log-probs comparable with HF's
        f"reward.custom_reward_function.path={os.path.join(HERE, 'reward_probe.py')}",
        "reward.custom_reward_function.name=compute_score",
        "reward.num_workers=1",
    )


@pytest.fixture(scope="session")
def vllm_stack(vllm_config, tmp_path_factory):
    """One Ray, verl's server manager (one standalone vLLM replica) and reward workers, for all tests."""
    from types import SimpleNamespace

    from verl.experimental.reward_loop import RewardLoopManager
    from vllm_cpu_server import local_ray, start_servers

    with local_ray(str(tmp_path_factory.mktemp("ray"))):
        manager = start_servers(vllm_config)
        rewards = RewardLoopManager(vllm_config)
        yield SimpleNamespace(manager=manager, rewards=rewards, config=vllm_config)


@pytest.fixture
def bpo_worker(vllm_stack, fake_tq):  # noqa: F811 - the fixture imported above, requested by name
    """The BPO worker as BPOAgentLoopManager builds it, on verl's LLMServerClient; it records each generate call."""
    from vllm_cpu_server import recording_client_class

    from r4b_verl.rollout.worker import BPOAgentLoopWorker

    client = vllm_stack.manager.get_client(client_cls=recording_client_class())
    worker = BPOAgentLoopWorker(vllm_stack.config, client, None, vllm_stack.rewards.reward_loop_worker_handles)
    worker.client = client
    return worker
