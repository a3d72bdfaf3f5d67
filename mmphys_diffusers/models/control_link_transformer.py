"""Public entry point of the Bidirectionally Controlled Teacher: picks the teacher class for a backbone.

`ControlLinkTransformer3DModel` is a dispatcher, not a model class:

    teacher = ControlLinkTransformer3DModel.from_transformer(base_transformer, control_link_layers=[0, 5, 10])
    teacher = ControlLinkTransformer3DModel.from_pretrained("path/to/teacher", subfolder="transformer")
    teacher = ControlLinkTransformer3DModel.from_pretrained("THUDM/CogVideoX-2b", subfolder="transformer")  # base

The teacher classes are `ControlLinkCogVideoXTransformer3DModel` and `ControlLinkWanTransformer3DModel`.
"""

import os
from collections.abc import Sequence
from typing import Any

import torch
from diffusers import CogVideoXTransformer3DModel, WanTransformer3DModel
from diffusers.models.modeling_utils import ModelMixin

from ..errors import MMPhysInputError
from .control_link_transformer_cogvideox import ControlLinkCogVideoXTransformer3DModel
from .control_link_transformer_wan import ControlLinkWanTransformer3DModel
from .control_links import CONTROL_PARAMETER_PREFIXES

# Base transformer class -> teacher class, from each teacher's `base_transformer_class`. Exact classes only: a
# subclass of a base may change its forward.
TEACHER_CLASSES: dict[type[ModelMixin], type[ModelMixin]] = {
    teacher.base_transformer_class: teacher
    for teacher in (ControlLinkCogVideoXTransformer3DModel, ControlLinkWanTransformer3DModel)
}

_TEACHERS_BY_NAME = {teacher.__name__: teacher for teacher in TEACHER_CLASSES.values()}
_BASES_BY_NAME = {base.__name__: base for base in TEACHER_CLASSES}


def _supported() -> str:
    return ", ".join(base.__name__ for base in TEACHER_CLASSES)


def teacher_class_for(base_cls: type | ModelMixin) -> type[ModelMixin]:
    """The teacher class for a base transformer class (or instance); a teacher class maps to itself."""
    if not isinstance(base_cls, type):
        base_cls = type(base_cls)
    if base_cls in _TEACHERS_BY_NAME.values():
        return base_cls
    teacher_cls = TEACHER_CLASSES.get(base_cls)
    if teacher_cls is None:
        raise MMPhysInputError(
            f"No control-link teacher for transformer class {base_cls.__name__}: expected one of {_supported()}."
        )
    return teacher_cls


def is_teacher_class_name(class_name: str | None) -> bool:
    """Whether ``class_name`` (e.g. a ``model_index.json`` transformer entry) names a control-link teacher class."""
    return class_name in _TEACHERS_BY_NAME


def _is_teacher(model: Any) -> bool:
    return isinstance(model, tuple(_TEACHERS_BY_NAME.values()))


class ControlLinkTransformer3DModel:
    """Dispatcher to the Bidirectionally Controlled Teacher class matching a backbone. Not instantiable."""

    def __init__(self, *args, **kwargs):
        raise TypeError(
            "ControlLinkTransformer3DModel is a dispatcher: use ControlLinkTransformer3DModel.from_transformer(base) "
            "or ControlLinkTransformer3DModel.from_pretrained(path), or a concrete teacher class."
        )

    @staticmethod
    @torch.no_grad()
    def from_transformer(
        base_transformer: ModelMixin, control_link_layers: Sequence[int] | None = None
    ) -> ModelMixin:
        """Build a teacher from a base transformer: same config, copied weights, zero links and task embeddings.

        The teacher is built on the meta device (no allocation, no random init) and gets clones of the base's
        parameters and buffers, so it has the base's device(s) and per-parameter dtypes (including modules the base
        keeps in fp32) and never aliases the base's storage. The new parameters are created on the base's device and
        dtype and zeroed explicitly.

        Args:
            base_transformer: a `CogVideoXTransformer3DModel` or `WanTransformer3DModel` without LoRA adapters.
            control_link_layers: block indices followed by control links; `None` = every block.
        Returns:
            A `ControlLinkCogVideoXTransformer3DModel` or `ControlLinkWanTransformer3DModel` in the base's
            train/eval mode, whose backbone parameters keep the base's `requires_grad` (the new ones require grad).
        """
        if _is_teacher(base_transformer):
            raise MMPhysInputError(
                f"`base_transformer` is already a teacher ({type(base_transformer).__name__}): expected a base "
                f"transformer, one of {_supported()}."
            )
        teacher_cls = teacher_class_for(base_transformer)
        has_adapters = getattr(base_transformer, "_hf_peft_config_loaded", False)
        if has_adapters or getattr(base_transformer, "peft_config", None):
            raise MMPhysInputError(
                f"`base_transformer` ({type(base_transformer).__name__}) carries peft adapters: expected a plain "
                "base model. Fuse them (`fuse_lora()` then `unload_lora()`) or remove them first."
            )

        config = {k: v for k, v in base_transformer.config.items() if not k.startswith("_")}
        config["control_link_layers"] = None if control_link_layers is None else [int(i) for i in control_link_layers]
        with torch.device("meta"):
            teacher = teacher_cls.from_config(config)

        base_state = base_transformer.state_dict()
        result = teacher.load_state_dict(
            {name: tensor.detach().clone() for name, tensor in base_state.items()}, strict=False, assign=True
        )
        missing = [k for k in result.missing_keys if not k.startswith(CONTROL_PARAMETER_PREFIXES)]
        if missing or result.unexpected_keys:
            raise MMPhysInputError(
                f"Weights of {type(base_transformer).__name__} do not map onto {teacher_cls.__name__}: missing "
                f"{missing[:5]}, unexpected {result.unexpected_keys[:5]}: expected identical backbone names."
            )
        # Backbone parameters keep the base's requires_grad (a frozen base stays frozen); the new ones train.
        teacher_parameters = dict(teacher.named_parameters())
        for name, parameter in base_transformer.named_parameters():
            teacher_parameters[name].requires_grad_(parameter.requires_grad)
        # Non-persistent buffers (rotary tables, sincos positions) are not in the state dict.
        teacher_buffers = dict(teacher.named_buffers())
        for name, buffer in base_transformer.named_buffers():
            if teacher_buffers.get(name) is not None and teacher_buffers[name].is_meta:
                module_name, _, buffer_name = name.rpartition(".")
                module = teacher.get_submodule(module_name) if module_name else teacher
                module._buffers[buffer_name] = buffer.detach().clone()

        # proj_out is never among the modules a base keeps in fp32, so it carries the model's working dtype.
        reference = base_transformer.proj_out.weight
        teacher._materialize_control_parameters(reference.device, reference.dtype)

        still_meta = [n for n, t in [*teacher.named_parameters(), *teacher.named_buffers()] if t.is_meta]
        if still_meta:  # e.g. a buffer the teacher has but the base lacks: fail loudly rather than compute junk
            raise RuntimeError(f"Teacher tensors left on the meta device after copying the base: {still_meta[:5]}")
        teacher.train(base_transformer.training)
        return teacher

    @staticmethod
    def from_pretrained(
        pretrained_model_name_or_path: str | os.PathLike,
        subfolder: str | None = None,
        control_link_layers: Sequence[int] | None = None,
        **kwargs,
    ) -> ModelMixin:
        """Load a teacher, dispatching on the config's `_class_name`.

        A saved teacher (`ControlLink*`) loads through its own class's `from_pretrained` (`control_link_layers` must
        then be None: the checkpoint's config decides). A base checkpoint (`CogVideoXTransformer3DModel`,
        `WanTransformer3DModel`) loads through the base class and is turned into a teacher with zero links by
        `from_transformer`. `kwargs` (`torch_dtype`, `revision`, ...) go to `from_pretrained`.
        """
        config_kwargs = {k: kwargs[k] for k in ("cache_dir", "revision", "token", "local_files_only") if k in kwargs}
        try:
            config = CogVideoXTransformer3DModel.load_config(
                pretrained_model_name_or_path, subfolder=subfolder, **config_kwargs
            )
        except (OSError, EnvironmentError) as exc:
            where = f"{pretrained_model_name_or_path}" + (f" (subfolder {subfolder!r})" if subfolder else "")
            raise MMPhysInputError(f"No transformer config.json found at {where}: {exc}") from exc
        class_name = config.get("_class_name")
        if class_name in _TEACHERS_BY_NAME:
            if control_link_layers is not None:
                raise MMPhysInputError(
                    f"`control_link_layers` was given, but {pretrained_model_name_or_path} is a saved teacher whose "
                    "config fixes its links: expected None."
                )
            return _TEACHERS_BY_NAME[class_name].from_pretrained(
                pretrained_model_name_or_path, subfolder=subfolder, **kwargs
            )
        if class_name in _BASES_BY_NAME:
            base_cls = _BASES_BY_NAME[class_name]
            base = base_cls.from_pretrained(pretrained_model_name_or_path, subfolder=subfolder, **kwargs)
            return ControlLinkTransformer3DModel.from_transformer(base, control_link_layers=control_link_layers)
        raise MMPhysInputError(
            f"Config at {pretrained_model_name_or_path} has _class_name={class_name!r}: expected a teacher class "
            f"({', '.join(_TEACHERS_BY_NAME)}) or a supported base ({_supported()})."
        )
