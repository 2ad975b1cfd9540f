"""The bi-mode rollout through verl's agent-loop worker against verl's real vLLM server (CPU build of vLLM).

verl's ``AgentLoopWorkerTQ`` (as r4b-verl's BPO worker) runs each prompt's n sessions, the loop sends
them through verl's ``LLMServerClient`` and load balancer to verl's ``vLLMHttpServer`` (a standalone
replica around vLLM's ``AsyncLLM``), and verl's ``RewardLoopWorker`` scores them with
``reward_probe.py``. What the engine received is read back from vLLM itself (its prompt log-probs).
"""

import asyncio

import pytest
from vllm_cpu_server import LOOPBACK, VLLM_SKIP_REASON, engine_prompt_ids, network_interfaces

pytest.importorskip("vllm", reason=VLLM_SKIP_REASON)

from bpo_rollout_testlib import PROMPT, pair  # noqa: E402

from r4b_verl.think import MODES, chosen_mode  # noqa: E402

THINK_PREFIX, NO_THINK_PREFIX, AUTO_PREFIX = "<think>\n", "<think>\n\n</think>", "<think>"


def run_prompt(worker, fake_tq, prompt=PROMPT, validate=False, uid="u0", **sampling):
    """One prompt exactly as the V1 trainer runs it (AgentLoopWorkerTQ._run_prompt); its rows by session."""
    config = worker.config.actor_rollout_ref.rollout
    sampling_params = dict(temperature=1.0, top_p=1.0, top_k=-1, repetition_penalty=1.0, logprobs=True, **sampling)
    trajectory = {"step": 1, "sample_index": 0, "rollout_n": 0, "validate": validate}
    row = {"raw_prompt": prompt, "uid": uid, "index": 0, "global_steps": 1, "agent_name": "bpo_bimode",
           "data_source": "toy", "extra_info": {}, "reward_model": {"ground_truth": "42"}}
    asyncio.run(worker._run_prompt(row, sampling_params, trajectory=trajectory))
    assert fake_tq.status[uid] == "finished", fake_tq.status
    n = config.val_kwargs.n if validate else config.n
    return [fake_tq.rows[f"{uid}_{i}_0"] for i in range(n)]


def base_prompt_ids(tok, prompt=PROMPT):
    return tok.encode(tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False),
                      add_special_tokens=False)


def test_the_server_is_verls_vllm_replica_on_loopback(vllm_stack):
    from verl.workers.rollout.vllm_rollout.vllm_async_server import vLLMReplica

    assert network_interfaces() == ["lo"]  # the namespace make test-vllm runs in: nothing but loopback
    (replica,) = vllm_stack.manager.get_replicas()
    assert isinstance(replica, vLLMReplica)
    (address,) = vllm_stack.manager.server_addresses
    assert address.rsplit(":", 1)[0] == LOOPBACK


def test_training_prompt_gets_g_thinking_and_g_non_thinking_sessions(bpo_worker, fake_tq):
    # prompt_logprobs=0: vLLM returns the prompt tokens its engine scored, so we see what it received
    rows = run_prompt(bpo_worker, fake_tq, prompt_logprobs=0)
    tok, calls = bpo_worker.tokenizer, bpo_worker.client.calls
    base = base_prompt_ids(tok)

    assert [r["extra_fields"]["bpo_mode"] for r in rows] == ["think", "think", "no_think", "no_think"]
    assert {r["uid"] for r in rows} == {"u0"} and len(calls) == 4  # one group, one generate per session
    for row, call in pair(rows, calls):
        prefix = {"think": THINK_PREFIX, "no_think": NO_THINK_PREFIX}[row["extra_fields"]["bpo_mode"]]
        expected = base + tok.encode(prefix, add_special_tokens=False)
        assert call.prompt_ids == expected  # sent: verl's prompt ids, then the mode's prefix ids
        assert engine_prompt_ids(call.output) == expected[1:]  # and exactly that reached vLLM's engine
        assert row["prompts"].tolist() == expected and row["extra_fields"]["bpo_prefix"] == prefix


def test_every_response_token_has_vllms_log_prob_and_it_is_the_models(bpo_worker, fake_tq, vllm_model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    rows = run_prompt(bpo_worker, fake_tq, logit_bias={bpo_worker.tokenizer.eos_token_id: -100.0})
    model = AutoModelForCausalLM.from_pretrained(vllm_model_dir, torch_dtype=torch.float32).eval()
    for row, call in pair(rows, bpo_worker.client.calls):
        response = row["responses"].tolist()
        logprobs = row["rollout_log_probs"].tolist()
        assert len(logprobs) == len(response) == len(call.output.log_probs) > 0
        ids = torch.tensor([row["prompts"].tolist() + response])
        with torch.no_grad():
            logits = model(ids).logits[0, :-1].float()
        logits[:, bpo_worker.tokenizer.eos_token_id] -= 100.0  # the request's logit_bias (vLLM's processed log-probs)
        reference = torch.log_softmax(logits, dim=-1)
        start = row["prompts"].numel() - 1
        expected = [float(reference[start + i, t]) for i, t in enumerate(response)]
        assert torch.allclose(torch.tensor(logprobs), torch.tensor(expected), atol=1e-3), (logprobs, expected)


def test_eos_and_length_stops(bpo_worker, fake_tq):
    eos, budget = bpo_worker.tokenizer.eos_token_id, bpo_worker.config.actor_rollout_ref.rollout.response_length
    stopped = run_prompt(bpo_worker, fake_tq, uid="eos", logit_bias={eos: 100.0})  # eos is all but certain
    assert [r["responses"].tolist() for r in stopped] == [[eos]] * 4
    assert all(r["response_mask"].tolist() == [1] for r in stopped)
    close = bpo_worker.tokenizer.convert_tokens_to_ids("</think>")
    # eos and </think> never: every response runs to the length limit, the thinking ones inside their block
    cut = run_prompt(bpo_worker, fake_tq, uid="len", logit_bias={eos: -100.0, close: -100.0})
    assert [r["responses"].numel() for r in cut] == [budget] * 4
    assert all(eos not in r["responses"].tolist() for r in cut)
    # cut inside an open think block: thinking; after the closed empty block: not
    assert [r["extra_fields"]["bpo_chosen_mode"] for r in cut] == ["think", "think", "no_think", "no_think"]


def test_validation_in_auto_mode_records_the_chosen_mode(bpo_worker, fake_tq):
    rows = run_prompt(bpo_worker, fake_tq, validate=True, uid="val")
    tok = bpo_worker.tokenizer
    assert len(rows) == 2  # val_kwargs.n sessions
    for row, call in pair(rows, bpo_worker.client.calls):
        assert call.prompt_ids == base_prompt_ids(tok) + tok.encode(AUTO_PREFIX, add_special_tokens=False)
        assert row["extra_fields"]["bpo_mode"] == "auto"
        # the verdict is the contract's, on what vLLM generated
        assert row["extra_fields"]["bpo_chosen_mode"] == chosen_mode(tok.decode(call.token_ids), AUTO_PREFIX)
        info = row["extra_fields"]["reward_extra_info"]
        assert info["bpo_think"] == (1.0 if row["extra_fields"]["bpo_chosen_mode"] == "think" else 0.0)


def test_bpo_fields_reach_verls_reward(bpo_worker, fake_tq):
    rows = run_prompt(bpo_worker, fake_tq, uid="rw")
    for row in rows:
        fields, info = row["extra_fields"], row["extra_fields"]["reward_extra_info"]
        # what reward_probe.compute_score saw in extra_info, echoed back by verl's RewardLoopWorker
        assert info["probe_mode"] == MODES.index(fields["bpo_mode"])
        assert info["probe_chosen_mode"] == MODES.index(fields["bpo_chosen_mode"])
        assert info["probe_prefix_chars"] == len(fields["bpo_prefix"])
        assert info["bpo_response_length"] == row["responses"].numel()  # the BPO worker's additions too
