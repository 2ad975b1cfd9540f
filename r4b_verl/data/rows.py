"""What makes a verl RL row trainable, checked one row at a time (used by ``check`` and ``prepare``).

Each check returns ``(kind, detail)`` problems; ``kind`` is the short reason counted in summaries.
Cheap checks read only the row's fields (schema, ground truth, placeholder count); ``decode`` opens
every image with PIL and ``tokenizer`` renders the prompt with its chat template.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from r4b_verl.reward.gold import gold_problem, null_gold
from r4b_verl.reward.router import route_name
from r4b_verl.reward.settings import Settings

from .images import PLACEHOLDER, decode_problem

ROLES = ("system", "user", "assistant", "tool")


def _as_list(value):
    if type(value).__name__ == "ndarray":
        return list(value)
    return value


def prompt_problems(prompt) -> list[tuple[str, str]]:
    prompt = _as_list(prompt)
    if not isinstance(prompt, (list, tuple)) or not prompt:
        return [("bad prompt", f"prompt must be a non-empty list of chat messages, got {type(prompt).__name__}")]
    for k, message in enumerate(prompt):
        if not isinstance(message, Mapping):
            return [("bad prompt", f"message {k} is a {type(message).__name__}, not a {{role, content}} dict")]
        if message.get("role") not in ROLES:
            return [("bad prompt", f"message {k} has role {message.get('role')!r} (one of {', '.join(ROLES)})")]
        if not isinstance(message.get("content"), str):
            return [("bad prompt", f"message {k} content is {type(message.get('content')).__name__}, not text")]
    if not any(m["role"] == "user" and m["content"].strip() for m in prompt):
        return [("bad prompt", "no non-empty user message")]
    return []


def placeholders(prompt) -> int:
    prompt = _as_list(prompt)
    if not isinstance(prompt, (list, tuple)):
        return 0
    return sum(m["content"].count(PLACEHOLDER) for m in prompt
               if isinstance(m, Mapping) and isinstance(m.get("content"), str))


def image_problem(entry, base_dir: str | os.PathLike | None = None) -> str | None:
    """None if one ``images`` entry is one verl's RLHFDataset can open and PIL decodes, else why not."""
    if isinstance(entry, Mapping):
        if "bytes" in entry:  # verl's _build_messages opens the bytes key whenever it is present
            if entry["bytes"] is None:
                return "image entry has bytes: null (verl opens the bytes key whenever it is present)"
            return decode_problem(entry["bytes"])
        entry = entry.get("image") or entry.get("path")
    if isinstance(entry, (str, os.PathLike)):
        path = Path(str(entry).removeprefix("file://"))
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        if not path.is_file():
            return f"image file not found: {path}"
        return decode_problem(path.read_bytes())
    return f"unsupported image entry of type {type(entry).__name__}"


def ground_truth_problem(row: Mapping, settings: Settings, reward: str | None = None) -> tuple[str, str] | None:
    """``reward``: score with this reward instead of routing (another reward function than ours)."""
    reward_model = row.get("reward_model")
    if not isinstance(reward_model, Mapping) or "ground_truth" not in reward_model:
        return "no ground truth", "reward_model.ground_truth is missing"
    source = row.get("data_source")
    name = reward or route_name(settings, source)  # a user function is not imported: only null is checked
    problem = gold_problem(name, reward_model.get("ground_truth"), settings)
    if problem:
        kind = "null ground truth" if null_gold(reward_model.get("ground_truth")) else "unreadable ground truth"
        return kind, f"{problem} (data_source {source!r} -> {name})"
    return None


def row_problems(row: Mapping, settings: Settings, *, prompt_key: str = "prompt", image_key: str = "images",
                 n_images: int | None = None, decode: bool = False, base_dir=None, tokenizer=None,
                 template_kwargs: Mapping | None = None, max_prompt_length: int | None = None,
                 reward: str | None = None) -> list[tuple[str, str]]:
    """Every problem of one row. ``n_images`` is the length of the images list when the caller read only
    that (the cheap check does not load image bytes into Python)."""
    problems = []
    source = row.get("data_source")
    if not isinstance(source, str) or not source.strip():
        problems.append(("no data_source", f"data_source is {source!r}"))
    prompt = row.get(prompt_key)
    prompt_bad = prompt_problems(prompt)
    problems += prompt_bad
    if not problems:
        gt = ground_truth_problem(row, settings, reward)
        if gt:
            problems.append(gt)
    images = _as_list(row.get(image_key)) if n_images is None else None
    if images is not None and not isinstance(images, (list, tuple)):
        problems.append(("bad image", f"{image_key} is a {type(images).__name__}, not a list"))
        images = None
    count = n_images if n_images is not None else len(images or [])
    if not prompt_bad and placeholders(prompt) != count:
        problems.append(("placeholders != images",
                         f"{placeholders(prompt)} {PLACEHOLDER} placeholders in {prompt_key} but {count} {image_key}"))
    if decode and images:
        for k, entry in enumerate(images):
            problem = image_problem(entry, base_dir)
            if problem:
                problems.append(("bad image", f"{image_key}[{k}]: {problem}"))
    if tokenizer is not None and not prompt_bad:
        try:
            ids = tokenizer.apply_chat_template(list(_as_list(prompt)), add_generation_prompt=True, tokenize=True,
                                                **dict(template_kwargs or {}))
        except Exception as exc:  # noqa: BLE001 - the template's own error is the message
            problems.append(("chat template fails", f"{type(exc).__name__}: {str(exc)[:200]}"))
        else:
            if isinstance(ids, Mapping):
                ids = ids["input_ids"]
            if max_prompt_length is not None and len(ids) > max_prompt_length:
                problems.append(("prompt too long", f"{len(ids)} tokens > max_prompt_length {max_prompt_length} "
                                 "(verl's RLHFDataset drops it)"))
    return problems
