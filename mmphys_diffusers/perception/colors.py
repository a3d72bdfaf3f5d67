"""Colour tools shared by the codecs: instance palette, invertible colour wheel, depth colormap."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..errors import MMPhysInputError

# Candidate colours for the palette: a 16-level RGB lattice (4096 colours).
_LATTICE_LEVELS = 16
MAX_PALETTE_SIZE = 256
# RGB -> (Y, Cb, Cr), BT.601. H.264 yuv420p keeps luma at full resolution but halves chroma,
# so the palette spreads colours in a space where luma differences count `_PALETTE_LUMA_WEIGHT`x.
RGB_TO_YCBCR = np.array(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32
)
YCBCR_TO_RGB = np.linalg.inv(RGB_TO_YCBCR).astype(np.float32)
_PALETTE_LUMA_WEIGHT = 3.0


@lru_cache(maxsize=8)
def _palette(num_colors: int) -> np.ndarray:
    levels = np.linspace(0.0, 1.0, _LATTICE_LEVELS)
    candidates = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    space = candidates @ RGB_TO_YCBCR.T * np.array([_PALETTE_LUMA_WEIGHT, 1.0, 1.0], np.float32)
    chosen = [0]  # index 0 of the lattice is black: the background colour
    min_dist = np.linalg.norm(space - space[0], axis=1)
    for _ in range(num_colors - 1):
        # Greedy farthest-point: the next colour is the candidate farthest from all chosen ones
        # (argmax takes the first on ties, so the palette is deterministic).
        i = int(np.argmax(min_dist))
        chosen.append(i)
        min_dist = np.minimum(min_dist, np.linalg.norm(space - space[i], axis=1))
    palette = candidates[chosen].astype(np.float32)
    palette.setflags(write=False)
    return palette


def instance_palette(num_colors: int) -> np.ndarray:
    """Deterministic palette ``[num_colors, 3]`` float32 in [0, 1]; row 0 (background) is black.

    Colours are picked greedily by farthest-point sampling of a 16-level RGB lattice in
    YCbCr with luma weighted 3x (luma survives H.264's chroma subsampling), so any prefix
    ``palette[:k]`` is itself well spread: few instances get very distinct colours, and
    `decode` can restrict itself to the prefix in use.
    """
    if not 2 <= num_colors <= MAX_PALETTE_SIZE:
        raise MMPhysInputError(f"palette size must be in [2, {MAX_PALETTE_SIZE}], got {num_colors}")
    return _palette(int(num_colors))


def min_palette_distance(palette: np.ndarray) -> float:
    """Smallest Euclidean RGB distance between two palette entries."""
    d = np.linalg.norm(palette[:, None] - palette[None], axis=-1)
    d[np.diag_indices_from(d)] = np.inf
    return float(d.min())


def nearest_color(pixels: np.ndarray, palette: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
    """Index of the nearest palette colour for every pixel.

    Args:
        pixels: ``[..., 3]`` float in [0, 1].
        palette: ``[K, 3]``.
    Returns:
        int64 ``[...]`` in ``[0, K)``.
    """
    flat = pixels.reshape(-1, 3).astype(np.float32)
    pal = palette.astype(np.float32)
    pal_sq = (pal**2).sum(1)
    out = np.empty(flat.shape[0], np.int64)
    for start in range(0, flat.shape[0], chunk):
        block = flat[start : start + chunk]
        # |x - p|^2 = |x|^2 - 2 x.p + |p|^2; |x|^2 is constant per pixel and drops out of the argmin.
        out[start : start + chunk] = np.argmin(pal_sq[None] - 2.0 * block @ pal.T, axis=1)
    return out.reshape(pixels.shape[:-1])


def hsv_to_rgb(hue: np.ndarray, sat: np.ndarray, val: np.ndarray) -> np.ndarray:
    """Vectorised HSV -> RGB, all in [0, 1] (hue wraps). Returns ``[..., 3]``."""
    h6 = (np.mod(hue, 1.0) * 6.0)[..., None]
    # Each channel is a piecewise-linear function of hue (the standard hexcone).
    k = np.mod(np.array([5.0, 3.0, 1.0], np.float32) + h6, 6.0)
    ramp = np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return (val[..., None] * (1.0 - sat[..., None] * ramp)).astype(np.float32)


def rgb_to_hsv(rgb: np.ndarray, eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised RGB -> (hue, saturation, value), inverse of `hsv_to_rgb`."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    mx = rgb.max(-1)
    mn = rgb.min(-1)
    chroma = mx - mn
    safe = np.maximum(chroma, eps)
    hue = np.where(
        mx == r,
        np.mod((g - b) / safe, 6.0),
        np.where(mx == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0),
    )
    hue = np.where(chroma > eps, hue / 6.0, 0.0)
    sat = np.where(mx > eps, chroma / np.maximum(mx, eps), 0.0)
    return hue.astype(np.float32), sat.astype(np.float32), mx.astype(np.float32)


def vector_to_wheel(u: np.ndarray, v: np.ndarray, max_magnitude: float) -> np.ndarray:
    """2-D vectors -> colour wheel RGB ``[..., 3]``: hue = direction, saturation = |vec| / max (white = 0)."""
    hue = np.arctan2(v, u) / (2.0 * np.pi)
    sat = np.clip(np.hypot(u, v) / max_magnitude, 0.0, 1.0)
    return hsv_to_rgb(hue.astype(np.float32), sat.astype(np.float32), np.ones_like(sat, dtype=np.float32))


def wheel_to_vector(rgb: np.ndarray, max_magnitude: float) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of `vector_to_wheel`: RGB ``[..., 3]`` -> (u, v)."""
    hue, sat, _ = rgb_to_hsv(rgb)
    angle = hue * (2.0 * np.pi)
    mag = sat * max_magnitude
    return (mag * np.cos(angle)).astype(np.float32), (mag * np.sin(angle)).astype(np.float32)


# Our own perceptually ordered ramp (dark blue -> purple -> orange -> pale yellow) for depth maps.
_COLORMAP_ANCHORS = np.array(
    [
        [0.02, 0.02, 0.12],
        [0.25, 0.05, 0.45],
        [0.62, 0.15, 0.45],
        [0.92, 0.42, 0.20],
        [0.99, 0.85, 0.45],
        [0.99, 0.99, 0.80],
    ],
    np.float32,
)


def colormap(values: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] to uint8 RGB ``[..., 3]`` with a monotone-luminance ramp."""
    x = np.clip(values, 0.0, 1.0) * (len(_COLORMAP_ANCHORS) - 1)
    stops = np.arange(len(_COLORMAP_ANCHORS), dtype=np.float32)
    rgb = np.stack([np.interp(x, stops, _COLORMAP_ANCHORS[:, c]) for c in range(3)], -1)
    return (rgb * 255.0 + 0.5).astype(np.uint8)


def to_uint8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
