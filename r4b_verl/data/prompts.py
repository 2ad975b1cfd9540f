"""Prompt texts of prepared rows, for bi-mode training.

No instruction about thinking: the bi-mode rollout appends the thinking or the empty think block
after the chat template, and a prompt asking to "reason inside <think> tags" (verl's geo3k prompt)
would contradict the non-thinking half of every group. Each prompt asks for the answer in the form
the routed reward extracts: ``\\boxed{}`` for ``math`` (math-verify's boxed extraction), a letter in
``\\boxed{}`` for ``choice`` (its first reading: the letter in the last box).
"""

from __future__ import annotations

LETTERS = "ABCDEFGHIJ"  # the choice reward's default choice_letters (reward_kwargs.choice_letters)

MATH_INSTRUCTION = "Put your final answer within \\boxed{}."
CHOICE_INSTRUCTION = "Answer with the letter of the correct option within \\boxed{}."


def math_prompt(question: str) -> str:
    return f"{question.strip()}\n\n{MATH_INSTRUCTION}"


def choice_prompt(question: str, options: list[str]) -> str:
    lines = "\n".join(f"{LETTERS[i]}. {str(option).strip()}" for i, option in enumerate(options))
    return f"{question.strip()}\n\nOptions:\n{lines}\n\n{CHOICE_INSTRUCTION}"

