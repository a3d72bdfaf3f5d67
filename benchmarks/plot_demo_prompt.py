#!/usr/bin/env python
"""Frames of one prompt from several models, one row per (model, seed): what `make demo` shows, side by side.

    python benchmarks/plot_demo_prompt.py docs/images/run12_red_ball.png \
        --model run8=mmphys_diffusers/assets/mmphysvideo-tiny/student --model run12=outputs/run12/student --seeds 0 1 2

Each model goes through `mmphys generate` (its recipe's frames, size, steps and guidance), so a row is
exactly the video that command writes for that seed. Each column is an evenly spaced frame; the first
and last frames are always shown.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plot_benchmark_samples import _text_strip, save_sheet  # noqa: E402

DEMO_PROMPT = "a red ball falls and bounces on the floor"


def demo_sheet(models: list[tuple[str, str]], prompt: str, seeds: list[int], frames: int, label_width: int = 84,
               steps: int | None = None, guidance: float | None = None) -> np.ndarray:
    from mmphys_diffusers.cli.generate import generate
    from mmphys_diffusers.utils.video_io import read_video

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, model in models:
            for seed in seeds:
                path = generate(prompt, Path(tmp) / f"{len(rows)}.mp4", model=model, seed=seed, device="cpu",
                                steps=steps, guidance=guidance)
                video, _ = read_video(path)
                idx = np.round(np.linspace(0, len(video) - 1, min(frames, len(video)))).astype(int)
                row = np.concatenate([np.pad(video[i], ((1, 1), (1, 1), (0, 0)), constant_values=255) for i in idx], axis=1)
                name = _text_strip(label_width, f"{label} s{seed}", row.shape[0])[:, :label_width]
                rows.append(np.concatenate([name, row], axis=1))
    widths = {r.shape[1] for r in rows}
    if len(widths) != 1:
        raise SystemExit(f"the models write videos of different sizes or lengths ({sorted(widths)} px wide rows); "
                         "expected one clip shape for all of them")
    sheet = np.concatenate(rows, axis=0)
    return np.concatenate([_text_strip(sheet.shape[1], prompt[:110]), sheet], axis=0)


def _model_arg(value: str) -> tuple[str, str]:
    label, sep, model = value.partition("=")
    if not sep or not label or not model:
        raise argparse.ArgumentTypeError(f"--model {value!r}: expected LABEL=MODEL (a pipeline folder or Hub id)")
    return label, model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="output PNG")
    parser.add_argument("--model", type=_model_arg, action="append", required=True, help="LABEL=MODEL, repeatable")
    parser.add_argument("--prompt", default=DEMO_PROMPT, help=f"default: the demo prompt ({DEMO_PROMPT!r})")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="generator seeds, one row each")
    parser.add_argument("--frames", type=int, default=9, help="frames per row")
    parser.add_argument("--scale", type=int, default=2, help="integer upscaling of the sheet")
    # a trainer's output folder (not an export) records no steps or guidance, so the pipeline's would apply
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (default: each model's)")
    parser.add_argument("--guidance", type=float, default=None, help="guidance scale (default: each model's)")
    args = parser.parse_args(argv)
    save_sheet(demo_sheet(args.model, args.prompt, args.seeds, args.frames, steps=args.steps, guidance=args.guidance), args.out, args.scale)
    return 0


if __name__ == "__main__":
    sys.exit(main())
