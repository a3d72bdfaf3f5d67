"""Output containers of the Bidirectionally Controlled Teacher transformers."""

from dataclasses import dataclass

import torch
from diffusers.utils import BaseOutput


@dataclass
class ControlLinkTransformerOutput(BaseOutput):
    """
    Output of a control-link (teacher) transformer forward pass.

    Args:
        sample (`torch.Tensor`):
            Prediction of the RGB stream, in the base model's latent layout (CogVideoX `[B, F, C, H, W]`,
            Wan `[B, C, F, H, W]`).
        perception_sample (`torch.Tensor`):
            Prediction of the perception stream, same shape and layout as `sample`.
        hidden_states (`tuple[torch.Tensor, ...]`, *optional*):
            The RGB stream's video tokens `[B, N_tokens, dim]` after each block index requested with
            `output_hidden_states_at` (in the order requested), taken after that block's control links were
            applied, i.e. the state the next block sees. `None` unless requested.
    """

    sample: torch.Tensor
    perception_sample: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None
