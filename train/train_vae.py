#!/usr/bin/env python
"""Train the tiny video VAE of the MMPhysVideo-Tiny recipe on RGB + pseudo-RGB clips.

    python train/train_vae.py --dataset outputs/sim --eval_dataset outputs/sim-heldout --output_dir outputs/vae \
        --cues unified --max_train_steps 500
    accelerate launch train/train_vae.py --config my_vae.json --resume_from_checkpoint latest

Every field of `VAETrainConfig` (mmphys_diffusers/training/vae.py) is a flag; dict fields
(`--vae_config`, `--codec_kwargs`) take JSON. The output folder loads with
`AutoencoderKLWan.from_pretrained(output_dir)` and holds `vae_summary.json` (PSNR per modality,
latent stats, loss curve).
"""

import sys

from mmphys_diffusers.training import run_cli
from mmphys_diffusers.training.vae import main

if __name__ == "__main__":
    sys.exit(run_cli(main, sys.argv[1:], prog="train_vae.py"))
