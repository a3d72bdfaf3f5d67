"""Physically wrong versions of simulator clips: negative controls that the metrics must flag.

Each function takes a clip's frames and its exact ``instances`` map (from the
simulator's cues) and returns new uint8 frames. Objects are cut out with their exact
mask, the hole is filled with the clip's own background, and they are pasted back
elsewhere, so only the physics changes, not the look.
"""

from __future__ import annotations

import numpy as np

from ..errors import MMPhysInputError


def clip_background(frames: np.ndarray, instances: np.ndarray) -> np.ndarray:
    """Per-pixel background ``[H, W, 3]``: median over frames where no object covers the pixel."""
    frames = np.asarray(frames)
    free = instances == 0
    bg = np.median(frames, axis=0)
    stack = np.where(free[..., None], frames.astype(np.float64), np.nan)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(stack, axis=0)
    return np.where(np.isnan(med), bg, med).astype(np.uint8)


def _object_mask(instances: np.ndarray, object_id: int) -> np.ndarray:
    """Dilated mask of one object (anti-aliased edge pixels go with it)."""
    import cv2

    mask = (instances == object_id).astype(np.uint8)
    kernel = np.ones((3, 3), np.uint8)
    return np.stack([cv2.dilate(m, kernel) for m in mask]).astype(bool)


def remove_object(frames: np.ndarray, instances: np.ndarray, object_id: int, frame_indices) -> np.ndarray:
    """Erase object ``object_id`` (1-based instance id) from the given frames."""
    out = np.array(frames, copy=True)
    bg = clip_background(frames, instances)
    mask = _object_mask(instances, object_id)
    for t in frame_indices:
        out[t][mask[t]] = bg[mask[t]]
    return out


def shift_object(frames: np.ndarray, instances: np.ndarray, object_id: int, offsets_px) -> np.ndarray:
    """Move object ``object_id`` by integer ``(dx, dy)`` pixels per frame (``offsets_px [F, 2]``).

    The object is pasted on top of everything (good enough for single-plane scenes).
    """
    frames = np.asarray(frames)
    offsets = np.round(np.asarray(offsets_px, np.float64)).astype(int)
    if offsets.shape != (len(frames), 2):
        raise MMPhysInputError(f"offsets_px must be [F, 2] = [{len(frames)}, 2], got {offsets.shape}")
    out = np.array(frames, copy=True)
    bg = clip_background(frames, instances)
    mask = _object_mask(instances, object_id)
    h, w = frames.shape[1:3]
    for t, (dx, dy) in enumerate(offsets):
        if dx == 0 and dy == 0:
            continue
        ys, xs = np.nonzero(mask[t])
        pixels = frames[t][ys, xs]
        out[t][mask[t]] = bg[mask[t]]
        ny, nx = ys + dy, xs + dx
        ok = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        out[t][ny[ok], nx[ok]] = pixels[ok]
    return out


def enlarge_object(frames: np.ndarray, instances: np.ndarray, object_id: int, grow_px: int) -> np.ndarray:
    """Draw object ``object_id`` ``grow_px`` pixels larger all round, in its own mean colour of each frame
    (the object drawn too large, as under-trained generators do)."""
    import cv2

    if not isinstance(grow_px, int) or grow_px < 1:
        raise MMPhysInputError(f"grow_px={grow_px!r}: expected an int >= 1")
    out = np.array(frames, copy=True)
    exact = np.asarray(instances) == object_id
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow_px + 1, 2 * grow_px + 1))
    for t in range(len(out)):
        if not exact[t].any():
            continue
        grown = cv2.dilate(exact[t].astype(np.uint8), kernel).astype(bool)
        out[t][grown] = np.asarray(frames)[t][exact[t]].mean(axis=0).round().astype(np.uint8)
    return out


def rebounce(
    frames: np.ndarray,
    instances: np.ndarray,
    object_id: int,
    centers_px: np.ndarray,
    rest_y_px: float,
    gravity_px_frame2: float,
    bounce_frame: int,
    restitution: float,
) -> np.ndarray:
    """Replay a ball's motion after its first bounce with another coefficient of restitution.

    The fall before the bounce is kept. The impact time and speed come from a parabola
    with the scene's gravity fitted to the frames before `bounce_frame` (the first frame
    after the impact); from there the ball flies with the same gravity and bounces on the
    resting line ``rest_y_px`` (image y of its centre when it touches the floor) with
    `restitution`, so ``restitution > 1`` makes every bounce gain energy.

    Args:
        centers_px: ``[F, 2]`` true pixel centres (the simulator's ``position_px``).
        gravity_px_frame2: downward image acceleration in px/frame².
    """
    centers = np.asarray(centers_px, np.float64)
    g = float(gravity_px_frame2)
    before = np.arange(bounce_frame)
    if before.size < 2:
        raise MMPhysInputError(f"rebounce needs >= 2 frames before the bounce, got bounce_frame={bounce_frame}")
    # y = g/2 t² + b t + c with g known: fit b, c.
    A = np.stack([before, np.ones_like(before)], -1).astype(np.float64)
    (b, c), *_ = np.linalg.lstsq(A, centers[before, 1] - 0.5 * g * before**2, rcond=None)
    roots = np.roots([0.5 * g, b, c - rest_y_px])
    roots = [r.real for r in roots if abs(r.imag) < 1e-9 and r.real >= before[-1] - 1e-9]
    if not roots:
        raise MMPhysInputError("rebounce: the fitted fall never reaches the resting line")
    t_hit = min(roots)
    speed = g * t_hit + b  # downward speed at impact, px/frame
    new_y = centers[:, 1].copy()
    for t in range(bounce_frame, len(frames)):
        # Integrate bounce by bounce up to frame t.
        t0, v = t_hit, restitution * speed
        while True:
            flight = 2.0 * v / g  # time until it is back on the resting line
            if t - t0 <= flight or flight < 1e-6:
                tau = t - t0
                new_y[t] = rest_y_px - (v * tau - 0.5 * g * tau * tau) if flight >= 1e-6 else rest_y_px
                break
            t0, v = t0 + flight, restitution * v
    offsets = np.zeros((len(frames), 2))
    offsets[:, 1] = new_y - centers[:, 1]
    return shift_object(frames, instances, object_id, offsets)


def time_reverse(frames: np.ndarray) -> np.ndarray:
    """Frames in reverse order (bounces gain energy, friction accelerates)."""
    return np.ascontiguousarray(np.asarray(frames)[::-1])


def flip_vertically(frames: np.ndarray) -> np.ndarray:
    """Upside-down frames: objects fall upward (gravity flipped)."""
    return np.ascontiguousarray(np.asarray(frames)[:, ::-1])
