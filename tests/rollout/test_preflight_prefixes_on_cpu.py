"""The preflight checks the mode prefixes against a local model's tokenizer, before any worker starts."""

from r4b_verl.preflight import check


def test_a_tokenizer_without_think_tokens_is_refused_before_the_cluster(model_dir, no_think_model_dir):
    base = ["+recipe=r4b_bpo", "bpo.data_check=off", "bpo.prefix_preset=r4b"]
    assert check("ppo", [*base, f"actor_rollout_ref.model.path={model_dir}"]).ok
    report = check("ppo", [*base, f"actor_rollout_ref.model.path={no_think_model_dir}"])
    assert [c for c, _ in report.problems] == [
        "bi-mode rollout: bpo block, split, loss, prompt budget (with the tokenizer)"]
    assert "bpo.prefix_preset=r4b uses '<think>'" in report.problems[0][1]
    assert "no <think> token" in report.problems[0][1]
