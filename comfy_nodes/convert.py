"""Conversions between ComfyUI value types and mmphys_diffusers' arrays.

ComfyUI types used by the pack:
    IMAGE  float32 torch ``[B,H,W,C]`` in [0, 1]; a video is a batch of its frames (B = F).
    MASK   float32 torch ``[B,H,W]`` in [0, 1].
Library conventions:
    RGB video    uint8 numpy ``[F,H,W,3]`` (utils.video_io) or float ``[F,H,W,3]`` in [0, 1];
    pseudo-RGB   float32 numpy ``[F,3,H,W]`` in [0, 1] (perception codecs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from mmphys_diffusers.errors import MMPhysInputError

# Custom ComfyUI type names (links only connect outputs and inputs of the same name).
PIPELINE_TYPE = "MMPHYS_PIPELINE"
PERCEPTION_TYPE = "MMPHYS_PERCEPTION"


@dataclass
class PerceptionPayload:
    """What flows along an ``MMPHYS_PERCEPTION`` link.

    Attributes:
        cue: codec name (``mmphys_diffusers.perception.available_cues()``).
        video: pseudo-RGB float32 ``[F,3,H,W]`` in [0, 1].
        meta: the codec meta needed to decode `video` (e.g. a depth range); {} = codec defaults.
        arrays: cue arrays when already known exactly (e.g. straight from an extractor), else None.
    """

    cue: str
    video: np.ndarray = field(repr=False)
    meta: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] | None = field(default=None, repr=False)

    @property
    def num_frames(self) -> int:
        return int(self.video.shape[0])


def image_to_frames(image: Any, name: str = "images") -> np.ndarray:
    """ComfyUI IMAGE ``[B,H,W,C]`` (C = 3, or 4 with alpha dropped) -> float32 numpy ``[F,H,W,3]`` in [0, 1]."""
    if isinstance(image, np.ndarray):
        image = torch.from_numpy(image)
    if not isinstance(image, torch.Tensor):
        raise MMPhysInputError(f"`{name}` must be a ComfyUI IMAGE (a torch tensor [B,H,W,3]), got {type(image).__name__}")
    if image.ndim == 3 and image.shape[-1] in (3, 4):  # one frame without its batch dim
        image = image[None]
    if image.ndim != 4 or image.shape[-1] not in (3, 4):
        raise MMPhysInputError(f"`{name}` must be an IMAGE batch shaped [B,H,W,3] (frames, height, width, RGB), got shape {tuple(image.shape)}")
    if min(image.shape[:3]) == 0:
        raise MMPhysInputError(f"`{name}` is empty (shape {tuple(image.shape)})")
    if not image.is_floating_point():
        raise MMPhysInputError(f"`{name}` must hold floats in [0, 1], got dtype {image.dtype}")
    frames = image[..., :3].detach().to("cpu", torch.float32).numpy()
    if not np.isfinite(frames).all():
        raise MMPhysInputError(f"`{name}` contains NaN or Inf; expected floats in [0, 1]")
    return np.clip(frames, 0.0, 1.0)


def frames_to_image(frames: Any) -> torch.Tensor:
    """uint8 ``[F,H,W,3]`` or float ``[F,H,W,3]`` in [0, 1] (numpy or torch) -> ComfyUI IMAGE."""
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().to("cpu").numpy() if frames.dtype == torch.uint8 else frames.detach().to("cpu", torch.float32).numpy()
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise MMPhysInputError(f"video frames must be shaped [F,H,W,3], got {tuple(frames.shape)}")
    if frames.dtype == np.uint8:
        out = frames.astype(np.float32) / 255.0
    else:
        out = np.clip(frames.astype(np.float32), 0.0, 1.0)
    return torch.from_numpy(np.ascontiguousarray(out))


def pseudo_rgb_to_image(video: np.ndarray) -> torch.Tensor:
    """Pseudo-RGB ``[F,3,H,W]`` in [0, 1] -> ComfyUI IMAGE ``[F,H,W,3]``."""
    return frames_to_image(np.asarray(video, dtype=np.float32).transpose(0, 2, 3, 1))


def image_to_pseudo_rgb(image: Any, name: str = "pseudo_rgb") -> np.ndarray:
    """ComfyUI IMAGE -> pseudo-RGB float32 ``[F,3,H,W]`` in [0, 1]."""
    return np.ascontiguousarray(image_to_frames(image, name).transpose(0, 3, 1, 2))


def to_mask(values: np.ndarray) -> torch.Tensor:
    """Float ``[F,H,W]`` in [0, 1] -> ComfyUI MASK."""
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 3:
        raise MMPhysInputError(f"a MASK must be shaped [F,H,W], got {tuple(values.shape)}")
    return torch.from_numpy(np.ascontiguousarray(np.clip(values, 0.0, 1.0)))
