"""A small synthetic scene with exact, mutually consistent cues, for tests and benchmarks.

Discs (instances) move rigidly in front of a sloped ground plane (depth ramp) while the
background pans horizontally, so the scene has occlusions, depth edges and motion.
"""

from __future__ import annotations

import numpy as np

from ..errors import MMPhysInputError


def make_synthetic_cues(
    num_frames: int = 8,
    height: int = 64,
    width: int = 64,
    num_instances: int = 8,
    min_radius: float = 5.0,
    max_radius: float | None = None,
    max_speed: float = 1.5,
    pan: float = 0.5,
    near: float = 1.0,
    far: float = 20.0,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Render a synthetic clip's cue arrays.

    Returns:
        dict with the canonical names: ``instances`` int64 ``[F,H,W]`` (0 = background),
        ``depth`` float32 ``[F,H,W]`` in [near, far], ``tracks`` float32 ``[F,H,W,2]``,
        ``visibility`` bool ``[F,H,W]``, ``flow`` float32 ``[F,H,W,2]`` (last frame zero).
    """
    if num_frames < 1 or height < 2 or width < 2 or num_instances < 0:
        raise MMPhysInputError(
            f"make_synthetic_cues needs num_frames >= 1, height/width >= 2, num_instances >= 0; got "
            f"{num_frames}, {height}x{width}, {num_instances}"
        )
    if not 0 < near < far:
        raise MMPhysInputError(f"make_synthetic_cues needs 0 < near < far, got near={near}, far={far}")
    rng = np.random.default_rng(seed)
    max_radius = max_radius if max_radius is not None else max(min_radius + 1, min(height, width) / 8)
    radius = rng.uniform(min_radius, max_radius, num_instances)
    centre0 = np.stack([rng.uniform(0, width - 1, num_instances), rng.uniform(0, height - 1, num_instances)], 1)
    velocity = rng.uniform(-max_speed, max_speed, (num_instances, 2))
    # Objects stand between `near` and the middle of the range; ground spans [3 * near, far].
    obj_depth = rng.uniform(near, near + (far - near) * 0.4, num_instances)

    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    ground = (far - (far - 3 * near) * rows / (height - 1)).astype(np.float32)

    def render(t: float) -> tuple[np.ndarray, np.ndarray]:
        ids = np.zeros((height, width), np.int64)
        depth = ground.copy()
        for k in range(num_instances):
            cx, cy = centre0[k] + velocity[k] * t
            d2 = ((cols - cx) ** 2 + (rows - cy) ** 2) / radius[k] ** 2
            # A spherical cap: the disc centre is a little nearer than its rim.
            z = obj_depth[k] * (1.0 - 0.1 * np.sqrt(np.clip(1.0 - d2, 0.0, 1.0)))
            closer = (d2 <= 1.0) & (z < depth)
            ids[closer] = k + 1
            depth[closer] = z[closer]
        return ids, depth

    instances = np.zeros((num_frames, height, width), np.int64)
    depth = np.zeros((num_frames, height, width), np.float32)
    for t in range(num_frames):
        instances[t], depth[t] = render(t)

    # Per-owner velocity, row 0 = background pan.
    owner_velocity = np.concatenate([np.array([[pan, 0.0]]), velocity]).astype(np.float32)
    owner0 = instances[0]
    times = np.arange(num_frames, dtype=np.float32)[:, None, None]
    tracks = np.stack(
        [cols[None] + owner_velocity[owner0, 0][None] * times, rows[None] + owner_velocity[owner0, 1][None] * times],
        -1,
    ).astype(np.float32)

    # A track is visible while it is inside the frame and its own surface is the front one there.
    xi = np.round(tracks[..., 0]).astype(np.int64)
    yi = np.round(tracks[..., 1]).astype(np.int64)
    inside = (xi >= 0) & (xi < width) & (yi >= 0) & (yi < height)
    t_idx = np.broadcast_to(np.arange(num_frames)[:, None, None], xi.shape)
    front = instances[t_idx, np.clip(yi, 0, height - 1), np.clip(xi, 0, width - 1)]
    visibility = inside & (front == owner0[None])

    flow = owner_velocity[instances].astype(np.float32)
    flow[-1] = 0.0
    return {"instances": instances, "depth": depth, "tracks": tracks, "visibility": visibility, "flow": flow}
