"""Unified codec: one pseudo-RGB video carrying geometry (R), identity (G) and motion (B)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..errors import MMPhysInputError
from ._checks import channels_last, check_float_array, check_int_array, meta_float, to_video
from ._labels import majority_relabel
from .base import PerceptionCodec, as_pseudo_rgb, register_codec
from .depth import (
    DEFAULT_FAR,
    DEFAULT_NEAR,
    check_depth,
    depth_to_unit_disparity,
    infer_depth_range,
    unit_disparity_to_depth,
)
from .flow import DEFAULT_MAX_FLOW, infer_max_flow


@lru_cache(maxsize=8)
def instance_levels(max_instances: int) -> np.ndarray:
    """Grey level in [0, 1] of each id 0..max_instances (0 = background = 0.0).

    Levels are the grid k / max_instances, handed out in greedy farthest-point order
    (id 1 -> 1.0, id 2 -> 0.5, ids 3, 4 -> 0.25, 0.75, ...), so a clip with few instances
    uses well-separated levels and `decode` only considers the ids in use.
    """
    grid = np.arange(1, max_instances + 1) / max_instances
    chosen = [0.0]
    remaining = list(grid)
    while remaining:
        dist = [min(abs(g - c) for c in chosen) for g in remaining]
        chosen.append(remaining.pop(int(np.argmax(dist))))
    levels = np.array(chosen, np.float32)
    levels.setflags(write=False)
    return levels


def _nearest_level(values: np.ndarray, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index into `levels` of the nearest level for every value, and the distance to it."""
    order = np.argsort(levels)
    ordered = levels[order]
    if len(ordered) == 1:
        return np.zeros(values.shape, np.int64), np.abs(values - ordered[0])
    hi = np.clip(np.searchsorted(ordered, values), 1, len(ordered) - 1)
    lo = hi - 1
    take_hi = np.abs(ordered[hi] - values) < np.abs(values - ordered[lo])
    nearest = np.where(take_hi, hi, lo)
    return order[nearest].astype(np.int64), np.abs(values - ordered[nearest])


@register_codec
class UnifiedCodec(PerceptionCodec):
    """Depth + instances + flow packed in one video.

    Layout:

    * R = normalised disparity ``s`` (1 at `near`, 0 at `far`; same mapping as the depth codec's R);
    * G = instance level ``instance_levels(max_instances)[id]`` (0 = background);
    * B = flow magnitude ``|flow| / max_flow`` (clipped to 1).

    Inverse / what is recoverable: depth from R (8-bit disparity: relative error grows towards
    `far`, about ``(far/near) / 255`` there), instance ids by nearest level among the ids in
    use (exact while noise < half the level spacing), and the flow *magnitude* only (the
    direction is not carried). Decode returns ``depth``, ``instances`` and ``flow_magnitude``
    (float ``[F,H,W]`` in pixels; not a canonical cue array).

    Args:
        near, far: depth range (inferred and stored in meta when not given).
        max_flow: flow magnitude mapped to B = 1 (inferred when not given).
        max_instances: largest id accepted; levels are spaced 1 / max_instances.
    """

    name = "unified"
    required_arrays = ("instances", "depth", "flow")
    resize_mode = "nearest"

    def __init__(
        self,
        near: float | None = None,
        far: float | None = None,
        max_flow: float | None = None,
        max_instances: int = 32,
    ):
        if (near is None) != (far is None):
            raise MMPhysInputError("unified codec: give both `near` and `far`, or neither")
        if near is not None and not 0 < near < far:
            raise MMPhysInputError(f"unified codec: depth range must satisfy 0 < near < far, got {near}, {far}")
        if max_flow is not None and not max_flow > 0:
            raise MMPhysInputError(f"unified codec: `max_flow` must be > 0, got {max_flow}")
        if not 1 <= int(max_instances) <= 255:
            raise MMPhysInputError(f"unified codec: `max_instances` must be in [1, 255], got {max_instances}")
        self.near, self.far, self.max_flow, self.max_instances = near, far, max_flow, int(max_instances)

    def encode(self, **arrays) -> tuple[np.ndarray, dict]:
        """instances ``[F,H,W]``, depth ``[F,H,W]``, flow ``[F,H,W,2]`` -> (video ``[F,3,H,W]``, meta)."""
        instances, depth, flow = self._take(arrays)
        ids = check_int_array(instances, "instances", where="unified codec: ")
        d = check_depth(depth, "unified codec: ")
        fl = check_float_array(flow, "flow", 4, last_dim=2, where="unified codec: ")
        if not (ids.shape == d.shape == fl.shape[:3]):
            raise MMPhysInputError(
                f"unified codec: instances {ids.shape}, depth {d.shape} and flow {fl.shape[:3]} must share [F,H,W]"
            )
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi > self.max_instances:
            raise MMPhysInputError(
                f"unified codec: `instances` ids must be in [0, {self.max_instances}] (max_instances), got [{lo}, {hi}]"
            )
        near, far = (self.near, self.far) if self.near is not None else infer_depth_range(d)
        max_flow = self.max_flow if self.max_flow is not None else infer_max_flow(fl)
        r = depth_to_unit_disparity(d, near, far)
        g = instance_levels(self.max_instances)[ids]
        b = np.clip(np.hypot(fl[..., 0], fl[..., 1]) / max_flow, 0.0, 1.0)
        meta = {
            "near": float(near),
            "far": float(far),
            "max_flow": float(max_flow),
            "max_instances": self.max_instances,
            "num_ids": hi + 1,
        }
        return to_video(np.stack([r, g, b], -1)), meta

    def decode(self, video, meta: dict | None = None) -> dict[str, np.ndarray]:
        """video -> {"depth": ``[F,H,W]``, "instances": int64 ``[F,H,W]``, "flow_magnitude": ``[F,H,W]``}."""
        v = channels_last(as_pseudo_rgb(video, "unified video"))
        near = meta_float(meta, "near", self.near if self.near is not None else DEFAULT_NEAR, "unified")
        far = meta_float(meta, "far", self.far if self.far is not None else DEFAULT_FAR, "unified")
        if not 0 < near < far:
            raise MMPhysInputError(f"unified meta: depth range must satisfy 0 < near < far, got {near}, {far}")
        default_flow = self.max_flow if self.max_flow is not None else DEFAULT_MAX_FLOW
        max_flow = meta_float(meta, "max_flow", default_flow, "unified")
        max_instances = int(meta_float(meta, "max_instances", self.max_instances, "unified"))
        if not 1 <= max_instances <= 255:
            raise MMPhysInputError(f"unified meta['max_instances'] must be in [1, 255], got {max_instances}")
        levels = instance_levels(max_instances)
        num_ids = int(meta_float(meta, "num_ids", len(levels), "unified"))
        if not 1 <= num_ids <= len(levels):
            raise MMPhysInputError(f"unified meta['num_ids'] must be in [1, {len(levels)}], got {num_ids}")
        used = levels[:num_ids]
        ids, dist = _nearest_level(v[..., 1], used)
        if num_ids > 1:
            # Pixels whose G sits between levels (edges blurred by H.264 chroma subsampling)
            # take the majority label of their 3x3 window.
            spacing = float(np.diff(np.sort(used)).min())
            ids = majority_relabel(ids, dist > 0.25 * spacing)
        return {
            "depth": unit_disparity_to_depth(v[..., 0], near, far),
            "instances": ids,
            "flow_magnitude": (v[..., 2] * max_flow).astype(np.float32),
        }
