"""`mmphys demo`: the main job of `make demo`.

With the bundled MMPhysVideo-Tiny student installed, the demo generates a video from a
physics prompt (`mmphys generate` on the bundled default) and writes the teacher's RGB +
perception next to it. `--simulate` (or a package without bundled weights) instead
simulates one physics clip and writes it with its pseudo-RGB cue videos side by side.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

DEMO_CUES = ("semantics", "depth", "tracks", "flow", "unified")


def label_panels(video: np.ndarray, labels: list[str], panel_width: int, pad: int, header: int = 14) -> np.ndarray:
    """Add a white header row naming each side-by-side panel of a uint8 ``[F,H,W,3]`` video."""
    import cv2

    f, h, w, _ = video.shape
    out = np.full((f, h + header, w, 3), 255, np.uint8)
    out[:, header:] = video
    strip = out[0, :header].copy()
    for i, text in enumerate(labels):
        x = i * (panel_width + pad) + 2
        cv2.putText(strip, text, (x, header - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (20, 20, 20), 1, cv2.LINE_AA)
    out[:, :header] = strip
    return out


def contact_sheet(video: np.ndarray, num: int = 4) -> np.ndarray:
    """Stack `num` evenly spaced frames of ``[F,H,W,3]`` vertically into one picture."""
    idx = np.round(np.linspace(0, video.shape[0] - 1, num)).astype(int)
    return np.concatenate([video[i] for i in idx], axis=0)


def run_simulation_demo(out_dir: Path, family: str, seed: int, size: int, frames: int) -> Path:
    from PIL import Image

    from ..perception import get_codec
    from ..simulation import simulate_clip
    from ..utils.atomic import atomic_path
    from ..utils.video_io import tile_videos, write_video

    clip = simulate_clip(family, seed=seed, num_frames=frames, size=size)
    panels, labels = [clip.rgb], ["RGB"]
    for cue in DEMO_CUES:
        codec = get_codec(cue)
        video, _ = codec.encode(**{k: clip.cues[k] for k in codec.required_arrays})
        panels.append((video.transpose(0, 2, 3, 1) * 255 + 0.5).astype(np.uint8))
        labels.append(cue)
    pad = 2
    tiled = label_panels(tile_videos(panels, pad=pad), labels, panel_width=clip.rgb.shape[2], pad=pad)
    stem = f"sim_{family}_seed{seed}"
    path = write_video(out_dir / f"{stem}.mp4", tiled, fps=clip.meta.get("fps", 8.0))
    with atomic_path(out_dir / f"{stem}.png") as tmp:
        Image.fromarray(contact_sheet(tiled)).save(tmp, format="PNG")
    (out_dir / f"{stem}.txt").write_text(clip.caption + "\n")
    print(f"caption: {clip.caption}")
    print(f"contact sheet: {out_dir / (stem + '.png')}")
    return path


DEMO_PROMPT = "a red ball falls and bounces on the floor"


def bundled_models_present() -> bool:
    from ..assets import bundled_models_dir

    return all((bundled_models_dir() / kind / "model_index.json").is_file() for kind in ("student", "teacher"))


def write_contact_sheet(video_path: Path, num: int = 6) -> Path:
    """``<video>.png``: `num` evenly spaced frames of the video, side by side (to look at without a player)."""
    from PIL import Image

    from ..utils.atomic import atomic_path
    from ..utils.video_io import read_video

    frames, _ = read_video(video_path)
    idx = np.round(np.linspace(0, frames.shape[0] - 1, num)).astype(int)
    sheet = np.concatenate([np.pad(frames[i], ((0, 0), (0, 2), (0, 0)), constant_values=255) for i in idx], axis=1)
    png = video_path.with_suffix(".png")
    with atomic_path(png) as tmp:
        Image.fromarray(sheet).save(tmp, format="PNG")
    return png


def run_generation_demo(out_dir: Path, prompt: str, seed: int) -> Path:
    from .generate import generate

    teacher_path = generate(prompt, out_dir / "teacher_rgb_and_perception.mp4", teacher=True, seed=seed)
    print(f"teacher (RGB | perception): {teacher_path} (frames: {write_contact_sheet(teacher_path)})")
    student_path = generate(prompt, out_dir / "student.mp4", seed=seed)
    print(f"student: frames in {write_contact_sheet(student_path)}")
    return student_path


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if not args.simulate and bundled_models_present():
        print(f"prompt: {args.prompt}")
        path = run_generation_demo(out, args.prompt, args.seed)
    else:
        if not args.simulate:
            print("no bundled MMPhysVideo-Tiny weights in this install: showing the simulation demo instead")
        path = run_simulation_demo(out, args.family, args.seed, args.size, args.frames)
    print(path)
    return 0


def register(subparsers) -> None:
    from ..simulation import SCENE_FAMILIES

    p = subparsers.add_parser(
        "demo",
        help="the main job of `make demo`: generate with the bundled student (or --simulate a clip with its cues)",
        description="Generate a video from --prompt with the bundled MMPhysVideo-Tiny student (and the teacher's "
        "RGB | perception alongside) under --out, then print the student video's path. With --simulate, or when "
        "no bundled weights are installed: simulate one physics clip and write RGB | semantics | depth | tracks | "
        "flow | unified side by side as one mp4 plus a PNG contact sheet.",
    )
    p.add_argument("--out", default="outputs/demo", help="output folder (default outputs/demo)")
    p.add_argument("--prompt", default=DEMO_PROMPT, help=f"prompt for the bundled model (default {DEMO_PROMPT!r})")
    p.add_argument("--simulate", action="store_true", help="run the simulation demo even when bundled weights exist")
    p.add_argument("--family", default="free_fall", choices=SCENE_FAMILIES, help="--simulate: scene family (default free_fall)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=128, help="frame size in px (default 128)")
    p.add_argument("--frames", type=int, default=17)
    p.set_defaults(func=run)
