"""`MMPhysVideoTeacherPipeline`: sampling with the Bidirectionally Controlled Teacher.

The teacher transformer (`mmphys_diffusers.models.ControlLinkTransformer3DModel`) runs an RGB and a
perception stream through shared backbone weights. The mode is chosen by which stream is noisy:

    * "joint":   both streams start from noise and are denoised together (text -> RGB + perception);
    * "control": perception -> RGB: the clean `perception_video` is VAE-encoded and kept at timestep 0;
    * "readout": RGB -> perception: the clean `video` is VAE-encoded and kept at timestep 0.

Both streams use the same scheduler type, with two scheduler states (the perception one is a deep copy),
because multistep schedulers keep per-stream history.

Loading: `MMPhysVideoTeacherPipeline.from_pretrained(dir)` or
`DiffusionPipeline.from_pretrained(dir, trust_remote_code=True)`; the saved folder records
``_class_name: ["mmphys_teacher_pipeline", "MMPhysVideoTeacherPipeline"]`` and holds that small module,
which imports the class from the installed package.
"""

from __future__ import annotations

import copy
import inspect
import os
from typing import Any, Callable, ClassVar

import numpy as np
import torch
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback

# Imported for its side effect too: diffusers loads the `transformer` component recorded as
# ["mmphys_diffusers.models.<module>", "<Class>"] only from modules already imported.
from .. import models as _teacher_models  # noqa: F401
from ..errors import MMPhysInputError
from .pipeline_mmphys_video import MMPhysVideoPipelineBase
from .pipeline_output import MMPhysVideoTeacherPipelineOutput

MODES = ("joint", "control", "readout")

REMOTE_CODE_STEM = "mmphys_teacher_pipeline"
# The whole module written next to model_index.json. It only re-exports the installed class, so
# loading a folder whose module is byte-identical to this runs no code beyond this package.
REMOTE_CODE_SOURCE = '''"""Written by mmphys-diffusers: lets `DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)`
find the teacher pipeline. It needs the package installed: `pip install mmphys-diffusers`."""

from mmphys_diffusers.pipelines.pipeline_mmphys_video_teacher import MMPhysVideoTeacherPipeline

__all__ = ["MMPhysVideoTeacherPipeline"]
'''


class MMPhysVideoTeacherPipeline(MMPhysVideoPipelineBase):
    r"""
    Joint RGB + perception video generation, perception -> RGB control, and RGB -> perception readout with the
    MMPhysVideo teacher.

    Components: `vae`, `text_encoder`, `tokenizer`, `transformer` (a ControlLink teacher built with
    `ControlLinkTransformer3DModel.from_transformer(base)`), `scheduler`.
    """

    _callback_tensor_inputs: ClassVar[list[str]] = ["latents", "perception_latents", "prompt_embeds", "negative_prompt_embeds"]

    def __init__(
        self,
        tokenizer,
        text_encoder,
        vae,
        transformer,
        scheduler,
        perception_cue: str = "unified",
        perception_meta: dict | None = None,
    ):
        """`perception_cue` and `perception_meta` are the codec (and its fixed settings, e.g. the depth range)
        the perception stream was trained with. They are saved in model_index.json, so a loaded teacher decodes
        its perception output the way it was trained unless a call overrides them."""
        super().__init__(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer, scheduler=scheduler)
        _get_codec(perception_cue)
        if perception_meta is not None and not isinstance(perception_meta, dict):
            raise MMPhysInputError(f"perception_meta must be a dict of codec settings, got {type(perception_meta).__name__}")
        self.register_to_config(perception_cue=perception_cue, perception_meta=perception_meta)

    def _check_transformer(self, transformer) -> None:
        if "perception_hidden_states" not in inspect.signature(type(transformer).forward).parameters:
            raise MMPhysInputError(
                f"MMPhysVideoTeacherPipeline needs a ControlLink teacher transformer; got {type(transformer).__name__}. "
                "Build one with ControlLinkTransformer3DModel.from_transformer(base_transformer) "
                "(or use MMPhysVideoPipeline for a plain transformer)"
            )

    @classmethod
    def _known_transformer_classes(cls) -> tuple[type, ...]:
        return tuple(_teacher_models.TEACHER_CLASSES.values())

    # ------------------------------------------------------------------ loading / saving
    def _model_index_class_name(self) -> list[str]:
        return [REMOTE_CODE_STEM, "MMPhysVideoTeacherPipeline"]

    def _write_extra_files(self, save_directory: str) -> None:
        from ..utils.atomic import atomic_write_text

        atomic_write_text(os.path.join(save_directory, f"{REMOTE_CODE_STEM}.py"), REMOTE_CODE_SOURCE)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs):
        """Load a teacher folder (as saved by `save_pretrained`), a Hub id, or any folder with teacher components.

        A local folder whose helper module is exactly the one `save_pretrained` writes (it only imports this
        class) is loaded without `trust_remote_code`; any other helper module still needs
        `trust_remote_code=True` from the caller.
        """
        module_path = os.path.join(os.fspath(pretrained_model_name_or_path), f"{REMOTE_CODE_STEM}.py")
        if "trust_remote_code" not in kwargs and os.path.isfile(module_path):
            with open(module_path, encoding="utf-8") as f:
                if f.read() == REMOTE_CODE_SOURCE:
                    kwargs["trust_remote_code"] = True
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    # ------------------------------------------------------------------ conditioning videos
    def _encode_condition(
        self, video, name: str, batch_size: int, num_videos_per_prompt: int, height: int | None, width: int | None
    ) -> tuple[torch.Tensor, int, int, int]:
        """Clean conditioning video(s) -> latents ``[B * num_videos_per_prompt, ...]`` in the model layout.

        `video` takes what diffusers' `VideoProcessor.preprocess_video` takes: a list of PIL frames, a float
        array ``[F,H,W,3]`` / tensor ``[F,3,H,W]`` in [0,1], or batched ``[B,F,H,W,3]`` / ``[B,F,3,H,W]``.
        One video is used for every prompt; otherwise one per prompt.
        """
        try:
            pixels = self.video_processor.preprocess_video(video, height=height, width=width)
        except (ValueError, TypeError) as exc:
            raise MMPhysInputError(
                f"{name} could not be read as a video ({exc}); expected PIL frames, [F,H,W,3] numpy or [F,3,H,W] torch in [0,1]"
            ) from exc
        count, _, frames, h, w = pixels.shape
        if count not in (1, batch_size):
            raise MMPhysInputError(f"{name} holds {count} videos but there are {batch_size} prompts; expected 1 or {batch_size}")
        self.backbone.check_video_size(frames, h, w, self.vae, self.transformer)
        latents = self.backbone.encode_video(self.vae, pixels.to(self._execution_device), generator=None, sample=False)
        latents = latents.expand(batch_size, *latents.shape[1:]) if count == 1 else latents
        return latents.repeat_interleave(num_videos_per_prompt, dim=0), frames, h, w

    # ------------------------------------------------------------------ one guided step of both streams
    def _guided_predictions(
        self,
        rgb: torch.Tensor,
        perception: torch.Tensor,
        rgb_t: torch.Tensor,
        perception_t: torch.Tensor,
        prompt_embeds: torch.Tensor,
        negative_prompt_embeds: torch.Tensor | None,
        guidance_scale: float,
        perception_guidance_scale: float,
        do_cfg: bool,
        model_kwargs: dict,
        attention_kwargs: dict | None,
        dtype: torch.dtype,
    ) -> tuple[torch.Tensor, torch.Tensor]:

        def forward(rgb_in, perception_in, text, context: str):
            batch = rgb_in.shape[0]
            with self.transformer.cache_context(context):
                out = self.transformer(
                    hidden_states=rgb_in.to(dtype),
                    perception_hidden_states=perception_in.to(dtype),
                    encoder_hidden_states=text,
                    timestep=rgb_t.expand(batch),
                    perception_timestep=perception_t.expand(batch),
                    attention_kwargs=attention_kwargs,
                    return_dict=False,
                    **model_kwargs,
                )
            return out[0].float(), out[1].float()

        if do_cfg and self.backbone.cfg_batched:
            rgb_out, perception_out = forward(
                torch.cat([rgb] * 2), torch.cat([perception] * 2), torch.cat([negative_prompt_embeds, prompt_embeds]), "cond_uncond"
            )
            (rgb_uncond, rgb_cond), (perception_uncond, perception_cond) = rgb_out.chunk(2), perception_out.chunk(2)
        else:
            rgb_cond, perception_cond = forward(rgb, perception, prompt_embeds, "cond")
            if not do_cfg:
                return rgb_cond, perception_cond
            rgb_uncond, perception_uncond = forward(rgb, perception, negative_prompt_embeds, "uncond")

        def guide(uncond, cond, scale):
            return uncond + scale * (cond - uncond) if scale > 1.0 else cond

        return guide(rgb_uncond, rgb_cond, guidance_scale), guide(perception_uncond, perception_cond, perception_guidance_scale)

    # ------------------------------------------------------------------ perception cues
    def _decode_cues(self, perception_pixels: torch.Tensor, perception_cue: str, perception_meta) -> list[dict]:
        """Pseudo-RGB ``[B,3,F,H,W]`` in [-1,1] -> per video, the codec's cue arrays."""
        codec = _get_codec(perception_cue)
        metas = perception_meta if isinstance(perception_meta, list) else [perception_meta] * perception_pixels.shape[0]
        videos = (perception_pixels.float() / 2 + 0.5).clamp(0, 1).permute(0, 2, 1, 3, 4).cpu().numpy()  # [B,F,3,H,W]
        return [codec.decode(np.ascontiguousarray(v), meta=m) for v, m in zip(videos, metas)]

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = None,
        mode: str = "joint",
        video=None,
        perception_video=None,
        height: int | None = None,
        width: int | None = None,
        num_frames: int | None = None,
        num_inference_steps: int = 50,
        timesteps: list[int] | None = None,
        guidance_scale: float = 6.0,
        perception_guidance_scale: float | None = None,
        num_videos_per_prompt: int = 1,
        eta: float = 0.0,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        perception_latents: torch.Tensor | None = None,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        perception_cue: str | None = "default",
        perception_meta: dict | list[dict] | None = None,
        output_type: str = "np",
        return_dict: bool = True,
        attention_kwargs: dict[str, Any] | None = None,
        callback_on_step_end: Callable | PipelineCallback | MultiPipelineCallbacks | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],
        max_sequence_length: int | None = None,
    ) -> MMPhysVideoTeacherPipelineOutput | tuple:
        r"""
        Sample with the teacher.

        Args:
            prompt, negative_prompt, height, width, num_frames, num_inference_steps, timesteps, eta, generator,
            prompt_embeds, negative_prompt_embeds, attention_kwargs, max_sequence_length, output_type,
            return_dict: as in `MMPhysVideoPipeline`.
            mode: "joint" (text -> RGB + perception), "control" (perception -> RGB, needs `perception_video`),
                "readout" (RGB -> perception, needs `video`).
            video: clean RGB video for "readout" (PIL frames, ``[F,H,W,3]`` numpy or ``[F,3,H,W]`` torch in
                [0,1], or a batch of them; one video for all prompts or one per prompt). Its size sets
                `num_frames/height/width` unless given (frames are then resized to height x width).
            perception_video: clean pseudo-RGB perception video for "control" (same formats).
            guidance_scale: CFG weight of the RGB stream (on when > 1).
            perception_guidance_scale: CFG weight of the perception stream; defaults to `guidance_scale`.
            latents, perception_latents: initial noise of the noisy stream(s), backbone layout.
            perception_cue: codec that decodes the pseudo-RGB perception video into cue arrays
                (`mmphys_diffusers.perception.get_codec`); "default" = the pipeline config's `perception_cue`
                (what the teacher was trained with); None skips decoding.
            perception_meta: codec meta (one dict, or one per output video) for decoding; None = the pipeline
                config's `perception_meta` when decoding its own cue.
            callback_on_step_end: as in `MMPhysVideoPipeline`; tensors: "latents", "perception_latents",
                "prompt_embeds", "negative_prompt_embeds".

        Returns:
            `MMPhysVideoTeacherPipelineOutput(frames, perception_frames, perception)`, or the tuple
            ``(frames, perception_frames, perception)`` when `return_dict=False`. In "control" mode
            `perception_frames` is the VAE reconstruction of the input; in "readout" mode `frames` is.
        """
        if mode not in MODES:
            raise MMPhysInputError(f"mode={mode!r}; expected one of {list(MODES)}")
        if mode == "control" and perception_video is None:
            raise MMPhysInputError("mode='control' (perception -> RGB) needs perception_video, the clean pseudo-RGB video")
        if mode == "readout" and video is None:
            raise MMPhysInputError("mode='readout' (RGB -> perception) needs video, the clean RGB video")
        if video is not None and mode != "readout":
            raise MMPhysInputError(f"video is the clean input of mode='readout'; got it with mode={mode!r}")
        if perception_video is not None and mode != "control":
            raise MMPhysInputError(f"perception_video is the clean input of mode='control'; got it with mode={mode!r}")
        self._check_prompts(prompt, negative_prompt, prompt_embeds, negative_prompt_embeds)
        if perception_cue == "default":
            perception_cue = self.config.perception_cue
        if perception_meta is None and perception_cue == self.config.perception_cue:
            perception_meta = self.config.perception_meta
        if perception_cue is not None and output_type != "latent":
            _get_codec(perception_cue)  # fail before sampling on an unknown cue
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
        perception_guidance_scale = guidance_scale if perception_guidance_scale is None else perception_guidance_scale
        rgb_noisy, perception_noisy = mode != "readout", mode != "control"

        device = self._execution_device
        batch_size = self._batch_size(prompt, prompt_embeds)
        total = batch_size * num_videos_per_prompt
        if isinstance(perception_meta, list) and len(perception_meta) != total:
            raise MMPhysInputError(
                f"perception_meta has {len(perception_meta)} entries; expected one per output video ({total}) or a single dict"
            )
        condition = None
        if mode != "joint":
            name = "video" if mode == "readout" else "perception_video"
            condition, cond_frames, cond_h, cond_w = self._encode_condition(
                video if mode == "readout" else perception_video, name, batch_size, num_videos_per_prompt, height, width
            )
            if num_frames is not None and num_frames != cond_frames:
                raise MMPhysInputError(f"num_frames={num_frames} but {name} has {cond_frames} frames; expected them equal")
            num_frames, height, width = cond_frames, cond_h, cond_w
        num_frames, height, width = self._resolve_video_size(num_frames, height, width)
        self.check_inputs(
            prompt, negative_prompt, num_frames, height, width, prompt_embeds, negative_prompt_embeds,
            callback_on_step_end_tensor_inputs, output_type, num_videos_per_prompt,
        )
        if latents is not None and perception_latents is not None and latents.shape != perception_latents.shape:
            raise MMPhysInputError(
                f"latents {tuple(latents.shape)} and perception_latents {tuple(perception_latents.shape)} must have the same shape "
                "(both streams share one latent grid)"
            )
        # One unconditional pass serves both streams: guide when either noisy stream asks for it.
        call_guidance = max(guidance_scale if rgb_noisy else 0.0, perception_guidance_scale if perception_noisy else 0.0)
        prompt_embeds, negative_prompt_embeds, transformer_dtype, latents_dtype = self._start_call(
            call_guidance, attention_kwargs, prompt, negative_prompt, num_videos_per_prompt,
            prompt_embeds, negative_prompt_embeds, max_sequence_length, device,
        )
        do_cfg = self.do_classifier_free_guidance

        rgb_scheduler, perception_scheduler = self.scheduler, copy.deepcopy(self.scheduler)
        timesteps_in = timesteps
        timesteps = self._set_timesteps(rgb_scheduler, num_inference_steps, timesteps_in, device)
        self._set_timesteps(perception_scheduler, num_inference_steps, timesteps_in, device)
        self._num_timesteps = len(timesteps)

        # Noise for the RGB stream first, then perception, from the same generator(s).
        if rgb_noisy:
            latents = self.prepare_latents(total, num_frames, height, width, latents_dtype, device, generator, latents)
        else:
            latents = condition.to(latents_dtype)
        if perception_noisy:
            perception_latents = self.prepare_latents(
                total, num_frames, height, width, latents_dtype, device, generator, perception_latents, name="perception_latents"
            )
        else:
            perception_latents = condition.to(latents_dtype)
        if latents.shape != perception_latents.shape:
            raise MMPhysInputError(
                f"RGB latents {tuple(latents.shape)} and perception latents {tuple(perception_latents.shape)} differ; expected one shape"
            )

        model_kwargs = self.backbone.transformer_kwargs(self.transformer, latents, height, width, num_frames, self.vae)
        rgb_step_kwargs = self.backbone.extra_step_kwargs(rgb_scheduler, generator, eta)
        perception_step_kwargs = self.backbone.extra_step_kwargs(perception_scheduler, generator, eta)
        rgb_state: dict = {}
        perception_state: dict = {}

        with self.progress_bar(total=len(timesteps)) as progress_bar:
            for i, t in enumerate(timesteps):
                if self.interrupt:
                    continue
                self._current_timestep = t
                clean_t = torch.zeros_like(t)
                rgb_in = self.backbone.scale_model_input(rgb_scheduler, latents, t) if rgb_noisy else latents
                perception_in = (
                    self.backbone.scale_model_input(perception_scheduler, perception_latents, t) if perception_noisy else perception_latents
                )
                rgb_pred, perception_pred = self._guided_predictions(
                    rgb_in, perception_in, t if rgb_noisy else clean_t, t if perception_noisy else clean_t,
                    prompt_embeds, negative_prompt_embeds, guidance_scale, perception_guidance_scale, do_cfg,
                    model_kwargs, attention_kwargs, transformer_dtype,
                )
                if rgb_noisy:
                    latents = self.backbone.scheduler_step(
                        rgb_scheduler, rgb_pred, t, latents, rgb_state, i, timesteps, **rgb_step_kwargs
                    ).to(latents_dtype)
                if perception_noisy:
                    perception_latents = self.backbone.scheduler_step(
                        perception_scheduler, perception_pred, t, perception_latents, perception_state, i, timesteps, **perception_step_kwargs
                    ).to(latents_dtype)
                updated = self._run_callback(
                    callback_on_step_end, callback_on_step_end_tensor_inputs, i, t,
                    {
                        "latents": latents,
                        "perception_latents": perception_latents,
                        "prompt_embeds": prompt_embeds,
                        "negative_prompt_embeds": negative_prompt_embeds,
                    },
                )
                latents, perception_latents = updated["latents"], updated["perception_latents"]
                prompt_embeds, negative_prompt_embeds = updated["prompt_embeds"], updated["negative_prompt_embeds"]
                progress_bar.update()

        self._current_timestep = None
        cues = None
        if output_type == "latent":
            frames, perception_frames = latents, perception_latents
        else:
            frames = self._decode(latents, output_type)
            perception_pixels = self.backbone.decode_latents(self.vae, perception_latents)
            perception_frames = self.video_processor.postprocess_video(video=perception_pixels, output_type=output_type)
            if perception_cue is not None:
                cues = self._decode_cues(perception_pixels, perception_cue, perception_meta)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (frames, perception_frames, cues)
        return MMPhysVideoTeacherPipelineOutput(frames=frames, perception_frames=perception_frames, perception=cues)


def _get_codec(name: str):
    import mmphys_diffusers.perception as perception  # registers the codecs

    return perception.get_codec(name)
