"""Ingest: find sources, probe, decode, cut scenes, normalise fps/size, drop static clips.

All classical (OpenCV + PyAV), CPU only. A source is one video file, one folder of
frames, or one clip of an existing dataset; it yields zero or more `Segment` clips.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from ..data.manifest import MANIFEST_NAME, read_manifest
from ..errors import MMPhysInputError
from ..utils.video_io import FRAME_SUFFIXES, probe_video, read_video
from .config import IngestConfig, SceneCutConfig

INPUT_VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v")


@dataclass
class Source:
    """One input to curate. `key` is stable across runs and names its clips."""

    key: str
    path: str
    caption: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Segment:
    """A normalised clip cut from a source: uint8 frames ``[F, H, W, 3]`` at `fps`."""

    clip_id: str
    frames: np.ndarray
    fps: float
    source: str
    start_s: float
    end_s: float
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Rejection:
    """A clip (or a whole source, when `clip_id` is None) dropped during ingest, with why."""

    reason: str
    clip_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def _source_key(rel: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(rel).with_suffix("").as_posix()).strip("_")[-40:] or "clip"
    return f"{stem}-{hashlib.sha1(rel.encode()).hexdigest()[:8]}"


def _is_frame_folder(path: Path) -> bool:
    return path.is_dir() and any(p.suffix.lower() in FRAME_SUFFIXES for p in path.iterdir())


def discover_sources(inputs: str | Path | Sequence[str | Path], limit: int | None = None) -> list[Source]:
    """Expand INPUT into sources.

    Accepts a dataset folder (holding manifest.jsonl), a folder searched
    recursively for videos and frame folders, a single video or frame folder, a
    ``.txt`` file listing one path per line, or a list of any of these.
    """
    items = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    if not items:
        raise MMPhysInputError("curate INPUT is empty: expected a folder, a video, a list file or a dataset folder")
    sources: list[Source] = []
    for item in items:
        sources.extend(_expand(Path(item)))
    seen: set[str] = set()
    unique = []
    for s in sources:
        if s.key not in seen:
            seen.add(s.key)
            unique.append(s)
    return unique[:limit] if limit is not None else unique


def _expand(path: Path) -> list[Source]:
    if not path.exists():
        raise MMPhysInputError(f"curate INPUT not found: {path}")
    if path.is_file():
        if path.suffix.lower() == ".txt":
            lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
            out = []
            for ln in lines:
                if ln and not ln.startswith("#"):
                    p = Path(ln) if Path(ln).is_absolute() else path.parent / ln
                    out.extend(_expand(p))
            return out
        return [Source(_source_key(path.resolve().as_posix()), str(path))]
    if (path / MANIFEST_NAME).exists():
        return [
            Source(_source_key(f"{path.resolve().as_posix()}#{r.id}"), str(path / r.rgb), caption=r.caption, meta={"source_dataset_id": r.id})
            for r in read_manifest(path)
        ]
    if _is_frame_folder(path) and not any(p.suffix.lower() in INPUT_VIDEO_SUFFIXES for p in path.iterdir()):
        return [Source(_source_key(path.resolve().as_posix()), str(path))]
    out = []
    for p in sorted(path.rglob("*")):
        rel = p.relative_to(path).as_posix()
        if p.is_file() and p.suffix.lower() in INPUT_VIDEO_SUFFIXES and not any(part.startswith(".") for part in p.parts):
            out.append(Source(_source_key(rel), str(p)))
        elif p.is_dir() and _is_frame_folder(p) and not (p / MANIFEST_NAME).exists():
            out.append(Source(_source_key(rel), str(p)))
    return out


def resize_frames(frames: np.ndarray, max_side: int, multiple: int = 2) -> np.ndarray:
    """Downscale ``[F,H,W,3]`` so the longer side is at most `max_side`; crop to multiples of `multiple`."""
    f, h, w, _ = frames.shape
    scale = min(1.0, max_side / max(h, w))
    nh = max(multiple, int(round(h * scale)) // multiple * multiple)
    nw = max(multiple, int(round(w * scale)) // multiple * multiple)
    if (nh, nw) == (h, w):
        return frames
    # Resize to the rounded size directly (aspect changes by < 1 px); INTER_AREA avoids aliasing.
    interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    return np.stack([cv2.resize(fr, (nw, nh), interpolation=interp) for fr in frames])


def scene_cuts(frames: np.ndarray, cfg: SceneCutConfig) -> list[int]:
    """Indices ``i`` where a new scene starts at frame ``i`` (classical histogram + pixel difference).

    A cut is declared where the HSV-histogram (Bhattacharyya) distance exceeds
    ``hist_threshold``, where the mean grey difference exceeds ``pixel_threshold``, or where
    the grey difference is ``adaptive_ratio`` times the local median and above ``min_pixel_diff``.
    """
    if len(frames) < 2:
        return []
    hists, greys = [], []
    for fr in frames:
        hist = cv2.calcHist([cv2.cvtColor(fr, cv2.COLOR_RGB2HSV)], [0, 1], None, [16, 8], [0, 180, 0, 256])
        cv2.normalize(hist, hist)
        hists.append(hist)
        greys.append(cv2.cvtColor(fr, cv2.COLOR_RGB2GRAY).astype(np.float32))
    hist_dist = np.array([cv2.compareHist(hists[i], hists[i + 1], cv2.HISTCMP_BHATTACHARYYA) for i in range(len(frames) - 1)])
    pixel_diff = np.array([float(np.abs(greys[i + 1] - greys[i]).mean()) for i in range(len(frames) - 1)])
    cuts = []
    for i, (hd, pd) in enumerate(zip(hist_dist, pixel_diff)):
        local = np.delete(pixel_diff[max(0, i - 8) : i + 9], min(i, 8))
        local_median = float(np.median(local)) if len(local) else 0.0
        adaptive = pd > cfg.min_pixel_diff and pd > cfg.adaptive_ratio * max(local_median, 0.5)
        if hd > cfg.hist_threshold or pd > cfg.pixel_threshold or adaptive:
            cuts.append(i + 1)
    return cuts


def resample_indices(num_frames: int, src_fps: float, dst_fps: float | None) -> np.ndarray:
    """Frame indices that resample a ``num_frames`` clip from `src_fps` to `dst_fps` (nearest frame)."""
    if not dst_fps or not src_fps or abs(src_fps - dst_fps) < 1e-3:
        return np.arange(num_frames)
    duration = num_frames / src_fps
    times = np.arange(0.0, duration - 1e-9, 1.0 / dst_fps)
    return np.unique(np.clip(np.round(times * src_fps).astype(int), 0, num_frames - 1))


def motion_energy(frames: np.ndarray) -> float:
    """Mean absolute grey-level difference between consecutive frames (0..255)."""
    if len(frames) < 2:
        return 0.0
    grey = frames.astype(np.float32).mean(-1)
    return float(np.abs(np.diff(grey, axis=0)).mean())


def ingest_source(source: Source, cfg: IngestConfig) -> tuple[list[Segment], list[Rejection]]:
    """Probe, decode and split one source into normalised clips.

    Raises:
        MMPhysInputError: the source is unreadable (corrupt, empty, not a video) or too large.
    """
    info = probe_video(source.path)
    if info.num_frames <= 0:
        raise MMPhysInputError(f"video has no frames: {source.path}")
    if max(info.width, info.height) > cfg.reject_above_side:
        raise MMPhysInputError(
            f"resolution {info.width}x{info.height} of {source.path} exceeds reject_above_side={cfg.reject_above_side}"
        )
    frames, fps = read_video(source.path, max_frames=cfg.max_source_frames)
    fps = fps or cfg.default_fps
    frames = resize_frames(frames, cfg.max_side, cfg.size_multiple)
    bounds = [0, *scene_cuts(frames, cfg.scene_cut), len(frames)]
    segments: list[Segment] = []
    rejections: list[Rejection] = []
    for scene_idx, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        idx = a + resample_indices(b - a, fps, cfg.target_fps)
        out_fps = cfg.target_fps or fps
        for chunk_idx, start in enumerate(range(0, len(idx), cfg.max_frames)):
            sel = idx[start : start + cfg.max_frames]
            clip_id = f"{source.key}-s{scene_idx:02d}c{chunk_idx:02d}"
            meta = {
                "source": source.path,
                "scene": scene_idx,
                "chunk": chunk_idx,
                "source_frames": [int(sel[0]), int(sel[-1])],
                "source_fps": fps,
                "source_size": [info.width, info.height],
                **source.meta,
            }
            if len(sel) < cfg.min_frames:
                rejections.append(Rejection(f"too short: {len(sel)} frames < min_frames={cfg.min_frames}", clip_id, meta))
                continue
            clip = np.ascontiguousarray(frames[sel])
            energy = motion_energy(clip)
            meta["motion_energy"] = energy
            if energy < cfg.motion_threshold:
                rejections.append(Rejection(f"static: motion energy {energy:.3f} < motion_threshold={cfg.motion_threshold}", clip_id, meta))
                continue
            segments.append(Segment(clip_id, clip, float(out_fps), source.path, sel[0] / fps, (sel[-1] + 1) / fps, meta))
    return segments, rejections
