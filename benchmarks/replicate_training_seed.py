#!/usr/bin/env python
"""Retrain a recipe run's baseline and student with another training seed, then compare them paired.

    python benchmarks/replicate_training_seed.py --run outputs/mmphysvideo-tiny-cpu-1k --seed 1

One training seed cannot tell a student-vs-baseline gap from run-to-run spread. This script reuses a
finished recipe run's data, VAE, base pipeline, teacher and latent cache (linked, not copied), trains the
baseline and the student again with `--seed` (data order, timesteps, noise and projector init change;
the budget does not) into ``<run>/replicates/seed-<seed>/``, evaluates both on the recipe's held-out
prompts and seeds, and prints the paired comparison (`mmphys eval compare`). Every stage resumes: run the
same command again after an interruption.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_recipe import load_recipe_module  # noqa: E402  (the one loader of the recipe script)

SHARED = ("data", "base", "teacher", "latent-cache")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="a finished recipe --out folder (holds recipe_run.json and teacher/)")
    parser.add_argument("--seed", type=int, required=True, help="the training seed of the replicate")
    args = parser.parse_args(argv)

    from mmphys_diffusers.errors import MMPhysInputError

    recipe = load_recipe_module()
    run = Path(args.run)
    run_file = run / "recipe_run.json"
    missing = [name for name in SHARED if not (run / name).exists()]
    if not run_file.is_file() or missing:
        raise MMPhysInputError(f"--run {run}: expected a recipe run with recipe_run.json and {list(SHARED)}; missing {missing or ['recipe_run.json']}")
    if not (run / "teacher" / "train_summary.json").is_file():
        raise MMPhysInputError(f"--run {run}: its teacher has not finished training (no teacher/train_summary.json); finish the recipe first")
    preset = json.loads(run_file.read_text())["preset"]
    replicate = run / "replicates" / f"seed-{args.seed}"
    replicate.mkdir(parents=True, exist_ok=True)
    for name in SHARED:
        link = replicate / name
        if not link.exists():
            os.symlink((run / name).resolve(), link)
    for kind in ("baseline", "student"):
        if (replicate / kind / "train_summary.json").is_file():
            print(f"[replicate] {kind}: finished, skipped", flush=True)
            continue
        print(f"[replicate] {kind}: training with seed {args.seed} -> {replicate / kind}", flush=True)
        recipe._train_stage(kind, replicate, preset, seed=args.seed)

    from mmphys_diffusers.cli.main import main as mmphys

    results = replicate / "eval" / "results.json"
    if not results.is_file():
        settings = preset["eval"]
        rc = mmphys([
            "eval", "physics", "--model", f"baseline={replicate / 'baseline'}", "--model", f"student={replicate / 'student'}",
            "--num-prompts", str(settings["num_prompts"]), "--seeds", *map(str, settings["seeds"]),
            "--steps", str(settings["num_inference_steps"]), "--guidance-scale", str(preset["generate"]["guidance_scale"]),
            "--frames", str(preset["num_frames"]), "--height", str(preset["size"]), "--width", str(preset["size"]),
            "--out", str(replicate / "eval"),
        ])
        if rc:
            return rc
    return mmphys(["eval", "compare", str(results), "--model", "student", "--reference", "baseline",
                   "--out", str(replicate / "eval" / "compare.json")])


if __name__ == "__main__":
    sys.exit(main())
