"""Neighbourhood helpers for label maps decoded from lossy video."""

from __future__ import annotations

import numpy as np

_OFFSETS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]  # index 4 is the centre


def neighbour_labels(labels: np.ndarray, f: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Labels ``[F,H,W]`` in the 3x3 window of each pixel (f, y, x) -> ``[N, 9]`` (edges replicated)."""
    _, h, w = labels.shape
    return np.stack([labels[f, np.clip(y + dy, 0, h - 1), np.clip(x + dx, 0, w - 1)] for dy, dx in _OFFSETS], 1)


def majority_relabel(labels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Replace each masked pixel's label by the majority of its 3x3 window (the centre wins ties).

    Args:
        labels: int ``[F,H,W]``.
        mask: bool ``[F,H,W]``, the pixels to re-decide.
    """
    out = labels.copy()
    for t in range(len(labels)):  # frame by frame keeps the [N, 9, 9] vote table small
        _, y, x = np.nonzero(mask[t : t + 1])
        if y.size == 0:
            continue
        f = np.zeros_like(y)
        window = neighbour_labels(labels[t : t + 1], f, y, x)
        votes = (window[:, :, None] == window[:, None, :]).sum(1)  # [N, 9]: how many share each entry's label
        votes[:, 4] += 1
        out[t, y, x] = window[np.arange(y.size), votes.argmax(1)]
    return out
