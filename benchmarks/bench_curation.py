"""Benchmark of `mmphys curate` on CPU: throughput of the default (classical) path and the
accuracy of its extractors against the simulator's exact ground truth.

    python benchmarks/bench_curation.py --clips-per-family 4 --workers 1 2 --json docs/curation_bench.json

Prints markdown tables (pasted into docs/curation.md). Numbers depend on the machine;
the header line records it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def make_sources(root: Path, families, clips_per_family: int, size: int, num_frames: int) -> tuple[Path, dict]:
    from mmphys_diffusers.simulation import simulate_clip
    from mmphys_diffusers.utils.video_io import write_video

    src = root / "src"
    truth = {}
    for family in families:
        for seed in range(clips_per_family):
            clip = simulate_clip(family, seed=1000 + seed, size=size, num_frames=num_frames)
            path = src / f"{family}_{seed}.mp4"
            write_video(path, clip.rgb, fps=8, crf=10)
            truth[path.name] = clip
    return src, truth


def throughput(src: Path, root: Path, workers: int, config) -> dict:
    from mmphys_diffusers.curation import run_curation

    out = root / f"out_w{workers}"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    summary = run_curation(src, out, config=config, workers=workers, progress=False)
    seconds = time.perf_counter() - t0
    n = summary["this_run"].get("clips_accepted", 0) + summary["this_run"].get("clips_rejected", 0)
    return {"workers": workers, "clips": n, "accepted": summary["this_run"].get("clips_accepted", 0), "seconds": round(seconds, 2), "clips_per_s": round(n / seconds, 3)}


def stage_times_and_accuracy(truth: dict, config) -> tuple[dict, dict]:
    """Per-stage seconds per clip, and per-family accuracy of the default extractors."""
    from mmphys_diffusers.curation import DEPTH_ESTIMATORS, LOCALIZERS, SEGMENTERS, TRACKERS
    from mmphys_diffusers.curation.evaluate import instance_iou, scale_invariant_depth_error, track_error

    loc_b = LOCALIZERS.build(config.localize.backend, **config.localize.options)
    seg_b = SEGMENTERS.build(config.segment.backend, **config.segment.options)
    trk_b = TRACKERS.build(config.tracks.backend, **config.tracks.options)
    dep_b = DEPTH_ESTIMATORS.build(config.depth.backend, **config.depth.options)
    flat_b = DEPTH_ESTIMATORS.build("constant")
    times = {"localize": [], "segment": [], "tracks": [], "depth": []}
    per_family: dict[str, dict[str, list]] = {}
    for name, clip in truth.items():
        family = clip.meta["family"]
        frames = clip.rgb
        t = time.perf_counter(); loc = loc_b.localize(frames); times["localize"].append(time.perf_counter() - t)
        t = time.perf_counter(); inst = seg_b.segment(frames, loc); times["segment"].append(time.perf_counter() - t)
        t = time.perf_counter(); tr = trk_b.track(frames); times["tracks"].append(time.perf_counter() - t)
        t = time.perf_counter(); depth = dep_b.estimate(frames, inst); times["depth"].append(time.perf_counter() - t)
        gt = clip.cues
        te = track_error(tr["tracks"], tr["visibility"], gt["tracks"], gt["visibility"])
        row = per_family.setdefault(family, {k: [] for k in ("mask_iou", "subjects", "gt_objects", "epe", "coverage", "silog", "silog_flat")})
        row["mask_iou"].append(instance_iou(inst, gt["instances"].astype(np.int32))["mean_iou"])
        row["subjects"].append(len(loc["subjects"]))
        row["gt_objects"].append(int(len(np.unique(gt["instances"])) - 1))
        row["epe"].append(te["epe"])
        row["coverage"].append(te["coverage"])
        row["silog"].append(scale_invariant_depth_error(depth, gt["depth"])["silog"])
        row["silog_flat"].append(scale_invariant_depth_error(flat_b.estimate(frames, inst), gt["depth"])["silog"])
    acc = {fam: {k: float(np.mean(v)) for k, v in row.items()} for fam, row in per_family.items()}
    all_rows = {k: float(np.mean([x for r in per_family.values() for x in r[k]])) for k in next(iter(per_family.values()))}
    acc["all"] = all_rows
    return {k: round(1000 * float(np.mean(v)), 1) for k, v in times.items()}, acc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips-per-family", type=int, default=4)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--num-frames", type=int, default=17)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from mmphys_diffusers.curation import CurationConfig
    from mmphys_diffusers.simulation import SCENE_FAMILIES

    config = CurationConfig.from_dict({"ingest": {"max_side": max(args.size, 16)}})
    root = Path(tempfile.mkdtemp(prefix="bench_curation_"))
    try:
        src, truth = make_sources(root, list(SCENE_FAMILIES), args.clips_per_family, args.size, args.num_frames)
        runs = [throughput(src, root, w, config) for w in args.workers]
        stage_ms, acc = stage_times_and_accuracy(truth, config)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU(s), Python {platform.python_version()}"
    result = {"machine": machine, "clip": {"size": args.size, "num_frames": args.num_frames, "clips": len(truth)}, "throughput": runs, "stage_ms_per_clip": stage_ms, "accuracy": acc}
    print(f"machine: {machine}; clips: {len(truth)} simulated, {args.size}x{args.size}, {args.num_frames} frames\n")
    print("| workers | clips | accepted | seconds | clips/s |\n|---|---|---|---|---|")
    for r in runs:
        print(f"| {r['workers']} | {r['clips']} | {r['accepted']} | {r['seconds']} | {r['clips_per_s']} |")
    print("\n| stage | ms per clip |\n|---|---|")
    for k, v in stage_ms.items():
        print(f"| {k} | {v} |")
    print("\n| family | subjects found / objects | mask IoU | track EPE (px) | track coverage | depth silog (ground plane) | depth silog (flat) |\n|---|---|---|---|---|---|---|")
    for fam, a in acc.items():
        print(f"| {fam} | {a['subjects']:.2f} / {a['gt_objects']:.2f} | {a['mask_iou']:.3f} | {a['epe']:.2f} | {a['coverage']:.3f} | {a['silog']:.3f} | {a['silog_flat']:.3f} |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
