"""Base class and registry for pseudo-RGB perception codecs.

A codec turns one perceptual cue into a 3-channel "pseudo-RGB" video that the
backbone's own VAE and transformer can model, and back again.

Conventions (every codec):
    * `encode(**arrays)` takes cue arrays by their canonical names
      (`mmphys_diffusers.data.manifest.CUE_ARRAYS`), numpy or torch, and returns
      ``(video, meta)``: ``video`` float32 ``[F, 3, H, W]`` in [0, 1] and ``meta`` a
      JSON-serialisable dict with whatever `decode` needs (e.g. a depth range).
    * `decode(video, meta=None)` takes ``[F, 3, H, W]`` float in [0, 1] (numpy or
      torch; uint8 ``[F,H,W,3]`` is accepted too) and returns a dict of cue arrays
      with the same canonical names. Without `meta`, codec defaults are used.
    * `required_arrays` names the arrays `encode` needs.
    * `resize_mode` is how a pseudo-RGB video of this cue may be resized:
      "nearest" for label-like layouts, "bilinear" for smooth ones.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from ..errors import MMPhysInputError

_REGISTRY: dict[str, type["PerceptionCodec"]] = {}


def register_codec(cls: type["PerceptionCodec"]) -> type["PerceptionCodec"]:
    _REGISTRY[cls.name] = cls
    return cls


def available_cues() -> list[str]:
    return sorted(_REGISTRY)


def get_codec(name: str, **kwargs: Any) -> "PerceptionCodec":
    """Instantiate the codec registered under `name` (e.g. "semantics", "depth", "unified")."""
    if name not in _REGISTRY:
        raise MMPhysInputError(f"unknown cue {name!r}; expected one of {available_cues()}")
    return _REGISTRY[name](**kwargs)


def as_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy() if x.is_floating_point() else x.detach().cpu().numpy()
    return np.asarray(x)


def as_pseudo_rgb(video, name: str = "video") -> np.ndarray:
    """Normalise a pseudo-RGB video to float32 ``[F, 3, H, W]`` in [0, 1]."""
    v = as_numpy(video)
    if v.ndim == 3:  # a single frame
        v = v[None]
    if v.ndim != 4:
        raise MMPhysInputError(f"{name} must be [F,3,H,W] (or uint8 [F,H,W,3]), got shape {v.shape}")
    if v.dtype == np.uint8:
        v = v.astype(np.float32) / 255.0
        if v.shape[-1] == 3 and v.shape[1] != 3:
            v = v.transpose(0, 3, 1, 2)
    if v.shape[1] != 3:
        raise MMPhysInputError(f"{name} must have 3 channels in dim 1 ([F,3,H,W]), got shape {v.shape}")
    v = v.astype(np.float32, copy=False)
    if not np.isfinite(v).all():
        raise MMPhysInputError(f"{name} contains NaN or Inf")
    return np.clip(v, 0.0, 1.0)


class PerceptionCodec(ABC):
    name: ClassVar[str]
    required_arrays: ClassVar[tuple[str, ...]]
    resize_mode: ClassVar[str] = "bilinear"

    @abstractmethod
    def encode(self, **arrays) -> tuple[np.ndarray, dict]:
        """Cue arrays -> (pseudo-RGB ``[F,3,H,W]`` float32 in [0,1], meta)."""

    @abstractmethod
    def decode(self, video, meta: dict | None = None) -> dict[str, np.ndarray]:
        """Pseudo-RGB ``[F,3,H,W]`` -> cue arrays by canonical name."""

    def _take(self, arrays: dict, where: str = "") -> list[np.ndarray]:
        missing = [k for k in self.required_arrays if arrays.get(k) is None]
        if missing:
            raise MMPhysInputError(
                f"{self.name} codec{where} needs cue array(s) {list(self.required_arrays)}; missing {missing}"
            )
        unknown = set(arrays) - set(self.required_arrays) - set(getattr(self, "optional_arrays", ()))
        if unknown:
            raise MMPhysInputError(f"{self.name} codec got unexpected array(s) {sorted(unknown)}")
        return [as_numpy(arrays[k]) for k in self.required_arrays]
