"""Denoising loss of a trained model on training clips and on held-out clips, per noise level.

A model that fits its training clips much better than unseen clips of the same world has memorised them; the
gap, per noise level, says whether more data (rather than more steps) is what a run needs. The loss is the
trainer's own objective, measured with fixed noise levels and a fixed noise draw per clip, so two models (or
two datasets) are compared on exactly the same inputs.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import MMPhysInputError

DEFAULT_SIGMAS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@torch.no_grad()
def denoising_loss_by_noise_level(
    pipe: Any,
    dataset: str | os.PathLike,
    sigmas: Sequence[float] = DEFAULT_SIGMAS,
    max_clips: int | None = None,
    num_frames: int = 17,
    height: int = 64,
    width: int = 64,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Per-clip denoising MSE of ``pipe``'s transformer on the RGB videos of ``dataset``.

    Args:
        pipe: a single-stream pipeline (``MMPhysVideoPipeline`` or a stock Wan/CogVideoX pipeline); a teacher
            pipeline is refused, since its loss needs the perception stream as well.
        dataset: a shared-format dataset folder (``dataset.json`` + clips), e.g. a recipe's ``data/train``.
        sigmas: noise levels in (0, 1); each becomes the backbone's training timestep for that level.
        max_clips: the first ``max_clips`` clips of the dataset (all when None).
        seed: noise seed; clip ``i`` always gets the same noise, whatever the model.

    Returns:
        ``{"sigmas": [S], "clip_ids": [N], "loss": [N][S]}`` (plain lists), where ``loss[i][j]`` is the mean
        squared error between the transformer's prediction and the training target for clip ``i`` at
        ``sigmas[j]``, and ``mean`` ``[S]``, the mean over clips.
    """
    from ..backbones import get_backbone_adapter
    from ..models import is_teacher_class_name
    from ..training.data import TrainingClips

    transformer = getattr(pipe, "transformer", None)
    if transformer is None:
        raise MMPhysInputError(f"{type(pipe).__name__} has no transformer; expected a single-stream video pipeline")
    if is_teacher_class_name(type(transformer).__name__):
        raise MMPhysInputError(
            f"{type(transformer).__name__} is a two-stream teacher; pass its RGB stream "
            "(transformer.rgb_stream_transformer()) or a single-stream pipeline"
        )
    bad = [s for s in sigmas if not 0.0 < float(s) < 1.0]
    if not sigmas or bad:
        raise MMPhysInputError(f"sigmas must be a non-empty list of noise levels in (0, 1), got {list(sigmas)}")
    adapter = get_backbone_adapter(transformer)
    scheduler = adapter.training_scheduler(pipe)
    clips = TrainingClips(dataset, "unified", num_frames, height, width, max_samples=max_clips)
    if len(clips) == 0:
        raise MMPhysInputError(f"dataset {dataset} has no clips")
    device = next(transformer.parameters()).device
    dtype = next(transformer.parameters()).dtype
    num_train_timesteps = float(scheduler.config.num_train_timesteps)
    seq_len = adapter.default_sequence_length(transformer, pipe.tokenizer)
    timesteps = torch.tensor([float(s) * num_train_timesteps for s in sigmas], device=device)

    iterator = range(len(clips))
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="denoising loss")
    clip_ids, losses, extra = [], [], None
    for index in iterator:
        item = clips[index]
        latents = adapter.encode_video(pipe.vae, item["rgb"][None].to(device)).to(dtype)
        text = adapter.encode_prompt(pipe.text_encoder, pipe.tokenizer, [item["caption"]], seq_len, device=device, dtype=dtype)
        noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(seed * 1_000_003 + index)).to(device, dtype)
        batch = len(sigmas)
        latents, noise, text = latents.expand(batch, *latents.shape[1:]), noise.expand(batch, *noise.shape[1:]), text.expand(batch, *text.shape[1:])
        noisy, target = adapter.noisy_latents_and_target(scheduler, latents, noise, timesteps)
        if extra is None:  # depends only on the latent shape, the same for every clip (CogVideoX: rotary embeddings)
            extra = adapter.transformer_kwargs(transformer, latents, height, width, num_frames, vae=pipe.vae)
        prediction = transformer(hidden_states=noisy, encoder_hidden_states=text, timestep=timesteps, return_dict=False, **extra)[0]
        losses.append((prediction.float() - target.float()).pow(2).flatten(1).mean(1).cpu().tolist())
        clip_ids.append(item["id"])
    return {
        "sigmas": [float(s) for s in sigmas],
        "clip_ids": clip_ids,
        "loss": losses,
        "mean": np.asarray(losses).mean(0).tolist(),
    }
