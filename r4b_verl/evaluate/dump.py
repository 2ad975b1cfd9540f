"""Read verl's validation generation dumps (``trainer.validation_data_dir/<step>.jsonl``) into checked rows.

verl writes one JSON object per validation response: ``input``, ``output``, ``gts``, ``score``,
``step``, ``uid`` (``<prompt uid>_<session>_<index>``) and every key of the reward's extra info. The
BPO worker adds what the report needs to that extra info (``r4b_verl/think.py``): the mode the prompt
was given (``bpo_mode``), whether the response thought (``bpo_think``), its length in tokens
(``bpo_response_length``) and its ``bpo_data_source``. A line without them was not written by a BPO run.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from r4b_verl.think import LENGTH_INFO_KEY, MODE_KEY, MODES, SOURCE_INFO_KEY, THINK_INFO_KEY


class DumpError(ValueError):
    """A generation dump cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class Response:
    prompt: str  # the prompt's uid: all sessions (and modes) of one prompt share it
    data_source: str
    mode: str  # the mode the prompt was given: think | no_think | auto
    thinks: bool  # the mode the response took
    tokens: int
    acc: float


class Progress:
    """A periodic ``label: N units (R/s)`` line on stderr for long reads; silent for short ones."""

    def __init__(self, label: str, unit: str = "lines", every_s: float = 5.0):
        self.label, self.unit, self.every_s = label, unit, every_s
        self.count, self.start = 0, time.monotonic()
        self.last = self.start

    def tick(self, n: int = 1) -> None:
        self.count += n
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            print(f"{self.label}: {self.count:,} {self.unit} ({self.count / (now - self.start):,.0f}/s)",
                  file=sys.stderr, flush=True)


def jsonl_lines(path: Path) -> Iterator[tuple[int, str]]:
    """The non-empty lines of a JSONL file with their numbers; a progress line on long reads."""
    progress = Progress(f"reading {path}")
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            progress.tick()
            if line.strip():
                yield number, line


def _lines(path: Path) -> Iterator[tuple[int, dict]]:
    for number, line in jsonl_lines(path):
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise DumpError(f"{path}:{number}: not a JSON line ({exc.msg}); the dump is truncated or not "
                            "verl's validation_data_dir output") from None


def read_dump(path: str | Path) -> list[Response]:
    """The responses of one dump file; refuses an empty dump and lines without the BPO worker's keys."""
    path = Path(path)
    if not path.is_file():
        raise DumpError(f"{path}: no such dump file (verl writes trainer.validation_data_dir/<step>.jsonl)")
    responses = []
    for number, line in _lines(path):
        missing = [k for k in (MODE_KEY, THINK_INFO_KEY, LENGTH_INFO_KEY, SOURCE_INFO_KEY, "uid") if k not in line]
        if missing:
            raise DumpError(
                f"{path}:{number}: no {', '.join(missing)}: the dump was not written by a run with r4b-verl's BPO "
                "worker (actor_rollout_ref.rollout.agent.agent_loop_manager_class, set by +recipe=r4b_bpo)"
            )
        if line[MODE_KEY] not in MODES:
            raise DumpError(f"{path}:{number}: bpo_mode={line[MODE_KEY]!r} is not one of {list(MODES)}")
        acc = line.get("acc", line.get("score"))
        responses.append(Response(
            prompt=str(line["uid"]).rsplit("_", 2)[0],
            data_source=str(line[SOURCE_INFO_KEY]),
            mode=line[MODE_KEY],
            thinks=float(line[THINK_INFO_KEY]) > 0.5,
            tokens=int(line[LENGTH_INFO_KEY]),
            acc=float(acc) if acc is not None else 0.0,
        ))
    if not responses:
        raise DumpError(f"{path}: the dump has no responses: the validation wrote nothing (empty data.val_files?)")
    return responses


def newest_dump(directory: str | Path) -> Path:
    """The dump of the latest step in ``directory`` (verl names them ``<global_step>.jsonl``)."""
    dumps = [p for p in Path(directory).glob("*.jsonl") if p.stem.isdigit()]
    if not dumps:
        raise DumpError(f"{directory}: no <step>.jsonl dump (did the run set trainer.validation_data_dir there?)")
    return max(dumps, key=lambda p: int(p.stem))
