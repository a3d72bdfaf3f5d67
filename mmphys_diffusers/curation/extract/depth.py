"""Depth backends: classical weak priors (default) and Depth Anything through transformers."""

from __future__ import annotations

import numpy as np

from ...errors import MMPhysInputError
from ..registry import DEPTH_ESTIMATORS
from .base import DepthEstimator
from .segmentation import _torch_dtype


@DEPTH_ESTIMATORS.register("ground_plane")
class GroundPlaneDepth(DepthEstimator):
    """A weak geometric prior, not a measurement: a camera above a flat floor.

    Floor pixels below the horizon row get depth ``camera_height * focal / (y - horizon)``;
    rows above the horizon (walls, sky) get `far`. Each segmented instance stands on the
    floor, so it takes the floor depth at its lowest pixel (fronto-parallel object).
    Scale is arbitrary: score it with scale-invariant errors only.

    Args:
        horizon: horizon row as a fraction of the height (0 = top), or "auto": the strongest
            horizontal edge of the temporal-median background (a floor/wall line).
        camera_height: camera height over the floor, in the same unit as the depth.
        far: depth of everything at or above the horizon.
    """

    name = "ground_plane"

    def __init__(self, horizon: float | str = "auto", camera_height: float = 1.5, far: float = 20.0):
        if not (horizon == "auto" or isinstance(horizon, (int, float)) and 0.0 <= horizon < 1.0):
            raise MMPhysInputError(f"ground_plane horizon must be 'auto' or a fraction in [0, 1), got {horizon!r}")
        self.horizon = horizon
        self.camera_height = camera_height
        self.far = far

    @staticmethod
    def detect_horizon(frames: np.ndarray) -> float:
        """Row fraction of the strongest horizontal edge of the static background (floor/wall line)."""
        from ..classical import median_background

        grey = median_background(frames, resolve_ghosts=False).astype(np.float32).mean(-1)
        h = grey.shape[0]
        row_edge = np.abs(np.diff(grey.mean(1)))  # [H-1], change between row i and i+1
        lo, hi = int(0.15 * h), max(int(0.9 * h), int(0.15 * h) + 1)
        return (lo + int(np.argmax(row_edge[lo:hi])) + 1) / h

    def floor_depth(self, h: int, w: int, horizon: float | None = None) -> np.ndarray:
        focal = float(max(h, w))
        horizon = self.horizon if horizon is None else horizon
        rows = np.arange(h, dtype=np.float32) + 0.5 - horizon * h
        depth = np.where(rows > 0, self.camera_height * focal / np.maximum(rows, 1e-3), self.far)
        return np.broadcast_to(np.minimum(depth, self.far)[:, None], (h, w)).astype(np.float32)

    def estimate(self, frames: np.ndarray, instances: np.ndarray | None = None) -> np.ndarray:
        f, h, w, _ = frames.shape
        floor = self.floor_depth(h, w, self.detect_horizon(frames) if self.horizon == "auto" else self.horizon)
        depth = np.repeat(floor[None], f, axis=0).copy()
        if instances is not None:
            for t in range(f):
                for k in np.unique(instances[t]):
                    if k == 0:
                        continue
                    sel = instances[t] == k
                    bottom = int(np.nonzero(sel.any(1))[0].max())
                    depth[t][sel] = floor[bottom, 0]
        return depth


@DEPTH_ESTIMATORS.register("constant")
class ConstantDepth(DepthEstimator):
    """Everything at one depth, instances slightly in front: the right prior for flat side-view scenes."""

    name = "constant"

    def __init__(self, background: float = 10.0, foreground: float = 9.0):
        self.background = background
        self.foreground = foreground

    def estimate(self, frames: np.ndarray, instances: np.ndarray | None = None) -> np.ndarray:
        depth = np.full(frames.shape[:3], self.background, np.float32)
        if instances is not None:
            depth[instances > 0] = self.foreground
        return depth


@DEPTH_ESTIMATORS.register("depth_anything")
class DepthAnythingDepth(DepthEstimator):
    """Monocular depth with a transformers depth model (Depth Anything V1/V2, DPT, Depth Pro, ...).

    Relative models predict *disparity* (larger = nearer); it is converted to depth as
    ``1 / (disparity_normalised + eps)``. Set ``output="depth"`` for metric models.

    Args:
        model: local folder or Hub id (e.g. "depth-anything/Depth-Anything-V2-Small-hf").
        device, dtype: placement and precision.
        output: "disparity" (relative models) or "depth" (metric models).
        batch_size: frames per forward pass.
    """

    name = "depth_anything"

    def __init__(self, model: str, device: str = "cpu", dtype: str = "float32", output: str = "disparity", batch_size: int = 8):
        import torch
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        self.device, self.dtype, self.output, self.batch_size = device, _torch_dtype(dtype), output, batch_size
        self.processor = AutoImageProcessor.from_pretrained(model)
        self.model = AutoModelForDepthEstimation.from_pretrained(model, dtype=self.dtype).to(device).eval()
        self._torch = torch

    def estimate(self, frames: np.ndarray, instances: np.ndarray | None = None) -> np.ndarray:
        torch = self._torch
        f, h, w, _ = frames.shape
        out = []
        for i in range(0, f, self.batch_size):
            inputs = self.processor(images=list(frames[i : i + self.batch_size]), return_tensors="pt").to(self.device)
            with torch.inference_mode():
                pred = self.model(pixel_values=inputs["pixel_values"].to(self.dtype)).predicted_depth  # [B, h', w']
            pred = torch.nn.functional.interpolate(pred[:, None].float(), size=(h, w), mode="bilinear", align_corners=False)[:, 0]
            out.append(pred.cpu().numpy())
        pred = np.concatenate(out).astype(np.float32)
        if self.output == "depth":
            return np.maximum(pred, 1e-3)
        # One normalisation for the whole clip keeps depth temporally comparable.
        lo, hi = float(pred.min()), float(pred.max())
        disparity = (pred - lo) / max(hi - lo, 1e-6)
        return (1.0 / (disparity + 0.05)).astype(np.float32)
