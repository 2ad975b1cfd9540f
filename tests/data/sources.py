"""Small source datasets shaped like the public releases, written by the tests in every input format."""

from __future__ import annotations

import io
import json
from pathlib import Path


def png(color: str = "red", size: int = 8) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (size, size), color).save(out, format="PNG")
    return out.getvalue()


def hf_image(color: str = "red") -> dict:
    """What an HF ``Image`` feature stores in parquet: {bytes, path}."""
    return {"bytes": png(color), "path": None}


DAPO_HEAD = ("Solve the following math problem step by step. The last line of your response should be of the form "
             "Answer: $Answer (without quotes) where $Answer is the answer to the problem.\n\n")
DAPO_TAIL = '\n\nRemember to put your answer on its own line after "Answer:".'

# family -> (good rows, bad rows with the reason each must be dropped for)
GOOD = {
    "gsm8k": [{"question": f"Tom has {i} apples and buys 1,000 more. How many?",
               "answer": f"He adds.\n#### {i + 1000:,}"} for i in range(6)],
    "math": [{"problem": "Compute $\\frac{1}{2}+\\frac{1}{2}$.", "solution": "It is $\\boxed{1}$.", "level": "Level 1"},
             {"problem": "Simplify $\\sqrt{8}$.", "solution": "First \\boxed{8}, then $\\boxed{2\\sqrt{2}}$."}],
    "math500": [{"problem": "What is $2^3$?", "solution": "$\\boxed{8}$", "answer": "8", "unique_id": "a/1.json"}],
    "dapo-math-17k": [{"data_source": "math_dapo", "ability": "MATH",
                       "prompt": [{"role": "user",
                                   "content": DAPO_HEAD + "Find $n$ with $n^2=49$, $n>0$." + DAPO_TAIL}],
                       "reward_model": {"ground_truth": "7", "style": "rule-lighteval/MATH_v2"},
                       "extra_info": {"index": "x1"}}],
    "aime": [{"ID": "2024-I-1", "Problem": "Find the remainder of 1033 divided by 1000.", "Answer": "33"},
             {"ID": "2024-I-2", "Problem": "Find 10+23.", "Answer": "033"}],
    "geometry3k": [{"images": [hf_image("red")], "problem": "<image>Find x.", "answer": "2\\sqrt{3}"},
                   {"images": [hf_image("blue")], "problem": "Find the area.", "answer": "12"}],
    "mathvista": [{"pid": "1", "question": "Which shape is largest?", "decoded_image": hf_image("green"),
                   "choices": ["circle", "square", "triangle"], "answer": "square", "question_type": "multi_choice"},
                  {"pid": "2", "question": "How many objects?", "decoded_image": hf_image("white"), "choices": None,
                   "answer": "4", "question_type": "free_form"}],
    "mathverse": [{"question": "What is the angle?\nChoices:\nA:30\nB:60", "image": hf_image("black"),
                   "answer": "B", "question_type": "multi-choice"},
                  {"question": "Find the length.", "image": hf_image("gray"), "answer": "5",
                   "question_type": "free-form"}],
    "scienceqa": [{"question": "Which is a mammal?", "choices": ["shark", "whale"], "answer": 1,
                   "hint": "Whales breathe air.", "image": None},
                  {"question": "Which color is shown?", "choices": ["red", "blue", "green"], "answer": 0, "hint": "",
                   "image": hf_image("red")}],
    "mmmu": [{"id": "m1", "question": "<image 1> Which option matches <image 2>?",
              "options": "['left', 'right', 'neither']", "answer": "B", "image_1": hf_image("red"),
              "image_2": hf_image("blue"), "image_3": None, "question_type": "multiple-choice"}],
}

BAD = {
    "gsm8k": [({"question": "No marker here", "answer": "The answer is 4."}, "answer has no final '#### <number>'"),
              ({"question": None, "answer": "#### 4"}, "no question")],
    "math": [({"problem": "Unboxed.", "solution": "It is 4."}, "solution has no \\boxed{} answer")],
    "aime": [({"Problem": "A fraction?", "Answer": "1/2"}, "answer is not an integer")],
    "geometry3k": [({"images": [hf_image()], "problem": "<image><image>Two?", "answer": "1"}, "placeholders != images"),
                   ({"images": [{"bytes": b"not an image", "path": None}], "problem": "<image>x", "answer": "1"},
                    "image does not decode")],
    "mathvista": [({"question": "Pick.", "decoded_image": None, "image": "images/missing.png", "choices": ["a", "b"],
                    "answer": "b", "question_type": "multi_choice"}, "image unreadable"),
                  ({"question": "Pick.", "decoded_image": hf_image(), "choices": ["a", "b"], "answer": "c",
                    "question_type": "multi_choice"}, "answer not among the options")],
    "mathverse": [({"question": "Choices: A or B", "image": hf_image(), "answer": "maybe",
                    "question_type": "multi-choice"}, "multiple-choice answer is not a letter")],
    "scienceqa": [({"question": "Q?", "choices": ["a", "b"], "answer": 5, "image": None},
                   "answer not among the options"),
                  ({"question": "Q?", "choices": ["only"], "answer": 0, "image": None}, "wrong number of options"),
                  ({"question": "Q?", "answer": 0, "image": None}, "no choices")],
    "mmmu": [({"question": "<image 3> what?", "options": "['a', 'b']", "answer": "A", "image_1": hf_image(),
               "image_3": None}, "placeholders != images"),
             ({"question": "Q?", "options": "__import__('os')", "answer": "A"}, "options string is not a list")],
}


def write(rows: list[dict], path: Path, fmt: str) -> Path:
    """``rows`` as ``fmt``: parquet | jsonl | json | saved (Dataset.save_to_disk) | saved_dict (DatasetDict)."""
    import datasets

    path.parent.mkdir(parents=True, exist_ok=True)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    rows = [{k: r.get(k) for k in keys} for r in rows]  # datasets takes its columns from the first row
    if fmt == "parquet":
        datasets.Dataset.from_list(rows).to_parquet(str(path))
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif fmt == "json":
        path.write_text(json.dumps(rows))
    elif fmt == "saved":
        datasets.Dataset.from_list(rows).save_to_disk(str(path))
    elif fmt == "saved_dict":
        datasets.DatasetDict({"train": datasets.Dataset.from_list(rows),
                              "test": datasets.Dataset.from_list(rows[:1])}).save_to_disk(str(path))
    else:
        raise ValueError(fmt)
    return path
