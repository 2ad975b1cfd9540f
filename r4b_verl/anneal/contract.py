"""The token contract between stage 1 (bi-mode annealing SFT) and stage 2 (BPO rollouts).

In stage 2 the rollout renders the prompt with ``add_generation_prompt=True`` and appends the mode
prefix ids of ``bpo.prefix_preset`` (:mod:`r4b_verl.rollout.prefixes`). So that the annealed model
has seen exactly that context, a stage-1 sample must, as verl's ``MultiTurnSFTDataset`` tokenises
it (each message rendered alone, pieces concatenated, loss on the assistant tokens after the
generation prompt):

1. hold, before its first trained token, the ids of the stage-2 prompt (the generation prompt
   included, with what the template opens, e.g. r1_distill's ``<think>\\n``);
2. start its trained tokens with the preset's prefix ids of the sample's mode (think prefix for a
   thinking sample, no-think prefix for a direct one);
3. and the auto prefix ids must be a prefix of both, so auto mode continues either sample.

The assistant text is built here (:func:`assistant_content`) and checked by rendering with verl's
own dataset (:func:`render_with_verl`, :func:`check_rendered`). :func:`check_template` runs one probe
sample per mode first and refuses templates that break the contract as a whole (Qwen3's template
drops the reasoning of an assistant message rendered alone; others inject an empty block), naming
the fix: a verbatim template (:data:`VERBATIM_CHATML`) in ``model.custom_chat_template`` for SFT
and ``actor_rollout_ref.model.custom_chat_template`` for the rollout.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from dataclasses import dataclass
from typing import Any

from r4b_verl.rollout.prefixes import PrefixPreset, PrefixTokens, check_prefixes
from r4b_verl.think import NO_THINK, THINK, THINK_CLOSE, THINK_OPEN

# A ChatML template that writes every message's content verbatim (think blocks included): what
# MultiTurnSFTDataset needs, since it renders each message alone. Same shape as the demo's template.
VERBATIM_CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

_FIX = (
    "Fix: give the SFT trainer a template that writes assistant content verbatim, "
    "model.custom_chat_template=<template> (e.g. r4b_verl.anneal.contract.VERBATIM_CHATML, or your model's "
    "template with the reasoning-rewriting branch removed; --chat-template FILE here), and the same one to the "
    "rollout as actor_rollout_ref.model.custom_chat_template."
)


class ContractError(ValueError):
    """The preset, the chat template or the tokenizer cannot give samples the stage-2 token contract."""


class TemplateContractError(ContractError):
    """The chat template rewrites assistant messages rendered alone (the Qwen3-template pitfalls)."""


def clean_text(text: str) -> str:
    """Reasoning / answer text with outer whitespace removed: the sample's own newlines sit around it.

    Without this a reasoning that starts with ``\\n`` would make ``<think>\\n\\n...``, which a Qwen
    tokenizer merges into one ``\\n\\n`` token: the think prefix ids would no longer match.
    """
    return text.strip()


def assistant_content(preset: PrefixPreset, mode: str, answer: str, reasoning: str = "") -> str:
    """The assistant message of a sample: ``template_opens`` + the mode's prefix + its continuation.

    - think: ``<think>\\n{reasoning}\\n</think>\\n\\n{answer}`` (r4b, qwen3, r1_distill all share it; for
      r1_distill the ``<think>\\n`` is what the template opens, masked like the generation prompt);
    - no_think: ``template_opens + no_think prefix`` then newlines up to a blank line, then the answer:
      r4b ``<think>\\n\\n</think>\\n\\n{answer}``, r1_distill ``<think>\\n</think>\\n\\n{answer}``.

    Raises :class:`ContractError` when a (custom) preset's prefix is not the start of that text.
    """
    answer = clean_text(answer)
    if mode == THINK:
        text = f"{THINK_OPEN}\n{clean_text(reasoning)}\n{THINK_CLOSE}\n\n{answer}"
        head = preset.template_opens + preset.think
        if not text.startswith(head):
            raise ContractError(
                f"bpo.prefix_preset={preset.name}: a thinking sample starts {text[: len(head) + 10]!r}, not with "
                f"template_opens + think prefix {head!r}. Use a preset whose think prefix opens the block "
                f"('{THINK_OPEN}\\n') or set bpo.think_prefix / bpo.template_opens accordingly."
            )
        return text
    if mode == NO_THINK:
        head = preset.template_opens + preset.no_think
        if THINK_CLOSE not in head or head.count(THINK_OPEN) != 1:
            raise ContractError(
                f"bpo.prefix_preset={preset.name}: template_opens + no-think prefix is {head!r}; it must hold one "
                f"{THINK_OPEN} and a {THINK_CLOSE} (the empty block). Set bpo.no_think_prefix / bpo.template_opens."
            )
        trailing = len(head) - len(head.rstrip("\n"))
        return head + "\n" * max(0, 2 - trailing) + answer
    raise ValueError(f"mode must be {THINK!r} or {NO_THINK!r}, got {mode!r}")


def check_preset_tokens(preset: PrefixPreset, tokenizer: Any, chat_template_kwargs: dict | None = None) -> PrefixTokens:
    """The rollout's own prefix checks (single-token tags, generation prompt) plus: auto ids prefix both."""
    tokens = check_prefixes(preset, tokenizer, None, chat_template_kwargs)
    auto = tokens.ids["auto"]
    for mode in (THINK, NO_THINK):
        if tokens.ids[mode][: len(auto)] != auto:
            raise ContractError(
                f"bpo.prefix_preset={preset.name}: the auto prefix ids {auto} are not a prefix of the {mode} prefix "
                f"ids {tokens.ids[mode]}: auto mode would not continue into either annealed sample. "
                "Set bpo.auto_prefix to the shared start of the two prefixes."
            )
    return tokens


def stage2_prompt_ids(tokenizer: Any, prompt: list[dict], chat_template_kwargs: dict | None = None) -> list[int]:
    """The prompt ids the rollout builds before its mode prefix (verl's agent loop renders it this way)."""
    from verl.utils.tokenizer.chat_template import apply_chat_template
    from verl.utils.tokenizer.tokenizer import normalize_token_ids

    kwargs = chat_template_kwargs or {}
    out = apply_chat_template(tokenizer, prompt, add_generation_prompt=True, tokenize=True, **kwargs)
    return normalize_token_ids(out)


@dataclass
class Rendered:
    """One sample as MultiTurnSFTDataset tokenises it; ``error`` when verl itself refused it."""

    input_ids: list[int] | None = None
    loss_mask: list[int] | None = None
    error: str | None = None


def render_with_verl(
    samples: list[dict],
    tokenizer: Any,
    chat_template_kwargs: dict | None = None,
    enable_thinking_key: str | None = "enable_thinking",
    progress=None,
) -> list[Rendered]:
    """Tokenise ``samples`` (rows with ``messages``, optionally ``enable_thinking_key``) with verl's
    ``MultiTurnSFTDataset`` itself, through a temporary parquet: what the SFT trainer will see.

    No processor: ``<image>`` stays text here, so an image row's length misses its image tokens.
    verl's ``sanity_check`` (per-message concatenation == whole-conversation render) is kept on; its
    failure is returned as the sample's ``error``.
    """
    import pandas as pd
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    if not samples:
        return []
    columns = ["messages"]
    if enable_thinking_key and enable_thinking_key in samples[0]:
        columns.append(enable_thinking_key)
    frame = pd.DataFrame([{k: s[k] for k in columns} for s in samples])
    config = {
        "max_length": 1 << 30,  # lengths are judged by the caller, against --max-length
        "truncation": "error",
        "pad_mode": "no_padding",
        "apply_chat_template_kwargs": dict(chat_template_kwargs or {}),
        "enable_thinking_key": enable_thinking_key or "enable_thinking",
        "ignore_input_ids_mismatch": False,
    }
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "samples.parquet")
        frame.to_parquet(path)
        with contextlib.redirect_stdout(io.StringIO()):  # verl prints the dataset length
            dataset = MultiTurnSFTDataset(path, tokenizer, config)
        for i in range(len(dataset)):
            try:
                item = dataset[i]
                results.append(Rendered(item["input_ids"].tolist(), item["loss_mask"].tolist()))
            except (AssertionError, ValueError) as exc:  # sanity_check mismatch, template errors
                results.append(Rendered(error=f"{type(exc).__name__}: {str(exc).splitlines()[0]}"))
            if progress is not None:
                progress(i + 1)
    return results


def check_rendered(
    rendered: Rendered,
    mode: str,
    prefix_tokens: PrefixTokens,
    prompt_ids: list[int] | None,
    tokenizer: Any,
    reasoning: str = "",
    answer: str = "",
) -> str | None:
    """None if a rendered sample keeps the contract (module doc, 1-2), else what breaks it."""
    if rendered.error:
        return f"verl's MultiTurnSFTDataset refused the sample ({rendered.error})"
    ids, mask = rendered.input_ids, rendered.loss_mask
    start = next((i for i, m in enumerate(mask) if m), None)
    if start is None:
        return "no trained token: the assistant message renders no tokens after the generation prompt"
    if prompt_ids is not None and ids[:start] != prompt_ids:
        at = next((i for i, (a, b) in enumerate(zip(ids[:start], prompt_ids, strict=False)) if a != b),
                  min(start, len(prompt_ids)))
        return (
            f"the {start} tokens before the first trained one differ from the {len(prompt_ids)} stage-2 prompt ids "
            f"from token {at} on (SFT {tokenizer.decode(ids[at:start])!r} vs "
            f"rollout {tokenizer.decode(prompt_ids[at:])!r})"
        )
    prefix = prefix_tokens.ids[mode]
    got = ids[start : start + len(prefix)]
    if got != prefix:
        return (
            f"the first trained tokens {got} ({tokenizer.decode(got)!r}) are not the {mode} prefix ids {prefix} "
            f"({prefix_tokens.preset.prefix(mode)!r}) of bpo.prefix_preset={prefix_tokens.preset.name}"
        )
    trained = tokenizer.decode(ids[start:])
    if mode == THINK and clean_text(reasoning) not in trained:
        return "the reasoning is not in the trained tokens (the template dropped or rewrote it)"
    if clean_text(answer) not in trained:
        return "the answer is not in the trained tokens (the template dropped or rewrote it)"
    opened = prefix_tokens.preset.template_opens.count(THINK_OPEN)
    if trained.count(THINK_OPEN) + opened != 1:
        return f"the trained tokens hold {trained.count(THINK_OPEN) + opened} think blocks, not one: {trained[:80]!r}"
    return None


def _diagnose(tokenizer: Any, message: dict, chat_template_kwargs: dict | None) -> str:
    """What the template does to an assistant message rendered alone (as MultiTurnSFTDataset renders it)."""
    from verl.utils.tokenizer.chat_template import apply_chat_template

    alone = apply_chat_template(
        tokenizer, [message], tokenize=False, add_generation_prompt=False, **(chat_template_kwargs or {})
    )
    content = message["content"]
    inner = content[content.find(THINK_OPEN) + len(THINK_OPEN) : content.find(THINK_CLOSE)].strip()
    if inner and inner not in alone:
        what = "drops the reasoning"
        if alone.count(THINK_OPEN) > 0:
            what += " and writes an empty think block instead"
    elif alone.count(THINK_OPEN) > content.count(THINK_OPEN):
        what = "injects an extra (empty) think block"
    elif content not in alone:
        what = "rewrites the content"
    else:
        what = "keeps the content"  # the problem is elsewhere (generation prompt, tokenisation): see above
    return f"{what}: {content!r} renders as {alone!r}"


def check_template(
    preset: PrefixPreset,
    tokenizer: Any,
    chat_template_kwargs: dict | None = None,
    enable_thinking_key: str | None = "enable_thinking",
) -> PrefixTokens:
    """Refuse a tokenizer / template / preset that breaks the contract for a plain sample of each mode.

    Returns the prefix ids. Raises :class:`ContractError` (prefix problems) or
    :class:`TemplateContractError` naming the template problem and the fix.
    """
    tokens = check_preset_tokens(preset, tokenizer, chat_template_kwargs)
    prompt = [{"role": "user", "content": "What is 1 + 1?"}]
    reasoning, answer = "One and one make two.", "The answer is 2."
    samples = []
    for mode in (THINK, NO_THINK):
        message = {"role": "assistant", "content": assistant_content(preset, mode, answer, reasoning)}
        sample = {"messages": prompt + [message]}
        if enable_thinking_key:
            sample[enable_thinking_key] = mode == THINK
        samples.append(sample)
    prompt_ids = stage2_prompt_ids(tokenizer, prompt, chat_template_kwargs)
    rendered_all = render_with_verl(samples, tokenizer, chat_template_kwargs, enable_thinking_key)
    for mode, sample, rendered in zip((THINK, NO_THINK), samples, rendered_all, strict=True):
        problem = check_rendered(rendered, mode, tokens, prompt_ids, tokenizer, reasoning, answer)
        if problem:
            kwargs = dict(chat_template_kwargs or {})
            if enable_thinking_key:
                kwargs["enable_thinking"] = mode == THINK
            raise TemplateContractError(
                f"The chat template breaks the stage-2 token contract of bpo.prefix_preset={preset.name} for a "
                f"{mode} sample: {problem}. MultiTurnSFTDataset renders each message alone, and for an assistant "
                f"message alone this template {_diagnose(tokenizer, sample['messages'][-1], kwargs)}. {_FIX}"
            )
    return tokens
