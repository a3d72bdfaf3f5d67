"""Video segmentation backends: a classical box-seeded propagator (default) and SAM2 video (transformers)."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ...errors import MMPhysInputError
from ..classical import clean_mask, foreground_masks, mask_box, median_background
from ..registry import SEGMENTERS
from .base import Segmenter


def _evidence_boxes(subject: dict[str, Any]) -> dict[int, list[float]]:
    return {int(ev["frame"]): ev["box"] for ev in subject["evidence"]}


def _expand(box, margin: float, h: int, w: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    return (max(0, int(np.floor(x0 - margin))), max(0, int(np.floor(y0 - margin))), min(w, int(np.ceil(x1 + margin))), min(h, int(np.ceil(y1 + margin))))


@SEGMENTERS.register("box_propagate")
class BoxPropagateSegmenter(Segmenter):
    """Box-seeded motion + colour segmentation, propagated through time.

    For each subject a colour model (mean and spread in Lab) is learnt from the
    foreground pixels inside its evidence boxes. In every frame, the pixels inside
    a search window (the evidence box there, else the previous mask's box moved by
    the subject's velocity and widened by a margin) that differ from the temporal
    median background *and* match the colour model form the mask (colour alone when
    that loses more than half the previous mask: a subject at rest becomes part of the
    median background); the connected component nearest the window centre is kept.
    Runs forward from the first evidence frame, then backward. Assumes a static camera.

    Args:
        diff_threshold: background difference (0..255) that counts as foreground.
        colour_sigma: a pixel matches when its Lab distance is below this many spreads (+ a floor).
        margin: search window growth in pixels around a propagated box (plus half the box size).
    """

    name = "box_propagate"

    def __init__(self, diff_threshold: float = 20.0, colour_sigma: float = 3.0, margin: float = 4.0):
        self.diff_threshold = diff_threshold
        self.colour_sigma = colour_sigma
        self.margin = margin

    def segment(self, frames: np.ndarray, localization: dict[str, Any]) -> np.ndarray:
        f, h, w, _ = frames.shape
        background = median_background(frames)
        fg = foreground_masks(frames, background, self.diff_threshold, clean=False)
        lab = np.stack([cv2.cvtColor(fr, cv2.COLOR_RGB2LAB) for fr in frames]).astype(np.float32)
        instances = np.zeros((f, h, w), np.int32)
        best = np.full((f, h, w), np.inf, np.float32)  # colour distance of the current owner of each pixel
        for subject in localization["subjects"]:
            masks, dists = self._segment_subject(fg, lab, _evidence_boxes(subject))
            win = masks & (dists < best)
            instances[win] = int(subject["id"])
            best[win] = dists[win]
        return instances

    def _colour_model(self, fg, lab, boxes) -> tuple[np.ndarray, np.ndarray]:
        moving, interiors = [], []
        for t, box in boxes.items():
            x0, y0, x1, y1 = _expand(box, 0, *fg.shape[1:])
            patch = lab[t, y0:y1, x0:x1]
            interiors.append(patch.reshape(-1, 3))
            sel = fg[t, y0:y1, x0:x1]
            if sel.any():
                moving.append(patch[sel])
        # Nothing moves inside the boxes: fall back to the box interiors.
        px = np.concatenate(moving or interiors)
        return np.median(px, 0), px.std(0) + 1e-3

    def _segment_subject(self, fg, lab, boxes: dict[int, list[float]]) -> tuple[np.ndarray, np.ndarray]:
        f, h, w = fg.shape
        masks = np.zeros((f, h, w), bool)
        dists = np.full((f, h, w), np.inf, np.float32)
        if not boxes:
            return masks, dists
        mean, std = self._colour_model(fg, lab, boxes)
        # Distance in units of the subject's own colour spread, with a floor so a flat-coloured subject still matches noise.
        scale = np.maximum(std, 4.0)
        first = min(boxes)
        for order in (range(first, f), range(first - 1, -1, -1)):
            prev_box, velocity, prev_area = None, np.zeros(2), 0
            if order.start < first:  # backward pass starts from the first evidence frame's mask
                prev_box = mask_box(masks[first]) or boxes[first]
            for t in order:
                if t in boxes:
                    window = _expand(boxes[t], 1.0, h, w)
                elif prev_box is not None:
                    bw, bh = prev_box[2] - prev_box[0], prev_box[3] - prev_box[1]
                    moved = [prev_box[0] + velocity[0], prev_box[1] + velocity[1], prev_box[2] + velocity[0], prev_box[3] + velocity[1]]
                    window = _expand(moved, self.margin + 0.5 * max(bw, bh), h, w)
                else:
                    continue
                x0, y0, x1, y1 = window
                if x1 <= x0 or y1 <= y0:
                    continue
                d = np.sqrt((((lab[t, y0:y1, x0:x1] - mean) / scale) ** 2).mean(-1))
                colour_match = d < self.colour_sigma
                cand = fg[t, y0:y1, x0:x1] & colour_match
                if prev_area and cand.sum() < 0.5 * prev_area:
                    # A subject at rest melts into the median background: follow its colour alone,
                    # unless that colour also covers the surroundings (then it is no cue).
                    by_colour = _component_near_centre(clean_mask(colour_match))
                    if 0.5 * prev_area <= by_colour.sum() <= 1.5 * prev_area:
                        cand = by_colour
                cand = clean_mask(cand) if cand.sum() > 16 else cand
                cand = _component_near_centre(cand)
                if not cand.any():
                    continue  # lost here; keep searching from the last box
                masks[t, y0:y1, x0:x1] = cand
                dists[t, y0:y1, x0:x1] = np.where(cand, d, np.inf)
                prev_area = int(cand.sum())
                box = mask_box(masks[t])
                if prev_box is not None and box is not None:
                    # Shift per step in the direction of this pass (negative time for the backward pass).
                    velocity = np.array([(box[0] + box[2] - prev_box[0] - prev_box[2]) / 2, (box[1] + box[3] - prev_box[1] - prev_box[3]) / 2])
                prev_box = box
        return masks, dists


def _component_near_centre(mask: np.ndarray) -> np.ndarray:
    """Keep the largest connected component, preferring ones that cover the window centre."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 2:
        return mask
    centre_label = labels[labels.shape[0] // 2, labels.shape[1] // 2]
    if centre_label > 0 and stats[centre_label, cv2.CC_STAT_AREA] >= 0.5 * stats[1:, cv2.CC_STAT_AREA].max():
        return labels == centre_label
    return labels == (1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA])))


@SEGMENTERS.register("sam2_video")
class Sam2VideoSegmenter(Segmenter):
    """SAM2 video segmentation through transformers (`Sam2VideoModel`).

    Each subject is prompted with its first evidence box; masks propagate forward and
    backward over the clip. When `Sam2VideoProcessor` can load (it needs torchvision)
    it prepares the frames and prompts; otherwise an equivalent built-in path resizes to
    the model's ``image_size``, normalises with the ImageNet statistics and feeds the
    inference session directly, so torchvision is never required.

    Args:
        model: a local folder or Hub id (e.g. "facebook/sam2.1-hiera-tiny").
        device, dtype: where and in what precision to run ("cpu", "cuda"; "float32", "bfloat16", ...).
        mask_threshold: logit threshold of the binarised masks.
        use_processor: "auto" (processor when importable), True or False.
    """

    name = "sam2_video"

    IMAGENET_MEAN = (0.485, 0.456, 0.406)
    IMAGENET_STD = (0.229, 0.224, 0.225)

    def __init__(self, model: str, device: str = "cpu", dtype: str = "float32", mask_threshold: float = 0.0, use_processor: str | bool = "auto"):
        import torch
        from transformers import Sam2VideoModel

        self.device = device
        self.dtype = _torch_dtype(dtype)
        self.mask_threshold = mask_threshold
        self.model = Sam2VideoModel.from_pretrained(model, dtype=self.dtype).to(device).eval()
        self.image_size = int(self.model.config.image_size if isinstance(self.model.config.image_size, int) else self.model.config.image_size[0])
        self.processor = None
        if use_processor:
            try:
                from transformers import Sam2VideoProcessor

                self.processor = Sam2VideoProcessor.from_pretrained(model)
            except (ImportError, OSError) as exc:
                if use_processor is True:
                    raise MMPhysInputError(f"Sam2VideoProcessor cannot load from {model}: {exc}") from exc
        self._torch = torch

    def _session(self, frames: np.ndarray):
        torch = self._torch
        from transformers.models.sam2_video.modeling_sam2_video import Sam2VideoInferenceSession

        f, h, w, _ = frames.shape
        if self.processor is not None:
            return self.processor.init_video_session(video=list(frames), inference_device=self.device, dtype=self.dtype)
        video = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0
        video = torch.nn.functional.interpolate(video, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        mean = torch.tensor(self.IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(self.IMAGENET_STD).view(1, 3, 1, 1)
        video = ((video - mean) / std).to(self.device, self.dtype)
        return Sam2VideoInferenceSession(
            video=video, video_height=h, video_width=w, inference_device=self.device,
            video_storage_device=self.device, inference_state_device=self.device, dtype=self.dtype,
        )

    def _add_boxes(self, session, frame_idx: int, obj_ids: list[int], boxes: list[list[float]], h: int, w: int) -> None:
        torch = self._torch
        if self.processor is not None:
            self.processor.add_inputs_to_inference_session(
                inference_session=session, frame_idx=frame_idx, obj_ids=obj_ids, input_boxes=[boxes], original_size=(h, w)
            )
            return
        sx, sy = self.image_size / w, self.image_size / h
        for obj_id, (x0, y0, x1, y1) in zip(obj_ids, boxes):
            # A SAM box prompt is two corner points with labels 2 (top-left) and 3 (bottom-right).
            coords = torch.tensor([[[[x0 * sx, y0 * sy], [x1 * sx, y1 * sy]]]], dtype=torch.float32)
            labels = torch.tensor([[[2, 3]]], dtype=torch.int32)
            obj_idx = session.obj_id_to_idx(obj_id)
            session.add_point_inputs(obj_idx, frame_idx, {"point_coords": coords, "point_labels": labels})
            session.remove_mask_inputs(obj_idx, frame_idx)
        session.obj_with_new_inputs = obj_ids

    def _masks(self, pred_masks, h: int, w: int) -> np.ndarray:
        """pred_masks ``[num_obj, 1, h', w']`` logits -> bool ``[num_obj, H, W]``."""
        torch = self._torch
        logits = torch.nn.functional.interpolate(pred_masks.float(), size=(h, w), mode="bilinear", align_corners=False)
        return (logits[:, 0] > self.mask_threshold).cpu().numpy()

    def segment(self, frames: np.ndarray, localization: dict[str, Any]) -> np.ndarray:
        torch = self._torch
        f, h, w, _ = frames.shape
        instances = np.zeros((f, h, w), np.int32)
        subjects = localization["subjects"]
        if not subjects:
            return instances
        session = self._session(frames)
        # Prompt every subject on its first evidence frame, one call per prompted frame.
        by_frame: dict[int, list[tuple[int, list[float]]]] = {}
        for s in subjects:
            ev = min(s["evidence"], key=lambda e: e["frame"])
            by_frame.setdefault(int(ev["frame"]), []).append((int(s["id"]), ev["box"]))
        with torch.inference_mode():
            for t, items in sorted(by_frame.items()):
                self._add_boxes(session, t, [i for i, _ in items], [b for _, b in items], h, w)
                self.model(inference_session=session, frame_idx=t)
            start = min(by_frame)
            for reverse in (False, True):
                if reverse and start == 0:
                    break
                for out in self.model.propagate_in_video_iterator(inference_session=session, start_frame_idx=start, reverse=reverse):
                    masks = self._masks(out.pred_masks, h, w)
                    frame = instances[out.frame_idx]
                    for k, obj_id in enumerate(session.obj_ids):
                        frame[masks[k] & (frame == 0)] = int(obj_id)
        return instances


def _torch_dtype(name: str):
    import torch

    dtype = getattr(torch, str(name).replace("torch.", ""), None)
    if not isinstance(dtype, torch.dtype):
        raise MMPhysInputError(f"unknown dtype {name!r}; expected e.g. 'float32', 'float16', 'bfloat16'")
    return dtype
