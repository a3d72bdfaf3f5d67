"""Bidirectionally Controlled Teacher on the CogVideoX backbone.

`ControlLinkCogVideoXTransformer3DModel` subclasses diffusers' `CogVideoXTransformer3DModel`: every backbone
parameter keeps its name (`patch_embed.*`, `transformer_blocks.N.*`, ...), so base checkpoints, peft LoRA target
modules (`to_q`, `to_k`, `to_v`, `to_out.0`) and `CogVideoXLoraLoaderMixin` apply unchanged. It adds a task
embedding table and two sets of zero-initialised control links (see `control_links.py`).

One model, three modes, chosen by the timesteps alone:
- joint generation: both streams noisy (`timestep` and `perception_timestep` both > 0);
- control: perception clean (`perception_timestep=0`), the RGB stream is generated under its guidance;
- readout: RGB clean (`timestep=0`), the perception stream is predicted from the video.
"""

from collections.abc import Sequence
from typing import Any

import torch
from diffusers.configuration_utils import register_to_config
# `ModelMixin` must be an attribute of this module: diffusers pipelines record a custom component as
# [module path, class] and look the loadable base classes up on that module when loading.
from diffusers.models.modeling_utils import ModelMixin  # noqa: F401
from diffusers.models.transformers.cogvideox_transformer_3d import CogVideoXTransformer3DModel
from diffusers.utils import apply_lora_scale

from ..errors import MMPhysInputError
from .control_links import ControlLinkMixin, as_batch_timesteps, check_divisible, check_stream_latents, run_block
from .modeling_outputs import ControlLinkTransformerOutput

# Public CogVideoX transformer configs (random weights are enough for speed/memory benchmarks).
# Keys not listed take the constructor defaults, which equal these checkpoints' values.
REFERENCE_CONFIGS: dict[str, dict[str, Any]] = {
    # THUDM/CogVideoX-2b, subfolder "transformer": sincos positions, 30 blocks of width 1920.
    "CogVideoX-2B": {
        "num_attention_heads": 30,
        "attention_head_dim": 64,
        "in_channels": 16,
        "out_channels": 16,
        "time_embed_dim": 512,
        "text_embed_dim": 4096,
        "num_layers": 30,
        "sample_width": 90,
        "sample_height": 60,
        "sample_frames": 49,
        "patch_size": 2,
        "max_text_seq_length": 226,
        "use_rotary_positional_embeddings": False,
    },
    # THUDM/CogVideoX-5b, subfolder "transformer": 3D RoPE, 42 blocks of width 3072.
    "CogVideoX-5B": {
        "num_attention_heads": 48,
        "attention_head_dim": 64,
        "in_channels": 16,
        "out_channels": 16,
        "time_embed_dim": 512,
        "text_embed_dim": 4096,
        "num_layers": 42,
        "sample_width": 90,
        "sample_height": 60,
        "sample_frames": 49,
        "patch_size": 2,
        "max_text_seq_length": 226,
        "use_rotary_positional_embeddings": True,
    },
}


class ControlLinkCogVideoXTransformer3DModel(ControlLinkMixin, CogVideoXTransformer3DModel):
    """
    CogVideoX transformer running an RGB and a perception stream through shared blocks, joined by control links.

    Parameters:
        All parameters of [`CogVideoXTransformer3DModel`] (same names and defaults), plus:
        control_link_layers (`list[int]`, *optional*):
            Indices of the transformer blocks after which the control links are applied. `None` = every block.

    New parameters (all zero at initialisation, so the RGB stream is exactly the base model):
        task_embedding (`nn.Embedding(2, time_embed_dim)`): row 0 = RGB task, row 1 = perception task; added to
            the timestep embedding `emb` of each stream.
        perception_to_rgb_links / rgb_to_perception_links (`nn.ModuleList` of `nn.Linear(dim, dim)`): one per
            linked block, `dim = num_attention_heads * attention_head_dim`.
    """

    base_transformer_class = CogVideoXTransformer3DModel
    task_embedding_bias_path = "time_embedding.linear_2.bias"
    _no_split_modules = ["CogVideoXBlock", "CogVideoXPatchEmbed"]

    @register_to_config
    def __init__(
        self,
        num_attention_heads: int = 30,
        attention_head_dim: int = 64,
        in_channels: int = 16,
        out_channels: int | None = 16,
        flip_sin_to_cos: bool = True,
        freq_shift: int = 0,
        time_embed_dim: int = 512,
        ofs_embed_dim: int | None = None,
        text_embed_dim: int = 4096,
        num_layers: int = 30,
        dropout: float = 0.0,
        attention_bias: bool = True,
        sample_width: int = 90,
        sample_height: int = 60,
        sample_frames: int = 49,
        patch_size: int = 2,
        patch_size_t: int | None = None,
        temporal_compression_ratio: int = 4,
        max_text_seq_length: int = 226,
        activation_fn: str = "gelu-approximate",
        timestep_activation_fn: str = "silu",
        norm_elementwise_affine: bool = True,
        norm_eps: float = 1e-5,
        spatial_interpolation_scale: float = 1.875,
        temporal_interpolation_scale: float = 1.0,
        use_rotary_positional_embeddings: bool = False,
        use_learned_positional_embeddings: bool = False,
        patch_bias: bool = True,
        control_link_layers: list[int] | None = None,
    ):
        super().__init__(
            num_attention_heads=num_attention_heads,
            attention_head_dim=attention_head_dim,
            in_channels=in_channels,
            out_channels=out_channels,
            flip_sin_to_cos=flip_sin_to_cos,
            freq_shift=freq_shift,
            time_embed_dim=time_embed_dim,
            ofs_embed_dim=ofs_embed_dim,
            text_embed_dim=text_embed_dim,
            num_layers=num_layers,
            dropout=dropout,
            attention_bias=attention_bias,
            sample_width=sample_width,
            sample_height=sample_height,
            sample_frames=sample_frames,
            patch_size=patch_size,
            patch_size_t=patch_size_t,
            temporal_compression_ratio=temporal_compression_ratio,
            max_text_seq_length=max_text_seq_length,
            activation_fn=activation_fn,
            timestep_activation_fn=timestep_activation_fn,
            norm_elementwise_affine=norm_elementwise_affine,
            norm_eps=norm_eps,
            spatial_interpolation_scale=spatial_interpolation_scale,
            temporal_interpolation_scale=temporal_interpolation_scale,
            use_rotary_positional_embeddings=use_rotary_positional_embeddings,
            use_learned_positional_embeddings=use_learned_positional_embeddings,
            patch_bias=patch_bias,
        )
        self._init_control_links(
            inner_dim=num_attention_heads * attention_head_dim,
            task_embed_dim=time_embed_dim,
            num_layers=num_layers,
            control_link_layers=control_link_layers,
        )

    def _check_latents(self, hidden_states: torch.Tensor, perception_hidden_states: torch.Tensor) -> None:
        check_stream_latents(hidden_states, perception_hidden_states, "[B, F, C, H, W]")
        shape = tuple(hidden_states.shape)
        if shape[2] != self.config.in_channels:
            raise MMPhysInputError(
                f"Latents have {shape[2]} channels (dim 2 of {shape}, layout [B, F, C, H, W]): expected "
                f"in_channels={self.config.in_channels}."
            )
        check_divisible(shape[3], self.config.patch_size, "height", shape)
        check_divisible(shape[4], self.config.patch_size, "width", shape)
        if self.config.patch_size_t is not None:
            check_divisible(shape[1], self.config.patch_size_t, "frame count", shape)

    @apply_lora_scale("attention_kwargs")
    def forward(
        self,
        hidden_states: torch.Tensor,
        perception_hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        timestep: int | float | torch.Tensor,
        perception_timestep: int | float | torch.Tensor | None = None,
        ofs: int | float | torch.Tensor | None = None,
        image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None,
        attention_kwargs: dict[str, Any] | None = None,
        output_hidden_states_at: Sequence[int] | None = None,
        return_dict: bool = True,
    ) -> ControlLinkTransformerOutput | tuple:
        """
        Args:
            hidden_states (`torch.Tensor` of shape `(B, F, C, H, W)`): RGB latents.
            perception_hidden_states (`torch.Tensor` of shape `(B, F, C, H, W)`): perception latents.
            encoder_hidden_states (`torch.Tensor` of shape `(B, L, text_embed_dim)`): text embeddings, shared by
                both streams.
            timestep (scalar or `torch.Tensor` of shape `(B,)`): RGB stream timestep; 0 = clean (readout mode).
            perception_timestep (scalar or `torch.Tensor` of shape `(B,)`, *optional*): perception stream timestep;
                `None` = same as `timestep`; 0 = clean (control mode).
            ofs (*optional*): CogVideoX1.5 I2V offset, only for configs with `ofs_embed_dim`.
            image_rotary_emb (`tuple[torch.Tensor, torch.Tensor]`, *optional*): RoPE cos/sin for the video tokens,
                computed by the pipeline (needed when `use_rotary_positional_embeddings`).
            attention_kwargs (`dict`, *optional*): passed to the attention processors; `scale` sets the LoRA scale.
            output_hidden_states_at (`Sequence[int]`, *optional*): block indices whose RGB video tokens
                `(B, F'*H'*W', dim)` are returned in `hidden_states`.
            return_dict (`bool`): return a `ControlLinkTransformerOutput` instead of a tuple
                `(sample, perception_sample[, hidden_states])`.
        """
        self._check_latents(hidden_states, perception_hidden_states)
        num_layers = len(self.transformer_blocks)
        wanted = self._check_hidden_state_indices(output_hidden_states_at, num_layers)
        if encoder_hidden_states.ndim != 3 or encoder_hidden_states.shape[0] != hidden_states.shape[0]:
            raise MMPhysInputError(
                f"`encoder_hidden_states` has shape {tuple(encoder_hidden_states.shape)}: expected "
                f"(B={hidden_states.shape[0]}, L, {self.config.text_embed_dim})."
            )
        if self.config.use_rotary_positional_embeddings and image_rotary_emb is None:
            raise MMPhysInputError(
                "`image_rotary_emb` is None but this CogVideoX config uses rotary positional embeddings: expected "
                "the (cos, sin) tuple computed by the pipeline."
            )

        batch_size, num_frames, _, height, width = hidden_states.shape
        device = hidden_states.device
        rgb_t = as_batch_timesteps(timestep, batch_size, device, "timestep")
        perception_t = rgb_t if perception_timestep is None else as_batch_timesteps(
            perception_timestep, batch_size, device, "perception_timestep"
        )

        # 1. Time embedding of both streams at once, [2B, time_embed_dim], plus each stream's task embedding.
        t_emb = self.time_proj(torch.cat([rgb_t, perception_t])).to(dtype=hidden_states.dtype)
        emb = self.time_embedding(t_emb)
        if self.ofs_embedding is not None:
            if ofs is None:
                raise MMPhysInputError("`ofs` is None but this CogVideoX config has an ofs embedding: expected `ofs`.")
            ofs_t = as_batch_timesteps(ofs, batch_size, device, "ofs")
            ofs_emb = self.ofs_embedding(self.ofs_proj(torch.cat([ofs_t, ofs_t])).to(dtype=hidden_states.dtype))
            emb = emb + ofs_emb
        emb = emb + self._stream_task_embeddings(batch_size, emb.dtype)

        # 2. Patch embedding; the text tokens are duplicated because each stream updates its own copy.
        tokens = self.patch_embed(
            torch.cat([encoder_hidden_states, encoder_hidden_states]),
            torch.cat([hidden_states, perception_hidden_states]),
        )
        tokens = self.embedding_dropout(tokens)
        text_seq_length = encoder_hidden_states.shape[1]
        text_tokens = tokens[:, :text_seq_length]
        video_tokens = tokens[:, text_seq_length:]

        # 3. Shared blocks, then the control links of linked blocks.
        collected: dict[int, torch.Tensor] = {}
        for i, block in enumerate(self.transformer_blocks):
            video_tokens, text_tokens = run_block(
                self, block, video_tokens, text_tokens, emb, image_rotary_emb, attention_kwargs
            )
            video_tokens = self._apply_control_links(i, video_tokens)
            if i in wanted:
                collected[i] = video_tokens[:batch_size]

        video_tokens = self.norm_final(video_tokens)

        # 4. Final block
        video_tokens = self.norm_out(video_tokens, temb=emb)
        video_tokens = self.proj_out(video_tokens)

        # 5. Unpatchify (same arithmetic as the base model, on 2B samples)
        p = self.config.patch_size
        p_t = self.config.patch_size_t
        streams = 2 * batch_size
        if p_t is None:
            output = video_tokens.reshape(streams, num_frames, height // p, width // p, -1, p, p)
            output = output.permute(0, 1, 4, 2, 5, 3, 6).flatten(5, 6).flatten(3, 4)
        else:
            latent_frames = (num_frames + p_t - 1) // p_t
            output = video_tokens.reshape(streams, latent_frames, height // p, width // p, -1, p_t, p, p)
            output = output.permute(0, 1, 5, 4, 2, 6, 3, 7).flatten(6, 7).flatten(4, 5).flatten(1, 2)
        sample, perception_sample = output.chunk(2, dim=0)

        hidden_states_out = tuple(collected[i] for i in wanted) if wanted else None
        if not return_dict:
            if hidden_states_out is None:
                return (sample, perception_sample)
            return (sample, perception_sample, hidden_states_out)
        return ControlLinkTransformerOutput(
            sample=sample, perception_sample=perception_sample, hidden_states=hidden_states_out
        )
