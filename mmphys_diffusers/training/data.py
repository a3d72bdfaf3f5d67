"""Training data: shared-format clips, a seeded resumable sampler and the latent cache.

The latent cache (``--cache_latents``) encodes every clip once with the frozen VAE and
text encoder and stores ``<cache>/<key>/<clip id>.safetensors`` atomically; later runs
(and resumed runs) read it instead of decoding mp4s and running the VAE. ``<key>`` hashes
everything the latents depend on (model, frames, size, cue, codec settings, sampling), so a changed
setting never reads stale latents.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch.utils.data import Dataset, Sampler

from ..errors import MMPhysInputError
from ..utils.atomic import atomic_path, atomic_write_json

logger = logging.getLogger(__name__)


class EpochSeededSampler(Sampler[int]):
    """Shuffles ``range(n)`` with a permutation that depends only on (seed, epoch).

    Every process draws the same permutation (accelerate then shards the batches), and a
    resumed run replays exactly the same order, so skipping the consumed batches lands on
    the same data position.
    """

    def __init__(self, num_samples: int, seed: int = 0, shuffle: bool = True):
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.shuffle = shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return iter(range(self.num_samples))
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.num_samples, generator=generator).tolist())


class TrainingClips(Dataset):
    """Shared-format clips as ``{"id", "rgb", "perception", "caption"}``.

    ``rgb`` and ``perception`` are ``[3, F, H, W]`` in [-1, 1] (the VAE's convention); the
    perception video is the pseudo-RGB video of one cue (default "unified").
    """

    def __init__(self, root: str | os.PathLike, cue: str, num_frames: int, height: int, width: int,
                 frame_sampling: str = "uniform", seed: int = 0, max_samples: int | None = None,
                 codec_kwargs: dict | None = None):
        from ..data import MMPhysVideoDataset

        # codec_kwargs: the cue codec's fixed settings (e.g. unified near/far/max_flow); None/{}: per clip
        self.codec_kwargs = dict(codec_kwargs or {})
        self.clips = MMPhysVideoDataset(root, cues=(cue,), num_frames=num_frames, height=height, width=width,
                                        frame_sampling=frame_sampling, seed=seed, codec_kwargs={cue: self.codec_kwargs})
        self.cue = cue
        self.length = min(len(self.clips), max_samples) if max_samples else len(self.clips)

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        self.clips.set_epoch(epoch)

    @property
    def records(self):
        return self.clips.records[: self.length]

    def __getitem__(self, index: int) -> dict:
        item = self.clips[index]
        # contiguous: a permuted [3, F, H, W] view sends the VAE's conv3d down a much slower path
        return {
            "id": item["id"],
            "rgb": item["rgb"].permute(1, 0, 2, 3).mul(2.0).sub(1.0).contiguous(),
            "perception": item["perception"][self.cue].permute(1, 0, 2, 3).mul(2.0).sub(1.0).contiguous(),
            "caption": item["caption"],
        }


def collate_training_clips(items: list[dict]) -> dict:
    """Stack pixel items (``[B, 3, F, H, W]``) or cached-latent items (any tensor keys)."""
    batch: dict = {"id": [it["id"] for it in items]}
    for key in items[0]:
        if key == "id":
            continue
        values = [it[key] for it in items]
        batch[key] = torch.stack(values) if torch.is_tensor(values[0]) else values
    return batch


# ------------------------------------------------------------------ latent cache


def latent_cache_key(info: dict) -> str:
    """A short stable hash of the settings the cached latents depend on."""
    blob = json.dumps(info, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


class LatentCache:
    """``<root>/<key>/<clip id>.safetensors`` holding ``rgb_latents``, ``perception_latents``, ``prompt_embeds``."""

    def __init__(self, root: str | os.PathLike, info: dict):
        self.info = info
        self.folder = Path(root) / latent_cache_key(info)

    def path(self, clip_id: str) -> Path:
        return self.folder / f"{clip_id}.safetensors"

    def has(self, clip_id: str) -> bool:
        return self.path(clip_id).is_file()

    def save(self, clip_id: str, tensors: dict[str, torch.Tensor]) -> None:
        from safetensors.torch import save_file

        with atomic_path(self.path(clip_id)) as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp))

    def load(self, clip_id: str) -> dict[str, torch.Tensor]:
        from safetensors.torch import load_file

        path = self.path(clip_id)
        try:
            return load_file(str(path))
        except Exception as exc:
            raise MMPhysInputError(f"latent cache file {path} is missing or corrupt ({exc}); delete it to re-encode") from exc

    def build(self, clips: TrainingClips, encode: Callable[[dict], dict[str, torch.Tensor]], accelerator=None) -> None:
        """Encode the clips that are not cached yet (each process takes every n-th clip).

        `encode` takes a one-clip batch (``collate_training_clips``) and returns tensors with a leading batch dim.
        """
        from tqdm.auto import tqdm

        rank = accelerator.process_index if accelerator is not None else 0
        world = accelerator.num_processes if accelerator is not None else 1
        if rank == 0:
            atomic_write_json(self.folder / "cache_info.json", self.info)
        todo = [i for i, rec in enumerate(clips.records) if i % world == rank and not self.has(rec.id)]
        main = accelerator is None or accelerator.is_local_main_process
        for index in tqdm(todo, desc="caching latents", disable=not main or not todo):
            batch = collate_training_clips([clips[index]])
            with torch.no_grad():
                tensors = encode(batch)
            self.save(batch["id"][0], {k: v[0] for k, v in tensors.items()})
        if accelerator is not None:
            accelerator.wait_for_everyone()


class CachedLatents(Dataset):
    """Items ``{"id", <cached tensors>}`` read from a built `LatentCache`."""

    def __init__(self, cache: LatentCache, clip_ids: list[str]):
        missing = [c for c in clip_ids if not cache.has(c)]
        if missing:
            raise MMPhysInputError(f"latent cache {cache.folder} lacks clip(s) {missing[:5]}; build it first")
        self.cache = cache
        self.clip_ids = list(clip_ids)

    def __len__(self) -> int:
        return len(self.clip_ids)

    def set_epoch(self, epoch: int) -> None:  # cached latents are deterministic
        pass

    def __getitem__(self, index: int) -> dict:
        return {"id": self.clip_ids[index], **self.cache.load(self.clip_ids[index])}
