"""Image questions drawn on the fly: count the coloured shapes, as verl RL parquet rows with images.

Each row is one PNG (``IMAGE_SIDE`` pixels square, PIL-drawn, deterministic per seed) and one
question about it::

    data_source   "shapes_count_easy" (1-3 shapes) or "shapes_count_hard" (4-6 shapes)
    prompt        [{"role": "user", "content": "<image>How many shapes are there? Put the final answer in \\boxed{}."}]
    images        [{"bytes": <PNG>}]        (what a Hugging Face ``datasets`` Image column holds)
    ability       "math"
    reward_model  {"style": "rule", "ground_truth": "3"}
    extra_info    {"split", "index", "level", "question", "answer"}

verl's ``RLHFDataset`` replaces ``<image>`` with the row's image (``_build_messages``); the
``shapes_count_*`` sources are routed to the ``math`` reward by the multimodal recipe
(``r4b_bpo_mm_cpu``), which reads the ``\\boxed{}`` count. No instruction forces a think block (the
bi-mode prefix decides). Shapes do not overlap, so the count is well defined.
"""

from __future__ import annotations

import io
import os
import random
from typing import Any

from r4b_verl.demo.tiny_vl import IMAGE_SIDE

DATA_SOURCE = "shapes_count"  # + "_easy" / "_hard"
LEVELS = {"easy": (1, 3), "hard": (4, 6)}
COLOURS = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (240, 50, 230))
KINDS = ("circle", "square", "triangle")
CELL = IMAGE_SIDE // 3  # a 3 x 3 grid of cells, one shape at most per cell: no overlap


def question() -> str:
    return "<image>How many shapes are there? Put the final answer in \\boxed{}."


def draw(count: int, rng: random.Random):
    """A ``IMAGE_SIDE``-pixel PIL image with ``count`` (at most 9) non-overlapping coloured shapes."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (IMAGE_SIDE, IMAGE_SIDE), (255, 255, 255))
    pen = ImageDraw.Draw(image)
    for cell in rng.sample(range(9), count):
        x0, y0 = (cell % 3) * CELL + 2, (cell // 3) * CELL + 2
        x1, y1 = x0 + CELL - 5, y0 + CELL - 5
        colour, kind = rng.choice(COLOURS), rng.choice(KINDS)
        if kind == "circle":
            pen.ellipse((x0, y0, x1, y1), fill=colour)
        elif kind == "square":
            pen.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            pen.polygon(((x0, y1), (x1, y1), ((x0 + x1) // 2, y0)), fill=colour)
    return image


def png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def make_rows(n: int, split: str, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` rows alternating easy and hard; same ``seed`` and ``split`` give the same rows and images."""
    rng = random.Random(f"shapes-{seed}-{split}")
    rows = []
    for index in range(n):
        level = "easy" if index % 2 == 0 else "hard"
        count = rng.randint(*LEVELS[level])
        answer = str(count)
        rows.append(
            {
                "data_source": f"{DATA_SOURCE}_{level}",
                "prompt": [{"role": "user", "content": question()}],
                "images": [{"bytes": png_bytes(draw(count, rng))}],
                "ability": "math",
                "reward_model": {"style": "rule", "ground_truth": answer},
                "extra_info": {"split": split, "index": index, "level": level, "question": question(),
                               "answer": answer},
            }
        )
    return rows


def build_dataset(out_dir, n_train: int = 32, n_val: int = 8, seed: int = 0) -> dict[str, str]:
    """Write ``train.parquet`` and ``val.parquet`` (image rows) into ``out_dir``; returns their paths."""
    import pandas as pd

    os.makedirs(os.fspath(out_dir), exist_ok=True)
    paths = {}
    for split, n in (("train", n_train), ("val", n_val)):
        paths[split] = os.path.join(os.fspath(out_dir), f"{split}.parquet")
        pd.DataFrame(make_rows(n, split, seed)).to_parquet(paths[split], index=False)
    return paths
