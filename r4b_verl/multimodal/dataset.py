"""``PILImageDataset``: verl's ``RLHFDataset`` with the PIL-only image path and a loud start-up check.

Selected by ``data.custom_cls`` (the multimodal recipe ``r4b_bpo_mm_cpu`` sets it)::

    data.custom_cls.path=pkg://r4b_verl.multimodal.dataset  data.custom_cls.name=PILImageDataset

verl uses the same class in the trainer (length filter) and in every agent loop
(``agent_loop.py``: ``get_dataset_class(config.data)``), so both read images with
:func:`r4b_verl.multimodal.images.process_images` instead of ``qwen_vl_utils``. Before verl's
length filter runs, :func:`r4b_verl.multimodal.startup.check_image_rows` refuses image rows the run
could not use (no processor; a broken image helper) with the fix, instead of verl's warning and
silently dropped rows.
"""

from __future__ import annotations

from verl.utils.dataset.rl_dataset import RLHFDataset

from r4b_verl.multimodal.images import process_images


class PILImageDataset(RLHFDataset):
    """``RLHFDataset`` reading images with PIL only (no torchvision), checked at start-up."""

    def maybe_filter_out_long_prompts(self, dataframe=None):
        from r4b_verl.multimodal.startup import check_image_rows

        check_image_rows(dataframe, self.data_files, self.image_key, self.video_key, self.processor, type(self))
        return super().maybe_filter_out_long_prompts(dataframe)

    @classmethod
    def _process_multi_modal_info(cls, messages, image_patch_size, config):
        images, videos = process_images(messages, image_patch_size=image_patch_size)
        return images, videos, cls._extract_audio_info(messages)

    @classmethod
    async def process_vision_info(cls, messages, image_patch_size, config):
        return process_images(messages, image_patch_size=image_patch_size)
