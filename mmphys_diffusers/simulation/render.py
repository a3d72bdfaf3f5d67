"""Vectorised numpy rasteriser: RGB frames plus exact ground-truth cues.

Objects are flat shapes (discs, rectangles) on their depth planes, so every
object moves rigidly in the image (rotation + translation at the constant scale
``fx / depth``). That makes masks, depth, dense tracks, visibility and optical
flow analytically exact. A pixel ``(row, col)`` is the image point
``(x=col, y=row)``; a shape covers the pixel when that point is inside it.
Only the RGB frames are anti-aliased (edge coverage from the signed distance);
every cue uses the exact point-inside test.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .world import PALETTE, ObjectSpec, PinholeCamera, SceneSpec, Trajectory

# Light direction for the fake sphere shading (up-left, towards the camera).
_LIGHT = np.array([-0.45, 0.55, 0.70]) / np.linalg.norm([-0.45, 0.55, 0.70])


@dataclass
class RenderedClip:
    """Frames and cues of one clip; all arrays are ``[F, H, W, ...]``."""

    rgb: np.ndarray  # uint8 [F,H,W,3]
    instances: np.ndarray  # uint8 [F,H,W]
    depth: np.ndarray  # float32 [F,H,W], metres
    tracks: np.ndarray  # float32 [F,H,W,2], (x, y) pixels
    visibility: np.ndarray  # bool [F,H,W]
    flow: np.ndarray  # float32 [F,H,W,2], pixels, t -> t+1
    occlusions: list[tuple[int, int]]  # (front id, back id) pairs seen overlapping


class _Poses:
    """Rigid image-space poses of every object at every frame (vectorised helpers)."""

    def __init__(self, camera: PinholeCamera, scene: SceneSpec, traj: Trajectory):
        self.camera = camera
        self.depth = np.array([o.depth_m for o in scene.objects], np.float64)  # [N]
        self.scale = camera.fx / self.depth  # px per metre, [N]
        self.pos = traj.position_m  # [F,N,2]
        self.cos = np.cos(traj.angle_rad)  # [F,N]
        self.sin = np.sin(traj.angle_rad)

    def to_local(self, t: int, i: int, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel points -> body-local metres ``(a, b)`` of object ``i`` at frame ``t``."""
        wx, wy = self.camera.pixel_to_world(x, y, self.depth[i])
        dx, dy = wx - self.pos[t, i, 0], wy - self.pos[t, i, 1]
        c, s = self.cos[t, i], self.sin[t, i]
        return c * dx + s * dy, -s * dx + c * dy

    def to_pixel(self, t, i: int, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Body-local metres of object ``i`` -> pixel points at frame(s) ``t`` (int or index array)."""
        c, s = self.cos[t, i], self.sin[t, i]
        px, py = self.pos[t, i, 0], self.pos[t, i, 1]
        if np.ndim(t):  # broadcast frames over a leading axis
            c, s, px, py = (v[:, None] for v in (c, s, px, py))
        wx = px + c * a - s * b
        wy = py + s * a + c * b
        return self.camera.world_to_pixel(wx, wy, self.depth[i])


def signed_distance_m(spec: ObjectSpec, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Signed distance (metres, negative inside) of body-local points to the object's outline."""
    if spec.kind == "ball":
        return np.hypot(a, b) - spec.size_m[0]
    # Rectangle: exact inside/outside sign; the Chebyshev-style distance is enough for edge AA.
    return np.maximum(np.abs(a) - 0.5 * spec.size_m[0], np.abs(b) - 0.5 * spec.size_m[1])


def _ramp_inside(camera: PinholeCamera, scene: SceneSpec, x: np.ndarray, y: np.ndarray):
    """Yield (inside mask, ramp) for every ramp at pixel points (x, y)."""
    for ramp in scene.ramps:
        wx, wy = camera.pixel_to_world(x, y, ramp.depth_m)
        verts = np.asarray(ramp.vertices_m)
        inside = np.ones(np.broadcast(wx, wy).shape, bool)
        for k in range(len(verts)):  # convex polygon, counter-clockwise: left of every edge
            (x0, y0), (x1, y1) = verts[k], verts[(k + 1) % len(verts)]
            inside &= (x1 - x0) * (wy - y0) - (y1 - y0) * (wx - x0) >= 0
        yield inside, ramp


def background_depth_at(camera: PinholeCamera, scene: SceneSpec, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Exact depth (metres) of the static background (wall, floor, ramps) at image points."""
    x, y = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(y, np.float64))
    wall_row = camera.floor_row(scene.wall_depth_m)  # floor meets the wall here
    with np.errstate(divide="ignore"):
        floor = camera.fy * camera.height_m / np.maximum(y - camera.cy, 1e-9)
    depth = np.where(y > wall_row, np.minimum(floor, scene.wall_depth_m), scene.wall_depth_m)
    for inside, ramp in _ramp_inside(camera, scene, x, y):
        depth = np.where(inside, np.minimum(depth, ramp.depth_m), depth)
    return depth


def render_background(camera: PinholeCamera, scene: SceneSpec) -> tuple[np.ndarray, np.ndarray]:
    """Static background: colour float32 ``[H,W,3]`` in 0..255 and depth float64 ``[H,W]``."""
    if not scene.ramps:  # wall + floor only depend on the camera: reuse them across clips
        colour, depth = _plain_background(camera, scene.wall_depth_m)
        return colour.copy(), depth.copy()
    return _render_background(camera, scene)


@functools.lru_cache(maxsize=8)
def _plain_background(camera: PinholeCamera, wall_depth_m: float) -> tuple[np.ndarray, np.ndarray]:
    return _render_background(camera, SceneSpec("background", [], wall_depth_m=wall_depth_m))


@functools.lru_cache(maxsize=8)
def _pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column coordinates ``[H,W]`` float64 (read-only, shared)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    ys.flags.writeable = xs.flags.writeable = False
    return ys, xs


def _render_background(camera: PinholeCamera, scene: SceneSpec) -> tuple[np.ndarray, np.ndarray]:
    h = camera.height
    ys, xs = _pixel_grid(camera.height, camera.width)
    depth = background_depth_at(camera, scene, xs, ys)
    wall_row = camera.floor_row(scene.wall_depth_m)
    # Wall: a soft vertical gradient; floor: warm tiles that darken with distance.
    t = (ys / max(h - 1, 1))[..., None]
    wall = (1 - t) * np.array([170, 200, 235]) + t * np.array([215, 222, 230])
    wx, _ = camera.pixel_to_world(xs, ys, depth)
    tiles = ((np.floor(wx / 1.5) + np.floor(depth / 1.5)) % 2)[..., None]
    near = np.clip((scene.wall_depth_m - depth) / scene.wall_depth_m, 0, 1)[..., None]
    floor = (np.array([150, 120, 90]) + 14 * tiles) * (0.7 + 0.3 * near)
    colour = np.where((ys > wall_row)[..., None], floor, wall)
    for inside, ramp in _ramp_inside(camera, scene, xs, ys):
        colour = np.where(inside[..., None], np.array(ramp.colour_rgb, np.float64), colour)
    return colour.astype(np.float32), depth


def _shade(spec: ObjectSpec, a: np.ndarray, b: np.ndarray, angle: float) -> np.ndarray:
    """Object colour at body-local points, ``[n, 3]`` in 0..255."""
    base = np.array(PALETTE[spec.colour], np.float64)
    if spec.kind == "ball":
        r = spec.size_m[0]
        # World-aligned offsets keep the highlight fixed while the stripe turns with the ball.
        c, s = np.cos(angle), np.sin(angle)
        nx, ny = (c * a - s * b) / r, (s * a + c * b) / r
        nz = np.sqrt(np.clip(1 - nx * nx - ny * ny, 0, 1))
        lambert = np.clip(nx * _LIGHT[0] + ny * _LIGHT[1] + nz * _LIGHT[2], 0, 1)
        shade = 0.45 + 0.55 * lambert
        shade = shade * np.where(np.abs(b) < 0.22 * r, 0.72, 1.0)
        return np.clip(base * shade[:, None] + 60 * (lambert**12)[:, None], 0, 255)
    hw, hh = 0.5 * spec.size_m[0], 0.5 * spec.size_m[1]
    rim = np.minimum(hw - np.abs(a), hh - np.abs(b)) < 0.18 * min(hw, hh)
    shade = np.where(rim, 0.7, 0.95 + 0.05 * b / hh)
    return base * shade[:, None]


def render_clip(camera: PinholeCamera, scene: SceneSpec, traj: Trajectory) -> RenderedClip:
    """Rasterise every frame and compute the exact cues.

    Objects are painted far to near (ties: higher id in front); a pixel belongs to
    an object when its point is inside the shape and the object is not behind the
    background there (the floor can hide a ball's lowest sliver on impact).
    """
    f, n_obj = traj.position_m.shape[:2]
    h, w = camera.height, camera.width
    bg_colour, bg_depth = render_background(camera, scene)
    grid_y, grid_x = _pixel_grid(h, w)
    poses = _Poses(camera, scene, traj)
    order = sorted(range(n_obj), key=lambda i: (-scene.objects[i].depth_m, i))
    rank = {i: k for k, i in enumerate(order)}  # larger rank = drawn later = in front

    rgb = np.empty((f, h, w, 3), np.uint8)
    instances = np.zeros((f, h, w), np.uint8)
    depth = np.empty((f, h, w), np.float32)
    flow = np.zeros((f, h, w, 2), np.float32)
    occlusions: set[tuple[int, int]] = set()
    bound_px = [o.bounding_radius_m * s + 1.5 for o, s in zip(scene.objects, poses.scale)]

    for t in range(f):
        colour = bg_colour.copy()
        zbuf = bg_depth.copy()
        inst = instances[t]
        for i in order:
            spec = scene.objects[i]
            cx, cy = camera.world_to_pixel(traj.position_m[t, i, 0], traj.position_m[t, i, 1], spec.depth_m)
            r0, r1 = max(int(np.floor(cy - bound_px[i])), 0), min(int(np.ceil(cy + bound_px[i])) + 1, h)
            c0, c1 = max(int(np.floor(cx - bound_px[i])), 0), min(int(np.ceil(cx + bound_px[i])) + 1, w)
            if r0 >= r1 or c0 >= c1:
                continue  # off-screen
            ys, xs = grid_y[r0:r1, c0:c1], grid_x[r0:r1, c0:c1]
            a, b = poses.to_local(t, i, xs, ys)
            sd_px = signed_distance_m(spec, a, b) * poses.scale[i]
            in_front_of_bg = spec.depth_m <= bg_depth[r0:r1, c0:c1]
            inside = (sd_px <= 0) & in_front_of_bg
            coverage = np.clip(0.5 - sd_px, 0.0, 1.0) * in_front_of_bg
            painted = coverage > 0
            if not painted.any():
                continue
            region_inst = inst[r0:r1, c0:c1]
            for back in np.unique(region_inst[inside]):
                if back:
                    occlusions.add((i + 1, int(back)))
            region_inst[inside] = i + 1
            zbuf[r0:r1, c0:c1][inside] = spec.depth_m
            cov = coverage[painted][:, None]
            region = colour[r0:r1, c0:c1]
            region[painted] = region[painted] * (1 - cov) + _shade(spec, a[painted], b[painted], traj.angle_rad[t, i]) * cov
            if t + 1 < f:
                nx, ny = poses.to_pixel(t + 1, i, a[inside], b[inside])
                region_flow = flow[t, r0:r1, c0:c1]
                region_flow[inside] = np.stack([nx - xs[inside], ny - ys[inside]], -1)
        rgb[t] = np.clip(colour + 0.5, 0, 255).astype(np.uint8)
        depth[t] = zbuf

    tracks, visibility = _dense_tracks(camera, scene, poses, instances, rank)
    return RenderedClip(rgb, instances, depth, tracks, visibility, flow, sorted(occlusions))


def _dense_tracks(
    camera: PinholeCamera, scene: SceneSpec, poses: _Poses, instances: np.ndarray, rank: dict[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Tracks of every frame-0 pixel, ``[F,H,W,2]`` float32, and their visibility ``[F,H,W]``.

    Background points are static and visible where no object covers them. An
    object point follows its body rigidly and is visible when it is on screen, not
    behind the background and not inside a shape drawn in front of it.
    """
    f, h, w = instances.shape
    ys, xs = np.mgrid[0:h, 0:w]
    tracks = np.empty((f, h, w, 2), np.float32)
    tracks[..., 0] = xs
    tracks[..., 1] = ys
    visibility = instances == 0  # correct for background tracks; object tracks overwritten below
    frames = np.arange(f)
    for oid in np.unique(instances[0]):
        if oid == 0:
            continue
        i = int(oid) - 1
        rows, cols = np.nonzero(instances[0] == oid)
        a, b = poses.to_local(0, i, cols.astype(np.float64), rows.astype(np.float64))
        px, py = poses.to_pixel(frames, i, a[None], b[None])  # [F, n]
        px[0], py[0] = cols, rows  # exact start points (the round trip is off by ~1e-15)
        z = scene.objects[i].depth_m
        vis = (px >= -0.5) & (px < w - 0.5) & (py >= -0.5) & (py < h - 0.5)
        vis &= z <= background_depth_at(camera, scene, px, py)
        for j, other in enumerate(scene.objects):
            if rank[j] <= rank[i]:
                continue
            for t in range(f):  # a nearer shape hides the point
                ja, jb = poses.to_local(t, j, px[t], py[t])
                vis[t] &= signed_distance_m(other, ja, jb) > 0
        vis[0] = True  # these pixels show this object in frame 0 by construction
        tracks[:, rows, cols, 0] = px
        tracks[:, rows, cols, 1] = py
        visibility[:, rows, cols] = vis
    return tracks, visibility
