"""Localiser interface: frames in, a validated chain-of-visual-evidence answer out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np


class LocalizerTimeout(RuntimeError):
    """A remote or local model did not answer in time (retried by the pipeline)."""


class Localizer(ABC):
    """Finds the physical subjects of a clip.

    `localize(frames)` takes uint8 ``[F, H, W, 3]`` and returns a dict that passes
    `schema.validate_localization` (boxes in pixels of these frames). It raises
    `MMPhysInputError` for a malformed answer and `LocalizerTimeout` for a timeout;
    the pipeline retries both and then falls back.
    """

    name: str = "base"

    @abstractmethod
    def localize(self, frames: np.ndarray) -> dict[str, Any]: ...
