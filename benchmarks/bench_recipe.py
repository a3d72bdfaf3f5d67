#!/usr/bin/env python
"""Measure the MMPhysVideo-Tiny recipe's step costs for a preset and extrapolate its full duration.

    python benchmarks/bench_recipe.py --preset cpu --steps 10
    python benchmarks/bench_recipe.py --preset gpu --steps 20      # on the GPU machine

Runs the real recipe (same models, resolution, batch sizes) on a few clips with `--steps` optimizer
steps per training stage and one held-out prompt, then multiplies the measured seconds per step
(per simulated clip, per generated video) by the preset's budget. Prints a markdown table; `--json`
writes the numbers too. Step times are medians of the gaps between
optimizer steps (warm-up and checkpoint writes excluded); the machine's load average is printed.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_recipe_module():
    """`train/recipes/mmphysvideo_tiny.py` as a module (train/ is not a package)."""
    spec = importlib.util.spec_from_file_location("mmphysvideo_tiny", ROOT / "train" / "recipes" / "mmphysvideo_tiny.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["mmphysvideo_tiny"] = module
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--steps", type=int, default=10, help="optimizer steps per training stage")
    parser.add_argument("--clips", type=int, default=8, help="training clips simulated for the measurement")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)

    import torch

    recipe = load_recipe_module()
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    hardware = recipe.hardware_summary(device)
    full = recipe.load_preset(args.preset)
    bench = copy.deepcopy(full)
    bench["name"] = f"bench-{full['name']}"
    bench["train_clips"], bench["heldout_clips"] = args.clips, 2
    bench["vae"]["max_train_steps"] = args.steps
    bench["vae"]["checkpointing_steps"] = args.steps
    bench["diffusion"]["max_train_steps"] = args.steps
    bench["diffusion"]["checkpointing_steps"] = args.steps
    bench["diffusion"]["lr_warmup_steps"] = 0
    bench["vae"]["lr_warmup_steps"] = 0
    bench["eval"].update(num_prompts=1, seeds=[0])

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        start = time.perf_counter()
        result = recipe.run_recipe(bench, out, export=Path(tmp) / "export", device=device, command="benchmarks/bench_recipe.py")
        wall = time.perf_counter() - start
        # median seconds between optimizer steps (warm-up, checkpoint writes and load spikes excluded)
        per_step = {"vae": json.loads((out / "vae" / "vae_summary.json").read_text())["median_step_seconds"]}
        for kind in recipe.MODEL_KINDS:
            per_step[kind] = json.loads((out / kind / "train_summary.json").read_text())["median_step_seconds"]
        results = json.loads((out / "eval" / "results.json").read_text())
        per_video = {k: [r["seconds"] for r in results["per_video"] if r["model"] == k][0] for k in recipe.MODEL_KINDS}
        sizes = {kind: sum(p.stat().st_size for p in (Path(tmp) / "export" / kind).rglob("*") if p.is_file()) / 2**20
                 for kind in recipe.MODEL_KINDS}

    timings = result["timings_s"]
    sim_per_clip = timings["data"] / (args.clips + 2)
    n_videos = full["eval"]["num_prompts"] * len(full["eval"]["seeds"])
    estimate = {
        "data": sim_per_clip * (full["train_clips"] + full["heldout_clips"]),
        "vae": per_step["vae"] * full["vae"]["max_train_steps"],
        **{kind: per_step[kind] * full["diffusion"]["max_train_steps"] for kind in recipe.MODEL_KINDS},
        "eval": sum(per_video.values()) * n_videos,
    }
    import os

    load = os.getloadavg()
    lines = [
        f"# recipe cost, preset `{full['name']}` ({hardware}; load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f})",
        "",
        f"measured with {args.steps} steps per stage on {args.clips} clips; bench run wall time {wall:.1f} s",
        "",
        "| stage | measured | preset budget | estimated full stage |",
        "|---|---|---|---|",
        f"| data | {sim_per_clip:.3f} s/clip | {full['train_clips'] + full['heldout_clips']} clips | {estimate['data'] / 60:.1f} min |",
        f"| vae | {per_step['vae']:.3f} s/step | {full['vae']['max_train_steps']} steps | {estimate['vae'] / 60:.1f} min |",
    ]
    for kind in ("teacher", "baseline", "student"):
        lines.append(f"| {kind} | {per_step[kind]:.3f} s/step | {full['diffusion']['max_train_steps']} steps | {estimate[kind] / 60:.1f} min |")
    lines += [
        f"| eval | {', '.join(f'{k} {v:.2f}' for k, v in per_video.items())} s/video | {n_videos} videos x 3 models | {estimate['eval'] / 60:.1f} min |",
        f"| **total** | | | **{sum(estimate.values()) / 3600:.2f} h** |",
        "",
        "exported folder sizes (MiB): " + ", ".join(f"{k} {v:.2f}" for k, v in sizes.items()),
    ]
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps({"preset": full["name"], "steps": args.steps, "per_step_s": per_step, "per_video_s": per_video,
                                               "sim_s_per_clip": sim_per_clip, "estimate_s": estimate, "export_mib": sizes,
                                               "hardware": hardware}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
