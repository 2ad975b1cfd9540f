"""De-duplication keys and the deterministic train/val split.

Key of a row: its normalised question text (NFKC, case-folded, whitespace collapsed) plus the
content hashes of its images, so the same problem over another figure is a different row. The
split orders rows by ``blake2b(seed, key)`` and takes the first ``val_size`` as validation: the
same input and seed give the same split on every machine and Python (no ``hash()``, no RNG state),
and a row's side does not depend on the rows around it except through the val count.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

_SPACES = re.compile(r"\s+")


def question_key(question: str, image_digests: list[str]) -> str:
    text = _SPACES.sub(" ", unicodedata.normalize("NFKC", question)).strip().casefold()
    return hashlib.blake2b("\x00".join([text, *image_digests]).encode("utf-8", "surrogatepass"),
                           digest_size=16).hexdigest()


def val_count(val_size: float, n: int) -> int:
    """``val_size`` < 1 is a fraction of ``n`` (rounded), >= 1 a row count (at most ``n``)."""
    if val_size < 0:
        raise ValueError(f"--val-size must be >= 0, got {val_size}")
    count = round(val_size * n) if val_size < 1 else int(val_size)
    return min(count, n)


def split_order(keys: list[str], seed: int) -> list[int]:
    """Positions of ``keys`` in split order (validation first)."""
    def rank(i: int) -> bytes:
        return hashlib.blake2b(f"{seed}\x00{keys[i]}".encode(), digest_size=16).digest()

    return sorted(range(len(keys)), key=rank)
