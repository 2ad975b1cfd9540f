"""The content of the last ``\\boxed{...}`` of a text, with balanced braces (linear time)."""

from __future__ import annotations

_BOXED = ("\\boxed", "\\fbox")


def last_boxed(text: str) -> str | None:
    start = max(text.rfind(tag) for tag in _BOXED)
    if start < 0:
        return None
    brace = text.find("{", start)
    if brace < 0 or text[start:brace].strip() not in _BOXED:
        return None
    depth = 0
    for i in range(brace, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[brace + 1 : i]
    return None
