"""Every start-up refusal: raised when verl's agent-loop worker starts, naming the key to change."""

import pytest
from bpo_rollout_testlib import QWEN3_TEMPLATE, R1_TEMPLATE, run_session, with_template

from r4b_verl.rollout.options import BPOConfigError
from r4b_verl.rollout.prefixes import PrefixConfigError


@pytest.mark.parametrize(
    "overrides, match",
    [
        (["+bpo.think_fraction=0"], r"bpo\.think_fraction"),
        (["+bpo.think_fraction=1.0"], r"bpo\.think_fraction"),
        (["+bpo.think_fraction=1.5"], r"bpo\.think_fraction"),
        (["+bpo.think_fraction=half"], r"bpo\.think_fraction"),
        (["+bpo.think_fraction=0.1"], r"rollout\.n=4 with bpo\.think_fraction=0\.1 does not split into whole groups"),
        (["+bpo.think_fraction=0.9"], r"\(3\.6 thinking responses per prompt\)"),
        (["actor_rollout_ref.rollout.n=1"], r"actor_rollout_ref\.rollout\.n=1"),
        # 1.5 thinking responses: no silent rounding to 2 + 1
        (["actor_rollout_ref.rollout.n=3"], r"rollout\.n=3 with bpo\.think_fraction=0\.5 does not split into whole"),
        (["+bpo.prefix_tokens=-1"], r"bpo\.prefix_tokens"),
        (["+bpo.thinkfraction=0.5"], r"unknown key\(s\) bpo\.thinkfraction \(did you mean bpo\.think_fraction\?\)"),
        (["+bpo.val_mode=sometimes"], r"bpo\.val_mode"),
        (["+bpo.train_mode_token=maybe"], r"bpo\.train_mode_token"),
        (["+bpo.prefix_preset=qwen9"], r"bpo\.prefix_preset='qwen9' is unknown"),
        (["+bpo.prefix_preset=custom", "+bpo.think_prefix=x"], r"bpo\.no_think_prefix, bpo\.auto_prefix"),
        (["+bpo.no_think_prefix='<think>\n'"], r"think and no_think prefixes are both"),
        (["trainer.use_v1=false"], r"trainer\.use_v1=true"),
        (["data.truncation=sideways"], r"data\.truncation='sideways'"),
        (["actor_rollout_ref.rollout.prompt_length=4"], r"actor_rollout_ref\.rollout\.prompt_length=4"),
        (["+bpo.train_mode_token=true", "actor_rollout_ref.rollout.calculate_log_probs=false",
          "+bpo.think_prefix='<think>\nLet'"], r"calculate_log_probs=true"),
        (["+bpo.train_mode_token=true", "+bpo.think_prefix='<think>\nLet'",
          "actor_rollout_ref.rollout.response_length=2"],
         r"actor_rollout_ref\.rollout\.response_length=2 leaves no room"),
        # tiny BPE: "<think>\n" is a strict prefix of "<think>\n\n</think>", so think has no decision token
        (["+bpo.train_mode_token=true"], r"bpo\.decision_token\.position=response needs a decision token in BOTH"),
    ],
)
def test_config_refused_at_worker_start(compose, make_worker, overrides, match):
    with pytest.raises((BPOConfigError, PrefixConfigError), match=match):
        make_worker(compose(*overrides))


def test_tokenizer_without_think_tokens_refused(compose, make_worker, no_think_model_dir):
    config = compose(f"actor_rollout_ref.model.path={no_think_model_dir}")
    with pytest.raises(PrefixConfigError, match=r"bpo\.prefix_preset=r4b uses '<think>'.*no <think> token"):
        make_worker(config)


def test_template_that_already_opens_the_block_refused(compose, make_worker):
    config = with_template(compose("+bpo.prefix_preset=qwen3"), R1_TEMPLATE)
    tail = r"tail '<\|im_start\|>assistant\\n<think>\\n'"
    with pytest.raises(PrefixConfigError, match=r"bpo\.prefix_preset=qwen3 .*" + tail):
        make_worker(config)


def test_qwen3_template_with_thinking_disabled_refused(compose, make_worker):
    overrides = ("+bpo.prefix_preset=qwen3", "+data.apply_chat_template_kwargs.enable_thinking=false")
    config = with_template(compose(*overrides), QWEN3_TEMPLATE)
    with pytest.raises(PrefixConfigError, match=r"already holds \['<think>', '</think>'\]"):
        make_worker(config)
    # the same template with thinking left to the prefixes is accepted
    make_worker(with_template(compose("+bpo.prefix_preset=qwen3"), QWEN3_TEMPLATE))


def test_r1_preset_needs_a_template_that_opens_the_block(compose, make_worker):
    match = r"bpo\.prefix_preset=r1_distill expects .* ends with '<\|im_start\|>assistant\\n'"
    with pytest.raises(PrefixConfigError, match=match):
        make_worker(compose("+bpo.prefix_preset=r1_distill"))


def test_other_agent_loops_are_left_alone(compose, fake_tq):
    # a run that does not name BPOAgentLoopManager gets verl's own worker: nothing checked (bad n is fine for them)
    from verl.trainer.ppo.v1.agent_loop_tq import AgentLoopWorkerTQ

    config = compose("actor_rollout_ref.rollout.agent.default_agent_loop=single_turn_agent",
                     "actor_rollout_ref.rollout.n=1")
    worker = AgentLoopWorkerTQ.__ray_actor_class__(config, None, None, None)
    assert not any(cls.__module__.startswith("r4b_verl") for cls in type(worker).__mro__)


def test_a_training_row_without_session_id_is_refused(compose, make_worker):
    # the legacy trainer's rows: no session_id, so no way to tell the mode; never silently pick one
    worker = make_worker(compose())
    with pytest.raises(BPOConfigError, match=r"no session_id.*trainer\.use_v1=true"):
        run_session(worker)
    with pytest.raises(BPOConfigError, match=r"__rollout_n__ overrides are not supported"):
        run_session(worker, session_id=4)  # n=4: sessions 0..3 only
    assert worker.test_server.calls == []


def test_prompt_budget_refusal_names_the_effective_truncation(compose, make_worker):
    # data.truncation=null means verl's default "error": prompts near the limit would be refused, so start-up refuses
    with pytest.raises(BPOConfigError, match=r"prompt_length=59 < data\.max_prompt_length=56 .*data\.truncation=error"):
        make_worker(compose("data.truncation=null", "actor_rollout_ref.rollout.prompt_length=59"))
