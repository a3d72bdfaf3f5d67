"""Pieces shared by the two Bidirectionally Controlled Teacher transformers.

The teacher runs two streams (RGB = task 0, perception = task 1) through the SAME backbone blocks. Both streams
are concatenated along the batch dimension (`[2B, ...]`, RGB first) so each block runs once per step. After a
linked block `i`, zero-initialised linear links exchange information between the streams:

    rgb'        = rgb        + perception_to_rgb_links[k](perception)
    perception' = perception + rgb_to_perception_links[k](rgb)

where `k` is the position of `i` in `control_link_layers`, and both links read the pre-link states (symmetric).
A per-task embedding is added to each stream's timestep conditioning. Links and task embeddings start at zero, so
an untrained teacher's RGB stream is exactly the base model.
"""

import os
from collections.abc import Iterator, Sequence

import torch
from diffusers.utils import logging
from torch import nn

from ..errors import MMPhysInputError

logger = logging.get_logger(__name__)

RGB_TASK_ID = 0
PERCEPTION_TASK_ID = 1
NUM_TASKS = 2

# Names of the parameters the teacher adds on top of the backbone (prefixes of their state-dict keys).
CONTROL_PARAMETER_PREFIXES = ("task_embedding.", "perception_to_rgb_links.", "rgb_to_perception_links.")


def resolve_control_link_layers(control_link_layers: Sequence[int] | None, num_layers: int) -> list[int]:
    """Validate `control_link_layers` against `num_layers` and return them sorted; `None` means every block."""
    if control_link_layers is None:
        return list(range(num_layers))
    layers = [int(i) for i in control_link_layers]
    bad = [i for i in layers if not 0 <= i < num_layers]
    if bad:
        raise MMPhysInputError(
            f"control_link_layers={list(control_link_layers)} has indices {bad} outside the backbone's blocks: "
            f"expected integers in [0, {num_layers - 1}] (num_layers={num_layers}), or None for every block."
        )
    if len(set(layers)) != len(layers):
        raise MMPhysInputError(
            f"control_link_layers={list(control_link_layers)} has duplicates: expected unique indices."
        )
    return sorted(layers)


def as_batch_timesteps(timestep, batch_size: int, device: torch.device, name: str) -> torch.Tensor:
    """Turn a scalar / `[1]` / `[B]` timestep into a float32 `[B]` tensor on `device`."""
    if not torch.is_tensor(timestep):
        try:
            timestep = torch.tensor(timestep, dtype=torch.float32)
        except (TypeError, ValueError) as exc:
            raise MMPhysInputError(f"`{name}` must be a number or a tensor, got {type(timestep).__name__}.") from exc
    if timestep.ndim == 0:
        timestep = timestep[None]
    if timestep.ndim != 1:
        raise MMPhysInputError(
            f"`{name}` has shape {tuple(timestep.shape)}: expected a scalar or a 1-D tensor of length 1 or "
            f"batch size {batch_size} (per-token timesteps are not supported)."
        )
    if timestep.shape[0] == 1 and batch_size != 1:
        timestep = timestep.expand(batch_size)
    elif timestep.shape[0] != batch_size:
        raise MMPhysInputError(
            f"`{name}` has {timestep.shape[0]} entries but the latents have batch size {batch_size}: "
            f"expected a scalar or a tensor of length 1 or {batch_size}."
        )
    # Timestep projections cast to float32 anyway; doing it here lets int and float timesteps be concatenated.
    return timestep.to(device=device, dtype=torch.float32)


def check_stream_latents(
    hidden_states: torch.Tensor, perception_hidden_states: torch.Tensor, layout: str
) -> None:
    """Both streams must be 5-D latents of identical shape (`layout` names the dims for the message)."""
    for name, tensor in (("hidden_states", hidden_states), ("perception_hidden_states", perception_hidden_states)):
        if not torch.is_tensor(tensor) or tensor.ndim != 5:
            shape = tuple(tensor.shape) if torch.is_tensor(tensor) else type(tensor).__name__
            raise MMPhysInputError(f"`{name}` has shape {shape}: expected a 5-D latent tensor {layout}.")
    if hidden_states.shape != perception_hidden_states.shape:
        raise MMPhysInputError(
            f"RGB latents `hidden_states` {tuple(hidden_states.shape)} and perception latents "
            f"`perception_hidden_states` {tuple(perception_hidden_states.shape)} differ: expected identical shapes "
            f"{layout} (both streams share the same token grid)."
        )


def check_divisible(size: int, patch: int, what: str, shape: tuple[int, ...]) -> None:
    if size % patch != 0:
        raise MMPhysInputError(
            f"Latent {what} {size} (latents shape {shape}) is not divisible by the patch size {patch}: "
            f"expected a multiple of {patch}."
        )


def zero_init_(module: nn.Module) -> nn.Module:
    """Set every parameter of `module` to zero in place (ControlNet-style zero module)."""
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.zero_()
    return module


class ControlLinkMixin:
    """Links, task embeddings and the helpers both teacher transformers share.

    Classes using it call `_init_control_links(...)` in `__init__` after the backbone was built.
    """

    task_embedding: nn.Embedding
    perception_to_rgb_links: nn.ModuleList
    rgb_to_perception_links: nn.ModuleList

    def _init_control_links(
        self, inner_dim: int, task_embed_dim: int, num_layers: int, control_link_layers: Sequence[int] | None
    ) -> None:
        layers = resolve_control_link_layers(control_link_layers, num_layers)
        # block index -> link index; a plain dict attribute (not a buffer) so it never enters the state dict.
        self._link_index_for_block = {block: k for k, block in enumerate(layers)}
        self.task_embedding = nn.Embedding(NUM_TASKS, task_embed_dim)
        self.perception_to_rgb_links = nn.ModuleList([nn.Linear(inner_dim, inner_dim) for _ in layers])
        self.rgb_to_perception_links = nn.ModuleList([nn.Linear(inner_dim, inner_dim) for _ in layers])
        self.reset_control_parameters()

    @property
    def linked_layers(self) -> list[int]:
        """Sorted indices of the blocks followed by control links."""
        return sorted(self._link_index_for_block)

    def reset_control_parameters(self) -> None:
        """Zero the task embeddings and both link sets, making the RGB stream exactly the base model again.

        Call this explicitly after building on the meta device or under `no_init_weights`: default initialisation
        is skipped there.
        """
        zero_init_(self.task_embedding)
        zero_init_(self.perception_to_rgb_links)
        zero_init_(self.rgb_to_perception_links)

    def _materialize_control_parameters(self, device: torch.device, dtype: torch.dtype) -> None:
        """Give the task embeddings and links real zero storage on `device`/`dtype` (they may be on meta)."""
        for module in (self.task_embedding, self.perception_to_rgb_links, self.rgb_to_perception_links):
            module.to_empty(device=device)
            module.to(dtype=dtype)
        self.reset_control_parameters()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike | None, **kwargs):
        """`ModelMixin.from_pretrained`, plus: a checkpoint without task embeddings and links (a base model's)
        gets them zero-initialised on the backbone's device and dtype instead of left uninitialised on meta.

        A checkpoint with only some of them is refused with `MMPhysInputError`.
        """
        output_loading_info = kwargs.pop("output_loading_info", False)
        model, loading_info = super().from_pretrained(
            pretrained_model_name_or_path, output_loading_info=True, **kwargs
        )
        control_keys = {name for name, _ in model.named_parameters() if name.startswith(CONTROL_PARAMETER_PREFIXES)}
        missing_control = control_keys & set(loading_info["missing_keys"])
        if missing_control:
            if missing_control != control_keys:
                raise MMPhysInputError(
                    f"Checkpoint {pretrained_model_name_or_path} has only some of the teacher's control parameters "
                    f"(missing {sorted(missing_control)[:5]}): expected all of them (a saved teacher) or none (a base "
                    "checkpoint)."
                )
            reference = model.proj_out.weight
            model._materialize_control_parameters(reference.device, reference.dtype)
            logger.info(f"{cls.__name__}: no control links in the checkpoint, zero-initialised them.")
        return (model, loading_info) if output_loading_info else model

    # Set by each teacher class: the stock transformer it extends, and the bias that a constant added to the
    # time embedding (where the forward adds the task embedding) folds into exactly.
    base_transformer_class: type
    task_embedding_bias_path: str

    def rgb_stream_transformer(self) -> nn.Module:
        """A stock base transformer that computes this teacher's RGB stream with the control links removed.

        The shared backbone weights are copied and the RGB task embedding is folded into the bias it is added
        after (`task_embedding_bias_path`), so the result equals the teacher's RGB prediction whenever the
        perception->RGB links contribute nothing (exactly so for a freshly built teacher). With trained links
        it is *not* a finished model: the RGB stream was trained to read the perception stream. It is a
        starting point, e.g. for a student (`init_transformer_from=<teacher pipeline>`).
        """
        config = {k: v for k, v in self.config.items() if not k.startswith("_") and k != "control_link_layers"}
        base = self.base_transformer_class.from_config(config)
        backbone_state = {k: v for k, v in self.state_dict().items() if not k.startswith(CONTROL_PARAMETER_PREFIXES)}
        base.load_state_dict(backbone_state, strict=True)
        bias = base.get_parameter(self.task_embedding_bias_path)
        with torch.no_grad():
            bias.add_(self.task_embedding.weight[RGB_TASK_ID].to(bias.dtype))
        # from_config builds in float32; load_state_dict copies the values into it (no dtype cast of the module,
        # which would also cast the modules diffusers keeps in float32)
        return base.to(device=self.proj_out.weight.device)

    def control_parameters(self) -> Iterator[nn.Parameter]:
        """The parameters the teacher adds to the backbone (task embeddings and links), e.g. to train them."""
        yield from self.task_embedding.parameters()
        yield from self.perception_to_rgb_links.parameters()
        yield from self.rgb_to_perception_links.parameters()

    def _stream_task_embeddings(self, batch_size: int, dtype: torch.dtype) -> torch.Tensor:
        """`[2B, task_embed_dim]`: B rows of the RGB task embedding, then B rows of the perception one."""
        weight = self.task_embedding.weight.to(dtype)
        return weight.repeat_interleave(batch_size, dim=0)

    def _apply_control_links(self, block_index: int, hidden_states: torch.Tensor) -> torch.Tensor:
        """Exchange information between the streams after block `block_index`.

        Args:
            hidden_states (`torch.Tensor` of shape `(2B, N, dim)`): RGB tokens first, perception tokens second.
        Returns:
            `torch.Tensor` of the same shape; unchanged when the block has no links.
        """
        link_index = self._link_index_for_block.get(block_index)
        if link_index is None:
            return hidden_states
        rgb, perception = hidden_states.chunk(2, dim=0)
        # Both deltas read the pre-link states, so the update is symmetric.
        rgb_update = self.perception_to_rgb_links[link_index](perception)
        perception_update = self.rgb_to_perception_links[link_index](rgb)
        return hidden_states + torch.cat([rgb_update, perception_update], dim=0)

    def _check_hidden_state_indices(self, output_hidden_states_at: Sequence[int] | None, num_layers: int) -> list[int]:
        if output_hidden_states_at is None:
            return []
        indices = [int(i) for i in output_hidden_states_at]
        bad = [i for i in indices if not 0 <= i < num_layers]
        if bad:
            raise MMPhysInputError(
                f"output_hidden_states_at={list(output_hidden_states_at)} has block indices {bad} out of range: "
                f"expected integers in [0, {num_layers - 1}]."
            )
        return indices


def run_block(model: nn.Module, block: nn.Module, *args):
    """Call `block(*args)`, through the model's gradient-checkpointing function when that is enabled."""
    if torch.is_grad_enabled() and getattr(model, "gradient_checkpointing", False):
        return model._gradient_checkpointing_func(block, *args)
    return block(*args)
