"""Shared fixtures: reward caches start cold for every test."""

import pytest

from r4b_verl.reward_fns import reset_caches


@pytest.fixture(autouse=True)
def _cold_reward_caches():
    reset_caches()
    yield
