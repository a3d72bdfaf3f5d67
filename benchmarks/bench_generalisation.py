#!/usr/bin/env python
"""Training vs held-out denoising loss of trained models: has a run memorised its clips?

    python benchmarks/bench_generalisation.py --train outputs/run16/data/train --heldout outputs/heldout128 \
        --model run15_baseline=bundled:baseline --model run16_baseline=outputs/run16/baseline \
        --max-clips 128 --out docs/results/generalisation

Every model sees the same clips, noise levels and noise draws (`denoising_loss_by_noise_level`). The held-out
clips must be simulated with seeds the training set does not use (checked). The gap is the held-out mean loss
over the training mean loss, with a 95% bootstrap CI that resamples the clips of both sets.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def loss_gap(train_losses: list[float], heldout_losses: list[float], num_resamples: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """(held-out mean / train mean, 95% CI low, high), resampling clips of both sets independently."""
    train, heldout = np.asarray(train_losses, np.float64), np.asarray(heldout_losses, np.float64)
    rng = np.random.default_rng(seed)
    ratios = heldout[rng.integers(0, heldout.size, (num_resamples, heldout.size))].mean(1) / train[
        rng.integers(0, train.size, (num_resamples, train.size))
    ].mean(1)
    return float(heldout.mean() / train.mean()), float(np.quantile(ratios, 0.025)), float(np.quantile(ratios, 0.975))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="LABEL=MODEL (as `mmphys eval physics --model`), repeatable")
    parser.add_argument("--train", required=True, help="the training dataset folder")
    parser.add_argument("--heldout", required=True, help="a held-out dataset folder simulated with other seeds")
    parser.add_argument("--max-clips", type=int, default=128, help="clips per set (default 128)")
    parser.add_argument("--out", required=True, help="output folder (generalisation.json, generalisation.md)")
    args = parser.parse_args(argv)

    from mmphys_diffusers.errors import MMPhysInputError
    from mmphys_diffusers.evaluation.denoising_loss import denoising_loss_by_noise_level
    from mmphys_diffusers.evaluation.runner import load_model, training_seeds
    from mmphys_diffusers.utils.atomic import atomic_write_json, atomic_write_text

    shared = set(training_seeds(args.train)) & set(training_seeds(args.heldout))
    if shared:
        raise MMPhysInputError(f"{args.heldout} shares {len(shared)} scene seeds with {args.train}; simulate it with another seed")
    rows, report = [], {"train": args.train, "heldout": args.heldout, "max_clips": args.max_clips, "models": {}}
    for spec in args.model:
        label, pipe = load_model(spec)
        sets = {name: denoising_loss_by_noise_level(pipe, root, max_clips=args.max_clips, progress=True)
                for name, root in (("train", args.train), ("heldout", args.heldout))}
        per_clip = {name: [float(np.mean(clip)) for clip in result["loss"]] for name, result in sets.items()}
        gap = loss_gap(per_clip["train"], per_clip["heldout"])
        report["models"][label] = {"spec": spec, "gap": gap, **sets}
        rows.append(
            f"| {label} | {np.mean(per_clip['train']):.4f} | {np.mean(per_clip['heldout']):.4f} | "
            f"{gap[0]:.3f} [{gap[1]:.3f}, {gap[2]:.3f}] | "
            + " / ".join(f"{h / t:.2f}" for t, h in zip(sets["train"]["mean"], sets["heldout"]["mean"])) + " |"
        )
        print(rows[-1], flush=True)
    sigmas = report["models"][next(iter(report["models"]))]["train"]["sigmas"]
    table = "\n".join([
        f"Denoising loss (RGB, the trainers' objective), {args.max_clips} training clips of `{args.train}` and "
        f"up to {args.max_clips} held-out clips of `{args.heldout}`; noise levels {sigmas}, one fixed noise draw per clip.",
        "",
        "| model | train loss | held-out loss | held-out / train [95% CI] | held-out / train per noise level |",
        "|---|---|---|---|---|",
        *rows,
    ])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "generalisation.json", report)
    atomic_write_text(out / "generalisation.md", table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
