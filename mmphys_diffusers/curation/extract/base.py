"""Interfaces of the perceptual extractors (segmentation, depth, dense tracks).

All take uint8 frames ``[F, H, W, 3]`` and return arrays in the canonical cue
format of `mmphys_diffusers.data.manifest.CUE_ARRAYS`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np


class Segmenter(ABC):
    name: str = "base"

    @abstractmethod
    def segment(self, frames: np.ndarray, localization: dict[str, Any]) -> np.ndarray:
        """Instance masks seeded by the localiser's subjects.

        Returns int32 ``[F, H, W]``: 0 background, k the subject with id k.
        """


class DepthEstimator(ABC):
    name: str = "base"

    @abstractmethod
    def estimate(self, frames: np.ndarray, instances: np.ndarray | None = None) -> np.ndarray:
        """Depth float32 ``[F, H, W]``, > 0 (relative scale unless the backend says metric)."""


class Tracker(ABC):
    name: str = "base"

    @abstractmethod
    def track(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """Dense tracks from frame 0.

        Returns:
            tracks: float32 ``[F, H, W, 2]``, (x, y) at frame t of the track starting at pixel (col, row).
            visibility: bool ``[F, H, W]``.
            flow: float32 ``[F, H, W, 2]``, forward flow t -> t+1 (last frame zero).
            fb_error: float32 ``[F, H, W]``, forward-backward error of the step into frame t (0 at t = 0).
        """
