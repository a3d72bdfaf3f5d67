"""`mmphys demo`: the main job of `make demo`.

Until the bundled model ships, the demo simulates one physics clip and writes it with
its pseudo-RGB cue videos side by side (one labelled mp4 plus a PNG contact sheet).
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


def run(args: argparse.Namespace) -> int:
    path = run_simulation_demo(Path(args.out), args.family, args.seed, args.size, args.frames)
    print(path)
    return 0


def register(subparsers) -> None:
    from ..simulation import SCENE_FAMILIES

    p = subparsers.add_parser(
        "demo",
        help="the main job of `make demo`: a physics clip with its pseudo-RGB cues side by side",
        description="Simulate one physics clip and write RGB | semantics | depth | tracks | flow | unified "
        "side by side as one mp4 (plus a PNG contact sheet) under --out, then print the video's path.",
    )
    p.add_argument("--out", default="outputs/demo", help="output folder (default outputs/demo)")
    p.add_argument("--family", default="free_fall", choices=SCENE_FAMILIES, help="scene family (default free_fall)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=128, help="frame size in px (default 128)")
    p.add_argument("--frames", type=int, default=17)
    p.set_defaults(func=run)
