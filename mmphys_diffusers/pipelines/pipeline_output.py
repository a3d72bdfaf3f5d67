"""Output dataclasses of the MMPhysVideo pipelines (diffusers `BaseOutput`: attribute, key and tuple access)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from diffusers.utils import BaseOutput


@dataclass
class MMPhysVideoPipelineOutput(BaseOutput):
    r"""
    Output of `MMPhysVideoPipeline`.

    Args:
        frames: the generated videos, by `output_type`:
            "np": float array ``[B, F, H, W, 3]`` in [0, 1]; "pt": tensor ``[B, F, 3, H, W]`` in [0, 1];
            "pil": list (per video) of lists of `PIL.Image`; "latent": latents in the backbone layout.
    """

    frames: Any


@dataclass
class MMPhysVideoTeacherPipelineOutput(BaseOutput):
    r"""
    Output of `MMPhysVideoTeacherPipeline`.

    Args:
        frames: RGB videos, same formats as `MMPhysVideoPipelineOutput.frames`.
        perception_frames: pseudo-RGB perception videos, same format as `frames`.
        perception: per video, the cue arrays decoded from the pseudo-RGB video by the
            `perception_cue` codec (dict name -> numpy array, e.g. ``depth [F,H,W]``);
            None for `output_type="latent"` or `perception_cue=None`.
    """

    frames: Any
    perception_frames: Any
    perception: list[dict] | None = None
