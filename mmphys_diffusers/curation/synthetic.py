"""Tiny synthetic clips with exact ground truth, for tests and benchmarks of the curation stages.

Coloured discs move over a static textured floor (fixed camera): one falls and
bounces, one rolls. Ground truth: instance ids, depth (a ground-plane scene with
discs standing at their contact depth), dense tracks from frame 0 and visibility
(background points hidden behind a disc are not visible).
"""

from __future__ import annotations

import cv2
import numpy as np

DISC_COLOURS = ((220, 50, 50), (50, 90, 220), (240, 200, 40), (60, 180, 80))


def _background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    # Low-frequency colour blobs plus fine texture, so optical flow has something to lock onto.
    coarse = cv2.resize(rng.uniform(70, 190, (max(2, h // 8), max(2, w // 8), 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    fine = rng.normal(0, 12, (h, w, 1)).astype(np.float32)
    return np.clip(coarse + fine, 0, 255).astype(np.uint8)


def disc_paths(num_frames: int, h: int, w: int, num_discs: int, rng: np.random.Generator) -> list[dict]:
    """Per-disc centre paths ``[F, 2]`` (x, y) and radius: disc 1 falls and bounces, the others roll."""
    paths = []
    for k in range(num_discs):
        r = float(rng.uniform(0.08, 0.11) * min(h, w))
        floor_y = h - 1 - r
        if k % 2 == 0:  # dropped: falls under gravity and bounces elastically off the floor
            x0 = rng.uniform(0.25, 0.75) * w
            y, vy, g = r + 1.0, 0.0, 0.9 * h / max(num_frames, 1) / 2.5
            vx = rng.uniform(-0.3, 0.3)
            xs, ys = [], []
            x = x0
            for _ in range(num_frames):
                xs.append(x)
                ys.append(y)
                vy += g
                y += vy
                x += vx
                if y > floor_y:
                    y = floor_y - (y - floor_y)
                    vy = -0.8 * vy
        else:  # rolls along the floor at constant speed
            start = rng.uniform(0.1, 0.2) * w
            speed = rng.uniform(0.5, 0.7) * w / max(num_frames, 1)
            xs = [start + speed * t for t in range(num_frames)]
            ys = [floor_y - 0.0] * num_frames
        paths.append({"centre": np.stack([xs, ys], -1).astype(np.float32), "radius": r, "colour": DISC_COLOURS[k % len(DISC_COLOURS)]})
    return paths


def make_disc_clip(num_frames: int = 16, height: int = 64, width: int = 64, num_discs: int = 2, seed: int = 0, static: bool = False) -> dict[str, np.ndarray]:
    """A clip and its exact ground truth.

    Returns:
        frames: uint8 ``[F,H,W,3]``; instances: int32 ``[F,H,W]`` (disc k has id k+1);
        depth: float32 ``[F,H,W]``; tracks: float32 ``[F,H,W,2]``; visibility: bool ``[F,H,W]``.
    """
    rng = np.random.default_rng(seed)
    h, w, f = height, width, num_frames
    bg = _background(h, w, rng)
    paths = disc_paths(f, h, w, num_discs, rng)
    if static:
        for p in paths:
            p["centre"][:] = p["centre"][0]
    horizon, cam_h, far = 0.3 * h, 1.5, 20.0
    rows = np.arange(h, dtype=np.float32) + 0.5 - horizon
    floor_depth = np.where(rows > 0, np.minimum(cam_h * max(h, w) / np.maximum(rows, 1e-3), far), far).astype(np.float32)
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))

    frames = np.repeat(bg[None], f, 0).copy()
    instances = np.zeros((f, h, w), np.int32)
    depth = np.repeat(np.broadcast_to(floor_depth[:, None], (h, w))[None], f, 0).copy()
    for k, p in enumerate(paths, 1):
        r = p["radius"]
        for t in range(f):
            cx, cy = p["centre"][t]
            d2 = (gx - cx) ** 2 + (gy - cy) ** 2
            inside = d2 <= r * r
            # Radial shading gives the disc some texture for flow.
            shade = (1.0 - 0.35 * np.sqrt(d2[inside]) / r)[:, None]
            frames[t][inside] = np.clip(np.asarray(p["colour"], np.float32) * shade + 20, 0, 255).astype(np.uint8)
            instances[t][inside] = k
            contact_row = int(min(h - 1, cy + r))
            depth[t][inside] = floor_depth[contact_row]

    # Tracks: a frame-0 pixel on disc k moves with its centre; background pixels stay put.
    tracks = np.repeat(np.stack([gx, gy], -1)[None], f, 0).copy()
    visibility = np.zeros((f, h, w), bool)
    owner = instances[0]
    for t in range(f):
        for k, p in enumerate(paths, 1):
            sel = owner == k
            tracks[t][sel] += p["centre"][t] - p["centre"][0]
        # Visible when the pixel under the track belongs to the same owner (not covered, inside the frame).
        xi = np.clip(np.round(tracks[t][..., 0]).astype(int), 0, w - 1)
        yi = np.clip(np.round(tracks[t][..., 1]).astype(int), 0, h - 1)
        inside = (tracks[t][..., 0] >= 0) & (tracks[t][..., 0] <= w - 1) & (tracks[t][..., 1] >= 0) & (tracks[t][..., 1] <= h - 1)
        visibility[t] = inside & (instances[t][yi, xi] == owner)
    return {"frames": frames, "instances": instances, "depth": depth, "tracks": tracks, "visibility": visibility}
