"""Per-clip quality scores and the accept/reject decision (thresholds in `QualityConfig`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .classical import box_iou, mask_box, mask_iou, warp_by_flow
from .config import QualityConfig


def mask_stability(instances: np.ndarray) -> float | None:
    """Mean IoU of each instance's mask between consecutive frames where it exists in both (None: no instance)."""
    ious = []
    for k in np.unique(instances):
        if k == 0:
            continue
        m = instances == k
        for t in range(len(m) - 1):
            if m[t].any() and m[t + 1].any():
                ious.append(mask_iou(m[t], m[t + 1]))
    return float(np.mean(ious)) if ious else None


def depth_inconsistency(depth: np.ndarray, flow: np.ndarray) -> float:
    """Mean relative change between depth at t and depth at t+1 warped back by the forward flow.

    Scale-free (relative), so it works for relative and metric depth alike.
    """
    errs = []
    for t in range(len(depth) - 1):
        warped = warp_by_flow(depth[t + 1].astype(np.float32), flow[t])
        errs.append(float((np.abs(warped - depth[t]) / np.maximum(np.abs(depth[t]), 1e-6)).mean()))
    return float(np.mean(errs)) if errs else 0.0


def track_scores(visibility: np.ndarray, fb_error: np.ndarray) -> tuple[float, float]:
    """(survival: fraction of frame-0 tracks visible at the last frame, mean forward-backward error of visible steps)."""
    survival = float(visibility[-1].mean())
    steps = visibility[1:]
    fb = float(fb_error[1:][steps].mean()) if steps.any() else float("inf")
    return survival, fb


def evidence_agreement(localization: dict[str, Any], instances: np.ndarray) -> float | None:
    """Mean IoU of each evidence box with the box of the subject's mask in that frame (0 where the mask is empty)."""
    ious = []
    for s in localization["subjects"]:
        for ev in s["evidence"]:
            mb = mask_box(instances[ev["frame"]] == s["id"])
            ious.append(box_iou(ev["box"], mb) if mb is not None else 0.0)
    return float(np.mean(ious)) if ious else None


def score_clip(localization: dict[str, Any], instances: np.ndarray, depth: np.ndarray, track_out: dict[str, np.ndarray]) -> dict[str, Any]:
    survival, fb = track_scores(track_out["visibility"], track_out["fb_error"])
    return {
        "num_subjects": len(localization["subjects"]),
        "mask_stability": mask_stability(instances),
        "depth_inconsistency": depth_inconsistency(depth, track_out["flow"]),
        "track_survival": survival,
        "track_fb_error": fb,
        "evidence_agreement": evidence_agreement(localization, instances),
    }


def judge(scores: dict[str, Any], cfg: QualityConfig) -> list[str]:
    """Reasons to reject a clip (empty list: accept)."""
    reasons = []
    if scores["num_subjects"] < cfg.min_subjects:
        reasons.append(f"no physical subject: {scores['num_subjects']} subject(s) < min_subjects={cfg.min_subjects}")
    if scores["num_subjects"] and (scores["mask_stability"] is None or scores["mask_stability"] < cfg.min_mask_stability):
        reasons.append(f"unstable masks: mask_stability {_fmt(scores['mask_stability'])} < {cfg.min_mask_stability}")
    if scores["depth_inconsistency"] > cfg.max_depth_inconsistency:
        reasons.append(f"inconsistent depth: depth_inconsistency {scores['depth_inconsistency']:.3f} > {cfg.max_depth_inconsistency}")
    if scores["track_survival"] < cfg.min_track_survival:
        reasons.append(f"tracks lost: track_survival {scores['track_survival']:.3f} < {cfg.min_track_survival}")
    if scores["track_fb_error"] > cfg.max_track_fb_error:
        reasons.append(f"inconsistent tracks: track_fb_error {scores['track_fb_error']:.3f} px > {cfg.max_track_fb_error}")
    if scores["num_subjects"] and (scores["evidence_agreement"] is None or scores["evidence_agreement"] < cfg.min_evidence_agreement):
        reasons.append(f"evidence disagrees with masks: evidence_agreement {_fmt(scores['evidence_agreement'])} < {cfg.min_evidence_agreement}")
    return reasons


def _fmt(v) -> str:
    return "none" if v is None else f"{v:.3f}"
