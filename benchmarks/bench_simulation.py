"""Throughput of the synthetic physics world on ONE core (results: docs/simulation.md).

Measures, at the requested size (default 64x64x17):
  1. `simulate_clip` alone (physics + rasterisation + cues + caption + meta), per family;
  2. the cost of each file write on the same clips (rgb.mp4, cues.npz at several
     compression settings, one fsync);
  3. `generate_dataset(workers=1)` end to end (rgb.mp4 + cues.npz + manifest line per
     clip, every file fsynced by the shared atomic writers), compressed and not, on the
     output folder's disk and on tmpfs (/dev/shm) when present.

Usage:
    python benchmarks/bench_simulation.py --clips 200 --out-dir /tmp/bench_sim --json results.json
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy: one BLAS/OpenMP thread

import argparse
import json
import shutil
import statistics
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np


def _pin(core: int) -> str:
    try:
        os.sched_setaffinity(0, {core})  # x264's worker threads inherit this mask
        return f"pinned to core {core}"
    except (AttributeError, OSError) as exc:
        return f"not pinned ({exc})"


def _savez_level(path: Path, arrays: dict, level: int) -> None:
    """npz with an explicit zlib level (np.savez_compressed always uses level 6)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        for name, arr in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(arr), allow_pickle=False)


def _ms(samples: list[float]) -> float:
    return 1e3 * statistics.median(samples)


def bench_simulate(families, n_per_family: int, size: int, frames: int) -> dict:
    from mmphys_diffusers.simulation import simulate_clip

    simulate_clip(families[0], 0, num_frames=frames, size=size)  # warm caches and imports
    out = {}
    for fam in families:
        times = []
        cpu = []
        for seed in range(n_per_family):
            t, c = time.perf_counter(), time.process_time()
            simulate_clip(fam, 1000 + seed, num_frames=frames, size=size)
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        out[fam] = {
            "median_ms": _ms(times),
            "mean_ms": 1e3 * statistics.mean(times),
            "min_ms": 1e3 * min(times),
            "cpu_mean_ms": 1e3 * statistics.mean(cpu),
        }
    mean_all = statistics.mean(v["mean_ms"] for v in out.values())
    cpu_all = statistics.mean(v["cpu_mean_ms"] for v in out.values())
    out["all"] = {"mean_ms": mean_all, "clips_per_s": 1e3 / mean_all, "cpu_mean_ms": cpu_all, "clips_per_cpu_s": 1e3 / cpu_all}
    return out


def bench_writes(families, n: int, size: int, frames: int, folder: Path) -> dict:
    from mmphys_diffusers.simulation import simulate_clip
    from mmphys_diffusers.utils.video_io import write_video

    folder.mkdir(parents=True, exist_ok=True)
    clips = [simulate_clip(families[i % len(families)], 2000 + i, num_frames=frames, size=size) for i in range(n)]
    res: dict[str, list[float]] = {k: [] for k in ("mp4", "npz_level6", "npz_level1", "npz_stored", "fsync")}
    sizes: dict[str, list[int]] = {k: [] for k in ("mp4", "npz_level6", "npz_level1", "npz_stored")}
    for i, clip in enumerate(clips):
        p = folder / f"c{i}"
        t = time.perf_counter()
        write_video(p.with_suffix(".mp4"), clip.rgb)  # includes its own fsync
        res["mp4"].append(time.perf_counter() - t)
        sizes["mp4"].append(p.with_suffix(".mp4").stat().st_size)
        for key, fn in (
            ("npz_level6", lambda f: np.savez_compressed(f, **clip.cues)),
            ("npz_level1", lambda f: _savez_level(f, clip.cues, 1)),
            ("npz_stored", lambda f: np.savez(f, **clip.cues)),
        ):
            f = folder / f"c{i}_{key}.npz"
            t = time.perf_counter()
            fn(f)
            res[key].append(time.perf_counter() - t)
            sizes[key].append(f.stat().st_size)
        t = time.perf_counter()
        with open(folder / f"c{i}_npz_level1.npz", "rb") as fh:
            os.fsync(fh.fileno())
        res["fsync"].append(time.perf_counter() - t)
    return {k: {"median_ms": _ms(v), "min_ms": 1e3 * min(v), **({"mean_kb": statistics.mean(sizes[k]) / 1024} if k in sizes else {})} for k, v in res.items()}


def bench_generate(root: Path, n: int, size: int, frames: int, compress: bool) -> dict:
    from mmphys_diffusers.simulation import generate_dataset

    if root.exists():
        shutil.rmtree(root)
    cpu0 = time.process_time()
    stats = generate_dataset(root, n, num_frames=frames, size=size, seed=0, compress_cues=compress, progress=False)
    cpu = time.process_time() - cpu0  # CPU seconds of this process (x264 threads included)
    total_kb = sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) / 1024
    shutil.rmtree(root)
    return {
        "clips_per_s": stats["clips_per_s"],
        "ms_per_clip": 1e3 / stats["clips_per_s"],
        "cpu_ms_per_clip": 1e3 * cpu / n,
        "kb_per_clip": total_kb / n,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=200, help="clips per end-to-end run")
    ap.add_argument("--per-family", type=int, default=40, help="clips per family for simulate-only timing")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--frames", type=int, default=17)
    ap.add_argument("--core", type=int, default=0)
    ap.add_argument("--out-dir", default=None, help="disk folder for the end-to-end runs (default: a temp folder)")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()

    from mmphys_diffusers.simulation import SCENE_FAMILIES

    pinned = _pin(args.core)
    fams = list(SCENE_FAMILIES)
    base = Path(args.out_dir or tempfile.mkdtemp(prefix="bench_sim_"))
    results = {
        "setup": {
            "size": args.size,
            "frames": args.frames,
            "cpu": pinned,
            "omp_threads": os.environ["OMP_NUM_THREADS"],
            "load_average_at_start": os.getloadavg(),
            "cpu_count": os.cpu_count(),
        },
        "simulate_clip": bench_simulate(fams, args.per_family, args.size, args.frames),
        "writes": bench_writes(fams, 40, args.size, args.frames, base / "writes"),
        "generate_dataset": {},
    }
    targets = [("disk", base)] + ([("tmpfs", Path("/dev/shm") / f"bench_sim_{os.getpid()}")] if Path("/dev/shm").is_dir() else [])
    for where, folder in targets:
        for compress in (True, False):
            key = f"{where}, cues {'compressed' if compress else 'uncompressed'}"
            results["generate_dataset"][key] = bench_generate(folder / "ds", args.clips, args.size, args.frames, compress)
            print(key, results["generate_dataset"][key], flush=True)
    shutil.rmtree(base / "writes", ignore_errors=True)
    for where, folder in targets[1:]:  # the tmpfs folder is ours; the disk folder may be the user's
        shutil.rmtree(folder, ignore_errors=True)

    results["setup"]["load_average_at_end"] = os.getloadavg()
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
