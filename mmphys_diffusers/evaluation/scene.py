"""What the evaluator knows about a scene: object colours, masses, depth planes and the camera scale.

A `SceneInfo` is everything the physics metrics need to turn pixels into physics.
It is built from a simulator clip's ``meta`` (`SceneInfo.from_meta`) or by hand for
any other video (only the object colours are required; metrics that need more,
e.g. masses for momentum, report ``None`` when it is missing).

Units: pixels are image pixels of the evaluated video (x right, y down), time is
seconds unless a name says ``frame``; ``px_per_m`` is the image scale on an
object's depth plane (``f / z`` for a pinhole camera).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import MMPhysInputError

def palette() -> dict[str, tuple[int, int, int]]:
    """The named colours of the synthetic world (videos whose meta only names colours are parsed with them)."""
    from ..simulation.world import PALETTE

    return dict(PALETTE)


@dataclass
class ObjectInfo:
    """One object the evaluator should find in the video.

    Attributes:
        colour: palette name (e.g. ``"red"``); ``rgb`` is its uint8 value.
        kind: ``"ball"`` or ``"box"``.
        mass_kg: mass for momentum checks.
        plane: depth-plane key; only objects on the same plane can touch.
        px_per_m: image scale on this object's plane (px per metre).
        floor_row_px: image row of the floor line on this object's plane.
        radius_px: expected radius (balls) or bounding radius (boxes) in px.
        restitution: the scene's coefficient of restitution against the floor.
        friction: the object's own friction coefficient (pymunk multiplies it by the surface's).
    """

    colour: str
    rgb: tuple[int, int, int]
    kind: str = "ball"
    mass_kg: float | None = None
    plane: float | None = None
    px_per_m: float | None = None
    floor_row_px: float | None = None
    radius_px: float | None = None
    restitution: float | None = None
    friction: float | None = None

    @property
    def name(self) -> str:
        return f"{self.colour} {self.kind}"


@dataclass
class RampInfo:
    """A static ramp: polygon ``[K, 2]`` (x, y px), depth plane, slope (degrees) and surface friction."""

    polygon_px: np.ndarray
    plane: float | None = None
    slope_deg: float | None = None
    friction: float | None = None

    def __iter__(self):  # unpacks as (polygon_px, plane)
        return iter((self.polygon_px, self.plane))


@dataclass
class SceneInfo:
    """Scene facts for the metrics (objects in instance-id order; ``ramps_px``: static `RampInfo` polygons)."""

    objects: list[ObjectInfo]
    fps: float
    height: int
    width: int
    gravity_m_s2: float | None = None
    family: str | None = None
    caption: str = ""
    ramps_px: list[RampInfo] = field(default_factory=list)
    # Exact per-frame pixel centres [F, N, 2] when the scene comes from the simulator.
    gt_centers_px: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not self.objects:
            raise MMPhysInputError("SceneInfo needs at least one object (got an empty object list)")
        if not (self.fps > 0):
            raise MMPhysInputError(f"SceneInfo.fps must be > 0, got {self.fps}")

    @property
    def colours_rgb(self) -> np.ndarray:
        """uint8 ``[N, 3]`` object colours in object order."""
        return np.array([o.rgb for o in self.objects], np.uint8)

    def gravity_px_s2(self, index: int) -> float | None:
        """Expected downward image acceleration of object ``index`` in px/s² (None if unknown)."""
        o = self.objects[index]
        if self.gravity_m_s2 is None or o.px_per_m is None:
            return None
        return self.gravity_m_s2 * o.px_per_m

    def subset(self, indices) -> "SceneInfo":
        """The same scene restricted to the objects at `indices` (in that order)."""
        indices = [int(i) for i in indices]
        gt = self.gt_centers_px[:, indices] if self.gt_centers_px is not None else None
        return SceneInfo(
            objects=[self.objects[i] for i in indices],
            fps=self.fps,
            height=self.height,
            width=self.width,
            gravity_m_s2=self.gravity_m_s2,
            family=self.family,
            caption=self.caption,
            ramps_px=list(self.ramps_px),
            gt_centers_px=gt,
        )

    @classmethod
    def from_colours(cls, colours: Sequence[str], fps: float, height: int, width: int, **kw: Any) -> "SceneInfo":
        """Minimal scene from palette colour names (text-adherence style checks)."""
        pal = palette()
        unknown = [c for c in colours if c not in pal]
        if unknown:
            raise MMPhysInputError(f"unknown colour name(s) {unknown}; expected palette names {sorted(pal)}")
        return cls([ObjectInfo(c, pal[c]) for c in colours], fps=fps, height=height, width=width, **kw)

    @classmethod
    def from_meta(
        cls, meta: Mapping[str, Any], fps: float | None = None, height: int | None = None, width: int | None = None, caption: str = ""
    ) -> "SceneInfo":
        """Build from a simulator clip's ``meta`` (see docs/simulation.md for its fields)."""
        return _scene_from_sim_meta(meta, fps=fps, height=height, width=width, caption=caption)

    @classmethod
    def from_record(cls, record) -> "SceneInfo":
        """Build from a `ClipRecord` written by the simulator."""
        return cls.from_meta(record.meta, fps=record.fps, height=record.height, width=record.width, caption=record.caption)


def _get(meta: Mapping[str, Any], *keys: str, default: Any = None) -> Any:
    for k in keys:
        if k in meta and meta[k] is not None:
            return meta[k]
    return default


def _scene_from_sim_meta(meta: Mapping[str, Any], fps, height, width, caption) -> SceneInfo:
    if not isinstance(meta, Mapping):
        raise MMPhysInputError(f"scene meta must be a mapping, got {type(meta).__name__}")
    fps = float(fps if fps is not None else _get(meta, "fps", default=0.0))
    camera = _get(meta, "camera", default={}) or {}
    height = int(height if height is not None else _get(camera, "height", default=0))
    width = int(width if width is not None else _get(camera, "width", default=0))
    objects_meta = _get(meta, "objects", default=None)
    if not objects_meta:
        raise MMPhysInputError("scene meta has no 'objects' list: cannot tell which colours to look for")
    fx = float(_get(camera, "fx", default=0.0) or 0.0)
    fy = float(_get(camera, "fy", default=fx) or fx)
    cy = _get(camera, "cy", default=None)
    cam_h = _get(camera, "height_m", default=None)
    if cam_h is None and "position_m" in camera:
        cam_h = camera["position_m"][1]
    pal = palette()
    objects: list[ObjectInfo] = []
    for i, om in enumerate(objects_meta):
        colour = _get(om, "colour", "color", default=None)
        rgb = _get(om, "rgb", "colour_rgb", "color_rgb", default=None)
        if rgb is None:
            if colour not in pal:
                raise MMPhysInputError(f"scene meta object {i}: colour {colour!r} has no 'rgb' and is not in the palette {sorted(pal)}")
            rgb = pal[colour]
        depth = _get(om, "depth_m", default=None)
        px_per_m = _get(om, "px_per_m", default=None)
        if px_per_m is None and depth and fy:
            px_per_m = fy / float(depth)
        floor_row = _get(om, "floor_row_px", default=None)
        if floor_row is None and depth and fy and cy is not None and cam_h is not None:
            floor_row = float(cy) + fy * float(cam_h) / float(depth)
        kind = str(_get(om, "kind", "type", default="ball"))
        size = _get(om, "size_m", default=None)
        radius_m = _get(om, "radius_m", default=None)
        if radius_m is None and size is not None:
            size = list(size) if isinstance(size, (list, tuple)) else [size]
            radius_m = size[0] if kind == "ball" or len(size) == 1 else 0.5 * math.hypot(size[0], size[1])
        radius_px = _get(om, "radius_px", default=None)
        if radius_px is None and radius_m is not None and px_per_m is not None:
            radius_px = float(radius_m) * float(px_per_m)
        restitution = _get(om, "restitution", default=None)
        if restitution is None and _get(om, "elasticity", default=None) is not None:
            # pymunk multiplies the two surfaces' elasticities
            restitution = float(om["elasticity"]) * float(_get(meta.get("world", {}) or {}, "floor_elasticity", default=1.0))
        objects.append(
            ObjectInfo(
                colour=str(colour),
                rgb=tuple(int(v) for v in rgb),
                kind=kind,
                mass_kg=_float_or_none(_get(om, "mass_kg", "mass", default=None)),
                plane=_float_or_none(depth),
                px_per_m=_float_or_none(px_per_m),
                floor_row_px=_float_or_none(floor_row),
                radius_px=_float_or_none(radius_px),
                restitution=_float_or_none(restitution),
                friction=_float_or_none(_get(om, "friction", default=None)),
            )
        )
    ramps = []
    for rm in _get(meta, "ramps", default=[]) or []:
        verts_px = _get(rm, "vertices_px", default=None)
        depth = _float_or_none(_get(rm, "depth_m", default=None))
        if verts_px is None:
            verts_m = _get(rm, "vertices_m", default=None)
            if verts_m is None or not (fx and depth and cy is not None and cam_h is not None):
                continue
            v = np.asarray(verts_m, np.float64)
            cx = float(_get(camera, "cx", default=(width - 1) / 2.0))
            verts_px = np.stack([cx + fx * v[:, 0] / depth, float(cy) - fy * (v[:, 1] - float(cam_h)) / depth], -1)
        ramps.append(
            RampInfo(
                np.asarray(verts_px, np.float64),
                depth,
                _float_or_none(_get(rm, "slope_deg", "angle_deg", default=None)),
                _float_or_none(_get(rm, "friction", default=None)),
            )
        )
    gt = None
    if all("position_px" in om for om in objects_meta):
        gt = np.stack([np.asarray(om["position_px"], np.float64) for om in objects_meta], 1)
    world = _get(meta, "world", "physics", default={}) or {}
    gravity = _get(meta, "gravity_m_s2", "g", default=None)
    if gravity is None:
        gravity = _get(world, "gravity_m_s2", "g", default=None)
    return SceneInfo(
        objects=objects,
        fps=fps,
        height=height,
        width=width,
        gravity_m_s2=_float_or_none(gravity),
        family=_get(meta, "family", default=None),
        caption=caption or str(_get(meta, "caption", default="")),
        ramps_px=ramps,
        gt_centers_px=gt,
    )


def _float_or_none(v: Any) -> float | None:
    if v is None:
        return None
    return float(v)
