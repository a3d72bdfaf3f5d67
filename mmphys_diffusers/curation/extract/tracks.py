"""Dense trajectories by chaining optical flow (OpenCV), with forward-backward visibility."""

from __future__ import annotations

import cv2
import numpy as np

from ...errors import MMPhysInputError
from ..registry import TRACKERS
from .base import Tracker


class ChainedFlowTracker(Tracker):
    """Tracks every frame-0 pixel by chaining forward flow; a step is visible when the
    backward flow brings the point back within ``fb_abs + fb_rel * |flow|`` pixels.
    A track that fails once (occlusion or leaving the frame) stays invisible, since
    chained flow cannot re-identify it later.
    """

    def __init__(self, fb_abs: float = 1.0, fb_rel: float = 0.1):
        self.fb_abs = fb_abs
        self.fb_rel = fb_rel

    def flow(self, grey0: np.ndarray, grey1: np.ndarray) -> np.ndarray:  # [H,W,2]
        raise NotImplementedError

    def track(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        f, h, w, _ = frames.shape
        grey = [cv2.cvtColor(fr, cv2.COLOR_RGB2GRAY) for fr in frames]
        fwd = np.zeros((f, h, w, 2), np.float32)
        tracks = np.zeros((f, h, w, 2), np.float32)
        visibility = np.zeros((f, h, w), bool)
        fb_error = np.zeros((f, h, w), np.float32)
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        pos = np.stack([gx, gy], -1)
        vis = np.ones((h, w), bool)
        tracks[0], visibility[0] = pos, vis
        for t in range(f - 1):
            fwd[t] = self.flow(grey[t], grey[t + 1])
            bwd = self.flow(grey[t + 1], grey[t])
            step = cv2.remap(fwd[t], pos[..., 0], pos[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            new = pos + step
            back = cv2.remap(bwd, new[..., 0], new[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            err = np.linalg.norm(new + back - pos, axis=-1)
            inside = (new[..., 0] >= 0) & (new[..., 0] <= w - 1) & (new[..., 1] >= 0) & (new[..., 1] <= h - 1)
            vis = vis & inside & (err <= self.fb_abs + self.fb_rel * np.linalg.norm(step, axis=-1))
            pos = new
            tracks[t + 1], visibility[t + 1], fb_error[t + 1] = pos, vis, err
        return {"tracks": tracks, "visibility": visibility, "flow": fwd, "fb_error": fb_error}


@TRACKERS.register("farneback")
class FarnebackTracker(ChainedFlowTracker):
    """Farneback dense flow (cv2.calcOpticalFlowFarneback), chained. Options are Farneback's."""

    name = "farneback"

    def __init__(self, fb_abs: float = 1.0, fb_rel: float = 0.1, pyr_scale: float = 0.5, levels: int = 3, winsize: int = 15, iterations: int = 3, poly_n: int = 5, poly_sigma: float = 1.2):
        super().__init__(fb_abs, fb_rel)
        self.params = (pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, 0)

    def flow(self, grey0: np.ndarray, grey1: np.ndarray) -> np.ndarray:
        return cv2.calcOpticalFlowFarneback(grey0, grey1, None, *self.params)


@TRACKERS.register("dis")
class DISTracker(ChainedFlowTracker):
    """OpenCV DIS flow (faster than Farneback), chained. preset: "ultrafast" | "fast" | "medium"."""

    name = "dis"

    def __init__(self, fb_abs: float = 1.0, fb_rel: float = 0.1, preset: str = "medium"):
        super().__init__(fb_abs, fb_rel)
        presets = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST, "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
        if preset not in presets:
            raise MMPhysInputError(f"dis tracker preset {preset!r} unknown; expected one of {sorted(presets)}")
        self._dis = cv2.DISOpticalFlow_create(presets[preset])

    def flow(self, grey0: np.ndarray, grey1: np.ndarray) -> np.ndarray:
        return self._dis.calc(grey0, grey1, None)
