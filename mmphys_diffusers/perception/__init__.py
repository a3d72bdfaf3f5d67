"""Pseudo-RGB perception codecs: cue arrays <-> 3-channel videos the backbone can model.

Importing this package registers every codec, so ``get_codec(name)`` works for
"semantics", "depth", "xyz", "tracks", "flow" and "unified". Layouts and measured
round-trip errors: docs/perception_codecs.md.
"""

from .base import PerceptionCodec, as_numpy, as_pseudo_rgb, available_cues, get_codec, register_codec
from .colors import colormap, instance_palette
from .depth import DepthCodec
from .flow import FlowCodec
from .semantics import SemanticsCodec
from .synthetic import make_synthetic_cues
from .tracks import TracksCodec
from .unified import UnifiedCodec, instance_levels
from .visualize import decode_to_visualization
from .xyz import XyzCodec, depth_to_xyz

__all__ = [
    "PerceptionCodec",
    "as_numpy",
    "as_pseudo_rgb",
    "available_cues",
    "get_codec",
    "register_codec",
    "colormap",
    "instance_palette",
    "instance_levels",
    "DepthCodec",
    "FlowCodec",
    "SemanticsCodec",
    "TracksCodec",
    "UnifiedCodec",
    "XyzCodec",
    "depth_to_xyz",
    "decode_to_visualization",
    "make_synthetic_cues",
]
