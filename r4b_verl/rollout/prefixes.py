"""Mode prefixes: the strings appended to the prompt to force (or leave open) the thinking mode.

A preset names the three prefixes a model family was trained with, plus what its chat template
already opens at the end of the generation prompt:

=============  ==============  ==========================  ===========  ==================
preset         think           no_think                    auto         template opens
=============  ==============  ==========================  ===========  ==================
``r4b``        ``<think>\\n``   ``<think>\\n\\n</think>``     ``<think>``  nothing
``qwen3``      ``<think>\\n``   ``<think>\\n\\n</think>\\n\\n``  ``<think>``  nothing
``r1_distill`` (empty)         ``</think>\\n\\n``             (empty)      ``<think>\\n``
=============  ==============  ==========================  ===========  ==================

``custom`` takes all three strings from the config; any preset string can also be overridden
one by one (``bpo.think_prefix`` ...). At start-up :func:`check_prefixes` refuses a tokenizer
that has no single-token think tags and a chat template whose generation prompt already holds
a think tag the preset would duplicate (or lacks the one the preset relies on).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from r4b_verl.think import MODES, THINK_CLOSE, THINK_OPEN


@dataclass(frozen=True)
class PrefixPreset:
    """The prefix strings of one model family (see the module docstring)."""

    name: str
    think: str
    no_think: str
    auto: str
    template_opens: str = ""  # what the chat template's generation prompt already ends with

    def prefix(self, mode: str) -> str:
        return {"think": self.think, "no_think": self.no_think, "auto": self.auto}[mode]


PRESETS: dict[str, PrefixPreset] = {
    # R-4B paper, evaluation strings (arXiv 2508.21113).
    "r4b": PrefixPreset("r4b", think="<think>\n", no_think="<think>\n\n</think>", auto="<think>"),
    # Qwen3 hybrid template: enable_thinking=False renders "<think>\n\n</think>\n\n".
    "qwen3": PrefixPreset("qwen3", think="<think>\n", no_think="<think>\n\n</think>\n\n", auto="<think>"),
    # DeepSeek-R1-distill templates end the generation prompt with "<think>\n" already;
    # non-thinking closes the block at once (as AdaptThink / NoThinking do).
    "r1_distill": PrefixPreset("r1_distill", think="", no_think="</think>\n\n", auto="", template_opens="<think>\n"),
}


class PrefixConfigError(ValueError):
    """A prefix option or its fit with the tokenizer / chat template is wrong."""


def resolve_preset(
    preset: str,
    think_prefix: str | None = None,
    no_think_prefix: str | None = None,
    auto_prefix: str | None = None,
    template_opens: str | None = None,
) -> PrefixPreset:
    """The preset named by ``bpo.prefix_preset`` with any per-string overrides applied."""
    overrides = {
        "think": think_prefix,
        "no_think": no_think_prefix,
        "auto": auto_prefix,
        "template_opens": template_opens,
    }
    if preset == "custom":
        missing = [f"bpo.{k}_prefix" for k in ("think", "no_think", "auto") if overrides[k] is None]
        if missing:
            raise PrefixConfigError(f"bpo.prefix_preset=custom needs {', '.join(missing)} (strings, may be empty)")
        base = PrefixPreset("custom", think="", no_think="", auto="")
    elif preset in PRESETS:
        base = PRESETS[preset]
    else:
        raise PrefixConfigError(
            f"bpo.prefix_preset={preset!r} is unknown; choose one of {sorted(PRESETS) + ['custom']}"
        )
    for key, value in overrides.items():
        if value is not None and not isinstance(value, str):
            name = "bpo.template_opens" if key == "template_opens" else f"bpo.{key}_prefix"
            raise PrefixConfigError(f"{name} must be a string, got {value!r}")
    preset_obj = replace(base, **{k: v for k, v in overrides.items() if v is not None})
    if preset_obj.think == preset_obj.no_think:
        raise PrefixConfigError(
            f"bpo.prefix_preset={preset_obj.name}: the think and no_think prefixes are both {preset_obj.think!r}; "
            "they must differ or both modes generate from the same prompt"
        )
    return preset_obj


@dataclass(frozen=True)
class PrefixTokens:
    """Token ids of each mode's prefix, and where the mode decision sits in them."""

    preset: PrefixPreset
    ids: dict[str, list[int]]  # mode -> prefix token ids
    decision_index: int | None  # first position where the think and no_think ids differ

    @property
    def max_len(self) -> int:
        return max(len(v) for v in self.ids.values())

    def decision_tail(self, mode: str) -> list[int]:
        """The mode's prefix ids from the decision token on: what ``bpo.train_mode_token`` moves to the response."""
        return self.ids[mode][self.decision_index :]


def encode(tokenizer: Any, text: str) -> list[int]:
    """Prefix text -> ids, tokenized on its own (no BOS/EOS): what gets appended to the prompt ids."""
    if not text:
        return []
    return list(tokenizer.encode(text, add_special_tokens=False))


def tokenize_prefixes(preset: PrefixPreset, tokenizer: Any) -> PrefixTokens:
    ids = {mode: encode(tokenizer, preset.prefix(mode)) for mode in MODES}
    think, no_think = ids["think"], ids["no_think"]
    decision = next((i for i, (a, b) in enumerate(zip(think, no_think, strict=False)) if a != b), None)
    if decision is None and len(think) != len(no_think):
        decision = min(len(think), len(no_think))  # one is a strict prefix of the other
    return PrefixTokens(preset=preset, ids=ids, decision_index=decision)


def generation_prompt_tail(tokenizer: Any, processor: Any = None, chat_template_kwargs: dict | None = None) -> str:
    """The text the chat template appends for ``add_generation_prompt=True`` (falls back to the render's tail)."""
    from verl.utils.tokenizer.chat_template import apply_chat_template

    renderer = processor if processor is not None and getattr(processor, "chat_template", None) else tokenizer
    content: Any = "Hi" if renderer is tokenizer else [{"type": "text", "text": "Hi"}]
    messages = [{"role": "user", "content": content}]
    kwargs = dict(chat_template_kwargs or {})
    with_gen = apply_chat_template(renderer, messages, tokenize=False, add_generation_prompt=True, **kwargs)
    without = apply_chat_template(renderer, messages, tokenize=False, add_generation_prompt=False, **kwargs)
    if with_gen.startswith(without) and len(with_gen) > len(without):
        return with_gen[len(without) :]
    return with_gen[-40:]


def _single_token_id(tokenizer: Any, tag: str) -> int | None:
    ids = encode(tokenizer, tag)
    return ids[0] if len(ids) == 1 else None


def check_prefixes(
    preset: PrefixPreset,
    tokenizer: Any,
    processor: Any = None,
    chat_template_kwargs: dict | None = None,
    train_mode_token: bool = False,
) -> PrefixTokens:
    """Refuse prefixes that do not fit the tokenizer / chat template; return their token ids.

    Checks, each with an error naming the preset and showing the template tail:
    1. every think tag the prefixes use is ONE token of the tokenizer (else the model has no
       think tokens and the prefixes would be spelled out in pieces it never saw);
    2. the generation prompt ends with ``template_opens`` when the preset relies on it
       (``r1_distill``), and holds no think tag at all when the preset brings its own;
    3. with ``bpo.train_mode_token`` the two forced prefixes have a decision token each.
    """
    name = f"bpo.prefix_preset={preset.name}"
    used = "".join([preset.think, preset.no_think, preset.auto, preset.template_opens])
    for tag in (THINK_OPEN, THINK_CLOSE):
        if tag in used and _single_token_id(tokenizer, tag) is None:
            raise PrefixConfigError(
                f"{name} uses {tag!r}, but the tokenizer splits it into {encode(tokenizer, tag)}: "
                f"this model has no {tag} token. Pick a preset for this model family or set the prefixes "
                "with bpo.think_prefix / bpo.no_think_prefix / bpo.auto_prefix."
            )

    tail = generation_prompt_tail(tokenizer, processor, chat_template_kwargs)
    if preset.template_opens:
        if not tail.endswith(preset.template_opens):
            raise PrefixConfigError(
                f"{name} expects the chat template to open the think block (generation prompt ending with "
                f"{preset.template_opens!r}), but it ends with {tail!r}. Use prefix_preset=r4b or qwen3 for a "
                "template that does not open it, or set bpo.template_opens."
            )
        rest = tail[: len(tail) - len(preset.template_opens)]
    else:
        rest = tail
    conflicting = [tag for tag in (THINK_OPEN, THINK_CLOSE) if tag in rest]
    if conflicting:
        raise PrefixConfigError(
            f"{name} appends its own think prefix, but the chat template's generation prompt already holds "
            f"{conflicting} (tail {tail!r}): the prompt would get two. Render the template without it (e.g. "
            "data.apply_chat_template_kwargs, custom_chat_template) or use prefix_preset=r1_distill / "
            "bpo.template_opens for a template that opens the block itself."
        )

    tokens = tokenize_prefixes(preset, tokenizer)
    if train_mode_token:
        d = tokens.decision_index
        think, no_think = tokens.ids["think"], tokens.ids["no_think"]
        if d is None or d >= len(think) or d >= len(no_think):
            raise PrefixConfigError(
                "bpo.decision_token.position=response needs a decision token in BOTH forced prefixes (the first "
                f"token where they differ), but with {name} think={think} and no_think={no_think}. Give the think "
                "prefix a token after the shared part (e.g. bpo.think_prefix with a thinking-start word) or turn the "
                "option off."
            )
    return tokens


class CheckedPrefixes:
    """Per-process cache of :func:`check_prefixes` results: verl builds one loop per trajectory.

    Each entry keeps its tokenizer and processor alive, so their ``id()`` in the key cannot be reused
    by other objects (a stale hit would skip the checks for a different tokenizer or template).
    """

    def __init__(self):
        self._entries: dict[tuple, tuple[Any, Any, PrefixTokens]] = {}

    def get(self, options, tokenizer, processor, chat_template_kwargs) -> PrefixTokens:
        """The checked prefix tokens of ``options`` (a ``BPORolloutOptions``) for this tokenizer and template."""
        key = (options, id(tokenizer), id(processor), repr(sorted((chat_template_kwargs or {}).items())))
        if key not in self._entries:
            tokens = check_prefixes(
                options.preset(), tokenizer, processor, chat_template_kwargs,
                train_mode_token=options.decision_in_response,
            )
            self._entries[key] = (tokenizer, processor, tokens)
        return self._entries[key][2]

    def clear(self) -> None:
        self._entries.clear()


CHECKED_PREFIXES = CheckedPrefixes()
