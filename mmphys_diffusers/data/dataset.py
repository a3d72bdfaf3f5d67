"""`MMPhysVideoDataset`: RGB video + pseudo-RGB cue videos + caption, ready for training.

Reads the shared dataset format (docs/dataset_format.md). Cue videos are made from
the clip's exact cue arrays through the perception codecs when the arrays are
present, and read from the clip's pseudo-RGB mp4 otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..errors import MMPhysInputError
from ..perception import as_pseudo_rgb, available_cues, get_codec
from ..utils.video_io import read_video
from .manifest import ClipRecord, load_cue_arrays, read_manifest

FRAME_SAMPLING_MODES = ("uniform", "first", "random")


def sample_frame_indices(total: int, num_frames: int, mode: str, rng: np.random.Generator | None = None) -> np.ndarray:
    """Pick `num_frames` indices from a clip of `total` frames.

    "first": the first `num_frames` frames (needs total >= num_frames);
    "random": a random contiguous window (training augmentation);
    "uniform": evenly spaced over the whole clip (frames repeat if total < num_frames).
    """
    if mode not in FRAME_SAMPLING_MODES:
        raise MMPhysInputError(f"unknown frame_sampling {mode!r}; expected one of {FRAME_SAMPLING_MODES}")
    if total < 1:
        raise MMPhysInputError("clip has no frames")
    if mode == "uniform" or total < num_frames:
        return np.round(np.linspace(0, total - 1, num_frames)).astype(np.int64)
    start = 0 if mode == "first" else int((rng or np.random.default_rng()).integers(0, total - num_frames + 1))
    return np.arange(start, start + num_frames)


def resize_video(video: torch.Tensor, height: int, width: int, mode: str = "bilinear") -> torch.Tensor:
    """Resize ``[F, C, H, W]`` frames; "nearest" keeps label colours intact, "bilinear" uses antialiasing."""
    if video.shape[-2:] == (height, width):
        return video
    if mode == "nearest":
        return F.interpolate(video, size=(height, width), mode="nearest-exact")
    return F.interpolate(video, size=(height, width), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


class MMPhysVideoDataset(Dataset):
    """Clips of the shared format as tensors.

    Args:
        root: dataset folder (holding manifest.jsonl).
        cues: pseudo-RGB cues to return (codec names, e.g. ("unified",) or ("depth", "semantics")).
        num_frames, height, width: output size; frames are sampled with `frame_sampling`.
        frame_sampling: "uniform" (default), "first" or "random".
        codec_kwargs: per-cue keyword arguments for `get_codec`.
        seed: seeds "random" frame sampling (per item: seed + index + epoch).

    Each item is a dict:
        ``rgb``: float32 ``[F, 3, H, W]`` in [0, 1];
        ``perception``: {cue: float32 ``[F, 3, H, W]`` in [0, 1]};
        ``caption``: str; ``id``: str; ``meta``: dict (the record's metadata).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        cues: Sequence[str] = ("unified",),
        num_frames: int = 17,
        height: int = 64,
        width: int = 64,
        frame_sampling: str = "uniform",
        codec_kwargs: dict[str, dict] | None = None,
        seed: int = 0,
    ):
        self.root = Path(root)
        self.records: list[ClipRecord] = read_manifest(self.root)
        if not self.records:
            raise MMPhysInputError(f"dataset {self.root} has an empty manifest")
        if isinstance(cues, str):
            cues = (cues,)
        unknown = [c for c in cues if c not in available_cues()]
        if unknown:
            raise MMPhysInputError(f"unknown cue(s) {unknown} for dataset {self.root}; expected some of {available_cues()}")
        if frame_sampling not in FRAME_SAMPLING_MODES:
            raise MMPhysInputError(f"unknown frame_sampling {frame_sampling!r}; expected one of {FRAME_SAMPLING_MODES}")
        for name, value in (("num_frames", num_frames), ("height", height), ("width", width)):
            if not isinstance(value, int) or value < 1:
                raise MMPhysInputError(f"{name} must be a positive int, got {value!r}")
        self.cues = tuple(cues)
        self.num_frames, self.height, self.width = num_frames, height, width
        self.frame_sampling = frame_sampling
        self.codecs = {c: get_codec(c, **(codec_kwargs or {}).get(c, {})) for c in self.cues}
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _cue_video(self, record: ClipRecord, cue: str, arrays: dict[str, np.ndarray]) -> np.ndarray:
        codec = self.codecs[cue]
        if all(k in arrays for k in codec.required_arrays):
            video, _ = codec.encode(**{k: arrays[k] for k in codec.required_arrays})
            return video
        if cue in record.pseudo_rgb:
            frames, _ = read_video(self.root / record.pseudo_rgb[cue])
            return as_pseudo_rgb(frames, name=f"clip {record.id} {cue} video")
        raise MMPhysInputError(
            f"clip {record.id} in {self.root} has neither cue arrays {list(codec.required_arrays)} "
            f"nor a pseudo-RGB video for cue {cue!r}"
        )

    def __getitem__(self, index: int) -> dict:
        record = self.records[index]
        rgb_path = self.root / record.rgb
        frames, _ = read_video(rgb_path)
        total = frames.shape[0]
        rng = np.random.default_rng((self.seed, self.epoch, index))
        idx = sample_frame_indices(total, self.num_frames, self.frame_sampling, rng)
        rgb = torch.from_numpy(frames[idx]).permute(0, 3, 1, 2).float().div_(255.0)
        needed = {k for c in self.cues for k in self.codecs[c].required_arrays}
        arrays = load_cue_arrays(self.root, record, needed)
        perception = {}
        for cue in self.cues:
            video = self._cue_video(record, cue, arrays)
            if video.shape[0] != total:
                raise MMPhysInputError(
                    f"clip {record.id}: cue {cue!r} has {video.shape[0]} frames but {rgb_path.name} has {total}"
                )
            t = torch.from_numpy(np.ascontiguousarray(video[idx]))
            perception[cue] = resize_video(t, self.height, self.width, self.codecs[cue].resize_mode)
        return {
            "id": record.id,
            "rgb": resize_video(rgb, self.height, self.width),
            "perception": perception,
            "caption": record.caption,
            "meta": record.meta,
        }


def collate_clips(items: list[dict]) -> dict:
    """Batch dataset items: tensors stacked to ``[B, F, 3, H, W]``; captions/ids/meta as lists."""
    return {
        "id": [it["id"] for it in items],
        "rgb": torch.stack([it["rgb"] for it in items]),
        "perception": {c: torch.stack([it["perception"][c] for it in items]) for c in items[0]["perception"]},
        "caption": [it["caption"] for it in items],
        "meta": [it["meta"] for it in items],
    }
