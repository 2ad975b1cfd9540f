"""Each preset's token ids (tiny BPE tokenizer with <think>/</think> as added tokens), through the loop too."""

import pytest
from bpo_rollout_testlib import R1_TEMPLATE, with_template

from r4b_verl.rollout.prefixes import PRESETS, check_prefixes, resolve_preset
from r4b_verl.think import chosen_mode as detect_chosen_mode

NL = "Ċ"  # byte-level BPE spelling of "\n" (this tokenizer has no "\n\n" merge)
EXPECTED = {
    "r4b": {"think": ["<think>", NL], "no_think": ["<think>", NL, NL, "</think>"], "auto": ["<think>"]},
    "qwen3": {"think": ["<think>", NL], "no_think": ["<think>", NL, NL, "</think>", NL, NL], "auto": ["<think>"]},
    "r1_distill": {"think": [], "no_think": ["</think>", NL, NL], "auto": []},
}


@pytest.fixture(scope="module")
def tokenizer(model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_token_ids(tokenizer, name):
    template = R1_TEMPLATE if name == "r1_distill" else None
    if template:
        tokenizer = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
        tokenizer.chat_template = template
    tokens = check_prefixes(PRESETS[name], tokenizer)
    think_id, close_id = tokenizer.convert_tokens_to_ids("<think>"), tokenizer.convert_tokens_to_ids("</think>")
    assert tokenizer.convert_tokens_to_ids(["<think>", "</think>"]) == [think_id, close_id]
    for mode, pieces in EXPECTED[name].items():
        assert tokenizer.convert_ids_to_tokens(tokens.ids[mode]) == pieces, mode
        assert tokenizer.decode(tokens.ids[mode]) == PRESETS[name].prefix(mode)  # round trip, tags kept


def test_free_string_overrides_and_custom(tokenizer):
    preset = resolve_preset("r4b", no_think_prefix="<think>\n</think>\n")
    assert (preset.think, preset.no_think, preset.auto) == ("<think>\n", "<think>\n</think>\n", "<think>")
    custom = resolve_preset("custom", think_prefix="<think>\nOkay", no_think_prefix="<think></think>", auto_prefix="")
    tokens = check_prefixes(custom, tokenizer)
    assert tokenizer.decode(tokens.ids["think"]) == "<think>\nOkay" and tokens.ids["auto"] == []


def test_r1_preset_through_the_loop(compose, make_worker, fake_tq, helpers):
    worker = make_worker(with_template(compose("+bpo.prefix_preset=r1_distill", "actor_rollout_ref.rollout.n=2"),
                                       R1_TEMPLATE))
    rows = helpers.run_prompt(worker, fake_tq)
    tok = worker.tokenizer
    think_prompt, no_think_prompt = (c.prompt_ids for c in worker.test_server.calls)
    assert tok.decode(think_prompt).endswith("<|im_start|>assistant\n<think>\n")  # the template's own opening only
    assert no_think_prompt == think_prompt + tok.encode("</think>\n\n", add_special_tokens=False)
    # the fake reply thinks ("\nLet me add.\n</think>..."): inside the block opened by the template
    assert [r["extra_fields"]["bpo_chosen_mode"] for r in rows] == ["think", "no_think"]


@pytest.mark.parametrize(
    "response, opened, chosen",
    [
        ("\n\n</think>\n\nThe answer is 42.", "<think>", "no_think"),  # empty block: the R-4B non-thinking form
        ("</think>The answer is 42.", "<think>", "no_think"),
        ("\nFirst add the tens.\n</think>\n\n42", "<think>", "think"),
        ("\nStill thinking when the length ran out", "<think>", "think"),  # unterminated block thinks
        ("The answer is 42.", "", "no_think"),  # no block opened at all
        ("<think>\nhmm\n</think>42", "", "think"),
        ("</think>\n\n42", "<think>\n", "no_think"),  # r1: the template opened "<think>\n"
        ("Okay, 12 + 30 = 42.</think>42", "<think>\n", "think"),
    ],
)
def test_detect_chosen_mode(response, opened, chosen):
    assert detect_chosen_mode(response, opened) == chosen
