"""`AutoencoderKLTinyVideo`: Wan's latent layout, diffusers save/load, pipelines, the VAE trainer and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mmphys_diffusers.errors import MMPhysInputError
from mmphys_diffusers.models import AutoencoderKLTinyVideo


def _vae(**kw) -> AutoencoderKLTinyVideo:
    torch.manual_seed(0)
    return AutoencoderKLTinyVideo(**{"base_dim": 8, "z_dim": 4, **kw}).eval()


@pytest.mark.parametrize("frames,latent_frames", [(1, 1), (5, 2), (9, 3), (17, 5)])
def test_latent_layout_is_wans(frames, latent_frames):
    """1 + 4k frames -> 1 + k latent frames at 1/4 the size, as AutoencoderKLWan's 4x4x4 layout; decode inverts the shape."""
    from diffusers import AutoencoderKLWan

    vae = _vae()
    video = torch.rand(2, 3, frames, 16, 24) * 2 - 1
    with torch.no_grad():
        z = vae.encode(video).latent_dist.mode()
        recon = vae.decode(z).sample
    assert z.shape == (2, 4, latent_frames, 4, 6)
    assert recon.shape == video.shape
    wan = AutoencoderKLWan(base_dim=8, z_dim=4, dim_mult=[1, 2, 2], temperal_downsample=[True, True], scale_factor_spatial=4)
    with torch.no_grad():
        assert wan.encode(video).latent_dist.mode().shape == z.shape


def test_config_carries_wan_latent_stats_and_round_trips(tmp_path):
    vae = _vae()
    assert vae.config.latents_mean == [0.0] * 4 and vae.config.latents_std == [1.0] * 4
    vae.register_to_config(latents_mean=[0.1, 0.2, 0.3, 0.4], latents_std=[1.0, 2.0, 3.0, 4.0])
    vae.save_pretrained(tmp_path / "vae")
    again = AutoencoderKLTinyVideo.from_pretrained(tmp_path / "vae").eval()
    assert again.config.latents_std == [1.0, 2.0, 3.0, 4.0]
    video = torch.rand(1, 3, 5, 8, 8) * 2 - 1
    with torch.no_grad():
        assert torch.equal(vae(video).sample, again(video).sample)
    from mmphys_diffusers.training.vae import load_vae, vae_family

    assert type(load_vae(tmp_path / "vae")) is AutoencoderKLTinyVideo and vae_family(again) == "wan"


def test_frames_of_one_group_differ_and_groups_are_independent_at_init():
    """The decoder unstacks a latent frame into its own 4 frames (not 4 copies); at init (zero temporal mixes)
    changing one group's frames leaves the other latent frames untouched."""
    vae = _vae()
    video = torch.rand(1, 3, 9, 8, 8) * 2 - 1
    with torch.no_grad():
        z = vae.encode(video).latent_dist.mode()
        recon = vae.decode(z).sample
        assert not torch.allclose(recon[:, :, 1], recon[:, :, 2])
        edited = video.clone()
        edited[:, :, 5:] = -edited[:, :, 5:]
        z2 = vae.encode(edited).latent_dist.mode()
    assert torch.equal(z[:, :, :2], z2[:, :, :2]) and not torch.allclose(z[:, :, 2], z2[:, :, 2])


def test_learns_where_the_stock_tiny_vae_does_not_start():
    """A few optimizer steps on one clip lower the reconstruction error (the training signal reaches every part)."""
    from mmphys_diffusers.simulation import simulate_clip

    clip = simulate_clip("projectile", seed=1, num_frames=5, size=32)
    video = torch.from_numpy(clip.rgb).float().div(255).permute(3, 0, 1, 2)[None] * 2 - 1
    vae = _vae().train()
    opt = torch.optim.Adam(vae.parameters(), 2e-3)
    losses = []
    for _ in range(30):
        recon = vae(video).sample
        loss = (recon - video).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]
    assert all(p.grad is not None for p in vae.parameters())


@pytest.mark.parametrize("shape,needle", [((1, 3, 6, 8, 8), "1 + 4k frames"), ((1, 3, 5, 10, 8), "multiples of 4"), ((1, 4, 5, 8, 8), "[B, 3, F, H, W]")])
def test_bad_video_names_the_problem(shape, needle):
    with pytest.raises(MMPhysInputError, match=needle.replace("[", r"\[").replace("+", r"\+")):
        _vae().encode(torch.zeros(shape))


def test_bad_config_and_latents_name_the_problem():
    with pytest.raises(MMPhysInputError, match="power of two"):
        AutoencoderKLTinyVideo(scale_factor_spatial=3)
    with pytest.raises(MMPhysInputError, match="expected z_dim=4"):
        AutoencoderKLTinyVideo(z_dim=4, latents_mean=[0.0] * 3)
    with pytest.raises(MMPhysInputError, match=r"\[B, 4, f, h, w\]"):
        _vae().decode(torch.zeros(1, 3, 2, 2, 2))


def test_stock_wan_pipeline_runs_on_it_and_reloads(tmp_path):
    """A WanPipeline with this VAE saves, reloads with stock DiffusionPipeline once the class is imported, and
    generates; model_index.json names the class's module, which diffusers imports on load."""
    from diffusers import DiffusionPipeline, WanPipeline

    from mmphys_diffusers.backbones import get_backbone_adapter, tiny_components

    components = tiny_components("tiny-wan", seed=0, transformer={"in_channels": 4, "out_channels": 4})
    components["vae"] = _vae()
    WanPipeline(**components).save_pretrained(tmp_path / "pipe")
    index = json.loads((tmp_path / "pipe" / "model_index.json").read_text())
    assert index["vae"] == ["mmphys_diffusers.models.autoencoder_kl_tiny_video", "AutoencoderKLTinyVideo"]
    pipe = DiffusionPipeline.from_pretrained(tmp_path / "pipe")
    assert type(pipe) is WanPipeline and type(pipe.vae) is AutoencoderKLTinyVideo
    assert get_backbone_adapter(pipe.vae).name == "wan"
    frames = pipe("a red ball", num_frames=5, height=16, width=16, num_inference_steps=2, output_type="np",
                  generator=torch.Generator().manual_seed(0)).frames
    assert frames.shape == (1, 5, 16, 16, 3)
    from mmphys_diffusers.pipelines import MMPhysVideoPipeline

    ours = MMPhysVideoPipeline.from_pretrained(tmp_path / "pipe")
    again = ours("a red ball", num_frames=5, height=16, width=16, num_inference_steps=2, output_type="np",
                 generator=torch.Generator().manual_seed(0)).frames
    assert again.shape == frames.shape and np.isfinite(again).all()


def test_vae_trainer_trains_and_stores_latent_stats(tmp_path):
    from mmphys_diffusers.simulation import generate_dataset
    from mmphys_diffusers.training.vae import VAETrainConfig, load_vae, train_vae

    generate_dataset(tmp_path / "data", num_clips=3, num_frames=5, size=32, seed=0)
    summary = train_vae(VAETrainConfig(dataset=str(tmp_path / "data"), eval_dataset=str(tmp_path / "data"), output_dir=str(tmp_path / "vae"),
                                       base_vae="tiny-video", vae_config={"base_dim": 8, "z_dim": 4}, num_frames=5, height=32, width=32,
                                       max_train_steps=12, checkpointing_steps=6, train_batch_size=2, learning_rate=3e-3))
    vae = load_vae(tmp_path / "vae")
    assert type(vae) is AutoencoderKLTinyVideo and vae.config.latents_std != [1.0] * 4
    assert summary["global_step"] == 12 and summary["psnr"]["rgb"] > summary["psnr_before"]["rgb"]
    with pytest.raises(MMPhysInputError, match="no separate decoder"):
        train_vae(VAETrainConfig(dataset=str(tmp_path / "data"), output_dir=str(tmp_path / "dec"), base_vae=str(tmp_path / "vae"),
                                 num_frames=5, height=32, width=32, max_train_steps=1, train_decoder_only=True))


def test_load_base_pipeline_imports_the_vae_class_itself(tmp_path):
    """A fresh process that never imported `mmphys_diffusers.models` (a resumed recipe whose VAE stage is
    skipped) still loads a base folder naming AutoencoderKLTinyVideo through `load_base_pipeline`."""
    import subprocess
    import sys

    from diffusers import WanPipeline

    from mmphys_diffusers.backbones import tiny_components

    components = tiny_components("tiny-wan", seed=0, transformer={"in_channels": 4, "out_channels": 4})
    components["vae"] = _vae()
    WanPipeline(**components).save_pretrained(tmp_path / "pipe")
    code = (
        "import sys; from mmphys_diffusers.backbones import load_base_pipeline; "
        "assert 'mmphys_diffusers.models' not in sys.modules; "
        f"pipe = load_base_pipeline({str(tmp_path / 'pipe')!r}); print(type(pipe.vae).__name__)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "AutoencoderKLTinyVideo"
