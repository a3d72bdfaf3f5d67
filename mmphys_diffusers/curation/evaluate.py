"""Scores of curation extractors against exact ground truth (synthetic / simulated clips).

Classical depth is a prior with arbitrary scale, so depth is scored scale-invariantly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .classical import mask_iou


def instance_iou(pred: np.ndarray, gt: np.ndarray) -> dict[str, Any]:
    """Greedy one-to-one matching of predicted to ground-truth instances by clip-level IoU.

    Args:
        pred, gt: int ``[F,H,W]`` (0 = background).

    Returns:
        mean_iou: mean over ground-truth instances (unmatched count 0);
        per_instance: {gt id: (pred id or None, IoU)}.
    """
    gt_ids = [int(k) for k in np.unique(gt) if k != 0]
    pred_ids = [int(k) for k in np.unique(pred) if k != 0]
    pairs = sorted(((mask_iou(pred == p, gt == g), g, p) for g in gt_ids for p in pred_ids), reverse=True)
    matched: dict[int, tuple[int | None, float]] = {}
    used = set()
    for iou, g, p in pairs:
        if g in matched or p in used or iou <= 0:
            continue
        matched[g] = (p, iou)
        used.add(p)
    per = {g: matched.get(g, (None, 0.0)) for g in gt_ids}
    return {"mean_iou": float(np.mean([v[1] for v in per.values()])) if per else 1.0, "per_instance": per}


def scale_invariant_depth_error(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> dict[str, float]:
    """Scale-invariant log RMSE (Eigen et al. 2014) and AbsRel after median scaling.

    silog = sqrt(mean(d^2) - mean(d)^2), d = log(pred) - log(gt); 0 for a prediction
    that is right up to one global scale.
    """
    valid = (gt > 0) & (pred > 0) & np.isfinite(gt) & np.isfinite(pred)
    if mask is not None:
        valid &= mask
    p, g = pred[valid].astype(np.float64), gt[valid].astype(np.float64)
    d = np.log(p) - np.log(g)
    silog = float(np.sqrt(max(0.0, (d**2).mean() - d.mean() ** 2)))
    scaled = p * np.median(g) / np.median(p)
    return {"silog": silog, "abs_rel_median_scaled": float((np.abs(scaled - g) / g).mean())}


def track_error(pred_tracks: np.ndarray, pred_vis: np.ndarray, gt_tracks: np.ndarray, gt_vis: np.ndarray) -> dict[str, float]:
    """End-point error over points visible in both, plus visibility agreement.

    Returns:
        epe: mean |pred - gt| in pixels over frames t >= 1 where both say visible;
        coverage: fraction of gt-visible points (t >= 1) that the prediction also keeps visible;
        visibility_accuracy: agreement of the visibility flags (t >= 1).
    """
    both = pred_vis[1:] & gt_vis[1:]
    err = np.linalg.norm(pred_tracks[1:] - gt_tracks[1:], axis=-1)
    return {
        "epe": float(err[both].mean()) if both.any() else float("nan"),
        "coverage": float(both.sum() / max(1, gt_vis[1:].sum())),
        "visibility_accuracy": float((pred_vis[1:] == gt_vis[1:]).mean()),
    }
