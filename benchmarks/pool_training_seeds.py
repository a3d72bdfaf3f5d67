#!/usr/bin/env python
"""Pool a paired model-vs-reference comparison over several training seeds.

    python benchmarks/pool_training_seeds.py outputs/run15/eval/results.json \
        outputs/run15r/replicates/seed-1/eval/results.json --model student --reference baseline

Each results file holds one training seed's `model` and `reference` on the same held-out prompts and
sampling seeds. For every video (prompt, sampling seed) present in all files, the per-seed differences
`model - reference` are averaged over the training seeds, and the 95% bootstrap CI is taken over those
videos. Averaging first keeps the videos as the unit of resampling: the same prompt under two training
seeds is not counted as two independent pairs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def pooled_difference(results: list[dict], model: str, reference: str, metric: str, num_bootstrap: int = 1000) -> dict:
    from mmphys_diffusers.errors import MMPhysInputError
    from mmphys_diffusers.evaluation.runner import bootstrap_ci

    per_seed = []
    for index, result in enumerate(results):
        rows = {(r["model"], r["scene"], r["seed"]): r.get(metric) for r in result.get("per_video", [])}
        diffs = {}
        for (name, scene, seed), value in rows.items():
            other = rows.get((reference, scene, seed))
            if name == model and value is not None and other is not None and np.isfinite(value) and np.isfinite(other):
                diffs[(scene, seed)] = float(value) - float(other)
        if not diffs:
            raise MMPhysInputError(f"results file {index}: no video with {metric!r} for both {model!r} and {reference!r}")
        per_seed.append(diffs)
    shared = sorted(set.intersection(*(set(d) for d in per_seed)))
    averaged = [float(np.mean([d[key] for d in per_seed])) for key in shared]
    mean, low, high = bootstrap_ci(averaged, num_bootstrap)
    per_seed_means = [float(np.mean([d[key] for key in shared])) for d in per_seed]
    return {"difference": mean, "ci95": [low, high], "n_videos": len(shared), "per_training_seed": per_seed_means}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", type=Path, help="one results.json per training seed")
    parser.add_argument("--model", required=True)
    parser.add_argument("--reference", required=True)
    parser.add_argument("--metric", nargs="+", default=["permanence", "spatiotemporal_iou", "spatial_iou", "object_size_error", "text_adherence"])
    args = parser.parse_args(argv)
    results = [json.loads(p.read_text()) for p in args.results]
    print(f"| metric | {args.model} - {args.reference}, pooled [95% CI] | per training seed | videos |")
    print("|---|---|---|---|")
    for metric in args.metric:
        c = pooled_difference(results, args.model, args.reference, metric)
        seeds = ", ".join(f"{v:+.3f}" for v in c["per_training_seed"])
        print(f"| {metric} | {c['difference']:+.3f} [{c['ci95'][0]:+.3f}, {c['ci95'][1]:+.3f}] | {seeds} | {c['n_videos']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
