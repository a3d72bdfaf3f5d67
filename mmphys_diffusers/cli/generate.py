"""`mmphys generate`: text -> video with the bundled MMPhysVideo-Tiny student (or teacher, or any model)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import MMPhysInputError

TEACHER_PIPELINE_CLASSES = ("MMPhysVideoTeacherPipeline",)
RECIPE_FILE = "mmphys_recipe.json"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "generate",
        help="generate a video from a prompt (bundled MMPhysVideo-Tiny student by default)",
        description="Generate a video from text, offline. Without --model the bundled MMPhysVideo-Tiny student is used "
        "(--teacher: the bundled teacher). The teacher generates RGB and its perception video jointly; both are written "
        "side by side: RGB | depth | instances | motion. Frames, size and steps default to what the model was trained "
        "with (its mmphys_recipe.json), else to the pipeline's defaults.",
    )
    p.add_argument("prompt", help="text prompt, e.g. \"a red ball falls and bounces on the floor\"")
    p.add_argument("-o", "--output", required=True, help="output .mp4 path")
    p.add_argument("--model", default=None, metavar="PATH_OR_HUB_ID", help="pipeline folder or Hub id (default: the bundled model)")
    p.add_argument("--teacher", action="store_true", help="use the teacher pipeline and write RGB + perception side by side")
    p.add_argument("--steps", type=int, default=None, help="denoising steps")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    p.add_argument("--frames", type=int, default=None, help="number of frames (4k+1)")
    p.add_argument("--size", default=None, metavar="HxW", help="frame size, 'H' or 'HxW' (multiples of 16)")
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale (1 = off)")
    p.add_argument("--fps", type=float, default=8.0, help="frame rate of the written video (default 8)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto: CUDA when present")
    p.set_defaults(func=run_generate)


def parse_size(text: str | None) -> tuple[int, int] | None:
    """'64' -> (64, 64); '48x80' -> (48, 80); None -> None."""
    if text is None:
        return None
    parts = str(text).lower().replace("*", "x").split("x")
    try:
        values = [int(v) for v in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or any(v < 16 or v % 16 for v in values):
        raise MMPhysInputError(f"--size {text!r}: expected 'H' or 'HxW' with positive multiples of 16 (e.g. 64 or 64x96)")
    return (values[0], values[-1])


def _pipeline_class_name(model: str) -> str | None:
    index = Path(model) / "model_index.json"
    if not index.is_file():
        return None
    name = json.loads(index.read_text()).get("_class_name")
    return name[-1] if isinstance(name, list) else name


def resolve_model(model: str | None, teacher: bool) -> tuple[str, bool]:
    """(model path or Hub id, is_teacher). Default: the bundled student / teacher."""
    if model is None:
        from ..assets import bundled_model_path

        return str(bundled_model_path("teacher" if teacher else "student")), teacher
    path = Path(model)
    if path.exists() and not (path / "model_index.json").is_file():
        raise MMPhysInputError(f"--model {model}: folder has no model_index.json (expected a diffusers pipeline folder)")
    # a teacher folder generates jointly even without --teacher
    return model, teacher or _pipeline_class_name(model) in TEACHER_PIPELINE_CLASSES


def recipe_info(model: str) -> dict[str, Any]:
    path = Path(model) / RECIPE_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def generate(
    prompt: str,
    output: str | Path,
    model: str | None = None,
    teacher: bool = False,
    steps: int | None = None,
    seed: int = 0,
    frames: int | None = None,
    size: tuple[int, int] | None = None,
    guidance: float | None = None,
    fps: float = 8.0,
    device: str = "auto",
) -> Path:
    """Generate one video and write it to `output`; returns the path.

    The student / any single-stream model writes ``[F, H, W, 3]``; the teacher writes RGB | perception
    visualisation (``decode_to_visualization``: disparity | instances | motion) side by side.
    """
    import numpy as np
    import torch

    from ..utils.video_io import to_uint8_frames, write_video

    if not prompt or not prompt.strip():
        raise MMPhysInputError("prompt is empty: expected a text description of the video")
    output = Path(output)
    if output.suffix.lower() != ".mp4":
        raise MMPhysInputError(f"-o {output}: expected an .mp4 path")
    model, teacher = resolve_model(model, teacher)
    info = recipe_info(model)
    defaults = info.get("generation_defaults", {})
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device == "cuda" and not torch.cuda.is_available():
        raise MMPhysInputError("--device cuda: no CUDA device is available")

    from ..pipelines import MMPhysVideoPipeline, MMPhysVideoTeacherPipeline

    pipe = (MMPhysVideoTeacherPipeline if teacher else MMPhysVideoPipeline).from_pretrained(model).to(device)
    from ..utils.prompts import prompt_warnings

    for warning in prompt_warnings(pipe.tokenizer, prompt, pipe.backbone.default_sequence_length(pipe.transformer, pipe.tokenizer)):
        print(f"mmphys generate: warning: {warning}", file=sys.stderr)
    height, width = size if size is not None else (defaults.get("height"), defaults.get("width"))
    kwargs: dict[str, Any] = {
        "num_frames": frames if frames is not None else defaults.get("num_frames"),
        "height": height,
        "width": width,
        "num_inference_steps": steps if steps is not None else defaults.get("num_inference_steps", 50),
        "generator": torch.Generator("cpu").manual_seed(int(seed)),
        "output_type": "np",
    }
    guidance = guidance if guidance is not None else defaults.get("guidance_scale")
    if guidance is not None:
        kwargs["guidance_scale"] = float(guidance)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if teacher:
        cue = info.get("perception_cue", "unified")
        meta = info.get("perception_codec_kwargs")
        out = pipe(prompt, mode="joint", perception_cue=cue, perception_meta=meta, **kwargs)
        from ..perception import decode_to_visualization

        rgb = to_uint8_frames(out.frames[0])
        perception = to_uint8_frames(out.perception_frames[0])
        panels = decode_to_visualization(cue, perception, meta)  # [F, H, k*W, 3]
        gap = np.full((rgb.shape[0], rgb.shape[1], 2, 3), 255, np.uint8)
        video = np.concatenate([rgb, gap, panels], axis=2)
    else:
        video = to_uint8_frames(pipe(prompt, **kwargs).frames[0])
    write_video(output, video, fps=fps)
    return output


def run_generate(args: argparse.Namespace) -> int:
    path = generate(
        args.prompt, args.output, model=args.model, teacher=args.teacher, steps=args.steps, seed=args.seed,
        frames=args.frames, size=parse_size(args.size), guidance=args.guidance, fps=args.fps, device=args.device,
    )
    print(path)
    return 0
