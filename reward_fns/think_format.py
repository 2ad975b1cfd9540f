"""Format check of the think block: 1.0 if the response has the shape its mode asks for.

- ``think``: non-empty reasoning, one ``</think>``, then a non-empty answer with no more tags.
- ``no_think``: no reasoning: after an optional leading empty ``<think></think>``, a non-empty
  answer with no think tags.
- ``auto``: either of the two shapes.

With ``think_tags: stripped`` the tags are gone from the decoded text and nothing can be
checked: the check returns 1.0 (neutral), so a format weight never punishes a tokenizer choice.
"""

from __future__ import annotations

import re

from .answer_part import THINK_CLOSE, THINK_OPEN, strip_leading_empty_think

_NON_SPACE = re.compile(r"\S")
_LEADING_OPEN = re.compile(r"\s*<think>")


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
    if think_tags == "stripped":
        return 1.0
    if mode == "think":
        return float(_thinking_shape(response))
    if mode == "no_think":
        return float(_direct_shape(response))
    return float(_thinking_shape(response) or _direct_shape(response))
