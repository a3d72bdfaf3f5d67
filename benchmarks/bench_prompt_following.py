#!/usr/bin/env python
"""Do the colours and object counts named in a prompt show up in the video?

    python benchmarks/bench_prompt_following.py --model bundled:baseline --model bundled:student
    python benchmarks/bench_prompt_following.py --model old=outputs/old/student --model new=outputs/new/student --seeds 0 1 2 3 4 5

Two probes, written in the synthetic world's caption grammar (docs/simulation.md), scored with the
evaluation's palette colour detector (`detect_colours`, the same one behind "text adherence"):

- colour: "A {colour} ball drops onto the floor and bounces once." for the 8 palette colours x seeds;
  counts the videos where the named colour is detected, and where it is the only colour detected, against
  what the same videos would score if the prompt were ignored (each video's colours scored against all 8);
- count: "{N} balls, a {c1} one and a {c2} one, drop onto the floor; ..." for N = 1, 2, 3 x seeds;
  counts the videos whose detected object count equals N, and the mean detected count per N.

Models are `mmphys eval physics` specs (a folder, a Hub id, ``bundled:<kind>``, ``label=spec``).
Prints a markdown table; ``--json PATH`` writes every video's detections too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COUNT_COLOURS = ("red", "blue", "green")
NUMBER_WORDS = {1: "One", 2: "Two", 3: "Three"}


def colour_prompt(colour: str) -> str:
    return f"A {colour} ball drops onto the floor and bounces once."


def count_prompt(n: int) -> str:
    """The free-fall grammar: one ball, or N balls named by colour."""
    colours = COUNT_COLOURS[:n]
    if n == 1:
        return colour_prompt(colours[0])
    named = ", ".join(f"a {c} one" for c in colours[:-1]) + f" and a {colours[-1]} one"
    outcomes = ", ".join(f"the {c} ball bounces once" for c in colours[:-1]) + f" and the {colours[-1]} ball bounces once"
    return f"{NUMBER_WORDS[n]} balls, {named}, drop onto the floor; {outcomes}."


def probe_model(pipe, seeds, num_frames: int, size: int, steps: int, guidance: float) -> dict:
    import torch
    from tqdm.auto import tqdm

    from mmphys_diffusers.evaluation.scene import palette
    from mmphys_diffusers.evaluation.text import detect_colours

    jobs = [("colour", c, colour_prompt(c)) for c in palette()] + [("count", n, count_prompt(n)) for n in (1, 2, 3)]
    videos = []
    rows = [(k, t, p, s) for (k, t, p) in jobs for s in seeds]
    for kind, target, prompt, seed in tqdm(rows, desc="probe videos"):
        frames = pipe(prompt, num_frames=num_frames, height=size, width=size, num_inference_steps=steps, guidance_scale=guidance,
                      generator=torch.Generator().manual_seed(seed), output_type="np").frames[0]
        found = detect_colours(frames)
        videos.append({"probe": kind, "target": target, "prompt": prompt, "seed": seed, "detected": found})
    colour = [v for v in videos if v["probe"] == "colour"]
    count = [v for v in videos if v["probe"] == "count"]
    return {
        "colour_present": sum(v["target"] in v["detected"] for v in colour),
        "colour_only": sum(set(v["detected"]) == {v["target"]} for v in colour),
        # what a model with the same colour habits that ignored the prompt would score: each video's
        # detected colours, scored against every palette colour as the target
        "colour_prompt_blind": sum(len(v["detected"]) / len(palette()) for v in colour),
        "colour_videos": len(colour),
        "count_exact": sum(sum(v["detected"].values()) == v["target"] for v in count),
        "count_videos": len(count),
        "mean_count": {n: sum(sum(v["detected"].values()) for v in count if v["target"] == n) / max(1, len(seeds)) for n in (1, 2, 3)},
        "videos": videos,
    }


def main(argv=None) -> int:
    from mmphys_diffusers.evaluation.runner import load_model

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="model spec, as for `mmphys eval physics` (repeatable)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    parser.add_argument("--num-frames", type=int, default=17)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--guidance-scale", type=float, default=1.0)
    parser.add_argument("--json", type=Path, help="write every video's detections here")
    args = parser.parse_args(argv)

    results = {}
    for spec in args.model:
        label, pipe = load_model(spec)
        pipe.set_progress_bar_config(disable=True)
        results[label] = probe_model(pipe, args.seeds, args.num_frames, args.size, args.steps, args.guidance_scale)
    print(f"\n{len(args.seeds)} seeds, {args.steps} steps, guidance {args.guidance_scale}\n")
    print("| model | named colour present | same colours, prompt ignored | named colour only | object count exact | mean count for 1 / 2 / 3 |")
    print("|---|---|---|---|---|---|")
    for label, r in results.items():
        means = " / ".join(f"{r['mean_count'][n]:.2f}" for n in (1, 2, 3))
        print(f"| {label} | {r['colour_present']}/{r['colour_videos']} | {r['colour_prompt_blind']:.1f}/{r['colour_videos']} "
              f"| {r['colour_only']}/{r['colour_videos']} "
              f"| {r['count_exact']}/{r['count_videos']} | {means} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
