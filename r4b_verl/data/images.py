"""Images of a row: whatever a source dataset holds -> the ``{"bytes": ...}`` dicts verl's RLHFDataset opens.

verl's ``RLHFDataset._build_messages`` hands the k-th entry of ``images`` to the k-th ``<image>``
placeholder and opens a dict's ``bytes`` with PIL (a dict with ``bytes: None`` fails there), so
prepared rows always embed the encoded image: the parquet then works on any node, wherever the
source files were. Decoding is checked with PIL (verl's ``vision_utils.process_image`` needs
``qwen_vl_utils``, which needs torchvision; the check must not depend on it).
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from pathlib import Path

PLACEHOLDER = "<image>"  # verl's image placeholder in message content (rl_dataset.py)
MAX_IMAGE_BYTES = 64 << 20  # a larger encoded image is refused, not decoded


class ImageError(ValueError):
    """An image that cannot be read or decoded; the message says which and why."""


def encoded_bytes(value, base_dir: str | os.PathLike | None = None) -> bytes:
    """The encoded image (PNG, JPEG, ...) of one source image value.

    Accepted: ``PIL.Image`` (re-encoded as PNG), raw bytes, a dict with ``bytes`` (HF ``Image``
    feature) or ``path``, or a path string (relative paths resolve against ``base_dir``).
    """
    from PIL import Image

    if isinstance(value, Image.Image):
        out = io.BytesIO()
        value.save(out, format="PNG")
        return out.getvalue()
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
    elif isinstance(value, dict):
        if value.get("bytes") is not None:
            return encoded_bytes(value["bytes"], base_dir)
        if value.get("path"):
            return encoded_bytes(str(value["path"]), base_dir)
        if value.get("image") is not None:
            return encoded_bytes(value["image"], base_dir)
        raise ImageError(f"image dict has neither bytes nor path (keys {sorted(value)})")
    elif isinstance(value, (str, os.PathLike)):
        path = Path(str(value).removeprefix("file://"))
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        if not path.is_file():
            raise ImageError(f"image file not found: {path}")
        if path.stat().st_size > MAX_IMAGE_BYTES:
            raise ImageError(f"image file {path} is larger than {MAX_IMAGE_BYTES} bytes")
        data = path.read_bytes()
    else:
        raise ImageError(f"unsupported image value of type {type(value).__name__}")
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageError(f"image of {len(data)} bytes is larger than {MAX_IMAGE_BYTES}")
    return data


def decode_problem(data) -> str | None:
    """None if ``data`` (encoded bytes) decodes fully with PIL, else why not.

    PIL's decompression-bomb guard applies (its warning counts as a failure): untrusted pixels.
    """
    from PIL import Image

    if not isinstance(data, (bytes, bytearray, memoryview)) or not data:
        return "no image bytes"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(bytes(data))) as image:
                image.load()
                if image.width < 1 or image.height < 1:
                    return "image has no pixels"
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad row
        return f"image does not decode ({type(exc).__name__}: {str(exc)[:120]})"
    return None


def image_digest(data: bytes) -> str:
    """A short content hash of an encoded image (de-duplication key part)."""
    return hashlib.blake2b(data, digest_size=12).hexdigest()

