#!/usr/bin/env python
"""Which tiny video VAE learns the synthetic physics world fastest on a CPU: equal wall-clock training.

    python benchmarks/bench_vae_architectures.py --seconds 120 --out docs/results/vae_architectures.json

Each candidate trains for the same number of seconds on the same simulated clips (random 9-frame,
32x32 crops, batch 4, AdamW 1e-3, L1 + MSE + 1e-4 KL, gradient clipping 1.0), and its held-out PSNR on
whole 17 x 64 x 64 clips is logged every 100 steps. All candidates have Wan's latent layout (4x spatial,
4x temporal, 8 channels), so each could replace the bundled models' VAE:

- ``wan-bd8``: ``AutoencoderKLWan``, the bundled models' config (base_dim 8, dim_mult [1, 2, 2]);
- ``wan-bd24``: the same, base_dim 24;
- ``cogvideox``: ``AutoencoderKLCogVideoX``, channels (16, 32, 32), GroupNorm with 4 groups;
- ``tiny-video``: ``AutoencoderKLTinyVideo`` (ours, normalisation-free), base_dim 32.

The runs are sequential in one process, so they share the machine's state; each uses the same seed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch


def _clips(first_seed: int, count: int) -> torch.Tensor:
    from mmphys_diffusers.simulation import SCENE_FAMILIES, simulate_clip

    families = list(SCENE_FAMILIES)
    videos = [simulate_clip(families[i % len(families)], seed=first_seed + i).rgb for i in range(count)]
    return torch.from_numpy(np.stack(videos)).float().div(255).permute(0, 4, 1, 2, 3) * 2 - 1  # [N, 3, 17, 64, 64]


def _candidates() -> dict:
    from diffusers import AutoencoderKLCogVideoX, AutoencoderKLWan

    from mmphys_diffusers.models import AutoencoderKLTinyVideo

    wan = dict(z_dim=8, dim_mult=[1, 2, 2], temperal_downsample=[True, True], scale_factor_spatial=4, num_res_blocks=1, attn_scales=[])
    return {
        "wan-bd8": lambda: AutoencoderKLWan(base_dim=8, **wan),
        "wan-bd24": lambda: AutoencoderKLWan(base_dim=24, **wan),
        "cogvideox": lambda: AutoencoderKLCogVideoX(
            in_channels=3, out_channels=3, down_block_types=("CogVideoXDownBlock3D",) * 3, up_block_types=("CogVideoXUpBlock3D",) * 3,
            block_out_channels=(16, 32, 32), latent_channels=8, layers_per_block=1, norm_num_groups=4, temporal_compression_ratio=4,
            sample_height=64, sample_width=64),
        "tiny-video": lambda: AutoencoderKLTinyVideo(base_dim=32, z_dim=8),
    }


@torch.no_grad()
def _psnr(vae, held: torch.Tensor) -> float:
    from mmphys_diffusers.training.vae import reconstruct

    vae.eval()
    recon = reconstruct(vae, held)[0].clamp(-1, 1)
    vae.train()
    return float(-10 * torch.log10(((recon - held) / 2).pow(2).mean()))


def train_for(make, train: torch.Tensor, held: torch.Tensor, seconds: float, seed: int = 0, crop: int = 32, frames: int = 9, batch: int = 4) -> dict:
    from mmphys_diffusers.training.vae import gaussian_kl, reconstruct

    torch.manual_seed(seed)
    vae = make().train()
    optimizer = torch.optim.AdamW(vae.parameters(), 1e-3, betas=(0.9, 0.99))
    g = torch.Generator().manual_seed(seed)
    curve, step, start = [], 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        idx = torch.randint(0, len(train), (batch,), generator=g)
        f0 = int(torch.randint(0, train.shape[2] - frames + 1, (1,), generator=g))
        y, x = (int(torch.randint(0, train.shape[d] - crop + 1, (1,), generator=g)) for d in (3, 4))
        video = train[idx][:, :, f0:f0 + frames, y:y + crop, x:x + crop].contiguous()
        recon, posterior = reconstruct(vae, video, sample=True, generator=g)
        loss = (recon - video).abs().mean() + (recon - video).pow(2).mean() + 1e-4 * gaussian_kl(posterior.mean, posterior.logvar)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        step += 1
        if step % 100 == 0:
            curve.append({"step": step, "seconds": round(time.perf_counter() - start, 1), "psnr": round(_psnr(vae, held), 2)})
    return {"steps": step, "parameters": sum(p.numel() for p in vae.parameters()), "final_psnr": round(_psnr(vae, held), 2), "curve": curve}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120.0, help="training wall time per candidate")
    parser.add_argument("--train-clips", type=int, default=96)
    parser.add_argument("--heldout-clips", type=int, default=5)
    parser.add_argument("--only", nargs="*", default=None, help="candidate names (default: all)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    train, held = _clips(0, args.train_clips), _clips(10000, args.heldout_clips)
    results = {}
    for name, make in _candidates().items():
        if args.only and name not in args.only:
            continue
        results[name] = train_for(make, train, held, args.seconds)
        r = results[name]
        print(f"{name:11s} {r['parameters'] / 1e3:6.0f}k params  {r['steps']:5d} steps  held-out PSNR {r['final_psnr']:.2f} dB  "
              f"curve {[(c['step'], c['psnr']) for c in r['curve']]}", flush=True)
    if args.out:
        from mmphys_diffusers.utils.atomic import atomic_write_json

        atomic_write_json(Path(args.out), {"seconds_per_candidate": args.seconds, "threads": args.threads, "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
