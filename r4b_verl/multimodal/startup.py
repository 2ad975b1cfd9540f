"""Start-up checks of a run with image rows: refuse, naming the fix, what verl lets pass silently.

verl 0.9.1 has two silent failures on this path (both confirmed in the installed code):

1. ``verl.utils.tokenizer.hf_processor`` catches any processor load error, warns
   "Failed to create processor: ..." and returns None; the run carries on without a processor.
2. ``RLHFDataset._process_multi_modal_info`` imports ``qwen_vl_utils``, which imports torchvision
   at module level; when that fails, the length filter (``maybe_filter_out_long_prompts``) prints
   "Error processing one of the samples, skipping..." for EVERY image row and drops them all.

:func:`check_image_rows` runs in :class:`r4b_verl.multimodal.dataset.PILImageDataset` before that
filter (the trainer process); :func:`check_image_support` runs in the BPO agent-loop worker
(``r4b_verl/rollout/worker.py``) for any dataset class, from the data files' first rows.
"""

from __future__ import annotations

from typing import Any

DATASET_FIX = (
    "data.custom_cls.path=pkg://r4b_verl.multimodal.dataset data.custom_cls.name=PILImageDataset "
    "(reads images with PIL only; +recipe=r4b_bpo_mm_cpu sets it), or install a torchvision build that "
    "matches the installed torch"
)
PROCESSOR_FIX = (
    "verl's hf_processor failed to load a processor from actor_rollout_ref.model.path (it only warns "
    "'Failed to create processor: ...'; the reason is in that warning above). Check that the model folder "
    "holds the processor files (preprocessor_config.json, processor_config.json), set "
    "actor_rollout_ref.model.trust_remote_code=true for a remote-code processor, and note that transformers' "
    "stock Qwen2-VL/Qwen2.5-VL processors need torchvision for their video processor"
)


class MultimodalSetupError(RuntimeError):
    """The data has images but this run could not use them."""


def _probe_image():
    from PIL import Image

    return Image.new("RGB", (56, 56), (255, 0, 0))


def check_image_helper(dataset_cls: type, image_patch_size: int = 14, config: Any = None) -> None:
    """Run ``dataset_cls``'s own image extraction on a synthetic image; raise with the fix if it fails."""
    messages = [{"role": "user",
                 "content": [{"type": "image", "image": _probe_image()}, {"type": "text", "text": "?"}]}]
    try:
        images, _videos, *_ = dataset_cls._process_multi_modal_info(messages, image_patch_size, config)
    except Exception as exc:  # noqa: BLE001 - verl turns this very error into silently dropped rows
        raise MultimodalSetupError(
            f"the data has image rows but the dataset class {dataset_cls.__module__}.{dataset_cls.__qualname__} "
            f"cannot read images ({exc!r}); verl's length filter would drop every image row. Fix: {DATASET_FIX}"
        ) from exc
    if not images:
        raise MultimodalSetupError(
            f"{dataset_cls.__qualname__}._process_multi_modal_info returned no image for an image part; "
            f"fix the dataset class, or {DATASET_FIX}"
        )


def _refuse(n_image_rows: int, where: str, processor: Any, dataset_cls: type, image_patch_size: int, config) -> None:
    if processor is None:
        raise MultimodalSetupError(
            f"{where} has {n_image_rows} image row(s) but this run has no processor: {PROCESSOR_FIX}")
    check_image_helper(dataset_cls, image_patch_size, config)


def _patch_size(processor: Any) -> int:
    return int(getattr(getattr(processor, "image_processor", None), "patch_size", 14) or 14)


def count_media_rows(table, keys: tuple[str, ...]) -> int:
    """Rows of a pyarrow table with a non-empty list in any of ``keys`` (missing columns count 0)."""
    import pyarrow.compute as pc

    total = None
    for key in keys:
        if key not in table.column_names:
            continue
        lengths = pc.fill_null(pc.list_value_length(table.column(key)), 0)
        has = pc.greater(lengths, 0)
        total = has if total is None else pc.or_(total, has)
    return 0 if total is None else int(pc.sum(pc.cast(total, "int64")).as_py() or 0)


def check_image_rows(dataframe, data_files, image_key: str, video_key: str, processor: Any, dataset_cls: type,
                     config: Any = None) -> int:
    """In the dataset, before verl's length filter: refuse image rows without processor or image helper.

    ``dataframe`` is the ``datasets.Dataset`` verl loaded; only the media columns' list lengths are
    read (Arrow, no image decoding). Returns the number of image/video rows.
    """
    n = count_media_rows(dataframe.data.table if hasattr(dataframe.data, "table") else dataframe.data,
                         (image_key, video_key))
    if n:
        _refuse(n, f"{list(data_files)}", processor, dataset_cls, _patch_size(processor), config)
    return n


def check_image_support(data_config: Any, processor: Any, dataset_cls: type, rows_per_file: int = 256) -> int:
    """In the BPO worker, for any dataset class: the first ``rows_per_file`` rows of each data file.

    Cheap on purpose (one Arrow batch per file, media columns only); the full per-row check of the
    data is the data checker's job. Returns the number of image/video rows seen.
    """
    import pyarrow.parquet as pq

    keys = (data_config.get("image_key", "images"), data_config.get("video_key", "videos"))
    seen = 0
    for key in ("train_files", "val_files"):
        files = data_config.get(key, None) or []
        for path in [files] if isinstance(files, str) else list(files):
            try:
                handle = pq.ParquetFile(path)
            except Exception:  # noqa: BLE001 - not a local parquet (remote, or verl's own error will name it)
                continue
            columns = [k for k in keys if k in handle.schema_arrow.names]
            if not columns:
                continue
            batch = next(handle.iter_batches(batch_size=rows_per_file, columns=columns), None)
            if batch is None:
                continue
            import pyarrow as pa

            n = count_media_rows(pa.Table.from_batches([batch]), tuple(columns))
            if n:
                _refuse(n, f"data.{key} {path} (first {rows_per_file} rows)", processor, dataset_cls,
                        _patch_size(processor), data_config)
            seen += n
    return seen
