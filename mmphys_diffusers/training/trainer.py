"""The training loop shared by the teacher and the student trainers.

`Trainer` owns everything that does not depend on what is trained: accelerate setup,
the frozen VAE / text encoder, data (pixels or the latent cache), the seeded sampler,
optimizer + LR schedule, checkpoints and exact resume, EMA, logging, validation
videos, the model card and the Hub upload. Subclasses build the trainable module,
compute the loss of a batch and save the result.

Exact resume: the model/optimizer/scheduler/EMA/RNG states come back through
``accelerator.load_state``; noise and timesteps are drawn from a dedicated generator
that is checkpointed too, and the data order depends only on (seed, epoch), so the
consumed batches of the interrupted epoch are skipped and the run continues as if
it had never stopped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Iterable

import torch
import torch.nn as nn

from ..errors import MMPhysInputError
from ..utils.atomic import atomic_write_json
from .checkpointing import CheckpointManager, resolve_checkpoint
from .config import TrainConfig
from .data import CachedLatents, EpochSeededSampler, LatentCache, TrainingClips, collate_training_clips
from .ema import TrainableEMA
from .losses import latent_foreground_mask

logger = logging.getLogger(__name__)


# Next to model_index.json: the perception cue and fixed codec kwargs of the training data, read by
# `mmphys generate` (and extended by the MMPhysVideo-Tiny recipe's export) to decode perception videos.
PERCEPTION_INFO_FILE = "mmphys_recipe.json"


class InterruptedForTest(RuntimeError):
    """Raised by `Trainer.train(interrupt_after_step=N)` right after checkpoint N (simulates a crash)."""


class GeneratorState:
    """Each process's noise `torch.Generator`, checkpointed through ``register_for_checkpointing``.

    accelerate writes registered objects from the main process only, so `state_dict` gathers
    every rank's generator state (all ranks call it inside ``save_state``) and
    `load_state_dict` picks this rank's.
    """

    def __init__(self, seed: int, device: torch.device):
        self.generator = torch.Generator(device=device).manual_seed(seed)

    @staticmethod
    def _rank_world() -> tuple[int, int]:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def state_dict(self) -> dict:
        import torch.distributed as dist

        state = self.generator.get_state().cpu()
        rank, world = self._rank_world()
        if world == 1:
            return {"states": [state]}
        states: list = [None] * world
        dist.all_gather_object(states, state)
        return {"states": states}

    def load_state_dict(self, state: dict) -> None:
        rank, world = self._rank_world()
        states = state["states"]
        if len(states) != world:
            logger.warning("checkpoint holds %d noise generator states for %d processes: reseeding by rank", len(states), world)
            self.generator.set_state(states[0])
            if rank:
                self.generator.manual_seed(int(torch.randint(0, 2**31, (1,), generator=self.generator)) + rank)
            return
        self.generator.set_state(states[rank])


def _load_pipeline(name_or_path: str, seed: int = 0, revision: str | None = None, variant: str | None = None):
    """A base pipeline (tiny name, stock folder, Hub id) or one of our MMPhys pipeline folders."""
    from ..backbones import TINY_CONFIG_NAMES, load_base_pipeline

    if name_or_path in TINY_CONFIG_NAMES:
        return load_base_pipeline(name_or_path, seed=seed)
    kwargs = {k: v for k, v in (("revision", revision), ("variant", variant)) if v is not None}
    index = Path(name_or_path) / "model_index.json"
    if index.is_file():
        class_name = json.loads(index.read_text()).get("_class_name")
        if isinstance(class_name, list):  # ["<remote-code stem>", "<Class>"]
            class_name = class_name[-1]
        if class_name in ("MMPhysVideoTeacherPipeline", "MMPhysVideoPipeline"):
            from .. import pipelines

            return getattr(pipelines, class_name).from_pretrained(name_or_path, **kwargs)
    return load_base_pipeline(name_or_path, **kwargs)


# libraries a model_index.json may name for the transformer or VAE of an `init_transformer_from` pipeline
_TRUSTED_LIBRARIES = ("diffusers", "mmphys_diffusers")


def _component_class(index: dict, name: str, source: str):
    """The class model_index.json names for component `name`, from diffusers or this package only."""
    import importlib

    entry = index.get(name)
    if not (isinstance(entry, (list, tuple)) and len(entry) == 2 and all(isinstance(v, str) for v in entry)):
        raise MMPhysInputError(f"{source}: model_index.json has no {name!r} entry [library, class]; expected a trained pipeline")
    library, class_name = entry
    if library.split(".")[0] not in _TRUSTED_LIBRARIES:
        raise MMPhysInputError(f"{source}: its {name} comes from {library!r}; expected a class from {list(_TRUSTED_LIBRARIES)}")
    return getattr(importlib.import_module(library), class_name)


def load_transformer_of(name_or_path: str, base_vae: nn.Module) -> nn.Module:
    """The transformer of the trained pipeline `name_or_path` (a folder or Hub id), after checking that its
    VAE equals `base_vae` weight for weight: the transformer was trained on that VAE's latents."""
    from diffusers import DiffusionPipeline

    source = f"init_transformer_from={name_or_path!r}"
    index = DiffusionPipeline.load_config(name_or_path)
    vae = _component_class(index, "vae", source).from_pretrained(name_or_path, subfolder="vae")
    ours, theirs = base_vae.state_dict(), vae.state_dict()
    differing = sorted(k for k in set(ours) | set(theirs)
                       if k not in ours or k not in theirs or ours[k].shape != theirs[k].shape or not torch.equal(ours[k].cpu(), theirs[k].cpu()))
    if differing:
        raise MMPhysInputError(
            f"{source}: its VAE differs from pretrained_model's in {len(differing)} tensor(s) (e.g. {differing[0]}); expected "
            "the same VAE, since its transformer was trained on that VAE's latents"
        )
    del vae
    return _component_class(index, "transformer", source).from_pretrained(name_or_path, subfolder="transformer")


def is_teacher_transformer(transformer) -> bool:
    return hasattr(transformer, "control_parameters") and hasattr(transformer, "perception_to_rgb_links")


def token_grid(adapter, transformer, latents: torch.Tensor) -> tuple[int, int, int]:
    """(F', H', W') token grid of the transformer for latents in its layout."""
    pt, ph, pw = adapter.patch_size(transformer)
    vae_layout = adapter.to_vae_layout(latents)
    _, _, f, h, w = vae_layout.shape
    return (math.ceil(f / pt), h // ph, w // pw)


class Trainer(ABC):
    """Shared loop. Subclasses implement `build_model`, `compute_loss`, `save_outputs` and `render_validation`."""

    kind: str = "model"
    pipeline_class_name: str = "MMPhysVideoPipeline"  # the pipeline that saves and samples this model
    config: TrainConfig

    def __init__(self, config: TrainConfig):
        self.config = config.validate()
        self.output_dir = Path(config.output_dir)
        self.history: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs, ProjectConfiguration, set_seed

        cfg = self.config
        if cfg.allow_tf32 and torch.cuda.is_available():
            torch.backends.cuda.matmul.allow_tf32 = True
        log_with = None if cfg.report_to == "none" else cfg.report_to
        if log_with in ("wandb", "all"):
            try:
                import wandb  # noqa: F401
            except ImportError as exc:
                if log_with == "wandb":
                    raise MMPhysInputError("report_to='wandb' but wandb is not installed (pip install wandb)") from exc
                log_with = "tensorboard"
        if log_with == "tensorboard":
            try:
                import tensorboard  # noqa: F401
            except ImportError:
                logger.warning("tensorboard is not installed: logging to %s/logs/training_log.jsonl only", cfg.output_dir)
                log_with = None
        # accelerate keeps its state in process-wide singletons; a second run in the same process (tests,
        # train_tiny.py) may ask for another mixed precision, so start from a fresh AcceleratorState
        # (the process group of a distributed launch lives in PartialState and is kept).
        from accelerate.state import AcceleratorState, GradientState

        AcceleratorState._reset_state()
        GradientState._reset_state()
        # A multi-process launch (torchrun / accelerate launch) on a machine without CUDA: run DDP on CPU
        # (gloo); accelerate only does so when told `cpu`.
        multi_process = int(os.environ.get("WORLD_SIZE", "1")) > 1 or int(os.environ.get("LOCAL_RANK", "-1")) != -1
        sharding = [k for k in ("ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED") if os.environ.get(k, "").lower() in ("1", "true")]
        if multi_process and sharding and not torch.cuda.is_available():
            raise MMPhysInputError(f"{sharding[0]} is set but no CUDA device is available: FSDP/DeepSpeed need GPUs; on CPU launch plain DDP")
        self.accelerator = Accelerator(
            cpu=multi_process and not torch.cuda.is_available(),
            mixed_precision=cfg.mixed_precision,
            gradient_accumulation_steps=cfg.gradient_accumulation_steps,
            log_with=log_with,
            project_config=ProjectConfiguration(project_dir=str(self.output_dir), logging_dir=str(self.output_dir / cfg.logging_dir)),
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=False)],
        )
        acc = self.accelerator
        logger.info(
            "%s trainer: %s, %d process(es), device %s, mixed precision %s",
            self.kind, acc.distributed_type, acc.num_processes, acc.device, acc.mixed_precision,
        )
        set_seed(cfg.seed, device_specific=False)
        if acc.is_main_process:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        self.weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(acc.mixed_precision, torch.float32)

        self.pipe = _load_pipeline(cfg.pretrained_model, seed=0, revision=cfg.revision, variant=cfg.variant)
        if cfg.init_transformer_from:
            self.pipe.transformer = load_transformer_of(cfg.init_transformer_from, self.pipe.vae)
            logger.info("transformer initialised from %s", cfg.init_transformer_from)
        from ..backbones import get_backbone_adapter

        self.adapter = get_backbone_adapter(self.pipe.transformer)
        self.adapter.check_video_size(cfg.num_frames, cfg.height, cfg.width, self.pipe.vae, self.pipe.transformer)
        self.max_sequence_length = cfg.max_sequence_length or self.adapter.default_sequence_length(
            self.pipe.transformer, self.pipe.tokenizer
        )
        self.train_scheduler = self.adapter.training_scheduler(self.pipe)
        for frozen in (self.pipe.vae, self.pipe.text_encoder):
            frozen.requires_grad_(False)
            frozen.eval()
            # the text encoder runs in the compute dtype; the VAE stays as loaded (fp32 for encoding quality)
            frozen.to(acc.device, dtype=self.weight_dtype) if frozen is self.pipe.text_encoder else frozen.to(acc.device)
        self.rng = GeneratorState(cfg.seed * 7919 + acc.process_index, acc.device)

        self.model = self.build_model()
        if cfg.lora_rank:
            cast_frozen_(self.model, self.weight_dtype)  # LoRA: the frozen base in the compute dtype saves memory
        if cfg.gradient_checkpointing:
            self._enable_gradient_checkpointing(self.model)
        self.train_dataset, self.caption_source = self._build_dataset()
        self.sampler = EpochSeededSampler(len(self.train_dataset), seed=cfg.seed)
        dataloader = torch.utils.data.DataLoader(
            self.train_dataset,
            batch_size=cfg.train_batch_size,
            sampler=self.sampler,
            collate_fn=collate_training_clips,
            num_workers=cfg.dataloader_num_workers,
            drop_last=len(self.train_dataset) >= cfg.train_batch_size * acc.num_processes,
        )
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise MMPhysInputError("nothing to train: the model has no parameter with requires_grad=True")
        if acc.mixed_precision == "fp16":
            for p in params:  # fp16 AMP needs fp32 master weights
                p.data = p.data.float()
        optimizer = torch.optim.AdamW(
            params,
            lr=cfg.learning_rate,
            betas=(cfg.adam_beta1, cfg.adam_beta2),
            weight_decay=cfg.adam_weight_decay,
            eps=cfg.adam_epsilon,
        )
        lr_scheduler = build_lr_scheduler(cfg, optimizer, acc.num_processes)
        self.model, self.optimizer, self.dataloader, self.lr_scheduler = acc.prepare(self.model, optimizer, dataloader, lr_scheduler)
        from accelerate.utils import DistributedType

        if cfg.use_ema and acc.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED):
            raise MMPhysInputError("use_ema=True is not supported with FSDP/DeepSpeed (sharded parameters); use DDP or --use_ema false")
        self.ema = TrainableEMA(acc.unwrap_model(self.model), decay=cfg.ema_decay) if cfg.use_ema else None
        acc.register_for_checkpointing(self.rng)
        if self.ema is not None:
            acc.register_for_checkpointing(self.ema)
        self.checkpoints = CheckpointManager(acc, self.output_dir, cfg.checkpoints_total_limit)
        if acc.is_main_process:
            acc.init_trackers(f"mmphys-{self.kind}", config={k: v for k, v in cfg.to_dict().items() if isinstance(v, (int, float, str, bool))})

    @staticmethod
    def _enable_gradient_checkpointing(model: nn.Module) -> None:
        for module in model.modules():
            if getattr(module, "_supports_gradient_checkpointing", False) and hasattr(module, "enable_gradient_checkpointing"):
                module.enable_gradient_checkpointing()
                return
        logger.warning("gradient_checkpointing requested but %s does not support it", type(model).__name__)

    # ------------------------------------------------------------------ data
    def _build_dataset(self):
        cfg, acc = self.config, self.accelerator
        clips = TrainingClips(cfg.dataset, cfg.perception_cue, cfg.num_frames, cfg.height, cfg.width,
                              frame_sampling=cfg.frame_sampling, seed=cfg.seed, max_samples=cfg.max_train_samples,
                              codec_kwargs=cfg.cue_codec_kwargs)
        if not cfg.cache_latents:
            return clips, clips
        cache_root = Path(cfg.latent_cache_dir) if cfg.latent_cache_dir else self.output_dir / "latent-cache"
        cache = LatentCache(cache_root, self.latent_cache_info())
        cache.build(clips, self._encode_pixels, accelerator=acc)
        return CachedLatents(cache, [r.id for r in clips.records]), clips

    def latent_cache_info(self) -> dict[str, Any]:
        """What the cached latents depend on (hashed into the cache key); call after `setup`."""
        cfg = self.config
        info: dict[str, Any] = {
            # a local folder by its real path: the same base reached through a symlink shares the cache
            "pretrained_model": str(Path(cfg.pretrained_model).resolve()) if Path(cfg.pretrained_model).is_dir() else str(cfg.pretrained_model),
            "revision": cfg.revision,
            "dataset": str(Path(cfg.dataset).resolve()),
            "cue": cfg.perception_cue,
            "num_frames": cfg.num_frames,
            "height": cfg.height,
            "width": cfg.width,
            "frame_sampling": cfg.frame_sampling,
            "max_sequence_length": self.max_sequence_length,
            "dtype": str(self.weight_dtype),
        }
        # only the kwargs of the cue in use change the latents; left out when empty so caches written
        # before the option existed (per-clip codec ranges) keep their key
        if cfg.cue_codec_kwargs:
            info["codec_kwargs"] = cfg.cue_codec_kwargs
        if cfg.foreground_loss_weight:  # such caches also hold the object mask (others keep their key)
            info["foreground_mask"] = True
        return info

    def perception_info(self) -> dict[str, Any]:
        """The perception settings inference must decode with (written as `PERCEPTION_INFO_FILE`)."""
        cfg = self.config
        return {"perception_cue": cfg.perception_cue, "perception_codec_kwargs": cfg.cue_codec_kwargs or None}

    @torch.no_grad()
    def _encode_pixels(self, batch: dict) -> dict[str, torch.Tensor]:
        """Pixel batch -> latents (posterior mode: deterministic, so cached == uncached) and prompt embeddings."""
        device = self.accelerator.device
        vae = self.pipe.vae
        # contiguous: conv3d on a permuted view takes a much slower path
        rgb = self.adapter.encode_video(vae, batch["rgb"].to(device).contiguous())
        perception = self.adapter.encode_video(vae, batch["perception"].to(device).contiguous())
        embeds = self.adapter.encode_prompt(
            self.pipe.text_encoder, self.pipe.tokenizer, list(batch["caption"]), self.max_sequence_length, device=device, dtype=self.weight_dtype
        )
        out = {"rgb_latents": rgb.float(), "perception_latents": perception.float(), "prompt_embeds": embeds.float()}
        if self.config.foreground_loss_weight:
            out["foreground"] = self._latent_foreground(batch["perception"].to(device), rgb.shape)
        return out

    def _latent_foreground(self, perception: torch.Tensor, latent_shape) -> torch.Tensor:
        """Unified pseudo-RGB ``[B, 3, F, H, W]`` in [-1, 1] -> object latent positions ``[B, 1, T, h, w]``."""
        # G is the instance level, 0 (-1 here) on the background; levels are 2 / max_instances apart
        max_instances = float((self.config.cue_codec_kwargs or {}).get("max_instances", 32))
        objects = perception[:, 1] > -1.0 + 1.0 / max_instances
        return latent_foreground_mask(objects, latent_shape)

    def loss_element_weight(self, batch: dict, latents: torch.Tensor) -> torch.Tensor | None:
        """Per-position diffusion-loss weights ``[B, 1, T, h, w]`` (``1 + foreground_loss_weight`` on objects), or None."""
        weight = float(self.config.foreground_loss_weight)
        if not weight:
            return None
        mask = batch.get("foreground")
        if mask is None:
            mask = self._latent_foreground(batch["perception"].to(latents.device), latents.shape)
        return 1.0 + weight * mask.to(latents.device, torch.float32)

    def latents_of(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(rgb latents, perception latents, prompt embeddings) of a pixel or cached batch, in the weight dtype."""
        if "rgb_latents" not in batch:
            batch = self._encode_pixels(batch)
        device, dtype = self.accelerator.device, self.weight_dtype
        rgb, perception, embeds = (batch[k].to(device, dtype) for k in ("rgb_latents", "perception_latents", "prompt_embeds"))
        if self.config.caption_dropout_prob > 0:  # no random draw otherwise: runs without dropout keep their stream
            drop = self.uniform(embeds.shape[0]) < self.config.caption_dropout_prob
            embeds = torch.where(drop[:, None, None], self.empty_prompt_embeds(embeds.shape[1]).to(device, dtype), embeds)
        return rgb, perception, embeds

    @torch.no_grad()
    def empty_prompt_embeds(self, seq_len: int) -> torch.Tensor:
        """Embedding of the empty prompt, ``[1, seq_len, D]`` (what guidance uses as the unconditional branch)."""
        cached = self.__dict__.get("_empty_prompt_embeds")
        if cached is None or cached.shape[1] != seq_len:
            cached = self.adapter.encode_prompt(
                self.pipe.text_encoder, self.pipe.tokenizer, [""], seq_len, device=self.accelerator.device, dtype=self.weight_dtype
            ).float()
            self.__dict__["_empty_prompt_embeds"] = cached
        return cached

    def noise_like(self, x: torch.Tensor) -> torch.Tensor:
        return torch.randn(x.shape, generator=self.rng.generator, device=x.device, dtype=torch.float32).to(x.dtype)

    def sample_timesteps(self, batch_size: int) -> torch.Tensor:
        return self.adapter.sample_timesteps(self.train_scheduler, batch_size, generator=self.rng.generator, device=self.accelerator.device)

    def uniform(self, batch_size: int) -> torch.Tensor:
        return torch.rand(batch_size, generator=self.rng.generator, device=self.rng.generator.device).to(self.accelerator.device)

    # ------------------------------------------------------------------ subclass API
    @abstractmethod
    def build_model(self) -> nn.Module:
        """The trainable module (requires_grad set), on the accelerator device."""

    @abstractmethod
    def compute_loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """(loss to backpropagate, scalars to log) of one batch."""

    def pipeline_with(self, transformer: nn.Module):
        """The base pipeline's components around `transformer`, as `pipeline_class_name`."""
        from .. import pipelines

        return getattr(pipelines, self.pipeline_class_name)(
            tokenizer=self.pipe.tokenizer,
            text_encoder=self.pipe.text_encoder,
            vae=self.pipe.vae,
            transformer=transformer,
            scheduler=self.pipe.scheduler,
        )

    @abstractmethod
    def save_outputs(self, model: nn.Module) -> None:
        """Write the final pipeline / LoRA folder into output_dir (main process)."""

    @abstractmethod
    def render_validation(self, model: nn.Module, prompt: str, seed: int) -> Any:
        """One validation video, uint8/float ``[F, H, W, 3]``."""

    def metrics(self) -> dict[str, Any]:
        k = max(1, min(10, len(self.history) // 4 or 1))
        losses = [h["loss"] for h in self.history]
        out: dict[str, Any] = {"global_step": self.global_step}
        if losses:
            out.update({"loss_first": sum(losses[:k]) / len(losses[:k]), "loss_last": sum(losses[-k:]) / len(losses[-k:])})
        return out

    # ------------------------------------------------------------------ loop
    def train(self, interrupt_after_step: int | None = None) -> dict[str, Any]:
        """Run (or resume) training, then save, validate, write the model card and upload.

        Returns a summary dict (final metrics, history of ``{"step", "loss", ...}``, output paths).
        `interrupt_after_step` raises `InterruptedForTest` right after that step's checkpoint (tests).
        """
        from tqdm.auto import tqdm

        self.setup()
        cfg, acc = self.config, self.accelerator
        steps_per_epoch = max(1, math.ceil(len(self.dataloader) / cfg.gradient_accumulation_steps))
        self.global_step, first_epoch, skip_batches = 0, 0, 0
        checkpoint = resolve_checkpoint(self.output_dir, cfg.resume_from_checkpoint)
        if cfg.resume_from_checkpoint and checkpoint is None:
            logger.info("no checkpoint in %s yet: starting a new run", self.output_dir)
        if checkpoint is not None:
            state = self.checkpoints.load(checkpoint)
            self.global_step = int(state["global_step"])
            first_epoch = self.global_step // steps_per_epoch
            skip_batches = (self.global_step % steps_per_epoch) * cfg.gradient_accumulation_steps
            self.history = [h for h in self._read_history() if h["step"] <= self.global_step]
        num_epochs = math.ceil(cfg.max_train_steps / steps_per_epoch)
        if self.global_step >= cfg.max_train_steps:
            # resumed from the final checkpoint: the partial last epoch must not run (its remaining
            # batches would take extra optimizer steps); go straight to saving the outputs
            logger.info("checkpoint at step %d already reaches max_train_steps=%d: no training step", self.global_step, cfg.max_train_steps)
            first_epoch = num_epochs
        progress = tqdm(total=cfg.max_train_steps, initial=self.global_step, desc=f"train {self.kind}", disable=not acc.is_local_main_process)
        start = time.perf_counter()
        self.model.train()
        accum_logs: dict[str, float] = {}
        accum_count = 0
        for epoch in range(first_epoch, num_epochs):
            loader = self.dataloader
            if epoch == first_epoch and skip_batches:
                loader = acc.skip_first_batches(self.dataloader, skip_batches)
            # accelerate's loaders re-set the sampler epoch from their own counter when iterated
            # (a fresh skip loader starts at 0), so set the epoch on the loader itself.
            if hasattr(loader, "set_epoch"):
                loader.set_epoch(epoch)
            self.sampler.set_epoch(epoch)
            if hasattr(self.train_dataset, "set_epoch"):
                self.train_dataset.set_epoch(epoch)
            for batch in loader:
                if self.global_step >= cfg.max_train_steps:
                    break  # never start a step past the budget (e.g. a checkpoint beyond a lowered max_train_steps)
                with acc.accumulate(self.model):
                    loss, logs = self.compute_loss(batch)
                    acc.backward(loss)
                    if acc.sync_gradients and cfg.max_grad_norm > 0:
                        acc.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], cfg.max_grad_norm)
                    self.optimizer.step()
                    self.lr_scheduler.step()
                    self.optimizer.zero_grad(set_to_none=True)
                # the logged loss is the mean over processes (the others stay per-process)
                loss_value = acc.reduce(loss.detach().float(), reduction="mean").item() if acc.num_processes > 1 else loss.detach().item()
                for key, value in {"loss": loss_value, **logs}.items():
                    accum_logs[key] = accum_logs.get(key, 0.0) + float(value)
                accum_count += 1
                if not acc.sync_gradients:
                    continue
                self.global_step += 1
                if self.ema is not None:
                    self.ema.step(acc.unwrap_model(self.model))
                record = {"step": self.global_step, **{k: v / accum_count for k, v in accum_logs.items()}, "lr": self.lr_scheduler.get_last_lr()[0]}
                accum_logs, accum_count = {}, 0
                self.history.append(record)
                acc.log({k: v for k, v in record.items() if k != "step"}, step=self.global_step)
                progress.update(1)
                progress.set_postfix(loss=f"{record['loss']:.4f}")
                if self.global_step % cfg.checkpointing_steps == 0 or self.global_step == cfg.max_train_steps:
                    self._write_history()
                    self.checkpoints.save(self.global_step, {"epoch": epoch})
                if cfg.validation_steps and self.global_step % cfg.validation_steps == 0 and self.global_step < cfg.max_train_steps:
                    self.validate(f"step-{self.global_step}")
                if interrupt_after_step is not None and self.global_step >= interrupt_after_step:
                    progress.close()
                    raise InterruptedForTest(f"interrupted after step {self.global_step}")
                if self.global_step >= cfg.max_train_steps:
                    break
            if self.global_step >= cfg.max_train_steps:
                break
        progress.close()
        train_seconds = time.perf_counter() - start
        acc.wait_for_everyone()
        summary: dict[str, Any] = {"history": self.history, "train_seconds": train_seconds, **self.perception_info()}
        model = self._final_model()
        if acc.is_main_process:
            ema_context = self.ema.swapped_in(model) if self.ema is not None else contextlib.nullcontext()
            with ema_context:
                self.save_outputs(model)
                samples = self.validate("final", model=model)
            # the clip shape it learnt: `mmphys generate` defaults to it (a pipeline's own default is 81 x 480 x 832)
            generation = {"num_frames": cfg.num_frames, "height": cfg.height, "width": cfg.width}
            atomic_write_json(self.output_dir / PERCEPTION_INFO_FILE, {**self.perception_info(), "generation_defaults": generation})
            self._write_history()
            metrics = {**self.metrics(), "train_seconds": round(train_seconds, 2)}
            summary["metrics"] = metrics
            summary["samples"] = samples
            self.write_card(metrics, samples)
            if cfg.push_to_hub:
                from .hub import upload_to_hub

                summary["hub_url"] = upload_to_hub(self.output_dir, cfg.hub_model_id, token=cfg.hub_token, private=cfg.hub_private)
        acc.wait_for_everyone()
        acc.end_training()
        return summary

    def _final_model(self) -> nn.Module | None:
        """The trained module with full (unsharded) weights on the main process; None elsewhere.

        Under FSDP / DeepSpeed the weights are sharded: every rank takes part in gathering the full
        state dict, which the main process loads into a fresh module of the same architecture.
        """
        acc = self.accelerator
        if not self.checkpoints.sharded:
            return acc.unwrap_model(self.model) if acc.is_main_process else None
        full_state = acc.get_state_dict(self.model)
        if not acc.is_main_process:
            return None
        fresh = self.fresh_model_like(acc.unwrap_model(self.model))
        result = fresh.load_state_dict(full_state, strict=False)
        if result.missing_keys:
            raise RuntimeError(f"gathered state dict misses {len(result.missing_keys)} weights, e.g. {result.missing_keys[:5]}")
        return fresh.to(acc.device)

    def fresh_model_like(self, live: nn.Module) -> nn.Module:
        """A new module with the same architecture as `live` (FSDP/DeepSpeed final save); subclasses override."""
        raise NotImplementedError(f"{type(self).__name__} cannot rebuild its model for a sharded save")

    # ------------------------------------------------------------------ validation / card / logs
    def validation_prompt(self) -> str:
        if self.config.validation_prompt:
            return self.config.validation_prompt
        records = getattr(self.caption_source, "records", None)
        return records[0].caption if records else "a ball rolls down a ramp"

    @torch.no_grad()
    def validate(self, tag: str, model: nn.Module | None = None) -> list[str]:
        """Render `num_validation_videos` videos to ``samples/<tag>_<i>.mp4`` (main process); returns relative paths."""
        acc = self.accelerator
        if not acc.is_main_process:
            return []
        from ..utils.video_io import to_uint8_frames, write_video

        model = model if model is not None else acc.unwrap_model(self.model)
        was_training = model.training
        model.eval()
        prompt = self.validation_prompt()
        written = []
        try:
            for i in range(self.config.num_validation_videos):
                frames = to_uint8_frames(self.render_validation(model, prompt, seed=self.config.seed + i))
                rel = f"samples/{tag}_{i}.mp4"
                write_video(self.output_dir / rel, frames, fps=8.0)
                written.append(rel)
                for tracker in acc.trackers:
                    if tracker.name == "tensorboard":
                        strip = frames[:: max(1, len(frames) // 4)].transpose(0, 3, 1, 2)  # a few frames, NCHW
                        tracker.log_images({f"validation/{tag}_{i}": strip}, step=self.global_step)
        finally:
            model.train(was_training)
        logger.info("validation videos: %s", written)
        return written

    def write_card(self, metrics: dict[str, Any], samples: list[str]) -> None:
        from .hub import build_model_card

        kind = f"{self.kind}-lora" if self.config.lora_rank else self.kind
        build_model_card(
            self.output_dir,
            kind=kind,
            base_model=self.config.init_transformer_from or self.config.pretrained_model,
            config=self.config.to_dict(),
            metrics=metrics,
            sample_videos=samples,
            validation_prompt=self.validation_prompt(),
            repo_id=self.config.hub_model_id,
        )

    def _history_path(self) -> Path:
        return self.output_dir / self.config.logging_dir / "training_log.jsonl"

    def _write_history(self) -> None:
        if self.accelerator.is_main_process:
            path = self._history_path()
            from ..utils.atomic import atomic_write_text

            atomic_write_text(path, "".join(json.dumps(h) + "\n" for h in self.history))

    def _read_history(self) -> list[dict]:
        path = self._history_path()
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def build_lr_scheduler(cfg: TrainConfig, optimizer: torch.optim.Optimizer, num_processes: int = 1):
    """The learning-rate schedule of `cfg` (accelerate steps it once per process per optimizer step).

    "warmup_stable_decay" (WSD) holds the rate after warm-up and decays it linearly to 0 over the last
    `lr_decay_steps`; its first part equals "constant_with_warmup", so a constant-rate run can be continued
    into a decay exactly.
    """
    steps = {"num_warmup_steps": cfg.lr_warmup_steps * num_processes, "num_training_steps": cfg.max_train_steps * num_processes}
    if cfg.lr_scheduler == "warmup_stable_decay":
        from transformers.optimization import get_wsd_schedule

        return get_wsd_schedule(optimizer, num_decay_steps=cfg.lr_decay_steps * num_processes, decay_type="linear", **steps)
    from diffusers.optimization import get_scheduler

    return get_scheduler(cfg.lr_scheduler, optimizer=optimizer, **steps)


def write_summary(output_dir: str | os.PathLike, summary: dict) -> None:
    """``train_summary.json``: final metrics and the loss curve, for docs and tests."""
    atomic_write_json(Path(output_dir) / "train_summary.json", {k: v for k, v in summary.items() if k != "history"} | {
        "loss_curve": [{"step": h["step"], "loss": round(h["loss"], 6)} for h in summary.get("history", [])]
    })


def cast_frozen_(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Cast frozen parameters to `dtype`, except the modules the backbone keeps in fp32 (norms, time embedding)."""
    if dtype == torch.float32:
        return model
    keep: set[str] = set()
    for module in model.modules():
        keep.update(getattr(module, "_keep_in_fp32_modules", None) or [])
    for name, p in model.named_parameters():
        if not p.requires_grad and not keep.intersection(name.split(".")):
            p.data = p.data.to(dtype)
    return model


def setup_lora(transformer: nn.Module, config: TrainConfig, always_trainable: Iterable[nn.Parameter] = ()) -> None:
    """Freeze `transformer`, add a peft LoRA adapter (`config.lora_*`), and unfreeze `always_trainable`."""
    from peft import LoraConfig

    transformer.requires_grad_(False)
    lora_config = LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_scale_alpha,
        lora_dropout=config.lora_dropout,
        init_lora_weights=True,
        target_modules=list(config.lora_target_modules),
    )
    try:
        transformer.add_adapter(lora_config)
    except ValueError as exc:
        raise MMPhysInputError(f"lora_target_modules={config.lora_target_modules}: {exc}") from exc
    for p in always_trainable:
        p.requires_grad_(True)
