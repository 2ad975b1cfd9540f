"""Which part of a response is the answer, per rollout mode.

The rollout puts the mode of every response into ``extra_info[mode_key]`` (``bpo_mode``):

- ``think``: the thinking prefix ``<think>\\n`` was in the prompt, so the response starts inside
  the think block. The answer is what follows the first ``</think>``; a response that never
  closes its think block has no answer (it ran out of tokens while thinking).
- ``no_think``: the empty think block was in the prompt; the whole response is the answer,
  after dropping a leading empty ``<think></think>`` the model may repeat.
- ``auto`` or anything else: if the response contains ``</think>`` the answer follows it,
  otherwise the whole response is the answer.

These rules need the think tags to survive decoding. verl decodes with
``skip_special_tokens=True``: tokenizers that mark ``<think>``/``</think>`` as *special* tokens
lose them. With ``think_tags: stripped`` the ``auto`` rule is used for every mode (a thinking
response then is scored on its whole text, and the format check cannot be done).
"""

from __future__ import annotations

import re

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
MODES = ("think", "no_think", "auto")

_LEADING_EMPTY_THINK = re.compile(r"\A\s*<think>\s*</think>\s*")


def normalize_mode(value) -> str:
    """The rollout mode as one of MODES; unknown or missing values mean ``auto``."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    value = str(value).strip().lower().replace("-", "_") if value is not None else ""
    if value in ("think", "thinking"):
        return "think"
    if value in ("no_think", "nothink", "non_think", "non_thinking", "no_thinking"):
        return "no_think"
    return "auto"


def strip_leading_empty_think(text: str) -> str:
    return _LEADING_EMPTY_THINK.sub("", text, count=1)


def answer_part(response: str, mode: str, think_tags: str = "kept") -> str | None:
    """The answer part of ``response`` for ``mode`` (see module doc); None means "no answer"."""
    if think_tags == "stripped":
        mode = "auto"
    end = response.find(THINK_CLOSE)
    if mode == "think":
        return None if end < 0 else response[end + len(THINK_CLOSE) :]
    if mode == "no_think":
        return strip_leading_empty_think(response)
    if end >= 0:
        return response[end + len(THINK_CLOSE) :]
    return response
