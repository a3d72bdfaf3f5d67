"""Trainers for the MMPhysVideo teacher and student (accelerate-based; full or LoRA).

Library side of `train/train_teacher.py` and `train/train_student.py`: config system,
latent cache, losses (incl. relation alignment), checkpoint/resume, EMA, validation,
model card and Hub upload. Heavy imports (torch, diffusers) happen on first use.
"""

from __future__ import annotations

import sys
from importlib import import_module
from typing import Callable, Sequence

_LAZY = {
    "TrainConfig": "config",
    "TeacherTrainConfig": "config",
    "StudentTrainConfig": "config",
    "parse_config": "config",
    "TeacherTrainer": "teacher",
    "train_teacher": "teacher",
    "StudentTrainer": "student",
    "train_student": "student",
    "relation_alignment_loss": "losses",
    "cosine_alignment_loss": "losses",
    "alignment_loss": "losses",
    "AlignmentProjector": "losses",
    "CheckpointManager": "checkpointing",
    "TrainableEMA": "ema",
    "LatentCache": "data",
    "build_model_card": "hub",
    "upload_to_hub": "hub",
    "save_lora_folder": "lora",
    "load_teacher_lora": "lora",
}

__all__ = [*_LAZY, "run_cli"]


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def run_cli(main: Callable[[Sequence[str]], int], argv: Sequence[str], prog: str) -> int:
    """Run a trainer's `main`, turning `MMPhysInputError` into a one-line message and exit code 2."""
    import logging

    from ..errors import MMPhysInputError

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(main(argv) or 0)
    except MMPhysInputError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
