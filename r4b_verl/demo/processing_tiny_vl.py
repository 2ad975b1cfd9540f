"""Remote-code processor shipped next to the tiny Qwen2.5-VL (``r4b_verl/demo/tiny_vl.py`` copies it).

transformers' own ``Qwen2_5_VLProcessor`` also needs a video processor, which in transformers 5 needs
torchvision; on a machine without a CPU build of torchvision it can be neither built nor loaded. This
one takes only an image processor and a tokenizer. It keeps the class NAME ``Qwen2_5_VLProcessor``:
verl binds the model's ``get_rope_index`` (3-D M-RoPE positions) by that name
(``verl/utils/tokenizer/tokenizer.py``, ``hf_processor``). Loaded with ``trust_remote_code=true``.
This file must stay self-contained: transformers copies it into its module cache on its own.
"""

from transformers.models.qwen2_5_vl.processing_qwen2_5_vl import Qwen2_5_VLProcessor as _StockProcessor


class Qwen2_5_VLProcessor(_StockProcessor):
    """The stock processor for images only (no video processor, so no torchvision)."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
        self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        # skip the stock __init__ (it passes a video processor); ProcessorMixin takes our two parts
        super(_StockProcessor, self).__init__(image_processor, tokenizer, chat_template=chat_template)
