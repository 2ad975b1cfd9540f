"""Toy arithmetic prompts in verl's RL parquet format, built offline and deterministically.

Each row is one question "What is d1 + d2 + ...?" on single digits, with a rule-checkable answer::

    data_source   "toy_math_easy" or "toy_math_hard"
    prompt        [{"role": "user", "content": "What is 7 + 5 + 2 + 9? Answer in \\boxed{}."}]
    ability       "math"
    reward_model  {"style": "rule", "ground_truth": "23"}
    extra_info    {"split": "train", "index": 0, "level": "hard", "question": ..., "answer": "23",
                   "operands": [7, 5, 2, 9]}

``level`` is ``easy`` (two digits) or ``hard`` (four digits), and the data source says which, so verl
and the ``bpo/`` metrics report accuracy and the thinking-trigger rate per level: the split a user of
an auto-thinking model watches (R-4B reports it for reasoning and non-reasoning benchmarks).

The task is chosen for what a tiny transformer can learn in a short SFT on CPU. An easy question is one
lookup in the 100-entry table of digit sums, answerable directly. A hard one, answered directly, is a
function of four digits at once (10^4 cases); written out in the think block as running sums
(:func:`reasoning`: ``7+5=12``, ``12+2=14``, ``14+9=23``) it is three small lookups, each reading the
previous line's result and the next operand, and the answer copies the last line. So the think block
carries work the answer needs on hard questions and not on easy ones. (``MODULUS`` switches to sums
mod m: one table for every step, but modular addition is the slow-to-learn "grokking" case.)
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from typing import Any

DATA_SOURCE = "toy_math"  # + "_easy" / "_hard"
N_OPERANDS = {"easy": 2, "hard": 4}
MODULUS: int | None = None  # None: the plain sum
OPERAND_MAX = 9


def question(*operands: int) -> str:
    """The question text (the RL prompts and the annealing prompts)."""
    terms = " + ".join(map(str, operands))
    asked = f"({terms}) mod {MODULUS}" if MODULUS else terms
    return f"What is {asked}? Answer in \\boxed{{}}."


def solve(operands: Sequence[int]) -> int:
    return sum(operands) % MODULUS if MODULUS else sum(operands)


def reasoning(*operands: int) -> str:
    """The worked thought: the running sum, one line ``s+d=t`` per operand after the first.

    7, 5, 2, 9 -> ``7+5=12`` / ``12+2=14`` / ``14+9=23``: each line is one small lookup, its inputs the
    previous line's result and the next operand; the answer is the last line's result.
    """
    lines, total = [], operands[0]
    for d in operands[1:]:
        nxt = (total + d) % MODULUS if MODULUS else total + d
        lines.append(f"{total}+{d}={nxt}")
        total = nxt
    return "\n".join(lines)


def answer_text(*operands: int) -> str:
    """The text after the think block (in both modes): just the boxed result."""
    return f"\\boxed{{{solve(operands)}}}"


def draw_operands(rng: random.Random, index: int) -> tuple[str, list[int]]:
    """``(level, operands)`` of question ``index``: even indices easy, odd ones hard."""
    level = "easy" if index % 2 == 0 else "hard"
    return level, [rng.randint(0, OPERAND_MAX) for _ in range(N_OPERANDS[level])]


def make_rows(n: int, split: str, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` rows alternating easy and hard questions; same ``seed`` and ``split`` give the same rows."""
    rng = random.Random(f"{seed}-{split}")
    rows = []
    for index in range(n):
        level, operands = draw_operands(rng, index)
        question_text = question(*operands)
        answer = str(solve(operands))
        rows.append(
            {
                "data_source": f"{DATA_SOURCE}_{level}",
                "prompt": [{"role": "user", "content": question_text}],
                "ability": "math",
                "reward_model": {"style": "rule", "ground_truth": answer},
                "extra_info": {"split": split, "index": index, "level": level, "question": question_text,
                               "answer": answer, "operands": operands},
            }
        )
    return rows


def annealing_rows(n: int, split: str = "anneal", seed: int = 0) -> list[dict[str, Any]]:
    """RL rows as :func:`make_rows`, plus what stage 1 needs (``r4b_verl.anneal.build``'s input):
    ``reasoning`` (:func:`reasoning`), ``answer`` (:func:`answer_text`) and ``level_label``, the level's
    label (``reasoning`` on hard questions, ``direct`` on easy ones: what R-4B's labeller finds with a
    competent annotator, see r4b_verl/backends/cpu/README.md)."""
    rows = make_rows(n, split, seed)
    for row in rows:
        operands = row["extra_info"]["operands"]
        row["reasoning"] = reasoning(*operands)
        row["answer"] = answer_text(*operands)
        row["level_label"] = "reasoning" if row["extra_info"]["level"] == "hard" else "direct"
    return rows


def write_parquet(rows: list[dict[str, Any]], path: str | os.PathLike) -> str:
    import pandas as pd

    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    pd.DataFrame(rows).to_parquet(path, index=False)
    return path


def build_dataset(out_dir: str | os.PathLike, n_train: int = 64, n_val: int = 16, seed: int = 0) -> dict[str, str]:
    """Write ``train.parquet`` and ``val.parquet`` into ``out_dir``; returns their paths."""
    return {
        split: write_parquet(make_rows(n, split, seed), os.path.join(os.fspath(out_dir), f"{split}.parquet"))
        for split, n in (("train", n_train), ("val", n_val))
    }
