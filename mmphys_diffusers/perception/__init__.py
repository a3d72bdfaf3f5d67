"""Pseudo-RGB perception codecs: cue arrays <-> 3-channel videos the backbone can model."""

from .base import PerceptionCodec, as_pseudo_rgb, available_cues, get_codec, register_codec

__all__ = ["PerceptionCodec", "as_pseudo_rgb", "available_cues", "get_codec", "register_codec"]
