"""Find known-colour objects in video frames (the phyworld-style colour parser).

Each pixel is compared with the scene's object colours by the angle between RGB
vectors (shading-invariant); a pixel belongs to the nearest object colour when that
angle is under a threshold. The
per-colour masks are cleaned with a morphological open/close (this is what makes
the parser survive VAE blur and compression speckle) and split into connected
components; the largest components become the objects.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import MMPhysInputError
from ..utils.video_io import to_uint8_frames
from .scene import SceneInfo

# Max angle (degrees) between a pixel's RGB direction and the object colour's. Measured on
# simulator clips: object pixels have a median angle of 0.2 deg (shading keeps the direction),
# background pixels are >= 10.9 deg from every palette colour; palette colours are >= 12.9 apart.
DEFAULT_COLOUR_THRESHOLD = 8.0


@dataclass
class ObjectTracks:
    """Per-frame, per-object measurements parsed from a video (N objects, F frames).

    Attributes:
        present: bool ``[F, N]``; the object was found in that frame.
        centroid: float ``[F, N, 2]`` mask mean ``(x, y)`` in px (NaN when absent); anti-aliased
            edge pixels count with a weight from their colour, which makes it sub-pixel.
        area: float ``[F, N]`` mask area in px² (0 when absent).
        radius: float ``[F, N]`` ``sqrt(area / pi)`` in px.
        bbox: float ``[F, N, 4]`` ``(x0, y0, x1, y1)`` pixel-edge box (NaN when absent).
        circle_center: float ``[F, N, 2]`` centre of the minimum enclosing circle; stays on the
            true centre of a partly occluded ball, unlike the centroid.
        circle_radius: float ``[F, N]`` radius of that circle in px.
        masks: bool ``[F, N, H, W]`` the cleaned object masks.
    """

    present: np.ndarray
    centroid: np.ndarray
    area: np.ndarray
    radius: np.ndarray
    bbox: np.ndarray
    circle_center: np.ndarray
    circle_radius: np.ndarray
    masks: np.ndarray

    @property
    def num_frames(self) -> int:
        return int(self.present.shape[0])

    @property
    def num_objects(self) -> int:
        return int(self.present.shape[1])

    def reference_area(self) -> np.ndarray:
        """Per-object typical area ``[N]``: the 75th percentile over frames where present (0 if never)."""
        out = np.zeros(self.num_objects)
        for i in range(self.num_objects):
            a = self.area[self.present[:, i], i]
            out[i] = float(np.percentile(a, 75)) if a.size else 0.0
        return out

    def center(self) -> np.ndarray:
        """Best centre estimate ``[F, N, 2]`` for the physics: the mean of the enclosing-circle
        centre and the sub-pixel centroid where the object is fully visible (their errors
        partly cancel: 0.075 px mean on raw simulator frames, 0.20 px after H.264), the
        enclosing-circle centre where it is partly hidden."""
        fv = self.fully_visible()
        out = self.circle_center.copy()
        out[fv] = 0.5 * (self.circle_center[fv] + self.centroid[fv])
        return out

    def fully_visible(self, min_fraction: float = 0.8) -> np.ndarray:
        """bool ``[F, N]``: present, not noticeably occluded (area ≥ `min_fraction` of the
        reference) and not cut by the image border (a cut mask has a biased centre)."""
        ref = self.reference_area()
        h, w = self.masks.shape[-2:]
        with np.errstate(invalid="ignore"):
            inside = (self.bbox[..., 0] > 0) & (self.bbox[..., 1] > 0) & (self.bbox[..., 2] < w) & (self.bbox[..., 3] < h)
        return self.present & (self.area >= min_fraction * ref[None]) & inside


def colour_angle(frames: np.ndarray, colours_rgb: np.ndarray) -> np.ndarray:
    """Angle in degrees between each pixel's RGB vector and each colour's RGB vector.

    Shading multiplies a surface colour by a scalar, which keeps the RGB direction, so
    this distance ignores shading (unlike RGB or Lab distances).

    Args:
        frames: uint8 ``[..., 3]``.
        colours_rgb: ``[K, 3]``.
    Returns:
        float32 ``[..., K]`` in [0, 90].
    """
    px = frames.astype(np.float32) + 1e-3
    px /= np.linalg.norm(px, axis=-1, keepdims=True)
    ref = np.asarray(colours_rgb, np.float32).reshape(-1, 3) + 1e-3
    ref /= np.linalg.norm(ref, axis=-1, keepdims=True)
    return np.degrees(np.arccos(np.clip(px @ ref.T, -1.0, 1.0)))


def colour_masks(
    frames: np.ndarray,
    colours_rgb: np.ndarray,
    threshold: float = DEFAULT_COLOUR_THRESHOLD,
    morph_kernel: int = 3,
    min_value: int = 40,
) -> np.ndarray:
    """Cleaned per-colour masks.

    A pixel belongs to colour k when k is the nearest of the given colours by RGB
    direction (`colour_angle`), that angle is under `threshold` degrees and the pixel is
    not too dark to have a hue (max channel >= `min_value`). Masks are cleaned with an
    elliptical open then close of size `morph_kernel` and their holes are filled
    (highlights inside a ball).

    Args:
        frames: uint8 ``[F, H, W, 3]`` (float in [0, 1] is accepted).
        colours_rgb: uint8 ``[K, 3]`` distinct colours to look for.
    Returns:
        bool ``[F, K, H, W]``.
    """
    import cv2

    frames = to_uint8_frames(frames)
    colours_rgb = np.asarray(colours_rgb, np.uint8).reshape(-1, 3)
    angle = colour_angle(frames, colours_rgb)  # [F,H,W,K]
    nearest = angle.argmin(-1)
    ok = (angle.min(-1) < threshold) & (frames.max(-1) >= min_value)
    f, h, w = frames.shape[:3]
    masks = np.zeros((f, len(colours_rgb), h, w), bool)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (morph_kernel, morph_kernel)) if morph_kernel > 1 else None
    for k in range(len(colours_rgb)):
        mk = (ok & (nearest == k)).astype(np.uint8)
        for t in range(f):
            m = mk[t]
            if not m.any():
                continue
            if kernel is not None:
                m = cv2.morphologyEx(m, cv2.MORPH_OPEN, kernel)
                m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, kernel)
            contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            filled = np.zeros_like(m)
            cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
            masks[t, k] = filled.astype(bool)
    return masks


def _components(mask: np.ndarray, min_area: int) -> list[np.ndarray]:
    """Connected components of a bool ``[H, W]`` mask with at least `min_area` pixels, largest first."""
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    order = sorted(range(1, n), key=lambda j: -stats[j, cv2.CC_STAT_AREA])
    return [labels == j for j in order if stats[j, cv2.CC_STAT_AREA] >= min_area]


def parse_objects(
    frames,
    scene: SceneInfo | Sequence[Sequence[int]],
    threshold: float = DEFAULT_COLOUR_THRESHOLD,
    min_area: int = 4,
    morph_kernel: int = 3,
) -> ObjectTracks:
    """Locate every scene object in every frame by its colour.

    Objects that share a colour are told apart by position: in each frame the
    largest components of that colour are matched to the objects' previous
    positions (first frame: left to right).

    Args:
        frames: ``[F, H, W, 3]`` uint8 or float in [0, 1].
        scene: a `SceneInfo` or a list of RGB colours, one per object.
        threshold: colour angle threshold in degrees (`colour_angle`).
        min_area: smallest component (px) that counts as an object.
    Returns:
        `ObjectTracks` with N = number of scene objects.
    """
    import cv2

    frames = to_uint8_frames(frames)
    colours = scene.colours_rgb if isinstance(scene, SceneInfo) else np.asarray(scene, np.uint8).reshape(-1, 3)
    if len(colours) == 0:
        raise MMPhysInputError("parse_objects needs at least one object colour")
    f, h, w = frames.shape[:3]
    n = len(colours)
    unique, inverse = np.unique(colours, axis=0, return_inverse=True)
    inverse = np.asarray(inverse).reshape(-1)
    masks_by_colour = colour_masks(frames, unique, threshold, morph_kernel)
    angle = colour_angle(frames, unique)  # [F,H,W,K] for the sub-pixel centroids
    ring_kernel = np.ones((3, 3), np.uint8)

    present = np.zeros((f, n), bool)
    centroid = np.full((f, n, 2), np.nan)
    area = np.zeros((f, n))
    bbox = np.full((f, n, 4), np.nan)
    circle_center = np.full((f, n, 2), np.nan)
    circle_radius = np.full((f, n), np.nan)
    masks = np.zeros((f, n, h, w), bool)
    last_pos = np.full((n, 2), np.nan)
    ys, xs = np.mgrid[0:h, 0:w]
    for t in range(f):
        for k in range(len(unique)):
            owners = np.flatnonzero(inverse == k)
            comps = _components(masks_by_colour[t, k], min_area)[: len(owners)]
            if not comps:
                continue
            cents = [_soft_centroid(c, angle[t, ..., k], threshold, ring_kernel, xs, ys) for c in comps]
            assignment = _match(owners, cents, last_pos)
            for obj, ci in assignment:
                c = comps[ci]
                present[t, obj] = True
                masks[t, obj] = c
                area[t, obj] = c.sum()
                centroid[t, obj] = cents[ci]
                cy, cx = ys[c], xs[c]
                bbox[t, obj] = (cx.min(), cy.min(), cx.max() + 1, cy.max() + 1)
                # Enclosing circle of the pixel squares' corners-ish: use pixel centres, pad half a pixel.
                pts = np.stack([cx, cy], -1).astype(np.float32)
                (ccx, ccy), rad = cv2.minEnclosingCircle(pts)
                circle_center[t, obj] = (ccx, ccy)
                circle_radius[t, obj] = rad + 0.5
                last_pos[obj] = cents[ci]
    radius = np.sqrt(area / np.pi)
    return ObjectTracks(present, centroid, area, radius, bbox, circle_center, circle_radius, masks)


def _soft_centroid(mask: np.ndarray, angle: np.ndarray, threshold: float, kernel: np.ndarray, xs, ys) -> np.ndarray:
    """Sub-pixel ``(x, y)`` centre of a component: mask pixels weigh 1, the one-pixel ring
    around it weighs by how close its colour is (anti-aliased edge pixels are blends)."""
    import cv2

    ring = cv2.dilate(mask.astype(np.uint8), kernel).astype(bool) & ~mask
    soft_limit = 5.0 * threshold
    weight = mask.astype(np.float64)
    weight[ring] = np.clip((soft_limit - angle[ring]) / (soft_limit - threshold), 0.0, 1.0)
    total = weight.sum()
    return np.array([(weight * xs).sum() / total, (weight * ys).sum() / total])


def _match(owners: np.ndarray, cents: list[np.ndarray], last_pos: np.ndarray) -> list[tuple[int, int]]:
    """Assign components to objects of one colour: min total distance to last positions."""
    if len(owners) == 1:
        return [(int(owners[0]), 0)]
    known = [o for o in owners if np.all(np.isfinite(last_pos[o]))]
    if not known:
        # No history: left-to-right order of objects matches left-to-right components.
        order = np.argsort([c[0] for c in cents])
        return [(int(owners[i]), int(order[i])) for i in range(min(len(owners), len(cents)))]
    best, best_cost = None, np.inf
    for perm in itertools.permutations(range(len(owners)), len(cents)):
        # perm[j] = index (into owners) that component j is assigned to
        cost = 0.0
        for j, oi in enumerate(perm):
            lp = last_pos[owners[oi]]
            cost += float(np.linalg.norm(cents[j] - lp)) if np.all(np.isfinite(lp)) else 1e3
        if cost < best_cost:
            best, best_cost = perm, cost
    return [(int(owners[oi]), j) for j, oi in enumerate(best)]
