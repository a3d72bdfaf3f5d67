"""Pipeline nodes: load a student/teacher pipeline, apply a LoRA, generate videos.

An ``MMPHYS_PIPELINE`` link carries an `MMPhysPipelineHandle`: the diffusers pipeline
plus the LoRAs (adapter name, strength) that the generating node must activate.
LoRA nodes never change the pipeline seen by other branches of the graph: they load
the weights once under their own adapter name and return a new handle listing it, and
each generating node switches on exactly the adapters of its own handle.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmphys_diffusers.errors import MMPhysInputError

from . import comfy_compat
from .convert import PERCEPTION_TYPE, PIPELINE_TYPE, PerceptionPayload, frames_to_image, image_to_frames, pseudo_rgb_to_image

CATEGORY = "MMPhysVideo"
MODEL_KINDS = ("student", "teacher")
DTYPES = {"auto": None, "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DEVICES = ("auto", "cpu", "cuda", "mps")
TINY_PREFIX = "tiny-random:"
BUNDLED = "bundled"
# Node mode name -> MMPhysVideoTeacherPipeline `mode`.
TEACHER_MODES = {"joint": "joint", "perception_to_rgb": "control", "rgb_to_perception": "readout"}
MAX_SEED = 0xFFFFFFFFFFFFFFFF


@dataclass(frozen=True)
class MMPhysPipelineHandle:
    """What flows along an ``MMPHYS_PIPELINE`` link.

    Attributes:
        pipeline: an `MMPhysVideoPipeline` (student) or `MMPhysVideoTeacherPipeline` (teacher).
        model: "student" or "teacher".
        source: where it came from ("bundled", "tiny-random:tiny-wan", a path or a Hub id).
        device, dtype: where and how the weights live.
        loras: (adapter name, strength) pairs to activate when generating.
    """

    pipeline: Any = field(repr=False)  # ComfyUI prints inputs in error reports: keep them short
    model: str
    source: str
    device: torch.device
    dtype: torch.dtype
    loras: tuple[tuple[str, float], ...] = ()

    def with_lora(self, adapter_name: str, strength: float) -> "MMPhysPipelineHandle":
        kept = tuple((n, s) for n, s in self.loras if n != adapter_name)
        return dataclasses.replace(self, loras=kept + ((adapter_name, float(strength)),))


# ----------------------------------------------------------------------------- loading


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return comfy_compat.get_torch_device()
    if device == "cuda" and not torch.cuda.is_available():
        raise MMPhysInputError("device 'cuda' was requested but torch sees no CUDA GPU; choose 'cpu' or 'auto'")
    if device == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise MMPhysInputError("device 'mps' was requested but MPS is not available; choose 'cpu' or 'auto'")
    if device not in DEVICES:
        raise MMPhysInputError(f"unknown device {device!r}; expected one of {list(DEVICES)}")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype not in DTYPES:
        raise MMPhysInputError(f"unknown dtype {dtype!r}; expected one of {list(DTYPES)}")
    if DTYPES[dtype] is not None:
        return DTYPES[dtype]
    # Half precision is slow or unsupported for these models on CPU.
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def bundled_model_path(model: str) -> Path:
    """Folder of the model shipped inside mmphys_diffusers (a clear error names the recipe when absent)."""
    from mmphys_diffusers.assets import bundled_model_path as library_bundled_model_path

    return library_bundled_model_path(model)


def _dtype_keyword() -> str:
    """`from_pretrained`'s dtype argument: recent diffusers renamed `torch_dtype` to `dtype` (and warn on the old name)."""
    from diffusers.utils import deprecation_utils

    return "dtype" if hasattr(deprecation_utils, "_TORCH_DTYPE_DEPRECATION_MESSAGE") else "torch_dtype"


def load_pipeline(source: str, model: str, dtype: str = "auto", device: str = "auto") -> MMPhysPipelineHandle:
    """Load a student or teacher pipeline from "bundled", "tiny-random:<tiny-wan|tiny-cogvideox>", a folder or a Hub id."""
    from mmphys_diffusers.backbones import TINY_CONFIG_NAMES, get_backbone_adapter, tiny_components
    import mmphys_diffusers.pipelines as pipelines

    source = (source or "").strip()
    if not source:
        raise MMPhysInputError(f"source is empty; expected '{BUNDLED}', '{TINY_PREFIX}tiny-wan', a model folder or a Hub id")
    if model not in MODEL_KINDS:
        raise MMPhysInputError(f"unknown model {model!r}; expected one of {list(MODEL_KINDS)}")
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    # The teacher pipeline (and its models) is imported only when asked for.
    pipeline_class = pipelines.MMPhysVideoTeacherPipeline if model == "teacher" else pipelines.MMPhysVideoPipeline

    if source.startswith(TINY_PREFIX):
        name = source[len(TINY_PREFIX) :]
        if name not in TINY_CONFIG_NAMES:
            raise MMPhysInputError(f"unknown tiny config {name!r} in source {source!r}; expected one of {[TINY_PREFIX + n for n in TINY_CONFIG_NAMES]}")
        components = tiny_components(name)
        if model == "teacher":
            components["transformer"] = get_backbone_adapter(name).build_teacher(components["transformer"])
        pipe = pipeline_class(**components)
        if torch_dtype != torch.float32:  # tiny components are built in float32
            pipe = pipe.to(dtype=torch_dtype)
    else:
        location = bundled_model_path(model) if source == BUNDLED else source
        # A bare name may be a folder under ComfyUI/models/diffusers.
        location = comfy_compat.find_in_model_folders("diffusers", str(location)) or location
        looks_local = os.path.isabs(location) or str(location).startswith((".", "~")) or os.path.exists(location)
        if looks_local:
            location = Path(os.path.expanduser(str(location)))
            if not location.exists():
                raise MMPhysInputError(f"model folder not found: {location}")
            if not (location / "model_index.json").is_file():
                raise MMPhysInputError(f"{location} is not a diffusers pipeline folder (model_index.json is missing)")
        try:
            pipe = pipeline_class.from_pretrained(str(location), **{_dtype_keyword(): torch_dtype})
        except MMPhysInputError:
            raise
        except Exception as exc:  # Hub/network/format errors come in many types
            raise MMPhysInputError(f"cannot load a {model} pipeline from {str(location)!r}: {type(exc).__name__}: {exc}") from exc
    pipe = pipe.to(device=torch_device)
    pipe.set_progress_bar_config(disable=True)  # the node shows its own progress
    return MMPhysPipelineHandle(pipe, model, source, torch_device, torch_dtype)


def _loaded_adapters(pipe) -> set[str]:
    if not hasattr(pipe, "get_list_adapters"):
        return set()
    return {name for names in pipe.get_list_adapters().values() for name in names}


def apply_lora(handle: MMPhysPipelineHandle, lora_path: str, strength: float) -> MMPhysPipelineHandle:
    """Load a LoRA file or folder into the handle's pipeline (once) and return a handle that activates it."""
    pipe = handle.pipeline
    if not hasattr(pipe, "load_lora_weights"):
        raise MMPhysInputError(f"the {handle.model} pipeline ({type(pipe).__name__}) does not support LoRA loading")
    if not lora_path or not str(lora_path).strip():
        raise MMPhysInputError("lora_path is empty; expected a .safetensors LoRA file or a folder holding pytorch_lora_weights.safetensors")
    path = Path(os.path.expanduser(str(lora_path).strip()))
    if not path.exists():  # a bare name may be a file under ComfyUI/models/loras
        path = comfy_compat.find_in_model_folders("loras", str(path)) or path
    if not path.exists():
        raise MMPhysInputError(f"LoRA not found: {path}")
    stat = path.stat()
    adapter_name = "mmphys_" + hashlib.sha1(f"{path.resolve()}:{stat.st_mtime_ns}:{stat.st_size}".encode()).hexdigest()[:12]
    if adapter_name not in _loaded_adapters(pipe):
        try:
            pipe.load_lora_weights(str(path), adapter_name=adapter_name)
        except Exception as exc:
            raise MMPhysInputError(
                f"LoRA {path} does not fit this {handle.model} pipeline ({type(pipe.transformer).__name__}): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if adapter_name not in _loaded_adapters(pipe):
            raise MMPhysInputError(f"LoRA {path} matched no module of this {handle.model} pipeline; is it a LoRA for another backbone?")
    return handle.with_lora(adapter_name, strength)


def activate_loras(handle: MMPhysPipelineHandle) -> None:
    """Switch on exactly the handle's LoRAs (other branches may have loaded more into the same pipeline)."""
    pipe = handle.pipeline
    if handle.loras:
        pipe.enable_lora()
        pipe.set_adapters([n for n, _ in handle.loras], adapter_weights=[s for _, s in handle.loras])
    elif _loaded_adapters(pipe):
        pipe.disable_lora()


# ----------------------------------------------------------------------------- generation


def _check_prompt(prompt: str) -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise MMPhysInputError("prompt is empty; describe the video to generate")
    return prompt


def _check_handle(pipeline: Any, model: str) -> MMPhysPipelineHandle:
    if not isinstance(pipeline, MMPhysPipelineHandle):
        raise MMPhysInputError(f"`pipeline` must come from an 'MMPhys Load Pipeline' node, got {type(pipeline).__name__}")
    if pipeline.model != model:
        raise MMPhysInputError(f"this node needs a {model} pipeline but got a {pipeline.model} one; set model='{model}' on the loader")
    return pipeline


def _generator(seed: int) -> torch.Generator:
    # A CPU generator gives the same noise on every device.
    return torch.Generator("cpu").manual_seed(int(seed) % (MAX_SEED + 1))


def _video_inputs(num_frames: int, height: int, width: int, steps: int, guidance_scale: float) -> None:
    for name, value in (("num_frames", num_frames), ("height", height), ("width", width), ("steps", steps)):
        if int(value) < 1:
            raise MMPhysInputError(f"{name} must be >= 1, got {value}")
    if not np.isfinite(guidance_scale) or guidance_scale < 0:
        raise MMPhysInputError(f"guidance_scale must be a finite number >= 0, got {guidance_scale}")


def conditioning_video(images: Any, num_frames: int, height: int, width: int, resize_mode: str = "bilinear") -> torch.Tensor:
    """IMAGE batch -> the teacher pipeline's clean conditioning video ``[F,3,H,W]`` in [0, 1].

    Keeps the first `num_frames` frames and resizes them to `height` x `width`
    ("nearest" for label-like pseudo-RGB such as semantics, else "bilinear").
    """
    frames = torch.from_numpy(image_to_frames(images, "condition_images"))  # [F,H,W,3]
    if frames.shape[0] < num_frames:
        raise MMPhysInputError(f"condition_images holds {frames.shape[0]} frames but num_frames is {num_frames}; lower num_frames or load more frames")
    video = frames[:num_frames].permute(0, 3, 1, 2)  # [F,3,H,W]
    if tuple(video.shape[-2:]) != (height, width):
        if resize_mode == "nearest":
            video = torch.nn.functional.interpolate(video, size=(height, width), mode="nearest-exact")
        else:
            video = torch.nn.functional.interpolate(video, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    return video.clamp(0.0, 1.0).contiguous()


_VIDEO_WIDGETS = {
    "num_frames": ("INT", {"default": 17, "min": 1, "max": 1025, "step": 4, "tooltip": "Frames to generate (4k+1 for CogVideoX and Wan)."}),
    "height": ("INT", {"default": 128, "min": 16, "max": 4096, "step": 16}),
    "width": ("INT", {"default": 128, "min": 16, "max": 4096, "step": 16}),
    "steps": ("INT", {"default": 20, "min": 1, "max": 1000}),
    "guidance_scale": ("FLOAT", {"default": 5.0, "min": 0.0, "max": 30.0, "step": 0.1, "tooltip": "Classifier-free guidance; off at 1.0 or below."}),
    "seed": ("INT", {"default": 0, "min": 0, "max": MAX_SEED, "control_after_generate": True}),
}


class MMPhysLoadPipeline:
    """Load the MMPhysVideo student (single stream) or teacher (RGB + perception) pipeline."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "source": ("STRING", {"default": BUNDLED, "tooltip": f"'{BUNDLED}' (the model shipped with mmphys_diffusers), '{TINY_PREFIX}tiny-wan' / '{TINY_PREFIX}tiny-cogvideox' (random tiny weights, for testing), a diffusers folder (bare names are looked up in ComfyUI/models/diffusers) or a Hub id."}),
                "model": (list(MODEL_KINDS), {"default": "student"}),
                "dtype": (list(DTYPES), {"default": "auto"}),
                "device": (list(DEVICES), {"default": "auto"}),
            }
        }

    RETURN_TYPES = (PIPELINE_TYPE,)
    RETURN_NAMES = ("pipeline",)
    FUNCTION = "load"
    CATEGORY = f"{CATEGORY}/loaders"
    DESCRIPTION = "Loads an MMPhysVideo student (text-to-video) or teacher (RGB + perception) diffusers pipeline."

    def load(self, source: str, model: str, dtype: str = "auto", device: str = "auto"):
        return (load_pipeline(source, model, dtype, device),)


class MMPhysLoadLoRA:
    """Apply a LoRA (diffusers/peft format, e.g. pytorch_lora_weights.safetensors) to a pipeline."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "pipeline": (PIPELINE_TYPE,),
                "lora_path": ("STRING", {"default": "", "tooltip": "A LoRA .safetensors file or a folder holding pytorch_lora_weights.safetensors; bare names are looked up in ComfyUI/models/loras."}),
                "strength": ("FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0, "step": 0.05}),
            }
        }

    RETURN_TYPES = (PIPELINE_TYPE,)
    RETURN_NAMES = ("pipeline",)
    FUNCTION = "apply"
    CATEGORY = f"{CATEGORY}/loaders"
    DESCRIPTION = "Applies a diffusers/peft LoRA to the pipeline for the nodes downstream of this one only."

    def apply(self, pipeline: MMPhysPipelineHandle, lora_path: str, strength: float = 1.0):
        if not isinstance(pipeline, MMPhysPipelineHandle):
            raise MMPhysInputError(f"`pipeline` must come from an 'MMPhys Load Pipeline' node, got {type(pipeline).__name__}")
        return (apply_lora(pipeline, lora_path, strength),)


class MMPhysStudentTextToVideo:
    """Text-to-video with the single-stream student."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "pipeline": (PIPELINE_TYPE,),
                "prompt": ("STRING", {"multiline": True, "default": "a red ball falls onto a table and bounces"}),
                "negative_prompt": ("STRING", {"multiline": True, "default": ""}),
                **_VIDEO_WIDGETS,
            }
        }

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("frames",)
    FUNCTION = "generate"
    CATEGORY = f"{CATEGORY}/sampling"
    DESCRIPTION = "Generates a video from text with the single-stream MMPhysVideo student."

    def generate(self, pipeline, prompt, negative_prompt, num_frames, height, width, steps, guidance_scale, seed):
        handle = _check_handle(pipeline, "student")
        _check_prompt(prompt)
        _video_inputs(num_frames, height, width, steps, guidance_scale)
        activate_loras(handle)
        with comfy_compat.NodeProgress(steps, "mmphys student") as progress:
            output = handle.pipeline(
                prompt=prompt,
                negative_prompt=negative_prompt or None,
                num_frames=int(num_frames),
                height=int(height),
                width=int(width),
                num_inference_steps=int(steps),
                guidance_scale=float(guidance_scale),
                generator=_generator(seed),
                output_type="np",
                callback_on_step_end=comfy_compat.step_end_callback(progress),
            )
        return (frames_to_image(output.frames[0]),)


class MMPhysTeacherGenerate:
    """The bidirectionally controlled teacher: joint RGB + perception, perception->RGB, or RGB->perception."""

    @classmethod
    def INPUT_TYPES(cls):
        from mmphys_diffusers.perception import available_cues

        cues = available_cues()
        return {
            "required": {
                "pipeline": (PIPELINE_TYPE,),
                "mode": (list(TEACHER_MODES), {"default": "joint", "tooltip": "joint: generate both; perception_to_rgb: RGB from a pseudo-RGB condition; rgb_to_perception: perception from an RGB condition."}),
                "prompt": ("STRING", {"multiline": True, "default": "a red ball falls onto a table and bounces"}),
                "negative_prompt": ("STRING", {"multiline": True, "default": ""}),
                "perception_cue": (cues, {"default": "unified" if "unified" in cues else cues[0], "tooltip": "The codec the teacher's perception stream was trained with."}),
                **_VIDEO_WIDGETS,
                "perception_guidance_scale": ("FLOAT", {"default": 5.0, "min": 0.0, "max": 30.0, "step": 0.1}),
            },
            "optional": {
                "condition_images": ("IMAGE", {"tooltip": "The clean conditioning video (pseudo-RGB for perception_to_rgb, RGB for rgb_to_perception): its first num_frames frames, resized to width x height."}),
            },
        }

    RETURN_TYPES = ("IMAGE", "IMAGE", PERCEPTION_TYPE)
    RETURN_NAMES = ("rgb", "perception_rgb", "perception")
    FUNCTION = "generate"
    CATEGORY = f"{CATEGORY}/sampling"
    DESCRIPTION = "Samples the two-stream teacher: RGB and a pseudo-RGB perception video together, or one from the other."

    def generate(
        self, pipeline, mode, prompt, negative_prompt, perception_cue, num_frames, height, width, steps,
        guidance_scale, seed, perception_guidance_scale, condition_images=None,
    ):
        handle = _check_handle(pipeline, "teacher")
        _check_prompt(prompt)
        if mode not in TEACHER_MODES:
            raise MMPhysInputError(f"unknown mode {mode!r}; expected one of {list(TEACHER_MODES)}")
        pipeline_mode = TEACHER_MODES[mode]
        condition = {}
        if pipeline_mode == "joint":
            if condition_images is not None:
                raise MMPhysInputError("mode 'joint' takes no condition_images; disconnect them or pick perception_to_rgb / rgb_to_perception")
        else:
            if condition_images is None:
                raise MMPhysInputError(f"mode {mode!r} needs condition_images (a {'pseudo-RGB' if pipeline_mode == 'control' else 'RGB'} IMAGE batch)")
            resize_mode = "bilinear"
            if pipeline_mode == "control":
                from mmphys_diffusers.perception import get_codec

                resize_mode = get_codec(perception_cue).resize_mode  # label-like cues must not be blended
            video = conditioning_video(condition_images, int(num_frames), int(height), int(width), resize_mode)
            condition["perception_video" if pipeline_mode == "control" else "video"] = video
        _video_inputs(num_frames, height, width, steps, guidance_scale)
        activate_loras(handle)
        with comfy_compat.NodeProgress(steps, "mmphys teacher") as progress:
            output = handle.pipeline(
                prompt=prompt,
                negative_prompt=negative_prompt or None,
                mode=pipeline_mode,
                perception_cue=perception_cue,
                num_frames=int(num_frames),
                height=int(height),
                width=int(width),
                num_inference_steps=int(steps),
                guidance_scale=float(guidance_scale),
                perception_guidance_scale=float(perception_guidance_scale),
                generator=_generator(seed),
                output_type="np",
                callback_on_step_end=comfy_compat.step_end_callback(progress),
                **condition,
            )
        rgb = np.asarray(output.frames[0], dtype=np.float32)
        perception_frames = np.asarray(output.perception_frames[0], dtype=np.float32)  # [F,H,W,3]
        arrays = output.perception[0] if getattr(output, "perception", None) else None
        payload = PerceptionPayload(perception_cue, np.ascontiguousarray(perception_frames.transpose(0, 3, 1, 2)), {}, arrays)
        return (frames_to_image(rgb), pseudo_rgb_to_image(payload.video), payload)
