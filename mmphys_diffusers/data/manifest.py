"""The shared dataset format: one JSON line per clip in ``<root>/manifest.jsonl``.

Written by the simulator (`mmphys sim`) and by curation (`mmphys curate`), read by
`MMPhysVideoDataset` and the trainers. See docs/dataset_format.md.

Layout::

    <root>/
      dataset.json            # format version, producer, cue arrays present, fps
      manifest.jsonl          # one ClipRecord per line
      clips/<id>/rgb.mp4      # H.264 RGB video
      clips/<id>/cues.npz     # cue arrays (names below), optional
      clips/<id>/<cue>.mp4    # pseudo-RGB videos, optional

Every clip file is written atomically *before* its manifest line, so a line in the
manifest always means a complete clip; re-runs skip ids already present.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from ..errors import MMPhysInputError
from ..utils.atomic import atomic_path, atomic_write_json
from ..utils.video_io import DEFAULT_CRF, write_video

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.jsonl"
DATASET_INFO_NAME = "dataset.json"

# Canonical cue-array names inside cues.npz, with their expected shape (F,H,W first).
CUE_ARRAYS: dict[str, str] = {
    "instances": "int [F,H,W]; 0 = background, 1..N = instance ids",
    "depth": "float [F,H,W]; metric depth along the camera axis, > 0",
    "xyz": "float [F,H,W,3]; camera-space point map",
    "tracks": "float [F,H,W,2]; (x, y) at frame t of the track starting at pixel (col, row) of frame 0",
    "visibility": "bool [F,H,W]; whether that track is visible at frame t",
    "flow": "float [F,H,W,2]; forward optical flow t -> t+1 in pixels (last frame zero)",
}


@dataclass
class ClipRecord:
    """One manifest line. Paths are relative to the dataset root."""

    id: str
    rgb: str
    caption: str
    num_frames: int
    fps: float
    height: int
    width: int
    cues: str | None = None
    pseudo_rgb: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), default=_json_default)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "manifest") -> "ClipRecord":
        missing = [k for k in ("id", "rgb", "caption", "num_frames", "fps", "height", "width") if k not in d]
        if missing:
            raise MMPhysInputError(f"{where}: record is missing required field(s) {missing}")
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_manifest(root: str | os.PathLike) -> list[ClipRecord]:
    """Read every complete line of ``<root>/manifest.jsonl``.

    A truncated final line (a crash mid-append) is ignored; a malformed line
    elsewhere is an error naming the file and line number.
    """
    root = Path(root)
    path = root / MANIFEST_NAME if root.is_dir() else root
    if not path.exists():
        raise MMPhysInputError(f"dataset manifest not found: {path} (expected a folder holding {MANIFEST_NAME})")
    lines = path.read_text(encoding="utf-8").splitlines()
    records = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except json.JSONDecodeError as exc:
            if i == len(lines):
                continue  # interrupted append; the clip is redone on resume
            raise MMPhysInputError(f"{path}:{i}: malformed JSON line: {exc}") from exc
        records.append(ClipRecord.from_dict(d, where=f"{path}:{i}"))
    return records


class ManifestWriter:
    """Append-only manifest writer that makes re-runs resumable.

    >>> w = ManifestWriter("data/sim"); w.has("000001")
    """

    def __init__(self, root: str | os.PathLike, info: Mapping[str, Any] | None = None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / MANIFEST_NAME
        self._ids: set[str] = set()
        if self.path.exists():
            self._repair_tail()
            self._ids = {r.id for r in read_manifest(self.root)}
        info_path = self.root / DATASET_INFO_NAME
        if info is not None or not info_path.exists():
            merged = {"format_version": FORMAT_VERSION}
            if info_path.exists():
                merged.update(json.loads(info_path.read_text()))
            merged.update(dict(info or {}))
            atomic_write_json(info_path, merged)

    def _repair_tail(self) -> None:
        # Drop a partial last line left by a crash so the next append starts clean.
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            with atomic_path(self.path) as tmp:
                tmp.write_bytes(data[:cut])

    def has(self, clip_id: str) -> bool:
        return clip_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, record: ClipRecord) -> None:
        if record.id in self._ids:
            raise MMPhysInputError(f"clip id {record.id!r} is already in {self.path}")
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(record.to_json() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self._ids.add(record.id)


def validate_cue_arrays(arrays: Mapping[str, np.ndarray], num_frames: int, height: int, width: int, where: str) -> None:
    """Check names and shapes of cue arrays against `CUE_ARRAYS`; raise naming `where` on mismatch."""
    for name, arr in arrays.items():
        if name not in CUE_ARRAYS:
            raise MMPhysInputError(f"{where}: unknown cue array {name!r}; expected one of {sorted(CUE_ARRAYS)}")
        arr = np.asarray(arr)
        if arr.shape[:3] != (num_frames, height, width):
            raise MMPhysInputError(
                f"{where}: cue array {name!r} has shape {arr.shape}, expected leading dims {(num_frames, height, width)}"
            )
        tail = {"xyz": (3,), "tracks": (2,), "flow": (2,)}.get(name, ())
        if arr.shape[3:] != tail:
            raise MMPhysInputError(f"{where}: cue array {name!r} has shape {arr.shape}, expected trailing dims {tail}")


def write_clip(
    root: str | os.PathLike,
    clip_id: str,
    rgb: np.ndarray,
    caption: str,
    fps: float,
    cue_arrays: Mapping[str, np.ndarray] | None = None,
    pseudo_rgb: Mapping[str, np.ndarray] | None = None,
    meta: Mapping[str, Any] | None = None,
    crf: int = DEFAULT_CRF,
    compress_cues: bool = True,
) -> ClipRecord:
    """Write one clip's files atomically and return its record (not yet in the manifest).

    Args:
        rgb: uint8 ``[F,H,W,3]``.
        cue_arrays: arrays named as in `CUE_ARRAYS`, each ``[F,H,W,...]``.
        pseudo_rgb: cue name -> pseudo-RGB video ``[F,3,H,W]`` float in [0,1] or ``[F,H,W,3]`` uint8.
    """
    root = Path(root)
    rgb = np.asarray(rgb)
    if rgb.ndim != 4 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise MMPhysInputError(f"clip {clip_id}: rgb must be uint8 [F,H,W,3], got {rgb.dtype} {rgb.shape}")
    f, h, w, _ = rgb.shape
    rel = Path("clips") / clip_id
    write_video(root / rel / "rgb.mp4", rgb, fps=fps, crf=crf)
    cues_rel = None
    if cue_arrays:
        validate_cue_arrays(cue_arrays, f, h, w, where=f"clip {clip_id}")
        cues_rel = str(rel / "cues.npz")
        with atomic_path(root / cues_rel) as tmp:
            _save_npz(tmp, cue_arrays, compress=compress_cues)
    pseudo_paths = {}
    for cue, video in (pseudo_rgb or {}).items():
        video = np.asarray(video)
        if video.ndim == 4 and video.shape[1] == 3 and video.shape[-1] != 3:
            video = video.transpose(0, 2, 3, 1)
        p = rel / f"{cue}.mp4"
        write_video(root / p, video, fps=fps, crf=crf)
        pseudo_paths[cue] = str(p)
    return ClipRecord(
        id=clip_id,
        rgb=str(rel / "rgb.mp4"),
        caption=caption,
        num_frames=f,
        fps=float(fps),
        height=h,
        width=w,
        cues=cues_rel,
        pseudo_rgb=pseudo_paths,
        meta=dict(meta or {}),
    )


def _save_npz(path: Path, arrays: Mapping[str, np.ndarray], compress: bool) -> None:
    """Write an ``.npz`` that `np.load` reads; deflate level 1 is ~3x faster than
    `np.savez_compressed` (level 6) and about as small for cue arrays."""
    import zipfile

    mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=mode, compresslevel=1 if compress else None) as zf:
        for name, value in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asarray(value), allow_pickle=False)


def load_cue_arrays(root: str | os.PathLike, record: ClipRecord, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Load (some of) a clip's cue arrays, with errors that name the file."""
    if record.cues is None:
        return {}
    path = Path(root) / record.cues
    if not path.exists():
        raise MMPhysInputError(f"clip {record.id}: cue file missing: {path}")
    try:
        with np.load(path) as npz:
            keys = list(npz.files) if names is None else [n for n in names if n in npz.files]
            return {k: npz[k] for k in keys}
    except MMPhysInputError:
        raise
    except Exception as exc:
        raise MMPhysInputError(f"clip {record.id}: corrupt cue file {path}: {exc}") from exc
