"""The default localiser: moving connected components as physical subjects (no weights, CPU).

Frame differencing against a temporal-median background gives moving blobs; blobs
are linked across frames into subjects; the subject trajectories decide the
phenomenon (falling, bouncing, rolling, sliding, projectile, colliding). Every
claim cites frames and boxes, so the answer has the same schema as a VLM's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..classical import box_gap, colour_name, components, foreground_masks, median_background
from ..registry import LOCALIZERS
from ..schema import validate_localization
from .base import Localizer


@LOCALIZERS.register("motion")
class MotionEvidenceLocalizer(Localizer):
    """Args:
    diff_threshold: colour difference (0..255) from the background that counts as foreground.
    min_area_fraction: smallest blob, as a fraction of the frame area (at least 4 px).
    min_track_fraction: a subject must be seen in at least this fraction of frames.
    min_displacement: a subject's centroid must move at least this many pixels overall.
    max_subjects: keep the longest-lived subjects only.
    max_overlap: a shorter track whose box lies inside a longer one's (this fraction of its area)
        in most shared frames is a fragment of it (a split blob, or a ghost left in the background
        by an object at rest), and is dropped.
    drop_ghosts: remove foreground pixels that look like their surroundings now but not in the
        background (uncovered spots of objects at rest). Off by default: on the simulator it helps
        falling objects and hurts sliding boxes (docs/curation.md).
    """

    name = "motion"

    def __init__(
        self,
        diff_threshold: float = 25.0,
        min_area_fraction: float = 0.0005,
        min_track_fraction: float = 0.25,
        min_displacement: float = 2.0,
        max_subjects: int = 8,
        max_overlap: float = 0.6,
        drop_ghosts: bool = False,
    ):
        self.diff_threshold = diff_threshold
        self.min_area_fraction = min_area_fraction
        self.min_track_fraction = min_track_fraction
        self.min_displacement = min_displacement
        self.max_subjects = max_subjects
        self.max_overlap = max_overlap
        self.drop_ghosts = drop_ghosts

    def localize(self, frames: np.ndarray) -> dict[str, Any]:
        f, h, w, _ = frames.shape
        background = median_background(frames)
        masks = foreground_masks(frames, background, self.diff_threshold, drop_ghosts=self.drop_ghosts)
        min_area = max(4, int(self.min_area_fraction * h * w))
        per_frame = [components(m, min_area) for m in masks]
        for t, comps in enumerate(per_frame):
            for c in comps:
                c["colour"] = frames[t][c["labels"] == c["label"]].mean(0)
        tracks = _link_components(per_frame, gate=max(8.0, 0.1 * max(h, w)))
        subjects = []
        for tr in tracks:
            cs = np.array([c["centroid"] for c in tr.values()])
            if len(tr) < max(2, self.min_track_fraction * f):
                continue
            if np.linalg.norm(cs.max(0) - cs.min(0)) < self.min_displacement:
                continue
            subjects.append(tr)
        subjects.sort(key=lambda tr: -len(tr))
        subjects = _drop_fragments(subjects, self.max_overlap)[: self.max_subjects]

        out_subjects = []
        labels = []
        for sid, tr in enumerate(subjects, 1):
            frames_idx = sorted(tr)
            colours = [tr[t]["colour"] for t in frames_idx]
            # Frames where the blob merged with another subject (area jump) would bend the path: skip them.
            med_area = float(np.median([tr[t]["area"] for t in frames_idx]))
            clean = [t for t in frames_idx if tr[t]["area"] <= 1.5 * med_area] or frames_idx
            label, key_frame, why = classify_trajectory({t: tr[t]["centroid"] for t in clean}, {t: tr[t]["box"] for t in clean})
            labels.append((label, key_frame, why, sid))
            out_subjects.append(
                {
                    "id": sid,
                    "name": f"{colour_name(np.mean(colours, 0))} object",
                    "role": label,
                    "evidence": [
                        {"frame": int(t), "box": [float(v) for v in tr[t]["box"]], "observation": "moving region (differs from the static background)"}
                        for t in frames_idx
                    ],
                }
            )
        phenomenon = _phenomenon(labels, subjects)
        answer = {"phenomenon": phenomenon, "subjects": out_subjects}
        return validate_localization(answer, f, h, w)


def _link_components(per_frame: list[list[dict]], gate: float, colour_weight: float = 0.5, max_gap: int = 5) -> list[dict[int, dict]]:
    """Greedy linking by centroid distance (constant-velocity prediction) plus colour distance.

    Returns tracks as {frame: component}.
    """
    active: list[dict] = []  # {"track": {t: comp}, "pos": xy, "vel": xy, "last": t}
    finished: list[dict[int, dict]] = []
    for t, comps in enumerate(per_frame):
        pairs = []
        for ai, a in enumerate(active):
            dt = t - a["last"]
            pred = a["pos"] + a["vel"] * dt
            # Bounces and collisions break constant velocity: also accept a match near the last position.
            reach = max(gate, 1.5 * float(np.linalg.norm(a["vel"])), a["size"]) * dt
            for ci, c in enumerate(comps):
                xy = np.asarray(c["centroid"])
                d = min(float(np.linalg.norm(pred - xy)), float(np.linalg.norm(a["pos"] - xy)))
                if d <= reach:
                    # Appearance keeps identities apart when blobs pass close or merge for a few frames.
                    colour = float(np.linalg.norm(a["colour"] - c["colour"])) if "colour" in c else 0.0
                    pairs.append((d + colour_weight * colour, ai, ci))
        used_a, used_c = set(), set()
        for d, ai, ci in sorted(pairs):
            if ai in used_a or ci in used_c:
                continue
            used_a.add(ai)
            used_c.add(ci)
            a, c = active[ai], comps[ci]
            pos = np.asarray(c["centroid"])
            a["vel"] = (pos - a["pos"]) / (t - a["last"])
            a["pos"], a["last"], a["size"] = pos, t, _diag(c["box"])
            if "colour" in c:
                a["colour"] = 0.7 * a["colour"] + 0.3 * c["colour"]
            a["track"][t] = c
        for ci, c in enumerate(comps):
            if ci not in used_c:
                active.append({"track": {t: c}, "pos": np.asarray(c["centroid"]), "vel": np.zeros(2), "last": t, "size": _diag(c["box"]), "colour": c.get("colour", np.zeros(3))})
        # Tracks unseen for max_gap frames are closed (a subject may hide behind another for a while).
        finished.extend(a["track"] for a in active if t - a["last"] >= max_gap)
        active = [a for a in active if t - a["last"] < max_gap]
    finished.extend(a["track"] for a in active)
    return finished


def _drop_fragments(tracks: list[dict[int, dict]], max_overlap: float) -> list[dict[int, dict]]:
    """Drop tracks (sorted longest first) that mostly sit inside an already kept track."""
    kept: list[dict[int, dict]] = []
    for tr in tracks:
        fragment = False
        for big in kept:
            shared = sorted(set(tr) & set(big))
            if not shared:
                continue
            inside = [_inside_fraction(tr[t]["box"], big[t]["box"]) > max_overlap for t in shared]
            if np.mean(inside) >= 0.5:
                fragment = True
                break
        if not fragment:
            kept.append(tr)
    return kept


def _inside_fraction(a, b) -> float:
    """Fraction of box a's area inside box b."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    area = max(1e-6, (a[2] - a[0]) * (a[3] - a[1]))
    return float(ix * iy / area)


def _diag(box) -> float:
    return float(np.hypot(box[2] - box[0], box[3] - box[1]))


def classify_trajectory(centroids: dict[int, tuple[float, float]], boxes: dict[int, tuple]) -> tuple[str, int, str]:
    """Phenomenon label of one subject from its centroid path (image y points down).

    Returns (label, key frame, observation).
    """
    ts = np.array(sorted(centroids))
    xy = np.array([centroids[t] for t in ts])
    if len(ts) < 3:
        return "other", int(ts[0]), "too few observations"
    vel = np.diff(xy, axis=0) / np.diff(ts)[:, None]
    vx, vy = vel[:, 0], vel[:, 1]
    speed = float(np.abs(vel).mean()) + 1e-6
    # Bounce: moving down, then clearly up (the lowest point is the contact).
    down = vy > 0.25 * speed
    up = vy < -0.25 * speed
    if down.any() and up.any() and np.argmax(down) < len(vy) - 1 - np.argmax(up[::-1]):
        first_down = int(np.argmax(down))
        if up[first_down:].any():
            k = int(ts[int(np.argmax(xy[:, 1]))])
            return "bouncing", k, "moves down, reverses at its lowest point and moves up"
    if np.abs(vx).mean() > 2.0 * np.abs(vy).mean():
        w = np.mean([boxes[t][2] - boxes[t][0] for t in ts])
        h = np.mean([boxes[t][3] - boxes[t][1] for t in ts])
        label = "rolling" if 0.75 < w / max(h, 1e-6) < 1.33 else "sliding"
        return label, int(ts[len(ts) // 2]), "moves horizontally with little vertical motion"
    # Fit y(t) = a t^2 + b t + c: a > 0 means downward acceleration (gravity).
    a = np.polyfit(ts.astype(float), xy[:, 1], 2)[0]
    if a > 0.02:
        if np.abs(vx).mean() > 0.3 * np.abs(vy).mean():
            return "projectile", int(ts[len(ts) // 2]), "follows a parabola: steady horizontal motion, accelerating downward"
        return "falling", int(ts[-1]), "moves downward with increasing speed"
    if np.abs(vy).mean() > np.abs(vx).mean() and vy.mean() > 0:
        return "falling", int(ts[-1]), "moves downward"
    return "other", int(ts[len(ts) // 2]), "moves without a recognised pattern"


def _filled_boxes(track: dict[int, dict]) -> dict[int, np.ndarray]:
    """Boxes per frame, linearly interpolated over gaps (a subject hidden in another's blob is still there)."""
    ts = sorted(track)
    out = {t: np.asarray(track[t]["box"], float) for t in ts}
    for a, b in zip(ts[:-1], ts[1:]):
        for t in range(a + 1, b):
            u = (t - a) / (b - a)
            out[t] = (1 - u) * out[a] + u * out[b]
    return out


def _phenomenon(labels: list[tuple[str, int, str, int]], subjects: list[dict[int, dict]]) -> dict[str, Any]:
    # Two subjects touching at some frame is a collision, whatever their own paths.
    boxes = [_filled_boxes(s) for s in subjects]
    for i in range(len(subjects)):
        for j in range(i + 1, len(subjects)):
            common = sorted(set(boxes[i]) & set(boxes[j]))
            touching = [t for t in common if box_gap(boxes[i][t], boxes[j][t]) <= 1.0]
            if touching:
                t = touching[0]
                return {
                    "label": "colliding",
                    "description": f"subjects {i + 1} and {j + 1} come into contact",
                    "evidence": [{"frame": int(t), "subject_ids": [i + 1, j + 1], "observation": "the two boxes touch"}],
                }
    if not labels:
        return {"label": "other", "description": "no moving subject found", "evidence": [{"frame": 0, "observation": "no region moves"}]}
    label, frame, why, sid = labels[0]
    return {"label": label, "description": why, "evidence": [{"frame": frame, "subject_ids": [sid], "observation": why}]}
