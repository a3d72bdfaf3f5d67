"""`simulate_clip`: one deterministic clip (frames, exact cues, caption, meta) from (family, seed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import MMPhysInputError
from .captions import caption_scene, floor_impacts
from .families import SCENE_FAMILIES, SCENE_SAMPLERS
from .render import render_clip
from .world import PALETTE, PinholeCamera, SceneSpec, Trajectory, simulate_physics

SIMULATOR_VERSION = 1
MIN_SIZE = 32
DEFAULT_FPS = 8.0
DEFAULT_PHYSICS_HZ = 240.0


@dataclass
class SimulatedClip:
    """One simulated clip.

    Attributes:
        rgb: uint8 ``[F, H, W, 3]``.
        cues: canonical cue arrays (`mmphys_diffusers.data.manifest.CUE_ARRAYS`):
            ``instances`` uint8 ``[F,H,W]``, ``depth`` float32 ``[F,H,W]`` (metres),
            ``tracks`` float32 ``[F,H,W,2]``, ``visibility`` bool ``[F,H,W]``,
            ``flow`` float32 ``[F,H,W,2]``.
        caption: text description generated from the simulation.
        meta: JSON-serialisable scene description (camera, physics, per-frame states, events).
    """

    rgb: np.ndarray
    cues: dict[str, np.ndarray]
    caption: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def family(self) -> str:
        return self.meta["family"]


def check_clip_args(family: str, num_frames: int, height: int, width: int, fps: float) -> None:
    """Raise `MMPhysInputError` naming the bad argument and the accepted values."""
    if family not in SCENE_SAMPLERS:
        raise MMPhysInputError(f"unknown scene family {family!r}; expected one of {list(SCENE_FAMILIES)}")
    if not isinstance(num_frames, (int, np.integer)) or num_frames < 2:
        raise MMPhysInputError(f"num_frames must be an integer >= 2 (motion needs two frames), got {num_frames!r}")
    for name, value in (("height", height), ("width", width)):
        if not isinstance(value, (int, np.integer)) or value < MIN_SIZE:
            raise MMPhysInputError(f"{name} must be an integer >= {MIN_SIZE} px (objects must stay >= 5 px), got {value!r}")
    if max(height, width) > 4096:
        raise MMPhysInputError(f"height/width must be <= 4096 px, got {height}x{width}")
    if not (np.isfinite(fps) and fps > 0):
        raise MMPhysInputError(f"fps must be a positive number, got {fps!r}")


def depth_to_xyz(depth: np.ndarray, camera_meta: dict[str, Any]) -> np.ndarray:
    """Camera-space point map ``[F,H,W,3]`` float32 from depth ``[F,H,W]`` and ``meta["camera"]``."""
    from ..perception.xyz import depth_to_xyz as pinhole_depth_to_xyz

    return pinhole_depth_to_xyz(depth, camera_meta["fx"], camera_meta["fy"], camera_meta["cx"], camera_meta["cy"])


def _r(x, nd: int = 6):
    """Round nested floats for compact, stable JSON."""
    return np.round(np.asarray(x, np.float64), nd).tolist()


def _build_meta(family, seed, fps, camera, scene: SceneSpec, traj: Trajectory, occlusions) -> dict[str, Any]:
    objects = []
    for i, o in enumerate(scene.objects):
        px_per_m = camera.fx / o.depth_m
        u, v = camera.world_to_pixel(traj.position_m[:, i, 0], traj.position_m[:, i, 1], o.depth_m)
        impacts, bounces = floor_impacts(scene, traj, i + 1)
        entry = {
            "id": i + 1,
            "type": o.kind,
            "colour": o.colour,
            "rgb": list(PALETTE[o.colour]),
            "depth_m": o.depth_m,
            "px_per_m": px_per_m,
            "mass_kg": o.mass_kg,
            "density_kg_m2": o.density_kg_m2,
            "elasticity": o.elasticity,
            "friction": o.friction,
            "floor_impacts": impacts,
            "bounces": bounces,
            # Per-frame states (frame k at time k / fps); pixel velocities are px per second.
            "position_m": _r(traj.position_m[:, i]),
            "velocity_m_s": _r(traj.velocity_m_s[:, i]),
            "angle_rad": _r(traj.angle_rad[:, i]),
            "angular_velocity_rad_s": _r(traj.angular_velocity_rad_s[:, i]),
            "position_px": _r(np.stack([u, v], -1), 4),
            "velocity_px_s": _r(np.stack([traj.velocity_m_s[:, i, 0], -traj.velocity_m_s[:, i, 1]], -1) * px_per_m, 4),
        }
        if o.kind == "ball":
            entry["radius_m"] = o.size_m[0]
            entry["radius_px"] = o.size_m[0] * px_per_m
        else:
            entry["size_m"] = list(o.size_m)
            entry["size_px"] = [s * px_per_m for s in o.size_m]
        objects.append(entry)
    return {
        "generator": "mmphys_diffusers.simulation",
        "simulator_version": SIMULATOR_VERSION,
        "family": family,
        "seed": int(seed),
        "fps": float(fps),
        "num_frames": int(traj.position_m.shape[0]),
        "substeps_per_frame": traj.substeps_per_frame,
        "units": "metres, seconds, kilograms per unit depth (2-D bodies); world y up; floor at y = 0",
        "camera": camera.to_meta(),
        "world": {
            "gravity_m_s2": scene.gravity_m_s2,
            "floor_elasticity": scene.floor_elasticity,
            "floor_friction": scene.floor_friction,
            "wall_depth_m": scene.wall_depth_m,
            "floor_row_at_wall": camera.floor_row(scene.wall_depth_m),
        },
        "params": {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in scene.params.items()},
        "ramps": [
            {"depth_m": r.depth_m, "vertices_m": [list(v) for v in r.vertices_m], "slope_deg": r.angle_deg, "friction": r.friction}
            for r in scene.ramps
        ],
        "objects": objects,
        "events": [{k: (round(v, 6) if isinstance(v, float) else v) for k, v in e.items()} for e in traj.events],
        "occlusions": [list(p) for p in occlusions],
    }


def simulate_clip(
    family: str,
    seed: int,
    num_frames: int = 17,
    size: int | None = 64,
    height: int | None = None,
    width: int | None = None,
    fps: float = DEFAULT_FPS,
    physics_hz: float = DEFAULT_PHYSICS_HZ,
) -> SimulatedClip:
    """Simulate and render one clip; identical for identical arguments.

    Args:
        family: one of `SCENE_FAMILIES`.
        seed: scene parameters are drawn from ``numpy.random.default_rng(seed)``.
        num_frames: frames ``F`` (>= 2), sampled at ``t = k / fps``.
        size: square frame size; ``height``/``width`` override it.
        fps: frame rate; physics is sub-stepped at >= ``physics_hz``.
    """
    height = height if height is not None else size
    width = width if width is not None else size
    check_clip_args(family, num_frames, height, width, fps)
    rng = np.random.default_rng(seed)
    camera = PinholeCamera.for_size(int(height), int(width))
    scene = SCENE_SAMPLERS[family](rng, camera)
    traj = simulate_physics(scene, int(num_frames), float(fps), physics_hz=physics_hz)
    rendered = render_clip(camera, scene, traj)
    cues = {
        "instances": rendered.instances,
        "depth": rendered.depth,
        "tracks": rendered.tracks,
        "visibility": rendered.visibility,
        "flow": rendered.flow,
    }
    caption = caption_scene(scene, traj, rendered.instances, rendered.occlusions)
    meta = _build_meta(family, seed, fps, camera, scene, traj, rendered.occlusions)
    return SimulatedClip(rendered.rgb, cues, caption, meta)
