"""Distilling the single-stream student from the frozen teacher.

Loss per batch:

    L = L_diffusion(student) + alignment_loss_weight * L_align

With ``alignment_loss_weight = 0`` and no ``teacher_model`` the trainer is an RGB-only
diffusion fine-tune (the baseline): no teacher is loaded or run and no projector is built,
while data, timesteps and noise are drawn exactly as with a teacher.

L_align compares, at each chosen block, the student's hidden tokens (read with forward
hooks on the stock transformer's blocks, so the student stays a plain base model), passed
through a small MLP projector, with the teacher's RGB-stream tokens at the *same* noisy
input. By default the teacher runs in control mode: its perception stream gets the clip's
clean pseudo-RGB latents at t = 0 (``teacher_perception_mode="control"``); "joint" noises
the perception latents with the same timestep instead. Token grids that differ are
resampled to a common (F', H', W'). The projectors are dropped at save time.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn

from ..errors import MMPhysInputError
from .config import StudentTrainConfig, parse_config
from .lora import save_lora_folder
from .losses import AlignmentProjector, alignment_loss, diffusion_loss
from .trainer import Trainer, _load_pipeline, cast_frozen_, is_teacher_transformer, setup_lora, token_grid, write_summary

logger = logging.getLogger(__name__)


def transformer_blocks(transformer: nn.Module) -> nn.ModuleList:
    """The backbone's block list (CogVideoX ``transformer_blocks``, Wan ``blocks``)."""
    for name in ("transformer_blocks", "blocks"):
        blocks = getattr(transformer, name, None)
        if isinstance(blocks, nn.ModuleList):
            return blocks
    raise MMPhysInputError(f"{type(transformer).__name__} has no transformer_blocks/blocks list to align")


def inner_dim(transformer: nn.Module) -> int:
    cfg = transformer.config
    return int(cfg.num_attention_heads) * int(cfg.attention_head_dim)


class StudentWithProjectors(nn.Module):
    """The student transformer plus one alignment projector per aligned block.

    ``forward(**transformer_kwargs)`` returns ``(prediction, [projected tokens per block])``;
    tokens are the video tokens ``[B, N, D]`` a forward hook read at each block's output.
    Keeping both in one module lets DDP/FSDP wrap them together.
    """

    def __init__(self, transformer: nn.Module, layers: Sequence[int], projectors: nn.ModuleList):
        super().__init__()
        self.transformer = transformer
        self.layers = [int(i) for i in layers]
        self.projectors = projectors
        self._captured: dict[int, torch.Tensor] = {}
        blocks = transformer_blocks(transformer)
        bad = [i for i in self.layers if not 0 <= i < len(blocks)]
        if bad:
            raise MMPhysInputError(f"student_align_layers {self.layers}: indices {bad} outside the student's {len(blocks)} blocks")
        for i in self.layers:
            blocks[i].register_forward_hook(self._make_hook(i))

    def _make_hook(self, index: int):
        def hook(module, inputs, output):
            # CogVideoX blocks return (video tokens, text tokens); Wan blocks return the tokens.
            self._captured[index] = output[0] if isinstance(output, tuple) else output

        return hook

    def forward(self, **kwargs) -> tuple[torch.Tensor, list[torch.Tensor]]:
        self._captured.clear()
        prediction = self.transformer(return_dict=False, **kwargs)[0]
        features = [proj(self._captured[i]) for i, proj in zip(self.layers, self.projectors)]
        self._captured.clear()
        return prediction, features


class StudentTrainer(Trainer):
    kind = "student"
    config: StudentTrainConfig

    def build_model(self) -> nn.Module:
        cfg = self.config
        student = self.pipe.transformer
        if is_teacher_transformer(student) and cfg.init_transformer_from:
            # a single-stream model starting from a trained teacher takes its shared backbone as the RGB stream
            student = student.rgb_stream_transformer()
            logger.info("student initialised from the RGB stream of teacher %s (control links dropped)", cfg.init_transformer_from)
        if is_teacher_transformer(student):
            raise MMPhysInputError(
                f"pretrained_model={cfg.pretrained_model!r} holds a teacher; the student starts from the base model "
                "(pass the teacher as teacher_model)"
            )
        if cfg.lora_rank:
            setup_lora(student, cfg)
        else:
            student.requires_grad_(True)
        self.pipe.transformer = None
        self.teacher = None
        self.student_layers, self.teacher_layers = [], []
        projectors = nn.ModuleList()
        if cfg.uses_teacher:
            # The teacher load and the projector init draw from the global RNG: fork it, so that every
            # later draw is the same with or without a teacher (a teacher-free baseline sees exactly the
            # student's randomness).
            with torch.random.fork_rng(devices=[]):
                projectors = self._build_teacher_and_projectors(student)
        else:  # validate() allows this only with alignment_loss_weight 0
            logger.info("no teacher_model (alignment_loss_weight 0): RGB-only diffusion training, no teacher, no projector")
        return StudentWithProjectors(student, self.student_layers, projectors).to(self.accelerator.device)

    def _build_teacher_and_projectors(self, student: nn.Module) -> nn.ModuleList:
        """Load the frozen teacher (``self.teacher``), resolve the aligned layers, build one projector per pair."""
        cfg = self.config
        if float(cfg.alignment_loss_weight) == 0:
            logger.warning("alignment_loss_weight is 0 but teacher_model is set: the teacher only feeds the logged loss_align; "
                           "leave teacher_model empty to skip it")
        teacher_pipe = _load_pipeline(cfg.teacher_model)
        teacher = teacher_pipe.transformer
        if not is_teacher_transformer(teacher):
            raise MMPhysInputError(f"teacher_model={cfg.teacher_model!r} holds {type(teacher).__name__}, not a ControlLink teacher")
        from ..backbones import get_backbone_adapter

        if get_backbone_adapter(teacher).name != self.adapter.name or teacher.config.in_channels != student.config.in_channels:
            raise MMPhysInputError(
                f"teacher ({get_backbone_adapter(teacher).name}, {teacher.config.in_channels} latent channels) and student "
                f"({self.adapter.name}, {student.config.in_channels}) must share the backbone family and VAE latents"
            )
        teacher.requires_grad_(False)
        teacher.eval()
        self.teacher = cast_frozen_(teacher.to(self.accelerator.device), self.weight_dtype)
        del teacher_pipe

        n_student = len(transformer_blocks(student))
        n_teacher = len(transformer_blocks(teacher))
        self.student_layers = list(cfg.student_align_layers) if cfg.student_align_layers is not None else [n_student // 2]
        self.teacher_layers = list(cfg.teacher_align_layers) if cfg.teacher_align_layers is not None else list(self.student_layers)
        if len(self.student_layers) != len(self.teacher_layers):
            raise MMPhysInputError(f"student_align_layers {self.student_layers} and teacher_align_layers {self.teacher_layers} differ in length")
        bad = [i for i in self.teacher_layers if not 0 <= i < n_teacher]
        if bad:
            raise MMPhysInputError(f"teacher_align_layers {self.teacher_layers}: indices {bad} outside the teacher's {n_teacher} blocks")
        return nn.ModuleList(
            AlignmentProjector(inner_dim(student), inner_dim(teacher), cfg.projector_hidden_dim, cfg.projector_layers)
            for _ in self.student_layers
        )

    def fresh_model_like(self, live: nn.Module) -> nn.Module:
        transformer = type(live.transformer).from_config(live.transformer.config)
        if self.config.lora_rank:
            setup_lora(transformer, self.config)
        projectors = nn.ModuleList(
            AlignmentProjector(p.net[0].in_features, p.net[-1].out_features, self.config.projector_hidden_dim, self.config.projector_layers)
            for p in live.projectors
        )
        return StudentWithProjectors(transformer, live.layers, projectors)

    def compute_loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.config
        rgb, perception, prompt_embeds = self.latents_of(batch)
        b = rgb.shape[0]
        timesteps = self.sample_timesteps(b)
        noise = self.noise_like(rgb)
        noisy, target = self.adapter.noisy_latents_and_target(self.train_scheduler, rgb, noise, timesteps)
        student_transformer = self.accelerator.unwrap_model(self.model).transformer
        extra = self.adapter.transformer_kwargs(student_transformer, rgb, cfg.height, cfg.width, cfg.num_frames, vae=self.pipe.vae)
        prediction, student_features = self.model(
            hidden_states=noisy, encoder_hidden_states=prompt_embeds, timestep=timesteps, **extra
        )
        loss_diffusion = diffusion_loss(prediction, target, element_weight=self.loss_element_weight(batch, rgb))
        # "joint" mode noises the teacher's perception input: drawn whether or not a teacher runs, so the
        # noise stream of the next steps does not depend on the teacher's presence
        perception_noise = self.noise_like(perception) if cfg.teacher_perception_mode == "joint" else None
        if self.teacher is None:  # RGB-only (alignment_loss_weight 0, no teacher_model)
            return loss_diffusion, {"loss_diffusion": loss_diffusion.detach().item()}

        with torch.no_grad():
            if cfg.teacher_perception_mode == "control":
                perception_input, perception_t = perception, torch.zeros_like(timesteps)
            else:
                noisy_perception, _ = self.adapter.noisy_latents_and_target(self.train_scheduler, perception, perception_noise, timesteps)
                perception_input, perception_t = noisy_perception, timesteps
            teacher_extra = self.adapter.transformer_kwargs(self.teacher, rgb, cfg.height, cfg.width, cfg.num_frames, vae=self.pipe.vae)
            teacher_out = self.teacher(
                hidden_states=noisy.to(self.weight_dtype),
                perception_hidden_states=perception_input.to(self.weight_dtype),
                encoder_hidden_states=prompt_embeds,
                timestep=timesteps,
                perception_timestep=perception_t,
                output_hidden_states_at=self.teacher_layers,
                return_dict=True,
                **teacher_extra,
            )
        student_grid = token_grid(self.adapter, student_transformer, rgb)
        teacher_grid = token_grid(self.adapter, self.teacher, rgb)
        target_grid = tuple(cfg.alignment_token_grid) if cfg.alignment_token_grid else None
        # teacher_out.hidden_states follows the order of teacher_layers
        align_terms = [
            alignment_loss(cfg.alignment_loss, s, t.detach(), student_grid, teacher_grid, margin=cfg.alignment_margin, target_grid=target_grid)
            for s, t in zip(student_features, teacher_out.hidden_states)
        ]
        loss_align = torch.stack(align_terms).mean()
        loss = loss_diffusion + cfg.alignment_loss_weight * loss_align
        return loss, {"loss_diffusion": loss_diffusion.detach().item(), "loss_align": loss_align.detach().item()}

    def save_outputs(self, model: nn.Module) -> None:
        student = model.transformer  # the projectors are training-only and are not saved
        if self.config.lora_rank:
            save_lora_folder(self.output_dir, student, self.adapter)
        else:
            self.pipeline_with(student).save_pretrained(self.output_dir)
        logger.info("saved student to %s", self.output_dir)

    def render_validation(self, model: nn.Module, prompt: str, seed: int) -> Any:
        cfg = self.config
        pipe = self.pipeline_with(model.transformer)
        pipe.set_progress_bar_config(disable=True)
        out = pipe(
            prompt=prompt,
            num_frames=cfg.num_frames,
            height=cfg.height,
            width=cfg.width,
            num_inference_steps=cfg.validation_num_inference_steps,
            guidance_scale=cfg.validation_guidance_scale,
            generator=torch.Generator("cpu").manual_seed(seed),
            max_sequence_length=self.max_sequence_length,
            output_type="np",
        )
        return np.asarray(out.frames[0])


def train_student(config: StudentTrainConfig, interrupt_after_step: int | None = None) -> dict:
    """Distil a student from `config`; returns the summary (metrics, loss history, sample paths)."""
    trainer = StudentTrainer(config)
    summary = trainer.train(interrupt_after_step=interrupt_after_step)
    if trainer.accelerator.is_main_process:
        write_summary(config.output_dir, summary)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_config(StudentTrainConfig, argv)
    train_student(config)
    return 0
