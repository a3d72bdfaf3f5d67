"""CogVideoX (2B / 5B / 1.5) backbone specification.

CogVideoX facts used here: latents are ``[B, F, C, H, W]``; the VAE latents are multiplied by
``vae.config.scaling_factor``; the model is v-prediction with the CogVideoX DDIM/DPM schedulers;
rotary embeddings (5B, 1.5) are computed by the pipeline, once per call; the text sequence
length is fixed by ``transformer.config.max_text_seq_length``.
"""

from __future__ import annotations

import torch

from ..errors import MMPhysInputError
from .base import BackboneAdapter, module_execution_device, register_backbone
from .tiny import build_byte_tokenizer, seeded, tiny_t5_config_kwargs


@register_backbone
class CogVideoXAdapter(BackboneAdapter):
    name = "cogvideox"
    stock_pipeline_class_name = "CogVideoXPipeline"
    latent_layout = "BFCHW"
    default_height = 480
    default_width = 720
    default_num_frames = 49
    prediction_type = "v_prediction"
    cfg_batched = True
    default_max_sequence_length = 226

    @property
    def transformer_class(self) -> type:
        from diffusers import CogVideoXTransformer3DModel

        return CogVideoXTransformer3DModel

    @property
    def vae_class(self) -> type:
        from diffusers import AutoencoderKLCogVideoX

        return AutoencoderKLCogVideoX

    @property
    def lora_loader_mixin(self) -> type:
        from diffusers.loaders import CogVideoXLoraLoaderMixin

        return CogVideoXLoraLoaderMixin

    # ------------------------------------------------------------------ sizes
    def vae_scale_factors(self, vae) -> tuple[int, int]:
        return int(vae.config.temporal_compression_ratio), 2 ** (len(vae.config.block_out_channels) - 1)

    def patch_size(self, transformer) -> tuple[int, int, int]:
        cfg = transformer.config
        return int(cfg.patch_size_t or 1), int(cfg.patch_size), int(cfg.patch_size)

    def default_video_size(self, transformer, vae) -> tuple[int, int, int]:
        """(num_frames, height, width) the checkpoint was trained at, from the transformer config."""
        _, s_factor = self.vae_scale_factors(vae)
        cfg = transformer.config
        return int(cfg.sample_frames), int(cfg.sample_height) * s_factor, int(cfg.sample_width) * s_factor

    def check_video_size(self, num_frames, height, width, vae, transformer) -> None:
        super().check_video_size(num_frames, height, width, vae, transformer)
        patch_t, _, _ = self.patch_size(transformer)
        latent_frames = self.num_latent_frames(num_frames, vae)
        if patch_t > 1 and latent_frames % patch_t != 0:
            # CogVideoX 1.5 patches time by 2: the latent frame count must be a multiple of it.
            t_factor, _ = self.vae_scale_factors(vae)
            raise MMPhysInputError(
                f"num_frames={num_frames} gives {latent_frames} latent frames, not a multiple of the temporal patch "
                f"size {patch_t}; expected num_frames = k*{t_factor * patch_t}+1"
            )

    # ------------------------------------------------------------------ text
    def default_sequence_length(self, transformer, tokenizer=None) -> int:
        return int(transformer.config.max_text_seq_length)

    def encode_prompt(self, text_encoder, tokenizer, prompts, max_sequence_length, device=None, dtype=None):
        text_inputs = tokenizer(
            list(prompts),
            padding="max_length",
            max_length=max_sequence_length,
            truncation=True,
            add_special_tokens=True,
            return_tensors="pt",
        )
        # CogVideoX's T5 sees the padded ids without an attention mask (as in the stock pipeline).
        embeds = text_encoder(text_inputs.input_ids.to(device or module_execution_device(text_encoder)))[0]
        return embeds.to(dtype=dtype or text_encoder.dtype, device=device or embeds.device)

    # ------------------------------------------------------------------ video <-> latents
    def encode_video(self, vae, video, generator=None, sample=False):
        latents = self._posterior(vae, video, generator, sample) * vae.config.scaling_factor
        return self.to_model_layout(latents)

    def decode_latents(self, vae, latents):
        latents = self.to_vae_layout(latents).to(device=module_execution_device(vae), dtype=vae.dtype)
        latents = 1 / vae.config.scaling_factor * latents
        return vae.decode(latents).sample

    # ------------------------------------------------------------------ denoising
    def transformer_kwargs(self, transformer, latents, height, width, num_frames, vae=None) -> dict:
        """Rotary embeddings ``(cos, sin)`` for CogVideoX 5B/1.5 (None for 2B), as the stock pipeline builds them."""
        cfg = transformer.config
        if not cfg.use_rotary_positional_embeddings:
            return {"image_rotary_emb": None}
        from diffusers.models.embeddings import get_3d_rotary_pos_embed
        from diffusers.pipelines.cogvideo.pipeline_cogvideox import get_resize_crop_region_for_grid

        s_factor = self.vae_scale_factors(vae)[1] if vae is not None else height // latents.shape[-2]
        grid_h = height // (s_factor * cfg.patch_size)
        grid_w = width // (s_factor * cfg.patch_size)
        base_h, base_w = cfg.sample_height // cfg.patch_size, cfg.sample_width // cfg.patch_size
        latent_frames = latents.shape[1]
        if cfg.patch_size_t is None:
            freqs = get_3d_rotary_pos_embed(
                embed_dim=cfg.attention_head_dim,
                crops_coords=get_resize_crop_region_for_grid((grid_h, grid_w), base_w, base_h),
                grid_size=(grid_h, grid_w),
                temporal_size=latent_frames,
                device=latents.device,
            )
        else:
            freqs = get_3d_rotary_pos_embed(
                embed_dim=cfg.attention_head_dim,
                crops_coords=None,
                grid_size=(grid_h, grid_w),
                temporal_size=(latent_frames + cfg.patch_size_t - 1) // cfg.patch_size_t,
                grid_type="slice",
                max_size=(base_h, base_w),
                device=latents.device,
            )
        return {"image_rotary_emb": freqs}

    def scheduler_step(self, scheduler, model_output, timestep, latents, state, step_index, timesteps, **extra_step_kwargs):
        from diffusers import CogVideoXDPMScheduler

        if not isinstance(scheduler, CogVideoXDPMScheduler):
            return super().scheduler_step(scheduler, model_output, timestep, latents, state, step_index, timesteps, **extra_step_kwargs)
        # The CogVideoX DPM solver is second order and needs the previous x0 prediction.
        latents, state["old_pred_original_sample"] = scheduler.step(
            model_output,
            state.get("old_pred_original_sample"),
            timestep,
            timesteps[step_index - 1] if step_index > 0 else None,
            latents,
            **extra_step_kwargs,
            return_dict=False,
        )
        return latents

    # ------------------------------------------------------------------ training objective
    def training_scheduler(self, pipe_or_config):
        from diffusers import CogVideoXDDIMScheduler

        config = getattr(getattr(pipe_or_config, "scheduler", None), "config", None) or getattr(pipe_or_config, "config", pipe_or_config)
        return CogVideoXDDIMScheduler.from_config(config)

    def sample_timesteps(self, scheduler, batch, generator=None, device=None):
        num_train = scheduler.config.num_train_timesteps
        return torch.randint(0, num_train, (batch,), generator=generator, device=generator.device if generator is not None else "cpu").to(device or "cpu")

    def noisy_latents_and_target(self, scheduler, latents, noise, timesteps):
        """v-prediction: x_t = sqrt(a) x0 + sqrt(1-a) eps, target v = sqrt(a) eps - sqrt(1-a) x0."""
        timesteps = timesteps.to(latents.device).long()
        noisy = scheduler.add_noise(latents, noise, timesteps)
        target = scheduler.get_velocity(latents, noise, timesteps)
        return noisy, target

    # ------------------------------------------------------------------ tiny config
    def tiny_components(self, seed: int = 0, **overrides) -> dict:
        """Tiny CogVideoX: 8x spatial / 4x temporal VAE (4 latent channels), 2-layer rotary transformer,
        1-layer T5. 32x32 px, 9 frames -> 3x4x4 latents -> 12 video tokens + 16 text tokens."""
        from diffusers import AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXTransformer3DModel
        from transformers import T5Config, T5EncoderModel

        max_text = 16
        with seeded(seed):
            vae = AutoencoderKLCogVideoX(
                **{
                    "in_channels": 3,
                    "out_channels": 3,
                    "down_block_types": ("CogVideoXDownBlock3D",) * 4,
                    "up_block_types": ("CogVideoXUpBlock3D",) * 4,
                    "block_out_channels": (8, 8, 8, 8),
                    "latent_channels": 4,
                    "layers_per_block": 1,
                    "norm_num_groups": 2,
                    "temporal_compression_ratio": 4,
                    **overrides.get("vae", {}),
                }
            )
            text_encoder = T5EncoderModel(T5Config(**tiny_t5_config_kwargs(**overrides.get("text_encoder", {}))))
            transformer = CogVideoXTransformer3DModel(
                **{
                    "num_attention_heads": 2,
                    "attention_head_dim": 16,
                    "in_channels": 4,
                    "out_channels": 4,
                    "time_embed_dim": 8,
                    "text_embed_dim": text_encoder.config.d_model,
                    "num_layers": 2,
                    "sample_width": 4,
                    "sample_height": 4,
                    "sample_frames": 9,
                    "patch_size": 2,
                    "temporal_compression_ratio": 4,
                    "max_text_seq_length": max_text,
                    "use_rotary_positional_embeddings": True,
                    **overrides.get("transformer", {}),
                }
            )
        scheduler = CogVideoXDDIMScheduler(
            **{
                "beta_schedule": "scaled_linear",
                "beta_start": 0.00085,
                "beta_end": 0.012,
                "clip_sample": False,
                "prediction_type": "v_prediction",
                "rescale_betas_zero_snr": True,
                "set_alpha_to_one": True,
                "snr_shift_scale": 3.0,
                "timestep_spacing": "trailing",
                **overrides.get("scheduler", {}),
            }
        )
        tokenizer = build_byte_tokenizer(model_max_length=max_text)
        return {"vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer, "transformer": transformer, "scheduler": scheduler}
