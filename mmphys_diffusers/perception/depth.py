"""Depth codec: metric depth -> normalised disparity (coarse) + a periodic fine code."""

from __future__ import annotations

import numpy as np

from ..errors import MMPhysInputError
from ._checks import channels_last, check_float_array, meta_float, to_video
from .base import PerceptionCodec, as_pseudo_rgb, register_codec
from .colors import RGB_TO_YCBCR, YCBCR_TO_RGB

# Without meta or constructor bounds, decoding assumes this metric range.
DEFAULT_NEAR = 0.5
DEFAULT_FAR = 50.0


def _check_range(near: float, far: float, where: str) -> None:
    if not (np.isfinite(near) and np.isfinite(far) and 0 < near < far):
        raise MMPhysInputError(f"{where}: depth range must satisfy 0 < near < far, got near={near}, far={far}")


def depth_to_unit_disparity(depth: np.ndarray, near: float, far: float) -> np.ndarray:
    """Metric depth -> disparity normalised to [0, 1] (1 = `near`, 0 = `far`; clipped outside)."""
    s = (1.0 / depth - 1.0 / far) / (1.0 / near - 1.0 / far)
    return np.clip(s, 0.0, 1.0).astype(np.float32)


def unit_disparity_to_depth(s: np.ndarray, near: float, far: float) -> np.ndarray:
    """Inverse of `depth_to_unit_disparity`."""
    disparity = np.clip(s, 0.0, 1.0) * (1.0 / near - 1.0 / far) + 1.0 / far
    return (1.0 / disparity).astype(np.float32)


def infer_depth_range(depth: np.ndarray) -> tuple[float, float]:
    """(near, far) = the data's min and max; a constant map gets a tiny non-empty range."""
    near, far = float(depth.min()), float(depth.max())
    if far <= near * (1.0 + 1e-6):
        far = near * 1.001
    return near, far


def auto_periods(depth_ratio: float) -> int:
    """Fine periods for a far/near ratio: the 8-bit relative error at `far` is roughly
    ``2e-3 * ratio / periods``, so larger ratios need more periods to stay under ~1%."""
    if depth_ratio <= 32:
        return 8
    return 16 if depth_ratio <= 64 else 32


def check_depth(depth, where: str) -> np.ndarray:
    d = check_float_array(depth, "depth", 3, where=where)
    if (d <= 0).any():
        raise MMPhysInputError(f"{where}`depth` must be > 0 everywhere (metric depth), got min {float(d.min())}")
    return d


@register_codec
class DepthCodec(PerceptionCodec):
    """Metric depth ``[F,H,W]`` <-> 3-channel disparity code built in YCbCr.

    With ``s`` = disparity normalised to [0, 1] between `far` (0) and `near` (1),
    ``k`` = `periods` and chroma amplitude ``a`` = `CHROMA_AMPLITUDE` (0.15):

    * luma Y = y0 + (1 - 2 y0) s with y0 = 1.8 a (coarse, monotone: the grey level *is* a
      disparity map, and luma is what H.264 keeps at full resolution);
    * chroma (Cb, Cr) = a (cos 2 pi k s, sin 2 pi k s) (fine phase; a slow colour ripple);
    * RGB = BT.601 full-range inverse of (Y, Cb, Cr); y0 keeps every colour inside the RGB cube.

    Inverse: RGB -> (Y, Cb, Cr); coarse ``c = (Y - y0) / (1 - 2 y0)``; phase
    ``p = atan2(Cr, Cb) / 2 pi``; period index ``n = round(k c - p)``; ``s = (n + p) / k``.
    The coarse value only has to be right to within half a period (1 / 2k of the range, about
    7 luma levels for k = 8). Where the chroma has collapsed (radius < a / 2, e.g. a model
    produced grey) the coarse value is used alone.

    Args:
        near, far: metric range. When not given, `encode` takes the data's min/max and stores
            them in meta; `decode` uses meta, then these, then DEFAULT_NEAR/DEFAULT_FAR.
        periods: number of fine periods over the range. More periods give finer 8-bit steps
            but a faster colour ripple, which H.264's half-resolution chroma (and a VAE) blur.
            ``None`` (default) picks `auto_periods(far / near)`: 8 up to far/near = 32, then 16,
            then 32 beyond 64; the choice is stored in meta.
    """

    name = "depth"
    required_arrays = ("depth",)
    resize_mode = "bilinear"
    CHROMA_AMPLITUDE = 0.15

    def __init__(self, near: float | None = None, far: float | None = None, periods: int | None = None):
        if (near is None) != (far is None):
            raise MMPhysInputError("depth codec: give both `near` and `far`, or neither")
        if near is not None:
            _check_range(float(near), float(far), "depth codec")
        if periods is not None and not 1 <= int(periods) <= 32:
            raise MMPhysInputError(f"depth codec: `periods` must be in [1, 32], got {periods}")
        self.near, self.far = near, far
        self.periods = None if periods is None else int(periods)

    @property
    def _luma_floor(self) -> float:
        return 1.8 * self.CHROMA_AMPLITUDE

    def encode(self, **arrays) -> tuple[np.ndarray, dict]:
        """depth ``[F,H,W]`` (> 0) -> (video ``[F,3,H,W]``, meta {near, far, periods})."""
        (depth,) = self._take(arrays)
        d = check_depth(depth, "depth codec: ")
        near, far = (self.near, self.far) if self.near is not None else infer_depth_range(d)
        s = depth_to_unit_disparity(d, near, far)
        periods = self.periods if self.periods is not None else auto_periods(far / near)
        y0, a = self._luma_floor, self.CHROMA_AMPLITUDE
        phase = 2.0 * np.pi * periods * s
        ycc = np.stack([y0 + (1.0 - 2.0 * y0) * s, a * np.cos(phase), a * np.sin(phase)], -1)
        video = to_video(ycc @ YCBCR_TO_RGB.T)
        return video, {"near": float(near), "far": float(far), "periods": periods}

    def decode(self, video, meta: dict | None = None) -> dict[str, np.ndarray]:
        """video ``[F,3,H,W]`` -> {"depth": float32 ``[F,H,W]``}."""
        v = channels_last(as_pseudo_rgb(video, "depth video"))
        near = meta_float(meta, "near", self.near if self.near is not None else DEFAULT_NEAR, "depth")
        far = meta_float(meta, "far", self.far if self.far is not None else DEFAULT_FAR, "depth")
        _check_range(near, far, "depth decode")
        default_periods = self.periods if self.periods is not None else auto_periods(far / near)
        periods = int(meta_float(meta, "periods", default_periods, "depth"))
        if not 1 <= periods <= 32:
            raise MMPhysInputError(f"depth meta['periods'] must be in [1, 32], got {periods}")
        y0, a = self._luma_floor, self.CHROMA_AMPLITUDE
        ycc = v @ RGB_TO_YCBCR.T
        coarse = np.clip((ycc[..., 0] - y0) / (1.0 - 2.0 * y0), 0.0, 1.0)
        phase = np.mod(np.arctan2(ycc[..., 2], ycc[..., 1]) / (2.0 * np.pi), 1.0)
        fine = (np.round(periods * coarse - phase) + phase) / periods
        s = np.where(np.hypot(ycc[..., 1], ycc[..., 2]) >= 0.5 * a, fine, coarse)
        return {"depth": unit_disparity_to_depth(s, near, far)}
