"""Classical image operations shared by the default (weight-free) curation backends."""

from __future__ import annotations

import cv2
import numpy as np

_KERNEL3 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))

# Basic colour names for captions, RGB.
_COLOUR_NAMES = {
    "red": (200, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 70, 200),
    "yellow": (230, 210, 40),
    "orange": (240, 140, 30),
    "purple": (140, 60, 170),
    "cyan": (40, 200, 210),
    "pink": (240, 130, 180),
    "white": (240, 240, 240),
    "grey": (128, 128, 128),
    "black": (20, 20, 20),
    "brown": (120, 80, 40),
}


def median_background(frames: np.ndarray, threshold: float = 25.0, resolve_ghosts: bool = True, min_share: float = 0.3) -> np.ndarray:
    """Static scene ``[H,W,3]`` uint8 under a fixed camera: the per-pixel temporal median,
    with "ghosts" resolved.

    An object that rests on one spot for more than half the clip is part of the plain
    median, and the floor it uncovers would look like a moving object. Where a pixel shows
    two modes (the median and a minority seen in >= `min_share` of the frames), the mode closer to the
    surrounding background (inpainted from outside those pixels) is taken: floors continue
    their surroundings, objects do not.
    """
    step = max(1, len(frames) // 24)  # a subsample is enough for the median and keeps it cheap
    sample = frames[::step]
    background = np.median(sample, axis=0).astype(np.uint8)
    if not resolve_ghosts or len(sample) < 4:
        return background
    differs = np.abs(sample.astype(np.int16) - background.astype(np.int16)).max(-1) > threshold  # [T,H,W]
    # Moving objects cover a pixel briefly; an uncovered rest spot shows the floor for a good share of the clip.
    two_modes = differs.sum(0) >= max(2, min_share * len(sample))
    if not two_modes.any():
        return background
    ys, xs = np.nonzero(two_modes)
    # Median of the minority samples only, at the two-mode pixels only (nanmedian is slow on full frames).
    values = sample[:, ys, xs].astype(np.float32)  # [T, N, 3]
    values[~differs[:, ys, xs]] = np.nan
    minority = np.nanmedian(values, axis=0)  # [N, 3]; every column has >= 2 samples
    region = cv2.dilate(two_modes.astype(np.uint8), _KERNEL3)
    expected = cv2.inpaint(background, region, 3, cv2.INPAINT_TELEA)[ys, xs].astype(np.float32)
    closer = np.abs(minority - expected).sum(-1) < np.abs(background[ys, xs].astype(np.float32) - expected).sum(-1)
    background[ys[closer], xs[closer]] = np.clip(minority[closer], 0, 255).astype(np.uint8)
    return background


def foreground_masks(frames: np.ndarray, background: np.ndarray, threshold: float = 25.0, clean: bool = True, drop_ghosts: bool = False) -> np.ndarray:
    """Bool ``[F,H,W]``: pixels whose colour differs from the background by more than `threshold`
    (any channel); optionally without ghosts (see `drop_ghost_pixels`)."""
    diff = np.abs(frames.astype(np.int16) - background.astype(np.int16)).max(-1)
    masks = diff > threshold
    if drop_ghosts:
        masks = np.stack([drop_ghost_pixels(fr, background, m) for fr, m in zip(frames, masks)])
    if clean:
        masks = np.stack([clean_mask(m) for m in masks])
    return masks


def drop_ghost_pixels(frame: np.ndarray, background: np.ndarray, mask: np.ndarray, ring: int = 3) -> np.ndarray:
    """Remove "ghost" pixels from one frame's foreground mask.

    Where an object rests for most of the clip it is part of the median background, and
    the frames where it is elsewhere show the uncovered scene as "foreground". Such a pixel
    looks like the frame around the blob (a ring outside it) while the background there
    does not; a real object's pixel is the other way round.
    """
    if not mask.any():
        return mask
    n, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    out = mask.copy()
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * ring + 1, 2 * ring + 1))
    frame_f, bg_f = frame.astype(np.float32), background.astype(np.float32)
    for k in range(1, n):
        blob = labels == k
        around = cv2.dilate(blob.astype(np.uint8), kernel).astype(bool) & ~mask
        if not around.any():
            continue
        ring_colour = np.median(frame_f[around], axis=0)
        like_ring_now = np.abs(frame_f[blob] - ring_colour).sum(-1)
        like_ring_in_bg = np.abs(bg_f[blob] - ring_colour).sum(-1)
        ghost = like_ring_now < like_ring_in_bg
        ys, xs = np.nonzero(blob)
        out[ys[ghost], xs[ghost]] = False
    return out


def clean_mask(mask: np.ndarray) -> np.ndarray:
    """Morphological open then close with a 3x3 disc (removes speckle, fills pinholes)."""
    m = mask.astype(np.uint8)
    m = cv2.morphologyEx(m, cv2.MORPH_OPEN, _KERNEL3)
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, _KERNEL3)
    return m.astype(bool)


def components(mask: np.ndarray, min_area: int) -> list[dict]:
    """Connected components of a bool mask with at least `min_area` pixels: box (x0,y0,x1,y1 exclusive), centroid, area, label map index."""
    n, labels, stats, centroids = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    out = []
    for i in range(1, n):
        x, y, w, h, area = stats[i]
        if area >= min_area:
            out.append({"box": (int(x), int(y), int(x + w), int(y + h)), "centroid": (float(centroids[i][0]), float(centroids[i][1])), "area": int(area), "label": i, "labels": labels})
    return out


def box_iou(a, b) -> float:
    """IoU of two ``[x0,y0,x1,y1]`` boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def box_gap(a, b) -> float:
    """Chebyshev gap in pixels between two boxes (0 when they touch or overlap)."""
    dx = max(0.0, max(a[0], b[0]) - min(a[2], b[2]))
    dy = max(0.0, max(a[1], b[1]) - min(a[3], b[3]))
    return float(max(dx, dy))


def mask_box(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """Tight box ``[x0,y0,x1,y1]`` (x1,y1 exclusive) of a bool mask, or None when empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def colour_name(rgb) -> str:
    """Nearest basic colour name of an RGB triple."""
    rgb = np.asarray(rgb, dtype=np.float32)
    return min(_COLOUR_NAMES, key=lambda k: float(((np.asarray(_COLOUR_NAMES[k], np.float32) - rgb) ** 2).sum()))


def warp_by_flow(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample ``image`` at ``(x, y) + flow(x, y)`` (bilinear, border replicate). flow ``[H,W,2]``."""
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(image, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
