"""Scene description, pinhole camera and the pymunk physics run of the synthetic world.

World frame: metres and seconds, ``x`` to the right, ``y`` up, the floor is the
plane ``y = 0``. Every object moves in a vertical *depth plane* ``z = depth_m``
(the camera looks along ``+z``), so physics is 2-D per plane and objects on
different planes never touch: they only occlude each other in the image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Named colours: captions use the name, frames use the RGB value. Chosen to stand
# out from the blue-grey wall and the brown floor.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (50, 170, 60),
    "blue": (40, 80, 225),
    "yellow": (245, 205, 30),
    "orange": (245, 125, 20),
    "purple": (135, 55, 185),
    "pink": (240, 100, 185),
    "cyan": (20, 195, 205),
}

GRAVITY_M_S2 = 9.81
FLOOR_BIT = 1 << 30
# pymunk collision types: objects use their 1-based instance id.
FLOOR_TYPE, RAMP_TYPE = 0, 10_000


@dataclass(frozen=True)
class PinholeCamera:
    """Pinhole camera at world ``(0, height_m, 0)`` looking along ``+z``, image ``y`` down.

    Pixel ``(row, col)`` samples the ray through the continuous image point
    ``(x=col, y=row)``; camera-space point of a pixel with depth ``z``:
    ``((col - cx) * z / fx, (row - cy) * z / fy, z)`` (OpenCV axes).
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    height_m: float = 2.0

    @classmethod
    def for_size(cls, height: int, width: int, height_m: float = 2.0) -> "PinholeCamera":
        # Focal length = image width: a ~53 degree horizontal field of view at any size.
        f = float(width)
        return cls(width, height, f, f, (width - 1) / 2.0, (height - 1) / 2.0, height_m)

    @property
    def K(self) -> list[list[float]]:
        return [[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]]

    def world_to_pixel(self, x_m, y_m, depth_m):
        """World ``(x, y)`` on the plane ``z = depth_m`` -> pixel ``(x, y)`` (arrays broadcast)."""
        return self.cx + self.fx * np.asarray(x_m) / depth_m, self.cy - self.fy * (np.asarray(y_m) - self.height_m) / depth_m

    def pixel_to_world(self, x_px, y_px, depth_m):
        """Inverse of `world_to_pixel` on the plane ``z = depth_m``."""
        return (np.asarray(x_px) - self.cx) * depth_m / self.fx, self.height_m - (np.asarray(y_px) - self.cy) * depth_m / self.fy

    def floor_row(self, depth_m: float) -> float:
        """Image row where the floor line of the plane ``z = depth_m`` projects."""
        return self.cy + self.fy * self.height_m / depth_m

    def to_meta(self) -> dict[str, Any]:
        return {
            "model": "pinhole",
            "fx": self.fx,
            "fy": self.fy,
            "cx": self.cx,
            "cy": self.cy,
            "K": self.K,
            "width": self.width,
            "height": self.height,
            "position_m": [0.0, self.height_m, 0.0],
            "convention": "camera looks along +z from (0, height_m, 0) in the world (y up); image y down; "
            "pixel (row, col) samples image point (x=col, y=row); xyz_cam = ((col-cx)*z/fx, (row-cy)*z/fy, z)",
        }


@dataclass
class ObjectSpec:
    """One dynamic body. ``size_m`` is ``(radius,)`` for a ball, ``(width, height)`` for a box."""

    kind: str  # "ball" | "box"
    colour: str
    depth_m: float
    size_m: tuple[float, ...]
    position_m: tuple[float, float]
    velocity_m_s: tuple[float, float] = (0.0, 0.0)
    angle_rad: float = 0.0
    angular_velocity_rad_s: float = 0.0
    density_kg_m2: float = 1.0
    elasticity: float = 0.5
    friction: float = 0.5

    @property
    def mass_kg(self) -> float:
        return self.density_kg_m2 * self.area_m2

    @property
    def area_m2(self) -> float:
        if self.kind == "ball":
            return math.pi * self.size_m[0] ** 2
        return self.size_m[0] * self.size_m[1]

    @property
    def bounding_radius_m(self) -> float:
        return self.size_m[0] if self.kind == "ball" else 0.5 * math.hypot(*self.size_m)


@dataclass
class RampSpec:
    """A static wedge on one depth plane: a right triangle standing on the floor."""

    depth_m: float
    vertices_m: tuple[tuple[float, float], ...]  # counter-clockwise, world metres
    friction: float
    angle_deg: float
    colour_rgb: tuple[int, int, int] = (120, 125, 140)  # slate, distinct from the floor


@dataclass
class SceneSpec:
    family: str
    objects: list[ObjectSpec]
    ramps: list[RampSpec] = field(default_factory=list)
    gravity_m_s2: float = GRAVITY_M_S2
    floor_elasticity: float = 1.0
    floor_friction: float = 1.0
    wall_depth_m: float = 16.0
    params: dict[str, Any] = field(default_factory=dict)  # family-level parameters for meta/captions


@dataclass
class Trajectory:
    """Per-frame body states sampled at the video frame times ``t = k / fps``.

    Shapes: ``position_m`` / ``velocity_m_s`` ``[F, N, 2]``, ``angle_rad`` /
    ``angular_velocity_rad_s`` ``[F, N]`` (counter-clockwise in the y-up world).
    """

    position_m: np.ndarray
    velocity_m_s: np.ndarray
    angle_rad: np.ndarray
    angular_velocity_rad_s: np.ndarray
    events: list[dict[str, Any]]
    substeps_per_frame: int


def simulate_physics(scene: SceneSpec, num_frames: int, fps: float, physics_hz: float = 240.0) -> Trajectory:
    """Step the scene with pymunk and sample states at every frame time.

    Contact events are recorded from pymunk's ``begin`` callback: a floor
    ``bounce`` or an object-object ``collision`` with its normal impact speed, and
    the rebound speed measured one substep later.
    """
    import pymunk

    substeps = max(1, int(math.ceil(physics_hz / fps)))
    dt = 1.0 / (fps * substeps)
    space = pymunk.Space()
    space.gravity = (0.0, -scene.gravity_m_s2)
    # pymunk's defaults assume pixel units; in metres they would let bodies sink 10 cm.
    space.collision_slop = 0.002
    space.iterations = 20

    planes = sorted({o.depth_m for o in scene.objects} | {r.depth_m for r in scene.ramps})
    plane_bit = {z: 1 << k for k, z in enumerate(planes)}

    floor = pymunk.Poly(space.static_body, [(-1e3, -1.0), (1e3, -1.0), (1e3, 0.0), (-1e3, 0.0)])
    floor.elasticity, floor.friction = scene.floor_elasticity, scene.floor_friction
    floor.filter = pymunk.ShapeFilter(categories=FLOOR_BIT)
    floor.collision_type = FLOOR_TYPE
    space.add(floor)
    for ramp in scene.ramps:
        wedge = pymunk.Poly(space.static_body, list(ramp.vertices_m))
        wedge.elasticity, wedge.friction = 0.2, ramp.friction
        wedge.filter = pymunk.ShapeFilter(categories=plane_bit[ramp.depth_m])
        wedge.collision_type = RAMP_TYPE
        space.add(wedge)

    bodies = []
    for i, spec in enumerate(scene.objects):
        if spec.kind == "ball":
            moment = pymunk.moment_for_circle(spec.mass_kg, 0.0, spec.size_m[0])
        else:
            moment = pymunk.moment_for_box(spec.mass_kg, spec.size_m)
        body = pymunk.Body(spec.mass_kg, moment)
        body.position = spec.position_m
        body.velocity = spec.velocity_m_s
        body.angle = spec.angle_rad
        body.angular_velocity = spec.angular_velocity_rad_s
        shape = pymunk.Circle(body, spec.size_m[0]) if spec.kind == "ball" else pymunk.Poly.create_box(body, spec.size_m)
        shape.elasticity, shape.friction = spec.elasticity, spec.friction
        shape.filter = pymunk.ShapeFilter(categories=plane_bit[spec.depth_m], mask=plane_bit[spec.depth_m] | FLOOR_BIT)
        shape.collision_type = i + 1  # 1-based instance id
        space.add(body, shape)
        bodies.append(body)

    clock = {"t": 0.0}
    events: list[dict[str, Any]] = []
    pending: list[tuple[dict[str, Any], tuple[int, ...], tuple[float, float]]] = []

    def on_begin(arbiter, _space, _data):
        types = [s.collision_type for s in arbiter.shapes]
        n = arbiter.normal
        surface = next((t for t in types if t in (FLOOR_TYPE, RAMP_TYPE)), None)
        if surface is not None:  # an object meets the floor or a ramp
            oid = next(t for t in types if t != surface)
            ids = (0, oid)
            body = bodies[oid - 1]
            speed_in = abs(body.velocity.x * n.x + body.velocity.y * n.y)
            event = {
                "type": "bounce",
                "surface": "floor" if surface == FLOOR_TYPE else "ramp",
                "object": oid,
                "time_s": clock["t"] + dt,
                "speed_in_m_s": speed_in,
            }
        else:
            ids = tuple(sorted(types))
            a, b = bodies[ids[0] - 1], bodies[ids[1] - 1]
            rel = (a.velocity.x - b.velocity.x) * n.x + (a.velocity.y - b.velocity.y) * n.y
            event = {"type": "collision", "objects": list(ids), "time_s": clock["t"] + dt, "speed_in_m_s": abs(rel)}
        pending.append((event, ids, (n.x, n.y)))

    space.on_collision(None, None, begin=on_begin)

    n_obj = len(bodies)
    pos = np.zeros((num_frames, n_obj, 2), np.float64)
    vel = np.zeros_like(pos)
    ang = np.zeros((num_frames, n_obj), np.float64)
    angvel = np.zeros_like(ang)
    for frame in range(num_frames):
        if frame > 0:
            for _ in range(substeps):
                space.step(dt)
                clock["t"] += dt
                for event, ids, (nx, ny) in pending:  # rebound speed after the solver ran
                    if ids[0] == 0:
                        v = bodies[ids[1] - 1].velocity
                        event["speed_out_m_s"] = abs(v.x * nx + v.y * ny)
                    else:
                        a, b = bodies[ids[0] - 1].velocity, bodies[ids[1] - 1].velocity
                        event["speed_out_m_s"] = abs((a.x - b.x) * nx + (a.y - b.y) * ny)
                    events.append(event)
                pending.clear()
        for i, body in enumerate(bodies):
            pos[frame, i] = body.position
            vel[frame, i] = body.velocity
            ang[frame, i] = body.angle
            angvel[frame, i] = body.angular_velocity
    return Trajectory(pos, vel, ang, angvel, events, substeps)
