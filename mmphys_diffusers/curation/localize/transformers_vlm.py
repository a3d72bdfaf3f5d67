"""Localiser with a local transformers VLM (Qwen2.5-VL, Qwen3-VL, or any image-text-to-text model)."""

from __future__ import annotations

import numpy as np

from ...errors import MMPhysInputError
from ..registry import LOCALIZERS
from .vlm import VLMLocalizer


@LOCALIZERS.register("transformers_vlm")
class TransformersVLMLocalizer(VLMLocalizer):
    """Runs `generate` of a transformers VLM loaded with ``from_pretrained``.

    Args:
        model: local folder or Hub id (e.g. "Qwen/Qwen2.5-VL-7B-Instruct", "Qwen/Qwen3-VL-8B-Instruct").
        model_class: a transformers class name (e.g. "Qwen2_5_VLForConditionalGeneration"); "auto" uses
            AutoModelForImageTextToText.
        device, dtype: placement and precision ("cuda", "bfloat16", ...).
        max_new_tokens: answer length limit.
        box_format: "auto" picks the model family's convention: Qwen2/2.5-VL write absolute pixels of
            the image *as resized by the processor*, Qwen3-VL writes 0..1000; else see `VLMLocalizer`.
        num_frames: frames shown to the model.
    """

    name = "transformers_vlm"

    def __init__(
        self,
        model: str,
        model_class: str = "auto",
        device: str = "cpu",
        dtype: str = "float32",
        max_new_tokens: int = 1024,
        box_format: str = "auto",
        num_frames: int = 8,
    ):
        import torch
        import transformers

        from ..extract.segmentation import _torch_dtype

        super().__init__(num_frames=num_frames, box_format=box_format)
        self.device = device
        self.max_new_tokens = max_new_tokens
        try:
            self.processor = transformers.AutoProcessor.from_pretrained(model)
        except (ImportError, AttributeError, OSError, ValueError, TypeError) as exc:
            # Qwen-VL processors also build a video processor, which needs torchvision; images need only these two.
            self.processor = ImageTextProcessor(
                transformers.AutoTokenizer.from_pretrained(model), transformers.AutoImageProcessor.from_pretrained(model), reason=str(exc)
            )
        cls = transformers.AutoModelForImageTextToText if model_class == "auto" else getattr(transformers, model_class, None)
        if cls is None:
            raise MMPhysInputError(f"transformers has no class {model_class!r} (option model_class of transformers_vlm)")
        self.model = cls.from_pretrained(model, dtype=_torch_dtype(dtype)).to(device).eval()
        model_type = getattr(self.model.config, "model_type", "")
        if box_format == "auto":
            self.box_format = {"qwen2_vl": "resized", "qwen2_5_vl": "resized", "qwen3_vl": "normalized_1000", "qwen3_vl_moe": "normalized_1000"}.get(model_type, "pixels")
        self._resized_hw: tuple[int, int] | None = None
        self._torch = torch

    def box_scale(self, width: int, height: int) -> tuple[float, float]:
        if self.box_format == "resized" and self._resized_hw is not None:
            rh, rw = self._resized_hw
            return width / rw, height / rh
        return super().box_scale(width, height)

    def generate(self, images: list[np.ndarray], frame_indices: list[int], prompt: str) -> str:
        from PIL import Image

        content = []
        for idx in frame_indices:
            content += [{"type": "text", "text": f"Frame {idx}:"}, {"type": "image"}]
        content.append({"type": "text", "text": prompt})
        messages = [{"role": "system", "content": [{"type": "text", "text": self.system_prompt}]}, {"role": "user", "content": content}]
        text = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = self.processor(text=[text], images=[Image.fromarray(im) for im in images], return_tensors="pt").to(self.device)
        grid = inputs.get("image_grid_thw")
        if grid is not None:
            # Qwen-VL patches are patch_size px; the grid gives the resized image the boxes refer to.
            patch = getattr(getattr(self.processor, "image_processor", None), "patch_size", 14)
            self._resized_hw = (int(grid[0][1]) * patch, int(grid[0][2]) * patch)
        with self._torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        new_tokens = out[:, inputs["input_ids"].shape[1] :]
        return self.processor.batch_decode(new_tokens, skip_special_tokens=True)[0]


class ImageTextProcessor:
    """A minimal stand-in for a Qwen-VL style processor (tokenizer + image processor), used when the
    model's own processor cannot load (its video half needs torchvision).

    It renders the chat template with the tokenizer, runs the image processor, and expands each image
    placeholder token to one token per merged vision patch, as the Qwen-VL processors do.
    """

    def __init__(self, tokenizer, image_processor, image_token: str = "<|image_pad|>", reason: str = ""):
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.image_token = getattr(tokenizer, "image_token", None) or image_token
        self.reason = reason

    def apply_chat_template(self, messages, add_generation_prompt: bool = True, tokenize: bool = False) -> str:
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, tokenize=tokenize)

    def __call__(self, text: list[str], images, return_tensors: str = "pt"):
        from transformers import BatchFeature

        image_inputs = self.image_processor(images=images, return_tensors=return_tensors)
        merge = getattr(self.image_processor, "merge_size", 2)
        counts = [int(g.prod()) // (merge**2) for g in image_inputs["image_grid_thw"]]
        expanded = []
        k = 0
        for t in text:
            parts = t.split(self.image_token)
            if len(parts) - 1 > len(counts) - k:
                raise MMPhysInputError(f"prompt has {len(parts) - 1} image placeholders but {len(counts)} images were given")
            out = parts[0]
            for part in parts[1:]:
                out += self.image_token * counts[k] + part
                k += 1
            expanded.append(out)
        text_inputs = self.tokenizer(expanded, return_tensors=return_tensors, padding=True)
        return BatchFeature({**text_inputs, **image_inputs})

    def batch_decode(self, *args, **kwargs):
        return self.tokenizer.batch_decode(*args, **kwargs)
