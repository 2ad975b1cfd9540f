"""Toy arithmetic prompts in verl's RL parquet format, built offline and deterministically.

Each row is one question "What is a + b?" with a rule-checkable answer::

    data_source   "toy_math_easy" or "toy_math_hard"
    prompt        [{"role": "user", "content": "What is 12 + 7? Put the final answer in \\boxed{}."}]
    ability       "math"
    reward_model  {"style": "rule", "ground_truth": "19"}
    extra_info    {"split": "train", "index": 0, "level": "easy", "question": ..., "answer": "19"}

``level`` is ``easy`` (one-digit operands) or ``hard`` (three-digit operands), and the data source
says which, so verl and the ``bpo/`` metrics report accuracy and the thinking-trigger rate per
level: the split a user of an auto-thinking model watches (R-4B reports it for reasoning and
non-reasoning benchmarks).
The wording matches the corpus the tiny tokenizer (``r4b_verl.demo.tiny``) is trained on.
"""

from __future__ import annotations

import os
import random
from typing import Any

DATA_SOURCE = "toy_math"  # + "_easy" / "_hard"
LEVELS = {"easy": (0, 9), "hard": (100, 999)}


def question(a: int, b: int) -> str:
    """The question text (also the tiny tokenizer's corpus and the annealing prompts)."""
    return f"What is {a} + {b}? Put the final answer in \\boxed{{}}."


def reasoning(a: int, b: int) -> str:
    """The worked thought for ``a + b``: column addition from the ones digit up, one line per column.

    Each line is ``x+y+c=s`` with fixed width (the carry ``c`` in, a two-digit column sum ``s`` whose
    first digit is the next carry), e.g. 347 + 586::

        7+6+0=13
        4+8+1=13
        3+5+1=09

    The answer's digits are then read off the lines (last carry, then each line's last digit from
    the bottom up): every token of the thought and of the answer depends on a few tokens at fixed
    distances. Answering a three-digit sum without it means doing the whole carry chain in one
    token; that is the work the think block carries on hard questions, and easy (one-digit)
    questions barely need it (one line).
    """
    width = max(len(str(a)), len(str(b)))
    xs, ys = str(a).zfill(width)[::-1], str(b).zfill(width)[::-1]
    lines, carry = [], 0
    for x, y in zip(xs, ys):
        s = int(x) + int(y) + carry
        lines.append(f"{x}+{y}+{carry}={s:02d}")
        carry = s // 10
    return "\n".join(lines)


def answer_text(a: int, b: int) -> str:
    """The text after the think block (in both modes): just the boxed sum."""
    return f"\\boxed{{{a + b}}}"


def draw_operands(rng: random.Random, index: int) -> tuple[str, int, int]:
    """``(level, a, b)`` of question ``index``: even indices easy, odd ones hard."""
    level = "easy" if index % 2 == 0 else "hard"
    lo, hi = LEVELS[level]
    return level, rng.randint(lo, hi), rng.randint(lo, hi)


def make_rows(n: int, split: str, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` rows alternating easy and hard questions; same ``seed`` and ``split`` give the same rows."""
    rng = random.Random(f"{seed}-{split}")
    rows = []
    for index in range(n):
        level, a, b = draw_operands(rng, index)
        question_text = question(a, b)
        answer = str(a + b)
        rows.append(
            {
                "data_source": f"{DATA_SOURCE}_{level}",
                "prompt": [{"role": "user", "content": question_text}],
                "ability": "math",
                "reward_model": {"style": "rule", "ground_truth": answer},
                "extra_info": {"split": split, "index": index, "level": level, "question": question_text, "answer": answer},
            }
        )
    return rows


def annealing_rows(n: int, split: str = "anneal", seed: int = 0) -> list[dict[str, Any]]:
    """RL rows as :func:`make_rows`, plus what stage 1 needs (``r4b_verl.anneal.build``'s input):
    ``reasoning`` (:func:`reasoning`), ``answer`` (:func:`answer_text`) and ``label``, the level's:
    ``reasoning`` on hard questions, ``direct`` on easy ones (what R-4B's labeller finds with a
    competent annotator; the demo's tiny model is not one before stage 1, see r4b_verl/backends/cpu/README.md)."""
    rows = make_rows(n, split, seed)
    for row in rows:
        a, b = map(int, row["extra_info"]["question"].split("What is ")[1].split("?")[0].split(" + "))
        row["reasoning"] = reasoning(a, b)
        row["answer"] = answer_text(a, b)
        row["label"] = "reasoning" if row["extra_info"]["level"] == "hard" else "direct"
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
