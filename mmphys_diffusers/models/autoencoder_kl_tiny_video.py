"""`AutoencoderKLTinyVideo`: a small, normalisation-free video VAE with Wan's latent layout.

Why it exists: at the widths a CPU can train (base_dim 8-32), diffusers' ``AutoencoderKLWan`` and
``AutoencoderKLCogVideoX`` both stall near 21 dB held-out PSNR on the synthetic physics world and decode
small objects in the wrong colour; a plain convolutional autoencoder of the same size passes 28 dB in the
same wall time (``benchmarks/bench_vae_architectures.py``, docs/mmphysvideo_tiny.md). This class is that
plain network, with the temporal layout of Wan's causal VAE so that ``WanPipeline`` and every Wan-family
code path use it unchanged:

- frame 0 is encoded alone, then each group of ``scale_factor_temporal`` frames becomes one latent frame:
  ``F = 1 + 4k`` frames give ``1 + k`` latent frames;
- ``scale_factor_spatial`` (a power of two) is the spatial stride;
- ``z_dim``, ``latents_mean`` and ``latents_std`` are config fields, as in ``AutoencoderKLWan``, so the
  pipelines normalise latents the Wan way.

Per frame, a 2D encoder (conv + SiLU residual blocks, stride-2 convs, no normalisation layers) makes
features at the latent resolution; a group's frames are stacked along channels and mixed by a 3D
convolution over latent frames into the posterior's mean and log-variance. The decoder mirrors it.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.autoencoders.vae import DecoderOutput, DiagonalGaussianDistribution
from diffusers.models.modeling_outputs import AutoencoderKLOutput
from diffusers.models.modeling_utils import ModelMixin

from ..errors import MMPhysInputError


class _ResidualBlock2D(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.silu(self.conv1(F.silu(x))))


class _FrameEncoder(nn.Module):
    """``[N, C_in, H, W] -> [N, C, H / s, W / s]``."""

    def __init__(self, in_channels: int, channels: int, num_downsamples: int, num_res_blocks: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, channels, 3, padding=1)]
        for _ in range(num_downsamples):
            layers += [_ResidualBlock2D(channels) for _ in range(num_res_blocks)]
            layers += [nn.Conv2d(channels, channels, 4, stride=2, padding=1)]
        layers += [_ResidualBlock2D(channels) for _ in range(num_res_blocks)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(self.layers(x))


class _FrameDecoder(nn.Module):
    """``[N, C, h, w] -> [N, C_out, h * s, w * s]``."""

    def __init__(self, out_channels: int, channels: int, num_upsamples: int, num_res_blocks: int):
        super().__init__()
        layers: list[nn.Module] = [_ResidualBlock2D(channels) for _ in range(num_res_blocks)]
        for _ in range(num_upsamples):
            layers += [nn.Upsample(scale_factor=2.0, mode="nearest"), nn.Conv2d(channels, channels, 3, padding=1)]
            layers += [_ResidualBlock2D(channels) for _ in range(num_res_blocks)]
        self.layers = nn.Sequential(*layers)
        self.conv_out = nn.Conv2d(channels, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(F.silu(self.layers(x)))


class AutoencoderKLTinyVideo(ModelMixin, ConfigMixin):
    r"""A normalisation-free video VAE with the latent layout of ``AutoencoderKLWan``.

    Args:
        in_channels / out_channels: video channels (3).
        z_dim: latent channels.
        base_dim: feature channels of the per-frame encoder and decoder.
        num_res_blocks: residual blocks per resolution.
        scale_factor_spatial: spatial stride, a power of two.
        scale_factor_temporal: frames per latent frame after the first.
        latents_mean / latents_std: per-channel latent statistics (``z_dim`` each), written by the VAE trainer.
    """

    _supports_gradient_checkpointing = False

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        z_dim: int = 8,
        base_dim: int = 32,
        num_res_blocks: int = 1,
        scale_factor_spatial: int = 4,
        scale_factor_temporal: int = 4,
        latents_mean: list[float] | None = None,
        latents_std: list[float] | None = None,
    ):
        super().__init__()
        if scale_factor_spatial < 1 or scale_factor_spatial & (scale_factor_spatial - 1):
            raise MMPhysInputError(f"scale_factor_spatial={scale_factor_spatial}: expected a power of two")
        if scale_factor_temporal < 1:
            raise MMPhysInputError(f"scale_factor_temporal={scale_factor_temporal}: expected >= 1")
        for name, stats in (("latents_mean", latents_mean), ("latents_std", latents_std)):
            if stats is not None and len(stats) != z_dim:
                raise MMPhysInputError(f"{name} has {len(stats)} values: expected z_dim={z_dim}")
        if latents_mean is None:
            self.register_to_config(latents_mean=[0.0] * z_dim)
        if latents_std is None:
            self.register_to_config(latents_std=[1.0] * z_dim)
        levels = int(math.log2(scale_factor_spatial))
        t = scale_factor_temporal
        self.frame_encoder = _FrameEncoder(in_channels, base_dim, levels, num_res_blocks)
        # frame 0 has its own projection; later frames are stacked in groups of t along channels
        self.first_to_moments = nn.Conv2d(base_dim, 2 * z_dim, 3, padding=1)
        self.group_to_moments = nn.Conv2d(t * base_dim, 2 * z_dim, 3, padding=1)
        self.encoder_temporal_mix = nn.Conv3d(2 * z_dim, 2 * z_dim, (3, 1, 1), padding=(1, 0, 0))
        self.decoder_temporal_mix = nn.Conv3d(z_dim, z_dim, (3, 1, 1), padding=(1, 0, 0))
        self.latent_to_first = nn.Conv2d(z_dim, base_dim, 3, padding=1)
        self.latent_to_group = nn.Conv2d(z_dim, t * base_dim, 3, padding=1)
        self.frame_decoder = _FrameDecoder(out_channels, base_dim, levels, num_res_blocks)
        # the mixes start as identity so early training sees the plain per-group autoencoder
        for mix in (self.encoder_temporal_mix, self.decoder_temporal_mix):
            nn.init.zeros_(mix.weight)
            nn.init.zeros_(mix.bias)

    # ------------------------------------------------------------------ encode

    def _check_video(self, x: torch.Tensor) -> None:
        s, t = self.config.scale_factor_spatial, self.config.scale_factor_temporal
        if x.ndim != 5 or x.shape[1] != self.config.in_channels:
            raise MMPhysInputError(f"video of shape {tuple(x.shape)}: expected [B, {self.config.in_channels}, F, H, W]")
        if (x.shape[2] - 1) % t:
            raise MMPhysInputError(f"video with {x.shape[2]} frames: expected 1 + {t}k frames")
        if x.shape[3] % s or x.shape[4] % s:
            raise MMPhysInputError(f"video of {x.shape[3]}x{x.shape[4]} px: expected multiples of {s}")

    def _moments(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, F, H, W] -> [B, 2 z_dim, 1 + (F - 1) / t, H / s, W / s]`` (mean, then log-variance)."""
        self._check_video(x)
        b, _, f, h, w = x.shape
        t = self.config.scale_factor_temporal
        frames = x.permute(0, 2, 1, 3, 4).reshape(b * f, -1, h, w)
        feats = self.frame_encoder(frames)
        c, lh, lw = feats.shape[1:]
        feats = feats.view(b, f, c, lh, lw)
        first = self.first_to_moments(feats[:, 0])[:, :, None]
        if f > 1:
            groups = feats[:, 1:].reshape(b * ((f - 1) // t), t * c, lh, lw)
            rest = self.group_to_moments(groups).view(b, (f - 1) // t, -1, lh, lw).permute(0, 2, 1, 3, 4)
            moments = torch.cat([first, rest], dim=2)
        else:
            moments = first
        return moments + self.encoder_temporal_mix(moments)

    def encode(self, x: torch.Tensor, return_dict: bool = True):
        """``x``: ``[B, C, F, H, W]`` in [-1, 1] -> posterior over ``[B, z_dim, 1 + (F-1)/t, H/s, W/s]``."""
        posterior = DiagonalGaussianDistribution(self._moments(x))  # it clamps the log-variance itself
        return AutoencoderKLOutput(latent_dist=posterior) if return_dict else (posterior,)

    # ------------------------------------------------------------------ decode

    def decode(self, z: torch.Tensor, return_dict: bool = True):
        """``z``: ``[B, z_dim, f, h, w]`` -> video ``[B, C, 1 + (f-1) t, h s, w s]`` (unclamped)."""
        if z.ndim != 5 or z.shape[1] != self.config.z_dim:
            raise MMPhysInputError(f"latents of shape {tuple(z.shape)}: expected [B, {self.config.z_dim}, f, h, w]")
        z = z + self.decoder_temporal_mix(z)
        b, _, fl, lh, lw = z.shape
        t = self.config.scale_factor_temporal
        first = self.latent_to_first(z[:, :, 0])[:, None]  # [B, 1, C, h, w]
        parts = [first]
        if fl > 1:
            groups = z[:, :, 1:].permute(0, 2, 1, 3, 4).reshape(b * (fl - 1), -1, lh, lw)
            rest = self.latent_to_group(groups).view(b, (fl - 1) * t, -1, lh, lw)
            parts.append(rest)
        feats = torch.cat(parts, dim=1)
        f = feats.shape[1]
        frames = self.frame_decoder(feats.reshape(b * f, -1, lh, lw))
        video = frames.view(b, f, *frames.shape[1:]).permute(0, 2, 1, 3, 4)
        return DecoderOutput(sample=video) if return_dict else (video,)

    def forward(self, sample: torch.Tensor, sample_posterior: bool = False, generator: torch.Generator | None = None,
                return_dict: bool = True):
        posterior = self.encode(sample).latent_dist
        z = posterior.sample(generator=generator) if sample_posterior else posterior.mode()
        return self.decode(z, return_dict=return_dict)
