"""Fixtures: a tiny real model/tokenizer, verl's real config, the BPO worker (verl's AgentLoopWorkerTQ
subclass the recipe names), CPU stand-ins for the rollout server, the reward worker and TransferQueue
(the only parts faked: they need GPUs/Ray)."""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

import pytest
import verl  # noqa: F401  - loads the r4b_verl plugin: registers bpo_bimode

from r4b_verl.demo.tiny import build_model, build_tokenizer

sys.path.insert(0, os.path.dirname(__file__))  # --import-mode=importlib: make the helper module importable
from bpo_rollout_testlib import (  # noqa: E402
    PROMPT,
    FakeRewardWorker,
    FakeServer,
    HFServer,
    fake_tq,  # noqa: F401  - a fixture, used by the tests here
    pair,
    run_prompt,
)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny")
    build_model(path, build_tokenizer(path))
    return str(path)


@pytest.fixture(scope="session")
def compose(model_dir):
    """compose(*overrides) -> verl's real ppo_trainer config with the recipe's rollout keys and tiny lengths."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    def _compose(*overrides):
        with initialize_config_module("verl.trainer.config", version_base=None):
            return hydra_compose(
                "ppo_trainer",
                overrides=[
                    f"actor_rollout_ref.model.path={model_dir}",
                    "actor_rollout_ref.rollout.name=vllm",
                    "actor_rollout_ref.rollout.n=4",
                    "actor_rollout_ref.rollout.agent.default_agent_loop=bpo_bimode",
                    "data.max_prompt_length=56",  # + 8 of room for the mode prefix, as the recipes size it
                    "data.filter_overlong_prompts=true",
                    "actor_rollout_ref.rollout.prompt_length=64",
                    "actor_rollout_ref.rollout.response_length=16",
                    *overrides,
                ],
            )

    return _compose


@pytest.fixture
def make_worker(fake_tq):  # noqa: F811 - the fixture imported above, requested by name
    """make_worker(config, server_factory=FakeServer, reward=False) -> the BPO worker, as BPOAgentLoopManager
    builds it."""
    from r4b_verl.rollout.worker import BPOAgentLoopWorker as worker_cls  # ray.remote() of it is what verl starts

    def _make(config, server_factory=FakeServer, reward=False):
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(config.actor_rollout_ref.model.path)
        server = server_factory(tokenizer)
        rewards = [FakeRewardWorker(tokenizer)] if reward else None
        worker = worker_cls(config, server, None, rewards)
        worker.test_server, worker.test_rewards = server, rewards
        return worker

    return _make


@pytest.fixture
def helpers():
    return SimpleNamespace(run_prompt=run_prompt, pair=pair, FakeServer=FakeServer, HFServer=HFServer, PROMPT=PROMPT)


THINK_TAGS = ("<think>", "</think>")


def _tokenizer_variant(tmp_path_factory, model_dir, name, edit_added_tokens, additional_special_tokens):
    """The tiny tokenizer with its added tokens edited (list -> list), saved with the tiny model's config."""
    import json
    import shutil

    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tok = build_tokenizer()
    data = json.loads(tok.backend_tokenizer.to_str())
    data["added_tokens"] = edit_added_tokens(data["added_tokens"])
    variant = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(data)), eos_token="<|im_end|>", pad_token="<|endoftext|>",
        additional_special_tokens=additional_special_tokens,
    )
    variant.chat_template = tok.chat_template
    path = tmp_path_factory.mktemp(name)
    variant.save_pretrained(path)
    shutil.copy(f"{model_dir}/config.json", path / "config.json")
    return str(path)


@pytest.fixture(scope="session")
def no_think_model_dir(tmp_path_factory, model_dir):
    """Same model, a tokenizer WITHOUT <think>/</think> tokens (a model family without think tags)."""
    return _tokenizer_variant(
        tmp_path_factory, model_dir, "nothink",
        lambda tokens: [t for t in tokens if t["content"] not in THINK_TAGS], ["<|im_start|>"],
    )


@pytest.fixture(scope="session")
def special_think_model_dir(tmp_path_factory, model_dir):
    """Same model, a tokenizer whose <think>/</think> are SPECIAL tokens (skip_special_tokens drops them)."""
    return _tokenizer_variant(
        tmp_path_factory, model_dir, "specialthink",
        lambda tokens: [{**t, "special": True} if t["content"] in THINK_TAGS else t for t in tokens],
        ["<|im_start|>", *THINK_TAGS],
    )
