"""Saving and loading LoRA adapters trained here.

The adapter is written the way diffusers' own LoRA training scripts write it: peft's
``get_peft_model_state_dict`` -> the backbone's LoRA loader mixin ``save_lora_weights``
(keys prefixed ``transformer.``), with the peft config stored as metadata so rank *and*
alpha come back on ``pipe.load_lora_weights(folder)``.

A teacher LoRA also trains the control links and task embeddings (they are not LoRA
layers); they go to ``teacher_control_parameters.safetensors`` next to the adapter and
`load_teacher_lora` restores both.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn as nn

from ..errors import MMPhysInputError
from ..utils.atomic import atomic_path

LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"
CONTROL_PARAMETERS_NAME = "teacher_control_parameters.safetensors"


def save_lora_folder(
    output_dir: str | os.PathLike,
    transformer: nn.Module,
    adapter,
    extra_parameters: dict[str, torch.Tensor] | None = None,
    adapter_name: str = "default",
) -> Path:
    """Write ``pytorch_lora_weights.safetensors`` (+ control parameters for a teacher) into `output_dir`."""
    from peft.utils import get_peft_model_state_dict

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    peft_config = getattr(transformer, "peft_config", {}).get(adapter_name)
    if peft_config is None:
        raise MMPhysInputError(f"transformer {type(transformer).__name__} has no LoRA adapter {adapter_name!r} to save")
    lora_state = get_peft_model_state_dict(transformer, adapter_name=adapter_name)
    lora_state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in lora_state.items()}
    with atomic_path(output_dir / LORA_WEIGHT_NAME) as tmp:
        adapter.lora_loader_mixin.save_lora_weights(
            save_directory=str(tmp.parent),
            transformer_lora_layers=lora_state,
            weight_name=tmp.name,
            transformer_lora_adapter_metadata=peft_config.to_dict(),
        )
    if extra_parameters:
        from safetensors.torch import save_file

        with atomic_path(output_dir / CONTROL_PARAMETERS_NAME) as tmp:
            save_file({k: v.detach().to("cpu").contiguous() for k, v in extra_parameters.items()}, str(tmp))
    return output_dir / LORA_WEIGHT_NAME


def load_teacher_lora(pipe, folder: str | os.PathLike, adapter_name: str = "physics") -> None:
    """Load a teacher LoRA folder into a teacher pipeline: the adapter, then the trained control parameters."""
    folder = Path(folder)
    if not (folder / LORA_WEIGHT_NAME).is_file():
        raise MMPhysInputError(f"{folder} has no {LORA_WEIGHT_NAME}")
    if hasattr(pipe, "load_lora_weights"):
        pipe.load_lora_weights(str(folder), adapter_name=adapter_name)
    else:  # any pipeline: go through the transformer's peft mixin
        pipe.transformer.load_lora_adapter(str(folder), prefix="transformer", adapter_name=adapter_name)
    control = folder / CONTROL_PARAMETERS_NAME
    if control.is_file():
        from safetensors.torch import load_file

        state = load_file(str(control))
        missing = [k for k in state if k not in dict(pipe.transformer.named_parameters())]
        if missing:
            raise MMPhysInputError(f"{control}: parameters {missing[:5]} do not exist in {type(pipe.transformer).__name__}")
        pipe.transformer.load_state_dict(state, strict=False)
