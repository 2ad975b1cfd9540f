"""PIL-only image extraction for verl's RL data path: what ``qwen_vl_utils.process_vision_info`` does
for images, without its module-level ``import torchvision``.

verl calls ``qwen_vl_utils`` for every image row (``utils/dataset/rl_dataset.py``,
``RLHFDataset._process_multi_modal_info``); where torchvision is missing or broken (only CUDA wheels
reachable for a CPU torch: ``operator torchvision::nms does not exist``) the import fails, and verl's
length filter turns that into "skipping" EVERY row. This module reads the same message parts
(``{"type": "image", "image": PIL.Image | path | file:// | data:image;base64,...}``) and resizes
each image like ``qwen_vl_utils.fetch_image``: to sides that are multiples of
``factor = image_patch_size * 2`` (patch x spatial merge) with ``min_pixels <= h * w <= max_pixels``
(the part's own ``min_pixels`` / ``max_pixels`` / ``resized_height`` + ``resized_width`` win).

Untrusted rows: no URL is fetched (``http(s)://`` is refused, naming the row's part), and PIL's
decompression-bomb limit applies. Videos are refused with the fix (they need ``qwen_vl_utils``).
"""

from __future__ import annotations

import base64
import io
import os
from typing import Any

# qwen_vl_utils' defaults (vision_process.py): 4 .. 16384 merged tokens per image
IMAGE_MIN_TOKENS, IMAGE_MAX_TOKENS, SPATIAL_MERGE = 4, 16384, 2


class ImageInputError(ValueError):
    """An image part that cannot be read; the message names the part."""


def _open(source: Any):
    from PIL import Image

    if isinstance(source, Image.Image):
        return source
    if isinstance(source, (bytes, bytearray)):
        return Image.open(io.BytesIO(bytes(source)))
    if isinstance(source, dict) and "bytes" in source and source["bytes"] is not None:
        return Image.open(io.BytesIO(source["bytes"]))
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str):
        raise ImageInputError(f"unsupported image value of type {type(source).__name__}")
    if source.startswith(("http://", "https://")):
        raise ImageInputError(f"image URLs are not fetched (untrusted rows must not make requests): {source[:80]!r}")
    if source.startswith("data:image"):
        _, sep, payload = source.partition("base64,")
        if not sep:
            raise ImageInputError("a data:image URI without base64 payload")
        return Image.open(io.BytesIO(base64.b64decode(payload)))
    return Image.open(source[len("file://"):] if source.startswith("file://") else source)


def fetch_image(part: dict, image_patch_size: int = 14):
    """One message part -> an RGB PIL image resized as qwen_vl_utils.fetch_image resizes it."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

    source = part.get("image", part.get("image_url"))
    image = _open(source if source is not None else part)  # a bare {"bytes": ...} part, as datasets writes
    image.load()
    image = image.convert("RGB")
    factor = int(image_patch_size * SPATIAL_MERGE)
    if "resized_height" in part and "resized_width" in part:
        height, width = smart_resize(int(part["resized_height"]), int(part["resized_width"]), factor=factor,
                                     min_pixels=factor * factor, max_pixels=IMAGE_MAX_TOKENS * factor * factor)
    else:
        width, height = image.size
        height, width = smart_resize(
            height, width, factor=factor,
            min_pixels=int(part.get("min_pixels", IMAGE_MIN_TOKENS * factor * factor)),
            max_pixels=int(part.get("max_pixels", IMAGE_MAX_TOKENS * factor * factor)),
        )
    return image.resize((width, height))


def vision_parts(messages: list[dict]) -> list[dict]:
    """The image / video parts of ``messages``, in order (as qwen_vl_utils.extract_vision_info)."""
    parts = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            parts.extend(p for p in content if isinstance(p, dict) and (
                p.get("type") in ("image", "image_url", "video") or "image" in p or "video" in p))
    return parts


def process_images(messages: list[dict], image_patch_size: int = 14):
    """``(images or None, None)``: the return shape of ``process_vision_info(..., return_video_metadata=True)``."""
    images = []
    for index, part in enumerate(vision_parts(messages)):
        if part.get("type") == "video" or "video" in part:
            raise ImageInputError(
                "a video part: the PIL-only image path reads images only; videos need qwen_vl_utils with a "
                "working torchvision (use data.custom_cls of verl's RLHFDataset)"
            )
        try:
            images.append(fetch_image(part, image_patch_size))
        except ImageInputError:
            raise
        except Exception as exc:  # noqa: BLE001 - PIL raises many types for bad bytes; name the part
            raise ImageInputError(f"image part {index} cannot be decoded: {exc!r}") from exc
    return images or None, None
