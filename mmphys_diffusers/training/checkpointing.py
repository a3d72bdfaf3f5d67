"""Atomic, resumable training checkpoints on top of ``accelerator.save_state``.

A checkpoint is written into a hidden temporary folder and renamed to
``checkpoint-<step>`` only once complete, so a crash never leaves a half-written
checkpoint under a real name. ``training_state.json`` inside it records the step and
epoch position that resume needs; accelerate itself stores the model, optimizer, LR
scheduler, grad scaler, registered objects (EMA) and every process's RNG states.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from ..errors import MMPhysInputError
from ..utils.atomic import atomic_write_json

logger = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "checkpoint-"
STATE_FILE = "training_state.json"
_CHECKPOINT_RE = re.compile(rf"^{CHECKPOINT_PREFIX}(\d+)$")


def list_checkpoints(output_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """Complete checkpoints ``[(step, path)]`` in `output_dir`, oldest first."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = []
    for child in output_dir.iterdir():
        match = _CHECKPOINT_RE.match(child.name)
        if match and child.is_dir() and (child / STATE_FILE).is_file():
            found.append((int(match.group(1)), child))
    return sorted(found)


def resolve_checkpoint(output_dir: str | os.PathLike, resume_from: str | None) -> Path | None:
    """``"latest"`` -> newest complete checkpoint in `output_dir` (None when there is none); a path -> itself."""
    if resume_from is None:
        return None
    if resume_from == "latest":
        found = list_checkpoints(output_dir)
        return found[-1][1] if found else None
    path = Path(resume_from)
    if not (path / STATE_FILE).is_file():
        raise MMPhysInputError(f"resume_from_checkpoint={resume_from!r} is not a complete checkpoint (no {STATE_FILE})")
    return path


def read_training_state(checkpoint: str | os.PathLike) -> dict[str, Any]:
    return json.loads((Path(checkpoint) / STATE_FILE).read_text())


class CheckpointManager:
    """Saves/loads ``checkpoint-<step>`` folders atomically, keeping at most `total_limit`.

    Model weights are stored as their *trainable* parameters only (frozen base weights
    come from the base model again on resume), which keeps LoRA checkpoints small.
    Under DeepSpeed/FSDP accelerate's own sharded format is kept as is.
    """

    def __init__(self, accelerator, output_dir: str | os.PathLike, total_limit: int | None = None):
        self.accelerator = accelerator
        self.output_dir = Path(output_dir)
        self.total_limit = total_limit
        from accelerate.utils import DistributedType

        self.sharded = accelerator.distributed_type in (DistributedType.DEEPSPEED, DistributedType.FSDP)
        if not self.sharded:
            accelerator.register_save_state_pre_hook(self._keep_trainable_only)

    @staticmethod
    def _keep_trainable_only(models, weights, output_dir) -> None:
        for i, model in enumerate(models):
            if i < len(weights):
                names = {n for n, p in model.named_parameters() if p.requires_grad}
                weights[i] = {k: v for k, v in weights[i].items() if k in names}

    def _prune(self) -> None:
        """Delete the oldest checkpoints so that, with the one being written, at most total_limit remain."""
        if not self.total_limit:
            return
        found = list_checkpoints(self.output_dir)
        excess = len(found) + 1 - self.total_limit
        for _, path in found[: max(excess, 0)]:
            logger.info("removing old checkpoint %s (checkpoints_total_limit=%d)", path, self.total_limit)
            shutil.rmtree(path, ignore_errors=True)

    def save(self, step: int, state: dict[str, Any]) -> Path:
        """Write ``checkpoint-<step>`` atomically; `state` (JSON) goes into training_state.json."""
        acc = self.accelerator
        final = self.output_dir / f"{CHECKPOINT_PREFIX}{step}"
        tmp = self.output_dir / f".{CHECKPOINT_PREFIX}{step}.tmp"
        if acc.is_main_process:
            self._prune()
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir(parents=True)
        acc.wait_for_everyone()
        acc.save_state(str(tmp))
        acc.wait_for_everyone()
        if acc.is_main_process:
            atomic_write_json(tmp / STATE_FILE, {"global_step": int(step), **state})
            if final.exists():  # a stale checkpoint of an earlier, abandoned run
                shutil.rmtree(final)
            os.replace(tmp, final)
            logger.info("saved checkpoint %s", final)
        acc.wait_for_everyone()
        return final

    def load(self, checkpoint: str | os.PathLike) -> dict[str, Any]:
        """Restore everything `save` wrote; return the training_state.json dict."""
        checkpoint = Path(checkpoint)
        state = read_training_state(checkpoint)
        kwargs = {} if self.sharded else {"strict": False}
        self.accelerator.load_state(str(checkpoint), **kwargs)
        logger.info("resumed from %s at step %d", checkpoint, state["global_step"])
        return state
