"""Flow codec: optical flow on an invertible colour wheel."""

from __future__ import annotations

import numpy as np

from ..errors import MMPhysInputError
from ._checks import channels_last, check_float_array, meta_float, to_video
from .base import PerceptionCodec, as_pseudo_rgb, register_codec
from .colors import vector_to_wheel, wheel_to_vector

# Without meta or a constructor value, decoding assumes this flow magnitude (pixels) saturates.
DEFAULT_MAX_FLOW = 20.0


def infer_max_flow(flow: np.ndarray) -> float:
    """Largest flow magnitude in the data (at least 1e-3 px so the range is never empty)."""
    return max(float(np.hypot(flow[..., 0], flow[..., 1]).max()), 1e-3)


@register_codec
class FlowCodec(PerceptionCodec):
    """Optical flow ``[F,H,W,2]`` (pixels) <-> colour wheel.

    Layout: HSV with hue = direction ``atan2(v, u) / 2 pi`` (0 = +x, red), saturation =
    ``|flow| / max_flow`` (clipped to 1) and value = 1, converted with the standard hexcone
    (so zero flow is white). Inverse: RGB -> HSV; ``|flow| = S max_flow`` with
    ``S = (max - min) / max``, direction from the hue. `max_flow` is the data's largest
    magnitude (stored in meta) unless given.
    """

    name = "flow"
    required_arrays = ("flow",)
    resize_mode = "bilinear"

    def __init__(self, max_flow: float | None = None):
        if max_flow is not None and not (np.isfinite(max_flow) and max_flow > 0):
            raise MMPhysInputError(f"flow codec: `max_flow` must be a positive number of pixels, got {max_flow}")
        self.max_flow = None if max_flow is None else float(max_flow)

    def encode(self, **arrays) -> tuple[np.ndarray, dict]:
        """flow ``[F,H,W,2]`` -> (video ``[F,3,H,W]``, meta {max_flow})."""
        (flow,) = self._take(arrays)
        fl = check_float_array(flow, "flow", 4, last_dim=2, where="flow codec: ")
        max_flow = self.max_flow if self.max_flow is not None else infer_max_flow(fl)
        return to_video(vector_to_wheel(fl[..., 0], fl[..., 1], max_flow)), {"max_flow": float(max_flow)}

    def decode(self, video, meta: dict | None = None) -> dict[str, np.ndarray]:
        """video ``[F,3,H,W]`` -> {"flow": float32 ``[F,H,W,2]``}."""
        v = channels_last(as_pseudo_rgb(video, "flow video"))
        default = self.max_flow if self.max_flow is not None else DEFAULT_MAX_FLOW
        max_flow = meta_float(meta, "max_flow", default, "flow")
        if max_flow <= 0:
            raise MMPhysInputError(f"flow meta['max_flow'] must be > 0, got {max_flow}")
        u, w = wheel_to_vector(v, max_flow)
        return {"flow": np.stack([u, w], -1)}
