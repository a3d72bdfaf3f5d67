"""One call that scores a video with every metric: `evaluate_video`."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import MMPhysInputError
from ..utils.video_io import to_uint8_frames
from .motion import motion_iou_metrics
from .parsing import ObjectTracks, parse_objects
from .physics import (
    bounce_restitution,
    collision_momentum,
    gravity_metrics,
    object_permanence,
    penetration_metrics,
    ramp_metrics,
)
from .scene import SceneInfo
from .text import text_adherence

# Scalar metrics `evaluate_video` returns, with the direction that is better.
METRIC_DIRECTIONS: dict[str, str] = {
    "permanence": "higher",
    "vanish_events": "lower",
    "appear_events": "lower",
    "g_rel_error": "lower",
    "parabola_rms_px": "lower",
    "ramp_accel_rel_error": "lower",
    "penetration_px": "lower",
    "restitution_max": "lower",
    "restitution_violation": "lower",
    "restitution_rel_error": "lower",
    "momentum_rel_change": "lower",
    "spatial_iou": "higher",
    "spatiotemporal_iou": "higher",
    "weighted_spatial_iou": "higher",
    "mse": "lower",
    "object_size_error": "lower",
    "text_adherence": "higher",
}


def evaluate_video(
    frames,
    scene: SceneInfo,
    reference=None,
    prompt: str | None = None,
    tracks: ObjectTracks | None = None,
    reference_tracks: ObjectTracks | None = None,
) -> dict[str, Any]:
    """Score one video against what its scene should do.

    Args:
        frames: ``[F, H, W, 3]`` uint8 or float in [0, 1].
        scene: the scene facts (colours, scale, gravity, masses...).
        reference: optional ground-truth video of the same initial state, for the motion IoUs.
        prompt: text the video was generated from (default: ``scene.caption``) for text adherence.
        tracks: precomputed `parse_objects` output (parsed here otherwise).
        reference_tracks: the same for `reference` (several models' videos share one reference clip).
    Returns:
        flat dict of scalars (None where a metric does not apply), see `METRIC_DIRECTIONS`,
        plus ``details`` with each metric's full output.
    """
    frames = to_uint8_frames(frames)
    if frames.shape[1:3] != (scene.height, scene.width) and scene.height and scene.width:
        raise MMPhysInputError(
            f"video is {frames.shape[2]}x{frames.shape[1]} but the scene geometry is for {scene.width}x{scene.height}: "
            "generate at the scene's size"
        )
    tracks = tracks if tracks is not None else parse_objects(frames, scene)
    perm = object_permanence(tracks, scene)
    grav = gravity_metrics(tracks, scene)
    pen = penetration_metrics(tracks, scene)
    bounce = bounce_restitution(tracks, scene)
    mom = collision_momentum(tracks, scene)
    ramp = ramp_metrics(tracks, scene)
    text = text_adherence(frames, prompt if prompt is not None else scene.caption)
    out: dict[str, Any] = {
        "permanence": perm["permanence"],
        "vanish_events": perm["vanish_events"],
        "appear_events": perm["appear_events"],
        "g_fit_m_s2": grav["g_fit_m_s2"],
        "g_rel_error": grav["g_rel_error"],
        "parabola_rms_px": grav["parabola_rms_px"],
        "ramp_accel_rel_error": ramp["ramp_accel_rel_error"],
        "penetration_px": pen["penetration_px"],
        "restitution_max": bounce["restitution_max"],
        "restitution_violation": float(bounce["violation"]) if bounce["num_bounces"] else None,
        "restitution_rel_error": bounce["rel_error"],
        "momentum_rel_change": mom["momentum_rel_change_max"],
        "text_adherence": text["adherence"],
    }
    details: dict[str, Any] = {"permanence": perm, "gravity": grav, "ramp": ramp, "penetration": pen, "bounce": bounce, "momentum": mom, "text": text}
    if reference is not None:
        motion = motion_iou_metrics(frames, reference)
        out.update(motion)
        details["motion"] = motion
        if reference_tracks is None:
            reference_tracks = parse_objects(to_uint8_frames(reference), scene)
        size = object_size_metrics(tracks, reference_tracks)
        out.update(object_size_error=size["object_size_error"], object_size_ratio=size["object_size_ratio"])
        details["size"] = size
    out["details"] = details
    return out


def visible_objects(tracks: ObjectTracks) -> np.ndarray:
    """Indices of objects seen in at least one frame (a reference clip's objects that never
    enter the view should not be expected in a generated one)."""
    return np.flatnonzero(tracks.present.any(0))


def object_size_metrics(tracks: ObjectTracks, reference: ObjectTracks) -> dict[str, Any]:
    """How large each object is drawn against the reference clip of the same scene.

    Per object seen in both, the ratio of its typical area (`ObjectTracks.reference_area`) to the
    reference's. ``object_size_error`` is the mean of ``|ln ratio|`` (0: every object at its true size;
    ln 2 = 0.69: twice or half the area), ``object_size_ratio`` the geometric mean of the ratios (above 1:
    drawn too large). Both None when no object is seen in both. Permanence and counts reward objects drawn
    too large; this metric shows the price.
    """
    if tracks.num_objects != reference.num_objects:
        raise MMPhysInputError(f"size comparison needs the same objects: {tracks.num_objects} parsed vs {reference.num_objects} in the reference")
    mine, theirs = tracks.reference_area(), reference.reference_area()
    both = (mine > 0) & (theirs > 0)
    log_ratio = np.log(mine[both] / theirs[both])
    return {
        "object_size_error": float(np.abs(log_ratio).mean()) if both.any() else None,
        "object_size_ratio": float(np.exp(log_ratio.mean())) if both.any() else None,
        "per_object_ratio": [float(np.exp(v)) for v in log_ratio],
        "objects_compared": int(both.sum()),
    }
