"""`generate_dataset`: write simulated clips in the shared dataset format, resumably."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..data.manifest import DATASET_INFO_NAME, ManifestWriter, write_clip
from ..errors import MMPhysInputError
from .clip import DEFAULT_FPS, SimulatedClip, check_clip_args, depth_to_xyz, simulate_clip
from .families import SCENE_FAMILIES

logger = logging.getLogger(__name__)

# dataset.json keys that must match when a run resumes into an existing folder.
_RESUME_KEYS = ("seed", "num_frames", "height", "width", "fps", "families", "pseudo_rgb")


def clip_seed(seed: int, index: int) -> int:
    """Per-clip seed from (dataset seed, clip index): independent of workers and resumes."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, dtype=np.uint32)[0])


def clip_family(families: Sequence[str], index: int) -> str:
    """Families are assigned round-robin so every prefix of the dataset is balanced."""
    return families[index % len(families)]


def encode_pseudo_rgb(clip: SimulatedClip, names: Sequence[str]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Encode the clip's cues with the registered perception codecs (imported lazily).

    Returns pseudo-RGB videos ``{name: [F,3,H,W] float32}`` and each codec's meta.
    """
    from ..perception import get_codec

    available: dict[str, np.ndarray] = dict(clip.cues)
    videos, metas = {}, {}
    for name in names:
        codec = get_codec(name)
        needed = tuple(codec.required_arrays) + tuple(getattr(codec, "optional_arrays", ()))
        if "xyz" in needed and "xyz" not in available:
            available["xyz"] = depth_to_xyz(clip.cues["depth"], clip.meta["camera"])
        missing = [k for k in codec.required_arrays if k not in available]
        if missing:
            raise MMPhysInputError(f"pseudo-RGB cue {name!r} needs array(s) {missing}, which the simulator does not produce")
        video, meta = codec.encode(**{k: available[k] for k in needed if k in available})
        videos[name], metas[name] = video, meta
    return videos, metas


def _make_clip(job: tuple) -> tuple[int, Any]:
    """Simulate and write one clip (runs in worker processes); returns its ClipRecord."""
    root, index, family, seed, num_frames, height, width, fps, pseudo_rgb, compress_cues = job
    clip = simulate_clip(family, seed, num_frames=num_frames, height=height, width=width, fps=fps)
    meta = dict(clip.meta, index=index)
    pseudo = None
    if pseudo_rgb:
        pseudo, codec_meta = encode_pseudo_rgb(clip, pseudo_rgb)
        meta["pseudo_rgb_meta"] = codec_meta
    record = write_clip(
        root, f"{index:06d}", clip.rgb, clip.caption, fps, cue_arrays=clip.cues, pseudo_rgb=pseudo, meta=meta,
        compress_cues=compress_cues,
    )
    return index, record


def _worker_init() -> None:
    # One process per core: keep numpy/BLAS single-threaded inside each worker.
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def generate_dataset(
    out_dir: str | os.PathLike,
    num_clips: int,
    num_frames: int = 17,
    size: int = 64,
    seed: int = 0,
    families: Sequence[str] | None = None,
    workers: int = 1,
    pseudo_rgb: Sequence[str] = (),
    fps: float = DEFAULT_FPS,
    height: int | None = None,
    width: int | None = None,
    compress_cues: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Simulate ``num_clips`` clips into ``out_dir`` (rgb.mp4 + cues.npz + manifest line each).

    Clip ``i`` has id ``f"{i:06d}"``, family ``families[i % len(families)]`` and seed
    ``clip_seed(seed, i)``, so it is the same whatever the worker count and however
    often the run was interrupted; ids already in the manifest are skipped.

    Returns:
        stats: ``{"written", "skipped", "total", "seconds", "clips_per_s", "families"}``.
    """
    families = list(families) if families else list(SCENE_FAMILIES)
    unknown = [f for f in families if f not in SCENE_FAMILIES]
    if unknown:
        raise MMPhysInputError(f"unknown scene family {unknown}; expected some of {list(SCENE_FAMILIES)}")
    if not isinstance(num_clips, (int, np.integer)) or num_clips < 0:
        raise MMPhysInputError(f"num_clips must be a non-negative integer, got {num_clips!r}")
    if not isinstance(workers, (int, np.integer)) or workers < 1:
        raise MMPhysInputError(f"workers must be an integer >= 1, got {workers!r}")
    height = height if height is not None else size
    width = width if width is not None else size
    pseudo_rgb = list(pseudo_rgb or ())
    if pseudo_rgb:
        from ..perception import available_cues

        missing = [p for p in pseudo_rgb if p not in available_cues()]
        if missing:
            raise MMPhysInputError(f"unknown pseudo-RGB cue(s) {missing}; registered codecs: {available_cues()}")
    check_clip_args(families[0], num_frames, height, width, fps)  # fail before touching the output folder

    root = Path(out_dir)
    info = {
        "producer": "mmphys sim",
        "seed": int(seed),
        "num_frames": int(num_frames),
        "height": int(height),
        "width": int(width),
        "fps": float(fps),
        "families": families,
        "cue_arrays": ["instances", "depth", "tracks", "visibility", "flow"],
        "pseudo_rgb": pseudo_rgb,
    }
    info_path = root / DATASET_INFO_NAME
    if info_path.exists():
        previous = json.loads(info_path.read_text())
        clash = {k: (previous[k], info[k]) for k in _RESUME_KEYS if k in previous and previous[k] != info[k]}
        if clash:
            raise MMPhysInputError(
                f"{root} already holds a simulated dataset made with other settings {clash} (existing, requested); "
                "use a new --out folder or the same settings to resume"
            )
    writer = ManifestWriter(root, info=info)
    todo = [i for i in range(num_clips) if not writer.has(f"{i:06d}")]
    jobs = [
        (str(root), i, clip_family(families, i), clip_seed(seed, i), num_frames, height, width, fps, pseudo_rgb, compress_cues)
        for i in todo
    ]
    from tqdm.auto import tqdm

    start = time.perf_counter()
    counts: dict[str, int] = {}
    bar = tqdm(total=len(jobs), desc="simulating clips", unit="clip", disable=not progress)
    if workers == 1 or len(jobs) <= 1:
        results = map(_make_clip, jobs)
        pool = None
    else:
        import multiprocessing as mp

        pool = mp.get_context("spawn" if os.name == "nt" else "fork").Pool(workers, initializer=_worker_init)
        results = pool.imap(_make_clip, jobs, chunksize=4)  # ordered: manifest lines follow clip index
    try:
        for _, record in results:
            writer.add(record)
            counts[record.meta["family"]] = counts.get(record.meta["family"], 0) + 1
            bar.update(1)
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
    seconds = time.perf_counter() - start
    stats = {
        "written": len(jobs),
        "skipped": num_clips - len(jobs),
        "total": len(writer),
        "seconds": seconds,
        "clips_per_s": len(jobs) / seconds if seconds > 0 and jobs else 0.0,
        "families": counts,
    }
    logger.info("simulated %d clips (%d already present) into %s in %.1fs", len(jobs), stats["skipped"], root, seconds)
    return stats
