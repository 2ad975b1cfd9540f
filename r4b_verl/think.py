"""The think-block contract: one definition shared by the rollout, the rewards and the metrics.

A bi-mode response lives in one chat format: ``<think>reasoning</think>answer`` when it thinks,
``<think>`` + an empty block + answer when it does not. The rollout forces (or leaves open) the
mode by appending a prefix to the prompt (``r4b_verl/rollout/prefixes.py``), so the decoded
response starts *inside* the block the prompt opened. Everything that reads a response agrees on:

- the tags :data:`THINK_OPEN` / :data:`THINK_CLOSE`, the modes :data:`MODES`;
- the ``extra_info`` keys the rollout writes (:data:`MODE_KEY` ...) and the reward-extra-info keys
  the worker adds for the metrics (:data:`THINK_INFO_KEY`, :data:`LENGTH_INFO_KEY`);
- which mode a response took (:func:`chosen_mode`, or :func:`read_chosen_mode` from token ids), its answer
  part (:func:`answer_part`) and whether its block has the shape its mode asks for (:func:`format_score`).

Rules per rollout mode (``extra_info[MODE_KEY]``):

- ``think``: the thinking prefix ``<think>\\n`` was in the prompt. The answer is what follows the
  first ``</think>``; a response that never closes its block has no answer (it ran out of tokens
  while thinking).
- ``no_think``: the empty block was in the prompt; the whole response is the answer, after dropping
  a leading empty ``<think></think>`` the model may repeat.
- ``auto`` or anything else: the answer follows ``</think>`` if there is one, else it is the whole
  response.

These rules need the tags to survive decoding. verl's reward managers decode with
``skip_special_tokens=True``: tokenizers that mark the tags *special* lose them. With
``think_tags="stripped"`` the ``auto`` rule is used for every mode and the format check is neutral.
"""

from __future__ import annotations

import re

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"

THINK, NO_THINK, AUTO = "think", "no_think", "auto"
MODES = (THINK, NO_THINK, AUTO)  # in this order, the sessions of a bpo.val_mode=all validation
FORCED_MODES = (THINK, NO_THINK)
ALL_MODES = "all"  # bpo.val_mode: every validation prompt in each of MODES

# AgentLoopOutput.extra_fields written by the bi-mode loop; verl merges them into the reward's extra_info.
MODE_KEY = "bpo_mode"  # the mode the prompt forced: think | no_think | auto
CHOSEN_MODE_KEY = "bpo_chosen_mode"  # the mode the response took: think | no_think
PREFIX_KEY = "bpo_prefix"  # the prefix string appended to the prompt
IMAGE_TOKENS_KEY = "bpo_image_tokens"  # image placeholder tokens in the prompt (0 for text-only rows)
# reward_extra_info entries the BPO worker adds after scoring (and MODE_KEY), for verl's validation
# metrics and its generation dumps (trainer.validation_data_dir), from which the evaluation report is built.
THINK_INFO_KEY = "bpo_think"  # 1.0 if the response thinks
LENGTH_INFO_KEY = "bpo_response_length"  # response tokens
SOURCE_INFO_KEY = "bpo_data_source"  # the row's data_source (verl's dump has none)
INDEX_INFO_KEY = "bpo_index"  # the row's extra_info.index, as a string (verl's dump has only a per-run uid)
# Dataset extra_info written by the AdaptThink presampling (r4b_verl/methods/presample.py): the reference
# model's mean accuracy over K thinking-mode samples of the prompt, Rref(x).
REF_ACC_KEY = "bpo_ref_acc"
# AutoThink's prompt ending (bpo.auto_prefix of +recipe=r4b_autothink): an ellipsis inside the open block.
# The prompt's part of the block is not the model's thinking: only an immediate </think> means no_think.
ELLIPSIS_AUTO_PREFIX = "<think>\n...\n"

_LEADING_EMPTY_THINK = re.compile(r"\A\s*<think>\s*</think>\s*")
_LEADING_OPEN = re.compile(r"\s*<think>")
_NON_SPACE = re.compile(r"\S")


def normalize_mode(value) -> str:
    """The rollout mode as one of MODES; unknown or missing values mean ``auto``."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    value = str(value).strip().lower().replace("-", "_") if value is not None else ""
    if value in ("think", "thinking"):
        return THINK
    if value in ("no_think", "nothink", "non_think", "non_thinking", "no_thinking"):
        return NO_THINK
    return AUTO


def chosen_mode(response_text: str, opened: str = "") -> str:
    """Which mode a response took: ``no_think`` iff its think block is empty (or absent), else ``think``.

    ``opened`` is the part of the block already in the prompt (the chat template's opening plus the
    mode prefix, e.g. ``"<think>"`` in auto mode), since the response alone starts inside it. A block
    that never closes counts as thinking (the model was still reasoning at the length limit). What the
    prompt already holds inside the block (AutoThink's ``...``) is not the model's thinking.
    """
    text = opened + response_text
    start = text.find(THINK_OPEN)
    if start < 0:
        return NO_THINK  # the model did not open a think block at all
    start += len(THINK_OPEN)
    end = text.find(THINK_CLOSE, start)
    if end < 0:
        return THINK
    return NO_THINK if not text[max(start, len(opened)) : end].strip() else THINK


def _early_verdict(text: str, opened_len: int = 0) -> str | None:
    """``chosen_mode`` of every text starting with ``text`` (its first ``opened_len`` chars from the prompt),
    or None."""
    start = text.find(THINK_OPEN)
    if start < 0:
        return None  # a later <think> may still open the block
    start += len(THINK_OPEN)
    end = text.find(THINK_CLOSE, start)
    own = max(start, opened_len)
    if end >= 0:
        return NO_THINK if not text[own:end].strip() else THINK
    content = text[own:].lstrip()
    if not content or THINK_CLOSE.startswith(content):
        return None  # only whitespace so far, or what may become </think>
    return THINK


def read_chosen_mode(decode, response_ids: list[int], opened: str, first: int = 8) -> str:
    """``chosen_mode(decode(response_ids), opened)``, decoding only as much of the response as decides it.

    The verdict hangs on the first characters of the think block, so the response is decoded in growing
    heads (``first``, 4x, ...) until one decides it: a thinking response of thousands of tokens is
    settled by its first few. A head's trailing replacement characters (a multibyte character cut at
    the head's end) are left out; decoding a head gives a prefix of the full decoding otherwise.
    """
    size = first
    while size < len(response_ids):
        verdict = _early_verdict(opened + decode(response_ids[:size]).rstrip("\ufffd"), len(opened))
        if verdict is not None:
            return verdict
        size *= 4
    return chosen_mode(decode(response_ids), opened)


def strip_leading_empty_think(text: str) -> str:
    return _LEADING_EMPTY_THINK.sub("", text, count=1)


def answer_part(response: str, mode: str, think_tags: str = "kept") -> str | None:
    """The answer part of ``response`` for ``mode`` (rules in the module doc); None means "no answer"."""
    if think_tags == "stripped":
        mode = AUTO
    end = response.find(THINK_CLOSE)
    if mode == THINK:
        return None if end < 0 else response[end + len(THINK_CLOSE) :]
    if mode == NO_THINK:
        return strip_leading_empty_think(response)
    if end >= 0:
        return response[end + len(THINK_CLOSE) :]
    return response


def _has_tags(text: str, start: int = 0) -> bool:
    return text.find(THINK_OPEN, start) >= 0 or text.find(THINK_CLOSE, start) >= 0


def _thinking_shape(response: str) -> bool:
    # Positions instead of slices: responses are long and this runs on every one of them.
    end = response.find(THINK_CLOSE)
    if end < 0:
        return False
    opened = _LEADING_OPEN.match(response, 0, end)  # auto mode: the model opened the block itself
    start = opened.end() if opened else 0
    answer_start = end + len(THINK_CLOSE)
    return (
        _NON_SPACE.search(response, start, end) is not None
        and response.find(THINK_OPEN, start, end) < 0
        and _NON_SPACE.search(response, answer_start) is not None
        and not _has_tags(response, answer_start)
    )


def _direct_shape(response: str) -> bool:
    answer = strip_leading_empty_think(response)
    return bool(answer.strip()) and not _has_tags(answer)


def format_score(response: str, mode: str, think_tags: str = "kept") -> float:
    """1.0 if the response has the shape its mode asks for, else 0.0.

    - ``think``: non-empty reasoning, one ``</think>``, then a non-empty answer with no more tags;
    - ``no_think``: after an optional leading empty ``<think></think>``, a non-empty answer with no tags;
    - ``auto``: either shape.

    With ``think_tags="stripped"`` nothing can be checked: 1.0 (neutral), so a format weight never
    punishes a tokenizer choice.
    """
    if think_tags == "stripped":
        return 1.0
    if mode == THINK:
        return float(_thinking_shape(response))
    if mode == NO_THINK:
        return float(_direct_shape(response))
    return float(_thinking_shape(response) or _direct_shape(response))
