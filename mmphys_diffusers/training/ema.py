"""Exponential moving average of the trainable parameters.

Registered with ``accelerator.register_for_checkpointing`` so resume restores it.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch


class TrainableEMA:
    """EMA shadow of a model's trainable parameters (by name).

    ``decay_t = min(decay, (1 + t) / (10 + t))`` warms the average up over the first
    steps, as diffusers' EMAModel does, so short runs are not dominated by the init.
    """

    def __init__(self, model: torch.nn.Module, decay: float = 0.999):
        self.decay = float(decay)
        self.num_updates = 0
        self.shadow: dict[str, torch.Tensor] = {
            name: p.detach().clone().float() for name, p in model.named_parameters() if p.requires_grad
        }

    def current_decay(self) -> float:
        t = self.num_updates
        return min(self.decay, (1 + t) / (10 + t))

    @torch.no_grad()
    def step(self, model: torch.nn.Module) -> None:
        decay = self.current_decay()
        for name, p in model.named_parameters():
            if name in self.shadow:
                shadow = self.shadow[name]
                if shadow.device != p.device:
                    shadow = self.shadow[name] = shadow.to(p.device)
                shadow.lerp_(p.detach().float(), 1.0 - decay)
        self.num_updates += 1

    @torch.no_grad()
    def copy_to(self, model: torch.nn.Module) -> None:
        for name, p in model.named_parameters():
            if name in self.shadow:
                p.copy_(self.shadow[name].to(p.device, p.dtype))

    @contextlib.contextmanager
    def swapped_in(self, model: torch.nn.Module) -> Iterator[None]:
        """Temporarily load the EMA weights into `model` (e.g. for validation)."""
        backup = {name: p.detach().clone() for name, p in model.named_parameters() if name in self.shadow}
        self.copy_to(model)
        try:
            yield
        finally:
            with torch.no_grad():
                for name, p in model.named_parameters():
                    if name in backup:
                        p.copy_(backup[name])

    def state_dict(self) -> dict:
        return {"decay": self.decay, "num_updates": self.num_updates, "shadow": {k: v.cpu() for k, v in self.shadow.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.decay = float(state["decay"])
        self.num_updates = int(state["num_updates"])
        self.shadow = {k: v.float() for k, v in state["shadow"].items()}
