"""Bidirectionally Controlled Teacher on the Wan2.1 backbone.

`ControlLinkWanTransformer3DModel` subclasses diffusers' `WanTransformer3DModel`: every backbone parameter keeps its
name (`patch_embedding.*`, `condition_embedder.*`, `blocks.N.*`, ...), so base checkpoints, peft LoRA target
modules (`to_q`, `to_k`, `to_v`, `to_out.0`) and `WanLoraLoaderMixin` apply unchanged. It adds a task embedding
table and two sets of zero-initialised control links (see `control_links.py`).

One model, three modes, chosen by the timesteps alone:
- joint generation: both streams noisy (`timestep` and `perception_timestep` both > 0);
- control: perception clean (`perception_timestep=0`), the RGB stream is generated under its guidance;
- readout: RGB clean (`timestep=0`), the perception stream is predicted from the video.

Scope: text-to-video Wan2.1 configs. Image-conditioned configs (`image_dim` / `added_kv_proj_dim`) and Wan2.2
per-token timesteps are rejected with `MMPhysInputError`.
"""

from collections.abc import Sequence
from typing import Any

import torch
from diffusers.configuration_utils import register_to_config
# `ModelMixin` must be an attribute of this module: diffusers pipelines record a custom component as
# [module path, class] and look the loadable base classes up on that module when loading.
from diffusers.models.modeling_utils import ModelMixin  # noqa: F401
from diffusers.models.transformers.transformer_wan import WanTransformer3DModel
from diffusers.utils import apply_lora_scale

from ..errors import MMPhysInputError
from .control_links import ControlLinkMixin, as_batch_timesteps, check_divisible, check_stream_latents, run_block
from .modeling_outputs import ControlLinkTransformerOutput

# Public Wan2.1 text-to-video transformer configs (random weights are enough for speed/memory benchmarks).
# Keys not listed take the constructor defaults, which equal these checkpoints' values.
REFERENCE_CONFIGS: dict[str, dict[str, Any]] = {
    # Wan-AI/Wan2.1-T2V-1.3B-Diffusers, subfolder "transformer": 30 blocks of width 1536.
    "Wan2.1-1.3B": {
        "patch_size": (1, 2, 2),
        "num_attention_heads": 12,
        "attention_head_dim": 128,
        "in_channels": 16,
        "out_channels": 16,
        "text_dim": 4096,
        "freq_dim": 256,
        "ffn_dim": 8960,
        "num_layers": 30,
        "cross_attn_norm": True,
        "qk_norm": "rms_norm_across_heads",
        "eps": 1e-6,
        "rope_max_seq_len": 1024,
    },
    # Wan-AI/Wan2.1-T2V-14B-Diffusers, subfolder "transformer": 40 blocks of width 5120.
    "Wan2.1-14B": {
        "patch_size": (1, 2, 2),
        "num_attention_heads": 40,
        "attention_head_dim": 128,
        "in_channels": 16,
        "out_channels": 16,
        "text_dim": 4096,
        "freq_dim": 256,
        "ffn_dim": 13824,
        "num_layers": 40,
        "cross_attn_norm": True,
        "qk_norm": "rms_norm_across_heads",
        "eps": 1e-6,
        "rope_max_seq_len": 1024,
    },
}


class ControlLinkWanTransformer3DModel(ControlLinkMixin, WanTransformer3DModel):
    """
    Wan transformer running an RGB and a perception stream through shared blocks, joined by control links.

    Parameters:
        All parameters of [`WanTransformer3DModel`] (same names and defaults), plus:
        control_link_layers (`list[int]`, *optional*):
            Indices of the transformer blocks after which the control links are applied. `None` = every block.

    New parameters (all zero at initialisation, so the RGB stream is exactly the base model):
        task_embedding (`nn.Embedding(2, dim)`): row 0 = RGB task, row 1 = perception task; added to each stream's
            `temb` before `condition_embedder.time_proj` makes the 6*dim modulation (so it also reaches the output
            norm's shift/scale).
        perception_to_rgb_links / rgb_to_perception_links (`nn.ModuleList` of `nn.Linear(dim, dim)`): one per
            linked block, `dim = num_attention_heads * attention_head_dim`.
    """

    base_transformer_class = WanTransformer3DModel
    task_embedding_bias_path = "condition_embedder.time_embedder.linear_2.bias"
    _no_split_modules = ["WanTransformerBlock"]
    # The base context-parallel plan assumes the base forward signature; not validated for two streams.
    _cp_plan = None

    @register_to_config
    def __init__(
        self,
        patch_size: tuple[int, ...] = (1, 2, 2),
        num_attention_heads: int = 40,
        attention_head_dim: int = 128,
        in_channels: int = 16,
        out_channels: int = 16,
        text_dim: int = 4096,
        freq_dim: int = 256,
        ffn_dim: int = 13824,
        num_layers: int = 40,
        cross_attn_norm: bool = True,
        qk_norm: str | None = "rms_norm_across_heads",
        eps: float = 1e-6,
        image_dim: int | None = None,
        added_kv_proj_dim: int | None = None,
        rope_max_seq_len: int = 1024,
        pos_embed_seq_len: int | None = None,
        control_link_layers: list[int] | None = None,
    ) -> None:
        if image_dim is not None or added_kv_proj_dim is not None:
            raise MMPhysInputError(
                f"Wan config with image_dim={image_dim}, added_kv_proj_dim={added_kv_proj_dim} is an image-to-video "
                "model, which the control-link teacher does not support: expected both None (Wan2.1 T2V)."
            )
        super().__init__(
            patch_size=patch_size,
            num_attention_heads=num_attention_heads,
            attention_head_dim=attention_head_dim,
            in_channels=in_channels,
            out_channels=out_channels,
            text_dim=text_dim,
            freq_dim=freq_dim,
            ffn_dim=ffn_dim,
            num_layers=num_layers,
            cross_attn_norm=cross_attn_norm,
            qk_norm=qk_norm,
            eps=eps,
            image_dim=image_dim,
            added_kv_proj_dim=added_kv_proj_dim,
            rope_max_seq_len=rope_max_seq_len,
            pos_embed_seq_len=pos_embed_seq_len,
        )
        inner_dim = num_attention_heads * attention_head_dim
        self._init_control_links(
            inner_dim=inner_dim,
            task_embed_dim=inner_dim,
            num_layers=num_layers,
            control_link_layers=control_link_layers,
        )

    def _check_latents(self, hidden_states: torch.Tensor, perception_hidden_states: torch.Tensor) -> None:
        check_stream_latents(hidden_states, perception_hidden_states, "[B, C, F, H, W]")
        shape = tuple(hidden_states.shape)
        if shape[1] != self.config.in_channels:
            raise MMPhysInputError(
                f"Latents have {shape[1]} channels (dim 1 of {shape}, layout [B, C, F, H, W]): expected "
                f"in_channels={self.config.in_channels}."
            )
        p_t, p_h, p_w = self.config.patch_size
        check_divisible(shape[2], p_t, "frame count", shape)
        check_divisible(shape[3], p_h, "height", shape)
        check_divisible(shape[4], p_w, "width", shape)

    @apply_lora_scale("attention_kwargs")
    def forward(
        self,
        hidden_states: torch.Tensor,
        perception_hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        timestep: int | float | torch.Tensor,
        perception_timestep: int | float | torch.Tensor | None = None,
        encoder_hidden_states_image: torch.Tensor | None = None,
        attention_kwargs: dict[str, Any] | None = None,
        output_hidden_states_at: Sequence[int] | None = None,
        return_dict: bool = True,
    ) -> ControlLinkTransformerOutput | tuple:
        """
        Args:
            hidden_states (`torch.Tensor` of shape `(B, C, F, H, W)`): RGB latents.
            perception_hidden_states (`torch.Tensor` of shape `(B, C, F, H, W)`): perception latents.
            encoder_hidden_states (`torch.Tensor` of shape `(B, L, text_dim)`): text embeddings, shared by both
                streams.
            timestep (scalar or `torch.Tensor` of shape `(B,)`): RGB stream timestep; 0 = clean (readout mode).
            perception_timestep (scalar or `torch.Tensor` of shape `(B,)`, *optional*): perception stream timestep;
                `None` = same as `timestep`; 0 = clean (control mode).
            encoder_hidden_states_image: not supported (image-to-video is out of scope); must be None.
            attention_kwargs (`dict`, *optional*): `scale` sets the LoRA scale (the base Wan model passes nothing
                else to its attention processors either).
            output_hidden_states_at (`Sequence[int]`, *optional*): block indices whose RGB video tokens
                `(B, F'*H'*W', dim)` are returned in `hidden_states`.
            return_dict (`bool`): return a `ControlLinkTransformerOutput` instead of a tuple
                `(sample, perception_sample[, hidden_states])`.
        """
        if encoder_hidden_states_image is not None:
            raise MMPhysInputError(
                "`encoder_hidden_states_image` was given, but image-to-video is not supported by the control-link "
                "teacher: expected None."
            )
        self._check_latents(hidden_states, perception_hidden_states)
        num_layers = len(self.blocks)
        wanted = self._check_hidden_state_indices(output_hidden_states_at, num_layers)
        if encoder_hidden_states.ndim != 3 or encoder_hidden_states.shape[0] != hidden_states.shape[0]:
            raise MMPhysInputError(
                f"`encoder_hidden_states` has shape {tuple(encoder_hidden_states.shape)}: expected "
                f"(B={hidden_states.shape[0]}, L, {self.config.text_dim})."
            )

        batch_size, _, num_frames, height, width = hidden_states.shape
        device = hidden_states.device
        p_t, p_h, p_w = self.config.patch_size
        post_patch_num_frames = num_frames // p_t
        post_patch_height = height // p_h
        post_patch_width = width // p_w
        rgb_t = as_batch_timesteps(timestep, batch_size, device, "timestep")
        perception_t = rgb_t if perception_timestep is None else as_batch_timesteps(
            perception_timestep, batch_size, device, "perception_timestep"
        )

        # RoPE depends on the token grid only, identical for both streams.
        rotary_emb = self.rope(hidden_states)

        tokens = self.patch_embedding(torch.cat([hidden_states, perception_hidden_states]))
        tokens = tokens.flatten(2).transpose(1, 2).contiguous()  # [2B, N, dim]

        # Condition embedding, unrolled from `WanTimeTextImageEmbedding.forward` so the task embedding can be added
        # to temb before the 6*dim modulation projection.
        embedder = self.condition_embedder
        t_freq = embedder.timesteps_proj(torch.cat([rgb_t, perception_t]))
        time_embedder_dtype = next(iter(embedder.time_embedder.parameters())).dtype
        if t_freq.dtype != time_embedder_dtype and time_embedder_dtype != torch.int8:
            t_freq = t_freq.to(time_embedder_dtype)
        temb = embedder.time_embedder(t_freq).type_as(encoder_hidden_states)
        temb = temb + self._stream_task_embeddings(batch_size, temb.dtype)  # [2B, dim]
        timestep_proj = embedder.time_proj(embedder.act_fn(temb)).unflatten(1, (6, -1))  # [2B, 6, dim]
        # Text projection is per token: run it once and share it between the streams.
        text = embedder.text_embedder(encoder_hidden_states)
        text = torch.cat([text, text])

        collected: dict[int, torch.Tensor] = {}
        for i, block in enumerate(self.blocks):
            tokens = run_block(self, block, tokens, text, timestep_proj, rotary_emb)
            tokens = self._apply_control_links(i, tokens)
            if i in wanted:
                collected[i] = tokens[:batch_size]

        # Output norm, projection & unpatchify (as the base model, on 2B samples).
        shift, scale = (self.scale_shift_table.to(temb.device) + temb.unsqueeze(1)).chunk(2, dim=1)
        shift = shift.to(tokens.device)
        scale = scale.to(tokens.device)
        tokens = (self.norm_out(tokens.float()) * (1 + scale) + shift).type_as(tokens)
        tokens = self.proj_out(tokens)
        tokens = tokens.reshape(
            2 * batch_size, post_patch_num_frames, post_patch_height, post_patch_width, p_t, p_h, p_w, -1
        )
        output = tokens.permute(0, 7, 1, 4, 2, 5, 3, 6).flatten(6, 7).flatten(4, 5).flatten(2, 3)
        sample, perception_sample = output.chunk(2, dim=0)

        hidden_states_out = tuple(collected[i] for i in wanted) if wanted else None
        if not return_dict:
            if hidden_states_out is None:
                return (sample, perception_sample)
            return (sample, perception_sample, hidden_states_out)
        return ControlLinkTransformerOutput(
            sample=sample, perception_sample=perception_sample, hidden_states=hidden_states_out
        )
