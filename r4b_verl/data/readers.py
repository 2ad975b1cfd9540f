"""Read what a user downloaded into a ``datasets.Dataset``: parquet, JSON / JSONL, or a saved folder.

The ``datasets`` library is the reader (verl's RLHFDataset reads its files with it too):
``load_dataset("parquet" | "json", data_files=...)`` for files (a directory of them is globbed), and
``load_from_disk`` for a folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``.
"""

from __future__ import annotations

import os
from pathlib import Path

SUFFIXES = {".parquet": "parquet", ".json": "json", ".jsonl": "json"}


class InputError(ValueError):
    """The input path cannot be read as a dataset; the message names the path and the fix."""


def _builder(files: list[Path]) -> str:
    kinds = {SUFFIXES.get(f.suffix.lower()) for f in files}
    if None in kinds or len(kinds) != 1:
        names = ", ".join(sorted({f.suffix or f.name for f in files}))
        raise InputError(f"cannot read {names}: give .parquet, .json or .jsonl files (one kind), or a saved "
                         "datasets folder")
    return kinds.pop()


def _pick_split(dsets, split: str | None, path: Path):
    names = list(dsets.keys())
    if split is None:
        if len(names) == 1:
            return dsets[names[0]], names[0]
        raise InputError(f"{path} holds the splits {names}: choose one with --split")
    if split not in dsets:
        raise InputError(f"{path} has no split {split!r}; it has {names}")
    return dsets[split], split


def read_dataset(path: str | os.PathLike, split: str | None = None):
    """(``datasets.Dataset``, split name or None) of ``path``; refuses what it cannot read, naming it."""
    import datasets

    path = Path(path)
    if not path.exists():
        raise InputError(f"input not found: {path}")
    if path.is_dir() and ((path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()):
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            return _pick_split(loaded, split, path)
        return loaded, split
    if path.is_dir():
        files = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix.lower() in SUFFIXES)
        if not files:
            raise InputError(f"{path} holds no .parquet, .json or .jsonl files and is not a saved datasets folder")
    else:
        files = [path]
    builder = _builder(files)
    try:
        loaded = datasets.load_dataset(builder, data_files=[str(f) for f in files], split="train")
    except Exception as exc:  # noqa: BLE001 - re-raised with the path
        raise InputError(f"cannot read {path} as {builder}: {type(exc).__name__}: {exc}") from exc
    return loaded, split
