"""XYZ codec: camera-space point maps -> per-axis normalised RGB; pinhole back-projection helper."""

from __future__ import annotations

import numpy as np

from ..errors import MMPhysInputError
from ._checks import channels_last, check_float_array, meta_float, to_video
from .base import PerceptionCodec, as_numpy, as_pseudo_rgb, register_codec

# Without meta or constructor bounds, every axis is assumed to span [-1, 1].
DEFAULT_BOUNDS = ((-1.0, 1.0), (-1.0, 1.0), (-1.0, 1.0))


def depth_to_xyz(depth, fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """Back-project metric depth through a pinhole camera.

    Pixel (row v, col u) has its centre at image coordinates (u, v); the camera looks along +Z
    with +X right and +Y down: ``X = (u - cx) Z / fx``, ``Y = (v - cy) Z / fy``, ``Z = depth``.

    Args:
        depth: ``[F,H,W]`` or ``[H,W]`` metric depth (numpy or torch).
    Returns:
        float32 ``[..., H, W, 3]`` point map.
    """
    z = as_numpy(depth).astype(np.float32)
    if z.ndim not in (2, 3):
        raise MMPhysInputError(f"depth_to_xyz: `depth` must be [H,W] or [F,H,W], got shape {tuple(z.shape)}")
    if not (np.isfinite([fx, fy, cx, cy]).all() and fx != 0 and fy != 0):
        raise MMPhysInputError(f"depth_to_xyz: intrinsics must be finite with fx, fy != 0, got {(fx, fy, cx, cy)}")
    if not np.isfinite(z).all():
        raise MMPhysInputError("depth_to_xyz: `depth` contains NaN or Inf")
    h, w = z.shape[-2:]
    v, u = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([(u - cx) * z / fx, (v - cy) * z / fy, z], -1).astype(np.float32)


def _check_bounds(bounds, where: str) -> np.ndarray:
    b = np.asarray(bounds, dtype=np.float64)
    if b.shape != (3, 2) or not np.isfinite(b).all() or (b[:, 1] <= b[:, 0]).any():
        raise MMPhysInputError(
            f"{where}: bounds must be [[xmin,xmax],[ymin,ymax],[zmin,zmax]] with min < max, got {bounds}"
        )
    return b


@register_codec
class XyzCodec(PerceptionCodec):
    """Point map ``[F,H,W,3]`` <-> RGB: channel c = (xyz[..., c] - lo_c) / (hi_c - lo_c).

    Inverse: ``xyz_c = lo_c + channel_c (hi_c - lo_c)``. Bounds come from the constructor or,
    when not given, from the data's per-axis min/max (stored in meta). 8-bit steps are
    (hi - lo) / 255 per axis.
    """

    name = "xyz"
    required_arrays = ("xyz",)
    resize_mode = "bilinear"

    def __init__(self, bounds=None):
        self.bounds = None if bounds is None else _check_bounds(bounds, "xyz codec")

    def encode(self, **arrays) -> tuple[np.ndarray, dict]:
        """xyz ``[F,H,W,3]`` -> (video ``[F,3,H,W]``, meta {bounds})."""
        (xyz,) = self._take(arrays)
        p = check_float_array(xyz, "xyz", 4, last_dim=3, where="xyz codec: ")
        if self.bounds is not None:
            b = self.bounds
        else:
            flat = p.reshape(-1, 3).astype(np.float64)
            lo, hi = flat.min(0), flat.max(0)
            pad = np.maximum((hi - lo) * 1e-6, 1e-6)  # a flat axis still needs a non-empty range
            b = np.stack([lo, np.where(hi - lo > 0, hi, lo + pad)], 1)
        video = to_video((p - b[:, 0].astype(np.float32)) / (b[:, 1] - b[:, 0]).astype(np.float32))
        return video, {"bounds": b.tolist()}

    def decode(self, video, meta: dict | None = None) -> dict[str, np.ndarray]:
        """video ``[F,3,H,W]`` -> {"xyz": float32 ``[F,H,W,3]``}."""
        v = channels_last(as_pseudo_rgb(video, "xyz video"))
        default = self.bounds if self.bounds is not None else DEFAULT_BOUNDS
        b = _check_bounds(meta_float(meta, "bounds", default, "xyz"), "xyz decode").astype(np.float32)
        return {"xyz": (b[:, 0] + v * (b[:, 1] - b[:, 0])).astype(np.float32)}
