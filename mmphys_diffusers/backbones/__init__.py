"""Backbone adapters: one specification per backbone (CogVideoX, Wan2.1).

    >>> adapter = get_backbone_adapter("wan")            # by name
    >>> adapter = get_backbone_adapter(pipe.transformer)  # by transformer (teachers included)
    >>> pipe = load_base_pipeline("tiny-cogvideox")       # named tiny config, offline
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import MMPhysInputError
from .base import BackboneAdapter, available_backbones, get_backbone_adapter, register_backbone, registered_adapters
from .cogvideox import CogVideoXAdapter
from .tiny import build_byte_tokenizer, build_word_tokenizer, caption_words
from .wan import WanAdapter

TINY_CONFIG_NAMES = ("tiny-cogvideox", "tiny-wan")


def tiny_components(name: str, seed: int = 0, **overrides) -> dict:
    """Components of a named tiny config ("tiny-cogvideox" / "tiny-wan"), randomly initialised from `seed`."""
    if name not in TINY_CONFIG_NAMES:
        raise MMPhysInputError(f"unknown tiny config {name!r}; expected one of {list(TINY_CONFIG_NAMES)}")
    return get_backbone_adapter(name).tiny_components(seed=seed, **overrides)


def load_base_pipeline(name_or_path: str | os.PathLike, pipeline_class: type | None = None, seed: int = 0, **kwargs: Any):
    """A base pipeline from a named tiny config, a local folder or a Hub id.

    Args:
        name_or_path: "tiny-cogvideox" / "tiny-wan" (built offline from `seed`), or anything
            `DiffusionPipeline.from_pretrained` accepts.
        pipeline_class: class to build/load with; default: the backbone's stock diffusers pipeline for a
            tiny name, `DiffusionPipeline` (auto-detected class) for a path.
        kwargs: passed to `from_pretrained` (e.g. `torch_dtype`), or `tiny_components` overrides for a tiny name.
    """
    name = os.fspath(name_or_path)
    if name in TINY_CONFIG_NAMES:
        adapter = get_backbone_adapter(name)
        components = adapter.tiny_components(seed=seed, **kwargs)
        return (pipeline_class or adapter.stock_pipeline_class)(**components)
    if name.startswith("tiny-"):
        raise MMPhysInputError(f"unknown tiny config {name!r}; expected one of {list(TINY_CONFIG_NAMES)}")
    from diffusers import DiffusionPipeline

    from .. import models  # noqa: F401  (a folder may name our classes, e.g. AutoencoderKLTinyVideo; diffusers resolves only imported modules)

    return (pipeline_class or DiffusionPipeline).from_pretrained(name, **kwargs)


__all__ = [
    "BackboneAdapter",
    "CogVideoXAdapter",
    "TINY_CONFIG_NAMES",
    "WanAdapter",
    "available_backbones",
    "build_byte_tokenizer",
    "build_word_tokenizer",
    "caption_words",
    "get_backbone_adapter",
    "load_base_pipeline",
    "register_backbone",
    "registered_adapters",
    "tiny_components",
]
