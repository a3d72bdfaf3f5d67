"""Training configuration: dataclasses, a config file (JSON, or YAML when pyyaml is
importable) and command-line overrides.

Precedence: dataclass defaults < ``--config`` file < explicit command-line flags.
Every value is checked by ``validate()`` *before* any model is loaded, so bad
input fails in seconds with an `MMPhysInputError` naming the field.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import MMPhysInputError

# Named tiny backbones built from constructor arguments (offline, for tests and demos).
TINY_BACKBONES = ("tiny-wan", "tiny-cogvideox")
# Transformer classes a base pipeline folder may hold (the teacher wraps them).
SUPPORTED_TRANSFORMER_CLASSES = (
    "WanTransformer3DModel",
    "CogVideoXTransformer3DModel",
    "ControlLinkTransformer3DModel",
    "ControlLinkWanTransformer3DModel",
    "ControlLinkCogVideoXTransformer3DModel",
)
LR_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial", "warmup_stable_decay")
MIXED_PRECISION = ("no", "fp16", "bf16")
REPORT_TO = ("tensorboard", "wandb", "all", "none")
FRAME_SAMPLING = ("uniform", "first", "random")
# VAE compression of both backbones: 4x in time, 8x in space; transformer patch 2x2.
TEMPORAL_COMPRESSION = 4
SPATIAL_MULTIPLE = 16


@dataclass
class TrainConfig:
    """Options shared by the teacher and the student trainers."""

    # model and data
    pretrained_model: str = "tiny-wan"  # pipeline folder, Hub id, or one of TINY_BACKBONES
    # A trained pipeline (folder or Hub id) whose transformer replaces pretrained_model's before training:
    # fine-tune a finished model further, keeping the base's VAE, text encoder and latent cache. Its VAE
    # must equal the base's, weight for weight, or its latents would mean something else. A teacher pipeline
    # starts a student or baseline from the teacher's RGB stream (shared backbone, links dropped).
    init_transformer_from: str | None = None
    revision: str | None = None
    variant: str | None = None
    dataset: str = ""  # folder holding manifest.jsonl (shared dataset format)
    perception_cue: str = "unified"  # pseudo-RGB cue of the perception stream
    num_frames: int = 9  # 4k+1
    height: int = 32
    width: int = 32
    frame_sampling: str = "uniform"
    max_train_samples: int | None = None
    dataloader_num_workers: int = 0
    max_sequence_length: int | None = None  # text tokens; None: the backbone's default for this tokenizer
    # Probability that a sample's prompt is replaced by the empty prompt (the unconditional branch that
    # classifier-free guidance subtracts at inference); 0 trains a model that cannot use guidance > 1.
    caption_dropout_prob: float = 0.0
    # Extra diffusion-loss weight on latent positions that hold an object (1 + this on them; the mask is
    # the unified cue's instance channel). The synthetic scenes' objects cover a few per cent of the frame,
    # so a plain loss is mostly background. 0: the plain MSE.
    foreground_loss_weight: float = 0.0
    # Fixed perception-codec settings, cue -> codec kwargs (e.g. {"unified": {"near": 4.0, "far": 16.0}}).
    # Empty: the codec infers ranges per clip. A generative model needs ranges fixed per dataset, or a
    # generated perception video cannot be decoded; the kwargs are part of the latent-cache key and are
    # recorded in the output folder (mmphys_recipe.json) so inference decodes with the same ranges.
    perception_codec_kwargs: dict = field(default_factory=dict)
    cache_latents: bool = False
    latent_cache_dir: str | None = None  # default: <output_dir>/latent-cache

    # optimisation
    seed: int = 0
    train_batch_size: int = 1
    max_train_steps: int = 100
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-4
    lr_scheduler: str = "constant"
    lr_warmup_steps: int = 0
    # "warmup_stable_decay" only: the last `lr_decay_steps` steps decay the learning rate linearly to 0
    lr_decay_steps: int = 0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    adam_weight_decay: float = 1e-4
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    gradient_checkpointing: bool = False
    mixed_precision: str | None = None  # None: take it from `accelerate launch` / its config
    allow_tf32: bool = False

    # LoRA (lora_rank 0 = full fine-tuning)
    lora_rank: int = 0
    lora_alpha: float | None = None  # default: lora_rank (scale 1)
    lora_dropout: float = 0.0
    lora_target_modules: list[str] = field(default_factory=lambda: ["to_q", "to_k", "to_v", "to_out.0"])

    # EMA of the trainable weights
    use_ema: bool = False
    ema_decay: float = 0.999

    # checkpoints and outputs
    output_dir: str = "outputs/train"
    checkpointing_steps: int = 500
    checkpoints_total_limit: int | None = None
    resume_from_checkpoint: str | None = None  # "latest" or a checkpoint folder

    # validation
    validation_prompt: str | None = None  # default: the first clip's caption
    validation_steps: int = 0  # 0: only after training
    num_validation_videos: int = 1  # 0: no validation videos
    validation_num_inference_steps: int = 4
    validation_guidance_scale: float = 1.0

    # logging and Hub
    report_to: str = "tensorboard"
    logging_dir: str = "logs"
    push_to_hub: bool = False
    hub_model_id: str | None = None
    hub_token: str | None = None
    hub_private: bool = False

    # ------------------------------------------------------------------ checks
    def validate(self) -> "TrainConfig":
        """Check every value; raise `MMPhysInputError` naming the bad field."""
        _check_backbone(self.pretrained_model, "pretrained_model")
        if self.init_transformer_from is not None:
            _check_backbone(self.init_transformer_from, "init_transformer_from")
        _check_dataset(self.dataset)
        if not isinstance(self.num_frames, int) or self.num_frames < 1 or (self.num_frames - 1) % TEMPORAL_COMPRESSION:
            raise MMPhysInputError(
                f"num_frames={self.num_frames!r} is incompatible with the backbone VAE: expected 4k+1 frames (5, 9, 13, 17, ..., 49, 81)"
            )
        for name in ("height", "width"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < SPATIAL_MULTIPLE or value % SPATIAL_MULTIPLE:
                raise MMPhysInputError(f"{name}={value!r}: expected a positive multiple of {SPATIAL_MULTIPLE} (VAE 8x times patch 2)")
        _one_of(self.frame_sampling, FRAME_SAMPLING, "frame_sampling")
        _check_codec_kwargs(self.perception_codec_kwargs)
        _one_of(self.lr_scheduler, LR_SCHEDULERS, "lr_scheduler")
        _one_of(self.report_to, REPORT_TO, "report_to")
        if self.mixed_precision is not None:
            _one_of(self.mixed_precision, MIXED_PRECISION, "mixed_precision")
        for name in ("train_batch_size", "max_train_steps", "gradient_accumulation_steps", "checkpointing_steps"):
            _positive_int(getattr(self, name), name)
        if not isinstance(self.lr_decay_steps, int) or self.lr_decay_steps < 0:
            raise MMPhysInputError(f"lr_decay_steps={self.lr_decay_steps!r}: expected an int >= 0")
        if self.lr_scheduler == "warmup_stable_decay":
            if not 0 < self.lr_decay_steps <= self.max_train_steps - self.lr_warmup_steps:
                raise MMPhysInputError(
                    f"lr_decay_steps={self.lr_decay_steps}: lr_scheduler 'warmup_stable_decay' needs 0 < lr_decay_steps <= "
                    f"max_train_steps - lr_warmup_steps = {self.max_train_steps - self.lr_warmup_steps}"
                )
        elif self.lr_decay_steps:
            raise MMPhysInputError(
                f"lr_decay_steps={self.lr_decay_steps} only applies to lr_scheduler 'warmup_stable_decay', got {self.lr_scheduler!r}"
            )
        for name in ("lora_rank", "lr_warmup_steps", "validation_steps", "dataloader_num_workers", "seed", "num_validation_videos"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise MMPhysInputError(f"{name}={getattr(self, name)!r}: expected an int >= 0")
        if self.checkpoints_total_limit is not None:
            _positive_int(self.checkpoints_total_limit, "checkpoints_total_limit")
        if self.max_train_samples is not None:
            _positive_int(self.max_train_samples, "max_train_samples")
        if not (isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0):
            raise MMPhysInputError(f"learning_rate={self.learning_rate!r}: expected a float > 0")
        _probability(self.caption_dropout_prob, "caption_dropout_prob")
        if not (isinstance(self.foreground_loss_weight, (int, float)) and self.foreground_loss_weight >= 0):
            raise MMPhysInputError(f"foreground_loss_weight={self.foreground_loss_weight!r}: expected a float >= 0 (0: plain MSE)")
        if self.foreground_loss_weight and self.perception_cue != "unified":
            raise MMPhysInputError(
                f"foreground_loss_weight needs the object masks of perception_cue 'unified', got perception_cue {self.perception_cue!r}"
            )
        if not 0.0 <= float(self.ema_decay) < 1.0:
            raise MMPhysInputError(f"ema_decay={self.ema_decay!r}: expected a float in [0, 1)")
        if self.lora_rank and not self.lora_target_modules:
            raise MMPhysInputError("lora_target_modules is empty: LoRA (lora_rank > 0) needs at least one target module name")
        if self.cache_latents and self.frame_sampling == "random":
            raise MMPhysInputError("cache_latents=True needs a deterministic frame_sampling ('uniform' or 'first'), got 'random'")
        if self.resume_from_checkpoint not in (None, "latest") and not Path(self.resume_from_checkpoint).is_dir():
            raise MMPhysInputError(f"resume_from_checkpoint={self.resume_from_checkpoint!r}: expected 'latest' or an existing checkpoint folder")
        if self.push_to_hub and not self.hub_model_id:
            raise MMPhysInputError("push_to_hub=True needs hub_model_id (e.g. 'user/mmphys-teacher')")
        if not self.output_dir:
            raise MMPhysInputError("output_dir is empty")
        return self

    @property
    def cue_codec_kwargs(self) -> dict[str, Any]:
        """The codec kwargs of `perception_cue` ({} when the codec infers its ranges per clip)."""
        return dict(self.perception_codec_kwargs.get(self.perception_cue, {}))

    @property
    def lora_scale_alpha(self) -> float:
        return float(self.lora_alpha if self.lora_alpha is not None else self.lora_rank)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("hub_token", None)  # never written to disk or a model card
        return d


@dataclass
class TeacherTrainConfig(TrainConfig):
    """Bidirectionally Controlled Teacher: RGB loss + perception_loss_weight * perception loss."""

    output_dir: str = "outputs/teacher"
    perception_loss_weight: float = 1.0
    # With this probability one stream (chosen 50/50) is clean (t = 0): a clean perception
    # stream teaches RGB generation under control, a clean RGB stream teaches readout.
    stream_dropout_prob: float = 0.2
    control_link_layers: list[int] | None = None  # None: the teacher's default (every block)

    def validate(self) -> "TeacherTrainConfig":
        super().validate()
        _probability(self.stream_dropout_prob, "stream_dropout_prob")
        if float(self.perception_loss_weight) < 0:
            raise MMPhysInputError(f"perception_loss_weight={self.perception_loss_weight!r}: expected >= 0")
        return self


@dataclass
class StudentTrainConfig(TrainConfig):
    """Single-stream student: diffusion loss + alignment_loss_weight * relation alignment to the frozen teacher."""

    output_dir: str = "outputs/student"
    # a teacher pipeline folder (train_teacher.py output); may be empty only with alignment_loss_weight 0
    # (an RGB-only baseline: no teacher is loaded or run and no projector is built)
    teacher_model: str = ""
    alignment_loss: str = "margin"  # "margin" (VideoREPA token relations) or "cosine" (feature alignment)
    alignment_loss_weight: float = 0.5
    alignment_margin: float = 0.1
    student_align_layers: list[int] | None = None  # student blocks whose outputs are aligned; None: the middle block
    teacher_align_layers: list[int] | None = None  # None: same indices as the student
    projector_hidden_dim: int = 256
    projector_layers: int = 3
    alignment_token_grid: list[int] | None = None  # common (F', H', W'); None: the smaller of the two grids
    # "control": the teacher sees the clip's clean pseudo-RGB latents (t = 0) and the student's noisy
    # RGB input; "joint": the perception latents are noised with the same timestep.
    teacher_perception_mode: str = "control"

    def validate(self) -> "StudentTrainConfig":
        super().validate()
        if float(self.alignment_loss_weight) < 0 or float(self.alignment_margin) < 0:
            raise MMPhysInputError("alignment_loss_weight and alignment_margin must be >= 0")
        if not self.teacher_model and float(self.alignment_loss_weight) > 0:
            raise MMPhysInputError(
                f"teacher_model is empty but alignment_loss_weight={self.alignment_loss_weight}: expected a teacher pipeline "
                "folder written by train/train_teacher.py (or alignment_loss_weight 0 for an RGB-only baseline without a teacher)"
            )
        if self.teacher_model and not (Path(self.teacher_model) / "model_index.json").is_file():
            raise MMPhysInputError(f"teacher_model={self.teacher_model!r}: expected a teacher pipeline folder with model_index.json")
        _one_of(self.alignment_loss, ("margin", "cosine"), "alignment_loss")
        _one_of(self.teacher_perception_mode, ("control", "joint"), "teacher_perception_mode")
        _positive_int(self.projector_hidden_dim, "projector_hidden_dim")
        _positive_int(self.projector_layers, "projector_layers")
        if self.student_align_layers is not None and self.teacher_align_layers is not None:
            if len(self.student_align_layers) != len(self.teacher_align_layers):
                raise MMPhysInputError(
                    f"student_align_layers {self.student_align_layers} and teacher_align_layers {self.teacher_align_layers} must have equal length"
                )
        if self.alignment_token_grid is not None and (
            len(self.alignment_token_grid) != 3 or any(not isinstance(v, int) or v < 1 for v in self.alignment_token_grid)
        ):
            raise MMPhysInputError(f"alignment_token_grid={self.alignment_token_grid!r}: expected three positive ints (F', H', W')")
        return self

    @property
    def uses_teacher(self) -> bool:
        """Whether a teacher is loaded and run (a teacher_model is given)."""
        return bool(self.teacher_model)


# ---------------------------------------------------------------------- checks


def _one_of(value: Any, allowed: Sequence[str], name: str) -> None:
    if value not in allowed:
        raise MMPhysInputError(f"{name}={value!r}: expected one of {list(allowed)}")


def _positive_int(value: Any, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise MMPhysInputError(f"{name}={value!r}: expected a positive int")


def _probability(value: Any, name: str) -> None:
    if not 0.0 <= float(value) <= 1.0:
        raise MMPhysInputError(f"{name}={value!r}: expected a probability in [0, 1]")


def _check_codec_kwargs(value: Any) -> None:
    """``perception_codec_kwargs``: {registered codec name: {kwarg: value}}, accepted by the codec's constructor."""
    from ..perception import available_cues, get_codec

    if not isinstance(value, dict):
        raise MMPhysInputError(
            f"perception_codec_kwargs={value!r}: expected a JSON object mapping codec name -> kwargs, e.g. "
            '{"unified": {"near": 4.0, "far": 16.0}}'
        )
    for name, kwargs in value.items():
        if name not in available_cues():
            raise MMPhysInputError(f"perception_codec_kwargs: unknown codec {name!r}; expected some of {available_cues()}")
        if not isinstance(kwargs, dict):
            raise MMPhysInputError(f"perception_codec_kwargs[{name!r}]={kwargs!r}: expected a JSON object of codec keyword arguments")
        try:  # cheap: the constructors only store settings
            get_codec(name, **kwargs)
        except MMPhysInputError as exc:
            raise MMPhysInputError(f"perception_codec_kwargs[{name!r}]={kwargs!r}: {exc}") from exc
        except (TypeError, ValueError) as exc:
            raise MMPhysInputError(f"perception_codec_kwargs[{name!r}]={kwargs!r}: rejected by the {name} codec ({exc})") from exc


def _check_dataset(path: str) -> None:
    if not path:
        raise MMPhysInputError("dataset is empty: expected a dataset folder holding manifest.jsonl (see docs/dataset_format.md)")
    if not Path(path).is_dir():
        raise MMPhysInputError(f"dataset={path!r} does not exist: expected a dataset folder holding manifest.jsonl")
    if not (Path(path) / "manifest.jsonl").is_file():
        raise MMPhysInputError(f"dataset={path!r} has no manifest.jsonl: expected the shared dataset format (docs/dataset_format.md)")


def _check_backbone(name: str, field_name: str) -> None:
    """A tiny name, a local pipeline folder with a supported transformer, or a Hub id ("org/name")."""
    if not name:
        raise MMPhysInputError(f"{field_name} is empty: expected a pipeline folder, a Hub id or one of {list(TINY_BACKBONES)}")
    path = Path(name)
    if path.exists():
        index = path / "model_index.json"
        if not index.is_file():
            raise MMPhysInputError(f"{field_name}={name!r}: folder has no model_index.json (expected a diffusers pipeline folder)")
        try:
            info = json.loads(index.read_text())
        except json.JSONDecodeError as exc:
            raise MMPhysInputError(f"{field_name}={name!r}: corrupt model_index.json: {exc}") from exc
        transformer = info.get("transformer")
        cls = transformer[1] if isinstance(transformer, list) and len(transformer) == 2 else None
        if cls not in SUPPORTED_TRANSFORMER_CLASSES:
            raise MMPhysInputError(
                f"{field_name}={name!r}: unknown backbone (transformer class {cls!r}); expected one of {list(SUPPORTED_TRANSFORMER_CLASSES)}"
            )
        return
    if name in TINY_BACKBONES:
        return
    parts = name.split("/")
    if len(parts) == 2 and all(parts) and not name.startswith((".", "/")):
        return  # a Hub id; resolved (and checked) when the pipeline loads
    if len(parts) > 1:
        raise MMPhysInputError(f"{field_name}={name!r}: pipeline folder does not exist (and it is not a Hub id 'org/name')")
    raise MMPhysInputError(
        f"{field_name}={name!r}: unknown backbone; expected a local pipeline folder, a Hub id 'org/name' or one of {list(TINY_BACKBONES)}"
    )


# ------------------------------------------------------------- file + CLI I/O


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a JSON (or, with pyyaml installed, YAML) config file into a dict."""
    path = Path(path)
    if not path.is_file():
        raise MMPhysInputError(f"config file {path} does not exist")
    text = path.read_text()
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as exc:
            raise MMPhysInputError(f"config file {path} is YAML but pyyaml is not installed; use JSON or `pip install pyyaml`") from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise MMPhysInputError(f"config file {path}: invalid YAML: {exc}") from exc
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MMPhysInputError(f"config file {path}: invalid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise MMPhysInputError(f"config file {path}: expected a mapping of option -> value at top level, got {type(data).__name__}")
    return data


def _field_kind(tp: Any) -> tuple[type, bool, bool]:
    """(scalar type, is_list, optional) for a dataclass field annotation."""
    optional = False
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = len(args) != len(typing.get_args(tp))
        tp = args[0]
        origin = typing.get_origin(tp)
    if origin is list:
        return typing.get_args(tp)[0], True, optional
    return tp, False, optional


def _coerce(value: Any, tp: Any, name: str, where: str) -> Any:
    scalar, is_list, optional = _field_kind(tp)
    if scalar is dict:
        return _coerce_dict(value, name, where)
    if optional and (value in ("None", "none", "null") or value == ["none"] or value == ["None"]):
        value = None  # "--lora_alpha none" on the command line
    if value is None:
        if optional:
            return None
        raise MMPhysInputError(f"{where}: {name} must not be null")
    if is_list:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise MMPhysInputError(f"{where}: {name}={value!r}: expected a list")
        return [_coerce_scalar(v, scalar, name, where) for v in value]
    return _coerce_scalar(value, scalar, name, where)


def _coerce_dict(value: Any, name: str, where: str) -> dict:
    """A dict field: a mapping (config file) or a JSON object string (command line)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise MMPhysInputError(f"{where}: {name}={value!r}: expected a JSON object ({exc})") from exc
    if not isinstance(value, dict):
        raise MMPhysInputError(f"{where}: {name}={value!r}: expected a JSON object")
    return value


def _coerce_scalar(value: Any, scalar: type, name: str, where: str) -> Any:
    try:
        if scalar is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                return value.lower() in ("1", "true", "yes", "on")
            raise ValueError
        if scalar is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if scalar is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if scalar is str:
            return str(value)
    except (TypeError, ValueError):
        pass
    else:
        return value
    raise MMPhysInputError(f"{where}: {name}={value!r}: expected {scalar.__name__}")


def config_from_dict(cls: type[TrainConfig], data: dict[str, Any], where: str = "config") -> TrainConfig:
    """Build `cls` from a dict, refusing unknown keys and coercing types."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise MMPhysInputError(f"{where}: unknown option(s) {unknown} for {cls.__name__}; known options: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    return cls(**{k: _coerce(v, hints[k], k, where) for k, v in data.items()})


def build_arg_parser(cls: type[TrainConfig], description: str = "") -> argparse.ArgumentParser:
    """One ``--<field>`` flag per config field (all default to "not given")."""
    parser = argparse.ArgumentParser(description=description or cls.__doc__)
    parser.add_argument("--config", default=None, help="JSON (or YAML) file of options; flags given here override it")
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        scalar, is_list, _ = _field_kind(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        help_text = f"{'list of ' if is_list else ''}{scalar.__name__} (default: {default!r})"
        if scalar is dict:
            help_text = f"JSON object (default: {default!r})"
        if scalar is bool and not is_list:
            # --flag, --flag true/false, --no-flag
            parser.add_argument(f"--{f.name}", nargs="?", const="true", default=argparse.SUPPRESS, help=help_text)
            parser.add_argument(f"--no_{f.name}", dest=f.name, action="store_const", const="false", default=argparse.SUPPRESS)
        elif is_list:
            parser.add_argument(f"--{f.name}", nargs="*", default=argparse.SUPPRESS, help=help_text + "; space or comma separated")
        else:
            parser.add_argument(f"--{f.name}", default=argparse.SUPPRESS, help=help_text)
    return parser


def parse_config(cls: type[TrainConfig], argv: Sequence[str] | None = None, validate: bool = True) -> TrainConfig:
    """Parse ``--config FILE`` plus flag overrides into a validated `cls`."""
    args = vars(build_arg_parser(cls).parse_args(argv))
    config_path = args.pop("config", None)
    data = read_config_file(config_path) if config_path else {}
    config = config_from_dict(cls, data, where=f"config file {config_path}" if config_path else "config")
    overrides = {}
    for key, value in args.items():
        if isinstance(value, list):  # nargs="*" may carry "a,b" or ["a", "b"]
            value = [v for item in value for v in item.split(",") if v]
        overrides[key] = value
    merged = {**{k: v for k, v in dataclasses.asdict(config).items()}, **overrides}
    config = config_from_dict(cls, merged, where="command line")
    return config.validate() if validate else config
