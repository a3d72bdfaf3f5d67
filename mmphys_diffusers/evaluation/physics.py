"""Physics metrics computed from parsed object tracks (any video: generated or simulated).

Every metric works on `ObjectTracks` (from `parse_objects`) plus a `SceneInfo`. Units
are stated in each docstring; "px" are pixels of the evaluated video, time is in
frames unless stated, and conversions to metres use the object's ``px_per_m``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .parsing import ObjectTracks
from .scene import SceneInfo

# ---------------------------------------------------------------------------------------------
# helpers


def _reference_radius(tracks: ObjectTracks, i: int) -> float:
    """Typical radius of object ``i`` in px: median enclosing-circle radius over unoccluded frames."""
    vis = tracks.fully_visible()[:, i]
    r = tracks.circle_radius[vis, i]
    if r.size == 0:
        r = tracks.circle_radius[tracks.present[:, i], i]
    return float(np.median(r)) if r.size else float("nan")


def _circle_reliable(tracks: ObjectTracks, i: int, r_ref: float) -> np.ndarray:
    """bool ``[F]``: the enclosing circle of ball ``i`` is trustworthy: at least half of it is
    visible, its radius matches the reference radius and the image border does not cut it.

    A ball half hidden behind an object on the *same* plane (interpenetration) still
    passes, so penetration stays measurable; one mostly hidden by a nearer plane does not.
    """
    h, w = tracks.masks.shape[-2:]
    ref_area = tracks.reference_area()[i]
    with np.errstate(invalid="ignore"):
        inside = (tracks.bbox[:, i, 0] > 0) & (tracks.bbox[:, i, 1] > 0) & (tracks.bbox[:, i, 2] < w) & (tracks.bbox[:, i, 3] < h)
        radius_ok = np.abs(tracks.circle_radius[:, i] - r_ref) <= max(1.0, 0.15 * r_ref)
    return tracks.present[:, i] & (tracks.area[:, i] >= 0.5 * ref_area) & radius_ok & inside


def _same_plane(scene: SceneInfo, i: int, j: int) -> bool:
    pi, pj = scene.objects[i].plane, scene.objects[j].plane
    return pi is None or pj is None or abs(pi - pj) < 1e-6


def _point_polygon_distance(p: np.ndarray, poly: np.ndarray) -> float:
    """Signed distance (px) from point ``p`` to polygon ``poly [K, 2]``: negative inside."""
    import cv2

    d = np.inf
    k = len(poly)
    for a, b in zip(poly, poly[np.r_[1:k, 0]]):
        ab = b - a
        t = np.clip(np.dot(p - a, ab) / max(np.dot(ab, ab), 1e-12), 0.0, 1.0)
        d = min(d, float(np.linalg.norm(p - (a + t * ab))))
    inside = cv2.pointPolygonTest(poly.astype(np.float32).reshape(-1, 1, 2), (float(p[0]), float(p[1])), False) > 0
    return -d if inside else d


def _bottom(tracks: ObjectTracks, scene: SceneInfo, i: int, r_ref: float) -> np.ndarray:
    """Lowest image row of object ``i`` per frame ``[F]`` (px): centre + radius for balls, box edge otherwise."""
    if scene.objects[i].kind == "ball":
        return tracks.center()[:, i, 1] + r_ref
    return tracks.bbox[:, i, 3]


def contact_frames(tracks: ObjectTracks, scene: SceneInfo, i: int, tol_px: float | None = None) -> np.ndarray:
    """bool ``[F]``: object ``i`` touches the floor, a ramp or a same-plane object in that frame.

    Contact is geometric: the floor within ``tol_px`` of the object's bottom, a ramp
    polygon within ``tol_px`` of its outline, another object's outline within ``tol_px``.
    """
    r_i = _reference_radius(tracks, i)
    tol = max(1.0, 0.15 * r_i) if tol_px is None else tol_px
    f = tracks.num_frames
    contact = np.zeros(f, bool)
    floor = scene.objects[i].floor_row_px
    if floor is not None:
        contact |= np.nan_to_num(_bottom(tracks, scene, i, r_i), nan=-np.inf) >= floor - tol
    centers = tracks.center()
    centre_i = centers[:, i]
    for poly, plane in scene.ramps_px:
        if plane is not None and scene.objects[i].plane is not None and abs(plane - scene.objects[i].plane) > 1e-6:
            continue
        for t in range(f):
            if np.all(np.isfinite(centre_i[t])):
                contact[t] |= _point_polygon_distance(centre_i[t], poly) <= r_i + tol
    reliable = tracks.fully_visible()
    for j in range(tracks.num_objects):
        if j == i or not _same_plane(scene, i, j):
            continue
        r_j = _reference_radius(tracks, j)
        # Where j is partly hidden its centre is uncertain by up to its radius: reach further.
        reach = np.where(reliable[:, j], r_i + r_j + tol, r_i + 2 * r_j + tol)
        centre_j = centers[:, j].copy()
        seen = np.flatnonzero(tracks.present[:, j])
        for t in np.flatnonzero(~tracks.present[:, j]):
            before, after = seen[seen < t], seen[seen > t]
            if before.size and after.size:  # hidden mid-clip: interpolate; outside the view: unknown
                centre_j[t] = _extrapolate(centers[:, j], before, after, t)
        d = np.linalg.norm(centre_i - centre_j, axis=-1)
        contact |= np.nan_to_num(d, nan=np.inf) <= reach
    return contact


# ---------------------------------------------------------------------------------------------
# object permanence


def object_permanence(tracks: ObjectTracks, scene: SceneInfo | None = None, occluder_dilate_px: int = 2) -> dict[str, Any]:
    """Do objects stay in existence? (fraction of frames, event counts)

    An object missing from a frame is *legitimately hidden* when it left (or has not yet
    entered) through the image border (its last/first mask touches the border), or when
    at its position extrapolated at constant velocity from the nearest frames where it
    was seen (or where it was last / first seen), at least half of its disc is covered by
    other objects' masks (dilated by `occluder_dilate_px`) or lies outside the image.
    Otherwise the frame is a violation.

    Returns:
        permanence: fraction of frames in which every expected object is visible or
            legitimately hidden (1.0 = perfect; unitless).
        all_visible_fraction: fraction of frames with all objects visible.
        vanish_events: number of times an object disappears without a reason.
        appear_events: number of times an object appears without a reason (including
            at a reappearance after a vanish).
        missing_objects: objects never seen at all.
        expected_count: number of objects the scene has.
    """
    import cv2

    f, n = tracks.present.shape
    h, w = tracks.masks.shape[-2:]
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * occluder_dilate_px + 1,) * 2)
    ys, xs = np.mgrid[0:h, 0:w]
    radius = np.sqrt(tracks.reference_area() / np.pi)
    ok = tracks.present.copy()
    vanish = appear = missing = 0
    for i in range(n):
        seen = np.flatnonzero(tracks.present[:, i])
        if seen.size == 0:
            missing += 1
            continue
        absent = np.flatnonzero(~tracks.present[:, i])
        for t in absent:
            before, after = seen[seen < t], seen[seen > t]
            # Left (or entered) through the image border: its last (first) mask touches it.
            if (before.size and _touches_border(tracks.bbox[before[-1], i], w, h)) or (
                not before.size and after.size and _touches_border(tracks.bbox[after[0], i], w, h)
            ):
                ok[t, i] = True
                continue
            guesses = [_extrapolate(tracks.centroid[:, i], before, after, t)]
            # It may also have stopped behind what hides it: try where it was last/first seen.
            guesses += [tuple(tracks.centroid[k, i]) for k in (before[-1:].tolist() + after[:1].tolist())]
            guesses = [g for g in guesses if g is not None]
            if not guesses:
                continue
            if any(not (0 <= x < w and 0 <= y < h) for x, y in guesses):
                ok[t, i] = True  # outside the view
                continue
            others = np.zeros((h, w), np.uint8)
            for j in range(n):
                if j != i and tracks.present[t, j]:
                    others |= tracks.masks[t, j].astype(np.uint8)
            if occluder_dilate_px > 0:
                others = cv2.dilate(others, kernel)
            for x, y in guesses:
                # Hidden when at least half of its disc is covered by other objects or off the image.
                disc = (xs - x) ** 2 + (ys - y) ** 2 <= max(radius[i], 1.0) ** 2
                covered = (others.astype(bool) & disc).sum() + max(0.0, np.pi * radius[i] ** 2 - disc.sum())
                if covered >= 0.5 * max(disc.sum(), np.pi * radius[i] ** 2):
                    ok[t, i] = True  # behind another object
                    break
        # count events over runs of unexplained absence
        bad = ~ok[:, i]
        runs = _runs(bad)
        for start, stop in runs:
            if start > 0:
                vanish += 1
            if stop < f:
                appear += 1
    all_ok = ok.all(1)
    return {
        "permanence": float(all_ok.mean()),
        "all_visible_fraction": float(tracks.present.all(1).mean()),
        "vanish_events": int(vanish),
        "appear_events": int(appear),
        "missing_objects": int(missing),
        "expected_count": int(n),
    }


def _touches_border(bbox: np.ndarray, w: int, h: int) -> bool:
    x0, y0, x1, y1 = bbox
    return bool(x0 <= 0 or y0 <= 0 or x1 >= w or y1 >= h)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) runs of True in a 1-D bool array."""
    padded = np.r_[False, mask, False].astype(np.int8)
    d = np.diff(padded)
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def _extrapolate(pos: np.ndarray, before: np.ndarray, after: np.ndarray, t: int) -> tuple[float, float] | None:
    """Constant-velocity guess of a position ``[F, 2]`` at frame ``t`` from the nearest seen frames."""
    if before.size and after.size:
        a, b = before[-1], after[0]
        return tuple(pos[a] + (pos[b] - pos[a]) * (t - a) / (b - a))
    ref = before if before.size else after
    if ref.size == 0:
        return None
    if ref.size == 1:
        return tuple(pos[ref[0]])
    p, q = (ref[-2], ref[-1]) if before.size else (ref[1], ref[0])
    v = (pos[q] - pos[p]) / (q - p)
    return tuple(pos[q] + v * (t - q))


# ---------------------------------------------------------------------------------------------
# gravity: pooled parabola fit over free-flight segments


@dataclass
class FlightFit:
    """A shared-acceleration parabola fit of one object's free-flight segments.

    ``y(t) = a t² + b_k t + c_k`` on segment k (t in frames, y in px, image y down).
    """

    segments: list[np.ndarray]
    accel_px_frame2: float  # 2a, image-down positive
    coeffs: list[tuple[float, float]]  # (b_k, c_k)
    rms_px: float
    num_points: int
    events: list[tuple[int, str]]  # (frame index near the event, kind)

    def velocity(self, k: int, t: float) -> float:
        """Vertical velocity (px/frame, down positive) of segment k at time t (frames)."""
        return self.accel_px_frame2 * t + self.coeffs[k][0]

    def position(self, k: int, t: float) -> float:
        b, c = self.coeffs[k]
        return 0.5 * self.accel_px_frame2 * t * t + b * t + c


def _pooled_fit(segments: list[np.ndarray], ys: np.ndarray) -> tuple[float, list[tuple[float, float]], float] | None:
    """Least squares of ``y = a t² + b_k t + c_k`` with shared ``a``; returns (2a, coeffs, rms) or None."""
    segs = [s for s in segments if len(s) >= 2]
    # A 3-point parabola is exact whatever the noise: the shared t² term needs a 4-point segment.
    if not any(len(s) >= 4 for s in segs):
        return None
    rows, rhs = [], []
    m = 1 + 2 * len(segs)
    for k, s in enumerate(segs):
        for t in s:
            r = np.zeros(m)
            r[0] = t * t
            r[1 + 2 * k] = t
            r[2 + 2 * k] = 1.0
            rows.append(r)
            rhs.append(ys[t])
    A, y = np.array(rows), np.array(rhs)
    sol, *_ = np.linalg.lstsq(A, y, rcond=None)
    res = y - A @ sol
    coeffs = [(float(sol[1 + 2 * k]), float(sol[2 + 2 * k])) for k in range(len(segs))]
    return 2.0 * float(sol[0]), coeffs, float(np.sqrt(np.mean(res**2)))


def free_flight_fit(tracks: ObjectTracks, scene: SceneInfo, i: int, min_points: int = 6) -> FlightFit | None:
    """Find object ``i``'s free-flight segments and fit them with one shared acceleration.

    Free flight = fully visible and not in contact (`contact_frames`). Within it,
    frames where the second difference of y or x departs from its median over the
    object's flight (with fewer than 5 such frames: from the scene's gravity) by more
    than 4 robust sigma, clipped to [0.75, 1.5] px/frame², mark an impulse in the
    neighbouring interval: a bounce (gravity alone never turns a fall into a rise) or a
    collision. Segments are cut there; each flagged frame is given to the side whose
    parabola it fits within 1.5 px, or dropped. Pieces separated only by hidden frames
    are merged when one parabola still fits them (RMS <= max(0.3 px, 1.5x)).
    """
    usable = tracks.fully_visible()[:, i] & ~contact_frames(tracks, scene, i)
    ball = scene.objects[i].kind == "ball"
    centers = tracks.center()
    y = centers[:, i, 1] if ball else tracks.centroid[:, i, 1]
    x = centers[:, i, 0] if ball else tracks.centroid[:, i, 0]
    runs = [np.arange(a, b) for a, b in _runs(usable)]
    d2 = {}
    for run in runs:
        for t in run[1:-1]:
            d2[int(t)] = (y[t + 1] - 2 * y[t] + y[t - 1], x[t + 1] - 2 * x[t] + x[t - 1])
    if len(d2) >= 5:
        arr = np.array(list(d2.values()))
        med = np.median(arr, 0)
        mad = 1.4826 * np.median(np.abs(arr - med), 0)
    elif scene.gravity_px_s2(i) is not None:
        # Too few frames to trust their own median: expect the scene's gravity. This only
        # decides where segments are cut; the fitted acceleration is still measured.
        med, mad = np.array([scene.gravity_px_s2(i) / scene.fps**2, 0.0]), np.zeros(2)
    else:
        arr = np.array(list(d2.values()) or [(0.0, 0.0)])
        med, mad = np.median(arr, 0), np.zeros(2)
    # 4 robust sigma, but never so wide that a few impulses (which inflate the spread of a
    # short flight) hide each other.
    thr = np.clip(4.0 * mad, 0.75, 1.5)
    flagged = {t for t, v in d2.items() if np.any(np.abs(np.array(v) - med) > thr)}
    pieces: list[np.ndarray] = []
    ambiguous: list[tuple[np.ndarray, int]] = []  # (flagged frames, index of the piece before them)
    events: list[tuple[int, str]] = []
    for run in runs:
        cur: list[int] = []
        k = 0
        while k < len(run):
            t = int(run[k])
            if t in flagged:
                block = [t]
                while k + 1 < len(run) and int(run[k + 1]) in flagged:
                    k += 1
                    block.append(int(run[k]))
                pieces.append(np.array(cur, int))
                ambiguous.append((np.array(block), len(pieces) - 1))
                kind = "bounce" if d2[block[0]][0] - med[0] < -thr[0] else "kick"
                events.append((block[0], kind))
                cur = []
            else:
                cur.append(t)
            k += 1
        pieces.append(np.array(cur, int))
    first = _pooled_fit(pieces, y)
    if first is None:
        return None
    accel, coeffs, _ = first
    fitted = [k for k, p in enumerate(pieces) if len(p) >= 2]
    for block, left in ambiguous:
        for t in block:
            best, best_err = None, 1.5  # px: further than this from both fits -> drop the frame
            for side in (left, left + 1):
                if side in fitted:
                    b, c = coeffs[fitted.index(side)]
                    err = abs(0.5 * accel * t * t + b * t + c - y[t])
                    if err < best_err:
                        best, best_err = side, err
            if best is not None:
                pieces[best] = np.sort(np.r_[pieces[best], t]).astype(int)
    pieces = [p for p in pieces if len(p) >= 2]
    fit = _pooled_fit(pieces, y)
    if fit is None or sum(len(p) for p in pieces) < min_points:
        return None
    # Pieces split only by frames where the object was hidden or cut by the border (no
    # contact, no impulse) may be one flight: merge them when one parabola still fits.
    touching = contact_frames(tracks, scene, i)
    event_frames = set(flagged)
    k = 0
    while k + 1 < len(pieces):
        gap = range(int(pieces[k][-1]) + 1, int(pieces[k + 1][0]))
        if not any(touching[t] or t in event_frames for t in gap):
            merged = pieces[:k] + [np.r_[pieces[k], pieces[k + 1]]] + pieces[k + 2 :]
            trial = _pooled_fit(merged, y)
            if trial is not None and trial[2] <= max(0.3, 1.5 * fit[2]):
                pieces, fit = merged, trial
                continue
        k += 1
    accel, coeffs, rms = fit
    return FlightFit(pieces, accel, coeffs, rms, int(sum(len(p) for p in pieces)), events)


def gravity_metrics(tracks: ObjectTracks, scene: SceneInfo) -> dict[str, Any]:
    """Does free flight follow a parabola with the scene's gravity?

    Per object, free-flight segments are fitted with one shared vertical acceleration
    (`free_flight_fit`), converted to m/s² with the object's ``px_per_m`` and the fps:
    ``g = accel_px_frame2 * fps² / px_per_m``. Objects are pooled by their number of
    fitted points.

    Returns:
        g_fit_m_s2: fitted gravity (m/s², positive = downward as it should be); None
            when no object has a usable free-flight segment.
        g_rel_error: ``|g_fit - g_scene| / g_scene`` (unitless; a flipped gravity gives ≈ 2).
        parabola_rms_px: RMS residual of the fits in px (how parabolic the flight is).
        num_points: frames used in the fits; per_object: the same per object.
    """
    per_object = []
    for i in range(tracks.num_objects):
        # Boxes tumble and hit the floor with their corners: only balls give clean flights.
        fit = free_flight_fit(tracks, scene, i) if scene.objects[i].kind == "ball" else None
        ppm = scene.objects[i].px_per_m
        if fit is None:
            per_object.append(None)
            continue
        g = fit.accel_px_frame2 * scene.fps**2 / ppm if ppm else None
        per_object.append({"g_fit_m_s2": g, "accel_px_s2": fit.accel_px_frame2 * scene.fps**2, "rms_px": fit.rms_px,
                           "num_points": fit.num_points, "num_segments": len(fit.segments)})
    usable = [p for p in per_object if p is not None]
    out: dict[str, Any] = {"g_fit_m_s2": None, "g_rel_error": None, "parabola_rms_px": None, "num_points": 0, "per_object": per_object}
    if not usable:
        return out
    weights = np.array([p["num_points"] for p in usable], float)
    out["num_points"] = int(weights.sum())
    out["parabola_rms_px"] = float(np.sqrt(np.sum(weights * np.array([p["rms_px"] for p in usable]) ** 2) / weights.sum()))
    with_g = [p for p in usable if p["g_fit_m_s2"] is not None]
    if with_g:
        wg = np.array([p["num_points"] for p in with_g], float)
        g = float(np.sum(wg * np.array([p["g_fit_m_s2"] for p in with_g])) / wg.sum())
        out["g_fit_m_s2"] = g
        if scene.gravity_m_s2:
            out["g_rel_error"] = abs(g - scene.gravity_m_s2) / scene.gravity_m_s2
    return out


# ---------------------------------------------------------------------------------------------
# gravity on a ramp


def expected_ramp_acceleration(kind: str, slope_deg: float, friction: float, gravity_m_s2: float) -> float:
    """Downhill acceleration (m/s²) on an incline: a sliding box ``g (sin θ − μ cos θ)`` (0 if it
    sticks), a rolling 2-D disc (moment ½ m r²) ``⅔ g sin θ`` while ``μ ≥ tan θ / 3``, else sliding."""
    theta = math.radians(slope_deg)
    sliding = gravity_m_s2 * (math.sin(theta) - friction * math.cos(theta))
    if kind == "ball" and friction >= math.tan(theta) / 3.0:
        return 2.0 / 3.0 * gravity_m_s2 * math.sin(theta)
    return max(0.0, sliding)


def _downhill_direction(poly: np.ndarray) -> np.ndarray | None:
    """Unit image direction down the slanted edge of a ramp polygon (image y grows downhill)."""
    best, best_len = None, 0.0
    k = len(poly)
    for a, b in zip(poly, poly[np.r_[1:k, 0]]):
        d = b - a
        if abs(d[0]) > 1e-6 and abs(d[1]) > 1e-6 and np.hypot(*d) > best_len:
            best, best_len = d, float(np.hypot(*d))
    if best is None:
        return None
    best = best / best_len
    return best if best[1] > 0 else -best


def ramp_metrics(tracks: ObjectTracks, scene: SceneInfo, min_points: int = 4) -> dict[str, Any]:
    """Does a body on a ramp accelerate as gravity and friction say?

    Frames where the object is fully visible, touches a ramp of its plane (outline within
    ``max(1 px, 0.15 r)``) and not the floor are projected on the ramp's downhill
    direction; ``s(t) = ½ a t² + v t + s0`` is fitted over runs of at least `min_points`
    frames (one shared ``a``) and converted with ``fps² / px_per_m``. The expectation is
    `expected_ramp_acceleration` with ``μ = object friction × ramp friction`` (pymunk's rule).

    Returns:
        ramp_accel_m_s2: fitted downhill acceleration (m/s²); ramp_accel_expected_m_s2;
        ramp_accel_rel_error: ``|a − a_expected| / a_expected`` (unitless); num_points.
    """
    fits, expected, points = [], [], 0
    vis = tracks.fully_visible()
    for i, obj in enumerate(scene.objects):
        ppm, r = obj.px_per_m, _reference_radius(tracks, i)
        if not ppm or not np.isfinite(r) or scene.gravity_m_s2 is None or obj.friction is None:
            continue
        tol = max(1.0, 0.15 * r)
        centre = tracks.center()[:, i] if obj.kind == "ball" else tracks.centroid[:, i]
        bottom = _bottom(tracks, scene, i, r)
        for ramp in scene.ramps_px:
            if ramp.slope_deg is None or (ramp.plane is not None and obj.plane is not None and abs(ramp.plane - obj.plane) > 1e-6):
                continue
            direction = _downhill_direction(ramp.polygon_px)
            if direction is None:
                continue
            reach = r if obj.kind == "ball" else 0.5 * (tracks.bbox[:, i, 3] - tracks.bbox[:, i, 1])
            on = np.zeros(tracks.num_frames, bool)
            for t in np.flatnonzero(vis[:, i]):
                reach_t = reach if np.isscalar(reach) else reach[t]
                on[t] = _point_polygon_distance(centre[t], ramp.polygon_px) <= reach_t + tol
            if obj.floor_row_px is not None:
                on &= ~(np.nan_to_num(bottom, nan=np.inf) >= obj.floor_row_px - tol)
            runs = [np.arange(a, b) for a, b in _runs(on) if b - a >= min_points]
            if not runs:
                continue
            s = np.nan_to_num(centre @ direction)
            fit = _pooled_fit(runs, s)
            if fit is None:
                continue
            fits.append((fit[0] * scene.fps**2 / ppm, sum(len(x) for x in runs)))
            mu = obj.friction * (ramp.friction if ramp.friction is not None else 1.0)
            expected.append(expected_ramp_acceleration(obj.kind, ramp.slope_deg, mu, scene.gravity_m_s2))
            points += sum(len(x) for x in runs)
    if not fits:
        return {"ramp_accel_m_s2": None, "ramp_accel_expected_m_s2": None, "ramp_accel_rel_error": None, "num_points": 0}
    w = np.array([n for _, n in fits], float)
    a = float(np.sum(w * np.array([f for f, _ in fits])) / w.sum())
    a_exp = float(np.sum(w * np.array(expected)) / w.sum())
    return {
        "ramp_accel_m_s2": a,
        "ramp_accel_expected_m_s2": a_exp,
        "ramp_accel_rel_error": abs(a - a_exp) / a_exp if a_exp > 1e-6 else None,
        "num_points": points,
    }


# ---------------------------------------------------------------------------------------------
# bounce energy


def bounce_restitution(tracks: ObjectTracks, scene: SceneInfo, min_speed_px: float = 1.0) -> dict[str, Any]:
    """Coefficient of restitution of every floor bounce, from the speeds either side of it.

    The two free-flight parabolas around a bounce (same acceleration) meet at the
    contact time ``t*``; ``e = -v_after(t*) / v_before(t*)`` with v the vertical image
    velocity. Bounces off ramps or other objects are skipped (their normal is not
    vertical), as are bounces slower than `min_speed_px` px/frame.

    Returns:
        restitutions: list of e (unitless) per bounce; restitution_max / restitution_mean;
        violation: some e > 1.05 (a bounce gained energy);
        rel_error: mean ``|e - e_scene| / e_scene`` where the scene states e; num_bounces.
    """
    values, rel_errors = [], []
    for i in range(tracks.num_objects):
        fit = free_flight_fit(tracks, scene, i) if scene.objects[i].kind == "ball" else None
        if fit is None:
            continue
        r_ref = _reference_radius(tracks, i)
        floor = scene.objects[i].floor_row_px
        for k in range(len(fit.segments) - 1):
            s0, s1 = fit.segments[k], fit.segments[k + 1]
            (b0, c0), (b1, c1) = fit.coeffs[k], fit.coeffs[k + 1]
            if abs(b0 - b1) < 1e-9:
                continue
            t_star = -(c0 - c1) / (b0 - b1)  # the shared t² term cancels
            if not (s0[-1] - 0.25 <= t_star <= s1[0] + 0.25):
                continue
            v_in, v_out = fit.velocity(k, t_star), fit.velocity(k + 1, t_star)
            if v_in < min_speed_px or v_out > 0:
                continue  # not a downward->upward bounce
            if floor is not None and scene.objects[i].kind == "ball":
                bottom = fit.position(k, t_star) + r_ref
                if abs(bottom - floor) > max(2.0, 0.35 * r_ref):
                    continue  # bounced off something else
            e = -v_out / v_in
            values.append(float(e))
            if scene.objects[i].restitution:
                rel_errors.append(abs(e - scene.objects[i].restitution) / scene.objects[i].restitution)
    return {
        "restitutions": values,
        "num_bounces": len(values),
        "restitution_max": max(values) if values else None,
        "restitution_mean": float(np.mean(values)) if values else None,
        "violation": bool(values and max(values) > 1.05),
        "rel_error": float(np.mean(rel_errors)) if rel_errors else None,
    }


# ---------------------------------------------------------------------------------------------
# penetration


def penetration_metrics(tracks: ObjectTracks, scene: SceneInfo) -> dict[str, Any]:
    """How deep objects sink into the floor, ramps and each other (px; 0 = none).

    - floor: ``max(0, bottom - floor_row)`` where bottom is the ball's enclosing-circle
      centre plus its reference radius (or a box's bbox bottom), per object per frame;
    - ramps: ``max(0, r - signed distance from the centre to the ramp polygon)`` for balls;
    - objects: ``max(0, r_i + r_j - |c_i - c_j|)`` for pairs of balls on the same depth
      plane (objects on different planes may overlap in the image: that is occlusion).

    Returns:
        floor_penetration_px / ramp_penetration_px / object_penetration_px: the maxima
        over frames and objects (None when not measurable); penetration_px: the
        largest of the three; penetrating_frames: fraction of frames with any > 1 px.
    """
    f, n = tracks.present.shape
    worst_per_frame = np.zeros(f)
    floor_max = ramp_max = obj_max = None
    radii = [_reference_radius(tracks, i) for i in range(n)]
    vis = tracks.fully_visible()
    centers = tracks.center()
    for i in range(n):
        floor = scene.objects[i].floor_row_px
        if floor is not None:
            bottom = _bottom(tracks, scene, i, radii[i])
            pen = np.where(vis[:, i], np.clip(np.nan_to_num(bottom - floor, nan=0.0), 0, None), 0.0)
            floor_max = max(floor_max or 0.0, float(pen.max()))
            worst_per_frame = np.maximum(worst_per_frame, pen)
        if scene.objects[i].kind != "ball":
            continue
        for poly, plane in scene.ramps_px:
            if plane is not None and scene.objects[i].plane is not None and abs(plane - scene.objects[i].plane) > 1e-6:
                continue
            pen = np.zeros(f)
            for t in np.flatnonzero(vis[:, i]):
                pen[t] = max(0.0, radii[i] - _point_polygon_distance(centers[t, i], poly))
            ramp_max = max(ramp_max or 0.0, float(pen.max()))
            worst_per_frame = np.maximum(worst_per_frame, pen)
    for i in range(n):
        for j in range(i + 1, n):
            if not _same_plane(scene, i, j) or scene.objects[i].kind != "ball" or scene.objects[j].kind != "ball":
                continue
            both = _circle_reliable(tracks, i, radii[i]) & _circle_reliable(tracks, j, radii[j])
            d = np.linalg.norm(centers[:, i] - centers[:, j], axis=-1)
            pen = np.where(both, np.clip(np.nan_to_num(radii[i] + radii[j] - d, nan=0.0), 0, None), 0.0)
            obj_max = max(obj_max or 0.0, float(pen.max()))
            worst_per_frame = np.maximum(worst_per_frame, pen)
    parts = [v for v in (floor_max, ramp_max, obj_max) if v is not None]
    return {
        "floor_penetration_px": floor_max,
        "ramp_penetration_px": ramp_max,
        "object_penetration_px": obj_max,
        "penetration_px": max(parts) if parts else None,
        "penetrating_frames": float((worst_per_frame > 1.0).mean()),
    }


# ---------------------------------------------------------------------------------------------
# momentum


MOMENTUM_FAMILIES = ("collision",)


def collision_momentum(
    tracks: ObjectTracks, scene: SceneInfo, window: int = 4, families: tuple[str, ...] | None = MOMENTUM_FAMILIES
) -> dict[str, Any]:
    """Is total horizontal momentum kept across object-object collisions?

    A collision of two same-plane objects is the frame where their gap
    ``|c_i - c_j| - r_i - r_j`` has a local minimum close to zero (within the distance
    they close in one frame). Each object's horizontal velocity is a straight-line fit
    of its x over `window` visible frames before and after that frame (the frame itself
    is skipped: the contact happened around it); momentum uses the scene's masses and
    velocities in m/s (px/frame * fps / px_per_m).

    Horizontal momentum is only conserved when nothing else pushes sideways (floor
    friction does), so by default only scenes of the frictionless `collision` family (or
    of unknown family) are checked; ``families=None`` checks every scene.

    Returns:
        momentum_rel_change: per collision ``|P_after - P_before| / (Σ m |v_before|)``
            (unitless; 0 = conserved); momentum_rel_change_max; num_collisions;
        energy_ratio: per collision kinetic energy after/before (horizontal; ≤ 1 expected).
    """
    changes, energy = [], []
    f, n = tracks.present.shape
    if families is not None and scene.family is not None and scene.family not in families:
        n = 0  # not applicable: no collision is checked
    radii = [_reference_radius(tracks, i) for i in range(n)]
    visible = tracks.fully_visible()
    centers = tracks.center()
    for i in range(n):
        for j in range(i + 1, n):
            oi, oj = scene.objects[i], scene.objects[j]
            if not _same_plane(scene, i, j) or oi.mass_kg is None or oj.mass_kg is None:
                continue
            gap = np.linalg.norm(centers[:, i] - centers[:, j], axis=-1) - radii[i] - radii[j]
            if oi.kind != "ball" or oj.kind != "ball":
                # Boxes: use half the bbox width as the horizontal reach.
                wi = 0.5 * (tracks.bbox[:, i, 2] - tracks.bbox[:, i, 0])
                wj = 0.5 * (tracks.bbox[:, j, 2] - tracks.bbox[:, j, 0])
                gap = np.abs(tracks.centroid[:, i, 0] - tracks.centroid[:, j, 0]) - wi - wj
            for t in range(1, f - 1):
                g0, g1, g2 = gap[t - 1], gap[t], gap[t + 1]
                if not np.all(np.isfinite([g0, g1, g2])) or not (g1 <= g0 and g1 <= g2):
                    continue
                closing = max(abs(g0 - g1), abs(g2 - g1))
                if g1 > 0.5 * closing + 1.0:
                    continue
                v = {}
                for o in (i, j):
                    x = tracks.centroid[:, o, 0]
                    ok = visible[:, o]  # border-cut masks have biased centroids
                    before = [s for s in range(t - 1, -1, -1) if ok[s]][:window]
                    after = [s for s in range(t + 1, f) if ok[s]][:window]
                    if len(before) < 2 or len(after) < 2:
                        break
                    scale = scene.fps / scene.objects[o].px_per_m if scene.objects[o].px_per_m else scene.fps
                    v[o] = (np.polyfit(before, x[before], 1)[0] * scale, np.polyfit(after, x[after], 1)[0] * scale)
                if len(v) < 2:
                    continue
                m = {i: oi.mass_kg, j: oj.mass_kg}
                p_before = sum(m[o] * v[o][0] for o in v)
                p_after = sum(m[o] * v[o][1] for o in v)
                norm = sum(m[o] * abs(v[o][0]) for o in v)
                if norm < 1e-9:
                    continue
                changes.append(abs(p_after - p_before) / norm)
                e_before = sum(0.5 * m[o] * v[o][0] ** 2 for o in v)
                e_after = sum(0.5 * m[o] * v[o][1] ** 2 for o in v)
                energy.append(e_after / e_before if e_before > 0 else math.nan)
    return {
        "momentum_rel_change": changes,
        "momentum_rel_change_max": max(changes) if changes else None,
        "num_collisions": len(changes),
        "energy_ratio": energy,
    }
