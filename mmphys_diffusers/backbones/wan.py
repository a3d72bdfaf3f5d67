"""Wan2.1 text-to-video backbone specification.

Wan facts used here: latents are ``[B, C, F, H, W]``; VAE latents are normalised per channel with
``vae.config.latents_mean`` / ``latents_std``; RoPE is computed inside the transformer; text enters by
cross-attention over a zero-padded UMT5 sequence; the model is trained by flow matching
(x_t = (1-s) x0 + s eps, target eps - x0, timestep = 1000 s) and sampled with flow-matching schedulers.
"""

from __future__ import annotations

import torch

from .base import BackboneAdapter, module_execution_device, register_backbone
from .tiny import build_byte_tokenizer, seeded, tiny_t5_config_kwargs


@register_backbone
class WanAdapter(BackboneAdapter):
    name = "wan"
    stock_pipeline_class_name = "WanPipeline"
    latent_layout = "BCFHW"
    default_height = 480
    default_width = 832
    default_num_frames = 81
    prediction_type = "flow_matching"
    cfg_batched = False
    default_max_sequence_length = 512

    @property
    def transformer_class(self) -> type:
        from diffusers import WanTransformer3DModel

        return WanTransformer3DModel

    @property
    def vae_class(self) -> type:
        from diffusers import AutoencoderKLWan

        return AutoencoderKLWan

    @property
    def compatible_vae_classes(self) -> tuple[type, ...]:
        from ..models.autoencoder_kl_tiny_video import AutoencoderKLTinyVideo

        return (AutoencoderKLTinyVideo,)

    @property
    def lora_loader_mixin(self) -> type:
        from diffusers.loaders import WanLoraLoaderMixin

        return WanLoraLoaderMixin

    # ------------------------------------------------------------------ sizes
    def vae_scale_factors(self, vae) -> tuple[int, int]:
        return int(vae.config.scale_factor_temporal), int(vae.config.scale_factor_spatial)

    def patch_size(self, transformer) -> tuple[int, int, int]:
        return tuple(int(p) for p in transformer.config.patch_size)

    def latents_dtype(self, transformer) -> torch.dtype:
        # The stock Wan pipeline keeps float32 latents and casts the model input only.
        return torch.float32

    # ------------------------------------------------------------------ text
    def default_sequence_length(self, transformer, tokenizer=None) -> int:
        # The stock 512 tokens; a tiny tokenizer with a shorter model_max_length caps it.
        limit = getattr(tokenizer, "model_max_length", None) if tokenizer is not None else None
        if isinstance(limit, int) and 0 < limit < self.default_max_sequence_length:
            return limit
        return self.default_max_sequence_length

    def clean_prompt(self, prompt: str) -> str:
        from diffusers.pipelines.wan.pipeline_wan import prompt_clean

        return prompt_clean(prompt)

    def encode_prompt(self, text_encoder, tokenizer, prompts, max_sequence_length, device=None, dtype=None):
        prompts = [self.clean_prompt(p) for p in prompts]
        text_inputs = tokenizer(
            prompts,
            padding="max_length",
            max_length=max_sequence_length,
            truncation=True,
            add_special_tokens=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        ids, mask = text_inputs.input_ids, text_inputs.attention_mask
        seq_lens = mask.gt(0).sum(dim=1).long()
        encoder_device = module_execution_device(text_encoder)
        embeds = text_encoder(ids.to(encoder_device), mask.to(encoder_device)).last_hidden_state
        embeds = embeds.to(dtype=dtype or text_encoder.dtype, device=device or embeds.device)
        # Wan zeroes the padded positions instead of masking them in cross-attention.
        keep = torch.arange(max_sequence_length, device=embeds.device)[None, :] < seq_lens.to(embeds.device)[:, None]
        return embeds * keep[..., None].to(embeds.dtype)

    # ------------------------------------------------------------------ video <-> latents
    def _latent_stats(self, vae, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = vae.config.z_dim
        mean = torch.tensor(vae.config.latents_mean).view(1, z, 1, 1, 1).to(like.device, like.dtype)
        std = torch.tensor(vae.config.latents_std).view(1, z, 1, 1, 1).to(like.device, like.dtype)
        return mean, std

    def encode_video(self, vae, video, generator=None, sample=False):
        latents = self._posterior(vae, video, generator, sample)
        mean, std = self._latent_stats(vae, latents)
        return (latents - mean) / std

    def decode_latents(self, vae, latents):
        latents = latents.to(device=module_execution_device(vae), dtype=vae.dtype)
        mean, std = self._latent_stats(vae, latents)
        # Same arithmetic as the stock pipeline (divide by 1/std) so outputs match it bit for bit.
        return vae.decode(latents / (1.0 / std) + mean, return_dict=False)[0]

    # ------------------------------------------------------------------ denoising
    def scale_model_input(self, scheduler, latents, timestep):
        return latents

    def prepare_scheduler(self, scheduler) -> None:
        # As the stock pipeline: a fixed begin index avoids a device->host sync per step.
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(0)

    # ------------------------------------------------------------------ training objective
    def training_scheduler(self, pipe_or_config):
        from diffusers import FlowMatchEulerDiscreteScheduler

        config = getattr(getattr(pipe_or_config, "scheduler", None), "config", None) or getattr(pipe_or_config, "config", pipe_or_config)
        config = dict(config)
        shift = config.get("flow_shift") or config.get("shift") or 1.0
        return FlowMatchEulerDiscreteScheduler(num_train_timesteps=config.get("num_train_timesteps", 1000), shift=float(shift))

    def sample_timesteps(self, scheduler, batch, generator=None, device=None):
        """Uniform sigmas warped by the scheduler's shift, returned as timesteps = 1000 * sigma."""
        u = torch.rand((batch,), generator=generator, device=generator.device if generator is not None else "cpu")
        shift = float(scheduler.config.shift)
        sigmas = shift * u / (1 + (shift - 1) * u)
        return (sigmas * scheduler.config.num_train_timesteps).to(device or "cpu")

    def noisy_latents_and_target(self, scheduler, latents, noise, timesteps):
        """Flow matching: x_t = (1-s) x0 + s eps, target eps - x0, with s = t / num_train_timesteps."""
        sigmas = (timesteps.to(latents.device, torch.float32) / scheduler.config.num_train_timesteps).view(-1, 1, 1, 1, 1)
        noisy = (1.0 - sigmas) * latents.float() + sigmas * noise.float()
        return noisy.to(latents.dtype), (noise.float() - latents.float()).to(latents.dtype)

    # ------------------------------------------------------------------ tiny config
    def tiny_components(self, seed: int = 0, **overrides) -> dict:
        """Tiny Wan: 8x spatial / 4x temporal VAE (4 latent channels, non-trivial latent stats), 2-layer
        transformer with (1,2,2) patches, 1-layer UMT5, UniPC flow scheduler (multistep, stateful)."""
        from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanTransformer3DModel
        from transformers import UMT5Config, UMT5EncoderModel

        with seeded(seed):
            vae = AutoencoderKLWan(
                **{
                    "base_dim": 4,
                    "z_dim": 4,
                    "dim_mult": [1, 1, 1, 1],
                    "num_res_blocks": 1,
                    "temperal_downsample": [False, True, True],
                    "latents_mean": [0.1, -0.2, 0.05, 0.0],
                    "latents_std": [0.9, 1.1, 1.2, 0.8],
                    **overrides.get("vae", {}),
                }
            )
            text_encoder = UMT5EncoderModel(UMT5Config(**tiny_t5_config_kwargs(**overrides.get("text_encoder", {}))))
            transformer = WanTransformer3DModel(
                **{
                    "patch_size": (1, 2, 2),
                    "num_attention_heads": 2,
                    "attention_head_dim": 12,
                    "in_channels": 4,
                    "out_channels": 4,
                    "text_dim": text_encoder.config.d_model,
                    "freq_dim": 32,
                    "ffn_dim": 32,
                    "num_layers": 2,
                    "cross_attn_norm": True,
                    "qk_norm": "rms_norm_across_heads",
                    "rope_max_seq_len": 32,
                    **overrides.get("transformer", {}),
                }
            )
        scheduler = UniPCMultistepScheduler(
            **{
                "prediction_type": "flow_prediction",
                "use_flow_sigmas": True,
                "flow_shift": 3.0,
                "num_train_timesteps": 1000,
                **overrides.get("scheduler", {}),
            }
        )
        tokenizer = build_byte_tokenizer(model_max_length=16)
        return {"vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer, "transformer": transformer, "scheduler": scheduler}
