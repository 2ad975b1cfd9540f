"""Shared fixtures: reward caches start cold for every test; the reward benchmark as a module."""

import importlib.util
import os
import tempfile
from pathlib import Path

import pytest

from r4b_verl.reward import reset_caches

# The shared verdict store of this test process (each xdist worker its own): never the node's real one.
os.environ["R4B_REWARD_STORE"] = tempfile.mkdtemp(prefix="r4b_reward_store_")


@pytest.fixture(autouse=True)
def _cold_reward_caches():
    reset_caches()
    yield


@pytest.fixture(scope="session")
def bench_rewards():
    """benchmarks/bench_rewards.py (not a package: loaded by path), for its batch builder and labels."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_rewards.py"
    spec = importlib.util.spec_from_file_location("bench_rewards", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
