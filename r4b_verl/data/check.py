"""Check verl RL files before training: ``python -m r4b_verl.data.check FILE... [--drop-bad OUT]``.

Every row must have a ``data_source``, a ``prompt`` of chat messages (that the chat template
renders, with ``--tokenizer``), a ground truth the routed reward can read (a null one would score
every response 0 without a word), as many ``<image>`` placeholders as ``images`` and images that
decode. Bad rows are named by file and row index; the command fails (exit 1) unless ``--drop-bad``
writes the good rows elsewhere. ``--cheap`` skips image decoding (what the trainer start-up runs).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from r4b_verl.reward.settings import Settings

from .rows import row_problems

BATCH_ROWS = 1024
SHOW = 20  # bad rows printed per file; all are counted


class DataCheckError(ValueError):
    """Rows of an RL file are not trainable; the message names file, row index and reason."""


@dataclass
class FileReport:
    path: str
    rows: int = 0
    bad: dict[int, list[tuple[str, str]]] = field(default_factory=dict)  # row index -> problems

    def counts(self) -> Counter:
        return Counter(kind for problems in self.bad.values() for kind, _ in problems)

    def lines(self, show: int = SHOW) -> list[str]:
        out = [f"{self.path}: row {i}: {'; '.join(f'{k}: {d}' for k, d in problems)}"
               for i, problems in list(self.bad.items())[:show]]
        if len(self.bad) > show:
            out.append(f"{self.path}: ... {len(self.bad) - show} more bad rows")
        return out

    def summary(self) -> str:
        if not self.bad:
            return f"{self.path}: {self.rows} rows, all good"
        reasons = ", ".join(f"{kind} {n}" for kind, n in self.counts().most_common())
        return f"{self.path}: {len(self.bad)} of {self.rows} rows bad ({reasons})"


def _parquet_rows(path: Path, prompt_key: str, image_key: str, decode: bool) -> Iterator[tuple[int, dict, int | None]]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    names = set(pf.schema_arrow.names)
    columns = [c for c in ("data_source", prompt_key, "reward_model", image_key) if c in names]
    index = 0
    for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=columns):
        lengths = None
        if image_key in names and not decode:
            # list lengths straight from Arrow: the cheap check never turns image bytes into Python objects
            lengths = pc.fill_null(pc.list_value_length(batch.column(image_key)), 0).to_pylist()
            batch = batch.drop_columns([image_key])
        for k, row in enumerate(batch.to_pylist()):
            yield index, row, (lengths[k] if lengths is not None else None)
            index += 1


def _json_rows(path: Path) -> Iterator[tuple[int, dict, None]]:
    import datasets

    for index, row in enumerate(datasets.load_dataset("json", data_files=str(path), split="train")):
        yield index, row, None


def check_file(path, settings: Settings = Settings(), *, decode: bool = True, tokenizer=None,  # noqa: B008 - Settings is a frozen dataclass
               template_kwargs: Mapping | None = None, max_prompt_length: int | None = None,
               prompt_key: str = "prompt", image_key: str = "images", progress: bool = False,
               reward: str | None = None) -> FileReport:
    """Check every row of one ``.parquet`` / ``.json`` / ``.jsonl`` RL file."""
    path = Path(path)
    if path.is_dir():
        found = sorted(p.name for p in path.iterdir() if p.suffix.lower() in (".parquet", ".json", ".jsonl"))
        hint = f" (it holds {', '.join(found[:5])}{' ...' if len(found) > 5 else ''}: name the file)" if found else ""
        raise DataCheckError(f"{path} is a directory; the check takes RL files{hint}")
    if not path.is_file():
        raise DataCheckError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        rows = _parquet_rows(path, prompt_key, image_key, decode)
    elif suffix in (".json", ".jsonl"):
        rows = _json_rows(path)
    else:
        raise DataCheckError(f"{path}: verl reads .parquet, .json or .jsonl RL files")
    if progress:
        from tqdm import tqdm

        rows = tqdm(rows, desc=f"checking {path.name}", unit=" rows", disable=None)
    report = FileReport(str(path))
    for index, row, n_images in rows:
        report.rows += 1
        problems = row_problems(row, settings, prompt_key=prompt_key, image_key=image_key, n_images=n_images,
                                decode=decode, base_dir=path.parent, tokenizer=tokenizer,
                                template_kwargs=template_kwargs, max_prompt_length=max_prompt_length, reward=reward)
        if problems:
            report.bad[index] = problems
    return report


def write_good_rows(report: FileReport, out: Path) -> int:
    """The rows of ``report.path`` that passed, written to ``out`` (parquet); returns how many."""
    import datasets

    src = Path(report.path)
    if out.resolve() == src.resolve():
        raise DataCheckError(f"--drop-bad {out} is the input file itself: write the good rows elsewhere")
    builder = "parquet" if src.suffix.lower() == ".parquet" else "json"
    table = datasets.load_dataset(builder, data_files=str(src), split="train")
    keep = [i for i in range(len(table)) if i not in report.bad]
    out.parent.mkdir(parents=True, exist_ok=True)
    table.select(keep).to_parquet(str(out))
    return len(keep)


def _load_tokenizer(path: str | None):
    if not path:
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def _routes(items: list[str]) -> tuple[tuple[str, str], ...]:
    routes = []
    for item in items:
        pattern, sep, reward = item.partition("=")
        if not sep or not pattern or not reward:
            raise SystemExit(f"--route {item!r}: write PATTERN=REWARD, e.g. --route 'my_set*=choice'")
        routes.append((pattern, reward))
    return tuple(routes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m r4b_verl.data.check", description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", help="RL files (.parquet, .json, .jsonl)")
    parser.add_argument("--drop-bad", metavar="OUT", help="write the good rows here (a file for one input, a "
                        "directory for several) and exit 0")
    parser.add_argument("--tokenizer", help="tokenizer (or model) path: render every prompt with its chat template")
    parser.add_argument("--max-prompt-length", type=int, help="with --tokenizer: rows longer than this are bad "
                        "(verl drops them silently)")
    parser.add_argument("--cheap", action="store_true", help="no image decoding (the trainer start-up check)")
    parser.add_argument("--route", action="append", default=[], metavar="PATTERN=REWARD",
                        help="as reward_kwargs.routes (checked before the built-in routes)")
    parser.add_argument("--default", default="math", help="reward of unrouted data sources (reward_kwargs.default)")
    parser.add_argument("--prompt-key", default="prompt")
    parser.add_argument("--image-key", default="images")
    args = parser.parse_args(argv)
    settings = Settings(routes=_routes(args.route), default=args.default)
    tokenizer = _load_tokenizer(args.tokenizer)
    reports = []
    for name in args.files:
        try:
            report = check_file(name, settings, decode=not args.cheap, tokenizer=tokenizer,
                                max_prompt_length=args.max_prompt_length, prompt_key=args.prompt_key,
                                image_key=args.image_key, progress=True)
        except DataCheckError as exc:
            print(f"[r4b-verl] ERROR: {exc}", file=sys.stderr)
            return 2
        for line in report.lines():
            print(line)
        reports.append(report)
    for report in reports:
        print(report.summary())
    if not any(r.bad for r in reports):
        return 0
    if not args.drop_bad:
        print("bad rows found: fix them, or write the good rows with --drop-bad OUT", file=sys.stderr)
        return 1
    out = Path(args.drop_bad)
    for report in reports:
        target = out if len(reports) == 1 else out / Path(report.path).name
        try:
            kept = write_good_rows(report, target)
        except DataCheckError as exc:
            print(f"[r4b-verl] ERROR: {exc}", file=sys.stderr)
            return 2
        print(f"wrote {kept} good rows of {report.path} to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
