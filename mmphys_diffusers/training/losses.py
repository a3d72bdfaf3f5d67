"""Losses: the backbone diffusion objective and relation-based representation alignment.

Relation alignment (VideoREPA-style token relation distillation, NOTES.md §2): the
student's hidden tokens pass a small MLP projector; both token sets are L2-normalised
and turned into cosine Gram matrices over all spatio-temporal tokens; the student's
matrix is pulled towards the (frozen) teacher's with a margin:

    loss = mean(relu(|S_student - S_teacher| - margin))

Only the student and the projector receive gradients: the teacher's tokens are detached.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import MMPhysInputError


class AlignmentProjector(nn.Module):
    """MLP mapping student tokens ``[B, N, D_student]`` to the teacher width ``[B, N, D_teacher]``.

    Only used during training; it is dropped when the student is saved.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int = 256, num_layers: int = 3):
        super().__init__()
        if num_layers < 1:
            raise MMPhysInputError(f"projector num_layers={num_layers}: expected >= 1")
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        layers: list[nn.Module] = []
        for i in range(num_layers):
            layers.append(nn.Linear(dims[i], dims[i + 1]))
            if i < num_layers - 1:
                layers.append(nn.SiLU())
        self.net = nn.Sequential(*layers)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.net(tokens)


def resample_tokens(tokens: torch.Tensor, grid: Sequence[int], target_grid: Sequence[int]) -> torch.Tensor:
    """Resample tokens ``[B, F*H*W, D]`` laid out on ``grid`` = (F, H, W) to ``target_grid``.

    Trilinear interpolation over the token grid (area-like averaging when shrinking), so
    teacher and student relation matrices compare the same spatio-temporal positions.
    """
    grid, target_grid = tuple(int(g) for g in grid), tuple(int(g) for g in target_grid)
    b, n, d = tokens.shape
    if n != grid[0] * grid[1] * grid[2]:
        raise MMPhysInputError(f"tokens have {n} positions but grid {grid} holds {grid[0] * grid[1] * grid[2]}")
    if grid == target_grid:
        return tokens
    volume = tokens.transpose(1, 2).reshape(b, d, *grid)
    if all(t <= g for t, g in zip(target_grid, grid)):
        volume = F.adaptive_avg_pool3d(volume, target_grid)
    else:
        volume = F.interpolate(volume, size=target_grid, mode="trilinear", align_corners=False)
    return volume.reshape(b, d, -1).transpose(1, 2)


def common_token_grid(grid_a: Sequence[int], grid_b: Sequence[int]) -> tuple[int, int, int]:
    """The per-axis smaller grid (so no side is upsampled beyond what it carries)."""
    return tuple(min(int(a), int(b)) for a, b in zip(grid_a, grid_b))  # type: ignore[return-value]


def token_relation_matrix(tokens: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Cosine Gram matrix ``[B, N, N]`` of tokens ``[B, N, D]`` (scale invariant per token)."""
    normed = F.normalize(tokens.float(), dim=-1, eps=eps)
    return normed @ normed.transpose(1, 2)


def relation_alignment_loss(
    student_tokens: torch.Tensor,
    teacher_tokens: torch.Tensor,
    margin: float = 0.1,
) -> torch.Tensor:
    """VideoREPA token-relation loss ``mean(relu(|S_s - S_t| - margin))``.

    Args:
        student_tokens: ``[B, N, D_s]`` (already projected; D_s need not equal D_t).
        teacher_tokens: ``[B, N, D_t]``; detached here, the teacher gets no gradient.
    """
    _check_pair(student_tokens, teacher_tokens, same_dim=False)
    s_student = token_relation_matrix(student_tokens)
    s_teacher = token_relation_matrix(teacher_tokens.detach())
    return F.relu((s_student - s_teacher).abs() - margin).mean()


def cosine_alignment_loss(student_tokens: torch.Tensor, teacher_tokens: torch.Tensor) -> torch.Tensor:
    """REPA-style feature alignment ``mean(1 - cos(p(h_s), h_t))`` over tokens (needs equal widths)."""
    _check_pair(student_tokens, teacher_tokens, same_dim=True)
    return (1.0 - F.cosine_similarity(student_tokens.float(), teacher_tokens.detach().float(), dim=-1)).mean()


def _check_pair(student: torch.Tensor, teacher: torch.Tensor, same_dim: bool) -> None:
    if student.ndim != 3 or teacher.ndim != 3:
        raise MMPhysInputError(
            f"alignment tokens must be [B, N, D]; got student {tuple(student.shape)} and teacher {tuple(teacher.shape)}"
        )
    if student.shape[:2] != teacher.shape[:2]:
        raise MMPhysInputError(
            f"student tokens {tuple(student.shape)} and teacher tokens {tuple(teacher.shape)} differ in batch or token count; "
            "resample them to a common grid first (resample_tokens)"
        )
    if same_dim and student.shape[-1] != teacher.shape[-1]:
        raise MMPhysInputError(
            f"cosine alignment needs equal widths: student {student.shape[-1]} vs teacher {teacher.shape[-1]} (project the student first)"
        )


def alignment_loss(
    kind: str,
    student_tokens: torch.Tensor,
    teacher_tokens: torch.Tensor,
    student_grid: Sequence[int],
    teacher_grid: Sequence[int],
    margin: float = 0.1,
    target_grid: Sequence[int] | None = None,
) -> torch.Tensor:
    """Resample both token sets to a common grid and apply the chosen alignment loss.

    Args:
        kind: "margin" (token relations, default) or "cosine" (feature alignment).
        student_tokens: projected student tokens ``[B, Fs*Hs*Ws, D]``.
        teacher_tokens: teacher RGB-stream tokens ``[B, Ft*Ht*Wt, D_t]``.
    """
    grid = tuple(target_grid) if target_grid is not None else common_token_grid(student_grid, teacher_grid)
    student_tokens = resample_tokens(student_tokens, student_grid, grid)
    teacher_tokens = resample_tokens(teacher_tokens, teacher_grid, grid)
    if kind == "margin":
        return relation_alignment_loss(student_tokens, teacher_tokens, margin=margin)
    if kind == "cosine":
        return cosine_alignment_loss(student_tokens, teacher_tokens)
    raise MMPhysInputError(f"alignment loss {kind!r}: expected 'margin' or 'cosine'")


def latent_foreground_mask(foreground: torch.Tensor, latent_shape: Sequence[int]) -> torch.Tensor:
    """Object pixels -> the latent positions they touch.

    The video VAEs here are causal: latent frame 0 holds pixel frame 0 alone and each later latent frame
    holds the next ``(F - 1) / (T - 1)`` frames (or one frame each when ``T == F``); spatially, a latent
    position covers a ``H/h x W/w`` block. A position is foreground when any pixel it covers is.

    Shapes: ``foreground`` ``[B, F, H, W]`` (bool or {0, 1}); ``latent_shape`` ``[B, C, T, h, w]``.
    Returns ``[B, 1, T, h, w]`` float in {0, 1}.
    """
    if foreground.ndim != 4:
        raise MMPhysInputError(f"foreground mask: expected [B, F, H, W], got {tuple(foreground.shape)}")
    frames, t = foreground.shape[1], int(latent_shape[2])
    if t == frames:
        grouped = foreground.float()
    elif t > 1 and (frames - 1) % (t - 1) == 0:
        k = (frames - 1) // (t - 1)
        rest = foreground[:, 1:].float().unflatten(1, (t - 1, k)).amax(2)
        grouped = torch.cat([foreground[:, :1].float(), rest], dim=1)
    else:
        raise MMPhysInputError(f"foreground mask: {frames} frames do not map onto {t} latent frames (expected T == F or F = 1 + k(T - 1))")
    pooled = F.adaptive_max_pool2d(grouped, tuple(int(s) for s in latent_shape[3:]))
    return pooled[:, None]


def diffusion_loss(
    model_output: torch.Tensor,
    target: torch.Tensor,
    weighting: torch.Tensor | None = None,
    element_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-sample-weighted MSE, averaged: ``mean_b(w_b * mean((pred - target)^2))``.

    With ``element_weight`` each sample's mean is the weighted mean ``sum(e * err) / sum(e)``, so a
    sample's loss keeps its scale however much of it is up-weighted.

    Shapes: ``model_output`` and ``target`` ``[B, ...]``; ``weighting`` ``[B]`` or None; ``element_weight``
    broadcastable to ``model_output`` (e.g. ``[B, 1, T, h, w]``) or None.
    """
    if model_output.shape != target.shape:
        raise MMPhysInputError(f"model output {tuple(model_output.shape)} and target {tuple(target.shape)} differ in shape")
    err = (model_output.float() - target.float()).pow(2)
    if element_weight is None:
        per_sample = err.flatten(1).mean(1)
    else:
        weight = element_weight.float().expand_as(err)
        per_sample = (weight * err).flatten(1).sum(1) / weight.flatten(1).sum(1)
    if weighting is not None:
        per_sample = per_sample * weighting.float().reshape(-1)
    return per_sample.mean()
