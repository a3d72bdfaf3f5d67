"""Physics-IQ-style motion-mask comparison of a video against a reference of the same initial state.

Physics-IQ (DeepMind, 2025) scores where, when and how much things move, with no
learned model: binary motion masks from a running-average background, then IoUs.
These numbers only mean something when both videos start from the same state
(image- or video-conditioned generation, or the simulator against itself); for
text-only generation they mostly measure how similar the two scenes happen to be.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import MMPhysInputError
from ..utils.video_io import to_uint8_frames

DEFAULT_MOTION_THRESHOLD = 10.0  # grey levels (0-255), as in Physics-IQ
DEFAULT_BACKGROUND_RATE = 0.5


def motion_masks(
    frames,
    threshold: float = DEFAULT_MOTION_THRESHOLD,
    background_rate: float = DEFAULT_BACKGROUND_RATE,
    morph_kernel: int = 3,
) -> np.ndarray:
    """Binary masks of the moving pixels.

    The background starts as frame 0 and is updated as a running average
    ``bg <- (1 - rate) * bg + rate * frame``; a pixel moves in frame t when its largest
    per-channel difference from the background of frame t-1 exceeds `threshold` grey
    levels. Masks are cleaned with a morphological open then close (elliptical kernel).

    Args:
        frames: ``[F, H, W, 3]`` uint8 or float in [0, 1].
    Returns:
        bool ``[F, H, W]``; frame 0 is empty.
    """
    import cv2

    frames = to_uint8_frames(frames).astype(np.float32)
    if not 0.0 < background_rate <= 1.0:
        raise MMPhysInputError(f"background_rate must be in (0, 1], got {background_rate}")
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (morph_kernel, morph_kernel)) if morph_kernel > 1 else None
    masks = np.zeros(frames.shape[:3], bool)
    background = frames[0].copy()
    for t in range(1, len(frames)):
        m = (np.abs(frames[t] - background).max(-1) > threshold).astype(np.uint8)
        if kernel is not None and m.any():
            m = cv2.morphologyEx(m, cv2.MORPH_OPEN, kernel)
            m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, kernel)
        masks[t] = m.astype(bool)
        background = (1.0 - background_rate) * background + background_rate * frames[t]
    return masks


def _iou(a: np.ndarray, b: np.ndarray) -> float | None:
    union = np.logical_or(a, b).sum()
    if union == 0:
        return None
    return float(np.logical_and(a, b).sum() / union)


def motion_iou_metrics(video, reference, **mask_kwargs: Any) -> dict[str, float]:
    """Compare where/when/how much a video moves with a reference video (Physics-IQ style).

    Args:
        video, reference: ``[F, H, W, 3]`` uint8 or float in [0, 1] with equal shapes.
        mask_kwargs: forwarded to `motion_masks`.
    Returns:
        spatial_iou: IoU of the "moved at any time" maps (where; unitless, 1 = same).
        spatiotemporal_iou: mean per-frame IoU over frames where either video moves (where and when).
        weighted_spatial_iou: ``Σ min(A, B) / Σ max(A, B)`` with A, B the per-pixel fraction
            of frames that move (where and how much).
        mse: mean squared pixel error with frames in [0, 1] (unitless).
        Two videos that both never move get IoUs of 1.0 (they agree).
    """
    video, reference = to_uint8_frames(video), to_uint8_frames(reference)
    if video.shape != reference.shape:
        raise MMPhysInputError(f"motion IoU needs videos of equal shape, got {video.shape} and reference {reference.shape}")
    a, b = motion_masks(video, **mask_kwargs), motion_masks(reference, **mask_kwargs)
    spatial = _iou(a.any(0), b.any(0))
    per_frame = [v for v in (_iou(a[t], b[t]) for t in range(len(a))) if v is not None]
    wa, wb = a.mean(0), b.mean(0)
    denom = np.maximum(wa, wb).sum()
    weighted = float(np.minimum(wa, wb).sum() / denom) if denom > 0 else None
    mse = float(np.mean((video.astype(np.float64) / 255.0 - reference.astype(np.float64) / 255.0) ** 2))
    return {
        "spatial_iou": 1.0 if spatial is None else spatial,
        "spatiotemporal_iou": float(np.mean(per_frame)) if per_frame else 1.0,
        "weighted_spatial_iou": 1.0 if weighted is None else weighted,
        "mse": mse,
    }
