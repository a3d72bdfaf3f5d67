"""One specification per backbone: everything that differs between CogVideoX and Wan.

Pipelines, the teacher dispatch, the trainers and the evaluation code talk to a
backbone only through a `BackboneAdapter`, so supporting a third backbone is one new
file that subclasses it and calls `register_backbone`.

Shapes used throughout:
    * pixel videos: ``[B, 3, F, H, W]`` float in [-1, 1] (diffusers VAE convention);
    * latents: the transformer's own layout, ``"BFCHW"`` (CogVideoX) or ``"BCFHW"`` (Wan);
    * prompt embeddings: ``[B, L, D]``.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch

from ..errors import MMPhysInputError

_ADAPTERS: dict[str, "BackboneAdapter"] = {}


def module_execution_device(module) -> torch.device:
    """Where `module` computes (its offload hook's device when model CPU offload is on)."""
    from diffusers.utils.torch_utils import get_module_execution_device

    return get_module_execution_device(module)


def register_backbone(adapter_cls: type["BackboneAdapter"]) -> type["BackboneAdapter"]:
    """Class decorator: register one adapter instance under ``adapter_cls.name``."""
    _ADAPTERS[adapter_cls.name] = adapter_cls()
    return adapter_cls


def available_backbones() -> list[str]:
    return sorted(_ADAPTERS)


def registered_adapters() -> list["BackboneAdapter"]:
    """All registered adapter instances (built-in ones included)."""
    from . import cogvideox, wan  # noqa: F401

    return list(_ADAPTERS.values())


class BackboneAdapter(ABC):
    """Backbone-specific behaviour behind one interface (stateless; one instance per backbone).

    Class attributes:
        name: registry key ("cogvideox", "wan").
        stock_pipeline_class_name: the diffusers text-to-video pipeline of the backbone; written as
            `_class_name` into a student's model_index.json so stock diffusers can load it.
        latent_layout: "BFCHW" or "BCFHW" (what the transformer takes and returns).
        default_height / default_width / default_num_frames: the base model's native sample size.
        prediction_type: what the transformer predicts ("v_prediction" or "flow_matching").
        cfg_batched: True when the stock pipeline runs conditional and unconditional passes as one
            batch (CogVideoX), False when it runs them one after the other (Wan). Matching the stock
            pipeline keeps outputs and memory identical.
        default_max_sequence_length: text tokens used by the stock pipeline.
    """

    name: ClassVar[str]
    stock_pipeline_class_name: ClassVar[str]
    latent_layout: ClassVar[str]
    default_height: ClassVar[int]
    default_width: ClassVar[int]
    default_num_frames: ClassVar[int]
    prediction_type: ClassVar[str]
    cfg_batched: ClassVar[bool]
    default_max_sequence_length: ClassVar[int] = 226

    # ------------------------------------------------------------------ classes
    @property
    @abstractmethod
    def transformer_class(self) -> type:
        """The diffusers base transformer class (teachers subclass it)."""

    @property
    @abstractmethod
    def lora_loader_mixin(self) -> type:
        """The diffusers LoRA loader mixin of the stock pipeline (e.g. CogVideoXLoraLoaderMixin)."""

    @property
    @abstractmethod
    def vae_class(self) -> type:
        """The diffusers VAE class of the backbone."""

    @property
    def compatible_vae_classes(self) -> tuple[type, ...]:
        """Other VAE classes that share `vae_class`'s latent layout and config fields (e.g. the tiny bundled VAE)."""
        return ()

    @property
    def stock_pipeline_class(self) -> type:
        import diffusers

        return getattr(diffusers, self.stock_pipeline_class_name)

    def owns(self, obj: Any) -> bool:
        """True if `obj` (a transformer or VAE, instance or class; teacher subclasses included) belongs to this backbone."""
        cls = obj if isinstance(obj, type) else type(obj)
        return issubclass(cls, (self.transformer_class, self.vae_class, *self.compatible_vae_classes))

    # ------------------------------------------------------------------ sizes
    @abstractmethod
    def vae_scale_factors(self, vae) -> tuple[int, int]:
        """(temporal, spatial) compression of `vae`."""

    @abstractmethod
    def patch_size(self, transformer) -> tuple[int, int, int]:
        """(temporal, height, width) patch size of `transformer`; temporal is 1 when not patched in time."""

    def default_video_size(self, transformer, vae) -> tuple[int, int, int]:
        """(num_frames, height, width) used when the caller gives none."""
        return self.default_num_frames, self.default_height, self.default_width

    def latents_dtype(self, transformer) -> torch.dtype:
        """dtype the sampling loop keeps the latents in (as the stock pipeline)."""
        return transformer.dtype

    def latent_channels(self, transformer) -> int:
        return int(transformer.config.in_channels)

    def check_video_size(self, num_frames: int, height: int, width: int, vae, transformer) -> None:
        """Raise `MMPhysInputError` unless the VAE and the patch embedding accept this video size.

        Both backbones' causal VAEs take ``k * temporal_factor + 1`` frames, and the spatial size must be a
        multiple of ``vae_spatial_factor * patch_size``.
        """
        t_factor, s_factor = self.vae_scale_factors(vae)
        _, patch_h, patch_w = self.patch_size(transformer)
        if not isinstance(num_frames, int) or num_frames < 1 or (num_frames - 1) % t_factor != 0:
            raise MMPhysInputError(
                f"num_frames={num_frames!r} cannot be encoded by the {self.name} VAE: expected k*{t_factor}+1 frames "
                f"(e.g. {t_factor + 1}, {2 * t_factor + 1}, {4 * t_factor + 1})"
            )
        for label, value, multiple in (("height", height, s_factor * patch_h), ("width", width, s_factor * patch_w)):
            if not isinstance(value, int) or value <= 0 or value % multiple != 0:
                raise MMPhysInputError(
                    f"{label}={value!r} is not supported by {self.name}: expected a positive multiple of {multiple} "
                    f"(VAE spatial factor {s_factor} x patch size {multiple // s_factor})"
                )

    def num_latent_frames(self, num_frames: int, vae) -> int:
        t_factor, _ = self.vae_scale_factors(vae)
        return (num_frames - 1) // t_factor + 1

    def latent_shape(self, batch: int, num_frames: int, height: int, width: int, vae, transformer) -> tuple[int, ...]:
        """Latent shape in the model layout for a ``[batch, 3, num_frames, height, width]`` video."""
        _, s_factor = self.vae_scale_factors(vae)
        frames = self.num_latent_frames(num_frames, vae)
        channels = self.latent_channels(transformer)
        h, w = height // s_factor, width // s_factor
        if self.latent_layout == "BFCHW":
            return (batch, frames, channels, h, w)
        return (batch, channels, frames, h, w)

    def to_model_layout(self, latents_bcfhw: torch.Tensor) -> torch.Tensor:
        """VAE layout ``[B,C,F,H,W]`` -> model layout."""
        return latents_bcfhw.permute(0, 2, 1, 3, 4) if self.latent_layout == "BFCHW" else latents_bcfhw

    def to_vae_layout(self, latents: torch.Tensor) -> torch.Tensor:
        """Model layout -> VAE layout ``[B,C,F,H,W]``."""
        return latents.permute(0, 2, 1, 3, 4) if self.latent_layout == "BFCHW" else latents

    # ------------------------------------------------------------------ text
    def default_sequence_length(self, transformer, tokenizer=None) -> int:
        """Text tokens per prompt when the caller gives no `max_sequence_length`."""
        return self.default_max_sequence_length

    def clean_prompt(self, prompt: str) -> str:
        return prompt

    @abstractmethod
    def encode_prompt(
        self,
        text_encoder,
        tokenizer,
        prompts: list[str],
        max_sequence_length: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """Prompts -> text embeddings ``[B, max_sequence_length, D]`` exactly as the stock pipeline computes them."""

    # ------------------------------------------------------------------ video <-> latents
    @abstractmethod
    def encode_video(self, vae, video: torch.Tensor, generator: torch.Generator | None = None, sample: bool = False) -> torch.Tensor:
        """Pixels ``[B,3,F,H,W]`` in [-1,1] -> scaled latents in the model layout.

        `sample=False` takes the posterior mode (deterministic, used for conditioning videos);
        `sample=True` draws from the posterior with `generator` (used by trainers).
        """

    @abstractmethod
    def decode_latents(self, vae, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents in the model layout -> pixels ``[B,3,F,H,W]`` in about [-1,1]."""

    def _posterior(self, vae, video: torch.Tensor, generator, sample: bool) -> torch.Tensor:
        if video.ndim != 5 or video.shape[1] != 3:
            raise MMPhysInputError(f"video must be [B,3,F,H,W] in [-1,1], got shape {tuple(video.shape)}")
        # The execution device, not vae.device: under model CPU offload the VAE sits on the CPU until called.
        video = video.to(device=module_execution_device(vae), dtype=vae.dtype)
        dist = vae.encode(video).latent_dist
        return dist.sample(generator=generator) if sample else dist.mode()

    # ------------------------------------------------------------------ denoising
    def transformer_kwargs(self, transformer, latents: torch.Tensor, height: int, width: int, num_frames: int, vae=None) -> dict:
        """Extra transformer kwargs computed once per call (CogVideoX rotary embeddings)."""
        return {}

    def scale_model_input(self, scheduler, latents: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        scale = getattr(scheduler, "scale_model_input", None)
        return scale(latents, timestep) if scale is not None else latents

    def extra_step_kwargs(self, scheduler, generator=None, eta: float = 0.0) -> dict:
        params = set(inspect.signature(scheduler.step).parameters)
        kwargs = {}
        if "eta" in params:
            kwargs["eta"] = eta
        if "generator" in params:
            kwargs["generator"] = generator
        return kwargs

    def scheduler_step(
        self,
        scheduler,
        model_output: torch.Tensor,
        timestep: torch.Tensor,
        latents: torch.Tensor,
        state: dict,
        step_index: int,
        timesteps: torch.Tensor,
        **extra_step_kwargs,
    ) -> torch.Tensor:
        """One scheduler update. `state` is a per-stream dict for schedulers that need extra memory."""
        return scheduler.step(model_output, timestep, latents, **extra_step_kwargs, return_dict=False)[0]

    def prepare_scheduler(self, scheduler) -> None:
        """Called after `set_timesteps` (Wan sets the begin index like the stock pipeline)."""

    # ------------------------------------------------------------------ training objective
    @abstractmethod
    def training_scheduler(self, pipe_or_config):
        """The scheduler that defines the training objective, built from a pipeline or a scheduler config."""

    @abstractmethod
    def sample_timesteps(
        self, scheduler, batch: int, generator: torch.Generator | None = None, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """Training timesteps ``[B]`` in the units the transformer takes."""

    @abstractmethod
    def noisy_latents_and_target(
        self, scheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(noisy latents x_t, regression target for the transformer output), both in the model layout."""

    # ------------------------------------------------------------------ teacher
    def build_teacher(self, transformer, **kwargs):
        """Wrap a base transformer into the Bidirectionally Controlled Teacher (zero-initialised links)."""
        if not self.owns(transformer):
            raise MMPhysInputError(
                f"build_teacher: transformer {type(transformer).__name__} is not a {self.transformer_class.__name__}"
            )
        from ..models import ControlLinkTransformer3DModel

        return ControlLinkTransformer3DModel.from_transformer(transformer, **kwargs)

    # ------------------------------------------------------------------ tiny configs
    @abstractmethod
    def tiny_components(self, seed: int = 0, **overrides) -> dict:
        """Randomly initialised tiny `vae, text_encoder, tokenizer, transformer, scheduler` that run fast on CPU.

        `overrides` maps "transformer" / "vae" / "text_encoder" to dicts of config overrides.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def get_backbone_adapter(obj_or_name: Any) -> BackboneAdapter:
    """Pick the adapter for a name, a transformer or VAE (instance or class, teachers included), or a pipeline.

    Names: "cogvideox", "wan", the tiny names "tiny-cogvideox"/"tiny-wan", or a stock pipeline class
    name such as "CogVideoXPipeline".
    """
    from . import cogvideox, wan  # noqa: F401  (register the built-in adapters)

    if isinstance(obj_or_name, BackboneAdapter):
        return obj_or_name
    if isinstance(obj_or_name, str):
        key = obj_or_name.lower()
        key = key[len("tiny-"):] if key.startswith("tiny-") else key
        if key in _ADAPTERS:
            return _ADAPTERS[key]
        for adapter in _ADAPTERS.values():
            if obj_or_name == adapter.stock_pipeline_class_name:
                return adapter
        raise MMPhysInputError(f"unknown backbone {obj_or_name!r}; expected one of {available_backbones()}")
    transformer = getattr(obj_or_name, "transformer", None)
    if transformer is not None and not isinstance(obj_or_name, type):
        obj_or_name = transformer
    for adapter in _ADAPTERS.values():
        if adapter.owns(obj_or_name):
            return adapter
    what = obj_or_name.__name__ if isinstance(obj_or_name, type) else type(obj_or_name).__name__
    raise MMPhysInputError(
        f"no backbone adapter for {what}; supported: "
        f"{[c.__name__ for a in _ADAPTERS.values() for c in (a.transformer_class, a.vae_class)]} (and their subclasses)"
    )
