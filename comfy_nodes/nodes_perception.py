"""Perception nodes: extract pseudo-RGB cues from an IMAGE batch, decode pseudo-RGB for people.

Extraction runs the curation package's registered backends (classical OpenCV ones by
default, transformers models by name) and encodes the result with the perception codec
of the chosen cue. Decoding turns a pseudo-RGB video back into cue arrays and renders
them as ComfyUI IMAGE/MASK values.
"""

from __future__ import annotations

import importlib
import json
import logging
import math
from typing import Any

import numpy as np

from mmphys_diffusers.errors import MMPhysInputError

from . import comfy_compat
from .convert import PERCEPTION_TYPE, PerceptionPayload, frames_to_image, image_to_frames, image_to_pseudo_rgb, pseudo_rgb_to_image, to_mask

logger = logging.getLogger(__name__)
CATEGORY = "MMPhysVideo/perception"
AUTO_CUE = "auto"

# Which curation stage produces each canonical cue array.
_STAGE_OF_ARRAY = {
    "instances": "segment",
    "depth": "depth",
    "xyz": "depth",
    "tracks": "tracks",
    "visibility": "tracks",
    "flow": "tracks",
}


def stages_for(needed: tuple[str, ...]) -> set[str]:
    """Curation stages that produce the `needed` cue arrays; depth also runs segmentation,
    because depth backends use the instances (objects stand on the floor)."""
    unknown = [name for name in needed if name not in _STAGE_OF_ARRAY]
    if unknown:
        raise MMPhysInputError(f"no extractor produces cue array(s) {unknown}; extractable: {sorted(_STAGE_OF_ARRAY)}")
    stages = {_STAGE_OF_ARRAY[name] for name in needed}
    return stages | ({"segment"} if "depth" in stages else set())


def _cues() -> list[str]:
    from mmphys_diffusers.perception import available_cues

    return available_cues()


def _registries():
    """The curation registries, with every importable backend registered."""
    for module in ("mmphys_diffusers.curation.extract", "mmphys_diffusers.curation.localize"):
        try:
            importlib.import_module(module)
        except ImportError as exc:  # a broken optional backend must not hide the others
            logger.warning("mmphys: cannot import %s: %s", module, exc)
    from mmphys_diffusers.curation import registry

    return {"localize": registry.LOCALIZERS, "segment": registry.SEGMENTERS, "depth": registry.DEPTH_ESTIMATORS, "tracks": registry.TRACKERS}


def _choices(names: list[str], default: str) -> tuple[list[str], dict]:
    names = names or [default]
    return names, {"default": default if default in names else names[0]}


def _parse_options(backend_options: str) -> dict[str, dict[str, Any]]:
    text = (backend_options or "").strip() or "{}"
    try:
        options = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MMPhysInputError(f"backend_options is not valid JSON ({exc}); expected e.g. {{\"depth\": {{\"model\": \"path/or/hub-id\"}}}}") from exc
    stages = ("localize", "segment", "depth", "tracks")
    if not isinstance(options, dict) or any(k not in stages or not isinstance(v, dict) for k, v in options.items()):
        raise MMPhysInputError(f"backend_options must be a JSON object mapping some of {list(stages)} to option objects, got {text!r}")
    return options


def _intrinsics(height: int, width: int, fov_degrees: float) -> dict[str, float]:
    if not 1.0 <= fov_degrees <= 179.0:
        raise MMPhysInputError(f"fov_degrees must be in [1, 179], got {fov_degrees}")
    focal = 0.5 * width / math.tan(math.radians(fov_degrees) / 2.0)
    return {"fx": focal, "fy": focal, "cx": (width - 1) / 2.0, "cy": (height - 1) / 2.0}


def extract_cue_arrays(
    frames: np.ndarray,
    needed: tuple[str, ...],
    backends: dict[str, str],
    options: dict[str, dict[str, Any]],
    fov_degrees: float = 60.0,
    progress: comfy_compat.NodeProgress | None = None,
) -> dict[str, np.ndarray]:
    """Run just the curation stages that produce the `needed` cue arrays.

    Args:
        frames: uint8 ``[F,H,W,3]``.
        needed: canonical array names (a codec's ``required_arrays``).
        backends: stage ("localize", "segment", "depth", "tracks") -> registered backend name.
        options: stage -> backend constructor options.
    """
    stages = stages_for(needed)
    registries = _registries()
    arrays: dict[str, np.ndarray] = {}
    instances = None
    if "segment" in stages:
        localization = registries["localize"].build(backends["localize"], **options.get("localize", {})).localize(frames)
        comfy_compat.throw_if_interrupted()
        instances = registries["segment"].build(backends["segment"], **options.get("segment", {})).segment(frames, localization)
        arrays["instances"] = np.asarray(instances, dtype=np.int64)
        if progress:
            progress.update(1)
    if "depth" in stages:
        comfy_compat.throw_if_interrupted()
        depth = registries["depth"].build(backends["depth"], **options.get("depth", {})).estimate(frames, instances)
        arrays["depth"] = np.asarray(depth, dtype=np.float32)
        if "xyz" in needed:
            from mmphys_diffusers.perception.xyz import depth_to_xyz

            arrays["xyz"] = depth_to_xyz(arrays["depth"], **_intrinsics(frames.shape[1], frames.shape[2], fov_degrees))
        if progress:
            progress.update(1)
    if "tracks" in stages:
        comfy_compat.throw_if_interrupted()
        arrays.update(registries["tracks"].build(backends["tracks"], **options.get("tracks", {})).track(frames))
        if progress:
            progress.update(1)
    return {name: arrays[name] for name in needed}


class MMPhysExtractPseudoRGB:
    """Extract a perceptual cue from a video (IMAGE batch) and encode it as a pseudo-RGB video."""

    @classmethod
    def INPUT_TYPES(cls):
        regs = _registries()
        cues = _cues()
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The RGB video, one image per frame."}),
                "cue": (cues, {"default": "depth" if "depth" in cues else cues[0]}),
                "localizer": _choices(regs["localize"].names(), "motion"),
                "segmenter": _choices(regs["segment"].names(), "box_propagate"),
                "depth_backend": _choices(regs["depth"].names(), "ground_plane"),
                "tracker": _choices(regs["tracks"].names(), "farneback"),
                "fov_degrees": ("FLOAT", {"default": 60.0, "min": 1.0, "max": 179.0, "step": 1.0, "tooltip": "Horizontal field of view used to lift depth to XYZ point maps."}),
                "backend_options": ("STRING", {"multiline": True, "default": "{}", "tooltip": "JSON: stage -> backend options, e.g. {\"depth\": {\"model\": \"depth-anything/Depth-Anything-V2-Small-hf\"}}."}),
            }
        }

    RETURN_TYPES = ("IMAGE", PERCEPTION_TYPE)
    RETURN_NAMES = ("pseudo_rgb", "perception")
    FUNCTION = "extract"
    CATEGORY = CATEGORY
    DESCRIPTION = "Runs the curation extractors needed by a cue (classical CPU backends by default) and encodes the cue as pseudo-RGB."

    def extract(self, images, cue, localizer, segmenter, depth_backend, tracker, fov_degrees=60.0, backend_options="{}"):
        from mmphys_diffusers.perception import get_codec

        codec = get_codec(cue)
        frames = image_to_frames(images, "images")
        if frames.shape[0] < 2:
            raise MMPhysInputError(f"`images` holds {frames.shape[0]} frame; cue extraction needs a video of at least 2 frames")
        frames_u8 = (frames * 255.0 + 0.5).astype(np.uint8)
        backends = {"localize": localizer, "segment": segmenter, "depth": depth_backend, "tracks": tracker}
        needed = tuple(codec.required_arrays)
        with comfy_compat.NodeProgress(len(stages_for(needed)) + 1, f"mmphys {cue}") as progress:
            arrays = extract_cue_arrays(frames_u8, needed, backends, _parse_options(backend_options), fov_degrees, progress)
            video, meta = codec.encode(**arrays)
            progress.update(1)
        payload = PerceptionPayload(cue, np.asarray(video, dtype=np.float32), dict(meta), arrays)
        return (pseudo_rgb_to_image(payload.video), payload)


def _normalised_disparity(depth: np.ndarray) -> np.ndarray:
    """Depth ``[F,H,W]`` -> disparity scaled to [0, 1] over the whole clip (near = 1), invalid pixels 0."""
    depth = np.asarray(depth, dtype=np.float32)
    valid = np.isfinite(depth) & (depth > 0)
    if not valid.any():
        return np.zeros_like(depth)
    disparity = np.where(valid, 1.0 / np.where(valid, depth, 1.0), 0.0)
    lo, hi = float(disparity[valid].min()), float(disparity[valid].max())
    scaled = (disparity - lo) / (hi - lo) if hi > lo else np.ones_like(disparity)
    return np.where(valid, scaled, 0.0).astype(np.float32)


class MMPhysDecodePerception:
    """Decode a pseudo-RGB video into a visualisation, an instance MASK and a depth map."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "cue": ([AUTO_CUE, *_cues()], {"default": AUTO_CUE, "tooltip": "'auto' takes the cue from the perception input; pick one to decode a pseudo_rgb IMAGE."}),
                "instance_id": ("INT", {"default": 0, "min": 0, "max": 4096, "tooltip": "0: mask of every instance; k: mask of instance k."}),
            },
            "optional": {
                "perception": (PERCEPTION_TYPE,),
                "pseudo_rgb": ("IMAGE", {"tooltip": "A pseudo-RGB video decoded with codec defaults (used when perception is not connected)."}),
            },
        }

    RETURN_TYPES = ("IMAGE", "MASK", "IMAGE", "MASK")
    RETURN_NAMES = ("visualization", "instance_mask", "depth_image", "depth_mask")
    FUNCTION = "decode"
    CATEGORY = CATEGORY
    DESCRIPTION = "Decodes a pseudo-RGB video into a visualisation, an instance mask and a normalised depth map."

    def decode(self, cue=AUTO_CUE, instance_id=0, perception=None, pseudo_rgb=None):
        from mmphys_diffusers.perception import get_codec
        from mmphys_diffusers.perception.visualize import decode_to_visualization

        if perception is not None:
            if not isinstance(perception, PerceptionPayload):
                raise MMPhysInputError(f"`perception` must come from an MMPhys extract or teacher node, got {type(perception).__name__}")
            if cue not in (AUTO_CUE, perception.cue):
                raise MMPhysInputError(f"cue is {cue!r} but the perception input holds {perception.cue!r}; set cue to 'auto'")
            payload = perception
        elif pseudo_rgb is not None:
            if cue == AUTO_CUE:
                raise MMPhysInputError("cue 'auto' needs the perception input; to decode a pseudo_rgb IMAGE pick its cue")
            payload = PerceptionPayload(cue, image_to_pseudo_rgb(pseudo_rgb), {}, None)
        else:
            raise MMPhysInputError("connect either `perception` (from an MMPhys extract/teacher node) or `pseudo_rgb` (an IMAGE batch)")
        arrays = payload.arrays if payload.arrays is not None else get_codec(payload.cue).decode(payload.video, payload.meta or None)
        visualization = decode_to_visualization(payload.cue, payload.video, payload.meta or None)

        f, _, h, w = payload.video.shape
        if "instances" in arrays:
            ids = np.asarray(arrays["instances"])
            instance_mask = (ids > 0) if instance_id == 0 else (ids == instance_id)
        else:
            instance_mask = np.zeros((f, h, w), bool)
        if "depth" in arrays:
            depth = _normalised_disparity(arrays["depth"])
        elif "xyz" in arrays:
            depth = _normalised_disparity(np.asarray(arrays["xyz"])[..., 2])
        else:
            depth = np.zeros((f, h, w), np.float32)
        depth_image = np.repeat(depth[..., None], 3, axis=-1)
        return (frames_to_image(visualization), to_mask(instance_mask.astype(np.float32)), frames_to_image(depth_image), to_mask(depth))
