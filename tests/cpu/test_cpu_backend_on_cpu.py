"""Unit tests of the CPU backend (r4b_verl/backends/cpu): inert unless selected, exact log-probs, weight sync,
patches guarded by the verl version, the CPU overlay's composition, the toy-math rows."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest
import torch
import verl  # noqa: F401 - loads the r4b_verl plugin

from r4b_verl import verl_compat
from r4b_verl.backends.cpu.platform import PlatformCPU
from r4b_verl.backends.cpu.registration import cpu_selected_on_command_line
from r4b_verl.backends.cpu.server import HFCPUServer, _filter_logits
from r4b_verl.demo.tiny import build_model, build_tokenizer
from r4b_verl.demo.toy_math import make_rows

# --- registration: names everywhere, activation only when selected -------------------------------


def test_platform_registered_but_never_auto_detected():
    from verl.plugin.platform.platform_manager import PlatformRegistry

    assert PlatformRegistry.get("cpu") is PlatformCPU
    platform = PlatformCPU()
    assert platform.is_platform_available(use_smi_check=True) is False
    assert platform.device_name == "cpu"
    assert platform.communication_backend_name() == "gloo"
    assert platform.current_device() == torch.device("cpu")
    assert platform.device_module.get_device_name() == "CPU"  # verl's FLOPs table has a CPU entry
    assert platform.ray_resource_name() == "GPU"


def test_rollout_names_registered():
    from verl.workers.rollout.base import get_rollout_class
    from verl.workers.rollout.replica import RolloutReplicaRegistry

    from r4b_verl.backends.cpu.rollout import HFCPUReplica, HFCPUServerAdapter

    assert RolloutReplicaRegistry.get("hf_cpu") is HFCPUReplica
    assert get_rollout_class("hf_cpu", "async") is HFCPUServerAdapter


@pytest.mark.parametrize(
    "argv, selected",
    [
        (["main_ppo.py", "+recipe=r4b_bpo_cpu"], True),
        (["main_ppo.py", "recipe=r4b_bpo_cpu", "trainer.n_gpus_per_node=1"], True),
        (["main_ppo.py", "+recipe=r4b_bpo", "actor_rollout_ref.rollout.name=hf_cpu"], True),
        (["main_ppo.py", "+recipe=r4b_bpo"], False),
        (["main_ppo.py", "actor_rollout_ref.rollout.name=vllm"], False),
        (["pytest", "r4b_bpo_cpu"], False),
        (["sft_trainer.py", "+recipe=r4b_anneal_cpu"], True),
        (["sft_trainer.py", "+recipe=r4b_anneal"], False),
    ],
)
def test_cpu_selected_on_command_line(argv, selected):
    assert cpu_selected_on_command_line(argv) is selected


_PROBE = textwrap.dedent(
    """
    import json, os, sys
    import torch.distributed as dist
    import verl
    from verl.plugin.platform import get_platform
    from verl.workers.engine.base import EngineRegistry
    print(json.dumps({
        "platform": get_platform().device_name,
        "patched": bool(getattr(dist.init_process_group, "_r4b_patched", False)),
        "cpu_engine": "cpu" in EngineRegistry._engines.get("language_model", {}).get("fsdp2", {}),
    }))
    """
)


def _probe(env_platform: str | None, *argv: str) -> dict:
    import json

    env = {k: v for k, v in os.environ.items() if k != "VERL_PLATFORM"}
    if env_platform is not None:
        env["VERL_PLATFORM"] = env_platform
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv], env=env, capture_output=True, text=True, timeout=300, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_inert_without_selection():
    state = _probe(None)
    assert state["platform"] != "cpu" and not state["patched"] and not state["cpu_engine"]


def test_active_with_verl_platform_cpu():
    assert _probe("cpu") == {"platform": "cpu", "patched": True, "cpu_engine": True}


def test_driver_activated_by_its_command_line():
    assert _probe(None, "+recipe=r4b_bpo_cpu")["platform"] == "cpu"


def test_gloo_backend_string_deduplicated(monkeypatch):
    import torch.distributed as dist

    seen = {}

    def fake_init(*args, **kwargs):
        seen.update(kwargs)

    monkeypatch.setattr(dist, "init_process_group", fake_init)
    verl_compat._dedupe_gloo_backend()
    dist.init_process_group(backend="cpu:gloo,cpu:gloo", rank=0, world_size=1)
    assert seen["backend"] == "cpu:gloo"
    dist.init_process_group(backend="cpu:gloo,cuda:nccl")
    assert seen["backend"] == "cpu:gloo,cuda:nccl"


def test_patches_refuse_another_verl(monkeypatch):
    monkeypatch.setattr(verl_compat.verl, "__version__", "0.9.2")
    with pytest.raises(verl_compat.VerlCompatError, match=r"written for verl==0\.9\.1.*0\.9\.2"):
        verl_compat.apply(verl_compat.CPU_PATCHES)


def test_every_patch_says_why():
    assert verl_compat.ALL_PATCHES and all(p.name and len(p.why) > 20 for p in verl_compat.ALL_PATCHES)


# --- the hf_cpu server -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny_cpu")
    build_model(path, build_tokenizer())  # saves both
    config = SimpleNamespace(max_model_len=None, prompt_length=16, response_length=12, seed=0)
    return HFCPUServer(config, {"path": str(path), "trust_remote_code": False})


def _generate(server, prompt, **params):
    return asyncio.run(server.generate(prompt_ids=prompt, sampling_params=dict(params), request_id="t"))


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_log_probs_are_temperature_scaled_and_exact(server, temperature):
    prompt = [5, 17, 42, 7, 99]
    out = _generate(server, prompt, temperature=temperature, top_p=0.9, top_k=50, logprobs=True, ignore_eos=True)
    assert len(out.token_ids) == 12 == len(out.log_probs)  # response_length cap
    with torch.no_grad():
        logits = server.model(torch.tensor([prompt + out.token_ids])).logits[0].float()
    ref = torch.log_softmax(logits[len(prompt) - 1 : -1] / temperature, dim=-1)
    ref = ref.gather(1, torch.tensor(out.token_ids)[:, None])[:, 0]
    assert torch.allclose(torch.tensor(out.log_probs), ref, atol=1e-4)
    assert out.stop_reason == "completed" and out.extra_fields["global_steps"] is None


def test_greedy_at_temperature_zero_and_no_logprobs_unless_asked(server):
    prompt = [3, 4, 5]
    a = _generate(server, prompt, temperature=0, top_p=1.0, top_k=-1, ignore_eos=True)
    b = _generate(server, prompt, temperature=0, top_p=1.0, top_k=-1, ignore_eos=True)
    assert a.token_ids == b.token_ids and a.log_probs is None
    assert len(_generate(server, prompt, temperature=1.0, max_tokens=3, ignore_eos=True).token_ids) == 3


def test_filter_logits_top_k_top_p():
    logits = torch.tensor([4.0, 3.0, 2.0, 1.0])
    assert torch.isinf(_filter_logits(logits, 2, 1.0)[2:]).all()
    kept = torch.isfinite(_filter_logits(logits, -1, 0.5))
    assert kept.tolist() == [True, False, False, False]


def test_update_weights_changes_the_model_and_rejects_unknown_names(server):
    before = {k: v.clone() for k, v in server.model.state_dict().items()}
    new = {k: v + 0.5 for k, v in before.items() if k.endswith("norm.weight")}
    assert asyncio.run(server.update_weights(new, global_steps=3)) == len(new)
    after = server.model.state_dict()
    assert all(torch.equal(after[k], new[k]) for k in new)
    assert server.global_steps == 3
    with pytest.raises(KeyError, match="same model.path"):
        asyncio.run(server.update_weights({"not.a.weight": torch.zeros(1)}))
    asyncio.run(server.update_weights(before))


# --- configuration and data ------------------------------------------------------------------------


def test_cpu_overlay_includes_the_recipe_and_wins():
    from hydra import compose, initialize_config_module

    with initialize_config_module("verl.trainer.config", version_base=None):
        cfg = compose("ppo_trainer", overrides=["+recipe=r4b_bpo_cpu"])
    assert cfg.algorithm.adv_estimator == "bpo"  # from r4b_bpo
    assert cfg.actor_rollout_ref.rollout.agent.default_agent_loop == "bpo_bimode"  # from r4b_bpo
    assert cfg.actor_rollout_ref.rollout.n == 4  # the overlay wins over r4b_bpo's 16
    assert cfg.actor_rollout_ref.rollout.name == "hf_cpu"
    assert cfg.actor_rollout_ref.actor.strategy == "fsdp2" and cfg.trainer.device == "cpu"
    assert cfg.ray_kwargs.ray_init.runtime_env.env_vars.VERL_PLATFORM == "cpu"
    assert cfg.ray_kwargs.ray_init.num_gpus == 1


def test_toy_math_rows_in_verl_format():
    rows = make_rows(6, "train", seed=1)
    assert rows == make_rows(6, "train", seed=1) and rows != make_rows(6, "val", seed=1)
    for row in rows:
        assert set(row) == {"data_source", "prompt", "ability", "reward_model", "extra_info"}
        assert row["prompt"][0]["role"] == "user" and "\\boxed{}" in row["prompt"][0]["content"]
        assert row["reward_model"]["style"] == "rule"
        operands = list(map(int, row["extra_info"]["question"].split("What is ")[1].split("?")[0].split(" + ")))
        assert operands == row["extra_info"]["operands"] and all(0 <= d <= 9 for d in operands)
        assert row["reward_model"]["ground_truth"] == str(sum(operands)) == row["extra_info"]["answer"]
    assert [r["extra_info"]["level"] for r in rows[:2]] == ["easy", "hard"]
    assert [len(r["extra_info"]["operands"]) for r in rows[:2]] == [2, 4]
    assert [r["data_source"] for r in rows[:2]] == ["toy_math_easy", "toy_math_hard"]
