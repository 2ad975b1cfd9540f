"""The stage-1 / stage-2 token contract, checked token by token with verl's own MultiTurnSFTDataset.

For each preset, a tiny tokenizer with a matching template; the built parquet is tokenised by
MultiTurnSFTDataset exactly as the SFT trainer will, and the trained tokens must start with the
prefix ids the rollout forces (r4b_verl.rollout.prefixes), after exactly the stage-2 prompt ids.
"""

from __future__ import annotations

import pandas as pd
import pytest

from r4b_verl.anneal.build import BadRowsError, build
from r4b_verl.anneal.contract import VERBATIM_CHATML, ContractError, TemplateContractError, check_template
from r4b_verl.demo.tiny import CHAT_TEMPLATE
from r4b_verl.rollout.prefixes import PRESETS, PrefixConfigError, resolve_preset, tokenize_prefixes

# Same shapes as tests/rollout/bpo_rollout_testlib.py (copied: that module pulls the rollout test stack).
QWEN3_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{% if enable_thinking is defined and enable_thinking is false %}{{ '<think>\\n\\n</think>\\n\\n' }}{% endif %}"
    "{% endif %}"
)
R1_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n<think>\\n' }}{% endif %}"
)
# Qwen3's real logic: an assistant turn keeps its think block only after the last user query, so an
# assistant message rendered alone (as MultiTurnSFTDataset does) loses reasoning and tags.
QWEN3_STRIPPING_TEMPLATE = (
    "{%- set ns = namespace(last_user=-1) %}"
    "{%- for m in messages %}{%- if m.role == 'user' %}{%- set ns.last_user = loop.index0 %}{%- endif %}{%- endfor %}"
    "{%- for m in messages %}"
    "{%- if m.role == 'assistant' %}"
    "{%- set content = m.content %}{%- set reasoning = '' %}"
    "{%- if '</think>' in content %}"
    "{%- set reasoning = content.split('</think>')[0].split('<think>')[-1].strip('\\n') %}"
    "{%- set content = content.split('</think>')[-1].lstrip('\\n') %}{%- endif %}"
    "{%- if ns.last_user >= 0 and loop.index0 > ns.last_user %}"
    "{{ '<|im_start|>assistant\\n<think>\\n' + reasoning + '\\n</think>\\n\\n' + content + '<|im_end|>\\n' }}"
    "{%- else %}{{ '<|im_start|>assistant\\n' + content + '<|im_end|>\\n' }}{%- endif %}"
    "{%- else %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{%- endif %}"
    "{%- endfor %}{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}"
)
# Templates that write an empty block in front of every assistant turn (history turns without reasoning).
INJECTING_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['role'] == 'assistant' %}{{ '<think>\\n\\n</think>\\n\\n' }}{% endif %}"
    "{{ message['content'] + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
TEMPLATES = {"r4b": CHAT_TEMPLATE, "qwen3": QWEN3_TEMPLATE, "r1_distill": R1_TEMPLATE}

PROMPT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 12 + 30?"}]
REASONING = "Add 12 and 30: 42."
ANSWER = "The answer is \\boxed{42}."


def labelled():
    return pd.DataFrame(
        [
            {"data_source": "toy", "prompt": PROMPT, "label": "reasoning", "reasoning": REASONING, "answer": ANSWER},
            {"data_source": "toy", "prompt": PROMPT[1:], "label": "direct", "reasoning": None, "answer": ANSWER},
        ]
    )


def verl_items(frame, tokenizer, tmp_path):
    """The built rows as verl's SFT trainer tokenises them (its dataset class, its default keys)."""
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    path = tmp_path / "sft.parquet"
    frame.to_parquet(path)
    dataset = MultiTurnSFTDataset(str(path), tokenizer, {"max_length": 512, "pad_mode": "no_padding"})
    return [dataset[i] for i in range(len(dataset))]


@pytest.mark.parametrize("preset_name", ["r4b", "qwen3", "r1_distill"])
def test_trained_tokens_start_with_the_forced_prefix(preset_name, tokenizer_with, tmp_path):
    tok = tokenizer_with(TEMPLATES[preset_name])
    preset = PRESETS[preset_name]
    result = build(labelled(), preset=preset_name, tokenizer=tok, both_modes=True)
    assert not result.bad
    # both modes of the reasoning row, the direct row's one sample
    assert result.samples["mode"].tolist() == ["think", "no_think", "no_think"]
    assert result.samples["source_index"].tolist() == [0, 0, 1]
    prefix = tokenize_prefixes(preset, tok).ids
    auto = prefix["auto"]
    assert prefix["think"][: len(auto)] == auto and prefix["no_think"][: len(auto)] == auto
    items = verl_items(result.samples, tok, tmp_path)
    seen = set()
    for (_, row), item in zip(result.samples.iterrows(), items, strict=True):
        ids, mask = item["input_ids"].tolist(), item["loss_mask"].tolist()
        start = mask.index(1)
        assert all(mask[start:]), "everything after the generation prompt is trained"
        # Stage 2: the prompt rendered with the generation prompt, then the mode prefix ids.
        prompt = [dict(m) for m in row["messages"][:-1]]
        stage2 = tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True)["input_ids"]
        assert ids[:start] == stage2, preset_name
        forced = prefix[row["mode"]]
        assert ids[start : start + len(forced)] == forced, (preset_name, row["mode"], tok.decode(ids[start:]))
        assert ids[start : start + len(auto)] == auto
        trained = tok.decode(ids[start:])
        if row["mode"] == "think":
            assert REASONING in trained and trained.count("</think>") == 1
        assert trained.endswith(ANSWER + "<|im_end|>\n")
        seen.add(row["mode"])
    assert seen == {"think", "no_think"}


def test_r4b_token_ids_exactly(tokenizer_with, tmp_path):
    """Spelled out for r4b: think rows train <think> \\n first, direct rows <think> \\n \\n </think>."""
    tok = tokenizer_with(CHAT_TEMPLATE)
    think, close, nl = (tok.convert_tokens_to_ids(t) for t in ("<think>", "</think>", "Ċ"))
    result = build(labelled(), preset="r4b", tokenizer=tok)
    by_mode = dict(zip(result.samples["mode"], verl_items(result.samples, tok, tmp_path), strict=True))
    for mode, head in (("think", [think, nl]), ("no_think", [think, nl, nl, close, nl, nl])):
        ids, mask = by_mode[mode]["input_ids"].tolist(), by_mode[mode]["loss_mask"].tolist()
        start = mask.index(1)
        assert tok.decode(ids[start - 3 : start]) == "<|im_start|>assistant\n"
        assert ids[start : start + len(head)] == head, mode


def test_demo_tokenizer_forces_thinking(tmp_path):
    """The demo's tokenizer (Qwen2 split, "\\n\\n" one token as in Qwen's): r4b's think prefix is not a token
    prefix of its no-think prefix, so a model forced to think cannot close the block empty along a trained path,
    and the built samples still start with the exact forced ids."""
    from transformers import AutoTokenizer

    from r4b_verl.demo.tiny import build_model, build_tokenizer

    build_model(tmp_path / "m", build_tokenizer(qwen_split=True))
    tok = AutoTokenizer.from_pretrained(tmp_path / "m")  # as verl loads it (the Qwen2 tokenizer class)
    think, close, nl, nl2 = (tok.convert_tokens_to_ids(t) for t in ("<think>", "</think>", "Ċ", "ĊĊ"))
    assert nl2 != tok.unk_token_id and len({think, close, nl, nl2}) == 4
    prefixes = tokenize_prefixes(PRESETS["r4b"], tok)
    assert prefixes.ids["think"] == [think, nl] and prefixes.ids["no_think"] == [think, nl2, close]
    assert prefixes.decision_index == 1  # the first token after <think> decides: \n (think) or \n\n (no think)
    result = build(labelled(), preset="r4b", tokenizer=tok)
    by_mode = dict(zip(result.samples["mode"], verl_items(result.samples, tok, tmp_path), strict=True))
    for mode, head in (("think", [think, nl]), ("no_think", [think, nl2, close, nl2])):
        ids, mask = by_mode[mode]["input_ids"].tolist(), by_mode[mode]["loss_mask"].tolist()
        start = mask.index(1)
        assert ids[start : start + len(head)] == head, mode
    think_ids, think_mask = by_mode["think"]["input_ids"].tolist(), by_mode["think"]["loss_mask"].tolist()
    assert think_ids[think_mask.index(1) + 2] not in (nl, nl2, close)  # reasoning follows, not an empty block


def test_qwen3_stripping_template_is_refused(tokenizer_with):
    tok = tokenizer_with(QWEN3_STRIPPING_TEMPLATE)
    with pytest.raises(TemplateContractError) as info:
        build(labelled(), preset="qwen3", tokenizer=tok)
    message = str(info.value)
    assert "think sample" in message and "drops the reasoning" in message
    assert "model.custom_chat_template" in message and "VERBATIM_CHATML" in message
    assert "actor_rollout_ref.model.custom_chat_template" in message


def test_injecting_template_is_refused(tokenizer_with):
    tok = tokenizer_with(INJECTING_TEMPLATE)
    with pytest.raises(TemplateContractError, match="injects an extra \\(empty\\) think block"):
        check_template(PRESETS["r4b"], tok)


def test_verbatim_template_is_the_fix(tokenizer_with):
    tok = tokenizer_with(VERBATIM_CHATML)
    for name in ("r4b", "qwen3"):
        assert check_template(PRESETS[name], tok).ids["think"] == tok.encode("<think>\n", add_special_tokens=False)


def test_preset_template_mismatch_is_refused(tokenizer_with):
    # r1_distill relies on the template opening the block; the plain ChatML template does not
    with pytest.raises(PrefixConfigError, match="expects the chat template to open the think block"):
        build(labelled(), preset="r1_distill", tokenizer=tokenizer_with(CHAT_TEMPLATE))
    # and r4b appends its own <think>, which an R1 template already opened
    with pytest.raises(PrefixConfigError, match="already holds"):
        build(labelled(), preset="r4b", tokenizer=tokenizer_with(R1_TEMPLATE))


def test_auto_prefix_must_prefix_both(tokenizer_with):
    preset = resolve_preset("r4b", auto_prefix="<think>\n\n")
    with pytest.raises(ContractError, match="auto prefix ids .* are not a prefix of the think prefix"):
        check_template(preset, tokenizer_with(CHAT_TEMPLATE))


def test_row_with_reasoning_that_breaks_the_tokens(tokenizer_with, monkeypatch):
    """Rows checked one by one: a row whose tokens break the contract is named, the others pass."""
    import r4b_verl.anneal.build as builder

    tok = tokenizer_with(CHAT_TEMPLATE)
    real = builder.assistant_content

    def content(preset, mode, answer, reasoning=""):
        # stands for text whose tokens differ from the prefix ids at the boundary (as a BPE merge would)
        text = real(preset, mode, answer, reasoning)
        return text.replace("<think>\n", "<think> \n", 1) if "MERGE" in reasoning else text

    monkeypatch.setattr(builder, "assistant_content", content)
    frame = pd.DataFrame(
        [
            {"data_source": "toy", "prompt": PROMPT, "label": "reasoning", "reasoning": "fine", "answer": ANSWER},
            {"data_source": "toy", "prompt": PROMPT, "label": "reasoning", "reasoning": "MERGE", "answer": ANSWER},
        ]
    )
    with pytest.raises(BadRowsError, match="row 1 \\(think\\): contract: the first trained tokens"):
        build(frame, preset="qwen3", tokenizer=tok)
    result = build(frame, preset="qwen3", tokenizer=tok, on_bad_row="skip")
    assert result.samples["source_index"].tolist() == [0]
    assert [(b.row, b.reason) for b in result.bad] == [(1, "contract")]
