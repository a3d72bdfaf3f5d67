"""A small video feature network trained by the project, and the Fréchet distance on its features.

Published FVD uses an I3D network trained on Kinetics; no PyPI package ships those
weights and they cannot be downloaded here. We train our own tiny 3-D conv encoder on
simulator clips (scene-family classification) and compute a Fréchet distance between
Gaussian fits of its features. The number ranks models *against each other on our
synthetic world*; it is NOT comparable to published FVD values.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import MMPhysInputError
from ..utils.atomic import atomic_path, atomic_write_json
from ..utils.video_io import to_uint8_frames

CONFIG_NAME = "feature_net_config.json"
WEIGHTS_NAME = "feature_net.safetensors"


@dataclass
class VideoFeatureNetConfig:
    """Sizes of `VideoFeatureNet`. Videos are resampled to ``num_frames`` x ``size`` x ``size``."""

    num_frames: int = 8
    size: int = 32
    channels: tuple[int, ...] = (8, 16, 32)
    feature_dim: int = 32
    class_names: list[str] = field(default_factory=list)


class VideoFeatureNet(nn.Module):
    """Tiny 3-D convolutional video encoder with a classification head.

    ``forward(x)`` takes ``[B, 3, T, S, S]`` float in [-1, 1] and returns
    ``(features [B, feature_dim], logits [B, num_classes])``; the features (the
    penultimate layer, like Inception's pool features for FID) feed the Fréchet distance.
    """

    def __init__(self, config: VideoFeatureNetConfig | None = None, **kwargs: Any):
        super().__init__()
        self.config = config or VideoFeatureNetConfig(**kwargs)
        layers: list[nn.Module] = []
        c_in = 3
        for k, c_out in enumerate(self.config.channels):
            # First layer keeps time resolution; later ones halve everything.
            stride = (1, 2, 2) if k == 0 else (2, 2, 2)
            layers += [nn.Conv3d(c_in, c_out, 3, stride=stride, padding=1), nn.GroupNorm(4, c_out), nn.SiLU()]
            c_in = c_out
        self.encoder = nn.Sequential(*layers)
        self.proj = nn.Linear(c_in, self.config.feature_dim)
        self.head = nn.Linear(self.config.feature_dim, max(1, len(self.config.class_names)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x).mean(dim=(2, 3, 4))
        features = self.proj(h)
        return features, self.head(F.silu(features))

    def preprocess(self, videos: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
        """uint8/float ``[F, H, W, 3]`` videos (any F, H, W) -> ``[B, 3, T, S, S]`` in [-1, 1]."""
        cfg = self.config
        out = []
        for v in videos:
            v = to_uint8_frames(v)
            idx = np.round(np.linspace(0, len(v) - 1, cfg.num_frames)).astype(int)
            t = torch.from_numpy(v[idx]).float().permute(0, 3, 1, 2) / 127.5 - 1.0  # [T,3,H,W]
            t = F.interpolate(t, size=(cfg.size, cfg.size), mode="bilinear", align_corners=False, antialias=True)
            out.append(t.permute(1, 0, 2, 3))
        if not out:
            raise MMPhysInputError("no videos given to the feature network")
        return torch.stack(out)

    @torch.no_grad()
    def extract_features(self, videos: Sequence[np.ndarray] | np.ndarray, batch_size: int = 16) -> np.ndarray:
        """float64 ``[N, feature_dim]`` features of N videos."""
        was_training = self.training
        self.eval()
        feats = []
        for i in range(0, len(videos), batch_size):
            feats.append(self(self.preprocess(videos[i : i + batch_size]))[0].double().numpy())
        self.train(was_training)
        return np.concatenate(feats)

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        cfg = asdict(self.config)
        cfg["channels"] = list(cfg["channels"])
        atomic_write_json(directory / CONFIG_NAME, cfg)
        with atomic_path(directory / WEIGHTS_NAME) as tmp:
            save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(tmp))
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> "VideoFeatureNet":
        from safetensors.torch import load_file

        directory = Path(directory)
        cfg_path, w_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
        if not cfg_path.exists() or not w_path.exists():
            raise MMPhysInputError(
                f"feature network folder {directory} must hold {CONFIG_NAME} and {WEIGHTS_NAME} "
                "(train one with `mmphys eval train-features`)"
            )
        cfg = json.loads(cfg_path.read_text())
        cfg["channels"] = tuple(cfg["channels"])
        net = cls(VideoFeatureNetConfig(**cfg))
        net.load_state_dict(load_file(str(w_path)))
        net.eval()
        return net


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussian fits of two feature sets.

    ``|mu_a - mu_b|² + tr(S_a) + tr(S_b) - 2 tr((S_a^½ S_b S_a^½)^½)``, in squared feature
    units; 0 for identical sets. The matrix square root goes through symmetric
    eigen-decompositions, which is stable for the rank-deficient covariances of small sets.

    Args:
        features_a, features_b: ``[N, D]`` and ``[M, D]`` with N, M >= 2.
    """
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise MMPhysInputError(f"feature sets must be [N, D] and [M, D] with equal D, got {a.shape} and {b.shape}")
    if len(a) < 2 or len(b) < 2:
        raise MMPhysInputError(f"each feature set needs at least 2 samples for a covariance, got {len(a)} and {len(b)}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(cov_a)
    sqrt_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    middle = sqrt_a @ cov_b @ sqrt_a
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    value = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2.0 * tr_sqrt)
    return max(value, 0.0)  # tiny negatives are round-off of the square root


def simulated_training_set(num_clips: int, seed: int = 0, num_frames: int = 17, size: int = 64, families: Sequence[str] | None = None):
    """Simulator clips and their family labels for `train_feature_network`.

    Returns:
        (videos list of uint8 ``[F, H, W, 3]``, labels int list, class_names).
    """
    from ..simulation import SCENE_FAMILIES, simulate_clip

    families = list(families or SCENE_FAMILIES)
    videos, labels = [], []
    for i in range(num_clips):
        family = families[i % len(families)]
        clip = simulate_clip(family, seed=seed * 1_000_003 + i, num_frames=num_frames, size=size)
        videos.append(clip.rgb)
        labels.append(families.index(family))
    return videos, labels, families


def dataset_training_set(root: str | os.PathLike, max_clips: int | None = None):
    """Clips of a dataset (the shared manifest format) labelled by ``meta["family"]``."""
    from ..data.manifest import read_manifest
    from ..utils.video_io import read_video

    records = read_manifest(root)[:max_clips]
    names = sorted({r.meta.get("family") for r in records if r.meta.get("family")})
    if not names:
        raise MMPhysInputError(f"dataset {root} has no clips with meta['family'] to train the feature network on")
    videos, labels = [], []
    for r in records:
        if r.meta.get("family") in names:
            videos.append(read_video(Path(root) / r.rgb)[0])
            labels.append(names.index(r.meta["family"]))
    return videos, labels, names


def train_feature_network(
    videos: Sequence[np.ndarray],
    labels: Sequence[int],
    class_names: Sequence[str],
    epochs: int = 10,
    batch_size: int = 16,
    learning_rate: float = 5e-3,
    seed: int = 0,
    config: VideoFeatureNetConfig | None = None,
    progress: bool = True,
) -> tuple[VideoFeatureNet, dict[str, list[float]]]:
    """Train `VideoFeatureNet` to classify scene families (cross-entropy, AdamW).

    Returns:
        the trained network (eval mode) and a history with per-epoch ``loss`` and ``accuracy``
        (training-set accuracy, a sanity check, not a held-out score).
    """
    from tqdm.auto import tqdm

    if len(videos) != len(labels) or not videos:
        raise MMPhysInputError(f"need as many labels as videos (> 0), got {len(videos)} videos and {len(labels)} labels")
    torch.manual_seed(seed)
    cfg = config or VideoFeatureNetConfig()
    cfg.class_names = list(class_names)
    net = VideoFeatureNet(cfg)
    x_all = net.preprocess(videos)
    y_all = torch.as_tensor(list(labels), dtype=torch.long)
    opt = torch.optim.AdamW(net.parameters(), lr=learning_rate, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(seed)
    history: dict[str, list[float]] = {"loss": [], "accuracy": []}
    net.train()
    for _ in tqdm(range(epochs), desc="feature net", disable=not progress):
        order = torch.randperm(len(x_all), generator=gen)
        total, correct = 0.0, 0
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            x = x_all[idx]
            if torch.rand((), generator=gen) < 0.5:  # left-right flips keep the physics
                x = x.flip(-1)
            _, logits = net(x)
            loss = F.cross_entropy(logits, y_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(-1) == y_all[idx]).sum())
        history["loss"].append(total / len(order))
        history["accuracy"].append(correct / len(order))
    net.eval()
    return net, history
