"""Training the Bidirectionally Controlled Teacher (full or LoRA).

Loss per batch (both streams in one forward through the shared backbone):

    L = L_rgb + perception_loss_weight * L_perception

where each term is the backbone's own objective (CogVideoX v-prediction, Wan flow
matching, through the backbone adapter). Both streams share one sampled timestep, as in
joint generation. Stream dropout: with probability ``stream_dropout_prob`` one stream
(50/50) is fed clean (t = 0) and gets no loss, so the other stream learns to generate
under control (clean perception) or to read perception out of a clean video (clean RGB).
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn

from ..errors import MMPhysInputError
from .config import TeacherTrainConfig, parse_config
from .lora import save_lora_folder
from .losses import diffusion_loss
from .trainer import Trainer, is_teacher_transformer, write_summary

logger = logging.getLogger(__name__)


class TeacherTrainer(Trainer):
    kind = "teacher"
    pipeline_class_name = "MMPhysVideoTeacherPipeline"
    config: TeacherTrainConfig

    def pipeline_with(self, transformer: nn.Module):
        # The saved teacher decodes its perception stream with the codec settings it was trained with.
        pipe = super().pipeline_with(transformer)
        pipe.register_to_config(perception_cue=self.config.perception_cue, perception_meta=self.config.cue_codec_kwargs or None)
        return pipe

    def build_model(self) -> nn.Module:
        cfg = self.config
        transformer = self.pipe.transformer
        if is_teacher_transformer(transformer):
            teacher = transformer  # continue / fine-tune a trained teacher
            if cfg.control_link_layers is not None and list(teacher.linked_layers) != sorted(cfg.control_link_layers):
                raise MMPhysInputError(
                    f"control_link_layers={cfg.control_link_layers} differs from the loaded teacher's {list(teacher.linked_layers)}"
                )
        else:
            teacher = self.adapter.build_teacher(transformer, control_link_layers=cfg.control_link_layers)
        self.pipe.transformer = None  # the teacher replaces the base; keep one copy in memory
        if cfg.lora_rank:
            from .trainer import setup_lora

            setup_lora(teacher, cfg, always_trainable=teacher.control_parameters())
        else:
            teacher.requires_grad_(True)
        return teacher.to(self.accelerator.device)

    def fresh_model_like(self, live: nn.Module) -> nn.Module:
        fresh = type(live).from_config(live.config)
        if self.config.lora_rank:
            from .trainer import setup_lora

            setup_lora(fresh, self.config, always_trainable=fresh.control_parameters())
        return fresh

    def compute_loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.config
        rgb, perception, prompt_embeds = self.latents_of(batch)
        b = rgb.shape[0]
        timesteps = self.sample_timesteps(b)
        noise_rgb, noise_perception = self.noise_like(rgb), self.noise_like(perception)
        noisy_rgb, target_rgb = self.adapter.noisy_latents_and_target(self.train_scheduler, rgb, noise_rgb, timesteps)
        noisy_perception, target_perception = self.adapter.noisy_latents_and_target(
            self.train_scheduler, perception, noise_perception, timesteps
        )
        # Stream dropout: u < p/2 -> clean perception (control), p/2 <= u < p -> clean RGB (readout).
        u = self.uniform(b)
        p = float(cfg.stream_dropout_prob)
        clean_perception = u < p / 2
        clean_rgb = (u >= p / 2) & (u < p)
        zero = torch.zeros_like(timesteps)
        rgb_t = torch.where(clean_rgb, zero, timesteps)
        perception_t = torch.where(clean_perception, zero, timesteps)
        model_rgb = torch.where(clean_rgb.view(-1, 1, 1, 1, 1), rgb, noisy_rgb)
        model_perception = torch.where(clean_perception.view(-1, 1, 1, 1, 1), perception, noisy_perception)

        extra = self.adapter.transformer_kwargs(
            self.accelerator.unwrap_model(self.model), rgb, cfg.height, cfg.width, cfg.num_frames, vae=self.pipe.vae
        )
        # return_dict=False: accelerate's mixed-precision wrapper rebuilds outputs and cannot rebuild a BaseOutput
        prediction_rgb, prediction_perception = self.model(
            hidden_states=model_rgb,
            perception_hidden_states=model_perception,
            encoder_hidden_states=prompt_embeds,
            timestep=rgb_t,
            perception_timestep=perception_t,
            return_dict=False,
            **extra,
        )[:2]
        rgb_weight = (~clean_rgb).float()
        perception_weight = (~clean_perception).float()
        # Normalise by the batch size (not the kept count) so the gradient scale does not jump with dropout.
        objects = self.loss_element_weight(batch, rgb)  # both streams show the same objects
        loss_rgb = diffusion_loss(prediction_rgb, target_rgb, rgb_weight, element_weight=objects)
        loss_perception = diffusion_loss(prediction_perception, target_perception, perception_weight, element_weight=objects)
        loss = loss_rgb + cfg.perception_loss_weight * loss_perception
        return loss, {"loss_rgb": loss_rgb.detach().item(), "loss_perception": loss_perception.detach().item()}

    def save_outputs(self, model: nn.Module) -> None:
        if self.config.lora_rank:
            save_lora_folder(self.output_dir, model, self.adapter, extra_parameters=dict(_named_control_parameters(model)))
        else:
            self.pipeline_with(model).save_pretrained(self.output_dir)
        logger.info("saved teacher to %s", self.output_dir)

    def render_validation(self, model: nn.Module, prompt: str, seed: int) -> Any:
        cfg = self.config
        pipe = self.pipeline_with(model)
        pipe.set_progress_bar_config(disable=True)
        out = pipe(
            prompt=prompt,
            mode="joint",
            num_frames=cfg.num_frames,
            height=cfg.height,
            width=cfg.width,
            num_inference_steps=cfg.validation_num_inference_steps,
            guidance_scale=cfg.validation_guidance_scale,
            generator=torch.Generator("cpu").manual_seed(seed),
            max_sequence_length=self.max_sequence_length,
            output_type="np",
        )
        rgb = np.asarray(out.frames[0])
        perception = getattr(out, "perception_frames", None)
        if perception is None:
            return rgb
        from ..utils.video_io import tile_videos

        return tile_videos([rgb, np.asarray(perception[0])])


def _named_control_parameters(model: nn.Module):
    from ..models.control_links import CONTROL_PARAMETER_PREFIXES

    for name, p in model.named_parameters():
        if name.startswith(CONTROL_PARAMETER_PREFIXES):
            yield name, p


def train_teacher(config: TeacherTrainConfig, interrupt_after_step: int | None = None) -> dict:
    """Train a teacher from `config`; returns the summary (metrics, loss history, sample paths)."""
    trainer = TeacherTrainer(config)
    summary = trainer.train(interrupt_after_step=interrupt_after_step)
    if trainer.accelerator.is_main_process:
        write_summary(config.output_dir, summary)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_config(TeacherTrainConfig, argv)
    train_teacher(config)
    return 0
