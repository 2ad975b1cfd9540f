"""A fresh output directory for a demo run, without deleting anything the demo did not make.

    python -m r4b_verl.demo.outdir DIR

The demos start from an empty ``OUT`` (a stale checkpoint would be resumed). ``OUT`` is also a common shell
variable (``make prepare`` takes one), so an exported value or a typo must not cost a user a directory:
DIR is emptied only if it is missing, empty, or holds the marker a demo run left there (:data:`MARKER`);
anything else is refused with what to do. The marker is written into the new directory.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

MARKER = ".r4b-verl-demo-output"


class NotADemoDirectory(RuntimeError):
    """DIR holds files no demo run wrote."""


def fresh(path: str | Path) -> Path:
    out = Path(path).expanduser().absolute()
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise NotADemoDirectory(f"OUT={out} is not a directory: choose another OUT")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise NotADemoDirectory(
                f"OUT={out} is not empty and no demo run made it (no {MARKER} in it): the demo would delete it. "
                "Choose another OUT (e.g. OUT=/tmp/my-demo), or empty that directory yourself"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("made by an r4b-verl demo run: the next run may delete this directory\n")
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 1 or argv[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        fresh(argv[0])
    except NotADemoDirectory as exc:
        print(f"[r4b-verl demo] ERROR: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
