#!/usr/bin/env python
"""Contact sheet of a physics-benchmark run: the same held-out prompts, one row per model.

    python benchmarks/plot_benchmark_samples.py outputs/mmphysvideo-tiny-cpu/eval docs/images/mmphysvideo_tiny_samples.png

Reads ``results.json`` and ``videos/<model>/<scene>_seed<k>.mp4`` written by `run_physics_benchmark`
(``mmphys eval physics`` without ``--no-videos``). Each block is one prompt (its caption above it);
each row a model, labelled; each column an evenly spaced frame.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def _text_strip(width: int, text: str, height: int = 14) -> np.ndarray:
    import cv2

    strip = np.full((height, width, 3), 255, np.uint8)
    cv2.putText(strip, text, (2, min(height - 4, height // 2 + 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (20, 20, 20), 1, cv2.LINE_AA)
    return strip


def contact_sheet(eval_dir: Path, scenes: list[str] | None, seed: int, frames: int, label_width: int = 72) -> np.ndarray:
    from mmphys_diffusers.utils.video_io import read_video

    results = json.loads((eval_dir / "results.json").read_text())
    models = list(results["summary"])
    prompts = {p["scene"]: p["caption"] for p in results["prompts"]}
    scenes = scenes or list(prompts)[:4]
    blocks = []
    for scene in scenes:
        rows = []
        for model in models:
            path = eval_dir / "videos" / model / f"{scene}_seed{seed}.mp4"
            video, _ = read_video(path)
            idx = np.round(np.linspace(0, len(video) - 1, frames)).astype(int)
            row = np.concatenate([np.pad(video[i], ((1, 1), (1, 1), (0, 0)), constant_values=255) for i in idx], axis=1)
            rows.append(np.concatenate([_text_strip(label_width, model, row.shape[0])[:, :label_width], row], axis=1))
        block = np.concatenate(rows, axis=0)
        blocks.append(np.concatenate([_text_strip(block.shape[1], prompts[scene][:110]), block], axis=0))
    return np.concatenate(blocks, axis=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("eval_dir", type=Path, help="folder of a benchmark run (results.json + videos/)")
    parser.add_argument("out", type=Path, help="output PNG")
    parser.add_argument("--scenes", nargs="+", default=None, help="scene ids (default: the first four)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed of the videos shown")
    parser.add_argument("--frames", type=int, default=6, help="frames per row")
    parser.add_argument("--scale", type=int, default=2, help="integer upscaling of the sheet")
    args = parser.parse_args(argv)
    save_sheet(contact_sheet(args.eval_dir, args.scenes, args.seed, args.frames), args.out, args.scale)
    return 0


def save_sheet(sheet: np.ndarray, out: Path, scale: int) -> None:
    """Write a uint8 ``[H, W, 3]`` sheet as a PNG, upscaled `scale` times with nearest-neighbour pixels."""
    from PIL import Image

    image = Image.fromarray(sheet)
    image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out)
    print(out)


if __name__ == "__main__":
    sys.exit(main())
