"""`MMPhysVideoPipeline`: the single-stream student (text-to-video) on any registered backbone.

The student's transformer is the plain diffusers base class (CogVideoX or Wan), so a saved
student is a stock diffusers folder: `DiffusionPipeline.from_pretrained(dir)` loads it as
`CogVideoXPipeline` / `WanPipeline` without this package. Everything backbone-specific goes
through `mmphys_diffusers.backbones.get_backbone_adapter`.

LoRA: instantiating the pipeline picks a per-backbone subclass that also inherits the backbone's
diffusers LoRA loader mixin (`CogVideoXLoraLoaderMixin` / `WanLoraLoaderMixin`), so
`load_lora_weights`, `set_adapters`, `fuse_lora`, ... behave as on the stock pipelines.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Callable, ClassVar

import torch
from diffusers import DiffusionPipeline
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.models.modeling_utils import ModelMixin
from diffusers.pipelines.cogvideo.pipeline_cogvideox import retrieve_timesteps
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils.torch_utils import randn_tensor
from diffusers.video_processor import VideoProcessor
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..backbones import BackboneAdapter, get_backbone_adapter
from ..backbones.base import registered_adapters
from ..errors import MMPhysInputError
from ..utils.atomic import atomic_write_json
from .pipeline_output import MMPhysVideoPipelineOutput

OUTPUT_TYPES = ("pil", "np", "pt", "latent")

# (generic pipeline class, backbone name) -> subclass that adds the backbone's LoRA loader mixin
_LORA_VARIANTS: dict[tuple[type, str], type] = {}


def _lora_variant(base_cls: type, adapter: BackboneAdapter) -> type:
    """The subclass of `base_cls` with `adapter.lora_loader_mixin`, created once and kept importable by name."""
    key = (base_cls, adapter.name)
    if key not in _LORA_VARIANTS:
        mixin = adapter.lora_loader_mixin
        name = f"{base_cls.__name__}With{mixin.__name__.replace('LoraLoaderMixin', '')}Lora"
        variant = type(
            name,
            (base_cls, mixin),
            {"__module__": base_cls.__module__, "__qualname__": name, "_variant_backbone": adapter.name, "_variant_base": base_cls},
        )
        # Module attribute so the class pickles and shows up by name.
        setattr(sys.modules[base_cls.__module__], name, variant)
        _LORA_VARIANTS[key] = variant
    return _LORA_VARIANTS[key]


class MMPhysVideoPipelineBase(DiffusionPipeline):
    """Shared machinery of the student and teacher pipelines (prompt encoding, latents, decoding, loading)."""

    model_cpu_offload_seq = "text_encoder->transformer->vae"
    _optional_components: ClassVar[list] = []
    _callback_tensor_inputs: ClassVar[list[str]] = ["latents", "prompt_embeds", "negative_prompt_embeds"]
    # set on the per-backbone LoRA subclasses made by `_lora_variant`
    _variant_backbone: ClassVar[str | None] = None
    _variant_base: ClassVar[type | None] = None

    def __new__(cls, *args, **kwargs):
        transformer = kwargs.get("transformer", args[3] if len(args) > 3 else None)
        if transformer is not None:
            adapter = get_backbone_adapter(transformer)
            if cls._variant_backbone != adapter.name:
                cls = _lora_variant(cls._variant_base or cls, adapter)
        return super().__new__(cls)

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        text_encoder: PreTrainedModel,
        vae: ModelMixin,
        transformer: ModelMixin,
        scheduler: SchedulerMixin,
    ):
        super().__init__()
        self._check_transformer(transformer)
        self.register_modules(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer, scheduler=scheduler)
        self.backbone = get_backbone_adapter(transformer)
        self.vae_scale_factor_temporal, self.vae_scale_factor_spatial = self.backbone.vae_scale_factors(vae)
        self.video_processor = VideoProcessor(vae_scale_factor=self.vae_scale_factor_spatial)

    def _check_transformer(self, transformer) -> None:
        """Subclasses say which transformers they run."""

    @classmethod
    def _known_transformer_classes(cls) -> tuple[type, ...]:
        return tuple(adapter.transformer_class for adapter in registered_adapters())

    @classmethod
    def _get_signature_types(cls) -> dict:
        # `from_pipe` keeps a model component only if its exact class is in the annotation: list the
        # registered backbones' classes next to the generic `ModelMixin` annotation.
        types = super()._get_signature_types()
        types["vae"] = tuple(types["vae"]) + tuple(
            c for adapter in registered_adapters() for c in (adapter.vae_class, *adapter.compatible_vae_classes))
        types["transformer"] = tuple(types["transformer"]) + cls._known_transformer_classes()
        return types

    # ------------------------------------------------------------------ properties (as diffusers pipelines)
    @property
    def guidance_scale(self) -> float:
        return self._guidance_scale

    @property
    def do_classifier_free_guidance(self) -> bool:
        return self._guidance_scale > 1.0

    @property
    def num_timesteps(self) -> int:
        return self._num_timesteps

    @property
    def attention_kwargs(self) -> dict | None:
        return self._attention_kwargs

    @property
    def current_timestep(self):
        return self._current_timestep

    @property
    def interrupt(self) -> bool:
        return getattr(self, "_interrupt", False)

    # ------------------------------------------------------------------ VAE memory savers
    def _vae_call(self, method: str, **kwargs) -> None:
        fn = getattr(self.vae, method, None)
        if fn is None:
            raise MMPhysInputError(f"{type(self.vae).__name__} has no {method}(); this VAE does not support it")
        fn(**kwargs)

    def enable_vae_tiling(self, **kwargs) -> None:
        """Decode/encode the VAE in overlapping spatial tiles (less memory for large videos)."""
        self._vae_call("enable_tiling", **kwargs)

    def disable_vae_tiling(self) -> None:
        self._vae_call("disable_tiling")

    def enable_vae_slicing(self) -> None:
        """Decode the batch one video at a time."""
        self._vae_call("enable_slicing")

    def disable_vae_slicing(self) -> None:
        self._vae_call("disable_slicing")

    # ------------------------------------------------------------------ inputs
    def _batch_size(self, prompt, prompt_embeds) -> int:
        if prompt is not None:
            return 1 if isinstance(prompt, str) else len(prompt)
        return prompt_embeds.shape[0]

    def check_inputs(
        self,
        prompt,
        negative_prompt,
        num_frames: int,
        height: int,
        width: int,
        prompt_embeds=None,
        negative_prompt_embeds=None,
        callback_on_step_end_tensor_inputs=None,
        output_type: str = "np",
        num_videos_per_prompt: int = 1,
    ) -> None:
        self.backbone.check_video_size(num_frames, height, width, self.vae, self.transformer)
        if output_type not in OUTPUT_TYPES:
            raise MMPhysInputError(f"output_type={output_type!r}; expected one of {list(OUTPUT_TYPES)}")
        if not isinstance(num_videos_per_prompt, int) or num_videos_per_prompt < 1:
            raise MMPhysInputError(f"num_videos_per_prompt must be a positive int, got {num_videos_per_prompt!r}")
        if callback_on_step_end_tensor_inputs is not None:
            unknown = [k for k in callback_on_step_end_tensor_inputs if k not in self._callback_tensor_inputs]
            if unknown:
                raise MMPhysInputError(
                    f"callback_on_step_end_tensor_inputs has {unknown}; expected names from {self._callback_tensor_inputs}"
                )
        self._check_prompts(prompt, negative_prompt, prompt_embeds, negative_prompt_embeds)

    def _check_prompts(self, prompt, negative_prompt, prompt_embeds, negative_prompt_embeds) -> None:
        if prompt is not None and prompt_embeds is not None:
            raise MMPhysInputError("pass either prompt or prompt_embeds, not both")
        if prompt is None and prompt_embeds is None:
            raise MMPhysInputError("prompt (str or list of str) or prompt_embeds [B,L,D] is required")
        if prompt is not None and not (isinstance(prompt, str) or (isinstance(prompt, list) and all(isinstance(p, str) for p in prompt))):
            raise MMPhysInputError(f"prompt must be a str or a list of str, got {type(prompt).__name__}")
        if isinstance(prompt, list) and len(prompt) == 0:
            raise MMPhysInputError("prompt is an empty list; expected at least one prompt")
        if negative_prompt is not None and negative_prompt_embeds is not None:
            raise MMPhysInputError("pass either negative_prompt or negative_prompt_embeds, not both")
        if isinstance(negative_prompt, list):
            batch = self._batch_size(prompt, prompt_embeds)
            if len(negative_prompt) != batch:
                raise MMPhysInputError(
                    f"negative_prompt has {len(negative_prompt)} entries but there are {batch} prompts; expected the same number (or one str)"
                )
        if prompt_embeds is not None and negative_prompt_embeds is not None and prompt_embeds.shape != negative_prompt_embeds.shape:
            raise MMPhysInputError(
                f"prompt_embeds {tuple(prompt_embeds.shape)} and negative_prompt_embeds {tuple(negative_prompt_embeds.shape)} must have the same shape"
            )

    def _resolve_video_size(self, num_frames, height, width) -> tuple[int, int, int]:
        default_frames, default_height, default_width = self.backbone.default_video_size(self.transformer, self.vae)
        return num_frames or default_frames, height or default_height, width or default_width

    def encode_prompt(
        self,
        prompt: str | list[str] | None,
        negative_prompt: str | list[str] | None = None,
        do_classifier_free_guidance: bool = True,
        num_videos_per_prompt: int = 1,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        max_sequence_length: int | None = None,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Text embeddings ``[B * num_videos_per_prompt, L, D]`` (and the negative ones when guiding)."""
        device = device or self._execution_device
        max_sequence_length = max_sequence_length or self.backbone.default_sequence_length(self.transformer, self.tokenizer)

        def embed(texts: list[str]) -> torch.Tensor:
            return self.backbone.encode_prompt(self.text_encoder, self.tokenizer, texts, max_sequence_length, device=device, dtype=dtype)

        if prompt_embeds is None:
            prompt_embeds = embed([prompt] if isinstance(prompt, str) else list(prompt))
        batch = prompt_embeds.shape[0]
        if do_classifier_free_guidance and negative_prompt_embeds is None:
            negative = negative_prompt or ""
            negative = [negative] * batch if isinstance(negative, str) else list(negative)
            negative_prompt_embeds = embed(negative)
        prompt_embeds = prompt_embeds.to(device=device, dtype=dtype or prompt_embeds.dtype).repeat_interleave(num_videos_per_prompt, dim=0)
        if do_classifier_free_guidance:
            negative_prompt_embeds = negative_prompt_embeds.to(device=device, dtype=prompt_embeds.dtype).repeat_interleave(
                num_videos_per_prompt, dim=0
            )
        return prompt_embeds, negative_prompt_embeds

    def _start_call(
        self,
        guidance_scale: float,
        attention_kwargs: dict | None,
        prompt,
        negative_prompt,
        num_videos_per_prompt: int,
        prompt_embeds,
        negative_prompt_embeds,
        max_sequence_length: int | None,
        device: torch.device,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.dtype, torch.dtype]:
        """Reset the per-call state and encode the prompts.

        Returns (prompt_embeds, negative_prompt_embeds or None, transformer dtype, latents dtype); the dtypes are
        read once here because `ModelMixin.dtype` walks the parameters (about 1 ms a call on a small model).
        """
        self._guidance_scale = guidance_scale
        self._attention_kwargs = attention_kwargs
        self._current_timestep = None
        self._interrupt = False
        transformer_dtype, latents_dtype = self.transformer.dtype, self._latents_dtype()
        prompt_embeds, negative_prompt_embeds = self.encode_prompt(
            prompt, negative_prompt, self.do_classifier_free_guidance, num_videos_per_prompt,
            prompt_embeds, negative_prompt_embeds, max_sequence_length, device,
        )
        if negative_prompt_embeds is not None:
            negative_prompt_embeds = negative_prompt_embeds.to(transformer_dtype)
        return prompt_embeds.to(transformer_dtype), negative_prompt_embeds, transformer_dtype, latents_dtype

    def prepare_latents(
        self,
        batch_size: int,
        num_frames: int,
        height: int,
        width: int,
        dtype: torch.dtype,
        device: torch.device,
        generator=None,
        latents: torch.Tensor | None = None,
        name: str = "latents",
    ) -> torch.Tensor:
        """Initial noise in the model layout (or the given `latents`, checked for shape)."""
        shape = self.backbone.latent_shape(batch_size, num_frames, height, width, self.vae, self.transformer)
        if latents is not None:
            if tuple(latents.shape) != tuple(shape):
                raise MMPhysInputError(
                    f"{name} has shape {tuple(latents.shape)}; expected {tuple(shape)} ({self.backbone.latent_layout}) for "
                    f"{batch_size} video(s) of {num_frames}x{height}x{width}"
                )
            latents = latents.to(device=device, dtype=dtype)
        else:
            if isinstance(generator, list) and len(generator) != batch_size:
                raise MMPhysInputError(
                    f"generator is a list of {len(generator)}; expected one generator per video ({batch_size})"
                )
            latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        return latents * getattr(self.scheduler, "init_noise_sigma", 1.0)

    def _latents_dtype(self) -> torch.dtype:
        return self.backbone.latents_dtype(self.transformer)

    def _set_timesteps(self, scheduler, num_inference_steps: int, timesteps, device) -> torch.Tensor:
        timesteps, _ = retrieve_timesteps(scheduler, num_inference_steps, device, timesteps)
        self.backbone.prepare_scheduler(scheduler)
        return timesteps

    def _run_callback(self, callback_on_step_end, tensor_inputs, step: int, t, values: dict) -> dict:
        """Call `callback_on_step_end(self, step, t, {name: tensor})` and return the (possibly replaced) tensors."""
        if callback_on_step_end is None:
            return values
        outputs = callback_on_step_end(self, step, t, {k: values[k] for k in tensor_inputs})
        return {k: outputs.get(k, v) if outputs else v for k, v in values.items()}

    def _decode(self, latents: torch.Tensor, output_type: str):
        if output_type == "latent":
            return latents
        video = self.backbone.decode_latents(self.vae, latents)
        return self.video_processor.postprocess_video(video=video, output_type=output_type)

    # ------------------------------------------------------------------ saving
    def _model_index_class_name(self):
        raise NotImplementedError

    def _write_extra_files(self, save_directory: str) -> None:
        """Hook for files next to model_index.json (the teacher's remote-code module)."""

    def save_pretrained(self, save_directory: str | os.PathLike, safe_serialization: bool = True, variant: str | None = None, **kwargs):
        """Save the components, then record a `_class_name` that loads outside this package (see subclasses).

        `push_to_hub` is not supported here: save locally, then upload the folder with
        `huggingface_hub.upload_folder`.
        """
        if kwargs.pop("push_to_hub", False):
            raise MMPhysInputError("save_pretrained(push_to_hub=True) is not supported; save locally, then use huggingface_hub.upload_folder")
        save_directory = os.fspath(save_directory)
        super().save_pretrained(save_directory, safe_serialization=safe_serialization, variant=variant, **kwargs)
        self._write_extra_files(save_directory)
        index_path = os.path.join(save_directory, self.config_name)
        with open(index_path, encoding="utf-8") as f:
            model_index = json.load(f)
        model_index["_class_name"] = self._model_index_class_name()
        atomic_write_json(index_path, model_index)


class MMPhysVideoPipeline(MMPhysVideoPipelineBase):
    r"""
    Text-to-video with the MMPhysVideo student (a single-stream CogVideoX or Wan transformer).

    Components (standard diffusers names): `vae`, `text_encoder`, `tokenizer`, `transformer` (the plain
    `CogVideoXTransformer3DModel` / `WanTransformer3DModel`), `scheduler`.

    Saving writes a stock folder (`_class_name` "CogVideoXPipeline" / "WanPipeline"); loading accepts
    that folder or any stock CogVideoX / Wan text-to-video folder.
    """

    def _check_transformer(self, transformer) -> None:
        adapter = get_backbone_adapter(transformer)
        if not type(transformer).__module__.startswith("diffusers."):
            raise MMPhysInputError(
                f"MMPhysVideoPipeline runs the plain {adapter.transformer_class.__name__}; got {type(transformer).__name__} "
                "(use MMPhysVideoTeacherPipeline for a ControlLink teacher)"
            )

    def _model_index_class_name(self) -> str:
        return self.backbone.stock_pipeline_class_name

    def _guided_prediction(
        self,
        latents: torch.Tensor,
        t: torch.Tensor,
        prompt_embeds: torch.Tensor,
        negative_prompt_embeds: torch.Tensor | None,
        guidance_scale: float,
        model_kwargs: dict,
        attention_kwargs: dict | None,
        transformer_dtype: torch.dtype,
    ) -> torch.Tensor:
        """Transformer prediction with classifier-free guidance, batched or sequential like the stock pipeline."""
        do_cfg = guidance_scale > 1.0
        model_input = self.backbone.scale_model_input(self.scheduler, latents, t).to(transformer_dtype)

        def forward(hidden, text, context: str) -> torch.Tensor:
            with self.transformer.cache_context(context):
                out = self.transformer(
                    hidden_states=hidden,
                    encoder_hidden_states=text,
                    timestep=t.expand(hidden.shape[0]),
                    attention_kwargs=attention_kwargs,
                    return_dict=False,
                    **model_kwargs,
                )[0]
            return out.float()

        if do_cfg and self.backbone.cfg_batched:
            uncond, cond = forward(torch.cat([model_input] * 2), torch.cat([negative_prompt_embeds, prompt_embeds]), "cond_uncond").chunk(2)
        else:
            cond = forward(model_input, prompt_embeds, "cond")
            if not do_cfg:
                return cond
            uncond = forward(model_input, negative_prompt_embeds, "uncond")
        return uncond + guidance_scale * (cond - uncond)

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = None,
        height: int | None = None,
        width: int | None = None,
        num_frames: int | None = None,
        num_inference_steps: int = 50,
        timesteps: list[int] | None = None,
        guidance_scale: float = 6.0,
        num_videos_per_prompt: int = 1,
        eta: float = 0.0,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        output_type: str = "np",
        return_dict: bool = True,
        attention_kwargs: dict[str, Any] | None = None,
        callback_on_step_end: Callable | PipelineCallback | MultiPipelineCallbacks | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],
        max_sequence_length: int | None = None,
    ) -> MMPhysVideoPipelineOutput | tuple:
        r"""
        Generate videos from text.

        Args:
            prompt: prompt(s); or pass `prompt_embeds` ``[B, L, D]``.
            negative_prompt: used when `guidance_scale > 1` (default ""); one str or one per prompt.
            height, width, num_frames: video size; defaults to the checkpoint's native size. `num_frames`
                must be ``k * vae_temporal_factor + 1`` and the sizes multiples of vae_spatial_factor * patch.
            num_inference_steps, timesteps: the sampling schedule (custom `timesteps` if the scheduler accepts them).
            guidance_scale: classifier-free guidance weight; guidance is on when > 1.
            num_videos_per_prompt: videos per prompt; the output batch is ``B * num_videos_per_prompt``.
            eta: DDIM eta (ignored by other schedulers).
            generator: a generator, or one per output video.
            latents: initial noise in the backbone layout (CogVideoX ``[B,F,C,H,W]``, Wan ``[B,C,F,H,W]``).
            output_type: "np" (``[B,F,H,W,3]`` in [0,1]), "pt" (``[B,F,3,H,W]``), "pil" or "latent".
            attention_kwargs: passed to the attention processors (e.g. ``{"scale": lora_scale}``).
            callback_on_step_end: ``fn(pipe, step, timestep, tensors) -> dict`` called after each step with the
                tensors named in `callback_on_step_end_tensor_inputs`; returned tensors replace them.
                Set `pipe._interrupt = True` inside it to skip the remaining steps.
            max_sequence_length: text tokens (default: the backbone's, CogVideoX: the transformer's
                `max_text_seq_length`; Wan: 512 or the tokenizer's limit if smaller).

        Returns:
            `MMPhysVideoPipelineOutput` with `.frames`, or ``(frames,)`` when `return_dict=False`.
        """
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
        num_frames, height, width = self._resolve_video_size(num_frames, height, width)
        self.check_inputs(
            prompt, negative_prompt, num_frames, height, width, prompt_embeds, negative_prompt_embeds,
            callback_on_step_end_tensor_inputs, output_type, num_videos_per_prompt,
        )
        device = self._execution_device
        batch_size = self._batch_size(prompt, prompt_embeds)
        prompt_embeds, negative_prompt_embeds, transformer_dtype, latents_dtype = self._start_call(
            guidance_scale, attention_kwargs, prompt, negative_prompt, num_videos_per_prompt,
            prompt_embeds, negative_prompt_embeds, max_sequence_length, device,
        )

        timesteps = self._set_timesteps(self.scheduler, num_inference_steps, timesteps, device)
        self._num_timesteps = len(timesteps)
        latents = self.prepare_latents(
            batch_size * num_videos_per_prompt, num_frames, height, width, latents_dtype, device, generator, latents
        )
        model_kwargs = self.backbone.transformer_kwargs(self.transformer, latents, height, width, num_frames, self.vae)
        extra_step_kwargs = self.backbone.extra_step_kwargs(self.scheduler, generator, eta)
        scheduler_state: dict = {}

        with self.progress_bar(total=len(timesteps)) as progress_bar:
            for i, t in enumerate(timesteps):
                if self.interrupt:
                    continue
                self._current_timestep = t
                noise_pred = self._guided_prediction(
                    latents, t, prompt_embeds, negative_prompt_embeds, guidance_scale, model_kwargs, attention_kwargs,
                    transformer_dtype,
                )
                latents = self.backbone.scheduler_step(
                    self.scheduler, noise_pred, t, latents, scheduler_state, i, timesteps, **extra_step_kwargs
                ).to(latents_dtype)
                updated = self._run_callback(
                    callback_on_step_end, callback_on_step_end_tensor_inputs, i, t,
                    {"latents": latents, "prompt_embeds": prompt_embeds, "negative_prompt_embeds": negative_prompt_embeds},
                )
                latents, prompt_embeds, negative_prompt_embeds = (
                    updated["latents"], updated["prompt_embeds"], updated["negative_prompt_embeds"]
                )
                progress_bar.update()

        self._current_timestep = None
        frames = self._decode(latents, output_type)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (frames,)
        return MMPhysVideoPipelineOutput(frames=frames)
