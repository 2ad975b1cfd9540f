"""Tiny, offline model assets: a byte-level BPE tokenizer with think tags and a random Qwen2 LM.

Nothing is downloaded. The tokenizer is trained on the fly by ``tokenizers`` and carries a
Qwen-style chat template; ``<think>`` / ``</think>`` are *added, non-special* tokens, as in
Qwen3, so verl's ``decode(skip_special_tokens=True)`` keeps them in ``solution_str``.
The model has random weights: it exercises every code path (generation, log-probs, FSDP
updates, checkpointing) at CPU speed; it does not learn anything useful in a few steps.
"""

from __future__ import annotations

import os
import random

from r4b_verl.think import THINK_CLOSE, THINK_OPEN

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# Qwen2.5/Qwen3-style ChatML template (no tool handling): what verl's token builder renders.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _corpus(n_lines: int = 2000, seed: int = 0) -> list[str]:
    """Chat-shaped arithmetic text, enough for BPE merges on digits, tags and common words.

    Fixed text, not the toy task's (``r4b_verl.demo.toy_math``): the tokenizer's ids do not move when the
    task does (tests pin token ids). Any text tokenizes (byte-level); the corpus only decides the merges.
    """
    rng = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        a, b = rng.randint(0, 999), rng.randint(0, 999)
        lines.append(
            f"<|im_start|>user\nWhat is {a} + {b}? Put the final answer in \\boxed{{}}.<|im_end|>\n"
            f"<|im_start|>assistant\n{THINK_OPEN}\nLet me add {a} and {b} step by step.\n{THINK_CLOSE}\n\n"
            f"The answer is \\boxed{{{a + b}}}.<|im_end|>\n"
        )
    return lines


# Qwen2's pre-tokenizer split (transformers' Qwen2Tokenizer): digits one by one, a run of newlines one piece.
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def build_tokenizer(out_dir: str | os.PathLike | None = None, vocab_size: int = 512, qwen_split: bool = False):
    r"""Train a byte-level BPE tokenizer and wrap it as a ``PreTrainedTokenizerFast``.

    Returns the tokenizer; with ``out_dir`` it is also saved there (``AutoTokenizer`` loadable).

    ``qwen_split=True`` trains on Qwen2's pre-tokenizer split (:data:`QWEN2_SPLIT`, what ``AutoTokenizer``
    applies anyway once a Qwen2 ``config.json`` sits next to the tokenizer) instead of GPT-2's, so that
    ``"\n\n"`` gets its own BPE merge, as in Qwen's tokenizers: the r4b think prefix ``<think>\n`` is then
    *not* a token prefix of the no-think prefix ``<think>\n\n</think>`` (``<think>`` + one ``\n\n`` token),
    and forcing it really forces thinking (with two ``\n`` tokens the model could close the block empty
    right after it). The demo's tokenizer uses it; the default keeps the GPT-2 split, where the think
    prefix is a token prefix of the no-think one (the case ``bpo.train_mode_token`` tests exercise).
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AddedToken, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    if qwen_split:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
    else:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = _corpus()
    if qwen_split:
        # The trainer sees the think tags as plain text, so ">\n\n" is one piece and the blank line after a
        # tag never stands alone; once the tags are added tokens it does ("</think>", "\n\n", ...): these
        # lines give it its merge.
        corpus += ["\n\n"] * 1000
    tok.train_from_iterator(corpus, trainer=trainer)

    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=["<|im_start|>"],
    )
    hf.add_tokens([AddedToken(THINK_OPEN, special=False), AddedToken(THINK_CLOSE, special=False)])
    hf.chat_template = CHAT_TEMPLATE
    hf.padding_side = "left"
    if out_dir is not None:
        hf.save_pretrained(str(out_dir))
    return hf


def lm_config(tokenizer, hidden_size: int = 64, num_layers: int = 2) -> dict:
    """The tiny language model's Qwen2 settings, shared by the text model and the VL model's LM."""
    return dict(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def build_model(out_dir: str | os.PathLike | None, tokenizer, hidden_size: int = 64, num_layers: int = 2,
                seed: int = 0):
    """A random Qwen2 causal LM sized to ``tokenizer`` (about 0.1M parameters at the defaults)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    config = Qwen2Config(**lm_config(tokenizer, hidden_size, num_layers), torch_dtype="float32")
    model = Qwen2ForCausalLM(config)
    if out_dir is not None:
        model.save_pretrained(str(out_dir))
        tokenizer.save_pretrained(str(out_dir))
    return model
