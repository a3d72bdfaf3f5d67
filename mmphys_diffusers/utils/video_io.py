"""Video reading and writing through PyAV (FFmpeg), with no torchvision.

Frames are exchanged as uint8 numpy arrays shaped ``[F, H, W, 3]`` (RGB).
Inputs may be video files (mp4, webm, mov, mkv, avi, gif) or folders of
numbered frames (png/jpg/jpeg/bmp/webp, sorted by name).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import MMPhysInputError
from .atomic import atomic_path

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".gif", ".m4v")
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")

# Quality used for every H.264 file we write unless the caller overrides it.
# Documented in docs/perception_codecs.md: round-trip figures are measured at it.
DEFAULT_CRF = 18


@dataclass
class VideoInfo:
    path: str
    num_frames: int
    fps: float
    width: int
    height: int
    duration_s: float


def _frame_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
    if not files:
        raise MMPhysInputError(f"frame folder {folder} holds no image files (expected {', '.join(FRAME_SUFFIXES)})")
    return files


def _existing_source(path: str | os.PathLike) -> Path:
    """The path of a readable video source: an existing frame folder or a non-empty file."""
    path = Path(path)
    if not path.exists():
        raise MMPhysInputError(f"video not found: {path}")
    if path.is_file() and path.stat().st_size == 0:
        raise MMPhysInputError(f"video file is empty (0 bytes): {path}")
    return path


def _video_stream(container, path: Path):
    """The first video stream of an open container and its frame rate."""
    if not container.streams.video:
        raise MMPhysInputError(f"file has no video stream: {path}")
    stream = container.streams.video[0]
    return stream, float(stream.average_rate or stream.guessed_rate or 0.0)


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Read the container metadata without decoding every frame (frames are counted when missing)."""
    import av

    path = _existing_source(path)
    if path.is_dir():
        from PIL import Image

        files = _frame_files(path)
        with Image.open(files[0]) as im:
            w, h = im.size
        return VideoInfo(str(path), len(files), 0.0, w, h, 0.0)
    try:
        with av.open(str(path)) as container:
            stream, fps = _video_stream(container, path)
            n = stream.frames or sum(1 for _ in container.decode(stream))
            duration = n / fps if fps else 0.0
            return VideoInfo(str(path), int(n), fps, stream.codec_context.width, stream.codec_context.height, duration)
    except MMPhysInputError:
        raise
    except Exception as exc:  # PyAV raises many error types for corrupt input
        raise MMPhysInputError(f"cannot read video {path}: {exc}") from exc


def read_video(path: str | os.PathLike, max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """Decode a video file or frame folder.

    Returns:
        frames: uint8 ``[F, H, W, 3]``.
        fps: frames per second (0.0 for frame folders, which carry no rate).
    """
    import av

    path = _existing_source(path)
    if path.is_dir():
        from PIL import Image

        frames = []
        for f in _frame_files(path)[:max_frames]:
            try:
                with Image.open(f) as im:
                    frames.append(np.asarray(im.convert("RGB")))
            except Exception as exc:
                raise MMPhysInputError(f"cannot read frame {f}: {exc}") from exc
        if len({fr.shape for fr in frames}) != 1:
            raise MMPhysInputError(f"frames in {path} do not all have the same size")
        return np.stack(frames), 0.0
    frames = []
    try:
        with av.open(str(path)) as container:
            stream, fps = _video_stream(container, path)
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except MMPhysInputError:
        raise
    except Exception as exc:
        raise MMPhysInputError(f"cannot decode video {path}: {exc}") from exc
    if not frames:
        raise MMPhysInputError(f"video has no decodable frames: {path}")
    return np.stack(frames), fps


def to_uint8_frames(frames) -> np.ndarray:
    """Accept uint8 ``[F,H,W,3]``, float ``[F,H,W,3]`` in [0,1], or a torch tensor of either; return uint8."""
    if hasattr(frames, "detach"):
        frames = frames.detach().float().cpu().numpy()
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise MMPhysInputError(f"video frames must be shaped [F, H, W, 3], got {tuple(frames.shape)}")
    if frames.dtype == np.uint8:
        return frames
    if not np.issubdtype(frames.dtype, np.floating):
        raise MMPhysInputError(f"video frames must be uint8 or float in [0, 1], got dtype {frames.dtype}")
    return (np.clip(frames, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def write_video(
    path: str | os.PathLike,
    frames,
    fps: float = 8.0,
    crf: int = DEFAULT_CRF,
    codec: str = "libx264",
) -> Path:
    """Encode ``frames`` (uint8 or float [0,1], ``[F, H, W, 3]``) to ``path`` atomically.

    H.264 with yuv420p needs even sizes, so odd sizes are written as yuv444p
    (lossless chroma) rather than silently resized.
    """
    import av

    frames = to_uint8_frames(frames)
    path = Path(path)
    f, h, w, _ = frames.shape
    if f == 0:
        raise MMPhysInputError(f"refusing to write an empty video to {path}")
    pix_fmt = "yuv420p" if (h % 2 == 0 and w % 2 == 0) else "yuv444p"
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4" if path.suffix.lower() in (".mp4", ".m4v") else None) as container:
            stream = container.add_stream(codec, rate=_fps_fraction(fps))
            stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
            if codec == "libx264":
                stream.options = {"crf": str(int(crf)), "preset": "medium"}
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return path


def _fps_fraction(fps: float):
    from fractions import Fraction

    return Fraction(fps).limit_denominator(1001)


def tile_videos(videos: Sequence[np.ndarray], columns: int | None = None, pad: int = 2) -> np.ndarray:
    """Place several uint8 ``[F,H,W,3]`` videos of equal F side by side (a grid when `columns` is set)."""
    videos = [to_uint8_frames(v) for v in videos]
    if not videos:
        raise MMPhysInputError("tile_videos needs at least one video")
    nf = {v.shape[0] for v in videos}
    if len(nf) != 1:
        raise MMPhysInputError(f"videos to tile must have equal frame counts, got {sorted(nf)}")
    h = max(v.shape[1] for v in videos)
    w = max(v.shape[2] for v in videos)
    columns = columns or len(videos)
    rows = -(-len(videos) // columns)
    out = np.full((nf.pop(), rows * h + (rows - 1) * pad, columns * w + (columns - 1) * pad, 3), 255, np.uint8)
    for i, v in enumerate(videos):
        r, c = divmod(i, columns)
        y, x = r * (h + pad), c * (w + pad)
        out[:, y : y + v.shape[1], x : x + v.shape[2]] = v
    return out
