"""The tiny VAE trainer and the MMPhysVideo-Tiny recipe (smoke preset, end to end, resumable)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from mmphys_diffusers.errors import MMPhysInputError

ROOT = Path(__file__).resolve().parents[1]
CODEC = {"unified": {"near": 4.0, "far": 16.0, "max_flow": 5.0, "max_instances": 8}}


def _recipe_module():
    spec = importlib.util.spec_from_file_location("mmphysvideo_tiny", ROOT / "train" / "recipes" / "mmphysvideo_tiny.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["mmphysvideo_tiny"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sim_data(tmp_path_factory):
    from mmphys_diffusers.simulation import generate_dataset

    root = tmp_path_factory.mktemp("vae-data")
    generate_dataset(root / "train", num_clips=2, num_frames=9, size=32, seed=0, families=["free_fall", "ramp"], progress=False)
    generate_dataset(root / "heldout", num_clips=2, num_frames=9, size=32, seed=50, families=["projectile"], progress=False)
    return root


def _vae_config(sim_data, out, **kw):
    from mmphys_diffusers.training.vae import VAETrainConfig

    options = dict(dataset=str(sim_data / "train"), eval_dataset=str(sim_data / "heldout"), output_dir=str(out), codec_kwargs=CODEC,
                   train_batch_size=4, learning_rate=1e-2, max_train_steps=40, checkpointing_steps=20, max_eval_clips=2)
    options.update(kw)
    return VAETrainConfig(**options)


def test_vae_trains_reports_psnr_and_saves_latent_stats(sim_data, tmp_path):
    from diffusers import AutoencoderKLWan

    from mmphys_diffusers.backbones import get_backbone_adapter
    from mmphys_diffusers.training.vae import VAEClips, train_vae

    # base_dim 8: the 4-channel default plateaus longer and trains less reliably at this step count
    summary = train_vae(_vae_config(sim_data, tmp_path / "vae", vae_config={"base_dim": 8}))
    curve = [h["loss"] for h in summary["loss_curve"]]
    assert len(curve) == 40
    # 2 clips x (RGB + unified) in one batch: the reconstruction loss falls clearly (measured ratio ~0.33)
    assert sum(curve[-5:]) / 5 < 0.6 * sum(curve[:5]) / 5
    for key in ("psnr_before", "psnr"):
        assert set(summary[key]) == {"rgb", "unified"} and all(5.0 < v < 60.0 for v in summary[key].values())
    assert summary["psnr"]["unified"] > summary["psnr_before"]["unified"] + 3.0  # measured 5.7 -> 13-15.5 dB
    assert summary["psnr"]["rgb"] > summary["psnr_before"]["rgb"]  # measured 12.1 -> 14.0-14.4 dB

    vae = AutoencoderKLWan.from_pretrained(tmp_path / "vae")
    assert vae.config.latents_mean == summary["latents_mean"] and vae.config.latents_std == summary["latents_std"]
    # the stored stats normalise the training data's latents to about zero mean, unit variance
    clips = VAEClips(sim_data / "train", ["unified"], 9, 32, 32, codec_kwargs=CODEC)
    videos = torch.stack([v for i in range(2) for v in clips.clip_videos(i).values()])
    with torch.no_grad():
        z = get_backbone_adapter("wan").encode_video(vae, videos)
    assert z.mean().abs() < 0.1 and 0.9 < z.std() < 1.1
    assert json.loads((tmp_path / "vae" / "vae_summary.json").read_text())["global_step"] == 40


def test_vae_resume_matches_uninterrupted_run(sim_data, tmp_path):
    from mmphys_diffusers.training.trainer import InterruptedForTest
    from mmphys_diffusers.training.vae import train_vae

    kw = dict(max_train_steps=6, checkpointing_steps=2, eval_dataset=None, train_batch_size=2, resume_from_checkpoint="latest")
    straight = train_vae(_vae_config(sim_data, tmp_path / "straight", **kw))
    with pytest.raises(InterruptedForTest):
        train_vae(_vae_config(sim_data, tmp_path / "resumed", **kw), interrupt_after_step=3)  # after checkpoint-2: step 3 is lost
    resumed = train_vae(_vae_config(sim_data, tmp_path / "resumed", **kw))
    assert [h["step"] for h in resumed["loss_curve"]] == list(range(1, 7))
    assert [h["loss"] for h in resumed["loss_curve"]] == pytest.approx([h["loss"] for h in straight["loss_curve"]], rel=1e-4)
    assert resumed["latents_std"] == pytest.approx(straight["latents_std"], rel=1e-4)


def test_vae_config_errors(sim_data, tmp_path):
    from mmphys_diffusers.training.vae import parse_vae_config

    with pytest.raises(MMPhysInputError, match="dataset"):
        parse_vae_config(["--dataset", str(tmp_path / "missing")])
    with pytest.raises(MMPhysInputError, match="num_frames"):
        parse_vae_config(["--dataset", str(sim_data / "train"), "--num_frames", "8"])
    with pytest.raises(MMPhysInputError, match="unknown pseudo-RGB cue"):
        parse_vae_config(["--dataset", str(sim_data / "train"), "--cues", "nope"])
    with pytest.raises(MMPhysInputError, match="JSON object"):
        parse_vae_config(["--dataset", str(sim_data / "train"), "--vae_config", "[1]"])
    config = parse_vae_config(["--dataset", str(sim_data / "train"), "--codec_kwargs", json.dumps(CODEC), "--cues", "unified", "depth"])
    assert config.codec_kwargs == CODEC and config.cues == ["unified", "depth"]
    (tmp_path / "vae").mkdir()
    (tmp_path / "vae" / "config.json").write_text("{}")  # validation only checks that a VAE folder is there
    base = ["--dataset", str(sim_data / "train"), "--base_vae", str(tmp_path)]
    assert parse_vae_config([*base, "--train_decoder_only"]).train_decoder_only is True
    assert parse_vae_config([*base, "--train_decoder_only", "false"]).train_decoder_only is False


def test_foreground_weighted_reconstruction_loss():
    from mmphys_diffusers.training.vae import reconstruction_loss

    video = torch.zeros(1, 3, 2, 8, 8)
    recon = video.clone()
    foreground = torch.zeros(1, 1, 2, 8, 8)
    foreground[..., 2:4, 2:4] = 1.0  # 8 of 128 pixels are an object
    recon[:, :, :, 2:4, 2:4] = 0.5  # the VAE gets only the object wrong
    plain_l1, plain_mse = reconstruction_loss(recon, video, foreground, 0.0, 1.0)
    assert torch.isclose(plain_l1, (recon - video).abs().mean()) and torch.isclose(plain_mse, (recon - video).pow(2).mean())
    l1, mse = reconstruction_loss(recon, video, foreground, 20.0, 1.0)
    # weighted mean: object pixels count 21x -> 8*21 / (120 + 8*21) of the weight, each with error 0.5
    expected = 0.5 * (8 * 21) / (120 + 8 * 21)
    assert torch.isclose(l1, torch.tensor(expected)) and l1 > 9 * plain_l1  # 0.292 vs 0.031
    # an error on the background alone is weighted down, never up
    recon_bg = video.clone()
    recon_bg[:, :, :, 6:, 6:] = 0.5
    assert reconstruction_loss(recon_bg, video, foreground, 20.0, 1.0)[0] < reconstruction_loss(recon_bg, video, foreground, 0.0, 1.0)[0]


def test_colour_direction_loss_ignores_shading_and_penalises_a_hue_shift():
    from mmphys_diffusers.training.vae import colour_direction_loss

    video = torch.full((1, 3, 2, 8, 8), -1.0)  # black background
    video[:, 0, :, 2:4, 2:4] = 0.8  # a red object: (0.9, 0, 0) on the [0, 1] scale
    foreground = torch.zeros(1, 1, 2, 8, 8)
    foreground[..., 2:4, 2:4] = 1.0
    shaded = video.clone()
    shaded[:, 0, :, 2:4, 2:4] = 0.2  # darker red: the same direction
    assert colour_direction_loss(shaded, video, foreground, 10.0) < 1e-3
    purple = video.clone()
    purple[:, 2, :, 2:4, 2:4] = 0.0  # red + blue: 29 degrees off
    plain = colour_direction_loss(purple, video, foreground, 0.0)
    weighted = colour_direction_loss(purple, video, foreground, 10.0)
    assert plain > 0.0 and weighted > 5 * plain  # object pixels count 11x: 8 of 128 pixels are the object


def test_vae_decoder_only_fine_tune_keeps_the_encoder_and_its_latent_stats(sim_data, tmp_path):
    from diffusers import AutoencoderKLWan

    from mmphys_diffusers.training.vae import train_vae

    base = train_vae(_vae_config(sim_data, tmp_path / "base", vae_config={"base_dim": 8}, max_train_steps=4, train_batch_size=2))
    summary = train_vae(_vae_config(sim_data, tmp_path / "decoder", base_vae=str(tmp_path / "base"), train_decoder_only=True,
                                    colour_weight=5.0, foreground_weight=10.0, max_train_steps=3, train_batch_size=2))
    before, after = AutoencoderKLWan.from_pretrained(tmp_path / "base"), AutoencoderKLWan.from_pretrained(tmp_path / "decoder")
    for name, weight in before.state_dict().items():
        same = torch.equal(weight, after.state_dict()[name])
        assert same == (not name.startswith(("decoder.", "post_quant_conv."))), name
    # the latent space is the base's, so diffusion models trained on it keep working: the stats carry over
    assert after.config.latents_mean == before.config.latents_mean == summary["latents_mean"] == base["latents_mean"]
    assert after.config.latents_std == before.config.latents_std
    for key in ("colour_recall_before", "colour_recall"):
        assert 0.0 <= summary[key] <= 1.0
    assert summary["colour_recall_before"] == base["colour_recall"]  # the fine-tune starts from the base's decoder
    with pytest.raises(MMPhysInputError, match="train_decoder_only"):
        _vae_config(sim_data, tmp_path / "x", train_decoder_only=True).validate()  # a fresh VAE has no encoder to keep
    with pytest.raises(MMPhysInputError, match="colour_weight"):
        _vae_config(sim_data, tmp_path / "x", colour_weight=-1.0).validate()


def test_colour_recall_counts_object_pixels_within_the_parser_threshold(sim_data, tmp_path):
    from mmphys_diffusers.training.vae import VAEClips, build_vae, evaluate_colour_recall

    vae = build_vae("tiny-wan", {"base_dim": 8})
    clips = VAEClips(sim_data / "heldout", ["unified"], 9, 32, 32, codec_kwargs=CODEC)
    recall = evaluate_colour_recall(vae, clips)
    assert evaluate_colour_recall(vae, clips, threshold_degrees=0.0) == 0.0
    assert evaluate_colour_recall(vae, clips, threshold_degrees=90.1) == 1.0  # every angle of non-negative RGB is <= 90
    assert 0.0 <= recall <= 1.0


def test_vae_clips_carry_object_masks(sim_data):
    import numpy as np

    from mmphys_diffusers.data import load_cue_arrays, read_manifest
    from mmphys_diffusers.training.vae import VAEClips

    clips = VAEClips(sim_data / "train", cues=["unified"], num_frames=9, height=32, width=32, frame_sampling="first")
    record = read_manifest(sim_data / "train")[0]
    instances = load_cue_arrays(sim_data / "train", record, ["instances"])["instances"]
    item = clips[0]
    assert item["foreground"].shape == (1, 9, 32, 32)
    expected = (instances[:9] > 0).astype(np.float32)
    if expected.shape[1:] != (32, 32):
        expected = expected[:, :: expected.shape[1] // 32, :: expected.shape[2] // 32]
    assert (item["foreground"][0].numpy() == expected).mean() > 0.97 and item["foreground"].sum() > 0


def test_vae_foreground_weight_must_be_non_negative(sim_data):
    from mmphys_diffusers.training.vae import parse_vae_config

    with pytest.raises(MMPhysInputError, match="foreground_weight"):
        parse_vae_config(["--dataset", str(sim_data / "train"), "--foreground_weight", "-1"])


def test_vae_max_train_clips_reads_only_the_first_clips(sim_data, tmp_path):
    import shutil

    from mmphys_diffusers.data import read_manifest
    from mmphys_diffusers.training.vae import parse_vae_config, train_vae

    # clip 1 is unreadable: a VAE limited to clip 0 must train (and compute its latent stats) without touching it
    data = tmp_path / "train"
    shutil.copytree(sim_data / "train", data)
    second = read_manifest(data)[1]
    for path in (data / "clips" / second.id).iterdir():
        path.write_bytes(b"not a video")
    summary = train_vae(_vae_config(sim_data, tmp_path / "vae", dataset=str(data), eval_dataset=None, max_train_steps=2,
                                    train_batch_size=2, max_train_clips=1))
    assert summary["global_step"] == 2 and summary["config"]["max_train_clips"] == 1
    with pytest.raises(MMPhysInputError):  # the same run over every clip reaches the broken one
        train_vae(_vae_config(sim_data, tmp_path / "vae-all", dataset=str(data), eval_dataset=None, max_train_steps=2, train_batch_size=4))
    with pytest.raises(MMPhysInputError, match="max_train_clips"):
        parse_vae_config(["--dataset", str(sim_data / "train"), "--max_train_clips", "0"])


def test_vae_trains_on_random_windows_and_evaluates_whole_clips(sim_data, tmp_path):
    import numpy as np

    from mmphys_diffusers.training.vae import VAEClips, build_vae, evaluate_psnr, evaluate_psnr_per_frame, parse_vae_config, train_vae

    # the windows are contiguous, differ between epochs, and the object masks follow the same window
    windows = VAEClips(sim_data / "train", ["unified"], 5, 32, 32, frame_sampling="random", codec_kwargs=CODEC)
    whole = VAEClips(sim_data / "train", ["unified"], 9, 32, 32, frame_sampling="first", codec_kwargs=CODEC)
    full_rgb, full_fg = whole.clip_videos(0)["rgb"], whole.foreground(0)
    starts = set()
    for epoch in range(6):
        windows.set_epoch(epoch)
        item = windows[0]
        assert item["video"].shape == (3, 5, 32, 32) and item["foreground"].shape == (1, 5, 32, 32)
        start = [s for s in range(5) if torch.equal(full_rgb[:, s:s + 5], item["video"])]
        assert len(start) >= 1 and torch.equal(full_fg[:, start[0]:start[0] + 5], item["foreground"])
        starts.add(start[0])
    assert len(starts) > 1

    summary = train_vae(_vae_config(sim_data, tmp_path / "vae", vae_config={"base_dim": 8}, train_num_frames=5,
                                    lr_scheduler="cosine", lr_warmup_steps=2, max_train_steps=6, checkpointing_steps=3))
    assert summary["global_step"] == 6 and summary["config"]["train_num_frames"] == 5
    assert all(np.isfinite(v) for v in summary["psnr"].values())  # held-out PSNR on whole 9-frame clips
    # per-frame PSNR: one value per frame; on one clip their mean MSE is the clip's MSE
    vae = build_vae(str(tmp_path / "vae"))
    heldout = VAEClips(sim_data / "heldout", ["unified"], 9, 32, 32, codec_kwargs=CODEC, max_clips=1)
    per_frame = evaluate_psnr_per_frame(vae, heldout)
    whole = evaluate_psnr(vae, heldout)
    for modality, values in per_frame.items():
        assert len(values) == 9
        pooled = 10 * np.log10(1 / np.mean([10 ** (-v / 10) for v in values]))
        assert abs(pooled - whole[modality]) < 0.05
    with pytest.raises(MMPhysInputError, match="train_num_frames"):
        parse_vae_config(["--dataset", str(sim_data / "train"), "--num_frames", "9", "--train_num_frames", "13"])
    with pytest.raises(MMPhysInputError, match="train_num_frames"):
        parse_vae_config(["--dataset", str(sim_data / "train"), "--train_num_frames", "6"])
    with pytest.raises(MMPhysInputError, match="lr_scheduler"):
        parse_vae_config(["--dataset", str(sim_data / "train"), "--lr_scheduler", "sometimes"])


def test_recipe_vae_stage_trains_windows_then_fine_tunes_on_whole_clips(sim_data, tmp_path):
    import shutil

    recipe = _recipe_module()
    out = tmp_path / "run"
    shutil.copytree(sim_data, out / "data")
    preset = {"size": 32, "num_frames": 9, "vae": {
        "max_train_steps": 2, "train_batch_size": 2, "checkpointing_steps": 2, "vae_config": {"base_dim": 8},
        "train_num_frames": 5, "whole_clip_finetune": {"max_train_steps": 3, "learning_rate": 1e-4}}}
    summary = recipe._stage_vae(out, preset, seed=0, device="cpu")
    windows = json.loads((out / "vae-windows" / "vae_summary.json").read_text())
    assert windows["config"]["train_num_frames"] == 5 and windows["global_step"] == 2
    assert summary["global_step"] == 3 and summary["config"]["train_num_frames"] is None
    assert summary["config"]["base_vae"] == str(out / "vae-windows") and summary["config"]["learning_rate"] == 1e-4
    assert summary["config"]["train_batch_size"] == 2  # the block's settings carry over to the fine-tune
    # the fine-tune starts from the windowed VAE: its PSNR before training is the first phase's final PSNR
    assert summary["psnr_before"] == windows["psnr"]
    assert recipe._windows_phase(out)["global_step"] == 2
    assert recipe._stage_vae(out, preset, seed=0, device="cpu") == summary  # finished: skipped
    assert recipe._windows_phase(tmp_path / "elsewhere") is None


def test_recipe_vae_stage_fine_tunes_the_decoder_last_and_keeps_the_latent_space(sim_data, tmp_path):
    import shutil

    from diffusers import AutoencoderKLWan

    recipe = _recipe_module()
    out = tmp_path / "run"
    shutil.copytree(sim_data, out / "data")
    preset = {"size": 32, "num_frames": 9, "vae": {
        "max_train_steps": 2, "train_batch_size": 2, "checkpointing_steps": 2, "vae_config": {"base_dim": 8},
        "decoder_finetune": {"max_train_steps": 3, "colour_weight": 5.0}}}
    summary = recipe._stage_vae(out, preset, seed=0, device="cpu")
    joint = json.loads((out / "vae-joint" / "vae_summary.json").read_text())
    assert joint["global_step"] == 2 and joint["config"]["train_decoder_only"] is False
    assert summary["global_step"] == 3 and summary["config"]["train_decoder_only"] is True
    assert summary["config"]["base_vae"] == str(out / "vae-joint") and summary["config"]["train_batch_size"] == 2
    assert summary["latents_mean"] == joint["latents_mean"] and summary["latents_std"] == joint["latents_std"]
    before, after = AutoencoderKLWan.from_pretrained(out / "vae-joint"), AutoencoderKLWan.from_pretrained(out / "vae")
    assert torch.equal(before.encoder.conv_in.weight, after.encoder.conv_in.weight)
    assert not torch.equal(before.decoder.conv_out.weight, after.decoder.conv_out.weight)
    record = recipe._decoder_phase(out)
    assert record["global_step"] == 3 and record["colour_weight"] == 5.0
    assert record["colour_recall_before"] == joint["colour_recall"] and 0.0 <= record["colour_recall"] <= 1.0
    assert recipe._stage_vae(out, preset, seed=0, device="cpu") == summary  # finished: skipped
    assert recipe._decoder_phase(tmp_path / "elsewhere") is None


def test_recipe_vae_block_with_a_misspelt_key_names_the_block_and_the_known_options(tmp_path):
    recipe = _recipe_module()
    preset = {"name": "mine", "size": 32, "num_frames": 9, "vae": {"max_train_step": 2}}
    with pytest.raises(MMPhysInputError, match=r"preset 'mine', 'vae' block: unknown option\(s\) \['max_train_step'\].*max_train_steps"):
        recipe._stage_vae(tmp_path, preset, seed=0, device="cpu")
    preset["vae"] = {"max_train_steps": 2, "whole_clip_finetune": {"learning_rte": 1e-4}}
    (tmp_path / "vae-windows").mkdir()
    (tmp_path / "vae-windows" / "vae_summary.json").write_text("{}")  # first phase done: the fine-tune's block is checked
    with pytest.raises(MMPhysInputError, match=r"whole_clip_finetune: unknown option\(s\) \['learning_rte'\]"):
        recipe._stage_vae(tmp_path, preset, seed=0, device="cpu")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    recipe = _recipe_module()
    root = tmp_path_factory.mktemp("recipe")
    result = recipe.run_recipe("smoke", root / "run", export=root / "export", device="cpu", command="pytest smoke")
    return recipe, root, result


def test_smoke_recipe_exports_three_loadable_models_with_cards(smoke_run):
    from mmphys_diffusers.pipelines import MMPhysVideoPipeline, MMPhysVideoTeacherPipeline
    from mmphys_diffusers.utils.video_io import read_video

    recipe, root, result = smoke_run
    preset = recipe.load_preset("smoke")
    export = root / "export"
    assert result["skipped"] == []
    assert set(result["timings_s"]) == set(recipe.STAGES) - {"pretrain"}  # the smoke preset has no pretrain block
    for kind in recipe.MODEL_KINDS:
        folder = export / kind
        card = (folder / "README.md").read_text()
        for needle in ("pytest smoke", "hardware", f"steps: {preset['diffusion']['max_train_steps']}", "text-to-video", "training time"):
            assert needle in card, (kind, needle)
        info = json.loads((folder / "mmphys_recipe.json").read_text())
        assert info["perception_codec_kwargs"] == recipe.codec_kwargs_for(32)
        assert info["training"]["global_step"] == preset["diffusion"]["max_train_steps"]
        assert "seconds_per_video" in info["eval"]
        assert not list(folder.glob("checkpoint-*")) and not (folder / "latent-cache").exists()
        assert read_video(folder / "sample.mp4")[0].shape[0] == preset["num_frames"]
        cls = MMPhysVideoTeacherPipeline if kind == "teacher" else MMPhysVideoPipeline
        pipe = cls.from_pretrained(folder)
        # every model carries the VAE trained by the recipe, with its measured latent stats
        assert pipe.vae.config.latents_std == result["vae"]["latents_std"]
        # and the preset's word-level tokenizer: a colour is one token, wherever it stands in the caption
        assert pipe.tokenizer.convert_ids_to_tokens(pipe.tokenizer("a red ball").input_ids) == ["a", "red", "ball", "</s>"]
        assert pipe.text_encoder.config.vocab_size == len(pipe.tokenizer)
        assert pipe.tokenizer.model_max_length == preset["text_encoder"]["max_sequence_length"]
        assert "word-level tokenizer" in card
    # baseline = the student trainer with alignment weight 0: the loss is the diffusion loss alone,
    # and it saw the same data / timesteps / noise as the student (same first-step diffusion loss)
    log = lambda kind: [json.loads(l) for l in (root / "run" / kind / "logs" / "training_log.jsonl").read_text().splitlines()]
    baseline, student = log("baseline"), log("student")
    assert all(h["loss"] == pytest.approx(h["loss_diffusion"]) for h in baseline)
    assert all("loss_align" not in h for h in baseline)  # no teacher loaded or run for the baseline
    for kind in recipe.MODEL_KINDS:  # the trainers record the fixed codec ranges themselves
        recorded = json.loads((root / "run" / kind / "mmphys_recipe.json").read_text())
        assert recorded == {"perception_cue": "unified", "perception_codec_kwargs": recipe.codec_kwargs_for(32),
                            "generation_defaults": {"num_frames": preset["num_frames"], "height": 32, "width": 32}}
    assert baseline[0]["loss_diffusion"] == pytest.approx(student[0]["loss_diffusion"], rel=1e-5)
    assert student[0]["loss"] > student[0]["loss_diffusion"]  # alignment term on
    results = json.loads((root / "run" / "eval" / "results.json").read_text())
    assert set(results["summary"]) == set(recipe.MODEL_KINDS) | set(recipe.REFERENCE_ROWS)
    # the ground truth scores itself perfectly; through the tiny VAE it loses something, not everything
    assert results["summary"]["simulator"]["permanence"]["mean"] == 1.0
    # the table and the feature network are exported, so `mmphys eval physics --feature-net bundled` reproduces it
    assert json.loads((export / "benchmark" / "results.json").read_text())["summary"] == results["summary"]
    from mmphys_diffusers.evaluation.features import VideoFeatureNet

    assert VideoFeatureNet.from_pretrained(export / "feature-net").config.class_names


def test_smoke_recipe_second_run_skips_finished_stages(smoke_run):
    recipe, root, first = smoke_run
    export_card = root / "export" / "student" / "README.md"
    stamp = export_card.stat().st_mtime_ns
    again = recipe.run_recipe("smoke", root / "run", export=root / "export", device="cpu", command="pytest smoke")
    assert set(again["skipped"]) == set(recipe.STAGES) - {"pretrain"}  # the smoke preset has no pretrain block
    assert again["timings_s"] == first["timings_s"]  # the times of the run that did the work are kept
    assert export_card.stat().st_mtime_ns == stamp
    # another preset into the same working folder is refused
    with pytest.raises(MMPhysInputError, match="another preset"):
        recipe.run_recipe("cpu", root / "run", export=root / "export2", device="cpu", stages=["data"])
    with pytest.raises(MMPhysInputError, match="--preset"):
        recipe.load_preset("nope")


def test_model_cards_record_the_command_that_reproduces_the_whole_run():
    """A partial re-run (`--stages eval export`) or another export folder still records the full recipe command."""
    recipe = _recipe_module()
    assert recipe.reproduce_command(["--preset", "cpu", "--out", "o", "--stages", "eval", "export", "--seed", "1"]) == (
        "python train/recipes/mmphysvideo_tiny.py --preset cpu --out o --seed 1"
    )
    assert recipe.reproduce_command(["--stages=export", "--preset", "gpu", "--export", "/tmp/x"]) == (
        "python train/recipes/mmphysvideo_tiny.py --preset gpu"
    )


def test_replicate_training_seed_retrains_baseline_and_student_and_compares(smoke_run, capsys):
    spec = importlib.util.spec_from_file_location("replicate_training_seed", ROOT / "benchmarks" / "replicate_training_seed.py")
    replicate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(replicate)
    recipe, root, _ = smoke_run
    run = root / "run"
    caches_before = sorted(p.name for p in (run / "latent-cache").iterdir())
    assert replicate.main(["--run", str(run), "--seed", "1"]) == 0
    # the linked base is the run's own folder, so the replicate reuses the run's latent cache
    assert sorted(p.name for p in (run / "latent-cache").iterdir()) == caches_before
    out = run / "replicates" / "seed-1"
    log = lambda folder: [json.loads(l) for l in (folder / "logs" / "training_log.jsonl").read_text().splitlines()]
    # same budget, another seed: other noise and timesteps, so another first-step loss than the seed-0 run
    assert len(log(out / "baseline")) == len(log(run / "baseline"))
    assert log(out / "baseline")[0]["loss"] != pytest.approx(log(run / "baseline")[0]["loss"], rel=1e-6)
    # the replicate's baseline and student still share their seed's data, timesteps and noise
    assert log(out / "baseline")[0]["loss_diffusion"] == pytest.approx(log(out / "student")[0]["loss_diffusion"], rel=1e-5)
    compare = json.loads((out / "eval" / "compare.json").read_text())
    assert compare["model"] == "student" and compare["reference"] == "baseline"
    assert compare["metrics"]["permanence"]["n"] == 1  # smoke eval: one prompt x one seed
    assert "permanence" in capsys.readouterr().out
    # the teacher and data are the run's own, linked rather than retrained or copied
    assert (out / "teacher").resolve() == (run / "teacher").resolve()
    with pytest.raises(MMPhysInputError, match="recipe run"):
        replicate.main(["--run", str(root / "export"), "--seed", "1"])


def test_pretrain_stage_gives_every_model_an_rgb_pretrained_starting_point(smoke_run, tmp_path):
    """A preset's `pretrain` block trains an RGB-only model from the base, and the teacher, baseline and
    student fine-tune it: the baseline's first batch (same seed, data and noise) then scores lower."""
    import shutil

    recipe, root, first = smoke_run
    preset = recipe.load_preset("smoke")
    preset["name"], preset["pretrain"] = "smoke-pretrain", {"max_train_steps": 12, "learning_rate": 3e-3}
    out = tmp_path / "run"
    for name in ("data", "vae", "base"):
        shutil.copytree(root / "run" / name, out / name)
    result = recipe.run_recipe(preset, out, export=tmp_path / "export", device="cpu", command="pytest pretrain")
    assert "pretrain" in result["timings_s"]
    assert json.loads((out / "pretrain" / "train_summary.json").read_text())["metrics"]["global_step"] == 12
    caches = {json.loads(f.read_text())["pretrained_model"] for f in (out / "latent-cache").glob("*/cache_info.json")}
    assert caches == {str((out / "base").resolve()), str((out / "pretrain").resolve())}
    log = lambda folder: [json.loads(l)["loss"] for l in (folder / "baseline" / "logs" / "training_log.jsonl").read_text().splitlines()]
    assert log(out)[0] < log(root / "run")[0]
    for kind in recipe.MODEL_KINDS:
        card = (tmp_path / "export" / kind / "README.md").read_text()
        assert "an RGB-only model pretrained 12 steps from the fresh base" in card
    assert "freshly initialised base" in (root / "export" / "student" / "README.md").read_text()


def test_continue_from_trains_a_finished_run_on_to_more_steps(smoke_run, tmp_path):
    """`--continue-from`: a new folder shares the run's data, VAE and base, each model resumes from its latest
    checkpoint and trains on to the larger step budget; the baseline's extra steps equal a straight run's."""
    import shutil

    recipe, root, first = smoke_run
    smoke = recipe.load_preset("smoke")
    more = json.loads(json.dumps(smoke))
    more["name"], more["diffusion"]["max_train_steps"] = "smoke-more", smoke["diffusion"]["max_train_steps"] + 4
    result = recipe.run_recipe(more, tmp_path / "cont", export=tmp_path / "export", device="cpu", command="pytest cont",
                               continue_from=root / "run")
    assert {"data", "vae", "base"} <= set(result["skipped"])
    assert (tmp_path / "cont" / "data" / "train" / "manifest.jsonl").stat().st_ino == \
        (root / "run" / "data" / "train" / "manifest.jsonl").stat().st_ino  # hard links, no second copy
    run = json.loads((tmp_path / "cont" / "recipe_run.json").read_text())
    assert run["continued_from"]["steps"] == {k: smoke["diffusion"]["max_train_steps"] for k in ("teacher", "baseline", "student")}
    for kind in recipe.MODEL_KINDS:
        info = json.loads((tmp_path / "export" / kind / "mmphys_recipe.json").read_text())
        assert info["training"]["global_step"] == more["diffusion"]["max_train_steps"]
        card = (tmp_path / "export" / kind / "README.md").read_text()
        assert f"steps 1-{smoke['diffusion']['max_train_steps']} in run `{first_run_id(root)}`" in card
    # the latent cache was re-keyed for the new folder, not re-encoded: the trainer found every clip cached
    assert len(list((tmp_path / "cont" / "latent-cache").glob("*/*.safetensors"))) == \
        len(list((root / "run" / "latent-cache").glob("*/*.safetensors")))
    # straight baseline run of the larger budget on the same data / VAE / base: identical losses after the resume
    straight = tmp_path / "straight"
    for name in ("data", "vae", "base", "latent-cache"):
        shutil.copytree(tmp_path / "cont" / name, straight / name)
    recipe._train_stage("baseline", straight, more, 0)
    log = lambda folder: [json.loads(l) for l in (folder / "baseline" / "logs" / "training_log.jsonl").read_text().splitlines()]
    resumed = {h["step"]: h["loss"] for h in log(tmp_path / "cont")}
    whole = {h["step"]: h["loss"] for h in log(straight)}
    assert sorted(resumed) == list(range(smoke["diffusion"]["max_train_steps"] + 1, more["diffusion"]["max_train_steps"] + 1))
    for step, loss in resumed.items():
        assert loss == pytest.approx(whole[step], rel=1e-5), step


def test_continue_from_into_a_final_decay_matches_a_straight_run(smoke_run, tmp_path):
    """A constant-rate run continued into `warmup_stable_decay` trains exactly as a straight WSD run of the
    larger budget: same losses after the resume, and the rate falls linearly to 0 over the decay steps."""
    import shutil

    recipe, root, _ = smoke_run
    smoke = recipe.load_preset("smoke")
    old_steps = smoke["diffusion"]["max_train_steps"]
    wsd = json.loads(json.dumps(smoke))
    wsd["name"] = "smoke-wsd"
    wsd["diffusion"].update(max_train_steps=old_steps + 4, lr_scheduler="warmup_stable_decay", lr_decay_steps=4)
    recipe.run_recipe(wsd, tmp_path / "cont", export=tmp_path / "export", device="cpu", command="pytest wsd",
                      continue_from=root / "run")
    for kind in recipe.MODEL_KINDS:
        card = (tmp_path / "export" / kind / "README.md").read_text()
        assert f"decayed linearly to 0 over steps {old_steps + 1}-{old_steps + 4}" in card, kind
    straight = tmp_path / "straight"
    for name in ("data", "vae", "base", "latent-cache"):
        shutil.copytree(tmp_path / "cont" / name, straight / name)
    recipe._train_stage("baseline", straight, wsd, 0)
    log = lambda folder: {json.loads(l)["step"]: json.loads(l) for l in (folder / "baseline" / "logs" / "training_log.jsonl").read_text().splitlines()}
    resumed, whole = log(tmp_path / "cont"), log(straight)
    assert sorted(resumed) == list(range(old_steps + 1, old_steps + 5))
    for step, record in resumed.items():
        assert record["loss"] == pytest.approx(whole[step]["loss"], rel=1e-5), step
        assert record["lr"] == pytest.approx(whole[step]["lr"]), step
    lr = smoke["diffusion"]["learning_rate"]
    assert [whole[s]["lr"] for s in range(old_steps, old_steps + 5)] == pytest.approx([lr, 0.75 * lr, 0.5 * lr, 0.25 * lr, 0.0])
    for kind in ("teacher", "student"):
        steps = json.loads((tmp_path / "cont" / kind / "train_summary.json").read_text())["metrics"]["global_step"]
        assert steps == old_steps + 4, kind


def first_run_id(root):
    return json.loads((root / "run" / "recipe_run.json").read_text())["run_id"]


def test_continue_from_refuses_what_it_cannot_continue(smoke_run, tmp_path):
    recipe, root, _ = smoke_run
    smoke = recipe.load_preset("smoke")
    other = json.loads(json.dumps(smoke))
    other["diffusion"]["max_train_steps"] += 4
    other["size"] = 64
    with pytest.raises(MMPhysInputError, match=r"differs from that run's preset .* in \['size'\]"):
        recipe.continue_run(root / "run", tmp_path / "a", other)
    with pytest.raises(MMPhysInputError, match="expected more steps"):
        recipe.continue_run(root / "run", tmp_path / "b", smoke)
    cosine = json.loads(json.dumps(smoke))
    cosine["diffusion"].update(max_train_steps=smoke["diffusion"]["max_train_steps"] + 4, lr_scheduler="cosine")
    with pytest.raises(MMPhysInputError, match="lr_scheduler"):
        recipe.continue_run(root / "run", tmp_path / "d", cosine)
    early_decay = json.loads(json.dumps(smoke))
    early_decay["diffusion"].update(max_train_steps=smoke["diffusion"]["max_train_steps"] + 4,
                                    lr_scheduler="warmup_stable_decay", lr_decay_steps=6)
    with pytest.raises(MMPhysInputError, match=r"decay would start at step 6, before that run's last step 8"):
        recipe.continue_run(root / "run", tmp_path / "e", early_decay)
    with pytest.raises(MMPhysInputError, match="no recipe_run.json"):
        recipe.continue_run(tmp_path, tmp_path / "c", smoke)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists() and not (tmp_path / "e").exists()


def test_continue_from_checks_the_schedule_the_copied_pretrain_stage_had(tmp_path):
    """The pretrain model is copied into a continuation, so its block must resolve to the schedule it trained with."""
    recipe = _recipe_module()
    run9, run10 = recipe.load_preset("cpu-pretrain-ft6k-tiny-video"), recipe.load_preset("cpu-pretrain-ft10k-wsd-tiny-video")
    recipe._check_pretrain_schedule(tmp_path, run9, run10)  # run 10 spells out run 9's constant rate
    assert recipe._pretrain_schedule(run10) == ("constant_with_warmup", 0)
    inherits_decay = json.loads(json.dumps(run10))
    del inherits_decay["pretrain"]["lr_scheduler"], inherits_decay["pretrain"]["lr_decay_steps"]
    assert recipe._pretrain_schedule(inherits_decay) == ("warmup_stable_decay", 4000)
    with pytest.raises(MMPhysInputError, match=r"pretrained with .*constant_with_warmup.*resolves to .*warmup_stable_decay"):
        recipe._check_pretrain_schedule(tmp_path, run9, inherits_decay)


def test_start_from_fine_tunes_the_models_of_an_earlier_export(smoke_run, tmp_path):
    """A preset's `start_from` block starts each model from an earlier run's trained model on the same base:
    one shared latent cache, a lower first loss on the same batch, and cards that say where they started."""
    import shutil

    recipe, root, _ = smoke_run
    preset = recipe.load_preset("smoke")
    earlier = root / "export"
    preset["name"], preset["start_from"] = "smoke-start-from", {kind: str(earlier / kind) for kind in recipe.MODEL_KINDS}
    out = tmp_path / "run"
    for name in ("data", "vae", "base"):
        shutil.copytree(root / "run" / name, out / name)
    recipe.run_recipe(preset, out, export=tmp_path / "export", device="cpu", command="pytest start_from",
                      stages=("data", "vae", "base", "teacher", "baseline", "student", "eval", "export"))
    caches = {json.loads(f.read_text())["pretrained_model"] for f in (out / "latent-cache").glob("*/cache_info.json")}
    assert caches == {str((out / "base").resolve())}
    log = lambda folder, kind: [json.loads(l)["loss"] for l in (folder / kind / "logs" / "training_log.jsonl").read_text().splitlines()]
    for kind in ("teacher", "baseline"):  # same first batch and noise, trained weights
        assert log(out, kind)[0] < log(root / "run", kind)[0]
    earlier_run = json.loads((earlier / "teacher" / "mmphys_recipe.json").read_text())["run_id"]
    for kind in recipe.MODEL_KINDS:
        record = json.loads((out / kind / recipe.START_FROM_FILE).read_text())
        assert record == {"path": str(earlier / kind), "run_id": earlier_run, "global_step": 8, "rgb_stream_of_teacher": False}
        card = (tmp_path / "export" / kind / "README.md").read_text()
        assert f"starting point: the trained model of run `{earlier_run}`, trained 8 steps" in card

    # a baseline (or student) started from a teacher trains from the teacher's RGB stream, and says so
    # here the VAE is also taken from the earlier export (vae.from_pipeline) instead of trained
    from_teacher = dict(preset, name="smoke-rgb-from-teacher", start_from={"baseline": str(earlier / "teacher")},
                        vae={"from_pipeline": str(earlier / "student")})
    out2 = tmp_path / "run-from-teacher"
    for name in ("data", "base"):
        shutil.copytree(root / "run" / name, out2 / name)
    recipe.run_recipe(from_teacher, out2, export=tmp_path / "export2", device="cpu", command="pytest", stages=("vae", "baseline"))
    vae_summary = json.loads((out2 / "vae" / "vae_summary.json").read_text())
    assert vae_summary["reused_from"] == str(earlier / "student") and vae_summary["global_step"] is None
    trained_vae = json.loads((root / "run" / "vae" / "vae_summary.json").read_text())
    for modality, value in trained_vae["psnr"].items():  # the same VAE on the same held-out clips
        assert vae_summary["psnr"][modality] == pytest.approx(value, abs=1e-3)
    assert (out2 / "vae" / "diffusion_pytorch_model.safetensors").read_bytes() == \
        (earlier / "student" / "vae" / "diffusion_pytorch_model.safetensors").read_bytes()
    with pytest.raises(MMPhysInputError, match="from_pipeline takes no training options"):
        recipe.run_recipe(dict(from_teacher, vae={"from_pipeline": str(earlier / "student"), "max_train_steps": 3}),
                          tmp_path / "bad-vae", device="cpu", stages=("data", "vae"))
    record = json.loads((out2 / "baseline" / recipe.START_FROM_FILE).read_text())
    assert record["rgb_stream_of_teacher"] is True
    assert "starting point: the RGB stream (shared backbone, control links dropped) of the trained teacher" in recipe._start_from_line(record)
    assert log(out2, "baseline")[0] < log(root / "run", "baseline")[0]

    bad = dict(preset, start_from={"vae": str(earlier / "student")})
    with pytest.raises(MMPhysInputError, match=r"start_from names \['vae'\]"):
        recipe.run_recipe(bad, tmp_path / "bad", device="cpu", stages=("data",))
    missing = dict(preset, start_from={"student": str(tmp_path / "nowhere")})
    with pytest.raises(MMPhysInputError, match="start_from.student=.*expected a trained pipeline folder"):
        recipe.run_recipe(missing, tmp_path / "bad", device="cpu", stages=("data",))
