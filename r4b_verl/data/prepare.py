"""Turn a downloaded dataset into verl RL rows:
``python -m r4b_verl.data.prepare --dataset NAME --input PATH --out DIR``.

Reads parquet, JSON / JSONL or a saved ``datasets`` folder (``readers.py``), converts each row with
its family's converter (``converters.py``), checks the result as ``r4b_verl.data.check`` would
(``rows.py``: a prompt, a ground truth the routed reward reads, placeholders = images), drops
duplicates (question + images), splits train / val deterministically (``split.py``) and writes
``DIR/train.parquet``, ``DIR/val.parquet`` and ``DIR/summary.json``. Bad source rows are named
(file, row index, reason), counted and skipped; ``--strict`` stops at the first one.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from r4b_verl.reward.settings import Settings

from .converters import FAMILIES, BadRow, Family, data_source_for
from .images import image_digest
from .readers import InputError, read_dataset
from .rows import row_problems
from .split import question_key, split_order, val_count
from .summary import OutputSummary, table

SHOW = 20  # bad rows printed; all are counted


@dataclass
class Prepared:
    row: dict  # the verl row, without extra_info.split / index (set when written)
    key: str  # de-duplication key
    source_row: int


class PrepareError(RuntimeError):
    """A preparation run that cannot go on (``--strict`` on a bad row, nothing left to write)."""


def verl_row(name: str, family: Family, example, data_source: str | None, source: str, index: int) -> dict:
    row = {
        "data_source": data_source_for(family, example, data_source),
        "prompt": [{"role": "user", "content": example.prompt}],
        "ability": family.ability,
        "reward_model": {"style": "rule", "ground_truth": example.answer},
        "extra_info": {"dataset": name, "source_file": source, "source_row": index, "question": example.question,
                       "answer": example.answer},
    }
    if family.images:
        row["images"] = [{"bytes": data} for data in example.images]
    return row


def convert_all(name: str, path: str, *, split: str | None, limit: int | None, data_source: str | None,
                strict: bool, settings: Settings, dropped: Counter, shown: list[str]) -> list[Prepared]:
    """Converted and checked rows of one input, first occurrence of each key only."""
    from tqdm import tqdm

    family = FAMILIES[name]
    dataset, _ = read_dataset(path, split)
    if limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))
    base_dir = Path(path) if Path(path).is_dir() else Path(path).parent
    seen: set[str] = set()
    out = []

    def bad(index: int, reason: str, detail: str):
        if strict:
            raise PrepareError(f"{path}: row {index}: {detail} (--strict; without it the row is skipped)")
        dropped[reason] += 1
        if len(shown) < SHOW:
            shown.append(f"{path}: row {index}: {detail}")

    for index, source_row in enumerate(tqdm(dataset, desc=f"{name} {Path(path).name}", unit=" rows", disable=None)):
        try:
            example = family.convert(source_row, base_dir)
        except BadRow as exc:
            bad(index, exc.reason, str(exc))
            continue
        row = verl_row(name, family, example, data_source, str(path), index)
        problems = row_problems(row, settings)
        if problems:
            bad(index, problems[0][0], "; ".join(f"{k}: {d}" for k, d in problems))
            continue
        key = question_key(example.prompt, [image_digest(b) for b in example.images])
        if key in seen:
            dropped["duplicate"] += 1
            continue
        seen.add(key)
        out.append(Prepared(row, key, index))
    return out


def write(rows: list[Prepared], split: str, path: Path, summary: OutputSummary) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = []
    for index, item in enumerate(rows):
        row = {**item.row, "extra_info": {"split": split, "index": index, **item.row["extra_info"]}}
        records.append(row)
        summary.sources[row["data_source"]] += 1
        summary.image_rows += bool(row.get("images"))
    summary.rows = len(records)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(records), path)


def prepare(name: str, input_path: str, out_dir: str, *, val_input: str | None = None, split: str | None = None,
            val_size: float = 0.05, limit: int | None = None, seed: int = 0, strict: bool = False,
            data_source: str | None = None, settings: Settings = Settings()) -> list[OutputSummary]:  # noqa: B008 - Settings is a frozen dataclass
    """Write ``train.parquet`` (and ``val.parquet`` unless it would be empty) under ``out_dir``."""
    if name not in FAMILIES:
        raise PrepareError(f"unknown --dataset {name!r}; one of {', '.join(FAMILIES)}")
    out = Path(out_dir)
    train_drop, val_drop, shown = Counter(), Counter(), []
    rows = convert_all(name, input_path, split=split, limit=limit, data_source=data_source, strict=strict,
                       settings=settings, dropped=train_drop, shown=shown)
    if val_input is not None:
        val = convert_all(name, val_input, split=split, limit=limit, data_source=data_source, strict=strict,
                          settings=settings, dropped=val_drop, shown=shown)
        val_keys = {item.key for item in val}
        train = [item for item in rows if item.key not in val_keys]
        train_drop["also in the val input"] += len(rows) - len(train)
    else:
        order = split_order([item.key for item in rows], seed)
        n_val = val_count(val_size, len(rows))
        val_positions = set(order[:n_val])
        val = [item for i, item in enumerate(rows) if i in val_positions]
        train = [item for i, item in enumerate(rows) if i not in val_positions]
    for line in shown:
        print(line, file=sys.stderr)
    if not train:
        raise PrepareError(f"no train rows left from {input_path} (dropped: {dict(train_drop)})")
    summaries = [OutputSummary(str(out / "train.parquet"), dropped=train_drop)]
    write(train, "train", out / "train.parquet", summaries[0])
    if val:
        summaries.append(OutputSummary(str(out / "val.parquet"), dropped=val_drop))
        write(val, "val", out / "val.parquet", summaries[1])
    (out / "summary.json").write_text(json.dumps([s.as_dict() for s in summaries], indent=2) + "\n")
    return summaries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m r4b_verl.data.prepare", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, choices=sorted(FAMILIES), help="dataset family (README)")
    parser.add_argument("--input", required=True, help="a .parquet / .json / .jsonl file, a folder of them, or a "
                        "saved datasets folder")
    parser.add_argument("--out", required=True, help="output directory (train.parquet, val.parquet, summary.json)")
    parser.add_argument("--val-input", help="validation rows from this input instead of a split; train rows that "
                        "duplicate one are dropped")
    parser.add_argument("--split", help="split of a saved DatasetDict folder (default: its only split)")
    parser.add_argument("--val-size", type=float, default=0.05, help="validation rows: a fraction (< 1) or a count")
    parser.add_argument("--limit", type=int, help="read only the first N rows of each input")
    parser.add_argument("--seed", type=int, default=0, help="seed of the train/val split")
    parser.add_argument("--strict", action="store_true", help="stop at the first bad row instead of skipping it")
    parser.add_argument("--data-source", help="data_source of the rows (default: the family's; multiple-choice "
                        "rows get _mc appended, which routes them to the choice reward)")
    args = parser.parse_args(argv)
    try:
        summaries = prepare(args.dataset, args.input, args.out, val_input=args.val_input, split=args.split,
                            val_size=args.val_size, limit=args.limit, seed=args.seed, strict=args.strict,
                            data_source=args.data_source)
    except (PrepareError, InputError, ValueError) as exc:
        print(f"[r4b-verl] ERROR: {exc}", file=sys.stderr)
        return 1
    print(table(summaries))
    print(f"summary: {Path(args.out) / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
