"""Synthetic 2-D physics world (pymunk) rendered with numpy, with exact ground-truth cues.

>>> from mmphys_diffusers.simulation import simulate_clip
>>> clip = simulate_clip("free_fall", seed=0)   # rgb [17,64,64,3], cues, caption, meta
"""

from .captions import caption_vocabulary
from .clip import SimulatedClip, depth_to_xyz, simulate_clip
from .dataset import clip_seed, generate_dataset
from .families import SCENE_FAMILIES
from .world import PALETTE, PinholeCamera

__all__ = [
    "PALETTE",
    "PinholeCamera",
    "SCENE_FAMILIES",
    "SimulatedClip",
    "caption_vocabulary",
    "clip_seed",
    "depth_to_xyz",
    "generate_dataset",
    "simulate_clip",
]
