"""The loop driven directly, as verl's own agent-loop tests drive SingleTurnAgentLoop: built by hand, run() called
with the kwargs verl's worker passes. Training modes by session_id; validation only when told so."""

import asyncio

import pytest
from bpo_rollout_testlib import PROMPT, FakeServer
from transformers import AutoTokenizer
from verl.experimental.agent_loop.agent_loop import DictConfigWrap
from verl.experimental.agent_loop.single_turn_agent_loop import SingleTurnAgentLoop
from verl.utils.dataset.rl_dataset import RLHFDataset

from r4b_verl.rollout.agent_loop import BPOBiModeAgentLoop, rollout_phase


class Direct:
    """One hand-built loop in its own event loop (AgentLoopBase binds the running loop at construction)."""

    def __init__(self, config, loop_cls=BPOBiModeAgentLoop):
        self.tok = AutoTokenizer.from_pretrained(config.actor_rollout_ref.model.path)
        self.server = FakeServer(self.tok)
        self.event_loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.event_loop)
        self.loop = loop_cls(trainer_config=DictConfigWrap(config), server_manager=self.server, tokenizer=self.tok,
                             processor=None, dataset_cls=RLHFDataset, data_config=DictConfigWrap(config.data))

    def drive(self, session_id=0, **kwargs):
        """run() with what AgentLoopWorker._run_agent_loop passes for one dataset row."""
        row = {"raw_prompt": PROMPT, "uid": "u0", "index": 0, "global_steps": 1, "session_id": session_id,
               "data_source": "toy", "extra_info": {}, **kwargs}
        return self.event_loop.run_until_complete(self.loop.run({"temperature": 1.0, "logprobs": True}, **row))


@pytest.fixture
def build(compose):
    made = []

    def _build(*overrides, loop_cls=BPOBiModeAgentLoop):
        made.append(Direct(compose(*overrides), loop_cls))
        return made[-1]

    yield _build
    for direct in made:
        direct.event_loop.close()
    asyncio.set_event_loop(None)


def test_it_is_a_single_turn_agent_loop_that_keeps_verls_run_for_the_rest():
    assert issubclass(BPOBiModeAgentLoop, SingleTurnAgentLoop)
    # only the prompt builder and the mode bookkeeping around run() are ours
    assert BPOBiModeAgentLoop.ct_build_initial_tokens is not SingleTurnAgentLoop.ct_build_initial_tokens


@pytest.mark.parametrize("session_id, mode, suffix", [(0, "think", "<think>\n"), (1, "think", "<think>\n"),
                                                       (2, "no_think", "<think>\n\n</think>"),
                                                       (3, "no_think", "<think>\n\n</think>")])
def test_training_mode_follows_the_session(build, session_id, mode, suffix):
    d = build()  # rollout.n=4, think_fraction 0.5: sessions 0-1 think, 2-3 do not
    out = d.drive(session_id=session_id)
    (call,) = d.server.calls
    assert d.tok.decode(call.prompt_ids).endswith("assistant\n" + suffix)
    assert out.extra_fields["bpo_mode"] == mode and out.extra_fields["bpo_prefix"] == suffix
    assert out.prompt_ids == call.prompt_ids and out.response_ids == call.token_ids[: d.loop.response_length]
    assert out.extra_fields["turn_scores"] == [] and out.extra_fields["tool_rewards"] == []  # verl's schema kept


def test_prompt_is_verls_prompt_plus_the_prefix(build):
    # the same row through verl's own loop: our prompt is exactly its prompt ids, then the mode prefix
    ours, theirs = build(), build(loop_cls=SingleTurnAgentLoop)
    ours.drive(session_id=3)
    theirs.drive(session_id=3)
    assert ours.server.calls[0].prompt_ids == theirs.server.calls[0].prompt_ids + ours.tok.encode(
        "<think>\n\n</think>", add_special_tokens=False)


def test_validation_when_told(build):
    d = build()
    with rollout_phase(validate=True):
        out = d.drive(session_id=0)
    assert d.tok.decode(d.server.calls[0].prompt_ids).endswith("assistant\n<think>")
    assert out.extra_fields["bpo_mode"] == "auto"
    assert out.extra_fields["bpo_chosen_mode"] == "think"  # the fake reply reasons before </think>


def test_phase_is_scoped_to_its_block(build):
    d = build()
    with rollout_phase(validate=True):
        pass
    assert d.drive(session_id=2).extra_fields["bpo_mode"] == "no_think"  # training again


def test_forced_validation_mode_when_told(build):
    d = build("+bpo.val_mode=no_think")
    with rollout_phase(validate=True):
        assert d.drive(session_id=0).extra_fields["bpo_mode"] == "no_think"


def test_mode_token_moves_into_the_response_when_driven_directly(build):
    # tiny BPE: "<think>\n" alone is a prefix of the no-think ids, so the think prefix gets a word
    d = build("+bpo.train_mode_token=true", "+bpo.think_prefix='<think>\nLet'",
              "actor_rollout_ref.rollout.calculate_log_probs=true")
    out = d.drive(session_id=0)
    (call,) = d.server.calls
    moved = d.loop.prefixes.decision_tail("think")
    assert moved and out.prompt_ids == call.prompt_ids[: -len(moved)]
    assert out.response_ids[: len(moved)] == moved and out.response_mask[0] == 1
    assert call.sampling_params["max_tokens"] == d.loop.response_length - len(moved)


@pytest.mark.parametrize("mode", ["think", "no_think", "auto"])
@pytest.mark.parametrize("reply", ["\nreasoning\n</think>\n\n42", "\n\n</think>\n\n42", "</think>42", "no close at all",
                                   "a </think> b <think> c </think> d", "\n\n</think>\n<think>late</think>x", ""])
def test_chosen_mode_reads_the_same_as_the_whole_decoded_response(build, mode, reply):
    # the loop decodes only up to the first </think>; the verdict must be the contract's on the full text
    from r4b_verl.think import chosen_mode

    d = build()
    d.loop.mode = mode
    ids = d.tok.encode(reply, add_special_tokens=False)
    opened = d.loop.prefixes.preset.template_opens + d.tok.decode(d.loop.prefixes.ids[mode])
    assert d.loop.chosen_mode(ids, []) == chosen_mode(d.tok.decode(ids), opened)


def test_reading_a_head_of_the_response_gives_the_full_verdict_on_random_responses(build):
    # tags whole and in pieces, whitespace, words, a multibyte character the BPE splits across tokens
    import random

    from r4b_verl.think import chosen_mode, read_chosen_mode

    d = build()
    pieces = [" ", "\n", "\n\n", "<think>", "</think>", "</", "think", ">", "<", "Let", " 42", "\u3000", "\u00e9", "x"]
    ids_of = {p: d.tok.encode(p, add_special_tokens=False) for p in pieces}
    rng = random.Random(0)
    for opened in ["<think>", "<think>\n", "<think>\n\n</think>", "", "<think>\nLet"]:
        for _ in range(300):
            ids = [i for p in rng.choices(pieces, k=rng.randint(0, 60)) for i in ids_of[p]]
            if rng.random() < 0.3:  # cut a multibyte character's bytes apart
                ids = ids[: rng.randint(0, len(ids))]
            expected = chosen_mode(d.tok.decode(ids), opened)
            assert read_chosen_mode(d.tok.decode, ids, opened, first=rng.choice([1, 2, 8])) == expected, (opened, ids)
