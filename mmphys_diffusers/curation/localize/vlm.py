"""Shared logic of VLM localisers: frame sampling, the evidence prompt, answer parsing and box rescaling."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np

from ...errors import MMPhysInputError
from ..prompts import SYSTEM_PROMPT, build_prompt, sample_frame_indices
from ..schema import extract_json, validate_localization
from .base import Localizer

BOX_FORMATS = ("pixels", "normalized", "normalized_1000")


class VLMLocalizer(Localizer):
    """Asks a VLM for the chain-of-visual-evidence answer.

    Subclasses implement `generate(images, frame_indices, prompt) -> str`.

    Args:
        num_frames: frames shown to the model (spread evenly over the clip).
        box_format: how the model writes boxes: "pixels" (of the frames shown), "normalized" (0..1)
            or "normalized_1000" (0..1000, Qwen3-VL / Gemini style).
    """

    def __init__(self, num_frames: int = 8, box_format: str = "pixels"):
        if box_format not in BOX_FORMATS + ("auto",):
            raise MMPhysInputError(f"box_format {box_format!r} not supported; expected one of {BOX_FORMATS}")
        self.num_frames = num_frames
        self.box_format = box_format
        self.system_prompt = SYSTEM_PROMPT

    @abstractmethod
    def generate(self, images: list[np.ndarray], frame_indices: list[int], prompt: str) -> str:
        """Return the model's raw text answer for uint8 ``[H,W,3]`` images."""

    def box_scale(self, width: int, height: int) -> tuple[float, float]:
        """Multipliers that turn the model's box units into pixels of the clip."""
        if self.box_format == "normalized":
            return float(width), float(height)
        if self.box_format == "normalized_1000":
            return width / 1000.0, height / 1000.0
        return 1.0, 1.0

    def localize(self, frames: np.ndarray) -> dict[str, Any]:
        f, h, w, _ = frames.shape
        indices = sample_frame_indices(f, self.num_frames)
        text = self.generate([frames[i] for i in indices], indices, build_prompt(indices, w, h))
        answer = extract_json(text)
        sx, sy = self.box_scale(w, h)
        if (sx, sy) != (1.0, 1.0) and isinstance(answer, dict):
            for s in answer.get("subjects", []) if isinstance(answer.get("subjects"), list) else []:
                for ev in s.get("evidence", []) if isinstance(s, dict) else []:
                    box = ev.get("box") if isinstance(ev, dict) else None
                    if isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box):
                        ev["box"] = [box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy]
        return validate_localization(answer, f, h, w)
