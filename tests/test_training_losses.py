"""Relation alignment, token resampling, EMA and checkpoint helpers (no backbone needed)."""

import pytest
import torch

from mmphys_diffusers.errors import MMPhysInputError
from mmphys_diffusers.training.ema import TrainableEMA
from mmphys_diffusers.training.losses import (
    AlignmentProjector,
    alignment_loss,
    cosine_alignment_loss,
    diffusion_loss,
    latent_foreground_mask,
    relation_alignment_loss,
    resample_tokens,
    token_relation_matrix,
)


def _tokens(b=2, n=24, d=16, seed=0):
    return torch.randn(b, n, d, generator=torch.Generator().manual_seed(seed))


def test_relation_loss_zero_for_identical_features():
    x = _tokens()
    assert relation_alignment_loss(x, x.clone(), margin=0.0).item() == pytest.approx(0.0, abs=1e-6)
    assert cosine_alignment_loss(x, x.clone()).item() == pytest.approx(0.0, abs=1e-6)


def test_relation_loss_positive_for_different_features_and_margin_hides_small_gaps():
    a, b = _tokens(seed=0), _tokens(seed=1)
    assert relation_alignment_loss(a, b, margin=0.0).item() > 0.1
    # relation entries lie in [-1, 1], so |S_s - S_t| <= 2: a margin of 2 hides every gap
    assert relation_alignment_loss(a, b, margin=2.0).item() == 0.0


def test_relation_loss_invariant_to_feature_scale():
    a, b = _tokens(seed=0), _tokens(seed=1)
    base = relation_alignment_loss(a, b, margin=0.1)
    scaled = relation_alignment_loss(a * 37.0, b * 0.01, margin=0.1)
    assert torch.allclose(base, scaled, atol=1e-5)
    # per-token scaling too (cosine Gram)
    per_token = torch.rand(2, 24, 1) + 0.1
    assert torch.allclose(token_relation_matrix(a), token_relation_matrix(a * per_token), atol=1e-5)


def test_relation_loss_compares_different_widths():
    student = _tokens(d=8)
    teacher = _tokens(d=32, seed=3)
    assert relation_alignment_loss(student, teacher).ndim == 0
    with pytest.raises(MMPhysInputError, match="equal widths"):
        cosine_alignment_loss(student, teacher)
    with pytest.raises(MMPhysInputError, match="token count"):
        relation_alignment_loss(_tokens(n=10), teacher)


def test_gradients_reach_only_student_and_projector():
    student = torch.nn.Linear(16, 16)
    teacher = torch.nn.Linear(16, 32)
    for p in teacher.parameters():
        p.requires_grad_(False)
    projector = AlignmentProjector(16, 32, hidden_dim=8, num_layers=3)
    x = _tokens()
    loss = relation_alignment_loss(projector(student(x)), teacher(x), margin=0.0)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in projector.parameters())
    assert all(p.grad is None for p in teacher.parameters())
    # even a teacher that does require grad is detached inside the loss
    teacher_feat = torch.randn(2, 24, 32, requires_grad=True)
    relation_alignment_loss(projector(student(x)), teacher_feat).backward()
    assert teacher_feat.grad is None


def test_resample_tokens_grids():
    grid = (3, 4, 6)
    tokens = torch.arange(3 * 4 * 6, dtype=torch.float32).reshape(1, -1, 1).repeat(2, 1, 5)
    same = resample_tokens(tokens, grid, grid)
    assert same is tokens
    small = resample_tokens(tokens, grid, (1, 2, 3))
    assert small.shape == (2, 6, 5)
    # average pooling of a linear ramp keeps its mean
    assert small.mean().item() == pytest.approx(tokens.mean().item(), rel=1e-5)
    big = resample_tokens(tokens, grid, (3, 8, 12))
    assert big.shape == (2, 3 * 8 * 12, 5)
    with pytest.raises(MMPhysInputError, match="grid"):
        resample_tokens(tokens, (2, 4, 6), (1, 2, 3))


def test_alignment_loss_on_different_grids():
    student = _tokens(n=2 * 4 * 4, d=8)
    teacher = _tokens(n=2 * 2 * 2, d=12, seed=5)
    loss = alignment_loss("margin", student, teacher, (2, 4, 4), (2, 2, 2), margin=0.1)
    assert loss.item() >= 0
    with pytest.raises(MMPhysInputError, match="alignment loss"):
        alignment_loss("l1", student, teacher, (2, 4, 4), (2, 2, 2))


def test_diffusion_loss_weighting():
    pred, target = torch.zeros(2, 3, 4), torch.ones(2, 3, 4)
    assert diffusion_loss(pred, target).item() == pytest.approx(1.0)
    assert diffusion_loss(pred, target, torch.tensor([0.0, 2.0])).item() == pytest.approx(1.0)
    with pytest.raises(MMPhysInputError, match="shape"):
        diffusion_loss(pred, target[:, :2])


def test_diffusion_loss_element_weight_is_a_weighted_mean_per_sample():
    pred = torch.zeros(2, 1, 2, 1, 2)
    target = torch.tensor([1.0, 3.0, 1.0, 1.0]).reshape(1, 1, 2, 1, 2).repeat(2, 1, 1, 1, 1)  # err^2: 1, 9, 1, 1
    weight = torch.ones(2, 1, 2, 1, 2)
    weight[0, 0, 0, 0, 1] = 5.0  # sample 0 up-weights its large error
    # sample 0: (1 + 45 + 1 + 1) / 8 = 6; sample 1: plain mean 3
    assert diffusion_loss(pred, target, element_weight=weight).item() == pytest.approx((6.0 + 3.0) / 2)
    assert diffusion_loss(pred, target, element_weight=torch.ones_like(weight)).item() == pytest.approx(diffusion_loss(pred, target).item())


def test_latent_foreground_mask_follows_the_causal_vae_grid():
    """17 frames -> 5 latent frames (frame 0 alone, then 4 each); 64 px -> 16 latent px (4 x 4 blocks)."""
    pixels = torch.zeros(1, 17, 64, 64, dtype=torch.bool)
    pixels[0, 0, 10, 10] = True   # frame 0 -> latent frame 0, block (2, 2)
    pixels[0, 5, 63, 0] = True    # frames 5..8 -> latent frame 2, block (15, 0)
    mask = latent_foreground_mask(pixels, (1, 8, 5, 16, 16))
    assert mask.shape == (1, 1, 5, 16, 16)
    assert mask.nonzero().tolist() == [[0, 0, 0, 2, 2], [0, 0, 2, 15, 0]]
    same_grid = latent_foreground_mask(pixels[:, :5], (1, 8, 5, 64, 64))
    assert torch.equal(same_grid[0, 0], pixels[0, :5].float())
    with pytest.raises(MMPhysInputError, match="latent frames"):
        latent_foreground_mask(pixels[:, :16], (1, 8, 5, 16, 16))


def test_ema_tracks_and_swaps():
    model = torch.nn.Linear(4, 4)
    model.bias.requires_grad_(False)
    ema = TrainableEMA(model, decay=0.5)
    assert set(ema.shadow) == {"weight"}
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    for _ in range(50):
        ema.step(model)
    assert torch.allclose(ema.shadow["weight"], model.weight, atol=1e-3)
    trained = model.weight.detach().clone()
    ema2 = TrainableEMA(model, decay=0.5)
    ema2.load_state_dict({"decay": 0.5, "num_updates": 0, "shadow": {"weight": start}})
    with ema2.swapped_in(model):
        assert torch.allclose(model.weight, start)
    assert torch.allclose(model.weight, trained)
