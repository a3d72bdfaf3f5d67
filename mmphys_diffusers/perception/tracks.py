"""Tracks codec: dense point tracks drawn at their first-frame pixels, as bounded displacements."""

from __future__ import annotations

import numpy as np

from ..errors import MMPhysInputError
from ._checks import channels_last, check_bool_array, check_float_array, meta_float, to_video
from .base import PerceptionCodec, as_numpy, as_pseudo_rgb, register_codec

# Without meta or constructor bounds, displacements are assumed within +-DEFAULT_SPAN_FRACTION * max(H, W).
DEFAULT_SPAN_FRACTION = 0.5


def _check_bounds(b: np.ndarray, per_frame: bool, num_frames: int, where: str) -> np.ndarray:
    shape = (num_frames, 2, 2) if per_frame else (2, 2)
    if b.shape != shape or not np.isfinite(b).all() or (b[..., 1] <= b[..., 0]).any():
        raise MMPhysInputError(
            f"{where}: displacement bounds must be shaped {shape} as [[dx_lo, dx_hi], [dy_lo, dy_hi]] "
            f"(per frame when per_frame) with lo < hi, got shape {b.shape}"
        )
    return b


@register_codec
class TracksCodec(PerceptionCodec):
    """Dense tracks ``[F,H,W,2]`` + visibility ``[F,H,W]`` <-> RGB.

    The track that starts at pixel (row, col) of frame 0 is drawn at (row, col) in every frame.
    With displacement ``d = track_t - (col, row)`` and per-axis bounds ``[lo, hi]``:

    * R = (dx - lo_x) / (hi_x - lo_x), G = (dy - lo_y) / (hi_y - lo_y);
    * B = 1 where visible, 0 where occluded (decoded as B > 0.5: robust to blur and noise).

    Displacements, not absolute positions, are coded so the 8 bits span only the motion's
    range: the step is ``(hi - lo) / 255`` px per axis (e.g. 0.24 px for 60 px of motion),
    instead of W / 255 px for absolute coordinates. Bounds are the data's min/max (stored in
    meta) unless given; with ``per_frame=True`` each frame gets its own bounds (tighter for
    motions that grow over time, but colours then change meaning frame to frame, which a
    generative model cannot see). Occluded tracks keep their (estimated) positions; NaN
    positions are accepted where invisible and coded as zero displacement.
    """

    name = "tracks"
    required_arrays = ("tracks", "visibility")
    resize_mode = "bilinear"

    def __init__(self, bounds=None, per_frame: bool = False):
        self.per_frame = bool(per_frame)
        self.bounds = None if bounds is None else np.asarray(bounds, dtype=np.float64)
        if self.bounds is not None and not self.per_frame:
            _check_bounds(self.bounds, False, 0, "tracks codec")

    def encode(self, **arrays) -> tuple[np.ndarray, dict]:
        """tracks ``[F,H,W,2]``, visibility ``[F,H,W]`` -> (video ``[F,3,H,W]``, meta {bounds, per_frame})."""
        tracks, visibility = self._take(arrays)
        raw = as_numpy(tracks)
        if raw.ndim != 4 or raw.shape[-1] != 2:
            raise MMPhysInputError(f"tracks codec: `tracks` must be shaped [F,H,W,2], got shape {tuple(raw.shape)}")
        vis = check_bool_array(visibility, "visibility", raw.shape[:3], where="tracks codec: ")
        f, h, w, _ = raw.shape
        rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
        start = np.stack([cols, rows], -1)[None]
        if np.issubdtype(raw.dtype, np.floating):
            bad = ~np.isfinite(raw).all(-1)
            if (bad & vis).any():
                raise MMPhysInputError("tracks codec: `tracks` contains NaN or Inf at visible points; expected finite")
            raw = np.where(bad[..., None], np.broadcast_to(start, raw.shape), raw)
        disp = check_float_array(raw, "tracks", 4, last_dim=2, where="tracks codec: ") - start
        if self.bounds is not None:
            b = _check_bounds(self.bounds, self.per_frame, f, "tracks codec")
        else:
            axes = (1, 2) if self.per_frame else (0, 1, 2)
            lo = disp.min(axis=axes).astype(np.float64)
            hi = disp.max(axis=axes).astype(np.float64)
            # A motionless axis still needs a non-empty range: widen it to 1 px.
            narrow = hi - lo < 1.0
            mid = (hi + lo) / 2
            lo, hi = np.where(narrow, mid - 0.5, lo), np.where(narrow, mid + 0.5, hi)
            b = np.stack([lo, hi], -1)
        bf = (b if self.per_frame else np.broadcast_to(b, (f, 2, 2))).astype(np.float32)
        lo, span = bf[:, None, None, :, 0], bf[:, None, None, :, 1] - bf[:, None, None, :, 0]
        rg = (disp - lo) / span
        video = to_video(np.concatenate([rg, vis[..., None].astype(np.float32)], -1))
        return video, {"bounds": b.tolist(), "per_frame": self.per_frame}

    def decode(self, video, meta: dict | None = None) -> dict[str, np.ndarray]:
        """video ``[F,3,H,W]`` -> {"tracks": float32 ``[F,H,W,2]``, "visibility": bool ``[F,H,W]``}."""
        v = channels_last(as_pseudo_rgb(video, "tracks video"))
        f, h, w, _ = v.shape
        per_frame = bool(meta.get("per_frame", self.per_frame)) if meta else self.per_frame
        if self.bounds is not None:
            default = self.bounds
        else:
            span = DEFAULT_SPAN_FRACTION * max(h, w)
            default = np.array([[-span, span], [-span, span]])
            if per_frame:
                default = np.broadcast_to(default, (f, 2, 2))
        b = _check_bounds(np.asarray(meta_float(meta, "bounds", default, "tracks")), per_frame, f, "tracks decode")
        bf = (b if per_frame else np.broadcast_to(b, (f, 2, 2))).astype(np.float32)
        lo, span = bf[:, None, None, :, 0], bf[:, None, None, :, 1] - bf[:, None, None, :, 0]
        rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
        tracks = np.stack([cols, rows], -1)[None] + lo + v[..., :2] * span
        return {"tracks": tracks.astype(np.float32), "visibility": v[..., 2] > 0.5}
