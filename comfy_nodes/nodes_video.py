"""Video file nodes: read a video into an IMAGE batch, write an IMAGE batch to an mp4."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from mmphys_diffusers.errors import MMPhysInputError
from mmphys_diffusers.utils.video_io import DEFAULT_CRF, read_video, write_video

from . import comfy_compat
from .convert import frames_to_image, image_to_frames

CATEGORY = "MMPhysVideo/video"


def _resolve_input_path(video_path: str) -> Path:
    """Absolute paths as given; relative ones against ComfyUI's input folder (else the working directory)."""
    if not video_path or not str(video_path).strip():
        raise MMPhysInputError("video_path is empty; expected a video file (mp4, webm, mov, mkv, avi, gif) or a folder of frames")
    path = Path(os.path.expanduser(str(video_path).strip()))
    if not path.is_absolute():
        fp = comfy_compat._optional_module("folder_paths")
        if fp is not None and hasattr(fp, "get_input_directory"):
            path = Path(fp.get_input_directory()) / path
    return path


class MMPhysLoadVideo:
    """Read a video file (or a folder of numbered frames) into an IMAGE batch, one image per frame."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "video_path": ("STRING", {"default": "input.mp4", "tooltip": "Video file or frame folder; relative paths are looked up in ComfyUI's input folder."}),
                "max_frames": ("INT", {"default": 0, "min": 0, "max": 100000, "tooltip": "Frames to read at most (0 = all)."}),
            }
        }

    RETURN_TYPES = ("IMAGE", "FLOAT", "INT")
    RETURN_NAMES = ("images", "fps", "frame_count")
    FUNCTION = "load"
    CATEGORY = CATEGORY
    DESCRIPTION = "Decodes a video with PyAV (mmphys_diffusers.utils.video_io.read_video)."

    def load(self, video_path: str, max_frames: int = 0):
        frames, fps = read_video(_resolve_input_path(video_path), max_frames=int(max_frames) or None)
        return (frames_to_image(frames), float(fps), int(frames.shape[0]))

    @classmethod
    def IS_CHANGED(cls, video_path: str, max_frames: int = 0):
        # Re-run when the file changes on disk, not only when the widget text does.
        try:
            return f"{_resolve_input_path(video_path).stat().st_mtime_ns}:{max_frames}"
        except (OSError, MMPhysInputError):
            return float("nan")  # never equal to itself: always re-run (and report the error)


class MMPhysSaveVideo:
    """Encode an IMAGE batch as an H.264 mp4 in ComfyUI's output folder."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The frames of the video."}),
                "filename_prefix": ("STRING", {"default": "mmphys/video"}),
                "fps": ("FLOAT", {"default": 8.0, "min": 0.1, "max": 240.0, "step": 0.1}),
                "crf": ("INT", {"default": DEFAULT_CRF, "min": 0, "max": 51, "tooltip": "H.264 quality: lower is better and bigger."}),
            }
        }

    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("path",)
    FUNCTION = "save"
    OUTPUT_NODE = True
    CATEGORY = CATEGORY
    DESCRIPTION = "Writes an mp4 with PyAV (mmphys_diffusers.utils.video_io.write_video)."

    def save(self, images: torch.Tensor, filename_prefix: str = "mmphys/video", fps: float = 8.0, crf: int = DEFAULT_CRF):
        frames = image_to_frames(images, "images")
        if not fps > 0:
            raise MMPhysInputError(f"fps must be > 0, got {fps}")
        path, filename, subfolder = comfy_compat.save_path(filename_prefix, "mp4", frames.shape[2], frames.shape[1])
        write_video(path, frames, fps=float(fps), crf=int(crf))
        ui = {"images": [{"filename": filename, "subfolder": subfolder, "type": "output"}], "animated": (True,)}
        return {"ui": ui, "result": (str(path),)}
