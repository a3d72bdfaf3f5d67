#!/usr/bin/env python
"""Train the tiny video VAE of the MMPhysVideo-Tiny recipe on RGB + pseudo-RGB clips.

    python train/train_vae.py --dataset outputs/sim --eval_dataset outputs/sim-heldout --output_dir outputs/vae \
        --cues unified --max_train_steps 500
    accelerate launch train/train_vae.py --config my_vae.json --resume_from_checkpoint latest
    # a better decoder for a VAE that diffusion models already use: the encoder and latent space stay as they are
    python train/train_vae.py --base_vae path/to/pipeline_or_vae --train_decoder_only --colour_weight 5 ...

Every field of `VAETrainConfig` (mmphys_diffusers/training/vae.py) is a flag; dict fields
(`--vae_config`, `--codec_kwargs`) take JSON. The output folder loads with
`AutoencoderKLWan.from_pretrained(output_dir)` and holds `vae_summary.json` (PSNR per modality,
latent stats, loss curve, and the held-out object-pixel colour recall: the share of object pixels whose
decoded colour stays within the evaluation parser's 8 degrees).
"""

import sys

from mmphys_diffusers.training import run_cli
from mmphys_diffusers.training.vae import main

if __name__ == "__main__":
    sys.exit(run_cli(main, sys.argv[1:], prog="train_vae.py"))
