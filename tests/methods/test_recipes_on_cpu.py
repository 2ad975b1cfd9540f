"""Each method's recipe composes in verl's Hydra config (GPU and CPU overlay) with the effect it promises,
and passes the BPO worker's decision-token checks. In process (Hydra's compose API): seconds, not a
trainer start-up each; the one-step training of every recipe is tests/e2e/test_compare_on_cpu.py."""

import math

import pytest
import verl  # noqa: F401 - loads the plugin
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from r4b_verl.rollout.options import BPOConfigError, BPORolloutOptions
from r4b_verl.rollout.worker import check_decision_loss
from r4b_verl.think import ELLIPSIS_AUTO_PREFIX

EXPECTED = {  # recipe -> (adv_estimator, loss_mode, train_mode, decision position, weight, reward method)
    "r4b_adaptthink": ("adaptthink", "r4b_decision", "forced", "response", None, "adaptthink"),
    "r4b_autothink": ("autothink", "vanilla", "auto", "prompt", None, "autothink"),
    "r4b_thinkless": ("grpo", "r4b_decision", "auto", "response", 0.001, "thinkless"),
    "r4b_adagrpo": ("ada_grpo", "vanilla", "auto", "prompt", None, "ada_grpo"),
    "r4b_grpo": ("grpo", "vanilla", "auto", "prompt", None, None),
}


def composed(recipe, *overrides):
    with initialize_config_module("verl.trainer.config", version_base=None):
        gpu = [] if recipe.endswith("_cpu") else ["actor_rollout_ref.rollout.name=vllm"]  # make train's ROLLOUT=
        cfg = compose("ppo_trainer", overrides=[f"+recipe={recipe}", *gpu, *overrides])
    OmegaConf.resolve(cfg)  # as verl's TaskRunner does before building the workers
    return cfg


@pytest.mark.parametrize("overlay", ["", "_cpu"])
@pytest.mark.parametrize("recipe", sorted(EXPECTED))
def test_recipe_composes_with_its_method(recipe, overlay):
    from verl.utils.config import omega_conf_to_dataclass

    cfg = composed(recipe + overlay)
    estimator, loss_mode, train_mode, position, weight, method = EXPECTED[recipe]
    assert "recipe" not in cfg  # composed, not a plain key
    assert cfg.algorithm.adv_estimator == estimator
    assert cfg.actor_rollout_ref.actor.policy_loss.loss_mode == loss_mode
    assert cfg.bpo.train_mode == train_mode
    assert cfg.bpo.decision_token.position == position and cfg.bpo.decision_token.weight == weight
    assert cfg.actor_rollout_ref.rollout.agent.agent_loop_manager_class == "r4b_verl.rollout.worker.BPOAgentLoopManager"
    reward = cfg.reward.custom_reward_function
    if method is None:
        assert reward.path == "pkg://r4b_verl.reward"
    else:
        assert reward.path == "pkg://r4b_verl.methods.rewards" and reward.reward_kwargs.method.name == method
    options = BPORolloutOptions.from_trainer_config(cfg)
    check_decision_loss(options, cfg.actor_rollout_ref.actor.policy_loss)  # the worker's start-up check
    loss = omega_conf_to_dataclass(cfg.actor_rollout_ref.actor.policy_loss)  # what verl's actor builds
    if loss_mode == "r4b_decision":
        assert type(loss).__name__ == "DecisionTokenLossConfig" and loss.decision_weight == weight
    if overlay:
        assert cfg.trainer.device == "cpu" and cfg.actor_rollout_ref.rollout.name == "hf_cpu"
        assert cfg.actor_rollout_ref.rollout.n == 4  # the CPU sizes win over the paper's
    else:
        assert cfg.actor_rollout_ref.rollout.name == "vllm"


def test_paper_settings():
    at = composed("r4b_adaptthink")
    assert at.actor_rollout_ref.actor.policy_loss.base_loss_mode == "gspo"
    assert at.actor_rollout_ref.actor.loss_agg_mode == "seq-mean-token-mean"
    assert at.actor_rollout_ref.actor.policy_loss.decision_old_log_prob == pytest.approx(math.log(0.5))
    assert at.reward.custom_reward_function.reward_kwargs.method.delta == 0.05
    assert (at.actor_rollout_ref.rollout.n, at.actor_rollout_ref.actor.use_kl_loss) == (16, False)
    auto = composed("r4b_autothink")
    assert auto.bpo.auto_prefix == ELLIPSIS_AUTO_PREFIX and auto.algorithm.autothink.stage == 1
    assert composed("r4b_thinkless").algorithm.norm_adv_by_std_in_grpo is False
    ada = composed("r4b_adagrpo")
    assert ada.actor_rollout_ref.actor.kl_loss_coef == 0.001 and ada.actor_rollout_ref.rollout.n == 8


def test_one_setting_for_the_decision_token_weight():
    # the loss reads the weight through the recipe's interpolation: one key for the user
    cfg = composed("r4b_thinkless", "bpo.decision_token.weight=0.1")
    assert cfg.actor_rollout_ref.actor.policy_loss.decision_weight == 0.1
    # a weight on a loss that cannot apply it is refused at worker start, naming the key
    cfg = composed("r4b_bpo", "bpo.decision_token.weight=0.1")
    with pytest.raises(BPOConfigError, match="policy_loss.loss_mode=r4b_decision"):
        check_decision_loss(BPORolloutOptions.from_trainer_config(cfg), cfg.actor_rollout_ref.actor.policy_loss)
    # AdaptThink's log 0.5 correction with another split is refused
    cfg = composed("r4b_adaptthink", "bpo.think_fraction=0.25")
    with pytest.raises(BPOConfigError, match="think_fraction=0.5"):
        check_decision_loss(BPORolloutOptions.from_trainer_config(cfg), cfg.actor_rollout_ref.actor.policy_loss)


def test_bpo_with_the_decision_token_in_the_response():
    options = BPORolloutOptions.from_trainer_config(composed("r4b_bpo", "bpo.decision_token.position=response"))
    assert options.decision_in_response
    assert not BPORolloutOptions.from_trainer_config(composed("r4b_bpo")).decision_in_response
    # free choice: nothing is forced, so nothing moves (the model generates its decision token)
    free = BPORolloutOptions.from_trainer_config(composed("r4b_thinkless"))
    assert not free.decision_in_response and free.mode_for_session(0, 4) == "auto"


@pytest.mark.parametrize("method", ["bpo_decision", "thinkless", "adaptthink"])
def test_compare_runs_compose_with_the_demo_tokenizers_prefixes(method, tmp_path):
    """make compare's command line for a method composes as verl reads it: the steps, not the epochs, end the
    run (the toy's 64 prompts are 16 steps per epoch), validation every steps // 4, one learning rate for all;
    and with the demo's tokenizer (Qwen's \\n\\n token) the preset's own prefixes part at a single decision
    token: the old "<think>\\nLet" thinking start, off the annealed model's distribution, is gone."""
    from transformers import AutoTokenizer

    from r4b_verl.demo.tiny import build_tokenizer
    from r4b_verl.methods.compare import METHODS, train_command
    from r4b_verl.rollout.prefixes import tokenize_prefixes

    cmd = train_command(method, "MODEL", "t.parquet", "v.parquet", 40, tmp_path, overrides=("trainer.test_freq=5",),
                        lr=5e-4)
    recipe = METHODS[method][0]
    assert cmd[3] == f"+recipe={recipe}"
    cfg = composed(recipe, *cmd[4:])
    assert cfg.trainer.total_training_steps == 40 and cfg.trainer.total_epochs >= 40 // 16 + 1
    assert cfg.trainer.test_freq == 5  # the user's ARGS come last and win over compare's 40 // 4
    assert cfg.actor_rollout_ref.actor.optim.lr == 5e-4
    options = BPORolloutOptions.from_trainer_config(cfg)
    preset = options.preset()
    assert "Let" not in preset.think and preset.auto == "<think>"
    build_tokenizer(tmp_path / "tok", qwen_split=True)
    tok = AutoTokenizer.from_pretrained(tmp_path / "tok")  # as the trainer loads the demo's model directory
    prefixes = tokenize_prefixes(preset, tok)
    first = [tok.decode([prefixes.ids[m][prefixes.decision_index]]) for m in ("think", "no_think")]
    assert first == ["\n", "\n\n"]  # the decision token: one of two single tokens
