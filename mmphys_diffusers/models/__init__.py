"""Bidirectionally Controlled Teacher transformers (two streams through shared backbone blocks + control links),
and the tiny video VAE of the bundled models."""

from .autoencoder_kl_tiny_video import AutoencoderKLTinyVideo

from .control_link_transformer import (
    TEACHER_CLASSES,
    ControlLinkTransformer3DModel,
    is_teacher_class_name,
    teacher_class_for,
)
from .control_link_transformer_cogvideox import ControlLinkCogVideoXTransformer3DModel
from .control_link_transformer_wan import ControlLinkWanTransformer3DModel
from .control_links import PERCEPTION_TASK_ID, RGB_TASK_ID
from .modeling_outputs import ControlLinkTransformerOutput

__all__ = [
    "AutoencoderKLTinyVideo",
    "ControlLinkTransformer3DModel",
    "ControlLinkCogVideoXTransformer3DModel",
    "ControlLinkWanTransformer3DModel",
    "ControlLinkTransformerOutput",
    "TEACHER_CLASSES",
    "teacher_class_for",
    "is_teacher_class_name",
    "RGB_TASK_ID",
    "PERCEPTION_TASK_ID",
]
