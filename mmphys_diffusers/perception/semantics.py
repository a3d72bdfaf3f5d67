"""Semantics codec: instance ids -> well-separated palette colours, decoded by nearest colour."""

from __future__ import annotations

import numpy as np

from ..errors import MMPhysInputError
from ._checks import channels_last, check_int_array, meta_float, to_video
from ._labels import majority_relabel, neighbour_labels
from .base import PerceptionCodec, as_pseudo_rgb, register_codec
from .colors import MAX_PALETTE_SIZE, RGB_TO_YCBCR, instance_palette, nearest_color

# Luma vs chroma weight when re-deciding an uncertain edge pixel (chroma is blurred there).
_REFINE_LUMA_WEIGHT = 64.0


@register_codec
class SemanticsCodec(PerceptionCodec):
    """Instance (or semantic class) ids ``[F,H,W]`` <-> palette colours.

    Layout: pixel colour = ``instance_palette(max_instances + 1)[id]``; id 0 (background)
    is black. Inverse: nearest palette colour (Euclidean RGB) among the ids that the
    clip used (``meta["num_ids"]``), or among all ``max_instances + 1`` without meta.

    With `refine_edges`, pixels farther than `uncertain_distance` (RGB, in [0, 1] units) from
    every palette colour are re-decided from their 3x3 neighbourhood; see `_refine_uncertain`.

    Args:
        max_instances: largest id the codec accepts (palette holds it plus background).
        refine_edges: re-decide uncertain pixels (edges blurred by chroma subsampling).
        uncertain_distance: residual above which a pixel counts as uncertain.
    """

    name = "semantics"
    required_arrays = ("instances",)
    resize_mode = "nearest"

    def __init__(self, max_instances: int = 64, refine_edges: bool = True, uncertain_distance: float = 0.06):
        if not 1 <= int(max_instances) <= MAX_PALETTE_SIZE - 1:
            raise MMPhysInputError(f"max_instances must be in [1, {MAX_PALETTE_SIZE - 1}], got {max_instances}")
        self.max_instances = int(max_instances)
        self.palette = instance_palette(self.max_instances + 1)
        self.refine_edges = bool(refine_edges)
        self.uncertain_distance = float(uncertain_distance)

    def encode(self, **arrays) -> tuple[np.ndarray, dict]:
        """instances int ``[F,H,W]`` -> (video ``[F,3,H,W]``, meta)."""
        (instances,) = self._take(arrays)
        ids = check_int_array(instances, "instances", where="semantics codec: ")
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi > self.max_instances:
            raise MMPhysInputError(
                f"semantics codec: `instances` ids must be in [0, {self.max_instances}] (max_instances), "
                f"got range [{lo}, {hi}]"
            )
        video = to_video(self.palette[ids])
        return video, {"num_ids": hi + 1, "max_instances": self.max_instances}

    def decode(self, video, meta: dict | None = None) -> dict[str, np.ndarray]:
        """video ``[F,3,H,W]`` -> {"instances": int64 ``[F,H,W]``}."""
        v = as_pseudo_rgb(video, "semantics video")
        max_instances = int(meta_float(meta, "max_instances", self.max_instances, "semantics"))
        palette = self.palette if max_instances == self.max_instances else instance_palette(max_instances + 1)
        num_ids = int(meta_float(meta, "num_ids", len(palette), "semantics"))
        if not 1 <= num_ids <= len(palette):
            raise MMPhysInputError(f"semantics meta['num_ids'] must be in [1, {len(palette)}], got {num_ids}")
        pixels = channels_last(v)
        candidates = palette[:num_ids]
        labels = nearest_color(pixels, candidates)
        if self.refine_edges and num_ids > 1:
            for t in range(len(labels)):  # frame by frame: a noisy video may have many uncertain pixels
                frame = slice(t, t + 1)
                labels[frame] = _refine_uncertain(pixels[frame], labels[frame], candidates, self.uncertain_distance)
        return {"instances": labels}


def _refine_uncertain(pixels: np.ndarray, labels: np.ndarray, palette: np.ndarray, threshold: float) -> np.ndarray:
    """Re-decide pixels whose colour is far from every palette entry (object edges after H.264).

    yuv420p averages chroma over 2x2 blocks, so an edge pixel's chroma is a blend of two
    instances while its luma stays nearly exact. Such a pixel is re-labelled among the labels
    of its 3x3 neighbourhood by a luma-dominated distance, then by the majority of its window
    (object boundaries are smooth). Pixels that match a palette colour are left untouched,
    so clean (e.g. uint8-quantised) inputs decode exactly.
    """
    residual = np.linalg.norm(pixels - palette[labels], axis=-1)
    f, y, x = np.nonzero(residual > threshold)
    if f.size == 0:
        return labels
    window = neighbour_labels(labels, f, y, x)  # [N, 9]
    ycc = pixels[f, y, x] @ RGB_TO_YCBCR.T  # [N, 3]
    pal_ycc = palette @ RGB_TO_YCBCR.T
    diff = ycc[:, None, :] - pal_ycc[window]  # [N, 9, 3]
    dist = (_REFINE_LUMA_WEIGHT * diff[..., 0] ** 2) + diff[..., 1] ** 2 + diff[..., 2] ** 2
    refined = labels.copy()
    refined[f, y, x] = window[np.arange(f.size), dist.argmin(1)]
    # Then the majority of the refined 3x3 window (object boundaries are smooth).
    uncertain = np.zeros(labels.shape, bool)
    uncertain[f, y, x] = True
    return majority_relabel(refined, uncertain)
