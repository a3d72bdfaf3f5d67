"""Training a tiny video VAE on RGB *and* pseudo-RGB clips of the synthetic world.

The diffusion models of the tiny recipe see two kinds of video through one frozen VAE:
RGB and the pseudo-RGB perception videos of the teacher's cue (default "unified"). This
module trains that VAE (a diffusers ``AutoencoderKLWan`` or ``AutoencoderKLCogVideoX``)
on both, every clip contributing one RGB sample and one sample per cue:

    L = |x - D(z)|_1 + mse_weight * |x - D(z)|^2 + kl_weight * KL(q(z|x) || N(0, I)),   z ~ q(z|x)

with per-element means, or means weighted ``1 + foreground_weight`` on object pixels (the clips' exact
instance masks) when `foreground_weight > 0`, so small objects are not the cheapest thing to drop. After training, the per-channel latent mean/std of the training
data (posterior means of RGB and cue videos pooled) are written into the VAE config
(Wan: ``latents_mean`` / ``latents_std``; CogVideoX: ``scaling_factor`` = 1/std), so the
diffusion trainers see latents of about unit variance. Held-out PSNR is reported per
modality before and after training.

Checkpoints reuse the training package's atomic `CheckpointManager`; ``resume_from_checkpoint
"latest"`` restores weights, optimizer, LR schedule, RNG states, the posterior-noise generator
and the data position.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..errors import MMPhysInputError
from ..utils.atomic import atomic_write_json

logger = logging.getLogger(__name__)

VAE_SUMMARY_NAME = "vae_summary.json"
TINY_VAE_BASES = ("tiny-wan", "tiny-cogvideox", "tiny-video")


@dataclass
class VAETrainConfig:
    """Options of `train_vae` (each is a ``--flag`` of ``train/train_vae.py``)."""

    dataset: str = ""  # training clips (shared dataset format)
    eval_dataset: str | None = None  # held-out clips for PSNR; None: no PSNR
    output_dir: str = "outputs/vae"
    base_vae: str = "tiny-wan"  # "tiny-wan" / "tiny-cogvideox" (fresh, from `vae_config`) or a VAE folder
    vae_config: dict = field(default_factory=dict)  # constructor overrides of the tiny VAE
    cues: list[str] = field(default_factory=lambda: ["unified"])  # pseudo-RGB cues trained next to RGB
    codec_kwargs: dict = field(default_factory=dict)  # cue -> fixed codec kwargs (e.g. unified near/far/max_flow)
    num_frames: int = 9
    height: int = 32
    width: int = 32
    frame_sampling: str = "uniform"
    seed: int = 0
    train_batch_size: int = 4
    max_train_steps: int = 200
    learning_rate: float = 1e-3
    lr_warmup_steps: int = 0
    adam_weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    mse_weight: float = 1.0
    kl_weight: float = 1e-4
    # Extra reconstruction weight on object pixels (from the clips' exact instance masks): small objects
    # cover ~2% of a frame, and an unweighted loss is already low when the VAE drops them.
    foreground_weight: float = 0.0
    mixed_precision: str = "no"
    checkpointing_steps: int = 100
    checkpoints_total_limit: int | None = 2
    resume_from_checkpoint: str | None = None  # "latest" or a checkpoint folder
    num_stat_clips: int = 64  # clips used for the latent mean/std
    # Train on the dataset's first N clips only (None: all). Lets a recipe grow its diffusion data while
    # keeping the VAE of an earlier run: the simulator's clip i is the same whatever the dataset size.
    max_train_clips: int | None = None
    # Train on random contiguous windows of this many frames (4k+1) instead of whole clips: a 9-frame
    # window costs about half a 17-frame clip per step and still spans a full causal chunk after the
    # first frame. Held-out PSNR and the latent stats always use whole `num_frames` clips. None: whole clips.
    train_num_frames: int | None = None
    lr_scheduler: str = "constant_with_warmup"  # any diffusers `get_scheduler` name, e.g. "cosine"
    # Weight of a colour-direction term: the pixel-weighted mean of 1 - cos(angle) between the reconstructed
    # and the true RGB vectors (on the [0, 1] scale). The evaluation's parser finds objects by that angle
    # (under 8 degrees), and L1/MSE alone let a small object come back in another hue (run 5).
    colour_weight: float = 0.0
    # Train only the decoder (and post_quant_conv) of `base_vae`: the encoder, so the latent space and its
    # stored latents_mean/std, stay exactly as they were. Diffusion models trained on the base VAE's latents
    # keep working with the new decoder, so a decoder can be improved without retraining them.
    train_decoder_only: bool = False
    max_eval_clips: int = 16
    dataloader_num_workers: int = 0

    def validate(self) -> "VAETrainConfig":
        from .config import _check_dataset

        _check_dataset(self.dataset)
        if self.eval_dataset:
            try:
                _check_dataset(self.eval_dataset)
            except MMPhysInputError as exc:
                raise MMPhysInputError(f"eval_{exc}") from exc
        base = Path(self.base_vae)
        if self.base_vae not in TINY_VAE_BASES and not (base / "config.json").is_file() and not (base / "vae" / "config.json").is_file():
            raise MMPhysInputError(
                f"base_vae={self.base_vae!r}: expected one of {list(TINY_VAE_BASES)}, a VAE folder with config.json, "
                "or a pipeline folder with vae/config.json"
            )
        if (self.num_frames - 1) % 4 or self.num_frames < 1:
            raise MMPhysInputError(f"num_frames={self.num_frames}: expected 4k+1 frames (5, 9, 13, 17, ...)")
        for name in ("height", "width"):
            if getattr(self, name) % 8 or getattr(self, name) < 8:
                raise MMPhysInputError(f"{name}={getattr(self, name)}: expected a positive multiple of 8 (VAE 8x)")
        for name in ("train_batch_size", "max_train_steps", "checkpointing_steps", "num_stat_clips", "max_eval_clips"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise MMPhysInputError(f"{name}={getattr(self, name)!r}: expected a positive int")
        if self.max_train_clips is not None and (not isinstance(self.max_train_clips, int) or self.max_train_clips < 1):
            raise MMPhysInputError(f"max_train_clips={self.max_train_clips!r}: expected a positive int or None (all clips)")
        if self.train_num_frames is not None and (
            not isinstance(self.train_num_frames, int) or self.train_num_frames < 1 or (self.train_num_frames - 1) % 4
            or self.train_num_frames > self.num_frames
        ):
            raise MMPhysInputError(
                f"train_num_frames={self.train_num_frames!r}: expected None (whole clips) or 4k+1 frames "
                f"(5, 9, 13, ...) no longer than num_frames={self.num_frames}"
            )
        from diffusers.optimization import SchedulerType

        if self.lr_scheduler not in [t.value for t in SchedulerType]:
            raise MMPhysInputError(f"lr_scheduler={self.lr_scheduler!r}: expected one of {[t.value for t in SchedulerType]}")
        if not self.learning_rate > 0 or min(self.kl_weight, self.mse_weight, self.foreground_weight, self.colour_weight) < 0:
            raise MMPhysInputError("learning_rate must be > 0; kl_weight, mse_weight, foreground_weight and colour_weight >= 0")
        if self.train_decoder_only and self.base_vae in TINY_VAE_BASES:
            raise MMPhysInputError(
                f"train_decoder_only with base_vae={self.base_vae!r}: expected a trained VAE folder (a fresh VAE's "
                "encoder is random, so freezing it leaves nothing worth keeping)"
            )
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise MMPhysInputError(f"mixed_precision={self.mixed_precision!r}: expected 'no', 'fp16' or 'bf16'")
        if self.resume_from_checkpoint not in (None, "latest") and not Path(self.resume_from_checkpoint).is_dir():
            raise MMPhysInputError(f"resume_from_checkpoint={self.resume_from_checkpoint!r}: expected 'latest' or a checkpoint folder")
        from ..perception import available_cues

        unknown = [c for c in self.cues if c not in available_cues()]
        if unknown:
            raise MMPhysInputError(f"cues {unknown}: unknown pseudo-RGB cue(s); registered: {available_cues()}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------- data


class VAEClips(Dataset):
    """Every clip as ``1 + len(cues)`` samples: its RGB video and each cue's pseudo-RGB video.

    Item: ``{"video": [3, F, H, W] in [-1, 1], "modality": "rgb" | cue, "foreground": [1, F, H, W] in {0, 1}}``
    (the clip's object pixels, from its semantics cue; all zeros when the clip has no instance masks).
    """

    def __init__(self, root: str | os.PathLike, cues: Sequence[str], num_frames: int, height: int, width: int,
                 frame_sampling: str = "uniform", seed: int = 0, codec_kwargs: dict | None = None, max_clips: int | None = None):
        from ..data import MMPhysVideoDataset

        self.clips = MMPhysVideoDataset(root, cues=tuple(cues), num_frames=num_frames, height=height, width=width,
                                        frame_sampling=frame_sampling, seed=seed, codec_kwargs=codec_kwargs or {})
        # object masks travel as the semantics pseudo-RGB (background black), resized nearest like labels
        self.masks = MMPhysVideoDataset(root, cues=("semantics",), num_frames=num_frames, height=height, width=width,
                                        frame_sampling=frame_sampling, seed=seed)
        self.modalities = ["rgb", *cues]
        self.num_clips = min(len(self.clips), max_clips) if max_clips else len(self.clips)

    def __len__(self) -> int:
        return self.num_clips * len(self.modalities)

    def set_epoch(self, epoch: int) -> None:
        self.clips.set_epoch(epoch)
        self.masks.set_epoch(epoch)

    def foreground(self, clip_index: int) -> torch.Tensor:
        """Object pixels of one clip, ``[1, F, H, W]`` float in {0, 1}."""
        try:
            semantics = self.masks[clip_index]["perception"]["semantics"]  # [F, 3, H, W]
        except MMPhysInputError:  # a clip without instance masks weighs every pixel the same
            return torch.zeros(1, self.clips.num_frames, self.clips.height, self.clips.width)
        return (semantics.amax(dim=1) > 0.25).float()[None].contiguous()

    def clip_videos(self, clip_index: int) -> dict[str, torch.Tensor]:
        """All modalities of one clip: ``{modality: [3, F, H, W] in [-1, 1]}``."""
        item = self.clips[clip_index]
        out = {"rgb": item["rgb"]}
        out.update(item["perception"])
        # contiguous: a permuted [3, F, H, W] view sends conv3d down a much slower path
        return {k: v.permute(1, 0, 2, 3).mul(2.0).sub(1.0).contiguous() for k, v in out.items()}

    def __getitem__(self, index: int) -> dict:
        clip_index, m = divmod(index, len(self.modalities))
        modality = self.modalities[m]
        return {"video": self.clip_videos(clip_index)[modality], "modality": modality, "foreground": self.foreground(clip_index)}


def _collate(items: list[dict]) -> dict:
    return {
        "video": torch.stack([it["video"] for it in items]),
        "modality": [it["modality"] for it in items],
        "foreground": torch.stack([it["foreground"] for it in items]),
    }


def reconstruction_loss(
    recon: torch.Tensor, video: torch.Tensor, foreground: torch.Tensor | None, foreground_weight: float, mse_weight: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-weighted L1 and MSE (each a weighted mean): weight ``1 + foreground_weight`` on object pixels.

    Args:
        recon, video: ``[B, 3, F, H, W]``; foreground: ``[B, 1, F, H, W]`` in {0, 1} (or None).
    Returns:
        (l1, mse); with ``foreground_weight == 0`` they are the plain means.
    """
    err = recon.float() - video.float()
    if foreground is None or foreground_weight == 0:
        return err.abs().mean(), err.pow(2).mean()
    weight = (1.0 + foreground_weight * foreground.float()).expand_as(err)
    total = weight.sum()
    return (weight * err.abs()).sum() / total, (weight * err.pow(2)).sum() / total


def rgb_cosine(recon: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
    """Cosine of the angle between each pixel's reconstructed and true RGB vector, ``[B, F, H, W]``.

    Videos ``[B, 3, F, H, W]`` in [-1, 1] are moved to [0, 1], plus the parser's small offset (``colour_angle``)
    so black pixels have a direction.
    """
    return F.cosine_similarity((recon.float() + 1) / 2 + 1e-3, (video.float() + 1) / 2 + 1e-3, dim=1, eps=1e-6)


def colour_direction_loss(recon: torch.Tensor, video: torch.Tensor, foreground: torch.Tensor | None, foreground_weight: float) -> torch.Tensor:
    """Pixel-weighted mean of ``1 - cos`` of the angle between reconstructed and true RGB vectors.

    The vectors are taken on the [0, 1] scale, where black is the origin and a colour's direction is its
    hue and saturation (shading only scales it), as in the evaluation's colour parser.

    Args:
        recon, video: ``[B, 3, F, H, W]`` in [-1, 1]; foreground: ``[B, 1, F, H, W]`` in {0, 1} (or None).
    Returns:
        a scalar; 0 when every pixel keeps its RGB direction.
    """
    err = 1.0 - rgb_cosine(recon, video)[:, None]
    if foreground is None or foreground_weight == 0:
        return err.mean()
    weight = 1.0 + foreground_weight * foreground.float()
    return (weight * err).sum() / weight.sum()


# ---------------------------------------------------------------------- model


def build_vae(base_vae: str, vae_config: dict | None = None, seed: int = 0) -> nn.Module:
    """A fresh tiny VAE (``tiny-wan`` / ``tiny-cogvideox`` / ``tiny-video`` with `vae_config` overrides) or one
    loaded from a folder.

    ``tiny-video`` is `AutoencoderKLTinyVideo`, the normalisation-free VAE with Wan's latent layout that
    trains far faster on CPU than the stock classes at these widths (docs/mmphysvideo_tiny.md, run 7).
    """
    from ..backbones.tiny import seeded
    from ..models.autoencoder_kl_tiny_video import AutoencoderKLTinyVideo

    if base_vae == "tiny-video":
        with seeded(seed):
            return AutoencoderKLTinyVideo(**dict(vae_config or {}))
    if base_vae in TINY_VAE_BASES:
        from ..backbones import get_backbone_adapter

        adapter = get_backbone_adapter(base_vae)
        defaults = dict(adapter.tiny_components(seed=seed)["vae"].config)
        overrides = dict(vae_config or {})
        if base_vae == "tiny-wan" and "z_dim" in overrides:
            # placeholders until `compute_latent_stats` measures them
            overrides.setdefault("latents_mean", [0.0] * int(overrides["z_dim"]))
            overrides.setdefault("latents_std", [1.0] * int(overrides["z_dim"]))
        config = {k: v for k, v in {**defaults, **overrides}.items() if not k.startswith("_")}
        with seeded(seed):
            return adapter.vae_class.from_config(config)
    return load_vae(base_vae)


def load_vae(path: str | os.PathLike) -> nn.Module:
    """The VAE saved in `path` (a VAE folder, or a pipeline folder with ``vae/``), whatever its class."""
    import diffusers

    from ..models.autoencoder_kl_tiny_video import AutoencoderKLTinyVideo

    path = Path(path)
    folder = path if (path / "config.json").is_file() else path / "vae"
    name = json.loads((folder / "config.json").read_text()).get("_class_name", "AutoencoderKLWan")
    cls = AutoencoderKLTinyVideo if name == AutoencoderKLTinyVideo.__name__ else getattr(diffusers, name, None)
    if cls is None:
        raise MMPhysInputError(f"{folder}/config.json: unknown VAE class {name!r}; expected a diffusers VAE or AutoencoderKLTinyVideo")
    return cls.from_pretrained(folder)


def vae_family(vae: nn.Module) -> str:
    """``"wan"`` for VAEs with Wan's per-channel ``latents_mean`` / ``latents_std``, else ``"cogvideox"``."""
    from ..backbones import get_backbone_adapter

    return "wan" if get_backbone_adapter("wan").owns(vae) else "cogvideox"


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Per-element mean of KL(N(mean, exp(logvar)) || N(0, 1))."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).mean()


def reconstruct(vae: nn.Module, video: torch.Tensor, sample: bool = False, generator: torch.Generator | None = None):
    """``[B, 3, F, H, W]`` in [-1, 1] -> (reconstruction, posterior)."""
    posterior = vae.encode(video).latent_dist
    z = posterior.sample(generator=generator) if sample else posterior.mode()
    recon = vae.decode(z).sample
    return recon[:, :, : video.shape[2]], posterior


class VAEWithPosterior(nn.Module):
    """Wraps a VAE so one ``forward`` returns what the loss needs (DDP syncs gradients through forward only).

    ``forward(video [B,3,F,H,W], generator)`` -> (reconstruction, posterior mean, posterior logvar).
    """

    def __init__(self, vae: nn.Module):
        super().__init__()
        self.vae = vae

    def forward(self, video: torch.Tensor, generator: torch.Generator | None = None):
        recon, posterior = reconstruct(self.vae, video, sample=True, generator=generator)
        return recon, posterior.mean, posterior.logvar


def _squared_error(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-element squared error of videos in [-1, 1], measured on the [0, 1] scale."""
    return ((recon.float().clamp(-1, 1) - target.float()) / 2).pow(2)


def _psnr_of_mse(mse: torch.Tensor) -> torch.Tensor:
    """PSNR (dB) of an MSE measured on the [0, 1] scale."""
    return 10.0 * torch.log10(1.0 / mse.clamp_min(1e-10))


@torch.no_grad()
def _reconstruction_errors(vae: nn.Module, clips: VAEClips, device: torch.device | str, max_clips: int | None):
    """Yield ``(modality, squared error [1, 3, F, H, W])`` of each of the first `max_clips` clips (posterior
    mode, eval mode; the VAE's train/eval mode is restored afterwards)."""
    was_training = vae.training
    vae.eval()
    try:
        for i in range(min(clips.num_clips, max_clips or clips.num_clips)):
            for modality, video in clips.clip_videos(i).items():
                video = video[None].to(device, vae.dtype)
                recon, _ = reconstruct(vae, video)
                yield modality, _squared_error(recon, video)
    finally:
        vae.train(was_training)


def evaluate_psnr(vae: nn.Module, clips: VAEClips, device: torch.device | str = "cpu", max_clips: int | None = None) -> dict[str, float]:
    """Mean reconstruction PSNR (dB, posterior mode) per modality over the first `max_clips` clips."""
    scores: dict[str, list[float]] = {m: [] for m in clips.modalities}
    for modality, err in _reconstruction_errors(vae, clips, device, max_clips):
        scores[modality].append(float(_psnr_of_mse(err.mean())))
    return {m: round(sum(v) / len(v), 3) for m, v in scores.items() if v}


def evaluate_psnr_per_frame(vae: nn.Module, clips: VAEClips, device: torch.device | str = "cpu", max_clips: int | None = None) -> dict[str, list[float]]:
    """Reconstruction PSNR (dB, posterior mode) of each frame index per modality: ``{modality: [F]}``.

    Each frame's PSNR comes from its MSE averaged over the first `max_clips` clips. It shows where in a clip
    a causal video VAE loses quality, e.g. past the window length it was trained on.
    """
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    for modality, err in _reconstruction_errors(vae, clips, device, max_clips):
        sums[modality] = sums.get(modality, 0) + err.mean(dim=(0, 1, 3, 4)).cpu()
        counts[modality] = counts.get(modality, 0) + 1
    return {m: [round(float(_psnr_of_mse(v)), 2) for v in total / counts[m]] for m, total in sums.items()}


# the evaluation parser's default colour threshold (evaluation/parsing.py), in degrees
COLOUR_RECALL_DEGREES = 8.0


@torch.no_grad()
def evaluate_colour_recall(vae: nn.Module, clips: VAEClips, device: torch.device | str = "cpu", max_clips: int | None = None,
                           threshold_degrees: float = COLOUR_RECALL_DEGREES) -> float | None:
    """Fraction of object pixels whose reconstructed RGB direction stays within `threshold_degrees` of the truth.

    Object pixels come from the clips' instance masks; only the RGB modality is scored. This is what the
    evaluation's colour parser needs to find an object in a decoded video, and what PSNR does not show: a
    VAE can gain PSNR while shifting a small object's hue (run 5). None when the clips have no objects.
    """
    was_training = vae.training
    vae.eval()
    hits = total = 0
    try:
        for i in range(min(clips.num_clips, max_clips or clips.num_clips)):
            fg = clips.foreground(i)[0].bool()  # [F, H, W]
            if not fg.any():
                continue
            video = clips.clip_videos(i)["rgb"][None].to(device, vae.dtype)
            recon, _ = reconstruct(vae, video)
            angle = torch.rad2deg(torch.arccos(rgb_cosine(recon.clamp(-1, 1), video)[0].clamp(-1, 1))).cpu()
            hits += int((angle[fg] < threshold_degrees).sum())
            total += int(fg.sum())
    finally:
        vae.train(was_training)
    return round(hits / total, 4) if total else None


@torch.no_grad()
def compute_latent_stats(vae: nn.Module, clips: VAEClips, device: torch.device | str = "cpu", max_clips: int = 64) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of the posterior means of `max_clips` clips (every modality pooled)."""
    vae.eval()
    total = sum_sq = None
    count = 0
    for i in range(min(clips.num_clips, max_clips)):
        for video in clips.clip_videos(i).values():
            z = vae.encode(video[None].to(device, vae.dtype)).latent_dist.mode().double()  # [1, C, f, h, w]
            z = z.transpose(0, 1).flatten(1)  # [C, N]
            total = z.sum(1) if total is None else total + z.sum(1)
            sum_sq = z.pow(2).sum(1) if sum_sq is None else sum_sq + z.pow(2).sum(1)
            count += z.shape[1]
    mean = total / count
    std = (sum_sq / count - mean.pow(2)).clamp_min(1e-8).sqrt()
    return [round(float(v), 6) for v in mean], [round(float(v), 6) for v in std]


def _stored_latent_stats(vae: nn.Module) -> tuple[list[float] | None, list[float] | None]:
    """The latent stats already in the VAE's config (Wan: ``latents_mean`` / ``latents_std``; CogVideoX: none)."""
    return (list(vae.config.latents_mean), list(vae.config.latents_std)) if vae_family(vae) == "wan" else (None, None)


def apply_latent_stats(vae: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
    """Store the measured stats where the backbone's pipelines read them."""
    if vae_family(vae) == "wan":
        vae.register_to_config(latents_mean=list(mean), latents_std=list(std))
    else:  # CogVideoX scales by one global factor (its latents are not mean-shifted)
        rms = math.sqrt(sum(s * s + m * m for m, s in zip(mean, std)) / len(std))
        vae.register_to_config(scaling_factor=round(1.0 / rms, 6))


# ---------------------------------------------------------------------- training


def _new_accelerator(config: VAETrainConfig, output_dir: Path):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState
    from accelerate.utils import ProjectConfiguration

    # accelerate keeps process-wide singletons; a second run in the same process starts afresh
    AcceleratorState._reset_state()
    GradientState._reset_state()
    return Accelerator(mixed_precision=config.mixed_precision, project_config=ProjectConfiguration(project_dir=str(output_dir)))


def train_vae(config: VAETrainConfig, interrupt_after_step: int | None = None) -> dict[str, Any]:
    """Train (or resume) the VAE; save it with ``save_pretrained`` into ``config.output_dir``.

    Returns the summary also written to ``<output_dir>/vae_summary.json``: loss curve, PSNR per modality
    on the held-out clips before and after training, latent stats, timings. The summary is written last,
    so its presence marks a finished run. `interrupt_after_step` raises `InterruptedForTest` after that
    step's checkpoint (tests).
    """
    from accelerate.utils import set_seed
    from diffusers.optimization import get_scheduler
    from tqdm.auto import tqdm

    from .checkpointing import CheckpointManager, resolve_checkpoint
    from .data import EpochSeededSampler
    from .trainer import GeneratorState, InterruptedForTest

    cfg = config.validate()
    output_dir = Path(cfg.output_dir)
    acc = _new_accelerator(cfg, output_dir)
    set_seed(cfg.seed, device_specific=False)
    if acc.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
    clips = VAEClips(cfg.dataset, cfg.cues, cfg.train_num_frames or cfg.num_frames, cfg.height, cfg.width,
                     "random" if cfg.train_num_frames else cfg.frame_sampling, cfg.seed, cfg.codec_kwargs, max_clips=cfg.max_train_clips)
    eval_clips = (
        VAEClips(cfg.eval_dataset, cfg.cues, cfg.num_frames, cfg.height, cfg.width, "uniform", cfg.seed, cfg.codec_kwargs,
                 max_clips=cfg.max_eval_clips)
        if cfg.eval_dataset else None
    )
    vae = build_vae(cfg.base_vae, cfg.vae_config, seed=cfg.seed).to(acc.device)
    vae.requires_grad_(True)
    if cfg.train_decoder_only:
        vae.requires_grad_(False)
        if not hasattr(vae, "decoder"):
            raise MMPhysInputError(f"train_decoder_only: {type(vae).__name__} has no separate decoder module to train")
        for part in (vae.decoder, getattr(vae, "post_quant_conv", None)):
            if part is not None:  # CogVideoX's VAE may have no post_quant_conv
                part.requires_grad_(True)
    vae.train()
    psnr_before = evaluate_psnr(vae, eval_clips, acc.device) if eval_clips is not None and acc.is_main_process else None
    colour_before = evaluate_colour_recall(vae, eval_clips, acc.device) if eval_clips is not None and acc.is_main_process else None

    sampler = EpochSeededSampler(len(clips), seed=cfg.seed)
    loader = torch.utils.data.DataLoader(clips, batch_size=cfg.train_batch_size, sampler=sampler, collate_fn=_collate,
                                         num_workers=cfg.dataloader_num_workers, drop_last=len(clips) >= cfg.train_batch_size)
    optimizer = torch.optim.AdamW([p for p in vae.parameters() if p.requires_grad], lr=cfg.learning_rate, weight_decay=cfg.adam_weight_decay, betas=(0.9, 0.99))
    lr_scheduler = get_scheduler(cfg.lr_scheduler, optimizer=optimizer, num_warmup_steps=cfg.lr_warmup_steps * acc.num_processes,
                                 num_training_steps=cfg.max_train_steps * acc.num_processes)
    model, optimizer, loader, lr_scheduler = acc.prepare(VAEWithPosterior(vae), optimizer, loader, lr_scheduler)
    rng = GeneratorState(cfg.seed * 7919 + acc.process_index, acc.device)
    acc.register_for_checkpointing(rng)
    checkpoints = CheckpointManager(acc, output_dir, cfg.checkpoints_total_limit)

    history: list[dict[str, float]] = []
    history_path = output_dir / "logs" / "vae_training_log.jsonl"
    global_step, first_epoch, skip = 0, 0, 0
    steps_per_epoch = max(1, len(loader))
    checkpoint = resolve_checkpoint(output_dir, cfg.resume_from_checkpoint)
    if checkpoint is not None:
        state = checkpoints.load(checkpoint)
        global_step = int(state["global_step"])
        first_epoch, skip = divmod(global_step, steps_per_epoch)
        if history_path.is_file():
            history = [json.loads(l) for l in history_path.read_text().splitlines() if l.strip()]
            history = [h for h in history if h["step"] <= global_step]

    def write_history() -> None:
        if acc.is_main_process:
            from ..utils.atomic import atomic_write_text

            atomic_write_text(history_path, "".join(json.dumps(h) + "\n" for h in history))

    progress = tqdm(total=cfg.max_train_steps, initial=global_step, desc="train vae", disable=not acc.is_local_main_process)
    start = time.perf_counter()
    step_clock: list[float] = []
    epoch = first_epoch
    while global_step < cfg.max_train_steps:
        sampler.set_epoch(epoch)
        clips.set_epoch(epoch)
        epoch_loader = acc.skip_first_batches(loader, skip) if skip else loader
        if hasattr(epoch_loader, "set_epoch"):
            epoch_loader.set_epoch(epoch)
        skip = 0
        for batch in epoch_loader:
            step_clock.append(time.perf_counter())
            video = batch["video"].to(acc.device)
            with acc.autocast():
                recon, mean, logvar = model(video, generator=rng.generator)
                l1, mse = reconstruction_loss(recon, video, batch["foreground"].to(acc.device), cfg.foreground_weight, cfg.mse_weight)
                kl = gaussian_kl(mean.float(), logvar.float())
                loss = l1 + cfg.mse_weight * mse + cfg.kl_weight * kl
                if cfg.colour_weight > 0:
                    colour = colour_direction_loss(recon, video, batch["foreground"].to(acc.device), cfg.foreground_weight)
                    loss = loss + cfg.colour_weight * colour
            acc.backward(loss)
            if cfg.max_grad_norm > 0:
                acc.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            lr_scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            global_step += 1
            history.append({"step": global_step, "loss": loss.item(), "l1": l1.item(), "mse": mse.item(), "kl": kl.item(),
                            **({"colour": colour.item()} if cfg.colour_weight > 0 else {})})
            progress.update(1)
            progress.set_postfix(loss=f"{loss.item():.4f}")
            if global_step % cfg.checkpointing_steps == 0 or global_step == cfg.max_train_steps:
                write_history()
                checkpoints.save(global_step, {"epoch": epoch})
            if interrupt_after_step is not None and global_step >= interrupt_after_step:
                progress.close()
                raise InterruptedForTest(f"interrupted after step {global_step}")
            if global_step >= cfg.max_train_steps:
                break
        epoch += 1
    progress.close()
    train_seconds = time.perf_counter() - start
    acc.wait_for_everyone()
    summary: dict[str, Any] = {}
    if acc.is_main_process:
        vae = acc.unwrap_model(model).vae.float()
        stats_clips = VAEClips(cfg.dataset, cfg.cues, cfg.num_frames, cfg.height, cfg.width, "uniform", cfg.seed, cfg.codec_kwargs,
                                max_clips=cfg.max_train_clips)
        if cfg.train_decoder_only:  # the encoder is the base's: keep the stats the diffusion models were trained with
            mean, std = _stored_latent_stats(vae)
        else:
            mean, std = compute_latent_stats(vae, stats_clips, acc.device, cfg.num_stat_clips)
            apply_latent_stats(vae, mean, std)
        vae.save_pretrained(output_dir)
        k = max(1, min(10, len(history) // 4 or 1))
        losses = [h["loss"] for h in history]
        summary = {
            "global_step": global_step,
            "loss_first": sum(losses[:k]) / k if losses else None,
            "loss_last": sum(losses[-k:]) / k if losses else None,
            "psnr_before": psnr_before,
            "psnr": evaluate_psnr(vae, eval_clips, acc.device) if eval_clips is not None else None,
            # fraction of held-out object pixels whose decoded colour the evaluation's parser still recognises
            "colour_recall_before": colour_before,
            "colour_recall": evaluate_colour_recall(vae, eval_clips, acc.device) if eval_clips is not None else None,
            "latents_mean": mean,
            "latents_std": std,
            "train_seconds": round(train_seconds, 2),
            # the median gap between steps of this process: robust to warm-up, checkpoints and a busy machine
            "median_step_seconds": round(sorted(gaps)[len(gaps) // 2], 4) if (gaps := [b - a for a, b in zip(step_clock, step_clock[1:])]) else None,
            "num_parameters": sum(p.numel() for p in vae.parameters()),
            "config": cfg.to_dict(),
            "loss_curve": [{"step": h["step"], "loss": round(h["loss"], 6)} for h in history],
        }
        write_history()
        atomic_write_json(output_dir / VAE_SUMMARY_NAME, summary)
        logger.info("saved VAE to %s (PSNR %s)", output_dir, summary["psnr"])
    acc.wait_for_everyone()
    acc.end_training()
    return summary


# ---------------------------------------------------------------------- CLI


def parse_vae_config(argv: Sequence[str] | None = None) -> VAETrainConfig:
    """``--config file.json`` plus ``--<field> value`` overrides (dict fields take JSON)."""
    import argparse
    import typing

    from .config import _coerce, read_config_file

    parser = argparse.ArgumentParser(description="Train a tiny video VAE on RGB + pseudo-RGB clips (mmphys_diffusers.training.vae).")
    parser.add_argument("--config", default=None, help="JSON file of options; flags override it")
    hints = typing.get_type_hints(VAETrainConfig)
    for f in dataclasses.fields(VAETrainConfig):
        help_text = f"(default: {f.default if f.default is not dataclasses.MISSING else f.default_factory()!r})"  # type: ignore[misc]
        if hints[f.name] is bool:  # --flag, or --flag true/false, as in the diffusion trainers
            parser.add_argument(f"--{f.name}", nargs="?", const="true", default=argparse.SUPPRESS, help=help_text)
            continue
        nargs = "*" if typing.get_origin(hints[f.name]) is list else None
        parser.add_argument(f"--{f.name}", nargs=nargs, default=argparse.SUPPRESS, help=help_text)
    args = vars(parser.parse_args(argv))
    path = args.pop("config", None)
    data = read_config_file(path) if path else {}
    data.update(args)
    known = {f.name for f in dataclasses.fields(VAETrainConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise MMPhysInputError(f"unknown VAE option(s) {unknown}; known: {sorted(known)}")
    # `_coerce` also reads dict options (a mapping, or a JSON object string from the command line)
    values = {key: _coerce(value, hints[key], key, "VAE config") for key, value in data.items()}
    return VAETrainConfig(**values).validate()


def main(argv: Sequence[str] | None = None) -> int:
    summary = train_vae(parse_vae_config(argv))
    if summary:
        print(json.dumps({k: summary[k] for k in ("global_step", "loss_first", "loss_last", "psnr_before", "psnr", "train_seconds")}))
    return 0
