"""Scene families: each samples a `SceneSpec` from a numpy Generator.

Sizes are drawn relative to the object's depth plane so an object keeps the
same apparent size (in pixels per image width) at any resolution; ball radii are
at least ``0.09 * depth`` metres, i.e. >= 5.76 px at 64 px wide (``fx = width``).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .world import PALETTE, ObjectSpec, PinholeCamera, RampSpec, SceneSpec

NEAR_PLANES_M = (8.0, 12.0)  # object depth planes are drawn from this range
MIN_RADIUS_PER_DEPTH = 0.09  # ball radius / depth  (x fx = radius in px)
MAX_RADIUS_PER_DEPTH = 0.13


def _colours(rng: np.random.Generator, n: int) -> list[str]:
    names = list(PALETTE)
    return [names[k] for k in rng.choice(len(names), size=n, replace=False)]


def _half_width_m(camera: PinholeCamera, depth_m: float) -> float:
    """Half of the visible width (metres) on the plane ``z = depth_m``."""
    return camera.cx * depth_m / camera.fx


def _radius(rng: np.random.Generator, depth_m: float) -> float:
    return float(rng.uniform(MIN_RADIUS_PER_DEPTH, MAX_RADIUS_PER_DEPTH) * depth_m)


def free_fall(rng: np.random.Generator, camera: PinholeCamera) -> SceneSpec:
    """1-2 balls dropped from rest, bottom 1.5-5.5 m above the floor; restitution 0.3-0.9."""
    n = 1 if rng.random() < 0.6 else 2
    colours = _colours(rng, n)
    depth = float(rng.uniform(*NEAR_PLANES_M))
    half = _half_width_m(camera, depth)
    slots = np.linspace(-0.5, 0.5, n) * half if n > 1 else np.array([rng.uniform(-0.4, 0.4) * half])
    objects = []
    for k in range(n):
        r = _radius(rng, depth)
        objects.append(
            ObjectSpec(
                kind="ball",
                colour=colours[k],
                depth_m=depth,
                size_m=(r,),
                position_m=(float(slots[k]), float(rng.uniform(1.5, 5.5) + r)),
                elasticity=float(rng.uniform(0.3, 0.9)),
                friction=0.5,
            )
        )
    return SceneSpec("free_fall", objects)


def projectile(rng: np.random.Generator, camera: PinholeCamera) -> SceneSpec:
    """One ball launched from one side: vx 2-5 m/s, vy 3-9 m/s, launch height 0.5-3 m."""
    depth = float(rng.uniform(*NEAR_PLANES_M))
    half = _half_width_m(camera, depth)
    direction = 1.0 if rng.random() < 0.5 else -1.0
    r = _radius(rng, depth)
    ball = ObjectSpec(
        kind="ball",
        colour=_colours(rng, 1)[0],
        depth_m=depth,
        size_m=(r,),
        position_m=(float(-direction * rng.uniform(0.55, 0.8) * half), float(rng.uniform(0.5, 3.0) + r)),
        velocity_m_s=(float(direction * rng.uniform(2.0, 5.0)), float(rng.uniform(3.0, 9.0))),
        elasticity=float(rng.uniform(0.3, 0.8)),
        friction=0.5,
    )
    return SceneSpec("projectile", [ball], params={"direction": "right" if direction > 0 else "left"})


def collision(rng: np.random.Generator, camera: PinholeCamera) -> SceneSpec:
    """Two frictionless boxes (equal height) or balls (equal radius) meet head-on on the floor.

    Densities 0.5-2 and widths (0.8-1.4 x height) vary the mass ratio; the left body moves right at
    2-6 m/s, the right one is at rest or moves left at up to 4 m/s; restitution 0.8-1.
    """
    depth = float(rng.uniform(*NEAR_PLANES_M))
    half = _half_width_m(camera, depth)
    kind = "box" if rng.random() < 0.5 else "ball"
    colours = _colours(rng, 2)
    height = float(rng.uniform(0.2, 0.3) * depth)
    r = _radius(rng, depth)
    moving_right = float(rng.uniform(2.0, 6.0))
    moving_left = 0.0 if rng.random() < 0.4 else -float(rng.uniform(1.0, 4.0))
    objects = []
    for k, (x, vx) in enumerate(((-0.6 * half, moving_right), (0.25 * half, moving_left))):
        size = (float(rng.uniform(0.8, 1.4) * height), height) if kind == "box" else (r,)
        y = 0.5 * height if kind == "box" else r
        objects.append(
            ObjectSpec(
                kind=kind,
                colour=colours[k],
                depth_m=depth,
                size_m=size,
                position_m=(float(x), y),
                velocity_m_s=(vx, 0.0),
                density_kg_m2=float(rng.uniform(0.5, 2.0)),
                elasticity=float(rng.uniform(0.9, 1.0)),
                friction=0.0,  # frictionless sliding: horizontal momentum is conserved exactly
            )
        )
    return SceneSpec("collision", objects)


def ramp(rng: np.random.Generator, camera: PinholeCamera) -> SceneSpec:
    """A box slides (friction 0.05-0.8 tan(slope)) or a ball rolls (friction 0.4-0.9) down a 15-35 degree ramp.

    The wedge starts at the image edge and runs 65% of the view width toward the other side.
    """
    depth = float(rng.uniform(*NEAR_PLANES_M))
    half = _half_width_m(camera, depth)
    slope = float(rng.uniform(15.0, 35.0))
    tan = math.tan(math.radians(slope))
    facing = 1.0 if rng.random() < 0.5 else -1.0  # +1: high end on the left, descends to the right
    top_x, foot_x = -facing * 0.95 * half, -facing * 0.95 * half + facing * 1.3 * half
    rise = abs(foot_x - top_x) * tan
    verts = [(top_x, 0.0), (foot_x, 0.0), (top_x, rise)]
    if facing < 0:  # keep the vertices counter-clockwise
        verts = [verts[0], verts[2], verts[1]]
    kind = "box" if rng.random() < 0.5 else "ball"
    friction = float(rng.uniform(0.05, 0.8) * tan) if kind == "box" else float(rng.uniform(0.4, 0.9))
    # Start 15% down the slope, resting on its surface.
    s = 0.15
    sx, sy = top_x + s * (foot_x - top_x), rise * (1 - s)
    normal = np.array([facing * math.sin(math.radians(slope)), math.cos(math.radians(slope))])
    if kind == "box":
        side = float(rng.uniform(0.16, 0.24) * depth)
        size: tuple[float, ...] = (side, side)
        lift = 0.5 * side + 0.002
    else:
        size = (_radius(rng, depth),)
        lift = size[0] + 0.002
    body = ObjectSpec(
        kind=kind,
        colour=_colours(rng, 1)[0],
        depth_m=depth,
        size_m=size,
        position_m=(float(sx + lift * normal[0]), float(sy + lift * normal[1])),
        angle_rad=float(-facing * math.radians(slope)) if kind == "box" else 0.0,
        elasticity=0.1,
        friction=friction,
    )
    ramp_spec = RampSpec(depth_m=depth, vertices_m=tuple(verts), friction=1.0, angle_deg=slope)
    params = {"slope_deg": slope, "direction": "right" if facing > 0 else "left", "friction": friction}
    return SceneSpec("ramp", [body], ramps=[ramp_spec], params=params)


def multi_object(rng: np.random.Generator, camera: PinholeCamera) -> SceneSpec:
    """3-5 balls and boxes on 2-3 depth planes, dropped or tossed so they overlap in the image."""
    n = int(rng.integers(3, 6))
    n_planes = int(rng.integers(2, 4))
    planes = np.sort(rng.uniform(*NEAR_PLANES_M, size=n_planes))
    planes[1:] = np.maximum(planes[1:], planes[:-1] + 0.6)  # distinct, clearly ordered planes
    colours = _colours(rng, n)
    # Image-space anchors close together so that objects on different planes overlap.
    anchor_u = rng.uniform(-0.35, 0.35) * camera.width
    objects = []
    for k in range(n):
        depth = float(planes[k % n_planes])
        kind = "ball" if rng.random() < 0.6 else "box"
        if kind == "ball":
            size: tuple[float, ...] = (_radius(rng, depth),)
        else:
            size = (float(rng.uniform(0.16, 0.26) * depth), float(rng.uniform(0.16, 0.26) * depth))
        u = anchor_u + rng.uniform(-0.22, 0.22) * camera.width
        x = float(u * depth / camera.fx)
        objects.append(
            ObjectSpec(
                kind=kind,
                colour=colours[k],
                depth_m=depth,
                size_m=size,
                position_m=(x, float(rng.uniform(1.5, 5.5) + max(size))),
                velocity_m_s=(float(rng.uniform(-1.5, 1.5)), float(rng.uniform(-1.0, 3.0))),
                angle_rad=float(rng.uniform(-0.5, 0.5)) if kind == "box" else 0.0,
                angular_velocity_rad_s=float(rng.uniform(-2.0, 2.0)),
                elasticity=float(rng.uniform(0.3, 0.8)),
                friction=0.6,
            )
        )
    # Objects sharing a plane must not start interpenetrating: stack overlapping ones upwards.
    for z in set(o.depth_m for o in objects):
        same = sorted((o for o in objects if o.depth_m == z), key=lambda o: o.position_m[1])
        for k, cur in enumerate(same):
            for prev in sorted(same[:k], key=lambda o: o.position_m[1]):
                gap = prev.bounding_radius_m + cur.bounding_radius_m + 0.05
                dx, dy = cur.position_m[0] - prev.position_m[0], cur.position_m[1] - prev.position_m[1]
                if abs(dx) < gap and abs(dy) < gap:
                    cur.position_m = (cur.position_m[0], prev.position_m[1] + gap)
    return SceneSpec("multi_object", objects, params={"num_planes": int(n_planes)})


SCENE_SAMPLERS: dict[str, Callable[[np.random.Generator, PinholeCamera], SceneSpec]] = {
    "free_fall": free_fall,
    "projectile": projectile,
    "collision": collision,
    "ramp": ramp,
    "multi_object": multi_object,
}
SCENE_FAMILIES: tuple[str, ...] = tuple(SCENE_SAMPLERS)
